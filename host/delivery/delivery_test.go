package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
)

// script is a fake driver: attempt n (1-based, over the driver's life)
// returns outcomes[n-1] (the last one repeats). It records the jobs it saw.
type script struct {
	name     string
	slots    int
	outcomes []func(ctx context.Context, job *linedriver.Job) linedriver.Outcome

	mu      sync.Mutex
	seen    []linedriver.Job
	running int
	maxRun  int
}

var _ linedriver.Driver = (*script)(nil)

func (d *script) Name() string                   { return d.name }
func (d *script) Check(*linedriver.Record) error { return nil }
func (d *script) Slots() int                     { return d.slots }
func (d *script) Close() error                   { return nil }

func (d *script) Deliver(ctx context.Context, job *linedriver.Job, report func(linedriver.Progress)) linedriver.Outcome {
	d.mu.Lock()
	d.seen = append(d.seen, *job)
	n := len(d.seen)
	d.running++
	d.maxRun = max(d.maxRun, d.running)
	d.mu.Unlock()
	defer func() { d.mu.Lock(); d.running--; d.mu.Unlock() }()
	report(linedriver.Progress{Step: "step", Detail: "attempt " + fmt.Sprint(n)})
	f := d.outcomes[min(n, len(d.outcomes))-1]
	return f(ctx, job)
}

func (d *script) jobs() []linedriver.Job {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]linedriver.Job(nil), d.seen...)
}

func give(o linedriver.Outcome) func(context.Context, *linedriver.Job) linedriver.Outcome {
	return func(context.Context, *linedriver.Job) linedriver.Outcome { return o }
}

func withState(o linedriver.Outcome, state string) linedriver.Outcome {
	o.State = json.RawMessage(state)
	return o
}

// blockUntilCancelled is an attempt cut off by shutdown.
func uncounted(category string) linedriver.Outcome {
	o := linedriver.Retry(category, "no modem answers", time.Millisecond)
	o.Uncounted = true
	return o
}

func blockUntilCancelled(ctx context.Context, _ *linedriver.Job) linedriver.Outcome {
	<-ctx.Done()
	return withState(linedriver.Retry("cancelled", "stopped", 0), `{"confirmed":1}`)
}

func newSpool(t *testing.T) spool.Store {
	t.Helper()
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

func accept(t *testing.T, sp spool.Store, driver string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		j := &linedriver.Job{ID: id + "." + driver, Driver: driver, Record: linedriver.Record{ID: id, SourceID: "src-" + id}}
		if _, err := sp.Accept(t.Context(), "inbox", "src-"+id, []*linedriver.Job{j}); err != nil {
			t.Fatal(err)
		}
	}
}

func logger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, what, cond)
}

// entry is the earliest queued job of driver (nil: none).
func entry(t *testing.T, sp spool.Store, driver string) *spool.Entry {
	t.Helper()
	js, err := sp.Jobs(t.Context(), spool.Query{Driver: driver})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range js {
		if j.State != spool.StateFailed {
			e, err := sp.Entry(t.Context(), j.ID)
			if errors.Is(err, spool.ErrNotFound) {
				return entry(t, sp, driver) // delivered or failed since the listing
			}
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
	}
	return nil
}

// failed lists the failed jobs.
func failed(t *testing.T, sp spool.Store) []spool.JobInfo {
	t.Helper()
	js, err := sp.Jobs(t.Context(), spool.Query{State: spool.StateFailed})
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestOutcomes(t *testing.T) {
	cases := []struct {
		name        string
		outcomes    []func(context.Context, *linedriver.Job) linedriver.Outcome
		maxAttempts int
		attempts    int   // attempts the driver sees
		seen        []int // job.Attempt the driver sees each time (default 1, 2, 3…)
		// afterwards
		queued   bool   // still in the spool
		failed   string // category in the failed list ("" none)
		reason   string // substring of the failed reason
		attempt  int    // counted attempts of a queued job
		dueIn    time.Duration
		state    string // state of a queued job
		events   []string
		noEvents []string
	}{
		{name: "done: removed", outcomes: []func(context.Context, *linedriver.Job) linedriver.Outcome{give(linedriver.Done(map[string]string{"pages": "3"}))},
			attempts: 1, events: []string{"event=attempt", "event=progress", "event=delivered", "pages=3"}, noEvents: []string{"event=retried"}},
		{name: "fail: kept in the failed list", outcomes: []func(context.Context, *linedriver.Job) linedriver.Outcome{give(linedriver.Fail("dial_policy", "number refused"))},
			attempts: 1, failed: "dial_policy", reason: "number refused", events: []string{"event=failed", "category=dial_policy"}},
		{name: "retry: rescheduled after the driver's delay with its state", outcomes: []func(context.Context, *linedriver.Job) linedriver.Outcome{
			give(withState(linedriver.Retry("busy", "line busy", time.Hour), `{"confirmed":2}`))},
			attempts: 1, queued: true, attempt: 1, dueIn: time.Hour, state: `{"confirmed":2}`, events: []string{"event=retried", "category=busy", "retry_after=1h0m0s"}},
		{name: "retry then done: state handed back", outcomes: []func(context.Context, *linedriver.Job) linedriver.Outcome{
			give(withState(linedriver.Retry("no_carrier", "dropped", time.Millisecond), `{"confirmed":1}`)),
			give(linedriver.Done(nil))},
			attempts: 2, events: []string{"event=retried", "event=delivered"}},
		{name: "max_attempts: temporary becomes permanent", maxAttempts: 3, outcomes: []func(context.Context, *linedriver.Job) linedriver.Outcome{
			give(linedriver.Retry("busy", "line busy", time.Millisecond))},
			attempts: 3, failed: "busy", reason: "gave up after 3 attempts", events: []string{"event=failed"}},
		{name: "uncounted: no modem twice does not use up max_attempts", maxAttempts: 2, outcomes: []func(context.Context, *linedriver.Job) linedriver.Outcome{
			give(uncounted("no_modem")), give(uncounted("no_modem")), give(linedriver.Retry("busy", "line busy", time.Hour))},
			attempts: 3, seen: []int{1, 1, 1}, queued: true, attempt: 1, dueIn: time.Hour, events: []string{"category=no_modem", "category=busy"}, noEvents: []string{"event=failed"}},
		{name: "driver panics: retried in a minute", outcomes: []func(context.Context, *linedriver.Job) linedriver.Outcome{
			func(context.Context, *linedriver.Job) linedriver.Outcome { panic("nil map") }},
			attempts: 1, queued: true, attempt: 1, dueIn: time.Minute, events: []string{"category=driver_panic"}},
		{name: "no outcome: retried", outcomes: []func(context.Context, *linedriver.Job) linedriver.Outcome{give(linedriver.Outcome{})},
			attempts: 1, queued: true, attempt: 1, dueIn: time.Minute, events: []string{"category=driver_error"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp := newSpool(t)
			d := &script{name: "fax", slots: 1, outcomes: tc.outcomes}
			var log testenv.Buffer
			disp := New(d, sp, logger(&log), tc.maxAttempts)
			accept(t, sp, "fax", "r1")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { disp.Run(ctx); close(done) }()
			disp.Notify()
			waitUntil(t, "the attempts", func() bool {
				if len(d.jobs()) < tc.attempts {
					return false
				}
				st, _ := sp.Stats(t.Context())
				e := entry(t, sp, "fax")
				return (e != nil) == tc.queued && (st.Failed == 1) == (tc.failed != "") && (e == nil || e.Job.Attempt == tc.attempt)
			})
			time.Sleep(20 * time.Millisecond) // no further attempt
			cancel()
			<-done

			jobs := d.jobs()
			if len(jobs) != tc.attempts {
				t.Fatalf("%d attempts, want %d", len(jobs), tc.attempts)
			}
			for i, j := range jobs {
				want := i + 1
				if tc.seen != nil {
					want = tc.seen[i]
				}
				if j.Attempt != want {
					t.Errorf("attempt %d saw job.Attempt %d, want %d", i+1, j.Attempt, want)
				}
			}
			if len(jobs) == 2 && string(jobs[1].State) != `{"confirmed":1}` {
				t.Errorf("second attempt got state %s, want the first attempt's", jobs[1].State)
			}
			if tc.queued {
				e := entry(t, sp, "fax")
				if d := time.Until(e.Due); d < tc.dueIn-5*time.Second || d > tc.dueIn {
					t.Errorf("due in %v, want %v", d, tc.dueIn)
				}
				if tc.state != "" && string(e.Job.State) != tc.state {
					t.Errorf("state %s, want %s", e.Job.State, tc.state)
				}
			}
			failed := failed(t, sp)
			if tc.failed == "" && len(failed) > 0 {
				t.Errorf("failed list: %+v", failed)
			}
			if tc.failed != "" {
				if len(failed) != 1 || failed[0].Category != tc.failed || !strings.Contains(failed[0].LastError, tc.reason) {
					t.Errorf("failed list %+v, want category %s reason %q", failed, tc.failed, tc.reason)
				}
			}
			for _, ev := range tc.events {
				if !strings.Contains(log.String(), ev) {
					t.Errorf("log lacks %s:\n%s", ev, log.String())
				}
			}
			for _, ev := range tc.noEvents {
				if strings.Contains(log.String(), ev) {
					t.Errorf("log has %s", ev)
				}
			}
		})
	}
}

// TestInterruptedAttemptNotCounted: an attempt cut off by shutdown keeps
// its state, is due at once, and does not count toward max_attempts.
func TestInterruptedAttemptNotCounted(t *testing.T) {
	sp := newSpool(t)
	d := &script{name: "fax", slots: 1, outcomes: []func(context.Context, *linedriver.Job) linedriver.Outcome{blockUntilCancelled}}
	var log testenv.Buffer
	disp := New(d, sp, logger(&log), 1)
	accept(t, sp, "fax", "r1")
	for round := 1; round <= 3; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { disp.Run(ctx); close(done) }()
		disp.Notify()
		waitUntil(t, "an attempt", func() bool { return len(d.jobs()) == round })
		cancel()
		<-done
		e := entry(t, sp, "fax")
		if e == nil {
			t.Fatalf("round %d: the interrupted job left the spool (failed: %v)", round, failed(t, sp))
		}
		if e.Job.Attempt != 0 || e.Category != "interrupted" || string(e.Job.State) != `{"confirmed":1}` {
			t.Errorf("round %d: attempt %d category %q state %s; want 0, interrupted, the driver's state", round, e.Job.Attempt, e.Category, e.Job.State)
		}
		if time.Until(e.Due) > 0 {
			t.Errorf("round %d: due in %v, want at once", round, time.Until(e.Due))
		}
	}
	for _, j := range d.jobs() {
		if j.Attempt != 1 {
			t.Errorf("the driver saw attempt %d, want 1 each time (max_attempts 1 never reached)", j.Attempt)
		}
	}
	if strings.Contains(log.String(), "event=retried") || strings.Contains(log.String(), "event=failed") {
		t.Errorf("an interrupted attempt was logged as retried or failed:\n%s", log.String())
	}
}

// TestRetryAfterHonoured: a job is not attempted again before its due time.
func TestRetryAfterHonoured(t *testing.T) {
	sp := newSpool(t)
	var times []time.Time
	var mu sync.Mutex
	d := &script{name: "fax", slots: 1, outcomes: []func(context.Context, *linedriver.Job) linedriver.Outcome{
		func(context.Context, *linedriver.Job) linedriver.Outcome {
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
			return linedriver.Retry("busy", "busy", 300*time.Millisecond)
		},
		func(context.Context, *linedriver.Job) linedriver.Outcome {
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
			return linedriver.Done(nil)
		},
	}}
	disp := New(d, sp, logger(io.Discard), 0)
	accept(t, sp, "fax", "r1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go disp.Run(ctx)
	// Nudges must not make the job come early.
	go func() {
		for ctx.Err() == nil {
			disp.Notify()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	waitUntil(t, "two attempts", func() bool { return len(d.jobs()) == 2 })
	mu.Lock()
	gap := times[1].Sub(times[0])
	mu.Unlock()
	if gap < 300*time.Millisecond {
		t.Errorf("second attempt %v after the first, want at least the 300ms the driver asked", gap)
	}
	if gap > 2*time.Second {
		t.Errorf("second attempt %v after the first; the dispatcher slept past the due time", gap)
	}
}

// TestSlots: a driver with n slots gets at most n attempts at once, and
// they run in parallel.
func TestSlots(t *testing.T) {
	for _, slots := range []int{1, 3} {
		t.Run(fmt.Sprint(slots), func(t *testing.T) {
			sp := newSpool(t)
			d := &script{name: "fax", slots: slots, outcomes: []func(context.Context, *linedriver.Job) linedriver.Outcome{
				func(context.Context, *linedriver.Job) linedriver.Outcome {
					time.Sleep(30 * time.Millisecond)
					return linedriver.Done(nil)
				}}}
			disp := New(d, sp, logger(io.Discard), 0)
			accept(t, sp, "fax", "a", "b", "c", "d", "e", "f")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go disp.Run(ctx)
			disp.Notify()
			waitUntil(t, "every job delivered", func() bool { st, _ := sp.Stats(t.Context()); return st.Queued["fax"] == 0 })
			d.mu.Lock()
			maxRun := d.maxRun
			d.mu.Unlock()
			if maxRun != slots {
				t.Errorf("%d attempts at once, want %d", maxRun, slots)
			}
			ids := map[string]int{}
			for _, j := range d.jobs() {
				ids[j.ID]++
			}
			if len(ids) != 6 || len(d.jobs()) != 6 {
				t.Errorf("attempts per job: %v, want each of 6 once", ids)
			}
		})
	}
}

// saver is a driver that saves its state during an attempt.
type saver struct {
	script
	saved chan struct{}
}

func (d *saver) DeliverSaving(ctx context.Context, job *linedriver.Job, report func(linedriver.Progress), save func(json.RawMessage) error) linedriver.Outcome {
	if err := save(json.RawMessage(`{"confirmed":2}`)); err != nil {
		return linedriver.Retry("state", err.Error(), time.Minute)
	}
	close(d.saved)
	<-ctx.Done() // the gateway dies here
	return linedriver.Retry("cancelled", "stopped", 0)
}

// TestStateSavedDuringAttempt: what a driver saves mid-attempt is in the
// spool before the attempt ends, for a gateway that dies mid-attempt.
func TestStateSavedDuringAttempt(t *testing.T) {
	sp := newSpool(t)
	d := &saver{script: script{name: "fax", slots: 1}, saved: make(chan struct{})}
	disp := New(d, sp, logger(io.Discard), 0)
	accept(t, sp, "fax", "r1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { disp.Run(ctx); close(done) }()
	disp.Notify()
	<-d.saved
	if e := entry(t, sp, "fax"); e == nil || string(e.Job.State) != `{"confirmed":2}` {
		t.Fatalf("state in the spool during the attempt: %+v", e)
	}
	cancel()
	<-done
	if e := entry(t, sp, "fax"); e == nil || string(e.Job.State) != `{"confirmed":2}` || e.Job.Attempt != 0 {
		t.Fatalf("after the interrupted attempt: %+v", e)
	}
}

// TestUnrecordedOutcomeNotRepeated: when the spool cannot record an
// attempt's outcome, the dispatcher keeps trying to record it and does not
// hand the job to the driver again meanwhile (that would send it again).
func TestUnrecordedOutcomeNotRepeated(t *testing.T) {
	sp := newSpool(t)
	// State that is not JSON makes every write of the outcome fail, while
	// the spool still reads.
	d := &script{name: "fax", slots: 2, outcomes: []func(context.Context, *linedriver.Job) linedriver.Outcome{
		give(withState(linedriver.Retry("busy", "line busy", 0), `{"confirmed":`))}}
	var log testenv.Buffer
	disp := New(d, sp, logger(&log), 0)
	accept(t, sp, "fax", "r1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { disp.Run(ctx); close(done) }()
	disp.Notify()
	waitUntil(t, "a failed write of the outcome", func() bool { return strings.Contains(log.String(), "record outcome in spool") })
	time.Sleep(200 * time.Millisecond)
	if n := len(d.jobs()); n != 1 {
		t.Errorf("the driver saw %d attempts while the outcome of the first was not recorded, want 1", n)
	}
	cancel()
	<-done
	if !strings.Contains(log.String(), "outcome not recorded in the spool") {
		t.Errorf("log lacks the final word on the unrecorded outcome:\n%s", log.String())
	}
	if e := entry(t, sp, "fax"); e == nil || e.Job.Attempt != 0 {
		t.Errorf("job after an unrecorded attempt: %+v, want still queued, no attempt counted", e)
	}
}

// TestUnrecordedOutcomeKeepsLease: while the dispatcher retries the write
// of an outcome for longer than the lease's time to live, it keeps the
// lease, so no other worker takes the job and sends it again.
func TestUnrecordedOutcomeKeepsLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sp := newSpool(t)
		d := &script{name: "fax", slots: 2, outcomes: []func(context.Context, *linedriver.Job) linedriver.Outcome{
			give(withState(linedriver.Retry("busy", "line busy", 0), `{"confirmed":`))}}
		disp := New(d, sp, slog.New(slog.DiscardHandler), 0)
		disp.LeaseTTL = 3 * time.Second
		accept(t, sp, "fax", "r1")
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { disp.Run(ctx); close(done) }()
		time.Sleep(10 * disp.LeaseTTL)
		synctest.Wait()
		if n := len(d.jobs()); n != 1 {
			t.Errorf("the driver saw %d attempts while the outcome of the first was not recorded, want 1", n)
		}
		cancel()
		<-done
	})
}

// TestIdleWorkersAllWoken: jobs that come in a burst while every worker is
// idle start at once on as many workers, not one now and the others after
// the idle wait. (The spool wakes a driver once per write, and the
// dispatcher's wake holds one signal.)
func TestIdleWorkersAllWoken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sp := newSpool(t)
		release := make(chan struct{})
		d := &script{name: "fax", slots: 3, outcomes: []func(context.Context, *linedriver.Job) linedriver.Outcome{
			func(context.Context, *linedriver.Job) linedriver.Outcome { <-release; return linedriver.Done(nil) }}}
		disp := New(d, sp, slog.New(slog.DiscardHandler), 0)
		sp.Wake(func(string) { disp.Notify() })
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { disp.Run(ctx); close(done) }()
		synctest.Wait() // every worker idle
		var jobs []*linedriver.Job
		for _, id := range []string{"a", "b", "c"} {
			jobs = append(jobs, &linedriver.Job{ID: id + ".fax", Driver: "fax", Record: linedriver.Record{ID: id, SourceID: "src"}})
		}
		if _, err := sp.Accept(t.Context(), "inbox", "src", jobs); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		d.mu.Lock()
		running := d.running
		d.mu.Unlock()
		if running != 3 {
			t.Errorf("%d attempts running right after 3 jobs came to 3 idle workers, want 3", running)
		}
		close(release)
		cancel()
		<-done
	})
}
