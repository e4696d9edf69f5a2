package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/linedriver"
)

// TestBackendErr: the host's errors reach the console as the answers a user
// sees: 404 for what does not exist, 409 for a job in the wrong state.
func TestBackendErr(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("x: %w", spool.ErrNotFound), ErrNotFound},
		{fmt.Errorf("x: %w", host.ErrUnknownConnector), ErrNotFound},
		{spool.ErrNotFailed, ErrConflict},
		{spool.ErrActive, ErrConflict},
	} {
		got := backendErr(tc.err)
		if !errors.Is(got, tc.want) || !errors.Is(got, tc.err) {
			t.Errorf("backendErr(%v) = %v, want it to match %v and keep the cause", tc.err, got, tc.want)
		}
	}
	other := errors.New("disk on fire")
	if got := backendErr(other); got != other {
		t.Errorf("backendErr(other) = %v", got)
	}
	for h, want := range map[string]Light{"healthy": Green, "degraded": Amber, "starting": Amber, "down": Red} {
		if got := lightOf(h); got != want {
			t.Errorf("lightOf(%s) = %s, want %s", h, got, want)
		}
	}
}

// TestHostBackendRequestContext: the backend reads and changes the spool
// under the request's context: a request that ended (the browser went
// away) ends its spool calls instead of running them to the end.
func TestHostBackendRequestContext(t *testing.T) {
	h, plan := lineHost(t)
	job := &linedriver.Job{ID: "20260101T000000.000Z-0a0b0c0d0e0f.line", Driver: "line",
		Record: linedriver.Record{ID: "20260101T000000.000Z-0a0b0c0d0e0f", SourceID: "1"}}
	if _, err := h.Spool().Accept(t.Context(), "inbox", "1", []*linedriver.Job{job}); err != nil {
		t.Fatal(err)
	}
	b := NewHostBackend(h, plan)
	if rows, err := b.Jobs(t.Context(), "line", "", 10); err != nil || len(rows) != 1 {
		t.Fatalf("Jobs under a live request: %v, %v; want the queued job", rows, err)
	}
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	for name, call := range map[string]func() error{
		"Jobs":  func() error { _, err := b.Jobs(gone, "line", "", 10); return err },
		"Job":   func() error { _, err := b.Job(gone, job.ID); return err },
		"Retry": func() error { return b.Retry(gone, job.ID) },
		"Purge": func() error { return b.Purge(gone, job.ID) },
	} {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s under an ended request: %v, want context.Canceled", name, err)
		}
	}
	if _, err := h.Spool().Job(t.Context(), job.ID); err != nil {
		t.Errorf("the job after a Purge under an ended request: %v, want it still queued", err)
	}
}

// lineHost is a host, not run, with a file driver "line" that also takes
// received faxes (routed to a folder): its jobs stay queued.
func lineHost(t *testing.T) (*host.Host, *host.Plan) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mediagw.yaml")
	writeFile(t, cfgPath, "spool:\n  dir: var/spool\ndrivers:\n  line:\n    type: file\n    options: {dir: var/line}\ninbound:\n  default:\n    folder: var/faxes\n")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	plan, err := host.Prepare(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(plan, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Spool().Close() })
	return h, plan
}
