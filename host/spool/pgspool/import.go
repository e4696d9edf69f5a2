package pgspool

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/linedriver"
)

// ImportJob stores a job exported from another spool (a bbolt file) as it
// was: queued or failed, its due time, attempts, last error, state,
// documents and history. A job whose id is there already is left alone,
// so an import can run again. It reports whether the job was new.
func (s *Store) ImportJob(ctx context.Context, x *spool.Exported) (bool, error) {
	e := &x.Entry
	body, err := encodeJob(&e.Job)
	if err != nil {
		return false, fmt.Errorf("pgspool: import %s: %w", e.Job.ID, err)
	}
	var hist [][]byte
	for _, a := range x.History {
		b, err := json.Marshal(&a)
		if err != nil {
			return false, fmt.Errorf("pgspool: import %s: %w", e.Job.ID, err)
		}
		hist = append(hist, b)
	}
	state, finished := "queued", (*time.Time)(nil)
	if x.Failed {
		state, finished = "failed", &e.Finished
	}
	var added bool
	err = s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO jobs (id, driver, record_id, job, attempt, accepted, due, last_error, category, state, retrying, finished)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING`,
			e.Job.ID, e.Job.Driver, recordID(&e.Job), body, e.Job.Attempt, e.Job.Accepted, e.Due, e.LastError, e.Category, state, x.Retry, finished)
		if err != nil {
			return err
		}
		added = tag.RowsAffected() == 1
		if !added {
			return nil
		}
		for i, d := range e.Job.Record.Documents {
			data := d.Data
			if data == nil {
				data = []byte{}
			}
			if _, err := tx.Exec(ctx, `INSERT INTO documents (record_id, idx, name, media_type, data) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT DO NOTHING`, recordID(&e.Job), i, d.Name, d.MediaType, data); err != nil {
				return err
			}
		}
		if e.Job.State != nil {
			if err := putState(ctx, tx, e.Job.ID, e.Job.State); err != nil {
				return err
			}
		}
		for _, h := range hist {
			if _, err := tx.Exec(ctx, `INSERT INTO history (job_id, attempt) VALUES ($1, $2)`, e.Job.ID, h); err != nil {
				return err
			}
		}
		if !x.Failed {
			_, err = tx.Exec(ctx, `SELECT pg_notify('`+Channel+`', $1)`, e.Job.Driver)
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("pgspool: import %s: %w", e.Job.ID, err)
	}
	if added && !x.Failed {
		s.wakeDrivers([]*linedriver.Job{&e.Job})
	}
	return added, nil
}

// ImportSource remembers a source id taken by another spool (dedupe goes
// on across the move); one there already is left alone.
func (s *Store) ImportSource(ctx context.Context, src *spool.Source) (bool, error) {
	var added bool
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		jobs := src.Jobs
		if jobs == nil {
			jobs = []string{}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO sources (connector, source_id, accepted, jobs) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
			src.Connector, src.SourceID, src.Accepted, jobs)
		added = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("pgspool: import source id %s: %w", src.SourceID, err)
	}
	return added, nil
}
