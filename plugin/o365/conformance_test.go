package o365_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin/o365"
	"github.com/mediagw/mediagw/plugin/o365/imapbox"
	"github.com/mediagw/mediagw/plugin/plugintest"
)

// imapSource is one folder (and its failed folder) in the shared Dovecot.
type imapSource struct {
	p        *peers
	folder   string
	failed   string
	stateDir string
	cfg      map[string]any
}

func harness(t testing.TB, p *peers) plugintest.Harness {
	var n atomic.Int64
	return plugintest.Harness{
		Factory: o365.New,
		NewSource: func(t testing.TB) plugintest.Source {
			i := n.Add(1)
			s := &imapSource{p: p, folder: fmt.Sprintf("case%d", i), failed: fmt.Sprintf("case%d-failed", i)}
			if err := p.dc.Create(p.id.Mailbox, s.folder); err != nil {
				t.Fatal(err)
			}
			s.cfg = p.config(t)
			s.cfg["folder"], s.cfg["failed_folder"] = s.folder, s.failed
			s.stateDir = s.cfg["state_dir"].(string)
			return s
		},
		BadConfigs: []plugintest.BadConfig{
			{Name: "after_processing", Mutate: func(c map[string]any) { c["after_processing"] = "archive" }, Field: "after_processing"},
			{Name: "no credential", Mutate: func(c map[string]any) { delete(c, "client_secret") }, Field: "client_secret"},
			{Name: "imap_port", Mutate: func(c map[string]any) { c["imap_port"] = "imaps" }, Field: "imap_port"},
		},
		Quiet:   400 * time.Millisecond,
		Timeout: 15 * time.Second,
		Logger:  logger(t),
	}
}

func (s *imapSource) Config(t testing.TB) []byte {
	b, err := json.Marshal(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s *imapSource) Inject(t testing.TB, raw []byte) {
	if _, err := s.p.dc.Append(context.Background(), s.p.id.Mailbox, s.folder, raw); err != nil {
		t.Fatal(err)
	}
}

func (s *imapSource) State(t testing.TB) []plugintest.Stored {
	t.Helper()
	c, err := s.p.dc.Dial(s.p.id.Mailbox, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rejects, err := imapbox.ReadRejectLog(o365.RejectLogPath(s.stateDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []plugintest.Stored
	for _, folder := range []string{s.folder, s.failed} {
		sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			continue // the failed folder appears with the first reject
		}
		if sel.NumMessages == 0 {
			continue
		}
		body := &imap.FetchItemBodySection{Peek: true}
		msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{body}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			raw := m.FindBodySection(body)
			st := plugintest.Stored{Raw: raw, Status: plugintest.Untouched}
			for _, f := range m.Flags {
				if f == imap.FlagSeen {
					st.Status = plugintest.Processed
				}
			}
			if folder == s.failed {
				st.Status = plugintest.Rejected
				mid := messageID(raw)
				for _, r := range rejects {
					if r.MessageID == mid {
						st.Reason = r.Reason
					}
				}
			}
			out = append(out, st)
		}
	}
	return out
}

func messageID(raw []byte) string {
	for _, line := range splitLines(raw) {
		if len(line) == 0 {
			break
		}
		if len(line) > 11 && (string(line[:11]) == "Message-ID:" || string(line[:11]) == "Message-Id:") {
			return string(trim(line[11:]))
		}
	}
	return ""
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		line := b[:i]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		out = append(out, line)
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return out
}

func trim(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func TestConformance(t *testing.T) {
	p := startPeers(t)
	plugintest.RunConformance(t, harness(t, p))
}

// TestConformancePlugin runs the suite through the built plugin binary, its
// send case through Dovecot submission.
func TestConformancePlugin(t *testing.T) {
	testenv.Short(t)
	p := startSubmissionPeers(t)
	bin := plugintest.BuildPlugin(t, "github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
	h := harness(t, p)
	h.Wrap = plugintest.ProcessWrap(t, bin)
	h.Sink = submissionSink{p}
	plugintest.RunConformance(t, h)
}

// submissionSink sends by SMTP to Dovecot submission; what it relays lands
// in the recipient's INBOX.
type submissionSink struct{ p *peers }

func (s submissionSink) Enable(t testing.TB, cfg map[string]any) {
	for k, v := range s.p.smtpConfig(t, s.p.dc.SubmissionAddr) {
		if k == "send_via" || k == "smtp_host" || k == "smtp_port" {
			cfg[k] = v
		}
	}
}

func (s submissionSink) Received(t testing.TB) [][]byte {
	return fetchInbox(t, s.p, "reports@example.test")
}
