package datamap

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func compileYAML(t *testing.T, y string) *Map {
	t.Helper()
	spec, err := Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Compile("test", spec)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const faxDocs = `
fields: [{name: sender, from: [{source: from.address}], default: ""}]
documents:
  - types: [application/pdf, "image/*"]
    exclude_names: '^image0\d\d\.png$'
  - body: true
routes: [{drivers: [fax]}]
`

// TestUnsupported: what no documents entry takes is a rejection naming the
// file and why, or with `unsupported: skip` is listed in Skipped while the
// rest is delivered.
func TestUnsupported(t *testing.T) {
	zipped := attachMail("order.zip", "application/zip", []byte("PK\x05\x06"+strings.Repeat("\x00", 18)))
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for _, name := range []string{"[Content_Types].xml", "word/document.xml"} {
		w, _ := zw.Create(name)
		w.Write([]byte("<x/>"))
	}
	zw.Close()
	docx := attachMail("order.docx", "application/octet-stream", zb.Bytes())
	logo := attachMail("image001.png", "image/png", []byte("not a png at all, but excluded by name"))
	var deep strings.Builder
	deep.WriteString("From: a@example.com\r\nTo: b@example.com\r\nSubject: deep\r\n")
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&deep, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	deep.WriteString("Content-Type: application/pdf\r\n\r\n%PDF-1.4\r\n")
	many := "From: a@example.com\r\nTo: b@example.com\r\nSubject: many\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n" +
		strings.Repeat("--B\r\nContent-Type: text/plain\r\n\r\nx\r\n", 600) + "--B--\r\n"

	tests := []struct {
		name    string
		mail    []byte
		reject  string // under the default
		skipped []string
		docs    int // under skip
	}{
		{"zip", zipped, "documents: order.zip (part 3) is an empty ZIP archive, which cannot be delivered as pages; or unsupported: skip to deliver the rest",
			[]string{"order.zip: an empty ZIP archive, which cannot be delivered as pages"}, 2},
		{"office file the map does not take", docx, "documents: order.docx (part 2) is a Word document (.docx), which no documents entry takes (application/pdf, image/*); or unsupported: skip to deliver the rest",
			[]string{"order.docx: a Word document (.docx), which no documents entry takes (application/pdf, image/*)"}, 1},
		{"excluded by name is not counted", logo, "", nil, 1},
		{"nested too deep", []byte(deep.String()), "message: part 1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1 is nested deeper than 16 levels: it was not read (limits.max_parts; or unsupported: skip to deliver the rest)",
			[]string{"rest of the message: part 1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1 is nested deeper than 16 levels: it was not read"}, 0},
		{"too many parts", []byte(many), "message: more than 500 MIME parts: the parts from 500 on were not read (limits.max_parts; or unsupported: skip to deliver the rest)",
			[]string{"rest of the message: more than 500 MIME parts: the parts from 500 on were not read"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileYAML(t, faxDocs).Apply(tt.mail)
			var rej *Rejection
			switch {
			case tt.reject == "" && err != nil:
				t.Errorf("default: %v", err)
			case tt.reject != "" && (!errors.As(err, &rej) || rej.Error() != tt.reject):
				t.Errorf("default: got %v\nwant %s", err, tt.reject)
			}
			res, err := compileYAML(t, faxDocs+"unsupported: skip\n").Apply(tt.mail)
			if err != nil {
				t.Fatalf("skip: %v", err)
			}
			var got []string
			for _, s := range res.Skipped {
				got = append(got, s.String())
			}
			if strings.Join(got, "|") != strings.Join(tt.skipped, "|") || len(res.Documents) != tt.docs {
				t.Errorf("skip: skipped %q, %d documents; want %q, %d", got, len(res.Documents), tt.skipped, tt.docs)
			}
			if len(tt.skipped) > 0 {
				var b strings.Builder
				_ = res.WriteText(&b)
				if !strings.Contains(b.String(), "skipped (unsupported: skip):\n  - "+tt.skipped[0]) {
					t.Errorf("preview does not list the skip:\n%s", b.String())
				}
			}
		})
	}
}

func TestUnsupportedValue(t *testing.T) {
	spec, err := Parse("t.yaml", []byte(faxDocs+"unsupported: drop\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile("t", spec); err == nil || !strings.Contains(err.Error(), `unsupported: "drop": want reject or skip`) {
		t.Errorf("Compile: %v", err)
	}
}
