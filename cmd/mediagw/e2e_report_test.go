package main_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/mediagw/mediagw/internal/testenv"
)

// notifySection asks the example fax map for reports of every event.
const notifySection = `
notify:
  events: [delivered, failed, rejected]
  attach_pages: true
  from: "Fax Gateway <fax@example.com>"
  formats: "Put the number in the subject as Fax: +1 555 123 4567."
`

// newReportSite is the fax site with reports: the map asks for them and the
// Maildir connector sends them into an outbox Maildir.
func newReportSite(t *testing.T, dev string) *site {
	t.Helper()
	s := newFaxSite(t, dev, "busy: 500ms")
	mapFile := filepath.Join(s.dir, "maps/email-to-fax.yaml")
	b, err := os.ReadFile(mapFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mapFile, append(b, notifySection...), 0o644); err != nil {
		t.Fatal(err)
	}
	s.editConfig("      failed: var/failed\n", "      failed: var/failed\n      send:\n        outbox: var/outbox\n")
	return s
}

// outbox reads the reports the connector wrote into its outbox Maildir.
func (s *site) outbox(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	files, _ := filepath.Glob(filepath.Join(s.dir, "var/outbox/new/*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestReportSurvivesKill: the host is killed (SIGKILL) after the fax was
// delivered and while its report is being sent (the plugin that would send
// it is frozen); after the restart the report is sent exactly once, and the
// fax is not sent again. Then the report and its bounce come back to the
// gateway's mailbox, and no report answers them.
func TestReportSurvivesKill(t *testing.T) {
	images := [][]byte{drawing(1), drawing(2)}
	sim := startFaxsim(t)
	s := newReportSite(t, sim.dev)
	s.drop("fax-1.eml", faxMail(t, "2015550123", images))
	g := s.start()
	pid := g.pluginPid(t)
	logs := func() string { return g.logText() + "\nfaxsim:\n" + sim.text() }
	faxJob := regexp.MustCompile(`event=attempt job=\S+\.fax `)
	waitFor(t, "the fax attempt", 60*time.Second, func() bool { return faxJob.MatchString(g.logText()) }, logs)
	// Freeze the connector: the fax goes on, its report cannot be sent.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	reportAttempt := regexp.MustCompile(`event=attempt job=\S+\.report\.delivered `)
	waitFor(t, "the fax delivered and its report being sent", 90*time.Second, func() bool {
		l := g.logText()
		return regexp.MustCompile(`event=delivered job=\S+\.fax `).MatchString(l) && reportAttempt.MatchString(l)
	}, logs)
	g.kill()
	syscall.Kill(pid, syscall.SIGKILL)
	if n := len(s.outbox(t)); n != 0 {
		t.Fatalf("%d reports in the outbox before the restart, want 0 (the plugin was frozen)", n)
	}
	pagesBefore := sim.count("received page")

	g2 := s.start()
	waitFor(t, "the report after the restart", 60*time.Second, func() bool { return len(s.outbox(t)) > 0 }, g2.logText)
	// Whatever else the restart does (the mail offered again, deduplicated)
	// must not make a second report.
	waitFor(t, "the mail settled", 30*time.Second, func() bool { return s.count("var/Maildir/cur") == 1 }, g2.logText)

	// The loop: the report comes back to the gateway's mailbox (a
	// forward, an address mix-up), and so does a bounce of it. Both are
	// rejected by the map (no fax number) and neither is answered.
	s.drop("returned-report.eml", s.outbox(t)[0])
	s.drop("bounce.eml", []byte("From: MAILER-DAEMON@mx.example.com\r\nTo: fax@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"+
		"Auto-Submitted: auto-replied\r\nMessage-ID: <bounce-1@mx.example.com>\r\n\r\nThe report could not be delivered.\r\n"))
	waitFor(t, "the returned report and the bounce rejected", 30*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(s.dir, "var/failed/*.reason"))
		return len(files) == 2
	}, g2.logText)
	g2.stop(t)
	if n := strings.Count(g2.logText(), "no report: "); n != 2 {
		t.Errorf("%d reports declined in the log, want 2 (the returned report, the bounce)", n)
	}
	reports := s.outbox(t)
	if len(reports) != 1 {
		t.Fatalf("%d reports in the outbox, want exactly 1 (the delivered fax's; none for the returned report or the bounce)", len(reports))
	}
	if n := sim.count("received page"); n != pagesBefore || n != 2 {
		t.Errorf("the far end received %d pages (%d before the restart), want 2: the fax is not sent again", n, pagesBefore)
	}
	r, err := gomail.CreateReader(bytes.NewReader(reports[0]))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := r.Header.Subject()
	irt, _ := r.Header.MsgIDList("In-Reply-To")
	if subject != "Fax to 2015550123 (+12015550123) delivered (2 pages)" || len(irt) != 1 || irt[0] != "fax-2015550123@example.com" ||
		!strings.HasSuffix(r.Header.Get("X-Mediagw-Report"), "/delivered") || r.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("report: subject %q, In-Reply-To %v, X-Mediagw-Report %q", subject, irt, r.Header.Get("X-Mediagw-Report"))
	}
	// The attached PDF holds the pages the far end received, pixel for pixel.
	var pdf []byte
	for {
		p, err := r.NextPart()
		if err != nil {
			break
		}
		if h, ok := p.Header.(*gomail.AttachmentHeader); ok {
			if ct, _, _ := h.ContentType(); ct == "application/pdf" {
				pdf, _ = io.ReadAll(p.Body)
			}
		}
	}
	if pdf == nil {
		t.Fatal("the report has no PDF of the pages")
	}
	pages := pdfPages(t, pdf, "204x98")
	if len(pages) != 2 {
		t.Fatalf("the report's PDF has %d pages, want the 2 sent", len(pages))
	}
	for n, page := range pages {
		w, h, pix := sim.page(t, n+1)
		if page.w != w || page.h != h || !bytes.Equal(page.pix, pix) {
			t.Errorf("PDF page %d (%dx%d) differs from the page the far end received (%dx%d)", n+1, page.w, page.h, w, h)
		}
	}
}

type pbm struct {
	w, h int
	pix  []byte
}

// pdfPages renders a PDF with ghostscript at res (e.g. "204x98") into raw
// PBM pages.
func pdfPages(t *testing.T, pdf []byte, res string) []pbm {
	t.Helper()
	gs := testenv.LookPath(t, "gs")
	dir := t.TempDir()
	in := filepath.Join(dir, "pages.pdf")
	if err := os.WriteFile(in, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gs, "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pbmraw", "-r"+res,
		"-o", filepath.Join(dir, "p%d.pbm"), in).CombinedOutput(); err != nil {
		t.Fatalf("ghostscript cannot read the report's PDF: %v\n%s", err, out)
	}
	var pages []pbm
	for n := 1; ; n++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("p%d.pbm", n)))
		if err != nil {
			return pages
		}
		// P4, # comment lines (ghostscript writes one), width and height,
		// then the bits.
		var p pbm
		rest, ok := bytes.CutPrefix(b, []byte("P4\n"))
		for ok && bytes.HasPrefix(rest, []byte("#")) {
			_, rest, ok = bytes.Cut(rest, []byte("\n"))
		}
		size, pix, ok2 := bytes.Cut(rest, []byte("\n"))
		if !ok || !ok2 {
			t.Fatalf("page %d: not a raw PBM", n)
		}
		if _, err := fmt.Sscanf(string(size), "%d %d", &p.w, &p.h); err != nil {
			t.Fatalf("page %d: PBM size %q: %v", n, size, err)
		}
		p.pix = pix
		pages = append(pages, p)
	}
}
