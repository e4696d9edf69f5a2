package fonts

import (
	"strings"
	"testing"

	"github.com/mediagw/mediagw/internal/testenv"
)

func TestChain(t *testing.T) {
	c := Default()
	for _, f := range []string{"NotoSans-Regular.ttf", "NotoSansHebrew-Regular.ttf", "NotoSansArabic-Regular.ttf", "NotoSansCJK-Regular.ttc", "unifont.otf", "unifont_upper.otf"} {
		found := false
		for _, g := range c.Found() {
			found = found || g == f
		}
		if !found {
			testenv.Skip(t, "font "+f+" is not installed ("+Packages+")")
		}
	}
	tests := []struct {
		r    rune
		font string
	}{
		{'A', "Go Mono"}, {'ß', "Go Mono"}, {'Ж', "Go Mono"}, {'λ', "Go Mono"},
		{'ệ', "NotoSans-Regular.ttf"},
		{'א', "NotoSansHebrew-Regular.ttf"},
		{'ب', "NotoSansArabic-Regular.ttf"},
		{'日', "NotoSansCJK-Regular.ttc"}, {'한', "NotoSansCJK-Regular.ttc"}, {'か', "NotoSansCJK-Regular.ttc"},
		{'ก', "NotoSansThai-Regular.ttf"},
		{'😀', "unifont_upper.otf"},
	}
	for _, tt := range tests {
		_, i := c.Font(tt.r)
		if i < 0 || c.fonts[i].name != tt.font {
			name := "none"
			if i >= 0 {
				name = c.fonts[i].name
			}
			t.Errorf("%q (U+%04X): %s, want %s", tt.r, tt.r, name, tt.font)
		}
	}
	if got := c.Missing("ok \uE000 \U0010FFFD \u200d é"); len(got) != 2 || got[0] != 0xE000 {
		t.Errorf("Missing = %U", got)
	}
	if d := c.Describe([]rune{0xE000}); !strings.Contains(d, "U+E000") || !strings.Contains(d, Packages) {
		t.Errorf("Describe = %q", d)
	}
}

// TestNoFonts: with no font folder only Go Mono is there, and the rest is
// reported missing, not drawn as boxes in silence.
func TestNoFonts(t *testing.T) {
	c := New([]string{t.TempDir()})
	if got := c.Found(); len(got) != 1 || got[0] != "Go Mono" {
		t.Errorf("Found = %q", got)
	}
	if got := c.Missing("Grüße Привет 日本"); string(got) != "日本" {
		t.Errorf("Missing = %q", string(got))
	}
}
