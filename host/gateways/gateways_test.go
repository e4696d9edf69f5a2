package gateways_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mediagw/mediagw/host/gateways"
	"github.com/mediagw/mediagw/host/spool/pgspool"
	"github.com/mediagw/mediagw/internal/pgtest"
	"github.com/mediagw/mediagw/internal/testenv"
)

func migrate(t testing.TB, db *pgxpool.Pool) {
	t.Helper()
	if _, err := pgspool.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
}

func TestRegistry(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDB(t)
	db, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	migrate(t, db)
	const takeover = time.Second

	var mu sync.Mutex
	owned := []string{}
	runA := func() ([]string, []string) {
		mu.Lock()
		defer mu.Unlock()
		return []string{"modem-a", "file"}, slices.Clone(owned)
	}
	runB := func() ([]string, []string) { return []string{"modem-b"}, nil }
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	var wg sync.WaitGroup
	for _, r := range []struct {
		ctx context.Context
		reg *gateways.Registry
	}{
		{ctxA, gateways.New(db, "a", "1.2", takeover, runA, nil)},
		{ctxB, gateways.New(db, "b", "1.2", takeover, runB, nil)},
	} {
		wg.Add(1)
		go func() { defer wg.Done(); r.reg.Run(r.ctx) }()
	}
	list := func() []gateways.Gateway {
		gs, err := gateways.List(context.Background(), db, takeover)
		if err != nil {
			t.Fatal(err)
		}
		return gs
	}
	testenv.Eventually(t, 10*time.Second, "both gateways listed", func() bool { return len(list()) == 2 })
	mu.Lock()
	owned = []string{"mail"}
	mu.Unlock()
	testenv.Eventually(t, 10*time.Second, "a's owned connector listed", func() bool {
		g := list()[0]
		return g.Name == "a" && slices.Equal(g.Connectors, []string{"mail"}) && slices.Equal(g.Drivers, []string{"file", "modem-a"}) && !g.Down
	})
	queued := map[string]int{"modem-a": 3, "modem-b": 2, "gone": 1, "idle": 0}
	if got := gateways.Unserved(queued, list()); !slices.Equal(got, []string{"gone"}) {
		t.Fatalf("unserved with both up: %v", got)
	}

	stopA()
	testenv.Eventually(t, 10*time.Second, "a shown down after takeover_after without a heartbeat, owning nothing", func() bool {
		gs := list()
		return gs[0].Down && len(gs[0].Connectors) == 0 && !gs[1].Down
	})
	if got := gateways.Unserved(queued, list()); !slices.Equal(got, []string{"gone", "modem-a"}) {
		t.Fatalf("unserved with a down: %v", got)
	}
	stopB()
	wg.Wait()
}
