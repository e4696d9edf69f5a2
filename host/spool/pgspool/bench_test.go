package pgspool

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/pgtest"
	"github.com/mediagw/mediagw/linedriver"
)

// BenchmarkAccept: accepts of a 4 KiB record by 1, 16 and 64 concurrent
// callers (connectors' messages in flight) on a private PostgreSQL on
// loopback (fsync on, synchronous_commit on). It reports accepts per
// commit (each commit is one WAL flush), the p99 latency of one accept,
// and accepts per second.
func BenchmarkAccept(b *testing.B) {
	srv := pgtest.Start(b)
	doc := make([]byte, 4<<10)
	ctx := context.Background()
	for _, callers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			s := open(b, srv.NewDB(b), "bench")
			var next atomic.Int64
			lat := make([][]time.Duration, callers)
			before := s.CommitStats()
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
						j := job(id, "file")
						j.Record.Documents = []linedriver.Document{{Name: "body.txt", MediaType: "text/plain", Data: doc}}
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
			after := s.CommitStats()
			all := slices.Concat(lat...)
			slices.Sort(all)
			if len(all) == 0 {
				return
			}
			b.ReportMetric(float64(after.Writes-before.Writes)/float64(max(after.Commits-before.Commits, 1)), "accepts/commit")
			b.ReportMetric(float64(all[(len(all)-1)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepts/s")
		})
	}
}
