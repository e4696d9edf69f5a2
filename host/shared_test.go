package host

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/ownership"
	"github.com/mediagw/mediagw/host/spool/pgspool"
	"github.com/mediagw/mediagw/internal/pgtest"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/plugin"
)

// haConfig is one gateway of a group: the Maildir is shared, the spool
// and the archive are its own (the archive tells which gateway wrote).
const haConfig = `gateway: %s
spool:
  dir: %s/spool
  takeover_after: 2s
connectors:
  inbox:
    plugin: %s
    map: archive
    config:
      path: %s
      failed: %s/failed
      poll_interval: 10ms
maps:
  archive: %s
drivers:
  archive:
    type: file
    options:
      dir: %s/archive
  elsewhere:
    type: file
    gateways: [nobody]
    options:
      dir: %s/elsewhere
`

type haGateway struct {
	name string
	dir  string
	h    *Host
	plan *Plan
	stop context.CancelFunc
	done chan error
}

func startHA(t *testing.T, name, root, maildir, plugin string, db *pgxpool.Pool) *haGateway {
	t.Helper()
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mapFile, _ := filepath.Abs("../examples/maps/archive.yaml")
	cfgFile := filepath.Join(dir, "mediagw.yaml")
	os.WriteFile(cfgFile, fmt.Appendf(nil, haConfig, name, dir, plugin, maildir, dir, mapFile, dir, dir), 0o644)
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testenv.LogWriter(t), nil)).With("gw", name)
	plan, err := Prepare(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(plan, log)
	if err != nil {
		t.Fatal(err)
	}
	h.Share(db, time.Duration(cfg.Spool.TakeoverAfter), "test")
	ctx, cancel := context.WithCancel(context.Background())
	g := &haGateway{name: name, dir: dir, h: h, plan: plan, stop: cancel, done: make(chan error, 1)}
	go func() { g.done <- h.Run(ctx, plan) }()
	t.Cleanup(func() { g.halt(t) })
	return g
}

func (g *haGateway) halt(t *testing.T) {
	if g.stop == nil {
		return
	}
	g.stop()
	g.stop = nil
	select {
	case <-g.done:
	case <-time.After(30 * time.Second):
		t.Errorf("gateway %s did not stop", g.name)
	}
}

func (g *haGateway) archived() int {
	es, _ := os.ReadDir(filepath.Join(g.dir, "archive"))
	n := 0
	for _, e := range es {
		if !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

func (g *haGateway) connector() plugin.HealthState {
	st, _ := g.h.Status(context.Background())
	return st.Connectors["inbox"].Health
}

// TestOneGatewayReadsTheMailbox: two gateways configured with the same
// Maildir connector: one runs it, the other stands by; when the first
// stops, the second takes the connector over and the mail goes on; the
// status of each lists both gateways with what they run.
func TestOneGatewayReadsTheMailbox(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDB(t)
	db, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgspool.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close) // after the gateways stopped
	bin := testenv.Binaries(t, "github.com/mediagw/mediagw/plugin/maildir/cmd/mediagw-connector-maildir")
	plug := filepath.Join(bin, "mediagw-connector-maildir")
	root := t.TempDir()
	maildir := filepath.Join(root, "Maildir")
	for _, d := range []string{"new", "cur", "tmp"} {
		os.MkdirAll(filepath.Join(maildir, d), 0o755)
	}
	drop := func(from, to int) {
		for i := from; i < to; i++ {
			name := fmt.Sprintf("m%04d.eml", i)
			os.WriteFile(filepath.Join(maildir, "tmp", name), fmt.Appendf(nil, "From: s%d@example.com\r\nTo: gw@example.com\r\nSubject: message %d\r\n\r\nBody %d.\r\n", i, i, i), 0o644)
			os.Rename(filepath.Join(maildir, "tmp", name), filepath.Join(maildir, "new", name))
		}
	}

	a := startHA(t, "a", root, maildir, plug, db)
	testenv.Eventually(t, 30*time.Second, "a runs the connector", func() bool { return a.connector() == plugin.HealthHealthy })
	b := startHA(t, "b", root, maildir, plug, db)
	testenv.Eventually(t, 30*time.Second, "b stands by", func() bool { return b.connector() == ConnectorStandby })
	drop(0, 20)
	testenv.Eventually(t, 30*time.Second, "a archives the first 20", func() bool { return a.archived() == 20 })
	if n := b.archived(); n != 0 {
		t.Fatalf("the standby gateway archived %d mails", n)
	}
	// The registry shows it at the next heartbeat.
	var st Status
	testenv.Eventually(t, 10*time.Second, "b's status lists a with the connector and both with their drivers", func() bool {
		st, _ = b.h.Status(context.Background())
		if st.Health != Healthy || len(st.Gateways) != 2 {
			return false
		}
		for _, g := range st.Gateways {
			want := map[string][]string{"a": {"inbox"}, "b": {}}[g.Name]
			if g.Down || !slices.Equal(g.Connectors, want) || !slices.Equal(g.Drivers, []string{"archive"}) {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("%s %+v", st.Health, st.Gateways) })

	// a stops: it hands the lease back, b takes over at once.
	stopped := time.Now()
	a.halt(t)
	testenv.Eventually(t, 10*time.Second, "b runs the connector", func() bool { return b.connector() == plugin.HealthHealthy })
	t.Logf("b runs the connector %v after a stopped", time.Since(stopped).Round(time.Millisecond))
	drop(20, 40)
	testenv.Eventually(t, 30*time.Second, "b archives the next 20", func() bool { return b.archived() == 20 })
	if n := a.archived(); n != 20 {
		t.Fatalf("a archived %d after it stopped", n)
	}
	testenv.Eventually(t, 10*time.Second, "a shown down after takeover_after", func() bool {
		st, _ := b.h.Status(context.Background())
		for _, g := range st.Gateways {
			if g.Name == "a" {
				return g.Down
			}
		}
		return false
	})
}

// TestDriverPlacement: a gateway starts dispatchers only for the drivers
// placed on it, still routes records to the others, and its status names a
// driver with queued jobs that no gateway runs.
func TestDriverPlacement(t *testing.T) {
	dir := t.TempDir()
	here, there := &idleDriver{}, &idleDriver{}
	cfg := &config.Config{File: filepath.Join(dir, "mediagw.yaml"), Spool: config.Defaults.Spool, Gateway: "a",
		Drivers: map[string]*config.Driver{"here": {Type: "idle", Gateways: []string{"a"}}, "there": {Type: "idle", Gateways: []string{"b"}}}}
	p := &Plan{Config: cfg, Drivers: map[string]linedriver.Driver{"here": here, "there": there},
		DriverFP: map[string]string{"here": "1", "there": "1"}, Connectors: map[string]*ConnectorPlan{}}
	h, err := New(p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, p) }()
	defer func() { cancel(); <-done }()
	waitRunning(t, h)
	drivers, _ := h.running()
	if !slices.Equal(drivers, []string{"here"}) {
		t.Fatalf("running drivers %v, want [here]", drivers)
	}
	pl := h.pipelineFor(p, &ConnectorPlan{Name: "inbox", Config: &config.Connector{}})
	if _, ok := pl.Targets["there"]; !ok {
		t.Fatal("records cannot be routed to a driver that runs elsewhere")
	}
	rec := linedriver.Record{ID: "r1", SourceID: "s1", Connector: "inbox"}
	if _, err := h.spool.Accept(ctx, "inbox", "s1", []*linedriver.Job{{ID: "r1.there", Driver: "there", Record: rec, Accepted: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	st, err := h.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Unserved, []string{"there"}) || st.Health != Degraded {
		t.Fatalf("unserved %v, health %s; want [there], degraded", st.Unserved, st.Health)
	}
}

// handOwner is an ownership.Owner the test drives: each Acquire waits for
// the test to grant it, and the test can end the lease.
type handOwner struct {
	grant  chan struct{}
	leases chan *ownership.Lease
	inner  ownership.Single
}

func (o *handOwner) Acquire(ctx context.Context, connector string) (*ownership.Lease, error) {
	select {
	case <-o.grant:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l, err := o.inner.Acquire(ctx, connector)
	if err == nil {
		o.leases <- l
	}
	return l, err
}

// TestLeaseLostStopsThePlugin: when the connector's lease is lost, the
// plugin is stopped at once and the connector waits on standby; when the
// lease is granted again, a new plugin runs.
func TestLeaseLostStopsThePlugin(t *testing.T) {
	bin := testenv.Binaries(t, "github.com/mediagw/mediagw/plugin/maildir/cmd/mediagw-connector-maildir")
	root := t.TempDir()
	maildir := filepath.Join(root, "Maildir")
	for _, d := range []string{"new", "cur", "tmp"} {
		os.MkdirAll(filepath.Join(maildir, d), 0o755)
	}
	mapFile, _ := filepath.Abs("../examples/maps/archive.yaml")
	cfgFile := filepath.Join(root, "mediagw.yaml")
	os.WriteFile(cfgFile, fmt.Appendf(nil, haConfig, "a", root, filepath.Join(bin, "mediagw-connector-maildir"), maildir, root, mapFile, root, root), 0o644)
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testenv.LogWriter(t), nil))
	plan, err := Prepare(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(plan, log)
	if err != nil {
		t.Fatal(err)
	}
	o := &handOwner{grant: make(chan struct{}), leases: make(chan *ownership.Lease, 4), inner: ownership.Single{Gateway: "a"}}
	h.owner = o
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, plan) }()
	defer func() { cancel(); <-done }()
	state := func() (plugin.HealthState, int) {
		st, _ := h.Status(context.Background())
		return st.Connectors["inbox"].Health, st.Connectors["inbox"].Pid
	}
	testenv.Eventually(t, 10*time.Second, "standby until the lease is granted", func() bool { s, _ := state(); return s == ConnectorStandby })
	o.grant <- struct{}{}
	l := <-o.leases
	var pid int
	testenv.Eventually(t, 30*time.Second, "the plugin runs", func() bool {
		s, p := state()
		pid = p
		return s == plugin.HealthHealthy && p != 0
	})
	l.Release() // lost
	testenv.Eventually(t, 10*time.Second, "the plugin stopped and the connector on standby", func() bool {
		s, _ := state()
		return s == ConnectorStandby && syscall.Kill(pid, 0) != nil
	})
	o.grant <- struct{}{}
	<-o.leases
	testenv.Eventually(t, 30*time.Second, "a new plugin runs once the lease is granted again", func() bool {
		s, p := state()
		return s == plugin.HealthHealthy && p != 0 && p != pid
	})
}
