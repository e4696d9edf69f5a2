package render

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/sniff"
	"github.com/mediagw/mediagw/internal/testenv"
)

// officeFile makes a real Office file from a flat OpenDocument source in
// testdata/office with LibreOffice itself (so the test files are made in the
// repository, not downloaded).
func officeFile(t *testing.T, soffice, src, format string) []byte {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(soffice, "--headless", "--norestore", "-env:UserInstallation=file://"+filepath.Join(dir, "profile"),
		"--convert-to", format, "--outdir", dir, filepath.Join("testdata", "office", src))
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("making %s from %s: %v\n%s", format, src, err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, strings.TrimSuffix(src, filepath.Ext(src))+"."+format))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// longRuns counts the rows holding a black run of at least n pixels (the
// rules of a table, the edges of a filled box).
func longRuns(p *Page, n int) (rows int) {
	for y := 0; y < p.Height; y++ {
		run := 0
		for x := 0; x < p.Width; x++ {
			if p.black(x, y) {
				run++
				if run == n {
					rows++
					break
				}
			} else {
				run = 0
			}
		}
	}
	return rows
}

// goldenLoose keeps a reviewed PNG in testdata/office for a person to look
// at (-update rewrites it) and fails when more than 1% of the pixels differ:
// LibreOffice's text layout may move a glyph between versions, the checks on
// structure are the pixel statistics.
func goldenLoose(t *testing.T, name string, p *Page) {
	t.Helper()
	var buf bytes.Buffer
	if err := WritePNG(&buf, p); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "office", name)
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
	if total := wi.Bounds().Dx() * wi.Bounds().Dy(); diff*100 > total {
		t.Errorf("golden %s: %d of %d pixels differ", name, diff, total)
	}
}

// TestOffice faxes a .docx with a table and an image, an .xlsx and a .pptx,
// each sent as application/octet-stream, through LibreOffice and ghostscript.
func TestOffice(t *testing.T) {
	soffice := testenv.LookPath(t, "soffice")
	testenv.LookPath(t, "gs")
	// One cell side at 204 dpi is at least 4 cm (321 pixels); the table of
	// the letter is 16 cm wide (1285 pixels), the sheet's columns 4 cm each.
	tests := []struct {
		name, src, format, mediaType string
		pages                        int
		check                        func(t *testing.T, pages []*Page)
	}{
		{"docx with a table and an image", "letter.fodt", "docx", sniff.DOCX, 1, func(t *testing.T, ps []*Page) {
			p := ps[0]
			// 4 rows of cells: 5 horizontal rules (thick: 1.5 pt is 4 rows at 196 dpi) across the table.
			if n := longRuns(p, 1200); n < 5*3 || n > 5*6 {
				t.Errorf("%d rows with a rule across the table, want 5 rules", n)
			}
			// The 5 cm image: a black square with a white diamond in the middle.
			if n := longRuns(p, 380); n < 200 {
				t.Errorf("%d rows with a 5 cm black run (the image), want at least 200", n)
			}
		}},
		{"xlsx", "sales.fods", "xlsx", sniff.XLSX, 1, func(t *testing.T, ps []*Page) {
			// 7 rows of 3 bordered cells: 8 rules about 12 cm long.
			if n := longRuns(p0(ps), 900); n < 8 || n > 8*6 {
				t.Errorf("%d rows with a rule across the sheet, want 8 rules", n)
			}
		}},
		{"pptx", "review.fodp", "pptx", sniff.PPTX, 2, func(t *testing.T, ps []*Page) {
			// Slide one has a filled 10×8 cm box; slide two has none.
			if n := longRuns(ps[0], 250); n < 150 {
				t.Errorf("slide 1: %d rows of the filled box", n)
			}
			if n := longRuns(ps[1], 250); n > 10 {
				t.Errorf("slide 2: %d rows with long black runs, want none", n)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := officeFile(t, soffice, tt.src, tt.format)
			if got := sniff.Detect(data, "application/octet-stream"); got.MediaType != tt.mediaType {
				t.Fatalf("sniffed as %q", got.MediaType)
			}
			start := time.Now()
			pages := render1(t, []Document{{Name: "file." + tt.format, MediaType: "application/octet-stream", Data: data}}, Options{Resolution: Fine})
			t.Logf("%s: %d pages in %v", tt.format, len(pages), time.Since(start).Round(time.Millisecond))
			if len(pages) != tt.pages {
				t.Fatalf("%d pages, want %d", len(pages), tt.pages)
			}
			tt.check(t, pages)
			for i, p := range pages {
				goldenLoose(t, tt.format+"-"+string(rune('1'+i))+".png", p)
			}
		})
	}
}

func p0(ps []*Page) *Page { return ps[0] }

// TestOfficeErrors: LibreOffice missing, a damaged file, a conversion that
// takes too long: each says so, with LibreOffice's own reason.
func TestOfficeErrors(t *testing.T) {
	ctx := context.Background()
	docx := zipDocx(t, "<w:document>this is not WordprocessingML")
	_, err := Render(ctx, []Document{{Name: "a.docx", Data: docx}}, Options{Office: &Office{Program: "no-such-soffice"}})
	if !errors.Is(err, ErrNoLibreOffice) || !strings.Contains(err.Error(), "libreoffice-writer-nogui") {
		t.Errorf("missing LibreOffice: %v", err)
	}
	testenv.LookPath(t, "soffice")
	_, err = Render(ctx, []Document{{Name: "a.docx", Data: docx}}, Options{Office: &Office{}})
	t.Logf("damaged: %v", err)
	if !errors.Is(err, ErrConvert) || !strings.Contains(err.Error(), "a.docx") {
		t.Errorf("damaged docx: %v", err)
	}
	_, err = (&Office{Timeout: 50 * time.Millisecond}).ToPDF(ctx, docx, sniff.DOCX)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v", err)
	}
}

// TestOfficeConcurrent: conversions at once each have their own profile,
// and the limit holds them back rather than failing them.
func TestOfficeConcurrent(t *testing.T) {
	soffice := testenv.LookPath(t, "soffice")
	data := officeFile(t, soffice, "letter.fodt", "docx")
	o := &Office{MaxConcurrent: 2}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pdf, err := o.ToPDF(context.Background(), data, sniff.DOCX)
			if err == nil && !bytes.HasPrefix(pdf, []byte("%PDF-")) {
				err = errors.New("not a PDF")
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("conversion %d: %v", i, err)
		}
	}
}

func zipDocx(t *testing.T, document string) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for name, body := range map[string]string{
		"[Content_Types].xml": `<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`,
		"_rels/.rels":         `<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="r1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`,
		"word/document.xml":   document,
	} {
		f, _ := w.Create(name)
		f.Write([]byte(body))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
