package pgspool

import (
	"testing"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/host/spool/spooltest"
	"github.com/mediagw/mediagw/internal/pgtest"
)

// testStore is the store with the conformance test's hooks.
type testStore struct {
	*Store
	dsn string
}

// Corrupt makes a queued job's row undecodable, as a bad write or a hand
// edit would.
func (s testStore) Corrupt(t *testing.T, id string) {
	t.Helper()
	if _, err := s.pool.Exec(t.Context(), `UPDATE jobs SET job = convert_to('{not json', 'UTF8') WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
}

// Reopen closes the store and opens the database again.
func (s testStore) Reopen(t *testing.T) spool.Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return testStore{open(t, s.dsn, "gw"), s.dsn}
}

// TestConformance runs the spool.Store contract on PostgreSQL: one
// private cluster, a new database per case.
func TestConformance(t *testing.T) {
	srv := pgtest.Start(t)
	spooltest.Run(t, func(t *testing.T) spool.Store {
		dsn := srv.NewDB(t)
		return testStore{open(t, dsn, "gw"), dsn}
	})
}
