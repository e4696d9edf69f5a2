package pgspool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mediagw/mediagw/host/spool"
)

// Stats counts jobs per driver, failed jobs and remembered source ids.
func (s *Store) Stats(ctx context.Context) (spool.Stats, error) {
	st := spool.Stats{Queued: map[string]int{}, Retrying: map[string]int{}, FailedBy: map[string]int{}, Oldest: map[string]time.Time{}}
	if s.closed.Load() {
		return st, spool.ErrClosed
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT driver, state, count(*), count(*) FILTER (WHERE retrying), min(accepted)
			FROM jobs GROUP BY driver, state`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var driver, state string
			var n, retrying int
			var oldest time.Time
			if err := rows.Scan(&driver, &state, &n, &retrying, &oldest); err != nil {
				return err
			}
			if state == "failed" {
				st.Failed += n
				st.FailedBy[driver] += n
				continue
			}
			st.Queued[driver] += n
			if retrying > 0 {
				st.Retrying[driver] += retrying
			}
			st.Oldest[driver] = oldest
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM sources`).Scan(&st.Sources)
	})
	if err != nil {
		return st, s.observe(fmt.Errorf("pgspool: stats: %w", err))
	}
	s.observe(nil)
	return st, nil
}

// jobRow is a job's row as listed, before decoding.
type jobRow struct {
	id, driver, rid, state string
	body, jstate           []byte
	attempt                int
	due                    time.Time
	lastErr, category      string
	retrying, leased       bool
	finished               *time.Time
}

const jobColumns = `id, driver, record_id, state, job, (SELECT state FROM job_state WHERE job_id = jobs.id), attempt, due,
	last_error, category, retrying, coalesce(lease_until > now(), false), finished`

func scanJob(row pgx.Row) (*jobRow, error) {
	var r jobRow
	err := row.Scan(&r.id, &r.driver, &r.rid, &r.state, &r.body, &r.jstate, &r.attempt, &r.due, &r.lastErr, &r.category, &r.retrying, &r.leased, &r.finished)
	return &r, err
}

// entry decodes r (documents without their bytes).
func (r *jobRow) entry() (*spool.Entry, error) {
	e := &spool.Entry{Due: r.due, LastError: r.lastErr, Category: r.category}
	if r.finished != nil {
		e.Finished = *r.finished
	}
	return e, decodeJob(r.id, r.body, r.attempt, r.jstate, &e.Job)
}

func (r *jobRow) opState() string {
	switch {
	case r.state == "failed":
		return spool.StateFailed
	case r.leased:
		return spool.StateActive
	case r.retrying:
		return spool.StateRetrying
	}
	return spool.StateQueued
}

func info(e *spool.Entry, state string, sizes map[docKey]int) spool.JobInfo {
	ji := spool.JobInfo{ID: e.Job.ID, Driver: e.Job.Driver, Connector: e.Job.Record.Connector, SourceID: e.Job.Record.SourceID,
		State: state, Attempts: e.Job.Attempt, LastError: e.LastError, Category: e.Category,
		Accepted: e.Job.Accepted, Finished: e.Finished, Fields: e.Job.Record.Fields, Documents: []spool.DocInfo{}}
	if state != spool.StateFailed {
		ji.Due = e.Due
	}
	if ji.Fields == nil {
		ji.Fields = map[string]string{}
	}
	for i, d := range e.Job.Record.Documents {
		ji.Documents = append(ji.Documents, spool.DocInfo{Name: d.Name, MediaType: d.MediaType, Size: sizes[docKey{recordID(&e.Job), i}]})
	}
	return ji
}

type docKey struct {
	rid string
	idx int
}

func (s *Store) docSizes(ctx context.Context, rids []string) (map[docKey]int, error) {
	out := map[docKey]int{}
	if len(rids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT record_id, idx, octet_length(data) FROM documents WHERE record_id = ANY($1)`, rids)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var k docKey
		var n int
		if err := rows.Scan(&k.rid, &k.idx, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// Jobs lists the jobs q selects: queued ones in the order they are due,
// then failed ones, newest failure first; at most q.Limit (0: all). A job
// leased by any gateway is active.
func (s *Store) Jobs(ctx context.Context, q spool.Query) ([]spool.JobInfo, error) {
	switch q.State {
	case "", spool.StateQueued, spool.StateActive, spool.StateRetrying, spool.StateFailed:
	default:
		return nil, fmt.Errorf("pgspool: unknown job state %q (queued, active, retrying, failed)", q.State)
	}
	if s.closed.Load() {
		return nil, spool.ErrClosed
	}
	var rowsOut []*jobRow
	full := func() bool { return q.Limit > 0 && len(rowsOut) >= q.Limit }
	collect := func(sql string) error {
		rows, err := s.pool.Query(ctx, sql, q.Driver)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() && !full() {
			r, err := scanJob(rows)
			if err != nil {
				return err
			}
			if q.State != "" && r.opState() != q.State {
				continue
			}
			rowsOut = append(rowsOut, r)
		}
		return rows.Err()
	}
	if q.State != spool.StateFailed {
		if err := collect(`SELECT ` + jobColumns + ` FROM jobs WHERE state = 'queued' AND ($1 = '' OR driver = $1) ORDER BY due, id`); err != nil {
			return nil, s.observe(fmt.Errorf("pgspool: list jobs: %w", err))
		}
	}
	if (q.State == "" || q.State == spool.StateFailed) && !full() {
		if err := collect(`SELECT ` + jobColumns + ` FROM jobs WHERE state = 'failed' AND ($1 = '' OR driver = $1) ORDER BY finished DESC, id`); err != nil {
			return nil, s.observe(fmt.Errorf("pgspool: list jobs: %w", err))
		}
	}
	var rids []string
	for _, r := range rowsOut {
		rids = append(rids, r.rid)
	}
	sizes, err := s.docSizes(ctx, rids)
	if err != nil {
		return nil, s.observe(fmt.Errorf("pgspool: list jobs: %w", err))
	}
	out := []spool.JobInfo{}
	for _, r := range rowsOut {
		e, err := r.entry()
		if err != nil {
			if err := s.quarantineJob(ctx, r.id, r.body, err); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, info(e, r.opState(), sizes))
	}
	s.observe(nil)
	return out, nil
}

func (s *Store) row(ctx context.Context, id string) (*jobRow, error) {
	if s.closed.Load() {
		return nil, spool.ErrClosed
	}
	r, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, spool.ErrNotFound
	}
	return r, s.observe(err)
}

// Job is one job with its attempts, oldest first; ErrNotFound.
func (s *Store) Job(ctx context.Context, id string) (*spool.JobDetail, error) {
	r, err := s.row(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("pgspool: job %s: %w", id, err)
	}
	e, err := r.entry()
	if err != nil {
		return nil, fmt.Errorf("pgspool: job %s: %w", id, err)
	}
	sizes, err := s.docSizes(ctx, []string{r.rid})
	if err != nil {
		return nil, s.observe(fmt.Errorf("pgspool: job %s: %w", id, err))
	}
	d := &spool.JobDetail{JobInfo: info(e, r.opState(), sizes), History: []spool.Attempt{}}
	rows, err := s.pool.Query(ctx, `SELECT attempt FROM history WHERE job_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, s.observe(fmt.Errorf("pgspool: job %s: history: %w", id, err))
	}
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, s.observe(fmt.Errorf("pgspool: job %s: history: %w", id, err))
	}
	for _, b := range bodies {
		var a spool.Attempt
		if json.Unmarshal(b, &a) == nil {
			d.History = append(d.History, a)
		}
	}
	return d, nil
}

// Entry is one queued or failed job with its documents; ErrNotFound.
func (s *Store) Entry(ctx context.Context, id string) (*spool.Entry, error) {
	r, err := s.row(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("pgspool: job %s: %w", id, err)
	}
	e, err := r.entry()
	if err != nil {
		return nil, fmt.Errorf("pgspool: job %s: %w", id, err)
	}
	if err := loadDocuments(ctx, s.pool, r.rid, &e.Job); err != nil {
		return nil, s.observe(fmt.Errorf("pgspool: job %s: documents: %w", id, err))
	}
	return e, nil
}

// Retry queues a failed job again, due now, attempts from zero; its
// history stays. ErrNotFailed, ErrNotFound.
func (s *Store) Retry(ctx context.Context, id string) error {
	var driver string
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE jobs SET state = 'queued', attempt = 0, due = now(), finished = NULL,
			last_error = '', category = '', retrying = false WHERE id = $1 AND state = 'failed' RETURNING driver`, id).Scan(&driver)
		if errors.Is(err, pgx.ErrNoRows) {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM jobs WHERE id = $1)`, id).Scan(&exists); err != nil {
				return err
			}
			if exists {
				return spool.ErrNotFailed
			}
			return spool.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify('`+Channel+`', $1)`, driver)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgspool: retry %s: %w", id, err)
	}
	s.wake(driver)
	return nil
}

// Purge deletes a failed or queued job with its documents and history;
// ErrActive while a gateway holds its lease.
func (s *Store) Purge(ctx context.Context, id string) error {
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var leased bool
		err := tx.QueryRow(ctx, `SELECT coalesce(lease_until > now(), false) FROM jobs WHERE id = $1 FOR UPDATE`, id).Scan(&leased)
		if errors.Is(err, pgx.ErrNoRows) {
			return spool.ErrNotFound
		}
		if err != nil {
			return err
		}
		if leased {
			return spool.ErrActive
		}
		_, err = tx.Exec(ctx, dropJob, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgspool: purge %s: %w", id, err)
	}
	return nil
}

// PruneFailed deletes failed jobs that failed before cutoff.
func (s *Store) PruneFailed(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
WITH j AS (DELETE FROM jobs WHERE state = 'failed' AND finished < $1 RETURNING id, record_id),
s AS (DELETE FROM job_state WHERE job_id IN (SELECT id FROM j)),
h AS (DELETE FROM history WHERE job_id IN (SELECT id FROM j)),
d AS (DELETE FROM documents d WHERE d.record_id IN (SELECT record_id FROM j)
	AND NOT EXISTS (SELECT 1 FROM jobs x WHERE x.record_id = d.record_id AND x.id NOT IN (SELECT id FROM j)))
SELECT count(*) FROM j`, cutoff).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("pgspool: prune failed jobs: %w", err)
	}
	return n, nil
}

// Forget drops source ids accepted before cutoff whose jobs are all gone
// (delivered, purged, pruned): a failed job keeps its source id.
func (s *Store) Forget(ctx context.Context, cutoff time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM sources s WHERE accepted < $1
			AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = ANY(s.jobs))`, cutoff)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgspool: forget source ids: %w", err)
	}
	return int(n), nil
}

// quarantineJob moves a job whose row cannot be decoded to the quarantine,
// so that its queue goes on, and reports it.
func (s *Store) quarantineJob(ctx context.Context, id string, body []byte, cause error) error {
	var q spool.Quarantined
	var moved bool
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		moved = false
		var cur []byte
		err := tx.QueryRow(ctx, `SELECT job FROM jobs WHERE id = $1 FOR UPDATE`, id).Scan(&cur)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // gone meanwhile
		}
		if err != nil {
			return err
		}
		if string(cur) != string(body) {
			return nil // rewritten meanwhile
		}
		q = spool.Quarantined{Bucket: "jobs", Key: id, Error: cause.Error(), Data: cur}
		if err := tx.QueryRow(ctx, `INSERT INTO quarantine (bucket, key, error, data) VALUES ($1, $2, $3, $4) RETURNING at`,
			q.Bucket, q.Key, q.Error, q.Data).Scan(&q.At); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, dropJob, id); err != nil {
			return err
		}
		moved = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgspool: quarantine %s: %w", id, err)
	}
	if moved {
		s.health.Quarantined(q)
	}
	return nil
}

// Quarantine lists the entries taken out because they were corrupt.
func (s *Store) Quarantine(ctx context.Context) ([]spool.Quarantined, error) {
	if s.closed.Load() {
		return nil, spool.ErrClosed
	}
	rows, err := s.pool.Query(ctx, `SELECT bucket, key, error, at, data FROM quarantine ORDER BY id`)
	if err != nil {
		return nil, s.observe(fmt.Errorf("pgspool: quarantine: %w", err))
	}
	out := []spool.Quarantined{}
	for rows.Next() {
		var q spool.Quarantined
		if err := rows.Scan(&q.Bucket, &q.Key, &q.Error, &q.At, &q.Data); err != nil {
			return nil, fmt.Errorf("pgspool: quarantine: %w", err)
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, s.observe(fmt.Errorf("pgspool: quarantine: %w", err))
	}
	return out, nil
}
