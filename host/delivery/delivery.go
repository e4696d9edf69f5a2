// Package delivery runs a line driver's jobs out of the spool: as many at once
// as the driver has slots, each attempt's outcome written back to the spool
// before the next, retries at the time the driver asked for.
package delivery

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mediagw/mediagw/host/activity"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/linedriver"
)

// Dispatcher feeds one driver.
type Dispatcher struct {
	driver      linedriver.Driver
	spool       spool.Store
	log         *slog.Logger
	maxAttempts int
	// holder names this dispatcher in the spool's leases: unique per
	// process and dispatcher.
	holder string
	// LeaseTTL is how long a lease holds a job without renewal; an
	// attempt renews it every third of that while it runs and until its
	// outcome is written.
	LeaseTTL time.Duration

	// FollowUps, when set, names the jobs a final outcome brings about (a
	// delivery report); they are written in the same spool transaction as
	// the outcome. FollowedUp is called after they were written.
	FollowUps  func(job *linedriver.Job, o linedriver.Outcome) []spool.FollowUp
	FollowedUp func()

	wake chan struct{}

	mu     sync.Mutex
	active map[string]*ActiveJob
	health Health
}

// ActiveJob is an attempt in progress.
type ActiveJob struct {
	JobID   string    `json:"job_id"`
	Step    string    `json:"step,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	Page    int       `json:"page,omitempty"`
	Pages   int       `json:"pages,omitempty"`
	Started time.Time `json:"started"`
}

// Health of a driver as its attempts show it: degraded while attempts end
// without reaching the line (no modem free or answering: Outcome.Uncounted),
// healthy again after any attempt that reached it.
type Health struct {
	Health  string    `json:"health"` // healthy, degraded
	Since   time.Time `json:"since"`
	Message string    `json:"message,omitempty"`
}

// New makes a dispatcher. maxAttempts caps attempts whatever the driver says
// (0: no cap beyond the driver's own).
func New(d linedriver.Driver, sp spool.Store, log *slog.Logger, maxAttempts int) *Dispatcher {
	return &Dispatcher{driver: d, spool: sp, log: log, maxAttempts: maxAttempts, wake: make(chan struct{}, 1),
		holder: holderName(d.Name()), LeaseTTL: DefaultLeaseTTL,
		active: map[string]*ActiveJob{}, health: Health{Health: "healthy", Since: time.Now()}}
}

// DefaultLeaseTTL is how long a dispatcher's lease holds a job unrenewed:
// the time a shared spool waits before it hands the job of a gateway that
// died to another.
const DefaultLeaseTTL = 2 * time.Minute

// holderName is host/pid/driver/random: no two dispatchers, here or on
// another gateway sharing the spool, lease under one name.
func holderName(driver string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s/%s", host, os.Getpid(), driver, rand.Text()[:8])
}

// Active lists the attempts in progress, oldest first.
func (d *Dispatcher) Active() []ActiveJob {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]ActiveJob, 0, len(d.active))
	for _, a := range d.active {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// Leased returns the ids of the jobs in an attempt.
func (d *Dispatcher) Leased() map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]bool, len(d.active))
	for id := range d.active {
		out[id] = true
	}
	return out
}

// Health returns the driver's health.
func (d *Dispatcher) Health() Health {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.health
}

// noteHealth updates the health after an attempt and logs a change once.
func (d *Dispatcher) noteHealth(o linedriver.Outcome) {
	h := Health{Health: "healthy"}
	if o.Result == linedriver.Temporary && o.Uncounted {
		h = Health{Health: "degraded", Message: o.Reason}
	}
	d.mu.Lock()
	old := d.health
	changed := old.Health != h.Health
	if changed {
		h.Since = time.Now()
		d.health = h
	} else {
		d.health.Message = h.Message
	}
	d.mu.Unlock()
	switch {
	case !changed:
	case h.Health == "healthy":
		d.log.Info("driver health", "health", h.Health, "was", old.Health)
	default:
		d.log.Warn("driver health", "health", h.Health, "was", old.Health, "message", h.Message)
	}
}

// Notify tells the dispatcher that new jobs may be due.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends; it returns after every attempt in progress
// has ended and been recorded.
func (d *Dispatcher) Run(ctx context.Context) {
	slots := max(d.driver.Slots(), 1)
	var wg sync.WaitGroup
	for range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.worker(ctx)
		}()
	}
	wg.Wait()
}

const idleWait = 5 * time.Second

func (d *Dispatcher) worker(ctx context.Context) {
	for ctx.Err() == nil {
		e, wait := d.lease(ctx)
		if e == nil {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-d.wake:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		// The wake that brought this job may have been for more: one
		// wake holds one signal, so pass it on to the next idle worker.
		d.Notify()
		d.attempt(ctx, e)
		d.release(e.Job.ID)
		// Another worker may be waiting on work this one saw.
		d.Notify()
	}
}

// lease takes the earliest due job no one holds; when none is due it says
// how long to wait.
func (d *Dispatcher) lease(ctx context.Context) (*spool.Entry, time.Duration) {
	e, next, err := d.spool.Lease(ctx, d.driver.Name(), d.holder, d.LeaseTTL)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("read spool", "error", err)
		}
		return nil, idleWait
	}
	if e == nil {
		if next.IsZero() {
			return nil, idleWait
		}
		return nil, min(max(time.Until(next), 0), idleWait)
	}
	d.mu.Lock()
	d.active[e.Job.ID] = &ActiveJob{JobID: e.Job.ID, Started: time.Now()}
	d.mu.Unlock()
	return e, 0
}

// renew keeps the lease of job id while its attempt runs (until stop is
// closed).
func (d *Dispatcher) renew(ctx context.Context, id string, stop <-chan struct{}) {
	t := time.NewTicker(max(d.LeaseTTL/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.spool.Renew(ctx, id, d.holder, d.LeaseTTL); err != nil && ctx.Err() == nil {
				d.log.Warn("renew the lease of a job in an attempt", "job", id, "error", err)
			}
		}
	}
}

func (d *Dispatcher) release(id string) {
	d.mu.Lock()
	delete(d.active, id)
	d.mu.Unlock()
}

// attemptLog collects what the driver reports during one attempt.
type attemptLog struct {
	d       *Dispatcher
	id      string
	mu      sync.Mutex
	b       strings.Builder
	dialled time.Time
}

func (l *attemptLog) report(p linedriver.Progress) {
	now := time.Now()
	l.mu.Lock()
	if l.b.Len() < spool.MaxLog {
		fmt.Fprintf(&l.b, "%s %s %s\n", now.Format("15:04:05.000"), p.Step, p.Detail)
	}
	if p.Step == "dial" && l.dialled.IsZero() {
		l.dialled = now
	}
	l.mu.Unlock()
	l.d.mu.Lock()
	if a := l.d.active[l.id]; a != nil {
		a.Step, a.Detail = p.Step, p.Detail
		if p.Page > 0 {
			a.Page, a.Pages = p.Page, p.Pages
		}
	}
	l.d.mu.Unlock()
}

func (d *Dispatcher) attempt(ctx context.Context, e *spool.Entry) {
	job := e.Job
	job.Attempt++
	ids := []slog.Attr{
		slog.String("job", job.ID),
		slog.String("source_id", job.Record.SourceID), slog.Int("attempt", job.Attempt),
	}
	activity.Log(d.log, activity.Attempt, ids...)
	started := time.Now()
	alog := &attemptLog{d: d, id: job.ID}
	stopRenew := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		d.renew(ctx, job.ID, stopRenew)
	}()
	// The lease is renewed until the outcome is written (or given up):
	// a write retried past the lease's time to live must not let another
	// worker take the job and send it again.
	defer func() {
		close(stopRenew)
		<-renewed
	}()
	o := d.deliver(ctx, &job, alog.report)
	ended := time.Now()
	interrupted := ctx.Err() != nil && o.Result != linedriver.Delivered
	if interrupted {
		// Shutdown: the attempt does not count, and the job is due at once
		// when the gateway comes back.
		o = linedriver.Outcome{Result: linedriver.Temporary, Category: "interrupted", Reason: "gateway stopping", State: o.State}
	} else if o.Result == linedriver.Temporary && !o.Uncounted && d.maxAttempts > 0 && job.Attempt >= d.maxAttempts {
		o = linedriver.Outcome{Result: linedriver.Permanent, Category: o.Category,
			Reason: fmt.Sprintf("%s (gave up after %d attempts)", o.Reason, job.Attempt)}
	}
	counted := !interrupted && !(o.Result == linedriver.Temporary && o.Uncounted)
	if !interrupted {
		d.noteHealth(o)
	}
	rec := &spool.Attempt{N: job.Attempt, Started: started, Ended: ended, Result: o.Result.String(),
		Category: o.Category, Reason: o.Reason, Details: map[string]string{}}
	for k, v := range o.Details {
		if k == "log" {
			continue
		}
		rec.Details[k] = v
	}
	alog.mu.Lock()
	rec.Log = alog.b.String()
	dialled := alog.dialled
	alog.mu.Unlock()
	if l := o.Details["log"]; l != "" {
		rec.Log = l
	}
	if !dialled.IsZero() {
		ids = append(ids, slog.Float64("call_seconds", ended.Sub(dialled).Seconds()))
	}
	var follow []spool.FollowUp
	if d.FollowUps != nil && o.Result != linedriver.Temporary {
		follow = d.FollowUps(&job, o)
	}
	if err := d.record(ctx, job.ID, o, counted, rec, follow, ids); err != nil {
		d.log.Error("outcome not recorded in the spool; the job will be attempted again when the gateway starts next",
			append(attrsAny(ids), "result", o.Result.String(), "error", err)...)
		return
	}
	switch o.Result {
	case linedriver.Delivered:
		attrs := ids
		for k, v := range o.Details {
			if k != "log" {
				attrs = append(attrs, slog.String(k, v))
			}
		}
		activity.Log(d.log, activity.Delivered, attrs...)
	case linedriver.Permanent:
		activity.Log(d.log, activity.Failed, append(ids, slog.String("category", o.Category), slog.String("reason", o.Reason))...)
	default:
		if !interrupted {
			activity.Log(d.log, activity.Retried, append(ids, slog.String("category", o.Category),
				slog.String("reason", o.Reason), slog.Duration("retry_after", o.RetryAfter))...)
		}
	}
}

// record writes an attempt's outcome to the spool. A write that fails (a
// full disk, say) is tried again, with growing pauses, until it succeeds or
// the gateway stops: attempting the job again at once would deliver it
// again, a fax to the same number over and over. A lease lost (the job
// purged, or taken by another after the lease ran out) is not tried again.
func (d *Dispatcher) record(ctx context.Context, id string, o linedriver.Outcome, countAttempt bool, a *spool.Attempt, follow []spool.FollowUp, ids []slog.Attr) error {
	wait := recordRetryMin
	// A shutdown is no reason to lose the outcome: the write itself is
	// not cancelled.
	wctx := context.WithoutCancel(ctx)
	complete := func() error {
		n, err := d.spool.Complete(wctx, id, d.holder, o, countAttempt, a, follow)
		if err == nil && n > 0 && d.FollowedUp != nil {
			d.FollowedUp()
		}
		return err
	}
	for {
		err := complete()
		if err == nil || errors.Is(err, spool.ErrNotFound) || errors.Is(err, spool.ErrLeaseLost) {
			return err
		}
		d.log.Error("record outcome in spool; trying again", append(attrsAny(ids), "error", err, "in", wait.String())...)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			// One last try: a shutdown is no reason to lose the outcome.
			return complete()
		case <-t.C:
		}
		wait = min(2*wait, recordRetryMax)
	}
}

var recordRetryMin, recordRetryMax = time.Second, time.Minute

// deliver calls the driver, turning a panic into a temporary failure so one
// bad record cannot take the gateway down.
func (d *Dispatcher) deliver(ctx context.Context, job *linedriver.Job, collect func(linedriver.Progress)) (o linedriver.Outcome) {
	defer func() {
		if r := recover(); r != nil {
			o = linedriver.Retry("driver_panic", fmt.Sprintf("driver %s panicked: %v", job.Driver, r), time.Minute)
		}
	}()
	report := func(p linedriver.Progress) {
		collect(p)
		attrs := []slog.Attr{slog.String("job", job.ID), slog.String("step", p.Step), slog.String("detail", p.Detail)}
		if p.Page > 0 {
			attrs = append(attrs, slog.Int("page", p.Page), slog.Int("pages", p.Pages))
		}
		activity.Log(d.log, activity.Progress, attrs...)
	}
	if ss, ok := d.driver.(linedriver.StateSaver); ok {
		save := func(state json.RawMessage) error {
			return d.spool.SaveState(context.WithoutCancel(ctx), job.ID, d.holder, state)
		}
		o = ss.DeliverSaving(ctx, job, report, save)
	} else {
		o = d.driver.Deliver(ctx, job, report)
	}
	if o.Result == 0 {
		o = linedriver.Retry("driver_error", "driver returned no outcome", time.Minute)
	}
	return o
}

func attrsAny(as []slog.Attr) []any {
	out := make([]any, len(as))
	for i, a := range as {
		out[i] = a
	}
	return out
}
