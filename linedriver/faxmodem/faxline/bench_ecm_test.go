package faxline

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
)

// benchText is a text page: 66 lines of 78 characters, as a letter fills one.
func benchText(b *testing.B) [][]byte {
	words := strings.Fields(`The alarm receiving centre confirms the service visit of Tuesday morning. Zone four
		reported an open contact at the loading bay door at 09:58, cleared at 10:04 after the patrol checked the
		site. Panel seventeen, account 4711, battery test passed; the backup line to the second receiver answered
		within the supervision window. Please sign and return the attached form by fax before the end of the month.`)
	var sb strings.Builder
	line := ""
	for i := 0; sb.Len() < 66*79; i++ {
		word := words[i%len(words)]
		if len(line)+1+len(word) > 78 {
			sb.WriteString(line + "\n")
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	pages, err := render.Render(context.Background(), []render.Document{{Name: "letter.txt", MediaType: "text/plain", Data: []byte(sb.String())}}, render.Options{Resolution: render.Fine})
	if err != nil {
		b.Fatal(err)
	}
	p := pages[0]
	rows := make([][]byte, p.Height)
	for y := range rows {
		rows[y] = append([]byte(nil), p.Row(y)[:width/8]...)
	}
	return rows
}

// BenchmarkECMvsMH sends the same page over the soft-modem line at V.17
// 14400, fine, one call each: mediagw's Class 1 sender with ECM and MMR to
// HylaFAX's faxgetty, mediagw with MH (no ECM) to efax, efax to efax (MH),
// and HylaFAX to HylaFAX with ECM (sendfax through faxq to faxgetty on the
// other modem). The pages are CCITT test page 1 (Debian jbigkit-testdata)
// and a text page. It reports seconds per page from dial to hang-up
// (efax: its whole run; HylaFAX: its session log from DIAL to the end), and
// per page the ratio mediagw ECM+MMR ÷ efax (sub-benchmark "ratio").
func BenchmarkECMvsMH(b *testing.B) {
	for _, bin := range []string{"iaxmodem", "faxgetty", "faxq", "hfaxd", "faxmodem", "sendfax", "efax", "efix", "jbgtopbm", "tiffsplit", "tifftopnm"} {
		testenv.LookPath(b, bin)
	}
	const src = "/usr/share/jbigkit-testdata/ccitt1.jbg" // Debian jbigkit-testdata
	out, err := exec.Command("jbgtopbm", src).Output()
	if err != nil {
		testenv.Skip(b, "CCITT test page: "+err.Error())
	}
	pages := []struct {
		name string
		rows [][]byte
	}{{"ccitt1", parsePBM(b, out)}, {"text", benchText(b)}}

	// iaxmodem cuts long device paths: keep the line's directory short
	short := func(b *testing.B) string {
		d := shortTemp(b)
		return filepath.Join(d, "line")
	}
	mediagw := func(ctx context.Context, b *testing.B, line *Line, rows [][]byte, ecm string) (time.Duration, t30.Result) {
		ch, err := at.Open(line.DevA, 115200, at.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer ch.Close()
		if err := initModem(ctx, ch); err != nil {
			b.Fatal(err)
		}
		cfg := t30.Config{LocalID: "+1 555 0001", Fine: true, MR: ecm == "on", ECM: ecm, Encoding: map[string]string{"on": "", "off": "mh"}[ecm], Pace: true}
		start := time.Now()
		res, err := t30.Send(ctx, ch, line.NumB, encodePages([][][]byte{rows}), cfg)
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(start), res
	}
	// checkHylaFAX compares the page HylaFAX filed with what was sent: row
	// for row from mediagw; from HylaFAX's own sender the last row may be
	// missing if white (its faxsend drops it).
	checkHylaFAX := func(ctx context.Context, b *testing.B, hf *HylaFAX, rows [][]byte, fromHylaFAX bool) {
		file, err := hf.Received(ctx)
		if err != nil {
			b.Fatal(err)
		}
		got := decodeTIFF(b, file)
		switch {
		case len(got) != 1:
			b.Errorf("HylaFAX filed %d pages", len(got))
		case fromHylaFAX:
			if d := sameRowsButLast(got[0], rows); d != "" {
				b.Error(d)
			}
		case len(got[0]) != len(rows):
			b.Errorf("HylaFAX filed %d rows, %d sent", len(got[0]), len(rows))
		default:
			if _, ok := findPage(got[0], rows); !ok {
				b.Errorf("the page HylaFAX filed differs")
			}
		}
	}
	efaxRx := func(ctx context.Context, b *testing.B, line *Line) *Receiver {
		rx, err := line.Receive(ctx, filepath.Join(line.Dir, "rx"), "+1 555 0002", "1,5,0,2,0,0,0,0", 80*time.Millisecond)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second) // efax sets the modem up
		return rx
	}
	efaxGot := func(ctx context.Context, b *testing.B, rx *Receiver) {
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		rx.Wait(wctx) //nolint:errcheck // pages counted below
		wcancel()
		if n := len(rx.Pages()); n != 1 {
			b.Errorf("efax received %d pages", n)
		}
	}
	paths := []struct {
		name string
		run  func(ctx context.Context, b *testing.B, line *Line, rows [][]byte) time.Duration
	}{
		{"mediagw-ECM-MMR-to-HylaFAX", func(ctx context.Context, b *testing.B, line *Line, rows [][]byte) time.Duration {
			hf, err := line.StartHylaFAX(ctx, HylaFAXOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer hf.Close()
			took, res := mediagw(ctx, b, line, rows, "on")
			if !res.Params.ECM || !res.Params.MMR {
				b.Errorf("sent with %s", res.Params)
			}
			checkHylaFAX(ctx, b, hf, rows, false)
			return took
		}},
		{"mediagw-MH-to-efax", func(ctx context.Context, b *testing.B, line *Line, rows [][]byte) time.Duration {
			rx := efaxRx(ctx, b, line)
			took, res := mediagw(ctx, b, line, rows, "off")
			if res.Params.ECM || res.Params.MR || res.Params.MMR {
				b.Errorf("sent with %s", res.Params)
			}
			efaxGot(ctx, b, rx)
			return took
		}},
		{"efax-MH-to-efax", func(ctx context.Context, b *testing.B, line *Line, rows [][]byte) time.Duration {
			tif := efixTIFF(b, line.Dir, "page", rows)
			rx := efaxRx(ctx, b, line)
			start := time.Now()
			out, err := exec.CommandContext(ctx, "efax", "-d", line.DevA, "-o1", "-l", "+1 555 0001", "-t", line.NumB, tif).CombinedOutput()
			took := time.Since(start)
			if err != nil {
				b.Fatalf("efax: %v: %s", err, out)
			}
			efaxGot(ctx, b, rx)
			return took
		}},
		{"HylaFAX-to-HylaFAX-ECM", func(ctx context.Context, b *testing.B, line *Line, rows [][]byte) time.Duration {
			hf, err := line.StartHylaFAX(ctx, HylaFAXOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer hf.Close()
			tx, err := line.StartHylaFAXSender(ctx, false)
			if err != nil {
				b.Fatal(err)
			}
			defer tx.Close()
			out, err := tx.Send(ctx, line.NumB, false, g4TIFF(b, line.Dir, "page", rows))
			if err != nil {
				b.Fatal(err)
			}
			job, err := JobID(out)
			if err != nil {
				b.Fatal(err)
			}
			took, err := tx.Wait(ctx, job)
			if err != nil {
				b.Fatal(err)
			}
			if !strings.Contains(hf.SessionLogs(), "frames of block") {
				b.Errorf("HylaFAX received without ECM")
			}
			checkHylaFAX(ctx, b, hf, rows, true)
			return took
		}},
	}
	var mu sync.Mutex
	secs := map[string]float64{}
	for _, pg := range pages {
		for _, p := range paths {
			b.Run(pg.name+"/"+p.name, func(b *testing.B) {
				for range b.N {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
					line, err := Start(ctx, short(b))
					if err != nil {
						cancel()
						b.Fatal(err)
					}
					// closed even when the call fails (b.Fatal): no soft modem left behind
					b.Cleanup(func() { line.Close(); cancel() })
					took := p.run(ctx, b, line, pg.rows)
					b.ReportMetric(took.Seconds(), "s/page")
					mu.Lock()
					secs[pg.name+"/"+p.name] = took.Seconds()
					mu.Unlock()
				}
			})
		}
	}
	// The ratio of the issue, as a result line of its own per page.
	for _, pg := range pages {
		ecm, efax := secs[pg.name+"/mediagw-ECM-MMR-to-HylaFAX"], secs[pg.name+"/efax-MH-to-efax"]
		if ecm > 0 && efax > 0 {
			b.Run(pg.name+"/ratio", func(b *testing.B) { b.ReportMetric(ecm/efax, "ECM-MMR÷efax") })
		}
	}
}
