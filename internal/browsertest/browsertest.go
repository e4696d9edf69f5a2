// Package browsertest starts headless Chromium for tests that look at the
// console as an operator does. A machine without chromium skips the test
// (and CI, where CI=true, fails it), like every peer in internal/testenv.
package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mediagw/mediagw/internal/testenv"
)

// Browser is one headless Chromium with one tab.
type Browser struct {
	// Ctx runs actions in the tab; it ends after the test's deadline.
	Ctx context.Context
	dir string
	t   testing.TB
}

// Start starts Chromium with a temporary profile. Every action run on
// b.Ctx must end within timeout in all.
func Start(t testing.TB, timeout time.Duration) *Browser {
	t.Helper()
	exe := testenv.LookPath(t, "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("hide-scrollbars", true), // a scrollbar would cut the right edge off full-page screenshots
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.WindowSize(1100, 800),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	// The first Run starts the browser; it must not carry the deadline,
	// or the deadline would stop the browser itself.
	if err := chromedp.Do(bctx); err != nil {
		cancelB()
		cancelA()
		t.Fatalf("browsertest: start chromium: %v", err)
	}
	ctx, cancelT := context.WithTimeout(bctx, timeout)
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() })
	dir := os.Getenv("MEDIAGW_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	return &Browser{Ctx: ctx, dir: dir, t: t}
}

// Do runs actions in order in the tab.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) error {
	return chromedp.Do(b.Ctx, steps...)
}

// Text returns the text of the first node that sel matches, once visible.
func (b *Browser) Text(sel string) (string, error) {
	return chromedp.Run(b.Ctx, chromedp.Text(sel))
}

// Eval evaluates a JavaScript expression that gives a boolean.
func (b *Browser) Eval(expr string) (bool, error) {
	return chromedp.Run(b.Ctx, chromedp.Evaluate[bool](expr))
}

// Shot saves a screenshot of the whole page as name.png into
// $MEDIAGW_SCREENSHOTS (a temporary folder when unset).
func (b *Browser) Shot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, t) // 100: PNG; less is JPEG
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644)
	})
}
