package imapbox

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin"
)

func TestBackoff(t *testing.T) {
	min, max := time.Second, 30*time.Second
	tests := []struct {
		attempt int
		ceil    time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {5, 16 * time.Second}, {6, 30 * time.Second}, {60, 30 * time.Second}}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := backoff(min, max, tt.attempt)
			if d < tt.ceil/2 || d > tt.ceil {
				t.Fatalf("attempt %d: %v outside [%v, %v]", tt.attempt, d, tt.ceil/2, tt.ceil)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Fatalf("attempt %d: only %d distinct delays: no jitter", tt.attempt, len(seen))
		}
	}
}

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
