package host

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
)

// fakeLine is a receiving line driver of the tests (never in the gateway
// binary): it sends nothing, and when the host starts it receiving it
// plays the calls its options describe into the host's Inbound, as a fax
// modem answering them would.
type fakeLine struct {
	name string
	opts fakeLineOptions
}

type fakeLineOptions struct {
	Calls []fakeCall `json:"calls"`
}

type fakeCall struct {
	ID       string `json:"id"`
	Called   string `json:"called"`
	Caller   string `json:"caller"`
	RemoteID string `json:"remote_id"`
	Pages    int    `json:"pages"`
	// CutAfter > 0 ends the call after that many pages with an error (the
	// far end hung up); with Hang the line instead prints "confirmed N" and
	// waits, for the test to kill the gateway there.
	CutAfter int  `json:"cut_after"`
	Hang     bool `json:"hang"`
}

func init() {
	linedriver.Register("fakeline", func(name string, options json.RawMessage, _ *slog.Logger) (linedriver.Driver, error) {
		d := &fakeLine{name: name}
		if err := linedriver.DecodeOptions(options, &d.opts); err != nil {
			return nil, err
		}
		return d, nil
	})
}

func (d *fakeLine) Name() string { return d.name }
func (d *fakeLine) Check(*linedriver.Record) error {
	return errors.New("a receiving test line sends nothing")
}
func (d *fakeLine) Slots() int   { return 1 }
func (d *fakeLine) Close() error { return nil }
func (d *fakeLine) Deliver(context.Context, *linedriver.Job, func(linedriver.Progress)) linedriver.Outcome {
	return linedriver.Fail("test", "a receiving test line sends nothing")
}

var _ linedriver.Receiver = (*fakeLine)(nil)

func (d *fakeLine) Receive(ctx context.Context, in linedriver.Inbound) error {
	for _, c := range d.opts.Calls {
		call := &linedriver.Call{ID: c.ID, Driver: d.name, Device: "fake0", CalledNumber: c.Called, CallerNumber: c.Caller,
			RemoteID: c.RemoteID, Started: time.Now(), Params: "V.29 9600, fine, MH", Log: "-> CSI DIS\n<- TSI DCS\n"}
		if err := in.Begin(ctx, call); err != nil {
			return err
		}
		var cut error
		for n := 1; n <= c.Pages; n++ {
			if c.CutAfter > 0 && n > c.CutAfter {
				if c.Hang {
					fmt.Printf("confirmed %d\n", n-1)
					<-ctx.Done()
					return nil
				}
				cut = errors.New("the far end hung up")
				break
			}
			if err := in.Page(ctx, call, n, linePage(c.ID, n)); err != nil {
				return err
			}
			call.Log += fmt.Sprintf("<- page %d\n-> MCF\n", n)
		}
		if err := in.End(ctx, call, cut); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

// linePage is page n of a test call: its own text, so a page in the wrong
// place shows.
func linePage(call string, n int) *linedriver.InboundPage {
	p := renderedPage(call, n)
	ip := &linedriver.InboundPage{Width: p.Width, Height: p.Height, XRes: 204, YRes: p.Resolution.DPI()}
	for y := range p.Height {
		ip.Rows = append(ip.Rows, bytes.Clone(p.Row(y)))
	}
	return ip
}

func renderedPage(call string, n int) *render.Page {
	text := fmt.Sprintf("Call %s\nPage %d\n", call, n)
	ps, err := render.Render(context.Background(), []render.Document{{Name: "p.txt", MediaType: "text/plain", Data: []byte(text)}},
		render.Options{Resolution: render.Fine})
	if err != nil || len(ps) != 1 {
		panic(fmt.Sprintf("render: %v, %d pages", err, len(ps)))
	}
	return ps[0]
}

// checkTIFF decodes a received fax's TIFF and compares each page with the
// page the line sent.
func checkTIFF(t *testing.T, data []byte, call string, pages int) {
	t.Helper()
	frames, err := faxtiff.Read(data, faxtiff.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != pages {
		t.Fatalf("the TIFF has %d pages, want %d", len(frames), pages)
	}
	for i, f := range frames {
		want := renderedPage(call, i+1)
		if !bytes.Equal(f.Bitmap.Pix, want.Pix) {
			t.Errorf("page %d of the TIFF is not the page received", i+1)
		}
	}
}

const killConfig = `spool:
  dir: var/spool
drivers:
  line:
    type: fakeline
    options:
      calls: %s
inbound:
  default:
    folder: var/faxes
`

// TestReceiveKill9: a gateway receiving a 3-page fax is killed (SIGKILL)
// after the line confirmed page 2. Started again, it delivers pages 1–2
// as one fax, marked incomplete, once.
func TestReceiveKill9(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mediagw.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, killConfig, `[{id: call-k9, pages: 3, cut_after: 2, hang: true, remote_id: "KILL TEST"}]`), 0o644)
	run := func(until func(line string) bool) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReceiveHelperProcess$")
		cmd.Env = append(os.Environ(), "HOST_HELPER_CONFIG="+cfg)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = testenv.LogWriter(t)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if until == nil {
			return cmd
		}
		found := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if until(sc.Text()) {
					found <- true
					return
				}
			}
			found <- false
		}()
		select {
		case ok := <-found:
			if !ok {
				cmd.Wait()
				t.Fatal("the gateway ended before the line confirmed page 2")
			}
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatal("after 60 s the line had not confirmed page 2")
		}
		return cmd
	}
	cmd := run(func(l string) bool { return l == "confirmed 2" })
	cmd.Process.Kill() // SIGKILL: no deferred function, no cleanup
	cmd.Wait()
	callDir := filepath.Join(dir, "var/spool/inbound/call-k9")
	for n, want := range []bool{true, true, false} {
		_, err := os.Stat(filepath.Join(callDir, fmt.Sprintf("page-%03d.tiff", n+1)))
		if (err == nil) != want {
			t.Errorf("after the kill: page %d on disk %v, want %v", n+1, err == nil, want)
		}
	}

	// The second run has no call: it finds what the first left.
	os.WriteFile(cfg, fmt.Appendf(nil, killConfig, `[]`), 0o644)
	cmd = run(nil)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	var recs []string
	testenv.Eventually(t, 60*time.Second, "the recovered fax in var/faxes", func() bool {
		recs, _ = filepath.Glob(filepath.Join(dir, "var/faxes/*/record.json"))
		return len(recs) > 0
	})
	var rf struct {
		SourceID  string            `json:"source_id"`
		Fields    map[string]string `json:"fields"`
		Documents []struct{ File, MediaType string }
	}
	b, _ := os.ReadFile(recs[0])
	if err := json.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	if rf.SourceID != "call-k9" || rf.Fields["pages"] != "2" || rf.Fields["remote_id"] != "KILL TEST" ||
		rf.Fields["incomplete"] != "the call was cut after page 2 (the gateway stopped during the call)" {
		t.Errorf("recovered record: source %s, fields %v", rf.SourceID, rf.Fields)
	}
	for _, d := range rf.Documents {
		if d.MediaType == "image/tiff" {
			data, _ := os.ReadFile(filepath.Join(filepath.Dir(recs[0]), d.File))
			checkTIFF(t, data, "call-k9", 2)
		}
	}
	if _, err := os.Stat(callDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the call's folder is still in the spool: %v", err)
	}
	if len(recs) != 1 {
		t.Errorf("%d faxes delivered, want 1", len(recs))
	}
}

// TestReceiveHelperProcess is the gateway of TestReceiveKill9, in a process
// of its own; it does nothing unless that test started it.
func TestReceiveHelperProcess(t *testing.T) {
	file := os.Getenv("HOST_HELPER_CONFIG")
	if file == "" {
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := config.Load(file)
	if err == nil {
		var p *Plan
		if p, err = Prepare(cfg, log); err == nil {
			var h *Host
			if h, err = New(p, log); err == nil {
				ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
				defer stop()
				err = h.Run(ctx, p)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

const mailConfig = `spool:
  dir: var/spool
connectors:
  inbox:
    plugin: %s
    map: fax
    config:
      path: var/Maildir
      failed: var/failed
      poll_interval: 10ms
      send:
        from: fax@gw.example.com
        outbox: var/outbox
maps:
  fax: fax.yaml
drivers:
  line:
    type: fakeline
    options:
      calls:
        - {id: call-sales, called: "1001", remote_id: "+1 555 0100 ACME", pages: 2}
        - {id: call-cut, called: "1001", caller: "+1 555 0123", pages: 3, cut_after: 1}
        - {id: call-lab, called: "2002", pages: 1}
        - {id: call-other, called: "9999", pages: 1}
inbound:
  routes:
    - name: sales
      match: {called: ["1001"]}
      mail:
        connector: inbox
        from: Fax gateway <fax@gw.example.com>
        to: [sales@example.com, "Sales Desk <desk@example.com>"]
        subject: 'Fax for sales from {{or .RemoteID .CallerNumber}}{{if .Incomplete}} (incomplete){{end}}'
        attach: [pdf, tiff]
    - name: lab
      match: {called: ["2*"]}
      folder: var/lab
`

// TestReceiveToMailbox: a gateway with the real Maildir connector (its
// outbox as the submission server) takes four calls from a receiving line:
// two for sales arrive as mail with the PDF and TIFF attached (one cut
// after page 1, said in its subject and text), one lands in the lab's
// folder, and one that no route takes lands in the unrouted folder.
func TestReceiveToMailbox(t *testing.T) {
	bin := testenv.Binaries(t, "github.com/mediagw/mediagw/plugin/maildir/cmd/mediagw-connector-maildir")
	dir := t.TempDir()
	for _, d := range []string{"var/Maildir/new", "var/Maildir/cur", "var/Maildir/tmp", "var/outbox/new", "var/outbox/cur", "var/outbox/tmp"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "fax.yaml"), []byte(reportMap), 0o644)
	file := filepath.Join(dir, "mediagw.yaml")
	os.WriteFile(file, fmt.Appendf(nil, mailConfig, filepath.Join(bin, "mediagw-connector-maildir")), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	p, err := Prepare(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(p, log)
	if err != nil {
		t.Fatal(err)
	}
	events, stopEvents := h.Activity().Subscribe(100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, p) }()
	defer func() { cancel(); <-done; stopEvents() }()

	var mails []string
	testenv.Eventually(t, 60*time.Second, "two mails in the outbox and two faxes in folders", func() bool {
		mails, _ = filepath.Glob(filepath.Join(dir, "var/outbox/new/*"))
		lab, _ := filepath.Glob(filepath.Join(dir, "var/lab/*/record.json"))
		other, _ := filepath.Glob(filepath.Join(dir, "var/spool/unrouted/*/record.json"))
		return len(mails) == 2 && len(lab) == 1 && len(other) == 1
	}, func() string { return testenv.Tail(logs.String(), 20) })

	bySubject := map[string]*gomail.Reader{}
	for _, m := range mails {
		raw, _ := os.ReadFile(m)
		r, err := gomail.CreateReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := r.Header.Subject()
		bySubject[s] = r
	}
	for _, tc := range []struct {
		subject, call string
		pages         int
		text          []string
	}{
		{"Fax for sales from +1 555 0100 ACME", "call-sales", 2, []string{"on 1001", "Pages:        2"}},
		{"Fax for sales from +1 555 0123 (incomplete)", "call-cut", 1,
			[]string{"INCOMPLETE: the call was cut after page 1 (the far end hung up)", "Caller:       +1 555 0123"}},
	} {
		r := bySubject[tc.subject]
		if r == nil {
			t.Errorf("no mail %q; subjects: %v", tc.subject, keys(bySubject))
			continue
		}
		to, _ := r.Header.AddressList("To")
		if len(to) != 2 || to[0].Address != "sales@example.com" || to[1].Address != "desk@example.com" {
			t.Errorf("%s: To %v", tc.subject, to)
		}
		if v := r.Header.Get("Auto-Submitted"); v != "auto-generated" {
			t.Errorf("%s: Auto-Submitted %q", tc.subject, v)
		}
		var text string
		var atts []string
		for {
			part, err := r.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(part.Body)
			switch hd := part.Header.(type) {
			case *gomail.InlineHeader:
				text = string(body)
			case *gomail.AttachmentHeader:
				name, _ := hd.Filename()
				atts = append(atts, name)
				if strings.HasSuffix(name, ".tiff") {
					checkTIFF(t, body, tc.call, tc.pages)
				}
				if strings.HasSuffix(name, ".pdf") && !bytes.HasPrefix(body, []byte("%PDF-")) {
					t.Errorf("%s: %s is not a PDF", tc.subject, name)
				}
			}
		}
		if want := []string{"fax-" + tc.call + ".pdf", "fax-" + tc.call + ".tiff"}; strings.Join(atts, ",") != strings.Join(want, ",") {
			t.Errorf("%s: attachments %v, want %v", tc.subject, atts, want)
		}
		for _, w := range tc.text {
			if !strings.Contains(text, w) {
				t.Errorf("%s: the text lacks %q:\n%s", tc.subject, w, text)
			}
		}
	}
	if !strings.Contains(logs.String(), "no route takes this fax") {
		t.Errorf("the unrouted fax was not logged as an error")
	}

	// The console's feed saw the calls; the metrics counted them.
	seen := map[string]int{}
	for len(events) > 0 {
		e := <-events
		seen[e.Kind]++
	}
	if seen["incoming"] != 4 || seen["page_received"] != 5 || seen["fax_received"] != 4 {
		t.Errorf("activity: %v, want 4 incoming, 5 page_received, 4 fax_received", seen)
	}
	mf, err := h.metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range mf {
		for _, m := range f.GetMetric() {
			if strings.Contains(f.GetName(), "received") && strings.Contains(f.GetName(), "fax") {
				label := f.GetName()
				for _, l := range m.GetLabel() {
					label += "," + l.GetName() + "=" + l.GetValue()
				}
				got[label] = m.GetCounter().GetValue()
			}
		}
	}
	want := map[string]float64{
		"mediagw_faxes_received_total,complete=true,driver=line":  3,
		"mediagw_faxes_received_total,complete=false,driver=line": 1,
		"mediagw_fax_pages_received_total,driver=line":            5,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("metric %s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
