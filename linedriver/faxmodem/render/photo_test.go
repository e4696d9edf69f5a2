package render

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// demoPhoto is the site photo of the demo's second mail (a 320×240 JPEG).
func demoPhoto(t testing.TB) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "..", "examples", "demo", "mail", "02-site-photo.eml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := mail.ReadMessage(f)
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal("no JPEG in the demo mail")
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "image/jpeg") {
			b64, _ := io.ReadAll(p)
			data, err := decodeBase64(b64)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
}

func decodeBase64(b []byte) ([]byte, error) {
	var out bytes.Buffer
	_, err := io.Copy(&out, newBase64Reader(b))
	return out.Bytes(), err
}

// lineDrawing is a diagram: thin black lines and a label on white.
func lineDrawing() *image.Gray {
	g := newGray(1600, 1000)
	for i := 0; i < 10; i++ {
		for x := 100; x < 1500; x++ {
			for w := 0; w < 3; w++ {
				g.SetGray(x, 100+i*80+w, color.Gray{0})
			}
		}
	}
	drawRunes(g, face(40), "Floor plan, level 2", 100, 950, 30)
	return g
}

func encoded(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestPhotoOrLineArt(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want imageKind
	}{
		{"demo site photo", demoPhoto(t), photoImage},
		{"gradient photo", encoded(t, photo(1200, 800)), photoImage},
		{"scanned text", encoded(t, textImage()), lineArtImage},
		{"line drawing", encoded(t, lineDrawing()), lineArtImage},
	}
	for _, tt := range tests {
		img, err := decodeImage(tt.data, 25_000_000)
		if err != nil {
			t.Fatal(err)
		}
		g := image.NewGray(img.Bounds())
		for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
			for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
				g.Set(x-img.Bounds().Min.X, y-img.Bounds().Min.Y, img.At(x, y))
			}
		}
		if got := classify(g); got != tt.want {
			t.Errorf("%s: classified %d, want %d", tt.name, got, tt.want)
		}
	}
}

// codedBytes codes a page as the fax driver does at fine resolution.
func codedBytes(t testing.TB, p *Page, e t4.Encoding) int {
	t.Helper()
	var b bytes.Buffer
	opts := t4.Options{Encoding: e, EndOfPage: true, LSBFirst: true}
	if e == t4.MR {
		opts.K = 4
	}
	if _, err := t4.EncodePage(&b, p.Width, p.Row, p.Height, opts); err != nil {
		t.Fatal(err)
	}
	return b.Len()
}

// TestDemoPhotoPage: the demo's photo is screened, not blown up, and its
// page codes within 200 KB in MR (it was 780 KB with Floyd–Steinberg over
// the whole page width).
func TestDemoPhotoPage(t *testing.T) {
	pages := render1(t, []Document{{Name: "site.jpg", MediaType: "image/jpeg", Data: demoPhoto(t)}}, Options{Resolution: Fine, Header: hdr})
	p := pages[0]
	// 320×240 at most twice: 640 pels wide, centred.
	x0 := (Width - 640) / 2
	if n := blackCount(p, 0, headerBand, x0-1, p.Height) + blackCount(p, x0+641, headerBand, Width, p.Height); n != 0 {
		t.Errorf("%d black pixels beside a 640-pel picture", n)
	}
	golden(t, "photo-demo-fine.png", crop(p, x0, headerBand, 640, 480*196/204))
	// Tone: the sky (light blue) is lighter than the grass (dark green).
	rows := 480 * 196 / 204
	sky := blackCount(p, x0+20, headerBand+rows/20, x0+200, headerBand+rows/5)
	grass := blackCount(p, x0+400, headerBand+rows*17/20, x0+620, headerBand+rows*19/20)
	skyD, grassD := float64(sky)/(180*float64(rows*3/20)), float64(grass)/(220*float64(rows/10))
	if skyD > 0.45 || grassD < 0.5 || grassD < skyD+0.2 {
		t.Errorf("densities: sky %.2f, grass %.2f", skyD, grassD)
	}
	if n := codedBytes(t, p, t4.MR); n > 200<<10 {
		t.Errorf("MR page of %d bytes, want at most 200 KB", n)
	}
}

// TestPhotoBytes prints, side by side in one run, the coded bytes of photo
// pages: the clustered-dot screen coded by us and by libtiff, and
// Floyd–Steinberg (full page width, as before). *libtiff's column is the
// whole TIFF file (tiffcp -c g3:2d), a few hundred bytes over its strip.
func TestPhotoBytes(t *testing.T) {
	tiffcp := testenv.LookPath(t, "tiffcp")
	pamtotiff := testenv.LookPath(t, "pamtotiff")
	corpus := []struct {
		name string
		data []byte
	}{
		{"demo site.jpg 320×240", demoPhoto(t)},
		{"gradient 1200×800", encoded(t, photo(1200, 800))},
		{"gradient 3000×2000", encoded(t, photo(3000, 2000))},
	}
	t.Logf("%-24s %-16s %9s %9s %9s %13s", "photo", "halftone", "MH", "MR k=4", "MMR", "libtiff MR*")
	for _, c := range corpus {
		for _, h := range []struct {
			name string
			o    Options
		}{
			{"screen (auto)", Options{Resolution: Fine}},
			{"Floyd–Steinberg", Options{Resolution: Fine, Dither: true, Halftone: FloydSteinberg}},
			{"screen, page wide", Options{Resolution: Fine, MaxUpscale: 100}},
			{"F–S, page wide", Options{Resolution: Fine, Dither: true, Halftone: FloydSteinberg, MaxUpscale: 100}},
		} {
			p := render1(t, []Document{{Data: c.data}}, h.o)[0]
			mh, mr, mmr := codedBytes(t, p, t4.MH), codedBytes(t, p, t4.MR), codedBytes(t, p, t4.MMR)
			lib := libtiffMR(t, pamtotiff, tiffcp, p)
			t.Logf("%-24s %-16s %9d %9d %9d %13d", c.name, h.name, mh, mr, mmr, lib)
			if strings.HasPrefix(c.name, "demo") && strings.HasPrefix(h.name, "screen") && mr > 200<<10 {
				t.Errorf("%s, %s: page codes to %d bytes MR", c.name, h.name, mr)
			}
		}
	}
}

// libtiffMR codes p with libtiff (tiffcp -c g3:2d) and returns the coded
// strip bytes.
func libtiffMR(t *testing.T, pamtotiff, tiffcp string, p *Page) int {
	dir := t.TempDir()
	pbm := filepath.Join(dir, "p.pbm")
	var b bytes.Buffer
	fmt.Fprintf(&b, "P4\n%d %d\n", p.Width, p.Height)
	b.Write(p.Pix)
	if err := os.WriteFile(pbm, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	raw, g3 := filepath.Join(dir, "raw.tif"), filepath.Join(dir, "g3.tif")
	out, err := exec.Command(pamtotiff, "-none", "-output", raw, pbm).CombinedOutput()
	if err != nil {
		t.Fatalf("pamtotiff: %v %s", err, out)
	}
	if out, err := exec.Command(tiffcp, "-c", "g3:2d", "-r", "100000", raw, g3).CombinedOutput(); err != nil {
		t.Fatalf("tiffcp: %v %s", err, out)
	}
	st, err := os.Stat(g3)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Size())
}

// BenchmarkPhotoPage reports the coded bytes of the demo's photo page with
// the screen and with Floyd–Steinberg (bytes/page, MR k=4).
func BenchmarkPhotoPage(b *testing.B) {
	data := demoPhoto(b)
	for _, h := range []struct {
		name string
		o    Options
	}{
		{"screen", Options{Resolution: Fine}},
		{"screen-page-wide", Options{Resolution: Fine, MaxUpscale: 100}},
		{"floyd-steinberg", Options{Resolution: Fine, Dither: true, Halftone: FloydSteinberg}},
		{"floyd-steinberg-page-wide-as-before", Options{Resolution: Fine, Dither: true, Halftone: FloydSteinberg, MaxUpscale: 100}},
	} {
		b.Run(h.name, func(b *testing.B) {
			var n int
			for b.Loop() {
				p, err := Render(b.Context(), []Document{{Data: data}}, h.o)
				if err != nil {
					b.Fatal(err)
				}
				n = codedBytes(b, p[0], t4.MR)
			}
			b.ReportMetric(float64(n), "MR-bytes/page")
		})
	}
}

func newBase64Reader(b []byte) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, bytes.NewReader(bytes.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == ' ' {
			return -1
		}
		return r
	}, b)))
}
