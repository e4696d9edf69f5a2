package pgspool

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema is a list of numbered SQL files, applied in order, each in its
// own transaction, and recorded in schema_migrations. Numbers below 100
// are the queue's; 100 and up are left to the tables of several gateways
// (gateways, mailbox leases).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one numbered step of the schema.
type Migration struct {
	Version int
	Name    string
	sql     string
	// Applied is when it was applied (zero: not yet).
	Applied time.Time
}

// ErrSchemaTooNew is returned when the database's schema is newer than
// this gateway knows: it was migrated by a later release.
var ErrSchemaTooNew = errors.New("pgspool: the database's schema is newer than this gateway")

// ErrSchemaBehind is returned by Open, without Migrate, when migrations are
// pending: run `mediagw spool migrate`.
var ErrSchemaBehind = errors.New("pgspool: the database's schema is behind this gateway (run mediagw spool migrate)")

// migrationLock is the advisory lock key that serializes migrations of
// gateways starting at once ("mediagw" in ASCII).
const migrationLock = 0x6d65646961677700

// migrations lists the embedded migrations in order.
func migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("pgspool: migration file %s is not named NNN_name.sql", name)
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: rest, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("pgspool: two migrations numbered %d", out[i].Version)
		}
	}
	return out, nil
}

// Latest is the schema version this gateway's code knows.
func Latest() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version int PRIMARY KEY,
	name    text NOT NULL,
	applied timestamptz NOT NULL DEFAULT now())`

// applied reads the versions recorded in schema_migrations (none when the
// table is missing).
func applied(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) (map[int]time.Time, error) {
	rows, err := q.Query(ctx, `SELECT version, applied FROM schema_migrations`)
	if err != nil {
		var missing bool
		if pgErr := pgError(err); pgErr != nil && pgErr.Code == "42P01" { // undefined_table
			missing = true
		}
		if missing {
			return map[int]time.Time{}, nil
		}
		return nil, err
	}
	out := map[int]time.Time{}
	for rows.Next() {
		var v int
		var at time.Time
		if err := rows.Scan(&v, &at); err != nil {
			return nil, err
		}
		out[v] = at
	}
	return out, rows.Err()
}

// Status lists the migrations this gateway knows, with when each was
// applied to the database, and the versions the database has that this
// gateway does not know (a newer release migrated it).
func Status(ctx context.Context, pool *pgxpool.Pool) (known []Migration, unknown []int, err error) {
	ms, err := migrations()
	if err != nil {
		return nil, nil, err
	}
	done, err := applied(ctx, pool)
	if err != nil {
		return nil, nil, fmt.Errorf("pgspool: read schema_migrations: %w", err)
	}
	for i := range ms {
		ms[i].Applied = done[ms[i].Version]
		delete(done, ms[i].Version)
	}
	for v := range done {
		unknown = append(unknown, v)
	}
	sort.Ints(unknown)
	return ms, unknown, nil
}

// Migrate applies the pending migrations in order, each in one
// transaction, under an advisory lock so that gateways starting at once
// do not race. It refuses a database whose schema is newer than the code
// (ErrSchemaTooNew) and returns the migrations it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]Migration, error) {
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("pgspool: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return nil, fmt.Errorf("pgspool: migrate: take the migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock)) //nolint:errcheck // the lock goes with the session anyway
	if _, err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("pgspool: migrate: create schema_migrations: %w", err)
	}
	done, err := applied(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("pgspool: migrate: read schema_migrations: %w", err)
	}
	if err := checkNotNewer(ms, done); err != nil {
		return nil, err
	}
	var out []Migration
	for _, m := range ms {
		if _, ok := done[m.Version]; ok {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return out, fmt.Errorf("pgspool: migration %03d_%s: %w", m.Version, m.Name, err)
		}
		m.Applied = time.Now()
		out = append(out, m)
	}
	return out, nil
}

func checkNotNewer(ms []Migration, done map[int]time.Time) error {
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].Version
	}
	highest := 0
	for v := range done {
		highest = max(highest, v)
	}
	if highest > latest {
		return fmt.Errorf("%w: the database is at version %d, this gateway knows up to %d", ErrSchemaTooNew, highest, latest)
	}
	return nil
}

// checkSchema is Open's check without Migrate: every migration applied,
// none unknown.
func checkSchema(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	done, err := applied(ctx, pool)
	if err != nil {
		return fmt.Errorf("pgspool: read schema_migrations: %w", err)
	}
	if err := checkNotNewer(ms, done); err != nil {
		return err
	}
	var pending []string
	for _, m := range ms {
		if _, ok := done[m.Version]; !ok {
			pending = append(pending, fmt.Sprintf("%03d_%s", m.Version, m.Name))
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w: pending %s", ErrSchemaBehind, strings.Join(pending, ", "))
	}
	return nil
}

// Connect opens a pool on the database of cfg and checks that it answers
// (for the operator's commands, which need no store).
func Connect(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	pc, err := PoolConfig(cfg)
	if err != nil {
		return nil, err
	}
	return connect(ctx, pc, cfg.DSN)
}

// connect opens a pool of pc and pings it; its errors name the database
// of dsn without the password.
func connect(ctx context.Context, pc *pgxpool.Config, dsn string) (*pgxpool.Pool, error) {
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err == nil {
		err = pool.Ping(ctx)
		if err != nil {
			pool.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pgspool: connect to %s: %w", Redact(dsn), redactErr(err, dsn))
	}
	return pool, nil
}
