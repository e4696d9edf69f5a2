package spool

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/linedriver"
)

var burstMails = flag.Int("spool.burst", 10000, "mails in BenchmarkCompactAfterBurst (the issue's figure: 100000)")

// rssBytes is the process's resident memory (/proc/self/statm), after the
// Go heap gave back what it does not use: what is left over the idle figure
// is mostly the spool's memory map.
func rssBytes(b *testing.B) int64 {
	runtime.GC()
	debug.FreeOSMemory()
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(raw))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// BenchmarkCompactAfterBurst: a burst of small mails (-spool.burst) is
// accepted and delivered but for 10; the spool file's size and the
// process's RSS are reported after the burst and after a compaction, beside
// the live data, with the compaction's time and the longest wait of an
// accept that came during it.
func BenchmarkCompactAfterBurst(b *testing.B) {
	n := *burstMails
	for range b.N {
		path := filepath.Join(b.TempDir(), "spool.db")
		idleRSS := rssBytes(b)
		s, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		// The fill is not measured: one transaction per mail as the
		// gateway does, without the fsync of each.
		s.db.NoSync = true
		for i := range n {
			id := fmt.Sprintf("m%07d", i)
			if _, err := s.Accept(bg, "inbox", "imap:1:"+id, []*linedriver.Job{mail(id)}); err != nil {
				b.Fatal(err)
			}
		}
		for i := 10; i < n; i++ {
			if err := s.finish(fmt.Sprintf("m%07d", i), linedriver.Done(nil), true); err != nil {
				b.Fatal(err)
			}
		}
		s.db.NoSync = false
		burst, _ := s.Size()
		burstRSS := rssBytes(b)

		// Accepts go on (fsync'd) while the spool compacts.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var longest time.Duration
		accepts := 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("late%d", i)
				t0 := time.Now()
				if _, err := s.Accept(bg, "inbox", id, []*linedriver.Job{mail(id)}); err != nil {
					b.Error(err)
					return
				}
				longest = max(longest, time.Since(t0))
				accepts++
			}
		}()
		time.Sleep(20 * time.Millisecond) // let accepts run before the compaction starts
		t0 := time.Now()
		c, err := s.Compact(context.Background())
		took := time.Since(t0)
		time.Sleep(20 * time.Millisecond)
		close(stop)
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		afterRSS := rssBytes(b)
		s.Close()

		mb := func(v int64) float64 { return float64(v) / (1 << 20) }
		b.ReportMetric(float64(n), "mails")
		b.ReportMetric(mb(burst.FileBytes), "file-MB-burst")
		b.ReportMetric(mb(burst.LiveBytes), "live-MB-burst")
		b.ReportMetric(mb(c.After.FileBytes), "file-MB-compacted")
		b.ReportMetric(mb(c.After.LiveBytes), "live-MB-compacted")
		b.ReportMetric(mb(idleRSS), "RSS-MB-idle")
		b.ReportMetric(mb(burstRSS), "RSS-MB-burst")
		b.ReportMetric(mb(afterRSS), "RSS-MB-compacted")
		b.ReportMetric(float64(took.Milliseconds()), "compact-ms")
		b.ReportMetric(float64(longest.Microseconds())/1000, "max-accept-wait-ms")
		b.ReportMetric(float64(accepts), "accepts-during")
	}
}
