package pgspool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// listen keeps a dedicated connection LISTENing on Channel and calls the
// wake hooks with each notification's driver. When the connection breaks
// (the database restarted, the network went) it reconnects with a growing
// pause and then wakes every driver with queued jobs, since notifications
// sent meanwhile are lost. While it cannot connect the store is degraded.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer s.listenWG.Done()
	pause := 50 * time.Millisecond
	down := false // the outage is reported once, not at every try
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, cfg, func() { pause, down = 50*time.Millisecond, false })
		if ctx.Err() != nil {
			return
		}
		if !down {
			down = true
			s.observe(fmt.Errorf("pgspool: listen for new jobs: %w", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	connected()
	s.observe(nil)
	// Whatever was notified while nobody listened: wake every driver that
	// has queued jobs.
	rows, err := conn.Query(ctx, `SELECT DISTINCT driver FROM jobs WHERE state = 'queued'`)
	if err != nil {
		return err
	}
	drivers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, d := range drivers {
		s.wake(d)
	}
	for {
		// A connection the network dropped without a word would wait
		// for ever: every listenPing without news it is pinged.
		wctx, cancel := context.WithTimeout(ctx, listenPing)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			s.wake(n.Payload)
		case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			pctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			s.pings.Add(1)
		default:
			return err
		}
	}
}

// listenPing is how long the listening connection may stay silent before
// it is pinged (a variable for the tests).
var listenPing = 30 * time.Second
