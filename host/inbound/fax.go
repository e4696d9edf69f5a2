package inbound

import (
	"bytes"
	"fmt"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxpdf"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// pageEncoding codes the page files while a call runs: MMR (T.6) is the
// smallest lossless coding (a text page is a few kilobytes, a tenth of MH),
// so the write and fsync that stand between the page and the far end's MCF
// are short.
const pageEncoding = t4.MMR

// faxEncoding codes the delivered TIFF-F: MH, the coding every TIFF Class F
// reader must take (the 1990 Class F spec asks for Compression 3; G4 is an
// extension some fax viewers and archives refuse).
const faxEncoding = t4.MH

// maxPixels bounds a received page, and is what the page files are read
// back with: a B4 page at 400 × 400 dpi is about 16 million pels.
const maxPixels = 25_000_000

// bitmap checks a received page and makes it a faxtiff.Bitmap.
func bitmap(p *linedriver.InboundPage) (*faxtiff.Bitmap, error) {
	stride := (p.Width + 7) / 8
	if p.Width <= 0 || p.Height <= 0 || len(p.Rows) != p.Height {
		return nil, fmt.Errorf("page of %d×%d pels with %d rows", p.Width, p.Height, len(p.Rows))
	}
	if int64(p.Width)*int64(p.Height) > maxPixels {
		return nil, fmt.Errorf("page of %d×%d pels is larger than %d pels", p.Width, p.Height, maxPixels)
	}
	pix := make([]byte, 0, stride*p.Height)
	for y, r := range p.Rows {
		if len(r) != stride {
			return nil, fmt.Errorf("row %d has %d bytes, want %d", y, len(r), stride)
		}
		pix = append(pix, r...)
	}
	xres, yres := p.XRes, p.YRes
	if xres <= 0 {
		xres = 204
	}
	if yres <= 0 {
		yres = 98
	}
	return &faxtiff.Bitmap{Width: p.Width, Height: p.Height, Stride: stride, Pix: pix, XRes: xres, YRes: yres}, nil
}

// pageFile codes one page as a single-page TIFF.
func pageFile(b *faxtiff.Bitmap) ([]byte, error) {
	var buf bytes.Buffer
	w := faxtiff.NewWriter(&buf, faxtiff.Options{Encoding: pageEncoding})
	if err := w.WritePage(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readPage decodes a page file.
func readPage(data []byte) (*faxtiff.Bitmap, error) {
	fr, err := faxtiff.Read(data, faxtiff.Limits{MaxPages: 1, MaxPixels: maxPixels})
	if err != nil {
		return nil, err
	}
	if len(fr) != 1 || fr[0].Bitmap == nil {
		return nil, fmt.Errorf("not one bilevel page")
	}
	return fr[0].Bitmap, nil
}

// documents makes the fax's TIFF-F and PDF.
func documents(pages []*faxtiff.Bitmap) (tiff, pdf []byte, err error) {
	var tb bytes.Buffer
	w := faxtiff.NewWriter(&tb, faxtiff.Options{Encoding: faxEncoding})
	rp := make([]*render.Page, len(pages))
	for i, b := range pages {
		if err := w.WritePage(b); err != nil {
			return nil, nil, err
		}
		res := render.Standard
		if b.YRes > 147 {
			res = render.Fine
		}
		rp[i] = &render.Page{Width: b.Width, Height: b.Height, Stride: b.Stride, Pix: b.Pix, Resolution: res}
	}
	if err := w.Close(); err != nil {
		return nil, nil, err
	}
	var pb bytes.Buffer
	if err := faxpdf.Write(&pb, rp); err != nil {
		return nil, nil, err
	}
	return tb.Bytes(), pb.Bytes(), nil
}
