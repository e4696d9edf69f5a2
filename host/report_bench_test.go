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
// N mails one at a time ("one"), then N at once ("burst": the reports queue
// behind the connector's two report slots).
//
//	go test -run '^$' -bench ReportAfterDelivery -benchtime 200x ./host/
func BenchmarkReportAfterDelivery(b *testing.B) {
	log := &afterLog{}
	s := startReportSite(b, log)
	mail := func(i int) string {
		return fmt.Sprintf("From: user%d@example.org\nTo: fax@gw.example.com\nSubject: Fax: +1 555 0101 n%d\nMessage-ID: <n%d@example.org>\n\nx\n", i%50, i, i)
	}
	sent := func() int { log.mu.Lock(); defer log.mu.Unlock(); return len(log.after) }
	n := b.N
	b.ResetTimer()
	for i := range n {
		s.drop(b, fmt.Sprintf("m%d", i), mail(i))
		deadline := time.Now().Add(30 * time.Second)
		for sent() < i+1 {
			if time.Now().After(deadline) {
				b.Fatalf("no report for mail %d after 30 s", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i := n; i < 2*n; i++ {
		s.drop(b, fmt.Sprintf("m%d", i), mail(i))
	}
	s.waitSettled(b, 2*n)
	b.StopTimer()
	log.mu.Lock()
	d := slices.Clone(log.after)
	log.mu.Unlock()
	if len(d) != 2*n {
		b.Fatalf("%d report latencies logged, want %d", len(d), 2*n)
	}
	pct := func(ds []time.Duration, q int) float64 {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return float64(ds[len(ds)*q/100].Microseconds()) / 1000
	}
	b.ReportMetric(pct(d[:n], 50), "one-p50-ms")
	b.ReportMetric(pct(d[:n], 95), "one-p95-ms")
	b.ReportMetric(pct(d[n:], 50), "burst-p50-ms")
	b.ReportMetric(pct(d[n:], 95), "burst-p95-ms")
}
