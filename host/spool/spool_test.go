package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/linedriver"
)

func job(id, driver string) *linedriver.Job {
	return &linedriver.Job{ID: id, Driver: driver, Record: linedriver.Record{ID: id, SourceID: "src-" + id, Fields: map[string]string{"k": id}}}
}

func TestSpoolSurvivesReopenAndDedupes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	dup, err := s.Accept(bg, "inbox", "imap:1:7", []*linedriver.Job{job("a.fax", "fax"), job("a.file", "file")})
	if err != nil || dup {
		t.Fatalf("Accept = %v, %v", dup, err)
	}
	if dup, _ := s.Accept(bg, "inbox", "imap:1:7", []*linedriver.Job{job("b.fax", "fax")}); !dup {
		t.Fatal("second Accept of the same source id was not reported as a duplicate")
	}
	if dup, _ := s.Accept(bg, "other", "imap:1:7", []*linedriver.Job{job("c.fax", "fax")}); dup {
		t.Fatal("the same source id from another connector was taken for a duplicate")
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stats(bg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Queued["fax"] != 2 || st.Queued["file"] != 1 || st.Sources != 2 {
		t.Fatalf("after reopen: %+v", st)
	}
	if seen, _ := s.Seen(bg, "inbox", "imap:1:7"); !seen {
		t.Fatal("source id forgotten across reopen")
	}
}

func TestSpoolOutcomes(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Accept(bg, "c", "s1", []*linedriver.Job{job("j1", "fax"), job("j2", "fax"), job("j3", "fax")}); err != nil {
		t.Fatal(err)
	}
	// Earliest due first, skipping leased ones.
	for _, want := range []string{"j1", "j2"} {
		e, _, err := s.Lease(bg, "fax", "w", time.Minute)
		if err != nil || e == nil || e.Job.ID != want {
			t.Fatalf("Lease = %+v, %v; want %s", e, err, want)
		}
	}

	state := json.RawMessage(`{"pages_confirmed":2}`)
	if err := s.finish("j1", linedriver.Outcome{Result: linedriver.Temporary, Category: "busy", Reason: "BUSY", RetryAfter: time.Hour, State: state}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.finish("j2", linedriver.Done(nil), true); err != nil {
		t.Fatal(err)
	}
	if err := s.finish("j3", linedriver.Fail("bad_number", "number not allowed"), true); err != nil {
		t.Fatal(err)
	}
	e, err := s.next("fax", nil)
	if err != nil || e == nil || e.Job.ID != "j1" {
		t.Fatalf("Next = %+v, %v; want the rescheduled j1", e, err)
	}
	if e.Job.Attempt != 1 || string(e.Job.State) != string(state) || e.Category != "busy" || time.Until(e.Due) < 59*time.Minute {
		t.Fatalf("rescheduled job = attempt %d state %s category %q due in %s", e.Job.Attempt, e.Job.State, e.Category, time.Until(e.Due))
	}
	failed, err := s.Failed()
	if err != nil || len(failed) != 1 || failed[0].Job.ID != "j3" || failed[0].LastError != "number not allowed" {
		t.Fatalf("Failed = %+v, %v", failed, err)
	}
	if err := s.finish("j2", linedriver.Done(nil), true); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("completing a delivered job again: %v, want ErrLeaseLost", err)
	}
	// An interrupted attempt does not count.
	if err := s.finish("j1", linedriver.Outcome{Result: linedriver.Temporary, Category: "interrupted"}, false); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.next("fax", nil); e.Job.Attempt != 1 {
		t.Fatalf("interrupted attempt was counted: attempt %d", e.Job.Attempt)
	}
}

func TestSpoolForget(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Accept(bg, "c", "done", []*linedriver.Job{job("d", "x")})
	s.Accept(bg, "c", "pending", []*linedriver.Job{job("p", "x")})
	s.finish("d", linedriver.Done(nil), true)
	n, err := s.Forget(bg, time.Now().Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("Forget = %d, %v; want 1 (the source whose job is done)", n, err)
	}
	if seen, _ := s.Seen(bg, "c", "pending"); !seen {
		t.Fatal("a source id with a pending job was forgotten")
	}
}

func TestSpoolLockedByAnotherGateway(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("a second gateway opened the same spool")
	}
}

// BenchmarkStats: Stats counts queued jobs from the schedule's keys; the
// reference decodes every job, documents included, as it once did.
func BenchmarkStats(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "spool.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	page := make([]byte, 64<<10)
	for i := range 200 {
		j := job(fmt.Sprintf("r%03d.fax", i), "fax")
		j.Record.Documents = []linedriver.Document{{Name: "page.tif", MediaType: "image/tiff", Data: page}}
		if _, err := s.Accept(bg, "inbox", fmt.Sprint(i), []*linedriver.Job{j}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("stats", func(b *testing.B) {
		for b.Loop() {
			st, err := s.Stats(bg)
			if err != nil || st.Queued["fax"] != 200 {
				b.Fatalf("Stats = %+v, %v", st, err)
			}
		}
	})
	b.Run("reference_decode_jobs", func(b *testing.B) {
		for b.Loop() {
			queued := map[string]int{}
			err := s.db.View(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketJobs).ForEach(func(_, v []byte) error {
					var e Entry
					if err := json.Unmarshal(v, &e); err != nil {
						return err
					}
					queued[e.Job.Driver]++
					return nil
				})
			})
			if err != nil || queued["fax"] != 200 {
				b.Fatalf("decode: %v, %v", queued, err)
			}
		}
	})
}
