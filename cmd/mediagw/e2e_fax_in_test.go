package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxline"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
)

// TestGatewayReceivesFaxRealLine: `mediagw run` with a fax modem set to
// answer (mode: receive) on one soft modem; `mediagw fax send` calls it
// from the other. The gateway answers, receives the page over ECM and files
// the fax by its inbound default route in a folder: record.json with the
// station id and the numbers, the TIFF and the PDF.
func TestGatewayReceivesFaxRealLine(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "iaxmodem")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	line := startFaxLine(ctx, t, "fi")
	s := faxInSite(t, line.DevB)
	g := s.start()
	waitFor(t, "the fax driver waiting for calls", 20*time.Second, func() bool {
		return strings.Contains(g.logText(), `driver=fax-in`)
	}, g.logText)
	time.Sleep(8 * time.Second) // set-up (ATZ) hangs iaxmodem up; it then refuses calls for 5 s
	doc := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(doc, []byte("Received by the gateway over a real line.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, filepath.Join(s.bin, "mediagw"), "fax", "send", "--device", line.DevA, "--class", "1",
		"--region", "US", "--to", line.FaxB, "--id", "+1 555 0001", doc).CombinedOutput()
	if err != nil {
		t.Fatalf("fax send: %v\n%s\ngateway:\n%s", err, out, testenv.Tail(g.logText(), 4000))
	}
	var recs []string
	waitFor(t, "the fax in the folder", 60*time.Second, func() bool {
		recs, _ = filepath.Glob(filepath.Join(s.dir, "var/faxin/*/record.json"))
		return len(recs) == 1
	}, g.logText)
	b, err := os.ReadFile(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Fields    map[string]string `json:"fields"`
		Documents []struct {
			Name string `json:"name"`
		} `json:"documents"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	f := rec.Fields
	if f["remote_id"] != "+1 555 0001" || f["pages"] != "1" || f["caller_number"] != "1001" || f["called_number"] != "12015550102" ||
		f["incomplete"] != "" || !strings.Contains(f["params"], "ECM") {
		t.Errorf("fields %v", f)
	}
	tifs, _ := filepath.Glob(filepath.Join(filepath.Dir(recs[0]), "*.tif*"))
	pdfs, _ := filepath.Glob(filepath.Join(filepath.Dir(recs[0]), "*.pdf"))
	if len(tifs) != 1 || len(pdfs) != 1 {
		t.Fatalf("documents %v %v (record %s)", tifs, pdfs, b)
	}
	data, err := os.ReadFile(tifs[0])
	if err != nil {
		t.Fatal(err)
	}
	pages, err := faxtiff.Read(data, faxtiff.Limits{})
	if err != nil || len(pages) != 1 || pages[0].Bitmap == nil || pages[0].Bitmap.Width != 1728 {
		t.Fatalf("TIFF: %d pages, %v", len(pages), err)
	}
}

// TestGatewayReceiveKilledRealLine: `mediagw fax send` sends three pages to
// `mediagw run` answering on the soft-modem line; the gateway is killed
// (SIGKILL) once page 2 is confirmed (the sender has gone on to page 3).
// Started again, it files the partial fax once by the inbound default
// route: pages 1 and 2, every row as sent, marked incomplete. A third start
// files nothing more. One call.
func TestGatewayReceiveKilledRealLine(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "iaxmodem")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	line := startFaxLine(ctx, t, "fk")
	s := faxInSite(t, line.DevB)
	bin := filepath.Join(s.bin, "mediagw")
	// three text pages (form feeds), the last one long enough to be cut,
	// and what the sender makes of them
	var text strings.Builder
	for p, lines := range []int{8, 8, 25} {
		if p > 0 {
			text.WriteString("\f")
		}
		for i := 1; i <= lines; i++ {
			fmt.Fprintf(&text, "Page %d, line %d: kept, the gateway killed, started again, filed once. %06d\n", p+1, i, i*37)
		}
	}
	doc := filepath.Join(t.TempDir(), "three.txt")
	wantTIF := filepath.Join(t.TempDir(), "want.tif")
	if err := os.WriteFile(doc, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "fax", "render", "-o", wantTIF, doc).CombinedOutput(); err != nil {
		t.Fatalf("fax render: %v\n%s", err, out)
	}
	want := readTIFFPages(t, wantTIF)
	if len(want) != 3 {
		t.Fatalf("the text renders as %d pages, want 3", len(want))
	}

	g := s.start()
	waitFor(t, "the fax driver waiting for calls", 20*time.Second, func() bool {
		return strings.Contains(g.logText(), `driver=fax-in`)
	}, g.logText)
	time.Sleep(8 * time.Second) // set-up (ATZ) hangs iaxmodem up; it then refuses calls for 5 s
	send := exec.CommandContext(ctx, bin, "fax", "send", "--device", line.DevA, "--class", "1",
		"--region", "US", "--to", line.FaxB, "--id", "+1 555 0001", "-v", doc)
	sendOut := &lockedBuffer{}
	send.Stdout, send.Stderr = sendOut, sendOut
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	// the sender goes on to page 3 once the gateway confirmed page 2
	waitFor(t, "page 2 confirmed", 150*time.Second, func() bool {
		return strings.Contains(sendOut.String(), "page 3 block 0")
	}, func() string { return sendOut.String() + "\ngateway:\n" + testenv.Tail(g.logText(), 3000) })
	g.kill()
	first := g.logText()
	serr := send.Wait() // the far end is gone: the sender gives up
	t.Logf("fax send after the kill: %v\n%s", serr, testenv.Tail(sendOut.String(), 1500))
	if !regexp.MustCompile(`event=page_received .*page=2\b`).MatchString(first) || regexp.MustCompile(`event=page_received .*page=3\b`).MatchString(first) {
		t.Fatalf("want pages 1 and 2 on disk before the kill, not 3:\n%s", testenv.Tail(first, 3000))
	}
	if serr == nil || !strings.Contains(sendOut.String(), "2 pages were confirmed") {
		t.Errorf("the sender: %v, want not sent with 2 pages confirmed", serr)
	}
	if n := s.count("var/faxin"); n != 0 {
		t.Fatalf("%d faxes filed before the restart", n)
	}

	g = s.start()
	var recs []string
	waitFor(t, "the partial fax in the folder", 60*time.Second, func() bool {
		recs, _ = filepath.Glob(filepath.Join(s.dir, "var/faxin/*/record.json"))
		return len(recs) == 1
	}, g.logText)
	if !strings.Contains(g.logText(), "inbound: finishing a call an earlier run left") {
		t.Errorf("no recovery in the log:\n%s", testenv.Tail(g.logText(), 3000))
	}
	b, err := os.ReadFile(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Fields map[string]string `json:"fields"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	f := rec.Fields
	if f["pages"] != "2" || f["remote_id"] != "+1 555 0001" || !strings.Contains(f["incomplete"], "cut after page 2") || f["route"] != "default" {
		t.Errorf("fields %v", f)
	}
	tifs, _ := filepath.Glob(filepath.Join(filepath.Dir(recs[0]), "*.tif*"))
	if len(tifs) != 1 {
		t.Fatalf("documents %v", tifs)
	}
	got := readTIFFPages(t, tifs[0])
	if len(got) != 2 {
		t.Fatalf("the filed TIFF has %d pages, want 2", len(got))
	}
	for p := range got {
		if got[p].Width != want[p].Width || got[p].Height != want[p].Height {
			t.Fatalf("page %d is %dx%d, sent %dx%d", p+1, got[p].Width, got[p].Height, want[p].Width, want[p].Height)
		}
		for y := range got[p].Height {
			if !bytes.Equal(got[p].Row(y), want[p].Row(y)) {
				t.Fatalf("page %d row %d differs from what was sent", p+1, y)
			}
		}
	}
	g.stop(t)

	// started once more, nothing is filed again
	g = s.start()
	waitFor(t, "the fax driver waiting for calls", 20*time.Second, func() bool {
		return strings.Contains(g.logText(), `driver=fax-in`)
	}, g.logText)
	if recs, _ := filepath.Glob(filepath.Join(s.dir, "var/faxin/*/record.json")); len(recs) != 1 || strings.Contains(g.logText(), "finishing a call an earlier run left") {
		t.Errorf("%d faxes filed after a third start:\n%s", len(recs), testenv.Tail(g.logText(), 3000))
	}
	t.Logf("partial fax filed once: %s", f["incomplete"])
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func readTIFFPages(t *testing.T, path string) []*faxtiff.Bitmap {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := faxtiff.Read(data, faxtiff.Limits{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []*faxtiff.Bitmap
	for _, f := range frames {
		if f.Bitmap == nil {
			t.Fatalf("%s: a page that is not bilevel", path)
		}
		out = append(out, f.Bitmap)
	}
	return out
}

// startFaxLine starts the soft-modem line (two iaxmodems) under a short
// temporary folder, iaxmodem truncating long tty paths; the line is closed
// and the folder removed when the test ends.
func startFaxLine(ctx context.Context, t *testing.T, prefix string) *faxline.Line {
	t.Helper()
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	line, err := faxline.Start(ctx, filepath.Join(tmp, "line"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Close() })
	return line
}

// faxInSite is a site whose fax modem answers on device (mode: receive,
// one ring) and files what it receives by the inbound default route in
// var/faxin.
func faxInSite(t *testing.T, device string) *site {
	t.Helper()
	s := newSite(t)
	s.editConfig("drivers:\n", fmt.Sprintf(`inbound:
  default: {folder: var/faxin}
drivers:
  fax-in:
    type: faxmodem
    options:
      devices: [{device: %s, mode: receive, rings: 1}]
      local_id: "+1 555 0002"
      dial: {region: US}
`, device))
	return s
}
