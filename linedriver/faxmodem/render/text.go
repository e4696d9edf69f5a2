package render

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"mime"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"

	"github.com/mediagw/mediagw/internal/fonts"
)

// The text layout: 80 columns × 66 lines (10 characters per inch, about 6
// lines per inch), Go Mono, laid out at fine resolution and halved for
// standard.
const (
	Columns     = 80
	Lines       = 66
	cellWidth   = 20 // pixels per column at 204 dpi
	headerBand  = 40 // rows at fine resolution kept for the header line
	bottomSpace = 24
	tabWidth    = 8
)

var (
	fontOnce sync.Once
	monoFont *opentype.Font
	fontErr  error
	faces    sync.Map // float64 size -> font.Face
)

func face(size float64) font.Face {
	fontOnce.Do(func() { monoFont, fontErr = opentype.Parse(gomono.TTF) })
	if fontErr != nil {
		panic("render: the embedded Go Mono font does not parse: " + fontErr.Error())
	}
	if f, ok := faces.Load(size); ok {
		return f.(font.Face)
	}
	f, err := opentype.NewFace(monoFont, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		panic("render: Go Mono face: " + err.Error())
	}
	// A face is not safe for concurrent use: keep one per size and lock it.
	lf := &lockedFace{Face: f}
	actual, _ := faces.LoadOrStore(size, font.Face(lf))
	return actual.(font.Face)
}

type lockedFace struct {
	mu sync.Mutex
	font.Face
}

func (f *lockedFace) GlyphAdvance(r rune) (fixed.Int26_6, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Face.GlyphAdvance(r)
}

func (f *lockedFace) GlyphBounds(r rune) (fixed.Rectangle26_6, fixed.Int26_6, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Face.GlyphBounds(r)
}

func (f *lockedFace) Glyph(dot fixed.Point26_6, r rune) (image.Rectangle, image.Image, image.Point, fixed.Int26_6, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dr, mask, mp, adv, ok := f.Face.Glyph(dot, r)
	if ok {
		// The mask is reused by the next call: copy it.
		if a, isAlpha := mask.(*image.Alpha); isAlpha {
			c := image.NewAlpha(a.Rect)
			copy(c.Pix, a.Pix)
			c.Stride = a.Stride
			mask = c
		}
	}
	return dr, mask, mp, adv, ok
}

// Metrics and Kern also use the face's buffers (opentype caches its
// metrics on first use): locked like the rest.
func (f *lockedFace) Metrics() font.Metrics {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Face.Metrics()
}

func (f *lockedFace) Kern(r0, r1 rune) fixed.Int26_6 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Face.Kern(r0, r1)
}

// defaultCharset reads 8-bit text that names no charset.
const defaultCharset = "windows-1252"

func decodeText(d Document, dc string) (string, error) {
	_, params, _ := mime.ParseMediaType(d.MediaType)
	cs := strings.ToLower(params["charset"])
	data := d.Data
	if cs != "" && cs != "utf-8" && cs != "us-ascii" && cs != "utf8" {
		enc, err := htmlindex.Get(cs)
		if err != nil {
			return "", fmt.Errorf("%w: charset %q", ErrUnsupported, cs)
		}
		if data, err = enc.NewDecoder().Bytes(data); err != nil {
			return "", fmt.Errorf("charset %s: %w", cs, err)
		}
	}
	if cs == "" && !utf8.Valid(data) {
		// 8-bit text that names no charset: most likely Windows' Western
		// code page (a superset of ISO-8859-1).
		cs = defaultCharset
		if dc != "" {
			cs = dc
		}
		enc, err := htmlindex.Get(cs)
		if err != nil {
			return "", fmt.Errorf("%w: charset %q", ErrUnsupported, cs)
		}
		if data, err = enc.NewDecoder().Bytes(data); err != nil {
			return "", fmt.Errorf("charset %s: %w", cs, err)
		}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	return strings.ToValidUTF8(string(data), "\uFFFD"), nil
}

// cluster is one cell of the text grid: a base character and the marks
// that combine with it, one or two columns wide.
type cluster struct {
	text  string
	width int // columns: 2 for East Asian wide characters and emoji
}

// isMark: characters drawn over the one before (combining accents, and
// characters that draw nothing, such as zero-width joiners).
func isMark(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Variation_Selector)
}

// runeWidth is the number of columns a character takes.
func runeWidth(r rune) int {
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	if r >= 0x1f000 && r <= 0x1faff { // emoji and pictographs
		return 2
	}
	return 1
}

// clusters splits a line into cells.
func clusters(line string) []cluster {
	var out []cluster
	for _, r := range line {
		if isMark(r) && len(out) > 0 {
			out[len(out)-1].text += string(r)
			continue
		}
		out = append(out, cluster{text: string(r), width: runeWidth(r)})
	}
	return out
}

func lineWidth(cs []cluster) int {
	n := 0
	for _, c := range cs {
		n += c.width
	}
	return n
}

func joinClusters(cs []cluster) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.text)
	}
	return b.String()
}

// normalizeText composes characters (NFC: "a" + U+0308 becomes "ä") and
// makes CR LF and a lone CR line ends like LF.
func normalizeText(text string) string {
	text = norm.NFC.String(text)
	text = strings.ReplaceAll(text, "\r\n", "\n")
	return strings.ReplaceAll(text, "\r", "\n")
}

// layoutText splits text into pages of lines of at most Columns columns:
// tabs to every 8th column, form feed starts a page, CR, LF and CR LF end a
// line, long lines wrap at the last space (a word longer than a line is
// cut), wide characters take two columns.
func layoutText(text string, maxPages int) [][]string {
	text = normalizeText(text)
	var pages [][]string
	var lines []string
	var line []cluster
	col := 0
	dirty := false // the current page has something
	flush := func(cs []cluster) {
		lines = append(lines, strings.TrimRight(joinClusters(cs), " "))
		if len(lines) == Lines {
			pages = append(pages, lines)
			lines, dirty = nil, false
		}
	}
	newline := func() {
		flush(line)
		line, col = nil, 0
	}
	// wrap breaks the current line so that w more columns fit.
	wrap := func(w int) {
		cut := -1
		for i := len(line) - 1; i > 0; i-- {
			if line[i].text == " " {
				cut = i
				break
			}
		}
		if cut < 0 {
			newline()
			return
		}
		rest := append([]cluster(nil), line[cut+1:]...)
		flush(line[:cut])
		line, col = rest, lineWidth(rest)
		if col+w > Columns { // cannot happen unless the rest is a full line
			newline()
		}
	}
	for _, c := range clusters(text) {
		if len(pages) >= maxPages {
			break
		}
		r, _ := utf8.DecodeRuneInString(c.text)
		switch {
		case r == '\n':
			newline()
			dirty = true
		case r == '\f':
			if len(line) > 0 {
				newline()
			}
			if len(lines) > 0 || !dirty {
				pages = append(pages, lines)
			}
			lines, line, col, dirty = nil, nil, 0, false
		case r == '\t':
			next := (col/tabWidth + 1) * tabWidth
			if next >= Columns {
				newline()
				dirty = true
				continue
			}
			for col < next {
				line = append(line, cluster{" ", 1})
				col++
			}
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (isMark(r) && c.text == string(r) && len(line) == 0 && unicode.Is(unicode.Cf, r)):
		default:
			if c.width > Columns {
				continue
			}
			if col+c.width > Columns {
				if r == ' ' {
					newline() // a space at the end of a line is the break itself
					dirty = true
					continue
				}
				wrap(c.width)
			}
			line = append(line, c)
			col += c.width
			dirty = true
		}
	}
	if len(line) > 0 {
		newline()
	}
	if len(lines) > 0 || len(pages) == 0 {
		pages = append(pages, lines)
	}
	if len(pages) > maxPages {
		pages = pages[:maxPages]
	}
	return pages
}

// renderText lays out text as pages (at most maxPages).
func renderText(text string, opts Options, maxPages int) []*Page {
	var out []*Page
	fineH := opts.Paper.Height(Fine)
	pitch := (fineH - headerBand - bottomSpace) / Lines
	size := min(float64(cellWidth)/0.6, float64(pitch)/1.2) // Go Mono: advance 0.6 em, ascent+descent 1.17 em
	f := face(size)
	margin := (Width - Columns*cellWidth) / 2
	m := f.Metrics()
	ascent, descent := m.Ascent.Ceil(), m.Descent.Ceil()
	for _, lines := range layoutText(text, maxPages) {
		g := newGray(Width, fineH)
		for i, l := range lines {
			base := headerBand + i*pitch + (pitch-ascent-descent)/2 + ascent
			v, rtl := visualLine(shapeArabic(l))
			x := margin
			if rtl { // a right-to-left line is set flush right
				x += (Columns - lineWidth(clusters(v))) * cellWidth
			}
			drawText(g, opts.fonts(), size, v, x, base, cellWidth)
		}
		out = append(out, grayToPage(g, opts.Resolution))
	}
	return out
}

func newGray(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = 0xff
	}
	return g
}

// drawRunes draws s in Go Mono with one rune per cell of width cell
// (pixels); for the header line and tests.
func drawRunes(g *image.Gray, f font.Face, s string, x, baseline int, cell float64) {
	d := font.Drawer{Dst: g, Src: image.Black, Face: f}
	i := 0
	for _, r := range s {
		if r != ' ' {
			d.Dot = fixed.P(0, baseline)
			d.Dot.X = fixed.Int26_6((float64(x) + float64(i)*cell) * 64)
			d.DrawString(string(r))
		}
		i++
	}
}

// drawText draws a laid-out line on the grid: each cell's characters from
// the first font of the chain that has them, centred in the cell (one or
// two columns), combining marks over their base. A character no font has is
// drawn as an empty box (and reported by MissingGlyphs).
func drawText(g *image.Gray, chain *fonts.Chain, size float64, s string, x, baseline int, cell float64) {
	col := 0
	cs := clusters(s)
	for k := 0; k < len(cs); k++ {
		c := cs[k]
		if c.text == " " {
			col += c.width
			continue
		}
		if cursive(c) {
			// Joined letters are drawn touching, with their own advances,
			// in the cells the word takes.
			j := k
			for j < len(cs) && cursive(cs[j]) {
				j++
			}
			drawCursive(g, chain, size, cs[k:j], float64(x)+float64(col)*cell, float64(j-k)*cell, baseline)
			col += j - k
			k = j - 1
			continue
		}
		left := float64(x) + float64(col)*cell
		w := float64(c.width) * cell
		for i, r := range c.text {
			if i > 0 && unicode.Is(unicode.Cf, r) {
				continue
			}
			f, _ := chain.Font(r)
			if f == nil {
				if i == 0 {
					box(g, int(left)+3, baseline-int(size*0.7), int(w)-6, int(size*0.7))
				}
				continue
			}
			fc := fontFace(f, size)
			b, adv, ok := fc.GlyphBounds(r)
			if !ok {
				continue
			}
			var dotX float64
			if i == 0 {
				// Centre the advance in the cell.
				dotX = left + (w-float64(adv)/64)/2
			} else {
				// A mark: centre its ink over the cell.
				dotX = left + w/2 - float64(b.Min.X+b.Max.X)/128
			}
			d := font.Drawer{Dst: g, Src: image.Black, Face: fc, Dot: fixed.Point26_6{X: fixed.Int26_6(dotX * 64), Y: fixed.I(baseline)}}
			d.DrawString(string(r))
		}
		col += c.width
	}
}

// cursive: an Arabic letter (joined forms are drawn touching).
func cursive(c cluster) bool {
	r, _ := utf8.DecodeRuneInString(c.text)
	return unicode.Is(unicode.Arabic, r) && unicode.IsLetter(r) || r == tatweel
}

// drawCursive draws a run of joined letters with their natural advances,
// set to the right of the width pixels from left, smaller when they would
// not fit.
func drawCursive(g *image.Gray, chain *fonts.Chain, size float64, cs []cluster, left, width float64, baseline int) {
	measure := func(sz float64) float64 {
		w := 0.0
		for _, c := range cs {
			r, _ := utf8.DecodeRuneInString(c.text)
			if f, _ := chain.Font(r); f != nil {
				if adv, ok := fontFace(f, sz).GlyphAdvance(r); ok {
					w += float64(adv) / 64
				}
			}
		}
		return w
	}
	sz := size
	w := measure(sz)
	if w > width && w > 0 {
		sz = size * width / w
		w = measure(sz)
	}
	x := left + width - w // set right, where an Arabic word starts
	for _, c := range cs {
		adv := 0.0
		for i, r := range c.text {
			f, _ := chain.Font(r)
			if f == nil {
				continue
			}
			fc := fontFace(f, sz)
			d := font.Drawer{Dst: g, Src: image.Black, Face: fc, Dot: fixed.Point26_6{X: fixed.Int26_6((x + adv) * 64), Y: fixed.I(baseline)}}
			d.DrawString(string(r))
			if i == 0 {
				if a, ok := fc.GlyphAdvance(r); ok {
					adv = float64(a) / 64
				}
			}
		}
		x += adv
	}
}

// box draws the outline of a rectangle.
func box(g *image.Gray, x, y, w, h int) {
	r := image.Rect(x, y, x+w, y+h).Intersect(g.Rect)
	if r.Empty() {
		return
	}
	for xx := r.Min.X; xx < r.Max.X; xx++ {
		g.Pix[(r.Min.Y-g.Rect.Min.Y)*g.Stride+xx] = 0
		g.Pix[(r.Max.Y-1-g.Rect.Min.Y)*g.Stride+xx] = 0
	}
	for yy := r.Min.Y; yy < r.Max.Y; yy++ {
		g.Pix[(yy-g.Rect.Min.Y)*g.Stride+r.Min.X] = 0
		g.Pix[(yy-g.Rect.Min.Y)*g.Stride+r.Max.X-1] = 0
	}
}

type faceKey struct {
	f    *opentype.Font
	size float64
}

var fontFaces sync.Map // faceKey -> font.Face

// fontFace is a face of f at size, shared and locked.
func fontFace(f *opentype.Font, size float64) font.Face {
	k := faceKey{f, size}
	if fc, ok := fontFaces.Load(k); ok {
		return fc.(font.Face)
	}
	fc, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		panic("render: font face: " + err.Error())
	}
	actual, _ := fontFaces.LoadOrStore(k, font.Face(&lockedFace{Face: fc}))
	return actual.(font.Face)
}

// MissingGlyphs returns the characters of a text document that no font of
// the chain has (nil: the default chain), for a warning.
func MissingGlyphs(text string, chain *fonts.Chain) []rune {
	if chain == nil {
		chain = fonts.Default()
	}
	return chain.Missing(normalizeText(text))
}

// grayToPage thresholds a fine-resolution gray image; for standard
// resolution each pair of rows becomes one.
func grayToPage(g *image.Gray, r Resolution) *Page {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	if r == Standard {
		p := NewPage(w, h/2, r)
		for y := 0; y < h/2; y++ {
			a, b := g.Pix[2*y*g.Stride:], g.Pix[(2*y+1)*g.Stride:]
			for x := 0; x < w; x++ {
				if int(a[x])+int(b[x]) < 300 {
					p.set(x, y)
				}
			}
		}
		return p
	}
	p := NewPage(w, h, r)
	for y := 0; y < h; y++ {
		row := g.Pix[y*g.Stride:]
		for x := 0; x < w; x++ {
			if row[x] < 128 {
				p.set(x, y)
			}
		}
	}
	return p
}

func executeCover(c *Cover) (string, error) {
	t, err := template.New("cover").Option("missingkey=error").Parse(c.Template)
	if err != nil {
		return "", fmt.Errorf("render: cover template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, c.Data); err != nil {
		return "", fmt.Errorf("render: cover template: %w", err)
	}
	return b.String(), nil
}

// HeaderText returns the header line of page n of m.
func HeaderText(h *Header, n, m int) (left, right string) {
	layout := h.Format
	if layout == "" {
		layout = "2006-01-02 15:04"
	}
	tm := h.Time
	if tm.IsZero() {
		tm = time.Now()
	}
	var parts []string
	parts = append(parts, tm.Format(layout))
	if h.From != "" {
		parts = append(parts, "From: "+h.From)
	}
	if h.To != "" {
		parts = append(parts, "To: "+h.To)
	}
	return strings.Join(parts, "   "), fmt.Sprintf("Page %d of %d", n, m)
}

// stampHeader clears the top band of the page and writes the header line.
func stampHeader(p *Page, h *Header, n, m int) {
	left, right := HeaderText(h, n, m)
	const size = 24.0
	cell := size * 0.6
	f := face(size)
	g := newGray(p.Width, headerBand)
	maxLeft := int(float64(p.Width-48)/cell) - utf8.RuneCountInString(right) - 3
	if rs := []rune(left); len(rs) > maxLeft && maxLeft > 0 {
		left = string(rs[:maxLeft])
	}
	drawRunes(g, f, left, 24, 30, cell)
	drawRunes(g, f, right, p.Width-24-int(cell*float64(utf8.RuneCountInString(right))), 30, cell)
	band := grayToPage(g, p.Resolution)
	for y := 0; y < band.Height && y < p.Height; y++ {
		copy(p.Row(y), band.Row(y))
	}
}

// noteLine is the height of one note line at fine resolution.
const noteLine = 36

// notesBand is the rows (fine) the notes take, with a gap below.
func notesBand(n int) int { return noteLine*n + 8 + 8 }

// stampNotes writes notes, one line each, in a band at the top of p (below
// the header band when there is a header), boxed so that they read as the
// gateway's words and not the document's.
func stampNotes(p *Page, notes []string, header bool) {
	const size = 24.0
	cell := size * 0.6
	f := face(size)
	top := 0
	if header {
		top = headerBand
	}
	h := noteLine*len(notes) + 8
	g := newGray(p.Width, h)
	maxRunes := int(float64(p.Width-64) / cell)
	for i, n := range notes {
		if rs := []rune(n); len(rs) > maxRunes {
			n = string(rs[:maxRunes-1]) + "…"
		}
		drawRunes(g, f, n, 32, 4+noteLine*i+27, cell)
	}
	for x := 16; x < p.Width-16; x++ {
		g.Pix[x] = 0
		g.Pix[(h-1)*g.Stride+x] = 0
	}
	for y := 0; y < h; y++ {
		g.Pix[y*g.Stride+16] = 0
		g.Pix[y*g.Stride+p.Width-17] = 0
	}
	band := grayToPage(g, p.Resolution)
	y0 := top * int(p.Resolution.DPI()) / 196
	for y := 0; y < band.Height && y0+y < p.Height; y++ {
		copy(p.Row(y0+y), band.Row(y))
	}
}

var _ draw.Image = (*image.Gray)(nil)
