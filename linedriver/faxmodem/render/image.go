package render

import (
	"bytes"
	"fmt"
	"image"
	_ "image/gif" // register decoders
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	"golang.org/x/image/draw"

	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
)

func decodeImage(data []byte, maxPixels int64) (image.Image, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, fmt.Errorf("%w: %s of %d×%d pixels (limit %d pixels)", ErrTooLarge, format, cfg.Width, cfg.Height, maxPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return img, nil
}

// renderImage scales an image (square pixels) to fit the page below the
// header band, centred, and makes it bilevel.
func renderImage(img image.Image, opts Options) *Page {
	return renderImageDither(img, opts, opts.Dither)
}

func renderImageDither(img image.Image, opts Options, dither bool) *Page {
	h := opts.Paper.Height(opts.Resolution)
	top := 0
	if opts.Header != nil {
		top = headerBand * int(opts.Resolution.DPI()) / 196
	}
	b := img.Bounds()
	yscale := opts.Resolution.DPI() / 204 // page rows per 204-dpi pixel
	s := min(float64(Width)/float64(b.Dx()), float64(h-top)/yscale/float64(b.Dy()))
	dw := max(1, min(Width, int(float64(b.Dx())*s+0.5)))
	dh := max(1, min(h-top, int(float64(b.Dy())*s*yscale+0.5)))
	g := image.NewGray(image.Rect(0, 0, dw, dh))
	for i := range g.Pix {
		g.Pix[i] = 0xff
	}
	draw.BiLinear.Scale(g, g.Rect, img, b, draw.Over, nil)
	p := NewPage(Width, h, opts.Resolution)
	x0 := (Width - dw) / 2
	if dither {
		floydSteinberg(g, p, x0, top)
	} else {
		for y := 0; y < dh; y++ {
			row := g.Pix[y*g.Stride:]
			for x := 0; x < dw; x++ {
				if row[x] < 128 {
					p.set(x0+x, top+y)
				}
			}
		}
	}
	return p
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
				pages = append(pages, passThrough(b, opts.Resolution))
				continue
			}
			pages = append(pages, renderImageDither(bitmapImage(b), opts, false))
			continue
		}
		pages = append(pages, renderImage(f.Image, opts))
	}
	return pages, nil
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
