package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/console"
	"github.com/mediagw/mediagw/host/statusapi"
)

func init() {
	register(command{Name: "run", Usage: "-c FILE", Short: "run the gateway (SIGHUP reloads the config, SIGTERM stops)", Run: runRun})
}

// loadPlan reads a config and builds its plan, printing every problem.
// loadConnector loads the config and finds the connector named by the one
// argument left in fs. When ok is false the problem is printed and code is
// the exit code (2 for usage, 1 for a config that does not load).
func loadConnector(fs *flag.FlagSet, cfgPath string, std stdio) (plan *host.Plan, log *slog.Logger, cp *host.ConnectorPlan, code int, ok bool) {
	if fs.NArg() != 1 {
		fs.Usage()
		return nil, nil, nil, 2, false
	}
	name := fs.Arg(0)
	plan, log, ok = loadPlan(cfgPath, std.err)
	if !ok {
		return nil, nil, nil, 1, false
	}
	cp, ok = plan.Connectors[name]
	if !ok {
		fmt.Fprintf(std.err, "%s: no connector named %q (have: %s)\n", cfgPath, name, strings.Join(config.SortedKeys(plan.Connectors), ", "))
		plan.Close()
		return nil, nil, nil, 2, false
	}
	return plan, log, cp, 0, true
}

func loadPlan(path string, stderr io.Writer) (*host.Plan, *slog.Logger, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, nil, false
	}
	log := host.NewLogger(stderr, cfg.Log)
	plan, err := host.Prepare(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, nil, false
	}
	return plan, log, true
}

func runRun(args []string, std stdio) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	cfgPath := fs.String("c", "mediagw.yaml", "config file")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw run -c FILE\n\nRuns the gateway until SIGTERM or SIGINT; SIGHUP reloads the config\nand restarts only the connectors and drivers whose settings changed.")
		fs.PrintDefaults()
	}
	if exit, code := parseFlags(fs, args, std); exit {
		return code
	}
	plan, log, ok := loadPlan(*cfgPath, std.err)
	if !ok {
		return 1
	}
	// Every connector must accept its settings before anything starts.
	if problems, _ := host.CheckConnectors(plan); len(problems) > 0 {
		fmt.Fprintln(std.err, strings.Join(problems, "\n"))
		plan.Close()
		return 1
	}
	host.Version = version
	h, err := host.New(plan, log)
	if err != nil {
		fmt.Fprintln(std.err, err)
		plan.Close()
		return 1
	}
	if h.Shared() {
		log.Info("gateway joins the gateways on the spool's database", "gateway", h.Gateway(),
			"takeover_after", time.Duration(plan.Config.Spool.TakeoverAfter).String())
	}
	cb := console.NewHostBackend(h, plan)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			log.Info("reloading config", "file", *cfgPath)
			// Log settings take effect at the next start; the rest now.
			np, _, ok := loadPlan(*cfgPath, std.err)
			if !ok {
				log.Error("config not reloaded: it has errors; the running configuration stays")
				continue
			}
			h.Reload(np)
			cb.SetPlan(np)
			log.Info("config reloaded")
		}
	}()
	if plan.Config.Status.Listen != "" {
		if err := serveStatus(ctx, plan.Config, h, cb, log); err != nil {
			fmt.Fprintln(std.err, err)
			return 1
		}
	}
	log.Info("gateway started", "config", *cfgPath, "connectors", len(plan.Connectors), "drivers", len(plan.Drivers))
	if err := h.Run(ctx, plan); err != nil {
		log.Error("stopping", "error", err)
		return 1
	}
	log.Info("gateway stopped")
	return 0
}

// serveStatus serves the console, and behind its sign-in the JSON API and
// the metrics, on status.listen.
func serveStatus(ctx context.Context, cfg *config.Config, h *host.Host, b console.Backend, log *slog.Logger) error {
	handler, err := statusHandler(cfg, b, statusapi.Handler(h), log)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	scheme := "http"
	if cfg.Status.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Resolve(cfg.Status.TLSCert), cfg.Resolve(cfg.Status.TLSKey))
		if err != nil {
			return fmt.Errorf("status: tls: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	ln, err := net.Listen("tcp", cfg.Status.Listen)
	if err != nil {
		return fmt.Errorf("status: listen %s: %w", cfg.Status.Listen, err)
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		serve := func() error { return srv.Serve(ln) }
		if srv.TLSConfig != nil {
			serve = func() error { return srv.ServeTLS(ln, "", "") }
		}
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("status endpoint", "error", err)
		}
	}()
	log.Info("status endpoint", "url", scheme+"://"+ln.Addr().String()+"/status", "console", scheme+"://"+ln.Addr().String()+"/")
	return nil
}
