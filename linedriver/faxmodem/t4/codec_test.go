package t4

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"golang.org/x/image/ccitt"

	"github.com/mediagw/mediagw/linedriver/faxmodem/t4/t4test"
)

func encode(t testing.TB, b *t4test.Bitmap, o Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := EncodePage(&buf, b.W, b.Row, b.H, o); err != nil {
		t.Fatalf("encode %+v: %v", o, err)
	}
	return buf.Bytes()
}

func decode(t testing.TB, data []byte, w int, o Options) *t4test.Bitmap {
	t.Helper()
	rows, err := DecodePage(bytes.NewReader(data), w, o, 1<<20)
	if err != nil {
		t.Fatalf("decode %+v: %v", o, err)
	}
	b := &t4test.Bitmap{W: w, H: len(rows), Stride: (w + 7) / 8}
	for _, r := range rows {
		b.Pix = append(b.Pix, r...)
	}
	return b
}

// TestLibtiffByteExact: our streams equal tiffcp's for the CCITT pages. tiffcp
// writes no RTC for G3 and ends G4 with EOFB.
func TestLibtiffByteExact(t *testing.T) {
	pages := t4test.CCITT(t)
	modes := []struct {
		scheme string
		yres   int
		opts   Options
	}{
		{"g3:1d", 196, Options{Encoding: MH}},
		{"g3:2d", 98, Options{Encoding: MR, K: 2}},
		{"g3:2d", 196, Options{Encoding: MR, K: 4}},
		{"g4", 196, Options{Encoding: MMR, EndOfPage: true}},
	}
	for i, p := range pages {
		for _, m := range modes {
			t.Run(fmt.Sprintf("ccitt%d/%v-K%d", i+1, m.opts.Encoding, m.opts.K), func(t *testing.T) {
				t.Parallel()
				want := t4test.LibtiffEncode(t, p, m.scheme, m.yres)
				got := encode(t, p, m.opts)
				if !bytes.Equal(got, want) {
					n := 0
					for n < len(got) && n < len(want) && got[n] == want[n] {
						n++
					}
					t.Fatalf("differs from libtiff at byte %d (ours %d bytes, libtiff %d)", n, len(got), len(want))
				}
				// And our decoder reads libtiff's stream back to the pixels.
				if y := t4test.Equal(decode(t, want, p.W, m.opts), p); y != -1 {
					t.Fatalf("decoding libtiff's stream differs at row %d", y)
				}
			})
		}
	}
}

// TestFax2TIFF: libtiff decodes every framing variant we write to the same
// pixels.
func TestFax2TIFF(t *testing.T) {
	pages := t4test.CCITT(t)
	srcs := []*t4test.Bitmap{pages[0], pages[4], randomPage(rand.New(rand.NewPCG(1, 2)), 1728, 300, 0.5)}
	cases := []struct {
		name string
		opts Options
		args []string
	}{
		{"MH", Options{Encoding: MH, EndOfPage: true}, []string{"-1", "-M"}},
		{"MH-lsb-aligned", Options{Encoding: MH, EndOfPage: true, LSBFirst: true, AlignEOL: true}, []string{"-1", "-L", "-A"}},
		{"MH-fill", Options{Encoding: MH, EndOfPage: true, MinLineBits: 14400 * 20 / 1000}, []string{"-1", "-M"}},
		{"MR-K2", Options{Encoding: MR, K: 2, EndOfPage: true}, []string{"-2", "-M"}},
		{"MR-K4-lsb-fill", Options{Encoding: MR, K: 4, EndOfPage: true, LSBFirst: true, MinLineBits: 9600 * 10 / 1000}, []string{"-2", "-L"}},
		{"MR-aligned", Options{Encoding: MR, K: 4, EndOfPage: true, AlignEOL: true}, []string{"-2", "-M", "-A"}},
		{"MMR", Options{Encoding: MMR, EndOfPage: true}, []string{"-4", "-M"}},
		{"MMR-lsb", Options{Encoding: MMR, EndOfPage: true, LSBFirst: true}, []string{"-4", "-L"}},
	}
	for si, src := range srcs {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%d/%s", si, c.name), func(t *testing.T) {
				t.Parallel()
				data := encode(t, src, c.opts)
				got := t4test.Fax2TIFF(t, data, src.W, c.args...)
				// fax2tiff counts the end of page as rows: 5 for RTC
				// (EOLs after the first), 1 for EOFB.
				if extra := map[bool]int{false: 5, true: 1}[c.opts.Encoding == MMR]; got.H == src.H+extra {
					got.H = src.H
				}
				if y := t4test.Equal(got, src); y != -1 {
					t.Fatalf("fax2tiff read %dx%d, differs from source %dx%d at row %d", got.W, got.H, src.W, src.H, y)
				}
				if y := t4test.Equal(decode(t, data, src.W, c.opts), src); y != -1 {
					t.Fatalf("our decoder differs at row %d", y)
				}
			})
		}
	}
}

// TestXImageCCITT: golang.org/x/image/ccitt reads our MH and MMR.
func TestXImageCCITT(t *testing.T) {
	srcs := []*t4test.Bitmap{randomPage(rand.New(rand.NewPCG(3, 4)), 1728, 200, 0.3), stripes(1728, 64)}
	if pages := t4test.CCITT(t); len(pages) > 0 {
		srcs = append(srcs, pages[1], pages[6])
	}
	for i, src := range srcs {
		for _, c := range []struct {
			opts Options
			sf   ccitt.SubFormat
		}{{Options{Encoding: MH}, ccitt.Group3}, {Options{Encoding: MMR}, ccitt.Group4}} {
			data := encode(t, src, c.opts)
			r := ccitt.NewReader(bytes.NewReader(data), ccitt.MSB, c.sf, src.W, src.H, &ccitt.Options{Invert: true})
			pix, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("page %d %v: x/image/ccitt: %v", i, c.opts.Encoding, err)
			}
			got := &t4test.Bitmap{W: src.W, H: src.H, Stride: src.Stride, Pix: pix}
			if len(pix) != len(src.Pix) {
				t.Fatalf("page %d %v: x/image/ccitt gave %d bytes, want %d", i, c.opts.Encoding, len(pix), len(src.Pix))
			}
			if y := t4test.Equal(got, src); y != -1 {
				t.Fatalf("page %d %v: x/image/ccitt differs at row %d", i, c.opts.Encoding, y)
			}
		}
	}
}

func randomPage(r *rand.Rand, w, h int, density float64) *t4test.Bitmap {
	b := &t4test.Bitmap{W: w, H: h, Stride: (w + 7) / 8}
	b.Pix = make([]byte, b.Stride*h)
	for y := 0; y < h; y++ {
		row := b.Row(y)
		// Mix of noise, long runs and copies of the previous row.
		switch r.IntN(4) {
		case 0:
			for x := 0; x < w; x++ {
				if r.Float64() < density {
					row[x/8] |= 0x80 >> uint(x%8)
				}
			}
		case 1:
			for x := 0; x < w; {
				n := 1 + r.IntN(3000)
				if r.IntN(2) == 0 {
					setBits(row, x, min(x+n, w))
				}
				x += n
			}
		case 2:
			if y > 0 {
				copy(row, b.Row(y-1))
				x := r.IntN(w)
				row[x/8] ^= 0x80 >> uint(x%8)
			}
		}
	}
	return b
}

func stripes(w, h int) *t4test.Bitmap {
	b := &t4test.Bitmap{W: w, H: h, Stride: (w + 7) / 8}
	b.Pix = make([]byte, b.Stride*h)
	for y := 0; y < h; y++ {
		for i := range b.Row(y) {
			b.Row(y)[i] = [4]byte{0xaa, 0x55, 0xff, 0x0f}[(y+i)%4]
		}
	}
	return b
}

var allOptions = []Options{
	{Encoding: MH},
	{Encoding: MH, EndOfPage: true, AlignEOL: true, LSBFirst: true},
	{Encoding: MH, EndOfPage: true, MinLineBits: 500},
	{Encoding: MR, K: 1, EndOfPage: true},
	{Encoding: MR, K: 2},
	{Encoding: MR, K: 4, EndOfPage: true, AlignEOL: true, MinLineBits: 96},
	{Encoding: MMR},
	{Encoding: MMR, EndOfPage: true, LSBFirst: true},
	{Encoding: MMR, EndOfPage: true, AutoMH: true},
}

// TestRoundTrip: adversarial and random pages decode to the pixels encoded.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var pages []*t4test.Bitmap
	for _, w := range []int{1, 2, 7, 8, 9, 63, 64, 65, 1728, 2623, 2624, 2625, 5300} {
		pages = append(pages, randomPage(r, w, 40, 0.5), stripes(w, 5))
		solid := &t4test.Bitmap{W: w, H: 3, Stride: (w + 7) / 8}
		solid.Pix = bytes.Repeat([]byte{0xff}, solid.Stride*3)
		pages = append(pages, solid)
	}
	for i, p := range pages {
		for _, o := range allOptions {
			var buf bytes.Buffer
			enc, err := EncodePage(&buf, p.W, p.Row, p.H, o)
			if err != nil {
				t.Fatal(err)
			}
			o.Encoding = enc
			got := decode(t, buf.Bytes(), p.W, o)
			if y := t4test.Equal(got, p); y != -1 {
				t.Fatalf("page %d (%dx%d) %+v: round trip differs at row %d (got %d rows)", i, p.W, p.H, o, y, got.H)
			}
		}
	}
}

// TestFraming checks fill and alignment bit by bit.
func TestFraming(t *testing.T) {
	p := randomPage(rand.New(rand.NewPCG(7, 8)), 1728, 100, 0.01)
	for _, o := range []Options{
		{Encoding: MH, MinLineBits: 1440, EndOfPage: true},
		{Encoding: MR, K: 4, MinLineBits: 288, AlignEOL: true, EndOfPage: true},
		{Encoding: MH, AlignEOL: true, EndOfPage: true},
	} {
		data := encode(t, p, o)
		// Find the EOLs: eleven or more zero bits then a one.
		var eols []int
		zeros := 0
		for i := 0; i < len(data)*8; i++ {
			if data[i/8]&(0x80>>uint(i%8)) == 0 {
				zeros++
				continue
			}
			if zeros >= 11 {
				eols = append(eols, i+1) // bit just after the EOL
			}
			zeros = 0
		}
		if want := p.H + 6; len(eols) != want {
			t.Fatalf("%+v: %d EOLs, want %d", o, len(eols), want)
		}
		for i := 0; i+1 < p.H+1; i++ {
			if o.MinLineBits > 0 {
				if n := eols[i+1] - eols[i]; n < o.MinLineBits {
					t.Errorf("%+v: line %d has %d bits, want >= %d", o, i, n, o.MinLineBits)
				}
			}
			if o.AlignEOL && i < p.H+1 && eols[i]%8 != 0 {
				t.Errorf("%+v: EOL %d ends at bit %d, not on a byte boundary", o, i, eols[i])
			}
		}
		for i := p.H + 1; i < len(eols); i++ { // RTC: consecutive EOLs
			extra := 0
			if o.Encoding == MR {
				extra = 1
			}
			if eols[i]-eols[i-1] != 12+extra {
				t.Errorf("%+v: RTC EOL %d is %d bits after the one before", o, i-p.H, eols[i]-eols[i-1])
			}
		}
	}
}

// TestAutoMH: a dithered photo stays MH, a text page keeps 2-D coding.
func TestAutoMH(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	photo := &t4test.Bitmap{W: 1728, H: 200, Stride: 216}
	photo.Pix = make([]byte, 216*200)
	for i := range photo.Pix {
		photo.Pix[i] = byte(r.Uint32())
	}
	text := &t4test.Bitmap{W: 1728, H: 200, Stride: 216}
	text.Pix = make([]byte, 216*200)
	for y := 20; y < 180; y++ { // letter-like blocks that repeat from row to row
		for x := 100; x < 1600; x += 40 {
			if (y/30+x/40)%3 != 0 {
				setBits(text.Row(y), x, x+12+(y%30)/3)
			}
		}
	}
	for _, c := range []struct {
		b    *t4test.Bitmap
		req  Encoding
		want Encoding
	}{{photo, MR, MH}, {photo, MMR, MH}, {text, MMR, MMR}, {text, MR, MR}} {
		var auto, plain, mh bytes.Buffer
		got, err := EncodePage(&auto, c.b.W, c.b.Row, c.b.H, Options{Encoding: c.req, K: 4, AutoMH: true})
		if err != nil {
			t.Fatal(err)
		}
		EncodePage(&plain, c.b.W, c.b.Row, c.b.H, Options{Encoding: c.req, K: 4})
		EncodePage(&mh, c.b.W, c.b.Row, c.b.H, Options{Encoding: MH})
		if got != c.want {
			t.Errorf("AutoMH with %v chose %v (MH %d B, %v %d B), want %v", c.req, got, mh.Len(), c.req, plain.Len(), c.want)
		}
		if wantBytes := map[Encoding][]byte{MH: mh.Bytes(), c.req: plain.Bytes()}[got]; !bytes.Equal(auto.Bytes(), wantBytes) {
			t.Errorf("AutoMH output is not the %v coding", got)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	for _, c := range []struct {
		w int
		o Options
	}{{0, Options{}}, {MaxWidth + 1, Options{}}, {1728, Options{Encoding: MR}}, {1728, Options{Encoding: 7}}, {1728, Options{MinLineBits: -1}}} {
		if _, err := EncodePage(io.Discard, c.w, func(int) []byte { return make([]byte, 216) }, 1, c.o); !errors.Is(err, ErrOptions) {
			t.Errorf("width %d %+v: err %v, want ErrOptions", c.w, c.o, err)
		}
	}
	if err := NewEncoder(io.Discard, 1728, Options{}).WriteRow(make([]byte, 10)); err == nil {
		t.Error("short row accepted")
	}
}

// TestDecodeGarbage: random data ends in an error or EOF, never a panic, and
// the row limit holds.
func TestDecodeGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 300; i++ {
		data := make([]byte, r.IntN(2000))
		for j := range data {
			data[j] = byte(r.Uint32())
			if r.IntN(3) == 0 {
				data[j] = 0
			}
		}
		for _, o := range allOptions {
			rows, err := DecodePage(bytes.NewReader(data), 64+r.IntN(2000), o, 50)
			if len(rows) > 50 {
				t.Fatalf("%d rows past the limit", len(rows))
			}
			_ = err
		}
	}
	// Known-bad streams give ErrInvalid.
	for _, c := range []struct {
		data []byte
		o    Options
	}{
		{[]byte{0x00, 0x10, 0x08, 0x00}, Options{Encoding: MH}},       // EOL then an invalid white code
		{[]byte{0x00, 0x10, 0x04, 0x00}, Options{Encoding: MR, K: 2}}, // EOL, 2-D tag, then bad mode
		{[]byte{0x02, 0x00, 0x00, 0x00}, Options{Encoding: MMR}},      // extension code
	} {
		if _, err := DecodePage(bytes.NewReader(c.data), 1728, c.o, 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("% x %v: err %v, want ErrInvalid", c.data, c.o.Encoding, err)
		}
	}
	// Row limit.
	p := stripes(64, 30)
	if _, err := DecodePage(bytes.NewReader(encode(t, p, Options{Encoding: MH})), 64, Options{Encoding: MH}, 10); !errors.Is(err, ErrTooManyRows) {
		t.Errorf("row limit: err %v", err)
	}
}

// FuzzRoundTrip: any pixels survive encode → decode in every mode.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint16(1728), []byte{0xff, 0x00, 0xaa})
	f.Add(uint16(9), []byte{0x80, 0x01, 0x7f, 0xfe})
	f.Add(uint16(2625), bytes.Repeat([]byte{0xf0}, 700))
	f.Fuzz(func(t *testing.T, w16 uint16, pix []byte) {
		w := int(w16%3000) + 1
		stride := (w + 7) / 8
		h := len(pix) / stride
		if h == 0 || h > 64 {
			return
		}
		p := &t4test.Bitmap{W: w, H: h, Stride: stride, Pix: pix[:h*stride]}
		for _, o := range allOptions {
			var buf bytes.Buffer
			enc, err := EncodePage(&buf, w, p.Row, h, o)
			if err != nil {
				t.Fatal(err)
			}
			o.Encoding = enc
			got := decode(t, buf.Bytes(), w, o)
			if y := t4test.Equal(got, p); y != -1 {
				t.Fatalf("%dx%d %+v: differs at row %d", w, h, o, y)
			}
		}
	})
}

// FuzzDecode: the decoder never panics and stays within its row limit.
func FuzzDecode(f *testing.F) {
	f.Add(uint16(1728), byte(0), []byte{0x00, 0x1f, 0xff, 0xff})
	f.Add(uint16(64), byte(2), []byte{0x26, 0x80})
	f.Add(uint16(1728), byte(1), encodeSeed(MR))
	f.Add(uint16(1728), byte(2), encodeSeed(MMR))
	f.Fuzz(func(t *testing.T, w16 uint16, mode byte, data []byte) {
		w := int(w16%5000) + 1
		o := Options{Encoding: Encoding(mode % 3), LSBFirst: mode&4 != 0}
		rows, err := DecodePage(bytes.NewReader(data), w, o, 100)
		if len(rows) > 100 {
			t.Fatalf("%d rows", len(rows))
		}
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrTooManyRows) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

func encodeSeed(e Encoding) []byte {
	p := stripes(1728, 4)
	var buf bytes.Buffer
	EncodePage(&buf, p.W, p.Row, p.H, Options{Encoding: e, K: 2, EndOfPage: true})
	return buf.Bytes()
}

// TestMHFastPath: the one-pass MH coder writes the same bits as coding the
// row's changing elements, for every width the round trip uses and runs
// past the longest make-up code.
func TestMHFastPath(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, w := range []int{1, 7, 8, 9, 63, 64, 65, 1728, 2623, 2624, 2625, 5300, 9000} {
		white := &t4test.Bitmap{W: w, H: 2, Stride: (w + 7) / 8}
		white.Pix = make([]byte, 2*white.Stride)
		for _, p := range []*t4test.Bitmap{randomPage(r, w, 30, 0.5), randomPage(r, w, 30, 0.02), stripes(w, 4), white} {
			var fast, ref bitWriter
			var cur []int32
			for y := 0; y < p.H; y++ {
				codeMHRow(&fast, p.Row(y), w)
				cur = changes(cur[:0], p.Row(y), w)
				code1D(&ref, cur, w)
			}
			fast.flush()
			ref.flush()
			if !bytes.Equal(fast.buf, ref.buf) {
				t.Fatalf("width %d: one-pass MH differs from code1D", w)
			}
		}
	}
}
