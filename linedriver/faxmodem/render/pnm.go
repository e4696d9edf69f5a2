package render

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"

	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
)

// Netpbm images: PBM (P1, P4), PGM (P2, P5), PPM (P3, P6), as netpbm's
// tools and many scanners (and g3topbm, for faxes) write them.

func init() {
	for _, m := range []string{"P1", "P2", "P3", "P4", "P5", "P6"} {
		image.RegisterFormat("pnm", m, func(r io.Reader) (image.Image, error) { return decodePNM(r, 0) }, decodePNMConfig)
	}
}

var errPNM = errors.New("pnm: bad header")

type pnmHeader struct {
	magic         byte // '1'..'6'
	width, height int
	maxval        int
}

// readPNMHeader reads the magic, width, height and (but for PBM) maxval.
func readPNMHeader(br *bufio.Reader) (pnmHeader, error) {
	var h pnmHeader
	p, err := br.ReadByte()
	if err != nil || p != 'P' {
		return h, errPNM
	}
	if h.magic, err = br.ReadByte(); err != nil || h.magic < '1' || h.magic > '6' {
		return h, errPNM
	}
	n := 3
	if h.magic == '1' || h.magic == '4' {
		n = 2
		h.maxval = 1
	}
	vals := make([]int, 0, 3)
	for len(vals) < n {
		v, err := pnmInt(br)
		if err != nil {
			return h, err
		}
		vals = append(vals, v)
	}
	h.width, h.height = vals[0], vals[1]
	if n == 3 {
		h.maxval = vals[2]
	}
	if h.width <= 0 || h.height <= 0 || h.maxval <= 0 || h.maxval > 65535 {
		return h, fmt.Errorf("%w: %d×%d, maxval %d", errPNM, h.width, h.height, h.maxval)
	}
	// pnmInt consumed the one white-space byte before a raw raster.
	return h, nil
}

// pnmInt reads a decimal number, skipping white space and comments, and
// the single white-space byte that ends it.
func pnmInt(br *bufio.Reader) (int, error) {
	for {
		c, err := br.ReadByte()
		if err != nil {
			return 0, errPNM
		}
		switch {
		case c == '#':
			if _, err := br.ReadString('\n'); err != nil {
				return 0, errPNM
			}
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case c >= '0' && c <= '9':
			v := int(c - '0')
			for {
				c, err := br.ReadByte()
				if err == io.EOF {
					return v, nil
				}
				if err != nil {
					return 0, errPNM
				}
				if c < '0' || c > '9' {
					if c == '#' {
						br.UnreadByte()
					}
					return v, nil
				}
				if v = v*10 + int(c-'0'); v > 1<<24 {
					return 0, errPNM
				}
			}
		default:
			return 0, errPNM
		}
	}
}

func decodePNMConfig(r io.Reader) (image.Config, error) {
	h, err := readPNMHeader(bufio.NewReader(r))
	if err != nil {
		return image.Config{}, err
	}
	var m color.Model = color.GrayModel
	switch {
	case h.magic == '3' || h.magic == '6':
		m = color.RGBAModel
	case h.maxval > 255:
		m = color.Gray16Model
	}
	return image.Config{ColorModel: m, Width: h.width, Height: h.height}, nil
}

// decodePNM decodes into a Gray (PBM: 0 or 255; PGM and PPM scaled to 8
// bits, PPM by luminance: fax pages are gray anyway). maxPixels 0: no limit
// beyond the caller's DecodeConfig check.
func decodePNM(r io.Reader, maxPixels int64) (image.Image, error) {
	br := bufio.NewReader(r)
	h, err := readPNMHeader(br)
	if err != nil {
		return nil, err
	}
	if maxPixels > 0 && int64(h.width)*int64(h.height) > maxPixels {
		return nil, fmt.Errorf("%w: PNM of %d×%d pixels", ErrTooLarge, h.width, h.height)
	}
	g := image.NewGray(image.Rect(0, 0, h.width, h.height))
	short := fmt.Errorf("pnm: %d×%d raster is short", h.width, h.height)
	scale := func(v int) uint8 { return uint8(v * 255 / h.maxval) }
	switch h.magic {
	case '4':
		row := make([]byte, (h.width+7)/8)
		for y := 0; y < h.height; y++ {
			if _, err := io.ReadFull(br, row); err != nil {
				return nil, short
			}
			out := g.Pix[y*g.Stride:]
			for x := 0; x < h.width; x++ {
				if row[x/8]&(0x80>>uint(x%8)) == 0 {
					out[x] = 0xff
				}
			}
		}
	case '5', '6':
		ch, bps := 1, 1
		if h.magic == '6' {
			ch = 3
		}
		if h.maxval > 255 {
			bps = 2
		}
		row := make([]byte, h.width*ch*bps)
		for y := 0; y < h.height; y++ {
			if _, err := io.ReadFull(br, row); err != nil {
				return nil, short
			}
			out := g.Pix[y*g.Stride:]
			for x := 0; x < h.width; x++ {
				var v [3]int
				for c := 0; c < ch; c++ {
					i := (x*ch + c) * bps
					v[c] = int(row[i])
					if bps == 2 {
						v[c] = v[c]<<8 | int(row[i+1])
					}
				}
				if ch == 3 {
					v[0] = (299*v[0] + 587*v[1] + 114*v[2]) / 1000
				}
				out[x] = scale(min(v[0], h.maxval))
			}
		}
	default: // plain (ASCII) formats
		ch := 1
		if h.magic == '3' {
			ch = 3
		}
		for y := 0; y < h.height; y++ {
			out := g.Pix[y*g.Stride:]
			for x := 0; x < h.width; x++ {
				var v [3]int
				for c := 0; c < ch; c++ {
					if h.magic == '1' {
						b, err := pbmPlainBit(br)
						if err != nil {
							return nil, short
						}
						v[c] = 1 - b // 1 is black
					} else if v[c], err = pnmInt(br); err != nil {
						return nil, short
					}
				}
				if ch == 3 {
					v[0] = (299*v[0] + 587*v[1] + 114*v[2]) / 1000
				}
				out[x] = scale(min(v[0], h.maxval))
			}
		}
	}
	return g, nil
}

// pbmPlainBit reads one '0' or '1' of a P1 raster (they need no spaces).
func pbmPlainBit(br *bufio.Reader) (int, error) {
	for {
		c, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch c {
		case '0', '1':
			return int(c - '0'), nil
		case '#':
			br.ReadString('\n')
		case ' ', '\t', '\r', '\n':
		default:
			return 0, errPNM
		}
	}
}

// pbmFaxPage reads a PBM that is already a fax page (1728 pels wide) as a
// bitmap to pass through. PBM says nothing of resolution: up to 1500 rows
// is taken for standard (A4 is 1146, Letter 1078), more for fine, as
// g3topbm writes them.
func pbmFaxPage(data []byte, maxPixels int64) (*faxtiff.Bitmap, bool, error) {
	br := bufio.NewReader(bytes.NewReader(data))
	h, err := readPNMHeader(br)
	if err != nil || (h.magic != '4' && h.magic != '1') || h.width != Width {
		return nil, false, nil
	}
	img, err := decodePNM(bytes.NewReader(data), maxPixels)
	if err != nil {
		return nil, true, err
	}
	yres := 196.0
	if h.height <= 1500 {
		yres = 98
	}
	b := &faxtiff.Bitmap{Width: h.width, Height: h.height, Stride: (h.width + 7) / 8, XRes: 204, YRes: yres}
	b.Pix = make([]byte, b.Stride*b.Height)
	g := img.(*image.Gray)
	for y := 0; y < h.height; y++ {
		row, src := b.Row(y), g.Pix[y*g.Stride:]
		for x := 0; x < h.width; x++ {
			if src[x] == 0 {
				row[x/8] |= 0x80 >> uint(x%8)
			}
		}
	}
	return b, true, nil
}
