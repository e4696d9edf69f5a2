package pgspool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/internal/groupcommit"
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

// The queue, the grouping and the retry of a failing write alone are
// internal/groupcommit's; this file runs one group in one PostgreSQL
// transaction, sending runs of statements in one pipelined batch.

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

// writeReq is one write: a function or a statement.
type writeReq struct {
	fn   writeFunc // or
	stmt *stmt
}

type committer = groupcommit.Committer[writeReq]

// CommitStats counts the transactions committed and the writes they
// carried: Writes/Commits is the writes per commit.
func (s *Store) CommitStats() spool.CommitStats {
	st := s.c.Stats()
	return spool.CommitStats{Commits: st.Commits, Writes: st.Writes}
}

func (s *Store) startCommitter() {
	s.c = groupcommit.Start(groupcommit.Config[writeReq]{Run: s.runGroup, Closed: spool.ErrClosed})
}

func (s *Store) stopCommitter() { s.c.Close() }

// write runs fn in a transaction shared with the other writes waiting and
// returns once it is committed. When ctx ends first, write returns its
// error; the write may still be committed (the caller retries, dedupe
// makes that harmless).
func (s *Store) write(ctx context.Context, fn writeFunc) error {
	return s.submit(ctx, writeReq{fn: fn})
}

// writeStmt is write for a write that is one statement.
func (s *Store) writeStmt(ctx context.Context, st *stmt) error {
	return s.submit(ctx, writeReq{stmt: st})
}

func (s *Store) submit(ctx context.Context, r writeReq) error {
	err := s.c.Do(ctx, r)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return err
	}
	return s.observe(err)
}

// runGroup runs group in one transaction.
func (s *Store) runGroup(group []writeReq) (failed int, err error) {
	failed = -1
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for i := 0; i < len(group); {
			if group[i].stmt == nil {
				fn := group[i].fn
				if err := groupcommit.Call("pgspool", tx, func(tx pgx.Tx) error { return fn(ctx, tx) }); err != nil {
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
	if failed < 0 && err != nil {
		err = fmt.Errorf("pgspool: write: %w", err)
	}
	return failed, err
}
