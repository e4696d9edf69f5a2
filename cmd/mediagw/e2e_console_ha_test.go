package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mediagw/mediagw/internal/browsertest"
)

// TestConsoleGatewaysInBrowser: three real gateways on one private
// PostgreSQL, the overview of one of them in headless Chromium. gw-north
// owns the mailbox, so on gw-east its connector is on standby; gw-west,
// the only gateway with driver line-west, is stopped while mails for that
// driver arrive: its card turns red and so does the driver's ("no gateway
// runs driver line-west"), with the jobs that wait for it.
func TestConsoleGatewaysInBrowser(t *testing.T) {
	hs := newHASite(t)
	md := hs.maildir("Maildir")
	m, err := os.ReadFile("../../examples/maps/archive.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hs.dir, "to-west.yaml"), []byte(strings.Replace(string(m), "drivers: [archive]", "drivers: [line-west]", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	body := func(gw string) string {
		status := ""
		if gw == "gw-east" {
			status = fmt.Sprintf("status:\n  listen: 127.0.0.1:%d\n", port)
		}
		return status + fmt.Sprintf(`connectors:
  inbox:
    plugin: mediagw-connector-maildir
    map: to-west
    config:
      path: %[1]s
      failed: %[2]s/failed
maps:
  to-west: %[2]s/to-west.yaml
drivers:
  archive:
    type: file
    options:
      dir: %[2]s/%[3]s/archive
  line-west:
    type: file
    gateways: [gw-west]
    options:
      dir: %[2]s/%[3]s/line-west
`, md, hs.dir, gw)
	}
	north := hs.gateway("gw-north", body("gw-north")).start()
	waitFor(t, "gw-north owns the mailbox", 30*time.Second, func() bool { return hs.owner("inbox") == "gw-north" }, north.logText)
	east := hs.gateway("gw-east", body("gw-east")).start()
	west := hs.gateway("gw-west", body("gw-west")).start()
	logs := func() string { return north.logText() + east.logText() + west.logText() }
	url := fmt.Sprintf("http://127.0.0.1:%d", port)

	b := browsertest.Start(t, 120*time.Second)
	if err := b.Do(
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(`[data-unit="gateway/gw-west"][data-light="green"]`),
		chromedp.WaitVisible(`[data-unit="connector/inbox"]`),
	); err != nil {
		t.Fatalf("overview with three gateways up: %v\n%s", err, logs())
	}

	// gw-west stops; mails for its line arrive and wait.
	west.stop(t)
	for i := range 3 {
		dropInto(t, md, fmt.Sprintf("w%d.eml", i), mail(i))
	}
	if err := b.Do(
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(`[data-unit="gateway/gw-west"][data-light="red"]`),
		chromedp.WaitVisible(`[data-unit="driver/line-west"][data-light="red"]`),
	); err != nil {
		t.Fatalf("gw-west down: %v\n%s", err, logs())
	}
	// The page refreshes itself every two seconds; wait until all three jobs are counted.
	deadline := time.Now().Add(30 * time.Second)
	for {
		card, _ := b.Text(`[data-unit="driver/line-west"]`)
		if strings.Contains(card, "queued 3") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("line-west's card %q; want 3 queued\n%s", card, logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := b.Do(b.Shot("console-gateways")); err != nil {
		t.Fatal(err)
	}
	for sel, want := range map[string]string{
		`[data-unit="gateway/gw-west"]`:  "down: no heartbeat",
		`[data-unit="gateway/gw-east"]`:  "up (this gateway)",
		`[data-unit="gateway/gw-north"]`: "connectors owned: inbox",
		`[data-unit="connector/inbox"]`:  "standby",
		`[data-unit="driver/line-west"]`: "no gateway runs driver line-west",
	} {
		if got, err := b.Text(sel); err != nil || !strings.Contains(got, want) {
			t.Errorf("%s shows %q (%v), want %q", sel, got, err, want)
		}
	}
	if ok, err := b.Eval(`document.querySelector('[data-unit="connector/inbox"]').dataset.light === "green"`); !ok {
		t.Errorf("the standby connector is not green (%v)", err)
	}
	if g, _ := b.Text(`.health`); strings.TrimSpace(g) != "This gateway, gw-east: degraded" {
		t.Errorf("the headline says %q, want this gateway's name and degraded", g)
	}
	if n := countIn(filepath.Join(hs.dir, "gw-north", "line-west")) + countIn(filepath.Join(hs.dir, "gw-east", "line-west")); n != 0 {
		t.Errorf("line-west ran on a gateway without its lines: %d written", n)
	}
}
