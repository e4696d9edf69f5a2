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
	"unicode/utf8"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
	"golang.org/x/text/encoding/htmlindex"
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

func decodeText(d Document) (string, error) {
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
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	return strings.ToValidUTF8(string(data), "\uFFFD"), nil
}

// layoutText splits text into pages of lines of at most Columns runes:
// tabs to every 8th column, form feed starts a page, long lines wrap.
func layoutText(text string, maxPages int) [][]string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	var pages [][]string
	var lines []string
	var line []rune
	col := 0
	dirty := false // the current page has something
	newline := func() {
		lines = append(lines, string(line))
		line, col = line[:0], 0
		if len(lines) == Lines {
			pages = append(pages, lines)
			lines, dirty = nil, false
		}
	}
	for _, r := range text {
		if len(pages) >= maxPages {
			break
		}
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
			lines, line, col, dirty = nil, line[:0], 0, false
		case r == '\t':
			next := (col/tabWidth + 1) * tabWidth
			if next >= Columns {
				newline()
				dirty = true
				continue
			}
			for col < next {
				line = append(line, ' ')
				col++
			}
		case r == '\r':
			line, col = line[:0], 0
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		default:
			if col == Columns {
				newline()
			}
			line = append(line, r)
			col++
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
			drawRunes(g, f, l, margin, base, cellWidth)
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

// drawRunes draws s with one rune per cell of width cell (pixels).
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
