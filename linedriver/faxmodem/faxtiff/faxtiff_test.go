package faxtiff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4/t4test"
)

func testPages(t *testing.T) []*Bitmap {
	var out []*Bitmap
	r := rand.New(rand.NewPCG(1, 1))
	for i, yres := range []float64{196, 98, 196} {
		b := &Bitmap{Width: 1728, Height: 300 + 50*i, Stride: 216, XRes: 204, YRes: yres}
		b.Pix = make([]byte, b.Stride*b.Height)
		for y := 0; y < b.Height; y++ {
			for x := r.IntN(200); x < 1728; x += 30 + r.IntN(300) {
				n := 1 + r.IntN(40)
				for k := x; k < min(x+n, 1728); k++ {
					b.Pix[y*216+k/8] |= 0x80 >> uint(k%8)
				}
			}
		}
		out = append(out, b)
	}
	return out
}

func same(a, b *Bitmap) bool {
	return t4test.Equal(&t4test.Bitmap{W: a.Width, H: a.Height, Stride: a.Stride, Pix: a.Pix},
		&t4test.Bitmap{W: b.Width, H: b.Height, Stride: b.Stride, Pix: b.Pix}) == -1
}

func write(t *testing.T, pages []*Bitmap, e t4.Encoding) []byte {
	var buf bytes.Buffer
	w := NewWriter(&buf, Options{Encoding: e})
	for _, p := range pages {
		if err := w.WritePage(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestClassF: libtiff reads our multi-page files to the same pixels, and we
// read libtiff's G3/G4 files (either bit order) back.
func TestClassF(t *testing.T) {
	tiffcp := testenv.LookPath(t, "tiffcp")
	tiffinfo := testenv.LookPath(t, "tiffinfo")
	pages := testPages(t)
	for _, e := range []t4.Encoding{t4.MH, t4.MR, t4.MMR} {
		t.Run(e.String(), func(t *testing.T) {
			dir := t.TempDir()
			ours := filepath.Join(dir, "ours.tif")
			if err := os.WriteFile(ours, write(t, pages, e), 0o644); err != nil {
				t.Fatal(err)
			}
			info, err := exec.Command(tiffinfo, ours).CombinedOutput()
			if err != nil || strings.Contains(string(info), "rror") {
				t.Fatalf("tiffinfo: %v\n%s", err, info)
			}
			if n := strings.Count(string(info), "TIFF Directory"); n != len(pages) {
				t.Fatalf("tiffinfo sees %d pages, want %d", n, len(pages))
			}
			// libtiff decodes ours: uncompressed copy, read back.
			for _, c := range [][]string{
				{"-c", "none", "-f", "msb2lsb"},
				{"-c", "g4", "-f", "lsb2msb"},
				{"-c", "g3:2d:fill", "-f", "lsb2msb"},
				{"-c", "g3:1d", "-r", "17"}, // many strips
				{"-c", "packbits"},
			} {
				out := filepath.Join(dir, "cp.tif")
				if msg, err := exec.Command(tiffcp, append(c, ours, out)...).CombinedOutput(); err != nil {
					t.Fatalf("tiffcp %v: %v\n%s", c, err, msg)
				}
				data, _ := os.ReadFile(out)
				frames, err := Read(data, Limits{})
				if err != nil {
					t.Fatalf("tiffcp %v: read: %v", c, err)
				}
				if len(frames) != len(pages) {
					t.Fatalf("tiffcp %v: %d frames", c, len(frames))
				}
				for i, f := range frames {
					if f.Bitmap == nil || !same(f.Bitmap, pages[i]) {
						t.Fatalf("tiffcp %v: page %d differs", c, i+1)
					}
					if f.Bitmap.YRes != pages[i].YRes || f.Bitmap.XRes != 204 {
						t.Errorf("page %d resolution %gx%g, want 204x%g", i+1, f.Bitmap.XRes, f.Bitmap.YRes, pages[i].YRes)
					}
				}
			}
		})
	}
}

func TestReadColorPages(t *testing.T) {
	tiffcp := testenv.LookPath(t, "tiffcp")
	pnm := testenv.LookPath(t, "ppmmake")
	dir := t.TempDir()
	var files []string
	for i, color := range []string{"red", "blue"} {
		ppm, _ := exec.Command(pnm, color, "40", "30").Output()
		f := filepath.Join(dir, fmt.Sprintf("%d.ppm", i))
		os.WriteFile(f, ppm, 0o644)
		tif := filepath.Join(dir, fmt.Sprintf("%d.tif", i))
		if msg, err := exec.Command(testenv.LookPath(t, "pnmtotiff"), f).Output(); err != nil {
			t.Fatalf("pnmtotiff: %v %s", err, msg)
		} else {
			os.WriteFile(tif, msg, 0o644)
		}
		files = append(files, tif)
	}
	out := filepath.Join(dir, "multi.tif")
	if msg, err := exec.Command(tiffcp, append(files, out)...).CombinedOutput(); err != nil {
		t.Fatalf("tiffcp: %v %s", err, msg)
	}
	data, _ := os.ReadFile(out)
	frames, err := Read(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 2 || frames[0].Image == nil || frames[1].Image == nil {
		t.Fatalf("frames %+v", frames)
	}
	r0, _, b0, _ := frames[0].Image.At(5, 5).RGBA()
	r1, _, b1, _ := frames[1].Image.At(5, 5).RGBA()
	if r0 < 0xf000 || b0 > 0x1000 || b1 < 0xf000 || r1 > 0x1000 {
		t.Errorf("colours: page 1 r=%x b=%x, page 2 r=%x b=%x", r0, b0, r1, b1)
	}
}

// hostile builds a TIFF whose IFD chain has n tiny pages (or loops).
func hostile(n int, loop bool) []byte {
	le := binary.LittleEndian
	buf := []byte{'I', 'I', 42, 0, 8, 0, 0, 0}
	for i := 0; i < n; i++ {
		off := len(buf)
		buf = le.AppendUint16(buf, 2)
		buf = le.AppendUint16(buf, 256)
		buf = le.AppendUint16(buf, 4)
		buf = le.AppendUint32(buf, 1)
		buf = le.AppendUint32(buf, 8)
		buf = le.AppendUint16(buf, 257)
		buf = le.AppendUint16(buf, 4)
		buf = le.AppendUint32(buf, 1)
		buf = le.AppendUint32(buf, 8)
		next := uint32(off + 2 + 24 + 4)
		if i == n-1 {
			next = 0
			if loop {
				next = 8
			}
		}
		buf = le.AppendUint32(buf, next)
	}
	return buf
}

func TestHostile(t *testing.T) {
	if _, err := Read(hostile(100000, false), Limits{}); !errors.Is(err, ErrLimit) {
		t.Errorf("100000 pages: %v, want ErrLimit", err)
	}
	if n, err := Count(hostile(100000, false), 1000); !errors.Is(err, ErrLimit) || n != 0 {
		t.Errorf("Count: %d %v", n, err)
	}
	if _, err := Read(hostile(5, true), Limits{}); !errors.Is(err, ErrFormat) {
		t.Errorf("loop: %v, want ErrFormat", err)
	}
	big := hostile(1, false)
	binary.LittleEndian.PutUint32(big[8+2+8:], 60000)
	binary.LittleEndian.PutUint32(big[8+2+12+8:], 60000)
	if _, err := Read(big, Limits{}); !errors.Is(err, ErrLimit) {
		t.Errorf("60000x60000: %v, want ErrLimit", err)
	}
	for _, bad := range [][]byte{nil, []byte("II*\x00\xff\xff\xff\xff"), []byte("MM\x00+\x00\x00\x00\x08")} {
		if _, err := Read(bad, Limits{}); err == nil {
			t.Errorf("% x accepted", bad)
		}
	}
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	w := NewWriter(&buf, Options{Encoding: t4.MR})
	b := &Bitmap{Width: 64, Height: 4, Stride: 8, Pix: bytes.Repeat([]byte{0xf0, 0x0f}, 16), XRes: 204, YRes: 98}
	w.WritePage(b)
	w.WritePage(b)
	w.Close()
	f.Add(buf.Bytes())
	f.Add(hostile(3, false))
	f.Fuzz(func(t *testing.T, data []byte) {
		Read(data, Limits{MaxPages: 10, MaxPixels: 1 << 20})
	})
}

// TestStripByteCounts: each page's StripByteCounts is the length of its
// coded data, without the byte that pads an odd strip to the IFD's word
// boundary.
func TestStripByteCounts(t *testing.T) {
	pages := testPages(t)
	for _, e := range []t4.Encoding{t4.MH, t4.MR, t4.MMR} {
		t.Run(e.String(), func(t *testing.T) {
			data := write(t, pages, e)
			le := binary.LittleEndian
			off := le.Uint32(data[4:])
			odd := 0
			for i, p := range pages {
				if off == 0 {
					t.Fatalf("%d IFDs, want %d", i, len(pages))
				}
				k := 4
				if p.YRes <= 150 {
					k = 2
				}
				var coded bytes.Buffer
				if _, err := t4.EncodePage(&coded, p.Width, p.Row, p.Height, t4.Options{Encoding: e, K: k, EndOfPage: e == t4.MMR}); err != nil {
					t.Fatal(err)
				}
				odd += coded.Len() % 2
				n := int(le.Uint16(data[off:]))
				var count, start uint32
				for j := 0; j < n; j++ {
					ent := data[int(off)+2+12*j:]
					switch le.Uint16(ent) {
					case 279:
						count = le.Uint32(ent[8:])
					case 273:
						start = le.Uint32(ent[8:])
					}
				}
				if int(count) != coded.Len() {
					t.Errorf("page %d: StripByteCounts %d, coded data %d bytes", i+1, count, coded.Len())
				}
				if !bytes.Equal(data[start:start+count], coded.Bytes()) {
					t.Errorf("page %d: strip is not the coded page", i+1)
				}
				off = le.Uint32(data[int(off)+2+12*n:])
			}
			if odd == 0 {
				t.Fatalf("no page coded to an odd length: the test pages do not exercise the pad")
			}
		})
	}
}
