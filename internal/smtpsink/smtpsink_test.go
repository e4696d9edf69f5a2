package smtpsink

import (
	"bytes"
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mediagw/mediagw/plugin/o365/xoauth2"
)

// TestXOAUTH2 drives the sink with go-smtp's client and the connector's
// XOAUTH2 client: a good token, a refused one (challenge, then 535 on the
// AUTH itself, not on the next command), and a token too long for the AUTH
// line (sent after an empty 334).
func TestXOAUTH2(t *testing.T) {
	srvTLS, pool, _, err := SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	sink, err := Start(Options{TLS: srvTLS, RequireAuth: true, XOAUTH2: func(user, tok string) error {
		if strings.HasPrefix(tok, "good") {
			return nil
		}
		return errors.New("bad token")
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	tests := []struct {
		name, token string
		ok          bool
	}{
		{"good", "good-token", true},
		{"refused", "expired-token", false},
		{"long", "good-" + strings.Repeat("x", 1200), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := smtp.DialStartTLS(sink.Addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Auth(xoauth2.NewSMTP("fax@example.com", tt.token))
			var se *smtp.SMTPError
			if !tt.ok {
				if !errors.As(err, &se) || se.Code != 535 {
					t.Fatalf("Auth = %v, want 535 from AUTH itself", err)
				}
				if err := c.Mail("fax@example.com", nil); err == nil || !errors.As(err, &se) || se.Code != 502 {
					t.Fatalf("MAIL after a refused AUTH: %v, want 502 (authenticate first)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SendMail("fax@example.com", []string{"a@example.org"}, bytes.NewReader([]byte("Subject: x\r\n\r\nbody\r\n"))); err != nil {
				t.Fatal(err)
			}
			msgs := sink.Messages()
			if m := msgs[len(msgs)-1]; m.User != "fax@example.com" || m.From != "fax@example.com" || !strings.HasPrefix(m.ID, "<") {
				t.Errorf("kept %+v", m)
			}
		})
	}
}
