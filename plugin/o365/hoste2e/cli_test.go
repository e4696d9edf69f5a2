package hoste2e_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin/o365/o365test"
)

// closedPort is a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// mediagwTest runs `mediagw test -c CONFIG mailbox` and returns its output
// and exit code.
func mediagwTest(t *testing.T, s *site) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "mediagw"), "test", "-c", s.cfg, "mailbox")
	cmd.Env = append(cmd.Environ(), s.env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("mediagw test: %v\n%s", err, out)
	return "", 0
}

// TestCLITestCategories: `mediagw test` against real failures prints the
// category and the fix, and exits 0 only for ok.
func TestCLITestCategories(t *testing.T) {
	p := startPeers(t)
	p.create(t, "Fax")
	cases := []struct {
		name     string
		edit     func(c map[string]any)
		fault    o365test.Fault
		category string
		hint     string // part of the one-line fix
		restart  bool   // Dovecot refused a login: forget its penalty afterwards
	}{
		{"ok", nil, o365test.FaultNone, "ok", "Settings work.", false},
		{"secret id instead of value", func(c map[string]any) { c["client_secret"] = p.id.SecretID }, o365test.FaultNone,
			"invalid_credential", "not its Secret ID", false},
		{"expired secret", nil, o365test.FaultExpiredSecret, "invalid_credential", "The client secret has expired", false},
		{"closed IMAP port", func(c map[string]any) { c["imap_port"] = closedPort(t) }, o365test.FaultNone,
			"unreachable", "Cannot reach the IMAP server 127.0.0.1:", false},
		{"identity platform down", func(c map[string]any) { c["authority_host"] = "127.0.0.1:" + strconv.Itoa(closedPort(t)) }, o365test.FaultNone,
			"unreachable", "Cannot reach the identity platform", false},
		{"folder missing", func(c map[string]any) { c["folder"] = "No Such Folder" }, o365test.FaultNone,
			"mailbox_not_found", `has no folder "No Such Folder"`, false},
		{"token for another mailbox", func(c map[string]any) { c["email_user"] = "someone.else@example.com" }, o365test.FaultNone,
			"permission_denied", "Add-MailboxPermission -Identity someone.else@example.com", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, p, "Fax", nil, tc.edit)
			p.id.SetFault(tc.fault)
			defer p.id.SetFault(o365test.FaultNone)
			if tc.restart {
				defer func() {
					if err := p.dc.Restart(); err != nil {
						t.Fatal(err)
					}
				}()
			}
			out, code := mediagwTest(t, s)
			// Log lines (a warning about the config, say) may come first.
			var verdict []string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "mailbox: ") {
					verdict = append(verdict, l)
				}
			}
			if len(verdict) != 1 || verdict[0] != "mailbox: "+tc.category {
				t.Errorf("verdict %q, want %q; output:\n%s", verdict, "mailbox: "+tc.category, out)
			}
			if !strings.Contains(out, "fix:") || !strings.Contains(out, tc.hint) {
				t.Errorf("output lacks the fix %q:\n%s", tc.hint, out)
			}
			if want := map[bool]int{true: 0, false: 1}[tc.category == "ok"]; code != want {
				t.Errorf("exit code %d, want %d", code, want)
			}
			if strings.Contains(out, p.id.Secret) {
				t.Errorf("output shows the client secret:\n%s", out)
			}
		})
	}
}
