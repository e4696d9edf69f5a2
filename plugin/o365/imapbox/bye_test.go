package imapbox_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/imapbox"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/o365/token"
	"github.com/mediagw/mediagw/secret"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
	t  *testing.T
}

func (w *syncBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(string(bytes.TrimSpace(p)))
	return w.b.Write(p)
}

func (w *syncBuf) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestByeAccessTokenExpired: Exchange Online ends a session whose token
// expired with "* BYE Session invalidated - AccessTokenExpired". A proxy in
// front of Dovecot sends exactly that to the idling mailbox. MSAL still holds
// the token as valid (it lives an hour), so the mailbox must drop the cache,
// and it must log in again at once, not after its backoff (30 s here).
func TestByeAccessTokenExpired(t *testing.T) {
	e := newEnv(t)
	proxy, err := o365test.StartIMAPProxy(e.dc.Addr, e.id.CA)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	src, err := token.New(token.Config{
		AuthorityHost: e.id.Host, TenantID: e.id.TenantID, ClientID: e.id.ClientID,
		ClientSecret: secret.New(e.id.Secret), HTTPClient: e.id.CA.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuf{t: t}
	mb := open(t, e.options(t, func(o *imapbox.Options) {
		o.Addr = proxy.Addr
		o.Token, o.InvalidateToken = src.Token, src.Invalidate
		o.BackoffMin, o.BackoffMax = 30*time.Second, time.Minute
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}))
	ctx := context.Background()
	acked := map[string]int{}
	readAck := func(n int) {
		t.Helper()
		for range n {
			m := read(t, mb, 10*time.Second)
			acked[m.SourceID]++
			if err := mb.Settle(ctx, m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := e.dc.Append(ctx, e.id.Mailbox, "INBOX", o365test.Message(1), o365test.Message(2), o365test.Message(3)); err != nil {
		t.Fatal(err)
	}
	readAck(3)
	expectNothing(t, mb, 300*time.Millisecond) // idling now

	first := proxy.Tokens()
	if len(first) != 1 {
		t.Fatalf("%d logins through the proxy, want 1", len(first))
	}
	// What MSAL hands out now: its cached token, the one the server is
	// about to call expired.
	cached, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cached.Value.Reveal() != first[0] {
		t.Fatal("MSAL did not return its cached token; the test would not show the cache being dropped")
	}
	issued := e.id.TokensIssued()

	start := time.Now()
	if n := proxy.Bye("Session invalidated - AccessTokenExpired"); n != 1 {
		t.Fatalf("BYE sent to %d sessions, want 1", n)
	}
	if _, err := e.dc.Append(ctx, e.id.Mailbox, "INBOX", o365test.Message(4), o365test.Message(5)); err != nil {
		t.Fatal(err)
	}
	readAck(2) // within 10 s: the 30 s backoff was not taken
	took := time.Since(start)
	flush(t, mb)

	tokens := proxy.Tokens()
	if len(tokens) != 2 {
		t.Fatalf("%d logins through the proxy, want 2", len(tokens))
	}
	if tokens[1] == tokens[0] {
		t.Error("logged in again with the expired token")
	}
	if e.id.TokensIssued() != issued+1 {
		t.Errorf("identity issued %d tokens after the BYE, want 1", e.id.TokensIssued()-issued)
	}
	if !strings.Contains(logs.String(), "access token expired; reconnecting with a fresh token") {
		t.Error("the log does not say why the session ended")
	}
	if strings.Contains(logs.String(), tokens[0]) || strings.Contains(logs.String(), tokens[1]) {
		t.Error("a token reached the log")
	}
	for id, n := range acked {
		if n != 1 {
			t.Errorf("%s acked %d times", id, n)
		}
	}
	st := e.folderState(t, "INBOX")
	if len(acked) != 5 || len(st) != 5 {
		t.Fatalf("%d acked, %d on the server; want 5", len(acked), len(st))
	}
	for uid, seen := range st {
		if !seen {
			t.Errorf("uid %d not \\Seen", uid)
		}
	}
	t.Logf("BYE AccessTokenExpired → new login and 2 messages in hand in %v", took.Round(time.Millisecond))
}
