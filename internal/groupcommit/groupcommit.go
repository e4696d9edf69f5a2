// Package groupcommit runs the writes of many callers in shared
// transactions: one committer goroutine takes all the writes waiting at that
// moment (up to a bound) and runs them in one transaction, so many callers
// share one flush to disk. There is no timer: a lone write is committed at
// once, and a write waits at most for the commit in progress and its own.
//
// A write that fails is taken out of its group: the group is rolled back,
// the failing write is run alone (so its error is its own) and the others are
// run again together. Every caller gets the error of its own write's commit.
// A write may therefore run more than once, each time in a fresh
// transaction.
//
// The package knows no database: the caller's Run function runs one group in
// one transaction (and may batch the writes it can send together).
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// ErrClosed is what Do returns after Close, unless Config.Closed says
// otherwise.
var ErrClosed = errors.New("groupcommit: closed")

// RunFunc runs group in one transaction and commits it. When a write of the
// group fails it rolls the transaction back and returns the write's index and
// error; otherwise it returns -1 and the error of the commit (nil: all of the
// group is committed).
type RunFunc[W any] func(group []W) (failed int, err error)

// Config configures a Committer.
type Config[W any] struct {
	// Run runs one group (required).
	Run RunFunc[W]
	// Max bounds the writes in one group (default 256).
	Max int
	// Closed is returned by Do after Close (default ErrClosed).
	Closed error
}

// Stats counts the transactions committed and the writes they carried:
// Writes/Commits is the writes per commit.
type Stats struct {
	Commits int64
	Writes  int64
}

// Committer is one committer goroutine and the queue of writes to it. It is
// safe for concurrent use.
type Committer[W any] struct {
	cfg       Config[W]
	reqs      chan *request[W]
	quit      chan struct{} // closed by Close
	done      chan struct{} // closed when the loop ended
	closeOnce sync.Once

	commits atomic.Int64
	writes  atomic.Int64
}

type request[W any] struct {
	w    W
	done chan error
}

// Start starts a committer.
func Start[W any](cfg Config[W]) *Committer[W] {
	if cfg.Max <= 0 {
		cfg.Max = 256
	}
	if cfg.Closed == nil {
		cfg.Closed = ErrClosed
	}
	c := &Committer[W]{cfg: cfg, reqs: make(chan *request[W]), quit: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

// Do queues w and returns once it is committed, with its own error. When
// ctx ends first Do returns ctx's error; w may still be committed.
func (c *Committer[W]) Do(ctx context.Context, w W) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request[W]{w: w, done: make(chan error, 1)}
	select {
	case c.reqs <- r:
	case <-c.quit:
		return c.cfg.Closed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Alone runs w in a transaction of its own in the caller's goroutine, past
// the queue: the baseline that group commit is measured against.
func (c *Committer[W]) Alone(w W) error {
	_, err := c.cfg.Run([]W{w})
	if err == nil {
		c.commits.Add(1)
		c.writes.Add(1)
	}
	return err
}

// Close stops the committer once the group in progress is answered; Do
// returns Config.Closed afterwards. Close may be called more than once.
func (c *Committer[W]) Close() {
	c.closeOnce.Do(func() { close(c.quit) })
	<-c.done
}

// Stats returns the counts of commits and writes since Start.
func (c *Committer[W]) Stats() Stats {
	return Stats{Commits: c.commits.Load(), Writes: c.writes.Load()}
}

func (c *Committer[W]) loop() {
	defer close(c.done)
	group := make([]*request[W], 0, c.cfg.Max)
	for {
		select {
		case r := <-c.reqs:
			group = append(group[:0], r)
		case <-c.quit:
			return
		}
	more:
		for len(group) < c.cfg.Max {
			select {
			case r := <-c.reqs:
				group = append(group, r)
			default:
				break more
			}
		}
		c.commit(group)
	}
}

// commit commits group in as few transactions as its failures allow and
// answers every request.
func (c *Committer[W]) commit(group []*request[W]) {
	ws := make([]W, 0, len(group))
	for len(group) > 0 {
		ws = ws[:0]
		for _, r := range group {
			ws = append(ws, r.w)
		}
		failed, err := c.cfg.Run(ws)
		if failed < 0 || failed >= len(group) {
			if err == nil {
				c.commits.Add(1)
				c.writes.Add(int64(len(group)))
			}
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
		c.commit([]*request[W]{r})
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}

// Call runs fn(tx) and turns a panic into an error ("component: write
// failed: …"), so that one bad write does not take the committer, and every
// other writer, down.
func Call[T any](component string, tx T, fn func(T) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: write failed: %v", component, p)
		}
	}()
	return fn(tx)
}
