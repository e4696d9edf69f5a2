package main

// The steps the Maildir, alarm, fax-in and ha examples share: the site's
// folder, the narration, the Maildir and its mails, and a gateway run in
// this process until what the example waits for is there.

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediagw/mediagw/examples"
	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/host/config"
)

// siteDir is dir, or a new temporary folder (kept) named with prefix.
func siteDir(dir, prefix string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return os.MkdirTemp("", prefix)
}

// narrator prints the steps of a demo: "==> what happens".
func narrator(w io.Writer) func(format string, args ...any) {
	return func(format string, args ...any) { fmt.Fprintf(w, "==> "+format+"\n", args...) }
}

// makeMaildir makes the folders of a Maildir.
func makeMaildir(maildir string) error {
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(maildir, sub), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// deliverMails delivers the example's mails that match pattern to maildir
// as a mail server does (written to tmp, renamed into new), each under
// prefix and its own name, calling each (if set) for every one. It returns
// how many it delivered.
func deliverMails(maildir, pattern, prefix string, each func(name string)) (int, error) {
	mails, _ := fs.Glob(examples.FS, pattern)
	for _, m := range mails {
		b, _ := examples.FS.ReadFile(m)
		name := prefix + filepath.Base(m)
		tmp := filepath.Join(maildir, "tmp", name)
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return 0, err
		}
		if err := os.Rename(tmp, filepath.Join(maildir, "new", name)); err != nil {
			return 0, err
		}
		if each != nil {
			each(name)
		}
	}
	return len(mails), nil
}

// needPlugins is said when the configuration names plugins that are not there.
const needPlugins = "(the demo needs the plugin binaries beside mediagw-demo: run `make build` or `make demo`)"

// openGateway loads cfgPath and prepares its gateway, logging to logOut.
// A configuration that does not load is said with hint (when set); with
// check, the connectors' configurations are checked first.
func openGateway(cfgPath string, logOut io.Writer, hint string, check bool) (*host.Host, *host.Plan, error) {
	cfg, err := config.Load(cfgPath)
	if err != nil && hint != "" {
		return nil, nil, fmt.Errorf("%w\n%s", err, hint)
	}
	if err != nil {
		return nil, nil, err
	}
	log := host.NewLogger(logOut, cfg.Log)
	plan, err := host.Prepare(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	if check {
		if problems, _ := host.CheckConnectors(plan); len(problems) > 0 {
			plan.Close()
			return nil, nil, fmt.Errorf("%s", strings.Join(problems, "\n"))
		}
	}
	h, err := host.New(plan, log)
	if err != nil {
		plan.Close()
		return nil, nil, err
	}
	return h, plan, nil
}

// gateway is a gateway running in this process.
type gateway struct {
	*host.Host
	cancel context.CancelFunc
	done   chan error
}

// startGateway runs the gateway of cfgPath in this process; its log goes
// to stderr with verbose, nowhere without.
func startGateway(cfgPath string, stderr io.Writer, verbose, check bool) (*gateway, error) {
	var logOut io.Writer = io.Discard
	if verbose {
		logOut = stderr
	}
	h, plan, err := openGateway(cfgPath, logOut, needPlugins, check)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{Host: h, cancel: cancel, done: make(chan error, 1)}
	go func() { g.done <- h.Run(ctx, plan) }()
	return g, nil
}

// stop stops the gateway and returns the error of its run.
func (g *gateway) stop() error {
	g.cancel()
	return <-g.done
}

// await polls settled every 100 ms until it holds (true) or timeout has
// passed: then the gateway is stopped (false).
func (g *gateway) await(timeout time.Duration, settled func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !settled() {
		if time.Now().After(deadline) {
			_ = g.stop()
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// queueEmpty tells whether the gateway's spool has no job queued.
func (g *gateway) queueEmpty() bool {
	st, err := g.Status(context.Background())
	if err != nil {
		return false
	}
	for _, n := range st.Queued {
		if n > 0 {
			return false
		}
	}
	return true
}
