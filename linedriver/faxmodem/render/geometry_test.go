package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// barPage is a fine fax page with full-width black bars at the very top
// and bottom and a mark in the middle.
func barPage(h int) *faxtiff.Bitmap {
	b := &faxtiff.Bitmap{Width: Width, Height: h, Stride: Width / 8, XRes: 204, YRes: 196}
	b.Pix = make([]byte, b.Stride*h)
	for _, y := range []int{0, 1, 2, 3, 4, 5, h - 6, h - 5, h - 4, h - 3, h - 2, h - 1} {
		for i := range b.Row(y) {
			b.Row(y)[i] = 0xff
		}
	}
	for y := h/2 - 20; y < h/2+20; y++ {
		b.Row(y)[100] = 0xff
	}
	return b
}

func tiffOf(t *testing.T, enc t4.Encoding, bs ...*faxtiff.Bitmap) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := faxtiff.NewWriter(&buf, faxtiff.Options{Encoding: enc})
	for _, b := range bs {
		if err := w.WritePage(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fullRows(p *Page, y0, y1 int) int {
	n := 0
	for y := y0; y < y1 && y < p.Height; y++ {
		if blackCount(p, 0, y, Width, y+1) >= Width*9/10 {
			n++
		}
	}
	return n
}

// TestHeaderBand: the header line gets its own band; what the page had
// there is scaled to fit below it, not written over.
func TestHeaderBand(t *testing.T) {
	src := barPage(2292)
	data := tiffOf(t, t4.MMR, src)
	plain := render1(t, []Document{{Data: data}}, Options{Resolution: Fine})[0]
	if !bytes.Equal(plain.Pix, src.Pix) {
		t.Fatal("without a header the fax page is not passed through as is")
	}
	p := render1(t, []Document{{Data: data}}, Options{Resolution: Fine, Header: hdr})[0]
	if n := fullRows(p, 0, headerBand); n != 0 {
		t.Errorf("%d full black rows in the header band", n)
	}
	if n := fullRows(p, headerBand, headerBand+10); n < 5 {
		t.Errorf("the top bar is not just below the header band (%d rows)", n)
	}
	if n := fullRows(p, p.Height-10, p.Height); n < 5 {
		t.Errorf("the bottom bar is gone (%d rows)", n)
	}
	if blackCount(p, 0, 0, Width, headerBand) < 500 {
		t.Error("no header text")
	}
	// A PDF drawn up to its top edge.
	testenv.LookPath(t, "gs")
	doc := pdf([]string{"0 g 0 822 595 20 re f BT /F1 24 Tf 72 400 Td (middle) Tj ET"}, false)
	pp := render1(t, []Document{{Name: "top.pdf", Data: doc}}, Options{Resolution: Fine, Header: hdr, PDFRenderer: PDFGhostscript})[0]
	golden(t, "header-band-pdf.png", crop(pp, 0, 0, Width, 200))
	if n := fullRows(pp, 0, headerBand); n != 0 {
		t.Errorf("PDF: %d full black rows in the header band", n)
	}
	if n := fullRows(pp, headerBand, headerBand+80); n < 40 {
		t.Errorf("PDF: the top bar below the band has %d full rows", n)
	}
}

// TestPassThroughAnyCompression: a bilevel page at fax width and
// resolution passes through untouched whatever its TIFF compression.
func TestPassThroughAnyCompression(t *testing.T) {
	tiffcp := testenv.LookPath(t, "tiffcp")
	src := barPage(2292)
	g4 := tiffOf(t, t4.MMR, src)
	dir := t.TempDir()
	in := filepath.Join(dir, "g4.tif")
	os.WriteFile(in, g4, 0o644)
	p := render1(t, []Document{{Name: "g4", Data: g4}}, Options{Resolution: Fine})[0]
	if !bytes.Equal(p.Pix, src.Pix) {
		t.Errorf("g4: the page was changed")
	}
	for _, c := range []string{"none", "lzw", "zip", "packbits", "g3:1d", "g3:2d"} {
		out := filepath.Join(dir, strings.ReplaceAll(c, ":", "-")+".tif")
		if b, err := exec.Command(tiffcp, "-c", c, in, out).CombinedOutput(); err != nil {
			t.Fatalf("tiffcp -c %s: %v %s", c, err, b)
		}
		data, _ := os.ReadFile(out)
		p := render1(t, []Document{{Name: c, Data: data}}, Options{Resolution: Fine})[0]
		if !bytes.Equal(p.Pix, src.Pix) {
			t.Errorf("%s: the page was changed", c)
		}
	}
}

// TestLongPage: a fax page longer than B4 is cut into pages of the
// paper's length; one that would make too many pages is refused before
// it is laid out.
func TestLongPage(t *testing.T) {
	src := barPage(6000)
	pages := render1(t, []Document{{Data: tiffOf(t, t4.MMR, src)}}, Options{Resolution: Fine})
	if len(pages) != 3 || pages[0].Height != 2292 || pages[1].Height != 2292 || pages[2].Height != 6000-2*2292 {
		t.Fatalf("%d pages", len(pages))
	}
	if !bytes.Equal(pages[1].Pix, src.Pix[2292*src.Stride:2*2292*src.Stride]) {
		t.Error("the second piece is not rows 2292..4583")
	}
	// Just under B4 stays one page.
	if ps := render1(t, []Document{{Data: tiffOf(t, t4.MMR, barPage(2800))}}, Options{Resolution: Fine}); len(ps) != 1 {
		t.Errorf("a 2800-row page became %d pages", len(ps))
	}
	// Five million rows, one pel wide: refused, not allocated.
	narrow := &faxtiff.Bitmap{Width: 1, Height: 5_000_000, Stride: 1, XRes: 204, YRes: 196}
	narrow.Pix = make([]byte, narrow.Height)
	_, err := Render(context.Background(), []Document{{Data: tiffOf(t, t4.MMR, narrow)}}, Options{Resolution: Fine})
	if !errors.Is(err, ErrTooManyPages) {
		t.Errorf("5 million rows: %v", err)
	}
}

// TestPBM: PBM is accepted; one at fax width passes through.
func TestPBM(t *testing.T) {
	src := barPage(2200)
	var b bytes.Buffer
	fmt.Fprintf(&b, "P4\n# g3topbm\n%d %d\n", Width, src.Height)
	b.Write(src.Pix)
	p := render1(t, []Document{{Name: "fax.pbm", MediaType: "image/x-portable-bitmap", Data: b.Bytes()}}, Options{Resolution: Fine})
	if len(p) != 1 || !bytes.Equal(p[0].Pix[:len(src.Pix)], src.Pix) {
		t.Error("a fine PBM fax page was not passed through")
	}
	// Small PBM, PGM and PPM pictures are rendered as images: a black box
	// in the left half.
	for _, c := range []struct {
		name string
		data string
	}{
		{"plain pbm", "P1\n4 2\n1100\n1100\n"},
		{"raw pgm", "P5 4 2 255\n\x00\x00\xff\xff\x00\x00\xff\xff"},
		{"plain ppm", "P3 4 2 255\n0 0 0 0 0 0 255 255 255 255 255 255\n0 0 0 0 0 0 255 255 255 255 255 255\n"},
		{"raw ppm 16-bit", "P6 4 2 65535\n" + strings.Repeat("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 2)},
	} {
		ps, err := Render(context.Background(), []Document{{Name: c.name, Data: []byte(c.data)}}, Options{Resolution: Fine})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		left, right := blackCount(ps[0], 0, 0, Width/2, ps[0].Height), blackCount(ps[0], Width/2, 0, Width, ps[0].Height)
		if left == 0 || right != 0 {
			t.Errorf("%s: %d black on the left, %d on the right", c.name, left, right)
		}
	}
	if _, err := Render(context.Background(), []Document{{Name: "short.pbm", Data: []byte("P4 1728 100\n\x00")}}, Options{}); err == nil {
		t.Error("a short PBM was accepted")
	}
}

// TestPDFErrors: ghostscript's own reason is passed on.
func TestPDFErrors(t *testing.T) {
	gs := testenv.LookPath(t, "gs")
	dir := t.TempDir()
	ps := filepath.Join(dir, "a.ps")
	os.WriteFile(ps, []byte("%!PS\n/Helvetica findfont 24 scalefont setfont 72 700 moveto (secret) show showpage\n"), 0o644)
	enc := filepath.Join(dir, "enc.pdf")
	if out, err := exec.Command(gs, "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", "-sOwnerPassword=owner",
		"-sUserPassword=user", "-dEncryptionR=3", "-dKeyLength=128", "-sOutputFile="+enc, ps).CombinedOutput(); err != nil {
		t.Fatalf("making an encrypted PDF: %v %s", err, out)
	}
	data, _ := os.ReadFile(enc)
	_, err := Render(context.Background(), []Document{{Name: "locked.pdf", Data: data}}, Options{PDFRenderer: PDFGhostscript})
	if !errors.Is(err, ErrPDFPassword) || !strings.Contains(err.Error(), "locked.pdf") || !strings.Contains(err.Error(), "needs a password") {
		t.Errorf("password PDF: %v", err)
	}
	_, err = Render(context.Background(), []Document{{Name: "broken.pdf", Data: []byte("%PDF-1.4\ngarbage\n")}}, Options{PDFRenderer: PDFGhostscript})
	if !errors.Is(err, ErrPDF) || !strings.Contains(err.Error(), "initialise file") {
		t.Errorf("damaged PDF: %v", err)
	}
	// PDFium says the same in its words.
	_, err = Render(context.Background(), []Document{{Name: "locked.pdf", Data: data}}, Options{PDFRenderer: PDFium})
	if !errors.Is(err, ErrPDFPassword) || !strings.Contains(err.Error(), "locked.pdf") {
		t.Errorf("PDFium, password PDF: %v", err)
	}
	_, err = Render(context.Background(), []Document{{Name: "broken.pdf", Data: []byte("%PDF-1.4\ngarbage\n")}}, Options{PDFRenderer: PDFium})
	if !errors.Is(err, ErrPDF) || !strings.Contains(err.Error(), "broken.pdf") {
		t.Errorf("PDFium, damaged PDF: %v", err)
	}
}
