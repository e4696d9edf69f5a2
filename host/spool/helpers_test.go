package spool

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/linedriver"
)

// Helpers of the package's own tests: they act on a job by its id, as
// its holder would, without leasing the earliest one first.

var bg = context.Background()

const testHolder = "test"

// hold gives testHolder a lease of job id for an hour.
func (s *Spool) hold(id string) {
	s.leaseMu.Lock()
	s.leases[id] = &lease{holder: testHolder, until: time.Now().Add(time.Hour)}
	s.leaseMu.Unlock()
}

func (s *Spool) finish(id string, o linedriver.Outcome, countAttempt bool) error {
	_, err := s.finishWith(id, o, countAttempt, nil, nil)
	return err
}

func (s *Spool) finishAttempt(id string, o linedriver.Outcome, countAttempt bool, a *Attempt) error {
	_, err := s.finishWith(id, o, countAttempt, a, nil)
	return err
}

func (s *Spool) finishWith(id string, o linedriver.Outcome, countAttempt bool, a *Attempt, follow []FollowUp) (int, error) {
	s.hold(id)
	return s.Complete(bg, id, testHolder, o, countAttempt, a, follow)
}

func (s *Spool) saveState(id string, state json.RawMessage) error {
	s.hold(id)
	return s.SaveState(bg, id, testHolder, state)
}

// next is the earliest queued job of driver not in skip, due or not.
func (s *Spool) next(driver string, skip map[string]bool) (*Entry, error) {
	var ids []string
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDue).Cursor()
		prefix := append([]byte(driver), 0)
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			ids = append(ids, string(k[len(prefix)+9:]))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if !skip[id] {
			return s.Entry(bg, id)
		}
	}
	return nil, nil
}
