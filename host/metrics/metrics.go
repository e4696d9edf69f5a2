// Package metrics is the gateway's Prometheus metrics, on a registry of its
// own: counters fed by the activity hub's events, and gauges read at scrape
// time from the spool, the drivers and the connectors.
package metrics

import (
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mediagw/mediagw/host/activity"
)

// Snapshot is what the gauges show, read when Prometheus scrapes.
type Snapshot struct {
	// Per driver: jobs waiting (queued or retrying) and in an attempt, and
	// the age of the oldest queued job.
	Queued     map[string]int
	InProgress map[string]int
	Failed     map[string]int
	OldestAge  map[string]time.Duration
	// DriverHealthy and ConnectorHealthy: 1 healthy, 0 not.
	DriverHealthy    map[string]bool
	ConnectorHealthy map[string]bool
	ConnectorHealth  map[string]string // healthy, starting, degraded, down
	Restarts         map[string]int
	// ModemHealth is each device's health per driver (the fax driver's
	// modems): healthy, degraded or down.
	ModemHealth      map[string]map[string]string
	SpoolHealthy     bool
	SpoolWriteErrors int
	SpoolDeferrals   int
	// The spool file's size, the bytes of it that hold data and the bytes
	// free for reuse (given back to the disk by a compaction).
	SpoolFileBytes int64
	SpoolLiveBytes int64
	SpoolFreeBytes int64
	// SpoolCompactions counts compactions since start; SpoolLastPause is
	// how long the last one held the spool.
	SpoolCompactions int
	SpoolLastPause   time.Duration
	Subscribers      int
	Dropped          uint64
}

// Metrics holds the gateway's collectors.
type Metrics struct {
	reg       *prometheus.Registry
	received  *prometheus.CounterVec
	mapped    *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	deferred  *prometheus.CounterVec
	delivered *prometheus.CounterVec
	failed    *prometheus.CounterVec
	retried   *prometheus.CounterVec
	pages     *prometheus.CounterVec
	callSecs  *prometheus.HistogramVec
	reports   *prometheus.CounterVec
	faxesIn   *prometheus.CounterVec
	pagesIn   *prometheus.CounterVec
}

// Health states a connector can be in, each a series of
// mediagw_connector_health.
var connectorStates = []string{"starting", "healthy", "degraded", "down", "standby"}

// Health states a modem can be in, each a series of mediagw_modem_health.
var modemStates = []string{"healthy", "degraded", "down"}

// New makes the metrics; snap is called on every scrape.
func New(snap func() Snapshot) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mediagw", Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	m.received = f("mails_received_total", "Messages connectors offered (duplicates included).", "connector")
	m.mapped = f("mails_mapped_total", "Messages the data map turned into a record.", "connector")
	m.rejected = f("mails_rejected_total", "Messages rejected for good, by reason class (map, no_route, unknown_route, driver).", "connector", "reason")
	m.deferred = f("mails_deferred_total", "Messages the gateway could not take now (left at the source).", "connector")
	m.delivered = f("jobs_delivered_total", "Jobs a line driver delivered.", "driver")
	m.failed = f("jobs_failed_total", "Jobs that failed for good, by category.", "driver", "category")
	m.retried = f("jobs_retried_total", "Attempts that failed for now, by category (the job is tried again).", "driver", "category")
	m.pages = f("fax_pages_sent_total", "Fax pages put on the line.", "driver")
	m.faxesIn = f("faxes_received_total", "Received faxes put in the spool, complete or cut short (complete=false).", "driver", "complete")
	m.pagesIn = f("fax_pages_received_total", "Received fax pages stored on disk.", "driver")
	m.reports = f("reports_sent_total", "Delivery reports sent back to senders, by result.", "connector", "result")
	m.callSecs = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "mediagw", Name: "fax_call_seconds",
		Help:    "Length of fax calls, from dialling to the end of the attempt.",
		Buckets: []float64{5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600}}, []string{"driver"})
	m.reg.MustRegister(m.callSecs)
	m.reg.MustRegister(&gauges{snap: snap})
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the metrics live on (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Observe counts an activity event; give it to activity.Hub.Observe.
func (m *Metrics) Observe(e activity.Event) {
	switch e.Kind {
	case activity.Received:
		m.received.WithLabelValues(e.Connector).Inc()
	case activity.Mapped:
		m.mapped.WithLabelValues(e.Connector).Inc()
	case activity.Rejected:
		m.rejected.WithLabelValues(e.Connector, orUnknown(e.Fields["class"])).Inc()
	case activity.Deferred:
		m.deferred.WithLabelValues(e.Connector).Inc()
	case activity.Delivered:
		m.delivered.WithLabelValues(e.Driver).Inc()
	case activity.Failed:
		m.failed.WithLabelValues(e.Driver, orUnknown(e.Fields["category"])).Inc()
	case activity.Retried:
		m.retried.WithLabelValues(e.Driver, orUnknown(e.Fields["category"])).Inc()
	case activity.KindPage:
		m.pages.WithLabelValues(e.Driver).Inc()
	case activity.FaxReceived:
		m.faxesIn.WithLabelValues(e.Driver, strconv.FormatBool(e.Fields["incomplete"] == "")).Inc()
	case activity.PageReceived:
		m.pagesIn.WithLabelValues(e.Driver).Inc()
	case activity.ReportSent:
		m.reports.WithLabelValues(e.Connector, orUnknown(e.Fields["result"])).Inc()
	}
	switch e.Kind {
	case activity.Delivered, activity.Failed, activity.Retried:
		if s, err := strconv.ParseFloat(e.Fields["call_seconds"], 64); err == nil {
			m.callSecs.WithLabelValues(e.Driver).Observe(s)
		}
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

var (
	descQueued     = prometheus.NewDesc("mediagw_queue_jobs", "Jobs waiting in a driver's queue (queued or waiting to retry).", []string{"driver"}, nil)
	descInProgress = prometheus.NewDesc("mediagw_queue_in_progress_jobs", "Jobs in a delivery attempt.", []string{"driver"}, nil)
	descFailed     = prometheus.NewDesc("mediagw_failed_jobs", "Jobs that failed for good and are kept in the spool.", []string{"driver"}, nil)
	descOldest     = prometheus.NewDesc("mediagw_queue_oldest_job_age_seconds", "Age of the oldest job in a driver's queue (0 when empty).", []string{"driver"}, nil)
	descDriverUp   = prometheus.NewDesc("mediagw_driver_healthy", "1 when the line driver is healthy (a modem answers), else 0.", []string{"driver"}, nil)
	descConnUp     = prometheus.NewDesc("mediagw_connector_healthy", "1 when the connector is healthy, else 0.", []string{"connector"}, nil)
	descConnState  = prometheus.NewDesc("mediagw_connector_health", "1 for the connector's current health state.", []string{"connector", "state"}, nil)
	descModemUp    = prometheus.NewDesc("mediagw_modem_healthy", "1 when the modem answers (idle or on a call), else 0.", []string{"driver", "device"}, nil)
	descModemState = prometheus.NewDesc("mediagw_modem_health", "1 for the modem's current health state (healthy; degraded: out of service after a failed call; down: its probe failed too).", []string{"driver", "device", "state"}, nil)
	descRestarts   = prometheus.NewDesc("mediagw_plugin_restarts_total", "Times a connector's plugin was relaunched.", []string{"connector"}, nil)
	descSpoolUp    = prometheus.NewDesc("mediagw_spool_healthy", "1 when the last spool write succeeded and nothing was deferred since.", nil, nil)
	descWriteErrs  = prometheus.NewDesc("mediagw_spool_write_errors_total", "Spool writes that failed (full disk, I/O error).", nil, nil)
	descDeferrals  = prometheus.NewDesc("mediagw_spool_deferrals_total", "Messages deferred because the spool could not take them.", nil, nil)
	descFileBytes  = prometheus.NewDesc("mediagw_spool_file_bytes", "Size of the spool file.", nil, nil)
	descLiveBytes  = prometheus.NewDesc("mediagw_spool_live_bytes", "Bytes of the spool file that hold data.", nil, nil)
	descFreeBytes  = prometheus.NewDesc("mediagw_spool_free_bytes", "Bytes of the spool file free for reuse; a compaction gives them back to the disk.", nil, nil)
	descCompacts   = prometheus.NewDesc("mediagw_spool_compactions_total", "Compactions of the spool file since the gateway started.", nil, nil)
	descPause      = prometheus.NewDesc("mediagw_spool_last_compaction_pause_seconds", "How long the last compaction held spool writes (accepts, outcomes).", nil, nil)
	descSubs       = prometheus.NewDesc("mediagw_activity_subscribers", "Open live activity streams.", nil, nil)
	descDropped    = prometheus.NewDesc("mediagw_activity_dropped_events_total", "Activity events slow live streams missed.", nil, nil)
)

type gauges struct{ snap func() Snapshot }

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueued, descInProgress, descFailed, descOldest, descDriverUp, descConnUp,
		descConnState, descModemUp, descModemState, descRestarts, descSpoolUp, descWriteErrs, descDeferrals, descFileBytes, descLiveBytes, descFreeBytes,
		descCompacts, descPause, descSubs, descDropped} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	s := g.snap()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for d, n := range s.Queued {
		gauge(descQueued, float64(n), d)
	}
	for d, n := range s.InProgress {
		gauge(descInProgress, float64(n), d)
	}
	for d, n := range s.Failed {
		gauge(descFailed, float64(n), d)
	}
	for d, a := range s.OldestAge {
		gauge(descOldest, a.Seconds(), d)
	}
	for d, ok := range s.DriverHealthy {
		gauge(descDriverUp, b2f(ok), d)
	}
	for c, ok := range s.ConnectorHealthy {
		gauge(descConnUp, b2f(ok), c)
	}
	for c, h := range s.ConnectorHealth {
		for _, st := range connectorStates {
			gauge(descConnState, b2f(h == st), c, st)
		}
	}
	for d, devs := range s.ModemHealth {
		for dev, h := range devs {
			gauge(descModemUp, b2f(h == "healthy"), d, dev)
			for _, st := range modemStates {
				gauge(descModemState, b2f(h == st), d, dev, st)
			}
		}
	}
	for c, n := range s.Restarts {
		counter(descRestarts, float64(n), c)
	}
	gauge(descSpoolUp, b2f(s.SpoolHealthy))
	counter(descWriteErrs, float64(s.SpoolWriteErrors))
	counter(descDeferrals, float64(s.SpoolDeferrals))
	gauge(descFileBytes, float64(s.SpoolFileBytes))
	gauge(descLiveBytes, float64(s.SpoolLiveBytes))
	gauge(descFreeBytes, float64(s.SpoolFreeBytes))
	counter(descCompacts, float64(s.SpoolCompactions))
	gauge(descPause, s.SpoolLastPause.Seconds())
	gauge(descSubs, float64(s.Subscribers))
	counter(descDropped, float64(s.Dropped))
}

// Names lists the metric names the gateway exports (a histogram's with its
// _bucket, _sum and _count series), for checking dashboards and alert rules.
func (m *Metrics) Names() []string {
	ch := make(chan *prometheus.Desc, 256)
	go func() {
		for _, c := range []prometheus.Collector{m.received, m.mapped, m.rejected, m.deferred, m.delivered, m.failed,
			m.retried, m.pages, m.faxesIn, m.pagesIn, m.reports, m.callSecs, &gauges{}} {
			c.Describe(ch)
		}
		close(ch)
	}()
	var out []string
	for d := range ch {
		name := fqName.FindStringSubmatch(d.String())
		if name == nil {
			continue
		}
		out = append(out, name[1])
		if name[1] == "mediagw_fax_call_seconds" {
			out = append(out, name[1]+"_bucket", name[1]+"_sum", name[1]+"_count")
		}
	}
	sort.Strings(out)
	return out
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)
