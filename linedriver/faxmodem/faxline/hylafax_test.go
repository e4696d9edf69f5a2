package faxline

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
)

// decodeTIFF turns each page of a TIFF (G3 or G4) into rows with libtiff
// (tiffsplit) and netpbm (tifftopnm).
func decodeTIFF(t testing.TB, path string) [][][]byte {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("tiffsplit", path, filepath.Join(dir, "p")).CombinedOutput(); err != nil {
		t.Fatalf("tiffsplit %s: %v: %s", path, err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "p*.tif"))
	var pages [][][]byte
	for _, f := range files {
		out, err := exec.Command("tifftopnm", f).Output()
		if err != nil {
			t.Fatalf("tifftopnm %s: %v", f, err)
		}
		pages = append(pages, parsePBM(t, out))
	}
	return pages
}

// TestHylaFAXReceives sends from our Class 1 sender to HylaFAX's faxgetty
// on the soft-modem line, a second fax program written independently of
// efax, and compares the pages it filed pixel by pixel with what was sent.
func TestHylaFAXReceives(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "iaxmodem")
	testenv.LookPath(t, "faxgetty")
	testenv.LookPath(t, "tiffsplit")
	testenv.LookPath(t, "tifftopnm")
	calls := []struct {
		name   string
		mr     bool
		fine   bool
		pages  int
		height int
		ecm    string // "" or off: no ECM; on: ECM with MMR (HylaFAX offers both)
	}{
		{"V.17 MH standard 2 pages", false, false, 2, 40, "off"},
		{"V.17 MR fine", true, true, 1, 80, "off"},
		{"V.17 ECM MMR fine 2 pages", true, true, 2, 400, "on"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	for i, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			line, err := Start(ctx, filepath.Join(dir, fmt.Sprintf("line%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			defer line.Close()
			hf, err := line.StartHylaFAX(ctx, HylaFAXOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer hf.Close()
			var log timedLog
			a := openA(ctx, t, line, &log)
			var want [][][]byte
			for p := 0; p < c.pages; p++ {
				want = append(want, testPage(c.height, i*3+p+1))
			}
			cfg := t30.Config{LocalID: "+1 555 0001", Fine: c.fine, MR: c.mr, ECM: c.ecm, Pace: true,
				Log: func(step, d string) { log.add("  [%s] %s", step, d) }}
			start := time.Now()
			res, err := t30.Send(ctx, a, line.NumB, encodePages(want), cfg)
			sent := time.Since(start)
			defer func() {
				if t.Failed() || os.Getenv("FAXLINE_LOG") != "" {
					t.Logf("sender:\n%s\nHylaFAX:\n%s", log.String(), tail(hf.SessionLogs(), 6000))
				}
			}()
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			ecm := c.ecm == "on"
			if res.Params.MR != (c.mr && !ecm) || res.Params.MMR != ecm || res.Params.ECM != ecm || res.Params.Fine != c.fine || res.RemoteID != "+1 555 0002" {
				t.Errorf("negotiated %v with %q", res.Params, res.RemoteID)
			}
			wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
			file, err := hf.Received(wctx)
			wcancel()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d pages in %v at %s", c.name, res.Pages, sent.Round(time.Millisecond), res.Params)
			logs := hf.SessionLogs()
			if !strings.Contains(logs, fmt.Sprintf("%d pages in", c.pages)) {
				t.Errorf("HylaFAX's log does not report %d pages", c.pages)
			}
			if ecm && !strings.Contains(logs, "2-D MMR") {
				t.Errorf("HylaFAX's log does not report MMR")
			}
			got := decodeTIFF(t, file)
			if len(got) != c.pages {
				t.Fatalf("HylaFAX filed %d pages, want %d", len(got), c.pages)
			}
			for p := range got {
				if len(got[p]) != len(want[p]) {
					t.Errorf("page %d: %d rows, want %d", p+1, len(got[p]), len(want[p]))
				}
				if _, ok := findPage(got[p], want[p]); !ok {
					t.Errorf("page %d differs from what was sent", p+1)
				} else {
					t.Logf("page %d: all %d rows identical", p+1, len(want[p]))
				}
			}
		})
	}
}
