package spooltest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/linedriver"
)

// BenchAccept is the accept benchmark of every backend: b.N accepts of a
// 4 KiB record into s by callers concurrent callers (connectors' messages
// in flight). stats is the store's CommitStats; the accepts per commit are
// reported under unit ("accepts/fsync", "accepts/commit"), with the p99
// latency of one accept and the accepts per second.
func BenchAccept(b *testing.B, s spool.Store, callers int, unit string, stats func() spool.CommitStats) {
	doc := make([]byte, 4<<10)
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]time.Duration, callers)
	before := stats()
	b.ResetTimer()
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				id := fmt.Sprint("r", i)
				j := &linedriver.Job{ID: id, Driver: "file", Record: linedriver.Record{ID: id, SourceID: "src-" + id, Fields: map[string]string{"k": id},
					Documents: []linedriver.Document{{Name: "body.txt", MediaType: "text/plain", Data: doc}}}}
				start := time.Now()
				if _, err := s.Accept(ctx, "inbox", id, []*linedriver.Job{j}); err != nil {
					b.Error(err)
					return
				}
				lat[c] = append(lat[c], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	after := stats()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(after.Writes-before.Writes)/float64(max(after.Commits-before.Commits, 1)), unit)
	b.ReportMetric(float64(all[(len(all)-1)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepts/s")
}
