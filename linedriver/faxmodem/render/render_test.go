package render

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4/t4test"
)

var update = flag.Bool("update", false, "rewrite the golden PNG previews in testdata")

var hdr = &Header{From: "ACME Ltd +1 555 0100", To: "+44 20 7946 0000", Time: time.Date(2026, 5, 1, 10, 30, 0, 0, time.UTC)}

const sampleText = "Fax test — UTF-8: Привет, мир! Ελληνικά αβγδ, Ünïcödé, ß, €, ½.\n" +
	"\tTab\tstops\tevery\t8 columns\n" +
	"A line that is far too long for eighty columns wraps onto the next line of the page, as a typewriter would.\n" +
	"last line of page one\fpage two after a form feed\n"

func render1(t *testing.T, docs []Document, o Options) []*Page {
	t.Helper()
	pages, err := Render(context.Background(), docs, o)
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

func blackCount(p *Page, x0, y0, x1, y1 int) int {
	n := 0
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			if p.black(x, y) {
				n++
			}
		}
	}
	return n
}

// golden compares a page's PNG preview with testdata/NAME (rewritten with
// -update) and keeps a copy for a human to look at.
func golden(t *testing.T, name string, p *Page) {
	t.Helper()
	var buf bytes.Buffer
	if err := WritePNG(&buf, p); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden %s: %v (run with -update)", name, err)
	}
	wi, err := png.Decode(bytes.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	gi, _ := png.Decode(bytes.NewReader(buf.Bytes()))
	if wi.Bounds() != gi.Bounds() {
		t.Fatalf("golden %s: size %v, want %v", name, gi.Bounds(), wi.Bounds())
	}
	diff := 0
	for y := 0; y < wi.Bounds().Dy(); y++ {
		for x := 0; x < wi.Bounds().Dx(); x++ {
			a, _, _, _ := wi.At(x, y).RGBA()
			b, _, _, _ := gi.At(x, y).RGBA()
			if a != b {
				diff++
			}
		}
	}
	if diff > 0 {
		os.WriteFile(filepath.Join(t.TempDir(), name), buf.Bytes(), 0o644)
		t.Errorf("golden %s: %d pixels differ (run with -update after checking the preview)", name, diff)
	}
}

func crop(p *Page, x0, y0, w, h int) *Page {
	c := NewPage(w, h, p.Resolution)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if p.black(x0+x, y0+y) {
				c.set(x, y)
			}
		}
	}
	return c
}

func TestText(t *testing.T) {
	for _, c := range []struct {
		res   Resolution
		paper PaperSize
	}{{Standard, A4}, {Fine, A4}, {Fine, Letter}} {
		pages := render1(t, []Document{{Name: "t.txt", MediaType: "text/plain; charset=utf-8", Data: []byte(sampleText)}},
			Options{Resolution: c.res, Paper: c.paper, Header: hdr})
		if len(pages) != 2 {
			t.Fatalf("%v %v: %d pages, want 2 (form feed)", c.res, c.paper, len(pages))
		}
		for _, p := range pages {
			if p.Width != Width || p.Height != c.paper.Height(c.res) || p.Resolution != c.res {
				t.Fatalf("page %dx%d %v", p.Width, p.Height, p.Resolution)
			}
		}
		if c.paper == A4 {
			golden(t, fmt.Sprintf("text-%v.png", c.res), pages[0])
		}
		// The header band and five text lines are inked, the rest of page 1
		// is white; page 2 has one line.
		scale := int(c.res.DPI()) / 98
		pitch := (c.paper.Height(Fine) - headerBand - bottomSpace) / Lines
		if blackCount(pages[0], 0, 0, Width, headerBand*scale/2) == 0 {
			t.Error("no header line")
		}
		lineRows := func(i int) (int, int) {
			return (headerBand + i*pitch) * scale / 2, (headerBand + (i+1)*pitch) * scale / 2
		}
		for i := 0; i < 6; i++ {
			y0, y1 := lineRows(i)
			n := blackCount(pages[0], 0, y0, Width, y1)
			if (i < 5) != (n > 0) {
				t.Errorf("%v: text line %d has %d black pixels", c.res, i+1, n)
			}
		}
		// Tab stops: "Tab" starts at column 8.
		y0, y1 := lineRows(1)
		margin := (Width - Columns*cellWidth) / 2
		if n := blackCount(pages[0], margin, y0, margin+8*cellWidth, y1); n != 0 {
			t.Errorf("columns 1-8 of the tab line are not blank")
		}
		if n := blackCount(pages[0], margin+8*cellWidth, y0, margin+11*cellWidth, y1); n == 0 {
			t.Errorf("nothing at column 9 of the tab line")
		}
		y0, _ = lineRows(1)
		if n := blackCount(pages[1], 0, y0, Width, pages[1].Height); n != 0 {
			t.Errorf("page 2 has ink below its first line")
		}
	}
}

func TestLayout(t *testing.T) {
	pages := layoutText(strings.Repeat("x", 81)+"\n\t\tz\n\f\f"+strings.Repeat("l\n", 70), 10)
	if len(pages) != 4 {
		t.Fatalf("%d pages", len(pages))
	}
	if pages[0][0] != strings.Repeat("x", 80) || pages[0][1] != "x" || pages[0][2] != strings.Repeat(" ", 16)+"z" {
		t.Errorf("page 1: %q", pages[0])
	}
	if len(pages[1]) != 0 || len(pages[2]) != Lines || len(pages[3]) != 4 {
		t.Errorf("pages of %d, %d, %d lines", len(pages[1]), len(pages[2]), len(pages[3]))
	}
	if got := layoutText(strings.Repeat("\f", 100), 5); len(got) != 5 {
		t.Errorf("form feeds: %d pages, want the limit 5", len(got))
	}
}

func TestCoverAndLimits(t *testing.T) {
	pages := render1(t, []Document{{MediaType: "text/plain", Data: []byte("body")}}, Options{
		Cover: &Cover{Template: "To: {{.To}}\nPages: {{.Pages}}\n", Data: map[string]any{"To": "Jane", "Pages": 2}},
	})
	if len(pages) != 2 {
		t.Fatalf("cover + body: %d pages", len(pages))
	}
	_, err := Render(context.Background(), []Document{{MediaType: "text/plain", Data: []byte(strings.Repeat("p\f", 20))}}, Options{MaxPages: 5})
	if !errors.Is(err, ErrTooManyPages) {
		t.Errorf("20 pages with MaxPages 5: %v", err)
	}
	if _, err := Render(context.Background(), []Document{{MediaType: "application/x-foo", Data: []byte{1, 2}}}, Options{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := Render(context.Background(), nil, Options{Cover: &Cover{Template: "{{.Missing}}", Data: map[string]any{}}}); err == nil {
		t.Error("bad cover template accepted")
	}
}

// photo is a smooth gradient with a dark disc: a stand-in for a photograph.
func photo(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := uint8(255 * x / w)
			dx, dy := x-w/2, y-h/2
			if dx*dx+dy*dy < (h/4)*(h/4) {
				v /= 4
			}
			img.Set(x, y, color.RGBA{v, v, 255 - v/2, 255})
		}
	}
	return img
}

func TestPNGPhotoDithered(t *testing.T) {
	var buf bytes.Buffer
	png.Encode(&buf, photo(1200, 800))
	pages := render1(t, []Document{{Name: "photo.png", MediaType: "image/png", Data: buf.Bytes()}}, Options{Resolution: Fine, Dither: true, Halftone: FloydSteinberg})
	p := pages[0]
	golden(t, "photo-fine-crop.png", crop(p, 600, 300, 432, 300))
	// 1200×800 square pixels fill the width: 1728 × 1152 × 196/204 rows.
	hf := float64(800*1728) / 1200 * 196 / 204
	h := int(hf + 0.5)
	if blackCount(p, 0, h+2, Width, p.Height) != 0 {
		t.Error("ink below the image")
	}
	// Dithering keeps grey levels: the density of a band follows the
	// source's luminance.
	for _, fx := range []float64{0.1, 0.5, 0.9} {
		x := int(fx * Width)
		n := blackCount(p, x-20, 20, x+20, 120)
		v := float64(uint8(255*fx)) / 255
		lum := (0.299*v + 0.587*v + 0.114*(1-v/2)) // the source colour's grey
		if got := float64(n) / 4000; got < 1-lum-0.12 || got > 1-lum+0.12 {
			t.Errorf("x=%d: density %.2f, source darkness %.2f", x, got, 1-lum)
		}
	}
	// AutoMH keeps such a page MH, as the design asks.
	var enc bytes.Buffer
	e, err := t4.EncodePage(&enc, p.Width, p.Row, p.Height, t4.Options{Encoding: t4.MMR, AutoMH: true})
	if err != nil || e != t4.MH {
		t.Errorf("AutoMH on a dithered photo: %v %v", e, err)
	}
}

// textImage draws a "scan": black text on white.
func textImage() *image.Gray {
	g := newGray(850, 300)
	f := face(40)
	drawRunes(g, f, "JPEG SCAN 1234", 40, 120, 50)
	drawRunes(g, f, "fax test", 40, 220, 50)
	return g
}

func TestJPEGScan(t *testing.T) {
	var buf bytes.Buffer
	jpeg.Encode(&buf, textImage(), &jpeg.Options{Quality: 70})
	pages := render1(t, []Document{{Name: "scan.jpg", Data: buf.Bytes()}}, Options{Resolution: Standard, Header: hdr})
	p := pages[0]
	golden(t, "scan-standard.png", p)
	// Threshold, not dither: the white background stays white.
	if n := blackCount(p, 0, headerBand/2+2, Width, headerBand/2+20); n != 0 {
		t.Errorf("%d black pixels in the white margin above the text", n)
	}
	if n := blackCount(p, 0, 0, Width, p.Height); n < 5000 {
		t.Errorf("only %d black pixels", n)
	}
}

// TestTIFF: fax pages in a TIFF pass through unchanged (or with rows
// merged / doubled for the other resolution); colour pages are rendered.
func TestTIFF(t *testing.T) {
	src := render1(t, []Document{{MediaType: "text/plain", Data: []byte(sampleText)}}, Options{Resolution: Fine})
	var buf bytes.Buffer
	w := faxtiff.NewWriter(&buf, faxtiff.Options{Encoding: t4.MMR})
	for _, p := range src {
		w.WritePage(p.Bitmap())
	}
	w.Close()
	tif := buf.Bytes()
	fine := render1(t, []Document{{Name: "in.tif", MediaType: "image/tiff", Data: tif}}, Options{Resolution: Fine})
	if len(fine) != len(src) {
		t.Fatalf("%d pages, want %d", len(fine), len(src))
	}
	for i := range src {
		if !bytes.Equal(fine[i].Pix, src[i].Pix) {
			t.Errorf("page %d did not pass through unchanged", i+1)
		}
	}
	std := render1(t, []Document{{Name: "in.tif", Data: tif}}, Options{Resolution: Standard})
	for y := 0; y < std[0].Height; y++ {
		for x := 0; x < Width; x += 7 {
			want := src[0].black(x, 2*y) || src[0].black(x, 2*y+1)
			if std[0].black(x, y) != want {
				t.Fatalf("standard page: pixel %d,%d is not the OR of rows %d,%d", x, y, 2*y, 2*y+1)
			}
		}
	}
	// A multi-page TIFF mixing a colour page (through libtiff's tools).
	tiffcp := testenv.LookPath(t, "tiffcp")
	pnmtotiff := testenv.LookPath(t, "pnmtotiff")
	dir := t.TempDir()
	var ppm bytes.Buffer
	img := photo(300, 200)
	fmt.Fprintf(&ppm, "P6\n300 200\n255\n")
	for i := 0; i < len(img.Pix); i += 4 {
		ppm.Write(img.Pix[i : i+3])
	}
	os.WriteFile(filepath.Join(dir, "c.ppm"), ppm.Bytes(), 0o644)
	ctif, err := exec.Command(pnmtotiff, filepath.Join(dir, "c.ppm")).Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "c.tif"), ctif, 0o644)
	os.WriteFile(filepath.Join(dir, "f.tif"), tif, 0o644)
	if msg, err := exec.Command(tiffcp, filepath.Join(dir, "f.tif"), filepath.Join(dir, "c.tif"), filepath.Join(dir, "m.tif")).CombinedOutput(); err != nil {
		t.Fatalf("tiffcp: %v %s", err, msg)
	}
	m, _ := os.ReadFile(filepath.Join(dir, "m.tif"))
	mixed := render1(t, []Document{{Name: "m.tif", Data: m}}, Options{Resolution: Fine, Dither: true})
	if len(mixed) != len(src)+1 {
		t.Fatalf("mixed TIFF: %d pages", len(mixed))
	}
	if n := blackCount(mixed[len(src)], 0, 0, Width, 200); n < 1000 {
		t.Errorf("colour page: %d black pixels", n)
	}
}

// pdf builds a small PDF: one page per entry of contents (raw content
// streams, compressed when deflate is set).
func pdf(contents []string, deflate bool) []byte {
	var b bytes.Buffer
	var offs []int
	obj := func(s string) {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offs), s)
	}
	b.WriteString("%PDF-1.4\n")
	n := len(contents)
	kids := ""
	for i := 0; i < n; i++ {
		kids += fmt.Sprintf("%d 0 R ", 4+2*i)
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids, n))
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	for i, c := range contents {
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", 5+2*i))
		data, filter := []byte(c), ""
		if deflate {
			var z bytes.Buffer
			zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
			zw.Write(data)
			zw.Close()
			data, filter = z.Bytes(), " /Filter /FlateDecode"
		}
		obj(fmt.Sprintf("<< /Length %d%s >>\nstream\n%s\nendstream", len(data), filter, data))
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, xref)
	return b.Bytes()
}

func TestPDF(t *testing.T) {
	doc := pdf([]string{
		"BT /F1 36 Tf 72 700 Td (Fax from a PDF) Tj ET 0 g 72 100 451 20 re f",
		"BT /F1 36 Tf 72 700 Td (Second page) Tj ET",
	}, false)
	for _, c := range []struct{ renderer, golden string }{
		{PDFium, "pdf-fine-pdfium.png"},
		{PDFGhostscript, "pdf-fine.png"},
	} {
		t.Run(c.renderer, func(t *testing.T) {
			if c.renderer == PDFGhostscript {
				testenv.LookPath(t, "gs")
			}
			pages := render1(t, []Document{{Name: "doc.pdf", MediaType: "application/pdf", Data: doc}}, Options{Resolution: Fine, Header: hdr, PDFRenderer: c.renderer})
			if len(pages) != 2 {
				t.Fatalf("%d pages", len(pages))
			}
			golden(t, c.golden, pages[0])
			// The bar near the bottom: 72..523 pt of 595 wide, y 100..120 pt of 842.
			p := pages[0]
			sx, sy := float64(Width)/595, float64(p.Height)/842
			bar := blackCount(p, int(80*sx), int((842-118)*sy), int(515*sx), int((842-102)*sy))
			if area := int(435*sx) * int(16*sy); bar < area*95/100 {
				t.Errorf("the bar has %d of %d black pixels", bar, area)
			}
			if _, err := Render(context.Background(), []Document{{Name: "doc.pdf", Data: doc}}, Options{MaxPages: 1, PDFRenderer: c.renderer}); !errors.Is(err, ErrTooManyPages) {
				t.Errorf("2-page PDF with MaxPages 1: %v", err)
			}
			if _, err := Render(context.Background(), []Document{{Name: "x.pdf", MediaType: "application/pdf", Data: []byte("%!PS\n{} loop\n")}}, Options{PDFRenderer: c.renderer}); !errors.Is(err, ErrUnsupported) {
				t.Errorf("PostScript disguised as PDF: %v", err)
			}
		})
	}
	if _, err := Render(context.Background(), []Document{{Name: "doc.pdf", Data: doc}}, Options{PDFRenderer: PDFGhostscript, Ghostscript: "no-such-gs-here"}); !errors.Is(err, ErrNoGhostscript) {
		t.Errorf("missing gs: %v", err)
	}
}

// TestPDFWithoutGhostscript: with the default renderer a PDF is faxed on a
// machine without ghostscript (PATH holds no gs), and Supported agrees.
func TestPDFWithoutGhostscript(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := exec.LookPath("gs"); err == nil {
		t.Fatal("gs still found")
	}
	doc := Document{Name: "invoice.pdf", MediaType: "application/pdf", Data: pdf([]string{"BT /F1 36 Tf 72 700 Td (Invoice 1001) Tj ET 0 g 72 100 451 20 re f"}, true)}
	if err := Supported(doc, Options{}); err != nil {
		t.Fatalf("Supported: %v", err)
	}
	pages := render1(t, []Document{doc}, Options{Resolution: Standard})
	if len(pages) != 1 || pages[0].Height != A4.Height(Standard) {
		t.Fatalf("%d pages", len(pages))
	}
	p := pages[0]
	if n := blackCount(p, 0, 0, Width, p.Height/2); n < 2000 {
		t.Errorf("the title has %d black pixels", n)
	}
	if n := blackCount(p, 0, p.Height/2, Width, p.Height); n < 20000 {
		t.Errorf("the bar has %d black pixels", n)
	}
	if err := Supported(doc, Options{PDFRenderer: PDFGhostscript}); !errors.Is(err, ErrNoGhostscript) {
		t.Errorf("Supported with pdf_renderer ghostscript and no gs: %v", err)
	}
}

// TestHostile: inputs built to exhaust memory or time are refused within
// the limits.
func TestHostile(t *testing.T) {
	// A PNG header claiming 60000×60000 pixels.
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1)))
	big := buf.Bytes()
	binary.BigEndian.PutUint32(big[16:], 60000)
	binary.BigEndian.PutUint32(big[20:], 60000)
	binary.BigEndian.PutUint32(big[29:], crc32.ChecksumIEEE(big[12:29]))
	start := time.Now()
	_, err := Render(context.Background(), []Document{{Name: "huge.png", MediaType: "image/png", Data: big}}, Options{})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "60000×60000") {
		t.Errorf("60000×60000 PNG: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	// A TIFF with a million pages.
	le := binary.LittleEndian
	tif := []byte{'I', 'I', 42, 0, 8, 0, 0, 0}
	for i := 0; i < 1000000; i++ {
		tif = le.AppendUint16(tif, 0)
		tif = le.AppendUint32(tif, uint32(len(tif)+4))
	}
	_, err = Render(context.Background(), []Document{{Name: "pages.tif", Data: tif}}, Options{})
	if !errors.Is(err, faxtiff.ErrLimit) {
		t.Errorf("million-page TIFF: %v", err)
	}
	// A PDF whose page never finishes: a content stream of millions of
	// drawing operators, compressed to a few hundred kilobytes.
	ops := strings.Repeat("0 0 m 595 842 l 595 0 l 0 842 l h f\n", 2_000_000)
	bomb := pdf([]string{ops}, true)
	for _, r := range []string{PDFium, PDFGhostscript} {
		if r == PDFGhostscript {
			testenv.LookPath(t, "gs")
		}
		start = time.Now()
		_, err = Render(context.Background(), []Document{{Name: "bomb.pdf", Data: bomb}}, Options{Timeout: 2 * time.Second, PDFRenderer: r})
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: never-ending PDF: %v", r, err)
		}
		if d := time.Since(start); d > 6*time.Second {
			t.Errorf("%s: never-ending PDF took %v", r, d)
		}
	}
}

// TestLibtiffOnRenderedPages: rendered pages code byte-exactly as libtiff.
func TestLibtiffOnRenderedPages(t *testing.T) {
	var pbuf bytes.Buffer
	png.Encode(&pbuf, photo(400, 300))
	pages := render1(t, []Document{
		{MediaType: "text/plain", Data: []byte(sampleText)},
		{MediaType: "image/png", Data: pbuf.Bytes()},
	}, Options{Resolution: Fine, Dither: true, Header: hdr})
	pages = append(pages, render1(t, []Document{{MediaType: "text/plain", Data: []byte(sampleText)}}, Options{Resolution: Standard})[0])
	for i, p := range pages {
		b := &t4test.Bitmap{W: p.Width, H: p.Height, Stride: p.Stride, Pix: p.Pix}
		k := 2
		if p.Resolution == Fine {
			k = 4
		}
		for _, m := range []struct {
			scheme string
			o      t4.Options
		}{{"g3:1d", t4.Options{Encoding: t4.MH}}, {"g3:2d", t4.Options{Encoding: t4.MR, K: k}}, {"g4", t4.Options{Encoding: t4.MMR, EndOfPage: true}}} {
			want := t4test.LibtiffEncode(t, b, m.scheme, int(p.Resolution.DPI()))
			var got bytes.Buffer
			if _, err := t4.EncodePage(&got, p.Width, p.Row, p.Height, m.o); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("page %d %s: %d bytes, libtiff %d, not equal", i+1, m.scheme, got.Len(), len(want))
			}
		}
	}
}

func FuzzLayoutText(f *testing.F) {
	f.Add(sampleText)
	f.Add("\f\t\r\n\x00")
	f.Add("العربية: مرحبا 12 بالعالم\rשלום (Bob) 3.5 עולם")
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range layoutText(s, 3) {
			if len(p) > Lines {
				t.Fatalf("page of %d lines", len(p))
			}
			for _, l := range p {
				if n := lineWidth(clusters(l)); n > Columns {
					t.Fatalf("line of %d columns", n)
				}
				// Shaping and reordering keep the line within the grid.
				if v, _ := visualLine(shapeArabic(l)); lineWidth(clusters(v)) > Columns {
					t.Fatalf("visual line %q of %d columns", v, lineWidth(clusters(v)))
				}
			}
		}
	})
}
