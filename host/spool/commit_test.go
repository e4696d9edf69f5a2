package spool

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/linedriver"
)

// holdCommitter makes the committer busy with a write that waits for
// release, so that the writes started meanwhile queue up as one group.
func holdCommitter(t *testing.T, s *Spool) (release func() error) {
	t.Helper()
	gate := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.update(func(*bolt.Tx) error { <-gate; return nil }) }()
	synctest.Wait()
	return func() error {
		close(gate)
		return <-done
	}
}

// Writes that arrive while a commit is running are committed together in
// the next one, each caller gets its own answer (an accept, a duplicate, a
// job not found), and what was answered nil is on disk after a reopen.
func TestGroupCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "spool.db")
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Accept(bg, "in", "old", []*linedriver.Job{job("old", "fax")}); err != nil {
			t.Fatal(err)
		}
		release := holdCommitter(t, s)

		const n = 64
		type answer struct {
			dup bool
			err error
		}
		answers := make([]answer, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				switch {
				case i == 10: // a job that is not there fails alone
					answers[i].err = s.Retry(bg, "nope")
				case i == 20: // accepted before: a duplicate
					answers[i].dup, answers[i].err = s.Accept(bg, "in", "old", []*linedriver.Job{job("again", "fax")})
				default:
					id := fmt.Sprint("m", i)
					answers[i].dup, answers[i].err = s.Accept(bg, "in", id, []*linedriver.Job{job(id, "fax")})
				}
			})
		}
		synctest.Wait() // every writer waits for the committer
		before := s.CommitStats()
		if err := release(); err != nil {
			t.Errorf("holding write: %v", err)
		}
		wg.Wait()
		after := s.CommitStats()

		for i, a := range answers {
			switch i {
			case 10:
				if !errors.Is(a.err, ErrNotFound) {
					t.Errorf("retry of an unknown job: %v, want ErrNotFound", a.err)
				}
			case 20:
				if a.err != nil || !a.dup {
					t.Errorf("accept of a known source id: dup=%v err=%v, want a duplicate", a.dup, a.err)
				}
			default:
				if a.err != nil || a.dup {
					t.Errorf("accept %d: dup=%v err=%v", i, a.dup, a.err)
				}
			}
		}
		// The held write, then the 63 that succeed in one transaction; the
		// failing one was tried alone and committed nothing.
		if got := after.Commits - before.Commits; got != 2 {
			t.Errorf("%d commits for %d writes, want 2 (the held one and one group)", got, n)
		}
		if got := after.Writes - before.Writes; got != n {
			t.Errorf("%d writes committed, want %d", got, n)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Accept(bg, "in", "late", nil); !errors.Is(err, ErrClosed) {
			t.Errorf("accept after Close: %v, want ErrClosed", err)
		}

		s, err = Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		st, err := s.Stats(bg)
		if err != nil {
			t.Fatal(err)
		}
		if st.Queued["fax"] != n-1 || st.Sources != n-1 {
			t.Errorf("after reopening: %d jobs, %d source ids; want %d of each", st.Queued["fax"], st.Sources, n-1)
		}
	})
}

// A group whose commit fails (a full disk) fails every write in it: no
// caller hears nil, so no source is acked, and nothing of the group is in
// the file. With space again, the same writes succeed.
func TestGroupCommitFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "spool.db")
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		diskFull := errors.New("write spool.db: no space left on device")
		var full bool
		s.c.groupFault = func() error {
			if full {
				return diskFull
			}
			return nil
		}
		release := holdCommitter(t, s)
		full = true

		const n = 16
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				id := fmt.Sprint("m", i)
				_, errs[i] = s.Accept(bg, "in", id, []*linedriver.Job{job(id, "fax")})
			})
		}
		synctest.Wait()
		_ = release() // fails with the group after it: the fault is set
		wg.Wait()
		for i, err := range errs {
			if !errors.Is(err, diskFull) {
				t.Errorf("accept %d: %v, want the disk's error", i, err)
			}
		}
		if h := s.Health(); h.Health != Degraded {
			t.Errorf("health %+v, want degraded", h)
		}
		for i := range n {
			if seen, _ := s.Seen(bg, "in", fmt.Sprint("m", i)); seen {
				t.Errorf("m%d is remembered though its commit failed", i)
			}
		}

		full = false
		for i := range n {
			id := fmt.Sprint("m", i)
			if dup, err := s.Accept(bg, "in", id, []*linedriver.Job{job(id, "fax")}); err != nil || dup {
				t.Errorf("accept %d with space again: dup=%v err=%v", i, dup, err)
			}
		}
		if h := s.Health(); h.Health != Healthy {
			t.Errorf("health %+v, want healthy again", h)
		}
		s.Close()
	})
}

// A write function that panics fails alone; the committer goes on.
func TestGroupCommitPanic(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.update(func(*bolt.Tx) error { panic("boom") }); err == nil {
		t.Fatal("a panicking write succeeded")
	}
	if _, err := s.Accept(bg, "in", "a", []*linedriver.Job{job("a", "fax")}); err != nil {
		t.Fatalf("accept after a panicking write: %v", err)
	}
}
