package t4

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4/t4test"
)

// The benchmarks time our codec and libtiff's on the same eight CCITT pages
// in the same run. libtiff runs in a small C program (testdata/
// libtiff_bench.c, compiled with gcc against libtiff at benchmark time)
// that times only the codec calls in memory, so process start and file I/O
// are not counted; it reports its own ns per page set, which replaces the
// ns/op of its sub-benchmark. Needs gcc and libtiff-dev.
//
//	go test -run '^$' -bench . ./linedriver/faxmodem/t4

var benchModes = []struct {
	name, scheme string
	opts         Options
}{
	{"MH", "g3:1d", Options{Encoding: MH}},
	{"MR", "g3:2d", Options{Encoding: MR, K: 4}},
	{"MMR", "g4", Options{Encoding: MMR, EndOfPage: true}},
}

var (
	harnessOnce sync.Once
	harnessBin  string
	harnessDir  string
	harnessErr  error
)

func libtiffHarness(b *testing.B) (bin string, pbms []string) {
	b.Helper()
	pages := t4test.CCITT(b)
	gcc := testenv.LookPath(b, "gcc")
	harnessOnce.Do(func() {
		harnessDir, harnessErr = os.MkdirTemp("", "t4bench")
		if harnessErr != nil {
			return
		}
		harnessBin = filepath.Join(harnessDir, "libtiff_bench")
		out, err := exec.Command(gcc, "-O2", "-o", harnessBin, filepath.Join("testdata", "libtiff_bench.c"), "-ltiff").CombinedOutput()
		if err != nil {
			harnessErr = fmt.Errorf("gcc (is libtiff-dev installed?): %v\n%s", err, out)
			return
		}
		for i, p := range pages {
			var buf bytes.Buffer
			fmt.Fprintf(&buf, "P4\n%d %d\n", p.W, p.H)
			buf.Write(p.Pix)
			os.WriteFile(filepath.Join(harnessDir, fmt.Sprintf("ccitt%d.pbm", i+1)), buf.Bytes(), 0o644)
		}
	})
	if harnessErr != nil {
		testenv.Skip(b, harnessErr.Error())
	}
	for i := range pages {
		pbms = append(pbms, filepath.Join(harnessDir, fmt.Sprintf("ccitt%d.pbm", i+1)))
	}
	return harnessBin, pbms
}

// harnessResult is what one run of the libtiff harness measured, per op.
type harnessResult struct {
	encNs, decNs, bytes, encCPU, decCPU float64
}

func runHarness(b *testing.B, scheme string) harnessResult {
	bin, pbms := libtiffHarness(b)
	b.ResetTimer() // compiling the harness is not part of the op; b.N must grow past 1
	out, err := exec.Command(bin, append([]string{scheme, strconv.Itoa(b.N)}, pbms...)...).Output()
	if err != nil {
		b.Fatalf("libtiff harness: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 5 {
		b.Fatalf("libtiff harness: %q", out)
	}
	var v [5]float64
	for i := range v {
		if v[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			b.Fatalf("libtiff harness: %q: %v", out, err)
		}
	}
	return harnessResult{encNs: v[0], decNs: v[1], bytes: v[2], encCPU: v[3], decCPU: v[4]}
}

// cpuTime is the CPU time this process has used (all threads, the
// garbage collector's included).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ns/op for the loop that started at CPU time start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkEncode: one op codes all eight CCITT pages.
func BenchmarkEncode(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name+"/go", func(b *testing.B) {
			pages := t4test.CCITT(b)
			var buf bytes.Buffer
			total := 0
			b.ResetTimer()
			start := cpuTime(b)
			for i := 0; i < b.N; i++ {
				total = 0
				for _, p := range pages {
					buf.Reset()
					if _, err := EncodePage(&buf, p.W, p.Row, p.H, m.opts); err != nil {
						b.Fatal(err)
					}
					total += buf.Len()
				}
			}
			reportCPU(b, start)
			b.ReportMetric(float64(total)/float64(len(pages)), "B/page")
		})
		b.Run(m.name+"/libtiff", func(b *testing.B) {
			r := runHarness(b, m.scheme)
			b.ReportMetric(r.encNs, "ns/op")
			b.ReportMetric(r.encCPU, "cpu-ns/op")
			b.ReportMetric(r.bytes/8, "B/page")
		})
	}
}

// BenchmarkDecode: one op decodes all eight CCITT pages.
func BenchmarkDecode(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name+"/go", func(b *testing.B) {
			pages := t4test.CCITT(b)
			var coded [][]byte
			for _, p := range pages {
				var buf bytes.Buffer
				EncodePage(&buf, p.W, p.Row, p.H, m.opts)
				coded = append(coded, buf.Bytes())
			}
			row := make([]byte, 216)
			b.ResetTimer()
			start := cpuTime(b)
			for i := 0; i < b.N; i++ {
				for _, c := range coded {
					d := NewDecoder(bytes.NewReader(c), 1728, m.opts)
					for d.ReadRow(row) == nil {
					}
				}
			}
			reportCPU(b, start)
		})
		b.Run(m.name+"/libtiff", func(b *testing.B) {
			r := runHarness(b, m.scheme)
			b.ReportMetric(r.decNs, "ns/op")
			b.ReportMetric(r.decCPU, "cpu-ns/op")
		})
	}
}
