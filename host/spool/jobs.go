package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Job states as the operator sees them.
const (
	StateQueued   = "queued"   // waiting for its first attempt
	StateActive   = "active"   // an attempt is in progress: the job is leased
	StateRetrying = "retrying" // its last attempt failed; due again later
	StateFailed   = "failed"   // failed for good; kept for the operator
)

var (
	// ErrNotFailed is returned when retrying a job that has not failed.
	ErrNotFailed = errors.New("spool: job has not failed")
	// ErrActive is returned when purging a job whose attempt is in progress.
	ErrActive = errors.New("spool: job is being delivered")
)

// Query selects jobs. Zero fields select everything.
type Query struct {
	Driver string `json:"driver,omitempty"`
	State  string `json:"state,omitempty"` // queued, active, retrying, failed or ""
	Limit  int    `json:"limit,omitempty"`
}

// DocInfo describes a document without its bytes.
type DocInfo struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	Size      int    `json:"size"`
}

// JobInfo is a job as listed for the operator.
type JobInfo struct {
	ID        string            `json:"id"`
	Driver    string            `json:"driver"`
	Connector string            `json:"connector"`
	SourceID  string            `json:"source_id"`
	State     string            `json:"state"`
	Attempts  int               `json:"attempts"`
	Due       time.Time         `json:"due,omitzero"`
	LastError string            `json:"last_error,omitempty"`
	Category  string            `json:"category,omitempty"`
	Accepted  time.Time         `json:"accepted"`
	Finished  time.Time         `json:"finished,omitzero"`
	Fields    map[string]string `json:"fields"`
	Documents []DocInfo         `json:"documents"`
}

// Attempt is the record of one delivery attempt.
type Attempt struct {
	N        int               `json:"n"`
	Started  time.Time         `json:"started"`
	Ended    time.Time         `json:"ended"`
	Result   string            `json:"result"` // delivered, temporary, permanent
	Category string            `json:"category,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
	// Log is what the driver reported during the attempt (for a fax, its
	// T.30 steps and frames), cut to MaxLog bytes.
	Log string `json:"log,omitempty"`
}

// JobDetail is a job with its attempts, oldest first.
type JobDetail struct {
	JobInfo
	History []Attempt `json:"history"`
}

// MaxHistory attempts are kept per job, each log at most MaxLog bytes.
const (
	MaxHistory = 20
	MaxLog     = 32 << 10
)

func appendHistory(tx *bolt.Tx, id string, a *Attempt) error {
	if a == nil {
		return nil
	}
	b := tx.Bucket(bucketHistory)
	var h []Attempt
	if v := b.Get([]byte(id)); v != nil {
		_ = json.Unmarshal(v, &h) // a corrupt history starts over
	}
	cp := *a
	if len(cp.Log) > MaxLog {
		cp.Log = "…" + cp.Log[len(cp.Log)-MaxLog:]
	}
	h = append(h, cp)
	if len(h) > MaxHistory {
		h = h[len(h)-MaxHistory:]
	}
	v, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return b.Put([]byte(id), v)
}

// info lists a job from its row: no document is read.
func info(e *jobRow, state string) JobInfo {
	ji := JobInfo{ID: e.Job.ID, Driver: e.Job.Driver, Connector: e.Job.Record.Connector, SourceID: e.Job.Record.SourceID,
		State: state, Attempts: e.Job.Attempt, LastError: e.LastError, Category: e.Category,
		Accepted: e.Job.Accepted, Finished: e.Finished, Fields: e.Job.Record.Fields, Documents: []DocInfo{}}
	if state != StateFailed {
		ji.Due = e.Due
	}
	if ji.Fields == nil {
		ji.Fields = map[string]string{}
	}
	for i, d := range e.Job.Record.Documents {
		size := len(d.Data)
		if i < len(e.Docs) {
			size = e.Docs[i].Size
		}
		ji.Documents = append(ji.Documents, DocInfo{Name: d.Name, MediaType: d.MediaType, Size: size})
	}
	return ji
}

func queuedState(tx *bolt.Tx, id string, active map[string]bool) string {
	switch {
	case active[id]:
		return StateActive
	case tx.Bucket(bucketRetry).Get([]byte(id)) != nil:
		return StateRetrying
	}
	return StateQueued
}

// Jobs lists the jobs q selects: queued ones in the order they are due,
// then failed ones, newest failure first; at most q.Limit (0: all).
func (s *Spool) Jobs(ctx context.Context, q Query) ([]JobInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("spool: jobs: %w", err)
	}
	switch q.State {
	case "", StateQueued, StateActive, StateRetrying, StateFailed:
	default:
		return nil, fmt.Errorf("spool: unknown job state %q (queued, active, retrying, failed)", q.State)
	}
	out := []JobInfo{}
	full := func() bool { return q.Limit > 0 && len(out) >= q.Limit }
	var bad []corrupt // quarantined after the read: the listing goes on
	active := s.held()
	err := s.view(func(tx *bolt.Tx) error {
		if q.State != StateFailed {
			// The schedule's keys say driver, due time and id: select and
			// sort on them, then decode only the rows listed.
			type dueKey struct {
				key   []byte
				id    string
				state string
				due   int64
			}
			var keys []dueKey
			err := tx.Bucket(bucketDue).ForEach(func(k, _ []byte) error {
				i := bytes.IndexByte(k, 0)
				if i < 0 || len(k) < i+10 {
					return nil
				}
				driver, id := string(k[:i]), string(k[i+10:])
				if q.Driver != "" && driver != q.Driver {
					return nil
				}
				state := queuedState(tx, id, active)
				if q.State != "" && state != q.State {
					return nil
				}
				keys = append(keys, dueKey{bytes.Clone(k), id, state, int64(binary.BigEndian.Uint64(k[i+1:]))})
				return nil
			})
			if err != nil {
				return err
			}
			// due keys sort by driver first: order by due time overall.
			sort.SliceStable(keys, func(i, j int) bool { return keys[i].due < keys[j].due })
			for _, k := range keys {
				if full() {
					break
				}
				r, err := getRow(tx, bucketJobs, k.id)
				if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound) {
					bad = append(bad, corrupt{bucket: bucketJobs, key: []byte(k.id), due: k.key, err: err})
					continue
				}
				if err != nil {
					return err
				}
				out = append(out, info(r, k.state))
			}
		}
		if q.State == "" || q.State == StateFailed {
			// Sort by the time of failure reading only that, then decode
			// only the jobs that are listed.
			type failedKey struct {
				id       []byte
				finished time.Time
			}
			var keys []failedKey
			fb := tx.Bucket(bucketFailed)
			err := fb.ForEach(func(k, v []byte) error {
				if q.Driver != "" {
					if d, ok := idDriver(string(k)); ok && d != q.Driver {
						return nil
					}
				}
				var e struct {
					Finished time.Time `json:"finished"`
				}
				_ = json.Unmarshal(v, &e) // a corrupt job is reported below
				keys = append(keys, failedKey{k, e.Finished})
				return nil
			})
			if err != nil {
				return err
			}
			sort.SliceStable(keys, func(i, j int) bool { return keys[i].finished.After(keys[j].finished) })
			for _, k := range keys {
				if full() {
					break
				}
				r, err := getRow(tx, bucketFailed, string(k.id))
				if err != nil {
					bad = append(bad, corrupt{bucket: bucketFailed, key: bytes.Clone(k.id), err: err})
					continue
				}
				if q.Driver != "" && r.Job.Driver != q.Driver {
					continue
				}
				out = append(out, info(r, StateFailed))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		if err := s.dropCorrupt(bad); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Job returns one job, queued or failed, with its attempts; ErrNotFound
// when the spool has no such job (unknown, delivered, purged, pruned).
func (s *Spool) Job(ctx context.Context, id string) (*JobDetail, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("spool: job %s: %w", id, err)
	}
	active := s.held()
	var d *JobDetail
	err := s.view(func(tx *bolt.Tx) error {
		var ji JobInfo
		if r, err := getRow(tx, bucketJobs, id); err == nil {
			ji = info(r, queuedState(tx, id, active))
		} else if !errors.Is(err, ErrNotFound) {
			return err
		} else if r, err := getRow(tx, bucketFailed, id); err == nil {
			ji = info(r, StateFailed)
		} else {
			return err
		}
		d = &JobDetail{JobInfo: ji, History: []Attempt{}}
		if v := tx.Bucket(bucketHistory).Get([]byte(id)); v != nil {
			_ = json.Unmarshal(v, &d.History)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spool: job %s: %w", id, err)
	}
	return d, nil
}

// Entry returns a queued or failed job with its documents (for a console
// that shows them).
func (s *Spool) Entry(ctx context.Context, id string) (*Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("spool: job %s: %w", id, err)
	}
	var out *Entry
	err := s.view(func(tx *bolt.Tx) error {
		r, err := getRow(tx, bucketJobs, id)
		if errors.Is(err, ErrNotFound) {
			r, err = getRow(tx, bucketFailed, id)
		}
		if err != nil {
			return err
		}
		out, err = r.entry(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("spool: job %s: %w", id, err)
	}
	return out, nil
}

// Retry puts a failed job back in its driver's queue, due now, with its
// attempts counted from zero again. Its history stays.
func (s *Spool) Retry(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("spool: retry %s: %w", id, err)
	}
	var driver string
	err := s.update(func(tx *bolt.Tx) error {
		r, err := getRow(tx, bucketFailed, id)
		if errors.Is(err, ErrNotFound) && tx.Bucket(bucketJobs).Get([]byte(id)) != nil {
			return ErrNotFailed
		}
		if err != nil {
			return err
		}
		r.Job.Attempt = 0
		r.Due, r.Finished, r.LastError, r.Category = time.Now(), time.Time{}, "", ""
		driver = r.Job.Driver
		return moveRow(tx, bucketFailed, bucketJobs, r, time.Time{})
	})
	if err != nil {
		return fmt.Errorf("spool: retry %s: %w", id, err)
	}
	s.wake(driver)
	return nil
}

// Purge removes a failed or queued job with its documents and history. A
// job in an attempt (leased) is not purged: ErrActive.
func (s *Spool) Purge(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("spool: purge %s: %w", id, err)
	}
	s.leaseMu.Lock()
	if s.heldLocked(id, time.Now()) {
		s.leaseMu.Unlock()
		return fmt.Errorf("spool: purge %s: %w", id, ErrActive)
	}
	// Held by the purge while it runs: no Lease takes the job meanwhile.
	l := &lease{holder: purging, pins: 1}
	s.leases[id] = l
	s.leaseMu.Unlock()
	defer s.unpin(id, l, true)
	err := s.update(func(tx *bolt.Tx) error {
		bucket := bucketFailed
		r, err := getRow(tx, bucket, id)
		if errors.Is(err, ErrNotFound) {
			bucket = bucketJobs
			r, err = getRow(tx, bucket, id)
		}
		switch {
		case errors.Is(err, ErrCorrupt):
			// Undecodable: its row goes (a schedule left behind is
			// dropped by the next Lease).
			if err := tx.Bucket(bucket).Delete([]byte(id)); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if err := dropRow(tx, bucket, r); err != nil {
				return err
			}
		}
		return forgetJob(tx, id)
	})
	if err != nil {
		return fmt.Errorf("spool: purge %s: %w", id, err)
	}
	return nil
}

// PruneFailed removes the failed jobs that failed before cutoff, with their
// documents and history, and returns how many.
func (s *Spool) PruneFailed(ctx context.Context, cutoff time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("spool: prune failed jobs: %w", err)
	}
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		var drop []*jobRow
		err := tx.Bucket(bucketFailed).ForEach(func(k, _ []byte) error {
			if r, err := getRow(tx, bucketFailed, string(k)); err == nil && r.Finished.Before(cutoff) {
				drop = append(drop, r)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range drop {
			if err := dropRow(tx, bucketFailed, r); err != nil {
				return err
			}
			if err := forgetJob(tx, r.Job.ID); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("spool: prune failed jobs: %w", err)
	}
	return n, nil
}

// idTime reads the arrival time a job id starts with (see the pipeline's
// record ids: UTC time, "-", random hex, ".", driver).
func idTime(id string) (time.Time, bool) {
	const layout = "20060102T150405.000Z"
	if len(id) < len(layout) {
		return time.Time{}, false
	}
	t, err := time.Parse(layout, id[:len(layout)])
	return t, err == nil
}

// idDriver reads the driver name a job id ends with.
func idDriver(id string) (string, bool) {
	i := strings.IndexByte(id, '-')
	if i < 0 {
		return "", false
	}
	j := strings.IndexByte(id[i:], '.')
	if j < 0 {
		return "", false
	}
	return id[i+j+1:], true
}
