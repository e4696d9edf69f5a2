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
	withUsage(fs, "Usage: mediagw spool compact [-c FILE | --url URL] [--json]\n\n"+
		"Copies the spool's live data into a new file and renames it over the spool file, so\n"+
		"the space a burst of mails left free goes back to the disk. When the gateway is\n"+
		"stopped the file is compacted here; when it runs (it holds the file's lock) the\n"+
		"gateway is asked through its status endpoint (status.listen). Accepts and\n"+
		"outcomes wait while the live data is copied.")
	if exit, code := parseNoArgs(fs, args, std); exit {
		return code
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
	s, path, err := openSpoolFile("spool compact", cfg)
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

// The spool commands' shared steps.

// withUsage sets fs's usage: text, then the flags.
func withUsage(fs *flag.FlagSet, text string) {
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), text)
		fs.PrintDefaults()
	}
}

// parseNoArgs parses a command's flags and refuses any argument besides
// them (exit code 2).
func parseNoArgs(fs *flag.FlagSet, args []string, std stdio) (exit bool, code int) {
	if exit, code := parseFlags(fs, args, std); exit {
		return exit, code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(std.err, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return true, 2
	}
	return false, 0
}

// openSpoolFile opens the bbolt spool file of cfg (spool.dir) for command
// cmd. It returns the file's path with spool.Open's error (spool.ErrLocked
// while a gateway runs), or an error of its own when there is no file.
func openSpoolFile(cmd string, cfg *config.Config) (*spool.Spool, string, error) {
	path := filepath.Join(cfg.Resolve(cfg.Spool.Dir), "spool.db")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, path, fmt.Errorf("%s: %s has no spool yet (spool.dir)", cmd, path)
	}
	s, err := spool.Open(path)
	return s, path, err
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
