package graphsend_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/graphsend"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/o365/token"
	"github.com/mediagw/mediagw/secret"
)

const report = "From: fax@example.com\r\nTo: sender@example.org\r\nSubject: Fax delivered\r\nMessage-ID: <r1@mediagw>\r\n\r\n3 pages sent.\r\n"

func TestSendOnGraphStandIn(t *testing.T) {
	id, err := o365test.StartIdentity(o365test.IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer id.Close()
	g, err := o365test.StartGraph(id)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	tests := []struct {
		name      string
		roles     []string
		user      string
		throttle  [][2]string // status, Retry-After
		to        []string
		wantWaits []time.Duration
		want      plugin.SendCategory // "" = sent
		temporary bool
	}{
		{name: "202", to: []string{"sender@example.org"}},
		{name: "envelope recipient not in headers goes to Bcc", to: []string{"sender@example.org", "audit@example.org"}},
		{name: "429 with Retry-After", throttle: [][2]string{{"429", "7"}}, to: []string{"sender@example.org"}, wantWaits: []time.Duration{7 * time.Second}},
		{name: "429 without Retry-After", throttle: [][2]string{{"429", ""}}, to: []string{"sender@example.org"}, wantWaits: []time.Duration{5 * time.Second}},
		{name: "503 then 429", throttle: [][2]string{{"503", "2"}, {"429", "1"}}, to: []string{"sender@example.org"}, wantWaits: []time.Duration{2 * time.Second, time.Second}},
		{name: "throttled past the retries", throttle: [][2]string{{"429", "1"}, {"429", "1"}, {"429", "1"}, {"429", "1"}}, to: []string{"sender@example.org"},
			wantWaits: []time.Duration{time.Second, time.Second, time.Second}, want: plugin.SendThrottled, temporary: true},
		{name: "403 without Mail.Send", roles: []string{"Mail.ReadWrite"}, to: []string{"sender@example.org"}, want: plugin.SendPermissionDenied},
		{name: "403 for another mailbox", user: "other@example.com", to: []string{"sender@example.org"}, want: plugin.SendPermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id.SetRoles(tt.roles)
			defer id.SetRoles(nil)
			for _, th := range tt.throttle {
				st := 429
				if th[0] == "503" {
					st = 503
				}
				g.Throttle(st, th[1])
			}
			user := id.Mailbox
			if tt.user != "" {
				user = tt.user
			}
			var waits []time.Duration
			before := len(g.Sent())
			s, err := graphsend.New(graphsend.Options{
				Endpoint:       g.URL,
				User:           user,
				HTTPClient:     id.CA.Client(),
				Token:          func(context.Context) (token.Token, error) { return mint(t, id) },
				Sleep:          func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil },
				PermissionHint: "grant Mail.Send",
			})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Send(context.Background(), tt.to, []byte(report))
			if !slices.Equal(waits, tt.wantWaits) {
				t.Errorf("waited %v, want %v", waits, tt.wantWaits)
			}
			if tt.want != "" {
				var sf *plugin.SendFailure
				if !errors.As(err, &sf) || sf.Category != tt.want || sf.Temporary != tt.temporary {
					t.Fatalf("err = %v, want %s (temporary %v)", err, tt.want, tt.temporary)
				}
				if tt.want == plugin.SendPermissionDenied && sf.Hint != "grant Mail.Send" {
					t.Errorf("hint %q", sf.Hint)
				}
				if len(g.Sent()) != before {
					t.Error("a refused message was sent")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.MessageID != "<r1@mediagw>" {
				t.Errorf("MessageID %q", res.MessageID)
			}
			sent := g.Sent()
			if len(sent) != before+1 {
				t.Fatalf("Graph took %d messages", len(sent)-before)
			}
			got := string(sent[len(sent)-1].Raw)
			if !strings.HasSuffix(got, report) || sent[len(sent)-1].User != user {
				t.Errorf("Graph got %q as %s", got, sent[len(sent)-1].User)
			}
			hasBcc := strings.HasPrefix(got, "Bcc: <audit@example.org>\r\n")
			if hasBcc != slices.Contains(tt.to, "audit@example.org") {
				t.Errorf("Bcc header: %q", got)
			}
		})
	}
}

func TestProbeReadsRoles(t *testing.T) {
	id, err := o365test.StartIdentity(o365test.IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer id.Close()
	s, err := graphsend.New(graphsend.Options{Endpoint: "https://graph.invalid", User: id.Mailbox,
		Token: func(context.Context) (token.Token, error) { return mint(t, id) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Probe(context.Background()); err != nil {
		t.Fatalf("Probe with Mail.Send: %v", err)
	}
	id.SetRoles([]string{"Mail.ReadWrite"})
	var sf *plugin.SendFailure
	if err := s.Probe(context.Background()); !errors.As(err, &sf) || sf.Category != plugin.SendPermissionDenied {
		t.Fatalf("Probe without Mail.Send: %v", err)
	}
}

func mint(t *testing.T, id *o365test.Identity) (token.Token, error) {
	tok, err := id.Mint(id.Mailbox, "https://graph.microsoft.com", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return token.Token{Value: secret.New(tok), ExpiresOn: time.Now().Add(time.Hour)}, nil
}
