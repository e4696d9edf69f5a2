// Package t4 encodes and decodes bilevel fax page data: ITU-T T.4 one- and
// two-dimensional coding (MH, MR) and T.6 (MMR).
//
// The encoder produces the same bit stream as libtiff (and so ghostscript)
// for the same pixels; framing — EOLs, fill bits for the minimum scan-line
// time, RTC/EOFB and the bit order within each byte — follows Options so the
// output can go straight to a Class 1 modem or into a TIFF Class F file.
//
// Rows are packed 1 bit per pixel, most significant bit first, 1 = black, as
// in a PBM file or render.Page.
package t4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
)

// Encoding is a fax compression scheme.
type Encoding int

const (
	MH  Encoding = iota // T.4 one-dimensional (Modified Huffman)
	MR                  // T.4 two-dimensional (Modified READ)
	MMR                 // T.6 (Modified Modified READ), used with error correction mode
)

func (e Encoding) String() string {
	switch e {
	case MH:
		return "MH"
	case MR:
		return "MR"
	case MMR:
		return "MMR"
	}
	return fmt.Sprintf("Encoding(%d)", int(e))
}

// ParseEncoding accepts "mh", "mr" or "mmr" (any case; also "g3", "g3:2d", "g4").
func ParseEncoding(s string) (Encoding, error) {
	switch s {
	case "mh", "MH", "g3", "g3:1d", "1d":
		return MH, nil
	case "mr", "MR", "g3:2d", "2d":
		return MR, nil
	case "mmr", "MMR", "g4":
		return MMR, nil
	}
	return 0, fmt.Errorf("t4: unknown encoding %q (want mh, mr or mmr)", s)
}

// MaxWidth is the widest row the encoder and decoder accept.
const MaxWidth = 1 << 16

// Options control the coding and the framing of a page.
type Options struct {
	Encoding Encoding
	// K is, for MR, the number of lines in each group that starts with a 1-D
	// line: 2 at standard resolution, 4 at fine (T.4 §4.2.1). 0 means the
	// T.4 value for fine resolution (4) is not guessed: MR requires K >= 1.
	K int
	// AlignEOL pads with zero bits so that each EOL ends on a byte boundary
	// (T.4 "byte-aligned EOL", TIFF Group3Options bit 2). MH/MR only.
	AlignEOL bool
	// MinLineBits is the least number of bits of each coded line, counting its
	// EOL: the receiver's minimum scan-line time multiplied by the bit rate.
	// Zero fill bits are inserted before the next EOL as needed. MH/MR only.
	MinLineBits int
	// EndOfPage appends RTC (six EOLs, MH/MR) or EOFB (MMR).
	EndOfPage bool
	// LSBFirst writes (and reads) the first bit of each byte in its least
	// significant bit, as a Class 1 modem carries page data (TIFF
	// FillOrder=2). False is TIFF FillOrder=1.
	LSBFirst bool
	// AutoMH makes the encoder also code the page as MH and keep whichever
	// is smaller: 2-D coding makes dithered photos bigger. The output is
	// then held until Close. Encoder.Encoding reports the choice.
	AutoMH bool
}

// ErrOptions reports options the encoder or decoder cannot work with.
var ErrOptions = errors.New("t4: invalid options")

func (o Options) check(width int) error {
	if width <= 0 || width > MaxWidth {
		return fmt.Errorf("%w: width %d outside 1..%d", ErrOptions, width, MaxWidth)
	}
	switch o.Encoding {
	case MH, MMR:
	case MR:
		if o.K < 1 {
			return fmt.Errorf("%w: MR needs K >= 1 (2 standard, 4 fine), got %d", ErrOptions, o.K)
		}
	default:
		return fmt.Errorf("%w: encoding %v", ErrOptions, o.Encoding)
	}
	if o.MinLineBits < 0 {
		return fmt.Errorf("%w: MinLineBits %d", ErrOptions, o.MinLineBits)
	}
	return nil
}

// bitWriter collects codes most significant bit first in a 64-bit
// accumulator, moving 32 bits at a time to buf.
type bitWriter struct {
	buf   []byte
	acc   uint64
	n     uint   // bits pending in the low end of acc (< 32 between calls)
	taken uint64 // bytes moved out by takeBytes
}

// put appends the low n bits of v; n <= 32.
func (b *bitWriter) put(v uint32, n uint) {
	b.acc = b.acc<<n | uint64(v)
	b.n += n
	if b.n >= 32 {
		b.n -= 32
		b.buf = binary.BigEndian.AppendUint32(b.buf, uint32(b.acc>>b.n))
	}
}

// total is the number of bits written so far.
func (b *bitWriter) total() uint64 {
	return (b.taken+uint64(len(b.buf)))*8 + uint64(b.n)
}

func (b *bitWriter) code(c code) { b.put(uint32(c.bits), uint(c.n)) }

func (b *bitWriter) zeros(n int) {
	for n > 16 {
		b.put(0, 16)
		n -= 16
	}
	if n > 0 {
		b.put(0, uint(n))
	}
}

// flush pads the last byte with zero bits and moves all pending bits to buf.
func (b *bitWriter) flush() {
	if r := b.n % 8; r != 0 {
		b.put(0, 8-r)
	}
	for b.n > 0 {
		b.n -= 8
		b.buf = append(b.buf, byte(b.acc>>b.n))
	}
}

// takeBytes moves the complete bytes of buf out (pending bits stay).
func (b *bitWriter) takeBytes() []byte {
	out := b.buf
	b.taken += uint64(len(out))
	b.buf = b.buf[len(b.buf):]
	return out
}

// runCodeMax bounds the runs runCodes holds: longer ones start with
// extended make-up codes of 2560.
const runCodeMax = 2624

// runCodes[color][r] is the whole code of a run r < runCodeMax — its
// make-up code, if any, followed by its terminating code — packed as
// bits<<5 | length (at most 13+12 = 25 bits), so a run is one put.
var runCodes = func() (t [2][runCodeMax]uint32) {
	for color, tabs := range [2]struct{ term, makeup []code }{
		{whiteTerm[:], whiteMakeup[:]}, {blackTerm[:], blackMakeup[:]},
	} {
		for r := range runCodeMax {
			v, n := uint32(0), uint32(0)
			if r >= 64 {
				m := tabs.makeup[r>>6]
				v, n = uint32(m.bits), uint32(m.n)
			}
			tc := tabs.term[r&63]
			v = v<<tc.n | uint32(tc.bits)
			n += uint32(tc.n)
			t[color][r] = v<<5 | n
		}
	}
	return
}()

func (b *bitWriter) run(r int, color int) {
	for r >= runCodeMax {
		b.code(whiteMakeup[40]) // the extended make-up codes are shared
		r -= 2560
	}
	v := runCodes[color&1][r]
	b.put(v>>5, uint(v&31))
}

// stream is one coding of the page (the requested one, and with AutoMH the
// MH alternative).
type stream struct {
	bw        bitWriter
	enc       Encoding
	k         int // rows left until the next 1-D row (MR)
	lineStart uint64
	started   bool
}

// Encoder codes one page row by row. It keeps two rows of state (as lists of
// changing elements) beyond the output.
type Encoder struct {
	w       io.Writer
	width   int
	opts    Options
	streams []*stream
	cur     []int32
	ref     []int32
	rows    int
	err     error
	closed  bool
	used    Encoding
}

// NewEncoder returns an encoder of rows width pixels wide. Option errors
// are reported by the first WriteRow or Close.
func NewEncoder(w io.Writer, width int, opts Options) *Encoder {
	e := &Encoder{w: w, width: width, opts: opts, used: opts.Encoding}
	if err := opts.check(width); err != nil {
		e.err = err
		return e
	}
	e.streams = []*stream{{enc: opts.Encoding}}
	e.streams[0].bw.buf = getBuf(flushBytes + mhRowBytes(width) + 64)
	if opts.AutoMH && opts.Encoding != MH {
		e.streams = append(e.streams, &stream{enc: MH})
	}
	e.cur = make([]int32, 0, 64)
	e.ref = append(make([]int32, 0, 64), int32(width), int32(width), int32(width))
	return e
}

// Encoding reports the coding of the page: the requested one, or MH when
// AutoMH found it smaller. It is final after Close.
func (e *Encoder) Encoding() Encoding { return e.used }

// Rows reports the number of rows written.
func (e *Encoder) Rows() int { return e.rows }

// changes appends the changing elements of a packed row to dst: the
// positions where the colour differs from the pixel before (the one before
// position 0 being white), followed by three copies of width.
func changes(dst []int32, row []byte, width int) []int32 {
	nb := (width + 7) / 8
	row = row[:nb]
	var prev uint64 // last pixel of the previous word, in bit 63
	i := 0
	for ; i+8 <= nb; i += 8 {
		w := binary.BigEndian.Uint64(row[i:])
		t := w ^ (w>>1 | prev)
		prev = w << 63
		for t != 0 {
			lz := bits.LeadingZeros64(t)
			dst = append(dst, int32(i*8+lz))
			t &^= (1 << 63) >> uint(lz)
		}
	}
	if i < nb {
		var tail [8]byte
		copy(tail[:], row[i:])
		w := binary.BigEndian.Uint64(tail[:])
		t := w ^ (w>>1 | prev)
		for t != 0 {
			lz := bits.LeadingZeros64(t)
			dst = append(dst, int32(i*8+lz))
			t &^= (1 << 63) >> uint(lz)
		}
	}
	// Drop changes at or past width (padding bits of the last byte).
	n := len(dst)
	for n > 0 && dst[n-1] >= int32(width) {
		n--
	}
	dst = dst[:n]
	return append(dst, int32(width), int32(width), int32(width))
}

// WriteRow codes one row, packed as described in the package comment; bits
// past the width are ignored.
func (e *Encoder) WriteRow(row []byte) error {
	if e.err != nil {
		return e.err
	}
	if e.closed {
		return errors.New("t4: WriteRow after Close")
	}
	if len(row) < (e.width+7)/8 {
		e.err = fmt.Errorf("t4: row of %d bytes is shorter than width %d", len(row), e.width)
		return e.err
	}
	if len(e.streams) == 1 && e.streams[0].enc == MH {
		// MH needs no reference row: code the runs straight from the pixels.
		s := e.streams[0]
		if e.opts.MinLineBits == 0 && !e.opts.AlignEOL {
			s.bw.put(eolCode, eolLen) // no fill: the EOL alone
		} else {
			e.eol(s, -1, true)
		}
		s.started = true
		codeMHRow(&s.bw, row, e.width)
	} else {
		e.cur = changes(e.cur[:0], row, e.width)
		for _, s := range e.streams {
			e.codeRow(s)
		}
		e.cur, e.ref = e.ref, e.cur
	}
	e.rows++
	if len(e.streams) == 1 && len(e.streams[0].bw.buf) >= flushBytes {
		b := &e.streams[0].bw
		out := b.takeBytes()
		err := e.write(out)
		b.buf = out[:0] // Write does not keep the slice (io.Writer): reuse it
		return err
	}
	return nil
}

// flushBytes is how much coded data a single-coding encoder holds before
// writing it out.
const flushBytes = 32 << 10

var zeroRow [MaxWidth / 8]byte

// mhRowBytes bounds the bytes one MH row takes, with room for the 8-byte
// stores of codeMHRow: each changing element (at most width+1) costs at
// most 25 bits, and a run longer than runCodeMax one 12-bit code per 2560
// pixels more.
func mhRowBytes(width int) int { return (width+1)*25/8 + width/2560*2 + 16 }

// codeMHRow is code1D(changes(row)) in one pass: each changing element is
// found with LeadingZeros64 on 64 pixels at a time and its run written at
// once from runCodes. Meanwhile the pending bits (fewer than 8 between
// codes) are held in a local accumulator, and every code is followed by an
// 8-byte store of them, top-aligned, into buf's spare capacity that commits
// the whole bytes: no branch per code.
func codeMHRow(b *bitWriter, row []byte, width int) {
	nb := (width + 7) / 8
	row = row[:nb]
	if bytes.Equal(row, zeroRow[:nb]) {
		// A white row (most rows of most pages) is one run: one memequal
		// instead of a word loop.
		b.run(width, 0)
		return
	}
	need := mhRowBytes(width)
	if cap(b.buf)-len(b.buf) < need {
		b.buf = append(make([]byte, 0, 2*cap(b.buf)+need), b.buf...)
	}
	for b.n >= 8 {
		b.n -= 8
		b.buf = append(b.buf, byte(b.acc>>b.n))
	}
	acc, n := b.acc, b.n // n < 8 pending bits in the low end of acc
	pos := len(b.buf)
	out := b.buf[:cap(b.buf)]
	var prev uint64 // last pixel of the previous word, in bit 63
	x, color := 0, 0
	for i := 0; ; i += 8 {
		var w uint64
		switch {
		case i+8 <= nb:
			w = binary.BigEndian.Uint64(row[i:])
		case i < nb:
			var tail [8]byte
			copy(tail[:], row[i:])
			w = binary.BigEndian.Uint64(tail[:])
		}
		t := w ^ (w>>1 | prev)
		prev = w << 63
		if e := width - i*8; e < 64 {
			// The row ends in this word: a change at width closes the last
			// run (the loop returns there); bits past it are padding.
			t = t&^(^uint64(0)>>uint(e)) | (1<<63)>>uint(e)
		}
		for t != 0 {
			lz := bits.LeadingZeros64(t)
			p := i*8 + lz
			r := p - x
			for r >= runCodeMax {
				m := whiteMakeup[40]
				acc = acc<<(m.n&63) | uint64(m.bits)
				n += uint(m.n)
				binary.BigEndian.PutUint64(out[pos:], acc<<((64-n)&63))
				pos += int(n >> 3)
				n &= 7
				r -= 2560
			}
			v := runCodes[color][r]
			acc = acc<<(v&31) | uint64(v>>5)
			n += uint(v & 31)
			// With n = 0 the store writes a byte that is not committed.
			binary.BigEndian.PutUint64(out[pos:], acc<<((64-n)&63))
			pos += int(n >> 3)
			n &= 7
			if p >= width {
				b.buf = out[:pos]
				b.acc, b.n = acc, n
				return
			}
			x, color = p, color^1
			t &^= (1 << 63) >> uint(lz&63)
		}
	}
}

func (e *Encoder) write(p []byte) error {
	if e.opts.LSBFirst {
		reverseBytes(p)
	}
	if _, err := e.w.Write(p); err != nil {
		e.err = fmt.Errorf("t4: write: %w", err)
	}
	return e.err
}

// eol writes the fill bits the previous line needs, then an EOL (and the
// MR tag bit when tag >= 0).
func (e *Encoder) eol(s *stream, tag int, first bool) {
	b := &s.bw
	if s.started && first && e.opts.MinLineBits > 0 {
		if need := int64(s.lineStart) + int64(e.opts.MinLineBits) - int64(b.total()); need > 0 {
			b.zeros(int(need))
		}
	}
	if e.opts.AlignEOL && first {
		if r := (b.total() + eolLen) % 8; r != 0 {
			b.zeros(int(8 - r))
		}
	}
	if first {
		s.lineStart = b.total()
	}
	if tag >= 0 {
		b.put(eolCode<<1|uint32(tag), eolLen+1)
	} else {
		b.put(eolCode, eolLen)
	}
}

func (e *Encoder) codeRow(s *stream) {
	switch s.enc {
	case MH:
		e.eol(s, -1, true)
		s.started = true
		code1D(&s.bw, e.cur, e.width)
	case MR:
		if s.k == 0 {
			e.eol(s, 1, true)
			code1D(&s.bw, e.cur, e.width)
			s.k = e.opts.K - 1
		} else {
			e.eol(s, 0, true)
			code2D(&s.bw, e.cur, e.ref, e.width)
			s.k--
		}
		s.started = true
	case MMR:
		code2D(&s.bw, e.cur, e.ref, e.width)
	}
}

// code1D writes the runs of one row (T.4 §4.1): white first, alternating,
// until the row is complete.
func code1D(b *bitWriter, cur []int32, width int) {
	pos, color := int32(0), 0
	w := int32(width)
	for i := 0; ; i++ {
		next := cur[i]
		b.run(int(next-pos), color)
		if next >= w {
			return
		}
		pos = next
		color ^= 1
	}
}

// code2D writes one row coded against the reference row (T.4 §4.2.1.3),
// choosing modes exactly as libtiff does.
func code2D(b *bitWriter, cur, ref []int32, width int) {
	w := int32(width)
	a0 := int32(0)
	start := true
	color := 0
	ai, k := 0, 0
	for {
		a1 := cur[ai]
		idx := k
		if idx&1 != color {
			idx++
		}
		b1, b2 := ref[idx], ref[idx+1]
		if b2 >= a1 {
			d := b1 - a1
			if d >= -3 && d <= 3 {
				b.code(codeVert[3-d]) // d = b1 - a1; codeVert is indexed by a1 - b1 + 3
				a0 = a1
				color ^= 1
				ai++
			} else {
				a2 := cur[ai+1]
				b.code(codeHoriz)
				if start {
					a0 = 0
				}
				b.run(int(a1-a0), color)
				b.run(int(a2-a1), color^1)
				a0 = a2
				ai += 2
			}
		} else {
			b.code(codePass)
			a0 = b2
		}
		start = false
		if a0 >= w {
			return
		}
		for ref[k] <= a0 {
			k++
		}
	}
}

// Close ends the page: fill for the last line, RTC or EOFB when asked, and
// zero bits up to a byte boundary; then writes what is held.
func (e *Encoder) Close() error {
	if e.err != nil {
		return e.err
	}
	if e.closed {
		return nil
	}
	e.closed = true
	best := e.streams[0]
	for _, s := range e.streams {
		e.finish(s)
		if s.bw.total() < best.bw.total() {
			best = s
		}
	}
	e.used = best.enc
	out := best.bw.takeBytes()
	err := e.write(out)
	if len(e.streams) == 1 {
		putBuf(out) // Write does not keep it (io.Writer)
	}
	return err
}

// bufPool keeps the output buffers of single-coding encoders from page to
// page: one page after another allocates nothing for them.
var bufPool sync.Pool // of *[]byte

func getBuf(size int) []byte {
	if p, ok := bufPool.Get().(*[]byte); ok && cap(*p) >= size {
		return (*p)[:0]
	}
	return make([]byte, 0, size)
}

func putBuf(b []byte) {
	if cap(b) <= 1<<20 {
		b = b[:0]
		bufPool.Put(&b)
	}
}

func (e *Encoder) finish(s *stream) {
	b := &s.bw
	switch s.enc {
	case MH, MR:
		if e.opts.EndOfPage {
			tag := -1
			if s.enc == MR {
				tag = 1
			}
			for i := 0; i < 6; i++ {
				e.eol(s, tag, i == 0)
			}
		} else if s.started && e.opts.MinLineBits > 0 {
			if need := int64(s.lineStart) + int64(e.opts.MinLineBits) - int64(b.total()); need > 0 {
				b.zeros(int(need))
			}
		}
	case MMR:
		if e.opts.EndOfPage {
			b.put(eolCode, eolLen)
			b.put(eolCode, eolLen)
		}
	}
	b.flush()
}

// EncodePage codes height rows given by rows(y) and returns the encoding
// used (which differs from opts.Encoding only with AutoMH).
func EncodePage(w io.Writer, width int, rows func(y int) []byte, height int, opts Options) (Encoding, error) {
	e := NewEncoder(w, width, opts)
	for y := 0; y < height; y++ {
		if err := e.WriteRow(rows(y)); err != nil {
			return opts.Encoding, err
		}
	}
	err := e.Close()
	return e.Encoding(), err
}

var reversed = func() (t [256]byte) {
	for i := range t {
		t[i] = bits.Reverse8(byte(i))
	}
	return
}()

func reverseBytes(p []byte) {
	for i, v := range p {
		p[i] = reversed[v]
	}
}
