package faxline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
)

func benchJob(number string) *linedriver.Job {
	return &linedriver.Job{ID: "bench", Attempt: 1, Accepted: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		Record: linedriver.Record{Fields: map[string]string{"fax_number": number}, Documents: []linedriver.Document{
			{Name: "body.txt", MediaType: "text/plain", Data: []byte("Alarm report\nZone 4 open at 09:58.\nPanel 17, account 4711.\n")},
			{Name: "map.pdf", MediaType: "application/pdf", Data: tinyPDF()},
			{Name: "camera.png", MediaType: "image/png", Data: photo()},
		}}}
}

func writePBM(path string, p *render.Page) error {
	b := []byte(fmt.Sprintf("P4\n%d %d\n", p.Width, p.Height))
	for y := 0; y < p.Height; y++ {
		b = append(b, p.Row(y)[:(p.Width+7)/8]...)
	}
	return os.WriteFile(path, b, 0o644)
}

// BenchmarkFaxLine sends the same three fine pages (text, PDF, image) over
// the soft-modem line at V.17 14400 with our Class 1 driver and with efax,
// and reports seconds per page for each call (dial to hang-up) beside the
// wire limit: the pages' MH bytes × 8 / 14400.
func BenchmarkFaxLine(b *testing.B) {
	testenv.LookPath(b, "iaxmodem")
	testenv.LookPath(b, "efax")
	testenv.LookPath(b, "efix")
	testenv.LookPath(b, "gs")
	dir := b.TempDir()
	opts := `{"devices": [{"device": "unused"}], "local_id": "+1 555 0001", "resolution": "fine", "encoding": "mh", "dial": {"region": "US"}}`
	drv, err := faxmodem.New("fax", json.RawMessage(opts), nil)
	if err != nil {
		b.Fatal(err)
	}
	pages, err := drv.(*faxmodem.Driver).Render(context.Background(), benchJob("+12015550102"))
	if err != nil {
		b.Fatal(err)
	}
	wire := 0.0
	var files []string
	for i, p := range pages {
		data, err := faxmodem.EncodePage(p, t30.Params{Speed: t30.Speeds[0], Fine: true})
		if err != nil {
			b.Fatal(err)
		}
		wire += float64(len(data)*8) / 14400
		pbm := filepath.Join(dir, fmt.Sprintf("p%d.pbm", i+1))
		tif := filepath.Join(dir, fmt.Sprintf("p%d.tif", i+1))
		if err := writePBM(pbm, p); err != nil {
			b.Fatal(err)
		}
		if out, err := exec.Command("efix", "-i", "pbm", "-o", "tiffg3", "-n", tif, pbm).CombinedOutput(); err != nil {
			b.Fatalf("efix: %v: %s", err, out)
		}
		files = append(files, tif)
	}
	wirePerPage := wire / float64(len(pages))
	run := func(b *testing.B, send func(ctx context.Context, line *Line) error) {
		for i := 0; i < b.N; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			line, err := Start(ctx, filepath.Join(b.TempDir(), "line"))
			if err != nil {
				b.Fatal(err)
			}
			rx, err := line.Receive(ctx, filepath.Join(line.Dir, "rx"), "+1 555 0002", "1,5,0,2,0,0,0,0", 80*time.Millisecond)
			if err != nil {
				b.Fatal(err)
			}
			time.Sleep(time.Second)
			b.StartTimer()
			start := time.Now()
			err = send(ctx, line)
			elapsed := time.Since(start)
			b.StopTimer()
			wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
			rx.Wait(wctx) //nolint:errcheck // its pages are counted below
			wcancel()
			line.Close()
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			if n := len(rx.Pages()); n != len(pages) {
				b.Fatalf("efax received %d pages, want %d", n, len(pages))
			}
			b.ReportMetric(elapsed.Seconds()/float64(len(pages)), "s/page")
			b.ReportMetric(wirePerPage, "wire-s/page")
		}
	}
	b.Run("mediagw", func(b *testing.B) {
		b.StopTimer()
		run(b, func(ctx context.Context, line *Line) error {
			o := fmt.Sprintf(`{"devices": [{"device": %q}], "local_id": "+1 555 0001", "resolution": "fine", "encoding": "mh", "dial": {"region": "US"}}`, line.DevA)
			d, err := faxmodem.New("fax", json.RawMessage(o), nil)
			if err != nil {
				return err
			}
			out := d.Deliver(ctx, benchJob(line.FaxB), nil)
			if out.Result != linedriver.Delivered {
				return fmt.Errorf("not delivered: %s: %s", out.Category, out.Reason)
			}
			return nil
		})
	})
	b.Run("efax", func(b *testing.B) {
		b.StopTimer()
		run(b, func(ctx context.Context, line *Line) error {
			args := append([]string{"-d", line.DevA, "-o1", "-l", "+1 555 0001", "-t", line.NumB}, files...)
			out, err := exec.CommandContext(ctx, "efax", args...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("efax: %v: %s", err, out)
			}
			return nil
		})
	})
}
