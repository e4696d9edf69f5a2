package console

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mediagw/mediagw/internal/browsertest"
)

// TestBrowser drives the console in headless Chromium on the fake backend:
// sign in, lights turn green without a reload, the activity feed updates
// live, a failed job is retried with its button, the Test button shows ok.
func TestBrowser(t *testing.T) {
	r := newRig(t, false) // Chromium connects from 127.0.0.1: make it sign in
	b := browsertest.Start(t, 90*time.Second)
	ts := httptest.NewServer(r.srv)
	defer ts.Close()

	// Sign in through the form; the console sends us back to the page we asked for.
	if err := b.Do(
		chromedp.Navigate(ts.URL+"/failed"),
		chromedp.WaitVisible(`input[name=password]`),
		chromedp.SendKeys(`input[name=name]`, "olga"),
		chromedp.SendKeys(`input[name=password]`, fakePassword),
		chromedp.Submit(`form.login`),
		chromedp.WaitVisible(`[data-retry="r1.fax"]`),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if loc, _ := chromedp.Run(b.Ctx, chromedp.Location()); !strings.HasSuffix(loc, "/failed") {
		t.Errorf("after sign-in at %s, want /failed", loc)
	}

	// The o365 light is amber; it turns green while the page stays open.
	if err := b.Do(
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(`[data-unit="connector/o365"][data-light="amber"]`),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`window.stayed = true`)(ctx, tg)
			return err
		}),
	); err != nil {
		t.Fatalf("overview: %v", err)
	}
	r.fake.setLight("o365", Green, "healthy", "")
	if err := b.Do(chromedp.WaitVisible(`[data-unit="connector/o365"][data-light="green"]`), b.Shot("console-overview")); err != nil {
		t.Fatalf("the light did not turn green: %v", err)
	}
	if h, _ := b.Text(`#health`); h != "healthy" {
		t.Errorf("gateway health %q, want healthy", h)
	}
	if stayed, err := b.Eval(`window.stayed === true`); !stayed {
		t.Errorf("the page was reloaded (%v)", err)
	}

	// The activity feed shows events as they happen, without a reload.
	if err := b.Do(
		chromedp.Navigate(ts.URL+"/activity"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[bool](`document.getElementById("feed-state").textContent === "live" && (window.stayed = true)`,
				chromedp.WithPollingTimeout(20*time.Second))(ctx, tg)
			return err
		}),
	); err != nil {
		t.Fatalf("activity: %v", err)
	}
	for _, ev := range []Event{
		{Kind: "received", Connector: "inbox", Message: "mail from orders@example.com: Order 4711"},
		{Kind: "mapped", Connector: "inbox", Message: "fax_number=+41445551212"},
		{Kind: "progress", Driver: "fax", JobID: "r2.fax", Message: "page 3 of 3"},
		{Kind: "delivered", Driver: "fax", JobID: "r2.fax", Message: "3 pages in 74 s"},
	} {
		ev.Time = time.Now()
		r.fake.publish(ev)
	}
	if err := b.Do(chromedp.WaitVisible(`#feed tr.kind-delivered`), b.Shot("console-activity")); err != nil {
		t.Fatalf("the feed did not update: %v", err)
	}
	feed, _ := b.Text(`#feed`)
	if !strings.Contains(feed, "3 pages in 74 s") || !strings.Contains(feed, "mail from orders@example.com") {
		t.Errorf("feed %q", feed)
	}
	if stayed, err := b.Eval(`window.stayed === true`); !stayed {
		t.Errorf("the activity page was reloaded (%v)", err)
	}

	// A job's page with its fax pages; then Retry with the button.
	if err := b.Do(
		chromedp.Navigate(ts.URL+"/jobs/r1.fax"),
		chromedp.WaitVisible(`.thumbs img`),
		b.Shot("console-job"),
		chromedp.Navigate(ts.URL+"/failed"),
		chromedp.Click(`[data-retry="r1.fax"]`),
		chromedp.WaitVisible(`.flash`),
	); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if flash, _ := b.Text(`.flash`); flash != "Job r1.fax is queued again." || strings.Join(r.fake.retried, ",") != "r1.fax" {
		t.Errorf("after Retry: %q, retried %v", flash, r.fake.retried)
	}

	// The Test button of a connector.
	if err := b.Do(
		chromedp.Navigate(ts.URL+"/"),
		chromedp.Click(`[data-test="inbox"]`),
		chromedp.WaitVisible(`#test-category`),
		b.Shot("console-test"),
	); err != nil {
		t.Fatalf("test button: %v", err)
	}
	if cat, _ := b.Text(`#test-category`); cat != "ok" {
		t.Errorf("Test shows %q, want ok", cat)
	}
}
