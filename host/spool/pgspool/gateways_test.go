package pgspool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/internal/pgtest"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
)

// Two gateways on one database accept the same source ids at once, from
// several goroutines each: every source id is taken exactly once.
func TestDedupeAcrossGateways(t *testing.T) {
	_, _, dsn := newStore(t)
	gws := []*Store{open(t, dsn, "a"), open(t, dsn, "b")}
	ctx := ctxT(t)
	const n = 200
	var taken [n]atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		s := gws[g%2]
		wg.Go(func() {
			for _, i := range rand.Perm(n) {
				id := fmt.Sprintf("m%d-%d.fax", i, g)
				dup, err := s.Accept(ctx, "inbox", fmt.Sprintf("imap:1:%d", i), []*linedriver.Job{job(id, "fax", "body")})
				if err != nil {
					errs <- err
					return
				}
				if !dup {
					taken[i].Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range taken {
		if c := taken[i].Load(); c != 1 {
			t.Errorf("source id imap:1:%d taken %d times, want once", i, c)
		}
	}
	st, err := gws[0].Stats(ctx)
	if err != nil || st.Queued["fax"] != n || st.Sources != n {
		t.Fatalf("Stats = %+v, %v; want %d queued, %d source ids", st, err, n, n)
	}
	cs := gws[0].CommitStats()
	cs2 := gws[1].CommitStats()
	t.Logf("accepts per commit: %.1f (a), %.1f (b)", float64(cs.Writes)/float64(cs.Commits), float64(cs2.Writes)/float64(cs2.Commits))
}

// Workers of two gateways lease one queue at once: no job is held by two
// at a time, every job is delivered once.
func TestLeaseExclusiveAcrossGateways(t *testing.T) {
	_, _, dsn := newStore(t)
	gws := []*Store{open(t, dsn, "a"), open(t, dsn, "b")}
	ctx := ctxT(t)
	const n = 300
	for i := range n {
		if _, err := gws[0].Accept(ctx, "inbox", fmt.Sprintf("s%d", i), []*linedriver.Job{job(fmt.Sprintf("j%03d.fax", i), "fax")}); err != nil {
			t.Fatal(err)
		}
	}
	var held sync.Map // job id → holder, while held
	var delivered sync.Map
	var count atomic.Int32
	var wg sync.WaitGroup
	for w := range 8 {
		s, holder := gws[w%2], fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for {
				e, next, err := s.Lease(ctx, "fax", holder, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if e == nil {
					if next.IsZero() {
						return
					}
					continue // another worker holds the last ones
				}
				if other, loaded := held.LoadOrStore(e.Job.ID, holder); loaded {
					t.Errorf("%s leased by %s while %v held it", e.Job.ID, holder, other)
				}
				held.Delete(e.Job.ID)
				if _, err := s.Complete(ctx, e.Job.ID, holder, linedriver.Done(nil), true, nil, nil); err != nil {
					t.Error(err)
					return
				}
				if _, again := delivered.LoadOrStore(e.Job.ID, true); again {
					t.Errorf("%s delivered twice", e.Job.ID)
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	if c := count.Load(); c != n {
		t.Fatalf("delivered %d jobs, want %d", c, n)
	}
}

// A dead holder's job comes back when its lease ends; the late holder's
// outcome and renewal are refused and change nothing.
func TestLeaseExpires(t *testing.T) {
	_, _, dsn := newStore(t)
	a, b := open(t, dsn, "a"), open(t, dsn, "b")
	ctx := ctxT(t)
	if _, err := a.Accept(ctx, "inbox", "s1", []*linedriver.Job{job("j1.fax", "fax")}); err != nil {
		t.Fatal(err)
	}
	e, _, err := a.Lease(ctx, "fax", "w", 300*time.Millisecond)
	if err != nil || e == nil {
		t.Fatalf("Lease = %v, %v", e, err)
	}
	if e2, _, err := b.Lease(ctx, "fax", "w", time.Minute); err != nil || e2 != nil {
		t.Fatalf("Lease of a held job by another gateway = %v, %v", e2, err)
	}
	// The same holder name on another gateway is another holder.
	if err := b.SaveState(ctx, "j1.fax", "w", []byte(`{}`)); !errors.Is(err, spool.ErrLeaseLost) {
		t.Fatalf("SaveState by gateway b = %v, want ErrLeaseLost", err)
	}
	var got *spool.Entry
	testenv.Eventually(t, 10*time.Second, "the expired lease's job to be leased again", func() bool {
		got, _, err = b.Lease(ctx, "fax", "w", time.Minute)
		return err != nil || got != nil
	})
	if err != nil || got.Job.ID != "j1.fax" {
		t.Fatalf("Lease after expiry = %+v, %v", got, err)
	}
	if err := a.Renew(ctx, "j1.fax", "w", time.Minute); !errors.Is(err, spool.ErrLeaseLost) {
		t.Fatalf("Renew by the old holder = %v, want ErrLeaseLost", err)
	}
	if _, err := a.Complete(ctx, "j1.fax", "w", linedriver.Done(nil), true, nil, nil); !errors.Is(err, spool.ErrLeaseLost) {
		t.Fatalf("Complete by the old holder = %v, want ErrLeaseLost", err)
	}
	if err := b.Renew(ctx, "j1.fax", "w", time.Minute); err != nil {
		t.Fatalf("Renew by the holder: %v", err)
	}
	if err := b.Purge(ctx, "j1.fax"); !errors.Is(err, spool.ErrActive) {
		t.Fatalf("Purge of a leased job = %v, want ErrActive", err)
	}
	if _, err := b.Complete(ctx, "j1.fax", "w", linedriver.Done(nil), true, nil, nil); err != nil {
		t.Fatalf("Complete by the holder: %v", err)
	}
}

// A job accepted by one gateway wakes the idle workers of the other, also
// after the listening connection was silent and pinged.
func TestWakeAcrossGateways(t *testing.T) {
	was := listenPing
	t.Cleanup(func() { listenPing = was }) // after the stores closed
	listenPing = 50 * time.Millisecond
	_, _, dsn := newStore(t)
	a, b := open(t, dsn, "a"), open(t, dsn, "b")
	testenv.Eventually(t, 10*time.Second, "two pings of b's silent listening connection", func() bool { return b.pings.Load() >= 2 })
	woke := make(chan string, 16)
	b.Wake(func(d string) {
		select {
		case woke <- d:
		default:
		}
	})
	if _, err := a.Accept(ctxT(t), "inbox", "s1", []*linedriver.Job{job("j1.fax", "fax")}); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-woke:
		if d != "fax" {
			t.Fatalf("woken for %q, want fax", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gateway b was not woken within 10 s by a job accepted on a")
	}
}

// PostgreSQL crashes and comes back in the middle of a run: accepts that
// failed are retried by the caller (as the host's intake does, by not
// acking), the store is degraded meanwhile and healthy after, the listener
// reconnects, and nothing is lost or taken twice.
func TestPostgresRestartMidRun(t *testing.T) {
	s, srv, dsn := newStore(t)
	b := open(t, dsn, "b")
	var mu sync.Mutex
	var changes []string
	s.OnHealthChange(func(_, h spool.Health) {
		mu.Lock()
		changes = append(changes, h.Health)
		mu.Unlock()
	})
	ctx := ctxT(t)
	const n = 300
	var failures atomic.Int32
	done := make(chan error, 1)
	restartAt := make(chan struct{})
	go func() {
		for i := range n {
			if i == n/3 {
				close(restartAt)
			}
			for {
				c, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := s.Accept(c, "inbox", fmt.Sprintf("s%d", i), []*linedriver.Job{job(fmt.Sprintf("j%03d.fax", i), "fax", "x")})
				cancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					done <- err
					return
				}
				s.Deferred(err)
				failures.Add(1)
				select {
				case <-time.After(20 * time.Millisecond): // the source offers the mail again
				case <-ctx.Done():
				}
			}
		}
		done <- nil
	}()
	<-restartAt
	srv.Restart(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("accepts refused during the restart and retried: %d", failures.Load())
	st, err := s.Stats(ctx)
	if err != nil || st.Queued["fax"] != n || st.Sources != n {
		t.Fatalf("after the restart: %+v, %v; want %d jobs", st, err, n)
	}
	if failures.Load() > 0 {
		mu.Lock()
		got := strings.Join(changes, ",")
		mu.Unlock()
		if !strings.HasPrefix(got, "degraded") || !strings.HasSuffix(got, "healthy") {
			t.Errorf("health changes = %s; want degraded, then healthy", got)
		}
	}
	if h := s.Health(); h.Health != spool.Healthy {
		t.Errorf("health after the restart = %+v", h)
	}
	// b's listener is back: a job accepted now wakes it.
	woke := make(chan string, 1024)
	b.Wake(func(d string) {
		select {
		case woke <- d:
		default:
		}
	})
	testenv.Eventually(t, 20*time.Second, "gateway b to be woken after the restart", func() bool {
		_, _ = s.Accept(ctx, "inbox", fmt.Sprintf("late-%d", time.Now().UnixNano()), []*linedriver.Job{job(fmt.Sprintf("late%d.fax", time.Now().UnixNano()), "fax")})
		select {
		case <-woke:
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
}

// While the database is down every call fails fast with an error that
// says so, and the store is degraded with that error.
func TestDatabaseDown(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDB(t)
	s, err := Open(context.Background(), Config{DSN: dsn, Gateway: "a", Migrate: true, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv.Stop()
	ctx := ctxT(t)
	start := time.Now()
	for i := range 3 { // the pool's idle connections are found dead, then new ones refused
		_, err = s.Accept(ctx, "inbox", fmt.Sprintf("s%d", i), []*linedriver.Job{job(fmt.Sprintf("j%d.fax", i), "fax")})
		if err == nil {
			t.Fatal("Accept succeeded with the database down")
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("three Accepts with the database down took %v", d)
	}
	if _, _, err := s.Lease(ctx, "fax", "w", time.Minute); err == nil {
		t.Fatal("Lease succeeded with the database down")
	}
	if h := s.Health(); h.Health != spool.Degraded || h.LastError == "" {
		t.Fatalf("Health with the database down = %+v", h)
	}
	t.Logf("Accept with the database down: %v", err)
}

func TestMigrations(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := ctxT(t)
	t.Run("without migrate a new database is refused", func(t *testing.T) {
		_, err := Open(ctx, Config{DSN: srv.NewDB(t)})
		if !errors.Is(err, ErrSchemaBehind) {
			t.Fatalf("Open = %v, want ErrSchemaBehind", err)
		}
	})
	t.Run("gateways starting at once migrate once", func(t *testing.T) {
		dsn := srv.NewDB(t)
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				s, err := Open(ctx, Config{DSN: dsn, Gateway: fmt.Sprint(i), Migrate: true})
				if err != nil {
					t.Error(err)
					return
				}
				s.Close()
			})
		}
		wg.Wait()
		s := open(t, dsn, "x")
		known, unknown, err := Status(ctx, s.Pool())
		if err != nil || len(unknown) != 0 {
			t.Fatalf("Status = %v, %v, %v", known, unknown, err)
		}
		for _, m := range known {
			if m.Applied.IsZero() {
				t.Errorf("migration %d not applied", m.Version)
			}
		}
		var rows int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != len(known) {
			t.Fatalf("schema_migrations has %d rows (%v), want %d", rows, err, len(known))
		}
	})
	t.Run("a newer schema is refused, naming both versions", func(t *testing.T) {
		dsn := srv.NewDB(t)
		s := open(t, dsn, "x")
		if _, err := s.pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (999, 'future')`); err != nil {
			t.Fatal(err)
		}
		for _, migrate := range []bool{false, true} {
			_, err := Open(ctx, Config{DSN: dsn, Migrate: migrate})
			if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "999") || !strings.Contains(err.Error(), fmt.Sprint(Latest())) {
				t.Fatalf("Open (migrate %v) = %v, want ErrSchemaTooNew naming 999 and %d", migrate, err, Latest())
			}
		}
	})
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://gw:s3cret@db.example:5432/mediagw?sslmode=verify-full", "postgres://gw:xxxxx@db.example:5432/mediagw?sslmode=verify-full"},
		{"postgres://gw@db.example/mediagw?password=s3cret", "postgres://gw@db.example/mediagw?password=xxxxx"},
		{"host=db user=gw password=s3cret dbname=mediagw", "host=db user=gw password=xxxxx dbname=mediagw"},
		{"postgres://gw@db.example/mediagw", "postgres://gw@db.example/mediagw"},
		// libpq's key=value form allows blanks around '=' and quoted values.
		{"host=db password = s3cret user=gw", "host=db password=xxxxx user=gw"},
		{`host=db password='my s3cret \'pw' user=gw`, "host=db password=xxxxx user=gw"},
		{"host=db sslpassword=s3cret sslkey=k.pem", "host=db sslpassword=xxxxx sslkey=k.pem"},
		{"postgres://gw@db.example/mediagw?sslpassword=s3cret", "postgres://gw@db.example/mediagw?sslpassword=xxxxx"},
	} {
		if got := Redact(tc.dsn); got != tc.want || strings.Contains(got, "s3cret") {
			t.Errorf("Redact(%q) = %q, want %q", tc.dsn, got, tc.want)
		}
	}
	for _, tc := range []struct{ dsn, want string }{
		{"host=db password = s3cret", "s3cret"},
		{`host=db password='my s3cret \'pw'`, "my s3cret 'pw"},
		{"postgres://gw:s3cret@db/x", "s3cret"},
		{"host=db user=gw", ""},
	} {
		if got := password(tc.dsn); got != tc.want {
			t.Errorf("password(%q) = %q, want %q", tc.dsn, got, tc.want)
		}
	}
	// A DSN that does not parse: the error shows no password.
	_, err := Open(context.Background(), Config{DSN: "postgres://gw:s3cret@db.example:notaport/x"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open with a bad DSN = %v", err)
	}
	// An unreachable database: neither.
	_, err = Open(context.Background(), Config{DSN: "postgres://gw:s3cret@127.0.0.1:1/x?sslmode=disable", ConnectTimeout: time.Second})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open of an unreachable database = %v", err)
	}
	// The operator's commands connect the same way: the error names the
	// database, without the password.
	pool, err := Connect(context.Background(), Config{DSN: "postgres://gw:s3cret@127.0.0.1:1/x?sslmode=disable", ConnectTimeout: time.Second})
	if err == nil {
		pool.Close()
	}
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "connect to postgres://gw:xxxxx@127.0.0.1:1/x") {
		t.Fatalf("Connect to an unreachable database = %v", err)
	}
}
