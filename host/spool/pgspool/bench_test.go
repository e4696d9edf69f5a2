package pgspool

import (
	"fmt"
	"testing"

	"github.com/mediagw/mediagw/host/spool/spooltest"
	"github.com/mediagw/mediagw/internal/pgtest"
)

// BenchmarkAccept: accepts of a 4 KiB record by 1, 16 and 64 concurrent
// callers (connectors' messages in flight) on a private PostgreSQL on
// loopback (fsync on, synchronous_commit on). It reports accepts per
// commit (each commit is one WAL flush), the p99 latency of one accept,
// and accepts per second.
func BenchmarkAccept(b *testing.B) {
	srv := pgtest.Start(b)
	for _, callers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			s := open(b, srv.NewDB(b), "bench")
			spooltest.BenchAccept(b, s, callers, "accepts/commit", s.CommitStats)
		})
	}
}
