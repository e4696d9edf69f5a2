package main_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
)

// TestFaxReceiveRealLine: `mediagw fax receive` answers on one soft modem
// what `mediagw fax send` sends from the other (ECM, MMR), prints the
// T.30 steps with -v and writes the fax as TIFF and PDF.
func TestFaxReceiveRealLine(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "iaxmodem")
	bin := filepath.Join(binaries(t), "mediagw")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	line := startFaxLine(ctx, t, "fr")
	out := t.TempDir()
	rx := exec.CommandContext(ctx, bin, "fax", "receive", "--device", line.DevB, "--rings", "1", "--id", "+1 555 0002", "--out", out, "-v")
	var rxOut, rxErr testenv.Buffer
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	rx.Stdout, rx.Stderr = pw, &rxErr
	if err := rx.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			rxOut.Write([]byte(sc.Text() + "\n"))
			if !once && strings.Contains(sc.Text(), "waiting for 1 rings") {
				once = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatalf("fax receive did not get ready:\n%s%s", rxOut.String(), rxErr.String())
	}
	time.Sleep(6 * time.Second) // its set-up hung up modem B, which then refuses calls for 5 s
	doc := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(doc, []byte("A fax that goes both ways through mediagw.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var txOut bytes.Buffer
	tx := exec.CommandContext(ctx, bin, "fax", "send", "--device", line.DevA, "--class", "1", "--region", "US", "--to", line.FaxB, "--id", "+1 555 0001", doc)
	tx.Stdout, tx.Stderr = &txOut, &txOut
	terr := tx.Run()
	rerr := rx.Wait()
	if terr != nil || rerr != nil {
		t.Fatalf("send: %v\n%s\nreceive: %v\n%s%s", terr, txOut.String(), rerr, rxOut.String(), rxErr.String())
	}
	stdout := rxOut.String()
	for _, re := range []string{
		`(?m)^\s+\S+s\s+dcs\s+V\.17 14400, fine, MMR, ECM 256-octet frames$`,
		`(?m)^\s+\S+s\s+tx\s+MCF$`,
		`(?m)^received 1 pages from "\+1 555 0001" \(caller "1001", called "12015550102"\)`,
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("output lacks %s:\n%s", re, stdout)
		}
	}
	tifs, _ := filepath.Glob(filepath.Join(out, "*.tif"))
	pdfs, _ := filepath.Glob(filepath.Join(out, "*.pdf"))
	if len(tifs) != 1 || len(pdfs) != 1 {
		t.Fatalf("files %v %v", tifs, pdfs)
	}
	data, err := os.ReadFile(tifs[0])
	if err != nil {
		t.Fatal(err)
	}
	frames, err := faxtiff.Read(data, faxtiff.Limits{MaxPages: 10, MaxPixels: 1 << 24})
	if err != nil || len(frames) != 1 || !frames[0].Fax || frames[0].Bitmap.Width != 1728 || frames[0].Bitmap.YRes != 196 {
		t.Fatalf("TIFF: %d pages, %v", len(frames), err)
	}
	if pdf, _ := os.ReadFile(pdfs[0]); !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Errorf("%s is no PDF", pdfs[0])
	}
}
