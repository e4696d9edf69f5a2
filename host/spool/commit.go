package spool

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/internal/groupcommit"
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

// The queue, the grouping and the retry of a failing write alone are
// internal/groupcommit's; this file runs one group in one bbolt transaction.

type committer struct {
	*groupcommit.Committer[func(*bolt.Tx) error]
	// single, when set (benchmarks), commits each write in its own
	// transaction, as the spool did before group commit.
	single bool
	// groupFault, when set (tests only), fails a whole group's commit as a
	// full disk would, after its writes ran.
	groupFault func() error
}

func (s *Spool) startCommitter() {
	s.c.Committer = groupcommit.Start(groupcommit.Config[func(*bolt.Tx) error]{Run: s.runGroup, Closed: ErrClosed})
}

func (s *Spool) stopCommitter() { s.c.Close() }

// write runs fn in a write transaction and returns once it is on disk.
func (s *Spool) write(fn func(*bolt.Tx) error) error {
	if s.c.single {
		return s.c.Alone(fn)
	}
	return s.c.Do(context.Background(), fn)
}

// runGroup runs group in one transaction. The transaction holds the file's
// lock for reading, as every transaction does (Compact swaps the file under
// it).
func (s *Spool) runGroup(group []func(*bolt.Tx) error) (failed int, err error) {
	failed = -1
	var empty bool
	s.mu.RLock()
	err = ErrClosed
	if s.db != nil {
		err = s.db.Update(func(tx *bolt.Tx) error {
			for i, fn := range group {
				if err := groupcommit.Call("spool", tx, fn); err != nil {
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
		s.afterWrite(empty, err)
	}
	return failed, err
}

// CommitStats counts the transactions (each one fsync'd commit) and the
// writes they carried since Open: Writes/Commits is the writes per fsync.
type CommitStats struct {
	Commits int64 `json:"commits"`
	Writes  int64 `json:"writes"`
}

// CommitStats returns the counts of committed transactions and writes.
func (s *Spool) CommitStats() CommitStats {
	st := s.c.Stats()
	return CommitStats{Commits: st.Commits, Writes: st.Writes}
}
