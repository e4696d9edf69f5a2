package hoste2e_test

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/plugin/o365/o365test"
)

// TestCLITestSendPath: `mediagw test` prints the send path's verdict on its
// own line after the mailbox's, and exits non-zero when sending would fail.
func TestCLITestSendPath(t *testing.T) {
	p := startPeers(t)
	p.create(t, "Fax")
	x, err := o365test.StartExchangeSMTP(p.id)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	host, port, _ := net.SplitHostPort(x.Addr)
	portN, _ := strconv.Atoi(port)
	smtp := func(c map[string]any) {
		c["send_via"] = "smtp"
		c["smtp_host"] = host
		c["smtp_port"] = portN
	}
	cases := []struct {
		name         string
		authDisabled bool
		send         string
		hint         string
		code         int
	}{
		{"smtp auth works", false, "ok", "Reports can be sent.", 0},
		{"smtp auth disabled", true, "smtp_auth_disabled", "Set-CASMailbox -Identity " + p.id.Mailbox + " -SmtpClientAuthenticationDisabled $false", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x.SetAuthDisabled(tc.authDisabled)
			s := newSite(t, p, "Fax", nil, smtp)
			out, code := mediagwTest(t, s)
			if !strings.Contains(out, "mailbox: ok\n") {
				t.Errorf("the mailbox line is missing:\n%s", out)
			}
			if !strings.Contains(out, "mailbox (send): "+tc.send+"\n") || !strings.Contains(out, tc.hint) {
				t.Errorf("want the send line %q with %q:\n%s", tc.send, tc.hint, out)
			}
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
		})
	}
}
