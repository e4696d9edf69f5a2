package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/linedriver"
)

// A lease is one holder's hold on a job, kept in memory: one process owns
// the spool file, and when it ends its leases end with it, so every job is
// free again when the gateway starts.
type lease struct {
	holder string
	until  time.Time
	// pins counts the writes of the holder in flight (Complete,
	// SaveState): a pinned lease is held even past until, so that no other
	// holder takes the job between the check and the commit.
	pins int
}

// purging is the holder Purge pins a job with while it deletes it.
const purging = "\x00purge"

// heldLocked reports whether job id is held at now. s.leaseMu is held.
func (s *Spool) heldLocked(id string, now time.Time) bool {
	l := s.leases[id]
	return l != nil && (l.pins > 0 || now.Before(l.until))
}

// held returns the ids of the jobs held now (the active ones).
func (s *Spool) held() map[string]bool {
	now := time.Now()
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	out := make(map[string]bool, len(s.leases))
	for id := range s.leases {
		if s.heldLocked(id, now) {
			out[id] = true
		}
	}
	return out
}

// Lease hands holder the earliest job of driver that is due and not held,
// for ttl. When none is due it returns nil and when the next job of driver
// that is not held is due (zero: none queued). A job that cannot be decoded
// is moved to the quarantine (see Quarantine) and the next one is taken.
func (s *Spool) Lease(ctx context.Context, driver, holder string, ttl time.Duration) (*Entry, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("spool: lease a %s job: %w", driver, err)
	}
	if holder == "" || holder == purging {
		return nil, time.Time{}, fmt.Errorf("spool: lease a %s job: holder %q is not a name", driver, holder)
	}
	for {
		var out *Entry
		var next time.Time
		var bad []corrupt
		s.leaseMu.Lock()
		now := time.Now()
		err := s.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketDue).Cursor()
			prefix := append([]byte(driver), 0)
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if len(k) < len(prefix)+9 {
					continue
				}
				id := string(k[len(prefix)+9:])
				if s.heldLocked(id, now) {
					continue
				}
				// Keys sort by due time: the first job not held is the
				// earliest; not due yet, it says when to come back.
				if due := time.Unix(0, int64(binary.BigEndian.Uint64(k[len(prefix):]))); due.After(now) {
					next = due
					return nil
				}
				e, err := getEntry(tx, id)
				if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound) {
					// Not decodable, or a schedule without its job:
					// out of the queue, so the queue goes on.
					bad = append(bad, corrupt{bucket: bucketJobs, key: []byte(id), due: bytes.Clone(k), err: err})
					continue
				}
				if err != nil {
					return err
				}
				out = e
				return nil
			}
			return nil
		})
		if err == nil && out != nil {
			s.leases[out.Job.ID] = &lease{holder: holder, until: now.Add(ttl)}
		}
		s.leaseMu.Unlock()
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("spool: lease a %s job: %w", driver, err)
		}
		if len(bad) == 0 {
			return out, next, nil
		}
		if err := s.dropCorrupt(bad); err != nil && out == nil {
			return nil, time.Time{}, fmt.Errorf("spool: lease a %s job: %w", driver, err)
		}
		if out != nil {
			// (A quarantine that failed is tried again by the next read.)
			return out, next, nil
		}
	}
}

// pin checks that holder holds job id (its lease live, or run out but not
// taken by anyone else) and pins it for a write; unpin undoes it.
func (s *Spool) pin(id, holder string) (*lease, error) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	l := s.leases[id]
	if l == nil || l.holder != holder {
		return nil, ErrLeaseLost
	}
	l.pins++
	return l, nil
}

func (s *Spool) unpin(id string, l *lease, end bool) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	l.pins--
	if end && s.leases[id] == l {
		delete(s.leases, id)
	}
}

// Renew extends holder's lease of job id to ttl from now.
func (s *Spool) Renew(ctx context.Context, id, holder string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("spool: renew the lease of %s: %w", id, err)
	}
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	l := s.leases[id]
	if l == nil || l.holder != holder {
		return fmt.Errorf("spool: renew the lease of %s: %w", id, ErrLeaseLost)
	}
	l.until = time.Now().Add(ttl)
	return nil
}

// Complete records the outcome of holder's attempt at job id: delivered
// removes the job; temporary reschedules it (RetryAfter) with the
// outcome's state; permanent moves it to the failed list, where the
// operator can still see it. a (when not nil) is kept in the job's history
// (the last MaxHistory attempts; see Job), and the follow-ups are added in
// the same transaction: a crash cannot keep the outcome and lose its
// report, or the other way round. The lease ends. It returns how many
// follow-ups were new; ErrLeaseLost when holder does not hold the job.
func (s *Spool) Complete(ctx context.Context, id, holder string, o linedriver.Outcome, countAttempt bool, a *Attempt, follow []FollowUp) (added int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("spool: complete %s: %w", id, err)
	}
	l, err := s.pin(id, holder)
	if err != nil {
		return 0, fmt.Errorf("spool: complete %s: %w", id, err)
	}
	var driver string
	err = s.update(func(tx *bolt.Tx) error {
		added = 0
		var err error
		if driver, err = complete(tx, id, o, countAttempt, a); err != nil {
			return err
		}
		added, err = addFollowUps(tx, follow)
		return err
	})
	s.unpin(id, l, err == nil || errors.Is(err, ErrNotFound))
	if errors.Is(err, ErrNotFound) {
		// Purged while its lease had run out.
		return 0, fmt.Errorf("spool: complete %s: %w (%w)", id, ErrLeaseLost, err)
	}
	if err != nil {
		return 0, fmt.Errorf("spool: complete %s: %w", id, err)
	}
	if o.Result != linedriver.Delivered && o.Result != linedriver.Permanent {
		s.wake(driver)
	}
	s.wakeFollowUps(follow)
	return added, nil
}

// SaveState keeps a driver's state of a job in the middle of holder's
// attempt (e.g. the pages already confirmed), so that an attempt cut off by
// a crash resumes from there. The schedule does not change.
func (s *Spool) SaveState(ctx context.Context, id, holder string, state json.RawMessage) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("spool: save state of %s: %w", id, err)
	}
	if !json.Valid(state) {
		return fmt.Errorf("spool: save state of %s: the driver's state is not JSON", id)
	}
	l, err := s.pin(id, holder)
	if err != nil {
		return fmt.Errorf("spool: save state of %s: %w", id, err)
	}
	// The state alone is written: the job's row and documents stay.
	err = s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketJobs).Get([]byte(id)) == nil {
			return ErrNotFound
		}
		return tx.Bucket(bucketState).Put([]byte(id), state)
	})
	s.unpin(id, l, errors.Is(err, ErrNotFound))
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("spool: save state of %s: %w (%w)", id, ErrLeaseLost, err)
	}
	if err != nil {
		return fmt.Errorf("spool: save state of %s: %w", id, err)
	}
	return nil
}

// Wake registers f, called after a commit that may have made jobs of a
// driver due (an accept, a follow-up, a retry, a temporary outcome). f must
// not block.
func (s *Spool) Wake(f func(driver string)) {
	s.wakeMu.Lock()
	s.wakes = append(s.wakes, f)
	s.wakeMu.Unlock()
}

func (s *Spool) wake(drivers ...string) {
	s.wakeMu.Lock()
	fs := s.wakes
	s.wakeMu.Unlock()
	if len(fs) == 0 {
		return
	}
	for i, d := range drivers {
		if d == "" || slices.Contains(drivers[:i], d) {
			continue
		}
		for _, f := range fs {
			f(d)
		}
	}
}

func (s *Spool) wakeFollowUps(follow []FollowUp) {
	if len(follow) == 0 {
		return
	}
	drivers := make([]string, 0, len(follow))
	for _, f := range follow {
		if f.Job != nil {
			drivers = append(drivers, f.Job.Driver)
		}
	}
	s.wake(drivers...)
}
