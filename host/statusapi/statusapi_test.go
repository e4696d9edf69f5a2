package statusapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/host/activity"
	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/pluginmgr"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/host/statusapi"
	"github.com/mediagw/mediagw/internal/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

// gateway is a host running the Maildir plugin and the file driver in a
// temp dir, with the API on a test server.
type gateway struct {
	t      *testing.T
	dir    string
	h      *host.Host
	srv    *httptest.Server
	log    testenv.Buffer
	mu     sync.Mutex
	events []activity.Event
}

const site = `spool:
  dir: var/spool
connectors:
  inbox:
    plugin: %s
    map: archive
    config:
      path: var/Maildir
      failed: var/failed
maps:
  archive: archive.yaml
drivers:
  archive:
    type: file
    max_attempts: 1
    options:
      dir: var/archive
`

func startGateway(t *testing.T) *gateway {
	bin := testenv.Binaries(t, "github.com/mediagw/mediagw/plugin/maildir/cmd/mediagw-connector-maildir")
	g := &gateway{t: t, dir: t.TempDir()}
	for _, d := range []string{"var/Maildir/new", "var/Maildir/cur", "var/Maildir/tmp"} {
		if err := os.MkdirAll(filepath.Join(g.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m, err := os.ReadFile("../../examples/maps/archive.yaml")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(g.dir, "archive.yaml"), string(m))
	cfgPath := filepath.Join(g.dir, "mediagw.yaml")
	write(t, cfgPath, fmt.Sprintf(site, filepath.Join(bin, "mediagw-connector-maildir")))
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var out io.Writer = &g.log
	if testing.Verbose() {
		out = io.MultiWriter(&g.log, os.Stderr)
	}
	log := slog.New(slog.NewTextHandler(out, nil))
	plan, err := host.Prepare(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	g.h, err = host.New(plan, log)
	if err != nil {
		t.Fatal(err)
	}
	g.h.Backoff = func() *pluginmgr.Backoff {
		return &pluginmgr.Backoff{Min: time.Second, Max: 2 * time.Second, Stable: time.Minute}
	}
	events, cancelSub := g.h.Activity().Subscribe(1024)
	go func() {
		for e := range events {
			g.mu.Lock()
			g.events = append(g.events, e)
			g.mu.Unlock()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.h.Run(ctx, plan) }()
	g.srv = httptest.NewServer(statusapi.Handler(g.h))
	t.Cleanup(func() {
		g.srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		cancelSub()
	})
	return g
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (g *gateway) drop(name, raw string) {
	tmp := filepath.Join(g.dir, "var/Maildir/tmp", name)
	write(g.t, tmp, raw)
	if err := os.Rename(tmp, filepath.Join(g.dir, "var/Maildir/new", name)); err != nil {
		g.t.Fatal(err)
	}
}

func goodMail(n int) string {
	return fmt.Sprintf("From: sender%d@example.com\r\nTo: gw@example.com\r\nSubject: order Ref: M-%d\r\nMessage-ID: <m%d@example.com>\r\n\r\nBody %d.\r\n", n, n, n, n)
}

// call does a request and decodes the JSON answer; it returns the status.
func (g *gateway) call(method, path string, out any) (int, http.Header) {
	g.t.Helper()
	req, _ := http.NewRequest(method, g.srv.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			g.t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
	return resp.StatusCode, resp.Header
}

// waitFor polls cond until it holds, for at most 30 s.
func (g *gateway) waitFor(what string, cond func() bool) {
	g.t.Helper()
	testenv.Eventually(g.t, 30*time.Second, what, cond)
}

func (g *gateway) jobs(query string) []spool.JobInfo {
	var js []spool.JobInfo
	if code, _ := g.call("GET", "/api/jobs"+query, &js); code != 200 {
		g.t.Fatalf("GET /api/jobs%s: %d", query, code)
	}
	return js
}

func (g *gateway) kinds() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]int{}
	for _, e := range g.events {
		out[e.Kind]++
	}
	return out
}

func (g *gateway) scrape() map[string]*dto.MetricFamily {
	g.t.Helper()
	resp, err := http.Get(g.srv.URL + "/metrics")
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		g.t.Fatalf("scrape does not parse: %v", err)
	}
	return fams
}

// value is the value of the series of family name with these labels.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestJobsAPIAndMetrics: mail A fails for good (the archive folder is a
// file), a mail without sender is rejected, mail B is delivered once the
// folder can be made; the operator retries A through the API and it is
// delivered. The scrape counts exactly that.
func TestJobsAPIAndMetrics(t *testing.T) {
	g := startGateway(t)
	archive := filepath.Join(g.dir, "var/archive")
	write(t, archive, "in the way")

	g.drop("a", goodMail(1))
	g.drop("bad", "To: gw@example.com\r\nSubject: nobody\r\n\r\nno sender\r\n")
	g.waitFor("mail A's job to fail", func() bool { return len(g.jobs("?state=failed")) == 1 })
	g.waitFor("the rejection", func() bool { return g.kinds()[activity.Rejected] == 1 })
	a := g.jobs("?state=failed&driver=archive")[0]
	if a.Attempts != 1 || a.Category != "io" || a.Connector != "inbox" || a.Fields["sender"] != "sender1@example.com" || len(a.Documents) == 0 {
		t.Errorf("failed job = %+v", a)
	}
	var detail spool.JobDetail
	if code, _ := g.call("GET", "/api/jobs/"+a.ID, &detail); code != 200 || len(detail.History) != 1 ||
		detail.History[0].Result != "permanent" || detail.History[0].Category != "io" {
		t.Errorf("GET /api/jobs/%s: %d %+v", a.ID, code, detail)
	}

	// The status counts the failed job apart: the gateway itself is healthy.
	var st host.Status
	g.waitFor("a healthy gateway", func() bool { g.call("GET", "/status", &st); return st.Health == host.Healthy })
	if st.Failed != 1 || st.Drivers["archive"].Failed != 1 || st.Drivers["archive"].Slots != 4 || st.Spool.Health != spool.Healthy {
		t.Errorf("status = %+v", st)
	}

	if err := os.Remove(archive); err != nil {
		t.Fatal(err)
	}
	g.drop("b", goodMail(2))
	g.waitFor("mail B delivered", func() bool { return g.kinds()[activity.Delivered] == 1 })

	for _, tc := range []struct {
		method, path string
		want         int
		wantErr      string
	}{
		{"GET", "/api/jobs/nope", 404, "not found"},
		{"POST", "/api/jobs/nope/retry", 404, "not found"},
		{"POST", "/api/jobs/nope/purge", 404, "not found"},
		{"GET", "/api/jobs?state=stuck", 400, "state"},
		{"GET", "/api/jobs?limit=x", 400, "limit"},
		{"POST", "/api/connectors/nope/test", 404, "no such connector"},
		{"GET", "/api/queues", 404, "no such API"},
	} {
		var e struct{ Error string }
		code, hdr := g.call(tc.method, tc.path, &e)
		if code != tc.want || !strings.Contains(e.Error, tc.wantErr) || hdr.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s = %d %q (Cache-Control %q), want %d and an error with %q", tc.method, tc.path, code, e.Error, hdr.Get("Cache-Control"), tc.want, tc.wantErr)
		}
	}

	var res map[string]string
	if code, _ := g.call("POST", "/api/jobs/"+a.ID+"/retry", &res); code != 200 || res["result"] != "requeued" {
		t.Fatalf("retry: %d %v", code, res)
	}
	g.waitFor("mail A delivered after the retry", func() bool { return g.kinds()[activity.Delivered] == 2 })
	if code, _ := g.call("POST", "/api/jobs/"+a.ID+"/retry", nil); code != 404 {
		t.Errorf("retry of a delivered job: %d, want 404", code)
	}
	if entries, _ := os.ReadDir(archive); len(entries) != 2 {
		t.Errorf("archive holds %d jobs, want 2", len(entries))
	}

	var tr statusapi.TestResult
	if code, _ := g.call("POST", "/api/connectors/inbox/test", &tr); code != 200 || tr.Category != "ok" {
		t.Errorf("connector test: %d %+v", code, tr)
	}

	fams := g.scrape()
	for _, want := range []struct {
		name   string
		labels []string
		value  float64
	}{
		{"mediagw_mails_received_total", []string{"connector", "inbox"}, 3},
		{"mediagw_mails_mapped_total", []string{"connector", "inbox"}, 2},
		{"mediagw_mails_rejected_total", []string{"connector", "inbox", "reason", "map"}, 1},
		{"mediagw_jobs_delivered_total", []string{"driver", "archive"}, 2},
		{"mediagw_jobs_failed_total", []string{"driver", "archive", "category", "io"}, 1},
		{"mediagw_queue_jobs", []string{"driver", "archive"}, 0},
		{"mediagw_failed_jobs", []string{"driver", "archive"}, 0},
		{"mediagw_connector_healthy", []string{"connector", "inbox"}, 1},
		{"mediagw_connector_health", []string{"connector", "inbox", "state", "healthy"}, 1},
		{"mediagw_plugin_restarts_total", []string{"connector", "inbox"}, 0},
		{"mediagw_driver_healthy", []string{"driver", "archive"}, 1},
		{"mediagw_spool_healthy", nil, 1},
		{"mediagw_spool_write_errors_total", nil, 0},
		{"mediagw_spool_deferrals_total", nil, 0},
		{"mediagw_activity_subscribers", nil, 1},
	} {
		got, ok := value(fams, want.name, want.labels...)
		if !ok || got != want.value {
			t.Errorf("%s%v = %v (present: %v), want %v", want.name, want.labels, got, ok, want.value)
		}
	}
	k := g.kinds()
	for _, kind := range []string{activity.Received, activity.Mapped, activity.KindSpooled, activity.Rejected, activity.Attempt,
		activity.Failed, activity.Requeued, activity.Delivered} {
		if k[kind] == 0 {
			t.Errorf("no %s event; saw %v", kind, k)
		}
	}
}

// TestPluginKilled: a plugin killed with SIGKILL shows as down without the
// words it said while it ran, is relaunched, and both changes are logged
// once (down at warn, the recovery at info); the scrape counts the restart.
func TestPluginKilled(t *testing.T) {
	g := startGateway(t)
	var st struct {
		Health     string
		Connectors map[string]struct {
			Health    string `json:"health"`
			Message   string `json:"message"`
			LastError string `json:"last_error"`
			Pid       int    `json:"pid"`
			Restarts  int    `json:"restarts"`
		}
	}
	g.waitFor("a running plugin", func() bool {
		g.call("GET", "/status", &st)
		c := st.Connectors["inbox"]
		return c.Health == "healthy" && strings.HasPrefix(c.Message, "reading ")
	})
	pid := st.Connectors["inbox"].Pid
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	g.waitFor("the connector down", func() bool {
		g.call("GET", "/status", &st)
		return st.Connectors["inbox"].Health == "down"
	})
	if c := st.Connectors["inbox"]; c.Message != "" || c.Pid != 0 || c.Restarts != 1 || c.LastError == "" || st.Health != host.Down {
		t.Errorf("status of the killed connector: %+v (gateway %s)", c, st.Health)
	}
	g.waitFor("the relaunched plugin", func() bool {
		g.call("GET", "/status", &st)
		c := st.Connectors["inbox"]
		return c.Health == "healthy" && c.Pid != 0 && c.Pid != pid
	})
	if st.Health != host.Healthy {
		t.Errorf("gateway after the relaunch: %s", st.Health)
	}
	// The status changes first, then the line is written.
	g.waitFor("the recovery logged", func() bool { return strings.Contains(g.log.String(), "health=healthy was=down") })
	log := g.log.String()
	for re, n := range map[string]int{
		`level=WARN msg="connector health" connector=inbox health=down was=healthy`: 1,
		`level=INFO msg="connector health" connector=inbox health=healthy was=down`: 1,
	} {
		if got := len(regexp.MustCompile(re).FindAllString(log, -1)); got != n {
			t.Errorf("%d log lines match %s, want %d:\n%s", got, re, n, log)
		}
	}
	if v, ok := value(g.scrape(), "mediagw_plugin_restarts_total", "connector", "inbox"); !ok || v != 1 {
		t.Errorf("mediagw_plugin_restarts_total = %v, want 1", v)
	}
}

// TestSpoolCompactAPI: after a burst of mails went through, the operator
// compacts the spool through the API; the status and the scrape show the
// smaller file.
func TestSpoolCompactAPI(t *testing.T) {
	g := startGateway(t)
	const n = 120
	for i := range n {
		g.drop(fmt.Sprintf("m%d", i), goodMail(i)+strings.Repeat("Filler line of a long mail body.\r\n", 100))
	}
	g.waitFor("every mail delivered", func() bool {
		return g.kinds()[activity.Delivered] == n
	})
	var before host.Status
	g.call("GET", "/status", &before)
	var c spool.Compaction
	if code, _ := g.call("POST", "/api/spool/compact", &c); code != 200 {
		t.Fatalf("POST /api/spool/compact: %d", code)
	}
	if c.Before.FileBytes != before.Spool.FileBytes || c.After.FileBytes >= c.Before.FileBytes/2 || c.Paused <= 0 {
		t.Fatalf("compaction %+v; the status before said %+v", c, before.Spool.Size)
	}
	var after host.Status
	g.call("GET", "/status", &after)
	if after.Spool.FileBytes != c.After.FileBytes || after.Spool.LiveBytes+after.Spool.FreeBytes != after.Spool.FileBytes ||
		after.Spool.LastCompaction == nil {
		t.Fatalf("status after compaction: %+v", after.Spool)
	}
	fams := g.scrape()
	for _, tc := range []struct {
		name string
		want float64
	}{
		{"mediagw_spool_file_bytes", float64(after.Spool.FileBytes)},
		{"mediagw_spool_compactions_total", 1},
	} {
		if v, ok := value(fams, tc.name); !ok || v != tc.want {
			t.Errorf("%s = %v (found %v), want %v", tc.name, v, ok, tc.want)
		}
	}
	for _, name := range []string{"mediagw_spool_live_bytes", "mediagw_spool_free_bytes", "mediagw_spool_last_compaction_pause_seconds"} {
		if v, ok := value(fams, name); !ok || v <= 0 {
			t.Errorf("%s = %v (found %v), want > 0", name, v, ok)
		}
	}
	if !strings.Contains(g.log.String(), `reason=operator`) {
		t.Errorf("no log line of the operator's compaction:\n%s", g.log.String())
	}
}
