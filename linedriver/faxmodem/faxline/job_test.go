package faxline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem"
)

// tinyPDF writes a one-page PDF with a line of text and a black box.
func tinyPDF() []byte {
	content := "BT /F1 28 Tf 72 760 Td (PDF page over a real fax line) Tj ET\n0 0 0 rg 72 560 220 120 re f\n"
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, x)
	return b.Bytes()
}

// photo is a small grey-scale gradient with a disc (thresholded: a dithered
// photo page takes minutes on the line).
func photo() []byte {
	img := image.NewGray(image.Rect(0, 0, 320, 160))
	for y := 0; y < 160; y++ {
		for x := 0; x < 320; x++ {
			v := uint8(x * 255 / 319)
			if (x-220)*(x-220)+(y-80)*(y-80) < 50*50 {
				v = 255 - uint8(y*255/159)
			}
			img.SetGray(x, y, color.Gray{Y: v})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img) //nolint:errcheck // in memory
	return b.Bytes()
}

// TestRealLineDriverJob sends a three-page job (text, PDF, photo) with the
// faxmodem driver through a real soft-modem line to efax, and checks that
// every received page is pixel-identical to the rendered page.
func TestRealLineDriverJob(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "iaxmodem")
	testenv.LookPath(t, "efax")
	testenv.LookPath(t, "efix")
	testenv.LookPath(t, "gs")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	line, err := Start(ctx, filepath.Join(t.TempDir(), "line"))
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()
	prefix := filepath.Join(line.Dir, "rx")
	rx, err := line.Receive(ctx, prefix, "+1 555 0002", "1,5,0,2,0,0,0,0", 80*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	opts := fmt.Sprintf(`{"devices": [{"device": %q}], "local_id": "+1 555 0001", "header": "mediagw line test",
		"resolution": "fine", "encoding": "mh", "dial": {"region": "US"}}`, line.DevA)
	drv, err := faxmodem.New("fax", json.RawMessage(opts), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := drv.(*faxmodem.Driver)
	job := &linedriver.Job{ID: "job-real", Attempt: 1, Accepted: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		Record: linedriver.Record{Fields: map[string]string{"fax_number": line.FaxB}, Documents: []linedriver.Document{
			{Name: "body.txt", MediaType: "text/plain", Data: []byte("Alarm report\nZone 4 open at 09:58.\nPanel 17, account 4711.\n")},
			{Name: "map.pdf", MediaType: "application/pdf", Data: tinyPDF()},
			{Name: "camera.png", MediaType: "image/png", Data: photo()},
		}}}
	want, err := d.Render(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	start := time.Now()
	out := d.Deliver(ctx, job, func(p linedriver.Progress) {
		fmt.Fprintf(&log, "%s [%s] %s\n", time.Since(start).Round(time.Millisecond), p.Step, p.Detail)
	})
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	werr := rx.Wait(wctx)
	wcancel()
	if out.Result != linedriver.Delivered {
		t.Fatalf("outcome %+v\n%s\nefax (%v):\n%s", out, log.String(), werr, rx.Out.String())
	}
	t.Logf("delivered in %v: %v", time.Since(start).Round(time.Millisecond), out.Details)
	files := rx.Pages()
	if len(want) != 3 || len(files) != 3 {
		t.Fatalf("rendered %d pages, efax received %d", len(want), len(files))
	}
	for i, f := range files {
		got := decodeEfax(t, f)
		rows := make([][]byte, want[i].Height)
		for y := range rows {
			rows[y] = want[i].Row(y)
		}
		if off, ok := findPage(got, rows); !ok {
			t.Errorf("page %d: the %d received rows are not the %d rows rendered", i+1, len(got), len(rows))
		} else {
			t.Logf("page %d: %d rows identical (offset %d)", i+1, len(rows), off)
		}
	}
}
