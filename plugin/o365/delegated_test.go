package o365_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/plugintest"
)

// TestDelegatedEndToEnd: auth: delegated, signed in with the device code
// through the plugin binary's login mode, then the plugin reads by IMAP and
// sends by SMTP with the user's tokens, both checked by Dovecot; a dead
// refresh token makes Test say what to do.
func TestDelegatedEndToEnd(t *testing.T) {
	testenv.Short(t)
	p := startSubmissionPeers(t)
	// Every token call refreshes (MSAL renews tokens that end within 5 min).
	p.id.SetTokenLifetime(20 * time.Second)
	bin := plugintest.BuildPlugin(t, "github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
	cfg := p.smtpConfig(t, p.dc.SubmissionAddr)
	delete(cfg, "client_secret")
	cfg["auth"] = "delegated"
	stateDir := cfg["state_dir"].(string)
	raw, _ := json.Marshal(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Before any sign-in.
	c := configure(t, cfg)
	if r := c.Test(ctx); r.Category != plugin.TestInteractionRequired || !strings.Contains(r.Hint, "mediagw login") {
		t.Fatalf("Test before login: %+v", r)
	}

	// The sign-in, as `mediagw login` runs it: the plugin in login mode,
	// the settings on stdin.
	p.id.SetDeviceAnswers(o365test.DevicePending, o365test.DeviceSlowDown, o365test.DevicePending)
	login := exec.CommandContext(ctx, bin, plugin.LoginCommand)
	login.Stdin = bytes.NewReader(raw)
	var out, errOut bytes.Buffer
	login.Stdout, login.Stderr = &out, &errOut
	if err := login.Run(); err != nil {
		t.Fatalf("login: %v\n%s%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"/devicelogin", "enter the code", "Signed in as " + p.id.Mailbox} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("login output lacks %q:\n%s", want, out.String())
		}
	}
	if p.id.DevicePolls() < 4 {
		t.Errorf("%d device polls, want at least 4 (pending, slow_down, pending, approved)", p.id.DevicePolls())
	}
	st, err := os.Stat(o365.TokenCacheFile(stateDir))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("token cache mode %v, want 0600", st.Mode().Perm())
	}
	for _, tok := range p.id.IssuedTokens() {
		if strings.Contains(out.String()+errOut.String(), tok) {
			t.Fatal("the login printed a token")
		}
	}

	// The plugin reads and sends as the user.
	proc := startPlugin(t, bin, cfg)
	r := proc.Test(ctx)
	if r.Category != plugin.TestOK || r.Send == nil || r.Send.Category != plugin.TestOK {
		t.Fatalf("Test after login: %+v send %+v", r, r.Send)
	}
	if _, err := p.dc.Append(ctx, p.id.Mailbox, "INBOX", o365test.Message(1)); err != nil {
		t.Fatal(err)
	}
	m, err := proc.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Settle(ctx, m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
		t.Fatal(err)
	}
	if _, err := proc.Send(ctx, &plugin.OutgoingMessage{To: []string{"sender@example.org"}, Raw: reportMessage("delegated")}); err != nil {
		t.Fatal(err)
	}
	found := false
	for deadline := time.Now().Add(30 * time.Second); !found && time.Now().Before(deadline); {
		for _, m := range fetchInbox(t, p, "sender@example.org") {
			found = found || strings.Contains(string(m), "<report-delegated@mediagw>")
		}
		if !found {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !found {
		t.Fatal("the report sent with the user's token did not arrive")
	}

	// The refresh token dies.
	for _, tc := range []struct {
		aadsts int
		want   plugin.TestCategory
	}{{700082, plugin.TestInteractionRequired}, {50076, plugin.TestInteractionRequired}, {65001, plugin.TestConsentRequired}} {
		p.id.SetRefreshFault(tc.aadsts)
		// A new connector refreshes at once: the tokens live 20 s, and MSAL
		// renews a token within 5 min of its end.
		r := configure(t, cfg).Test(ctx)
		if r.Category != tc.want || !strings.Contains(r.Hint, "mediagw login") {
			t.Errorf("AADSTS%d: Test = %+v, want %s naming mediagw login", tc.aadsts, r, tc.want)
		}
	}
	p.id.SetRefreshFault(0)
}
