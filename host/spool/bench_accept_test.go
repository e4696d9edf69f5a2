package spool_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/host/spool/spooltest"
)

// BenchmarkAccept: accepts of a 4 KiB record on disk by 1, 16 and 64
// concurrent callers (connectors' messages in flight), with group commit
// and with one transaction (one fsync) per accept as before. It reports
// accepts per commit (each commit is bbolt's two fsyncs: data, then meta),
// the p99 latency of one accept, and accepts per second.
func BenchmarkAccept(b *testing.B) {
	for _, path := range []string{"per-accept", "group"} {
		for _, callers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/callers=%d", path, callers), func(b *testing.B) {
				s, err := spool.Open(filepath.Join(b.TempDir(), "spool.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				spool.CommitEachWrite(s, path == "per-accept")
				spooltest.BenchAccept(b, s, callers, "accepts/fsync", s.CommitStats)
			})
		}
	}
}
