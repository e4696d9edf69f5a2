package console

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/modemsim"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

const faxSite = `spool:
  dir: var/spool
connectors:
  inbox:
    plugin: %s
    map: email-to-fax
    config:
      path: var/Maildir
      failed: var/failed
      poll_interval: 100ms
maps:
  email-to-fax: email-to-fax.yaml
drivers:
  fax:
    type: faxmodem
    options:
      devices:
        - {device: %s, flow: none}
        - {device: %s, flow: none}
      local_id: "+1 555 0100"
      reprobe_after: 1ms
      retry:
        delay: {modem_not_responding: 50ms}
      dial: {region: US}
  fax-international:   # the map routes numbers abroad here
    type: file
    options: {dir: var/abroad}
`

// TestOverviewModemLights runs a real host with the fax driver on two
// modems: a device that does not exist, listed first, and the modem
// emulator on a pty. A mail is faxed: the first attempt finds the dead
// modem, the second probes it again (it still does not answer) and sends
// on the emulator. The overview then shows the dead modem red with the
// reason and the working one green, and the gateway degraded.
func TestOverviewModemLights(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tty, sim, err := modemsim.PTY(ctx, modemsim.Remote{CSI: "+1 201 5550142"})
	if err != nil {
		testenv.Skip(t, "no pty: "+err.Error())
	}
	bin := testenv.Binaries(t, "github.com/mediagw/mediagw/plugin/maildir/cmd/mediagw-connector-maildir")
	dir := t.TempDir()
	for _, d := range []string{"var/Maildir/new", "var/Maildir/cur", "var/Maildir/tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m, err := os.ReadFile("../../examples/maps/email-to-fax.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(dir, "ttyDEAD")
	writeFile(t, filepath.Join(dir, "email-to-fax.yaml"), string(m))
	cfgPath := filepath.Join(dir, "mediagw.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(faxSite, filepath.Join(bin, "mediagw-connector-maildir"), dead, tty))
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	plan, err := host.Prepare(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(plan, log)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx, plan) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	b := NewHostBackend(h, plan)
	lights := func() map[string]Unit {
		ov, err := b.Overview(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]Unit{}
		for _, u := range ov.Units {
			if u.Kind == "modem" {
				out[u.Name] = u
			}
		}
		return out
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(lights()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the fax driver did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := lights(); len(got) != 2 || got["fax "+dead].Light != Green || got["fax "+tty].Light != Green {
		t.Fatalf("before any call: %+v", got)
	}

	mail := "From: Dave <dave@example.com>\r\nTo: fax@example.com\r\nSubject: Fax: +1 (201) 555-0142\r\nMessage-ID: <m1@example.com>\r\n\r\nThe shipment leaves on Friday.\r\n"
	writeFile(t, filepath.Join(dir, "var/Maildir/tmp/m1"), mail)
	if err := os.Rename(filepath.Join(dir, "var/Maildir/tmp/m1"), filepath.Join(dir, "var/Maildir/new/m1")); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for len(sim.Pages()) == 0 || busy(t, h) {
		if time.Now().After(deadline) {
			t.Fatalf("the fax was not sent: pages %d, modems %+v", len(sim.Pages()), lights())
		}
		time.Sleep(50 * time.Millisecond)
	}

	got := lights()
	if u := got["fax "+dead]; u.Light != Red || u.State != "not answering" || !strings.Contains(u.LastError, "cannot open "+dead) || u.Since.IsZero() {
		t.Errorf("dead modem: %+v, want red, not answering, cannot open", u)
	}
	if u := got["fax "+tty]; u.Light != Green || u.State != "idle" || u.LastError != "" {
		t.Errorf("working modem: %+v, want green and idle", u)
	}
	if st, _ := h.Status(t.Context()); st.Health != host.Degraded || len(st.Drivers["fax"].Devices) != 2 {
		t.Errorf("status %s with devices %+v, want degraded with two", st.Health, st.Drivers["fax"].Devices)
	}

	// The page shows both lights, with the dead modem's reason.
	srv, err := New(b, Options{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "http://127.0.0.1:8025/", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	srv.ServeHTTP(rec, req)
	page := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("GET /: %d", rec.Code)
	}
	for _, want := range []string{
		fmt.Sprintf(`data-unit="modem/fax %s" data-light="red"`, dead),
		fmt.Sprintf(`data-unit="modem/fax %s" data-light="green"`, tty),
		"cannot open " + dead,
		"probed again: ",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("overview page lacks %q", want)
		}
	}
}

// busy reports whether the fax driver still has jobs.
func busy(t *testing.T, h *host.Host) bool {
	st, err := h.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.Queued["fax"] > 0
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
