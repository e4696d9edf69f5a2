package ownership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what the PostgreSQL owner needs of a connection pool
// (*pgxpool.Pool, *pgx.Conn).
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// DefaultTakeoverAfter is how long a connector whose owner died waits for
// another gateway, unless configured.
const DefaultTakeoverAfter = 15 * time.Second

// Options configure the PostgreSQL owner.
type Options struct {
	// Gateway is this gateway's name, unique among the gateways on the
	// database.
	Gateway string
	// TakeoverAfter bounds how long a connector stays unowned after its
	// owner died (default 15 s).
	TakeoverAfter time.Duration
	Log           *slog.Logger
}

// Postgres keeps leases in the table mediagw_leases (migration 100 of
// pgspool). The lease's expiry is the database's clock; the owner's own
// deadline to stop is its monotonic clock: a renewal sent at local time t
// keeps the lease until at least t+ttl on the database, so stopping at
// t+ttl-margin stops before it could expire, whatever the clocks read.
//
// The times follow from TakeoverAfter (T): the lease lasts ttl = 0.9 T; it
// is renewed every ttl/4; the owner stops reading when ttl/4 is left
// (having failed to renew twice); a gateway waiting for a lease tries every
// T/10. So a dead owner's connector is taken within ttl + T/10 = T.
type Postgres struct {
	db                      DB
	gateway                 string
	ttl, beat, margin, poll time.Duration
	log                     *slog.Logger
}

var _ Owner = (*Postgres)(nil)

// NewPostgres returns the owner of gateway o.Gateway on db, whose schema
// holds mediagw_leases.
func NewPostgres(db DB, o Options) *Postgres {
	t := o.TakeoverAfter
	if t <= 0 {
		t = DefaultTakeoverAfter
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ttl := t * 9 / 10
	return &Postgres{db: db, gateway: o.Gateway, ttl: ttl, beat: ttl / 4, margin: ttl / 4, poll: t / 10,
		log: log.With("component", "ownership")}
}

// TTL is how long one renewal keeps a lease on the database.
func (p *Postgres) TTL() time.Duration { return p.ttl }

const acquireSQL = `
INSERT INTO mediagw_leases AS l (connector, owner, epoch, acquired, expires)
VALUES ($1, $2, 1, now(), now() + $3 * interval '1 microsecond')
ON CONFLICT (connector) DO UPDATE
   SET owner = EXCLUDED.owner, epoch = l.epoch + 1, acquired = now(), expires = EXCLUDED.expires
 WHERE l.expires <= now() OR l.owner = EXCLUDED.owner
RETURNING epoch`

const renewSQL = `
UPDATE mediagw_leases SET expires = now() + $4 * interval '1 microsecond'
 WHERE connector = $1 AND owner = $2 AND epoch = $3`

const releaseSQL = `
UPDATE mediagw_leases SET expires = now()
 WHERE connector = $1 AND owner = $2 AND epoch = $3`

// Acquire takes the connector's lease when it is free, expired, or held
// by this gateway's name before (a restart of this gateway: the epoch
// grows, so the writes of a former run are fenced off), and otherwise tries
// again every TakeoverAfter/10 until ctx ends. An unreachable database is
// tried again the same way.
func (p *Postgres) Acquire(ctx context.Context, connector string) (*Lease, error) {
	logged := false
	for {
		start := time.Now()
		var epoch int64
		err := p.db.QueryRow(ctx, acquireSQL, connector, p.gateway, p.ttl.Microseconds()).Scan(&epoch)
		switch {
		case err == nil:
			l := &Lease{Connector: connector, Owner: p.gateway, Epoch: epoch, lost: make(chan struct{})}
			rel := make(chan chan struct{})
			l.release = func() {
				done := make(chan struct{})
				select {
				case rel <- done:
					<-done
				case <-l.lost:
				}
			}
			go p.hold(l, start.Add(p.ttl-p.margin), rel)
			p.log.Info("connector owned", "connector", connector, "epoch", epoch)
			return l, nil
		case errors.Is(err, pgx.ErrNoRows):
			// Held by another gateway.
		case ctx.Err() != nil:
			return nil, ctx.Err()
		default:
			if !logged {
				p.log.Warn("cannot reach the database to take a connector's lease; trying again", "connector", connector, "error", err)
				logged = true
			}
		}
		t := time.NewTimer(p.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// hold renews l until it is released, lost to another gateway, or its
// local deadline passes without a renewal.
func (p *Postgres) hold(l *Lease, deadline time.Time, rel chan chan struct{}) {
	log := p.log.With("connector", l.Connector, "epoch", l.Epoch)
	next := time.Now().Add(p.beat)
	for {
		wake := next
		if deadline.Before(wake) {
			wake = deadline
		}
		t := time.NewTimer(time.Until(wake))
		select {
		case done := <-rel:
			t.Stop()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := p.db.Exec(ctx, releaseSQL, l.Connector, l.Owner, l.Epoch)
			cancel()
			if err != nil {
				log.Warn("lease not handed back; it expires by itself", "error", err)
			} else {
				log.Info("connector released")
			}
			close(l.lost)
			close(done)
			return
		case <-t.C:
		}
		if !time.Now().Before(deadline) {
			log.Warn("lease not renewed in time: connector stopped before its lease could expire")
			close(l.lost)
			return
		}
		sent := time.Now()
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		tag, err := p.db.Exec(ctx, renewSQL, l.Connector, l.Owner, l.Epoch, p.ttl.Microseconds())
		cancel()
		switch {
		case err == nil && tag.RowsAffected() == 1:
			deadline, next = sent.Add(p.ttl-p.margin), sent.Add(p.beat)
		case err == nil:
			log.Warn("lease taken by another gateway: connector stopped")
			close(l.lost)
			return
		default:
			// Try again soon, until the deadline.
			log.Warn("lease renewal failed; trying again", "error", err, "stop_in", time.Until(deadline).Round(time.Millisecond).String())
			next = time.Now().Add(p.beat / 4)
		}
	}
}

// Holding is one row of the lease table.
type Holding struct {
	Connector string    `json:"connector"`
	Owner     string    `json:"owner"`
	Epoch     int64     `json:"epoch"`
	Acquired  time.Time `json:"acquired"`
	Expires   time.Time `json:"expires"`
	// Live: not expired by the database's clock.
	Live bool `json:"live"`
}

// Leases lists every connector's lease.
func Leases(ctx context.Context, db DB) ([]Holding, error) {
	rows, err := db.Query(ctx, `SELECT connector, owner, epoch, acquired, expires, expires > now() FROM mediagw_leases ORDER BY connector`)
	if err != nil {
		return nil, fmt.Errorf("ownership: list leases: %w", err)
	}
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Holding, error) {
		var h Holding
		err := r.Scan(&h.Connector, &h.Owner, &h.Epoch, &h.Acquired, &h.Expires, &h.Live)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("ownership: list leases: %w", err)
	}
	return hs, nil
}

// CheckFence returns nil when f's owner holds its connector's live lease at
// its epoch, and ErrFenced when not. Run inside a backend's write
// transaction, it locks the lease row (FOR SHARE) until the transaction
// ends, so a takeover waits for that write and the write sees no
// takeover: a write of a former owner commits before the takeover or not
// at all. It costs one primary-key lookup.
func CheckFence(ctx context.Context, tx DB, f Fence) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM mediagw_leases
 WHERE connector = $1 AND owner = $2 AND epoch = $3 AND expires > now() FOR SHARE`, f.Connector, f.Owner, f.Epoch).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: connector %s, gateway %s, epoch %d", ErrFenced, f.Connector, f.Owner, f.Epoch)
	}
	if err != nil {
		return fmt.Errorf("ownership: check lease: %w", err)
	}
	return nil
}
