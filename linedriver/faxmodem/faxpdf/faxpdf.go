// Package faxpdf writes fax pages as one small PDF: each page is a bilevel
// image coded with the fax coding itself, CCITT Group 4 (T.6), which PDF
// readers decode with /CCITTFaxDecode. A page of text is a few kilobytes,
// about what it was on the line. A dithered photo, which G4 codes in more
// bits than it has pixels, is deflated instead (/FlateDecode).
package faxpdf

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"

	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// xres is the horizontal resolution of every fax page (T.4).
const xres = 204

// Write writes pages as a PDF, one PDF page per fax page, sized so that one
// fax pixel is 1/204 inch wide and 1/98 or 1/196 inch high.
func Write(w io.Writer, pages []*render.Page) error {
	if len(pages) == 0 {
		return fmt.Errorf("faxpdf: no pages")
	}
	p := &pdf{}
	p.printf("%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n")
	// Objects: 1 catalog, 2 page tree, then per page: page, content, image.
	n := len(pages)
	kids := &bytes.Buffer{}
	for i := range n {
		fmt.Fprintf(kids, "%d 0 R ", 3+3*i)
	}
	p.object(1, "<< /Type /Catalog /Pages 2 0 R >>")
	p.object(2, fmt.Sprintf("<< /Type /Pages /Count %d /Kids [%s] >>", n, bytes.TrimSpace(kids.Bytes())))
	for i, pg := range pages {
		page, content, image := 3+3*i, 4+3*i, 5+3*i
		filter, data, err := encode(pg)
		if err != nil {
			return fmt.Errorf("faxpdf: page %d: %w", i+1, err)
		}
		wpt := float64(pg.Width) * 72 / xres
		hpt := float64(pg.Height) * 72 / pg.Resolution.DPI()
		p.object(page, fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.4f %.4f] /Contents %d 0 R /Resources << /XObject << /P %d 0 R >> >> >>",
			wpt, hpt, content, image))
		draw := fmt.Sprintf("q %.4f 0 0 %.4f 0 0 cm /P Do Q\n", wpt, hpt)
		p.stream(content, "", []byte(draw))
		p.stream(image, fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 %s",
			pg.Width, pg.Height, filter), data)
	}
	xref := p.buf.Len()
	p.printf("xref\n0 %d\n0000000000 65535 f \n", len(p.offsets)+1)
	for _, off := range p.offsets {
		p.printf("%010d 00000 n \n", off)
	}
	p.printf("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(p.offsets)+1, xref)
	_, err := w.Write(p.buf.Bytes())
	return err
}

// encode codes a page as CCITT Group 4, or, when that is larger (a dithered
// photo: G4 codes its runs of one or two pixels in more bits than the pixels
// themselves), as its bits deflated. It returns the image's filter keys.
func encode(pg *render.Page) (filter string, data []byte, err error) {
	var g4 bytes.Buffer
	if _, err := t4.EncodePage(&g4, pg.Width, pg.Row, pg.Height, t4.Options{Encoding: t4.MMR, EndOfPage: true}); err != nil {
		return "", nil, err
	}
	// The CCITT filter's output has black as 0 (BlackIs1 false), which is
	// black in DeviceGray.
	filter = fmt.Sprintf("/Filter /CCITTFaxDecode /DecodeParms << /K -1 /Columns %d /Rows %d >>", pg.Width, pg.Height)
	if g4.Len() < len(pg.Pix)/4 {
		return filter, g4.Bytes(), nil // a page of text or line art: G4 wins by far
	}
	var z bytes.Buffer
	w, err := zlib.NewWriterLevel(&z, zlib.BestCompression)
	if err != nil {
		return "", nil, err
	}
	for y := range pg.Height {
		row := pg.Row(y)
		w.Write(row[:(pg.Width+7)/8]) //nolint:errcheck // into memory
	}
	if err := w.Close(); err != nil {
		return "", nil, err
	}
	if z.Len() >= g4.Len() {
		return filter, g4.Bytes(), nil
	}
	// The page's bits have black as 1: /Decode [1 0] makes 1 black.
	return "/Filter /FlateDecode /Decode [1 0]", z.Bytes(), nil
}

type pdf struct {
	buf     bytes.Buffer
	offsets []int // by object number - 1, objects written in order
}

func (p *pdf) printf(format string, args ...any) { fmt.Fprintf(&p.buf, format, args...) }

func (p *pdf) begin(num int) {
	if num != len(p.offsets)+1 {
		panic(fmt.Sprintf("faxpdf: object %d written out of order", num))
	}
	p.offsets = append(p.offsets, p.buf.Len())
	p.printf("%d 0 obj\n", num)
}

func (p *pdf) object(num int, body string) {
	p.begin(num)
	p.printf("%s\nendobj\n", body)
}

func (p *pdf) stream(num int, dict string, data []byte) {
	p.begin(num)
	p.printf("<< %s /Length %d >>\nstream\n", dict, len(data))
	p.buf.Write(data)
	p.printf("\nendstream\nendobj\n")
}
