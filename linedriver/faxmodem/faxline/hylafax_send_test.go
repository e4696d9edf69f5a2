package faxline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// efixTIFF writes rows as a fine-resolution TIFF G3 (efix), the input of
// efax and sendfax.
func efixTIFF(t testing.TB, dir, name string, rows [][]byte) string {
	t.Helper()
	pbm := filepath.Join(dir, name+".pbm")
	tif := filepath.Join(dir, name+".tif")
	b := []byte("P4\n1728 " + itoa(len(rows)) + "\n")
	for _, r := range rows {
		b = append(b, r...)
	}
	if err := os.WriteFile(pbm, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("efix", "-i", "pbm", "-o", "tiffg3", "-n", tif, pbm).CombinedOutput(); err != nil {
		t.Fatalf("efix: %v: %s", err, out)
	}
	return tif
}

func itoa(n int) string { return strconv.Itoa(n) }

// g4TIFF writes rows as a fine-resolution TIFF G4 (MMR) with faxtiff, what
// sendfax is given for an ECM call, readable by hfaxd (which runs as uucp).
func g4TIFF(t testing.TB, dir, name string, rows [][]byte) string {
	t.Helper()
	bm := &faxtiff.Bitmap{Width: width, Height: len(rows), Stride: width / 8, XRes: 204, YRes: 196}
	for _, r := range rows {
		bm.Pix = append(bm.Pix, r...)
	}
	var b bytes.Buffer
	w := faxtiff.NewWriter(&b, faxtiff.Options{Encoding: t4.MMR})
	if err := w.WritePage(bm); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".tif")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHylaFAXSendsToHylaFAX runs HylaFAX on both modems: sendfax through
// faxq (faxsend on A) to faxgetty on B, with ECM and MMR, and compares the
// page B filed with the one submitted, and times the call from the
// sender's session log.
func TestHylaFAXSendsToHylaFAX(t *testing.T) {
	testenv.Short(t)
	for _, bin := range []string{"iaxmodem", "faxq", "hfaxd", "faxmodem", "faxgetty", "sendfax", "tiffsplit", "tifftopnm"} {
		testenv.LookPath(t, bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	line, err := Start(ctx, filepath.Join(shortTemp(t), "line"))
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()
	rx, err := line.StartHylaFAX(ctx, HylaFAXOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := line.StartHylaFAXSender(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	// a page ending in white rows, as real pages do (see sameRowsButLast)
	want := append(testPage(400, 5), make([][]byte, 8)...)
	for y := 400; y < len(want); y++ {
		want[y] = make([]byte, width/8)
	}
	out, err := tx.Send(ctx, line.NumB, false, g4TIFF(t, dir, "page", want))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("sender:\n%s\nreceiver:\n%s", tail(tx.Logs(), 8000), tail(rx.SessionLogs(), 4000))
		}
	}()
	job, err := JobID(out)
	if err != nil {
		t.Fatal(err)
	}
	took, err := tx.Wait(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	file, err := rx.Received(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logs := rx.SessionLogs()
	if !strings.Contains(logs, "2-D MMR") || !strings.Contains(logs, "frames of block") {
		t.Errorf("the receiver's log does not report ECM with MMR")
	}
	got := decodeTIFF(t, file)
	if len(got) != 1 {
		t.Fatalf("HylaFAX filed %d pages", len(got))
	}
	if d := sameRowsButLast(got[0], want); d != "" {
		t.Error(d)
	}
	t.Logf("HylaFAX to HylaFAX: %v from dial to hang-up", took)
}

// sameRowsButLast checks a page HylaFAX sent: every row that arrived must
// equal the one submitted, and only the last row may be missing, if it is
// white (HylaFAX's faxsend drops the last row of a page). "" when so.
func sameRowsButLast(got, want [][]byte) string {
	n := len(got)
	if n > len(want) || n < len(want)-1 {
		return fmt.Sprintf("%d rows arrived, %d sent", n, len(want))
	}
	if n < len(want) && !bytes.Equal(want[n], make([]byte, len(want[n]))) {
		return fmt.Sprintf("row %d (not white) is missing", n)
	}
	for y := range n {
		if !bytes.Equal(got[y], want[y]) {
			return fmt.Sprintf("row %d differs", y)
		}
	}
	return ""
}

// shortTemp is a short temporary directory: iaxmodem cuts long device
// paths.
func shortTemp(t testing.TB) string {
	d, err := os.MkdirTemp("", "fl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestCallTimeAndJobID(t *testing.T) {
	log := "Dec 01 04:45:01.10: [ 17]: SESSION BEGIN 000000001 15551002\n" +
		"Dec 01 04:45:01.20: [ 17]: DIAL 1002\n" +
		"Dec 01 04:45:04.30: [ 17]: --> [7:CONNECT]\n" +
		"Dec 01 04:45:27.05: [ 17]: SESSION END\n"
	tests := []struct {
		log  string
		want time.Duration
		err  bool
	}{
		{log: log, want: 25850 * time.Millisecond},
		{log: "Dec 31 23:59:59.50: [ 1]: DIAL 1\nDec 31 23:59:59.90: [ 1]: SESSION END\n", want: 400 * time.Millisecond},
		{log: "Dec 01 04:45:01.10: [ 17]: SESSION BEGIN\n", err: true},
		{log: "DIAL 1002\n", err: true},
	}
	for _, tt := range tests {
		got, err := callTime(tt.log)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("callTime(%q) = %v, %v; want %v", tt.log, got, err, tt.want)
		}
	}
	if id, err := JobID("request id is 17 (group id 17) for host 127.0.0.1 (1 file)\n"); err != nil || id != "17" {
		t.Errorf("JobID = %q, %v", id, err)
	}
	if _, err := JobID("sendfax: Unused options after last destination.\n"); err == nil {
		t.Error("JobID without a request id")
	}
}
