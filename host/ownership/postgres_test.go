package ownership_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mediagw/mediagw/host/ownership"
	"github.com/mediagw/mediagw/host/spool/pgspool"
	"github.com/mediagw/mediagw/internal/pgtest"
	"github.com/mediagw/mediagw/internal/testenv"
)

// migrate brings the database at dsn to the schema of this release
// (pgspool's migrations; the leases are number 100).
func migrate(t testing.TB, dsn string) {
	t.Helper()
	p, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := pgspool.Migrate(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func pool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// cuttable is a database a test can cut off, as a dead or partitioned
// gateway would be.
type cuttable struct {
	ownership.DB
	cut atomic.Bool
}

var errCut = errors.New("cut off")

func (c *cuttable) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if c.cut.Load() {
		return pgconn.CommandTag{}, errCut
	}
	return c.DB.Exec(ctx, sql, args...)
}

func TestSingleAlwaysOwns(t *testing.T) {
	s := ownership.Single{Gateway: "gw"}
	l, err := s.Acquire(context.Background(), "mail")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
		t.Fatal("lost before release")
	default:
	}
	l.Release()
	l.Release()
	<-l.Lost()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Acquire(ctx, "mail"); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with an ended context: %v", err)
	}
}

func TestPostgresLease(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDB(t)
	migrate(t, dsn)
	db := pool(t, dsn)
	const takeover = 2 * time.Second
	ctx := context.Background()

	t.Run("one owner, takeover after it goes silent, and it stops first", func(t *testing.T) {
		cutA := &cuttable{DB: db}
		a := ownership.NewPostgres(cutA, ownership.Options{Gateway: "a", TakeoverAfter: takeover})
		b := ownership.NewPostgres(db, ownership.Options{Gateway: "b", TakeoverAfter: takeover})
		la, err := a.Acquire(ctx, "m1")
		if err != nil {
			t.Fatal(err)
		}
		// b waits while a renews: longer than a lease lasts.
		wctx, cancel := context.WithTimeout(ctx, 2*takeover)
		_, err = b.Acquire(wctx, "m1")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("b took a lease a renews: %v", err)
		}
		select {
		case <-la.Lost():
			t.Fatal("a lost a lease it renewed")
		default:
		}
		cutAt := time.Now()
		cutA.cut.Store(true)
		lost := make(chan time.Time, 1)
		go func() { <-la.Lost(); lost <- time.Now() }()
		lb, err := b.Acquire(ctx, "m1")
		if err != nil {
			t.Fatal(err)
		}
		tookAt := time.Now()
		defer lb.Release()
		select {
		case <-la.Lost():
		default:
			t.Fatal("b owns while a still reads")
		}
		lostAt := <-lost
		if d := tookAt.Sub(cutAt); d > takeover+takeover/2 {
			t.Fatalf("takeover took %v, want within %v", d, takeover)
		}
		if lb.Epoch != la.Epoch+1 {
			t.Fatalf("epochs: a %d, b %d", la.Epoch, lb.Epoch)
		}
		t.Logf("takeover %v after the owner went silent (takeover_after %v); it stopped %v before", tookAt.Sub(cutAt), takeover, tookAt.Sub(lostAt))
	})

	t.Run("release hands over at once", func(t *testing.T) {
		a := ownership.NewPostgres(db, ownership.Options{Gateway: "a", TakeoverAfter: takeover})
		b := ownership.NewPostgres(db, ownership.Options{Gateway: "b", TakeoverAfter: takeover})
		la, err := a.Acquire(ctx, "m2")
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan *ownership.Lease, 1)
		go func() {
			l, err := b.Acquire(ctx, "m2")
			if err != nil {
				t.Error(err)
			}
			got <- l
		}()
		start := time.Now()
		la.Release()
		<-la.Lost()
		lb := <-got
		defer lb.Release()
		if d := time.Since(start); d > takeover/2 {
			t.Fatalf("handover after release took %v", d)
		}
	})

	t.Run("a restarted gateway takes its own lease at once; the old run is fenced off", func(t *testing.T) {
		old := ownership.NewPostgres(db, ownership.Options{Gateway: "a", TakeoverAfter: takeover})
		l1, err := old.Acquire(ctx, "m3")
		if err != nil {
			t.Fatal(err)
		}
		again := ownership.NewPostgres(db, ownership.Options{Gateway: "a", TakeoverAfter: takeover})
		actx, cancel := context.WithTimeout(ctx, takeover/2)
		l2, err := again.Acquire(actx, "m3")
		cancel()
		if err != nil {
			t.Fatalf("restart did not take its own lease at once: %v", err)
		}
		defer l2.Release()
		if l2.Epoch != l1.Epoch+1 {
			t.Fatalf("epochs %d then %d", l1.Epoch, l2.Epoch)
		}
		testenv.Eventually(t, takeover, "the old run's lease lost", func() bool {
			select {
			case <-l1.Lost():
				return true
			default:
				return false
			}
		})
		if err := ownership.CheckFence(ctx, db, l1.Fence()); !errors.Is(err, ownership.ErrFenced) {
			t.Fatalf("old epoch's fence: %v", err)
		}
		if err := ownership.CheckFence(ctx, db, l2.Fence()); err != nil {
			t.Fatalf("current fence: %v", err)
		}
	})

	t.Run("a write holding the fence holds off a takeover", func(t *testing.T) {
		cutA := &cuttable{DB: db}
		a := ownership.NewPostgres(cutA, ownership.Options{Gateway: "a", TakeoverAfter: takeover})
		b := ownership.NewPostgres(db, ownership.Options{Gateway: "b", TakeoverAfter: takeover})
		la, err := a.Acquire(ctx, "m4")
		if err != nil {
			t.Fatal(err)
		}
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := ownership.CheckFence(ctx, tx, la.Fence()); err != nil {
			t.Fatal(err)
		}
		cutA.cut.Store(true)
		<-la.Lost()
		took := make(chan *ownership.Lease, 1)
		go func() {
			l, _ := b.Acquire(ctx, "m4")
			took <- l
		}()
		// The lease expires in the database while the transaction holds
		// its row: b cannot take it before the write commits.
		select {
		case <-took:
			t.Fatal("takeover while a fenced write was open")
		case <-time.After(takeover + takeover/2):
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		lb := <-took
		defer lb.Release()
		if err := ownership.CheckFence(ctx, db, la.Fence()); !errors.Is(err, ownership.ErrFenced) {
			t.Fatalf("fence after the takeover: %v", err)
		}
	})

	t.Run("leases lists owners", func(t *testing.T) {
		hs, err := ownership.Leases(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) != 4 {
			t.Fatalf("leases: %+v", hs)
		}
		for _, h := range hs {
			if h.Connector == "m3" && (h.Owner != "a" || h.Live) {
				t.Fatalf("m3 was released by a: %+v", h)
			}
		}
	})
}
