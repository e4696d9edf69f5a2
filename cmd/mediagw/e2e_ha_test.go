package main_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mediagw/mediagw/internal/pgtest"
	"github.com/mediagw/mediagw/internal/testenv"
)

// haSite is a group of gateways on one private PostgreSQL: each gateway has
// its own folder and config; the Maildirs are shared. A file driver's
// folder is each gateway's own: a file driver clears the half-written
// records it finds in its folder when it starts, which must not be those of
// another gateway at work.
type haSite struct {
	t   testing.TB
	dir string
	bin string
	pg  *pgtest.Server
	dsn string
}

func newHASite(t testing.TB) *haSite {
	t.Helper()
	pg := pgtest.Start(t)
	s := &haSite{t: t, dir: t.TempDir(), bin: binaries(t), pg: pg, dsn: pg.NewDB(t)}
	return s
}

func (s *haSite) maildir(name string) string {
	s.t.Helper()
	md := filepath.Join(s.dir, name)
	for _, d := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, d), 0o755); err != nil {
			s.t.Fatal(err)
		}
	}
	return md
}

// gateway writes gateway name's config (body: its connectors, maps and
// drivers) and returns a site whose start runs it.
func (s *haSite) gateway(name, body string) *site {
	s.t.Helper()
	dir := filepath.Join(s.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	cfg := filepath.Join(dir, "mediagw.yaml")
	head := fmt.Sprintf("gateway: %s\nspool:\n  backend: postgres\n  dsn: %s\n  takeover_after: 2s\n", name, s.dsn)
	if err := os.WriteFile(cfg, []byte(head+body), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return &site{t: s.t, dir: dir, bin: s.bin, cfg: cfg}
}

func dropInto(t testing.TB, maildir, name string, raw []byte) {
	t.Helper()
	tmp := filepath.Join(maildir, "tmp", name)
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(maildir, "new", name)); err != nil {
		t.Fatal(err)
	}
}

// owner is the gateway that holds connector's live lease ("" when none).
func (s *haSite) owner(connector string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return ""
	}
	defer conn.Close(context.Background())
	var o string
	if err := conn.QueryRow(ctx, `SELECT owner FROM mediagw_leases WHERE connector = $1 AND expires > now()`, connector).Scan(&o); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return ""
	}
	return o
}

func countIn(dir string) int {
	es, _ := os.ReadDir(dir)
	n := 0
	for _, e := range es {
		if !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

func haMails(t testing.TB) int {
	if s := os.Getenv("MEDIAGW_HA_MAILS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("MEDIAGW_HA_MAILS=%q", s)
		}
		return n
	}
	return 200
}

// TestHAKillAtRandomPoints: two gateways on one PostgreSQL spool and one
// Maildir, mails with attachments (MEDIAGW_HA_MAILS, default 200; CI runs
// 1,000); either gateway is killed (kill -9) at random points and started
// again, PostgreSQL crashes and restarts once mid-run. Then what an
// operator checks: every mail archived once with its attachment, no source
// id with two jobs, every mail settled, re-deliveries counted and bounded
// by the kills times the driver's slots; the mailbox's takeover after the
// kill of its owner, p50/p95.
func TestHAKillAtRandomPoints(t *testing.T) {
	n, kills := haMails(t), 6
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	hs := newHASite(t)
	md := hs.maildir("Maildir")
	archives := []string{filepath.Join(hs.dir, "a", "archive"), filepath.Join(hs.dir, "b", "archive")}
	mapFile, _ := filepath.Abs("../../examples/maps/archive.yaml")
	body := func(gw string) string {
		return fmt.Sprintf(`connectors:
  inbox:
    plugin: mediagw-connector-maildir
    map: archive
    config:
      path: %s
      failed: %s/failed
maps:
  archive: %s
drivers:
  archive:
    type: file
    max_attempts: 10
    options:
      dir: %s
`, md, hs.dir, mapFile, filepath.Join(hs.dir, gw, "archive"))
	}
	// The mails arrive in batches, one before each kill, so that every kill
	// falls while mail is in flight.
	per := n / (kills + 1)
	dropped := 0
	dropUpTo := func(m int) {
		for ; dropped < m; dropped++ {
			dropInto(t, md, fmt.Sprintf("m%04d.eml", dropped), mailWithAttachment(dropped))
		}
	}
	sites := map[string]*site{"a": hs.gateway("a", body("a")), "b": hs.gateway("b", body("b"))}
	gws := map[string]*gateway{"a": sites["a"].start()}
	waitFor(t, "a owns the mailbox", 30*time.Second, func() bool { return hs.owner("inbox") == "a" }, gws["a"].logText)
	gws["b"] = sites["b"].start()
	var logs []string
	archived := func() int { return distinctJobs(archives) }
	targets := make([]int, kills)
	for k := range targets {
		targets[k] = k*per + rng.IntN(per*9/10)
	}
	var takeovers []time.Duration
	pgRestarted := false
	for k, target := range targets {
		dropUpTo((k + 1) * per)
		waitFor(t, fmt.Sprintf("%d archived before kill %d", target, k+1), 180*time.Second,
			func() bool { return archived() >= target }, func() string { return gws["a"].logText() + gws["b"].logText() })
		time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
		if !pgRestarted && k >= kills/2 {
			pgRestarted = true
			t.Logf("PostgreSQL crashed and restarted with %d archived", archived())
			hs.pg.Restart(true)
		}
		owner := hs.owner("inbox")
		// Either gateway; the mailbox's owner twice as often, which
		// measures the takeover.
		victim := []string{"a", "b"}[rng.IntN(2)]
		if owner != "" && rng.IntN(3) > 0 {
			victim = owner
		}
		other := map[string]string{"a": "b", "b": "a"}[victim]
		g := gws[victim]
		t.Logf("kill %d: gateway %s (owner: %q) with %d archived", k+1, victim, owner, archived())
		g.cmd.Process.Signal(syscall.SIGKILL)
		killed := time.Now()
		<-g.done
		// Its plugin goes with it (parent-death signal); make sure.
		for len(g.pids) > 0 {
			syscall.Kill(<-g.pids, syscall.SIGKILL)
		}
		logs = append(logs, g.logText())
		if victim == owner {
			waitFor(t, other+" takes the mailbox over", 30*time.Second, func() bool { return hs.owner("inbox") == other }, gws[other].logText)
			takeovers = append(takeovers, time.Since(killed))
		} else {
			time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		}
		gws[victim] = startUp(t, sites[victim], &logs)
	}
	dropUpTo(n)
	waitFor(t, "every mail archived and settled", 300*time.Second, func() bool {
		return countIn(filepath.Join(md, "new")) == 0 && countIn(filepath.Join(md, "cur")) == n && distinctSources(t, archives) == n
	}, func() string { return gws["a"].logText() + gws["b"].logText() })
	for _, g := range gws {
		g.stop(t)
		logs = append(logs, g.logText())
	}

	// No source id with two jobs: the archives have one folder per job (in
	// both when another gateway delivered it again).
	jobs := map[string][]string{}
	var recs []string
	for _, a := range archives {
		r, _ := filepath.Glob(filepath.Join(a, "*", "record.json"))
		recs = append(recs, r...)
	}
	srcRe := regexp.MustCompile(`"source_id": "([^"]+)"`)
	for _, f := range recs {
		job := filepath.Base(filepath.Dir(f))
		if strings.HasPrefix(job, ".") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := srcRe.FindSubmatch(b)
		if src == nil {
			t.Fatalf("%s has no source id", f)
		}
		if !slices.Contains(jobs[string(src[1])], job) {
			jobs[string(src[1])] = append(jobs[string(src[1])], job)
		}
		if pdfs, _ := filepath.Glob(filepath.Join(filepath.Dir(f), "*order-*.pdf")); len(pdfs) != 1 {
			t.Errorf("%s: %d PDF attachments archived, want 1", job, len(pdfs))
		}
	}
	for i := 0; i < n; i++ {
		src := fmt.Sprintf("maildir:m%04d.eml", i)
		if js := jobs[src]; len(js) != 1 {
			t.Errorf("%s: %d jobs %v, want 1", src, len(js), js)
		}
	}
	redelivered, writtenJobs := redeliveries(logs)
	const slots = 4 // the file driver's
	t.Logf("%d mails, 2 gateways, %d kills, PostgreSQL restarted once: 0 lost, %d re-deliveries", n, kills, redelivered)
	if redelivered > kills*slots {
		t.Errorf("%d re-deliveries after %d kills; want at most %d (the attempts in flight)", redelivered, kills, kills*slots)
	}
	if writtenJobs < n*9/10 {
		t.Errorf("only %d jobs logged their write; the re-delivery count reads the log and cannot be trusted", writtenJobs)
	}
	if len(takeovers) > 0 {
		slices.Sort(takeovers)
		t.Logf("mailbox takeover after kill -9 of its owner (takeover_after 2s): %d, p50 %v, p95 %v", len(takeovers),
			takeovers[len(takeovers)/2].Round(time.Millisecond), takeovers[min(len(takeovers)-1, len(takeovers)*95/100)].Round(time.Millisecond))
	}
	for _, d := range takeovers {
		if d > 5*time.Second {
			t.Errorf("takeover took %v with takeover_after 2s", d)
		}
	}
}

// startUp starts a gateway and waits until it runs; one that exits before
// (it could not reach the database) is started again, as systemd's
// Restart=on-failure would.
func startUp(t testing.TB, s *site, logs *[]string) *gateway {
	t.Helper()
	g := s.start()
	waitFor(t, "the gateway started", 60*time.Second, func() bool {
		select {
		case <-g.done:
			*logs = append(*logs, g.logText())
			g = s.start()
			return false
		default:
		}
		return strings.Contains(g.logText(), `msg="gateway started"`)
	}, func() string { return g.logText() })
	return g
}

// distinctJobs counts the jobs written into the archives.
func distinctJobs(archives []string) int {
	jobs := map[string]bool{}
	for _, a := range archives {
		es, _ := os.ReadDir(a)
		for _, e := range es {
			if !strings.HasPrefix(e.Name(), ".") {
				jobs[e.Name()] = true
			}
		}
	}
	return len(jobs)
}

func distinctSources(t testing.TB, archives []string) int {
	ids := map[string]bool{}
	var recs []string
	for _, a := range archives {
		r, _ := filepath.Glob(filepath.Join(a, "*", "record.json"))
		recs = append(recs, r...)
	}
	re := regexp.MustCompile(`"source_id": "([^"]+)"`)
	for _, f := range recs {
		if strings.HasPrefix(filepath.Base(filepath.Dir(f)), ".") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue // being replaced
		}
		if m := re.FindSubmatch(b); m != nil {
			ids[string(m[1])] = true
		}
	}
	return len(ids)
}

// TestHADriversWhereTheLinesAre: two gateways, each with the lines of one
// driver (file drivers stand in for each host's modems: line-a on a, line-b
// on b), one queue. Each driver's jobs are delivered only where it runs;
// with b's lines down (b stopped), line-a's jobs flow, line-b's wait, and
// `mediagw status` on a says b is down and that no gateway runs line-b;
// when b is back, they are delivered.
func TestHADriversWhereTheLinesAre(t *testing.T) {
	hs := newHASite(t)
	mdA, mdB := hs.maildir("Maildir-a"), hs.maildir("Maildir-b")
	// The archive map, routing to one line or the other.
	b, err := os.ReadFile("../../examples/maps/archive.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"a", "b"} {
		m := strings.Replace(string(b), "drivers: [archive]", "drivers: [line-"+l+"]", 1)
		os.WriteFile(filepath.Join(hs.dir, "to-"+l+".yaml"), []byte(m), 0o644)
	}
	port := freePort(t)
	body := func(gw string) string {
		status := ""
		if gw == "a" {
			status = fmt.Sprintf("status:\n  listen: 127.0.0.1:%d\n", port)
		}
		// Each gateway names its own folders for both lines: a line run
		// where it should not would write into the wrong one.
		return status + fmt.Sprintf(`connectors:
  inbox-a:
    plugin: mediagw-connector-maildir
    map: to-a
    config:
      path: %[1]s
      failed: %[3]s/failed-a
  inbox-b:
    plugin: mediagw-connector-maildir
    map: to-b
    config:
      path: %[2]s
      failed: %[3]s/failed-b
maps:
  to-a: %[3]s/to-a.yaml
  to-b: %[3]s/to-b.yaml
drivers:
  line-a:
    type: file
    gateways: [a]
    options:
      dir: %[3]s/%[4]s/line-a
  line-b:
    type: file
    gateways: [b]
    options:
      dir: %[3]s/%[4]s/line-b
`, mdA, mdB, hs.dir, gw)
	}
	sa, sb := hs.gateway("a", body("a")), hs.gateway("b", body("b"))
	ga, gb := sa.start(), sb.start()
	logs := func() string { return ga.logText() + gb.logText() }
	for i := 0; i < 10; i++ {
		dropInto(t, mdA, fmt.Sprintf("a%02d.eml", i), mail(i))
		dropInto(t, mdB, fmt.Sprintf("b%02d.eml", i), mail(100+i))
	}
	out := func(gw, line string) int { return countIn(filepath.Join(hs.dir, gw, line)) }
	waitFor(t, "each line's mails delivered by its own gateway", 60*time.Second, func() bool {
		return out("a", "line-a") == 10 && out("b", "line-b") == 10
	}, logs)
	if n, m := out("b", "line-a"), out("a", "line-b"); n+m != 0 {
		t.Fatalf("a line ran where it has no lines: b wrote %d for line-a, a wrote %d for line-b", n, m)
	}

	// b's lines go down with b.
	gb.stop(t)
	for i := 10; i < 20; i++ {
		dropInto(t, mdA, fmt.Sprintf("a%02d.eml", i), mail(i))
		dropInto(t, mdB, fmt.Sprintf("b%02d.eml", i), mail(100+i))
	}
	waitFor(t, "line-a's mails flow while b is down", 60*time.Second, func() bool { return out("a", "line-a") == 20 }, ga.logText)
	var status string
	waitFor(t, "a's status: b down, line-b's 10 jobs waiting", 60*time.Second, func() bool {
		b, _ := exec.Command(filepath.Join(hs.bin, "mediagw"), "status", "-c", sa.cfg).CombinedOutput()
		status = string(b)
		return regexp.MustCompile(`(?m)^b\s+down\s`).MatchString(status) &&
			strings.Contains(status, "no gateway runs driver line-b: 10 job(s) wait for one")
	}, func() string { return status + ga.logText() })
	t.Logf("mediagw status on a:\n%s", status)
	if n := out("b", "line-b") + out("a", "line-b"); n != 10 {
		t.Fatalf("line-b delivered %d while its gateway was down", n-10)
	}

	// b is back: its jobs go out on its lines.
	gb = sb.start()
	waitFor(t, "line-b's waiting mails delivered when b is back", 60*time.Second, func() bool { return out("b", "line-b") == 20 }, gb.logText)
	if n, m := out("b", "line-a"), out("a", "line-b"); n+m != 0 {
		t.Fatalf("a line ran where it has no lines: b wrote %d for line-a, a wrote %d for line-b", n, m)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// BenchmarkHAMaildirToFile: small mails from a Maildir to the file driver,
// settled and written, in one run: one gateway on bbolt, one gateway on
// PostgreSQL, two gateways on one PostgreSQL (one reads the mailbox, both
// deliver). b.N mails, all in new/ before the clock starts; the clock
// starts once the plugin runs and every gateway is up.
func BenchmarkHAMaildirToFile(b *testing.B) {
	wait := func(b *testing.B, settled, written func() int, log func() string) {
		deadline := time.Now().Add(10 * time.Minute)
		for settled() < b.N || written() < b.N {
			if time.Now().After(deadline) {
				b.Fatalf("%d settled, %d written of %d; log:\n%s", settled(), written(), b.N, testenv.Tail(log(), 30))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	b.Run("bbolt-1", func(b *testing.B) {
		s := newSite(b)
		for i := range b.N {
			s.drop(fmt.Sprintf("m%05d.eml", i), mail(i))
		}
		g := s.start()
		g.pluginPid(b)
		b.ResetTimer()
		wait(b, func() int { return s.count("var/Maildir/cur") }, func() int { return s.count("var/archive") }, g.logText)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		g.stop(b)
	})
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("postgres-%d", n), func(b *testing.B) {
			hs := newHASite(b)
			md := hs.maildir("Maildir")
			var archives []string
			mapFile, _ := filepath.Abs("../../examples/maps/archive.yaml")
			for i := range b.N {
				dropInto(b, md, fmt.Sprintf("m%05d.eml", i), mail(i))
			}
			var gws []*gateway
			for _, name := range []string{"a", "b"}[:n] {
				archive := filepath.Join(hs.dir, name, "archive")
				archives = append(archives, archive)
				gws = append(gws, hs.gateway(name, fmt.Sprintf(`connectors:
  inbox:
    plugin: mediagw-connector-maildir
    map: archive
    config:
      path: %s
      failed: %s/failed
maps:
  archive: %s
drivers:
  archive:
    type: file
    options:
      dir: %s
`, md, hs.dir, mapFile, archive)).start())
			}
			logs := func() string {
				var s string
				for _, g := range gws {
					s += g.logText()
				}
				return s
			}
			waitFor(b, "every gateway up, one reading", 60*time.Second, func() bool {
				return strings.Count(logs(), `msg="driver started"`) >= n && strings.Contains(logs(), `msg="plugin started"`)
			}, logs)
			b.ResetTimer()
			wait(b, func() int { return countIn(filepath.Join(md, "cur")) }, func() int { return distinctJobs(archives) }, logs)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
			for _, g := range gws {
				g.stop(b)
			}
		})
	}
}
