// Package t4test holds test helpers shared by the fax imaging packages: PBM
// and minimal TIFF handling, the CCITT test pages and libtiff as a reference
// codec.
package t4test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/mediagw/mediagw/internal/testenv"
)

// Bitmap is a bilevel image: 1 bit per pixel, MSB first, 1 = black.
type Bitmap struct {
	W, H, Stride int
	Pix          []byte
}

// Row returns row y.
func (b *Bitmap) Row(y int) []byte { return b.Pix[y*b.Stride : (y+1)*b.Stride] }

// ReadPBM parses a binary PBM (P4).
func ReadPBM(data []byte) (*Bitmap, error) {
	r := bufio.NewReader(bytes.NewReader(data))
	var fields []int
	magic := make([]byte, 2)
	if _, err := r.Read(magic); err != nil || string(magic) != "P4" {
		return nil, fmt.Errorf("not a P4 PBM")
	}
	for len(fields) < 2 {
		c, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		switch {
		case c == '#':
			r.ReadString('\n')
		case c >= '0' && c <= '9':
			s := []byte{c}
			for {
				c, err = r.ReadByte()
				if err != nil || c < '0' || c > '9' {
					break
				}
				s = append(s, c)
			}
			n, _ := strconv.Atoi(string(s))
			fields = append(fields, n)
		}
	}
	b := &Bitmap{W: fields[0], H: fields[1], Stride: (fields[0] + 7) / 8}
	b.Pix = make([]byte, b.Stride*b.H)
	if _, err := io.ReadFull(r, b.Pix); err != nil {
		return nil, err
	}
	return b, nil
}

// RawTIFF returns a one-strip uncompressed min-is-white bilevel TIFF.
func RawTIFF(b *Bitmap, yres int) []byte {
	var buf bytes.Buffer
	le := binary.LittleEndian
	hdr := make([]byte, 8)
	copy(hdr, "II")
	le.PutUint16(hdr[2:], 42)
	le.PutUint32(hdr[4:], 8)
	buf.Write(hdr)
	type ent struct {
		tag, typ uint16
		val      uint32
	}
	dataOff := uint32(8 + 2 + 12*12 + 4 + 16)
	ents := []ent{
		{256, 4, uint32(b.W)}, {257, 4, uint32(b.H)}, {258, 3, 1}, {259, 3, 1}, {262, 3, 0},
		{273, 4, dataOff}, {277, 3, 1}, {278, 4, uint32(b.H)}, {279, 4, uint32(len(b.Pix))},
		{282, 5, 8 + 2 + 12*12 + 4}, {283, 5, 8 + 2 + 12*12 + 4 + 8}, {296, 3, 2},
	}
	binary.Write(&buf, le, uint16(len(ents)))
	for _, e := range ents {
		binary.Write(&buf, le, e.tag)
		binary.Write(&buf, le, e.typ)
		binary.Write(&buf, le, uint32(1))
		binary.Write(&buf, le, e.val)
	}
	binary.Write(&buf, le, uint32(0))
	binary.Write(&buf, le, []uint32{204, 1, uint32(yres), 1})
	buf.Write(b.Pix)
	return buf.Bytes()
}

// TIFFStrip returns the single strip of the first page of a TIFF and the
// value of a few tags.
func TIFFStrip(data []byte) (strip []byte, tags map[uint16]uint32, err error) {
	var bo binary.ByteOrder = binary.LittleEndian
	if string(data[:2]) == "MM" {
		bo = binary.BigEndian
	}
	off := bo.Uint32(data[4:])
	n := int(bo.Uint16(data[off:]))
	tags = map[uint16]uint32{}
	var offs, counts []uint32
	for i := 0; i < n; i++ {
		e := data[int(off)+2+12*i:]
		tag, typ, cnt := bo.Uint16(e), bo.Uint16(e[2:]), bo.Uint32(e[4:])
		vals := func() []uint32 {
			var out []uint32
			size := map[uint16]uint32{3: 2, 4: 4}[typ]
			p := e[8:]
			if size*cnt > 4 {
				p = data[bo.Uint32(e[8:]):]
			}
			for j := uint32(0); j < cnt; j++ {
				if size == 2 {
					out = append(out, uint32(bo.Uint16(p[2*j:])))
				} else {
					out = append(out, bo.Uint32(p[4*j:]))
				}
			}
			return out
		}
		switch tag {
		case 273:
			offs = vals()
		case 279:
			counts = vals()
		default:
			if typ == 3 {
				tags[tag] = uint32(bo.Uint16(e[8:]))
			} else if typ == 4 {
				tags[tag] = bo.Uint32(e[8:])
			}
		}
	}
	if len(offs) != 1 || len(counts) != 1 {
		return nil, tags, fmt.Errorf("want one strip, got %d", len(offs))
	}
	return data[offs[0] : offs[0]+counts[0]], tags, nil
}

var (
	ccittOnce  sync.Once
	ccittPages []*Bitmap
	ccittErr   error
)

// CCITT returns the eight CCITT test pages (from jbigkit-testdata).
func CCITT(t testing.TB) []*Bitmap {
	t.Helper()
	jbg := testenv.LookPath(t, "jbgtopbm")
	dir := "/usr/share/jbigkit-testdata"
	if d := os.Getenv("CCITT_TESTDATA"); d != "" {
		dir = d
	}
	if _, err := os.Stat(filepath.Join(dir, "ccitt1.jbg")); err != nil {
		testenv.Skip(t, "CCITT test pages not installed (Debian package jbigkit-testdata)")
	}
	ccittOnce.Do(func() {
		for i := 1; i <= 8; i++ {
			out, err := exec.Command(jbg, filepath.Join(dir, fmt.Sprintf("ccitt%d.jbg", i))).Output()
			if err != nil {
				ccittErr = fmt.Errorf("jbgtopbm ccitt%d: %v", i, err)
				return
			}
			b, err := ReadPBM(out)
			if err != nil {
				ccittErr = err
				return
			}
			ccittPages = append(ccittPages, b)
		}
	})
	if ccittErr != nil {
		t.Fatal(ccittErr)
	}
	return ccittPages
}

// LibtiffEncode codes a bitmap with tiffcp -c scheme (g3:1d, g3:2d, g4) in
// one strip and returns the strip.
func LibtiffEncode(t testing.TB, b *Bitmap, scheme string, yres int) []byte {
	t.Helper()
	tiffcp := testenv.LookPath(t, "tiffcp")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.tif"), filepath.Join(dir, "out.tif")
	if err := os.WriteFile(in, RawTIFF(b, yres), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(tiffcp, "-c", scheme, "-r", strconv.Itoa(b.H+1), in, out).CombinedOutput(); err != nil {
		t.Fatalf("tiffcp -c %s: %v\n%s", scheme, err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	strip, _, err := TIFFStrip(data)
	if err != nil {
		t.Fatal(err)
	}
	return strip
}

// Fax2TIFF decodes raw fax data with libtiff's fax2tiff (args select the
// coding: -1/-2/-4, -A, -M/-L) and returns the pixels. fax2tiff counts the
// EOLs of an RTC after the first as (blank) rows.
func Fax2TIFF(t testing.TB, data []byte, width int, args ...string) *Bitmap {
	t.Helper()
	fax2tiff := testenv.LookPath(t, "fax2tiff")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.g3"), filepath.Join(dir, "out.tif")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	g3 := filepath.Join(dir, "g3.tif")
	args = append(args, "-X", strconv.Itoa(width), "-o", g3, in)
	cmd := exec.Command(fax2tiff, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("fax2tiff %v: %v\n%s", args, err, stderr.Bytes())
	}
	if bytes.Contains(stderr.Bytes(), []byte("rror")) || bytes.Contains(stderr.Bytes(), []byte("Bad")) {
		t.Errorf("fax2tiff %v complained: %s", args, stderr.Bytes())
	}
	if msg, err := exec.Command(testenv.LookPath(t, "tiffcp"), "-c", "none", "-f", "msb2lsb", "-r", "1000000", g3, out).CombinedOutput(); err != nil {
		t.Fatalf("tiffcp: %v\n%s", err, msg)
	}
	tif, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	strip, tags, err := TIFFStrip(tif)
	if err != nil {
		t.Fatal(err)
	}
	w, h := int(tags[256]), int(tags[257])
	b := &Bitmap{W: w, H: h, Stride: (w + 7) / 8}
	if len(strip) < b.Stride*h {
		t.Fatalf("fax2tiff: strip of %d bytes for %dx%d", len(strip), w, h)
	}
	b.Pix = strip[:b.Stride*h]
	if tags[262] == 1 { // min-is-black
		for i := range b.Pix {
			b.Pix[i] = ^b.Pix[i]
		}
	}
	return b
}

// Equal reports the first row where two bitmaps differ (ignoring padding
// bits), or -1; a size mismatch is row -2.
func Equal(a, b *Bitmap) int {
	if a.W != b.W || a.H != b.H {
		return -2
	}
	nb := (a.W + 7) / 8
	for y := 0; y < a.H; y++ {
		ra, rb := a.Row(y)[:nb], b.Row(y)[:nb]
		last := byte(0xff << uint((8-a.W%8)%8))
		for i := 0; i < nb; i++ {
			m := byte(0xff)
			if i == nb-1 {
				m = last
			}
			if ra[i]&m != rb[i]&m {
				return y
			}
		}
	}
	return -1
}
