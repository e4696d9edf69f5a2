package imapbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/token"
)

func TestHeaderValue(t *testing.T) {
	tests := []struct{ raw, name, want string }{
		{"Message-ID: <a@b>\r\nSubject: x\r\n\r\nbody", "Message-Id", "<a@b>"},
		{"Subject: x\r\nmessage-id:\r\n <folded@b>\r\n\r\n", "Message-ID", "<folded@b>"},
		{"Subject: x\r\n\r\nMessage-ID: <in-body@b>\r\n", "Message-ID", ""},
		{"Subject: x\n\nbody", "Subject", "x"},
		{"", "Subject", ""},
	}
	for _, tt := range tests {
		if got := headerValue([]byte(tt.raw), tt.name); got != tt.want {
			t.Errorf("headerValue(%q, %s) = %q, want %q", tt.raw, tt.name, got, tt.want)
		}
	}
}

func FuzzHeaderValue(f *testing.F) {
	f.Add([]byte("Message-ID: <a@b>\r\n\r\n"), "Message-ID")
	f.Add([]byte("A: 1\n 2\n\n"), "a")
	f.Fuzz(func(t *testing.T, raw []byte, name string) {
		_ = headerValue(raw, name)
	})
}

func TestStateRoundTrip(t *testing.T) {
	path := StateFile(t.TempDir(), "fax@contoso.com", "INBOX/Fax")
	if filepath.Base(path) != "imap-fax@contoso.com-INBOX_Fax.json" {
		t.Fatalf("state file %s", path)
	}
	want := state{UIDValidity: 7, UIDNext: 42, Pending: []pendingSettle{{UIDValidity: 7, UID: 3, Kind: plugin.Reject, Reason: "no number", SourceID: "imap:7:3"}}}
	if err := saveState(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.UIDValidity != 7 || got.UIDNext != 42 || len(got.Pending) != 1 || got.Pending[0].Reason != "no number" || got.Pending[0].applied == nil {
		t.Fatalf("loaded %+v", got)
	}
	os.WriteFile(path, []byte("{"), 0o600)
	if _, err := loadState(path); err == nil {
		t.Fatal("a broken state file loaded")
	}
}

func FuzzLoadState(f *testing.F) {
	f.Add([]byte(`{"uidvalidity":1,"uidnext":2,"pending":[{"uidvalidity":1,"uid":1,"kind":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "s.json")
		os.WriteFile(path, b, 0o600)
		s, err := loadState(path)
		if err == nil {
			for _, p := range s.Pending {
				if p.applied == nil {
					t.Fatal("pending entry without a channel")
				}
			}
		}
	})
}

// A server refusal drops the batch it refused, not settlements recorded
// after the batch was taken: those were never tried.
func TestSettleErrDropsOnlyTheBatch(t *testing.T) {
	m, err := New(Options{Addr: "127.0.0.1:1", User: "fax@contoso.com", Token: func(context.Context) (token.Token, error) { return token.Token{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	tried := pendingSettle{UIDValidity: 1, UID: 7, Kind: plugin.Ack, applied: make(chan struct{}), deliveryID: "1:7:1"}
	later := pendingSettle{UIDValidity: 1, UID: 8, Kind: plugin.Ack, applied: make(chan struct{}), deliveryID: "1:8:2"}
	m.st.Pending = []pendingSettle{tried, later}
	m.settling[tried.deliveryID], m.settling[later.deliveryID] = tried.applied, later.applied
	s := &session{m: m, uidValid: 1}
	if err := s.settleErr("ack", &imap.Error{Type: imap.StatusResponseTypeNo, Text: "refused"}, []pendingSettle{tried}); err != nil {
		t.Fatalf("settleErr on a refusal: %v", err)
	}
	select {
	case <-tried.applied:
	default:
		t.Error("the refused settlement's Settle is still waiting")
	}
	select {
	case <-later.applied:
		t.Error("a settlement that was never tried was released as applied")
	default:
	}
	if len(m.st.Pending) != 1 || m.st.Pending[0].UID != later.UID {
		t.Errorf("pending after the refusal = %+v, want only uid %d", m.st.Pending, later.UID)
	}
	if _, ok := m.settling[later.deliveryID]; !ok {
		t.Error("the untried settlement no longer waits")
	}

	// A connection error keeps everything for the next session.
	if err := s.settleErr("ack", errors.New("broken pipe"), m.st.Pending); err == nil || len(m.st.Pending) != 1 {
		t.Errorf("connection error: err %v, pending %d; want an error and the settlement kept", err, len(m.st.Pending))
	}
}
