package spool

import (
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

type healthTracker struct {
	mu           sync.Mutex
	now          func() time.Time
	h            Health
	onChange     func(old, new Health)
	onQuarantine func(Quarantined)
}

func (t *healthTracker) init(now func() time.Time) {
	t.now = now
	t.h = Health{Health: Healthy, Since: now()}
}

// note records the result of a write or a deferral and calls the change hook
// (outside the lock) when the state changed.
func (t *healthTracker) note(err error, deferral bool) {
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
	t.mu.Unlock()
	if changed && hook != nil {
		hook(old, cur)
	}
}

func (t *healthTracker) quarantined(q Quarantined) {
	t.mu.Lock()
	t.h.Quarantined++
	hook := t.onQuarantine
	t.mu.Unlock()
	if hook != nil {
		hook(q)
	}
}

// Health returns the spool's health, its size and its last compaction.
func (s *Spool) Health() Health {
	s.health.mu.Lock()
	h := s.health.h
	s.health.mu.Unlock()
	if sz, err := s.Size(); err == nil {
		h.Size = sz
	}
	h.LastCompaction = s.LastCompaction()
	return h
}

// OnHealthChange sets a function called once for every change of the
// spool's health (degraded, healthy again). It must not block.
func (s *Spool) OnHealthChange(f func(old, new Health)) {
	s.health.mu.Lock()
	s.health.onChange = f
	s.health.mu.Unlock()
}

// SetClock replaces the clock that stamps health changes (tests).
func (s *Spool) SetClock(now func() time.Time) {
	s.health.mu.Lock()
	s.health.now = now
	s.health.mu.Unlock()
}

// Deferred records that a message could not be taken because of the spool
// (the pipeline asks its source to offer it again): the spool is degraded.
func (s *Spool) Deferred(err error) { s.health.note(err, true) }

// update is every write: it feeds the health tracker.
func (s *Spool) update(fn func(*bolt.Tx) error) error {
	if s.faultHook != nil {
		if err := s.faultHook(); err != nil {
			s.health.note(err, false)
			return err
		}
	}
	err := s.write(fn)
	switch {
	case err == nil:
		s.health.note(nil, false)
	case isLogical(err):
		// A job that is not there is an answer, not a failing disk.
	default:
		s.health.note(err, false)
	}
	return err
}

func isLogical(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotFailed) || errors.Is(err, ErrActive) || errors.Is(err, ErrClosed)
}
