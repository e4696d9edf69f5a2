package main

// The first demo: the embedded maildir example (sample mails in a Maildir →
// data map → file driver), run by `mediagw-demo --example maildir`.

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediagw/mediagw/examples"
)

func demoMaildir(stdout, stderr io.Writer, dir string, verbose bool, timeout time.Duration) error {
	dir, err := siteDir(dir, "mediagw-demo-")
	if err != nil {
		return err
	}
	step := narrator(stdout)
	step("unpacking the example into %s", dir)
	if err := demoMaildirUnpack(dir); err != nil {
		return err
	}
	maildir := filepath.Join(dir, "var", "Maildir")
	if err := makeMaildir(maildir); err != nil {
		return err
	}
	want, err := deliverMails(maildir, "mail/*.eml", "", func(name string) { step("mail delivered to the Maildir: %s", name) })
	if err != nil {
		return err
	}

	g, err := startGateway(filepath.Join(dir, "maildir-to-file.yaml"), stderr, verbose, true)
	if err != nil {
		return err
	}
	step("gateway running: connector inbox (maildir plugin) → map archive → driver archive (file)")
	var settled int
	if !g.await(timeout, func() bool {
		settled = count(filepath.Join(maildir, "cur")) + countSuffix(filepath.Join(dir, "var", "failed"), ".eml")
		return settled == want && count(filepath.Join(maildir, "new")) == 0 && g.queueEmpty()
	}) {
		return fmt.Errorf("after %s only %d of %d mails were settled (run with -v to see the gateway's log)", timeout, settled, want)
	}
	if err := g.stop(); err != nil {
		return err
	}
	return demoMaildirSummary(stdout, dir, want)
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
