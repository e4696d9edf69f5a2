package main_test

// Black-box tests of the mail → fax path: the built mediagw with the maildir
// connector, the email-to-fax map and the faxmodem driver, whose modem is the
// emulator (faxsim) running in a process of its own on a pty.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
)

var (
	faxsimOnce sync.Once
	faxsimBin  string
	faxsimErr  error
)

// faxsimBinary builds the modem emulator into the test binaries' folder.
func faxsimBinary(t testing.TB) string {
	t.Helper()
	dir := binaries(t)
	faxsimOnce.Do(func() {
		faxsimBin = filepath.Join(dir, "faxsim")
		out, err := exec.Command("go", "build", "-o", faxsimBin, "../../linedriver/faxmodem/modemsim/cmd/faxsim").CombinedOutput()
		if err != nil {
			faxsimErr = fmt.Errorf("go build faxsim: %v\n%s", err, out)
		}
	})
	if faxsimErr != nil {
		t.Fatal(faxsimErr)
	}
	return faxsimBin
}

// faxsim is a running emulator: a Class 1 modem on a pty with a fax machine
// behind it that writes each confirmed page as page-N.pbm.
type faxsim struct {
	cmd  *exec.Cmd
	dev  string
	out  string
	mu   sync.Mutex
	log  []string
	done chan struct{}
}

func startFaxsim(t *testing.T, args ...string) *faxsim {
	t.Helper()
	f := &faxsim{out: t.TempDir(), done: make(chan struct{})}
	f.cmd = exec.Command(faxsimBinary(t), append([]string{"-out", f.out}, args...)...)
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	f.cmd.Stderr = os.Stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	devc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			if first {
				devc <- strings.TrimSpace(sc.Text())
				first = false
				continue
			}
			f.mu.Lock()
			f.log = append(f.log, sc.Text())
			f.mu.Unlock()
		}
	}()
	go func() { f.cmd.Wait(); close(f.done) }()
	t.Cleanup(func() {
		f.cmd.Process.Signal(os.Interrupt)
		select {
		case <-f.done:
		case <-time.After(5 * time.Second):
			f.cmd.Process.Kill()
			<-f.done
		}
	})
	select {
	case f.dev = <-devc:
	case <-time.After(30 * time.Second):
		t.Fatal("faxsim did not print its tty")
	}
	if !strings.HasPrefix(f.dev, "/dev/") {
		t.Fatalf("faxsim printed %q, want a tty path", f.dev)
	}
	return f
}

func (f *faxsim) lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func (f *faxsim) text() string { return strings.Join(f.lines(), "\n") }

func (f *faxsim) count(prefix string) int {
	n := 0
	for _, l := range f.lines() {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// page reads page-N.pbm (1-based, counted over all calls).
func (f *faxsim) page(t *testing.T, n int) (width, height int, pix []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.out, fmt.Sprintf("page-%d.pbm", n)))
	if err != nil {
		t.Fatal(err)
	}
	var magic string
	k, err := fmt.Fscan(bytes.NewReader(b), &magic, &width, &height)
	if err != nil || k != 3 || magic != "P4" {
		t.Fatalf("page-%d.pbm: bad header (%v)", n, err)
	}
	// the header is "P4\n<w> <h>\n"
	hdr := len(fmt.Sprintf("P4\n%d %d\n", width, height))
	return width, height, b[hdr:]
}

// faxSite is a gateway configured mail → email-to-fax map → faxmodem.
func newFaxSite(t *testing.T, dev, retry string) *site {
	s := newSite(t)
	copyFile(t, "../../examples/maps/email-to-fax.yaml", filepath.Join(s.dir, "maps/email-to-fax.yaml"))
	cfg := fmt.Sprintf(`spool:
  dir: var/spool
log:
  level: info
  format: text
connectors:
  inbox:
    plugin: mediagw-connector-maildir
    map: email-to-fax
    max_in_flight: 4
    config:
      path: var/Maildir
      failed: var/failed
maps:
  email-to-fax: maps/email-to-fax.yaml
drivers:
  fax:
    type: faxmodem
    max_attempts: 6
    options:
      devices:
        - {device: %s, class: "1"}
      local_id: "+1 555 0001"
      resolution: standard
      modulations: [V.29]
      dial: {region: US}
      retry:
        delay: {%s}
  fax-international:
    type: file
    options:
      dir: var/international
`, dev, retry)
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// drawing is a PNG with a few shapes, different for each n, sparse enough
// that a page takes a few seconds at 9600 bit/s.
func drawing(n int) []byte {
	img := image.NewGray(image.Rect(0, 0, 400, 560))
	for y := 0; y < 560; y++ {
		for x := 0; x < 400; x++ {
			v := uint8(255)
			switch {
			case y < 40 && x < 60*n: // a bar as long as the page number
				v = 0
			case (x-200)*(x-200)+(y-300)*(y-300) < (40+20*n)*(40+20*n) && (x+y)%(7+n) < 3: // a hatched disc
				v = 0
			case y > 500 && y < 506:
				v = 0
			}
			img.SetGray(x, y, color.Gray{Y: v})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img) //nolint:errcheck // in memory
	return b.Bytes()
}

// faxMail is a mail to a local fax number with PNG attachments, one page each.
func faxMail(t *testing.T, number string, images [][]byte) []byte {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	tp, _ := w.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}})
	tp.Write([]byte("Please find the drawings attached.\r\n"))
	for i, img := range images {
		p, _ := w.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {"image/png"},
			"Content-Disposition":       {fmt.Sprintf(`attachment; filename="sheet-%d.png"`, i+1)},
			"Content-Transfer-Encoding": {"base64"},
		})
		enc := make([]byte, 0, len(img)*2)
		const lineLen = 57
		for j := 0; j < len(img); j += lineLen {
			end := min(j+lineLen, len(img))
			enc = append(enc, []byte(base64.StdEncoding.EncodeToString(img[j:end])+"\r\n")...)
		}
		p.Write(enc)
	}
	w.Close()
	head := fmt.Sprintf("From: Alice <alice@example.com>\r\nTo: %s@fax.example.com\r\nSubject: drawings\r\n"+
		"Message-ID: <fax-%s@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=%q\r\n\r\n",
		number, number, w.Boundary())
	return append([]byte(head), body.Bytes()...)
}

// rendered is what the driver sends for the images: the render package
// with the driver's options (standard resolution, no header line).
func rendered(t *testing.T, images [][]byte) []*render.Page {
	t.Helper()
	var docs []render.Document
	for i, img := range images {
		docs = append(docs, render.Document{Name: fmt.Sprintf("sheet-%d.png", i+1), MediaType: "image/png", Data: img})
	}
	pages, err := render.Render(context.Background(), docs, render.Options{Resolution: render.Standard})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != len(images) {
		t.Fatalf("rendered %d pages, want one per image (%d)", len(pages), len(images))
	}
	return pages
}

// samePage checks a received page against a rendered one, pixel for pixel.
func samePage(t *testing.T, f *faxsim, n int, want *render.Page) {
	t.Helper()
	w, h, pix := f.page(t, n)
	if w != want.Width || h != want.Height {
		t.Errorf("received page %d is %dx%d, rendered %dx%d", n, w, h, want.Width, want.Height)
		return
	}
	if !bytes.Equal(pix, want.Pix[:h*want.Stride]) {
		diff := 0
		for i := range pix {
			if pix[i] != want.Pix[i] {
				diff++
			}
		}
		t.Errorf("received page %d differs from the rendered page in %d bytes", n, diff)
	}
}

var (
	progressPage = regexp.MustCompile(`step=page detail="(\d+): `)
	attemptRe    = regexp.MustCompile(`event=attempt .*attempt=(\d+)`)
)

// pagesStarted returns the page numbers the driver began to send, in order.
func pagesStarted(log string) []int {
	var out []int
	for _, m := range progressPage.FindAllStringSubmatch(log, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

// TestKillHostMidPage kills the gateway with -9 while page 2 of a 3-page fax
// is on the line. The mail was acked when the spool took the job; after the
// restart the job comes back from the spool and is sent again, and every
// page arrives exactly as rendered.
func TestKillHostMidPage(t *testing.T) {
	images := [][]byte{drawing(1), drawing(2), drawing(3)}
	want := rendered(t, images)
	sim := startFaxsim(t)
	s := newFaxSite(t, sim.dev, "busy: 1s")
	s.drop("fax-1.eml", faxMail(t, "2015550100", images))

	g := s.start()
	plugin := g.pluginPid(t)
	waitFor(t, "page 1 confirmed and page 2 on the line", 60*time.Second, func() bool {
		started := pagesStarted(g.logText())
		return sim.count("received page") >= 1 && len(started) >= 2 && started[len(started)-1] == 2
	}, func() string { return g.logText() + "\nfaxsim:\n" + sim.text() })
	// Give page 2 time to be well under way, but not finished: a page at
	// 9600 bit/s takes over a second here.
	time.Sleep(300 * time.Millisecond)
	if n := sim.count("received page"); n != 1 {
		t.Fatalf("page 2 ended before the kill (%d pages received); the pages are too short for this test", n)
	}
	g.cmd.Process.Signal(syscall.SIGKILL)
	<-g.done
	syscall.Kill(plugin, syscall.SIGKILL)
	log1 := g.logText()

	// The mail was acked once the spool held the job (the second run finds
	// the job there without the mail being offered again).
	if !strings.Contains(log1, "event=accepted") {
		t.Fatalf("first run never accepted the mail:\n%s", testenv.Tail(log1, 30))
	}
	if s.count("var/Maildir/new") != 0 || s.count("var/Maildir/cur") != 1 {
		t.Fatalf("mail not settled: new/ %d, cur/ %d", s.count("var/Maildir/new"), s.count("var/Maildir/cur"))
	}
	// The emulator sees DTR drop (the port closed by the kernel) and hangs up.
	waitFor(t, "the emulator to hang up", 10*time.Second, func() bool { return sim.count("call dropped") == 1 }, sim.text)

	g2 := s.start()
	waitFor(t, "the job delivered after the restart", 90*time.Second, func() bool {
		return strings.Contains(g2.logText(), "event=delivered")
	}, func() string { return g2.logText() + "\nfaxsim:\n" + sim.text() })
	g2.stop(t)
	log2 := g2.logText()

	if strings.Contains(log2, "event=received") {
		t.Errorf("the acked mail was offered again after the restart")
	}
	if m := attemptRe.FindStringSubmatch(log2); m == nil || m[1] != "1" {
		t.Errorf("attempt after restart = %v; an attempt cut off by a crash must not count", m)
	}
	resumed := pagesStarted(log2)
	received := sim.count("received page")
	second := received - 1 // pages of the call after the restart
	t.Logf("after the restart the driver sent pages %v; the emulator received %d pages in all", resumed, received)
	if len(resumed) == 0 || resumed[len(resumed)-1] != 3 || second != len(resumed) {
		t.Fatalf("after the restart: pages sent %v, received %d, want pages up to 3 each confirmed", resumed, second)
	}
	// The driver saved the confirmed page in the spool during the call, so
	// the job resumes at the first unconfirmed page: no page twice.
	if resumed[0] != 2 {
		t.Fatalf("resumed at page %d, want 2, the first page not confirmed before the kill", resumed[0])
	}
	// Page 1 of the first call, then every page of the second call.
	samePage(t, sim, 1, want[0])
	for i, pg := range resumed {
		samePage(t, sim, 2+i, want[pg-1])
	}
}

// TestFaxBusyThenDelivered: the far end is busy twice, then answers; the
// host retries at the driver's busy delay and the page arrives as rendered.
func TestFaxBusyThenDelivered(t *testing.T) {
	images := [][]byte{drawing(4)}
	want := rendered(t, images)
	sim := startFaxsim(t, "-dial-first", "BUSY,BUSY")
	s := newFaxSite(t, sim.dev, "busy: 500ms")
	s.drop("fax-2.eml", faxMail(t, "2015550199", images))
	g := s.start()
	waitFor(t, "the fax delivered", 60*time.Second, func() bool {
		return strings.Contains(g.logText(), "event=delivered")
	}, func() string { return g.logText() + "\nfaxsim:\n" + sim.text() })
	g.stop(t)
	log := g.logText()
	if n := strings.Count(log, "event=retried"); n != 2 || strings.Count(log, "category=busy") < 2 {
		t.Errorf("%d retries logged, want 2 for busy:\n%s", n, testenv.Tail(log, 30))
	}
	if m := regexp.MustCompile(`event=delivered .*attempt=(\d+)`).FindStringSubmatch(log); m == nil || m[1] != "3" {
		t.Errorf("delivered on attempt %v, want 3", m)
	}
	// The live view's progress: which page of how many, and the call's length.
	for _, re := range []string{`event=progress job=\S+ step=page detail="1: .*" page=1 pages=1`, `event=delivered .*call_seconds=\d`} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("log lacks %s:\n%s", re, testenv.Tail(log, 30))
		}
	}
	if n := sim.count("received page"); n != 1 {
		t.Fatalf("emulator received %d pages, want 1:\n%s", n, sim.text())
	}
	samePage(t, sim, 1, want[0])
	if s.count("var/Maildir/cur") != 1 {
		t.Errorf("mail not acked")
	}
}
