package main

// The first demo: the embedded maildir example (sample mails in a Maildir →
// data map → file driver), run by `mediagw-demo --example maildir`.

import (
	"context"
	"encoding/json"
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

func demoMaildir(stdout, stderr io.Writer, dir string, verbose bool, timeout time.Duration) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "mediagw-demo-")
		if err != nil {
			return err
		}
		dir = d
	}
	step := func(format string, args ...any) { fmt.Fprintf(stdout, "==> "+format+"\n", args...) }
	step("unpacking the example into %s", dir)
	if err := demoMaildirUnpack(dir); err != nil {
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
		return fmt.Errorf("%w\n(the demo needs the plugin binaries beside mediagw-demo: run `make build` or `make demo`)", err)
	}
	var logOut io.Writer = io.Discard
	if verbose {
		logOut = stderr
	}
	log := host.NewLogger(logOut, cfg.Log)
	plan, err := host.Prepare(cfg, log)
	if err != nil {
		return err
	}
	if problems, _ := host.CheckConnectors(plan); len(problems) > 0 {
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
	return demoMaildirSummary(stdout, dir, want)
}

func spoolEmpty(h *host.Host) bool {
	st, err := h.Status(context.Background())
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

func demoMaildirSummary(w io.Writer, dir string, want int) error {
	fmt.Fprintln(w, "\nSummary")
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
		fmt.Fprintf(w, "  archived  %-26s sender=%s reference=%q documents=%d\n            %s\n",
			rec.SourceID, rec.Fields["sender"], rec.Fields["reference"], len(rec.Documents), filepath.Dir(r))
	}
	reasons, _ := filepath.Glob(filepath.Join(dir, "var", "failed", "*.reason"))
	for _, r := range reasons {
		b, _ := os.ReadFile(r)
		fmt.Fprintf(w, "  rejected  %-26s %s\n", strings.TrimSuffix(filepath.Base(r), ".reason"), strings.TrimSpace(string(b)))
	}
	if len(recs) != 2 || len(reasons) != 1 || len(recs)+len(reasons) != want {
		return fmt.Errorf("expected 2 archived and 1 rejected mail, got %d archived and %d rejected", len(recs), len(reasons))
	}
	fmt.Fprintf(w, "\nAll %d mails settled: 2 archived, 1 rejected with its reason. Files are in %s\n", want, dir)
	return nil
}

func demoMaildirUnpack(dir string) error {
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
