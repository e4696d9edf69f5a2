package sniff

import (
	"archive/zip"
	"bytes"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

func zipOf(t testing.TB, files ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for i := 0; i+1 < len(files); i += 2 {
		method := zip.Deflate
		if files[i] == "mimetype" {
			method = zip.Store
		}
		f, err := w.CreateHeader(&zip.FileHeader{Name: files[i], Method: method})
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(files[i+1]))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encoded(t testing.TB, enc func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := enc(&b, image.NewGray(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func ole(streams ...string) []byte {
	b := []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
	b = append(b, make([]byte, 504)...)
	for _, s := range streams {
		for i := 0; i < len(s); i++ {
			b = append(b, s[i], 0)
		}
		b = append(b, make([]byte, 64-2*len(s)%64)...)
	}
	return b
}

func TestDetect(t *testing.T) {
	pngData := encoded(t, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })
	cases := []struct {
		name     string
		data     []byte
		declared string
		kind     Kind
		mt       string
	}{
		{"pdf as octet-stream", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"), "application/octet-stream", PDF, "application/pdf"},
		{"pdf after junk", append(bytes.Repeat([]byte{' '}, 200), "%PDF-1.4\n"...), "", PDF, "application/pdf"},
		{"png as pdf", pngData, "application/pdf", Image, "image/png"},
		{"jpeg", encoded(t, func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) }), "image/jpg", Image, "image/jpeg"},
		{"gif", encoded(t, func(b *bytes.Buffer, m image.Image) error { return gif.Encode(b, m, nil) }), "", Image, "image/gif"},
		{"bmp", encoded(t, func(b *bytes.Buffer, m image.Image) error { return bmp.Encode(b, m) }), "application/x-unknown", Image, "image/bmp"},
		{"tiff", encoded(t, func(b *bytes.Buffer, m image.Image) error { return tiff.Encode(b, m, nil) }), "", TIFF, "image/tiff"},
		{"tiff big-endian", []byte("MM\x00*\x00\x00\x00\x08"), "", TIFF, "image/tiff"},
		{"pbm", []byte("P4\n# made by hand\n8 2\n\xff\x00"), "", Image, "image/x-portable-anymap"},
		{"ppm", []byte("P6 1 1 255\n\x00\x00\x00"), "", Image, "image/x-portable-anymap"},
		{"P text is not pnm", []byte("Please see the attached order"), "", Text, "text/plain"},
		{"docx", zipOf(t, "[Content_Types].xml", "<Types/>", "_rels/.rels", "", "word/document.xml", "<w:document/>"), "application/octet-stream", Office, DOCX},
		{"xlsx", zipOf(t, "[Content_Types].xml", "<Types/>", "xl/workbook.xml", "<workbook/>"), "", Office, XLSX},
		{"pptx", zipOf(t, "[Content_Types].xml", "<Types/>", "ppt/presentation.xml", "<p/>"), "", Office, PPTX},
		{"odt", zipOf(t, "mimetype", ODT, "content.xml", "<x/>"), "", Office, ODT},
		{"ods", zipOf(t, "mimetype", ODS), "", Office, ODS},
		{"odp", zipOf(t, "mimetype", ODP), "", Office, ODP},
		{"plain zip", zipOf(t, "a.txt", "hello"), "application/pdf", Unknown, "application/zip"},
		{"broken zip", []byte("PK\x03\x04garbage"), "", Unknown, "application/zip"},
		{"doc", ole("Root Entry", "WordDocument", "1Table"), "", Office, DOC},
		{"xls", ole("Root Entry", "Workbook"), "", Office, XLS},
		{"ppt", ole("Root Entry", "PowerPoint Document"), "", Office, PPT},
		{"msg", ole("Root Entry", "__substg1.0_0037001F"), "", Unknown, "application/vnd.ms-outlook"},
		{"encrypted office", ole("Root Entry", "EncryptionInfo", "EncryptedPackage"), "", Unknown, "application/x-ole-storage"},
		{"rtf", []byte(`{\rtf1\ansi hello}`), "text/rtf", Office, RTF},
		{"utf-8 text", []byte("Grüße aus Köln\r\n"), "", Text, "text/plain"},
		{"latin-1 text keeps charset", []byte("caf\xe9 cr\xe8me\n"), "text/plain; charset=iso-8859-1", Text, "text/plain; charset=iso-8859-1"},
		{"8-bit text without charset", []byte("caf\xe9 cr\xe8me br\xfbl\xe9e\n"), "application/octet-stream", Text, "text/plain"},
		{"csv as text", []byte("a,b,c\n1,2,3\n"), "text/csv", Text, "text/plain"},
		{"binary", []byte{0, 1, 2, 3, 0xff, 0xfe}, "application/octet-stream", Unknown, "application/octet-stream"},
		{"empty", nil, "application/pdf", Unknown, "application/octet-stream"},
		{"html", []byte("<!DOCTYPE html><html><body>x</body></html>"), "", Unknown, "text/html"},
		{"exe", []byte("MZ\x90\x00\x03\x00\x00\x00"), "application/pdf", Unknown, "application/vnd.microsoft.portable-executable"},
		{"postscript", []byte("%!PS-Adobe-3.0\n{} loop\n"), "application/pdf", Unknown, "application/postscript"},
		{"gzip", []byte("\x1f\x8b\x08\x00\x00\x00"), "", Unknown, "application/gzip"},
		{"video keeps its label", []byte{0, 0, 1, 0xba, 0x44}, "video/mpeg", Unknown, "video/mpeg"},
		{"riff keeps its label", []byte("RIFF\x00\x00\x00\x00AVI "), "video/x-msvideo", Unknown, "video/x-msvideo"},
		{"false pdf claim", []byte{0, 1, 2}, "application/pdf", Unknown, "application/octet-stream"},
		{"tnef", []byte("\x78\x9f\x3e\x22\x01\x00"), "", Unknown, "application/vnd.ms-tnef"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Detect(c.data, c.declared)
			if got.Kind != c.kind || got.MediaType != c.mt {
				t.Errorf("Detect = %v %q (%s), want %v %q", got.Kind, got.MediaType, got.Name, c.kind, c.mt)
			}
			if got.Name == "" {
				t.Error("no name")
			}
		})
	}
}

func FuzzDetect(f *testing.F) {
	f.Add([]byte("%PDF-1.4"), "application/pdf")
	f.Add([]byte("P4\n1 1\n\x00"), "")
	f.Add(zipOf(f, "mimetype", ODT), "")
	f.Add(zipOf(f, "[Content_Types].xml", "", "word/document.xml", ""), "")
	f.Add(ole("WordDocument"), "")
	f.Add([]byte("caf\xe9"), "text/plain; charset=\"x\"")
	f.Fuzz(func(t *testing.T, data []byte, declared string) {
		got := Detect(data, declared)
		if got.Name == "" || got.MediaType == "" {
			t.Fatalf("empty result %+v", got)
		}
		if got.Kind == Text && bytes.IndexByte(data[:min(len(data), sniffLen)], 0) >= 0 {
			t.Fatalf("text with NUL: %+v", got)
		}
	})
}

// TestDetectHead: only the start of an Office file is there (the part read
// before deciding whether to keep an attachment).
func TestDetectHead(t *testing.T) {
	big := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	for _, c := range []struct {
		name string
		data []byte
		mt   string
	}{
		{"docx", zipOf(t, "[Content_Types].xml", "<Types/>", "_rels/.rels", "<r/>", "word/document.xml", string(big)), DOCX},
		{"odt", zipOf(t, "mimetype", ODT, "content.xml", string(big)), ODT},
	} {
		if got := Detect(c.data[:4096], ""); got.MediaType != c.mt {
			t.Errorf("%s: head detected as %q, want %q", c.name, got.MediaType, c.mt)
		}
	}
}
