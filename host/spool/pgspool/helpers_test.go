package pgspool

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/pgtest"
	"github.com/mediagw/mediagw/linedriver"
)

// open opens a store on dsn as gateway gw, closed when t ends.
func open(t testing.TB, dsn, gw string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{DSN: dsn, Gateway: gw, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newStore starts a private cluster and opens a store on a new database.
func newStore(t testing.TB) (*Store, *pgtest.Server, string) {
	t.Helper()
	srv := pgtest.Start(t)
	dsn := srv.NewDB(t)
	return open(t, dsn, "gw1"), srv, dsn
}

func job(id, driver string, docs ...string) *linedriver.Job {
	j := &linedriver.Job{ID: id, Driver: driver, Accepted: time.Now(),
		Record: linedriver.Record{ID: "rec-" + id, SourceID: "src-" + id, Connector: "inbox", Fields: map[string]string{"k": id}}}
	for i, d := range docs {
		j.Record.Documents = append(j.Record.Documents, linedriver.Document{Name: fmt.Sprintf("doc%d.txt", i), MediaType: "text/plain", Data: []byte(d)})
	}
	return j
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
