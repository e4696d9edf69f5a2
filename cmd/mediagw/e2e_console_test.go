package main_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mediagw/mediagw/host/console/passwd"
	"github.com/mediagw/mediagw/internal/browsertest"
	"github.com/mediagw/mediagw/internal/testenv"
)

// TestConsoleInBrowser opens the console of a real gateway (the Maildir
// connector plugin, the spool, the file driver) in headless Chromium: the
// lights turn green, the activity feed shows a mail as it goes through
// without a reload, a job that failed because the archive could not be
// written is retried with the button once the archive is fixed and then
// delivered, and the connector's Test shows ok. Screenshots go to
// $MEDIAGW_SCREENSHOTS (docs/screenshots holds the ones the docs show).
func TestConsoleInBrowser(t *testing.T) {
	s := newSite(t)
	s.editConfig("log:\n", "status:\n  listen: 127.0.0.1:0\n\nlog:\n")
	s.editConfig("max_attempts: 10", "max_attempts: 1")
	// The archive folder is a file: every attempt to write it fails.
	archive := filepath.Join(s.dir, "var/archive")
	if err := os.WriteFile(archive, []byte("in the way\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := browsertest.Start(t, 120*time.Second)
	g := s.start()
	g.pluginPid(t)
	var url string
	deadline := time.Now().Add(30 * time.Second)
	for url == "" {
		if m := statusURL.FindStringSubmatch(g.logText()); m != nil {
			url = strings.TrimSuffix(m[1], "/status")
		} else if time.Now().After(deadline) {
			t.Fatalf("no status endpoint in the log:\n%s", g.logText())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}

	// The lights turn green.
	if err := b.Do(
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(`[data-unit="connector/inbox"][data-light="green"]`),
		chromedp.WaitVisible(`[data-unit="driver/archive"][data-light="green"]`),
		chromedp.WaitVisible(`[data-unit="spool/spool"][data-light="green"]`),
	); err != nil {
		t.Fatalf("overview: %v\n%s", err, g.logText())
	}

	// A mail arrives while the activity page is open: the feed shows it
	// come in, mapped and failed at the archive, without a reload.
	if err := b.Do(
		chromedp.Navigate(url+"/activity"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[bool](`document.getElementById("feed-state").textContent === "live" && (window.stayed = true)`,
				chromedp.WithPollingTimeout(20*time.Second))(ctx, tg)
			return err
		}),
	); err != nil {
		t.Fatalf("activity: %v", err)
	}
	s.drop("1.eml", mail(1))
	if err := b.Do(chromedp.WaitVisible(`#feed tr.kind-failed`), b.Shot("console-activity")); err != nil {
		t.Fatalf("the feed did not show the failure: %v\n%s", err, g.logText())
	}
	feed, _ := b.Text(`#feed`)
	for _, w := range []string{"mail received", "mapped", "spooled", "gave up after 1 attempts"} {
		if !strings.Contains(feed, w) {
			t.Errorf("feed lacks %q:\n%s", w, feed)
		}
	}
	if stayed, err := b.Eval(`window.stayed === true`); !stayed {
		t.Errorf("the activity page was reloaded (%v)", err)
	}

	// The failed job: its page, then Retry once the archive is fixed.
	if err := b.Do(
		chromedp.Navigate(url+"/failed"),
		chromedp.WaitVisible(`[data-retry]`),
		b.Shot("console-failed"),
		chromedp.Click(`td a[href^="/jobs/"]`),
		chromedp.WaitVisible(`.attempt`),
		b.Shot("console-job"),
	); err != nil {
		t.Fatalf("failed jobs: %v", err)
	}
	reason, _ := b.Text(`p.error`)
	if !strings.Contains(reason, "io") || !strings.Contains(reason, "archive") {
		t.Errorf("the job's reason %q does not say the archive could not be written", reason)
	}
	if err := os.Remove(archive); err != nil {
		t.Fatal(err)
	}
	if err := b.Do(
		chromedp.Navigate(url+"/failed"),
		chromedp.Click(`[data-retry]`),
		chromedp.WaitVisible(`.flash`),
	); err != nil {
		t.Fatalf("retry: %v", err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for len(s.archive()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the retried job was not delivered:\n%s", g.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := s.archive(); len(got) != 1 || got[0].Fields["subject"] == "" && len(got[0].Fields) == 0 {
		t.Errorf("archive after retry: %+v", got)
	}

	// The overview: everything green, nothing failed; then the Test button.
	if err := b.Do(
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(`[data-unit="connector/inbox"][data-light="green"]`),
		b.Shot("console-overview"),
		chromedp.Click(`[data-test="inbox"]`),
		chromedp.WaitVisible(`#test-category`),
		b.Shot("console-test"),
	); err != nil {
		t.Fatalf("test button: %v", err)
	}
	if cat, _ := b.Text(`#test-category`); cat != "ok" {
		t.Errorf("Test shows %q, want ok", cat)
	}

	// The data-map page shows what the archive map makes of a pasted mail.
	if err := b.Do(
		chromedp.Navigate(url+"/maps"),
		chromedp.SendKeys(`textarea[name=mail]`, strings.ReplaceAll(string(mail(7)), "\r\n", "\n")),
		chromedp.Submit(`form.try`),
		chromedp.WaitVisible(`#map-preview`),
		b.Shot("console-maps"),
	); err != nil {
		t.Fatalf("data-map page: %v", err)
	}
	if pv, _ := b.Text(`#map-preview`); !strings.Contains(pv, "message 7 Ref: M-7") || !strings.Contains(pv, "OK") {
		t.Errorf("map preview:\n%s", pv)
	}
	g.stop(t)
}

// TestConsoleFaxInBrowser: a fax that failed (the line was busy and the
// driver gives up after one attempt) is retried with the console's button;
// the overview shows its pages going out, page k of n, and it is delivered.
// The job's page shows the fax pages and the T.30 log of the failed call;
// the overview shows the modem's own light green. The line is the modem
// emulator (faxsim) on a pty.
func TestConsoleFaxInBrowser(t *testing.T) {
	images := [][]byte{drawing(1), drawing(2), drawing(3)}
	sim := startFaxsim(t, "-dial-first", "BUSY")
	s := newFaxSite(t, sim.dev, "busy: 500ms")
	s.editConfig("max_attempts: 6", "max_attempts: 1")
	s.editConfig("log:\n", "status:\n  listen: 127.0.0.1:0\nlog:\n")
	b := browsertest.Start(t, 180*time.Second)
	s.drop("fax-1.eml", faxMail(t, "2015550199", images))
	g := s.start()
	waitFor(t, "the busy attempt to fail the job", 60*time.Second, func() bool {
		return strings.Contains(g.logText(), "event=failed")
	}, func() string { return g.logText() + "\nfaxsim:\n" + sim.text() })
	url := strings.TrimSuffix(statusURL.FindStringSubmatch(g.logText())[1], "/status")

	if err := b.Do(
		chromedp.Navigate(url+"/failed"),
		chromedp.WaitVisible(`[data-retry]`),
		chromedp.Click(`td a[href^="/jobs/"]`),
		chromedp.WaitVisible(`.thumbs img`),
		chromedp.WaitVisible(`pre.log`),
		b.Shot("console-fax-job"),
	); err != nil {
		t.Fatalf("the failed fax job: %v", err)
	}
	if n, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`[...document.querySelectorAll(".thumbs img")].filter(i => i.complete && i.naturalWidth > 0).length`)); err != nil || n != 3 {
		t.Errorf("%d page thumbnails shown (%v), want 3", n, err)
	}
	if log, _ := b.Text(`pre.log`); !strings.Contains(log, "dial ") {
		t.Errorf("the attempt's log does not show the call:\n%s", log)
	}
	if sum, _ := b.Text(`.attempt summary`); !strings.Contains(sum, "busy") {
		t.Errorf("the attempt %q does not say the line was busy", sum)
	}

	// Retry; the overview shows the pages going out.
	if err := b.Do(
		chromedp.Click(`[data-retry]`),
		chromedp.WaitVisible(`.flash`),
		chromedp.Navigate(url+"/"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[bool](`/page [23] of 3/.test(document.getElementById("overview").textContent)`,
				chromedp.WithPollingTimeout(90*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))(ctx, tg)
			return err
		}),
		b.Shot("console-fax-progress"),
	); err != nil {
		t.Fatalf("page progress: %v\n%s", err, testenv.Tail(g.logText(), 30))
	}
	waitFor(t, "the retried fax delivered", 120*time.Second, func() bool {
		return strings.Contains(g.logText(), "event=delivered")
	}, func() string { return g.logText() + "\nfaxsim:\n" + sim.text() })
	if n := sim.count("received page"); n != 3 {
		t.Errorf("emulator received %d pages, want 3", n)
	}
	// The modem has a light of its own: green, it answered every call.
	if err := b.Do(
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(`[data-unit="modem/fax `+sim.dev+`"][data-light="green"]`),
	); err != nil {
		t.Errorf("the modem's light: %v", err)
	}
	g.stop(t)
}

// TestConsoleSignInRequired: with behind_proxy set, a request from this
// machine is no longer trusted: without credentials the API answers 401 and
// the console sends the browser to sign in; the token and a user work.
func TestConsoleSignInRequired(t *testing.T) {
	s := newSite(t)
	token := "0123456789abcdef-console-token"
	if err := os.WriteFile(filepath.Join(s.dir, "status.token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hash, err := passwd.Hash("night shift")
	if err != nil {
		t.Fatal(err)
	}
	s.editConfig("log:\n", "status:\n  listen: 127.0.0.1:0\n  behind_proxy: true\n  token_file: status.token\n"+
		"  users:\n    - {name: vic, password_hash: \""+hash+"\", role: viewer}\n\nlog:\n")
	g := s.start()
	g.pluginPid(t)
	url := strings.TrimSuffix(statusURL.FindStringSubmatch(g.logText())[1], "/status")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		name, method, path string
		set                func(*http.Request)
		code               int
	}{
		{"no credentials", "GET", "/status", nil, 401},
		{"no credentials, a page", "GET", "/", nil, 303},
		{"token", "GET", "/status", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }, 200},
		{"viewer", "GET", "/api/jobs", func(r *http.Request) { r.SetBasicAuth("vic", "night shift") }, 200},
		{"viewer may not purge", "POST", "/api/jobs/x/purge", func(r *http.Request) { r.SetBasicAuth("vic", "night shift") }, 403},
		{"wrong password", "GET", "/metrics", func(r *http.Request) { r.SetBasicAuth("vic", "day shift") }, 401},
	} {
		req, _ := http.NewRequest(tc.method, url+tc.path, nil)
		if tc.set != nil {
			tc.set(req)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.code {
			t.Errorf("%s: %s %s = %d, want %d", tc.name, tc.method, tc.path, res.StatusCode, tc.code)
		}
	}
	// The CLI takes the token from the config.
	bin := filepath.Join(s.bin, "mediagw")
	if out, err := exec.Command(bin, "jobs", "list", "-c", s.cfg, "--url", url).CombinedOutput(); err != nil {
		t.Errorf("mediagw jobs list with the config's token: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "jobs", "list", "--url", url).CombinedOutput(); err == nil || !strings.Contains(string(out), "sign in first") {
		t.Errorf("mediagw jobs list without a token: %v\n%s", err, out)
	}
	if strings.Contains(g.logText(), token) || strings.Contains(g.logText(), "night shift") {
		t.Error("the log shows the token or a password")
	}
	g.stop(t)
}
