package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/internal/browsertest"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
)

// TestBrowserReceivedFax: a real host (bbolt spool, the inbound store and
// its default route) receives a fax on a SIMULATED call — the test plays
// the modem's part, Begin, two pages, a hang-up — and the job's page in
// headless Chromium shows who sent it to which number, that it is
// incomplete, both pages as thumbnails that load, and the call's T.30 log.
func TestBrowserReceivedFax(t *testing.T) {
	h, plan := lineHost(t) // not run: the received fax's job stays queued
	ctx := context.Background()
	call := &linedriver.Call{ID: "sim-call-1", Driver: "line", Device: "simulated", CallerNumber: "+1 555 0100",
		CalledNumber: "100", RemoteID: "+1 555 0100 ACME", Started: time.Now(), Params: "simulated: no modem, no line",
		Log: "(simulated call: these T.30 lines are written by the test; no modem answered)\n" +
			"-> CSI +1 555 0002\n-> DIS V.17 14400 ECM\n<- TSI +1 555 0100 ACME\n<- DCS V.17 14400 ECM fine\n" +
			"<- TCF\n-> CFR\n<- page 1 (ECM)\n<- MPS\n-> MCF\n<- page 2 (ECM)\n(the far end hung up before EOP)\n"}
	if err := h.Inbound().Begin(ctx, call); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 2; n++ {
		text := fmt.Sprintf("SIMULATED FAX\n\nFrom: ACME\nTo: 100\n\nPage %d\n\nDrawn by the test; no fax call took place.\n", n)
		ps, err := render.Render(ctx, []render.Document{{Name: "page.txt", MediaType: "text/plain", Data: []byte(text)}},
			render.Options{Resolution: render.Fine})
		if err != nil {
			t.Fatal(err)
		}
		p := ps[0]
		ip := &linedriver.InboundPage{Width: p.Width, Height: p.Height, XRes: 204, YRes: p.Resolution.DPI()}
		for y := range p.Height {
			ip.Rows = append(ip.Rows, bytes.Clone(p.Row(y)))
		}
		if err := h.Inbound().Page(ctx, call, n, ip); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Inbound().End(ctx, call, errors.New("the far end hung up")); err != nil {
		t.Fatal(err)
	}
	jobs, err := h.Spool().Jobs(ctx, spool.Query{})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs %v, %v; want the received fax's", jobs, err)
	}
	id := jobs[0].ID

	srv, err := New(NewHostBackend(h, plan), Options{Loopback: true}) // Chromium connects from 127.0.0.1
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	b := browsertest.Start(t, 60*time.Second)
	if err := b.Do(
		chromedp.Navigate(ts.URL+"/jobs/"+id),
		chromedp.WaitVisible(`dl.fields`),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			// Every thumbnail has loaded and decoded: an image that failed has naturalWidth 0.
			_, err := chromedp.Poll[bool](`(() => { const im = [...document.querySelectorAll(".thumbs img")];
				return im.length === 2 && im.every(i => i.complete && i.naturalWidth > 0); })()`,
				chromedp.WithPollingTimeout(20*time.Second))(ctx, tg)
			return err
		}),
		chromedp.WaitVisible(`details.call-log pre.log`),
		b.Shot("console-fax-received"),
	); err != nil {
		t.Fatalf("the received fax's page: %v", err)
	}
	fields, _ := b.Text(`dl.fields`)
	for _, want := range []string{"+1 555 0100 ACME", "+1 555 0100", "100", "the far end hung up", "simulated"} {
		if !strings.Contains(fields, want) {
			t.Errorf("the fields lack %q:\n%s", want, fields)
		}
	}
	for label, want := range map[string]string{"Pages": "2", "Station id": "+1 555 0100 ACME", "Caller": "+1 555 0100", "Called number": "100"} {
		got, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](fmt.Sprintf(
			`(() => { const dt = [...document.querySelectorAll("dl.fields dt")].find(d => d.textContent.trim().startsWith(%q));
				return dt ? dt.nextElementSibling.textContent.trim() : "(none)"; })()`, label)))
		if err != nil || got != want {
			t.Errorf("field %s = %q (%v), want %q", label, got, err, want)
		}
	}
	log, _ := b.Text(`details.call-log pre.log`)
	if !strings.Contains(log, "<- DCS V.17 14400 ECM fine") || !strings.Contains(log, "simulated call") {
		t.Errorf("T.30 log:\n%s", log)
	}

	// On a phone the page fits its width: nothing to scroll sideways.
	if err := b.Do(chromedp.EmulateViewport(390, 844), chromedp.Navigate(ts.URL+"/jobs/"+id), chromedp.WaitVisible(`dl.fields`)); err != nil {
		t.Fatal(err)
	}
	if fits, err := b.Eval(`document.documentElement.scrollWidth <= window.innerWidth`); !fits {
		w, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		t.Errorf("on a 390 px wide screen the page is %d px wide (%v)", w, err)
	}
}

// TestBrowserGateways: the overview of gateway gw-east in a group of three
// on one PostgreSQL spool, on the fake backend with the units the host
// backend makes of such a group: gw-west is down, connector o365 is on
// standby here (gw-north runs it), and driver fax-west, placed on gw-west
// only, has jobs no gateway runs. (TestConsoleGatewaysInBrowser in
// cmd/mediagw shows the same on three real gateways and takes the
// screenshot.)
func TestBrowserGateways(t *testing.T) {
	r := newRig(t, true)
	now := time.Now()
	r.fake.mu.Lock()
	r.fake.gateway = "gw-east"
	r.fake.units = []Unit{
		{Kind: "gateway", Name: "gw-east", Light: Green, State: "up (this gateway)", Since: now.Add(-time.Second),
			Detail: []Field{{"drivers", "fax, file"}, {"connectors owned", "inbox"}, {"started", now.Add(-26 * time.Hour).Format(time.DateTime)}, {"version", "v1.4.0"}}},
		{Kind: "gateway", Name: "gw-north", Light: Green, State: "up", Since: now.Add(-2 * time.Second),
			Detail: []Field{{"drivers", "fax, file"}, {"connectors owned", "o365"}, {"started", now.Add(-26 * time.Hour).Format(time.DateTime)}, {"version", "v1.4.0"}}},
		{Kind: "gateway", Name: "gw-west", Light: Red, State: "down: no heartbeat; its connectors go to the other gateways", Since: now.Add(-3 * time.Minute),
			Detail: []Field{{"drivers", "fax-west"}, {"connectors owned", "none"}, {"started", now.Add(-50 * time.Hour).Format(time.DateTime)}, {"version", "v1.4.0"}}},
		{Kind: "connector", Name: "inbox", Light: Green, State: "healthy", Since: now.Add(-time.Hour)},
		{Kind: "connector", Name: "o365", Light: Green, State: "standby: another gateway owns this connector", Since: now.Add(-time.Hour)},
		{Kind: "driver", Name: "fax", Light: Green, State: "healthy", Since: now.Add(-time.Hour)},
		{Kind: "driver", Name: "file", Light: Green, State: "healthy", Since: now.Add(-time.Hour)},
		{Kind: "driver", Name: "fax-west", Light: Red, State: "waiting", LastError: "no gateway runs driver fax-west: its jobs wait for one", Queued: 3},
		{Kind: "spool", Name: "spool", Light: Green, State: "healthy", Detail: []Field{{"write errors", "0"}, {"deferrals", "0"}}},
	}
	r.fake.mu.Unlock()
	b := browsertest.Start(t, 60*time.Second)
	ts := httptest.NewServer(r.srv)
	defer ts.Close()
	if err := b.Do(
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(`[data-unit="gateway/gw-west"][data-light="red"]`),
	); err != nil {
		t.Fatalf("overview: %v", err)
	}
	// Another gateway down does not make this one down; a driver that no
	// gateway runs makes it degraded.
	if g, _ := b.Text(`.health`); strings.TrimSpace(g) != "This gateway, gw-east: degraded" {
		t.Errorf("the headline says %q, want this gateway's name and degraded", g)
	}
	for sel, want := range map[string]string{
		`[data-unit="gateway/gw-west"]`:  "down: no heartbeat",
		`[data-unit="gateway/gw-east"]`:  "up (this gateway)",
		`[data-unit="gateway/gw-north"]`: "connectors owned: o365",
		`[data-unit="connector/o365"]`:   "standby",
		`[data-unit="driver/fax-west"]`:  "no gateway runs driver fax-west",
	} {
		if got, err := b.Text(sel); err != nil || !strings.Contains(got, want) {
			t.Errorf("%s shows %q (%v), want %q", sel, got, err, want)
		}
	}
	for sel, light := range map[string]string{`connector/o365`: "green", `driver/fax-west`: "red", `gateway/gw-north`: "green"} {
		if ok, err := b.Eval(fmt.Sprintf(`document.querySelector('[data-unit=%q]').dataset.light === %q`, sel, light)); !ok {
			t.Errorf("%s is not %s (%v)", sel, light, err)
		}
	}
}
