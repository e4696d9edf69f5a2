package t4

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// decodeResync decodes as a fax receiver does: a row that fails is
// replaced by the row above, and decoding goes on at the next row that can
// be read. It returns the rows and which of them were repeated.
func decodeResync(t *testing.T, data []byte, w int, o Options) (rows [][]byte, bad []bool) {
	t.Helper()
	d := NewDecoder(bytes.NewReader(data), w, o)
	nb := (w + 7) / 8
	for len(rows) < 10000 {
		row := make([]byte, nb)
		err := d.ReadRow(row)
		if err == io.EOF {
			return rows, bad
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("row %d: %v", len(rows), err)
			}
			lost, rerr := d.Resync()
			for range lost {
				prev := make([]byte, nb)
				if len(rows) > 0 {
					copy(prev, rows[len(rows)-1])
				}
				rows, bad = append(rows, prev), append(bad, true)
			}
			if rerr == io.EOF {
				return rows, bad
			}
			if rerr != nil {
				t.Fatalf("resync: %v", rerr)
			}
			continue
		}
		rows, bad = append(rows, row), append(bad, false)
	}
	t.Fatal("no end of page")
	return nil, nil
}

// TestResync: a burst of line noise in MH and MR data costs the rows it hit
// (and, in MR, the 2-D rows up to the next 1-D row), and every other row
// decodes exactly; the page keeps its height.
func TestResync(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	page := randomPage(r, 1728, 300, 0.02)
	for _, c := range []struct {
		name    string
		o       Options
		maxLost int
	}{
		{"MH", Options{Encoding: MH, EndOfPage: true, LSBFirst: true}, 3},
		{"MR K=4", Options{Encoding: MR, K: 4, EndOfPage: true, LSBFirst: true}, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := encode(t, page, c.o)
			for i := len(data) / 2; i < len(data)/2+3; i++ {
				data[i] ^= 0x5A
			}
			rows, bad := decodeResync(t, data, page.W, c.o)
			// Noise may also merge or split rows: the rows before the
			// first bad one match from the top, those after the last bad
			// one from the bottom.
			if d := len(rows) - page.H; d < -2 || d > 2 {
				t.Fatalf("%d rows, want %d±2", len(rows), page.H)
			}
			first, last := -1, -1
			for y := range rows {
				if bad[y] {
					if first < 0 {
						first = y
					}
					last = y
				}
			}
			if first < 0 {
				t.Fatal("no row marked bad")
			}
			if last-first+1 > c.maxLost {
				t.Fatalf("rows %d..%d lost, want %d at most", first, last, c.maxLost)
			}
			for y := 0; y < first; y++ {
				if !bytes.Equal(rows[y], page.Row(y)) {
					t.Fatalf("row %d (before the noise) differs", y)
				}
			}
			for y := last + 1; y < len(rows); y++ {
				if !bytes.Equal(rows[y], page.Row(y-len(rows)+page.H)) {
					t.Fatalf("row %d (after the noise) differs", y)
				}
			}
		})
	}
	t.Run("MMR cannot resync", func(t *testing.T) {
		o := Options{Encoding: MMR, EndOfPage: true}
		data := encode(t, page, o)
		for i := len(data) / 2; i < len(data)/2+3; i++ {
			data[i] ^= 0x5A
		}
		d := NewDecoder(bytes.NewReader(data), page.W, o)
		row := make([]byte, page.Stride)
		var err error
		for err == nil {
			err = d.ReadRow(row)
		}
		if _, rerr := d.Resync(); !errors.Is(rerr, ErrInvalid) {
			t.Fatalf("Resync after %v = %v, want the decode error", err, rerr)
		}
	})
}
