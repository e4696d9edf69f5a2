package render

import (
	"bytes"
	"cmp"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // register decoders
	_ "image/jpeg"
	_ "image/png"
	"math"
	"slices"

	_ "golang.org/x/image/bmp"
	"golang.org/x/image/draw"

	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
)

// bytesPerPixel is what a decoded pixel of the model takes in memory.
func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 4 // RGBA, NRGBA, CMYK; YCbCr takes 1.5 to 3
}

// MaxImageBytes bounds the memory of one decoded image (and
// Options.MaxImagePixels its pixels): a 16-bit RGBA image at the pixel
// limit would otherwise take 200 MB before any scaling.
const MaxImageBytes = 128 << 20

func decodeImage(data []byte, maxPixels int64) (image.Image, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	pixels := int64(cfg.Width) * int64(cfg.Height)
	if cfg.Width <= 0 || cfg.Height <= 0 || pixels > maxPixels {
		return nil, fmt.Errorf("%w: %s of %d×%d pixels (limit %d pixels)", ErrTooLarge, format, cfg.Width, cfg.Height, maxPixels)
	}
	if n := pixels * bytesPerPixel(cfg.ColorModel); n > MaxImageBytes {
		return nil, fmt.Errorf("%w: %s of %d×%d pixels takes %d MB decoded (limit %d MB)", ErrTooLarge, format, cfg.Width, cfg.Height, n>>20, MaxImageBytes>>20)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return img, nil
}

// renderImage scales an image (square pixels) to fit the page below the
// header band, centred, and makes it bilevel: line art by a threshold,
// photos by a halftone (see classify).
func renderImage(img image.Image, opts Options) *Page {
	return renderImageAs(img, opts, false)
}

// DefaultMaxUpscale is the most a small image is enlarged (fax pels per
// image pixel) unless Options.MaxUpscale says otherwise: a 320×240 picture
// becomes 640×480 pels (8 × 6 cm), not a page of blurred blocks.
const DefaultMaxUpscale = 2.0

// renderImageAs renders img; lineArt forces a threshold (bilevel sources).
func renderImageAs(img image.Image, opts Options, lineArt bool) *Page {
	h := opts.Paper.Height(opts.Resolution)
	top := 0
	if opts.Header != nil {
		top = headerBand * int(opts.Resolution.DPI()) / 196
	}
	b := img.Bounds()
	yscale := opts.Resolution.DPI() / 204 // page rows per 204-dpi pixel
	up := opts.MaxUpscale
	if up <= 0 {
		up = DefaultMaxUpscale
	}
	s := min(float64(Width)/float64(b.Dx()), float64(h-top)/yscale/float64(b.Dy()), up)
	dw := max(1, min(Width, int(float64(b.Dx())*s+0.5)))
	dh := max(1, min(h-top, int(float64(b.Dy())*s*yscale+0.5)))
	g := image.NewGray(image.Rect(0, 0, dw, dh))
	for i := range g.Pix {
		g.Pix[i] = 0xff
	}
	draw.BiLinear.Scale(g, g.Rect, img, b, draw.Over, nil)
	p := NewPage(Width, h, opts.Resolution)
	x0 := (Width - dw) / 2
	kind := lineArtImage
	if !lineArt {
		kind = classify(g)
		if opts.Dither {
			kind = photoImage
		}
	}
	switch {
	case kind == photoImage && opts.Halftone == FloydSteinberg:
		floydSteinberg(g, p, x0, top)
	case kind == photoImage:
		toneCorrect(g)
		screen(g, p, x0, top)
	default:
		t := uint8(otsu(g))
		for y := 0; y < dh; y++ {
			row := g.Pix[y*g.Stride:]
			for x := 0; x < dw; x++ {
				if row[x] < t {
					p.set(x0+x, top+y)
				}
			}
		}
	}
	return p
}

type imageKind int

const (
	lineArtImage imageKind = iota
	photoImage
)

// Halftone is how photos are made bilevel.
type Halftone int

const (
	// Screen is a tone-corrected clustered-dot screen (8×8 cells, 65
	// levels): dots grow from the cell's centre, so runs stay long and the
	// page codes small (about a fifth of Floyd–Steinberg's bytes).
	Screen Halftone = iota
	// FloydSteinberg is error diffusion: finer detail, but isolated dots
	// that code 3–5 times larger.
	FloydSteinberg
)

// classify tells a photo from line art by the histogram: line art (text,
// drawings, scans of documents) is nearly all near-black and near-white;
// a photo has a fair share of mid tones.
func classify(g *image.Gray) imageKind {
	var hist [256]int
	n := 0
	for y := 0; y < g.Rect.Dy(); y++ {
		for _, v := range g.Pix[y*g.Stride : y*g.Stride+g.Rect.Dx()] {
			hist[v]++
			n++
		}
	}
	mid := 0
	for v := 48; v < 208; v++ {
		mid += hist[v]
	}
	if n > 0 && mid*100 > n*20 {
		return photoImage
	}
	return lineArtImage
}

// otsu is the threshold that best separates the histogram's two classes
// (Otsu 1979), kept between 64 and 192 so that a page of nearly one colour
// does not flip.
func otsu(g *image.Gray) int {
	var hist [256]float64
	total := 0.0
	for y := 0; y < g.Rect.Dy(); y++ {
		for _, v := range g.Pix[y*g.Stride : y*g.Stride+g.Rect.Dx()] {
			hist[v]++
			total++
		}
	}
	sum := 0.0
	for v, c := range hist {
		sum += float64(v) * c
	}
	best, bestVar := 128, -1.0
	wb, sb := 0.0, 0.0
	for t := 0; t < 255; t++ {
		wb += hist[t]
		sb += float64(t) * hist[t]
		wf := total - wb
		if wb == 0 || wf == 0 {
			continue
		}
		mb, mf := sb/wb, (sum-sb)/wf
		if v := wb * wf * (mb - mf) * (mb - mf); v > bestVar {
			bestVar, best = v, t+1
		}
	}
	return min(max(best, 64), 192)
}

// toneCorrect stretches the levels (1st to 99th percentile to full range)
// and lightens the mid tones: printed dots spread (dot gain), and a fax
// printer's dots more than most, so an uncorrected screen prints dark.
func toneCorrect(g *image.Gray) {
	var hist [256]int
	n := 0
	for y := 0; y < g.Rect.Dy(); y++ {
		for _, v := range g.Pix[y*g.Stride : y*g.Stride+g.Rect.Dx()] {
			hist[v]++
			n++
		}
	}
	lo, hi, acc := 0, 255, 0
	for v := 0; v < 256; v++ {
		acc += hist[v]
		if acc*100 >= n {
			lo = v
			break
		}
	}
	acc = 0
	for v := 255; v >= 0; v-- {
		acc += hist[v]
		if acc*100 >= n {
			hi = v
			break
		}
	}
	if hi-lo < 32 {
		lo, hi = 0, 255
	}
	var lut [256]uint8
	for v := range lut {
		x := float64(v-lo) / float64(hi-lo)
		x = min(max(x, 0), 1)
		lut[v] = uint8(255*math.Pow(x, toneGamma) + 0.5)
	}
	for y := 0; y < g.Rect.Dy(); y++ {
		row := g.Pix[y*g.Stride : y*g.Stride+g.Rect.Dx()]
		for i, v := range row {
			row[i] = lut[v]
		}
	}
}

// toneGamma < 1 lightens mid tones to make up for dot gain.
const toneGamma = 0.8

// screenCell is the side of the halftone cell in pels: 8 gives 25 lines per
// inch and 65 levels at 204 dpi. A 4×4 cell (51 lpi, 17 levels) looks finer
// but a page-wide photo then codes to 280–310 KB in MR instead of 130–145
// KB (TestPhotoBytes): a minute more on the line for every page.
const screenCell = 8

// screenOrder returns the n×n clustered-dot order: cells sorted by a round
// spot function, so that the dot grows from the centre of the cell and
// joins its neighbours at half tone (a checkerboard of dots).
func screenOrder(n int) [][]int {
	type pos struct {
		x, y int
		v    float64
	}
	var ps []pos
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			fx, fy := 2*math.Pi*(float64(x)+0.5)/float64(n), 2*math.Pi*(float64(y)+0.5)/float64(n)
			ps = append(ps, pos{x, y, math.Cos(fx) + math.Cos(fy)})
		}
	}
	// The most negative spot value (the centre) turns black first; ties by
	// position, so the order is the same on every run.
	slices.SortStableFunc(ps, func(a, b pos) int {
		if c := cmp.Compare(a.v, b.v); c != 0 {
			return c
		}
		if c := cmp.Compare(a.y, b.y); c != 0 {
			return c
		}
		return cmp.Compare(a.x, b.x)
	})
	order := make([][]int, n)
	for i := range order {
		order[i] = make([]int, n)
	}
	for i, p := range ps {
		order[p.y][p.x] = i
	}
	return order
}

// screen halftones g onto p at (x0, y0) with the clustered-dot screen. The
// cell is anchored to the page, so neighbouring images line up.
func screen(g *image.Gray, p *Page, x0, y0 int) {
	n := screenCell
	order := screenOrder(n)
	levels := n * n
	thresh := make([][]int, n)
	for i := range thresh {
		thresh[i] = make([]int, n)
		for j := range thresh[i] {
			// A pel is black when the gray is darker than its place in the
			// order: the darkest cell (order 0) at levels-1 of levels.
			thresh[i][j] = (2*(levels-order[i][j]) - 1) * 255 / (2 * levels)
		}
	}
	w, h := g.Rect.Dx(), g.Rect.Dy()
	for y := 0; y < h; y++ {
		row := g.Pix[y*g.Stride:]
		tr := thresh[(y0+y)%n]
		for x := 0; x < w; x++ {
			if int(row[x]) < tr[(x0+x)%n] {
				p.set(x0+x, y0+y)
			}
		}
	}
}

// renderTIFF passes fax pages (204 dpi, at most page width) through and
// renders the others as images.
func renderTIFF(data []byte, opts Options, left int) ([]*Page, error) {
	frames, err := faxtiff.Read(data, faxtiff.Limits{MaxPages: left, MaxPixels: opts.MaxImagePixels})
	if err != nil {
		return nil, fmt.Errorf("tiff: %w", err)
	}
	var pages []*Page
	for _, f := range frames {
		if b := f.Bitmap; b != nil {
			if b.XRes > 195 && b.XRes < 214 && b.Width <= Width {
				ps, err := passThroughSplit(b, opts, left-len(pages))
				if err != nil {
					return nil, err
				}
				pages = append(pages, ps...)
				continue
			}
			pages = append(pages, renderImageAs(bitmapImage(b), opts, true))
			continue
		}
		pages = append(pages, renderImage(f.Image, opts))
	}
	return pages, nil
}

// MaxPageMM is the longest page passed through as one: B4's 364 mm, the
// longest length T.30 names short of "unlimited". A longer fax page (a
// scanned receipt roll, a page with an unending height) is cut into pages of
// the paper's length.
const MaxPageMM = 364

// passThroughSplit passes a fax page through, cut into pages of the paper's
// length when it is longer than MaxPageMM; at most left pages.
func passThroughSplit(b *faxtiff.Bitmap, opts Options, left int) ([]*Page, error) {
	dpi := opts.Resolution.DPI()
	rows := b.Height // in the page's resolution
	switch fine := b.YRes > 147; {
	case fine && opts.Resolution == Standard:
		rows = (rows + 1) / 2
	case !fine && opts.Resolution == Fine:
		rows *= 2
	}
	maxRows := int(MaxPageMM / 25.4 * dpi)
	if rows <= maxRows {
		if left < 1 {
			return nil, fmt.Errorf("%w: more than %d", ErrTooManyPages, opts.MaxPages)
		}
		return []*Page{passThrough(b, opts.Resolution)}, nil
	}
	ph := opts.Paper.Height(opts.Resolution)
	n := (rows + ph - 1) / ph
	if n > left {
		return nil, fmt.Errorf("%w: a page of %d mm cut into %d pages of the paper's length", ErrTooManyPages, int(float64(rows)/dpi*25.4), n)
	}
	whole := passThrough(b, opts.Resolution)
	var out []*Page
	for y := 0; y < whole.Height; y += ph {
		p := NewPage(Width, min(ph, whole.Height-y), opts.Resolution)
		copy(p.Pix, whole.Pix[y*whole.Stride:])
		out = append(out, p)
	}
	return out, nil
}

// passThrough keeps a fax page's pixels, converting only the vertical
// resolution (fine to standard merges pairs of rows, standard to fine
// doubles them) and centring narrower pages.
func passThrough(b *faxtiff.Bitmap, r Resolution) *Page {
	fine := b.YRes > 147
	h := b.Height
	switch {
	case fine && r == Standard:
		h = (h + 1) / 2
	case !fine && r == Fine:
		h *= 2
	}
	p := NewPage(Width, h, r)
	shift := (Width - b.Width) / 2
	for y := 0; y < h; y++ {
		var src []byte
		switch {
		case fine && r == Standard:
			src = b.Row(2 * y)
			if 2*y+1 < b.Height {
				a := b.Row(2*y + 1)
				merged := make([]byte, len(src))
				for i := range merged {
					merged[i] = src[i] | a[i]
				}
				src = merged
			}
		case !fine && r == Fine:
			src = b.Row(y / 2)
		default:
			src = b.Row(y)
		}
		if shift == 0 {
			copy(p.Row(y), src[:min(len(src), p.Stride)])
			continue
		}
		for x := 0; x < b.Width; x++ {
			if src[x/8]&(0x80>>uint(x%8)) != 0 {
				p.set(x+shift, y)
			}
		}
	}
	return p
}

// bitmapImage converts a bilevel bitmap to a gray image of square pixels.
func bitmapImage(b *faxtiff.Bitmap) image.Image {
	g := image.NewGray(image.Rect(0, 0, b.Width, b.Height))
	for y := 0; y < b.Height; y++ {
		row := b.Row(y)
		out := g.Pix[y*g.Stride:]
		for x := 0; x < b.Width; x++ {
			if row[x/8]&(0x80>>uint(x%8)) == 0 {
				out[x] = 0xff
			}
		}
	}
	if b.XRes > 0 && b.YRes > 0 && (b.XRes/b.YRes > 1.05 || b.YRes/b.XRes > 1.05) {
		// Non-square pixels: stretch to square before fitting the page.
		w, h := b.Width, int(float64(b.Height)*b.XRes/b.YRes+0.5)
		sq := image.NewGray(image.Rect(0, 0, w, max(1, h)))
		draw.NearestNeighbor.Scale(sq, sq.Rect, g, g.Rect, draw.Src, nil)
		return sq
	}
	return g
}

// floydSteinberg dithers g onto p at (x0, y0).
func floydSteinberg(g *image.Gray, p *Page, x0, y0 int) {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	cur := make([]int32, w+2)
	next := make([]int32, w+2)
	for y := 0; y < h; y++ {
		row := g.Pix[y*g.Stride:]
		for x := 0; x < w; x++ {
			v := int32(row[x])*16 + cur[x+1]
			out := int32(255 * 16)
			if v < 128*16 {
				out = 0
				p.set(x0+x, y0+y)
			}
			e := v - out
			cur[x+2] += e * 7 / 16
			next[x] += e * 3 / 16
			next[x+1] += e * 5 / 16
			next[x+2] += e / 16
		}
		cur, next = next, cur
		clear(next)
	}
}
