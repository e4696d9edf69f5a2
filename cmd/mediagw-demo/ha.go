package main

// `mediagw-demo --example ha`: two gateways on one throwaway PostgreSQL and
// one Maildir. Gateway a reads the mailbox, b stands by; a is killed
// (kill -9) and b takes the mailbox over; the mail goes on.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mediagw/mediagw/examples"
	"github.com/mediagw/mediagw/host/gateways"
	"github.com/mediagw/mediagw/internal/demo"
)

// gatewayFlag runs one gateway of the ha example in this process: the demo
// starts itself twice with it, so that it can kill one.
const gatewayFlag = "--ha-gateway"

const haTakeover = 3 * time.Second

const haConfig = `# One of the two gateways of mediagw-demo --example ha.
gateway: %s
spool:
  backend: postgres
  dsn: env:MEDIAGW_DSN
  takeover_after: %s
log:
  level: info
connectors:
  inbox:
    plugin: mediagw-connector-maildir
    map: archive
    config:
      path: var/Maildir
      failed: var/failed
maps:
  archive: maps/archive.yaml
drivers:
  archive:
    type: file
    options:
      dir: var/archive-%s   # a file driver's folder is one gateway's
`

// runHAGateway is a gateway process of the example, until SIGTERM.
func runHAGateway(cfgPath string, stderr io.Writer) int {
	h, plan, err := openGateway(cfgPath, stderr, "", false)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := h.Run(ctx, plan); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

type haGateway struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func demoHA(stdout, stderr io.Writer, dir string, verbose bool, timeout time.Duration) error {
	dir, err := siteDir(dir, "mediagw-demo-")
	if err != nil {
		return err
	}
	step := narrator(stdout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	step("starting a throwaway PostgreSQL (initdb into a temporary folder, a server on 127.0.0.1)")
	pg, err := demo.StartPostgres(ctx)
	if errors.Is(err, demo.ErrNoPostgres) {
		return fmt.Errorf("the ha example runs two gateways on a PostgreSQL database, and %w\n(or set %s to the folder of initdb and postgres)", err, demo.PostgresBinDirEnv)
	}
	if err != nil {
		return err
	}
	defer pg.Stop()

	step("unpacking the example into %s", dir)
	if err := demoMaildirUnpack(dir); err != nil {
		return err
	}
	maildir := filepath.Join(dir, "var", "Maildir")
	if err := makeMaildir(maildir); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	start := func(name string) (*haGateway, error) {
		cfgPath := filepath.Join(dir, "gateway-"+name+".yaml")
		if err := os.WriteFile(cfgPath, fmt.Appendf(nil, haConfig, name, haTakeover, name), 0o644); err != nil {
			return nil, err
		}
		logf, err := os.OpenFile(filepath.Join(dir, "gateway-"+name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		g := &haGateway{name: name, cmd: exec.Command(self, gatewayFlag, cfgPath), done: make(chan struct{})}
		g.cmd.Env = append(os.Environ(), "MEDIAGW_DSN="+pg.DSN())
		g.cmd.Stdout, g.cmd.Stderr = logf, logf
		if verbose {
			g.cmd.Stderr = io.MultiWriter(logf, stderr)
		}
		g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := g.cmd.Start(); err != nil {
			logf.Close()
			return nil, err
		}
		go func() { g.cmd.Wait(); logf.Close(); close(g.done) }()
		return g, nil
	}
	stopGW := func(g *haGateway) {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(30 * time.Second):
			_ = g.cmd.Process.Kill()
			<-g.done
		}
	}
	db, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	owner := func() string {
		var o string
		_ = db.QueryRow(ctx, `SELECT owner FROM mediagw_leases WHERE connector = 'inbox' AND expires > now()`).Scan(&o)
		return o
	}
	await := func(what string, cond func() bool) error {
		for !cond() {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: not within %s (the gateways' logs are in %s)", what, timeout, dir)
			case <-time.After(20 * time.Millisecond):
			}
		}
		return nil
	}

	a, err := start("a")
	if err != nil {
		return err
	}
	defer stopGW(a)
	if err := await("gateway a owns the mailbox", func() bool { return owner() == "a" }); err != nil {
		return err
	}
	step("gateway a runs the mailbox's connector (it holds its lease)")
	b, err := start("b")
	if err != nil {
		return err
	}
	defer stopGW(b)
	if err := await("gateway b registered", func() bool {
		gs, _ := gateways.List(ctx, db, haTakeover)
		return len(gs) == 2
	}); err != nil {
		return err
	}
	step("gateway b stands by: same config, same database, same Maildir")

	mails, _ := fs.Glob(examples.FS, "mail/*.eml")
	deliver := func(prefix string) error {
		_, err := deliverMails(maildir, "mail/*.eml", prefix, nil)
		return err
	}
	archived := func() int {
		return count(filepath.Join(dir, "var", "archive-a")) + count(filepath.Join(dir, "var", "archive-b"))
	}
	settled := func(want int) func() bool {
		return func() bool {
			return count(filepath.Join(maildir, "cur"))+countSuffix(filepath.Join(dir, "var", "failed"), ".eml") == want &&
				count(filepath.Join(maildir, "new")) == 0 && archived() == want*2/3
		}
	}
	if err := deliver("1-"); err != nil {
		return err
	}
	step("%d mails delivered to the Maildir", len(mails))
	if err := await("the first mails settled", settled(len(mails))); err != nil {
		return err
	}
	step("settled by gateway a: %d archived, %d rejected", archived(), countSuffix(filepath.Join(dir, "var", "failed"), ".eml"))

	step("killing gateway a (kill -9, pid %d): no goodbye, its lease runs out", a.cmd.Process.Pid)
	killed := time.Now()
	_ = a.cmd.Process.Kill()
	<-a.done
	if err := await("gateway b takes the mailbox over", func() bool { return owner() == "b" }); err != nil {
		return err
	}
	took := time.Since(killed)
	step("TAKEOVER: gateway b owns the mailbox %.1f s after gateway a died (takeover_after %s)", took.Seconds(), haTakeover)
	if err := deliver("2-"); err != nil {
		return err
	}
	step("%d more mails delivered to the Maildir", len(mails))
	if err := await("the next mails settled", settled(2*len(mails))); err != nil {
		return err
	}
	step("settled by gateway b: %d archived, %d rejected in all", archived(), countSuffix(filepath.Join(dir, "var", "failed"), ".eml"))

	var gs []gateways.Gateway
	if err := await("gateway a shown down (no heartbeat for takeover_after)", func() bool {
		gs, _ = gateways.List(ctx, db, haTakeover)
		return len(gs) == 2 && gs[0].Down && !gs[1].Down
	}); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nGateways (mediagw status shows the same)")
	for _, g := range gs {
		state := "up"
		if g.Down {
			state = "down"
		}
		owned := strings.Join(g.Connectors, ",")
		if owned == "" {
			owned = "none"
		}
		fmt.Fprintf(stdout, "  %-3s %-5s drivers %-10s connectors %s\n", g.Name, state, strings.Join(g.Drivers, ","), owned)
	}
	fmt.Fprintf(stdout, "\nOK: gateway a killed, gateway b took the mailbox over after %.1f s; all %d mails settled. Files and logs are in %s\n",
		took.Seconds(), 2*len(mails), dir)
	return nil
}
