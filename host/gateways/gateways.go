// Package gateways is the registry of the gateways that share one
// PostgreSQL spool: each gateway keeps a row (name, when it started, its
// last heartbeat by the database's clock, the drivers it runs, the
// connectors it owns, its version) in the table mediagw_gateways
// (migration 101 of pgspool). `mediagw status` and the console list them;
// a gateway whose heartbeat is older than takeover_after is shown down, and
// a driver with queued jobs that no live gateway runs is named.
package gateways

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what the registry needs of a connection pool (*pgxpool.Pool).
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Gateway is one row of the registry.
type Gateway struct {
	Name       string    `json:"name"`
	Started    time.Time `json:"started"`
	Heartbeat  time.Time `json:"heartbeat"`
	Drivers    []string  `json:"drivers"`
	Connectors []string  `json:"connectors"` // owned now
	Version    string    `json:"version,omitempty"`
	// Down: no heartbeat for takeover_after (by the database's clock).
	Down bool `json:"down"`
}

// Running is what a gateway runs now: its drivers and the connectors it
// owns.
type Running func() (drivers, connectors []string)

// Registry keeps this gateway's row.
type Registry struct {
	db      DB
	name    string
	version string
	every   time.Duration
	running Running
	log     *slog.Logger
	kick    chan struct{}
}

// Kick writes the heartbeat now rather than at the next beat: what the
// gateway runs changed (it took or lost a connector).
func (r *Registry) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// New returns the registry entry of gateway name; it heartbeats every
// takeoverAfter/4 once Run.
func New(db DB, name, version string, takeoverAfter time.Duration, running Running, log *slog.Logger) *Registry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{db: db, name: name, version: version, every: max(takeoverAfter/4, 10*time.Millisecond), running: running,
		log: log.With("component", "gateways"), kick: make(chan struct{}, 1)}
}

const startSQL = `
INSERT INTO mediagw_gateways (name, started, heartbeat, drivers, connectors, version)
VALUES ($1, now(), now(), $2, $3, $4)
ON CONFLICT (name) DO UPDATE SET started = now(), heartbeat = now(), drivers = $2, connectors = $3, version = $4`

const beatSQL = `
UPDATE mediagw_gateways SET heartbeat = now(), drivers = $2, connectors = $3 WHERE name = $1`

// Run writes the gateway's row, then its heartbeat, until ctx ends. A
// database that cannot be reached is tried again at the next beat.
func (r *Registry) Run(ctx context.Context) {
	sql := startSQL
	failing := false
	for {
		d, c := r.running()
		d, c = sorted(d), sorted(c)
		args := []any{r.name, d, c}
		if sql == startSQL {
			args = append(args, r.version)
		}
		tag, err := r.db.Exec(ctx, sql, args...)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				r.log.Warn("gateway heartbeat not written; trying again", "error", err)
			}
			failing = true
		case tag.RowsAffected() == 0:
			sql = startSQL // the row went away (deleted by hand): write it again
			continue
		default:
			if failing {
				r.log.Info("gateway heartbeat written again")
			}
			failing = false
			sql = beatSQL
		}
		t := time.NewTimer(r.every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	if s == nil {
		s = []string{}
	}
	sort.Strings(s)
	return s
}

// List reads every gateway; one without a heartbeat for takeoverAfter is
// down, and owns no connector.
func List(ctx context.Context, db DB, takeoverAfter time.Duration) ([]Gateway, error) {
	rows, err := db.Query(ctx, `SELECT name, started, heartbeat, drivers, connectors, version,
       heartbeat < now() - $1 * interval '1 microsecond'
  FROM mediagw_gateways ORDER BY name`, takeoverAfter.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("gateways: list: %w", err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Gateway, error) {
		var g Gateway
		err := r.Scan(&g.Name, &g.Started, &g.Heartbeat, &g.Drivers, &g.Connectors, &g.Version, &g.Down)
		if g.Down {
			// What it owned at its last heartbeat is another's by now.
			g.Connectors = []string{}
		}
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("gateways: list: %w", err)
	}
	return gs, nil
}

// Unserved returns the drivers with queued jobs that no live gateway runs,
// sorted: their jobs wait until a gateway that runs them comes up.
func Unserved(queued map[string]int, gws []Gateway) []string {
	run := map[string]bool{}
	for _, g := range gws {
		if !g.Down {
			for _, d := range g.Drivers {
				run[d] = true
			}
		}
	}
	var out []string
	for d, n := range queued {
		if n > 0 && !run[d] {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}
