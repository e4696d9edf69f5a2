package testenv

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
)

// BenchLogEnv names the file that LogWriter appends to in benchmarks.
const BenchLogEnv = "MEDIAGW_BENCH_LOG"

// LogWriter returns where a test sends the log of a plugin or peer it runs.
// In a test, that is the test's log (shown when the test fails, or with -v)
// until the test ends. In a benchmark it is the file named by
// MEDIAGW_BENCH_LOG, each line tagged with the benchmark's name, or nowhere
// when that is unset: `go test -bench` prints a benchmark's log beside its
// results, and anything written to stdout or stderr while it runs splits
// its result line, so either would spoil the output that benchstat reads.
func LogWriter(t testing.TB) io.Writer {
	if _, bench := t.(*testing.B); bench {
		return benchLog(t.Name())
	}
	w := &testLog{t: t}
	t.Cleanup(w.stop)
	return w
}

// testLog writes to a test's log until the test ends.
type testLog struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (w *testLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLog) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

var (
	benchFileOnce sync.Once
	benchFileMu   sync.Mutex
	benchFile     *os.File
)

// benchLog appends to the MEDIAGW_BENCH_LOG file, shared by the whole test
// process; without it the lines are dropped.
func benchLog(name string) io.Writer {
	benchFileOnce.Do(func() {
		if path := os.Getenv(BenchLogEnv); path != "" {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err == nil {
				benchFile = f
			}
		}
	})
	if benchFile == nil {
		return io.Discard
	}
	return writerFunc(func(p []byte) (int, error) {
		benchFileMu.Lock()
		defer benchFileMu.Unlock()
		for _, line := range strings.SplitAfter(string(p), "\n") {
			if line != "" {
				if _, err := fmt.Fprintf(benchFile, "%s: %s", name, line); err != nil {
					return 0, err
				}
			}
		}
		if !strings.HasSuffix(string(p), "\n") {
			benchFile.WriteString("\n") //nolint:errcheck // a log line
		}
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
