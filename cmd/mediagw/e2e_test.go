package main_test

// Black-box tests: they build the mediagw and maildir plugin binaries and run
// them with a config from examples/, as an operator would.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
)

// binaries builds mediagw and the connector plugins into one folder (the
// host finds plugins beside its own binary), once per test run.
func binaries(t testing.TB) string {
	t.Helper()
	return testenv.Binaries(t, "github.com/mediagw/mediagw/cmd/mediagw",
		"github.com/mediagw/mediagw/plugin/maildir/cmd/mediagw-connector-maildir",
		"github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
}

func TestMain(m *testing.M) { testenv.RunMain(m) }

// site is a gateway installation in a temp dir: the example config and map,
// a Maildir, an archive.
type site struct {
	t   testing.TB
	dir string
	bin string
	cfg string
}

func newSite(t testing.TB) *site {
	t.Helper()
	s := &site{t: t, dir: t.TempDir(), bin: binaries(t)}
	for _, d := range []string{"maps", "var/Maildir/new", "var/Maildir/cur", "var/Maildir/tmp"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, "../../examples/maps/archive.yaml", filepath.Join(s.dir, "maps/archive.yaml"))
	s.cfg = filepath.Join(s.dir, "mediagw.yaml")
	copyFile(t, "../../examples/maildir-to-file.yaml", s.cfg)
	return s
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (s *site) editConfig(old, new string) {
	s.t.Helper()
	b, err := os.ReadFile(s.cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		s.t.Fatalf("config has no %q", old)
	}
	if err := os.WriteFile(s.cfg, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// drop delivers a mail into the Maildir the way an MTA does: tmp/, then rename into new/.
func (s *site) drop(name string, raw []byte) {
	s.t.Helper()
	tmp := filepath.Join(s.dir, "var/Maildir/tmp", name)
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "var/Maildir/new", name)); err != nil {
		s.t.Fatal(err)
	}
}

func mail(i int) []byte {
	return []byte(fmt.Sprintf("From: sender%d@example.com\r\nTo: gw@example.com\r\nSubject: message %d Ref: M-%d\r\n"+
		"Message-ID: <m%d@example.com>\r\n\r\nBody of message %d.\r\n", i, i, i, i, i))
}

// gateway is a running `mediagw run`.
type gateway struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	pids chan int
	done chan struct{}
}

func (s *site) start(args ...string) *gateway {
	s.t.Helper()
	g := &gateway{pids: make(chan int, 16), done: make(chan struct{})}
	g.cmd = exec.Command(filepath.Join(s.bin, "mediagw"), append([]string{"run", "-c", s.cfg}, args...)...)
	pr, pw := io.Pipe()
	g.cmd.Stdout, g.cmd.Stderr = pw, pw
	if err := g.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	pidRe := regexp.MustCompile(`msg="plugin started".* pid=(\d+)`)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			g.mu.Lock()
			g.log.WriteString(line + "\n")
			g.mu.Unlock()
			if m := pidRe.FindStringSubmatch(line); m != nil {
				pid, _ := strconv.Atoi(m[1])
				g.pids <- pid
			}
		}
	}()
	go func() { g.cmd.Wait(); pw.Close(); close(g.done) }()
	s.t.Cleanup(func() { g.kill() })
	return g
}

func (g *gateway) logText() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.log.String()
}

func (g *gateway) pluginPid(t testing.TB) int {
	t.Helper()
	select {
	case pid := <-g.pids:
		return pid
	case <-time.After(30 * time.Second):
		t.Fatalf("plugin did not start; log:\n%s", g.logText())
	}
	return 0
}

func (g *gateway) stop(t testing.TB) {
	t.Helper()
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("gateway did not stop on SIGTERM; log:\n%s", g.logText())
	}
}

func (g *gateway) kill() {
	if g.cmd.Process != nil {
		g.cmd.Process.Kill()
	}
	<-g.done
}

type archived struct {
	SourceID string            `json:"source_id"`
	Fields   map[string]string `json:"fields"`
}

// archive reads every record.json the file driver wrote.
func (s *site) archive() []archived {
	s.t.Helper()
	var out []archived
	files, _ := filepath.Glob(filepath.Join(s.dir, "var/archive/*/record.json"))
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(filepath.Dir(f)), ".") {
			continue // a record being written
		}
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a job written again replaces its folder
		}
		if err != nil {
			s.t.Fatal(err)
		}
		var a archived
		if err := json.Unmarshal(b, &a); err != nil {
			s.t.Fatalf("%s: %v", f, err)
		}
		out = append(out, a)
	}
	return out
}

func (s *site) distinctArchived() int {
	ids := map[string]bool{}
	for _, a := range s.archive() {
		ids[a.SourceID] = true
	}
	return len(ids)
}

func (s *site) count(sub string) int {
	es, _ := os.ReadDir(filepath.Join(s.dir, sub))
	n := 0
	for _, e := range es {
		if !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool, log func() string) {
	t.Helper()
	testenv.Eventually(t, timeout, what, cond, log)
}

func TestMaildirToFileExample(t *testing.T) {
	s := newSite(t)
	for _, f := range []string{"01-order.eml", "02-report.eml", "03-no-sender.eml"} {
		b, err := os.ReadFile("../../examples/mail/" + f)
		if err != nil {
			t.Fatal(err)
		}
		s.drop(f, b)
	}
	g := s.start()
	waitFor(t, "two archived records and one rejected mail", 30*time.Second, func() bool {
		return len(s.archive()) == 2 && s.count("var/failed") == 2 && s.count("var/Maildir/new") == 0
	}, g.logText)
	g.stop(t)

	got := map[string]archived{}
	for _, a := range s.archive() {
		got[a.SourceID] = a
	}
	if a := got["maildir:01-order.eml"]; a.Fields["sender"] != "alice@example.com" || a.Fields["reference"] != "A-1001" {
		t.Errorf("order record fields = %v", a.Fields)
	}
	if a := got["maildir:02-report.eml"]; a.Fields["subject"] != "Monatsbericht für November" || a.Fields["reference"] != "NOV-2026" {
		t.Errorf("report record fields = %v", a.Fields)
	}
	reason, err := os.ReadFile(filepath.Join(s.dir, "var/failed/03-no-sender.eml.reason"))
	if err != nil || !strings.Contains(string(reason), "sender") {
		t.Errorf("reason file = %q, %v; want it to name the sender field", reason, err)
	}
	if n := s.count("var/Maildir/cur"); n != 2 {
		t.Errorf("%d mails in cur/, want the 2 processed", n)
	}
	log := g.logText()
	for _, ev := range []string{"event=received", "event=mapped", "event=routed", "event=accepted", "event=delivered", "event=rejected"} {
		if !strings.Contains(log, ev) {
			t.Errorf("activity log lacks %s", ev)
		}
	}
}

// checkAllOnce asserts that every message reached the archive, at most
// maxDup times more than once in all, and that none is left unsettled.
func checkAllOnce(t *testing.T, s *site, n, maxDup int) {
	t.Helper()
	seen := map[string]int{}
	for _, a := range s.archive() {
		seen[a.SourceID]++
	}
	dups := 0
	for i := 0; i < n; i++ {
		c := seen[fmt.Sprintf("maildir:m%04d.eml", i)]
		if c == 0 {
			t.Errorf("message %d never reached the archive", i)
		}
		if c > 1 {
			dups += c - 1
		}
	}
	if dups > maxDup {
		t.Errorf("%d duplicate deliveries, want at most %d (the number in flight)", dups, maxDup)
	}
	if left := s.count("var/Maildir/new"); left != 0 {
		t.Errorf("%d messages left unsettled in new/", left)
	}
	if c := s.count("var/Maildir/cur"); c != n {
		t.Errorf("%d messages in cur/, want %d", c, n)
	}
	t.Logf("%d messages, %d duplicates at the driver", n, dups)
}

const bulk = 500

func TestKillPluginMidRun(t *testing.T) {
	s := newSite(t)
	for i := 0; i < bulk; i++ {
		s.drop(fmt.Sprintf("m%04d.eml", i), mail(i))
	}
	g := s.start()
	pid := g.pluginPid(t)
	waitFor(t, "some messages archived", 60*time.Second, func() bool { return len(s.archive()) >= bulk/5 }, g.logText)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill plugin %d: %v", pid, err)
	}
	t.Logf("killed plugin pid %d with %d archived", pid, len(s.archive()))
	newPid := g.pluginPid(t)
	if newPid == pid {
		t.Fatal("plugin was not relaunched")
	}
	waitFor(t, "all messages archived and settled", 120*time.Second, func() bool {
		return s.count("var/Maildir/new") == 0 && s.count("var/Maildir/cur") == bulk && s.distinctArchived() == bulk
	}, g.logText)
	g.stop(t)
	checkAllOnce(t, s, bulk, 16)
}

func TestKillHostMidRun(t *testing.T) {
	s := newSite(t)
	for i := 0; i < bulk; i++ {
		s.drop(fmt.Sprintf("m%04d.eml", i), mail(i))
	}
	g := s.start()
	waitFor(t, "some messages archived", 60*time.Second, func() bool { return len(s.archive()) >= bulk/5 }, g.logText)
	pid := g.pluginPid(t)
	g.cmd.Process.Signal(syscall.SIGKILL)
	<-g.done
	// The plugin notices its host is gone (go-plugin) and exits; make sure
	// no second reader of the Maildir is left behind.
	syscall.Kill(pid, syscall.SIGKILL)
	t.Logf("killed host with %d archived", len(s.archive()))

	g2 := s.start()
	waitFor(t, "all messages archived and settled after restart", 120*time.Second, func() bool {
		return s.count("var/Maildir/new") == 0 && s.count("var/Maildir/cur") == bulk
	}, g2.logText)
	// Jobs the first host accepted but had not delivered are in the spool.
	waitFor(t, "every message archived", 60*time.Second, func() bool { return s.distinctArchived() == bulk }, g2.logText)
	g2.stop(t)
	checkAllOnce(t, s, bulk, 16+4)
}

func TestConfigErrorsStopBeforeStart(t *testing.T) {
	cases := []struct {
		name string
		edit func(s *site)
		want string
	}{
		{"unknown key", func(s *site) { s.editConfig("    max_in_flight: 16", "    max_in_flight: 16\n    max_inflight: 3") }, `mediagw.yaml:21: connectors.inbox: unknown key "max_inflight" (valid keys: checksum, config, map, max_in_flight, plugin, routes)`},
		{"wrong type", func(s *site) { s.editConfig("max_in_flight: 16", "max_in_flight: lots") }, "mediagw.yaml:20: cannot unmarshal !!str `lots` into int"},
		{"missing plugin", func(s *site) { s.editConfig("plugin: mediagw-connector-maildir", "plugin: ./no-such-plugin") }, "connector inbox: plugin binary"},
		{"wrong checksum", func(s *site) {
			s.editConfig("    map: archive", "    map: archive\n    checksum: sha256:"+strings.Repeat("0", 64))
		}, "refusing to run it"},
		{"plugin rejects its config", func(s *site) { s.editConfig("      path: var/Maildir", "      colour: blue\n      path: var/Maildir") }, "mediagw.yaml:22: connector inbox: config.colour: unknown key"},
		{"unknown driver type", func(s *site) { s.editConfig("type: file", "type: teletype") }, `driver archive: unknown type "teletype"`},
		{"bad inbound route", func(s *site) {
			s.editConfig("drivers:\n", "inbound:\n  routes:\n    - {name: night, folder: var/night, match: {hours: ['8:00-25:00']}}\ndrivers:\n")
		}, `: inbound route night: hours "8:00-25:00": "25:00" is not a time of day`},
		{"unknown driver option", func(s *site) { s.editConfig("      dir: var/archive", "      dir: var/archive\n      dri: x") }, "mediagw.yaml:34: file driver archive: options: dri: unknown key (valid keys: dir, require)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			tc.edit(s)
			for _, verb := range []string{"validate", "run"} {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				out, err := exec.CommandContext(ctx, filepath.Join(s.bin, "mediagw"), verb, "-c", s.cfg).CombinedOutput()
				if err == nil {
					t.Fatalf("%s accepted a bad config:\n%s", verb, out)
				}
				if !strings.Contains(string(out), tc.want) {
					t.Errorf("%s output:\n%s\nwant it to contain %q", verb, out, tc.want)
				}
				if strings.Contains(string(out), "gateway started") {
					t.Errorf("%s started half-way:\n%s", verb, out)
				}
			}
			if _, err := os.Stat(filepath.Join(s.dir, "var/spool")); err == nil && tc.name != "wrong checksum" && tc.name != "plugin rejects its config" {
				t.Errorf("a spool was created for a config that cannot run")
			}
		})
	}
}

func TestValidateExample(t *testing.T) {
	s := newSite(t)
	out, err := exec.Command(filepath.Join(s.bin, "mediagw"), "validate", "-c", s.cfg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": ok") {
		t.Fatalf("validate example: %v\n%s", err, out)
	}
}

func rssKB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// BenchmarkIdleRSS reports the resident memory of an idle gateway (host and
// maildir plugin) after it settled the example mails.
func BenchmarkIdleRSS(b *testing.B) {
	s := newSite(b)
	for i := 0; i < 20; i++ {
		s.drop(fmt.Sprintf("m%04d.eml", i), mail(i))
	}
	g := s.start()
	pid := g.pluginPid(b)
	waitFor(b, "mails archived", 60*time.Second, func() bool { return s.distinctArchived() == 20 }, g.logText)
	time.Sleep(2 * time.Second)
	host, plug := rssKB(g.cmd.Process.Pid), rssKB(pid)
	b.ResetTimer() // the figures are memory, not time
	b.ReportMetric(host/1024, "host-RSS-MB")
	b.ReportMetric(plug/1024, "plugin-RSS-MB")
	g.stop(b)
}

// A setting the plugin only warns about does not fail validation, but the
// warning is shown with its line.
func TestValidateShowsWarnings(t *testing.T) {
	s := newSite(t)
	if err := os.RemoveAll(filepath.Join(s.dir, "var/Maildir")); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(s.bin, "mediagw"), "validate", "-c", s.cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("validate with a missing Maildir (a warning only): %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^warning: .*mediagw\.yaml:\d+: connector inbox: config\.path: `).Match(out) || !strings.Contains(string(out), ": ok") {
		t.Fatalf("validate output lacks the plugin's warning with file:line:\n%s", out)
	}
}
