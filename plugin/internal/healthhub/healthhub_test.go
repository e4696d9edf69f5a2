package healthhub

import (
	"context"
	"fmt"
	"testing"

	"github.com/mediagw/mediagw/plugin"
)

// next reads one health, failing if none is queued.
func next(t *testing.T, ch <-chan plugin.Health) (plugin.Health, bool) {
	t.Helper()
	select {
	case h, open := <-ch:
		return h, open
	default:
		t.Fatal("no health queued")
		return plugin.Health{}, false
	}
}

func TestHub(t *testing.T) {
	type step struct {
		set   plugin.HealthState
		msg   string
		close bool
	}
	type want struct {
		state plugin.HealthState
		msg   string
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  []want // what a subscriber reads after the steps, then its channel is empty
	}{
		{"current at once", nil, []want{{plugin.HealthStarting, "not started"}}},
		{"changes in order", []step{{set: plugin.HealthHealthy, msg: "watching INBOX"}, {set: plugin.HealthDegraded, msg: "refused"}},
			[]want{{plugin.HealthStarting, "not started"}, {plugin.HealthHealthy, "watching INBOX"}, {plugin.HealthDegraded, "refused"}}},
		{"unchanged not sent again", []step{{set: plugin.HealthHealthy, msg: "a"}, {set: plugin.HealthHealthy, msg: "a"}},
			[]want{{plugin.HealthStarting, "not started"}, {plugin.HealthHealthy, "a"}}},
		{"close sends down", []step{{close: true}, {set: plugin.HealthHealthy, msg: "after close"}},
			[]want{{plugin.HealthStarting, "not started"}, {plugin.HealthDown, "closed"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(plugin.HealthStarting, "not started")
			ch := h.Subscribe(t.Context())
			for _, s := range tc.steps {
				if s.close {
					h.Close()
				} else {
					h.Set(s.set, s.msg)
				}
			}
			for i, w := range tc.want {
				got, open := next(t, ch)
				if !open || got.State != w.state || got.Message != w.msg {
					t.Fatalf("health %d: %+v (open %v), want %v %q", i, got, open, w.state, w.msg)
				}
			}
			select {
			case got, open := <-ch:
				if open {
					t.Fatalf("more health than expected: %+v", got)
				}
			default:
			}
		})
	}
}

func TestUnsubscribe(t *testing.T) {
	h := New(plugin.HealthStarting, "")
	ctx, cancel := context.WithCancel(context.Background())
	a, b := h.Subscribe(ctx), h.Subscribe(t.Context())
	<-a
	<-b
	cancel()
	if _, open := <-a; open {
		t.Fatal("channel still open after its context ended")
	}
	h.Set(plugin.HealthDown, "gone")
	if got, _ := next(t, b); got.State != plugin.HealthDown {
		t.Fatalf("the other subscriber got %+v", got)
	}
}

func TestSubscribeAfterClose(t *testing.T) {
	h := New(plugin.HealthHealthy, "")
	h.Close()
	ch := h.Subscribe(t.Context())
	if got, open := next(t, ch); !open || got.State != plugin.HealthDown {
		t.Fatalf("got %+v (open %v), want down", got, open)
	}
	if _, open := <-ch; open {
		t.Fatal("channel open after Close")
	}
}

// A subscriber that never reads neither blocks the connector nor misses
// the latest state.
func TestSlowSubscriberGetsLatest(t *testing.T) {
	h := New(plugin.HealthStarting, "")
	ch := h.Subscribe(t.Context())
	for i := range 100 {
		h.Set(plugin.HealthDegraded, fmt.Sprint("try ", i))
	}
	var last plugin.Health
	for len(ch) > 0 {
		last = <-ch
	}
	if last.Message != "try 99" {
		t.Fatalf("last queued health %+v, want try 99", last)
	}
}
