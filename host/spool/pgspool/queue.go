package pgspool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mediagw/mediagw/host/ownership"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/linedriver"
)

// Seen reports whether a message with this source id was accepted.
func (s *Store) Seen(ctx context.Context, connector, sourceID string) (bool, error) {
	if s.closed.Load() {
		return false, spool.ErrClosed
	}
	var seen bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sources WHERE connector = $1 AND source_id = $2)`, connector, sourceID).Scan(&seen)
	if err != nil {
		return false, s.observe(fmt.Errorf("pgspool: seen %s: %w", sourceID, err))
	}
	return seen, nil
}

// insertJobs stores a source id and its jobs, their documents once per
// record and their states, all due now, and notifies their drivers; if the
// source id is there (or, for a follow-up, one of the job ids), nothing.
const insertJobs = `
WITH src AS (
	INSERT INTO sources (connector, source_id, jobs)
	SELECT $1, $2, $3::text[] WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE id = ANY($3::text[]))
	ON CONFLICT DO NOTHING RETURNING 1
), docs AS (
	INSERT INTO documents (record_id, idx, name, media_type, data)
	SELECT u.* FROM unnest($4::text[], $5::int[], $6::text[], $7::text[], $8::bytea[]) AS u
	WHERE EXISTS (SELECT 1 FROM src)
	ON CONFLICT DO NOTHING
), jb AS (
	INSERT INTO jobs (id, driver, record_id, job, attempt, accepted, due)
	SELECT u.id, u.driver, u.rid, u.job, u.att, u.acc, now()
	FROM unnest($3::text[], $9::text[], $10::text[], $11::bytea[], $12::int[], $13::timestamptz[]) AS u(id, driver, rid, job, att, acc)
	WHERE EXISTS (SELECT 1 FROM src)
), st AS (
	INSERT INTO job_state (job_id, state)
	SELECT u.* FROM unnest($14::text[], $15::bytea[]) AS u
	WHERE EXISTS (SELECT 1 FROM src)
), n AS (
	SELECT pg_notify('` + Channel + `', d) FROM (SELECT DISTINCT unnest($9::text[]) AS d) x
	WHERE EXISTS (SELECT 1 FROM src)
)
SELECT EXISTS (SELECT 1 FROM src), (SELECT count(*) FROM n)`

// jobArgs are the arguments of insertJobs for jobs.
func jobArgs(connector, sourceID string, jobs []*linedriver.Job) ([]any, error) {
	var (
		ids, drivers, rids    []string
		bodies                [][]byte
		attempts              []int32
		accepted              []time.Time
		drecs, dnames, dtypes []string
		didx                  []int32
		ddata                 [][]byte
		stateIDs              []string
		states                [][]byte
		seenRecord            = map[string]bool{}
	)
	for _, j := range jobs {
		body, err := encodeJob(j)
		if err != nil {
			return nil, err
		}
		ids, drivers, rids = append(ids, j.ID), append(drivers, j.Driver), append(rids, recordID(j))
		bodies, attempts, accepted = append(bodies, body), append(attempts, int32(j.Attempt)), append(accepted, j.Accepted)
		if !seenRecord[recordID(j)] {
			seenRecord[recordID(j)] = true
			for i, d := range j.Record.Documents {
				data := d.Data
				if data == nil {
					data = []byte{}
				}
				drecs, didx, dnames, dtypes, ddata = append(drecs, recordID(j)), append(didx, int32(i)), append(dnames, d.Name), append(dtypes, d.MediaType), append(ddata, data)
			}
		}
		if j.State != nil {
			stateIDs, states = append(stateIDs, j.ID), append(states, []byte(j.State))
		}
	}
	return []any{connector, sourceID, ids, drecs, didx, dnames, dtypes, ddata, drivers, rids, bodies, attempts, accepted, stateIDs, states}, nil
}

// recordID keys a job's documents: its record's id, or the job's own when
// the record has none.
func recordID(j *linedriver.Job) string {
	if j.Record.ID != "" {
		return j.Record.ID
	}
	return "job:" + j.ID
}

// encodeJob is the job as stored: without its documents' bytes (kept once
// per record in documents) and its state (job_state).
func encodeJob(j *linedriver.Job) ([]byte, error) {
	cp := *j
	cp.State = nil
	cp.Record.Documents = make([]linedriver.Document, len(j.Record.Documents))
	for i, d := range j.Record.Documents {
		cp.Record.Documents[i] = linedriver.Document{Name: d.Name, MediaType: d.MediaType}
	}
	return json.Marshal(&cp)
}

// Accept stores the jobs made from one message and its source id in one
// transaction (shared with other writes waiting); dup: the source id was
// taken before, here or by another gateway, and nothing was stored.
func (s *Store) Accept(ctx context.Context, connector, sourceID string, jobs []*linedriver.Job) (dup bool, err error) {
	args, err := jobArgs(connector, sourceID, jobs)
	if err != nil {
		return false, fmt.Errorf("pgspool: accept %s: %w", sourceID, err)
	}
	insert := &stmt{sql: insertJobs, args: args, scan: func(row pgx.Row) error {
		var inserted bool
		var n int
		if err := row.Scan(&inserted, &n); err != nil {
			return err
		}
		dup = !inserted
		return nil
	}}
	// One statement: sent in one batch with the other writes waiting. A
	// connector run under a lease (several gateways) carries its fence: it
	// is checked first in the same transaction, so the accept of a gateway
	// that no longer owns the connector is refused, and a takeover waits
	// for an accept under way.
	if fence, fenced := ownership.FenceFrom(ctx); fenced {
		err = s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
			if err := ownership.CheckFence(ctx, tx, fence); err != nil {
				return err
			}
			return insert.run(ctx, tx)
		})
	} else {
		err = s.writeStmt(ctx, insert)
	}
	if err != nil {
		return false, fmt.Errorf("pgspool: accept %s: %w", sourceID, err)
	}
	if !dup {
		s.wakeDrivers(jobs)
	}
	return dup, nil
}

func (s *Store) wakeDrivers(jobs []*linedriver.Job) {
	seen := map[string]bool{}
	for _, j := range jobs {
		if !seen[j.Driver] {
			seen[j.Driver] = true
			s.wake(j.Driver)
		}
	}
}

func addFollowUps(ctx context.Context, tx pgx.Tx, follow []spool.FollowUp) (int, error) {
	n := 0
	for _, f := range follow {
		args, err := jobArgs(f.Namespace, f.Key, []*linedriver.Job{f.Job})
		if err != nil {
			return n, err
		}
		insert := &stmt{sql: insertJobs, args: args, scan: func(row pgx.Row) error {
			var inserted bool
			var c int
			if err := row.Scan(&inserted, &c); err != nil {
				return err
			}
			if inserted {
				n++
			}
			return nil
		}}
		if err := insert.run(ctx, tx); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Add stores follow-up jobs on their own; it returns how many were new.
func (s *Store) Add(ctx context.Context, follow []spool.FollowUp) (added int, err error) {
	err = s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		added, err = addFollowUps(ctx, tx, follow)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgspool: add follow-up jobs: %w", err)
	}
	if added > 0 {
		for _, f := range follow {
			s.wake(f.Job.Driver)
		}
	}
	return added, nil
}

const leaseJob = `
UPDATE jobs SET lease_holder = $2, lease_until = now() + $3 * interval '1 microsecond'
WHERE id = (
	SELECT id FROM jobs
	WHERE driver = $1 AND state = 'queued' AND due <= now() AND (lease_until IS NULL OR lease_until < now())
	ORDER BY due, id LIMIT 1
	FOR UPDATE SKIP LOCKED)
RETURNING id, job, attempt, due, last_error, category, (SELECT state FROM job_state WHERE job_id = jobs.id),
	ARRAY(SELECT name FROM documents d WHERE d.record_id = jobs.record_id ORDER BY idx),
	ARRAY(SELECT media_type FROM documents d WHERE d.record_id = jobs.record_id ORDER BY idx),
	ARRAY(SELECT data FROM documents d WHERE d.record_id = jobs.record_id ORDER BY idx)`

// Lease hands holder the earliest due job of driver that nobody holds,
// for ttl (by the database's clock). When none is due it returns when the
// earliest job nobody holds will be, on this gateway's clock (zero: none).
// A job whose lease ran out counts as held by nobody: a dead gateway's
// jobs come back to whichever worker asks next.
func (s *Store) Lease(ctx context.Context, driver, holder string, ttl time.Duration) (*spool.Entry, time.Time, error) {
	if s.closed.Load() {
		return nil, time.Time{}, spool.ErrClosed
	}
	for {
		var (
			id                string
			body, state       []byte
			attempt           int
			due               time.Time
			lastErr, category string
			names, types      []string
			data              [][]byte
		)
		err := s.leases.QueryRow(ctx, leaseJob, driver, s.holder(holder), ttl.Microseconds()).
			Scan(&id, &body, &attempt, &due, &lastErr, &category, &state, &names, &types, &data)
		if errors.Is(err, pgx.ErrNoRows) {
			var wait *float64
			err := s.leases.QueryRow(ctx, `SELECT EXTRACT(EPOCH FROM min(due) - now())::float8
				FROM jobs WHERE driver = $1 AND state = 'queued' AND (lease_until IS NULL OR lease_until < now())`, driver).Scan(&wait)
			if err != nil {
				return nil, time.Time{}, s.observe(fmt.Errorf("pgspool: lease a job of %s: %w", driver, err))
			}
			s.observe(nil)
			if wait == nil {
				return nil, time.Time{}, nil
			}
			return nil, time.Now().Add(max(0, time.Duration(*wait*float64(time.Second)))), nil
		}
		if err != nil {
			return nil, time.Time{}, s.observe(fmt.Errorf("pgspool: lease a job of %s: %w", driver, err))
		}
		e := &spool.Entry{Due: due, LastError: lastErr, Category: category}
		if err := decodeJob(id, body, attempt, state, &e.Job); err != nil {
			if err := s.quarantineJob(ctx, id, body, err); err != nil {
				return nil, time.Time{}, err
			}
			continue
		}
		if len(names) > 0 || len(e.Job.Record.Documents) > 0 {
			e.Job.Record.Documents = make([]linedriver.Document, len(names))
			for i := range names {
				e.Job.Record.Documents[i] = linedriver.Document{Name: names[i], MediaType: types[i], Data: data[i]}
			}
		}
		s.observe(nil)
		return e, time.Time{}, nil
	}
}

func decodeJob(id string, body []byte, attempt int, state []byte, j *linedriver.Job) error {
	if err := json.Unmarshal(body, j); err != nil {
		return fmt.Errorf("pgspool: job %s: %w: %v", id, spool.ErrCorrupt, err)
	}
	if j.ID != id {
		return fmt.Errorf("pgspool: job %s: %w: its body is job %q", id, spool.ErrCorrupt, j.ID)
	}
	j.Attempt = attempt
	if state != nil {
		j.State = json.RawMessage(state)
	}
	return nil
}

// loadDocuments fills j's documents with their bytes.
func loadDocuments(ctx context.Context, pool *pgxpool.Pool, rid string, j *linedriver.Job) error {
	rows, err := pool.Query(ctx, `SELECT idx, name, media_type, data FROM documents WHERE record_id = $1 ORDER BY idx`, rid)
	if err != nil {
		return err
	}
	var docs []linedriver.Document
	for rows.Next() {
		var i int
		var d linedriver.Document
		if err := rows.Scan(&i, &d.Name, &d.MediaType, &d.Data); err != nil {
			return err
		}
		docs = append(docs, d)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(docs) > 0 || len(j.Record.Documents) > 0 {
		j.Record.Documents = docs
	}
	return nil
}

// Renew extends holder's lease of job id by ttl from now.
func (s *Store) Renew(ctx context.Context, id, holder string, ttl time.Duration) error {
	if s.closed.Load() {
		return spool.ErrClosed
	}
	tag, err := s.leases.Exec(ctx, `UPDATE jobs SET lease_until = now() + $3 * interval '1 microsecond'
		WHERE id = $1 AND state = 'queued' AND lease_holder = $2 AND lease_until > now()`, id, s.holder(holder), ttl.Microseconds())
	if err != nil {
		return s.observe(fmt.Errorf("pgspool: renew the lease of %s: %w", id, err))
	}
	s.observe(nil)
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgspool: renew the lease of %s: %w", id, spool.ErrLeaseLost)
	}
	return nil
}

// dropJob deletes a job with its state and history, and its record's
// documents when no other job of the record is left.
const dropJob = `
WITH j AS (DELETE FROM jobs WHERE id = $1 RETURNING record_id),
s AS (DELETE FROM job_state WHERE job_id = $1),
h AS (DELETE FROM history WHERE job_id = $1)
DELETE FROM documents d WHERE d.record_id IN (SELECT record_id FROM j)
	AND NOT EXISTS (SELECT 1 FROM jobs x WHERE x.record_id = d.record_id AND x.id <> $1)`

// deliverJob is dropJob for the holder of a live lease only; it returns
// whether the job went.
const deliverJob = `
WITH j AS (DELETE FROM jobs WHERE id = $1 AND state = 'queued' AND lease_holder = $2 AND lease_until > now() RETURNING record_id),
s AS (DELETE FROM job_state WHERE job_id = $1 AND EXISTS (SELECT 1 FROM j)),
h AS (DELETE FROM history WHERE job_id = $1 AND EXISTS (SELECT 1 FROM j)),
d AS (DELETE FROM documents d WHERE d.record_id IN (SELECT record_id FROM j)
	AND NOT EXISTS (SELECT 1 FROM jobs x WHERE x.record_id = d.record_id AND x.id <> $1))
SELECT EXISTS (SELECT 1 FROM j)`

const appendHistory = `
WITH ins AS (INSERT INTO history (job_id, attempt) VALUES ($1, $2))
DELETE FROM history WHERE job_id = $1
	AND seq NOT IN (SELECT seq FROM history WHERE job_id = $1 ORDER BY seq DESC LIMIT $3)`

// Complete records the outcome of holder's attempt at job id and adds the
// follow-ups, in one transaction; the lease ends. ErrLeaseLost: holder's
// lease is not live (expired, taken, the job purged), nothing changed.
func (s *Store) Complete(ctx context.Context, id, holder string, o linedriver.Outcome, countAttempt bool, a *spool.Attempt, follow []spool.FollowUp) (added int, err error) {
	var hist []byte
	if a != nil {
		cp := *a
		if len(cp.Log) > spool.MaxLog {
			cp.Log = "…" + cp.Log[len(cp.Log)-spool.MaxLog:]
		}
		if hist, err = json.Marshal(&cp); err != nil {
			return 0, fmt.Errorf("pgspool: complete %s: %w", id, err)
		}
	}
	inc := 0
	if countAttempt {
		inc = 1
	}
	h := s.holder(holder)
	var driver string
	if o.Result == linedriver.Delivered && len(follow) == 0 {
		err = s.writeStmt(ctx, &stmt{sql: deliverJob, args: []any{id, h}, scan: func(row pgx.Row) error {
			var gone bool
			if err := row.Scan(&gone); err != nil {
				return err
			}
			if !gone {
				return spool.ErrLeaseLost
			}
			return nil
		}})
		if err != nil {
			return 0, fmt.Errorf("pgspool: complete %s: %w", id, err)
		}
		return 0, nil
	}
	err = s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		added = 0
		if o.Result == linedriver.Delivered {
			// One statement: the lease checked and the job gone with its
			// state, history and (when no other job of the record is
			// left) documents.
			var gone bool
			if err := tx.QueryRow(ctx, deliverJob, id, h).Scan(&gone); err != nil {
				return err
			}
			if !gone {
				return spool.ErrLeaseLost
			}
			added, err = addFollowUps(ctx, tx, follow)
			return err
		}
		if err := checkLease(ctx, tx, id, h, &driver); err != nil {
			return err
		}
		if hist != nil {
			if _, err := tx.Exec(ctx, appendHistory, id, hist, spool.MaxHistory-1); err != nil {
				return err
			}
		}
		switch o.Result {
		case linedriver.Permanent:
			if _, err := tx.Exec(ctx, `UPDATE jobs SET state = 'failed', attempt = attempt + $2, last_error = $3, category = $4,
				finished = now(), retrying = false, lease_holder = NULL, lease_until = NULL WHERE id = $1`,
				id, inc, o.Reason, o.Category); err != nil {
				return err
			}
		default:
			if _, err := tx.Exec(ctx, `UPDATE jobs SET attempt = attempt + $2, last_error = $3, category = $4,
				due = now() + $5 * interval '1 microsecond', retrying = true, lease_holder = NULL, lease_until = NULL WHERE id = $1`,
				id, inc, o.Reason, o.Category, o.RetryAfter.Microseconds()); err != nil {
				return err
			}
			if o.State != nil {
				if err := putState(ctx, tx, id, o.State); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `SELECT pg_notify('`+Channel+`', $1)`, driver); err != nil {
				return err
			}
		}
		added, err = addFollowUps(ctx, tx, follow)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgspool: complete %s: %w", id, err)
	}
	if o.Result == linedriver.Temporary {
		s.wake(driver)
	}
	if added > 0 {
		for _, f := range follow {
			s.wake(f.Job.Driver)
		}
	}
	return added, nil
}

// checkLease locks job id and checks that holder holds a live lease of it.
func checkLease(ctx context.Context, tx pgx.Tx, id, holder string, driver *string) error {
	var live bool
	err := tx.QueryRow(ctx, `SELECT driver, coalesce(lease_holder = $2 AND lease_until > now(), false)
		FROM jobs WHERE id = $1 AND state = 'queued' FOR UPDATE`, id, holder).Scan(driver, &live)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !live) {
		return spool.ErrLeaseLost
	}
	return err
}

func putState(ctx context.Context, tx pgx.Tx, id string, state json.RawMessage) error {
	_, err := tx.Exec(ctx, `INSERT INTO job_state (job_id, state) VALUES ($1, $2)
		ON CONFLICT (job_id) DO UPDATE SET state = excluded.state`, id, []byte(state))
	return err
}

// saveState writes a job's state if $2 holds a live lease of it, and
// returns whether it did.
const saveState = `
WITH j AS (SELECT id FROM jobs WHERE id = $1 AND state = 'queued' AND lease_holder = $2 AND lease_until > now() FOR UPDATE),
ins AS (INSERT INTO job_state (job_id, state) SELECT id, $3 FROM j
	ON CONFLICT (job_id) DO UPDATE SET state = excluded.state RETURNING 1)
SELECT EXISTS (SELECT 1 FROM ins)`

// SaveState keeps the driver's state of job id in the middle of holder's
// attempt: one small row, the job's row untouched.
func (s *Store) SaveState(ctx context.Context, id, holder string, state json.RawMessage) error {
	err := s.writeStmt(ctx, &stmt{sql: saveState, args: []any{id, s.holder(holder), []byte(state)}, scan: func(row pgx.Row) error {
		var saved bool
		if err := row.Scan(&saved); err != nil {
			return err
		}
		if !saved {
			return spool.ErrLeaseLost
		}
		return nil
	}})
	if err != nil {
		return fmt.Errorf("pgspool: save state of %s: %w", id, err)
	}
	return nil
}
