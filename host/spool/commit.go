package spool

import (
	"fmt"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// Group commit: every write of the spool (accepts from all connectors,
// outcomes and page states from all drivers, the operator's changes) goes to
// one committer goroutine, which runs all the writes waiting at that moment
// in one transaction and one fsync. A write waits at most for the commit in
// progress and its own: a lone write is committed at once, with no timer.
// Each caller returns only once its own write is on disk, with the error of
// its commit.
//
// A write that fails (its function returns an error, a job not found, or
// panics) is taken out of its group: the group is rolled back, the failing
// write is run alone (so its error is its own), and the others are committed
// again together. A write function may therefore run more than once, each
// time in a fresh transaction: it must set every result it reports from what
// it reads in tx, not add to what an earlier run left.

// maxGroup bounds the writes in one transaction.
const maxGroup = 256

type writeReq struct {
	fn   func(*bolt.Tx) error
	done chan error
}

type committer struct {
	reqs chan *writeReq
	quit chan struct{} // closed by Close
	done chan struct{} // closed when the loop ended
	// single, when set (benchmarks), commits each write in its own
	// transaction, as the spool did before group commit.
	single bool
	// groupFault, when set (tests only), fails a whole group's commit as a
	// full disk would, after its writes ran.
	groupFault func() error

	commits atomic.Int64 // transactions committed (each is one fsync of data and one of meta)
	writes  atomic.Int64 // writes committed
}

func (s *Spool) startCommitter() {
	s.c.reqs = make(chan *writeReq)
	s.c.quit = make(chan struct{})
	s.c.done = make(chan struct{})
	go s.commitLoop()
}

func (s *Spool) stopCommitter() {
	select {
	case <-s.c.quit:
	default:
		close(s.c.quit)
	}
	<-s.c.done
}

// write runs fn in a write transaction and returns once it is on disk.
func (s *Spool) write(fn func(*bolt.Tx) error) error {
	if s.c.single {
		empty, err := s.writeLocked(safely(fn))
		if err == nil {
			s.c.commits.Add(1)
			s.c.writes.Add(1)
		}
		s.afterWrite(empty, err)
		return err
	}
	r := &writeReq{fn: fn, done: make(chan error, 1)}
	select {
	case s.c.reqs <- r:
	case <-s.c.quit:
		return ErrClosed
	}
	return <-r.done
}

func (s *Spool) commitLoop() {
	defer close(s.c.done)
	group := make([]*writeReq, 0, maxGroup)
	for {
		select {
		case r := <-s.c.reqs:
			group = append(group[:0], r)
		case <-s.c.quit:
			return
		}
	more:
		for len(group) < maxGroup {
			select {
			case r := <-s.c.reqs:
				group = append(group, r)
			default:
				break more
			}
		}
		s.commitGroup(group)
	}
}

// commitGroup commits group in as few transactions as its failures allow
// and answers every request. Each transaction holds the file's lock for
// reading, as every transaction does (Compact swaps the file under it).
func (s *Spool) commitGroup(group []*writeReq) {
	for len(group) > 0 {
		failed := -1
		var empty bool
		s.mu.RLock()
		err := ErrClosed
		if s.db != nil {
			err = s.db.Update(func(tx *bolt.Tx) error {
				for i, r := range group {
					if err := safely(r.fn)(tx); err != nil {
						failed = i
						return err
					}
				}
				if s.c.groupFault != nil {
					if err := s.c.groupFault(); err != nil {
						return err
					}
				}
				empty = queueEmpty(tx)
				return nil
			})
		}
		s.mu.RUnlock()
		if failed < 0 {
			if err == nil {
				s.c.commits.Add(1)
				s.c.writes.Add(int64(len(group)))
			}
			s.afterWrite(empty, err)
			for _, r := range group {
				r.done <- err
			}
			return
		}
		// Alone, the failing write gets its own answer; the rest go again.
		r := group[failed]
		if len(group) == 1 {
			r.done <- err
			return
		}
		s.commitGroup([]*writeReq{r})
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}

// safely turns a panic in a write function into its error, so one bad write
// does not take the committer (and every other writer) down.
func safely(fn func(*bolt.Tx) error) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("spool: write failed: %v", p)
			}
		}()
		return fn(tx)
	}
}

// CommitStats counts the transactions (each one fsync'd commit) and the
// writes they carried since Open: Writes/Commits is the writes per fsync.
type CommitStats struct {
	Commits int64 `json:"commits"`
	Writes  int64 `json:"writes"`
}

// CommitStats returns the counts of committed transactions and writes.
func (s *Spool) CommitStats() CommitStats {
	return CommitStats{Commits: s.c.commits.Load(), Writes: s.c.writes.Load()}
}
