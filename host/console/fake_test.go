package console

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/secret"
)

// Secret values the fake knows; none may ever appear in a page.
const (
	fakeClientSecret = "client-secret-Zq81xv"
	fakePassword     = "operator-password-77"
	viewerPassword   = "viewer-password-55"
	fakeToken        = "bearer-token-0123456789abcdef"
)

// fakeBackend is a gateway in memory: two connectors, two drivers, a modem
// and the spool, some jobs, and a hub of subscribers.
type fakeBackend struct {
	mu          sync.Mutex
	units       []Unit
	jobs        map[string]*JobPage
	subs        map[chan Event]bool
	subsChanged chan struct{} // a value after every change of subs
	retried     []string
	purged      []string
	tested      []string
	testView    TestView
	gateway     string // this gateway's name in a group
}

func newFake(now time.Time) *fakeBackend {
	// The o365 connector's last error was formatted with its secret, as a
	// careless plugin might; the secret type prints [redacted].
	cs := secret.New(fakeClientSecret)
	f := &fakeBackend{
		jobs:        map[string]*JobPage{},
		subs:        map[chan Event]bool{},
		subsChanged: make(chan struct{}, 1),
		units: []Unit{
			{Kind: "connector", Name: "inbox", Light: Green, State: "healthy", Since: now.Add(-time.Hour)},
			{Kind: "connector", Name: "o365", Light: Amber, State: "degraded", Since: now.Add(-5 * time.Minute),
				LastError: fmt.Sprintf("token refused (client secret %v): AADSTS7000215", cs), Restarts: 2},
			{Kind: "driver", Name: "fax", Light: Green, State: "healthy", Since: now.Add(-time.Hour), Queued: 1, InProgress: 1, Retrying: 1, Failed: 1,
				OldestAge: 3 * time.Minute, Active: []Active{{JobID: "r2.fax", Step: "sending", Page: 2, Pages: 3}}},
			{Kind: "driver", Name: "file", Light: Green, State: "healthy", Since: now.Add(-time.Hour)},
			{Kind: "modem", Name: "ttyIAX0", Light: Green, State: "idle", Since: now.Add(-time.Hour), Detail: []Field{{"device", "/dev/ttyIAX0"}}},
			{Kind: "spool", Name: "spool", Light: Green, State: "healthy", Detail: []Field{{"write errors", "0"}, {"deferrals", "0"}}},
			{Kind: "gateway", Name: "gw-east", Light: Green, State: "up (this gateway)", Since: now.Add(-time.Second),
				Detail: []Field{{"drivers", "fax, file"}, {"connectors owned", "inbox, o365"}}},
			{Kind: "gateway", Name: "gw-west", Light: Red, State: "down: no heartbeat; its connectors go to the other gateways", Since: now.Add(-time.Minute),
				Detail: []Field{{"drivers", "fax-west"}, {"connectors owned", "none"}}},
		},
		testView: TestView{Category: "ok", Hint: "The mailbox answers and the credentials work."},
	}
	thumb := pngPage()
	add := func(j JobPage) { f.jobs[j.ID] = &j }
	add(JobPage{JobRow: JobRow{ID: "r1.fax", Driver: "fax", Connector: "inbox", State: "failed", Created: now.Add(-time.Hour), Attempts: 3,
		Category: "no_answer", Reason: "the far end did not answer", Summary: "+41 44 555 12 12 · Order 4711"},
		Fields:    []Field{{"fax_number", "+41445551212"}, {"subject", "Order 4711"}},
		Documents: []Document{{"order.pdf", "application/pdf", 20311}},
		History: []Attempt{{N: 1, Started: now.Add(-50 * time.Minute), Ended: now.Add(-49 * time.Minute), Result: "temporary", Category: "no_answer",
			Reason: "the far end did not answer", Log: []string{"ATD+41445551212", "NO ANSWER"}}},
		Thumbs: []Thumb{{PNG: thumb}, {PNG: thumb}}})
	add(JobPage{JobRow: JobRow{ID: "r2.fax", Driver: "fax", Connector: "inbox", State: "active", Created: now.Add(-2 * time.Minute), Attempts: 1, Summary: "+41 44 555 00 01"}})
	add(JobPage{JobRow: JobRow{ID: "r3.fax", Driver: "fax", Connector: "inbox", State: "retrying", Created: now.Add(-10 * time.Minute), Next: now.Add(4 * time.Minute),
		Attempts: 1, Category: "busy", Reason: "line busy", Summary: "+41 44 555 00 02"}})
	add(JobPage{JobRow: JobRow{ID: "r4.fax", Driver: "fax", Connector: "o365", State: "queued", Created: now.Add(-3 * time.Minute), Next: now, Summary: "+41 44 555 00 03"}})
	return f
}

func pngPage() []byte {
	img := image.NewGray(image.Rect(0, 0, 86, 112))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for x := 8; x < 78; x++ {
		img.Set(x, 20, color.Black)
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}

func (f *fakeBackend) Overview(context.Context) (Overview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ov := Overview{Health: Green, Gateway: f.gateway, Units: append([]Unit(nil), f.units...)}
	for _, u := range ov.Units {
		if u.Kind == "gateway" {
			continue // another gateway down does not make this one unhealthy (as in host.Status)
		}
		l := u.Light
		if u.Kind == "driver" && u.State == "waiting" {
			l = Amber // a driver no gateway runs: degraded, as in host.Status
		}
		if l == Red || (l == Amber && ov.Health == Green) {
			ov.Health = l
		}
	}
	return ov, nil
}

func (f *fakeBackend) setLight(name string, l Light, state, lastErr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.units {
		if f.units[i].Name == name {
			f.units[i].Light, f.units[i].State, f.units[i].LastError = l, state, lastErr
		}
	}
}

func (f *fakeBackend) Jobs(_ context.Context, driver, state string, limit int) ([]JobRow, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []JobRow
	for _, j := range f.jobs {
		if (driver == "" || j.Driver == driver) && (state == "" || j.State == state) {
			out = append(out, j.JobRow)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (f *fakeBackend) Job(_ context.Context, id string) (*JobPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return nil, fmt.Errorf("fake: job %s: %w", id, ErrNotFound)
	}
	c := *j
	return &c, nil
}

func (f *fakeBackend) Retry(_ context.Context, id string) error {
	f.mu.Lock()
	j, ok := f.jobs[id]
	switch {
	case !ok:
		f.mu.Unlock()
		return fmt.Errorf("fake: job %s: %w", id, ErrNotFound)
	case j.State != "failed":
		f.mu.Unlock()
		return fmt.Errorf("fake: job %s is %s: %w", id, j.State, ErrConflict)
	}
	j.State = "queued"
	f.retried = append(f.retried, id)
	f.mu.Unlock()
	f.publish(Event{Time: time.Now(), Kind: "retried", Driver: j.Driver, JobID: id, Message: "queued again by the operator"})
	return nil
}

func (f *fakeBackend) Purge(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.jobs[id]; !ok {
		return fmt.Errorf("fake: job %s: %w", id, ErrNotFound)
	}
	delete(f.jobs, id)
	f.purged = append(f.purged, id)
	return nil
}

func (f *fakeBackend) Test(_ context.Context, connector string) (TestView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if connector != "inbox" && connector != "o365" {
		return TestView{}, fmt.Errorf("fake: connector %s: %w", connector, ErrNotFound)
	}
	f.tested = append(f.tested, connector)
	tv := f.testView
	tv.Connector = connector
	return tv, nil
}

func (f *fakeBackend) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 64)
	f.mu.Lock()
	f.subs[ch] = true
	f.mu.Unlock()
	f.notify()
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
		f.notify()
	}
}

func (f *fakeBackend) notify() {
	select {
	case f.subsChanged <- struct{}{}:
	default:
	}
}

// waitSubscribers waits until n subscriptions are open.
func (f *fakeBackend) waitSubscribers(ctx context.Context, t testing.TB, n int) {
	t.Helper()
	for {
		f.mu.Lock()
		got := len(f.subs)
		f.mu.Unlock()
		if got == n {
			return
		}
		select {
		case <-f.subsChanged:
		case <-ctx.Done():
			t.Fatalf("%d activity subscriptions, want %d", got, n)
		}
	}
}

func (f *fakeBackend) publish(ev Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (f *fakeBackend) Maps() []string { return []string{"email-to-fax", "archive"} }

func (f *fakeBackend) TryMap(name string, raw []byte) (MapPreview, error) {
	if name != "email-to-fax" && name != "archive" {
		return MapPreview{}, fmt.Errorf("fake: map %s: %w", name, ErrNotFound)
	}
	subject := ""
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "Subject: "); ok {
			subject = strings.TrimSpace(v)
		}
	}
	if subject == "" {
		return MapPreview{Map: name, Rejected: true, Reason: "field subject: required but empty", Text: "map: " + name + "\nrejected"}, nil
	}
	return MapPreview{Map: name, Text: "map: " + name + "\nfields:\n  subject (text) = " + subject + "\n"}, nil
}
