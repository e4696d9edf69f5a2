package main

// The received-fax demo, `mediagw-demo --example fax-in`: a simulated line
// (no modem, no phone call: the pages are drawn here) hands three faxes to
// the real host, which stores them page by page, routes them by its
// inbound: rules and mails two through the Maildir connector's outbox and
// files one in a folder.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/mediagw/mediagw/examples"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
)

const faxInConfig = `# The received-fax demo: a simulated fax line (in mediagw-demo only) answers
# three calls; the inbound rules mail faxes for 100 to sales and file the rest.
spool:
  dir: var/spool
connectors:
  inbox:
    plugin: mediagw-connector-maildir
    map: archive
    config:
      path: var/Maildir
      failed: var/failed
      send:
        from: fax@demo.example
        outbox: var/outbox        # each mail the gateway sends is written here
maps:
  archive: maps/archive.yaml
drivers:
  line:
    type: simulated-fax-line      # the demo's stand-in for a fax modem set to answer
  archive:                        # the map's driver; no mail comes in during this demo
    type: file
    options: {dir: var/archive}
inbound:
  routes:
    - name: sales
      match: {called: ["100"]}
      mail:
        connector: inbox
        from: Fax gateway <fax@demo.example>
        to: [sales@demo.example]
        attach: [pdf, tiff]
  default:
    folder: var/faxes
`

// simCall is one simulated call.
type simCall struct {
	id, called, caller, remoteID string
	pages, cutAfter              int // cutAfter > 0: the far end hangs up after that page
}

var simCalls = []simCall{
	{id: "demo-call-1", called: "100", caller: "+1 555 0100", remoteID: "+1 555 0100 ACME", pages: 2},
	{id: "demo-call-2", called: "100", caller: "+1 555 0177", remoteID: "LAB NORTH", pages: 3, cutAfter: 1},
	{id: "demo-call-3", called: "999", caller: "+1 555 0199", remoteID: "", pages: 1},
}

// simLine is the demo's receiving "driver": it sends nothing and plays the
// simulated calls into the host's Inbound once, as a modem answering them
// would (Begin, each page, End). It is registered in mediagw-demo only.
type simLine struct {
	name string
	out  func(format string, args ...any)
}

var simSay = func(string, ...any) {}

func init() {
	linedriver.Register("simulated-fax-line", func(name string, _ json.RawMessage, _ *slog.Logger) (linedriver.Driver, error) {
		return &simLine{name: name, out: simSay}, nil
	})
}

func (d *simLine) Name() string { return d.name }
func (d *simLine) Check(*linedriver.Record) error {
	return errors.New("the simulated line only receives")
}
func (d *simLine) Slots() int   { return 1 }
func (d *simLine) Close() error { return nil }
func (d *simLine) Deliver(context.Context, *linedriver.Job, func(linedriver.Progress)) linedriver.Outcome {
	return linedriver.Fail("receive_only", "the simulated line only receives")
}

func (d *simLine) Receive(ctx context.Context, in linedriver.Inbound) error {
	for _, c := range simCalls {
		call := &linedriver.Call{ID: c.id, Driver: d.name, Device: "simulated", CalledNumber: c.called, CallerNumber: c.caller,
			RemoteID: c.remoteID, Started: time.Now(), Params: "simulated: no modem, no line",
			Log: "(simulated call: no T.30 exchange took place)\n"}
		hangup := ""
		if c.cutAfter > 0 {
			hangup = fmt.Sprintf(", the far end hangs up after page %d", c.cutAfter)
		}
		d.out("simulated call %s to %s from %s (%s), %d page(s)%s", c.id, c.called, c.caller, orNone(c.remoteID), c.pages, hangup)
		if err := in.Begin(ctx, call); err != nil {
			return err
		}
		var cut error
		for n := 1; n <= c.pages; n++ {
			if c.cutAfter > 0 && n > c.cutAfter {
				cut = errors.New("the far end hung up")
				break
			}
			p, err := simPage(c, n)
			if err != nil {
				return err
			}
			if err := in.Page(ctx, call, n, p); err != nil {
				return err
			}
			d.out("  page %d stored on disk (only now would a modem confirm it to the sender)", n)
		}
		if err := in.End(ctx, call, cut); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "no station id"
	}
	return s
}

func simPage(c simCall, n int) (*linedriver.InboundPage, error) {
	text := fmt.Sprintf("SIMULATED FAX\n\nFrom: %s\nTo: %s\n\nPage %d of %d\n\nThis page was drawn by mediagw-demo; no fax call took place.\n",
		orNone(c.remoteID), c.called, n, c.pages)
	ps, err := render.Render(context.Background(), []render.Document{{Name: "page.txt", MediaType: "text/plain", Data: []byte(text)}},
		render.Options{Resolution: render.Fine})
	if err != nil {
		return nil, err
	}
	p := ps[0]
	ip := &linedriver.InboundPage{Width: p.Width, Height: p.Height, XRes: 204, YRes: p.Resolution.DPI()}
	for y := range p.Height {
		ip.Rows = append(ip.Rows, bytes.Clone(p.Row(y)))
	}
	return ip, nil
}

func demoFaxIn(stdout, stderr io.Writer, dir string, verbose bool, timeout time.Duration) error {
	dir, err := siteDir(dir, "mediagw-demo-")
	if err != nil {
		return err
	}
	step := narrator(stdout)
	simSay = step
	step("the received-fax demo in %s: the fax line is SIMULATED (no modem, no phone call); the gateway, its routing and the mail connector are real", dir)
	b, err := examples.FS.ReadFile("maps/archive.yaml")
	if err != nil {
		return err
	}
	for _, d := range []string{"maps", "var/Maildir/new", "var/Maildir/cur", "var/Maildir/tmp", "var/outbox/new", "var/outbox/cur", "var/outbox/tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	cfgPath := filepath.Join(dir, "fax-in.yaml")
	if err := os.WriteFile(filepath.Join(dir, "maps", "archive.yaml"), b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(cfgPath, []byte(faxInConfig), 0o644); err != nil {
		return err
	}
	g, err := startGateway(cfgPath, stderr, verbose, false)
	if err != nil {
		return err
	}
	step("gateway running: calls to 100 are mailed to sales@demo.example through connector inbox (its outbox), the rest filed in var/faxes")
	var mails, filed []string
	if !g.await(timeout, func() bool {
		mails, _ = filepath.Glob(filepath.Join(dir, "var/outbox/new/*"))
		filed, _ = filepath.Glob(filepath.Join(dir, "var/faxes/*/record.json"))
		return len(mails) == 2 && len(filed) == 1 && g.queueEmpty()
	}) {
		return fmt.Errorf("after %s: %d of 2 mails sent, %d of 1 fax filed (run with -v to see the gateway's log)", timeout, len(mails), len(filed))
	}
	if err := g.stop(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nSummary")
	for _, m := range mails {
		raw, err := os.ReadFile(m)
		if err != nil {
			return err
		}
		r, err := gomail.CreateReader(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		subject, _ := r.Header.Subject()
		to, _ := r.Header.AddressList("To")
		var atts []string
		for {
			p, err := r.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", m, err)
			}
			if ah, ok := p.Header.(*gomail.AttachmentHeader); ok {
				name, _ := ah.Filename()
				n, _ := io.Copy(io.Discard, p.Body)
				atts = append(atts, fmt.Sprintf("%s (%d KB)", name, (n+1023)/1024))
			}
		}
		fmt.Fprintf(stdout, "  mailed  to %s: %q\n          attached: %s\n          %s\n", to[0].Address, subject, strings.Join(atts, ", "), m)
	}
	for _, f := range filed {
		b, _ := os.ReadFile(f)
		var rec struct {
			SourceID string            `json:"source_id"`
			Fields   map[string]string `json:"fields"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  filed   %s (to %s, %s page(s), route %s)\n          %s\n", rec.SourceID, rec.Fields["called_number"], rec.Fields["pages"], rec.Fields["route"], filepath.Dir(f))
	}
	fmt.Fprintf(stdout, "\nAll 3 simulated faxes delivered: 2 mailed (one cut after page 1, marked incomplete), 1 filed. Files are in %s\n", dir)
	return nil
}
