package host

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
)

// waitRunning waits until Run has applied its first plan.
func waitRunning(t *testing.T, h *Host) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "Run to apply its plan", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.plan != nil
	})
}

// windingDriver is a line driver whose attempt, once cancelled, winds down
// only when the test releases it (as a fax attempt finishes its page).
type windingDriver struct {
	idleDriver
	entered, cancelled, release chan struct{}
	once                        sync.Once
}

func newWindingDriver() *windingDriver {
	return &windingDriver{entered: make(chan struct{}), cancelled: make(chan struct{}), release: make(chan struct{})}
}

func (d *windingDriver) Deliver(ctx context.Context, _ *linedriver.Job, _ func(linedriver.Progress)) linedriver.Outcome {
	d.once.Do(func() { close(d.entered) })
	<-ctx.Done()
	close(d.cancelled)
	<-d.release
	return linedriver.Outcome{Result: linedriver.Temporary, Category: "interrupted", Uncounted: true}
}

// within fails the test unless ch closes before the deadline.
func within(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %s", what, d)
	}
}

// TestStatusWhileUnitsStop: while a stop or a reload waits for a driver's
// attempt to wind down, Status still answers at once.
func TestStatusWhileUnitsStop(t *testing.T) {
	for _, tc := range []struct {
		name string
		// stop begins the stop or the reload; the channel closes when it ends.
		stop func(h *Host, cancel context.CancelFunc, ran <-chan struct{}, dir string) <-chan struct{}
	}{
		{"stop", func(_ *Host, cancel context.CancelFunc, ran <-chan struct{}, _ string) <-chan struct{} {
			cancel()
			return ran
		}},
		{"reload", func(h *Host, _ context.CancelFunc, _ <-chan struct{}, dir string) <-chan struct{} {
			done := make(chan struct{})
			go func() { defer close(done); h.Reload(planWith(dir, &idleDriver{}, "b")) }()
			return done
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d := newWindingDriver()
			h, err := New(planWith(dir, d, "a"), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			job := &linedriver.Job{ID: "r1.fax", Driver: "fax", Record: linedriver.Record{ID: "r1"}}
			if _, err := h.Spool().Accept(t.Context(), "inbox", "src-1", []*linedriver.Job{job}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ran := make(chan struct{})
			go func() { defer close(ran); _ = h.Run(ctx, planWith(dir, d, "a")) }()
			within(t, d.entered, 10*time.Second, "the driver's attempt starting")

			stopped := tc.stop(h, cancel, ran, dir)
			within(t, d.cancelled, 10*time.Second, "the attempt being cancelled")

			answered := make(chan struct{})
			go func() { defer close(answered); _, _ = h.Status(context.Background()) }()
			within(t, answered, 2*time.Second, "Status while the attempt winds down")
			select {
			case <-stopped:
				t.Fatal("the " + tc.name + " ended before the attempt wound down")
			default:
			}

			if tc.name == "stop" {
				// A reload during the stop starts nothing and frees its plan.
				late := &idleDriver{}
				reloaded := make(chan struct{})
				go func() { defer close(reloaded); h.Reload(planWith(dir, late, "c")) }()
				within(t, reloaded, 2*time.Second, "a reload during the stop")
				if late.closed.Load() != 1 {
					t.Errorf("the reload's driver was closed %d times, want 1", late.closed.Load())
				}
			}

			close(d.release)
			within(t, stopped, 10*time.Second, "the "+tc.name+" after the attempt ended")
			cancel()
			within(t, ran, 10*time.Second, "Run returning")
			h.mu.Lock()
			running := len(h.drivers) + len(h.conns)
			h.mu.Unlock()
			if running != 0 {
				t.Errorf("%d units still running after Run returned", running)
			}
		})
	}
}

// idleDriver is a line driver with no work that counts its Start and Close
// calls.
type idleDriver struct{ started, closed atomic.Int32 }

func (d *idleDriver) Start() { d.started.Add(1) }

func (d *idleDriver) Name() string                   { return "fax" }
func (d *idleDriver) Check(*linedriver.Record) error { return nil }
func (d *idleDriver) Slots() int                     { return 1 }
func (d *idleDriver) Close() error                   { d.closed.Add(1); return nil }
func (d *idleDriver) Deliver(context.Context, *linedriver.Job, func(linedriver.Progress)) linedriver.Outcome {
	return linedriver.Done(nil)
}

func planWith(dir string, d linedriver.Driver, fp string) *Plan {
	cfg := &config.Config{File: filepath.Join(dir, "mediagw.yaml"), Spool: config.Defaults.Spool,
		Drivers: map[string]*config.Driver{"fax": {Type: "idle"}}}
	return &Plan{Config: cfg, Drivers: map[string]linedriver.Driver{"fax": d}, DriverFP: map[string]string{"fax": fp},
		Connectors: map[string]*ConnectorPlan{}}
}

// TestReloadWhileStopping: a reload that arrives after the gateway stopped
// starts nothing and releases the drivers its plan made.
func TestReloadWhileStopping(t *testing.T) {
	dir := t.TempDir()
	first := &idleDriver{}
	h, err := New(planWith(dir, first, "a"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, planWith(dir, first, "a")) }()
	waitRunning(t, h)
	// A reload with changed driver settings replaces the running driver.
	second := &idleDriver{}
	h.Reload(planWith(dir, second, "b"))
	if first.closed.Load() != 1 {
		t.Errorf("the replaced driver was closed %d times, want 1", first.closed.Load())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if second.closed.Load() != 1 {
		t.Errorf("the running driver was closed %d times at stop, want 1", second.closed.Load())
	}
	// Each driver that ran was started once (its keep-alive work); none
	// was started by being built.
	if first.started.Load() != 1 || second.started.Load() != 1 {
		t.Errorf("Start calls: first driver %d, its replacement %d; want 1 each", first.started.Load(), second.started.Load())
	}
	late := &idleDriver{}
	h.Reload(planWith(dir, late, "c"))
	h.mu.Lock()
	running := len(h.drivers)
	h.mu.Unlock()
	if running != 0 || late.closed.Load() != 1 || late.started.Load() != 0 {
		t.Errorf("reload after stop: %d drivers running, its driver closed %d times, started %d; want none running, closed once, never started", running, late.closed.Load(), late.started.Load())
	}
}

// Failed jobs older than spool.failed_retention are pruned (Run prunes at
// start and hourly); younger ones stay.
func TestFailedJobsPruned(t *testing.T) {
	for _, tc := range []struct {
		retention time.Duration
		want      int
	}{
		{3 * time.Hour, 1},
		{time.Hour, 0},
		{0, 1}, // 0: kept until purged
	} {
		p := planWith(t.TempDir(), &idleDriver{}, "a")
		p.Config.Spool.FailedRetention = config.Duration(tc.retention)
		h, err := New(p, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		j := &linedriver.Job{ID: "r1.other", Driver: "other", Record: linedriver.Record{ID: "r1", SourceID: "s1"}}
		if _, err := h.Spool().Accept(t.Context(), "inbox", "s1", []*linedriver.Job{j}); err != nil {
			t.Fatal(err)
		}
		completeAll(t, h.Spool(), "other", linedriver.Fail("bad", "bad"))
		h.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		h.plan = p
		h.prune()
		if st, _ := h.Spool().Stats(t.Context()); st.Failed != tc.want {
			t.Errorf("retention %v: %d failed jobs kept, want %d", tc.retention, st.Failed, tc.want)
		}
		h.Spool().Close()
	}
}
