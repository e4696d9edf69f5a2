// Package spooltest is the conformance test of the spool.Store contract:
// every backend (the bbolt file of one gateway, a database shared by
// several) runs Run against a fresh store per case and must pass it whole.
// BenchAccept is the accept benchmark every backend runs the same way. It
// knows nothing of any backend.
package spooltest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
)

// Corrupter is offered by a store that can plant an entry it cannot
// decode (a test's hook, not part of spool.Store): Corrupt makes queued
// job id undecodable where the backend keeps it. Every backend's test store
// offers it: without it the quarantine case fails.
type Corrupter interface {
	Corrupt(t *testing.T, id string)
}

// Reopener is offered by a store that can be closed and opened again on
// the same data (the same file, the same database): Reopen closes it and
// returns the store opened anew. Every backend's test store offers it:
// without it the durability case fails.
type Reopener interface {
	Reopen(t *testing.T) spool.Store
}

// wait is how long a case waits for what a backend may do a little later
// (a lease that runs out, a wake from another connection).
const wait = 10 * time.Second

// ttl is the lease of the cases that wait for one to run out.
const ttl = 300 * time.Millisecond

// Run runs every case of the contract, each on a store of its own that
// open returns (and closes at the test's end itself).
func Run(t *testing.T, open func(t *testing.T) spool.Store) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, open(t))
		})
	}
}

var cases = []struct {
	name string
	run  func(t *testing.T, s spool.Store)
}{
	{"AcceptDedupe", testAcceptDedupe},
	{"AcceptConcurrentDedupe", testAcceptConcurrent},
	{"FollowUpKeys", testFollowUps},
	{"LeaseOrder", testLeaseOrder},
	{"LeaseExclusive", testLeaseExclusive},
	{"LeaseExpires", testLeaseExpires},
	{"Renew", testRenew},
	{"CompleteOutcomes", testOutcomes},
	{"SaveState", testSaveState},
	{"RetryPurge", testRetryPurge},
	{"PruneForget", testPruneForget},
	{"Listings", testListings},
	{"Wake", testWake},
	{"Health", testHealth},
	{"Quarantine", testQuarantine},
	{"Cancelled", testCancelled},
	{"Durable", testDurable},
	{"Close", testClose},
}

var doc = []byte("%PDF-1.4\n% a document kept byte for byte \x00\xff\n%%EOF\n")

// job is a job of driver in the pipeline's id form (arrival time, random,
// driver), with fields, a document and an origin.
func job(driver, sourceID string) *linedriver.Job {
	now := time.Now().UTC()
	rid := now.Format("20060102T150405.000Z") + "-" + rand.Text()[:10]
	return &linedriver.Job{
		ID: rid + "." + driver, Driver: driver, Accepted: now,
		Record: linedriver.Record{ID: rid, SourceID: sourceID, Connector: "inbox", Received: now,
			Fields:    map[string]string{"fax_number": "+41445551234", "recipient": "Ward 3"},
			Documents: []linedriver.Document{{Name: "order.pdf", MediaType: "application/pdf", Data: doc}},
			Origin:    &linedriver.Origin{MessageID: sourceID + "@example.org", From: "doctor@example.org", Subject: "Order"}},
	}
}

func accept(t *testing.T, s spool.Store, sourceID string, jobs ...*linedriver.Job) {
	t.Helper()
	dup, err := s.Accept(t.Context(), "inbox", sourceID, jobs)
	if err != nil || dup {
		t.Fatalf("Accept(%s) = dup %v, %v; want stored", sourceID, dup, err)
	}
}

// lease leases the next due job of driver for holder and fails without one.
func lease(t *testing.T, s spool.Store, driver, holder string, ttl time.Duration) *spool.Entry {
	t.Helper()
	e, _, err := s.Lease(t.Context(), driver, holder, ttl)
	if err != nil || e == nil {
		t.Fatalf("Lease(%s, %s) = %v, %v; want a job", driver, holder, e, err)
	}
	return e
}

func complete(t *testing.T, s spool.Store, id, holder string, o linedriver.Outcome, a *spool.Attempt, follow ...spool.FollowUp) int {
	t.Helper()
	n, err := s.Complete(t.Context(), id, holder, o, true, a, follow)
	if err != nil {
		t.Fatalf("Complete(%s, %s, %v) = %v", id, holder, o.Result, err)
	}
	return n
}

func stats(t *testing.T, s spool.Store) spool.Stats {
	t.Helper()
	st, err := s.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func jobs(t *testing.T, s spool.Store, q spool.Query) []string {
	t.Helper()
	js, err := s.Jobs(t.Context(), q)
	if err != nil {
		t.Fatalf("Jobs(%+v) = %v", q, err)
	}
	out := []string{}
	for _, j := range js {
		out = append(out, j.ID+"="+j.State)
	}
	return out
}

func testAcceptDedupe(t *testing.T, s spool.Store) {
	ctx := t.Context()
	a, b := job("fax", "<m1>"), job("file", "<m1>")
	if seen, err := s.Seen(ctx, "inbox", "<m1>"); err != nil || seen {
		t.Fatalf("Seen before Accept = %v, %v", seen, err)
	}
	accept(t, s, "<m1>", a, b)
	for _, tc := range []struct {
		name      string
		connector string
		wantDup   bool
	}{
		{"the same source id again", "inbox", true},
		{"the same source id of another connector", "other", false},
	} {
		dup, err := s.Accept(ctx, tc.connector, "<m1>", []*linedriver.Job{job("fax", "<m1>")})
		if err != nil || dup != tc.wantDup {
			t.Errorf("%s: dup %v, %v; want %v", tc.name, dup, err, tc.wantDup)
		}
	}
	if seen, err := s.Seen(ctx, "inbox", "<m1>"); err != nil || !seen {
		t.Errorf("Seen after Accept = %v, %v", seen, err)
	}
	st := stats(t, s)
	if st.Queued["fax"] != 2 || st.Queued["file"] != 1 || st.Sources != 2 {
		t.Errorf("Stats = queued %v, %d sources; want fax 2, file 1, 2 sources", st.Queued, st.Sources)
	}
	e, err := s.Entry(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Job.Record.Documents[0].Data) != string(doc) || e.Job.Record.Fields["recipient"] != "Ward 3" ||
		e.Job.Record.Origin == nil || e.Job.Record.Origin.From != "doctor@example.org" || e.Job.Driver != "fax" || e.Job.Record.SourceID != "<m1>" {
		t.Errorf("Entry = %+v: the record did not come back whole", e.Job)
	}
}

func testAcceptConcurrent(t *testing.T, s spool.Store) {
	const callers = 16
	var wg sync.WaitGroup
	dups := make([]bool, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			dups[i], errs[i] = s.Accept(t.Context(), "inbox", "<same>", []*linedriver.Job{job("fax", "<same>")})
		})
	}
	wg.Wait()
	stored := 0
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !dups[i] {
			stored++
		}
	}
	if st := stats(t, s); stored != 1 || st.Queued["fax"] != 1 {
		t.Errorf("%d of %d concurrent Accepts of one source id stored jobs, %d queued; want exactly 1", stored, callers, st.Queued["fax"])
	}
}

func report(key string) spool.FollowUp {
	return spool.FollowUp{Namespace: "report:inbox", Key: key, Job: job("report:inbox", "<m1>")}
}

func testFollowUps(t *testing.T, s spool.Store) {
	ctx := t.Context()
	accept(t, s, "<m1>", job("fax", "<m1>"))
	e := lease(t, s, "fax", "w1", time.Minute)
	// The outcome and its report in one transaction.
	if n := complete(t, s, e.Job.ID, "w1", linedriver.Fail("bad_number", "no"), nil, report("m1/failed")); n != 1 {
		t.Errorf("Complete with a follow-up added %d, want 1", n)
	}
	if st := stats(t, s); st.Queued["report:inbox"] != 1 || st.Failed != 1 {
		t.Errorf("after Complete: queued %v, failed %d; want the report queued and the job failed", st.Queued, st.Failed)
	}
	for _, tc := range []struct {
		name string
		f    []spool.FollowUp
		want int
	}{
		{"the same key again", []spool.FollowUp{report("m1/failed")}, 0},
		{"a new key and an old one", []spool.FollowUp{report("m1/failed"), report("m2/failed")}, 1},
		{"a key in another namespace", []spool.FollowUp{{Namespace: "report:other", Key: "m1/failed", Job: job("report:other", "<m1>")}}, 1},
	} {
		if n, err := s.Add(ctx, tc.f); err != nil || n != tc.want {
			t.Errorf("Add(%s) = %d, %v; want %d", tc.name, n, err, tc.want)
		}
	}
	// A key is remembered after its job is gone, until Forget.
	for {
		e, _, err := s.Lease(ctx, "report:inbox", "w1", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if e == nil {
			break
		}
		complete(t, s, e.Job.ID, "w1", linedriver.Done(nil), nil)
	}
	if n, _ := s.Add(ctx, []spool.FollowUp{report("m1/failed")}); n != 0 {
		t.Errorf("Add of a delivered report's key added %d, want 0", n)
	}
	if n, err := s.Forget(ctx, time.Now().Add(time.Minute)); err != nil || n < 2 {
		t.Errorf("Forget = %d, %v; want the two delivered reports' keys", n, err)
	}
	if n, _ := s.Add(ctx, []spool.FollowUp{report("m1/failed")}); n != 1 {
		t.Errorf("Add after Forget added %d, want 1", n)
	}
}

func testLeaseOrder(t *testing.T, s spool.Store) {
	ctx := t.Context()
	if e, next, err := s.Lease(ctx, "fax", "w1", time.Minute); e != nil || !next.IsZero() || err != nil {
		t.Fatalf("Lease of an empty queue = %v, %v, %v; want nothing and no next", e, next, err)
	}
	first, second, other := job("fax", "<m1>"), job("fax", "<m2>"), job("file", "<m3>")
	accept(t, s, "<m1>", first)
	accept(t, s, "<m2>", second)
	accept(t, s, "<m3>", other)
	if e := lease(t, s, "fax", "w1", time.Minute); e.Job.ID != first.ID {
		t.Fatalf("first Lease = %s, want the earliest %s", e.Job.ID, first.ID)
	}
	e := lease(t, s, "fax", "w2", time.Minute)
	if e.Job.ID != second.ID {
		t.Fatalf("second Lease = %s, want %s (the first is held)", e.Job.ID, second.ID)
	}
	before := time.Now()
	complete(t, s, second.ID, "w2", linedriver.Retry("busy", "BUSY", time.Hour), nil)
	e, next, err := s.Lease(ctx, "fax", "w2", time.Minute)
	if err != nil || e != nil {
		t.Fatalf("Lease with only a held job and one due later = %v, %v; want nothing", e, err)
	}
	if d := next.Sub(before); d < time.Hour-time.Minute || d > time.Hour+time.Minute {
		t.Errorf("next due in %v, want the retry in an hour", d)
	}
	if e := lease(t, s, "file", "w3", time.Minute); e.Job.ID != other.ID {
		t.Errorf("Lease of file = %s, want %s: drivers have queues of their own", e.Job.ID, other.ID)
	}
}

func testLeaseExclusive(t *testing.T, s spool.Store) {
	const n, workers = 60, 8
	for i := range n {
		src := fmt.Sprintf("<m%d>", i)
		accept(t, s, src, job("fax", src))
	}
	var mu sync.Mutex
	leased := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		holder := fmt.Sprintf("worker-%d", w)
		wg.Go(func() {
			for {
				e, _, err := s.Lease(t.Context(), "fax", holder, time.Minute)
				if err != nil {
					errs <- err
					return
				}
				if e == nil {
					return
				}
				mu.Lock()
				leased[e.Job.ID]++
				mu.Unlock()
				if _, err := s.Complete(t.Context(), e.Job.ID, holder, linedriver.Done(nil), true, nil, nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for id, k := range leased {
		if k != 1 {
			t.Errorf("job %s leased %d times", id, k)
		}
	}
	if st := stats(t, s); len(leased) != n || st.Queued["fax"] != 0 {
		t.Errorf("%d jobs leased, %d queued; want all %d leased once and none left", len(leased), st.Queued["fax"], n)
	}
}

func testLeaseExpires(t *testing.T, s spool.Store) {
	ctx := t.Context()
	j := job("fax", "<m1>")
	accept(t, s, "<m1>", j)
	lease(t, s, "fax", "dead", ttl)
	if e, _, err := s.Lease(ctx, "fax", "alive", time.Minute); e != nil || err != nil {
		t.Fatalf("Lease of a held job = %v, %v; want nothing", e, err)
	}
	var e *spool.Entry
	testenv.Eventually(t, wait, "the job back after its holder's lease ran out", func() bool {
		var err error
		e, _, err = s.Lease(ctx, "fax", "alive", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return e != nil
	})
	if e.Job.ID != j.ID {
		t.Fatalf("leased %s, want %s", e.Job.ID, j.ID)
	}
	// The old holder comes back: it changes nothing.
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"SaveState", func() error { return s.SaveState(ctx, j.ID, "dead", json.RawMessage(`{"page":9}`)) }},
		{"Renew", func() error { return s.Renew(ctx, j.ID, "dead", time.Minute) }},
		{"Complete", func() error {
			_, err := s.Complete(ctx, j.ID, "dead", linedriver.Done(nil), true, nil, nil)
			return err
		}},
	} {
		if err := tc.do(); !errors.Is(err, spool.ErrLeaseLost) {
			t.Errorf("%s by the holder whose lease was taken = %v, want ErrLeaseLost", tc.name, err)
		}
	}
	if e, err := s.Entry(ctx, j.ID); err != nil || len(e.Job.State) != 0 {
		t.Errorf("after the old holder's calls: %v, state %s; want the job queued, unchanged", err, e.Job.State)
	}
	complete(t, s, j.ID, "alive", linedriver.Done(nil), nil)
	if _, err := s.Job(ctx, j.ID); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("Job after the new holder delivered it = %v, want ErrNotFound", err)
	}
}

func testRenew(t *testing.T, s spool.Store) {
	ctx := t.Context()
	j := job("fax", "<m1>")
	accept(t, s, "<m1>", j)
	lease(t, s, "fax", "w1", time.Hour)
	if err := s.Renew(ctx, j.ID, "w2", time.Hour); !errors.Is(err, spool.ErrLeaseLost) {
		t.Errorf("Renew by another = %v, want ErrLeaseLost", err)
	}
	if err := s.Renew(ctx, "nope", "w1", time.Hour); !errors.Is(err, spool.ErrLeaseLost) {
		t.Errorf("Renew of an unknown job = %v, want ErrLeaseLost", err)
	}
	// Renew sets the lease to ttl from now: shorter here, so that it runs
	// out and another takes the job.
	if err := s.Renew(ctx, j.ID, "w1", ttl); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "the job leased by another after the renewed lease ran out", func() bool {
		e, _, err := s.Lease(ctx, "fax", "w2", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return e != nil
	})
}

func testOutcomes(t *testing.T, s spool.Store) {
	ctx := t.Context()
	state := json.RawMessage(`{"pages_done":2}`)
	for i, tc := range []struct {
		name         string
		o            linedriver.Outcome
		count        bool
		wantState    string // "": gone
		wantAttempts int
	}{
		{"delivered", linedriver.Done(nil), true, "", 0},
		{"temporary", linedriver.Outcome{Result: linedriver.Temporary, Category: "busy", Reason: "BUSY", RetryAfter: time.Hour, State: state}, true, spool.StateRetrying, 1},
		{"temporary, not counted", linedriver.Outcome{Result: linedriver.Temporary, Category: "interrupted", Reason: "stopping", Uncounted: true}, false, spool.StateRetrying, 0},
		{"permanent", linedriver.Fail("bad_number", "number unobtainable"), true, spool.StateFailed, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "<" + tc.name + ">"
			j := job(fmt.Sprint("fax", i), src)
			accept(t, s, src, j)
			e := lease(t, s, j.Driver, "w1", time.Minute)
			started := time.Now()
			a := &spool.Attempt{N: 1, Started: started, Ended: started, Result: tc.o.Result.String(), Category: tc.o.Category, Reason: tc.o.Reason, Log: "ATD\nBUSY"}
			if _, err := s.Complete(ctx, e.Job.ID, "w1", tc.o, tc.count, a, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Complete(ctx, e.Job.ID, "w1", tc.o, tc.count, a, nil); !errors.Is(err, spool.ErrLeaseLost) {
				t.Errorf("a second Complete = %v, want ErrLeaseLost: the lease ended with the first", err)
			}
			d, err := s.Job(ctx, j.ID)
			if tc.wantState == "" {
				if !errors.Is(err, spool.ErrNotFound) {
					t.Errorf("Job of a delivered job = %+v, %v; want ErrNotFound", d, err)
				}
				if seen, _ := s.Seen(ctx, "inbox", src); !seen {
					t.Error("the source id of a delivered job was forgotten")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.State != tc.wantState || d.Attempts != tc.wantAttempts || d.Category != tc.o.Category || d.LastError != tc.o.Reason ||
				len(d.History) != 1 || d.History[0].Log != "ATD\nBUSY" {
				t.Errorf("Job = state %s, %d attempts, %q %q, history %+v; want %s, %d, %q %q and the attempt",
					d.State, d.Attempts, d.Category, d.LastError, d.History, tc.wantState, tc.wantAttempts, tc.o.Category, tc.o.Reason)
			}
			switch tc.wantState {
			case spool.StateFailed:
				if d.Finished.IsZero() {
					t.Error("a failed job without the time it failed")
				}
				if st := stats(t, s); st.FailedBy[j.Driver] != 1 {
					t.Errorf("Stats.FailedBy = %v, want 1 for %s", st.FailedBy, j.Driver)
				}
			case spool.StateRetrying:
				if due := d.Due.Sub(started); due < tc.o.RetryAfter-time.Minute || due > tc.o.RetryAfter+time.Minute {
					t.Errorf("due in %v, want %v", due, tc.o.RetryAfter)
				}
				if st := stats(t, s); st.Retrying[j.Driver] != 1 || st.Queued[j.Driver] != 1 {
					t.Errorf("Stats = queued %v retrying %v; want 1 of %s", st.Queued, st.Retrying, j.Driver)
				}
				e, err := s.Entry(ctx, j.ID)
				if err != nil {
					t.Fatal(err)
				}
				if tc.o.State != nil && string(e.Job.State) != string(tc.o.State) {
					t.Errorf("state %s, want the outcome's %s", e.Job.State, tc.o.State)
				}
			}
		})
	}
}

func testSaveState(t *testing.T, s spool.Store) {
	ctx := t.Context()
	j := job("fax", "<m1>")
	accept(t, s, "<m1>", j)
	lease(t, s, "fax", "w1", time.Minute)
	if err := s.SaveState(ctx, j.ID, "w1", json.RawMessage(`{"pages_done":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveState(ctx, j.ID, "w2", json.RawMessage(`{"pages_done":9}`)); !errors.Is(err, spool.ErrLeaseLost) {
		t.Errorf("SaveState by another = %v, want ErrLeaseLost", err)
	}
	e, err := s.Entry(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Job.State) != `{"pages_done":1}` || string(e.Job.Record.Documents[0].Data) != string(doc) {
		t.Errorf("Entry after SaveState = state %s, %d document bytes", e.Job.State, len(e.Job.Record.Documents[0].Data))
	}
	// A temporary outcome without a state keeps the saved one: the next
	// attempt resumes from there.
	complete(t, s, j.ID, "w1", linedriver.Retry("no_carrier", "line dropped", 0), nil)
	e = lease(t, s, "fax", "w2", time.Minute)
	if string(e.Job.State) != `{"pages_done":1}` || e.Job.Attempt != 1 {
		t.Errorf("next attempt's job = state %s attempt %d; want the saved state and 1", e.Job.State, e.Job.Attempt)
	}
}

func testRetryPurge(t *testing.T, s spool.Store) {
	ctx := t.Context()
	failed, queued, held := job("fax", "<f>"), job("fax", "<q>"), job("file", "<h>")
	accept(t, s, "<f>", failed)
	accept(t, s, "<q>", queued)
	accept(t, s, "<h>", held)
	e := lease(t, s, "fax", "w1", time.Minute)
	complete(t, s, e.Job.ID, "w1", linedriver.Fail("bad_number", "no"), &spool.Attempt{N: 1, Result: "permanent"})
	lease(t, s, "file", "w1", time.Minute)
	for _, tc := range []struct {
		name string
		do   func() error
		want error
	}{
		{"retry a queued job", func() error { return s.Retry(ctx, queued.ID) }, spool.ErrNotFailed},
		{"retry an unknown job", func() error { return s.Retry(ctx, "nope") }, spool.ErrNotFound},
		{"purge a held job", func() error { return s.Purge(ctx, held.ID) }, spool.ErrActive},
		{"purge an unknown job", func() error { return s.Purge(ctx, "nope") }, spool.ErrNotFound},
		{"retry the failed job", func() error { return s.Retry(ctx, failed.ID) }, nil},
		{"retry it again", func() error { return s.Retry(ctx, failed.ID) }, spool.ErrNotFailed},
		{"purge a queued job", func() error { return s.Purge(ctx, queued.ID) }, nil},
	} {
		if err := tc.do(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	d, err := s.Job(ctx, failed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != spool.StateQueued || d.Attempts != 0 || d.LastError != "" || len(d.History) != 1 {
		t.Errorf("retried job = %s, %d attempts, %q, %d in history; want queued, 0, no error, its history", d.State, d.Attempts, d.LastError, len(d.History))
	}
	if e := lease(t, s, "fax", "w2", time.Minute); e.Job.ID != failed.ID {
		t.Errorf("Lease after retry and purge = %s, want the retried %s", e.Job.ID, failed.ID)
	}
	if _, err := s.Job(ctx, queued.ID); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("purged job: %v, want ErrNotFound", err)
	}
	if seen, _ := s.Seen(ctx, "inbox", "<q>"); !seen {
		t.Error("a purged job's source id was forgotten: the mail would be taken again")
	}
}

func testPruneForget(t *testing.T, s spool.Store) {
	ctx := t.Context()
	accept(t, s, "<f>", job("fax", "<f>"))
	accept(t, s, "<d>", job("fax", "<d>"))
	accept(t, s, "<q>", job("file", "<q>"))
	complete(t, s, lease(t, s, "fax", "w1", time.Minute).Job.ID, "w1", linedriver.Fail("x", "y"), nil)
	complete(t, s, lease(t, s, "fax", "w1", time.Minute).Job.ID, "w1", linedriver.Done(nil), nil)
	for _, tc := range []struct {
		name    string
		do      func() (int, error)
		want    int
		sources int
	}{
		{"prune before the failure", func() (int, error) { return s.PruneFailed(ctx, time.Now().Add(-time.Hour)) }, 0, 3},
		{"forget before the accepts", func() (int, error) { return s.Forget(ctx, time.Now().Add(-time.Hour)) }, 0, 3},
		// The delivered one's source id goes; the failed and queued jobs keep theirs.
		{"forget after the accepts", func() (int, error) { return s.Forget(ctx, time.Now().Add(time.Minute)) }, 1, 2},
		{"prune after the failure", func() (int, error) { return s.PruneFailed(ctx, time.Now().Add(time.Minute)) }, 1, 2},
		{"prune again", func() (int, error) { return s.PruneFailed(ctx, time.Now().Add(time.Minute)) }, 0, 2},
		{"forget the pruned one's", func() (int, error) { return s.Forget(ctx, time.Now().Add(time.Minute)) }, 1, 1},
	} {
		n, err := tc.do()
		if st := stats(t, s); err != nil || n != tc.want || st.Sources != tc.sources {
			t.Errorf("%s = %d, %v, %d source ids left; want %d, %d left", tc.name, n, err, st.Sources, tc.want, tc.sources)
		}
	}
	if st := stats(t, s); st.Failed != 0 || st.Queued["file"] != 1 {
		t.Errorf("Stats = %+v; want no failed job, the file job queued", st)
	}
}

func testListings(t *testing.T, s spool.Store) {
	ctx := t.Context()
	q1, active, retry, failed, file := job("fax", "<1>"), job("fax", "<2>"), job("fax", "<3>"), job("fax", "<4>"), job("file", "<5>")
	for _, j := range []*linedriver.Job{q1, active, retry, failed, file} {
		accept(t, s, j.Record.SourceID, j)
	}
	// Lease in due order: q1 and active first, put q1 back; then the others.
	for _, want := range []*linedriver.Job{q1, active, retry, failed} {
		if e := lease(t, s, "fax", "w1", time.Minute); e.Job.ID != want.ID {
			t.Fatalf("leased %s, want %s", e.Job.ID, want.ID)
		}
	}
	complete(t, s, q1.ID, "w1", linedriver.Outcome{Result: linedriver.Temporary, Category: "interrupted", Uncounted: true}, nil)
	complete(t, s, retry.ID, "w1", linedriver.Retry("busy", "BUSY", time.Hour), nil)
	complete(t, s, failed.ID, "w1", linedriver.Fail("bad_number", "no"), nil)
	for _, tc := range []struct {
		name string
		q    spool.Query
		want []string
	}{
		{"all", spool.Query{}, []string{active.ID + "=active", file.ID + "=queued", q1.ID + "=retrying", retry.ID + "=retrying", failed.ID + "=failed"}},
		{"one driver", spool.Query{Driver: "file"}, []string{file.ID + "=queued"}},
		{"active", spool.Query{State: spool.StateActive}, []string{active.ID + "=active"}},
		{"retrying of fax", spool.Query{State: spool.StateRetrying, Driver: "fax"}, []string{q1.ID + "=retrying", retry.ID + "=retrying"}},
		{"queued", spool.Query{State: spool.StateQueued}, []string{file.ID + "=queued"}},
		{"failed", spool.Query{State: spool.StateFailed}, []string{failed.ID + "=failed"}},
		{"failed of file", spool.Query{State: spool.StateFailed, Driver: "file"}, []string{}},
		{"limit", spool.Query{Limit: 2}, []string{active.ID + "=active", file.ID + "=queued"}},
	} {
		if got := jobs(t, s, tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("Jobs(%s) =\n %v\nwant\n %v", tc.name, got, tc.want)
		}
	}
	if _, err := s.Jobs(ctx, spool.Query{State: "stuck"}); err == nil {
		t.Error("Jobs with an unknown state: no error")
	}
	js, err := s.Jobs(ctx, spool.Query{State: spool.StateFailed})
	if err != nil {
		t.Fatal(err)
	}
	f := js[0]
	if f.Connector != "inbox" || f.SourceID != "<4>" || f.Driver != "fax" || f.Fields["fax_number"] != "+41445551234" ||
		len(f.Documents) != 1 || f.Documents[0] != (spool.DocInfo{Name: "order.pdf", MediaType: "application/pdf", Size: len(doc)}) ||
		f.Category != "bad_number" || f.Attempts != 1 || f.Accepted.IsZero() {
		t.Errorf("listed failed job = %+v", f)
	}
	st := stats(t, s)
	if st.Queued["fax"] != 3 || st.Retrying["fax"] != 2 || st.Failed != 1 || st.FailedBy["fax"] != 1 || st.Queued["file"] != 1 || st.Oldest["fax"].IsZero() {
		t.Errorf("Stats = %+v", st)
	}
	if _, err := s.Entry(ctx, "nope"); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("Entry(unknown) = %v, want ErrNotFound", err)
	}
	if e, err := s.Entry(ctx, failed.ID); err != nil || string(e.Job.Record.Documents[0].Data) != string(doc) {
		t.Errorf("Entry of a failed job = %v: want it with its document", err)
	}
}

func testWake(t *testing.T, s spool.Store) {
	ctx := t.Context()
	woken := make(chan string, 64)
	s.Wake(func(driver string) {
		select {
		case woken <- driver:
		default:
		}
	})
	expect := func(what, driver string) {
		t.Helper()
		deadline := time.NewTimer(wait)
		defer deadline.Stop()
		for {
			select {
			case d := <-woken:
				if d == driver {
					return
				}
			case <-deadline.C:
				t.Fatalf("%s: no wake for %s", what, driver)
			}
		}
	}
	accept(t, s, "<m1>", job("fax", "<m1>"))
	expect("Accept", "fax")
	if _, err := s.Add(ctx, []spool.FollowUp{report("k1")}); err != nil {
		t.Fatal(err)
	}
	expect("Add", "report:inbox")
	e := lease(t, s, "fax", "w1", time.Minute)
	complete(t, s, e.Job.ID, "w1", linedriver.Retry("busy", "BUSY", 0), nil)
	expect("a temporary outcome", "fax")
	e = lease(t, s, "fax", "w1", time.Minute)
	complete(t, s, e.Job.ID, "w1", linedriver.Fail("x", "y"), nil, report("k2"))
	expect("a follow-up of an outcome", "report:inbox")
	if err := s.Retry(ctx, e.Job.ID); err != nil {
		t.Fatal(err)
	}
	expect("Retry", "fax")
}

func testHealth(t *testing.T, s spool.Store) {
	var mu sync.Mutex
	var changes []string
	s.OnHealthChange(func(old, new spool.Health) {
		mu.Lock()
		changes = append(changes, old.Health+"→"+new.Health)
		mu.Unlock()
	})
	if h := s.Health(); h.Health != spool.Healthy {
		t.Fatalf("a new store is %s", h.Health)
	}
	s.Deferred(errors.New("disk full"))
	if h := s.Health(); h.Health != spool.Degraded || h.Deferrals != 1 || h.LastError != "disk full" {
		t.Errorf("after Deferred: %+v", h)
	}
	accept(t, s, "<m1>", job("fax", "<m1>"))
	if h := s.Health(); h.Health != spool.Healthy {
		t.Errorf("after a write that succeeded: %s", h.Health)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"healthy→degraded", "degraded→healthy"}; !slices.Equal(changes, want) {
		t.Errorf("health changes %v, want %v", changes, want)
	}
}

func testQuarantine(t *testing.T, s spool.Store) {
	c, ok := s.(Corrupter)
	if !ok {
		t.Fatal("the store offers no Corrupter: every backend must show that a corrupt entry is quarantined")
	}
	ctx := t.Context()
	bad, good := job("fax", "<bad>"), job("fax", "<good>")
	accept(t, s, "<bad>", bad)
	accept(t, s, "<good>", good)
	var mu sync.Mutex
	var reported []spool.Quarantined
	s.OnQuarantine(func(q spool.Quarantined) { mu.Lock(); reported = append(reported, q); mu.Unlock() })
	c.Corrupt(t, bad.ID)
	if e := lease(t, s, "fax", "w1", time.Minute); e.Job.ID != good.ID {
		t.Fatalf("Lease with a corrupt job ahead = %s, want %s: the queue goes on", e.Job.ID, good.ID)
	}
	q, err := s.Quarantine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].Error == "" || q[0].At.IsZero() || len(q[0].Data) == 0 {
		t.Fatalf("Quarantine = %+v, want the corrupt job with its error, time and bytes", q)
	}
	mu.Lock()
	n := len(reported)
	mu.Unlock()
	if h := s.Health(); n != 1 || h.Quarantined != 1 || h.Health != spool.Healthy {
		t.Errorf("%d reported, health %+v; want 1 reported and counted, still healthy", n, h)
	}
	if _, err := s.Job(ctx, bad.ID); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("Job of the quarantined job = %v, want ErrNotFound", err)
	}
	if seen, _ := s.Seen(ctx, "inbox", "<bad>"); !seen {
		t.Error("the quarantined job's source id was forgotten: the mail would be taken again")
	}
}

func testClose(t *testing.T, s spool.Store) {
	ctx := t.Context()
	accept(t, s, "<m1>", job("fax", "<m1>"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"Seen", func() error { _, err := s.Seen(ctx, "inbox", "<m1>"); return err }},
		{"Accept", func() error {
			_, err := s.Accept(ctx, "inbox", "<m2>", []*linedriver.Job{job("fax", "<m2>")})
			return err
		}},
		{"Add", func() error { _, err := s.Add(ctx, []spool.FollowUp{report("k")}); return err }},
		{"Lease", func() error { _, _, err := s.Lease(ctx, "fax", "w1", time.Minute); return err }},
		{"Stats", func() error { _, err := s.Stats(ctx); return err }},
		{"Jobs", func() error { _, err := s.Jobs(ctx, spool.Query{}); return err }},
		{"Retry", func() error { return s.Retry(ctx, "x") }},
		{"Forget", func() error { _, err := s.Forget(ctx, time.Now()); return err }},
		{"Quarantine", func() error { _, err := s.Quarantine(ctx); return err }},
	} {
		if err := tc.do(); !errors.Is(err, spool.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", tc.name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close = %v", err)
	}
}

func testCancelled(t *testing.T, s spool.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"Accept", func() error {
			_, err := s.Accept(ctx, "inbox", "<m1>", []*linedriver.Job{job("fax", "<m1>")})
			return err
		}},
		{"Lease", func() error { _, _, err := s.Lease(ctx, "fax", "w1", time.Minute); return err }},
		{"Jobs", func() error { _, err := s.Jobs(ctx, spool.Query{}); return err }},
	} {
		if err := tc.do(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", tc.name, err)
		}
	}
	if seen, err := s.Seen(t.Context(), "inbox", "<m1>"); err != nil || seen {
		t.Errorf("Seen after a cancelled Accept = %v, %v; want nothing stored", seen, err)
	}
}

func testDurable(t *testing.T, s spool.Store) {
	r, ok := s.(Reopener)
	if !ok {
		t.Fatal("the store offers no Reopener: every backend must show that what it acknowledged survives a reopen")
	}
	queued, failed := job("fax", "<m1>"), job("file", "<m1>")
	accept(t, s, "<m1>", queued, failed)
	e := lease(t, s, "fax", "w1", time.Minute)
	if err := s.SaveState(t.Context(), e.Job.ID, "w1", json.RawMessage(`{"pages_done":1}`)); err != nil {
		t.Fatal(err)
	}
	e = lease(t, s, "file", "w1", time.Minute)
	complete(t, s, e.Job.ID, "w1", linedriver.Fail("bad", "no"), &spool.Attempt{N: 1, Result: "permanent", Log: "tried"}, report("m1/failed"))

	s = r.Reopen(t)
	ctx := t.Context()
	if seen, err := s.Seen(ctx, "inbox", "<m1>"); err != nil || !seen {
		t.Errorf("Seen after reopening = %v, %v", seen, err)
	}
	if n, err := s.Add(ctx, []spool.FollowUp{report("m1/failed")}); err != nil || n != 0 {
		t.Errorf("Add of a report key after reopening = %d, %v; want 0", n, err)
	}
	d, err := s.Job(ctx, failed.ID)
	if err != nil || d.State != spool.StateFailed || len(d.History) != 1 || d.History[0].Log != "tried" {
		t.Errorf("the failed job after reopening = %+v, %v", d, err)
	}
	// The lease may or may not outlive the store (bbolt: no; a shared
	// database: until it runs out); the job and its state do.
	got, err := s.Entry(ctx, queued.ID)
	if err != nil || string(got.Job.State) != `{"pages_done":1}` || string(got.Job.Record.Documents[0].Data) != string(doc) {
		t.Errorf("the queued job after reopening = %v: want its state and document", err)
	}
	if st := stats(t, s); st.Queued["fax"] != 1 || st.Queued["report:inbox"] != 1 || st.Failed != 1 {
		t.Errorf("Stats after reopening = %+v", st)
	}
}
