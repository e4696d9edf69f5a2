package imapbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mediagw/mediagw/plugin"
)

// state is what survives a restart: the mailbox's UIDVALIDITY and UIDNEXT as
// last seen, and settlements the host gave that the server has not applied
// yet (so a restart applies them instead of offering those messages again).
type state struct {
	UIDValidity uint32          `json:"uidvalidity"`
	UIDNext     imap.UID        `json:"uidnext"`
	Pending     []pendingSettle `json:"pending,omitempty"`
}

type pendingSettle struct {
	UIDValidity uint32            `json:"uidvalidity"`
	UID         imap.UID          `json:"uid"`
	Kind        plugin.SettleKind `json:"kind"`
	Reason      string            `json:"reason,omitempty"`
	SourceID    string            `json:"source_id,omitempty"`
	MessageID   string            `json:"message_id,omitempty"`

	applied    chan struct{} // closed when done (or dropped); not saved
	deliveryID string
}

// StateFile names the state file for user's folder inside dir.
func StateFile(dir, user, folder string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '@':
				return r
			}
			return '_'
		}, s)
	}
	return filepath.Join(dir, "imap-"+clean(user)+"-"+clean(folder)+".json")
}

func loadState(path string) (state, error) {
	var s state
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("imapbox: read state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return state{}, fmt.Errorf("imapbox: state file %s: %w", path, err)
	}
	for i := range s.Pending {
		s.Pending[i].applied = make(chan struct{})
	}
	return s, nil
}

func saveState(path string, s state) error {
	if path == "" {
		return nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("imapbox: state dir: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("imapbox: write state: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync() // the state must survive a power cut, not only a crash
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("imapbox: write state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("imapbox: write state: %w", err)
	}
	return nil
}
