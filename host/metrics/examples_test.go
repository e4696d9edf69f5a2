package metrics_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

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
