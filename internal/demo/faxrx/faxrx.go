// Package faxrx is the receiving fax machine of `mediagw-demo`: the
// project's modem emulator (modemsim) on a pty, answering calls like a fax
// machine and writing every page it confirms as a TIFF Class F file and a
// PNG image.
package faxrx

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"sync"

	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
	"github.com/mediagw/mediagw/linedriver/faxmodem/modemsim"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// Width is the page width in pels (A4 / Letter at 8 pels/mm).
const Width = 1728

// maxRows bounds a decoded page (A4 at fine resolution is about 2,300 rows).
const maxRows = 8000

// Page is one received page and where it was written.
type Page struct {
	Call   int    // 1-based call number
	Number string // the number the sender dialled
	TSI    string // the sender's identification
	Page   int    // 1-based page of the call
	Params t30.Params
	Rows   int
	Ink    float64 // fraction of black pels
	TIFF   string
	PNG    string
	Err    error // decode or write error
}

// Options configure Start.
type Options struct {
	// Dir receives fax<NN>-page<K>.tif and .png.
	Dir string
	// Remote is the far end's script (Decode and OnPage are set here).
	Remote modemsim.Remote
	// OnPage sees each page after its files are written.
	OnPage func(Page)
}

// Receiver is a running emulated fax line.
type Receiver struct {
	// Device is the pty the sending modem driver opens.
	Device string

	opts  Options
	mu    sync.Mutex
	sim   *modemsim.Modem
	calls int
	pages []Page
}

// Start opens the pty and answers calls until ctx ends.
func Start(ctx context.Context, opts Options) (*Receiver, error) {
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("faxrx: %w", err)
	}
	r := &Receiver{opts: opts}
	remote := opts.Remote
	remote.Decode = Decode
	remote.OnPage = r.onPage
	dev, sim, err := modemsim.PTY(ctx, remote)
	if err != nil {
		return nil, fmt.Errorf("faxrx: %w", err)
	}
	r.mu.Lock()
	r.Device, r.sim = dev, sim
	r.mu.Unlock()
	return r, nil
}

// Decode turns the T.4 data of a page, as a Class 1 modem carries it
// (first bit in the least significant bit), into rows of 1728 pels.
func Decode(data []byte, p t30.Params) ([][]byte, error) {
	o := t4.Options{Encoding: t4.MH, LSBFirst: true}
	if p.MR {
		o.Encoding, o.K = t4.MR, p.K()
	}
	rows, err := t4.DecodePage(bytes.NewReader(data), Width, o, maxRows)
	if err != nil {
		return rows, fmt.Errorf("faxrx: decode: %w", err)
	}
	return rows, nil
}

// Pages returns the pages received so far.
func (r *Receiver) Pages() []Page {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Page(nil), r.pages...)
}

// Calls returns what the far end saw of each call.
func (r *Receiver) Calls() []modemsim.Call {
	r.mu.Lock()
	sim := r.sim
	r.mu.Unlock()
	if sim == nil {
		return nil
	}
	return sim.Calls()
}

func (r *Receiver) onPage(mp modemsim.Page) {
	calls := r.Calls()
	r.mu.Lock()
	if mp.Number == 1 || r.calls == 0 {
		r.calls++
	}
	pg := Page{Call: r.calls, Page: mp.Number, Params: mp.Params, Rows: len(mp.Rows), Err: mp.Err}
	r.mu.Unlock()
	if n := len(calls); n > 0 {
		pg.Number, pg.TSI = calls[n-1].Number, calls[n-1].TSI
	}
	if pg.Err == nil && len(mp.Rows) == 0 {
		pg.Err = fmt.Errorf("faxrx: page %d has no rows", mp.Number)
	}
	if pg.Err == nil {
		pg.Ink = Ink(mp.Rows)
		base := filepath.Join(r.opts.Dir, fmt.Sprintf("fax%02d-page%d", pg.Call, pg.Page))
		pg.TIFF, pg.PNG = base+".tif", base+".png"
		if err := WriteTIFF(pg.TIFF, mp.Rows, mp.Params.Fine); err != nil {
			pg.Err = err
		} else if err := WritePNG(pg.PNG, mp.Rows, mp.Params.Fine); err != nil {
			pg.Err = err
		}
	}
	r.mu.Lock()
	r.pages = append(r.pages, pg)
	r.mu.Unlock()
	if r.opts.OnPage != nil {
		r.opts.OnPage(pg)
	}
}

// Ink is the fraction of black pels in rows.
func Ink(rows [][]byte) float64 {
	var black, all int
	for _, row := range rows {
		for _, b := range row {
			for ; b != 0; b &= b - 1 {
				black++
			}
		}
		all += len(row) * 8
	}
	if all == 0 {
		return 0
	}
	return float64(black) / float64(all)
}

// WriteTIFF writes one page as TIFF Class F (MR), 204 × 196 or 98 dpi.
func WriteTIFF(path string, rows [][]byte, fine bool) error {
	stride := (Width + 7) / 8
	bm := &faxtiff.Bitmap{Width: Width, Height: len(rows), Stride: stride, Pix: make([]byte, 0, stride*len(rows)), XRes: 204, YRes: 98}
	if fine {
		bm.YRes = 196
	}
	for _, row := range rows {
		bm.Pix = append(bm.Pix, row[:stride]...)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("faxrx: %w", err)
	}
	w := faxtiff.NewWriter(f, faxtiff.Options{Encoding: t4.MR})
	err = w.WritePage(bm)
	if err == nil {
		err = w.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("faxrx: write %s: %w", path, err)
	}
	return nil
}

// Image returns the page as a black-and-white image with square pels:
// standard-resolution rows are doubled.
func Image(rows [][]byte, fine bool) *image.Paletted {
	rep := 1
	if !fine {
		rep = 2
	}
	img := image.NewPaletted(image.Rect(0, 0, Width, len(rows)*rep), color.Palette{color.White, color.Black})
	for y, row := range rows {
		for x := 0; x < Width; x++ {
			if row[x>>3]&(0x80>>(x&7)) != 0 {
				for k := 0; k < rep; k++ {
					img.Pix[(y*rep+k)*img.Stride+x] = 1
				}
			}
		}
	}
	return img
}

// WritePNG writes one page as a PNG image.
func WritePNG(path string, rows [][]byte, fine bool) error {
	var b bytes.Buffer
	if err := png.Encode(&b, Image(rows, fine)); err != nil {
		return fmt.Errorf("faxrx: png: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("faxrx: %w", err)
	}
	return nil
}
