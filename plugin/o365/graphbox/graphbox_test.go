package graphbox_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/graphbox"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/o365/token"
	"github.com/mediagw/mediagw/secret"
)

func setup(t *testing.T, mod func(*graphbox.Options)) (*o365test.Identity, *o365test.Graph, *graphbox.Mailbox) {
	t.Helper()
	id, err := o365test.StartIdentity(o365test.IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = id.Close() })
	g, err := o365test.StartGraph(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	src, err := token.New(token.Config{AuthorityHost: id.Host, TenantID: id.TenantID, ClientID: id.ClientID,
		ClientSecret: secret.New(id.Secret), Scope: token.ScopeGraph, HTTPClient: id.CA.Client()})
	if err != nil {
		t.Fatal(err)
	}
	o := graphbox.Options{Endpoint: g.URL, User: id.Mailbox, HTTPClient: id.CA.Client(), Token: src.Token,
		PollInterval: time.Hour, FailedFolder: "Fax Failed", DefaultRetryAfter: 300 * time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	mb, err := graphbox.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mb.Close() })
	return id, g, mb
}

func read(t *testing.T, mb *graphbox.Mailbox) *plugin.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := mb.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPagingAndAck(t *testing.T) {
	_, g, mb := setup(t, func(o *graphbox.Options) { o.PageSize = 100 })
	g.SetPageSize(10) // the server pages smaller than asked: nextLink
	for i := range 25 {
		g.Deliver("Inbox", o365test.Message(i))
	}
	seen := map[string]bool{}
	for range 25 {
		m := read(t, mb)
		if seen[m.SourceID] {
			t.Fatalf("%s twice", m.SourceID)
		}
		seen[m.SourceID] = true
		if err := mb.Settle(context.Background(), m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
			t.Fatal(err)
		}
	}
	if n := g.Requests("GET list"); n < 3 {
		t.Fatalf("%d list requests, want the nextLink followed", n)
	}
	for id, m := range g.Messages() {
		if !m.IsRead || m.Folder != "Inbox" {
			t.Errorf("%s: read=%v folder=%s", id, m.IsRead, m.Folder)
		}
	}
}

func TestRejectMoveRetry(t *testing.T) {
	_, g, mb := setup(t, func(o *graphbox.Options) {
		o.AfterProcessing = graphbox.Action{Kind: graphbox.ActionMove, Folder: "Faxed"}
	})
	g.Deliver("Inbox", o365test.Message(1))
	g.Deliver("Inbox", o365test.Message(2))
	a, b := read(t, mb), read(t, mb)
	if err := mb.Settle(context.Background(), a.DeliveryID, plugin.Settlement{Kind: plugin.Reject, Reason: "no fax number"}); err != nil {
		t.Fatal(err)
	}
	if err := mb.Settle(context.Background(), b.DeliveryID, plugin.Settlement{Kind: plugin.Retry, RetryAfter: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	again := read(t, mb)
	if again.SourceID != b.SourceID {
		t.Fatalf("after retry got %s, want %s", again.SourceID, b.SourceID)
	}
	if err := mb.Settle(context.Background(), again.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
		t.Fatal(err)
	}
	folders := map[string]int{}
	for _, m := range g.Messages() {
		folders[m.Folder]++
		if m.Folder == "Fax Failed" && m.Props[graphbox.ReasonProperty] != "no fax number" {
			t.Errorf("rejected message has reason %q", m.Props[graphbox.ReasonProperty])
		}
	}
	if folders["Fax Failed"] != 1 || folders["Faxed"] != 1 || folders["Inbox"] != 0 {
		t.Fatalf("folders %v", folders)
	}
}

func TestThrottling(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter string
		min        time.Duration
	}{
		{http.StatusTooManyRequests, "1", time.Second},
		{http.StatusTooManyRequests, "", 300 * time.Millisecond}, // default
		{http.StatusServiceUnavailable, "1", time.Second},
		{http.StatusServiceUnavailable, "", 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d retry-after %q", tt.status, tt.retryAfter), func(t *testing.T) {
			_, g, mb := setup(t, nil)
			g.Deliver("Inbox", o365test.Message(1))
			g.Throttle(tt.status, tt.retryAfter)
			start := time.Now()
			m := read(t, mb)
			if d := time.Since(start); d < tt.min {
				t.Fatalf("answered after %v; the throttle asked for %v", d, tt.min)
			}
			g.Throttle(tt.status, tt.retryAfter) // the ack is throttled too
			if err := mb.Settle(context.Background(), m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
				t.Fatal(err)
			}
			for _, m := range g.Messages() {
				if !m.IsRead {
					t.Fatal("ack not applied after throttling")
				}
			}
		})
	}
}

func TestProbeErrors(t *testing.T) {
	id, g, _ := setup(t, nil)
	src, _ := token.New(token.Config{AuthorityHost: id.Host, TenantID: id.TenantID, ClientID: id.ClientID,
		ClientSecret: secret.New(id.Secret), Scope: token.ScopeGraph, HTTPClient: id.CA.Client()})
	imapTok, _ := token.New(token.Config{AuthorityHost: id.Host, TenantID: id.TenantID, ClientID: id.ClientID,
		ClientSecret: secret.New(id.Secret), Scope: token.ScopeIMAP, HTTPClient: id.CA.Client()})
	tests := []struct {
		name   string
		user   string
		folder string
		tok    func(context.Context) (token.Token, error)
		want   error
	}{
		{"ok", id.Mailbox, "INBOX", src.Token, nil},
		{"other mailbox", "boss@example.com", "INBOX", src.Token, graphbox.ErrForbidden},
		{"missing folder", id.Mailbox, "Faxes", src.Token, graphbox.ErrNotFound},
		{"imap token", id.Mailbox, "INBOX", imapTok.Token, graphbox.ErrToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mb, _ := graphbox.New(graphbox.Options{Endpoint: g.URL, User: tt.user, Folder: tt.folder, HTTPClient: id.CA.Client(), Token: tt.tok})
			_, err := mb.Probe(context.Background())
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Fatalf("Probe = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	def := 7 * time.Second
	tests := []struct {
		h    string
		want time.Duration
	}{
		{"", def}, {"0", 0}, {"3", 3 * time.Second}, {"junk", def}, {"-4", def}, {"100000", 5 * time.Minute},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := graphbox.RetryAfter(tt.h, def); got != tt.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

func FuzzRetryAfter(f *testing.F) {
	f.Add("120")
	f.Add("Wed, 21 Oct 2015 07:28:00 GMT")
	f.Fuzz(func(t *testing.T, h string) {
		if d := graphbox.RetryAfter(h, time.Second); d < 0 || d > 5*time.Minute {
			t.Fatalf("RetryAfter(%q) = %v", h, d)
		}
	})
}
