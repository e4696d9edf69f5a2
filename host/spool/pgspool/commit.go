package pgspool

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mediagw/mediagw/host/spool"
)

// Group commit: accepts, outcomes and page states of every connector and
// driver of this gateway go to one committer goroutine, which runs all the
// writes waiting at that moment in one transaction: one WAL flush for many
// callers, no timer (a lone write is committed at once). Each caller
// returns once its own write is committed, with its own error: a write that
// fails rolls its group back, is run again alone (its error is its own),
// and the others are committed again together. A write function may
// therefore run more than once, each time in a fresh transaction: it sets
// every result it reports from what it reads in tx.

// maxGroup bounds the writes in one transaction.
const maxGroup = 256

// writeTimeout bounds one group's transaction.
const writeTimeout = 30 * time.Second

type writeFunc func(ctx context.Context, tx pgx.Tx) error

// stmt is a write that is one statement: the statements of a group are
// sent together (one round trip for all of them); scan reads the
// statement's row and returns the write's own error (e.g. ErrLeaseLost).
type stmt struct {
	sql  string
	args []any
	scan func(pgx.Row) error
}

// run runs st alone in tx (for a write that needs more than the
// statement, e.g. a check before it).
func (st *stmt) run(ctx context.Context, tx pgx.Tx) error {
	return st.scan(tx.QueryRow(ctx, st.sql, st.args...))
}

type writeReq struct {
	fn   writeFunc // or
	stmt *stmt
	done chan error
}

type committer struct {
	reqs chan *writeReq
	quit chan struct{}
	done chan struct{}

	commits atomic.Int64
	writes  atomic.Int64
}

// CommitStats counts the transactions committed and the writes they
// carried: Writes/Commits is the writes per commit.
func (s *Store) CommitStats() spool.CommitStats {
	return spool.CommitStats{Commits: s.c.commits.Load(), Writes: s.c.writes.Load()}
}

func (s *Store) startCommitter() {
	s.c.reqs = make(chan *writeReq)
	s.c.quit = make(chan struct{})
	s.c.done = make(chan struct{})
	go s.commitLoop()
}

func (s *Store) stopCommitter() {
	close(s.c.quit)
	<-s.c.done
}

// write runs fn in a transaction shared with the other writes waiting and
// returns once it is committed. When ctx ends first, write returns its
// error; the write may still be committed (the caller retries, dedupe
// makes that harmless).
func (s *Store) write(ctx context.Context, fn writeFunc) error {
	return s.submit(ctx, &writeReq{fn: fn, done: make(chan error, 1)})
}

// writeStmt is write for a write that is one statement.
func (s *Store) writeStmt(ctx context.Context, st *stmt) error {
	return s.submit(ctx, &writeReq{stmt: st, done: make(chan error, 1)})
}

func (s *Store) submit(ctx context.Context, r *writeReq) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.c.reqs <- r:
	case <-s.c.quit:
		return spool.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return s.observe(err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) commitLoop() {
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

func (s *Store) commitGroup(group []*writeReq) {
	for len(group) > 0 {
		failed := -1
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			for i := 0; i < len(group); {
				if group[i].stmt == nil {
					if err := safely(ctx, tx, group[i].fn); err != nil {
						failed = i
						return err
					}
					i++
					continue
				}
				// A run of statements goes in one batch.
				j := i
				b := &pgx.Batch{}
				for ; j < len(group) && group[j].stmt != nil; j++ {
					b.Queue(group[j].stmt.sql, group[j].stmt.args...)
				}
				br := tx.SendBatch(ctx, b)
				for k := i; k < j; k++ {
					if err := group[k].stmt.scan(br.QueryRow()); err != nil {
						br.Close()
						failed = k
						return err
					}
				}
				if err := br.Close(); err != nil {
					failed = j - 1
					return err
				}
				i = j
			}
			return nil
		})
		cancel()
		if failed < 0 {
			if err == nil {
				s.c.commits.Add(1)
				s.c.writes.Add(int64(len(group)))
			} else {
				err = fmt.Errorf("pgspool: write: %w", err)
			}
			for _, r := range group {
				r.done <- err
			}
			return
		}
		r := group[failed]
		if len(group) == 1 {
			r.done <- err
			return
		}
		s.commitGroup([]*writeReq{r})
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}

func safely(ctx context.Context, tx pgx.Tx, fn writeFunc) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("pgspool: write failed: %v", p)
		}
	}()
	return fn(ctx, tx)
}
