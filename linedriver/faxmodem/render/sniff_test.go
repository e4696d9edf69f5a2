package render

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
)

// TestByContent: the content decides how a document is rendered, whatever
// its media type claims; what cannot be faxed is refused with what it is.
func TestByContent(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 200, 100))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y := 25; y < 75; y++ {
		for x := 50; x < 150; x++ {
			img.Set(x, y, color.Black)
		}
	}
	var pngData, bmpData bytes.Buffer
	png.Encode(&pngData, img)
	bmp.Encode(&bmpData, img)
	// The black box covers half of each side: a quarter of the image,
	// which is enlarged twice (MaxUpscale): 200 × 100 pels × 196/204.
	quarter := func(t *testing.T, p *Page) {
		t.Helper()
		n := blackCount(p, 0, 0, p.Width, p.Height)
		want := 200 * 100 * int(p.Resolution.DPI()) / 204
		if n < want*9/10 || n > want*11/10 {
			t.Errorf("%d black pixels, want about %d", n, want)
		}
	}
	tests := []struct {
		name, mediaType string
		data            []byte
		check           func(*testing.T, *Page)
	}{
		{"png as application/pdf", "application/pdf", pngData.Bytes(), quarter},
		{"png as octet-stream", "application/octet-stream", pngData.Bytes(), quarter},
		{"bmp as image/x-ms-bmp", "image/x-ms-bmp", bmpData.Bytes(), quarter},
		{"text as application/octet-stream", "application/octet-stream", []byte("Please see the attached order.\r\n"), func(t *testing.T, p *Page) {
			if blackCount(p, 0, 0, p.Width, p.Height) == 0 {
				t.Error("blank page")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Document{Name: "x", MediaType: tt.mediaType, Data: tt.data}
			if err := Supported(d, Options{}); err != nil {
				t.Errorf("Supported: %v", err)
			}
			pages := render1(t, []Document{d}, Options{Resolution: Fine})
			if len(pages) != 1 {
				t.Fatalf("%d pages", len(pages))
			}
			tt.check(t, pages[0])
		})
	}
	for _, c := range []struct{ name, mt, data, what string }{
		{"order.zip", "application/pdf", "PK\x05\x06" + strings.Repeat("\x00", 18), "order.zip is an empty ZIP archive, which cannot be faxed"},
		{"setup.exe", "application/octet-stream", "MZ\x90\x00\x03\x00\x00\x00\x04\x00", "setup.exe is a Windows program, which cannot be faxed"},
		{"blob", "image/png", "\x00\x01\x02\x03", "blob is a file of unknown type (declared image/png), which cannot be faxed"},
	} {
		d := Document{Name: c.name, MediaType: c.mt, Data: []byte(c.data)}
		if err := Supported(d, Options{}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.what) {
			t.Errorf("Supported(%s) = %v, want %q", c.name, err, c.what)
		}
		if _, err := Render(context.Background(), []Document{d}, Options{}); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Render(%s) = %v", c.name, err)
		}
	}
}

// TestSupportedNeedsPrograms: a PDF or an Office document is refused up
// front, naming what to install, when the program is missing.
func TestSupportedNeedsPrograms(t *testing.T) {
	pdfDoc := Document{Name: "a.pdf", Data: []byte("%PDF-1.4\n")}
	docx := Document{Name: "a.docx", Data: zipDocx(t, "<w:document/>")}
	if err := Supported(pdfDoc, Options{PDFRenderer: PDFGhostscript, Ghostscript: "no-such-gs"}); !errors.Is(err, ErrNoGhostscript) {
		t.Errorf("pdf without gs: %v", err)
	}
	err := Supported(docx, Options{Office: &Office{Program: "no-such-soffice"}})
	if !errors.Is(err, ErrNoLibreOffice) || !strings.Contains(err.Error(), "a.docx is a Word document (.docx)") || !strings.Contains(err.Error(), "libreoffice-writer-nogui") {
		t.Errorf("docx without LibreOffice: %v", err)
	}
}

// TestOctetStreamPDF: a PDF labelled application/octet-stream is faxed.
func TestOctetStreamPDF(t *testing.T) {
	doc := pdf([]string{"0 g 72 100 451 20 re f"}, false)
	pages := render1(t, []Document{{Name: "order", MediaType: "application/octet-stream", Data: doc}}, Options{Resolution: Fine})
	if len(pages) != 1 || blackCount(pages[0], 0, 0, Width, pages[0].Height) < 50000 {
		t.Fatalf("%d pages, the bar missing", len(pages))
	}
}

// TestNotes: what the map skipped is written on the first page, under the
// header line, and on no other page.
func TestNotes(t *testing.T) {
	notes := []string{"Not faxed: order.zip (an empty ZIP archive, which cannot be delivered as pages)", "Not faxed: setup.exe (a Windows program, which cannot be delivered as pages)"}
	for _, r := range []Resolution{Fine, Standard} {
		pages := render1(t, []Document{{Name: "a.txt", MediaType: "text/plain", Data: []byte("page one\fpage two")}}, Options{Resolution: r, Header: hdr, Notes: notes})
		if len(pages) != 2 {
			t.Fatalf("%d pages", len(pages))
		}
		if r == Fine {
			golden(t, "notes-fine.png", crop(pages[0], 0, 0, Width, 200))
		}
		rows := func(p *Page, y0, y1 int) int {
			return blackCount(p, 0, y0*int(r.DPI())/196, Width, y1*int(r.DPI())/196)
		}
		if n := rows(pages[0], headerBand, headerBand+2*noteLine); n < 2000 {
			t.Errorf("%s: the notes band of page 1 has %d black pixels", r, n)
		}
		if n := rows(pages[1], headerBand, headerBand+2*noteLine); n > 0 && n == rows(pages[0], headerBand, headerBand+2*noteLine) {
			t.Errorf("%s: page 2 has the notes too", r)
		}
	}
}

// TestImageBytesLimit: the limit counts decoded bytes, not only pixels: a
// 16-bit RGBA PNG under the pixel limit but over the memory bound is
// refused from its header.
func TestImageBytesLimit(t *testing.T) {
	var buf bytes.Buffer
	png.Encode(&buf, image.NewRGBA64(image.Rect(0, 0, 1, 1)))
	big := buf.Bytes()
	binary.BigEndian.PutUint32(big[16:], 5000)
	binary.BigEndian.PutUint32(big[20:], 4000) // 20 M pixels × 8 bytes = 160 MB
	binary.BigEndian.PutUint32(big[29:], crc32.ChecksumIEEE(big[12:29]))
	_, err := Render(context.Background(), []Document{{Name: "deep.png", Data: big}}, Options{})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "152 MB decoded") {
		t.Errorf("16-bit RGBA: %v", err)
	}
}
