// Package fonts finds a glyph for every character of a text: a fallback
// chain that starts with the embedded Go Mono and goes on to the Noto fonts
// (Latin, Greek, Cyrillic, Hebrew, Arabic, CJK, Thai, Devanagari, symbols)
// and GNU Unifont (the whole Basic Multilingual Plane, and emoji in plane 1)
// as Debian installs them. Fonts are found at run time in a list of folders
// and parsed only when a character needs them, once per process.
package fonts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
)

// DefaultDirs are where Debian's fonts-noto-core, fonts-noto-cjk and
// fonts-unifont put their files.
var DefaultDirs = []string{
	"/usr/share/fonts/truetype/noto",
	"/usr/share/fonts/opentype/noto",
	"/usr/share/fonts/opentype/unifont",
	"/usr/share/fonts/truetype/unifont",
}

// EnvDirs names the environment variable that replaces DefaultDirs: folders
// separated by ":" (os.PathListSeparator).
const EnvDirs = "MEDIAGW_FONT_DIRS"

// Packages is what to install for the full chain (for messages).
const Packages = "fonts-noto-core fonts-noto-cjk fonts-unifont"

// The fallback chain after Go Mono: file name, and the characters worth
// loading it for (nil: any). The order puts a font drawn like the text
// (sans) before the last resorts (Unifont's bitmap shapes).
var chain = []struct {
	file   string
	covers func(rune) bool
}{
	{"NotoSans-Regular.ttf", nil},
	{"NotoSansHebrew-Regular.ttf", in(unicode.Hebrew)},
	{"NotoSansArabic-Regular.ttf", in(unicode.Arabic)},
	{"NotoSansCJK-Regular.ttc", in(unicode.Han, unicode.Hangul, unicode.Hiragana, unicode.Katakana, unicode.Bopomofo, cjkPunct)},
	{"NotoSansThai-Regular.ttf", in(unicode.Thai)},
	{"NotoSansDevanagari-Regular.ttf", in(unicode.Devanagari)},
	{"NotoSansSymbols2-Regular.ttf", nil},
	{"NotoSansSymbols-Regular.ttf", nil},
	{"NotoSansMath-Regular.ttf", nil},
	{"unifont.otf", nil},
	{"unifont_upper.otf", func(r rune) bool { return r > 0xffff }},
}

var cjkPunct = &unicode.RangeTable{R16: []unicode.Range16{
	{Lo: 0x3000, Hi: 0x303f, Stride: 1}, // CJK symbols and punctuation
	{Lo: 0xff00, Hi: 0xffef, Stride: 1}, // halfwidth and fullwidth forms
}}

func in(tables ...*unicode.RangeTable) func(rune) bool {
	return func(r rune) bool { return unicode.IsOneOf(tables, r) }
}

// Chain is a fallback chain of fonts. It is safe for concurrent use.
type Chain struct {
	dirs  []string
	fonts []*entry
}

type entry struct {
	name   string // file name; "Go Mono" for the embedded font
	path   string // "" when not found
	covers func(rune) bool
	once   sync.Once
	font   *opentype.Font
	err    error
}

// New makes a chain that looks for its fonts in dirs (in order; the first
// folder holding a file wins).
func New(dirs []string) *Chain {
	c := &Chain{dirs: dirs}
	mono := &entry{name: "Go Mono"}
	mono.once.Do(func() { mono.font, mono.err = opentype.Parse(gomono.TTF) })
	c.fonts = append(c.fonts, mono)
	for _, f := range chain {
		e := &entry{name: f.file, covers: f.covers}
		for _, d := range dirs {
			p := filepath.Join(d, f.file)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				e.path = p
				break
			}
		}
		c.fonts = append(c.fonts, e)
	}
	return c
}

var (
	defaultOnce  sync.Once
	defaultChain *Chain
)

// Default is the chain over $MEDIAGW_FONT_DIRS, or DefaultDirs.
func Default() *Chain {
	defaultOnce.Do(func() {
		dirs := DefaultDirs
		if v := os.Getenv(EnvDirs); v != "" {
			dirs = filepath.SplitList(v)
		}
		defaultChain = New(dirs)
	})
	return defaultChain
}

// Dirs are the folders the chain looks in.
func (c *Chain) Dirs() []string { return c.dirs }

// Found lists the font files of the chain that are present.
func (c *Chain) Found() []string {
	var out []string
	for _, e := range c.fonts {
		if e.path != "" || e.name == "Go Mono" {
			out = append(out, e.name)
		}
	}
	return out
}

func (e *entry) load() (*opentype.Font, error) {
	e.once.Do(func() {
		if e.path == "" {
			e.err = errors.New("not installed")
			return
		}
		data, err := os.ReadFile(e.path)
		if err != nil {
			e.err = err
			return
		}
		if strings.HasSuffix(e.path, ".ttc") || strings.HasSuffix(e.path, ".otc") {
			// A collection: the first font (Noto Sans CJK JP; every
			// member covers all of CJK, with regional glyph shapes).
			coll, err := opentype.ParseCollection(data)
			if err != nil {
				e.err = err
				return
			}
			e.font, e.err = coll.Font(0)
			return
		}
		e.font, e.err = opentype.Parse(data)
	})
	return e.font, e.err
}

var bufPool = sync.Pool{New: func() any { return new(sfnt.Buffer) }}

// Font returns the first font of the chain with a glyph for r, and its
// place in the chain (0 is Go Mono); nil when no font has one.
func (c *Chain) Font(r rune) (*opentype.Font, int) {
	b := bufPool.Get().(*sfnt.Buffer)
	defer bufPool.Put(b)
	for i, e := range c.fonts {
		if e.covers != nil && !e.covers(r) {
			continue
		}
		if e.path == "" && i > 0 {
			continue
		}
		f, err := e.load()
		if err != nil {
			continue
		}
		if gi, err := f.GlyphIndex(b, r); err == nil && gi != 0 {
			return f, i
		}
	}
	return nil, -1
}

// Missing returns the characters of s that no font of the chain has, each
// once, in order; control characters and white space are not counted.
func (c *Chain) Missing(s string) []rune {
	var out []rune
	seen := map[rune]bool{}
	for _, r := range s {
		if r < 0x20 || unicode.IsSpace(r) || unicode.IsControl(r) || seen[r] || isFormat(r) {
			continue
		}
		seen[r] = true
		if f, _ := c.Font(r); f == nil {
			out = append(out, r)
		}
	}
	return out
}

// isFormat: characters that draw nothing (zero-width joiners, marks of
// direction, variation selectors).
func isFormat(r rune) bool {
	return unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r)
}

// Describe names missing characters for a warning: "U+E000, U+1FAE8 (2
// characters no font has; fonts looked for in ...)".
func (c *Chain) Describe(missing []rune) string {
	var codes []string
	for i, r := range missing {
		if i == 10 {
			codes = append(codes, fmt.Sprintf("and %d more", len(missing)-10))
			break
		}
		codes = append(codes, fmt.Sprintf("U+%04X", r))
	}
	return fmt.Sprintf("%d characters no font has (%s); fonts looked for in %s (Debian: %s)",
		len(missing), strings.Join(codes, ", "), strings.Join(c.dirs, ":"), Packages)
}
