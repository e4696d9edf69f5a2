package spool

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediagw/mediagw/linedriver"
)

// jobAt is a job whose id looks like the pipeline's: arrival time, random
// part, driver.
func jobAt(at time.Time, n int, driver string) *linedriver.Job {
	rec := at.UTC().Format("20060102T150405.000Z") + fmt.Sprintf("-%012x", n)
	return &linedriver.Job{ID: rec + "." + driver, Driver: driver, Accepted: at,
		Record: linedriver.Record{ID: rec, SourceID: fmt.Sprintf("src-%d", n), Connector: "inbox",
			Fields:    map[string]string{"fax_number": fmt.Sprint(1000 + n)},
			Documents: []linedriver.Document{{Name: "body.txt", MediaType: "text/plain", Data: []byte("hello")}}}}
}

func ids(js []JobInfo) []string {
	out := []string{}
	for _, j := range js {
		out = append(out, j.ID+"="+j.State)
	}
	return out
}

// A spool with, for driver fax: a queued job, one waiting to retry, one in
// an attempt, one failed; and for driver file: a queued job.
func jobsSpool(t *testing.T) (*Spool, map[string]string) {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t0 := time.Now().Add(-time.Hour)
	js := map[string]*linedriver.Job{
		"queued": jobAt(t0, 1, "fax"), "retrying": jobAt(t0.Add(time.Minute), 2, "fax"),
		"active": jobAt(t0.Add(2*time.Minute), 3, "fax"), "failed": jobAt(t0.Add(3*time.Minute), 4, "fax"),
		"file": jobAt(t0.Add(4*time.Minute), 5, "file"),
	}
	names := map[string]string{}
	for _, name := range []string{"queued", "retrying", "active", "failed", "file"} { // the order they are due
		j := js[name]
		names[name] = j.ID
		if _, err := s.Accept(bg, "inbox", j.Record.SourceID, []*linedriver.Job{j}); err != nil {
			t.Fatal(err)
		}
	}
	busy := linedriver.Retry("busy", "the line is busy", time.Hour)
	if err := s.finishAttempt(names["retrying"], busy, true, &Attempt{N: 1, Result: "temporary", Category: "busy", Log: "dial 1002\nBUSY\n"}); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 2; n++ {
		o := busy
		if n == 2 {
			o = linedriver.Fail("bad_number", "no fax machine answers")
		}
		if err := s.finishAttempt(names["failed"], o, true, &Attempt{N: n, Result: o.Result.String(), Reason: o.Reason}); err != nil {
			t.Fatal(err)
		}
	}
	s.hold(names["active"]) // in an attempt
	return s, names
}

func TestJobs(t *testing.T) {
	s, n := jobsSpool(t)
	for _, tc := range []struct {
		name string
		q    Query
		want []string
	}{
		{"all, due order then failed", Query{}, []string{n["queued"] + "=queued", n["active"] + "=active", n["file"] + "=queued", n["retrying"] + "=retrying", n["failed"] + "=failed"}},
		{"one driver", Query{Driver: "file"}, []string{n["file"] + "=queued"}},
		{"queued", Query{State: StateQueued}, []string{n["queued"] + "=queued", n["file"] + "=queued"}},
		{"queued of fax", Query{State: StateQueued, Driver: "fax"}, []string{n["queued"] + "=queued"}},
		{"active", Query{State: StateActive}, []string{n["active"] + "=active"}},
		{"retrying", Query{State: StateRetrying}, []string{n["retrying"] + "=retrying"}},
		{"failed", Query{State: StateFailed}, []string{n["failed"] + "=failed"}},
		{"failed of file", Query{State: StateFailed, Driver: "file"}, []string{}},
		{"limit", Query{Limit: 2}, []string{n["queued"] + "=queued", n["active"] + "=active"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Jobs(bg, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ids(got)) != fmt.Sprint(tc.want) {
				t.Errorf("Jobs(%+v) =\n %v\nwant\n %v", tc.q, ids(got), tc.want)
			}
		})
	}
	if _, err := s.Jobs(bg, Query{State: "stuck"}); err == nil {
		t.Error("Jobs with an unknown state: no error")
	}

	failed, err := s.Jobs(bg, Query{State: StateFailed})
	if err != nil {
		t.Fatal(err)
	}
	f := failed[0]
	if f.Attempts != 2 || f.Category != "bad_number" || f.LastError != "no fax machine answers" || f.Finished.IsZero() ||
		f.Fields["fax_number"] != "1004" || len(f.Documents) != 1 || f.Documents[0] != (DocInfo{"body.txt", "text/plain", 5}) {
		t.Errorf("failed job = %+v", f)
	}
}

func TestJobDetailAndActions(t *testing.T) {
	s, n := jobsSpool(t)

	d, err := s.Job(bg, n["retrying"])
	if err != nil {
		t.Fatal(err)
	}
	if d.State != StateRetrying || d.Attempts != 1 || len(d.History) != 1 || d.History[0].Log != "dial 1002\nBUSY\n" {
		t.Errorf("retrying job = %+v", d)
	}
	if d, _ := s.Job(bg, n["failed"]); d == nil || len(d.History) != 2 || d.History[1].Result != "permanent" {
		t.Errorf("failed job's history = %+v", d)
	}
	if _, err := s.Job(bg, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Job(unknown) = %v, want ErrNotFound", err)
	}

	for _, tc := range []struct {
		name    string
		do      func() error
		wantErr error
	}{
		{"retry a queued job", func() error { return s.Retry(bg, n["queued"]) }, ErrNotFailed},
		{"retry an unknown job", func() error { return s.Retry(bg, "nope") }, ErrNotFound},
		{"purge an active job", func() error { return s.Purge(bg, n["active"]) }, ErrActive},
		{"purge an unknown job", func() error { return s.Purge(bg, "nope") }, ErrNotFound},
		{"retry the failed job", func() error { return s.Retry(bg, n["failed"]) }, nil},
		{"retry it again", func() error { return s.Retry(bg, n["failed"]) }, ErrNotFailed},
		{"purge a queued job", func() error { return s.Purge(bg, n["file"]) }, nil},
	} {
		if err := tc.do(); !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.wantErr)
		}
	}
	// The retried job is due now with its attempts from zero, and keeps its history.
	d, err = s.Job(bg, n["failed"])
	if err != nil {
		t.Fatal(err)
	}
	if d.State != StateQueued || d.Attempts != 0 || d.LastError != "" || time.Since(d.Due) < 0 || len(d.History) != 2 {
		t.Errorf("retried job = %+v", d)
	}
	if e, _ := s.next("fax", map[string]bool{n["queued"]: true, n["active"]: true}); e == nil || e.Job.ID != n["failed"] {
		t.Errorf("Next after the retry = %+v, want the retried job", e)
	}
	if _, err := s.Job(bg, n["file"]); !errors.Is(err, ErrNotFound) {
		t.Errorf("purged job: %v, want ErrNotFound", err)
	}
	st, _ := s.Stats(bg)
	if st.Queued["file"] != 0 || st.Failed != 0 {
		t.Errorf("stats after purge and retry = %+v", st)
	}
}

func TestStatsPerDriver(t *testing.T) {
	s, _ := jobsSpool(t)
	st, err := s.Stats(bg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Queued["fax"] != 3 || st.Retrying["fax"] != 1 || st.FailedBy["fax"] != 1 || st.Queued["file"] != 1 || st.Failed != 1 {
		t.Errorf("stats = %+v", st)
	}
	if age := time.Since(st.Oldest["fax"]); age < 59*time.Minute || age > 61*time.Minute {
		t.Errorf("oldest fax job is %v old, want an hour", age)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	j := jobAt(time.Now(), 1, "fax")
	s.Accept(bg, "inbox", "src", []*linedriver.Job{j})
	big := string(make([]byte, 2*MaxLog))
	for n := 1; n <= MaxHistory+5; n++ {
		if err := s.finishAttempt(j.ID, linedriver.Retry("busy", "busy", 0), true, &Attempt{N: n, Log: big}); err != nil {
			t.Fatal(err)
		}
	}
	d, err := s.Job(bg, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.History) != MaxHistory || d.History[0].N != 6 || len(d.History[0].Log) > MaxLog+len("…") {
		t.Errorf("history: %d attempts, first #%d, log %d bytes", len(d.History), d.History[0].N, len(d.History[0].Log))
	}
	if err := s.finish(j.ID, linedriver.Done(nil), true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Job(bg, j.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("a delivered job: %v, want ErrNotFound", err)
	}
}

func TestPruneFailed(t *testing.T) {
	s, n := jobsSpool(t)
	for _, tc := range []struct {
		cutoff time.Time
		want   int
	}{
		{time.Now().Add(-time.Hour), 0},
		{time.Now().Add(time.Second), 1},
		{time.Now().Add(time.Second), 0},
	} {
		got, err := s.PruneFailed(bg, tc.cutoff)
		if err != nil || got != tc.want {
			t.Errorf("PruneFailed(%v) = %d, %v; want %d", tc.cutoff, got, err, tc.want)
		}
	}
	if _, err := s.Job(bg, n["failed"]); !errors.Is(err, ErrNotFound) {
		t.Errorf("pruned job: %v, want ErrNotFound", err)
	}
}

// A write that fails makes the spool degraded at once, and the first write
// that succeeds healthy again; each change is reported once.
func TestHealth(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return clock })
	var changes []string
	s.OnHealthChange(func(old, new Health) { changes = append(changes, old.Health+"→"+new.Health) })
	diskFull := errors.New("no space left on device")
	var fault error
	s.faultHook = func() error { return fault }

	steps := []struct {
		name string
		do   func() error
		want Health
	}{
		{"a good write", func() error { _, err := s.Accept(bg, "in", "a", []*linedriver.Job{job("a", "fax")}); return err },
			Health{Health: Healthy}},
		{"a failed write", func() error {
			fault = diskFull
			_, err := s.Accept(bg, "in", "b", []*linedriver.Job{job("b", "fax")})
			return err
		}, Health{Health: Degraded, WriteErrors: 1, LastError: diskFull.Error()}},
		{"a deferral", func() error { s.Deferred(diskFull); return diskFull }, Health{Health: Degraded, WriteErrors: 1, Deferrals: 1, LastError: diskFull.Error()}},
		{"reads do not heal", func() error { _, err := s.Seen(bg, "in", "a"); return err }, Health{Health: Degraded, WriteErrors: 1, Deferrals: 1, LastError: diskFull.Error()}},
		{"a job not found is no disk trouble", func() error {
			fault = nil
			s.faultHook = nil
			return s.Retry(bg, "nope")
		}, Health{Health: Degraded, WriteErrors: 1, Deferrals: 1, LastError: diskFull.Error()}},
		{"space again", func() error { _, err := s.Accept(bg, "in", "b", []*linedriver.Job{job("b", "fax")}); return err },
			Health{Health: Healthy, WriteErrors: 1, Deferrals: 1, LastError: diskFull.Error()}},
	}
	for i, st := range steps {
		clock = clock.Add(time.Minute)
		_ = st.do()
		got := s.Health()
		if got.Health != st.want.Health || got.WriteErrors != st.want.WriteErrors || got.Deferrals != st.want.Deferrals || got.LastError != st.want.LastError {
			t.Errorf("step %d, %s: health %+v, want %+v", i, st.name, got, st.want)
		}
	}
	if fmt.Sprint(changes) != "[healthy→degraded degraded→healthy]" {
		t.Errorf("changes reported: %v", changes)
	}
	if h := s.Health(); !h.Since.Equal(clock) {
		t.Errorf("healthy since %v, want the time of the good write %v", h.Since, clock)
	}
}
