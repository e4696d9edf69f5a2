package t4

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// ErrInvalid reports page data that does not follow T.4/T.6.
var ErrInvalid = errors.New("t4: invalid page data")

// ErrTooManyRows reports a page longer than the caller's limit.
var ErrTooManyRows = errors.New("t4: page has too many rows")

// DefaultMaxRows is the row limit of DecodePage when maxRows <= 0: a little
// over two A4 pages at fine resolution.
const DefaultMaxRows = 5000

// bitReader reads bits first bit first; bits past the end of the data read
// as zero and are counted in missing.
type bitReader struct {
	r    io.Reader
	buf  []byte
	pos  int
	end  int
	acc  uint64 // next bit in bit 63
	n    uint   // valid bits in acc
	eof  bool
	err  error // read error other than io.EOF
	lsb  bool
	used int64 // bits consumed
}

func (b *bitReader) fill() {
	for b.n <= 56 {
		if b.pos == b.end {
			if b.eof {
				return
			}
			n, err := b.r.Read(b.buf)
			b.pos, b.end = 0, n
			if err != nil {
				b.eof = true
				if err != io.EOF {
					b.err = err
				}
			}
			if n == 0 {
				if err == nil {
					continue
				}
				return
			}
		}
		v := b.buf[b.pos]
		b.pos++
		if b.lsb {
			v = reversed[v]
		}
		b.acc |= uint64(v) << (56 - b.n)
		b.n += 8
	}
}

func (b *bitReader) peek(k uint) uint32 {
	if b.n < k {
		b.fill()
	}
	return uint32(b.acc >> (64 - k))
}

// skip consumes k bits (k <= 32); it fails past the end of the data.
func (b *bitReader) skip(k uint) error {
	if b.n < k {
		b.fill()
		if b.n < k {
			if b.err != nil {
				return fmt.Errorf("t4: read: %w", b.err)
			}
			return io.ErrUnexpectedEOF
		}
	}
	b.acc <<= k
	b.n -= k
	b.used += int64(k)
	return nil
}

// atEnd reports whether only zero bits are left (fewer than a byte and a
// half, the most a writer pads with).
func (b *bitReader) restZero() bool {
	b.fill()
	return b.n < 16 && b.acc == 0 && b.eof && b.pos == b.end
}

// Decoder reads the rows of one page.
type Decoder struct {
	br    bitReader
	width int
	opts  Options
	ref   []int32
	cur   []int32
	rows  int
	done  bool
	err   error
}

// NewDecoder returns a decoder of rows width pixels wide coded as
// opts.Encoding with bit order opts.LSBFirst. K, AlignEOL and MinLineBits do
// not matter: the decoder accepts any fill and reads MR tag bits.
func NewDecoder(r io.Reader, width int, opts Options) *Decoder {
	d := &Decoder{width: width, opts: opts}
	d.br = bitReader{r: r, buf: make([]byte, 4096), lsb: opts.LSBFirst}
	if width <= 0 || width > MaxWidth {
		d.err = fmt.Errorf("%w: width %d outside 1..%d", ErrOptions, width, MaxWidth)
	} else if opts.Encoding < MH || opts.Encoding > MMR {
		d.err = fmt.Errorf("%w: encoding %v", ErrOptions, opts.Encoding)
	}
	d.ref = append(make([]int32, 0, 64), int32(width), int32(width), int32(width))
	d.cur = make([]int32, 0, 64)
	return d
}

// Rows reports the number of rows decoded so far.
func (d *Decoder) Rows() int { return d.rows }

func (d *Decoder) fail(err error) error {
	d.err = fmt.Errorf("t4: row %d (bit %d): %w", d.rows, d.br.used, err)
	return d.err
}

// ReadRow decodes the next row into dst (at least (width+7)/8 bytes). It
// returns io.EOF at RTC, EOFB or the end of the data.
func (d *Decoder) ReadRow(dst []byte) error {
	if d.err != nil {
		return d.err
	}
	if d.done {
		return io.EOF
	}
	if len(dst) < (d.width+7)/8 {
		return fmt.Errorf("t4: row buffer of %d bytes is shorter than width %d", len(dst), d.width)
	}
	twoD := false
	switch d.opts.Encoding {
	case MH, MR:
		found, err := d.eol()
		if err != nil {
			return d.end(err)
		}
		if d.opts.Encoding == MR {
			if !found {
				return d.fail(fmt.Errorf("%w: MR row without EOL", ErrInvalid))
			}
			tag := d.br.peek(1)
			if err := d.br.skip(1); err != nil {
				return d.end(io.EOF)
			}
			twoD = tag == 0
		}
		if found {
			// EOL right after EOL: RTC (or data ending after an EOL).
			again, err := d.eol()
			if err != nil || again {
				return d.end(io.EOF)
			}
		}
	case MMR:
		if d.br.peek(12) == eolCode {
			d.br.skip(12)
			if d.br.peek(12) != eolCode {
				return d.fail(fmt.Errorf("%w: EOL inside MMR data is not an EOFB", ErrInvalid))
			}
			d.br.skip(12)
			return d.end(io.EOF)
		}
		if d.br.restZero() {
			return d.end(io.EOF)
		}
		twoD = true
	}
	var err error
	if twoD {
		err = d.row2D()
	} else {
		err = d.row1D()
	}
	if err != nil {
		return d.fail(err)
	}
	fillRow(dst, d.cur, d.width)
	d.cur, d.ref = d.ref, d.cur
	d.rows++
	return nil
}

func (d *Decoder) end(err error) error {
	if err == io.EOF {
		d.done = true
		return io.EOF
	}
	return d.fail(err)
}

// eol skips fill bits and one EOL. found is false when the data at this
// point starts with a code instead; io.EOF means only zero bits were left.
func (d *Decoder) eol() (found bool, err error) {
	b := &d.br
	for {
		v := b.peek(12)
		if v == eolCode {
			b.skip(12)
			return true, nil
		}
		if v != 0 {
			if b.n < 12 && b.eof && b.pos == b.end && b.acc>>(64-b.n) == 0 {
				return false, io.EOF
			}
			return false, nil
		}
		// At least 12 zero bits: fill. Skip all but 11 of the zeros seen.
		if b.n < 12 {
			if b.err != nil {
				return false, fmt.Errorf("t4: read: %w", b.err)
			}
			return false, io.EOF
		}
		z := uint(bits.LeadingZeros64(b.acc))
		if z > b.n {
			z = b.n
		}
		if err := b.skip(z - 11); err != nil {
			return false, err
		}
	}
}

func (d *Decoder) run(color int) (int, error) {
	t := &runTable[color]
	total := 0
	for {
		e := t[d.br.peek(runBits)]
		if e.n == 0 {
			if d.br.n == 0 && d.br.eof {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("%w: bad %s run code", ErrInvalid, [2]string{"white", "black"}[color])
		}
		if err := d.br.skip(uint(e.n)); err != nil {
			return 0, err
		}
		total += int(e.run)
		if total > d.width {
			return 0, fmt.Errorf("%w: run past the end of the row", ErrInvalid)
		}
		if e.run < 64 {
			return total, nil
		}
	}
}

func (d *Decoder) row1D() error {
	cur := d.cur[:0]
	pos, color := 0, 0
	for {
		r, err := d.run(color)
		if err != nil {
			return err
		}
		pos += r
		if pos > d.width {
			return fmt.Errorf("%w: row longer than %d", ErrInvalid, d.width)
		}
		if pos == d.width {
			break
		}
		if n := len(cur); n > 0 && cur[n-1] == int32(pos) {
			cur = cur[:n-1] // a zero-length run cancels the change before it
		} else {
			cur = append(cur, int32(pos))
		}
		color ^= 1
	}
	d.cur = append(cur, int32(d.width), int32(d.width), int32(d.width))
	return nil
}

func (d *Decoder) row2D() error {
	cur, ref := d.cur[:0], d.ref
	w := int32(d.width)
	a0 := int32(-1)
	color, k := 0, 0
	b := &d.br
	for a0 < w {
		for ref[k] <= a0 {
			k++
		}
		idx := k
		if idx&1 != color {
			idx++
		}
		b1, b2 := ref[idx], ref[idx+1]
		m := modeTable[b.peek(modeBits)]
		if m.n == 0 {
			if b.n == 0 && b.eof {
				return io.ErrUnexpectedEOF
			}
			return fmt.Errorf("%w: bad mode code (EOL or uncompressed mode inside a row)", ErrInvalid)
		}
		if err := b.skip(uint(m.n)); err != nil {
			return err
		}
		switch m.mode {
		case modePass:
			if b2 >= w {
				return fmt.Errorf("%w: pass mode past the end of the row", ErrInvalid)
			}
			a0 = b2
		case modeHoriz:
			r1, err := d.run(color)
			if err != nil {
				return err
			}
			r2, err := d.run(color ^ 1)
			if err != nil {
				return err
			}
			start := a0
			if start < 0 {
				start = 0
			} else if r1 == 0 {
				return fmt.Errorf("%w: empty run in horizontal mode", ErrInvalid)
			}
			a1 := start + int32(r1)
			a2 := a1 + int32(r2)
			if a2 > w {
				return fmt.Errorf("%w: horizontal mode past the end of the row", ErrInvalid)
			}
			if a1 < w {
				if r2 == 0 {
					return fmt.Errorf("%w: empty run in horizontal mode", ErrInvalid)
				}
				cur = append(cur, a1)
				if a2 < w {
					cur = append(cur, a2)
				}
			}
			a0 = a2
		default:
			a1 := b1 + int32(m.mode-modeV0)
			if a1 < 0 || a1 > w || (a0 >= 0 && a1 <= a0) {
				return fmt.Errorf("%w: vertical mode outside the row", ErrInvalid)
			}
			if a1 < w {
				cur = append(cur, a1)
			}
			a0 = a1
			color ^= 1
		}
	}
	d.cur = append(cur, w, w, w)
	return nil
}

// fillRow packs changing elements into a row of bits.
func fillRow(dst []byte, ch []int32, width int) {
	nb := (width + 7) / 8
	clear(dst[:nb])
	for i := 0; i+1 < len(ch) && int(ch[i]) < width; i += 2 {
		setBits(dst, int(ch[i]), min(int(ch[i+1]), width))
	}
}

// setBits sets bits [x0, x1) of row.
func setBits(row []byte, x0, x1 int) {
	if x0 >= x1 {
		return
	}
	b0, b1 := x0>>3, (x1-1)>>3
	m0 := byte(0xff >> uint(x0&7))
	m1 := byte(0xff << uint(7-(x1-1)&7))
	if b0 == b1 {
		row[b0] |= m0 & m1
		return
	}
	row[b0] |= m0
	for i := b0 + 1; i < b1; i++ {
		row[i] = 0xff
	}
	row[b1] |= m1
}

// DecodePage decodes a whole page. maxRows bounds its length (<= 0:
// DefaultMaxRows); a longer page is an error wrapping ErrTooManyRows.
func DecodePage(r io.Reader, width int, opts Options, maxRows int) ([][]byte, error) {
	if maxRows <= 0 {
		maxRows = DefaultMaxRows
	}
	d := NewDecoder(r, width, opts)
	nb := (width + 7) / 8
	var rows [][]byte
	for {
		row := make([]byte, nb)
		err := d.ReadRow(row)
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		if len(rows) == maxRows {
			return rows, fmt.Errorf("%w: more than %d", ErrTooManyRows, maxRows)
		}
		rows = append(rows, row)
	}
}

// Resync recovers from a row that failed to decode (MH and MR only): it
// drops the data up to the next EOL that starts a row the decoder can read
// on its own (for MR, a 1-D row), so that ReadRow goes on from there. It
// returns how many rows were lost, the failed one included: the caller
// repeats the last good row that many times (T.4 copy quality). At the end
// of the data it returns io.EOF.
func (d *Decoder) Resync() (lost int, err error) {
	if d.err == nil {
		return 0, nil
	}
	if d.opts.Encoding == MMR || d.width <= 0 || d.width > MaxWidth {
		return 0, d.err
	}
	d.err = nil
	return d.seekEOL(1)
}

// SkipToEOL drops what comes before the first EOL of MH or MR data (for
// MR, the first EOL of a 1-D row), as a receiver ignores the line before
// the page starts. It returns io.EOF when there is none.
func (d *Decoder) SkipToEOL() error {
	if d.err != nil {
		return d.err
	}
	if d.opts.Encoding == MMR || d.rows > 0 {
		return nil
	}
	_, err := d.seekEOL(0)
	return err
}

// seekEOL moves to the next EOL that starts a row decodable on its own,
// counting from lost the rows passed.
func (d *Decoder) seekEOL(lost int) (int, error) {
	b := &d.br
	for {
		if b.peek(12) == eolCode {
			if d.opts.Encoding != MR || b.peek(13)&1 == 1 {
				return lost, nil
			}
			// an MR row coded against a reference we no longer have
			b.skip(12) //nolint:errcheck // peeked
			lost++
			continue
		}
		if err := b.skip(1); err != nil {
			d.done = true
			return lost, io.EOF
		}
	}
}
