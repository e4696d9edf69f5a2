package datamap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzApply maps arbitrary bytes as mail with the example maps and the
// corpus map: Apply must not panic (its recover turns a panic into an
// "internal error" rejection, which fails here), every rejection has a
// reason, and a mapped record has every field with its provenance and a
// value for every required field.
func FuzzApply(f *testing.F) {
	files, _ := filepath.Glob("testdata/mail/*.eml")
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"))
	f.Add([]byte("To: +12015551234@x\r\nFrom: a@b\r\nContent-Type: text/html\r\n\r\n<table><tr><td><p>x</td><li>y<pre>z"))
	maps := []*Map{exampleMap(f, "email-to-fax"), exampleMap(f, "alarm"), mustLoad(f, "testdata/corpus.yaml", "corpus")}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, m := range maps {
			res, err := m.Apply(raw)
			if res == nil {
				t.Fatal("nil result")
			}
			if err != nil {
				rej, ok := err.(*Rejection)
				if !ok {
					t.Fatalf("error %T %v is not a rejection", err, err)
				}
				if rej.Field == "" || rej.Reason == "" || strings.HasPrefix(rej.Reason, "internal error") {
					t.Fatalf("rejection %+v", rej)
				}
				if !utf8.ValidString(rej.Reason) {
					t.Fatalf("reason not UTF-8: %q", rej.Reason)
				}
				continue
			}
			if names := fieldNames(m); len(res.Fields) != len(names) || len(res.Routes) == 0 {
				t.Fatalf("fields %d (want %d) routes %v", len(res.Fields), len(names), res.Routes)
			}
			required := map[string]bool{}
			for _, f := range m.fields {
				required[f.spec.Name] = f.spec.Required
			}
			for _, fl := range res.Fields {
				if fl.Source == "" || fl.Rule == "" {
					t.Fatalf("field %s without provenance", fl.Name)
				}
				if required[fl.Name] && fl.Value == "" {
					t.Fatalf("required field %s empty", fl.Name)
				}
			}
			for _, d := range res.Documents {
				if d.Data == nil || d.MediaType == "" || d.Name == "" {
					t.Fatalf("document %+v", d)
				}
			}
			if err := res.WriteText(discard{}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// FuzzCompile decodes and compiles arbitrary map documents: no panic, and a
// map that compiles applies to a mail without panicking.
func FuzzCompile(f *testing.F) {
	files, _ := filepath.Glob("../examples/maps/*.yaml")
	files = append(files, "testdata/corpus.yaml")
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("fields:\n  - name: a\n    expr: 'fields.a + subject'\n    default: ''\nroutes:\n  - drivers: [x]\n"))
	f.Add([]byte("fields:\n  - name: a\n    required: true\n    from: [{source: body, columns: '3-', line: -1}]\n    transforms: [digits, {lookup: {'1': x}, else: y}]\nroutes:\n  - drivers: [x]\n"))
	mailRaw, err := os.ReadFile("testdata/mail/outlook-signature-disclaimer.eml")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		spec, err := Parse("fuzz.yaml", doc)
		if err != nil {
			return
		}
		m, err := Compile("fuzz", spec)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		_, err = m.Apply(mailRaw)
		if rej, ok := err.(*Rejection); ok && strings.HasPrefix(rej.Reason, "internal error") {
			t.Fatalf("apply: %v", err)
		}
	})
}

// FuzzHTMLToText: any HTML renders without panic to valid, tidy text.
func FuzzHTMLToText(f *testing.F) {
	f.Add("<p class=MsoNormal>a<o:p>&nbsp;</o:p></p><table><tr><td><p>b</p></td><td>c</td></tr></table>")
	f.Add("<div>x<br><br></div><ul><li>1<li>2</ul><pre> a\n  b</pre><script>x</script><img alt=logo>")
	f.Fuzz(func(t *testing.T, s string) {
		out := HTMLToText(s)
		if strings.Contains(out, "\n\n\n") {
			t.Fatalf("more than one blank line: %q", out)
		}
		if strings.TrimSpace(out) != out {
			t.Fatalf("not trimmed: %q", out)
		}
	})
}
