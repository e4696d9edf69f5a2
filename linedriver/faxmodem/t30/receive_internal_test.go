package t30

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// stripes is a page of h rows with a black bar whose place moves every 8 rows.
func stripes(h int) [][]byte {
	rows := make([][]byte, h)
	for y := range rows {
		r := make([]byte, 1728/8)
		for x := (y / 8 % 20) * 8; x < (y/8%20)*8+40; x++ {
			r[x] = 0xFF
		}
		rows[y] = r
	}
	return rows
}

func encode(t *testing.T, rows [][]byte, p Params) []byte {
	t.Helper()
	o := t4.Options{Encoding: t4.MH, EndOfPage: true, LSBFirst: true}
	switch {
	case p.MMR:
		o.Encoding = t4.MMR
	case p.MR:
		o.Encoding, o.K = t4.MR, p.K()
	}
	var b bytes.Buffer
	if _, err := t4.EncodePage(&b, 1728, func(y int) []byte { return rows[y] }, len(rows), o); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDecodeCopyQuality: line noise in a page without ECM costs the rows it
// hits, which are repeated from the row above and counted; the answer is
// MCF for a clean page, RTP for a few bad rows, RTN beyond the thresholds.
// Ones before the first EOL (the modem's idle line) are no row.
func TestDecodeCopyQuality(t *testing.T) {
	page := stripes(400)
	for _, c := range []struct {
		name   string
		p      Params
		damage func([]byte) []byte
		answer byte
	}{
		{"clean MH", Params{}, nil, MCF},
		{"clean MR fine", Params{MR: true, Fine: true}, nil, MCF},
		{"idle ones before the page", Params{}, func(b []byte) []byte { return append(bytes.Repeat([]byte{0xFF}, 300), b...) }, MCF},
		{"a burst in MH", Params{}, func(b []byte) []byte {
			b[len(b)/2] ^= 0xA5
			return b
		}, RTP},
		{"a burst in MR", Params{MR: true, Fine: true}, func(b []byte) []byte {
			b[len(b)/2] ^= 0xA5
			return b
		}, RTP},
		{"noise over a tenth of the page", Params{}, func(b []byte) []byte {
			for i := len(b) / 3; i < len(b)/3+len(b)/10; i += 7 {
				b[i] ^= 0x5A
			}
			return b
		}, RTN},
		{"clean MMR (ECM)", Params{MMR: true, ECM: true, Fine: true}, nil, MCF},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := encode(t, page, c.p)
			if c.damage != nil {
				data = c.damage(data)
			}
			pg, err := decode(data, c.p)
			if err != nil {
				t.Fatal(err)
			}
			if got := quality(pg); got != c.answer {
				t.Fatalf("%s for %d rows with %d bad, want %s", Name(got), len(pg.Rows), pg.BadRows, Name(c.answer))
			}
			if c.answer == MCF {
				if len(pg.Rows) != len(page) {
					t.Fatalf("%d rows, want %d", len(pg.Rows), len(page))
				}
				for y := range page {
					if !bytes.Equal(pg.Rows[y], page[y]) {
						t.Fatalf("row %d differs", y)
					}
				}
			}
		})
	}
}

func TestQualityThresholds(t *testing.T) {
	mk := func(n int, bad ...int) *RxPage {
		pg := &RxPage{Rows: make([][]byte, n), bad: make([]bool, n)}
		for _, b := range bad {
			pg.bad[b] = true
			pg.BadRows++
		}
		return pg
	}
	run := func(from, n int) []int {
		var out []int
		for i := range n {
			out = append(out, from+i)
		}
		return out
	}
	for _, c := range []struct {
		pg   *RxPage
		want byte
	}{
		{mk(100), MCF},
		{mk(0), RTN}, // nothing decoded
		{mk(100, 3, 50), RTP},
		{mk(100, run(10, 5)...), RTP},                         // 5 %, a run of 5
		{mk(100, run(10, 6)...), RTN},                         // over 5 %
		{mk(1000, run(10, QualityRun)...), RTP},               // the longest run allowed
		{mk(1000, run(10, QualityRun+1)...), RTN},             // one more in a row
		{mk(1000, append(run(10, 8), run(30, 8)...)...), RTP}, // two runs of 8
	} {
		if got := quality(c.pg); got != c.want {
			t.Errorf("%d rows, %d bad: %s, want %s", len(c.pg.Rows), c.pg.BadRows, Name(got), Name(c.want))
		}
	}
}

func TestPPRMap(t *testing.T) {
	block := map[int][]byte{}
	for n := range 60 {
		if n != 3 && n != 17 && n != 59 {
			block[n] = []byte{byte(n)}
		}
	}
	bad := missing(block, 60)
	if fmt.Sprint(bad) != "[3 17 59]" {
		t.Fatalf("missing %v", bad)
	}
	m := pprMap(bad)
	if len(m) != 32 {
		t.Fatalf("map of %d octets", len(m))
	}
	// the sender reads the map back into the same frames
	if got := pprFrames(m, 60); fmt.Sprint(got) != "[3 17 59]" {
		t.Fatalf("the sender reads %v", got)
	}
}
