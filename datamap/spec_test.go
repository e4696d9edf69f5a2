package datamap

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLoadFileStrict(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, doc string
		want      []string // substrings of the error
	}{
		{"unknown key", "fields:\n  - name: a\n    requird: true\nroutes:\n  - drivers: [x]\n", []string{"bad.yaml:3:", "requird"}},
		{"unknown transform key", "fields:\n  - name: a\n    default: \"\"\n    from: [{source: subject}]\n    transforms:\n      - {replace: a, wiht: b}\nroutes:\n  - drivers: [x]\n", []string{"bad.yaml:6:", `unknown key "wiht"`}},
		{"type mismatch", "fields: 3\nroutes: []\n", []string{"bad.yaml:1:"}},
		{"syntax", "fields:\n  - name: [\n", []string{"bad.yaml:"}},
		{"empty", "", []string{"empty map document"}},
		{"two documents", "routes: [{drivers: [x]}]\n---\nroutes: []\n", []string{"more than one YAML document"}},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(path, []byte(tt.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadFile(path)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", tt.name, err, w)
			}
		}
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestCompileErrors(t *testing.T) {
	spec, err := Parse("bad.yaml", []byte(`
preprocess:
  strip_disclaimers: ['(']
dial: {country_code: "44"}
region: USA
fields:
  - name: 1bad
    required: true
    from: [{source: subject}]
  - name: nodefault
    from: [{source: subject}]
  - name: both
    required: true
    from: [{source: subject}]
    expr: subject
  - name: badsource
    required: true
    from:
      - source: bogus
      - source: body
        regex: '(a)(b)'
      - source: body
        regex: x
        key: y
      - source: body
        columns: '9-3'
      - source: body
        split: {index: 0}
  - name: badexpr
    default: ""
    expr: 'fields.x +* 2'
  - name: badtype
    required: true
    type: date
    pattern: '['
    from: [{source: subject}]
    transforms: [shout, {replace: '(', with: x}, {lookup: {a: b}, with: c}]
  - name: badtype
    default: ""
    from: [{source: subject}]
documents:
  - types: [pdf]
  - {}
  - body: true
    names: x
routes:
  - drivers: [fax]
  - when: 'subject ==='
    drivers: []
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile("m", spec)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		"datamap m: preprocess.strip_disclaimers[0]: error parsing regexp",
		"datamap m: dial: line 4: the dial rules were removed: fax numbers are E.164 now; write region: GB in the map",
		`datamap m: region: "USA" is not an ISO 3166 country code`,
		`field 1bad: name "1bad" must be letters`,
		"field nodefault: optional field needs a default",
		"field both: has both from: and expr:",
		`field badsource.from[0]: unknown source "bogus"`,
		"field badsource.from[1]: regex \"(a)(b)\" has 2 groups",
		"field badsource.from[2]: key, regex, split and columns: use one",
		`field badsource.from[3]: columns "9-3"`,
		"field badsource.from[4]: split.index",
		"field badexpr.expr:",
		`field badtype.type: unknown type "date"`,
		"field badtype.pattern:",
		`field badtype.transforms[0]: unknown transform "shout"`,
		"field badtype.transforms[1]: replace:",
		"field badtype.transforms[2]: lookup takes only else",
		"field badtype: defined twice",
		`documents[0].types: "pdf" is not a media type`,
		"documents[1]: needs body: true, or types:",
		"documents[2]: body: true takes no types",
		"routes[0]: has no condition, so the rules after it never apply",
		"routes[1]: no drivers",
		"routes[1].when:",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q", want)
		}
	}
	if t.Failed() {
		t.Logf("errors:\n%s", msg)
	}
	if _, err := Compile("m", Spec{}); err == nil || !strings.Contains(err.Error(), "routes: no routing rule") {
		t.Errorf("empty spec: %v", err)
	}
}

func TestExampleMapsLoad(t *testing.T) {
	files, _ := filepath.Glob("../examples/maps/*.yaml")
	for _, want := range []string{"email-to-fax.yaml", "alarm.yaml"} {
		if !slices.Contains(files, "../examples/maps/"+want) {
			t.Errorf("example map %s missing: %v", want, files)
		}
	}
	for _, f := range files {
		spec, err := LoadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Compile(filepath.Base(f), spec); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadmeMap keeps the map shown in README.md valid.
func TestReadmeMap(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml block in README.md")
	}
	spec, err := Parse("README.md", []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Compile("readme", spec)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Apply([]byte("From: a@example.com\r\nTo: +12015551234@fax.example.com\r\nSubject: x\r\n\r\n123 BA 01 2\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Value("fax_number") != "+12015551234" || res.Value("zone") != "front" || res.Value("priority") != "high" || strings.Join(res.Routes, ",") != "fax-fast" {
		t.Errorf("fields %v routes %v", res.Values(), res.Routes)
	}
}

// A fax field is followed by the number as written; a field of that name
// is refused, and a phone field is E.164 without a second field.
func TestPhoneAndFaxFields(t *testing.T) {
	spec, err := Parse("m.yaml", []byte(`
region: GB
fields:
  - {name: fax, required: true, type: fax, from: [{source: subject}]}
  - {name: callback, required: true, type: phone, from: [{source: header:X-Callback}]}
  - {name: written, expr: 'fields.fax_as_written', default: ""}
routes:
  - drivers: [fax]
`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Compile("m", spec)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Apply([]byte("From: a@example.com\r\nSubject: 020 7946 0018\r\nX-Callback: 0049 30 1234567\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"fax": "+442079460018", "fax_as_written": "020 7946 0018", "callback": "+49301234567", "written": "020 7946 0018"}
	if got := res.Values(); !maps.Equal(got, want) {
		t.Errorf("fields %v, want %v", got, want)
	}
	spec.Fields = append(spec.Fields, FieldSpec{Name: "fax_as_written", Default: new(string), From: []SourceSpec{{Source: "subject"}}})
	if _, err := Compile("m", spec); err == nil || !strings.Contains(err.Error(), "field fax_as_written: is the name the map gives to field fax as written") {
		t.Errorf("Compile with a field fax_as_written: %v", err)
	}
}
