package metrics_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/mediagw/mediagw/host/activity"
	"github.com/mediagw/mediagw/host/metrics"
)

var metricName = regexp.MustCompile(`\bmediagw_[a-z_]+\b`)

// checkExprs fails for an expression naming a metric the gateway does not
// export, and for a file that names none.
func checkExprs(t *testing.T, file string, exprs []string) {
	t.Helper()
	names := metrics.New(func() metrics.Snapshot { return metrics.Snapshot{} }).Names()
	used := 0
	for _, e := range exprs {
		for _, n := range metricName.FindAllString(e, -1) {
			used++
			if !slices.Contains(names, n) {
				t.Errorf("%s: %q names %s, which mediagw does not export (it has %v)", file, e, n, names)
			}
		}
	}
	if used == 0 {
		t.Errorf("%s: no expression names a mediagw metric", file)
	}
}

func TestAlertRules(t *testing.T) {
	const file = "../../examples/monitoring/mediagw-alerts.yaml"
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var exprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("%s: a rule without alert or expr: %+v", file, r)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	checkExprs(t, file, exprs)
}

func TestGrafanaDashboard(t *testing.T) {
	const file = "../../examples/monitoring/grafana-dashboard.json"
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s is not valid JSON: %v", file, err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", file, p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	if dash.Title == "" || len(dash.Panels) == 0 {
		t.Errorf("%s: no title or no panels", file)
	}
	checkExprs(t, file, exprs)
}

// TestOperatorMetrics: every metric an operator needs (the console issue's
// list) is in a scrape, parsed with expfmt, with its conventional name,
// type, base unit and labels, and the example alert rules or dashboard use
// it.
func TestOperatorMetrics(t *testing.T) {
	m := metrics.New(func() metrics.Snapshot {
		return metrics.Snapshot{Queued: map[string]int{"fax": 1}, InProgress: map[string]int{"fax": 0}, Failed: map[string]int{"fax": 0},
			OldestAge: map[string]time.Duration{"fax": time.Second}, DriverHealthy: map[string]bool{"fax": true},
			ConnectorHealthy: map[string]bool{"inbox": true}, ConnectorHealth: map[string]string{"inbox": "healthy"},
			Restarts: map[string]int{"inbox": 0}, ModemHealth: map[string]map[string]string{"fax": {"/dev/ttyUSB0": "healthy"}}}
	})
	for _, e := range []activity.Event{
		{Kind: activity.Received, Connector: "inbox"}, {Kind: activity.Mapped, Connector: "inbox"},
		{Kind: activity.Rejected, Connector: "inbox", Fields: map[string]string{"class": "map"}},
		{Kind: activity.Deferred, Connector: "inbox"},
		{Kind: activity.KindPage, Driver: "fax"}, {Kind: activity.Delivered, Driver: "fax", Fields: map[string]string{"call_seconds": "30"}},
		{Kind: activity.Failed, Driver: "fax", Fields: map[string]string{"category": "busy"}},
		{Kind: activity.ReportSent, Connector: "inbox", Fields: map[string]string{"result": "ok"}},
	} {
		m.Observe(e)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	var examples []byte
	for _, f := range []string{"../../examples/monitoring/mediagw-alerts.yaml", "../../examples/monitoring/grafana-dashboard.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		examples = append(examples, b...)
	}
	for _, tc := range []struct {
		what, name string
		typ        dto.MetricType
		labels     string
	}{
		{"mails received", "mediagw_mails_received_total", dto.MetricType_COUNTER, "connector"},
		{"mails mapped", "mediagw_mails_mapped_total", dto.MetricType_COUNTER, "connector"},
		{"mails rejected by reason class", "mediagw_mails_rejected_total", dto.MetricType_COUNTER, "connector,reason"},
		{"jobs delivered", "mediagw_jobs_delivered_total", dto.MetricType_COUNTER, "driver"},
		{"jobs failed by category", "mediagw_jobs_failed_total", dto.MetricType_COUNTER, "category,driver"},
		{"fax pages sent", "mediagw_fax_pages_sent_total", dto.MetricType_COUNTER, "driver"},
		{"fax call seconds", "mediagw_fax_call_seconds", dto.MetricType_HISTOGRAM, "driver"},
		{"queue depth", "mediagw_queue_jobs", dto.MetricType_GAUGE, "driver"},
		{"oldest job age", "mediagw_queue_oldest_job_age_seconds", dto.MetricType_GAUGE, "driver"},
		{"plugin restarts", "mediagw_plugin_restarts_total", dto.MetricType_COUNTER, "connector"},
		{"connector health", "mediagw_connector_healthy", dto.MetricType_GAUGE, "connector"},
		{"modem health", "mediagw_modem_healthy", dto.MetricType_GAUGE, "device,driver"},
		{"modem health state", "mediagw_modem_health", dto.MetricType_GAUGE, "device,driver,state"},
		{"driver health", "mediagw_driver_healthy", dto.MetricType_GAUGE, "driver"},
		{"spool health", "mediagw_spool_healthy", dto.MetricType_GAUGE, ""},
		{"spool write errors", "mediagw_spool_write_errors_total", dto.MetricType_COUNTER, ""},
		{"spool deferrals", "mediagw_spool_deferrals_total", dto.MetricType_COUNTER, ""},
		{"reports sent", "mediagw_reports_sent_total", dto.MetricType_COUNTER, "connector,result"},
	} {
		f := fams[tc.name]
		if f == nil || len(f.Metric) == 0 {
			t.Errorf("%s: no %s in the scrape", tc.what, tc.name)
			continue
		}
		if f.GetType() != tc.typ {
			t.Errorf("%s: %s is a %v, want a %v", tc.what, tc.name, f.GetType(), tc.typ)
		}
		var labels []string
		for _, l := range f.Metric[0].Label {
			labels = append(labels, l.GetName())
		}
		slices.Sort(labels)
		if got := strings.Join(labels, ","); got != tc.labels {
			t.Errorf("%s: %s has labels %q, want %q", tc.what, tc.name, got, tc.labels)
		}
		if !regexp.MustCompile(`\b` + tc.name + `(_bucket)?\b`).Match(examples) {
			t.Errorf("%s: neither the alert rules nor the dashboard use %s", tc.what, tc.name)
		}
	}
}
