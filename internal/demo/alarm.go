package demo

// The alarm rig: alarm mails arrive by IMAP IDLE in the Office 365-style
// mailbox (the identity and XOAUTH2 IMAP stand-ins), the real o365 connector
// plugin takes them, the alarm map makes signals of them, and an alarm
// driver delivers them to a test receiver: DC-09 over TCP (dc09rx) or
// Sur-Gard MLR2 over a pty pair (surgardrx).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mediagw/mediagw/examples"
	demofiles "github.com/mediagw/mediagw/examples/demo"
	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/host/activity"
	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/internal/demo/oauthimap"
	"github.com/mediagw/mediagw/linedriver/dc09/dc09rx"
	"github.com/mediagw/mediagw/linedriver/surgard/surgardrx"
	"github.com/mediagw/mediagw/plugin/o365/o365test"

	// The alarm drivers register themselves.
	_ "github.com/mediagw/mediagw/linedriver/dc09"
	_ "github.com/mediagw/mediagw/linedriver/surgard"
)

// AlarmMailbox is the mailbox the alarm mails arrive in.
const AlarmMailbox = "alarms@centre.example"

// KeyEnv is the environment variable the DC-09 config reads its key from.
const KeyEnv = "ALARM_DC09_KEY"

// Alarm drivers of the rig.
const (
	DC09    = "dc09"    // DC-09 ADM-CID, AES-256, over TCP
	SurGard = "surgard" // Sur-Gard MLR2 SIA lines over a pty pair
)

// AlarmRig is everything but the gateway: the identity and mailbox
// stand-ins, the receiver, and a config for the gateway in Dir.
type AlarmRig struct {
	Dir    string
	Config string // the gateway's config file
	Driver string // DC09 or SurGard
	Key    string // the DC-09 AES key, hex (also in the process environment as KeyEnv)

	ID      *o365test.Identity
	IMAP    *oauthimap.Server
	DC09    *dc09rx.Receiver    // when Driver is DC09
	SurGard *surgardrx.Receiver // when Driver is SurGard
	Device  string              // the pty the surgard driver opens
	Addr    string              // the DC-09 receiver's address

	mu      sync.Mutex
	onEvent func(oauthimap.Event)
}

// AlarmSignal is a signal the receiver acknowledged.
type AlarmSignal struct {
	Account   string
	Event     string // ADM-CID: Q+EEE (1130); SIA: the code (BA)
	Zone      string
	Partition string
	Seq       int // DC-09 sequence number; Sur-Gard lines have none (0)
	Duplicate bool
	Raw       string
}

// AlarmSample is one sample alarm mail.
type AlarmSample struct {
	File    string
	Account string // the transmitter id in its body
	Raw     []byte
	Reject  bool // an event code the map does not know
}

// AlarmSamples reads the sample alarm mails of examples/samples.
func AlarmSamples() ([]*AlarmSample, error) {
	names, err := fs.Glob(examples.FS, "samples/alarm-*.eml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	line := regexp.MustCompile(`(?m)(?:^|>)\s*(\d{4,10})\s+[A-Z]{2}\s+\d{1,4}\s+\d{1,3}\s*(?:$|<)`)
	var out []*AlarmSample
	for _, n := range names {
		raw, err := examples.FS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		s := &AlarmSample{File: filepath.Base(n), Raw: raw, Reject: strings.Contains(n, "unknown")}
		if m := line.FindSubmatch(raw); m != nil {
			s.Account = string(m[1])
		}
		out = append(out, s)
	}
	return out, nil
}

// StartAlarmRig starts the stand-ins and the receiver and writes the
// gateway's config into dir (empty or absent). plugin is the o365
// connector binary. onEvent, when set, sees the mailbox's events.
func StartAlarmRig(dir, driver, plugin string, onEvent func(oauthimap.Event)) (_ *AlarmRig, err error) {
	if driver != DC09 && driver != SurGard {
		return nil, fmt.Errorf("demo: alarm driver %q (want %s or %s)", driver, DC09, SurGard)
	}
	if es, err := os.ReadDir(dir); err == nil && len(es) > 0 {
		return nil, fmt.Errorf("demo: %s is not empty; give an empty or new folder", dir)
	}
	r := &AlarmRig{Dir: dir, Driver: driver, onEvent: onEvent}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if err := os.MkdirAll(filepath.Join(dir, "maps"), 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	m, err := examples.FS.ReadFile("maps/alarm.yaml")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "maps", "alarm.yaml"), m, 0o644); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}

	r.ID, err = o365test.StartIdentity(o365test.IdentityOptions{Mailbox: AlarmMailbox})
	if err != nil {
		return nil, fmt.Errorf("demo: identity stand-in: %w", err)
	}
	if _, err := r.ID.CA.WriteFile(dir); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "client-secret.txt"), []byte(r.ID.Secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	tlsConf, err := r.ID.CA.ServerTLS()
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	r.IMAP, err = oauthimap.Start(oauthimap.Options{
		Verifier: oauthimap.VerifierFor(r.ID), TLS: tlsConf, Users: []string{AlarmMailbox}, OnEvent: r.event,
	})
	if err != nil {
		return nil, fmt.Errorf("demo: IMAP stand-in: %w", err)
	}

	repl := []struct{ key, val string }{
		{"authority_host", r.ID.Host},
		{"imap_host", r.IMAP.Host},
		{"imap_port", strconv.Itoa(r.IMAP.Port)},
		{"plugin", plugin},
	}
	name := "alarm-dc09.yaml"
	switch driver {
	case DC09:
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		r.Key = strings.ToUpper(hex.EncodeToString(key))
		if err := os.Setenv(KeyEnv, r.Key); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		r.DC09 = &dc09rx.Receiver{Key: key}
		addr, err := r.DC09.ListenTCP("127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("demo: DC-09 receiver: %w", err)
		}
		r.Addr = addr
		repl = append(repl, struct{ key, val string }{"address", `"` + addr + `"`})
	case SurGard:
		name = "alarm-surgard.yaml"
		r.SurGard = &surgardrx.Receiver{}
		r.Device, err = r.SurGard.PTY()
		if err != nil {
			return nil, fmt.Errorf("demo: Sur-Gard receiver: %w", err)
		}
		repl = append(repl, struct{ key, val string }{"device", r.Device})
	}
	b, err := demofiles.FS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	s := string(b)
	for _, x := range repl {
		re := regexp.MustCompile(`(?m)(\b` + x.key + `:\s*)[^\s,}#]+`)
		if !re.MatchString(s) {
			return nil, fmt.Errorf("demo: %s has no %s", name, x.key)
		}
		s = re.ReplaceAllString(s, "${1}"+strings.ReplaceAll(x.val, "$", "$$"))
	}
	r.Config = filepath.Join(dir, "mediagw.yaml")
	if err := os.WriteFile(r.Config, []byte(s), 0o644); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return r, nil
}

func (r *AlarmRig) event(e oauthimap.Event) {
	r.mu.Lock()
	f := r.onEvent
	r.mu.Unlock()
	if f != nil {
		f(e)
	}
}

// OnEvent replaces the function that sees the mailbox's events.
func (r *AlarmRig) OnEvent(f func(oauthimap.Event)) {
	r.mu.Lock()
	r.onEvent = f
	r.mu.Unlock()
}

// Env is the environment a gateway process of this rig needs (the key).
func (r *AlarmRig) Env() []string {
	if r.Key == "" {
		return nil
	}
	return []string{KeyEnv + "=" + r.Key}
}

// Deliver puts a mail into the mailbox's INBOX, as mail delivery does.
func (r *AlarmRig) Deliver(raw []byte) error {
	_, err := r.IMAP.Append(AlarmMailbox, "INBOX", raw)
	return err
}

// Acked returns what the receiver acknowledged, in order.
func (r *AlarmRig) Acked() []AlarmSignal {
	var out []AlarmSignal
	if r.DC09 != nil {
		for _, s := range r.DC09.Signals() {
			if s.ID == "NULL" {
				continue
			}
			out = append(out, fromDC09(s))
		}
	}
	if r.SurGard != nil {
		for _, l := range r.SurGard.Lines() {
			if l.Kind == "heartbeat" {
				continue
			}
			out = append(out, AlarmSignal{Account: l.Account, Event: l.Qualifier + l.Event, Zone: l.Zone, Partition: l.Group, Raw: l.Raw})
		}
	}
	return out
}

// fromDC09 reads an ADM-CID (#ACCT|QEEE GG ZZZ) or SIA-DCS (#ACCT|Nri1/BA001)
// message's data.
func fromDC09(s dc09rx.Signal) AlarmSignal {
	a := AlarmSignal{Account: s.Account, Seq: s.Seq, Duplicate: s.Duplicate, Raw: s.Data}
	_, body, _ := strings.Cut(s.Data, "|")
	if f := strings.Fields(body); s.ID == "ADM-CID" && len(f) == 3 {
		a.Event, a.Partition, a.Zone = f[0], f[1], f[2]
	} else if i := strings.IndexByte(body, '/'); i >= 0 && len(body) >= i+3 {
		a.Partition = strings.TrimPrefix(body[:i], "Nri")
		a.Event, a.Zone = body[i+1:i+3], body[i+3:]
	}
	return a
}

// Close stops the receiver and the stand-ins.
func (r *AlarmRig) Close() {
	if r.DC09 != nil {
		r.DC09.Close()
	}
	if r.SurGard != nil {
		r.SurGard.Close()
	}
	if r.IMAP != nil {
		r.IMAP.Close()
	}
	if r.ID != nil {
		r.ID.Close()
	}
}

// AlarmOptions configure RunAlarm.
type AlarmOptions struct {
	Dir     string
	Driver  string // DC09 (default) or SurGard
	Out     io.Writer
	Log     io.Writer // also receives the gateway's log (always in Dir/gateway.log)
	Timeout time.Duration
	Plugin  string // empty: FindPlugin
	// CheckConnectors, when set, hands every connector its settings before
	// the gateway starts and returns the problems.
	CheckConnectors func(*host.Plan) []string
}

// AlarmResult is what RunAlarm saw.
type AlarmResult struct {
	Dir, Config string
	Acked       []AlarmSignal
	Rejected    []string        // sample files moved to the failed folder
	Reasons     []string        // the gateway's reasons for them
	Latency     []time.Duration // from delivery to the receiver's ACK, one per acknowledged mail
}

// RunAlarm runs the alarm demo with the gateway in this process: every
// sample alarm mail is delivered into the mailbox while the connector
// idles; the error says what did not happen (a signal not acknowledged, the
// unknown event not rejected).
func RunAlarm(ctx context.Context, o AlarmOptions) (*AlarmResult, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Driver == "" {
		o.Driver = DC09
	}
	if o.Plugin == "" {
		p, err := FindPlugin()
		if err != nil {
			return nil, err
		}
		o.Plugin = p
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "mediagw-demo-alarm-")
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		o.Dir = d
	}
	start := time.Now()
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(o.Out, "%6.2fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	idling := make(chan struct{}, 1)
	var idleShown bool
	onEvent := func(e oauthimap.Event) {
		switch e.Kind {
		case "login":
			say("mailbox: XOAUTH2 login as %s: token verified (valid until %s)", e.User, e.Expires.Format(time.TimeOnly))
		case "idle":
			outMu.Lock()
			again := idleShown
			idleShown = true
			outMu.Unlock()
			if !again {
				say("mailbox: IDLE: the connector waits for new mail")
			}
			select {
			case idling <- struct{}{}:
			default:
			}
		case "append":
			outMu.Lock()
			idleShown = false
			outMu.Unlock()
		case "fetch":
			say("mailbox: FETCH uid %s BODY.PEEK[] (read, not yet marked)", e.Detail)
		case "store":
			say("mailbox: STORE uid %s (processed)", e.Detail)
		case "move":
			say("mailbox: MOVE uid %s to %q", e.Detail, e.Folder)
		}
	}
	rig, err := StartAlarmRig(o.Dir, o.Driver, o.Plugin, onEvent)
	if err != nil {
		return nil, err
	}
	defer rig.Close()
	res := &AlarmResult{Dir: o.Dir, Config: rig.Config}
	say("identity platform stand-in on https://%s; Office 365 mailbox stand-in %s on imaps://%s (XOAUTH2 only)", rig.ID.Host, AlarmMailbox, rig.IMAP.Addr)
	switch o.Driver {
	case DC09:
		say("DC-09 receiver on %s (ADM-CID, AES-256 key made for this run)", rig.Addr)
	case SurGard:
		say("Sur-Gard automation software on the far end of the serial line %s (a pty pair)", rig.Device)
	}

	cfg, err := config.Load(rig.Config)
	if err != nil {
		return res, fmt.Errorf("demo: %w", err)
	}
	logFile, err := os.Create(filepath.Join(o.Dir, "gateway.log"))
	if err != nil {
		return res, fmt.Errorf("demo: %w", err)
	}
	defer logFile.Close()
	var logOut io.Writer = logFile
	if o.Log != nil {
		logOut = io.MultiWriter(logFile, o.Log)
	}
	log := slog.New(&tap{next: slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}), fn: func(msg string, level slog.Level, a map[string]string) {
		switch a["event"] {
		case activity.Routed:
			say("gateway: %s mapped and routed to %s", a["source_id"], strings.Trim(a["drivers"], "[]"))
		case activity.Progress:
			if a["step"] == "sending" {
				say("%s: %s", a["driver"], a["detail"])
			}
		case activity.Retried:
			say("%s: attempt failed (%s: %s); next attempt in %s", a["driver"], a["category"], a["reason"], a["retry_after"])
		case activity.Rejected:
			outMu.Lock()
			res.Reasons = append(res.Reasons, a["reason"])
			outMu.Unlock()
			say("gateway: REJECTED %s: %s", a["source_id"], a["reason"])
		}
	}})
	plan, err := host.Prepare(cfg, log)
	if err != nil {
		return res, fmt.Errorf("demo: %w", err)
	}
	if o.CheckConnectors != nil {
		if problems := o.CheckConnectors(plan); len(problems) > 0 {
			plan.Close()
			return res, fmt.Errorf("demo: the connector refused its settings:\n%s", strings.Join(problems, "\n"))
		}
	}
	h, err := host.New(plan, log)
	if err != nil {
		plan.Close()
		return res, fmt.Errorf("demo: %w", err)
	}
	say("gateway: connector alarms (%s, a plugin process) → map alarm → driver alarm-primary (%s)", PluginName, o.Driver)
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- h.Run(hctx, plan) }()
	fail := func(err error) (*AlarmResult, error) {
		stop()
		<-done
		return res, fmt.Errorf("demo: %w\nthe gateway's full log: %s", err, filepath.Join(o.Dir, "gateway.log"))
	}
	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	select {
	case <-idling:
	case err := <-done:
		return res, fmt.Errorf("demo: the gateway stopped before the connector idled: %v", err)
	case <-deadline.C:
		return fail(fmt.Errorf("the connector never reached IDLE within %s", o.Timeout))
	case <-ctx.Done():
		return fail(ctx.Err())
	}

	samples, err := AlarmSamples()
	if err != nil {
		return fail(err)
	}
	shown := 0
	showAcks := func() {
		acked := rig.Acked()
		for _, a := range acked[shown:] {
			seq := ""
			if o.Driver == DC09 {
				seq = fmt.Sprintf(", sequence %04d", a.Seq)
				if a.Duplicate {
					seq += " (a repeat)"
				}
			}
			say("receiver: ACK account %s, event %s, zone %s, partition %s%s  [%s]", a.Account, a.Event, a.Zone, a.Partition, seq, a.Raw)
		}
		shown = len(acked)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	waitFor := func(what string, cond func() bool) error {
		for !cond() {
			select {
			case err := <-done:
				done <- err
				return fmt.Errorf("the gateway stopped while waiting for %s: %v", what, err)
			case <-deadline.C:
				return fmt.Errorf("timed out after %s waiting for %s", o.Timeout, what)
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
				showAcks()
			}
		}
		showAcks()
		return nil
	}
	ackedAccount := func(acct string) bool {
		for _, a := range rig.Acked() {
			if a.Account == acct {
				return true
			}
		}
		return false
	}
	want := 0
	for _, s := range samples {
		// Each mail while the connector idles: what IDLE notices.
		if err := waitFor("the connector back in IDLE", func() bool {
			outMu.Lock()
			defer outMu.Unlock()
			return idleShown
		}); err != nil {
			return fail(err)
		}
		t0 := time.Now()
		if err := rig.Deliver(s.Raw); err != nil {
			return fail(err)
		}
		say("mail arrives in INBOX: %s (transmitter %s)", s.File, s.Account)
		if s.Reject {
			failedBefore, _, _ := rig.IMAP.Status(AlarmMailbox, FailedFolder)
			if err := waitFor(s.File+" moved to "+FailedFolder, func() bool {
				n, _, _ := rig.IMAP.Status(AlarmMailbox, FailedFolder)
				return n > failedBefore
			}); err != nil {
				return fail(err)
			}
			res.Rejected = append(res.Rejected, s.File)
			continue
		}
		want++
		if err := waitFor("the ACK of "+s.File, func() bool { return ackedAccount(s.Account) }); err != nil {
			return fail(err)
		}
		res.Latency = append(res.Latency, time.Since(t0))
		say("%s: mail to ACK in %s", s.File, time.Since(t0).Round(time.Millisecond))
	}
	if err := waitFor("INBOX all processed", func() bool {
		_, unseen, err := rig.IMAP.Status(AlarmMailbox, "INBOX")
		return err == nil && unseen == 0
	}); err != nil {
		return fail(err)
	}
	stop()
	if err := <-done; err != nil {
		return res, fmt.Errorf("demo: gateway: %w", err)
	}
	say("gateway stopped")
	res.Acked = rig.Acked()
	var problems []string
	for _, s := range samples {
		if !s.Reject && !ackedAccount(s.Account) {
			problems = append(problems, s.File+": no signal acknowledged")
		}
	}
	if len(res.Rejected) != len(samples)-want {
		problems = append(problems, fmt.Sprintf("%d mails rejected, want %d", len(res.Rejected), len(samples)-want))
	}
	if len(problems) > 0 {
		return res, errors.New("demo: " + strings.Join(problems, "\n  "))
	}
	return res, nil
}
