// Package demo runs the whole gateway on one machine with no tenant and no
// modem: a stand-in of the Microsoft identity platform, an IMAP server that
// accepts only the tokens it issues (XOAUTH2), and an emulated fax line on a
// pty; then the real gateway with the real O365 connector plugin and the
// real fax-modem driver takes the sample mails from the mailbox to the fax
// line. It narrates each step and checks the result. `mediagw-demo` runs it.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mediagw/mediagw/datamap"
	demofiles "github.com/mediagw/mediagw/examples/demo"
	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/internal/demo/faxrx"
	"github.com/mediagw/mediagw/internal/demo/oauthimap"
	"github.com/mediagw/mediagw/internal/smtpsink"
	"github.com/mediagw/mediagw/plugin/o365/o365test"

	// The fax-modem driver registers itself.
	_ "github.com/mediagw/mediagw/linedriver/faxmodem"
)

// PluginName is the connector plugin binary the demo runs.
const PluginName = "mediagw-connector-o365"

// FailedFolder is where the connector moves rejected mail (as the config says).
const FailedFolder = "mediagw-failed"

// Options configure Run.
type Options struct {
	// Dir is the demo's folder (config, spool, received pages); it must be
	// empty or absent.
	Dir string
	// Out receives the narration (one line per step) and the summary.
	Out io.Writer
	// Log, when set, also receives the gateway's full log (it always goes
	// to Dir/gateway.log).
	Log io.Writer
	// Timeout bounds the whole run after the gateway started.
	Timeout time.Duration
	// Plugin is the connector binary; empty looks for PluginName beside
	// the running executable, then in PATH.
	Plugin string
	// CheckConnectors, when set, hands every connector its settings before
	// the gateway starts (as `mediagw run` does) and returns the problems.
	CheckConnectors func(*host.Plan) []string
	// Tick, when set, is called about 10 times a second while the demo
	// waits, with a one-line status for a progress display.
	Tick func(status string)
}

// Sample is one mail of the demo and what should become of it.
type Sample struct {
	File    string
	Subject string
	Raw     []byte
	// Reject: the gateway must refuse it (e.g. a premium-rate number).
	Reject bool

	uid imap.UID
}

// Fax is a sample that arrived at the fax line.
type Fax struct {
	Sample *Sample
	Number string // as dialled
	Speed  string
	Pages  []faxrx.Page
}

// Rejection is a sample the gateway refused, with its reason.
type Rejection struct {
	Sample *Sample
	Reason string
	// InFailedFolder: the connector moved it to FailedFolder.
	InFailedFolder bool
}

// Report is a delivery report the gateway sent back to a sample's sender.
type Report struct {
	Sample  *Sample
	Event   string // delivered, failed, rejected
	To      string
	Subject string
	// InMailbox: the report is in the sender's INBOX on the IMAP stand-in.
	InMailbox bool
}

// Result is what the demo did.
type Result struct {
	Dir      string
	Config   string
	Faxes    []Fax
	Rejected []Rejection
	Reports  []Report
	Skipped  []string // samples left out, with why
	Elapsed  time.Duration
}

// Samples reads the demo's sample mails.
func Samples() ([]*Sample, error) {
	names, err := fs.Glob(demofiles.FS, "mail/*.eml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []*Sample
	for _, n := range names {
		raw, err := demofiles.FS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		s := &Sample{File: filepath.Base(n), Raw: raw, Subject: header(raw, "Subject"), Reject: strings.Contains(n, "bad")}
		out = append(out, s)
	}
	return out, nil
}

func header(raw []byte, name string) string {
	for _, l := range strings.Split(string(raw), "\n") {
		l = strings.TrimRight(l, "\r")
		if l == "" {
			break
		}
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Senders lists the From addresses of the samples, each once.
func Senders(samples []*Sample) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range samples {
		a, err := mail.ParseAddress(header(s.Raw, "From"))
		if err != nil || seen[strings.ToLower(a.Address)] {
			continue
		}
		seen[strings.ToLower(a.Address)] = true
		out = append(out, a.Address)
	}
	return out
}

// FindPlugin returns the connector binary: beside the running executable,
// then in PATH. The error says how to build it.
func FindPlugin() (string, error) {
	self, err := os.Executable()
	if err == nil {
		p := filepath.Join(filepath.Dir(self), PluginName)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(PluginName); err == nil {
		return p, nil
	}
	where := "beside mediagw-demo"
	if self != "" {
		where = "in " + filepath.Dir(self)
	}
	return "", fmt.Errorf("demo: the O365 connector plugin %s is not %s nor in PATH: run `make build` (or `make demo`), which builds it into bin/ beside mediagw-demo", PluginName, where)
}

// Run runs the demo and checks its outcome: the error says what went wrong.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Plugin == "" {
		p, err := FindPlugin()
		if err != nil {
			return nil, err
		}
		o.Plugin = p
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "mediagw-demo-")
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		o.Dir = d
	}
	d := &run{o: o, start: time.Now(), res: &Result{Dir: o.Dir}, jobs: map[string]*Sample{}, byUID: map[imap.UID]*Sample{}}
	return d.res, d.run(ctx)
}

type run struct {
	o     Options
	start time.Time
	res   *Result

	outMu sync.Mutex

	id   *o365test.Identity
	imap *oauthimap.Server
	smtp *smtpsink.Sink
	rx   *faxrx.Receiver

	mu         sync.Mutex
	samples    []*Sample
	byUID      map[imap.UID]*Sample
	jobs       map[string]*Sample // job id → sample
	delivered  map[*Sample]map[string]string
	failed     map[*Sample]string
	rejected   map[*Sample]string
	reports    map[*Sample][]map[string]string // the report driver's delivered events
	dialled    map[*Sample]string
	datamap    *datamap.Map
	idling     bool
	idleShown  bool
	tokensSeen int64
	status     string
	warnings   []string
}

// say prints one narration line with the time since the start.
func (d *run) say(format string, args ...any) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	if d.o.Tick != nil {
		d.o.Tick("")
	}
	fmt.Fprintf(d.o.Out, "%6.2fs  %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *run) setStatus(s string) {
	d.mu.Lock()
	d.status = s
	d.mu.Unlock()
}

func (d *run) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	samples, err := Samples()
	if err != nil {
		return fmt.Errorf("demo: samples: %w", err)
	}
	d.samples = samples
	d.delivered = map[*Sample]map[string]string{}
	d.failed = map[*Sample]string{}
	d.rejected = map[*Sample]string{}
	d.reports = map[*Sample][]map[string]string{}
	d.dialled = map[*Sample]string{}

	if err := d.unpack(); err != nil {
		return err
	}
	d.say("demo folder: %s", d.o.Dir)

	// 1. The Microsoft identity platform stand-in.
	id, err := o365test.StartIdentity(o365test.IdentityOptions{Mailbox: "fax@example.com"})
	if err != nil {
		return fmt.Errorf("demo: identity stand-in: %w", err)
	}
	defer id.Close()
	d.id = id
	if _, err := id.CA.WriteFile(d.o.Dir); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := os.WriteFile(filepath.Join(d.o.Dir, "client-secret.txt"), []byte(id.Secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.say("identity platform stand-in on https://%s (tenant %s, app %s)", id.Host, short(id.TenantID), short(id.ClientID))

	// 2. The mailbox: IMAP over TLS, XOAUTH2 with the stand-in's tokens only.
	tlsConf, err := id.CA.ServerTLS()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	// The senders have mailboxes too: the gateway's reports go there.
	d.imap, err = oauthimap.Start(oauthimap.Options{
		Verifier: oauthimap.VerifierFor(id), TLS: tlsConf, Users: append([]string{id.Mailbox}, Senders(samples)...), OnEvent: d.imapEvent,
	})
	if err != nil {
		return fmt.Errorf("demo: IMAP stand-in: %w", err)
	}
	defer d.imap.Close()
	d.say("Office 365 mailbox stand-in %s on imaps://%s (XOAUTH2 only; tokens checked: signature, audience, issuer, expiry, mailbox)", id.Mailbox, d.imap.Addr)

	// 2b. SMTP submission: the way back to the senders, with the same tokens.
	d.smtp, err = StartSubmission(oauthimap.VerifierFor(id), tlsConf, d.imap, d.submissionEvent)
	if err != nil {
		return fmt.Errorf("demo: SMTP submission stand-in: %w", err)
	}
	defer d.smtp.Close()
	d.say("SMTP submission stand-in on %s (STARTTLS, AUTH XOAUTH2 with the same tokens; mail goes to the senders' mailboxes)", d.smtp.Addr)

	// 3. The fax line: the modem emulator on a pty, answering as a fax machine.
	rx, err := faxrx.Start(ctx, faxrx.Options{Dir: filepath.Join(d.o.Dir, "received"), OnPage: d.page})
	if err != nil {
		return fmt.Errorf("demo: fax line: %w", err)
	}
	d.rx = rx
	d.say("fax line: emulated Class 1 modem on %s, a fax machine answers at the far end", rx.Device)

	// 4. The real gateway.
	cfgPath, err := d.writeConfig()
	if err != nil {
		return err
	}
	d.res.Config = cfgPath
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	logFile, err := os.Create(filepath.Join(d.o.Dir, "gateway.log"))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer logFile.Close()
	var logOut io.Writer = logFile
	if d.o.Log != nil {
		logOut = io.MultiWriter(logFile, d.o.Log)
	}
	log := slog.New(&tap{next: slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}), fn: d.activity})
	plan, err := host.Prepare(cfg, log)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.mu.Lock()
	d.datamap = plan.Maps["email-to-fax"]
	d.mu.Unlock()
	if d.o.CheckConnectors != nil {
		if problems := d.o.CheckConnectors(plan); len(problems) > 0 {
			plan.Close()
			return fmt.Errorf("demo: the connector refused its settings:\n%s", strings.Join(problems, "\n"))
		}
	}
	h, err := host.New(plan, log)
	if err != nil {
		plan.Close()
		return fmt.Errorf("demo: %w", err)
	}
	d.say("gateway: connector fax-mailbox (%s, a plugin process) → map email-to-fax → driver fax (faxmodem on %s)", PluginName, rx.Device)
	hctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(hctx, plan) }()
	stopped := false
	stopGateway := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stop()
		return <-done
	}
	defer stopGateway() //nolint:errcheck // the error is reported by the explicit call

	go d.watchTokens(hctx)
	deadline := time.Now().Add(d.o.Timeout)

	// 5. Wait for the connector to idle, then deliver the mails.
	d.setStatus("waiting for the connector to log in and idle")
	if err := d.wait(ctx, done, deadline, func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.idling }); err != nil {
		return d.fail(err, "the connector never reached IDLE on the mailbox")
	}
	for _, s := range d.samples {
		uid, err := d.imap.Append(id.Mailbox, "INBOX", s.Raw)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		d.mu.Lock()
		s.uid = uid
		d.byUID[uid] = s
		d.mu.Unlock()
		d.say("mail arrives in INBOX: %q (%s, uid %d)", s.Subject, s.File, uid)
		d.setStatus(fmt.Sprintf("waiting for %q to be faxed or rejected", s.Subject))
		if err := d.wait(ctx, done, deadline, func() bool { return d.finished(s) }); err != nil {
			return d.fail(err, fmt.Sprintf("%s was neither faxed nor rejected", s.File))
		}
	}
	d.setStatus("waiting for the mails to be settled and the faxes sent")
	if err := d.wait(ctx, done, deadline, d.settled); err != nil {
		return d.fail(err, "not every mail was settled")
	}
	d.setStatus("waiting for the delivery reports to reach the senders")
	if err := d.wait(ctx, done, deadline, d.reported); err != nil {
		return d.fail(err, "not every sender got a delivery report")
	}
	if err := stopGateway(); err != nil {
		return fmt.Errorf("demo: gateway: %w", err)
	}
	d.say("gateway stopped")
	d.res.Elapsed = time.Since(d.start)
	return d.check()
}

// wait polls cond until it holds, the gateway stops, or the deadline.
func (d *run) wait(ctx context.Context, done chan error, deadline time.Time, cond func() bool) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case err := <-done:
			done <- err // for the deferred stop
			if err == nil {
				err = errors.New("stopped early")
			}
			return fmt.Errorf("the gateway stopped: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", d.o.Timeout)
		}
		if d.o.Tick != nil {
			d.mu.Lock()
			st := d.status
			d.mu.Unlock()
			d.outMu.Lock()
			d.o.Tick(fmt.Sprintf("%6.2fs  … %s", time.Since(d.start).Seconds(), st))
			d.outMu.Unlock()
		}
	}
	return nil
}

func (d *run) fail(err error, what string) error {
	d.mu.Lock()
	warns := append([]string(nil), d.warnings...)
	d.mu.Unlock()
	msg := fmt.Sprintf("demo: %s: %v", what, err)
	if len(warns) > 0 {
		if len(warns) > 5 {
			warns = warns[len(warns)-5:]
		}
		msg += "\nlast problems the gateway reported:\n  " + strings.Join(warns, "\n  ")
	}
	return errors.New(msg + "\nthe gateway's full log: " + filepath.Join(d.o.Dir, "gateway.log"))
}

// finished: the gateway delivered, gave up on, or rejected s.
func (d *run) finished(s *Sample) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.delivered[s] != nil || d.failed[s] != "" || d.rejected[s] != ""
}

// settled: every sample delivered, failed for good, or rejected, and the
// mailbox shows it (INBOX all seen, rejected mail in the failed folder).
func (d *run) settled() bool {
	d.mu.Lock()
	n, want := 0, len(d.samples)
	for _, s := range d.samples {
		if d.delivered[s] != nil || d.failed[s] != "" || d.rejected[s] != "" {
			n++
		}
	}
	d.mu.Unlock()
	if n < want {
		return false
	}
	_, unseen, err := d.imap.Status(d.id.Mailbox, "INBOX")
	return err == nil && unseen == 0
}

// reported: every sample's sender was sent a report.
func (d *run) reported() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.samples {
		if len(d.reports[s]) == 0 {
			return false
		}
	}
	return true
}

func (d *run) check() error {
	var problems []string
	for _, s := range d.samples {
		d.mu.Lock()
		reps := d.reports[s]
		d.mu.Unlock()
		want := "delivered"
		if s.Reject {
			want = "rejected"
		}
		if len(reps) != 1 || reps[0]["report"] != want {
			problems = append(problems, fmt.Sprintf("%s: %d reports sent, want one %s report", s.File, len(reps), want))
			continue
		}
		r := Report{Sample: s, Event: reps[0]["report"], To: reps[0]["to"], Subject: reps[0]["subject"]}
		n, _, err := d.imap.Status(r.To, "INBOX")
		r.InMailbox = err == nil && n > 0
		if !r.InMailbox {
			problems = append(problems, fmt.Sprintf("%s: the report is not in %s's mailbox", s.File, r.To))
		}
		d.res.Reports = append(d.res.Reports, r)
	}
	pages := d.rx.Pages()
	for _, s := range d.samples {
		d.mu.Lock()
		det, failed, rejected, dialled := d.delivered[s], d.failed[s], d.rejected[s], d.dialled[s]
		d.mu.Unlock()
		switch {
		case s.Reject:
			if rejected == "" {
				problems = append(problems, fmt.Sprintf("%s should have been rejected, but was not", s.File))
				continue
			}
			n, _, err := d.imap.Status(d.id.Mailbox, FailedFolder)
			d.res.Rejected = append(d.res.Rejected, Rejection{Sample: s, Reason: rejected, InFailedFolder: err == nil && n > 0})
			if err != nil || n == 0 {
				problems = append(problems, fmt.Sprintf("%s was rejected, but is not in the mailbox folder %s", s.File, FailedFolder))
			}
		case failed != "":
			problems = append(problems, fmt.Sprintf("%s: the fax failed: %s", s.File, failed))
		case rejected != "":
			problems = append(problems, fmt.Sprintf("%s was rejected: %s", s.File, rejected))
		case det == nil:
			problems = append(problems, fmt.Sprintf("%s was never delivered", s.File))
		default:
			f := Fax{Sample: s, Number: dialled, Speed: det["speed"]}
			// The pages of the last call to this sample's number.
			last := 0
			for _, p := range pages {
				if p.Number == dialled && p.Call > last {
					last = p.Call
				}
			}
			for _, p := range pages {
				if p.Call == last && last > 0 {
					f.Pages = append(f.Pages, p)
				}
			}
			d.res.Faxes = append(d.res.Faxes, f)
			want, _ := strconv.Atoi(det["pages"])
			if len(f.Pages) != want || want == 0 {
				problems = append(problems, fmt.Sprintf("%s: the driver reports %d pages sent, the fax line received %d", s.File, want, len(f.Pages)))
			}
			for _, p := range f.Pages {
				if p.Err != nil {
					problems = append(problems, fmt.Sprintf("%s: page %d: %v", s.File, p.Page, p.Err))
				} else if p.Ink == 0 {
					problems = append(problems, fmt.Sprintf("%s: page %d is blank", s.File, p.Page))
				}
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("demo: %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// Print writes the summary: each fax with its received pages, each
// rejected mail with its reason.
func (r *Result) Print(w io.Writer) {
	fmt.Fprintf(w, "\nSummary (%s)\n", r.Elapsed.Round(100*time.Millisecond))
	for _, f := range r.Faxes {
		fmt.Fprintf(w, "  faxed     %-34q to %s at %s, %s:\n", f.Sample.Subject, f.Number, f.Speed, plural(len(f.Pages), "page"))
		for _, p := range f.Pages {
			fmt.Fprintf(w, "              %s\n              %s\n", p.PNG, p.TIFF)
		}
	}
	for _, j := range r.Rejected {
		where := ""
		if j.InFailedFolder {
			where = " (moved to the mailbox folder " + FailedFolder + ")"
		}
		fmt.Fprintf(w, "  rejected  %-34q %s%s\n", j.Sample.Subject, j.Reason, where)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "  skipped   %s\n", s)
	}
	for _, rp := range r.Reports {
		where := ""
		if rp.InMailbox {
			where = " (in " + rp.To + "'s INBOX)"
		}
		fmt.Fprintf(w, "  report    %-34q → %s: %q%s\n", rp.Sample.Subject, rp.To, rp.Subject, where)
	}
	fmt.Fprintf(w, "\nConfiguration: %s\nGateway log:   %s\nFax pages:     %s\n", r.Config, filepath.Join(r.Dir, "gateway.log"), filepath.Join(r.Dir, "received"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
