package host

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// afterLog keeps the "after" of each sent report: the time from the fax
// job's outcome being recorded to the Sender accepting its report.
type afterLog struct {
	mu    sync.Mutex
	after []time.Duration
}

func (h *afterLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *afterLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *afterLog) WithGroup(string) slog.Handler            { return h }

func (h *afterLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "delivered" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "after" {
			if d, err := time.ParseDuration(a.Value.String()); err == nil {
				h.mu.Lock()
				h.after = append(h.after, d)
				h.mu.Unlock()
			}
		}
		return true
	})
	return nil
}

// BenchmarkReportAfterDelivery measures, through the real Maildir plugin,
// the host and the file driver, the time from a job's outcome being written
// to the spool to its delivery report being accepted by the (test) Sender:
//
//	go test -run '^$' -bench ReportAfterDelivery -benchtime 200x ./host/
func BenchmarkReportAfterDelivery(b *testing.B) {
	log := &afterLog{}
	s := startReportSite(b, log)
	b.ResetTimer()
	for i := range b.N {
		s.drop(b, fmt.Sprintf("m%d", i), fmt.Sprintf("From: user%d@example.org\nTo: fax@gw.example.com\nSubject: Fax: +1 555 0101 n%d\nMessage-ID: <n%d@example.org>\n\nx\n", i%50, i, i))
	}
	s.waitSettled(b, b.N)
	b.StopTimer()
	log.mu.Lock()
	d := slices.Clone(log.after)
	log.mu.Unlock()
	if len(d) == 0 {
		b.Fatal("no report latencies logged")
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(d[len(d)*95/100].Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(len(d)), "reports")
}
