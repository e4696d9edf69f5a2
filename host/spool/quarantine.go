package spool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketQuarantine keeps what could not be decoded: bucket \x00 key →
// Quarantined, with the bytes as they were.
var bucketQuarantine = []byte("quarantine")

// ErrCorrupt is wrapped by the error for an entry that cannot be decoded.
var ErrCorrupt = errors.New("entry cannot be decoded")

// Quarantined is an entry taken out of the queue because it could not be
// decoded: where it was, why, when, and its bytes as they were.
type Quarantined struct {
	Bucket string    `json:"bucket"`
	Key    string    `json:"key"`
	Error  string    `json:"error"`
	At     time.Time `json:"at"`
	Data   []byte    `json:"data"`
}

// corrupt is an entry found undecodable by a read, to be quarantined by a
// write.
type corrupt struct {
	bucket, key []byte
	due         []byte // its key in due, for a queued job
	err         error
}

func corruptJob(id string, err error) error {
	return fmt.Errorf("spool: job %s: %w: %v", id, ErrCorrupt, err)
}

// quarantine moves the entries found corrupt to the quarantine bucket, so
// that the queue they were in goes on, and reports each one.
func (s *Spool) quarantine(found []corrupt) error {
	var moved []Quarantined
	err := s.update(func(tx *bolt.Tx) error {
		moved = moved[:0]
		q := tx.Bucket(bucketQuarantine)
		for _, c := range found {
			b := tx.Bucket(c.bucket)
			v := b.Get(c.key)
			if v == nil {
				continue // gone meanwhile
			}
			// Read again as the reader did: the entry may have been
			// rewritten meanwhile.
			r, rerr := getRow(tx, c.bucket, string(c.key))
			if rerr == nil {
				_, rerr = r.entry(tx)
			}
			if !errors.Is(rerr, ErrCorrupt) {
				continue
			}
			if r != nil {
				// A row whose document is missing: the others it holds
				// are let go.
				if err := releaseDocs(tx, r.Docs); err != nil {
					return err
				}
			}
			qe := Quarantined{Bucket: string(c.bucket), Key: string(c.key), Error: c.err.Error(), At: time.Now().UTC(), Data: bytes.Clone(v)}
			qv, err := json.Marshal(qe)
			if err != nil {
				return err
			}
			if err := q.Put(append(append(bytes.Clone(c.bucket), 0), c.key...), qv); err != nil {
				return err
			}
			if err := b.Delete(c.key); err != nil {
				return err
			}
			if c.due != nil {
				if err := tx.Bucket(bucketDue).Delete(c.due); err != nil {
					return err
				}
			}
			if bytes.Equal(c.bucket, bucketJobs) {
				if err := tx.Bucket(bucketRetry).Delete(c.key); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bucketState).Delete(c.key); err != nil {
				return err
			}
			moved = append(moved, qe)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spool: quarantine: %w", err)
	}
	for _, qe := range moved {
		s.health.Quarantined(qe)
	}
	return nil
}

// Quarantine lists the entries taken out because they could not be decoded.
func (s *Spool) Quarantine(ctx context.Context) ([]Quarantined, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("spool: quarantine: %w", err)
	}
	out := []Quarantined{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQuarantine).ForEach(func(k, v []byte) error {
			var qe Quarantined
			if err := json.Unmarshal(v, &qe); err != nil {
				qe = Quarantined{Key: string(k), Error: "quarantine record: " + err.Error(), Data: bytes.Clone(v)}
			}
			out = append(out, qe)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("spool: quarantine: %w", err)
	}
	return out, nil
}

// OnQuarantine sets a function called for every entry quarantined (to log
// it). It must not block.
func (s *Spool) OnQuarantine(f func(Quarantined)) { s.health.OnQuarantine(f) }
