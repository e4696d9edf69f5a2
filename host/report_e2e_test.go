package host

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

// recSender is the test Sender behind a running connector: it keeps every
// message it is asked to send.
type recSender struct {
	mu  sync.Mutex
	got []*plugin.OutgoingMessage
	at  []time.Time
}

func (s *recSender) Send(_ context.Context, m *plugin.OutgoingMessage) (plugin.SendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, m)
	s.at = append(s.at, time.Now())
	return plugin.SendResult{}, nil
}

func (s *recSender) sent() []*plugin.OutgoingMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*plugin.OutgoingMessage(nil), s.got...)
}

const reportMap = `description: fax number from the subject; the file driver stands in for the fax line
fields:
  - name: fax_number
    required: true
    from:
      - source: subject
        regex: '(?i)fax:\s*(?P<value>\+?[0-9][0-9 ]{4,}[0-9])'
  - name: sender
    required: true
    type: email
    from:
      - source: from.address
documents:
  - body: true
routes:
  - drivers: [line]
notify:
  events: [delivered, failed, rejected]
  formats: "Put the number in the subject as Fax: +1 555 123 4567."
`

const reportConfig = `spool:
  dir: var/spool
connectors:
  inbox:
    plugin: %s
    map: fax
    config:
      path: var/Maildir
      failed: var/failed
      poll_interval: 10ms
maps:
  fax: fax.yaml
drivers:
  line:
    type: file
    options:
      dir: var/out
`

type reportSite struct {
	dir string
	h   *Host
	snd *recSender
}

func startReportSite(t testing.TB, logTo slog.Handler) *reportSite {
	t.Helper()
	bin := testenv.Binaries(t, "github.com/mediagw/mediagw/plugin/maildir/cmd/mediagw-connector-maildir")
	dir := t.TempDir()
	for _, d := range []string{"var/Maildir/new", "var/Maildir/cur", "var/Maildir/tmp"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "fax.yaml"), []byte(reportMap), 0o644)
	cfgFile := filepath.Join(dir, "mediagw.yaml")
	os.WriteFile(cfgFile, fmt.Appendf(nil, reportConfig, filepath.Join(bin, "mediagw-connector-maildir")), 0o644)
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if logTo == nil {
		logTo = slog.NewTextHandler(io.Discard, nil)
	}
	log := slog.New(logTo)
	p, err := Prepare(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(p, log)
	if err != nil {
		t.Fatal(err)
	}
	s := &reportSite{dir: dir, h: h, snd: &recSender{}}
	h.WrapSender = func(string, plugin.Sender) plugin.Sender { return s.snd }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, p) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func (s *reportSite) drop(t testing.TB, name, raw string) {
	t.Helper()
	tmp := filepath.Join(s.dir, "var/Maildir/tmp", name)
	if err := os.WriteFile(tmp, []byte(strings.ReplaceAll(raw, "\n", "\r\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "var/Maildir/new", name)); err != nil {
		t.Fatal(err)
	}
}

func (s *reportSite) waitSettled(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		cur, _ := os.ReadDir(filepath.Join(s.dir, "var/Maildir/cur"))
		failed, _ := filepath.Glob(filepath.Join(s.dir, "var/failed/*.reason"))
		st, _ := s.h.Status(t.Context())
		if len(cur)+len(failed) >= n && st.Queued["report:inbox"] == 0 && st.Queued["line"] == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: %d mails acked, %d rejected, queue %v; want %d settled and nothing queued", len(cur), len(failed), st.Queued, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReportsEndToEnd: through the real Maildir plugin, the data map and the
// file driver, a delivered mail and a rejected mail each bring exactly one
// report to their sender, threaded under the mail; then a bounce of a
// report and a report that came back to the gateway's mailbox bring none.
func TestReportsEndToEnd(t *testing.T) {
	s := startReportSite(t, nil)
	s.drop(t, "ok", "From: Alice <alice@example.org>\nTo: fax@gw.example.com\nSubject: Fax: +1 555 0101 lab results\nMessage-ID: <ok-1@example.org>\n\nPlease fax this.\n")
	s.drop(t, "nonumber", "From: bob@example.org\nTo: fax@gw.example.com\nSubject: lab results\nMessage-ID: <bad-1@example.org>\n\nNo number here.\n")
	s.waitSettled(t, 2)
	got := s.snd.sent()
	if len(got) != 2 {
		t.Fatalf("%d reports sent, want 2 (one delivered, one rejected)", len(got))
	}
	byTo := map[string]*plugin.OutgoingMessage{}
	for _, m := range got {
		byTo[m.To[0]] = m
	}
	check := func(to, subject, inReplyTo, event string, body ...string) []byte {
		m := byTo[to]
		if m == nil {
			t.Fatalf("no report to %s; sent to %v", to, got)
		}
		r, err := gomail.CreateReader(bytes.NewReader(m.Raw))
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := r.Header.Subject(); s != subject {
			t.Errorf("report to %s: subject %q, want %q", to, s, subject)
		}
		if v, _ := r.Header.MsgIDList("In-Reply-To"); len(v) != 1 || v[0] != inReplyTo {
			t.Errorf("report to %s: In-Reply-To %v, want %s", to, v, inReplyTo)
		}
		if v := r.Header.Get("X-Mediagw-Report"); !strings.HasSuffix(v, "/"+event) {
			t.Errorf("report to %s: X-Mediagw-Report %q", to, v)
		}
		p, err := r.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(p.Body)
		for _, b := range body {
			if !strings.Contains(string(text), b) {
				t.Errorf("report to %s lacks %q:\n%s", to, b, text)
			}
		}
		return m.Raw
	}
	delivered := check("alice@example.org", "Fax to +1 555 0101 delivered", "ok-1@example.org", "delivered", "was delivered", "Attempts:      1")
	check("bob@example.org", "Fax not sent: lab results", "bad-1@example.org", "rejected",
		"fax_number", "Put the number in the subject as Fax: +1 555 123 4567.")

	// The loop: the report bounced back to the gateway, and the report
	// itself delivered to the gateway's mailbox (a forward, a wrong To).
	s.drop(t, "bounce", "From: MAILER-DAEMON@mx.example.org\nTo: fax@gw.example.com\nSubject: Undelivered Mail Returned to Sender\n"+
		"Auto-Submitted: auto-replied\nMessage-ID: <bounce-1@mx.example.org>\n\nThe report could not be delivered.\n")
	s.dropRaw(t, "ourreport", delivered)
	s.waitSettled(t, 4)
	if n := len(s.snd.sent()); n != 2 {
		t.Fatalf("%d reports after the bounce and the returned report, want still 2", n)
	}
	st, _ := s.h.Status(t.Context())
	if c := st.Reports["inbox"]; c.Sent != 2 || c.Suppressed != 2 {
		t.Fatalf("report counts %+v, want 2 sent and 2 suppressed", c)
	}
}

func (s *reportSite) dropRaw(t *testing.T, name string, raw []byte) {
	t.Helper()
	tmp := filepath.Join(s.dir, "var/Maildir/tmp", name)
	os.WriteFile(tmp, raw, 0o644)
	if err := os.Rename(tmp, filepath.Join(s.dir, "var/Maildir/new", name)); err != nil {
		t.Fatal(err)
	}
}
