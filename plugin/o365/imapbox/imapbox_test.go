package imapbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/imapbox"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/o365/token"
	"github.com/mediagw/mediagw/secret"
)

type env struct {
	id *o365test.Identity
	dc *o365test.Dovecot
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testenv.LookPath(t, "dovecot")
	id, err := o365test.StartIdentity(o365test.IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = id.Close() })
	dc, err := o365test.StartDovecot(o365test.DovecotOptions{Dir: t.TempDir(), Identity: id, Folders: []string{"Processed"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dc.Close()
		if t.Failed() {
			t.Log(dc.Log())
		}
	})
	return &env{id: id, dc: dc}
}

func (e *env) options(t *testing.T, mod func(*imapbox.Options)) imapbox.Options {
	src, err := token.New(token.Config{
		AuthorityHost: e.id.Host, TenantID: e.id.TenantID, ClientID: e.id.ClientID,
		ClientSecret: secret.New(e.id.Secret), HTTPClient: e.id.CA.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	o := imapbox.Options{
		Addr: e.dc.Addr, User: e.id.Mailbox, TLSConfig: e.dc.TLSConfig(), Token: src.Token,
		Idle: true, PollInterval: time.Hour, FailedFolder: "Failed",
		BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&o)
	}
	return o
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(b)))
	return len(b), nil
}

func open(t *testing.T, o imapbox.Options) *imapbox.Mailbox {
	t.Helper()
	mb, err := imapbox.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mb.Close() })
	return mb
}

func read(t *testing.T, mb *imapbox.Mailbox, d time.Duration) *plugin.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	msg, err := mb.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return msg
}

func expectNothing(t *testing.T, mb *imapbox.Mailbox, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if msg, err := mb.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read = %v, %v; want nothing", msg, err)
	}
}

func flush(t *testing.T, mb *imapbox.Mailbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := mb.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// folderState lists UIDs and whether each is \Seen.
func (e *env) folderState(t *testing.T, folder string) map[imap.UID]bool {
	t.Helper()
	c, err := e.dc.Dial(e.id.Mailbox, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("select %s: %v", folder, err)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	out := map[imap.UID]bool{}
	uids := data.AllUIDs()
	if len(uids) == 0 {
		return out
	}
	msgs, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		seen := false
		for _, f := range m.Flags {
			seen = seen || f == imap.FlagSeen
		}
		out[m.UID] = seen
	}
	return out
}

func TestAfterProcessing(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		action imapbox.Action
		check  func(t *testing.T, folder string, uids []imap.UID)
	}{
		{"seen", imapbox.Action{Kind: imapbox.ActionSeen}, func(t *testing.T, folder string, uids []imap.UID) {
			st := e.folderState(t, folder)
			for _, u := range uids {
				if seen, ok := st[u]; !ok || !seen {
					t.Errorf("uid %d: present=%v seen=%v, want seen", u, ok, seen)
				}
			}
		}},
		{"move", imapbox.Action{Kind: imapbox.ActionMove, Folder: "Archive/Faxed"}, func(t *testing.T, folder string, uids []imap.UID) {
			if st := e.folderState(t, folder); len(st) != 0 {
				t.Errorf("INBOX still holds %v", st)
			}
			st := e.folderState(t, "Archive/Faxed")
			if len(st) != len(uids) {
				t.Errorf("Archive/Faxed holds %d, want %d", len(st), len(uids))
			}
			for u, seen := range st {
				if !seen {
					t.Errorf("moved uid %d is not \\Seen", u)
				}
			}
		}},
		{"delete", imapbox.Action{Kind: imapbox.ActionDelete}, func(t *testing.T, folder string, uids []imap.UID) {
			if st := e.folderState(t, folder); len(st) != 0 {
				t.Errorf("INBOX still holds %v", st)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := [][]byte{o365test.Message(i*10 + 1), o365test.Message(i*10 + 2), o365test.Message(i*10 + 3)}
			folder := "Test-" + tt.name
			if err := e.dc.Create(e.id.Mailbox, folder); err != nil {
				t.Fatal(err)
			}
			uids, err := e.dc.Append(context.Background(), e.id.Mailbox, folder, msgs...)
			if err != nil {
				t.Fatal(err)
			}
			mb := open(t, e.options(t, func(o *imapbox.Options) { o.AfterProcessing = tt.action; o.Folder = folder }))
			seen := map[string]bool{}
			var ids []string
			for range msgs {
				m := read(t, mb, 10*time.Second)
				if seen[m.SourceID] {
					t.Fatalf("%s offered twice", m.SourceID)
				}
				seen[m.SourceID] = true
				ids = append(ids, m.DeliveryID)
				if m.Metadata["folder"] != folder || m.Metadata["uidvalidity"] == "" {
					t.Fatalf("metadata %v", m.Metadata)
				}
				want := fmt.Sprintf("imap:%s:%s", m.Metadata["uidvalidity"], m.Metadata["uid"])
				if m.SourceID != want {
					t.Fatalf("SourceID %q, want %q", m.SourceID, want)
				}
				if !bytes.Contains(m.Raw, []byte("Content-Disposition: attachment")) {
					t.Fatalf("raw message incomplete: %q", m.Raw)
				}
			}
			// Nothing changed on the server before the settlement.
			if st := e.folderState(t, folder); len(st) != len(uids) || st[uids[0]] {
				t.Fatalf("INBOX before settlement: %v", st)
			}
			expectNothing(t, mb, 300*time.Millisecond)
			for _, id := range ids {
				if err := mb.Settle(context.Background(), id, plugin.Settlement{Kind: plugin.Ack}); err != nil {
					t.Fatal(err)
				}
				// Idempotent.
				if err := mb.Settle(context.Background(), id, plugin.Settlement{Kind: plugin.Reject}); err != nil {
					t.Fatal(err)
				}
			}
			flush(t, mb)
			tt.check(t, folder, uids)
			expectNothing(t, mb, 300*time.Millisecond)
			if err := mb.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := mb.Read(context.Background()); !errors.Is(err, plugin.ErrClosed) {
				t.Fatalf("Read after Close: %v", err)
			}
		})
	}
}

func TestRejectRetryAndOversize(t *testing.T) {
	e := newEnv(t)
	big := append(o365test.Message(99), bytes.Repeat([]byte("x"), 4096)...)
	uids, err := e.dc.Append(context.Background(), e.id.Mailbox, "INBOX", o365test.Message(1), o365test.Message(2), big)
	if err != nil {
		t.Fatal(err)
	}
	mb := open(t, e.options(t, func(o *imapbox.Options) { o.MaxMessageSize = 2048; o.FailedFolder = "Fax Failed" }))
	a, b := read(t, mb, 10*time.Second), read(t, mb, 10*time.Second)
	expectNothing(t, mb, 300*time.Millisecond) // the big one is not offered
	if err := mb.Settle(context.Background(), a.DeliveryID, plugin.Settlement{Kind: plugin.Reject, Reason: "no fax number"}); err != nil {
		t.Fatal(err)
	}
	if err := mb.Settle(context.Background(), b.DeliveryID, plugin.Settlement{Kind: plugin.Retry, RetryAfter: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	again := read(t, mb, 5*time.Second)
	if again.SourceID != b.SourceID || again.DeliveryID == b.DeliveryID {
		t.Fatalf("after retry got %s/%s, want %s with a new delivery id", again.SourceID, again.DeliveryID, b.SourceID)
	}
	if err := mb.Settle(context.Background(), again.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
		t.Fatal(err)
	}
	flush(t, mb)
	failed := e.folderState(t, "Fax Failed")
	if len(failed) != 2 {
		t.Fatalf("failed folder holds %v, want the rejected and the oversized message", failed)
	}
	inbox := e.folderState(t, "INBOX")
	if len(inbox) != 1 || !inbox[uids[1]] {
		t.Fatalf("INBOX %v, want only uid %d, seen", inbox, uids[1])
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	stateDir := t.TempDir()
	if _, err := e.dc.Append(context.Background(), e.id.Mailbox, "INBOX", o365test.Message(1), o365test.Message(2)); err != nil {
		t.Fatal(err)
	}
	opts := e.options(t, func(o *imapbox.Options) {
		o.StatePath = imapbox.StateFile(stateDir, o.User, o.Folder)
	})
	mb := open(t, opts)
	a := read(t, mb, 10*time.Second)
	b := read(t, mb, 10*time.Second)
	// Stop the server first so the ack cannot be applied before the restart.
	if err := e.dc.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := mb.Settle(ctx, a.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Settle with the server down = %v, want a deadline error", err)
	}
	if err := mb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.dc.Start(); err != nil {
		t.Fatal(err)
	}
	mb2 := open(t, opts)
	got := read(t, mb2, 10*time.Second)
	if got.SourceID != b.SourceID {
		t.Fatalf("after restart got %s, want only the unsettled %s", got.SourceID, b.SourceID)
	}
	expectNothing(t, mb2, 300*time.Millisecond)
	flush(t, mb2)
	st := e.folderState(t, "INBOX")
	seen := 0
	for _, s := range st {
		if s {
			seen++
		}
	}
	if seen != 1 {
		t.Fatalf("INBOX %v: want the acked message seen", st)
	}
}

func TestIdlePush(t *testing.T) {
	e := newEnv(t)
	mb := open(t, e.options(t, nil)) // poll interval 1h: only IDLE can deliver
	expectNothing(t, mb, 500*time.Millisecond)
	start := time.Now()
	if _, err := e.dc.Append(context.Background(), e.id.Mailbox, "INBOX", o365test.Message(7)); err != nil {
		t.Fatal(err)
	}
	m := read(t, mb, 10*time.Second)
	if !bytes.Contains(m.Raw, []byte("Subject: fax 7")) {
		t.Fatalf("got %q", m.Raw)
	}
	t.Logf("APPEND to Read: %v", time.Since(start))
}

// TestRefusedCachedToken: after a signing key rollover the server refuses
// the token MSAL still caches as valid; the mailbox drops the cache and
// logs in with a new token.
func TestRefusedCachedToken(t *testing.T) {
	e := newEnv(t)
	src, err := token.New(token.Config{
		AuthorityHost: e.id.Host, TenantID: e.id.TenantID, ClientID: e.id.ClientID,
		ClientSecret: secret.New(e.id.Secret), HTTPClient: e.id.CA.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	mb := open(t, e.options(t, func(o *imapbox.Options) { o.Token, o.InvalidateToken = src.Token, src.Invalidate }))
	if _, err := e.dc.Append(context.Background(), e.id.Mailbox, "INBOX", o365test.Message(1)); err != nil {
		t.Fatal(err)
	}
	m := read(t, mb, 10*time.Second)
	if err := mb.Settle(context.Background(), m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
		t.Fatal(err)
	}
	before := e.id.TokensIssued()
	if err := e.id.RotateKey(); err != nil {
		t.Fatal(err)
	}
	if err := e.dc.InstallKeys(); err != nil {
		t.Fatal(err)
	}
	// Dovecot keeps validation keys in memory: restart it to drop the old one.
	if err := e.dc.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dc.Append(context.Background(), e.id.Mailbox, "INBOX", o365test.Message(2)); err != nil {
		t.Fatal(err)
	}
	m = read(t, mb, 30*time.Second)
	if !bytes.Contains(m.Raw, []byte("Subject: fax 2")) {
		t.Fatalf("got %q", m.Raw)
	}
	if e.id.TokensIssued() <= before {
		t.Fatal("no new token after the refusal")
	}
}

// The reason of a rejected mail is on disk before the mail moves to the
// failed folder, so a crash between the two cannot leave a moved mail
// without its reason.
func TestRejectReasonWrittenBeforeMove(t *testing.T) {
	e := newEnv(t)
	if _, err := e.dc.Append(context.Background(), e.id.Mailbox, "INBOX", o365test.Message(1)); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "rejected.jsonl")
	var mu sync.Mutex
	var atMove []imapbox.RejectRecord
	moved := false
	imapbox.SetBeforeMove(func(folder string) {
		if folder != "Failed" {
			return
		}
		recs, err := imapbox.ReadRejectLog(logPath)
		if err != nil {
			t.Errorf("reject log at the MOVE: %v", err)
		}
		mu.Lock()
		atMove, moved = recs, true
		mu.Unlock()
	})
	t.Cleanup(func() { imapbox.SetBeforeMove(nil) })
	mb := open(t, e.options(t, func(o *imapbox.Options) { o.RejectLogPath = logPath }))
	m := read(t, mb, 10*time.Second)
	if err := mb.Settle(context.Background(), m.DeliveryID, plugin.Settlement{Kind: plugin.Reject, Reason: "no fax number"}); err != nil {
		t.Fatal(err)
	}
	flush(t, mb)
	mu.Lock()
	defer mu.Unlock()
	if !moved {
		t.Fatal("the rejected mail was never moved to the failed folder")
	}
	if len(atMove) != 1 || atMove[0].SourceID != m.SourceID || atMove[0].Reason != "no fax number" {
		t.Errorf("reject log when the MOVE was sent: %+v, want the reason for %s", atMove, m.SourceID)
	}
	if failed := e.folderState(t, "Failed"); len(failed) != 1 {
		t.Errorf("failed folder holds %v, want the rejected mail", failed)
	}
	if recs, _ := imapbox.ReadRejectLog(logPath); len(recs) != 1 {
		t.Errorf("reject log holds %d entries after the move, want 1", len(recs))
	}
}
