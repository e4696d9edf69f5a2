package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestLogWriterInBenchmark: a benchmark's plugin log goes to the file named
// by MEDIAGW_BENCH_LOG, never to the output that benchstat reads.
func TestLogWriterInBenchmark(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.log")
	t.Setenv(BenchLogEnv, path)
	var once sync.Once
	testing.Benchmark(func(b *testing.B) { // runs more than once
		once.Do(func() {
			w := LogWriter(b)
			if _, ok := w.(*testLog); ok {
				t.Error("a benchmark got the test log writer")
			}
			w.Write([]byte("[DEBUG] stdio EOF\nsecond line")) //nolint:errcheck
		})
	})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], ": [DEBUG] stdio EOF") || !strings.HasSuffix(lines[1], ": second line") {
		t.Errorf("bench log = %q, want the two lines, each tagged", b)
	}
}
