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
	"testing"

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

func runHarness(b *testing.B, scheme string) (encNs, decNs, bytes float64) {
	bin, pbms := libtiffHarness(b)
	out, err := exec.Command(bin, append([]string{scheme, strconv.Itoa(b.N)}, pbms...)...).Output()
	if err != nil {
		b.Fatalf("libtiff harness: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		b.Fatalf("libtiff harness: %q", out)
	}
	encNs, _ = strconv.ParseFloat(f[0], 64)
	decNs, _ = strconv.ParseFloat(f[1], 64)
	bytes, _ = strconv.ParseFloat(f[2], 64)
	return
}

// BenchmarkEncode: one op codes all eight CCITT pages.
func BenchmarkEncode(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name+"/go", func(b *testing.B) {
			pages := t4test.CCITT(b)
			var buf bytes.Buffer
			total := 0
			b.ResetTimer()
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
			b.ReportMetric(float64(total)/float64(len(pages)), "B/page")
		})
		b.Run(m.name+"/libtiff", func(b *testing.B) {
			enc, _, n := runHarness(b, m.scheme)
			b.ReportMetric(enc, "ns/op")
			b.ReportMetric(n/8, "B/page")
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
			for i := 0; i < b.N; i++ {
				for _, c := range coded {
					d := NewDecoder(bytes.NewReader(c), 1728, m.opts)
					for d.ReadRow(row) == nil {
					}
				}
			}
		})
		b.Run(m.name+"/libtiff", func(b *testing.B) {
			_, dec, _ := runHarness(b, m.scheme)
			b.ReportMetric(dec, "ns/op")
		})
	}
}
