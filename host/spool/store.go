package spool

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/mediagw/mediagw/linedriver"
)

// Store is the contract every spool backend keeps: the bbolt file of one
// gateway (this package, Open) and a database shared by several gateways
// (pgspool). The pipeline, the dispatchers, the host and the operator's
// tools see only this; spooltest.Run checks a backend against it.
//
// What every backend guarantees:
//   - Durable before return: when Accept, Add, Complete or SaveState returns
//     nil, the write survives a crash of the process (and, for a shared
//     backend, of the machine). A mail is acked at its source only after.
//   - Once per source id: of two Accepts of the same (connector, source id),
//     by one gateway or two at once, exactly one stores jobs; the other
//     reports dup. The same holds for a FollowUp's (Namespace, Key).
//   - Stored once: a record's documents are kept once, apart from the small
//     job rows; Lease reads them, listings do not.
//   - One holder: a leased job is handed to no other Lease until its holder
//     records an outcome, or the lease expires (a dead holder's jobs come
//     back). Complete, SaveState and Renew by anyone but the job's holder
//     fail with ErrLeaseLost and change nothing; a holder whose lease ran
//     out keeps the job until another Lease takes it (so a slow attempt
//     nobody else wanted still records its outcome). The lease ends with
//     Complete: a second Complete fails with ErrLeaseLost.
//   - Remembered: a source id or follow-up key stays while any of its jobs
//     is queued or failed; Forget drops it only after.
//   - Corruption contained: an entry that cannot be decoded is moved to the
//     quarantine (Quarantine, OnQuarantine) and the queue goes on.
type Store interface {
	// Seen reports whether a message with this source id was accepted.
	Seen(ctx context.Context, connector, sourceID string) (bool, error)
	// Accept stores the jobs made from one message and its source id in one
	// transaction, all due at once; dup: the source id was there before,
	// nothing was stored.
	Accept(ctx context.Context, connector, sourceID string, jobs []*linedriver.Job) (dup bool, err error)
	// Add stores follow-up jobs on their own (see FollowUp); it returns how
	// many were new.
	Add(ctx context.Context, follow []FollowUp) (added int, err error)
	// Deferred tells the health tracker that a mail could not be taken
	// (the spool refused a write the caller will retry).
	Deferred(err error)

	// Lease hands holder the earliest job of driver that is due now and not
	// held, for ttl. When none is due it returns nil and when the next
	// unheld job of driver is due (zero: none queued).
	Lease(ctx context.Context, driver, holder string, ttl time.Duration) (e *Entry, next time.Time, err error)
	// Renew extends holder's lease of job id by ttl from now (a long call).
	Renew(ctx context.Context, id, holder string, ttl time.Duration) error
	// Complete records the outcome of holder's attempt at job id (see
	// Outcome and Attempt) and adds the follow-ups in the same transaction;
	// the lease ends. It returns how many follow-ups were new.
	Complete(ctx context.Context, id, holder string, o linedriver.Outcome, countAttempt bool, a *Attempt, follow []FollowUp) (added int, err error)
	// SaveState keeps the driver's state of job id in the middle of
	// holder's attempt (pages confirmed), written alone, not with the job.
	SaveState(ctx context.Context, id, holder string, state json.RawMessage) error
	// Wake registers f, called (without blocking) when jobs of driver may
	// have become due: accepted, added, retried — here or, for a shared
	// backend, by another gateway. Idle workers wait on it.
	Wake(f func(driver string))

	// The operator's API (console, mediagw jobs, status).

	// Stats counts jobs per driver, failed jobs and remembered source ids.
	Stats(ctx context.Context) (Stats, error)
	// Jobs lists the jobs q selects (a leased job is active).
	Jobs(ctx context.Context, q Query) ([]JobInfo, error)
	// Job is one job with its attempts; ErrNotFound.
	Job(ctx context.Context, id string) (*JobDetail, error)
	// Entry is one queued or failed job with its documents; ErrNotFound.
	Entry(ctx context.Context, id string) (*Entry, error)
	// Retry queues a failed job again, attempts from zero; ErrNotFailed.
	Retry(ctx context.Context, id string) error
	// Purge deletes a failed or queued job; ErrActive while it is leased.
	Purge(ctx context.Context, id string) error
	// PruneFailed deletes failed jobs that failed before cutoff.
	PruneFailed(ctx context.Context, cutoff time.Time) (int, error)
	// Forget drops source ids accepted before cutoff whose jobs are gone.
	Forget(ctx context.Context, cutoff time.Time) (int, error)
	// Quarantine lists the entries taken out because they were corrupt.
	Quarantine(ctx context.Context) ([]Quarantined, error)

	// Health is the store's state for the status page; OnHealthChange and
	// OnQuarantine register hooks that must not block (nor call the store);
	// health changes reach their hook one at a time, in order.
	Health() Health
	OnHealthChange(f func(old, new Health))
	OnQuarantine(f func(Quarantined))

	// Close ends the store; calls after Close return ErrClosed.
	Close() error
}

// ErrLeaseLost is returned by Complete, SaveState and Renew when the caller
// does not hold the job's lease (it expired and another holder took it, the
// job was purged, or the lease ended with an earlier Complete).
var ErrLeaseLost = errors.New("spool: lease lost")

// Maintainer is what a backend that keeps its own file offers besides Store
// (bbolt): its size, compaction when the queue drains.
type Maintainer interface {
	Size() (Size, error)
	Compact(ctx context.Context) (Compaction, error)
	LastCompaction() *Compaction
	OnDrained(f func())
}
