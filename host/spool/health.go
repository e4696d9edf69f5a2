package spool

import (
	"context"
	"errors"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Health states of the spool, spelled as the connectors' are.
const (
	Healthy  = "healthy"
	Degraded = "degraded"
)

// Health is what the status shows of the spool. A write that fails (a full
// disk, an I/O error) or a message deferred because the spool could not take
// it makes the spool degraded at once; the next write that succeeds makes it
// healthy again.
type Health struct {
	Health      string    `json:"health"`
	WriteErrors int       `json:"write_errors"`
	Deferrals   int       `json:"deferrals"`
	LastError   string    `json:"last_error,omitempty"`
	Since       time.Time `json:"since"`
	// Size is the file's use when Health was asked (zero in the change
	// hook); LastCompaction the last compaction since the spool opened.
	Size
	LastCompaction *Compaction `json:"last_compaction,omitempty"`
	// Quarantined counts the entries that could not be decoded and were
	// taken out of their queue (Spool.Quarantine lists them). They do not
	// make the spool degraded: the queue goes on.
	Quarantined int `json:"quarantined"`
}

// HealthTracker keeps a store's Health: the bbolt spool's and the
// PostgreSQL spool's. It is safe for concurrent use.
type HealthTracker struct {
	mu           sync.Mutex
	hookMu       sync.Mutex // held while the change hook runs; taken under mu
	now          func() time.Time
	h            Health
	onChange     func(old, new Health)
	onQuarantine func(Quarantined)
}

// NewHealthTracker returns a healthy tracker since now() that counts
// quarantined entries already taken out.
func NewHealthTracker(now func() time.Time, quarantined int) *HealthTracker {
	return &HealthTracker{now: now, h: Health{Health: Healthy, Since: now(), Quarantined: quarantined}}
}

// Observe records the result of a call that reached the store and returns
// err: nil makes the store healthy, an error degraded, but the contract's
// own answers (IsAnswer: not found, lease lost, …) say nothing of the
// store and change nothing.
func (t *HealthTracker) Observe(err error) error {
	if err == nil || !IsAnswer(err) {
		t.note(err, false)
	}
	return err
}

// Deferred records that a message could not be taken because of the store
// (the pipeline asks its source to offer it again): the store is degraded.
func (t *HealthTracker) Deferred(err error) { t.note(err, true) }

// note records the result of a write or a deferral and calls the change hook
// (outside the lock) when the state changed.
func (t *HealthTracker) note(err error, deferral bool) {
	t.mu.Lock()
	old := t.h
	switch {
	case err == nil:
		t.h.Health = Healthy
	case deferral:
		t.h.Deferrals++
		t.h.Health, t.h.LastError = Degraded, err.Error()
	default:
		t.h.WriteErrors++
		t.h.Health, t.h.LastError = Degraded, err.Error()
	}
	changed := old.Health != t.h.Health
	if changed {
		t.h.Since = t.now()
	}
	cur, hook := t.h, t.onChange
	if changed && hook != nil {
		// Taken before mu is let go: the hooks run one at a time, in the
		// order the state changed (the log's last word is the health).
		t.hookMu.Lock()
		defer t.hookMu.Unlock()
	}
	t.mu.Unlock()
	if changed && hook != nil {
		hook(old, cur)
	}
}

// Quarantined counts an entry taken out of its queue and calls the
// OnQuarantine hook.
func (t *HealthTracker) Quarantined(q Quarantined) {
	t.mu.Lock()
	t.h.Quarantined++
	hook := t.onQuarantine
	t.mu.Unlock()
	if hook != nil {
		hook(q)
	}
}

// Health returns the state as tracked (without Size or LastCompaction).
func (t *HealthTracker) Health() Health {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.h
}

// OnHealthChange sets a function called once for every change of health,
// one call at a time, in the order of the changes. It must not block, nor
// call the tracker.
func (t *HealthTracker) OnHealthChange(f func(old, new Health)) {
	t.mu.Lock()
	t.onChange = f
	t.mu.Unlock()
}

// OnQuarantine sets a function called for every entry quarantined. It must
// not block.
func (t *HealthTracker) OnQuarantine(f func(Quarantined)) {
	t.mu.Lock()
	t.onQuarantine = f
	t.mu.Unlock()
}

// SetClock replaces the clock that stamps health changes (tests).
func (t *HealthTracker) SetClock(now func() time.Time) {
	t.mu.Lock()
	t.now = now
	t.mu.Unlock()
}

// IsAnswer reports whether err is one of the contract's own answers (a job
// not found or not failed, an active job, a lost lease, a corrupt entry, a
// closed store, a cancelled call) rather than trouble of the store.
func IsAnswer(err error) bool {
	for _, e := range []error{ErrNotFound, ErrNotFailed, ErrActive, ErrLeaseLost, ErrCorrupt, ErrClosed, context.Canceled} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Health returns the spool's health, its size and its last compaction.
func (s *Spool) Health() Health {
	h := s.health.Health()
	if sz, err := s.Size(); err == nil {
		h.Size = sz
	}
	h.LastCompaction = s.LastCompaction()
	return h
}

// OnHealthChange sets a function called once for every change of the
// spool's health (degraded, healthy again). It must not block.
func (s *Spool) OnHealthChange(f func(old, new Health)) { s.health.OnHealthChange(f) }

// SetClock replaces the clock that stamps health changes (tests).
func (s *Spool) SetClock(now func() time.Time) { s.health.SetClock(now) }

// Deferred records that a message could not be taken because of the spool
// (the pipeline asks its source to offer it again): the spool is degraded.
func (s *Spool) Deferred(err error) { s.health.Deferred(err) }

// update is every write: it feeds the health tracker.
func (s *Spool) update(fn func(*bolt.Tx) error) error {
	if s.faultHook != nil {
		if err := s.faultHook(); err != nil {
			s.health.note(err, false)
			return err
		}
	}
	return s.health.Observe(s.write(fn))
}
