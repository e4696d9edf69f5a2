// Package faxtiff writes TIFF Class F files (multi-page fax images coded as
// MH, MR or MMR) and reads TIFF files page by page, passing fax-coded pages
// through the T.4 decoder and other pages through golang.org/x/image/tiff.
package faxtiff

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// Bitmap is one bilevel page: 1 bit per pixel, MSB first, 1 = black.
type Bitmap struct {
	Width, Height int
	Stride        int // bytes per row
	Pix           []byte
	XRes, YRes    float64 // dots per inch (204 × 98 or 196 for fax)
}

// Row returns row y.
func (b *Bitmap) Row(y int) []byte { return b.Pix[y*b.Stride : y*b.Stride+b.Stride] }

// Options of a Writer.
type Options struct {
	Encoding t4.Encoding // MH, MR or MMR
	// K for MR; 0 picks 4 above 150 dpi and 2 below, as libtiff does.
	K int
}

// Writer writes pages to a TIFF Class F file as they come. It holds one
// coded page in memory (the IFD of a page is written when the next page or
// Close tells whether another follows).
type Writer struct {
	w       io.Writer
	opts    Options
	off     uint32 // bytes written so far
	pending []byte // IFD of the previous page, next-IFD offset still 0
	pages   int
	err     error
}

// NewWriter returns a Writer; nothing is written before the first page.
func NewWriter(w io.Writer, opts Options) *Writer {
	return &Writer{w: w, opts: opts}
}

func (w *Writer) write(p []byte) {
	if w.err != nil {
		return
	}
	if uint64(w.off)+uint64(len(p)) > 1<<32-1 {
		w.err = fmt.Errorf("faxtiff: file larger than 4 GB")
		return
	}
	if _, err := w.w.Write(p); err != nil {
		w.err = fmt.Errorf("faxtiff: write: %w", err)
		return
	}
	w.off += uint32(len(p))
}

// WritePage codes and appends one page.
func (w *Writer) WritePage(b *Bitmap) error {
	if w.err != nil {
		return w.err
	}
	k := w.opts.K
	if k == 0 {
		k = 2
		if b.YRes > 150 {
			k = 4
		}
	}
	var strip bytes.Buffer
	if _, err := t4.EncodePage(&strip, b.Width, b.Row, b.Height, t4.Options{
		Encoding: w.opts.Encoding, K: k, EndOfPage: w.opts.Encoding == t4.MMR,
	}); err != nil {
		return fmt.Errorf("faxtiff: page %d: %w", w.pages+1, err)
	}
	stripLen := uint32(strip.Len()) // StripByteCounts: the coded data, not the pad
	if strip.Len()%2 == 1 {
		strip.WriteByte(0) // IFDs start on a word boundary
	}
	if w.pages == 0 {
		hdr := []byte{'I', 'I', 42, 0, 0, 0, 0, 0}
		binary.LittleEndian.PutUint32(hdr[4:], 8+uint32(strip.Len()))
		w.write(hdr)
	} else {
		// The previous page's IFD points past itself and this page's strip.
		next := w.off + uint32(len(w.pending)) + uint32(strip.Len())
		binary.LittleEndian.PutUint32(w.pending[len(w.pending)-4-16:], next)
		w.write(w.pending)
	}
	stripOff := w.off
	w.write(strip.Bytes())
	w.pages++
	w.pending = w.ifd(b, stripOff, stripLen, w.off)
	return w.err
}

// Pages reports the number of pages written.
func (w *Writer) Pages() int { return w.pages }

func (w *Writer) ifd(b *Bitmap, stripOff, stripLen, at uint32) []byte {
	type entry struct {
		tag, typ uint16
		count    uint32
		val      uint32
	}
	compression, optTag, opt := uint32(3), uint16(292), uint32(0)
	switch w.opts.Encoding {
	case t4.MR:
		opt = 1 // 2-D coding
	case t4.MMR:
		compression, optTag = 4, 293
	}
	const nEntries = 17
	extra := at + 2 + 12*nEntries + 4
	ents := [nEntries]entry{
		{254, 4, 1, 2},                   // NewSubfileType: one page of many
		{256, 4, 1, uint32(b.Width)},     // ImageWidth
		{257, 4, 1, uint32(b.Height)},    // ImageLength
		{258, 3, 1, 1},                   // BitsPerSample
		{259, 3, 1, compression},         // Compression
		{262, 3, 1, 0},                   // Photometric: min-is-white
		{266, 3, 1, 1},                   // FillOrder: MSB first
		{273, 4, 1, stripOff},            // StripOffsets
		{274, 3, 1, 1},                   // Orientation
		{277, 3, 1, 1},                   // SamplesPerPixel
		{278, 4, 1, uint32(b.Height)},    // RowsPerStrip
		{279, 4, 1, stripLen},            // StripByteCounts
		{282, 5, 1, extra},               // XResolution
		{283, 5, 1, extra + 8},           // YResolution
		{optTag, 4, 1, opt},              // T4Options / T6Options
		{296, 3, 1, 2},                   // ResolutionUnit: inch
		{297, 3, 2, uint32(w.pages - 1)}, // PageNumber (n, total 0: unknown)
	}
	var buf bytes.Buffer
	le := binary.LittleEndian
	binary.Write(&buf, le, uint16(len(ents)))
	for _, e := range ents {
		binary.Write(&buf, le, e.tag)
		binary.Write(&buf, le, e.typ)
		binary.Write(&buf, le, e.count)
		binary.Write(&buf, le, e.val)
	}
	binary.Write(&buf, le, uint32(0)) // next IFD, set when a page follows
	binary.Write(&buf, le, []uint32{uint32(b.XRes*100 + 0.5), 100, uint32(b.YRes*100 + 0.5), 100})
	return buf.Bytes()
}

// Close writes the last IFD. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.pages == 0 {
		return fmt.Errorf("faxtiff: no pages")
	}
	w.write(w.pending)
	w.pending = nil
	return w.err
}
