package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/spool"
)

func init() {
	register(command{Name: "spool compact", Usage: "[-c FILE | --url URL] [--json]",
		Short: "give the spool file's free space back to the disk", Run: runSpoolCompact})
}

func runSpoolCompact(args []string, std stdio) int {
	fs := flag.NewFlagSet("spool compact", flag.ContinueOnError)
	cfgPath := fs.String("c", "mediagw.yaml", "config file (its spool.dir, or its status.listen when the gateway runs)")
	apiURL := fs.String("url", "", "ask the running gateway at this status URL, e.g. http://127.0.0.1:8025 (instead of -c)")
	asJSON := fs.Bool("json", false, "print the compaction as JSON")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw spool compact [-c FILE | --url URL] [--json]\n\n"+
			"Copies the spool's live data into a new file and renames it over the spool file, so\n"+
			"the space a burst of mails left free goes back to the disk. When the gateway is\n"+
			"stopped the file is compacted here; when it runs (it holds the file's lock) the\n"+
			"gateway is asked through its status endpoint (status.listen). Accepts and\n"+
			"outcomes wait while the live data is copied.")
		fs.PrintDefaults()
	}
	if exit, code := parseFlags(fs, args, std); exit {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(std.err, "spool compact: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c, where, err := compactSpool(ctx, *cfgPath, *apiURL, *timeout)
	if err != nil {
		fmt.Fprintln(std.err, err)
		return 1
	}
	if *asJSON {
		b, _ := json.MarshalIndent(c, "", "  ")
		printRaw(std.out, b)
		return 0
	}
	fmt.Fprintf(std.out, "spool compacted (%s): %s → %s, %s reclaimed; live data %s; writes paused %s\n", where,
		mib(c.Before.FileBytes), mib(c.After.FileBytes), mib(c.Reclaimed()), mib(c.After.LiveBytes), c.Paused.Round(time.Millisecond))
	return 0
}

// compactSpool compacts the file itself when no gateway holds it, or asks
// the running gateway.
func compactSpool(ctx context.Context, cfgPath, apiURL string, timeout time.Duration) (spool.Compaction, string, error) {
	var c spool.Compaction
	cfg, err := config.Load(cfgPath)
	if apiURL != "" {
		token := ""
		if err == nil {
			token = statusToken(cfg) // --url with -c: the token still comes from the config
		}
		return askCompact(apiURL, token, timeout)
	}
	if err != nil {
		return c, "", err
	}
	if cfg.Spool.Backend == config.BackendPostgres {
		return c, "", fmt.Errorf("spool compact: %s: the spool is on PostgreSQL (spool.backend: postgres), which reclaims space by its own autovacuum; compaction is for the bbolt file", cfgPath)
	}
	path := filepath.Join(cfg.Resolve(cfg.Spool.Dir), "spool.db")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return c, "", fmt.Errorf("spool compact: %s has no spool yet (spool.dir)", path)
	}
	s, err := spool.Open(path)
	if errors.Is(err, spool.ErrLocked) {
		u, uerr := statusURL(cfg.Status.Listen, cfgPath)
		if uerr != nil {
			return c, "", fmt.Errorf("spool compact: a running gateway holds %s, and it cannot be asked: %w", path, uerr)
		}
		return askCompact(u, statusToken(cfg), timeout)
	}
	if err != nil {
		return c, "", err
	}
	defer s.Close()
	c, err = s.Compact(ctx)
	return c, "gateway stopped, " + path, err
}

func askCompact(u, token string, timeout time.Duration) (spool.Compaction, string, error) {
	base := strings.TrimSuffix(strings.TrimSuffix(u, "/"), "/status")
	cl := &jobsClient{base: base, token: token, timeout: timeout}
	var c spool.Compaction
	if _, err := cl.call(http.MethodPost, "/api/spool/compact", &c); err != nil {
		return c, "", err
	}
	return c, "by the running gateway at " + base, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
