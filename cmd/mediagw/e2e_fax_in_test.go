package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	tmp, err := os.MkdirTemp("", "fi") // iaxmodem truncates long tty paths
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	line, err := faxline.Start(ctx, filepath.Join(tmp, "line"))
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()
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
`, line.DevB))
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
