package metrics_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mediagw/mediagw/host/activity"
	"github.com/mediagw/mediagw/host/metrics"
)

// The events of a fax job (two pages, a busy call, then a delivered one)
// and a report sent back count as a user would read them in a scrape.
func TestEventsCount(t *testing.T) {
	m := metrics.New(func() metrics.Snapshot {
		return metrics.Snapshot{Queued: map[string]int{"fax": 3}, OldestAge: map[string]time.Duration{"fax": 90 * time.Second},
			ConnectorHealth: map[string]string{"inbox": "degraded"},
			ModemHealth:     map[string]map[string]string{"fax": {"/dev/ttyUSB0": "healthy", "/dev/ttyUSB1": "down"}}, SpoolHealthy: false, SpoolWriteErrors: 2, SpoolDeferrals: 5,
			SpoolFileBytes: 8 << 20, SpoolLiveBytes: 1 << 20, SpoolFreeBytes: 7 << 20, SpoolCompactions: 1, SpoolLastPause: 250 * time.Millisecond}
	})
	fax := func(kind string, fields map[string]string) activity.Event {
		return activity.Event{Kind: kind, Driver: "fax", JobID: "r1.fax", Fields: fields}
	}
	for _, e := range []activity.Event{
		{Kind: activity.Received, Connector: "inbox"},
		{Kind: activity.Mapped, Connector: "inbox"},
		{Kind: activity.Received, Connector: "inbox"},
		{Kind: activity.Rejected, Connector: "inbox", Fields: map[string]string{"class": "map"}},
		fax(activity.Retried, map[string]string{"category": "busy", "call_seconds": "4.2"}),
		fax(activity.KindPage, map[string]string{"page": "1", "pages": "2"}),
		fax(activity.KindPage, map[string]string{"page": "2", "pages": "2"}),
		fax(activity.Delivered, map[string]string{"pages": "2", "call_seconds": "61.5"}),
		{Kind: activity.ReportSent, Connector: "inbox", Fields: map[string]string{"result": "ok"}},
	} {
		m.Observe(e)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string, labels map[string]string) float64 {
		f := fams[name]
		if f == nil {
			t.Errorf("no %s in the scrape", name)
			return -1
		}
	next:
		for _, mt := range f.Metric {
			for _, l := range mt.Label {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			switch {
			case mt.Counter != nil:
				return mt.Counter.GetValue()
			case mt.Gauge != nil:
				return mt.Gauge.GetValue()
			case mt.Histogram != nil:
				return mt.Histogram.GetSampleSum()
			}
		}
		t.Errorf("no %s%v in the scrape", name, labels)
		return -1
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"mediagw_mails_received_total", map[string]string{"connector": "inbox"}, 2},
		{"mediagw_mails_mapped_total", map[string]string{"connector": "inbox"}, 1},
		{"mediagw_mails_rejected_total", map[string]string{"reason": "map"}, 1},
		{"mediagw_jobs_retried_total", map[string]string{"driver": "fax", "category": "busy"}, 1},
		{"mediagw_jobs_delivered_total", map[string]string{"driver": "fax"}, 1},
		{"mediagw_fax_pages_sent_total", map[string]string{"driver": "fax"}, 2},
		{"mediagw_fax_call_seconds", map[string]string{"driver": "fax"}, 65.7},
		{"mediagw_reports_sent_total", map[string]string{"connector": "inbox", "result": "ok"}, 1},
		{"mediagw_modem_healthy", map[string]string{"driver": "fax", "device": "/dev/ttyUSB0"}, 1},
		{"mediagw_modem_healthy", map[string]string{"driver": "fax", "device": "/dev/ttyUSB1"}, 0},
		{"mediagw_modem_health", map[string]string{"driver": "fax", "device": "/dev/ttyUSB1", "state": "down"}, 1},
		{"mediagw_modem_health", map[string]string{"driver": "fax", "device": "/dev/ttyUSB1", "state": "degraded"}, 0},
		{"mediagw_queue_jobs", map[string]string{"driver": "fax"}, 3},
		{"mediagw_queue_oldest_job_age_seconds", map[string]string{"driver": "fax"}, 90},
		{"mediagw_connector_health", map[string]string{"connector": "inbox", "state": "degraded"}, 1},
		{"mediagw_connector_health", map[string]string{"connector": "inbox", "state": "healthy"}, 0},
		{"mediagw_spool_healthy", nil, 0},
		{"mediagw_spool_write_errors_total", nil, 2},
		{"mediagw_spool_deferrals_total", nil, 5},
		{"mediagw_spool_file_bytes", nil, 8 << 20},
		{"mediagw_spool_live_bytes", nil, 1 << 20},
		{"mediagw_spool_free_bytes", nil, 7 << 20},
		{"mediagw_spool_compactions_total", nil, 1},
		{"mediagw_spool_last_compaction_pause_seconds", nil, 0.25},
	} {
		if got := get(tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if h := fams["mediagw_fax_call_seconds"].Metric[0].Histogram; h.GetSampleCount() != 2 {
		t.Errorf("fax calls observed: %d, want 2", h.GetSampleCount())
	}
}
