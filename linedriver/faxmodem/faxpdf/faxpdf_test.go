package faxpdf

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
)

// drawing is a PNG with fine detail: one-pixel lines, a checkerboard.
func drawing() []byte {
	img := image.NewGray(image.Rect(0, 0, 1728, 1100))
	for y := range 1100 {
		for x := range 1728 {
			c := uint8(255)
			switch {
			case x%97 == 0 || y%89 == 0:
				c = 0
			case x > 400 && x < 700 && y > 300 && y < 600 && (x+y)%2 == 0:
				c = 0
			}
			img.SetGray(x, y, color.Gray{Y: c})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// photo is a smooth grey gradient: dithered, it is the page G4 codes worst,
// so the writer deflates it.
func photo() []byte {
	img := image.NewGray(image.Rect(0, 0, 800, 1000))
	for y := range 1000 {
		for x := range 800 {
			img.SetGray(x, y, color.Gray{Y: uint8((x*255/800 + y*255/1000) / 2)})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// TestPagesPixelForPixel: the PDF opens in ghostscript and, rendered at the
// fax's own resolution, every page equals the fax page pixel for pixel.
func TestPagesPixelForPixel(t *testing.T) {
	gs := testenv.LookPath(t, "gs")
	docs := []render.Document{
		{Name: "note.txt", MediaType: "text/plain", Data: []byte("Lab results for Dr. Bob\n\nAll values within range.\nPage two follows.")},
		{Name: "chart.png", MediaType: "image/png", Data: drawing()},
		{Name: "photo.png", MediaType: "image/png", Data: photo()},
	}
	hdr := &render.Header{From: "Example Lab +1 555 0100", To: "+1 555 0101", Time: time.Date(2026, 3, 4, 10, 11, 12, 0, time.UTC)}
	for _, res := range []render.Resolution{render.Fine, render.Standard} {
		t.Run(res.String(), func(t *testing.T) {
			pages, err := render.Render(context.Background(), docs, render.Options{Resolution: res, Header: hdr, Dither: true})
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := Write(&b, pages); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d pages, %d bytes of PDF", len(pages), b.Len())
			if !bytes.Contains(b.Bytes(), []byte("/CCITTFaxDecode")) || !bytes.Contains(b.Bytes(), []byte("/FlateDecode")) {
				t.Errorf("want the text page in G4 and the photo deflated")
			}
			raw := 0
			for _, pg := range pages {
				raw += len(pg.Pix)
			}
			if b.Len() > raw/3 {
				t.Errorf("PDF of %d pages is %d bytes, the pages' bits %d: not small", len(pages), b.Len(), raw)
			}
			dir := t.TempDir()
			pdf := filepath.Join(dir, "fax.pdf")
			os.WriteFile(pdf, b.Bytes(), 0o644)
			out, err := exec.Command(gs, "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pbmraw",
				fmt.Sprintf("-r%dx%d", xres, int(res.DPI())), "-o", filepath.Join(dir, "p%d.pbm"), pdf).CombinedOutput()
			if err != nil {
				t.Fatalf("ghostscript cannot read the PDF: %v\n%s", err, out)
			}
			for i, want := range pages {
				got := readPBM(t, filepath.Join(dir, fmt.Sprintf("p%d.pbm", i+1)))
				if got.Width != want.Width || got.Height != want.Height {
					t.Fatalf("page %d: %dx%d from the PDF, %dx%d sent", i+1, got.Width, got.Height, want.Width, want.Height)
				}
				diff := 0
				for y := range want.Height {
					if !bytes.Equal(got.Row(y), want.Row(y)) {
						diff++
					}
				}
				if diff != 0 {
					t.Errorf("page %d: %d of %d rows differ from the page sent", i+1, diff, want.Height)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("p%d.pbm", len(pages)+1))); err == nil {
				t.Errorf("the PDF has more pages than the %d sent", len(pages))
			}
		})
	}
}

// readPBM reads a raw PBM (P4: 1 = black, rows padded to bytes), the
// layout of render.Page.
func readPBM(t *testing.T, path string) *render.Page {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	// The header: P4, width, height, separated by white space, with
	// # comments (ghostscript writes one), then one white-space byte.
	var fields []string
	for len(fields) < 3 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: not a raw PBM: %v", path, err)
		}
		if line[0] != '#' {
			fields = append(fields, strings.Fields(line)...)
		}
	}
	var w, h int
	if _, err := fmt.Sscanf(strings.Join(fields, " "), "P4 %d %d", &w, &h); err != nil {
		t.Fatalf("%s: not a raw PBM: %v", path, err)
	}
	p := render.NewPage(w, h, render.Fine)
	if _, err := io.ReadFull(r, p.Pix); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}

func TestNoPages(t *testing.T) {
	if err := Write(io.Discard, nil); err == nil {
		t.Fatal("a PDF of no pages was written")
	}
}
