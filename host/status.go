package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mediagw/mediagw/host/activity"
	"github.com/mediagw/mediagw/host/delivery"
	"github.com/mediagw/mediagw/host/gateways"
	"github.com/mediagw/mediagw/host/metrics"
	"github.com/mediagw/mediagw/host/pluginmgr"
	"github.com/mediagw/mediagw/host/report"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/plugin"
)

// Overall health of the gateway.
const (
	Healthy  = "healthy"  // every connector (or starting), driver and the spool are healthy
	Degraded = "degraded" // something is not healthy now
	Down     = "down"     // no connector is running
)

// ActiveJob is an attempt in progress.
type ActiveJob = delivery.ActiveJob

// DriverStatus is one line driver: its health and its queue.
type DriverStatus struct {
	Health     string      `json:"health"`
	Since      time.Time   `json:"since"`
	Message    string      `json:"message,omitempty"`
	Queued     int         `json:"queued"`      // waiting for a first attempt
	InProgress int         `json:"in_progress"` // in an attempt now
	Retrying   int         `json:"retrying"`    // waiting to be tried again
	Failed     int         `json:"failed"`      // failed for good, kept for the operator
	OldestAge  float64     `json:"oldest_age"`  // seconds since the oldest queued job arrived
	Slots      int         `json:"slots"`
	Active     []ActiveJob `json:"active"`
	// Devices are the driver's own devices (the fax driver's modems), each
	// with its health, for drivers that report them.
	Devices []linedriver.DeviceStatus `json:"devices,omitempty"`
}

// Status is a snapshot for the status endpoint and `mediagw status`.
type Status struct {
	Health     string                     `json:"health"`
	Connectors map[string]pluginmgr.State `json:"connectors"`
	Drivers    map[string]DriverStatus    `json:"drivers"`
	// Spool is the spool's health, its file's size (live and free bytes)
	// and its last compaction.
	Spool spool.Health `json:"spool"`
	// Queued counts every job in a driver's queue (waiting, retrying or in
	// an attempt); Failed the jobs that failed for good.
	Queued map[string]int `json:"queued"`
	Failed int            `json:"failed"`
	// Reports counts each connector's delivery reports since start (those
	// still to send are under queued, as report:<connector>).
	Reports map[string]report.Counts `json:"reports,omitempty"`
	// Gateway is this gateway's name; Gateways lists every gateway of the
	// group that shares the spool's database (with one gateway: none).
	Gateway  string             `json:"gateway"`
	Gateways []gateways.Gateway `json:"gateways,omitempty"`
	// Unserved names the drivers with queued jobs that no live gateway
	// runs: their jobs wait ("no gateway runs driver X").
	Unserved []string `json:"unserved,omitempty"`
}

// Status reports the health of the connectors, drivers and spool, and the
// queues. Failed jobs are counted apart: they do not make the gateway
// degraded.
func (h *Host) Status(ctx context.Context) (Status, error) {
	h.mu.Lock()
	st := Status{Connectors: map[string]pluginmgr.State{}, Drivers: map[string]DriverStatus{}}
	type drv struct {
		disp    *delivery.Dispatcher
		slots   int
		devices linedriver.DeviceReporter
	}
	drivers := map[string]drv{}
	for name, u := range h.conns {
		st.Connectors[name] = u.state.Snapshot()
	}
	for name, u := range h.drivers {
		dr, _ := u.driver.(linedriver.DeviceReporter)
		drivers[name] = drv{u.disp, u.driver.Slots(), dr}
	}
	h.rmu.Lock()
	for _, u := range h.mailers {
		// Received faxes waiting to be mailed show like a driver's jobs.
		drivers[u.driver.Name()] = drv{u.disp, u.driver.Slots(), nil}
	}
	h.rmu.Unlock()
	h.mu.Unlock()
	st.Spool = h.spool.Health()
	ss, err := h.spool.Stats(ctx)
	st.Queued, st.Failed = ss.Queued, ss.Failed
	if c := h.reports.Counts(); len(c) > 0 {
		st.Reports = c
	}
	now := time.Now()
	for name, d := range drivers {
		hl := d.disp.Health()
		active := d.disp.Active()
		ds := DriverStatus{Health: hl.Health, Since: hl.Since, Message: hl.Message, Slots: max(d.slots, 1),
			Active: active, InProgress: len(active), Retrying: ss.Retrying[name], Failed: ss.FailedBy[name]}
		ds.Queued = max(ss.Queued[name]-ds.Retrying-ds.InProgress, 0)
		if t, ok := ss.Oldest[name]; ok {
			ds.OldestAge = max(now.Sub(t).Seconds(), 0)
		}
		if d.devices != nil {
			ds.Devices = d.devices.Devices()
		}
		st.Drivers[name] = ds
	}
	st.Gateway = h.gateway
	running, _ := h.running()
	if h.shared != nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		gs, gerr := gateways.List(ctx, h.shared.db, h.shared.takeover)
		cancel()
		if gerr != nil && err == nil {
			err = gerr
		}
		st.Gateways = gs
	}
	if st.Gateways != nil {
		st.Unserved = gateways.Unserved(st.Queued, st.Gateways)
	} else {
		st.Unserved = gateways.Unserved(st.Queued, []gateways.Gateway{{Name: h.gateway, Drivers: running}})
	}
	st.Health = overall(st)
	if err != nil {
		return st, fmt.Errorf("host: status: %w", err)
	}
	return st, nil
}

func overall(st Status) string {
	if len(st.Connectors) > 0 {
		down := true
		for name := range st.Connectors {
			if st.Connectors[name].Health != plugin.HealthDown {
				down = false
			}
		}
		if down {
			return Down
		}
	}
	if st.Spool.Health != spool.Healthy || len(st.Unserved) > 0 {
		return Degraded
	}
	for name := range st.Connectors {
		// A connector coming up is no trouble yet, nor one that another
		// gateway runs; one that cannot come up says degraded or down.
		if h := st.Connectors[name].Health; h != plugin.HealthHealthy && h != plugin.HealthStarting && h != ConnectorStandby {
			return Degraded
		}
	}
	for _, d := range st.Drivers {
		if d.Health != Healthy {
			return Degraded
		}
		for _, dev := range d.Devices {
			if dev.Health != linedriver.DeviceHealthy {
				return Degraded
			}
		}
	}
	return Healthy
}

func (h *Host) metricsSnapshot() metrics.Snapshot {
	s := metrics.Snapshot{Queued: map[string]int{}, InProgress: map[string]int{}, Failed: map[string]int{},
		OldestAge: map[string]time.Duration{}, DriverHealthy: map[string]bool{}, ConnectorHealthy: map[string]bool{},
		ConnectorHealth: map[string]string{}, Restarts: map[string]int{}, ModemHealth: map[string]map[string]string{}}
	st, err := h.Status(context.Background())
	if err != nil {
		h.log.Warn("metrics: status", "error", err)
	}
	for name, d := range st.Drivers {
		s.Queued[name] = d.Queued + d.Retrying
		s.InProgress[name] = d.InProgress
		s.Failed[name] = d.Failed
		s.OldestAge[name] = time.Duration(d.OldestAge * float64(time.Second))
		s.DriverHealthy[name] = d.Health == Healthy
		for _, dev := range d.Devices {
			if s.ModemHealth[name] == nil {
				s.ModemHealth[name] = map[string]string{}
			}
			s.ModemHealth[name][dev.Name] = dev.Health
		}
	}
	for name := range st.Connectors {
		hl := st.Connectors[name].Health
		s.ConnectorHealthy[name] = hl == plugin.HealthHealthy
		s.ConnectorHealth[name] = string(hl)
		s.Restarts[name] = st.Connectors[name].Restarts
	}
	s.SpoolHealthy = st.Spool.Health == spool.Healthy
	s.SpoolWriteErrors, s.SpoolDeferrals = st.Spool.WriteErrors, st.Spool.Deferrals
	s.SpoolFileBytes, s.SpoolLiveBytes, s.SpoolFreeBytes = st.Spool.FileBytes, st.Spool.LiveBytes, st.Spool.FreeBytes
	s.SpoolCompactions = int(h.compactions.Load())
	if c := st.Spool.LastCompaction; c != nil {
		s.SpoolLastPause = c.Paused
	}
	s.Subscribers, s.Dropped = h.hub.Subscribers(), h.hub.Dropped()
	return s
}

// Jobs lists the jobs q selects (see spool.Query); jobs in an attempt are
// listed as active.
func (h *Host) Jobs(ctx context.Context, q spool.Query) ([]spool.JobInfo, error) {
	return h.spool.Jobs(ctx, q)
}

// Job returns one job with its attempts; spool.ErrNotFound for an unknown
// id (or one delivered, purged or pruned).
func (h *Host) Job(ctx context.Context, id string) (*spool.JobDetail, error) {
	return h.spool.Job(ctx, id)
}

// RetryJob puts a failed job back in its driver's queue, due now, with its
// attempts counted from zero (the spool wakes its driver's dispatcher,
// whichever it is: a line, report or mail driver). spool.ErrNotFound for
// an unknown id, spool.ErrNotFailed for a job that has not failed.
func (h *Host) RetryJob(ctx context.Context, id string) error {
	d, err := h.spool.Job(ctx, id)
	if err != nil {
		return err
	}
	if err := h.spool.Retry(ctx, id); err != nil {
		return err
	}
	activity.Log(h.log, activity.Requeued, slog.String("job", id), slog.String("driver", d.Driver),
		slog.String("source_id", d.SourceID), slog.String("by", "operator"),
		slog.String("reason", "operator retried the failed job"))
	return nil
}

// PurgeJob removes a failed or queued job with its documents.
// spool.ErrActive when an attempt of it is in progress.
func (h *Host) PurgeJob(ctx context.Context, id string) error {
	d, err := h.spool.Job(ctx, id)
	if err != nil {
		return err
	}
	if err := h.spool.Purge(ctx, id); err != nil {
		return err
	}
	activity.Log(h.log, activity.Purged, slog.String("job", id), slog.String("driver", d.Driver),
		slog.String("source_id", d.SourceID), slog.String("state", d.State), slog.String("by", "operator"),
		slog.String("reason", "operator purged the job"))
	return nil
}

// ErrUnknownConnector is returned for a connector name the config lacks.
var ErrUnknownConnector = errors.New("host: no such connector")

// TestConnector runs a connector's Test: on its running plugin, or on a
// plugin launched for the test when none runs.
func (h *Host) TestConnector(ctx context.Context, name string) (plugin.TestResult, error) {
	h.mu.Lock()
	var inst *pluginmgr.Instance
	if u := h.conns[name]; u != nil {
		inst = u.instance()
	}
	p := h.plan
	h.mu.Unlock()
	if p == nil || p.Connectors[name] == nil {
		return plugin.TestResult{}, fmt.Errorf("%w: %q", ErrUnknownConnector, name)
	}
	if inst != nil {
		return inst.Connector.Test(ctx), nil
	}
	cp := p.Connectors[name]
	inst, err := pluginmgr.Launch(ctx, pluginmgr.Spec{
		Name: name, Path: cp.Config.PluginPath, Dir: dirOf(p), Checksum: cp.Config.Checksum, ConfigJSON: cp.JSON,
		MaxInFlight: cp.Config.MaxInFlight, Log: h.log.With("connector", name, "for", "test"), ConfigError: ConfigError(p.Config, name),
	})
	if err != nil {
		return plugin.TestResult{}, fmt.Errorf("host: test connector %s: %w", name, err)
	}
	defer inst.Kill()
	return inst.Connector.Test(ctx), nil
}
