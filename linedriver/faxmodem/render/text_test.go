package render

import (
	"strings"
	"testing"

	"github.com/mediagw/mediagw/internal/fonts"
	"github.com/mediagw/mediagw/internal/testenv"
)

func TestLayoutLines(t *testing.T) {
	long := "The quick brown fox jumps over the lazy dog and keeps running far beyond the end of the line"
	tests := []struct {
		name, in string
		want     []string
	}{
		{"LF", "one\ntwo\n", []string{"one", "two"}},
		{"CR LF", "one\r\ntwo\r\n", []string{"one", "two"}},
		{"CR only", "one\rtwo\rthree", []string{"one", "two", "three"}},
		{"mixed", "a\r\nb\rc\nd", []string{"a", "b", "c", "d"}},
		{"wrap at a space", long + " here", []string{"The quick brown fox jumps over the lazy dog and keeps running far beyond the end", "of the line here"}},
		{"a word longer than a line is cut", strings.Repeat("x", 85) + " y", []string{strings.Repeat("x", 80), "xxxxx y"}},
		{"decomposed umlaut composes", "Ba\u0308r", []string{"Bär"}},
		{"a mark with no composed form stays with its base", "q\u0307q", []string{"q\u0307q"}},
		{"wide characters take two columns", strings.Repeat("日本", 20) + "語", []string{strings.Repeat("日本", 20), "語"}},
		{"emoji is wide", strings.Repeat("x", 79) + "😀", []string{strings.Repeat("x", 79), "😀"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pages := layoutText(tt.in, 5)
			if len(pages) != 1 || strings.Join(pages[0], "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", pages, tt.want)
			}
		})
	}
}

// TestScripts renders every script the fallback chain covers, and checks
// that a character no font has is reported, not lost in silence.
func TestScripts(t *testing.T) {
	chain := fonts.Default()
	if len(chain.Found()) < 8 {
		testenv.Skip(t, "fonts missing: "+fonts.Packages)
	}
	lines := []string{
		"Latin: Grüße, ½ € ß — Ünïcödé; decomposed: Ba\u0308r, e\u0301te",
		"Greek: Καλημέρα κόσμε   Cyrillic: Здравствуй, мир",
		"日本語: こんにちは世界   中文: 你好世界   한국어: 안녕하세요",
		"עברית: שלום עולם",
		"العربية: مرحبا بالعالم",
		"Emoji: 😀 👍 ☎ ✉",
		"Private use: \ue000",
	}
	var warned []string
	pages := render1(t, []Document{{Name: "scripts.txt", MediaType: "text/plain; charset=utf-8", Data: []byte(strings.Join(lines, "\r"))}},
		Options{Resolution: Fine, Warn: func(s string) { warned = append(warned, s) }})
	p := pages[0]
	golden(t, "text-scripts.png", crop(p, 0, 0, Width, 300))
	pitch := (A4.Height(Fine) - headerBand - bottomSpace) / Lines
	margin := (Width - Columns*cellWidth) / 2
	// Every line has ink where its characters are (CR-only line ends).
	for i, l := range lines {
		y0, y1 := headerBand+i*pitch, headerBand+(i+1)*pitch
		n := lineWidth(clusters(normalizeText(l)))
		// The last cell of each line is inked: the right margin for a
		// right-to-left line, set flush right.
		if _, rtl := visualLine(l); rtl {
			n = Columns
		}
		if ink := blackCount(p, margin+(n-1)*cellWidth, y0, margin+n*cellWidth, y1); ink == 0 {
			t.Errorf("line %d (%q): last cell blank", i+1, l)
		}
	}
	// The wide CJK line: "日" takes two cells and is inked across them.
	y0 := headerBand + 2*pitch
	if ink := blackCount(p, margin, y0, margin+2*cellWidth, y0+pitch); ink < 150 {
		t.Errorf("CJK cell has %d black pixels", ink)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "scripts.txt: 1 characters no font has (U+E000)") {
		t.Errorf("warnings %q", warned)
	}
	if got := MissingGlyphs(strings.Join(lines[:6], "\n"), chain); len(got) != 0 {
		t.Errorf("missing glyphs %U", got)
	}
}

// TestDefaultCharset: 8-bit text without a charset is read as
// windows-1252 (or the configured charset), not turned into U+FFFD.
func TestDefaultCharset(t *testing.T) {
	d := Document{MediaType: "text/plain", Data: []byte("caf\xe9 \x80 5")}
	for _, c := range []struct{ dc, want string }{{"", "café € 5"}, {"iso-8859-7", "cafι \ufffd 5"}} {
		got, err := decodeText(d, c.dc)
		if err != nil || got != c.want {
			t.Errorf("default %q: %q, %v; want %q", c.dc, got, err, c.want)
		}
	}
	if got, _ := decodeText(Document{MediaType: "text/plain", Data: []byte("café")}, ""); got != "café" {
		t.Errorf("UTF-8 read as %q", got)
	}
}
