package maildir

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mediagw/mediagw/plugin/plugintest"
)

var sizes = []struct {
	name string
	n    int
}{{"4KB", 4 << 10}, {"1MB", 1 << 20}}

// benchMaildir is a Maildir that the connector polls every millisecond, so
// an idle wait between batches does not count as connector time.
func benchMaildir(t testing.TB) *dirSource {
	s := newMaildir(t)
	s.poll = "1ms"
	return s
}

var (
	pluginBinOnce sync.Once
	pluginBin     string
)

// BenchmarkReadAck measures Read + Settle(Ack) per message: the bare file
// operations the connector must do (reference), the connector in process,
// and the connector behind the plugin boundary (a plugin process over gRPC).
func BenchmarkReadAck(b *testing.B) {
	for _, sz := range sizes {
		b.Run(sz.name+"/reference", func(b *testing.B) { benchReference(b, sz.n) })
		b.Run(sz.name+"/inprocess", func(b *testing.B) {
			plugintest.BenchReadAck(b, harness(benchMaildir), sz.n)
		})
		b.Run(sz.name+"/plugin", func(b *testing.B) {
			pluginBinOnce.Do(func() {
				dir, err := os.MkdirTemp("", "maildir-bench-")
				if err != nil {
					b.Fatal(err)
				}
				pluginBin = plugintest.BuildPlugin(b, "github.com/mediagw/mediagw/plugin/maildir/cmd/mediagw-connector-maildir")
				// BuildPlugin's directory ends with this sub-benchmark.
				p := filepath.Join(dir, "plugin")
				if err := os.Rename(pluginBin, p); err != nil {
					b.Fatal(err)
				}
				pluginBin = p
			})
			h := harness(benchMaildir)
			h.Wrap = plugintest.ProcessWrap(b, pluginBin)
			plugintest.BenchReadAck(b, h, sz.n)
		})
	}
	if pluginBin != "" {
		_ = os.RemoveAll(filepath.Dir(pluginBin))
	}
}

// benchReference does by hand what an ack costs at least: read the file,
// rename it into cur/ with the S flag, fsync both directories.
func benchReference(b *testing.B, size int) {
	s := benchMaildir(b)
	raw := plugintest.Message("reference", size)
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		name := s.deliver(b, raw)
		b.StartTimer()
		src := filepath.Join(s.path, "new", name)
		got, err := os.ReadFile(src)
		if err != nil || len(got) != len(raw) {
			b.Fatal(err)
		}
		if err := move(src, filepath.Join(s.path, "cur"), seenName(name)); err != nil {
			b.Fatal(err)
		}
	}
}
