package spool

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Source is a remembered source id (or a follow-up's key) with the jobs
// it brought.
type Source struct {
	Connector string    // the connector, or a follow-up's namespace
	SourceID  string    // the source id, or a follow-up's key
	Accepted  time.Time // when it was taken
	Jobs      []string
}

// Exported is a queued or failed job with its documents and attempts, as
// Export hands it over.
type Exported struct {
	Entry   Entry
	Failed  bool
	Retry   bool // queued, its last attempt failed
	History []Attempt
}

// Export calls job for every queued and failed job and source for every
// remembered source id, in one read transaction (a consistent copy):
// the way from one gateway's file to a shared database. Jobs that cannot
// be decoded are not handed over (they stay in the file): their ids are
// returned, for the operator to hear of them.
func (s *Spool) Export(ctx context.Context, job func(*Exported) error, source func(*Source) error) (skipped []string, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		hist := func(id []byte) []Attempt {
			var h []Attempt
			if v := tx.Bucket(bucketHistory).Get(id); v != nil {
				_ = json.Unmarshal(v, &h)
			}
			return h
		}
		retry := tx.Bucket(bucketRetry)
		for _, b := range [][]byte{bucketJobs, bucketFailed} {
			failed := string(b) == string(bucketFailed)
			err := tx.Bucket(b).ForEach(func(k, v []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				x := &Exported{Failed: failed, Retry: !failed && retry.Get(k) != nil, History: hist(k)}
				r, err := getRow(tx, b, string(k))
				if err != nil {
					skipped = append(skipped, string(k)) // undecodable: left in the file
					return nil
				}
				e, err := r.entry(tx)
				if err != nil {
					skipped = append(skipped, string(k))
					return nil
				}
				x.Entry = *e
				return job(x)
			})
			if err != nil {
				return err
			}
		}
		return tx.Bucket(bucketSources).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			conn, id, ok := strings.Cut(string(k), "\x00")
			var se sourceEntry
			if !ok || json.Unmarshal(v, &se) != nil {
				return nil
			}
			return source(&Source{Connector: conn, SourceID: id, Accepted: se.Accepted, Jobs: se.Jobs})
		})
	})
	if err != nil {
		return skipped, fmt.Errorf("spool: export: %w", err)
	}
	return skipped, nil
}
