package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/host/spool/pgspool"
	"github.com/mediagw/mediagw/secret"
)

func init() {
	register(command{Name: "spool migrate", Usage: "[-c FILE] [--status]",
		Short: "bring the PostgreSQL spool's schema up to date (or list its migrations)", Run: runSpoolMigrate})
	register(command{Name: "spool export", Usage: "--to-postgres DSN [-c FILE]",
		Short: "copy a stopped gateway's bbolt spool into a PostgreSQL spool", Run: runSpoolExport})
}

func runSpoolMigrate(args []string, std stdio) int {
	fs := flag.NewFlagSet("spool migrate", flag.ContinueOnError)
	cfgPath := fs.String("c", "mediagw.yaml", "config file (its spool: backend postgres, dsn, tls)")
	status := fs.Bool("status", false, "list the migrations and when each was applied; change nothing")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	withUsage(fs, "Usage: mediagw spool migrate [-c FILE] [--status]\n\n"+
		"Applies the PostgreSQL spool's pending schema migrations, in order, each in\n"+
		"one transaction, under a lock that gateways starting at once share. With\n"+
		"spool.migrate: manual gateways refuse to start until this ran.")
	if exit, code := parseNoArgs(fs, args, std); exit {
		return code
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(std.err, err)
		return 1
	}
	if cfg.Spool.Backend != config.BackendPostgres {
		fmt.Fprintf(std.err, "spool migrate: %s: spool.backend is %s; migrations are for backend: postgres\n", *cfgPath, cfg.Spool.Backend)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	pool, err := pgspool.Connect(ctx, host.PGConfig(cfg, false))
	if err != nil {
		fmt.Fprintf(std.err, "spool migrate: %v\n", err)
		return 1
	}
	defer pool.Close()
	if !*status {
		done, err := pgspool.Migrate(ctx, pool)
		for _, m := range done {
			fmt.Fprintf(std.out, "applied %03d_%s\n", m.Version, m.Name)
		}
		if err != nil {
			fmt.Fprintln(std.err, err)
			return 1
		}
		if len(done) == 0 {
			fmt.Fprintf(std.out, "schema up to date (version %d)\n", pgspool.Latest())
		}
		return 0
	}
	known, unknown, err := pgspool.Status(ctx, pool)
	if err != nil {
		fmt.Fprintln(std.err, err)
		return 1
	}
	pending := 0
	for _, m := range known {
		at := "pending"
		if !m.Applied.IsZero() {
			at = "applied " + m.Applied.UTC().Format(time.RFC3339)
		} else {
			pending++
		}
		fmt.Fprintf(std.out, "%03d_%-24s %s\n", m.Version, m.Name, at)
	}
	for _, v := range unknown {
		fmt.Fprintf(std.out, "%03d %-25s applied by a newer release\n", v, "(unknown)")
	}
	if len(unknown) > 0 {
		fmt.Fprintf(std.err, "spool migrate: the database's schema is newer than this gateway (it knows up to %d)\n", pgspool.Latest())
		return 1
	}
	if pending > 0 {
		fmt.Fprintf(std.out, "%d pending: run mediagw spool migrate\n", pending)
	}
	return 0
}

func runSpoolExport(args []string, std stdio) int {
	fs := flag.NewFlagSet("spool export", flag.ContinueOnError)
	cfgPath := fs.String("c", "mediagw.yaml", "config file of the gateway whose bbolt spool (spool.dir) is copied")
	to := fs.String("to-postgres", "", "the PostgreSQL spool's DSN (or env:NAME, file:PATH)")
	timeout := fs.Duration("timeout", time.Hour, "give up after this long")
	withUsage(fs, "Usage: mediagw spool export --to-postgres DSN [-c FILE]\n\n"+
		"Copies a stopped gateway's bbolt spool into PostgreSQL: its queued and failed\n"+
		"jobs with their documents, states and attempts, and the source ids it\n"+
		"remembers (so mail it took is not taken again). Migrates the database first.\n"+
		"Jobs and source ids already there are left alone: running it again is safe.\n"+
		"Then switch the config to spool.backend: postgres.")
	if exit, code := parseNoArgs(fs, args, std); exit {
		return code
	}
	if *to == "" {
		fmt.Fprintln(std.err, "spool export: --to-postgres DSN is required")
		return 2
	}
	dsn, err := secret.Resolve(*to)
	if err != nil {
		fmt.Fprintf(std.err, "spool export: --to-postgres: %v\n", err)
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(std.err, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	n, err := exportSpool(ctx, cfg, dsn.Reveal())
	if err != nil {
		fmt.Fprintln(std.err, err)
		return 1
	}
	fmt.Fprintf(std.out, "exported to %s: %d queued and %d failed jobs new (%d there already), %d source ids new (%d there already)\n",
		pgspool.Redact(dsn.Reveal()), n.queued, n.failed, n.jobsThere, n.sources, n.sourcesThere)
	if len(n.skipped) > 0 {
		fmt.Fprintf(std.err, "spool export: %d jobs could not be read and were not copied; they stay in the bbolt spool (spool.dir): %s\n",
			len(n.skipped), strings.Join(n.skipped, ", "))
	}
	return 0
}

type exportCount struct {
	queued, failed, jobsThere, sources, sourcesThere int
	skipped                                          []string // undecodable jobs left in the file
}

func exportSpool(ctx context.Context, cfg *config.Config, dsn string) (exportCount, error) {
	var n exportCount
	src, path, err := openSpoolFile("spool export", cfg)
	if errors.Is(err, spool.ErrLocked) {
		return n, fmt.Errorf("spool export: a running gateway holds %s: stop it first", path)
	}
	if err != nil {
		return n, err
	}
	defer src.Close()
	pc := host.PGConfig(cfg, true)
	pc.DSN = dsn
	dst, err := pgspool.Open(ctx, pc)
	if err != nil {
		return n, err
	}
	defer dst.Close()
	// A few writers at once: the store commits them in groups. The first
	// error stops the export (and cancels the writes under way).
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	n.skipped, err = src.Export(gctx, func(x *spool.Exported) error {
		g.Go(func() error {
			added, err := dst.ImportJob(gctx, x)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
			case !added:
				n.jobsThere++
			case x.Failed:
				n.failed++
			default:
				n.queued++
			}
			return err
		})
		return gctx.Err()
	}, func(s *spool.Source) error {
		g.Go(func() error {
			added, err := dst.ImportSource(gctx, s)
			mu.Lock()
			defer mu.Unlock()
			if added {
				n.sources++
			} else if err == nil {
				n.sourcesThere++
			}
			return err
		})
		return gctx.Err()
	})
	if werr := g.Wait(); werr != nil {
		err = werr
	}
	if err != nil {
		return n, fmt.Errorf("spool export: %w", err)
	}
	return n, nil
}
