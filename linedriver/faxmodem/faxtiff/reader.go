package faxtiff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"

	"golang.org/x/image/tiff"

	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// ErrLimit reports a file that exceeds the reader's limits.
var ErrLimit = errors.New("faxtiff: limit exceeded")

// ErrFormat reports a file that is not a TIFF this reader understands.
var ErrFormat = errors.New("faxtiff: not a readable TIFF")

// Limits bound what Read accepts.
type Limits struct {
	MaxPages  int   // 0: 100
	MaxPixels int64 // per page; 0: 25 million
}

// Frame is one page of a TIFF: a bilevel Bitmap when the page is 1-bit
// (uncompressed, PackBits, G3 or G4), otherwise an Image.
type Frame struct {
	Bitmap *Bitmap
	Image  image.Image
	// Fax reports that the page was fax coded (G3/G4).
	Fax bool
}

type ifd struct {
	tags map[uint16][]uint32
}

func (d ifd) get(tag uint16, def uint32) uint32 {
	if v := d.tags[tag]; len(v) > 0 {
		return v[0]
	}
	return def
}

// Read decodes every page of a TIFF file within the limits.
func Read(data []byte, lim Limits) ([]Frame, error) {
	if lim.MaxPages <= 0 {
		lim.MaxPages = 100
	}
	if lim.MaxPixels <= 0 {
		lim.MaxPixels = 25_000_000
	}
	ifds, offs, bo, err := parse(data, lim.MaxPages)
	if err != nil {
		return nil, err
	}
	frames := make([]Frame, 0, len(ifds))
	for i, d := range ifds {
		f, err := readFrame(data, d, offs[i], bo, lim)
		if err != nil {
			return nil, fmt.Errorf("faxtiff: page %d: %w", i+1, err)
		}
		frames = append(frames, f)
	}
	return frames, nil
}

// Count returns the number of pages (IFDs) of a TIFF, up to max.
func Count(data []byte, max int) (int, error) {
	ifds, _, _, err := parse(data, max)
	return len(ifds), err
}

func parse(data []byte, maxPages int) ([]ifd, []uint32, binary.ByteOrder, error) {
	if len(data) < 8 {
		return nil, nil, nil, fmt.Errorf("%w: too short", ErrFormat)
	}
	var bo binary.ByteOrder
	switch string(data[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return nil, nil, nil, fmt.Errorf("%w: bad byte order mark", ErrFormat)
	}
	if m := bo.Uint16(data[2:]); m != 42 {
		return nil, nil, nil, fmt.Errorf("%w: magic %d (BigTIFF is not supported)", ErrFormat, m)
	}
	var ifds []ifd
	var offs []uint32
	seen := map[uint32]bool{}
	for off := bo.Uint32(data[4:]); off != 0; {
		if seen[off] {
			return nil, nil, nil, fmt.Errorf("%w: IFD chain loops", ErrFormat)
		}
		seen[off] = true
		if len(ifds) == maxPages {
			return nil, nil, nil, fmt.Errorf("%w: more than %d pages", ErrLimit, maxPages)
		}
		if uint64(off)+2 > uint64(len(data)) {
			return nil, nil, nil, fmt.Errorf("%w: IFD offset %d outside the file", ErrFormat, off)
		}
		n := uint64(bo.Uint16(data[off:]))
		end := uint64(off) + 2 + 12*n
		if end+4 > uint64(len(data)) {
			return nil, nil, nil, fmt.Errorf("%w: IFD at %d runs past the end", ErrFormat, off)
		}
		d := ifd{tags: map[uint16][]uint32{}}
		for i := uint64(0); i < n; i++ {
			e := data[uint64(off)+2+12*i:]
			tag, typ, cnt := bo.Uint16(e), bo.Uint16(e[2:]), uint64(bo.Uint32(e[4:]))
			size := map[uint16]uint64{1: 1, 3: 2, 4: 4, 5: 8, 16: 8}[typ]
			if size == 0 || cnt == 0 {
				continue
			}
			switch tag {
			case 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 282, 283, 284, 292, 293, 296:
			default:
				continue // only the tags this reader needs
			}
			if cnt > 1<<20 {
				return nil, nil, nil, fmt.Errorf("%w: tag %d has %d values", ErrLimit, tag, cnt)
			}
			p := e[8:12]
			if size*cnt > 4 {
				vo := uint64(bo.Uint32(e[8:]))
				if vo+size*cnt > uint64(len(data)) {
					return nil, nil, nil, fmt.Errorf("%w: tag %d values outside the file", ErrFormat, tag)
				}
				p = data[vo : vo+size*cnt]
			}
			vals := make([]uint32, 0, cnt)
			for j := uint64(0); j < cnt; j++ {
				switch typ {
				case 1:
					vals = append(vals, uint32(p[j]))
				case 3:
					vals = append(vals, uint32(bo.Uint16(p[2*j:])))
				case 4:
					vals = append(vals, bo.Uint32(p[4*j:]))
				case 5: // rational: keep num*100/den
					num, den := uint64(bo.Uint32(p[8*j:])), uint64(bo.Uint32(p[8*j+4:]))
					if den == 0 {
						den = 1
					}
					vals = append(vals, uint32(min(num*100/den, 1<<31)))
				default:
					vals = append(vals, 0)
				}
			}
			d.tags[tag] = vals
		}
		ifds = append(ifds, d)
		offs = append(offs, off)
		off = bo.Uint32(data[end:])
	}
	if len(ifds) == 0 {
		return nil, nil, nil, fmt.Errorf("%w: no pages", ErrFormat)
	}
	return ifds, offs, bo, nil
}

func readFrame(data []byte, d ifd, off uint32, bo binary.ByteOrder, lim Limits) (Frame, error) {
	w, h := d.get(256, 0), d.get(257, 0)
	if w == 0 || h == 0 {
		return Frame{}, fmt.Errorf("%w: no size", ErrFormat)
	}
	if int64(w)*int64(h) > lim.MaxPixels || w > t4.MaxWidth {
		return Frame{}, fmt.Errorf("%w: %d×%d pixels", ErrLimit, w, h)
	}
	comp := d.get(259, 1)
	bilevel := d.get(258, 1) == 1 && d.get(277, 1) == 1
	res := func(tag uint16, def float64) float64 {
		v := float64(d.get(tag, 0)) / 100
		if v <= 0 {
			return def
		}
		if d.get(296, 2) == 3 { // per centimetre
			v *= 2.54
		}
		return v
	}
	if !bilevel || (comp != 1 && comp != 3 && comp != 4 && comp != 32773) {
		// Everything else goes to x/image/tiff, pointed at this IFD.
		r := &patched{data: data, first: off, bo: bo}
		if _, err := tiff.DecodeConfig(io.NewSectionReader(r, 0, int64(len(data)))); err != nil {
			return Frame{}, err
		}
		img, err := tiff.Decode(io.NewSectionReader(r, 0, int64(len(data))))
		if err != nil {
			return Frame{}, err
		}
		if bilevel {
			// A 1-bit page in another compression (LZW, Deflate): still a
			// bitmap with its resolution, so a fax page passes through.
			return Frame{Bitmap: bitmapOf(img, res(282, 204), res(283, 196))}, nil
		}
		return Frame{Image: img}, nil
	}
	b := &Bitmap{Width: int(w), Height: int(h), Stride: (int(w) + 7) / 8, XRes: res(282, 204), YRes: res(283, 196)}
	b.Pix = make([]byte, b.Stride*b.Height)
	offs, counts := d.tags[273], d.tags[279]
	if len(offs) == 0 || len(offs) != len(counts) {
		return Frame{}, fmt.Errorf("%w: bad strips", ErrFormat)
	}
	rps := int(d.get(278, h))
	if rps <= 0 || rps > int(h) {
		rps = int(h)
	}
	lsb := d.get(266, 1) == 2
	y := 0
	for i := range offs {
		if y >= b.Height {
			break
		}
		o, n := uint64(offs[i]), uint64(counts[i])
		if o+n > uint64(len(data)) {
			return Frame{}, fmt.Errorf("%w: strip %d outside the file", ErrFormat, i)
		}
		strip := data[o : o+n]
		rows := min(rps, b.Height-y)
		if err := decodeStrip(b, y, rows, strip, comp, d.get(292, 0), lsb); err != nil {
			return Frame{}, fmt.Errorf("strip %d: %w", i, err)
		}
		y += rows
	}
	if d.get(262, 0) == 1 { // min-is-black
		for i := range b.Pix {
			b.Pix[i] = ^b.Pix[i]
		}
	}
	return Frame{Bitmap: b, Fax: comp == 3 || comp == 4}, nil
}

// bitmapOf makes a bitmap of a decoded 1-bit image (black is dark).
func bitmapOf(img image.Image, xres, yres float64) *Bitmap {
	r := img.Bounds()
	b := &Bitmap{Width: r.Dx(), Height: r.Dy(), Stride: (r.Dx() + 7) / 8, XRes: xres, YRes: yres}
	b.Pix = make([]byte, b.Stride*b.Height)
	for y := 0; y < b.Height; y++ {
		row := b.Row(y)
		for x := 0; x < b.Width; x++ {
			if c := color.GrayModel.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.Gray); c.Y < 128 {
				row[x/8] |= 0x80 >> uint(x%8)
			}
		}
	}
	return b
}

func decodeStrip(b *Bitmap, y0, rows int, strip []byte, comp, t4opt uint32, lsb bool) error {
	switch comp {
	case 3, 4:
		o := t4.Options{Encoding: t4.MMR, LSBFirst: lsb}
		if comp == 3 {
			o.Encoding = t4.MH
			if t4opt&1 != 0 {
				o.Encoding = t4.MR
			}
		}
		dec := t4.NewDecoder(bytes.NewReader(strip), b.Width, o)
		for y := y0; y < y0+rows; y++ {
			if err := dec.ReadRow(b.Row(y)); err == io.EOF {
				break // a short strip leaves white rows
			} else if err != nil {
				return err
			}
		}
		return nil
	case 32773: // PackBits
		out := b.Pix[y0*b.Stride : (y0+rows)*b.Stride]
		n := 0
		for i := 0; i < len(strip) && n < len(out); {
			c := int8(strip[i])
			i++
			switch {
			case c >= 0:
				k := int(c) + 1
				if i+k > len(strip) {
					k = len(strip) - i
				}
				n += copy(out[n:], strip[i:i+k])
				i += k
			case c != -128 && i < len(strip):
				for k := 0; k < 1-int(c) && n < len(out); k++ {
					out[n] = strip[i]
					n++
				}
				i++
			}
		}
	default:
		copy(b.Pix[y0*b.Stride:(y0+rows)*b.Stride], strip)
	}
	if lsb {
		for i, v := range b.Pix[y0*b.Stride : (y0+rows)*b.Stride] {
			b.Pix[y0*b.Stride+i] = reverse8(v)
		}
	}
	return nil
}

func reverse8(v byte) byte {
	v = v>>4 | v<<4
	v = (v&0xcc)>>2 | (v&0x33)<<2
	return (v&0xaa)>>1 | (v&0x55)<<1
}

// patched reads data with the header's first-IFD offset replaced, so that
// x/image/tiff (which reads only the first page) decodes any page.
type patched struct {
	data  []byte
	first uint32
	bo    binary.ByteOrder
}

func (p *patched) ReadAt(b []byte, off int64) (int, error) {
	if off >= int64(len(p.data)) {
		return 0, io.EOF
	}
	n := copy(b, p.data[off:])
	var hdr [8]byte
	copy(hdr[:], p.data[:4])
	p.bo.PutUint32(hdr[4:], p.first)
	for i := off; i < off+int64(n) && i < 8; i++ {
		b[i-off] = hdr[i]
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}
