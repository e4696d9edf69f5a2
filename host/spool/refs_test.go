package spool

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/linedriver"
)

// TestSharedDocumentCounts: the document two jobs of one record share is
// kept while any row holds it (queued, failed, or a follow-up that carries
// it) and freed with the last, whatever way each job leaves: delivered,
// failed and pruned, retried, purged.
func TestSharedDocumentCounts(t *testing.T) {
	type step func(t *testing.T, s *Spool, a, b *linedriver.Job)
	done := func(which int) step {
		return func(t *testing.T, s *Spool, a, b *linedriver.Job) {
			j := []*linedriver.Job{a, b}[which]
			if err := s.finish(j.ID, linedriver.Done(nil), true); err != nil {
				t.Fatal(err)
			}
		}
	}
	fail := func(which int) step {
		return func(t *testing.T, s *Spool, a, b *linedriver.Job) {
			j := []*linedriver.Job{a, b}[which]
			if err := s.finish(j.ID, linedriver.Fail("x", "y"), true); err != nil {
				t.Fatal(err)
			}
		}
	}
	retry := func(which int) step {
		return func(t *testing.T, s *Spool, a, b *linedriver.Job) {
			j := []*linedriver.Job{a, b}[which]
			if err := s.Retry(bg, j.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	purge := func(which int) step {
		return func(t *testing.T, s *Spool, a, b *linedriver.Job) {
			j := []*linedriver.Job{a, b}[which]
			if err := s.Purge(bg, j.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	prune := func(t *testing.T, s *Spool, a, b *linedriver.Job) {
		if _, err := s.PruneFailed(bg, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	temp := func(which int) step {
		return func(t *testing.T, s *Spool, a, b *linedriver.Job) {
			j := []*linedriver.Job{a, b}[which]
			if err := s.finish(j.ID, linedriver.Retry("x", "y", 0), true); err != nil {
				t.Fatal(err)
			}
		}
	}
	doneFollow := func(which int) step {
		return func(t *testing.T, s *Spool, a, b *linedriver.Job) {
			j := []*linedriver.Job{a, b}[which]
			f := *j
			f.ID, f.Driver = j.ID+".report", "report:inbox"
			if _, err := s.finishWith(j.ID, linedriver.Done(nil), true, nil, []FollowUp{{Namespace: "report:inbox", Key: j.ID, Job: &f}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		steps []step
		left  int // rows left holding the document
	}{
		{"a done, b done", []step{done(0), done(1)}, 0},
		{"a done", []step{done(0)}, 1},
		{"a fail, prune", []step{fail(0), prune}, 1},
		{"a fail, prune, b purge", []step{fail(0), prune, purge(1)}, 0},
		{"a fail retry done, b fail purge", []step{fail(0), retry(0), done(0), fail(1), purge(1)}, 0},
		{"a temp temp done, b done", []step{temp(0), temp(0), done(0), done(1)}, 0},
		{"a done+follow, b done", []step{doneFollow(0), done(1)}, 1},
		{"a done+follow, b done+follow", []step{doneFollow(0), doneFollow(1)}, 2},
		{"b purge, a done+follow", []step{purge(1), doneFollow(0)}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "spool.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			a, b := testdataJob(tdID("b2", "fax"), "fax", "<m2>", time.Now()), testdataJob(tdID("b2", "file"), "file", "<m2>", time.Now())
			if _, err := s.Accept(bg, "inbox", "<m2>", []*linedriver.Job{a, b}); err != nil {
				t.Fatal(err)
			}
			for _, st := range tc.steps {
				st(t, s, a, b)
			}
			var docs int
			var n uint32
			_ = s.view(func(tx *bolt.Tx) error {
				docs = tx.Bucket(bucketDocs).Stats().KeyN
				if v := tx.Bucket(bucketRefs).Get(docKey(testdataDoc)); len(v) == 4 {
					n = binary.BigEndian.Uint32(v)
				}
				return nil
			})
			want := 0
			if tc.left > 0 {
				want = 1
			}
			if docs != want || int(n) != tc.left {
				t.Errorf("%d documents kept, the shared one counted %d times; want %d and %d", docs, n, want, tc.left)
			}
		})
	}
}
