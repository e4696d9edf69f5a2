package hoste2e_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/o365/xoauth2"
)

// reportMapYAML: a fax number from the subject (a mail without one is
// rejected), the file driver standing in for the fax line, and reports of
// every event.
const reportMapYAML = `description: o365 report tests
fields:
  - name: sender
    from:
      - source: from.address
    type: email
    required: true
  - name: fax_number
    required: true
    from:
      - source: subject
        regex: '(?i)fax:\s*(?P<value>\+?[0-9][0-9 ]{4,}[0-9])'
documents:
  - body: true
routes:
  - drivers: [out]
notify:
  events: [delivered, failed, rejected]
  formats: "Put the number in the subject as Fax: +1 555 123 4567."
`

// startReportPeers is startPeers with Dovecot's submission service, which
// relays what it accepts into each recipient's INBOX.
func startReportPeers(t testing.TB) *peers {
	t.Helper()
	testenv.LookPath(t, "dovecot")
	testenv.LookPath(t, "doveadm")
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
			t.Log(testenv.Tail(dc.Log(), 30))
		}
	})
	ca, err := id.CA.WriteFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &peers{id: id, dc: dc, ca: ca}
}

// newReportSite is a site whose connector sends by SMTP submission to the
// peers' Dovecot, with the report map.
func newReportSite(t testing.TB, p *peers, folder string) *site {
	t.Helper()
	host, port, _ := net.SplitHostPort(p.dc.SubmissionAddr)
	portN, _ := strconv.Atoi(port)
	s := newSite(t, p, folder, nil, func(c map[string]any) {
		c["send_via"] = "smtp"
		c["smtp_host"] = host
		c["smtp_port"] = portN
	})
	if err := os.WriteFile(filepath.Join(s.dir, "map.yaml"), []byte(reportMapYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// inbox reads every message in user's INBOX, whole.
func (p *peers) inbox(t testing.TB, user string) [][]byte {
	t.Helper()
	msgs, err := p.dc.Read(user, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func faxRequest(from, subject, id string) []byte {
	return fmt.Appendf(nil, "From: %s\r\nTo: fax@example.com\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nPlease fax.\r\n", from, subject, id)
}

// TestReportsThroughDovecotSubmission: the real host and o365 plugin send
// each sender its report through Dovecot's submission service (STARTTLS,
// AUTH XOAUTH2 with the connector's token); the report is read back over
// IMAP from the sender's own mailbox, threaded under the mail. A report that
// comes back to the gateway's mailbox is not answered.
func TestReportsThroughDovecotSubmission(t *testing.T) {
	p := startReportPeers(t)
	p.create(t, "Fax")
	s := newReportSite(t, p, "Fax")
	g := s.start()
	p.append(t, "Fax",
		faxRequest("Alice <alice@example.org>", "Fax: +1 555 0101 lab results", "ok-1@example.org"),
		faxRequest("bob@example.org", "lab results, no number", "bad-1@example.org"))
	waitFor(t, "a report in each sender's mailbox", 60*time.Second, func() bool {
		return len(p.inbox(t, "alice@example.org")) == 1 && len(p.inbox(t, "bob@example.org")) == 1
	}, g.output)

	check := func(user, subject, inReplyTo, event string, text ...string) []byte {
		raw := p.inbox(t, user)[0]
		r, err := gomail.CreateReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		h := r.Header
		if got, _ := h.Subject(); got != subject {
			t.Errorf("%s: subject %q, want %q", user, got, subject)
		}
		if v, _ := h.MsgIDList("In-Reply-To"); len(v) != 1 || v[0] != inReplyTo {
			t.Errorf("%s: In-Reply-To %v, want %s", user, v, inReplyTo)
		}
		if v, _ := h.MsgIDList("References"); len(v) == 0 || v[len(v)-1] != inReplyTo {
			t.Errorf("%s: References %v", user, v)
		}
		if from, _ := h.AddressList("From"); len(from) != 1 || from[0].Address != p.id.Mailbox {
			t.Errorf("%s: From %v, want the gateway's mailbox %s", user, from, p.id.Mailbox)
		}
		if h.Get("Auto-Submitted") != "auto-replied" || !strings.HasSuffix(h.Get("X-Mediagw-Report"), "/"+event) {
			t.Errorf("%s: Auto-Submitted %q, X-Mediagw-Report %q", user, h.Get("Auto-Submitted"), h.Get("X-Mediagw-Report"))
		}
		part, err := r.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(part.Body)
		for _, w := range text {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s: the report lacks %q:\n%s", user, w, body)
			}
		}
		return raw
	}
	returned := check("alice@example.org", "Fax to +1 555 0101 delivered", "ok-1@example.org", "delivered", "was delivered", "Attempts:      1")
	check("bob@example.org", "Fax not sent: lab results, no number", "bad-1@example.org", "rejected",
		"fax_number: no match in Subject", "Put the number in the subject as Fax: +1 555 123 4567.")

	// The report comes back to the gateway (forwarded, misaddressed): it is
	// rejected by the map and not answered.
	p.append(t, "Fax", returned)
	waitFor(t, "the returned report rejected", 30*time.Second, func() bool {
		return strings.Count(g.output(), "event=rejected") == 2
	}, g.output)
	g.stop(t)
	if n := len(p.inbox(t, "alice@example.org")); n != 1 {
		t.Fatalf("alice has %d reports after her report came back to the gateway, want still 1", n)
	}
	if !strings.Contains(g.output(), "no report: the message is a delivery report of this gateway") {
		t.Errorf("the log does not say why the returned report got no report:\n%s", testenv.Tail(g.output(), 20))
	}
}

var afterRe = regexp.MustCompile(`driver=report:mailbox event=delivered .*after=(\S+)`)

// BenchmarkReportLatencyDovecot measures, with the real host, o365 plugin
// and Dovecot submission, the time from a job's outcome being written to
// the spool to its report being accepted by Dovecot: for N mails one at a
// time ("one"), then N mails at once ("burst", queued behind the two report
// slots); beside it, a bare go-smtp client submitting the same report to the
// same Dovecot (STARTTLS, AUTH XOAUTH2, one connection per message):
//
//	go test -run '^$' -bench ReportLatencyDovecot -benchtime 100x ./plugin/o365/hoste2e/
func BenchmarkReportLatencyDovecot(b *testing.B) {
	p := startReportPeers(b)
	p.create(b, "Fax")
	s := newReportSite(b, p, "Fax")
	g := s.start()
	g.pluginPid(b)
	n := b.N
	mail := func(i int) []byte {
		return faxRequest(fmt.Sprintf("user%d@example.org", i%10), fmt.Sprintf("Fax: +1 555 0101 n%d", i), fmt.Sprintf("n%d@example.org", i))
	}
	latencies := func(from int) []time.Duration {
		var out []time.Duration
		for _, m := range afterRe.FindAllStringSubmatch(g.output(), -1)[from:] {
			d, err := time.ParseDuration(m[1])
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, d)
		}
		return out
	}
	sent := func() int { return len(afterRe.FindAllString(g.output(), -1)) }
	b.ResetTimer()
	// One mail at a time: the report's own latency.
	for i := range n {
		p.append(b, "Fax", mail(i))
		waitFor(b, "the report", 30*time.Second, func() bool { return sent() == i+1 }, g.output)
	}
	one := latencies(0)
	// n mails at once: reports queue behind the connector's two report slots.
	var burst [][]byte
	for i := range n {
		burst = append(burst, mail(n+i))
	}
	p.append(b, "Fax", burst...)
	waitFor(b, "every report sent", 120*time.Second, func() bool { return sent() == 2*n }, g.output)
	b.StopTimer()
	many := latencies(n)
	g.stop(b)

	// The same report, submitted by a bare client, one at a time.
	raw := p.inbox(b, "user0@example.org")[0]
	tok, err := p.id.Mint(p.id.Mailbox, "https://outlook.office.com", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	tlsConf := &tls.Config{RootCAs: p.id.CA.Pool, ServerName: "127.0.0.1"}
	var bare []time.Duration
	for range n {
		t0 := time.Now()
		c, err := smtp.DialStartTLS(p.dc.SubmissionAddr, tlsConf)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Auth(xoauth2.NewSMTP(p.id.Mailbox, tok)); err != nil {
			b.Fatal(err)
		}
		if err := c.SendMail(p.id.Mailbox, []string{"user0@example.org"}, bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
		_ = c.Quit()
		bare = append(bare, time.Since(t0))
	}
	pct := func(ds []time.Duration, q int) float64 {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return float64(ds[len(ds)*q/100].Microseconds()) / 1000
	}
	b.ReportMetric(pct(one, 50), "one-p50-ms")
	b.ReportMetric(pct(one, 95), "one-p95-ms")
	b.ReportMetric(pct(many, 50), "burst-p50-ms")
	b.ReportMetric(pct(many, 95), "burst-p95-ms")
	b.ReportMetric(pct(bare, 50), "bare-smtp-p50-ms")
	b.ReportMetric(pct(bare, 95), "bare-smtp-p95-ms")
}
