package main

import (
	"context"
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
	"github.com/mediagw/mediagw/host/statusapi"
)

func init() {
	register(command{Name: "run", Usage: "-c FILE", Short: "run the gateway (SIGHUP reloads the config, SIGTERM stops)", Run: runRun})
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// loadPlan reads a config and builds its plan, printing every problem.
func loadPlan(path string, stderr io.Writer) (*host.Plan, *slog.Logger, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, nil, false
	}
	log := newLogger(stderr, cfg.Log)
	plan, err := host.Prepare(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, nil, false
	}
	return plan, log, true
}

func runRun(args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	cfgPath := fs.String("c", "mediagw.yaml", "config file")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw run -c FILE\n\nRuns the gateway until SIGTERM or SIGINT; SIGHUP reloads the config\nand restarts only the connectors and drivers whose settings changed.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	plan, log, ok := loadPlan(*cfgPath, os.Stderr)
	if !ok {
		return 1
	}
	// Every connector must accept its settings before anything starts.
	if problems, _ := checkConnectors(plan); len(problems) > 0 {
		fmt.Fprintln(os.Stderr, strings.Join(problems, "\n"))
		plan.Close()
		return 1
	}
	h, err := host.New(plan, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		plan.Close()
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			log.Info("reloading config", "file", *cfgPath)
			// Log settings take effect at the next start; the rest now.
			np, _, ok := loadPlan(*cfgPath, os.Stderr)
			if !ok {
				log.Error("config not reloaded: it has errors; the running configuration stays")
				continue
			}
			h.Reload(np)
			log.Info("config reloaded")
		}
	}()
	if addr := plan.Config.Status.Listen; addr != "" {
		if err := serveStatus(ctx, addr, h, log); err != nil {
			fmt.Fprintln(os.Stderr, err)
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

func serveStatus(ctx context.Context, addr string, h *host.Host, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("status: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: statusapi.Handler(h), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("status endpoint", "error", err)
		}
	}()
	log.Info("status endpoint", "url", "http://"+ln.Addr().String()+"/status")
	return nil
}
