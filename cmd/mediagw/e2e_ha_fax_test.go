package main_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
)

// faxRoutes is the email-to-fax map with routes by the number's area
// code: 201 goes out on fax-a, 415 on fax-c (which no gateway runs), any
// other number on fax-b.
func faxRoutes(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/maps/email-to-fax.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := string(b)
	i, j := strings.Index(m, "\nroutes:\n"), strings.Index(m, "\n# Delivery reports")
	if i < 0 || j < i {
		t.Fatal("email-to-fax.yaml: no routes section to replace")
	}
	return m[:i] + `
routes:
  - name: line-a
    when: 'fields.fax_number startsWith "+1201"'
    drivers: [fax-a]
  - name: nowhere
    when: 'fields.fax_number startsWith "+1415"'
    drivers: [fax-c]
  - name: line-b
    drivers: [fax-b]
` + m[j:]
}

// haFaxDriver is a fax driver on one emulated Class 1 modem, the device a
// name in the gateway's folder (as udev would make it) that the test
// points at an emulator's pty.
func haFaxDriver(name, gw, dev string) string {
	return fmt.Sprintf(`  %s:
    type: faxmodem
    gateways: [%s]
    max_attempts: 20
    options:
      devices:
        - {device: %s, class: "1"}
      local_id: "+1 555 0001"
      resolution: standard
      modulations: [V.29]
      dial: {region: US}
      reprobe_after: 1s
      retry:
        delay: {modem_not_responding: 1s, no_modem: 1s}
`, name, gw, dev)
}

// sheet is a sparse page, different for each k (a bar as long as k and a
// frame), that goes over the line in about a second.
func sheet(k int) []byte {
	img := image.NewGray(image.Rect(0, 0, 200, 280))
	for y := 0; y < 280; y++ {
		for x := 0; x < 200; x++ {
			v := uint8(255)
			if (y >= 10 && y < 20 && x >= 10 && x < 10+15*k) || ((y == 40 || y == 270) && x >= 10 && x < 190) {
				v = 0
			}
			img.SetGray(x, y, color.Gray{Y: v})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img) //nolint:errcheck // in memory
	return b.Bytes()
}

// pointAt makes (or replaces) the symlink link to a tty.
func pointAt(t *testing.T, link, tty string) {
	t.Helper()
	tmp := link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(tty, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
}

// received names, for each page an emulator received, the drawing it
// shows (pixel for pixel), 0 for a page that matches none.
func received(t *testing.T, f *faxsim, drawings map[int]*render.Page) []int {
	t.Helper()
	var out []int
	for n := 1; n <= f.count("received page"); n++ {
		w, h, pix := f.page(t, n)
		got := 0
		for k, p := range drawings {
			if p.Width == w && p.Height == h && bytes.Equal(pix, p.Pix[:h*p.Stride]) {
				got = k
			}
		}
		out = append(out, got)
	}
	return out
}

// TestHAModemsOnTwoHosts: two gateways on one PostgreSQL spool and one
// Maildir; gateway a has the modem of fax-a, gateway b that of fax-b (each
// an emulated Class 1 modem on a pty with a fax machine behind it), fax-c
// is run by no gateway. The map routes by the number's area code. Every
// page of fax-a's faxes arrives, as rendered, at a's far end and none at
// b's, and the other way round. With a's line down, `mediagw status` shows
// fax-a out of service with its job waiting, fax-b's jobs still go out;
// a's line back, its job goes out. The same with gateway a stopped: b's
// status says a is down and no gateway runs fax-a. fax-c's job waits
// throughout, shown as such.
func TestHAModemsOnTwoHosts(t *testing.T) {
	hs := newHASite(t)
	md := hs.maildir("Maildir")
	if err := os.WriteFile(filepath.Join(hs.dir, "fax-routes.yaml"), []byte(faxRoutes(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	sims := map[string]*faxsim{"a": startFaxsim(t), "b": startFaxsim(t)}
	ttys := map[string]string{}
	for _, gw := range []string{"a", "b"} {
		ttys[gw] = filepath.Join(hs.dir, gw, "ttyFAX0")
	}
	ports := map[string]int{"a": freePort(t), "b": freePort(t)}
	body := func(gw string) string {
		status := fmt.Sprintf("status:\n  listen: 127.0.0.1:%d\n", ports[gw])
		// Each gateway names its own tty for every driver: a driver run
		// where it should not would dial out on that host's modem.
		tty := filepath.Join(hs.dir, gw, "ttyFAX0")
		return status + fmt.Sprintf(`log:
  level: info
  format: text
connectors:
  inbox:
    plugin: mediagw-connector-maildir
    map: fax-routes
    config:
      path: %s
      failed: %s/failed
maps:
  fax-routes: %s/fax-routes.yaml
drivers:
`, md, hs.dir, hs.dir) + haFaxDriver("fax-a", "a", tty) + haFaxDriver("fax-b", "b", tty) + haFaxDriver("fax-c", "c", tty)
	}
	sa, sb := hs.gateway("a", body("a")), hs.gateway("b", body("b"))
	for gw, f := range sims {
		pointAt(t, ttys[gw], f.dev)
	}

	// The faxes, a drawing a page: which fax each is, its number and pages.
	type fax struct {
		name, number string
		pages        []int
	}
	faxes := []fax{
		{"a1", "2015550101", []int{1}}, {"a2", "2015550102", []int{2, 3}},
		{"b1", "2125550101", []int{4}}, {"b2", "2125550102", []int{5, 6}},
		{"c1", "4155550101", []int{7}},
		// sent while a's line is down
		{"a3", "2015550103", []int{8}}, {"b3", "2125550103", []int{9}},
		// sent while gateway a is stopped
		{"a4", "2015550104", []int{10}}, {"b4", "2125550104", []int{11}},
	}
	drawings := map[int]*render.Page{}
	drop := func(f fax) {
		var imgs [][]byte
		for _, k := range f.pages {
			imgs = append(imgs, sheet(k))
			drawings[k] = rendered(t, [][]byte{sheet(k)})[0]
		}
		dropInto(t, md, f.name+".eml", faxMail(t, f.number, imgs))
	}
	for _, f := range faxes[:5] {
		drop(f)
	}
	ga, gb := sa.start(), sb.start()
	logs := func() string {
		return ga.logText() + gb.logText() + "\nfaxsim a:\n" + sims["a"].text() + "\nfaxsim b:\n" + sims["b"].text()
	}
	waitFor(t, "fax-a's 3 pages at a's far end, fax-b's 3 at b's", 60*time.Second, func() bool {
		return sims["a"].count("received page") >= 3 && sims["b"].count("received page") >= 3
	}, logs)
	check := func(f *faxsim, gw string, want []int) {
		t.Helper()
		got := received(t, f, drawings)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s's far end received the drawings %v, want %v (0: a page that matches no rendered page)", gw, got, want)
		}
	}
	check(sims["a"], "a", []int{1, 2, 3})
	check(sims["b"], "b", []int{4, 5, 6})

	statusOn := func(s *site) string {
		b, _ := exec.Command(filepath.Join(hs.bin, "mediagw"), "status", "-c", s.cfg).CombinedOutput()
		return string(b)
	}
	status := func() string { return statusOn(sa) }
	var st string
	waitFor(t, "status: fax-c's job waits for a gateway", 30*time.Second, func() bool {
		st = status()
		return strings.Contains(st, "no gateway runs driver fax-c: 1 job(s) wait for one")
	}, func() string { return logs() + "\nstatus:\n" + st })

	// a's line goes down: its emulator stops, the tty is gone.
	sims["a"].cmd.Process.Signal(os.Interrupt)
	<-sims["a"].done
	os.Remove(ttys["a"])
	down := time.Now()
	drop(faxes[5])
	drop(faxes[6])
	waitFor(t, "b3 out on b's line while a's is down", 60*time.Second, func() bool {
		return sims["b"].count("received page") >= 4
	}, logs)
	// The driver's modem is out of service (degraded, then down after a
	// failed probe); its job waits, queued or to be retried.
	faxA := regexp.MustCompile(`(?m)^fax-a\s+(?:degraded|down)\s+(\d+)\s+\d+/\d+\s+(\d+)\s.*no modem in service`)
	waitFor(t, "status: fax-a out of service, its job waiting", 30*time.Second, func() bool {
		st = status()
		m := faxA.FindStringSubmatch(st)
		return m != nil && m[1]+m[2] != "00"
	}, func() string { return logs() + "\nstatus:\n" + st })
	t.Logf("mediagw status with a's line down:\n%s", st)
	if !strings.Contains(st, "no gateway runs driver fax-c: 1 job(s) wait for one") {
		t.Errorf("status lost fax-c's waiting job:\n%s", st)
	}

	// a's line is back (a new emulator, the tty pointed at it): a3 goes out.
	sims["a2"] = startFaxsim(t)
	pointAt(t, ttys["a"], sims["a2"].dev)
	back := time.Now()
	waitFor(t, "a3 out on a's line once it is back", 60*time.Second, func() bool {
		return sims["a2"].count("received page") >= 1
	}, func() string { return logs() + "\nfaxsim a (back):\n" + sims["a2"].text() })
	t.Logf("a's line was down %v; fax-a's job went out %v after it was back", back.Sub(down).Round(100*time.Millisecond), time.Since(back).Round(100*time.Millisecond))

	// Gateway a stops (its host down): fax-a's job waits for it, named in
	// b's status; fax-b's goes out.
	ga.stop(t)
	logA := ga.logText()
	drop(faxes[7])
	drop(faxes[8])
	waitFor(t, "b4 out on b's line while gateway a is stopped", 60*time.Second, func() bool {
		return sims["b"].count("received page") >= 5
	}, logs)
	waitFor(t, "b's status: a down, fax-a's job waiting", 30*time.Second, func() bool {
		st = statusOn(sb)
		return regexp.MustCompile(`(?m)^a\s+down\s`).MatchString(st) &&
			strings.Contains(st, "no gateway runs driver fax-a: 1 job(s) wait for one")
	}, func() string { return logs() + "\nstatus:\n" + st })
	t.Logf("mediagw status on b with gateway a stopped:\n%s", st)
	if n := sims["a2"].count("received page"); n != 1 {
		t.Fatalf("a's far end received %d pages while gateway a was stopped", n-1)
	}

	// a is back: its job goes out on its line.
	ga = sa.start()
	waitFor(t, "a4 out on a's line once gateway a is back", 60*time.Second, func() bool {
		return sims["a2"].count("received page") >= 2
	}, func() string { return logs() + "\nfaxsim a (back):\n" + sims["a2"].text() })
	ga.stop(t)
	gb.stop(t)
	check(sims["a"], "a", []int{1, 2, 3})
	check(sims["a2"], "a (back)", []int{8, 10})
	check(sims["b"], "b", []int{4, 5, 6, 9, 11})
	if n := countIn(filepath.Join(md, "cur")); n != len(faxes) {
		t.Errorf("%d of %d mails settled", n, len(faxes))
	}
	// No gateway dialled for a driver it does not run.
	for gw, log := range map[string]string{"a": logA + ga.logText(), "b": gb.logText()} {
		for _, d := range []string{"fax-a", "fax-b", "fax-c"} {
			if d[len(d)-1:] != gw && regexp.MustCompile(`msg="driver started".*driver=`+d+`\b`).MatchString(log) {
				t.Errorf("gateway %s started driver %s, which it does not run", gw, d)
			}
		}
	}
}
