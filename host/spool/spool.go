// Package spool is the gateway's durable store: every job a line driver
// accepted stays here, fsync'd, until the driver delivers it or gives up, and
// every accepted source id is remembered so a redelivered message is not
// sent twice. It is one bbolt file.
package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/mediagw/mediagw/linedriver"
)

var (
	bucketJobs    = []byte("jobs")    // job id → jobRow (rows.go)
	bucketDue     = []byte("due")     // driver \x00 due(8 bytes) \x00 job id → nil
	bucketSources = []byte("sources") // connector \x00 source id → sourceEntry
	bucketFailed  = []byte("failed")  // job id → jobRow, kept for the operator
	bucketHistory = []byte("history") // job id → []Attempt, the last attempts of a job
	bucketRetry   = []byte("retry")   // job id → nil: a queued job whose last attempt failed
)

// ErrNotFound is returned for an unknown job id.
var ErrNotFound = errors.New("spool: job not found")

// Entry is a job with its schedule.
type Entry struct {
	Job       linedriver.Job `json:"job"`
	Due       time.Time      `json:"due"`
	LastError string         `json:"last_error,omitempty"`
	Category  string         `json:"category,omitempty"`
	Finished  time.Time      `json:"finished,omitempty"`
}

type sourceEntry struct {
	Jobs     []string  `json:"jobs"`
	Accepted time.Time `json:"accepted"`
}

// ErrLocked is returned by Open when another process (a running gateway)
// holds the spool file.
var ErrLocked = errors.New("spool: the file is locked by another running gateway")

// Spool is safe for concurrent use.
type Spool struct {
	path string
	// mu guards db: every transaction holds it for reading (see view and
	// write, the only ways to the file); Compact and Close hold it for
	// writing while they swap or close the file.
	mu     sync.RWMutex
	db     *bolt.DB
	health *HealthTracker
	// faultHook, when set (tests only), fails writes before they reach the file.
	faultHook func() error
	// compactHook, when set (tests only), is called at each step of Compact.
	compactHook func(step string)
	// drained is true while no job is queued; onDrained is called when a
	// write empties the queue.
	drained        atomic.Bool
	onDrained      atomic.Pointer[func()]
	lastCompaction atomic.Pointer[Compaction]
	// c commits the writes in groups (commit.go).
	c committer
	// leases are the jobs held by an attempt (lease.go): in memory, as
	// one process owns the file and its leases end with it.
	leaseMu sync.Mutex
	leases  map[string]*lease
	wakeMu  sync.Mutex
	wakes   []func(driver string)
	// upgrade is what Open did to a file of an older format (nil: none).
	upgrade *Upgrade
}

// Upgraded tells what Open did to a spool file of an older format (nil:
// the file was new or of this release's format).
func (s *Spool) Upgraded() *Upgrade { return s.upgrade }

var (
	_ Store      = (*Spool)(nil)
	_ Maintainer = (*Spool)(nil)
)

// openLockTimeout is how long Open waits for another process's lock.
var openLockTimeout = 2 * time.Second

// Open opens (or creates) the spool file. A leftover copy of a compaction
// that was cut off is removed. ErrLocked: a running gateway holds it.
func Open(path string) (*Spool, error) {
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openLockTimeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("spool: open %s: %w", path, err)
	}
	// A compaction cut off before its rename leaves its copy behind: the
	// live file is whole, the copy is dropped. Only the holder of the
	// file's lock may do this (a running compaction owns its copy).
	if err := os.Remove(compactPath(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		db.Close()
		return nil, fmt.Errorf("spool: remove the copy of an unfinished compaction: %w", err)
	}
	var up *Upgrade
	err = db.Update(func(tx *bolt.Tx) error {
		var err error
		up, err = prepare(tx)
		return err
	})
	if err != nil {
		db.Close()
		if errors.Is(err, ErrFormat) {
			return nil, fmt.Errorf("%w (%s)", err, path)
		}
		return nil, fmt.Errorf("spool: open %s: %w", path, err)
	}
	if created {
		// bbolt syncs the file, not the folder that names it: a new spool
		// and the jobs acked into it must not vanish in a power cut.
		if err := syncDir(filepath.Dir(path)); err != nil {
			db.Close()
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	s := &Spool{path: path, db: db, leases: map[string]*lease{}, upgrade: up}
	var quarantined int
	_ = db.View(func(tx *bolt.Tx) error {
		s.drained.Store(queueEmpty(tx))
		quarantined = tx.Bucket(bucketQuarantine).Stats().KeyN
		return nil
	})
	s.health = NewHealthTracker(time.Now, quarantined)
	s.startCommitter()
	return s, nil
}

// ErrClosed is returned by every call after Close.
var ErrClosed = errors.New("spool: closed")

// view runs a read-only transaction; write runs a read-write one (through
// update, which feeds the health tracker). They are the only ways to the
// file: Compact swaps the file under them.
func (s *Spool) view(fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.db.View(fn)
}

// afterWrite calls the drained hook when a committed write left the queue
// empty. (write, the way in for every write, is in commit.go.)
func (s *Spool) afterWrite(empty bool, err error) {
	if err == nil && empty != s.drained.Swap(empty) && empty {
		if f := s.onDrained.Load(); f != nil {
			(*f)()
		}
	}
}

func queueEmpty(tx *bolt.Tx) bool {
	k, _ := tx.Bucket(bucketDue).Cursor().First()
	return k == nil
}

// OnDrained sets a function called when a write leaves no job queued (the
// moment to think of compacting). It must not block.
func (s *Spool) OnDrained(f func()) { s.onDrained.Store(&f) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// Close closes the file. Calls after Close return ErrClosed.
func (s *Spool) Close() error {
	s.stopCommitter()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

func sourceKey(connector, sourceID string) []byte {
	return []byte(connector + "\x00" + sourceID)
}

func dueKey(driver string, due time.Time, id string) []byte {
	k := make([]byte, 0, len(driver)+len(id)+10)
	k = append(k, driver...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(due.UnixNano()))
	k = append(k, 0)
	return append(k, id...)
}

// Seen reports whether a message with this source id was accepted before.
func (s *Spool) Seen(ctx context.Context, connector, sourceID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("spool: seen %s: %w", sourceID, err)
	}
	var seen bool
	err := s.view(func(tx *bolt.Tx) error {
		seen = tx.Bucket(bucketSources).Get(sourceKey(connector, sourceID)) != nil
		return nil
	})
	return seen, err
}

// Accept stores the jobs made from one message, and its source id, in one
// transaction. If the source id was accepted before, it stores nothing and
// reports dup. When Accept returns nil the jobs survive a crash.
func (s *Spool) Accept(ctx context.Context, connector, sourceID string, jobs []*linedriver.Job) (dup bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("spool: accept %s: %w", sourceID, err)
	}
	now := time.Now()
	err = s.update(func(tx *bolt.Tx) error {
		dup = false // a write may run again (see commit.go)
		src := tx.Bucket(bucketSources)
		key := sourceKey(connector, sourceID)
		if src.Get(key) != nil {
			dup = true
			return nil
		}
		se := sourceEntry{Accepted: now}
		for _, j := range jobs {
			if err := insertJob(tx, bucketJobs, &Entry{Job: *j, Due: now}); err != nil {
				return err
			}
			se.Jobs = append(se.Jobs, j.ID)
		}
		b, err := json.Marshal(se)
		if err != nil {
			return err
		}
		return src.Put(key, b)
	})
	if err != nil {
		return false, fmt.Errorf("spool: accept %s: %w", sourceID, err)
	}
	if !dup {
		drivers := make([]string, 0, len(jobs))
		for _, j := range jobs {
			drivers = append(drivers, j.Driver)
		}
		s.wake(drivers...)
	}
	return dup, nil
}

// dropCorrupt quarantines the jobs found corrupt and removes the schedule
// keys left without a job.
func (s *Spool) dropCorrupt(bad []corrupt) error {
	var orphans [][]byte
	var corrupt []corrupt
	for _, c := range bad {
		if errors.Is(c.err, ErrNotFound) {
			orphans = append(orphans, c.due)
		} else {
			corrupt = append(corrupt, c)
		}
	}
	if len(orphans) > 0 {
		err := s.update(func(tx *bolt.Tx) error {
			for _, k := range orphans {
				if err := tx.Bucket(bucketDue).Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("spool: drop schedule without job: %w", err)
		}
	}
	if len(corrupt) > 0 {
		return s.quarantine(corrupt)
	}
	return nil
}

// FollowUp is a job that an outcome or a rejection brings about (a delivery
// report), added at most once per Key: a second FollowUp with the same Key
// and Namespace adds nothing, even after the first one's job is gone, until
// Forget drops the key like a source id.
type FollowUp struct {
	Namespace string // e.g. "report:inbox"
	Key       string // e.g. "<record>/delivered"
	Job       *linedriver.Job
}

// Add stores follow-up jobs on their own (e.g. the report of a rejected
// message, written before the rejection is settled). It returns how many
// were new.
func (s *Spool) Add(ctx context.Context, follow []FollowUp) (added int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("spool: add follow-up jobs: %w", err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		added, err = addFollowUps(tx, follow)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("spool: add follow-up jobs: %w", err)
	}
	s.wakeFollowUps(follow)
	return added, nil
}

func addFollowUps(tx *bolt.Tx, follow []FollowUp) (int, error) {
	now := time.Now()
	src := tx.Bucket(bucketSources)
	n := 0
	for _, f := range follow {
		key := sourceKey(f.Namespace, f.Key)
		if src.Get(key) != nil || tx.Bucket(bucketJobs).Get([]byte(f.Job.ID)) != nil {
			continue
		}
		if err := insertJob(tx, bucketJobs, &Entry{Job: *f.Job, Due: now}); err != nil {
			return n, err
		}
		b, err := json.Marshal(sourceEntry{Jobs: []string{f.Job.ID}, Accepted: now})
		if err != nil {
			return n, err
		}
		if err := src.Put(key, b); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// complete records an outcome in tx (see Complete) and returns the job's
// driver.
func complete(tx *bolt.Tx, id string, o linedriver.Outcome, countAttempt bool, a *Attempt) (string, error) {
	r, err := getRow(tx, bucketJobs, id)
	if err != nil {
		return "", err
	}
	if err := appendHistory(tx, id, a); err != nil {
		return "", err
	}
	driver, due := r.Job.Driver, r.Due
	if o.Result == linedriver.Delivered {
		if err := dropRow(tx, bucketJobs, r); err != nil {
			return "", err
		}
		return driver, forgetJob(tx, id)
	}
	if countAttempt {
		r.Job.Attempt++
	}
	r.LastError, r.Category = o.Reason, o.Category
	if o.Result == linedriver.Permanent {
		r.Finished = time.Now()
		return driver, moveRow(tx, bucketJobs, bucketFailed, r, due)
	}
	if o.State != nil {
		if !json.Valid(o.State) {
			return "", fmt.Errorf("the driver's state of %s is not JSON", id)
		}
		if err := tx.Bucket(bucketState).Put([]byte(id), o.State); err != nil {
			return "", err
		}
	}
	r.Due = time.Now().Add(o.RetryAfter)
	if err := tx.Bucket(bucketRetry).Put([]byte(id), nil); err != nil {
		return "", err
	}
	return driver, moveRow(tx, bucketJobs, bucketJobs, r, due)
}

// Stats counts what the spool holds.
type Stats struct {
	Queued   map[string]int // per driver: every job waiting or in an attempt
	Retrying map[string]int // per driver: queued jobs whose last attempt failed
	Failed   int
	// FailedBy counts the failed jobs per driver.
	FailedBy map[string]int
	// Oldest is, per driver, when its oldest queued job arrived.
	Oldest  map[string]time.Time
	Sources int
}

// Stats counts jobs per driver, failed jobs and remembered source ids.
func (s *Spool) Stats(ctx context.Context) (Stats, error) {
	if err := ctx.Err(); err != nil {
		return Stats{}, fmt.Errorf("spool: stats: %w", err)
	}
	st := Stats{Queued: map[string]int{}, Retrying: map[string]int{}, FailedBy: map[string]int{}, Oldest: map[string]time.Time{}}
	err := s.view(func(tx *bolt.Tx) error {
		// Every queued job has one key in due, led by its driver's name:
		// counting keys spares decoding every job and its documents. A
		// job id starts with the time its record arrived.
		retry := tx.Bucket(bucketRetry)
		err := tx.Bucket(bucketDue).ForEach(func(k, _ []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 || len(k) < i+10 {
				return nil
			}
			driver, id := string(k[:i]), k[i+10:]
			st.Queued[driver]++
			if retry.Get(id) != nil {
				st.Retrying[driver]++
			}
			if t, ok := idTime(string(id)); ok {
				if o, seen := st.Oldest[driver]; !seen || t.Before(o) {
					st.Oldest[driver] = t
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketFailed).ForEach(func(k, _ []byte) error {
			st.Failed++
			if d, ok := idDriver(string(k)); ok {
				st.FailedBy[d]++
			}
			return nil
		})
		if err != nil {
			return err
		}
		st.Sources = tx.Bucket(bucketSources).Stats().KeyN
		return nil
	})
	return st, err
}

// Failed lists the jobs that failed for good.
func (s *Spool) Failed() ([]Entry, error) {
	var out []Entry
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFailed).ForEach(func(k, _ []byte) error {
			r, err := getRow(tx, bucketFailed, string(k))
			if err != nil {
				return err
			}
			e, err := r.entry(tx)
			if err != nil {
				return err
			}
			out = append(out, *e)
			return nil
		})
	})
	return out, err
}

// Forget drops remembered source ids accepted before cutoff whose jobs are
// all gone, so the dedupe table does not grow without end.
func (s *Spool) Forget(ctx context.Context, cutoff time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("spool: forget: %w", err)
	}
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		src := tx.Bucket(bucketSources)
		jobs, failed := tx.Bucket(bucketJobs), tx.Bucket(bucketFailed)
		var drop [][]byte
		err := src.ForEach(func(k, v []byte) error {
			var se sourceEntry
			if err := json.Unmarshal(v, &se); err != nil || !se.Accepted.Before(cutoff) {
				return nil
			}
			for _, id := range se.Jobs {
				if jobs.Get([]byte(id)) != nil || failed.Get([]byte(id)) != nil {
					return nil
				}
			}
			drop = append(drop, append([]byte(nil), k...))
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := src.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
