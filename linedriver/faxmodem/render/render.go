// Package render turns documents (plain text, PNG/JPEG/GIF images, TIFF and,
// through ghostscript, PDF) into bilevel fax pages 1728 pixels wide at
// 204×98 (standard) or 204×196 (fine) dots per inch, with an optional header
// line on every page and an optional cover page.
package render

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os/exec"
	"time"

	"github.com/mediagw/mediagw/internal/fonts"
	"github.com/mediagw/mediagw/internal/sniff"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
)

// Resolution is a fax vertical resolution.
type Resolution int

const (
	Standard Resolution = iota // 204×98 dpi
	Fine                       // 204×196 dpi
)

// DPI returns the vertical resolution in dots per inch.
func (r Resolution) DPI() float64 {
	if r == Fine {
		return 196
	}
	return 98
}

func (r Resolution) String() string {
	if r == Fine {
		return "fine"
	}
	return "standard"
}

// PaperSize is the page format.
type PaperSize int

const (
	A4 PaperSize = iota
	Letter
)

func (p PaperSize) String() string {
	if p == Letter {
		return "letter"
	}
	return "a4"
}

// Width is the width of every page: 215 mm at 204 dpi (T.4).
const Width = 1728

// Height returns the page height in rows: A4 is 297 mm, Letter 11 in.
func (p PaperSize) Height(r Resolution) int {
	h := 2292 // 297 mm at 196 dpi
	if p == Letter {
		h = 2156
	}
	if r == Standard {
		h /= 2
	}
	return h
}

// Page is one bilevel fax page.
type Page struct {
	Width, Height int
	Stride        int    // bytes per row
	Pix           []byte // 1 bit per pixel, MSB first, 1 = black
	Resolution    Resolution
}

// NewPage returns a white page.
func NewPage(width, height int, r Resolution) *Page {
	s := (width + 7) / 8
	return &Page{Width: width, Height: height, Stride: s, Pix: make([]byte, s*height), Resolution: r}
}

// Row returns row y.
func (p *Page) Row(y int) []byte { return p.Pix[y*p.Stride : y*p.Stride+p.Stride] }

// Bitmap returns the page as faxtiff wants it (sharing the pixels).
func (p *Page) Bitmap() *faxtiff.Bitmap {
	return &faxtiff.Bitmap{Width: p.Width, Height: p.Height, Stride: p.Stride, Pix: p.Pix, XRes: 204, YRes: p.Resolution.DPI()}
}

func (p *Page) black(x, y int) bool { return p.Pix[y*p.Stride+x/8]&(0x80>>uint(x%8)) != 0 }

func (p *Page) set(x, y int) { p.Pix[y*p.Stride+x/8] |= 0x80 >> uint(x%8) }

// Document is one input: MediaType as in a MIME part ("text/plain;
// charset=utf-8", "image/png", "application/pdf", ...); empty means sniff.
type Document struct {
	Name      string
	MediaType string
	Data      []byte
}

// Header is the line printed at the top of every page; "Page n of m" is
// added per page.
type Header struct {
	From, To string
	Time     time.Time
	Format   string // time layout; default "2006-01-02 15:04"
}

// Cover is a cover page: a text/template executed with Data, laid out as
// plain text.
type Cover struct {
	Template string
	Data     any
}

// Options of Render.
type Options struct {
	Resolution
	Paper PaperSize
	// Dither renders every image as a photo; otherwise each image's
	// histogram decides between photo (halftone) and line art (threshold).
	Dither bool
	// Halftone is how photos become bilevel: Screen (default) or
	// FloydSteinberg.
	Halftone Halftone
	// MaxUpscale bounds how much a small image is enlarged, in fax pels
	// per image pixel (0: DefaultMaxUpscale, 2).
	MaxUpscale float64
	Header     *Header // nil: no header line
	// Notes are printed on the first page below the header line, one line
	// each (e.g. "Not faxed: order.zip (a ZIP archive)").
	Notes    []string
	Cover    *Cover        // nil: no cover page
	MaxPages int           // 0: 50
	Timeout  time.Duration // whole job, ghostscript included; 0: 2 minutes
	// Office converts Office documents to PDF; nil uses DefaultOffice.
	Office *Office
	// Fonts is the fallback chain for text; nil: fonts.Default() (Go Mono,
	// then Noto and Unifont from $MEDIAGW_FONT_DIRS or Debian's folders).
	Fonts *fonts.Chain
	// DefaultCharset reads 8-bit text that names no charset and is not
	// UTF-8; empty: windows-1252.
	DefaultCharset string
	// Warn, when set, hears about what the pages cannot show (characters
	// no font has).
	Warn func(string)
	// PDFRenderer renders PDFs (and Office documents, once converted):
	// PDFAuto ("" too): ghostscript when installed, else PDFium; PDFium:
	// embedded, needing nothing installed; PDFGhostscript.
	PDFRenderer string
	// Ghostscript is the gs program; empty looks up "gs" in PATH.
	Ghostscript string
	// MaxImagePixels bounds a decoded image (0: 25 million).
	MaxImagePixels int64
}

// Errors callers can test for.
var (
	ErrNoGhostscript = errors.New("render: ghostscript (gs) is not installed; it is needed for PDF documents")
	ErrTooManyPages  = errors.New("render: too many pages")
	ErrTooLarge      = errors.New("render: image too large")
	ErrUnsupported   = errors.New("render: unsupported document type")
)

func (o *Options) fonts() *fonts.Chain {
	if o.Fonts == nil {
		return fonts.Default()
	}
	return o.Fonts
}

func (o *Options) defaults() {
	if o.MaxPages <= 0 {
		o.MaxPages = 50
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.MaxImagePixels <= 0 {
		o.MaxImagePixels = 25_000_000
	}
	if o.Ghostscript == "" {
		o.Ghostscript = "gs"
	}
}

// Render lays out the documents as fax pages: the cover first, then each
// document in order, then the header line on every page.
func Render(ctx context.Context, docs []Document, opts Options) ([]*Page, error) {
	opts.defaults()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var pages []*Page
	add := func(ps []*Page) error {
		pages = append(pages, ps...)
		if len(pages) > opts.MaxPages {
			return fmt.Errorf("%w: more than %d", ErrTooManyPages, opts.MaxPages)
		}
		return nil
	}
	if opts.Cover != nil {
		text, err := executeCover(opts.Cover)
		if err != nil {
			return nil, err
		}
		if err := add(renderText(text, opts, opts.MaxPages+1)); err != nil {
			return nil, err
		}
	}
	for i, d := range docs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("render: %w", err)
		}
		ps, err := renderDoc(ctx, d, opts, opts.MaxPages-len(pages))
		if err != nil {
			name := d.Name
			if name == "" {
				name = fmt.Sprintf("document %d", i+1)
			}
			return nil, fmt.Errorf("render: %s: %w", name, err)
		}
		if err := add(ps); err != nil {
			return nil, err
		}
	}
	if len(pages) == 0 {
		return nil, errors.New("render: no pages")
	}
	// The header line (and the notes on page 1) get a band of their own:
	// content that reaches into it is scaled to fit below, as fax machines
	// do, rather than written over.
	for i, p := range pages {
		top := 0
		if opts.Header != nil {
			top = headerBand
		}
		if i == 0 && len(opts.Notes) > 0 {
			top += notesBand(len(opts.Notes))
		}
		reserveTop(p, top*int(p.Resolution.DPI())/196)
	}
	if opts.Header != nil {
		for i, p := range pages {
			stampHeader(p, opts.Header, i+1, len(pages))
		}
	}
	if len(opts.Notes) > 0 {
		stampNotes(pages[0], opts.Notes, opts.Header != nil)
	}
	return pages, nil
}

// reserveTop makes the top rows of p white: when something is drawn there,
// the whole page is scaled vertically into the rows below (each new row is
// the OR of the rows it stands for, so thin lines survive).
func reserveTop(p *Page, rows int) {
	if rows <= 0 || rows >= p.Height {
		return
	}
	blank := true
	for _, b := range p.Pix[:rows*p.Stride] {
		if b != 0 {
			blank = false
			break
		}
	}
	if blank {
		return
	}
	out := make([]byte, len(p.Pix))
	h := p.Height - rows
	for d := 0; d < h; d++ {
		dst := out[(rows+d)*p.Stride : (rows+d+1)*p.Stride]
		from, to := d*p.Height/h, max((d+1)*p.Height/h, d*p.Height/h+1)
		for y := from; y < to && y < p.Height; y++ {
			for i, b := range p.Row(y) {
				dst[i] |= b
			}
		}
	}
	p.Pix = out
}

// Supported reports whether a document can be rendered with opts, judged
// by its content (whatever its MediaType claims) and by the programs this
// machine has: an error wrapping ErrUnsupported says what the document is;
// ErrNoGhostscript or ErrNoLibreOffice names what to install.
func Supported(d Document, opts Options) error {
	opts.defaults()
	t := sniff.Detect(d.Data, d.MediaType)
	switch t.Kind {
	case sniff.Unknown:
		return fmt.Errorf("%w: %s is %s, which cannot be faxed", ErrUnsupported, docLabel(d), t.Name)
	case sniff.Office:
		o := opts.Office
		if o == nil {
			o = DefaultOffice
		}
		if _, err := exec.LookPath(o.program()); err != nil {
			return fmt.Errorf("%s is %s: %w", docLabel(d), t.Name, ErrNoLibreOffice)
		}
		fallthrough
	case sniff.PDF:
		if opts.PDFRenderer != PDFGhostscript {
			return nil // auto falls back to the embedded PDFium
		}
		if _, err := exec.LookPath(opts.Ghostscript); err != nil {
			return fmt.Errorf("%s is %s: %w", docLabel(d), t.Name, ErrNoGhostscript)
		}
	}
	return nil
}

func docLabel(d Document) string {
	if d.Name != "" {
		return d.Name
	}
	return "the document"
}

func renderDoc(ctx context.Context, d Document, opts Options, left int) ([]*Page, error) {
	if left <= 0 {
		return nil, fmt.Errorf("%w: more than %d", ErrTooManyPages, opts.MaxPages)
	}
	// The content decides, not the label: a PDF sent as
	// application/octet-stream is a PDF.
	t := sniff.Detect(d.Data, d.MediaType)
	switch t.Kind {
	case sniff.Text:
		d.MediaType = t.MediaType
		text, err := decodeText(d, opts.DefaultCharset)
		if err != nil {
			return nil, err
		}
		if missing := MissingGlyphs(text, opts.fonts()); len(missing) > 0 && opts.Warn != nil {
			opts.Warn(docLabel(d) + ": " + opts.fonts().Describe(missing))
		}
		ps := renderText(text, opts, left+1)
		if len(ps) > left {
			return nil, fmt.Errorf("%w: more than %d", ErrTooManyPages, opts.MaxPages)
		}
		return ps, nil
	case sniff.Image:
		if b, ok, err := pbmFaxPage(d.Data, opts.MaxImagePixels); err != nil {
			return nil, err
		} else if ok {
			return passThroughSplit(b, opts, left)
		}
		img, err := decodeImage(d.Data, opts.MaxImagePixels)
		if err != nil {
			return nil, err
		}
		return []*Page{renderImage(img, opts)}, nil
	case sniff.TIFF:
		return renderTIFF(d.Data, opts, left)
	case sniff.PDF:
		return renderPDFWith(ctx, d.Data, opts, left)
	case sniff.Office:
		return renderOffice(ctx, d, t, opts, left)
	default:
		return nil, fmt.Errorf("%w: %s, which cannot be faxed", ErrUnsupported, t.Name)
	}
}

// WritePNG writes a preview of the page: black on white, standard pages
// with doubled rows so that proportions look right.
func WritePNG(w io.Writer, p *Page) error {
	rep := 1
	if p.Resolution == Standard {
		rep = 2
	}
	img := image.NewPaletted(image.Rect(0, 0, p.Width, p.Height*rep), color.Palette{color.White, color.Black})
	for y := 0; y < p.Height; y++ {
		for r := 0; r < rep; r++ {
			row := img.Pix[(y*rep+r)*img.Stride:]
			for x := 0; x < p.Width; x++ {
				if p.black(x, y) {
					row[x] = 1
				}
			}
		}
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(w, img); err != nil {
		return fmt.Errorf("render: png: %w", err)
	}
	return nil
}
