package maildir

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin/plugintest"
)

var deliveries atomic.Int64

// dirSource is a test source: a Maildir or a directory of .eml files.
type dirSource struct {
	format    string
	path      string
	processed string // "" for the default
	failed    string // "" for the default
	poll      string
	extra     map[string]any
}

func newMaildir(t testing.TB) *dirSource {
	t.Helper()
	p := filepath.Join(t.TempDir(), "Maildir")
	for _, d := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(p, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	return &dirSource{format: FormatMaildir, path: p, poll: "20ms"}
}

func newEMLDir(t testing.TB) *dirSource {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spool")
	if err := os.MkdirAll(p, 0o750); err != nil {
		t.Fatal(err)
	}
	return &dirSource{format: FormatEML, path: p, poll: "20ms"}
}

func (s *dirSource) Config(t testing.TB) []byte {
	m := map[string]any{"path": s.path, "poll_interval": s.poll}
	if s.processed != "" {
		m["processed"] = s.processed
	}
	if s.failed != "" {
		m["failed"] = s.failed
	}
	for k, v := range s.extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deliver writes raw the way an MTA does (temporary name, then rename) and
// returns the final file name.
func (s *dirSource) deliver(t testing.TB, raw []byte) string {
	t.Helper()
	n := deliveries.Add(1)
	if s.format == FormatMaildir {
		name := fmt.Sprintf("1700000000.M%06dP%d.test", n, os.Getpid())
		tmp := filepath.Join(s.path, "tmp", name)
		if err := os.WriteFile(tmp, raw, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(s.path, "new", name)); err != nil {
			t.Fatal(err)
		}
		return name
	}
	name := fmt.Sprintf("msg-%06d.eml", n)
	tmp := filepath.Join(s.path, "."+name+".part")
	if err := os.WriteFile(tmp, raw, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.path, name)); err != nil {
		t.Fatal(err)
	}
	return name
}

func (s *dirSource) Inject(t testing.TB, raw []byte) { s.deliver(t, raw) }

func (s *dirSource) inbox() string {
	if s.format == FormatMaildir {
		return filepath.Join(s.path, "new")
	}
	return s.path
}

func (s *dirSource) processedDir() string {
	switch {
	case s.processed != "":
		return s.processed
	case s.format == FormatMaildir:
		return filepath.Join(s.path, "cur")
	}
	return filepath.Join(s.path, "processed")
}

func (s *dirSource) failedDir() string {
	if s.failed != "" {
		return s.failed
	}
	return filepath.Join(s.path, "failed")
}

// files lists the regular, non-hidden files of dir (none if it is missing).
func files(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

func (s *dirSource) State(t testing.TB) []plugintest.Stored {
	t.Helper()
	var out []plugintest.Stored
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, n := range files(t, s.inbox()) {
		if s.format == FormatEML && !strings.HasSuffix(n, ".eml") {
			continue
		}
		out = append(out, plugintest.Stored{Raw: read(filepath.Join(s.inbox(), n)), Status: plugintest.Untouched})
	}
	for _, n := range files(t, s.processedDir()) {
		if s.format == FormatMaildir && s.processed == "" && !strings.HasSuffix(n, ":2,S") {
			t.Errorf("processed file %s lacks the S flag", n)
		}
		out = append(out, plugintest.Stored{Raw: read(filepath.Join(s.processedDir(), n)), Status: plugintest.Processed})
	}
	for _, n := range files(t, s.failedDir()) {
		if strings.HasSuffix(n, ".reason") {
			continue
		}
		reason, err := os.ReadFile(filepath.Join(s.failedDir(), n+".reason"))
		if err != nil {
			t.Errorf("rejected file %s has no reason file: %v", n, err)
		}
		out = append(out, plugintest.Stored{Raw: read(filepath.Join(s.failedDir(), n)), Status: plugintest.Rejected, Reason: string(reason)})
	}
	return out
}

func harness(mk func(t testing.TB) *dirSource) plugintest.Harness {
	return plugintest.Harness{
		Factory:   New,
		NewSource: func(t testing.TB) plugintest.Source { return mk(t) },
		Quiet:     200 * time.Millisecond,
		BadConfigs: []plugintest.BadConfig{
			{Name: "no_path", Mutate: func(m map[string]any) { delete(m, "path") }, Field: "path"},
			{Name: "path_number", Mutate: func(m map[string]any) { m["path"] = 7 }, Field: "path"},
			{Name: "poll_interval_word", Mutate: func(m map[string]any) { m["poll_interval"] = "often" }, Field: "poll_interval"},
			{Name: "poll_interval_number", Mutate: func(m map[string]any) { m["poll_interval"] = 5 }, Field: "poll_interval"},
			{Name: "poll_interval_zero", Mutate: func(m map[string]any) { m["poll_interval"] = "0s" }, Field: "poll_interval"},
			{Name: "max_message_size_unit", Mutate: func(m map[string]any) { m["max_message_size"] = "5 parsecs" }, Field: "max_message_size"},
			{Name: "max_message_size_negative", Mutate: func(m map[string]any) { m["max_message_size"] = -1 }, Field: "max_message_size"},
			{Name: "processed_is_path", Mutate: func(m map[string]any) { m["processed"] = m["path"] }, Field: "processed"},
			{Name: "failed_bool", Mutate: func(m map[string]any) { m["failed"] = true }, Field: "failed"},
		},
	}
}
