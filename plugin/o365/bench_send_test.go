package o365_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/xoauth2"
	"github.com/mediagw/mediagw/plugin/plugintest"
)

// report20K is a 20 KB report: headers, a text part and a small base64
// attachment, like a delivery report with its PDF.
func report20K(i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: fax@example.com\r\nTo: sender@example.org\r\nSubject: Fax delivered (%d)\r\nMessage-ID: <bench-%d@mediagw>\r\n"+
		"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour fax was delivered: 3 pages.\r\n"+
		"--b\r\nContent-Type: application/pdf; name=pages.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n", i, i)
	for b.Len() < 20<<10 {
		b.WriteString("JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YKJVBERi0xLjQK\r\n")
	}
	b.WriteString("--b--\r\n")
	return b.Bytes()
}

// BenchmarkSendSubmission: one 20 KB message submitted to Dovecot's
// submission service (STARTTLS, AUTH XOAUTH2, relayed into the recipient's
// INBOX), through the plugin binary's Send ("plugin"), and by a bare go-smtp
// client doing the same steps on a new connection ("bare-go-smtp", the floor).
func BenchmarkSendSubmission(b *testing.B) {
	p := startSubmissionPeers(b)
	bin := plugintest.BuildPlugin(b, "github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
	proc := startPlugin(b, bin, p.smtpConfig(b, p.dc.SubmissionAddr))
	seq := 0
	b.Run("plugin", func(b *testing.B) {
		ds := make([]time.Duration, 0, b.N)
		for b.Loop() {
			seq++
			raw := report20K(seq)
			t0 := time.Now()
			if _, err := proc.Send(context.Background(), &plugin.OutgoingMessage{To: []string{"sender@example.org"}, Raw: raw}); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(t0))
		}
		reportLatency(b, ds)
	})
	b.Run("bare-go-smtp", func(b *testing.B) {
		tok, err := p.id.Mint(p.id.Mailbox, "https://outlook.office.com", time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		tlsConf := &tls.Config{RootCAs: p.id.CA.Pool, ServerName: "127.0.0.1"}
		ds := make([]time.Duration, 0, b.N)
		for b.Loop() {
			seq++
			raw := report20K(seq)
			t0 := time.Now()
			c, err := smtp.DialStartTLS(p.dc.SubmissionAddr, tlsConf)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Auth(xoauth2.NewSMTP(p.id.Mailbox, tok)); err != nil {
				b.Fatal(err)
			}
			if err := c.SendMail(p.id.Mailbox, []string{"sender@example.org"}, bytes.NewReader(raw)); err != nil {
				b.Fatal(err)
			}
			_ = c.Quit()
			ds = append(ds, time.Since(t0))
		}
		reportLatency(b, ds)
	})
}
