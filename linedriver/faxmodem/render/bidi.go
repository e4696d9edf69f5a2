package render

import (
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/bidi"
)

// Right-to-left text: Arabic letters take their joined forms (the Arabic
// Presentation Forms-B, which the Noto Sans Arabic font has) and every line
// is put in visual order by the Unicode bidirectional algorithm
// (golang.org/x/text/unicode/bidi) before it is drawn.

// Joining: the Arabic letters U+0621..U+064A in order, each with the number
// of its presentation forms from U+FE80 on (1: isolated only; 2: isolated,
// final — the letter joins only to the one before it; 4: isolated, final,
// initial, medial).
var arabicForms = map[rune][4]rune{}

func init() {
	counts := []struct {
		r rune
		n int
	}{
		{0x0621, 1}, {0x0622, 2}, {0x0623, 2}, {0x0624, 2}, {0x0625, 2}, {0x0626, 4}, {0x0627, 2}, {0x0628, 4},
		{0x0629, 2}, {0x062A, 4}, {0x062B, 4}, {0x062C, 4}, {0x062D, 4}, {0x062E, 4}, {0x062F, 2}, {0x0630, 2},
		{0x0631, 2}, {0x0632, 2}, {0x0633, 4}, {0x0634, 4}, {0x0635, 4}, {0x0636, 4}, {0x0637, 4}, {0x0638, 4},
		{0x0639, 4}, {0x063A, 4}, {0x0641, 4}, {0x0642, 4}, {0x0643, 4}, {0x0644, 4}, {0x0645, 4}, {0x0646, 4},
		{0x0647, 4}, {0x0648, 2}, {0x0649, 2}, {0x064A, 4},
	}
	next := rune(0xFE80)
	for _, c := range counts {
		var f [4]rune
		for i := range f {
			if i < c.n {
				f[i] = next + rune(i)
			}
		}
		arabicForms[c.r] = f
		next += rune(c.n)
	}
}

const tatweel = 0x0640

// lamAlef are the ligatures of lam with the alefs: isolated; final is +1.
var lamAlef = map[rune]rune{0x0622: 0xFEF5, 0x0623: 0xFEF7, 0x0625: 0xFEF9, 0x0627: 0xFEFB}

// joinsNext: the letter connects to the letter after it.
func joinsNext(r rune) bool {
	if r == tatweel {
		return true
	}
	f, ok := arabicForms[r]
	return ok && f[3] != 0
}

// joinsPrev: the letter can connect to the letter before it.
func joinsPrev(r rune) bool {
	if r == tatweel {
		return true
	}
	f, ok := arabicForms[r]
	return ok && f[1] != 0
}

// shapeArabic replaces Arabic letters (in logical order) by their isolated,
// initial, medial or final forms, and lam + alef by their ligature.
// Combining marks (harakat) are transparent.
func shapeArabic(s string) string {
	rs := []rune(s)
	has := false
	for _, r := range rs {
		if _, ok := arabicForms[r]; ok {
			has = true
			break
		}
	}
	if !has {
		return s
	}
	letter := func(i, step int) rune { // the neighbouring letter, skipping marks
		for j := i + step; j >= 0 && j < len(rs); j += step {
			if !unicode.Is(unicode.Mn, rs[j]) {
				return rs[j]
			}
		}
		return 0
	}
	out := make([]rune, 0, len(rs))
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		f, ok := arabicForms[r]
		if !ok {
			out = append(out, r)
			continue
		}
		prev, next := letter(i, -1), letter(i, 1)
		jp := joinsNext(prev) && joinsPrev(r)
		if r == 0x0644 { // lam + alef: one ligature
			if lig, ok := lamAlef[next]; ok && (i+1 < len(rs) && rs[i+1] == next) {
				if jp {
					lig++
				}
				out = append(out, lig)
				i++
				continue
			}
		}
		jn := joinsNext(r) && joinsPrev(next)
		switch {
		case jp && jn:
			out = append(out, f[3])
		case jp:
			out = append(out, f[1])
		case jn:
			out = append(out, f[2])
		default:
			out = append(out, f[0])
		}
	}
	return string(out)
}

// visualLine puts one line in display order: right-to-left runs reversed
// (marks stay on their letters, brackets mirrored), and their order
// reversed where they nest. rtl reports a line whose first strong character
// is right-to-left, to be set flush right.
func visualLine(line string) (string, bool) {
	hasRTL := false
	for _, r := range line {
		if unicode.In(r, unicode.Hebrew, unicode.Arabic, unicode.Syriac, unicode.Thaana, unicode.Nko) {
			hasRTL = true
			break
		}
	}
	if !hasRTL {
		return line, false
	}
	var p bidi.Paragraph
	if _, err := p.SetString(line); err != nil {
		return line, false
	}
	o, err := p.Order()
	if err != nil || o.NumRuns() == 0 {
		return line, false
	}
	rtl := firstStrongRTL(line)
	type run struct {
		text  string
		level int
	}
	var runs []run
	for i := 0; i < o.NumRuns(); i++ {
		r := o.Run(i)
		lvl := 0
		if r.Direction() == bidi.RightToLeft {
			lvl = 1
		} else if rtl || (i > 0 && i < o.NumRuns()-1 && numeric(r.String())) {
			// Left-to-right inside right-to-left: numbers between two
			// right-to-left runs, or anything in a right-to-left line.
			lvl = 2
		}
		runs = append(runs, run{r.String(), lvl})
	}
	// Reverse every maximal sequence of runs at level >= k, for k from the
	// highest level down to 1 (UAX #9, L2).
	for k := 2; k >= 1; k-- {
		for i := 0; i < len(runs); {
			if runs[i].level < k {
				i++
				continue
			}
			j := i
			for j < len(runs) && runs[j].level >= k {
				j++
			}
			slices.Reverse(runs[i:j])
			i = j
		}
	}
	var b strings.Builder
	for _, r := range runs {
		if r.level%2 == 1 {
			b.Write(bidi.AppendReverse(nil, []byte(r.text)))
		} else {
			b.WriteString(r.text)
		}
	}
	return b.String(), rtl
}

// numeric: a run of digits and the separators numbers use.
func numeric(s string) bool {
	s = strings.TrimSpace(s)
	if s == "" {
		return false
	}
	for _, r := range s {
		if !unicode.IsDigit(r) && !strings.ContainsRune(".,:/-+%", r) {
			return false
		}
	}
	return true
}

func firstStrongRTL(s string) bool {
	for _, r := range s {
		switch {
		case unicode.In(r, unicode.Hebrew, unicode.Arabic, unicode.Syriac, unicode.Thaana, unicode.Nko):
			return true
		case unicode.IsLetter(r):
			return false
		}
	}
	return false
}
