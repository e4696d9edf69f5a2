package datamap

import (
	"strings"
	"testing"
)

// TestEightBitWithoutCharset: mail in 8 bits that names no charset is read
// as windows-1252 (or the map's default_charset) in the subject, the body
// and text attachments — not turned into U+FFFD.
func TestEightBitWithoutCharset(t *testing.T) {
	raw := []byte("From: Ren\xe9 <rene@example.com>\r\nTo: fax@example.com\r\nSubject: Caf\xe9 cr\xe8me \xa4 5\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nPri\xe8re de faxer \xe0 Andr\xe9.\r\n" +
		"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"r\xe9sum\xe9.txt\"\r\n\r\nd\xe9j\xe0 vu\r\n--B--\r\n")
	spec := `
fields: [{name: subject, from: [{source: subject}], default: ""}, {name: name, from: [{source: from.name}], default: ""}]
documents: [{body: true}, {types: [text/plain]}]
routes: [{drivers: [fax]}]
`
	tests := []struct {
		name, extra                   string
		subject, from, body, attached string
	}{
		{"windows-1252 by default", "", "Café crème ¤ 5", "René", "Prière de faxer à André.", "text/plain; charset=windows-1252"},
		{"a map's default", "default_charset: iso-8859-15\n", "Café crème € 5", "René", "Prière de faxer à André.", "text/plain; charset=iso-8859-15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := compileYAML(t, spec+tt.extra).Apply(raw)
			if err != nil {
				t.Fatal(err)
			}
			if res.Value("subject") != tt.subject || res.Value("name") != tt.from {
				t.Errorf("subject %q, from %q", res.Value("subject"), res.Value("name"))
			}
			if len(res.Documents) != 2 || string(res.Documents[0].Data) != tt.body || res.Documents[1].MediaType != tt.attached || res.Documents[1].Name != "résumé.txt" {
				t.Fatalf("documents %+v", res.Documents)
			}
		})
	}
	spec2, _ := Parse("t", []byte(spec+"default_charset: klingon\n"))
	if _, err := Compile("t", spec2); err == nil || !strings.Contains(err.Error(), `default_charset: "klingon"`) {
		t.Errorf("bad charset: %v", err)
	}
}

// TestMissingGlyphWarning: a character no installed font has is a warning
// in the record and the preview.
func TestMissingGlyphWarning(t *testing.T) {
	raw := plainMail("To: fax@example.com\nSubject: x\n", "Order \ue000 please\n")
	res, err := compileYAML(t, faxDocs).Apply(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.HasPrefix(res.Warnings[0], "body.txt: 1 characters no font has (U+E000)") {
		t.Fatalf("warnings %q", res.Warnings)
	}
	var b strings.Builder
	_ = res.WriteText(&b)
	if !strings.Contains(b.String(), "  warning: body.txt: 1 characters no font has (U+E000)") {
		t.Errorf("preview:\n%s", b.String())
	}
}
