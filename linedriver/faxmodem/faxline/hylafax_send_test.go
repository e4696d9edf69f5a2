package faxline

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
)

// writeTIFF writes rows as a fine-resolution TIFF G3 (efix), the input of
// efax and sendfax.
func writeTIFF(t testing.TB, dir, name string, rows [][]byte) string {
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

// TestHylaFAXSendsToHylaFAX runs HylaFAX on both modems: sendfax through
// faxq and faxgetty on A to faxgetty on B, with ECM and MMR, and compares
// the page B filed with the one submitted.
func TestHylaFAXSendsToHylaFAX(t *testing.T) {
	testenv.Short(t)
	for _, bin := range []string{"iaxmodem", "faxq", "hfaxd", "faxgetty", "sendfax", "efix", "tiffsplit", "tifftopnm"} {
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
	tx, err := line.StartHylaFAXSender(ctx, HylaFAXOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	want := testPage(400, 5)
	job, err := tx.Send(ctx, line.NumB, writeTIFF(t, dir, "page", want), true)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("sender:\n%s\n%s\nreceiver:\n%s", tail(tx.Log(), 3000), tail(tx.SessionLogs(), 6000), tail(rx.SessionLogs(), 4000))
		}
	}()
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
	if len(got) != 1 || len(got[0]) != len(want) {
		t.Fatalf("HylaFAX filed %d pages", len(got))
	}
	if _, ok := findPage(got[0], want); !ok {
		t.Errorf("the page differs from what was sent")
	}
	t.Logf("HylaFAX to HylaFAX: %v from dial to hang-up", took)
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
