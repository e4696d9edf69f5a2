package hoste2e_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLILogin: `mediagw login` signs a delegated connector in (device code
// on the identity stand-in), after which `mediagw test` logs in to Dovecot
// with the user's token; before it, test says interaction_required and
// names the login.
func TestCLILogin(t *testing.T) {
	p := startPeers(t)
	p.create(t, "Fax")
	s := newSite(t, p, "Fax", nil, func(c map[string]any) {
		c["auth"] = "delegated"
		delete(c, "client_secret")
	})
	out, code := mediagwTest(t, s)
	if code == 0 || !strings.Contains(out, "mailbox: interaction_required") || !strings.Contains(out, "run mediagw login") {
		t.Fatalf("before login (exit %d):\n%s", code, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "mediagw"), "login", "-c", s.cfg, "mailbox")
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	login := string(b)
	if err != nil || !strings.Contains(login, "enter the code") || !strings.Contains(login, "Signed in as "+p.id.Mailbox) {
		t.Fatalf("mediagw login: %v\n%s", err, login)
	}
	for _, tok := range p.id.IssuedTokens() {
		if strings.Contains(login, tok) {
			t.Fatal("mediagw login printed a token")
		}
	}
	out, code = mediagwTest(t, s)
	if code != 0 || !strings.Contains(out, "mailbox: ok") {
		t.Fatalf("after login (exit %d):\n%s", code, out)
	}
}
