package main

import (
	"context"
	"encoding/json"
	"flag"
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

func init() {
	register(command{Name: "demo", Usage: "[--dir DIR] [-v]", Short: "run the gateway on the embedded example: sample mails in a Maildir → data map → file driver", Run: runDemo})
}

func runDemo(args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", "", "where to put the demo's files (default: a new temporary folder, kept)")
	verbose := fs.Bool("v", false, "show the gateway's log")
	timeout := fs.Duration("timeout", 2*time.Minute, "fail when the mails are not all settled by then")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw demo [--dir DIR] [-v]\n\nUnpacks the example configuration (examples/maildir-to-file.yaml), drops the\nsample mails into its Maildir, and runs the real gateway with the real maildir\nconnector plugin until every mail is settled. Exit code 0 only when the good\nmails reached the archive and the bad one was rejected with its reason.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := demo(*dir, *verbose, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		return 1
	}
	return 0
}

func demo(dir string, verbose bool, timeout time.Duration) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "mediagw-demo-")
		if err != nil {
			return err
		}
		dir = d
	}
	step := func(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }
	step("unpacking the example into %s", dir)
	if err := unpack(dir); err != nil {
		return err
	}
	maildir := filepath.Join(dir, "var", "Maildir")
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(maildir, sub), 0o755); err != nil {
			return err
		}
	}
	mails, _ := fs.Glob(examples.FS, "mail/*.eml")
	for _, m := range mails {
		b, _ := examples.FS.ReadFile(m)
		name := filepath.Base(m)
		tmp := filepath.Join(maildir, "tmp", name)
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(maildir, "new", name)); err != nil {
			return err
		}
		step("mail delivered to the Maildir: %s", name)
	}

	cfgPath := filepath.Join(dir, "maildir-to-file.yaml")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return fmt.Errorf("%w\n(the demo needs the plugin binaries beside mediagw: run `make build` or `make demo`)", err)
	}
	var logOut io.Writer = io.Discard
	if verbose {
		logOut = os.Stderr
	}
	log := newLogger(logOut, cfg.Log)
	plan, err := host.Prepare(cfg, log)
	if err != nil {
		return err
	}
	if problems := checkConnectors(plan); len(problems) > 0 {
		plan.Close()
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	h, err := host.New(plan, log)
	if err != nil {
		plan.Close()
		return err
	}
	step("gateway running: connector inbox (maildir plugin) → map archive → driver archive (file)")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, plan) }()

	want := len(mails)
	deadline := time.Now().Add(timeout)
	for {
		settled := count(filepath.Join(maildir, "cur")) + countSuffix(filepath.Join(dir, "var", "failed"), ".eml")
		if settled == want && count(filepath.Join(maildir, "new")) == 0 && spoolEmpty(h) {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			return fmt.Errorf("after %s only %d of %d mails were settled (run with -v to see the gateway's log)", timeout, settled, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		return err
	}
	return summary(dir, want)
}

func spoolEmpty(h *host.Host) bool {
	st, err := h.Status()
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

func summary(dir string, want int) error {
	fmt.Println("\nSummary")
	recs, _ := filepath.Glob(filepath.Join(dir, "var", "archive", "*", "record.json"))
	for _, r := range recs {
		b, err := os.ReadFile(r)
		if err != nil {
			return err
		}
		var rec struct {
			SourceID  string            `json:"source_id"`
			Fields    map[string]string `json:"fields"`
			Documents []struct {
				File string `json:"file"`
			} `json:"documents"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
		fmt.Printf("  archived  %-26s sender=%s reference=%q documents=%d\n            %s\n",
			rec.SourceID, rec.Fields["sender"], rec.Fields["reference"], len(rec.Documents), filepath.Dir(r))
	}
	reasons, _ := filepath.Glob(filepath.Join(dir, "var", "failed", "*.reason"))
	for _, r := range reasons {
		b, _ := os.ReadFile(r)
		fmt.Printf("  rejected  %-26s %s\n", strings.TrimSuffix(filepath.Base(r), ".reason"), strings.TrimSpace(string(b)))
	}
	if len(recs) != 2 || len(reasons) != 1 || len(recs)+len(reasons) != want {
		return fmt.Errorf("expected 2 archived and 1 rejected mail, got %d archived and %d rejected", len(recs), len(reasons))
	}
	fmt.Printf("\nAll %d mails settled: 2 archived, 1 rejected with its reason. Files are in %s\n", want, dir)
	return nil
}

func unpack(dir string) error {
	return fs.WalkDir(examples.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, "mail/") {
			return err
		}
		b, err := examples.FS.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
}

func count(dir string) int {
	es, _ := os.ReadDir(dir)
	return len(es)
}

func countSuffix(dir, suffix string) int {
	es, _ := os.ReadDir(dir)
	n := 0
	for _, e := range es {
		if strings.HasSuffix(e.Name(), suffix) {
			n++
		}
	}
	return n
}
