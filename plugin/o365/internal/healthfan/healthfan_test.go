package healthfan

import (
	"context"
	"testing"

	"github.com/mediagw/mediagw/plugin"
)

func TestFan(t *testing.T) {
	f := New()
	ctx, cancel := context.WithCancel(context.Background())
	a, b := f.Subscribe(ctx), f.Subscribe(context.Background())
	for _, ch := range []<-chan plugin.Health{a, b} {
		if h := <-ch; h.State != plugin.HealthStarting {
			t.Fatalf("first health %v, want starting", h.State)
		}
	}
	f.Set(plugin.HealthHealthy, "watching INBOX")
	f.Set(plugin.HealthHealthy, "watching INBOX") // unchanged: not sent again
	f.Set(plugin.HealthDegraded, "connection refused")
	for _, ch := range []<-chan plugin.Health{a, b} {
		if h := <-ch; h.State != plugin.HealthHealthy || h.Message != "watching INBOX" {
			t.Fatalf("second health %+v", h)
		}
		if h := <-ch; h.State != plugin.HealthDegraded || h.Message != "connection refused" {
			t.Fatalf("third health %+v", h)
		}
	}
	select {
	case h := <-b:
		t.Fatalf("an unchanged state was sent again: %+v", h)
	default:
	}
	cancel()
	if _, open := <-a; open {
		t.Fatal("channel still open after its context ended")
	}
	// The cancelled subscriber is gone; the other still gets changes.
	f.Set(plugin.HealthDown, "closed")
	if h := <-b; h.State != plugin.HealthDown {
		t.Fatalf("after unsubscribe: %+v", h)
	}
}

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	f := New()
	ch := f.Subscribe(t.Context())
	for i := range 100 {
		f.Set(plugin.HealthDegraded, string(rune('a'+i%26))+"x")
	}
	if len(ch) != cap(ch) {
		t.Fatalf("buffer holds %d of %d", len(ch), cap(ch))
	}
}
