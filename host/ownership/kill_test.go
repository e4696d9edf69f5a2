package ownership_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mediagw/mediagw/host/ownership"
	"github.com/mediagw/mediagw/internal/pgtest"
)

// TestOwnerHelperProcess is a gateway that only owns: started by
// runKills, it takes the lease of connector "mail", prints OWN <epoch>
// <unix ns> when it has it and LOST <epoch> <unix ns> when it stops, and
// tries again, until it is killed.
func TestOwnerHelperProcess(t *testing.T) {
	dsn := os.Getenv("OWNERSHIP_HELPER_DSN")
	if dsn == "" {
		t.Skip("run by runKills")
	}
	takeover, _ := time.ParseDuration(os.Getenv("OWNERSHIP_HELPER_TAKEOVER"))
	db, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		fmt.Println("E", err)
		os.Exit(1)
	}
	o := ownership.NewPostgres(db, ownership.Options{Gateway: os.Getenv("OWNERSHIP_HELPER_NAME"), TakeoverAfter: takeover})
	for {
		l, err := o.Acquire(context.Background(), "mail")
		if err != nil {
			fmt.Println("E", err)
			os.Exit(1)
		}
		fmt.Println("OWN", l.Epoch, time.Now().UnixNano())
		<-l.Lost()
		fmt.Println("LOST", l.Epoch, time.Now().UnixNano())
	}
}

type ownEvent struct {
	gw    string
	proc  int    // which process of gw (each start is a new one)
	kind  string // OWN, LOST, E
	epoch int64
	at    time.Time
}

// interval is one holding of the lease: from OWN to LOST, or to the kill.
type interval struct {
	gw         string
	epoch      int64
	start, end time.Time
}

// runKills runs two owner processes, a and b, on one database and kills
// one of them with SIGKILL rounds times (the owner in most rounds, which
// measures the takeover; the waiting one otherwise), restarting it after;
// with restartPG the server crashes and restarts once, half way. It fails
// when the two ever held the lease at once and returns the takeover times
// (kill of the owner → the other owns).
func runKills(t testing.TB, rounds int, takeover time.Duration, restartPG bool) []time.Duration {
	srv := pgtest.Start(t)
	dsn := srv.NewDB(t)
	migrate(t, dsn)

	events := make(chan ownEvent, 64)
	procs := map[string]*exec.Cmd{}
	gen := map[string]int{} // gateway → its current process
	nprocs := 0
	var wg sync.WaitGroup
	start := func(gw string) {
		nprocs++
		proc := nprocs
		gen[gw] = proc
		cmd := exec.Command(os.Args[0], "-test.run=^TestOwnerHelperProcess$")
		cmd.Env = append(os.Environ(), "OWNERSHIP_HELPER_DSN="+dsn, "OWNERSHIP_HELPER_NAME="+gw,
			"OWNERSHIP_HELPER_TAKEOVER="+takeover.String())
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[gw] = cmd
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 3 && (f[0] == "OWN" || f[0] == "LOST") {
					epoch, _ := strconv.ParseInt(f[1], 10, 64)
					ns, _ := strconv.ParseInt(f[2], 10, 64)
					events <- ownEvent{gw: gw, proc: proc, kind: f[0], epoch: epoch, at: time.Unix(0, ns)}
				} else if len(f) > 0 && f[0] == "E" {
					events <- ownEvent{gw: gw, proc: proc, kind: "E", at: time.Now()}
				}
			}
			cmd.Wait()
		}()
	}
	defer func() {
		for _, c := range procs {
			c.Process.Kill()
		}
		wg.Wait()
	}()

	// Each holding is keyed by process and epoch; it ends at its LOST, or
	// at its process's kill. Events reach the test late (two pipes, one
	// channel), so the holdings are reckoned from the processes' own
	// times and the kill times, not from the order the test sees them in.
	type key struct {
		proc  int
		epoch int64
	}
	spans := map[key]*interval{}
	killedAt := map[int]time.Time{} // process → when it was killed
	open := map[string]key{}        // gateway → its holding now, as far as seen
	var takeovers []time.Duration
	handle := func(e ownEvent) {
		k := key{e.proc, e.epoch}
		switch e.kind {
		case "E":
			t.Fatalf("owner %s failed", e.gw)
		case "OWN":
			spans[k] = &interval{gw: e.gw, epoch: e.epoch, start: e.at}
			if e.proc == gen[e.gw] {
				open[e.gw] = k
			}
		case "LOST":
			if iv := spans[k]; iv != nil {
				iv.end = e.at
			}
			if open[e.gw] == k {
				delete(open, e.gw)
			}
		}
	}
	// drain handles the events already sent.
	drainNow := func() {
		for {
			select {
			case e := <-events:
				handle(e)
			default:
				return
			}
		}
	}
	// await handles events until one satisfies cond.
	await := func(what string, within time.Duration, cond func(ownEvent) bool) ownEvent {
		t.Helper()
		timer := time.NewTimer(within)
		defer timer.Stop()
		for {
			select {
			case e := <-events:
				handle(e)
				if cond(e) {
					return e
				}
			case <-timer.C:
				t.Fatalf("%s: not within %v", what, within)
			}
		}
	}
	start("a")
	start("b")
	await("first owner", 10*takeover, func(e ownEvent) bool { return e.kind == "OWN" })
	pgRestarted := false
	for r := 0; r < rounds; r++ {
		// Let it run a random while, taking any events.
		pause := time.NewTimer(time.Duration(rand.Int64N(int64(takeover))))
	drain:
		for {
			select {
			case e := <-events:
				handle(e)
			case <-pause.C:
				break drain
			}
		}
		if restartPG && !pgRestarted && r >= rounds/2 {
			pgRestarted = true
			srv.Restart(true)
			t.Logf("round %d: PostgreSQL crashed and restarted", r)
		}
		drainNow()
		var owner string
		for gw := range open {
			owner = gw
		}
		victim := owner
		if owner == "" || rand.IntN(4) == 0 {
			victim = []string{"a", "b"}[rand.IntN(2)]
		}
		other := map[string]string{"a": "b", "b": "a"}[victim]
		procs[victim].Process.Kill()
		kt := time.Now()
		killedAt[gen[victim]] = kt
		gen[victim] = 0 // dead until started again
		delete(open, victim)
		if victim == owner {
			e := await("takeover by "+other, 5*takeover, func(e ownEvent) bool { return e.kind == "OWN" && e.gw == other })
			takeovers = append(takeovers, e.at.Sub(kt))
		}
		start(victim)
	}
	// End both, and take every event they printed.
	for gw, c := range procs {
		c.Process.Kill()
		killedAt[gen[gw]] = time.Now()
	}
	exited := make(chan struct{})
	go func() { wg.Wait(); close(exited) }()
	for waiting := true; waiting; {
		select {
		case e := <-events:
			handle(e)
		case <-exited:
			drainNow()
			waiting = false
		}
	}
	now := time.Now()
	var held []*interval
	for k, iv := range spans {
		if kt, ok := killedAt[k.proc]; ok && (iv.end.IsZero() || iv.end.After(kt)) {
			iv.end = kt
		}
		if iv.end.IsZero() {
			iv.end = now
		}
		held = append(held, iv)
	}
	slices.SortFunc(held, func(x, y *interval) int { return x.start.Compare(y.start) })
	for i := 1; i < len(held); i++ {
		p, c := held[i-1], held[i]
		if c.start.Before(p.end) {
			t.Fatalf("two owners at once: %s (epoch %d) %v–%v and %s (epoch %d) from %v",
				p.gw, p.epoch, p.start.Format(time.StampMicro), p.end.Format(time.StampMicro), c.gw, c.epoch, c.start.Format(time.StampMicro))
		}
		if c.epoch <= p.epoch {
			t.Fatalf("epoch did not grow: %d then %d", p.epoch, c.epoch)
		}
	}
	if restartPG && !pgRestarted {
		t.Fatal("PostgreSQL was not restarted")
	}
	return takeovers
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// TestKillOwners: two owner processes killed with SIGKILL at random points
// and restarted, PostgreSQL crashed once: never two owners at once, and
// the lease is taken over within takeover_after.
func TestKillOwners(t *testing.T) {
	rounds := 8
	if testing.Short() {
		rounds = 4
	}
	if s := os.Getenv("MEDIAGW_HA_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("MEDIAGW_HA_ROUNDS=%q: want a whole number of rounds above 0", s)
		}
		rounds = n
	}
	const takeover = 2 * time.Second
	ts := runKills(t, rounds, takeover, true)
	if len(ts) == 0 {
		t.Fatal("no takeover measured")
	}
	for _, d := range ts {
		// The bound plus the time a loaded machine takes to run a query.
		if d > takeover+takeover/2 {
			t.Errorf("takeover took %v, takeover_after is %v", d, takeover)
		}
	}
	t.Logf("takeover after kill -9: %d takeovers, p50 %v, p95 %v (takeover_after %v)", len(ts),
		percentile(ts, 0.5).Round(time.Millisecond), percentile(ts, 0.95).Round(time.Millisecond), takeover)
}

// BenchmarkTakeover measures how long a connector stays unowned after its
// owner is killed (SIGKILL), with takeover_after 2 s: p50 and p95 over
// b.N takeovers (at least 10).
func BenchmarkTakeover(b *testing.B) {
	const takeover = 2 * time.Second
	ts := runKills(b, max(b.N, 10), takeover, false)
	b.ReportMetric(float64(percentile(ts, 0.5).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(percentile(ts, 0.95).Milliseconds()), "p95-ms")
	b.ReportMetric(float64(takeover.Milliseconds()), "takeover_after-ms")
	b.ReportMetric(0, "ns/op")
}
