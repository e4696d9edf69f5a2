package o365_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/plugintest"
)

// startSubmissionPeers is startPeers with Dovecot's submission service
// (dovecot-submissiond) beside IMAP, relaying into the recipients' INBOXes.
func startSubmissionPeers(t testing.TB) *peers {
	t.Helper()
	testenv.LookPath(t, "dovecot")
	testenv.LookPath(t, "doveadm")
	if _, err := os.Stat("/usr/lib/dovecot/submission"); err != nil {
		testenv.Skip(t, "dovecot-submissiond is not installed")
	}
	id, err := o365test.StartIdentity(o365test.IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = id.Close() })
	dir := t.TempDir()
	dc, err := o365test.StartDovecot(o365test.DovecotOptions{Dir: filepath.Join(dir, "dovecot"), Identity: id, Submission: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dc.Close()
		if t.Failed() {
			t.Log(dc.Log())
		}
	})
	ca, err := id.CA.WriteFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &peers{id: id, dc: dc, caFile: ca}
}

// smtpConfig sends by SMTP to addr (Dovecot submission or the Exchange stand-in).
func (p *peers) smtpConfig(t testing.TB, addr string) map[string]any {
	cfg := p.config(t)
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	cfg["send_via"] = "smtp"
	cfg["smtp_host"] = host
	cfg["smtp_port"] = n
	return cfg
}

func reportMessage(key string) []byte {
	return []byte("From: Fax Gateway <fax@example.com>\r\n" +
		"To: Sender <sender@example.org>\r\n" +
		"Subject: Fax to +1 555 0100 delivered (" + key + ")\r\n" +
		"Message-ID: <report-" + key + "@mediagw>\r\n" +
		"Auto-Submitted: auto-replied\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" +
		"Your fax to +1 555 0100 was delivered: 3 pages in 1 min 12 s (" + key + ").\r\n")
}

// fetchInbox reads user's INBOX over IMAP and returns the raw messages.
func fetchInbox(t testing.TB, p *peers, user string) [][]byte {
	t.Helper()
	c, err := p.dc.Dial(user, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var all imap.SeqSet
	all.AddRange(1, 0) // 1:*
	msgs, err := c.Fetch(all, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		return nil // an empty mailbox
	}
	var out [][]byte
	for _, m := range msgs {
		for _, b := range m.BodySection {
			out = append(out, b.Bytes)
		}
	}
	return out
}

// TestSendThroughDovecotSubmission sends a report through the real plugin
// binary to Dovecot's submission service (STARTTLS, AUTH XOAUTH2 checked by
// the oauth2 passdb), which relays it; the test reads it back over IMAP.
func TestSendThroughDovecotSubmission(t *testing.T) {
	testenv.Short(t)
	p := startSubmissionPeers(t)
	bin := plugintest.BuildPlugin(t, "github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
	proc := startPlugin(t, bin, p.smtpConfig(t, p.dc.SubmissionAddr))
	if !plugin.Sends(t.Context(), proc) {
		t.Fatal("send_via smtp: the capabilities do not list send")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := proc.Test(ctx)
	if r.Category != plugin.TestOK || r.Send == nil || r.Send.Category != plugin.TestOK {
		t.Fatalf("Test: %+v send %+v", r, r.Send)
	}
	if !strings.Contains(r.Send.Detail, "AUTH XOAUTH2 as "+p.id.Mailbox) {
		t.Errorf("send detail %q", r.Send.Detail)
	}
	raw := reportMessage("dovecot")
	res, err := proc.Send(ctx, &plugin.OutgoingMessage{To: []string{"sender@example.org"}, Raw: raw})
	if err != nil {
		t.Fatal(err)
	}
	if res.MessageID == "" {
		t.Error("no message id")
	}
	var got []byte
	testenv.Eventually(t, 30*time.Second, "the report in sender@example.org's INBOX", func() bool {
		for _, m := range fetchInbox(t, p, "sender@example.org") {
			if strings.Contains(string(m), "<report-dovecot@mediagw>") {
				got = m
			}
		}
		return got != nil
	})
	s := string(got)
	for _, want := range []string{
		"Subject: Fax to +1 555 0100 delivered (dovecot)",
		"Auto-Submitted: auto-replied",
		"From: Fax Gateway <fax@example.com>",
		"Your fax to +1 555 0100 was delivered: 3 pages in 1 min 12 s (dovecot).",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the message read back lacks %q:\n%s", want, s)
		}
	}
}

// TestSendTokenForAnotherMailbox: with send_as naming a mailbox the token
// does not hold, Dovecot refuses the login, and both Test and Send say
// invalid_credential.
func TestSendTokenForAnotherMailbox(t *testing.T) {
	testenv.Short(t)
	p := startSubmissionPeers(t)
	cfg := p.smtpConfig(t, p.dc.SubmissionAddr)
	cfg["send_as"] = "someone.else@example.com"
	c := configure(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := c.Test(ctx)
	if r.Category != plugin.TestOK {
		t.Errorf("read path: %+v", r)
	}
	if r.Send == nil || r.Send.Category != plugin.TestInvalidCredential || !strings.Contains(r.Send.Hint, "SMTP.SendAsApp") {
		t.Fatalf("send path: %+v", r.Send)
	}
	_, err := c.(plugin.Sender).Send(ctx, &plugin.OutgoingMessage{To: []string{"sender@example.org"}, Raw: reportMessage("refused")})
	var sf *plugin.SendFailure
	if !errors.As(err, &sf) || sf.Category != plugin.SendInvalidCredential || sf.Temporary {
		t.Fatalf("Send: %v", err)
	}
	if !strings.Contains(p.dc.Log(), "did not match") && !strings.Contains(p.dc.Log(), "someone.else@example.com") {
		t.Logf("dovecot log:\n%s", p.dc.Log())
	}
}

// TestSendExchangeAnswers: the Exchange Online stand-in's refusals map to
// their categories and fixes.
func TestSendExchangeAnswers(t *testing.T) {
	p := &peers{}
	id, err := o365test.StartIdentity(o365test.IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer id.Close()
	x, err := o365test.StartExchangeSMTP(id)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	ca, err := id.CA.WriteFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p.id, p.caFile = id, ca
	p.dc = &o365test.Dovecot{Addr: "127.0.0.1:1"} // not used: only the send path is tested
	tests := []struct {
		name         string
		authDisabled bool
		sendAsDenied bool
		from         string
		wantTest     plugin.TestCategory
		want         plugin.SendCategory
		hint         string
	}{
		{name: "smtp auth disabled", authDisabled: true, wantTest: plugin.TestSMTPAuthDisabled, want: plugin.SendAuthDisabled,
			hint: "Set-CASMailbox -Identity " + id.Mailbox + " -SmtpClientAuthenticationDisabled $false"},
		{name: "send as denied", sendAsDenied: true, wantTest: plugin.TestOK, want: plugin.SendPermissionDenied, hint: "SMTP.SendAsApp"},
		{name: "another sender 5.7.60", from: "boss@example.com", wantTest: plugin.TestOK, want: plugin.SendPermissionDenied, hint: "Add-MailboxPermission"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x.SetAuthDisabled(tt.authDisabled)
			x.SetSendAsDenied(tt.sendAsDenied)
			cfg := p.smtpConfig(t, x.Addr)
			c := configure(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r := c.Test(ctx)
			if r.Send == nil || r.Send.Category != tt.wantTest {
				t.Fatalf("Test send path: %+v", r.Send)
			}
			if tt.wantTest != plugin.TestOK && !strings.Contains(r.Send.Hint, tt.hint) {
				t.Errorf("Test hint %q lacks %q", r.Send.Hint, tt.hint)
			}
			_, err := c.(plugin.Sender).Send(ctx, &plugin.OutgoingMessage{From: tt.from, To: []string{"sender@example.org"}, Raw: reportMessage(tt.name)})
			var sf *plugin.SendFailure
			if !errors.As(err, &sf) || sf.Category != tt.want || sf.Temporary {
				t.Fatalf("Send: %v, want %s", err, tt.want)
			}
			if !strings.Contains(sf.Hint, tt.hint) {
				t.Errorf("hint %q lacks %q", sf.Hint, tt.hint)
			}
		})
	}
}

// TestSendViaGraph: send_via graph on the Graph stand-in: 202 and 403.
func TestSendViaGraph(t *testing.T) {
	p := startGraphPeers(t)
	cfg := p.config()
	cfg["send_via"] = "graph"
	c := configure(t, cfg)
	if !plugin.Sends(t.Context(), c) {
		t.Fatal("send_via graph does not advertise send")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r := c.Test(ctx); r.Send == nil || r.Send.Category != plugin.TestOK || !strings.Contains(r.Send.Detail, "Mail.Send") {
		t.Fatalf("Test: %+v send %+v", r, r.Send)
	}
	res, err := c.(plugin.Sender).Send(ctx, &plugin.OutgoingMessage{To: []string{"sender@example.org"}, Raw: reportMessage("graph")})
	if err != nil {
		t.Fatal(err)
	}
	if res.MessageID != "<report-graph@mediagw>" {
		t.Errorf("MessageID %q", res.MessageID)
	}
	if sent := p.g.Sent(); len(sent) != 1 || sent[0].User != p.id.Mailbox || !strings.Contains(string(sent[0].Raw), "(graph)") {
		t.Fatalf("Graph took %+v", sent)
	}

	p.id.SetRoles([]string{"Mail.ReadWrite"}) // Mail.Send not granted
	c = configure(t, cfg)                     // a fresh token
	r := c.Test(ctx)
	if r.Send == nil || r.Send.Category != plugin.TestPermissionDenied || !strings.Contains(r.Send.Hint, "Mail.Send") {
		t.Fatalf("Test without Mail.Send: %+v", r.Send)
	}
	_, err = c.(plugin.Sender).Send(ctx, &plugin.OutgoingMessage{To: []string{"sender@example.org"}, Raw: reportMessage("graph403")})
	var sf *plugin.SendFailure
	if !errors.As(err, &sf) || sf.Category != plugin.SendPermissionDenied || !strings.Contains(sf.Hint, "Mail.Send") {
		t.Fatalf("Send without Mail.Send: %v", err)
	}
}

func TestSendViaNone(t *testing.T) {
	p := startGraphPeers(t)
	cfg := p.config() // send_via none
	c := configure(t, cfg)
	if plugin.Sends(t.Context(), c) {
		t.Fatal("send_via none advertises send")
	}
	_, err := c.(plugin.Sender).Send(context.Background(), &plugin.OutgoingMessage{To: []string{"a@b.c"}, Raw: reportMessage("none")})
	var sf *plugin.SendFailure
	if !errors.As(err, &sf) || sf.Category != plugin.SendNotConfigured {
		t.Fatalf("Send: %v", err)
	}
}

// Send forwards to the plugin's Send over gRPC.
func (p *pluginProc) Send(ctx context.Context, m *plugin.OutgoingMessage) (plugin.SendResult, error) {
	return p.Connector.(plugin.Sender).Send(ctx, m)
}

// TestSendThroughProxy: the proxy setting applies to SMTP submission (a
// CONNECT tunnel to the submission port) and to Graph sendMail.
func TestSendThroughProxy(t *testing.T) {
	testenv.Short(t)
	t.Run("smtp", func(t *testing.T) {
		p := startSubmissionPeers(t)
		proxy := startConnectProxy(t)
		cfg := p.smtpConfig(t, p.dc.SubmissionAddr)
		cfg["proxy"] = "http://" + proxy.addr
		c := configure(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := c.(plugin.Sender).Send(ctx, &plugin.OutgoingMessage{To: []string{"sender@example.org"}, Raw: reportMessage("proxy")}); err != nil {
			t.Fatal(err)
		}
		proxy.mu.Lock()
		defer proxy.mu.Unlock()
		if proxy.targets[p.dc.SubmissionAddr] == 0 || proxy.targets[p.id.Host] == 0 {
			t.Fatalf("tunnels %v: want the submission server %s and the token endpoint %s", proxy.targets, p.dc.SubmissionAddr, p.id.Host)
		}
	})
	t.Run("graph", func(t *testing.T) {
		p := startGraphPeers(t)
		proxy := startConnectProxy(t)
		cfg := p.config()
		cfg["send_via"] = "graph"
		cfg["proxy"] = "http://" + proxy.addr
		c := configure(t, cfg)
		if _, err := c.(plugin.Sender).Send(context.Background(), &plugin.OutgoingMessage{To: []string{"sender@example.org"}, Raw: reportMessage("proxy")}); err != nil {
			t.Fatal(err)
		}
		proxy.mu.Lock()
		defer proxy.mu.Unlock()
		if graphHost := strings.TrimPrefix(p.g.URL, "https://"); proxy.targets[graphHost] == 0 {
			t.Fatalf("tunnels %v: want Graph %s", proxy.targets, graphHost)
		}
	})
}
