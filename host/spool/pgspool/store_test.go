package pgspool

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/linedriver"
)

func TestAcceptLeaseComplete(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxT(t)
	// Two jobs of one record (fax and file): its documents stored once.
	a, b := job("m1.fax", "fax", "hello", "world"), job("m1.file", "file", "hello", "world")
	b.Record = a.Record
	if dup, err := s.Accept(ctx, "inbox", "imap:1:1", []*linedriver.Job{a, b}); err != nil || dup {
		t.Fatalf("Accept = %v, %v", dup, err)
	}
	if dup, err := s.Accept(ctx, "inbox", "imap:1:1", []*linedriver.Job{job("m2.fax", "fax")}); err != nil || !dup {
		t.Fatalf("second Accept of a source id = %v, %v; want dup", dup, err)
	}
	var docs int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM documents`).Scan(&docs); err != nil || docs != 2 {
		t.Fatalf("documents stored: %d (%v), want 2 (once per record)", docs, err)
	}
	if seen, err := s.Seen(ctx, "inbox", "imap:1:1"); err != nil || !seen {
		t.Fatalf("Seen = %v, %v", seen, err)
	}

	e, _, err := s.Lease(ctx, "fax", "w1", time.Minute)
	if err != nil || e == nil || e.Job.ID != "m1.fax" {
		t.Fatalf("Lease = %+v, %v", e, err)
	}
	if len(e.Job.Record.Documents) != 2 || string(e.Job.Record.Documents[1].Data) != "world" || e.Job.Record.Fields["k"] != "m1.fax" {
		t.Fatalf("leased job's record = %+v", e.Job.Record)
	}
	// Held: nothing else to lease for fax, and no job nobody holds.
	if e2, next, err := s.Lease(ctx, "fax", "w2", time.Minute); err != nil || e2 != nil || !next.IsZero() {
		t.Fatalf("Lease of a held queue = %+v, next in %v, %v", e2, time.Until(next), err)
	}
	state := json.RawMessage(`{"pages_confirmed":2}`)
	if err := s.SaveState(ctx, "m1.fax", "w2", state); !errors.Is(err, spool.ErrLeaseLost) {
		t.Fatalf("SaveState by another holder = %v, want ErrLeaseLost", err)
	}
	if err := s.SaveState(ctx, "m1.fax", "w1", state); err != nil {
		t.Fatal(err)
	}
	att := &spool.Attempt{N: 1, Result: "temporary", Reason: "BUSY"}
	if _, err := s.Complete(ctx, "m1.fax", "w1", linedriver.Retry("busy", "BUSY", 0), true, att, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Complete(ctx, "m1.fax", "w1", linedriver.Done(nil), true, nil, nil); !errors.Is(err, spool.ErrLeaseLost) {
		t.Fatalf("Complete after the lease ended = %v, want ErrLeaseLost", err)
	}
	e, _, err = s.Lease(ctx, "fax", "w1", time.Minute)
	if err != nil || e == nil || e.Job.Attempt != 1 || string(e.Job.State) != string(state) || e.Category != "busy" {
		t.Fatalf("Lease after a retry = %+v, %v", e, err)
	}
	follow := []spool.FollowUp{{Namespace: "report:inbox", Key: "rec-m1.fax/failed", Job: job("m1.report", "report")}}
	if n, err := s.Complete(ctx, "m1.fax", "w1", linedriver.Fail("bad_number", "number not allowed"), true, att, follow); err != nil || n != 1 {
		t.Fatalf("Complete permanent = %d, %v", n, err)
	}
	d, err := s.Job(ctx, "m1.fax")
	if err != nil || d.State != spool.StateFailed || d.Attempts != 2 || len(d.History) != 2 || d.Documents[0].Size != 5 {
		t.Fatalf("Job = %+v, %v", d, err)
	}
	st, err := s.Stats(ctx)
	if err != nil || st.Failed != 1 || st.Queued["file"] != 1 || st.Queued["report"] != 1 || st.Sources != 2 {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	if err := s.Retry(ctx, "m1.fax"); err != nil {
		t.Fatal(err)
	}
	if err := s.Retry(ctx, "m1.fax"); !errors.Is(err, spool.ErrNotFailed) {
		t.Fatalf("Retry of a queued job = %v", err)
	}
	jobs, err := s.Jobs(ctx, spool.Query{})
	if err != nil || len(jobs) != 3 {
		t.Fatalf("Jobs = %+v, %v", jobs, err)
	}
	for _, id := range []string{"m1.fax", "m1.file"} {
		if err := s.Purge(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM documents`).Scan(&docs); err != nil || docs != 0 {
		t.Fatalf("documents left after both jobs of the record went: %d (%v)", docs, err)
	}
	if _, err := s.Entry(ctx, "m1.fax"); !errors.Is(err, spool.ErrNotFound) {
		t.Fatalf("Entry of a purged job = %v", err)
	}
}
