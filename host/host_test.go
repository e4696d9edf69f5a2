package host

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/linedriver"
)

// idleDriver is a line driver with no work that counts its Close calls.
type idleDriver struct{ closed atomic.Int32 }

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
	for started := false; !started; time.Sleep(time.Millisecond) {
		h.mu.Lock()
		started = h.plan != nil
		h.mu.Unlock()
	}
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
	late := &idleDriver{}
	h.Reload(planWith(dir, late, "c"))
	h.mu.Lock()
	running := len(h.drivers)
	h.mu.Unlock()
	if running != 0 || late.closed.Load() != 1 {
		t.Errorf("reload after stop: %d drivers running, its driver closed %d times; want none running, closed once", running, late.closed.Load())
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
		if _, err := h.Spool().Accept("inbox", "s1", []*linedriver.Job{j}); err != nil {
			t.Fatal(err)
		}
		if err := h.Spool().Complete(j.ID, linedriver.Fail("bad", "bad"), true); err != nil {
			t.Fatal(err)
		}
		h.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		h.plan = p
		h.prune()
		if st, _ := h.Spool().Stats(); st.Failed != tc.want {
			t.Errorf("retention %v: %d failed jobs kept, want %d", tc.retention, st.Failed, tc.want)
		}
		h.Spool().Close()
	}
}
