package spool

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/linedriver"
)

// corruptFile overwrites entries of a closed spool file with bytes that are
// not a job, as a torn write or a bad disk block would leave them.
func corruptFile(t *testing.T, path string, bucket []byte, keys ...string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, k := range keys {
			if tx.Bucket(bucket).Get([]byte(k)) == nil {
				t.Fatalf("no %s in %s", k, bucket)
			}
			if err := tx.Bucket(bucket).Put([]byte(k), []byte("{\"job\":{\"id\":\x00\xff")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A queued job that cannot be decoded does not block its driver's queue:
// Next moves it to the quarantine with the error and hands out the next
// job; the status counts it, the hook reports it once, the listing works,
// and it is still there, bytes and all, after a restart.
func TestCorruptJobQuarantined(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.Accept(bg, "in", id, []*linedriver.Job{job(id, "fax")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Accept(bg, "in", "f", []*linedriver.Job{job("f", "file")}); err != nil {
		t.Fatal(err)
	}
	if err := s.finish("f", linedriver.Outcome{Result: linedriver.Permanent, Reason: "no"}, true); err != nil {
		t.Fatal(err)
	}
	s.Close()
	corruptFile(t, path, bucketJobs, "a", "b")
	corruptFile(t, path, bucketFailed, "f")

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var reported []string
	s.OnQuarantine(func(q Quarantined) { reported = append(reported, q.Bucket+"/"+q.Key) })
	e, _, err := s.Lease(bg, "fax", "w", time.Minute)
	if err != nil {
		t.Fatalf("Lease with corrupt jobs ahead: %v", err)
	}
	if e == nil || e.Job.ID != "c" {
		t.Fatalf("Next = %+v, want job c", e)
	}
	if got := strings.Join(reported, " "); got != "jobs/a jobs/b" {
		t.Errorf("reported %q, want jobs/a jobs/b", got)
	}
	if h := s.Health(); h.Quarantined != 2 || h.Health != Healthy {
		t.Errorf("health %+v, want healthy with 2 quarantined", h)
	}
	list, err := s.Jobs(bg, Query{})
	if err != nil {
		t.Fatalf("Jobs with a corrupt failed job: %v", err)
	}
	if len(list) != 1 || list[0].ID != "c" {
		t.Errorf("Jobs = %+v, want only c", list)
	}
	if h := s.Health(); h.Quarantined != 3 {
		t.Errorf("%d quarantined after listing, want 3 (the failed job too)", h.Quarantined)
	}
	if seen, _ := s.Seen(bg, "in", "a"); !seen {
		t.Error("the source id of a quarantined job was forgotten: the mail would be taken again")
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if h := s.Health(); h.Quarantined != 3 {
		t.Errorf("after restart: %d quarantined, want 3", h.Quarantined)
	}
	q, err := s.Quarantine(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 3 {
		t.Fatalf("Quarantine = %d entries, want 3", len(q))
	}
	for _, qe := range q {
		if !bytes.HasPrefix(qe.Data, []byte("{\"job\":{\"id\":\x00")) || !strings.Contains(qe.Error, ErrCorrupt.Error()) || qe.At.IsZero() {
			t.Errorf("quarantined %s/%s: error %q, %d bytes kept", qe.Bucket, qe.Key, qe.Error, len(qe.Data))
		}
	}
	if e, _, err := s.Lease(bg, "fax", "w", time.Minute); err != nil || e == nil || e.Job.ID != "c" {
		t.Errorf("Lease after restart = %+v, %v; want c", e, err)
	}
	if _, err := s.Job(bg, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Job(a) = %v, want ErrNotFound: it is in the quarantine", err)
	}
}
