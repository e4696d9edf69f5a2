package demo

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	demofiles "github.com/mediagw/mediagw/examples/demo"
	"github.com/mediagw/mediagw/host/activity"
	"github.com/mediagw/mediagw/host/report"
	"github.com/mediagw/mediagw/internal/demo/faxrx"
	"github.com/mediagw/mediagw/internal/demo/oauthimap"
)

// tap is a slog.Handler that passes every record on and also hands its
// message, level and attributes (flattened) to fn, for the narration.
type tap struct {
	next  slog.Handler
	attrs []slog.Attr
	fn    func(msg string, level slog.Level, attrs map[string]string)
}

func (t *tap) Enabled(ctx context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (t *tap) Handle(ctx context.Context, r slog.Record) error {
	m := make(map[string]string, len(t.attrs)+r.NumAttrs())
	for _, a := range t.attrs {
		m[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	t.fn(r.Message, r.Level, m)
	if t.next.Enabled(ctx, r.Level) {
		return t.next.Handle(ctx, r)
	}
	return nil
}

func (t *tap) WithAttrs(as []slog.Attr) slog.Handler {
	return &tap{next: t.next.WithAttrs(as), attrs: append(append([]slog.Attr(nil), t.attrs...), as...), fn: t.fn}
}

func (t *tap) WithGroup(name string) slog.Handler {
	return &tap{next: t.next.WithGroup(name), attrs: t.attrs, fn: t.fn}
}

func short(s string) string {
	if len(s) > 8 {
		return s[:8] + "…"
	}
	return s
}

// sampleOf finds the sample of a source id imap:<uidvalidity>:<uid>.
func (d *run) sampleOf(sourceID string) *Sample {
	i := strings.LastIndexByte(sourceID, ':')
	if i < 0 {
		return nil
	}
	n, err := strconv.ParseUint(sourceID[i+1:], 10, 32)
	if err != nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.byUID[imap.UID(n)]
}

func (d *run) name(s *Sample) string {
	if s == nil {
		return "?"
	}
	return strconv.Quote(s.Subject)
}

// activity narrates the gateway's log: activity events and warnings.
func (d *run) activity(msg string, level slog.Level, a map[string]string) {
	ev := a["event"]
	s := d.sampleOf(a["source_id"])
	if strings.HasPrefix(a["driver"], report.DriverPrefix) {
		d.reportActivity(ev, s, a)
		return
	}
	if s == nil && a["job"] != "" {
		d.mu.Lock()
		s = d.jobs[a["job"]]
		d.mu.Unlock()
	}
	switch ev {
	case activity.Received:
		d.say("gateway: the connector offers %s (%s bytes, %s)", d.name(s), a["bytes"], a["source_id"])
	case activity.Mapped:
		d.say("gateway: mapped %s: %s", d.name(s), d.fields(s))
	case activity.Routed:
		d.mu.Lock()
		if s != nil {
			for _, drv := range strings.Fields(strings.Trim(a["drivers"], "[]")) {
				d.jobs[a["record"]+"."+drv] = s
			}
		}
		d.mu.Unlock()
		d.say("gateway: routed to %s", strings.Trim(a["drivers"], "[]"))
	case activity.Accepted:
		d.say("gateway: job is in the spool; the mail is acked")
	case activity.Rejected:
		d.mu.Lock()
		if s != nil {
			d.rejected[s] = a["reason"]
		}
		d.mu.Unlock()
		d.say("gateway: REJECTED %s: %s", d.name(s), a["reason"])
	case activity.Deferred:
		d.warn(fmt.Sprintf("deferred %s: %s", d.name(s), a["reason"]))
	case activity.Attempt:
		d.mu.Lock()
		if s != nil {
			d.jobs[a["job"]] = s
		}
		d.mu.Unlock()
		d.say("fax: attempt %s for %s", a["attempt"], d.name(s))
	case activity.Progress:
		d.progress(s, a["step"], a["detail"])
	case activity.Delivered:
		d.mu.Lock()
		if s != nil {
			d.delivered[s] = a
		}
		d.mu.Unlock()
		d.say("fax: DELIVERED %s: %s pages at %s, %s resolution, %s, %s", d.name(s), a["pages"], a["speed"], a["resolution"], a["encoding"], a["duration"])
	case activity.Retried:
		d.warn(fmt.Sprintf("fax: attempt failed (%s: %s); next attempt in %s", a["category"], a["reason"], a["retry_after"]))
	case activity.Failed:
		d.mu.Lock()
		if s != nil {
			d.failed[s] = a["category"] + ": " + a["reason"]
		}
		d.mu.Unlock()
		d.say("fax: FAILED %s: %s: %s", d.name(s), a["category"], a["reason"])
	case "":
		if level >= slog.LevelWarn {
			line := msg
			for _, k := range []string{"plugin", "err", "error", "reason"} {
				if v := a[k]; v != "" {
					line += " " + k + "=" + v
				}
			}
			d.warn(line)
		}
	}
}

// reportActivity narrates the delivery reports (the report driver's jobs).
func (d *run) reportActivity(ev string, s *Sample, a map[string]string) {
	switch ev {
	case activity.Delivered:
		d.mu.Lock()
		if s != nil {
			d.reports[s] = append(d.reports[s], a)
		}
		d.mu.Unlock()
		why := ""
		if a["why"] != "" {
			why = " — it tells why: " + a["why"]
		}
		d.say("report: the %s report on %s is sent to %s: %q%s", a["report"], d.name(s), a["to"], a["subject"], why)
	case activity.Retried:
		d.warn(fmt.Sprintf("report: not sent yet (%s: %s); next try in %s", a["category"], a["reason"], a["retry_after"]))
	case activity.Failed:
		d.warn(fmt.Sprintf("report: FAILED for %s: %s: %s", d.name(s), a["category"], a["reason"]))
	}
}

func (d *run) warn(line string) {
	d.mu.Lock()
	d.warnings = append(d.warnings, line)
	d.mu.Unlock()
	d.say("! %s", line)
}

func (d *run) progress(s *Sample, step, detail string) {
	switch step {
	case "render":
		d.say("fax: rendering into 1728-pel fax pages: %s", detail)
	case "class":
		d.say("fax: %s", detail)
	case "dial":
		d.mu.Lock()
		if s != nil {
			d.dialled[s] = detail
		}
		d.mu.Unlock()
		d.say("fax: dialling %s", detail)
		d.setStatus("calling " + detail)
	case "connect":
		d.say("fax: the far end answers (%s)", detail)
	case "caps":
		d.say("fax: the far end can receive: %s", detail)
	case "dcs":
		d.say("fax: we send with: %s", detail)
	case "tcf":
		d.say("fax: training at %s", detail)
		d.setStatus("training at " + detail)
	case "page":
		n, rest, _ := strings.Cut(detail, ": ")
		d.say("fax: sending page %s (%s)", n, rest)
		d.setStatus("sending page " + n + " (" + rest + ")")
	case "rtn":
		d.warn("fax: " + detail)
	case "timeout":
		d.warn("fax: timeout: " + detail)
	case "done":
		if strings.Contains(detail, "confirmed") { // T.30's; the driver's own "done" follows
			d.say("fax: %s by the far end", detail)
		}
	}
}

// fields shows what the data map made of a sample (the same compiled map the
// gateway uses).
func (d *run) fields(s *Sample) string {
	d.mu.Lock()
	m := d.datamap
	d.mu.Unlock()
	if s == nil || m == nil {
		return "?"
	}
	res, err := m.Apply(s.Raw)
	if err != nil {
		return "rejected by the map: " + err.Error()
	}
	var docs []string
	for _, doc := range res.Documents {
		docs = append(docs, doc.Name)
	}
	v := res.Values()
	return fmt.Sprintf("fax_number=%s recipient=%q sender=%s documents=[%s]", v["fax_number"], v["recipient"], v["sender"], strings.Join(docs, ", "))
}

func (d *run) submissionEvent(e SubmissionEvent) {
	switch e.Kind {
	case "login":
		d.say("submission: AUTH XOAUTH2 as %s: token verified", e.User)
	case "login-failed":
		d.warn(fmt.Sprintf("submission: login as %s refused: %s", e.User, e.Detail))
	case "delivered":
		d.say("submission: mail delivered to %s's mailbox (%s)", e.User, e.Detail)
	}
}

func (d *run) imapEvent(e oauthimap.Event) {
	switch e.Kind {
	case "login":
		d.tokens()
		d.say("mailbox: XOAUTH2 login as %s: token verified (valid until %s)", e.User, e.Expires.Format(time.TimeOnly))
	case "login-failed":
		d.warn(fmt.Sprintf("mailbox: login as %s refused: %s", e.User, e.Detail))
	case "select":
		d.say("mailbox: SELECT %s (%s)", e.Folder, e.Detail)
	case "idle":
		d.mu.Lock()
		again := d.idleShown
		d.idling, d.idleShown = true, true
		d.mu.Unlock()
		if !again {
			d.say("mailbox: IDLE: the connector waits for new mail")
		}
	case "append":
		d.mu.Lock()
		d.idleShown = false
		d.mu.Unlock()
	case "fetch":
		d.say("mailbox: FETCH uid %s BODY.PEEK[] (read, not yet marked)", e.Detail)
	case "store":
		d.say("mailbox: STORE uid %s (processed)", e.Detail)
	case "create":
		d.say("mailbox: CREATE %q", e.Folder)
	case "move":
		d.say("mailbox: MOVE uid %s to %q", e.Detail, e.Folder)
	}
}

func (d *run) page(p faxrx.Page) {
	if p.Err != nil {
		d.warn(fmt.Sprintf("fax line: page %d of call %d: %v", p.Page, p.Call, p.Err))
		return
	}
	res := "standard"
	if p.Params.Fine {
		res = "fine"
	}
	d.say("fax line: page %d received and decoded: %d rows, %s, %.1f%% ink → %s", p.Page, p.Rows, res, 100*p.Ink, p.PNG)
}

// watchTokens reports each token the identity stand-in issues.
func (d *run) watchTokens(ctx context.Context) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.tokens()
		}
	}
}

// tokens narrates the tokens issued since the last call.
func (d *run) tokens() {
	n := d.id.TokensIssued()
	d.mu.Lock()
	seen := d.tokensSeen
	d.tokensSeen = n
	d.mu.Unlock()
	for ; seen < n; seen++ {
		d.say("identity: access token issued to app %s (client credentials grant, scope outlook.office365.com/.default; the token names %s)", short(d.id.ClientID), d.id.Mailbox)
	}
}

// unpack copies the demo's config, map and mails into the demo folder.
func (d *run) unpack() error {
	if es, err := os.ReadDir(d.o.Dir); err == nil && len(es) > 0 {
		return fmt.Errorf("demo: %s is not empty; give an empty or new folder", d.o.Dir)
	}
	return fs.WalkDir(demofiles.FS, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.HasSuffix(p, ".go") || strings.HasPrefix(p, "alarm-") { // the alarm demo's configs
			return err
		}
		b, err := demofiles.FS.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(d.o.Dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		return os.WriteFile(out, b, 0o644)
	})
}

// writeConfig fills the stand-ins' addresses into the demo's config.
func (d *run) writeConfig() (string, error) {
	p := filepath.Join(d.o.Dir, "mediagw.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	s := string(b)
	smtpHost, smtpPort, _ := net.SplitHostPort(d.smtp.Addr)
	for _, r := range []struct{ key, val string }{
		{"authority_host", d.id.Host},
		{"imap_host", d.imap.Host},
		{"imap_port", strconv.Itoa(d.imap.Port)},
		{"smtp_host", smtpHost},
		{"smtp_port", smtpPort},
		{"device", d.rx.Device},
		{"plugin", d.o.Plugin},
	} {
		re := regexp.MustCompile(`(?m)(\b` + r.key + `:\s*)[^\s,}#]+`)
		if !re.MatchString(s) {
			return "", fmt.Errorf("demo: %s has no %s", p, r.key)
		}
		s = re.ReplaceAllString(s, "${1}"+r.val)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return p, nil
}
