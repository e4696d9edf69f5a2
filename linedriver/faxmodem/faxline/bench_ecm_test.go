package faxline

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
)

// BenchmarkECMvsMH sends CCITT test page 1 (1728×2376, fine) over the
// soft-modem line at V.17 14400 with our Class 1 sender: ECM with MMR to
// HylaFAX's faxgetty, and MH without ECM to efax. It reports seconds per
// page from dial to hang-up, and checks the page HylaFAX filed.
func BenchmarkECMvsMH(b *testing.B) {
	testenv.LookPath(b, "iaxmodem")
	testenv.LookPath(b, "faxgetty")
	testenv.LookPath(b, "efax")
	testenv.LookPath(b, "jbgtopbm")
	testenv.LookPath(b, "tifftopnm")
	const src = "/usr/share/jbigkit-testdata/ccitt1.jbg" // Debian jbigkit-testdata
	out, err := exec.Command("jbgtopbm", src).Output()
	if err != nil {
		testenv.Skip(b, "CCITT test page: "+err.Error())
	}
	page := parsePBM(b, out)
	// iaxmodem cuts long device paths: keep the line's directory short
	short := func(b *testing.B) string {
		d, err := os.MkdirTemp("", "fl")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	send := func(b *testing.B, line *Line, ecm string) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		ch, err := at.Open(line.DevA, 115200, at.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer ch.Close()
		if err := initModem(ctx, ch); err != nil {
			b.Fatal(err)
		}
		cfg := t30.Config{LocalID: "+1 555 0001", Fine: true, ECM: ecm, Encoding: map[string]string{"on": "", "off": "mh"}[ecm], Pace: true}
		start := time.Now()
		res, err := t30.Send(ctx, ch, line.NumB, encodePages([][][]byte{page}), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/page")
		b.Logf("%s: %v", res.Params, time.Since(start).Round(time.Millisecond))
	}
	b.Run("mediagw-ECM-MMR-to-HylaFAX", func(b *testing.B) {
		for range b.N {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			line, err := Start(ctx, filepath.Join(short(b), "line"))
			if err != nil {
				b.Fatal(err)
			}
			hf, err := line.StartHylaFAX(ctx, HylaFAXOptions{})
			if err != nil {
				b.Fatal(err)
			}
			send(b, line, "on")
			file, err := hf.Received(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if got := decodeTIFF(b, file); len(got) != 1 || len(got[0]) != len(page) {
				b.Errorf("HylaFAX filed %d pages", len(got))
			} else if _, ok := findPage(got[0], page); !ok {
				b.Errorf("the page HylaFAX filed differs")
			}
			hf.Close()
			line.Close()
			cancel()
		}
	})
	b.Run("mediagw-MH-to-efax", func(b *testing.B) {
		for range b.N {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			line, err := Start(ctx, filepath.Join(short(b), "line"))
			if err != nil {
				b.Fatal(err)
			}
			rx, err := line.Receive(ctx, filepath.Join(line.Dir, "rx"), "+1 555 0002", "1,5,0,2,0,0,0,0", 80*time.Millisecond)
			if err != nil {
				b.Fatal(err)
			}
			time.Sleep(time.Second)
			send(b, line, "off")
			wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
			rx.Wait(wctx) //nolint:errcheck // pages counted below
			wcancel()
			if n := len(rx.Pages()); n != 1 {
				b.Errorf("efax received %d pages", n)
			}
			line.Close()
			cancel()
		}
	})
}
