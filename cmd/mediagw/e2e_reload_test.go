package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
)

// twoInboxes is a gateway with two maildir connectors feeding the archive
// driver, a second file driver, and the status endpoint on a free port.
const twoInboxes = `spool:
  dir: var/spool
log:
  level: info
  format: text
status:
  listen: 127.0.0.1:0
connectors:
  inbox:
    plugin: mediagw-connector-maildir
    map: archive
    max_in_flight: 8
    config:
      path: var/Maildir
      failed: var/failed
  inbox2:
    plugin: mediagw-connector-maildir
    map: archive
    max_in_flight: 8
    config:
      path: var/Maildir2
      failed: var/failed2
maps:
  archive: maps/archive.yaml
drivers:
  archive:
    type: file
    options:
      dir: var/archive
  copies:
    type: file
    options:
      dir: var/copies
`

// newTwoInboxSite is a site running twoInboxes, with both Maildirs.
func newTwoInboxSite(t testing.TB) *site {
	t.Helper()
	s := newSite(t)
	for _, d := range []string{"var/Maildir2/new", "var/Maildir2/cur", "var/Maildir2/tmp"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(s.cfg, []byte(twoInboxes), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

type statusDoc struct {
	Connectors map[string]struct {
		Health   string `json:"health"`
		Pid      int    `json:"pid"`
		Restarts int    `json:"restarts"`
	} `json:"connectors"`
}

var statusURL = regexp.MustCompile(`msg="status endpoint" url=(\S+)`)

func (g *gateway) status(t *testing.T) statusDoc {
	t.Helper()
	var url string
	waitFor(t, "the status endpoint", 30*time.Second, func() bool {
		m := statusURL.FindStringSubmatch(g.logText())
		if m != nil {
			url = m[1]
		}
		return m != nil
	}, g.logText)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st statusDoc
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// pids waits until both connectors run and returns their plugin pids.
func (g *gateway) connectorPids(t *testing.T) (int, int) {
	t.Helper()
	var a, b int
	waitFor(t, "both connectors running", 30*time.Second, func() bool {
		st := g.status(t)
		a, b = st.Connectors["inbox"].Pid, st.Connectors["inbox2"].Pid
		return a != 0 && b != 0 && st.Connectors["inbox"].Health == "healthy" && st.Connectors["inbox2"].Health == "healthy"
	}, g.logText)
	return a, b
}

func (s *site) dropInto(maildir, name string, raw []byte) {
	s.t.Helper()
	tmp := filepath.Join(s.dir, maildir, "tmp", name)
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, maildir, "new", name)); err != nil {
		s.t.Fatal(err)
	}
}

// TestReloadRestartsOnlyWhatChanged: SIGHUP after one connector's settings
// changed restarts that connector alone while mail keeps flowing through
// both; a reload with a broken config is refused with file:line and the
// running configuration stays.
func TestReloadRestartsOnlyWhatChanged(t *testing.T) {
	s := newTwoInboxSite(t)
	const perBatch = 40
	total := 0
	batch := func(tag string) {
		for i := 0; i < perBatch; i++ {
			s.drop(fmt.Sprintf("a-%s-%03d", tag, i), mail(total+i))
			s.dropInto("var/Maildir2", fmt.Sprintf("b-%s-%03d", tag, i), mail(1000+total+i))
		}
		total += perBatch
	}
	archived := func() int { return s.distinctArchived() }

	g := s.start()
	pidA, pidB := g.connectorPids(t)
	batch("1")
	waitFor(t, "the first batch archived", 30*time.Second, func() bool { return archived() == 2*perBatch }, g.logText)

	// Change inbox2 only, while mail is arriving in both.
	batch("2")
	s.editConfig("      path: var/Maildir2\n      failed: var/failed2", "      path: var/Maildir2\n      failed: var/failed2-new")
	g.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload", 30*time.Second, func() bool { return strings.Contains(g.logText(), `msg="config reloaded"`) }, g.logText)
	var newA, newB int
	waitFor(t, "inbox2 relaunched", 30*time.Second, func() bool {
		newA, newB = g.connectorPids(t)
		return newB != pidB
	}, g.logText)
	if newA != pidA {
		t.Errorf("inbox was restarted (pid %d → %d) though its settings did not change", pidA, newA)
	}
	if syscall.Kill(pidB, 0) == nil {
		t.Errorf("the old inbox2 plugin %d still runs", pidB)
	}
	log := g.logText()
	if !strings.Contains(log, `msg="stopping connector" connector=inbox2 why="configuration changed"`) {
		t.Errorf("log does not say why inbox2 stopped:\n%s", testenv.Tail(log, 30))
	}
	if strings.Contains(log, "connector=inbox why=") || strings.Contains(log, `msg="stopping driver"`) {
		t.Errorf("a unit that did not change was stopped:\n%s", testenv.Tail(log, 30))
	}
	batch("3")
	waitFor(t, "every message archived across the reload", 60*time.Second, func() bool { return archived() == 2*total }, g.logText)

	// A broken config: refused with file:line, the running one stays.
	good, err := os.ReadFile(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.editConfig("    max_in_flight: 8\n    config:\n      path: var/Maildir\n", "    max_in_flight: 8\n    max_inflight: 2\n    config:\n      path: var/Maildir\n")
	g.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the refused reload", 30*time.Second, func() bool { return strings.Contains(g.logText(), "config not reloaded") }, g.logText)
	if !strings.Contains(g.logText(), `mediagw.yaml:13: connectors.inbox: unknown key "max_inflight"`) {
		t.Errorf("the refused reload does not name the file and line:\n%s", testenv.Tail(g.logText(), 10))
	}
	batch("4")
	waitFor(t, "mail archived after the refused reload", 60*time.Second, func() bool { return archived() == 2*total }, g.logText)
	if a, b := g.connectorPids(t); a != newA || b != newB {
		t.Errorf("a refused reload restarted connectors: pids %d,%d → %d,%d", newA, newB, a, b)
	}
	if err := os.WriteFile(s.cfg, good, 0o644); err != nil {
		t.Fatal(err)
	}
	g.stop(t)

	// Nothing lost, nothing left unsettled, each message archived once
	// (a restart may repeat at most the messages in flight).
	seen := map[string]int{}
	for _, a := range s.archive() {
		seen[a.SourceID]++
	}
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	if len(seen) != 2*total || dups > 8 {
		t.Errorf("%d distinct messages archived (want %d), %d duplicates (at most 8 in flight)", len(seen), 2*total, dups)
	}
	if n, m := s.count("var/Maildir/new"), s.count("var/Maildir2/new"); n+m != 0 {
		t.Errorf("%d + %d messages left unsettled", n, m)
	}
	if n, m := s.count("var/Maildir/cur"), s.count("var/Maildir2/cur"); n != total || m != total {
		t.Errorf("cur/ holds %d and %d, want %d each", n, m, total)
	}
}
