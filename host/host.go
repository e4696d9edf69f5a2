// Package host is the gateway daemon: it turns a config into running
// connectors (plugin processes), data maps and line drivers joined by the
// durable spool, keeps them running, and reloads what changed on SIGHUP.
package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediagw/mediagw/datamap"
	"github.com/mediagw/mediagw/host/activity"
	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/delivery"
	"github.com/mediagw/mediagw/host/inbound"
	"github.com/mediagw/mediagw/host/metrics"
	"github.com/mediagw/mediagw/host/ownership"
	"github.com/mediagw/mediagw/host/pipeline"
	"github.com/mediagw/mediagw/host/pluginmgr"
	"github.com/mediagw/mediagw/host/report"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/host/spool/pgspool"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/plugin"
	"gopkg.in/yaml.v3"

	// Built-in line drivers register themselves.
	_ "github.com/mediagw/mediagw/linedriver/dc09"
	_ "github.com/mediagw/mediagw/linedriver/faxmodem"
	_ "github.com/mediagw/mediagw/linedriver/file"
	_ "github.com/mediagw/mediagw/linedriver/surgard"
)

// Plan is a config with everything built that can be built without side
// effects: data maps compiled, drivers constructed, plugin configs encoded.
type Plan struct {
	Config     *config.Config
	Maps       map[string]*datamap.Map
	Drivers    map[string]linedriver.Driver
	DriverFP   map[string]string // fingerprint of each driver's config
	Connectors map[string]*ConnectorPlan
	// Reports are the notify sections of the connectors whose map has one.
	Reports map[string]*report.Config
	// Inbound routes received faxes; Mailers are the connectors its mail
	// targets send through (each gets a mail driver).
	Inbound *inbound.Router
	Mailers []string
}

// ConnectorPlan is one connector ready to launch.
type ConnectorPlan struct {
	Name   string
	Config *config.Connector
	JSON   []byte
	FP     string // fingerprint: changes when anything the connector uses changes
}

// Prepare builds a plan from a loaded config; the error lists every problem.
func Prepare(cfg *config.Config, log *slog.Logger) (*Plan, error) {
	p := &Plan{Config: cfg, Maps: map[string]*datamap.Map{}, Drivers: map[string]linedriver.Driver{},
		DriverFP: map[string]string{}, Connectors: map[string]*ConnectorPlan{}, Reports: map[string]*report.Config{}}
	e := &config.Error{}
	router, err := inbound.Compile(cfg, filepath.Join(cfg.Resolve(cfg.Spool.Dir), inbound.UnroutedName))
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			e.Problems = append(e.Problems, ce.Problems...)
		} else {
			e.Problems = append(e.Problems, err.Error())
		}
	} else {
		p.Inbound = router
	}
	for _, name := range config.SortedKeys(cfg.Maps) {
		file := cfg.Resolve(cfg.Maps[name])
		spec, err := datamap.LoadFile(file)
		if err == nil {
			p.Maps[name], err = datamap.Compile(name, spec)
		}
		if err != nil {
			e.Problems = append(e.Problems, fmt.Sprintf("%s: map %s: %v", cfg.At("maps."+name), name, err))
		}
	}
	for _, name := range config.SortedKeys(cfg.Drivers) {
		dc := cfg.Drivers[name]
		f, ok := linedriver.Lookup(dc.Type)
		if !ok {
			e.Problems = append(e.Problems, fmt.Sprintf("%s: driver %s: unknown type %q (built in: %s)",
				cfg.At("drivers."+name), name, dc.Type, strings.Join(linedriver.Types(), ", ")))
			continue
		}
		opts, err := config.NodeJSON(&dc.Options)
		if err == nil {
			var d linedriver.Driver
			d, err = f(name, opts, log.With("driver", name))
			if err == nil {
				if bd, ok := d.(linedriver.BaseDirSetter); ok {
					bd.SetBaseDir(filepath.Dir(cfg.File))
				}
				p.Drivers[name] = d
				p.DriverFP[name] = fingerprint(dc.Type, fmt.Sprint(dc.MaxAttempts), string(opts), fmt.Sprint(dc.RunsOn(cfg.Gateway)))
			}
		}
		if err != nil {
			// A problem with one option points at that option's line.
			at := cfg.At("drivers." + name)
			var oe *linedriver.OptionError
			if errors.As(err, &oe) && oe.Key != "" && dc.Options.Kind != 0 {
				at = fmt.Sprintf("%s:%d", cfg.File, config.KeyLine(&dc.Options, oe.Key))
			}
			e.Problems = append(e.Problems, fmt.Sprintf("%s: %v", at, err))
		}
	}
	if p.Inbound != nil {
		if err := addInboundDrivers(cfg, p, log); err != nil {
			e.Problems = append(e.Problems, err.Error())
		}
	}
	for _, name := range config.SortedKeys(cfg.Connectors) {
		cc := cfg.Connectors[name]
		js, err := config.NodeJSON(&cc.Config)
		if err != nil {
			e.Problems = append(e.Problems, fmt.Sprintf("%s: connector %s: config: %v", cfg.At("connectors."+name), name, err))
			continue
		}
		if m := p.Maps[cc.Map]; m != nil {
			for _, d := range m.Drivers() {
				if _, ok := cfg.Drivers[d]; !ok {
					e.Problems = append(e.Problems, fmt.Sprintf("%s: connector %s: map %s routes to driver %q, which is not defined under drivers:",
						cfg.At("connectors."+name), name, cc.Map, d))
				}
			}
		}
		parts := []string{cc.PluginPath, cc.Checksum, string(js), fmt.Sprint(cc.MaxInFlight), strings.Join(cc.Routes, ","), cc.Map}
		if mapFile, ok := cfg.Maps[cc.Map]; ok {
			if b, err := os.ReadFile(cfg.Resolve(mapFile)); err == nil {
				parts = append(parts, string(b))
			}
		}
		drivers := append([]string(nil), cc.Routes...)
		if m := p.Maps[cc.Map]; m != nil {
			drivers = append(drivers, m.Drivers()...)
		}
		sort.Strings(drivers)
		for _, d := range drivers {
			parts = append(parts, p.DriverFP[d])
		}
		p.Connectors[name] = &ConnectorPlan{Name: name, Config: cc, JSON: js, FP: fingerprint(parts...)}
		if m := p.Maps[cc.Map]; m != nil {
			if n := m.Notify(); n != nil {
				ts, err := report.LoadTemplates(n, filepath.Dir(cfg.Resolve(cfg.Maps[cc.Map])))
				if err != nil {
					e.Problems = append(e.Problems, fmt.Sprintf("%s: map %s: notify: %v", cfg.At("maps."+cc.Map), cc.Map, err))
					continue
				}
				p.Reports[name] = &report.Config{Notify: n, Templates: ts}
			}
		}
	}
	if len(e.Problems) > 0 {
		p.Close()
		return nil, e
	}
	return p, nil
}

// addInboundDrivers adds a file driver for each folder the inbound routes
// write to (named folder:ROUTE, so that status shows its queue like any
// driver's; its entry under the config's drivers is made too), and lists
// the connectors that mail faxes. A gateway without inbound routes and
// without a receiving driver gets none.
func addInboundDrivers(cfg *config.Config, p *Plan, log *slog.Logger) error {
	receives := cfg.HasInbound()
	for _, d := range p.Drivers {
		if _, ok := d.(linedriver.Receiver); ok {
			receives = true
		}
	}
	if !receives {
		return nil
	}
	mailers := map[string]bool{}
	file, _ := linedriver.Lookup("file")
	for _, t := range p.Inbound.Drivers() {
		if t.Mail != nil {
			mailers[t.Mail.Connector] = true
			continue
		}
		opts, err := json.Marshal(map[string]string{"dir": t.Folder})
		if err != nil {
			return err
		}
		d, err := file(t.Driver, opts, log.With("driver", t.Driver))
		if err != nil {
			return fmt.Errorf("%s: inbound: %w", cfg.File, err)
		}
		var node yaml.Node
		_ = node.Encode(map[string]string{"dir": t.Folder})
		if cfg.Drivers == nil {
			cfg.Drivers = map[string]*config.Driver{}
		}
		cfg.Drivers[t.Driver] = &config.Driver{Type: "file", Options: node}
		p.Drivers[t.Driver] = d
		p.DriverFP[t.Driver] = fingerprint("file", "0", string(opts))
	}
	p.Mailers = config.SortedKeys(mailers)
	return nil
}

// Close releases the drivers of a plan that will not run.
func (p *Plan) Close() {
	for _, d := range p.Drivers {
		d.Close()
	}
}

func fingerprint(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ConfigError points a plugin's diagnostic at its line in the config file.
func ConfigError(cfg *config.Config, name string) func(plugin.Diagnostic) string {
	cc := cfg.Connectors[name]
	return func(d plugin.Diagnostic) string {
		line := cc.Line
		if cc.Config.Kind != 0 {
			line = config.KeyLine(&cc.Config, d.Field)
		}
		field := d.Field
		if field != "" {
			field = "config." + field + ": "
		}
		return fmt.Sprintf("%s:%d: connector %s: %s%s", cfg.File, line, name, field, d.Message)
	}
}

// Host runs a plan.
type Host struct {
	log   *slog.Logger
	spool spool.Store
	// maint is the spool's compaction, when its backend keeps a file of
	// its own (bbolt); nil otherwise.
	maint spool.Maintainer
	// Backoff makes the relaunch schedule of crashed plugins; tests shorten it.
	Backoff func() *pluginmgr.Backoff
	// WrapSender, when set, replaces the sender of each launched connector
	// (tests put a recording sender there); the connector then counts as
	// able to send.
	WrapSender func(connector string, s plugin.Sender) plugin.Sender

	// gateway is this gateway's name; owner decides which connectors it
	// runs (ownership.Single until Share); shared is set by Share.
	gateway string
	owner   ownership.Owner
	shared  *shared

	hub     *activity.Hub
	metrics *metrics.Metrics
	now     func() time.Time // the clock of pruning (tests move it)
	reports *report.Service

	// drained wakes Run when the spool's queue became empty (a moment to
	// compact); compactions counts compactions, lastAuto is the last
	// automatic check that compacted.
	drained     chan struct{}
	compactMu   sync.Mutex
	compactions atomic.Int64
	lastAuto    time.Time

	// applyMu serialises apply and stopAll, which wait for units to stop;
	// mu guards the fields below and is never held while waiting, so that
	// Status answers during a reload or a stop.
	applyMu   sync.Mutex
	mu        sync.Mutex
	plan      *Plan
	drivers   map[string]*driverUnit
	rmu       sync.Mutex                     // guards reporters and pdfMakers (written under mu too)
	reporters map[string]*driverUnit         // per connector with notify
	mailers   map[string]*driverUnit         // per connector that mails received faxes
	pdfMakers map[string]linedriver.PDFMaker // running drivers that make pages
	conns     map[string]*connUnit
	stopping  bool

	// wakers are the running dispatchers by driver name, for the spool's
	// Wake hook; a lock of their own, as a wake comes from a commit that a
	// holder of mu may be waiting for.
	wakeMu sync.RWMutex
	wakers map[string]func()

	// inbound keeps received faxes; routes are the inbound routes in force.
	inbound *inbound.Store
	routes  atomic.Pointer[inbound.Router]
}

type driverUnit struct {
	fp     string
	driver linedriver.Driver
	disp   *delivery.Dispatcher
	cancel context.CancelFunc
	done   chan struct{}
}

type connUnit struct {
	fp     string
	state  *pluginmgr.State
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	inst  *pluginmgr.Instance // the running plugin, nil between launches
	lease *ownership.Lease    // held while this gateway owns the connector
}

// New opens the spool of the plan's config. The activity lines of
// everything the host runs also go to its activity hub (Activity), and
// from there to its metrics (Metrics).
func New(p *Plan, log *slog.Logger) (*Host, error) {
	sp, err := OpenSpool(context.Background(), p.Config)
	if err != nil {
		return nil, err
	}
	hub := activity.NewHub()
	if u, ok := sp.(interface{ Upgraded() *spool.Upgrade }); ok && u.Upgraded() != nil {
		up := u.Upgraded()
		log.Info("spool upgraded in place", "component", "spool", "from_format", up.From, "to_format", up.To,
			"queued_jobs", up.Jobs, "failed_jobs", up.Failed, "undecodable", up.Undecodable)
	}
	h := &Host{log: slog.New(hub.Handler(log.Handler())), spool: sp, Backoff: pluginmgr.DefaultBackoff, hub: hub, now: time.Now,
		gateway: p.Config.Gateway, owner: ownership.Single{Gateway: p.Config.Gateway},
		drivers: map[string]*driverUnit{}, reporters: map[string]*driverUnit{}, mailers: map[string]*driverUnit{}, pdfMakers: map[string]linedriver.PDFMaker{},
		conns: map[string]*connUnit{}, drained: make(chan struct{}, 1), wakers: map[string]func(){}}
	if m, ok := sp.(spool.Maintainer); ok {
		h.maint = m
	}
	if ps, ok := sp.(*pgspool.Store); ok {
		// Shared with other gateways: connectors run under leases, and the
		// gateway keeps its row in the registry.
		h.Share(ps.Pool(), time.Duration(p.Config.Spool.TakeoverAfter), Version)
	}
	sp.Wake(h.wake)
	h.reports = report.NewService(h.log.With("component", "report"))
	h.routes.Store(p.Inbound)
	// Received pages wait on this machine's disk, whatever the spool's
	// backend, until their call ends.
	h.inbound = inbound.New(filepath.Join(p.Config.Resolve(p.Config.Spool.Dir), "inbound"), sp, h.routes.Load, h.log.With("component", "inbound"))
	h.metrics = metrics.New(h.metricsSnapshot)
	hub.Observe(h.metrics.Observe)
	if h.maint != nil {
		h.maint.OnDrained(func() {
			select {
			case h.drained <- struct{}{}:
			default:
			}
		})
	}
	slog := h.log.With("component", "spool")
	sp.OnHealthChange(func(old, new spool.Health) {
		if new.Health == spool.Healthy {
			slog.Info("spool health", "health", new.Health, "was", old.Health, "write_errors", new.WriteErrors, "deferrals", new.Deferrals)
		} else {
			slog.Warn("spool health", "health", new.Health, "was", old.Health, "error", new.LastError)
		}
	})
	sp.OnQuarantine(func(q spool.Quarantined) {
		slog.Error("spool entry quarantined: it cannot be decoded; its queue goes on", "bucket", q.Bucket, "key", q.Key, "error", q.Error)
	})
	return h, nil
}

// Activity is the hub of the gateway's activity events.
func (h *Host) Activity() *activity.Hub { return h.hub }

// Metrics serves the gateway's Prometheus metrics.
func (h *Host) Metrics() http.Handler { return h.metrics.Handler() }

// Spool returns the host's spool (for status).
func (h *Host) Spool() spool.Store { return h.spool }

// wake tells the dispatcher of driver that jobs may be due (the spool's
// Wake hook).
func (h *Host) wake(driver string) {
	h.wakeMu.RLock()
	f := h.wakers[driver]
	h.wakeMu.RUnlock()
	if f != nil {
		f()
	}
}

func (h *Host) setWaker(driver string, f func()) {
	h.wakeMu.Lock()
	if f == nil {
		delete(h.wakers, driver)
	} else {
		h.wakers[driver] = f
	}
	h.wakeMu.Unlock()
}

// Reports returns the host's report service (its clock, its counts).
func (h *Host) Reports() *report.Service { return h.reports }

// Run starts the plan and runs until ctx ends; then it stops the connectors
// first (no new messages), then the drivers (attempts in progress end and
// are recorded), then closes the spool.
func (h *Host) Run(ctx context.Context, p *Plan) error {
	if h.shared != nil {
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); h.shared.registry.Run(rctx) }()
		defer func() { stop(); <-done }()
	}
	h.apply(p)
	h.prune()
	h.recoverCalls(ctx)
	ticker := time.NewTicker(time.Hour)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			h.stopAll()
			return h.spool.Close()
		case <-h.drained:
			h.autoCompact(ctx, "queue empty")
		case <-ticker.C:
			h.mu.Lock()
			keep := time.Duration(h.plan.Config.Spool.ForgetAfter) // as last reloaded
			h.mu.Unlock()
			n, err := h.spool.Forget(ctx, time.Now().Add(-keep))
			if err != nil {
				h.log.Error("spool: forget old source ids", "error", err)
			} else if n > 0 {
				h.log.Info("forgot old source ids", "count", n)
			}
			h.prune()
			h.recoverCalls(ctx)
			h.autoCompact(ctx, "hourly")
		}
	}
}

// Inbound is the host's store of received faxes (the linedriver.Inbound
// it hands receiving drivers).
func (h *Host) Inbound() *inbound.Store { return h.inbound }

// recoverCalls finishes the received calls an earlier run left on disk.
func (h *Host) recoverCalls(ctx context.Context) {
	if err := h.inbound.Recover(ctx); err != nil {
		h.log.Error("inbound: calls left on disk could not be finished; they are tried again in an hour", "error", err)
	}
}

// receive runs a receiving driver's Receive until ctx ends; a Receive that
// fails is started again after a pause, one that returns nil has no line
// that answers.
func (h *Host) receive(ctx context.Context, name string, r linedriver.Receiver) {
	log := h.log.With("driver", name)
	in := driverInbound{h.inbound, name}
	for wait := 5 * time.Second; ctx.Err() == nil; wait = min(2*wait, 5*time.Minute) {
		err := r.Receive(ctx, in)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			log.Debug("driver receives no calls")
			return
		}
		log.Error("receiving stopped; starting again", "error", err, "in", wait.String())
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// driverInbound is the Inbound a driver receives into: a call it does not
// name the driver of is its own.
type driverInbound struct {
	*inbound.Store
	name string
}

func (d driverInbound) Begin(ctx context.Context, call *linedriver.Call) error {
	if call.Driver == "" {
		call.Driver = d.name
	}
	return d.Store.Begin(ctx, call)
}

// prune removes the failed jobs older than spool.failed_retention.
func (h *Host) prune() {
	h.mu.Lock()
	keep := time.Duration(h.plan.Config.Spool.FailedRetention)
	h.mu.Unlock()
	if keep <= 0 {
		return
	}
	n, err := h.spool.PruneFailed(context.Background(), h.now().Add(-keep))
	if err != nil {
		h.log.Error("spool: prune failed jobs", "error", err)
	} else if n > 0 {
		activity.Log(h.log, activity.Pruned, slog.Int("count", n), slog.String("older_than", keep.String()))
	}
}

// Reload applies a new plan: units whose configuration is unchanged keep
// running; changed, new and removed ones are restarted, started, stopped.
func (h *Host) Reload(p *Plan) { h.apply(p) }

// apply runs in three steps so that the status never waits for a unit to
// wind down: the units to replace are detached under h.mu, waited for
// without it (connectors first, so no message is routed to a driver being
// replaced), and then the new ones start under h.mu again. applyMu keeps
// two applies (a reload and the stop) from interleaving.
func (h *Host) apply(p *Plan) {
	// A reload that comes while the gateway stops must not start anything
	// on a spool that is closing, nor wait for the stop.
	if h.isStopping() {
		p.Close()
		return
	}
	h.applyMu.Lock()
	defer h.applyMu.Unlock()

	h.mu.Lock()
	if h.stopping {
		h.mu.Unlock()
		p.Close()
		return
	}
	h.plan = p
	var conns []*connUnit
	for name, u := range h.conns {
		if np, ok := p.Connectors[name]; !ok || np.FP != u.fp {
			h.log.Info("stopping connector", "connector", name, "why", why(ok))
			u.cancel()
			conns = append(conns, u)
			delete(h.conns, name)
		}
	}
	var drivers []*driverUnit
	for name, u := range h.drivers {
		if fp, ok := p.DriverFP[name]; !ok || fp != u.fp || !p.Config.Drivers[name].RunsOn(h.gateway) {
			h.log.Info("stopping driver", "driver", name, "why", why(ok))
			drivers = append(drivers, u)
			delete(h.drivers, name)
			h.setWaker(u.driver.Name(), nil)
		}
	}
	h.reports.SetConfigs(p.Reports)
	h.routes.Store(p.Inbound)
	var reporters []*driverUnit
	for name, u := range h.reporters {
		if _, ok := p.Reports[name]; !ok {
			reporters = append(reporters, u)
			h.rmu.Lock()
			delete(h.reporters, name)
			h.rmu.Unlock()
			h.setWaker(u.driver.Name(), nil)
		}
	}
	for name, u := range h.mailers {
		if !slices.Contains(p.Mailers, name) {
			reporters = append(reporters, u)
			h.rmu.Lock()
			delete(h.mailers, name)
			h.rmu.Unlock()
			h.setWaker(u.driver.Name(), nil)
		}
	}
	h.mu.Unlock()

	stopUnits(conns, drivers, reporters)

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopping {
		// The gateway began to stop while the old units wound down.
		for name, d := range p.Drivers {
			if u, running := h.drivers[name]; !running || u.driver != d {
				d.Close()
			}
		}
		return
	}
	for name := range p.Reports {
		if _, running := h.reporters[name]; running {
			continue
		}
		// A report has its own dispatcher and slots: one that cannot be
		// sent never holds up a fax.
		d := report.NewDriver(name, h.reports, h.log.With("driver", report.DriverName(name)))
		d.PDF = h.pagesPDF
		ctx, cancel := context.WithCancel(context.Background())
		u := &driverUnit{driver: d, cancel: cancel, done: make(chan struct{}),
			disp: delivery.New(d, h.spool, h.log.With("driver", d.Name()), report.MaxAttempts)}
		h.rmu.Lock()
		h.reporters[name] = u
		h.rmu.Unlock()
		h.setWaker(d.Name(), u.disp.Notify)
		go func() { defer close(u.done); u.disp.Run(ctx) }()
		h.log.Info("reports on", "connector", name, "driver", d.Name(), "events", p.Reports[name].Notify.Events, "to", p.Reports[name].Notify.To)
	}
	for _, name := range p.Mailers {
		if _, running := h.mailers[name]; running {
			continue
		}
		// Received faxes mailed through a connector have a dispatcher of
		// their own, beside its reports'.
		d := report.NewMailDriver(name, h.reports, h.log.With("driver", report.MailDriverName(name)))
		ctx, cancel := context.WithCancel(context.Background())
		u := &driverUnit{driver: d, cancel: cancel, done: make(chan struct{}),
			disp: delivery.New(d, h.spool, h.log.With("driver", d.Name()), report.MaxAttempts)}
		h.rmu.Lock()
		h.mailers[name] = u
		h.rmu.Unlock()
		h.setWaker(d.Name(), u.disp.Notify)
		go func() { defer close(u.done); u.disp.Run(ctx) }()
	}
	for name, d := range p.Drivers {
		if _, running := h.drivers[name]; running {
			if d != h.drivers[name].driver {
				d.Close() // the running one is kept
			}
			continue
		}
		if !p.Config.Drivers[name].RunsOn(h.gateway) {
			// Its lines are on other gateways: records are routed to it
			// (its Check runs here) and its jobs wait for them.
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		u := &driverUnit{fp: p.DriverFP[name], driver: d, cancel: cancel, done: make(chan struct{}),
			disp: delivery.New(d, h.spool, h.log.With("driver", name), p.Config.Drivers[name].MaxAttempts)}
		u.disp.FollowUps, u.disp.FollowedUp = h.reports.FollowUps, h.wakeReporters
		h.drivers[name] = u
		if st, ok := d.(linedriver.Starter); ok {
			st.Start()
		}
		h.setWaker(d.Name(), u.disp.Notify)
		rcv, receives := d.(linedriver.Receiver)
		go func() {
			defer close(u.done)
			var wg sync.WaitGroup
			if receives {
				// The driver takes calls in while it runs (a modem set to
				// answer); its pages go to the inbound store.
				wg.Go(func() { h.receive(ctx, name, rcv) })
			}
			u.disp.Run(ctx)
			wg.Wait()
		}()
		h.log.Info("driver started", "driver", name, "type", p.Config.Drivers[name].Type, "slots", d.Slots())
	}
	h.rmu.Lock()
	clear(h.pdfMakers)
	for name, u := range h.drivers {
		if pm, ok := u.driver.(linedriver.PDFMaker); ok {
			h.pdfMakers[name] = pm
		}
	}
	h.rmu.Unlock()
	for name, cp := range p.Connectors {
		if _, running := h.conns[name]; running {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		u := &connUnit{fp: cp.FP, cancel: cancel, done: make(chan struct{}), state: &pluginmgr.State{Health: plugin.HealthStarting, Since: time.Now()}}
		h.conns[name] = u
		pl := h.pipelineFor(p, cp)
		go func() { defer close(u.done); h.supervise(ctx, p, cp, pl, u) }()
	}
}

func dirOf(p *Plan) string { return filepath.Dir(p.Config.File) }

func (h *Host) isStopping() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopping
}

// stopUnits stops detached units, the caller holding no lock: the
// connectors first (they were cancelled already, so no new message comes),
// then the drivers, whose attempts in progress end and are recorded, then
// the report drivers of connectors that no longer send reports.
func stopUnits(conns []*connUnit, drivers, reporters []*driverUnit) {
	for _, u := range conns {
		u.cancel()
		<-u.done
	}
	for _, u := range drivers {
		u.cancel()
	}
	for _, u := range drivers {
		<-u.done
		u.driver.Close()
	}
	for _, u := range reporters {
		u.cancel()
		<-u.done
	}
}

func why(stillConfigured bool) string {
	if stillConfigured {
		return "configuration changed"
	}
	return "removed from configuration"
}

func (h *Host) pipelineFor(p *Plan, cp *ConnectorPlan) *pipeline.Pipeline {
	targets := map[string]pipeline.Target{}
	for name, u := range h.drivers {
		targets[name] = pipeline.Target{Driver: u.driver}
	}
	for name, d := range p.Drivers {
		if _, ok := targets[name]; !ok {
			targets[name] = pipeline.Target{Driver: d} // run by other gateways
		}
	}
	pl := &pipeline.Pipeline{
		Connector: cp.Name, Mapper: dataMap{p.Maps[cp.Config.Map]}, Targets: targets, Routes: cp.Config.Routes,
		Spool: h.spool, Log: h.log.With("connector", cp.Name), MaxInFlight: cp.Config.MaxInFlight, RetryAfter: 30 * time.Second,
	}
	if u := h.reporters[cp.Name]; u != nil {
		pl.OnReject, pl.FollowedUp = h.reports.Rejected, u.disp.Notify
	}
	return pl
}

// pagesPDF makes the PDF of a delivered job's pages with the driver that
// delivered it, when that driver makes pages.
func (h *Host) pagesPDF(ctx context.Context, job *linedriver.Job) ([]byte, error) {
	h.rmu.Lock()
	d := h.pdfMakers[job.Driver]
	h.rmu.Unlock()
	if d == nil {
		return nil, fmt.Errorf("driver %s makes no pages", job.Driver)
	}
	return d.PagesPDF(ctx, job)
}

// wakeReporters tells the report dispatchers that new reports may be due.
// It runs from a driver's dispatcher, which apply may be waiting for while
// it holds mu: so the reporters have a lock of their own.
func (h *Host) wakeReporters() {
	h.rmu.Lock()
	defer h.rmu.Unlock()
	for _, u := range h.reporters {
		u.disp.Notify()
	}
}

// supervise runs the connector while this gateway owns it: it waits for
// the connector's lease (at once with one gateway), runs the plugin until
// the lease is lost or ctx ends, and then waits for the lease again. On a
// loss the plugin is killed at once, so that it neither reads nor settles
// anything after; on a stop the lease is handed back for another gateway
// to take at once.
func (h *Host) supervise(ctx context.Context, p *Plan, cp *ConnectorPlan, pl *pipeline.Pipeline, u *connUnit) {
	st := u.state
	log := h.log.With("connector", cp.Name)
	_, alone := h.owner.(ownership.Single)
	for ctx.Err() == nil {
		if !alone {
			setHealth(st, log, ConnectorStandby, "another gateway owns this connector", func(s *pluginmgr.State) { s.Pid = 0 })
		}
		lease, err := h.owner.Acquire(ctx, cp.Name)
		if err != nil {
			break // ctx ended
		}
		u.setLease(lease)
		h.kickRegistry()
		owned, cancel := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			select {
			case <-lease.Lost():
				if ctx.Err() == nil {
					log.Warn("connector's lease lost: plugin stopped; waiting to own it again", "epoch", lease.Epoch)
				}
				if inst := u.instance(); inst != nil {
					inst.Kill()
				}
				cancel()
			case <-owned.Done():
			}
		}()
		run := owned
		if lease.Epoch > 0 {
			// The accepts of this run carry the lease's fence.
			run = ownership.WithFence(owned, lease.Fence())
		}
		h.runPlugin(run, p, cp, pl, u)
		cancel()
		<-watched
		lease.Release()
		u.setLease(nil)
		h.kickRegistry()
	}
	st.Set(func(s *pluginmgr.State) {
		s.Health, s.Pid, s.Since, s.Message = plugin.HealthDown, 0, time.Now(), "stopped"
	})
}

// ConnectorStandby is the health of a connector that another gateway of
// the group runs now: this one takes it over when that one stops.
const ConnectorStandby plugin.HealthState = "standby"

// runPlugin launches the connector's plugin, runs its pipeline, and
// relaunches the plugin with backoff whenever it fails, until ctx ends.
func (h *Host) runPlugin(ctx context.Context, p *Plan, cp *ConnectorPlan, pl *pipeline.Pipeline, u *connUnit) {
	st := u.state
	log := h.log.With("connector", cp.Name)
	backoff := h.Backoff()
	for ctx.Err() == nil {
		started := time.Now()
		inst, err := pluginmgr.Launch(ctx, pluginmgr.Spec{
			Name: cp.Name, Path: cp.Config.PluginPath, Dir: filepath.Dir(p.Config.File), Checksum: cp.Config.Checksum, ConfigJSON: cp.JSON,
			MaxInFlight: cp.Config.MaxInFlight, Log: log, ConfigError: ConfigError(p.Config, cp.Name),
		})
		if err == nil {
			setHealth(st, log, plugin.HealthHealthy, "", func(s *pluginmgr.State) { s.Pid = inst.Pid })
			log.Info("plugin started", "plugin", cp.Config.PluginPath, "pid", inst.Pid, "name", inst.Info.Name, "version", inst.Info.Version)
			u.setInstance(inst)
			if ctx.Err() != nil {
				// The lease was lost while the plugin started: the
				// watcher may have missed this instance.
				inst.Kill()
			}
			h.setSender(cp.Name, inst)
			hctx, hcancel := context.WithCancel(ctx)
			watched := make(chan struct{})
			go func() { defer close(watched); h.watchHealth(hctx, inst.Connector, st, log) }()
			err = pl.Run(ctx, inst.Connector)
			hcancel()
			<-watched // no health report of this plugin lands after it is gone
			u.setInstance(nil)
			h.reports.SetSender(cp.Name, nil, false, false)
			inst.Kill()
		}
		if ctx.Err() != nil {
			break
		}
		wait := backoff.Next(time.Since(started))
		if errors.Is(err, pluginmgr.ErrConfig) {
			wait = backoff.Max
		}
		log.Error("connector stopped; relaunching", "error", err, "in", wait.String())
		setHealth(st, log, plugin.HealthDown, "", func(s *pluginmgr.State) {
			s.LastError, s.Pid = err.Error(), 0
			s.Restarts++
		})
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

func (u *connUnit) setLease(l *ownership.Lease) {
	u.mu.Lock()
	u.lease = l
	u.mu.Unlock()
}

// owned reports whether this gateway holds the connector's lease now.
func (u *connUnit) owned() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lease != nil
}

func (u *connUnit) setInstance(i *pluginmgr.Instance) {
	u.mu.Lock()
	u.inst = i
	u.mu.Unlock()
}

func (u *connUnit) instance() *pluginmgr.Instance {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.inst
}

// setHealth changes a connector's health and message (and whatever more
// applies), and logs a change of health once: at warn when it gets worse,
// at info when it recovers (a start is logged as "plugin started").
func setHealth(st *pluginmgr.State, log *slog.Logger, health plugin.HealthState, msg string, more func(*pluginmgr.State)) {
	var old plugin.HealthState
	st.Set(func(s *pluginmgr.State) {
		old = s.Health
		if old != health {
			s.Since = time.Now()
		}
		s.Health, s.Message = health, msg
		if more != nil {
			more(s)
		}
	})
	if old == health {
		return
	}
	switch health {
	case plugin.HealthHealthy:
		if old == plugin.HealthStarting {
			return // a start, logged as such, is no recovery
		}
		log.Info("connector health", "health", string(health), "was", string(old))
	case plugin.HealthStarting:
	case ConnectorStandby:
		log.Info("connector on standby: another gateway runs it", "was", string(old))
	default:
		log.Warn("connector health", "health", string(health), "was", string(old), "message", msg)
	}
}

// setSender hands the report service the running plugin's sender, when it
// advertises the send capability (in its Info after Configure: a connector
// lists send only when it is configured to send).
func (h *Host) setSender(name string, inst *pluginmgr.Instance) {
	can := slices.Contains(inst.Info.Capabilities, plugin.CapabilitySend)
	snd, _ := any(inst.Connector).(plugin.Sender)
	if h.WrapSender != nil {
		snd, can = h.WrapSender(name, snd), true
	}
	h.reports.SetSender(name, snd, can, true)
	if !can || snd == nil {
		h.mu.Lock()
		mails := h.plan != nil && slices.Contains(h.plan.Mailers, name)
		h.mu.Unlock()
		if mails {
			h.log.Error("received faxes routed to a mailbox through this connector cannot be sent: its plugin cannot send (configure its send section); they wait in the failed list",
				"connector", name, "driver", report.MailDriverName(name))
		}
	}
}

func (h *Host) watchHealth(ctx context.Context, c plugin.HealthReporter, st *pluginmgr.State, log *slog.Logger) {
	for hl := range c.Health(ctx) {
		if ctx.Err() != nil {
			return
		}
		setHealth(st, log, hl.State, hl.Message, nil)
	}
}

// stopAll stops every unit. From its first step on, no apply starts
// anything; it waits for an apply under way to finish, then detaches the
// units under h.mu and waits for them without it.
func (h *Host) stopAll() {
	h.mu.Lock()
	h.stopping = true
	h.mu.Unlock()

	h.applyMu.Lock()
	defer h.applyMu.Unlock()
	h.mu.Lock()
	var conns []*connUnit
	for name, u := range h.conns {
		u.cancel()
		conns = append(conns, u)
		delete(h.conns, name)
	}
	var drivers []*driverUnit
	for name, u := range h.drivers {
		drivers = append(drivers, u)
		delete(h.drivers, name)
		h.setWaker(u.driver.Name(), nil)
	}
	var reporters []*driverUnit
	h.rmu.Lock()
	for name, u := range h.reporters {
		reporters = append(reporters, u)
		delete(h.reporters, name)
		h.setWaker(u.driver.Name(), nil)
	}
	for name, u := range h.mailers {
		reporters = append(reporters, u)
		delete(h.mailers, name)
		h.setWaker(u.driver.Name(), nil)
	}
	h.rmu.Unlock()
	h.mu.Unlock()
	stopUnits(conns, drivers, reporters)
}
