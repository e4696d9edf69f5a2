package faxline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

const width = 1728

// testPage draws a page of h rows: bars, boxes and a checker band whose
// positions depend on seed, so every page differs.
func testPage(h, seed int) [][]byte {
	rows := make([][]byte, h)
	for y := range rows {
		r := make([]byte, width/8)
		for x := 0; x < width; x++ {
			black := false
			switch {
			case y%16 < 2:
				black = (x/(8+seed))%3 == 0
			case y%16 < 10:
				black = ((x+seed*37)/24)%5 == 1 || (x > 100+seed*50 && x < 140+seed*50)
			default:
				black = (x/4+y/2)%7 == seed%7
			}
			if black {
				r[x/8] |= 0x80 >> (x % 8)
			}
		}
		rows[y] = r
	}
	return rows
}

func encodePages(pages [][][]byte) []t30.Page {
	out := make([]t30.Page, len(pages))
	for i, rows := range pages {
		out[i] = t30.Page{Encode: func(p t30.Params) ([]byte, error) {
			opts := t4.Options{Encoding: t4.MH, EndOfPage: true, LSBFirst: true, MinLineBits: p.MinLineBits()}
			switch {
			case p.MMR:
				opts.Encoding = t4.MMR
			case p.MR:
				opts.Encoding, opts.K = t4.MR, p.K()
			}
			var b bytes.Buffer
			_, err := t4.EncodePage(&b, width, func(y int) []byte { return rows[y] }, len(rows), opts)
			return b.Bytes(), err
		}}
	}
	return out
}

// decodeEfax turns a page efax received into rows with efix (PBM).
func decodeEfax(t *testing.T, path string) [][]byte {
	t.Helper()
	out, err := exec.Command("efix", "-i", "fax", "-o", "pbm", path).Output()
	if err != nil {
		t.Fatalf("efix %s: %v", path, err)
	}
	return parsePBM(t, out)
}

// parsePBM splits a raw PBM (P4) of the fax width into rows.
func parsePBM(t testing.TB, out []byte) [][]byte {
	t.Helper()
	var w, h int
	var hdrLen int
	// P4\n<w> <h>\n<data>
	fields := 0
	i := 0
	for fields < 3 && i < len(out) {
		for i < len(out) && (out[i] == ' ' || out[i] == '\n' || out[i] == '\r' || out[i] == '\t') {
			i++
		}
		j := i
		for j < len(out) && !(out[j] == ' ' || out[j] == '\n' || out[j] == '\r' || out[j] == '\t') {
			j++
		}
		switch fields {
		case 1:
			fmt.Sscan(string(out[i:j]), &w)
		case 2:
			fmt.Sscan(string(out[i:j]), &h)
		}
		fields++
		i = j
	}
	hdrLen = i + 1
	if w != width {
		t.Fatalf("PBM of width %d", w)
	}
	data := out[hdrLen:]
	rows := make([][]byte, 0, h)
	for y := 0; y < h && (y+1)*width/8 <= len(data); y++ {
		rows = append(rows, data[y*width/8:(y+1)*width/8])
	}
	return rows
}

// findPage locates want inside got (efax may add rows above) and reports
// whether every row matches exactly.
func findPage(got, want [][]byte) (int, bool) {
	for off := 0; off+len(want) <= len(got); off++ {
		ok := true
		for y := range want {
			if !bytes.Equal(got[off+y], want[y]) {
				ok = false
				break
			}
		}
		if ok {
			return off, true
		}
	}
	return -1, false
}

func initModem(ctx context.Context, ch *at.Channel) error {
	for _, c := range []string{"Z", "E0V1Q0", "+FCLASS=1"} {
		r, err := ch.Command(ctx, c, 3*time.Second)
		if err != nil {
			return err
		}
		if !r.OK() {
			return fmt.Errorf("AT%s: %s", c, r.Result)
		}
	}
	return nil
}

type call struct {
	name   string
	mod    string
	mr     bool
	fine   bool
	pages  int
	height int
}

func TestRealLine(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "iaxmodem")
	testenv.LookPath(t, "efax")
	testenv.LookPath(t, "efix")
	// efax decodes 1-D pages only (2-D lines count as reception errors and
	// it misses the end of the page), so the real line covers MH; MR is
	// covered by the emulator with the t4 decoder.
	calls := []call{
		{"V.17 MH standard 3 pages", t30.V17, false, false, 3, 40},
		{"V.17 MH fine", t30.V17, false, true, 1, 60},
		{"V.29 MH standard", t30.V29, false, false, 1, 40},
		{"V.29 MH fine", t30.V29, false, true, 1, 60},
		{"V.27ter MH standard", t30.V27ter, false, false, 1, 30},
		{"V.27ter MH fine", t30.V27ter, false, true, 1, 40},
	}
	if s := os.Getenv("FAXLINE_CALLS"); s != "" {
		var keep []call
		for _, c := range calls {
			if strings.Contains(c.name, s) {
				keep = append(keep, c)
			}
		}
		calls = keep
	}
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	dir := t.TempDir()
	for i, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			// A fresh pair of modems per call: a called iaxmodem refuses
			// calls for a while after a hang-up.
			line, err := Start(ctx, filepath.Join(dir, fmt.Sprintf("line%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			defer line.Close()
			prefix := filepath.Join(line.Dir, fmt.Sprintf("rx%d", i))
			rx, err := line.Receive(ctx, prefix, "+1 555 0002", "1,5,0,2,0,0,0,0", 80*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // let efax initialise its modem
			ch, err := at.Open(line.DevA, 115200, at.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			ch.Close()
			ch, _ = at.Open(line.DevA, 115200, at.Options{Trace: func(d, s string) { fmt.Fprintf(&log, "%s %s %s\n", time.Now().Format("15:04:05.000"), d, s) }})
			defer ch.Close()
			if err := initModem(ctx, ch); err != nil {
				t.Fatal(err)
			}
			var want [][][]byte
			for p := 0; p < c.pages; p++ {
				want = append(want, testPage(c.height, i*3+p+1))
			}
			cfg := t30.Config{LocalID: "+1 555 0001", Fine: c.fine, MR: c.mr, Modulations: []string{c.mod}, Pace: true,
				Log: func(step, d string) { fmt.Fprintf(&log, "%s   [%s] %s\n", time.Now().Format("15:04:05.000"), step, d) }}
			start := time.Now()
			res, err := t30.Send(ctx, ch, line.NumB, encodePages(want), cfg)
			sent := time.Since(start)
			wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
			werr := rx.Wait(wctx)
			wcancel()
			if err != nil || t.Failed() || os.Getenv("FAXLINE_LOG") != "" {
				t.Logf("sender:\n%s\nefax:\n%s", log.String(), rx.Out.String())
			}
			if err != nil {
				t.Logf("modems:\n%s", tail(line.Log(), 4000))
				t.Fatalf("send: %v (efax: %v)", err, werr)
			}
			t.Logf("%s: %d pages in %v at %s (efax ended after %v: %v)", c.name, res.Pages, sent.Round(time.Millisecond), res.Params, time.Since(start).Round(time.Millisecond), werr)
			if res.Params.Speed.Modulation != c.mod || res.Params.MR != c.mr || res.Params.Fine != c.fine {
				t.Errorf("negotiated %v", res.Params)
			}
			files := rx.Pages()
			if len(files) != c.pages {
				t.Fatalf("efax wrote %d pages, want %d\n%s", len(files), c.pages, rx.Out.String())
			}
			for p, f := range files {
				got := decodeEfax(t, f)
				if off, ok := findPage(got, want[p]); !ok {
					t.Errorf("page %d: received %d rows do not contain the %d rows sent", p+1, len(got), len(want[p]))
				} else {
					t.Logf("page %d: all %d rows identical (offset %d of %d)", p+1, len(want[p]), off, len(got))
				}
			}
		})
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
