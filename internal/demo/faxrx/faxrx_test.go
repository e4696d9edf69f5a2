package faxrx

import (
	"context"
	"image/png"
	"os"
	"testing"
	"time"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
)

// TestReceivesWhatTheDriverSends sends a two-page text fax through the real
// faxmodem driver to the receiver on its pty and compares every received
// page, in the TIFF and the PNG, pel for pel with the rendered page.
func TestReceivesWhatTheDriverSends(t *testing.T) {
	for _, res := range []string{"fine", "standard"} {
		t.Run(res, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			got := make(chan Page, 4)
			rx, err := Start(ctx, Options{Dir: t.TempDir(), OnPage: func(p Page) { got <- p }})
			if err != nil {
				t.Fatal(err)
			}
			drv := faxmodem.NewWith("fax", faxmodem.Options{
				Devices:    []faxmodem.DeviceConfig{{Device: rx.Device, Class: "1", Flow: "none"}},
				LocalID:    "+1 555 0001",
				Resolution: res,
				Dial:       faxmodem.DialPlan{Region: "US"},
			}, nil)
			text := "Line one of the test fax.\n"
			for i := 0; i < 90; i++ {
				text += "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n"
			}
			job := &linedriver.Job{ID: "j1", Driver: "fax", Attempt: 1, Record: linedriver.Record{
				Fields:    map[string]string{"fax_number": "+12015550100"},
				Documents: []linedriver.Document{{Name: "a.txt", MediaType: "text/plain", Data: []byte(text)}},
			}}
			want, err := drv.Render(ctx, job)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) < 2 {
				t.Fatalf("rendered %d pages, want 2 or more", len(want))
			}
			if o := drv.Deliver(ctx, job, nil); o.Result != linedriver.Delivered {
				t.Fatalf("deliver: %+v", o)
			}
			pages := rx.Pages()
			if len(pages) != len(want) {
				t.Fatalf("received %d pages, want %d", len(pages), len(want))
			}
			for i, p := range pages {
				if p.Err != nil || p.Call != 1 || p.Page != i+1 || p.Number != "12015550100" || p.TSI != "+1 555 0001" {
					t.Fatalf("page %d: %+v", i+1, p)
				}
				if p.Ink <= 0.001 {
					t.Errorf("page %d: ink %.4f, want text", i+1, p.Ink)
				}
				checkFiles(t, p, want[i], res == "fine")
			}
			<-got
		})
	}
}

func checkFiles(t *testing.T, p Page, want *render.Page, fine bool) {
	t.Helper()
	// The sender halves a fine page for a standard-only call; here the
	// call runs at the configured resolution, so rows match one to one.
	b, err := os.ReadFile(p.TIFF)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := faxtiff.Read(b, faxtiff.Limits{})
	if err != nil || len(frames) != 1 || frames[0].Bitmap == nil {
		t.Fatalf("%s: %v (%d frames)", p.TIFF, err, len(frames))
	}
	bm := frames[0].Bitmap
	if bm.Width != want.Width || bm.Height != want.Height {
		t.Fatalf("%s: %dx%d, want %dx%d", p.TIFF, bm.Width, bm.Height, want.Width, want.Height)
	}
	for y := 0; y < bm.Height; y++ {
		if string(bm.Row(y)) != string(want.Row(y)) {
			t.Fatalf("%s: row %d differs from the rendered page", p.TIFF, y)
		}
	}
	f, err := os.Open(p.PNG)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	rep := 2
	if fine {
		rep = 1
	}
	if img.Bounds().Dx() != Width || img.Bounds().Dy() != want.Height*rep {
		t.Fatalf("%s: %v, want %dx%d", p.PNG, img.Bounds(), Width, want.Height*rep)
	}
	for y := 0; y < want.Height; y++ {
		row := want.Row(y)
		for x := 0; x < Width; x++ {
			black := row[x>>3]&(0x80>>(x&7)) != 0
			r, _, _, _ := img.At(x, y*rep+rep-1).RGBA()
			if black != (r == 0) {
				t.Fatalf("%s: pel %d,%d differs from the rendered page", p.PNG, x, y)
			}
		}
	}
}

func TestInk(t *testing.T) {
	for _, tc := range []struct {
		rows [][]byte
		want float64
	}{
		{nil, 0},
		{[][]byte{{0, 0}}, 0},
		{[][]byte{{0xff, 0}}, 0.5},
		{[][]byte{{0x81, 0x01}, {0, 0}}, 3.0 / 32},
	} {
		if got := Ink(tc.rows); got != tc.want {
			t.Errorf("Ink(%v) = %v, want %v", tc.rows, got, tc.want)
		}
	}
}
