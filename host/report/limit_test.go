package report

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	type step struct {
		at    time.Duration // after t0
		addr  string
		n     int // reports asked for
		allow int // reports allowed
	}
	cases := []struct {
		name   string
		n      int
		window time.Duration
		steps  []step
	}{
		{"20 per hour, then none", 20, time.Hour, []step{{0, "a@x", 25, 20}}},
		{"the address is compared without case", 2, time.Hour, []step{{0, "a@x", 1, 1}, {0, "A@X", 2, 1}}},
		{"display names do not make another sender", 1, time.Hour, []step{{0, "a@x", 1, 1}, {0, "Alice <a@x>", 1, 0}}},
		{"senders have their own budget", 2, time.Hour, []step{{0, "a@x", 3, 2}, {0, "b@x", 3, 2}}},
		{"one more every window/n", 20, time.Hour, []step{{0, "a@x", 20, 20}, {time.Minute, "a@x", 1, 0}, {3 * time.Minute, "a@x", 2, 1}}},
		{"full again after the window", 20, time.Hour, []step{{0, "a@x", 20, 20}, {time.Hour, "a@x", 21, 20}}},
		{"-1 is no limit", -1, time.Hour, []step{{0, "a@x", 1000, 1000}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := NewLimiter(c.n, c.window)
			for i, s := range c.steps {
				got := 0
				for range s.n {
					if l.Allow(s.addr, t0.Add(s.at)) {
						got++
					}
				}
				if got != s.allow {
					t.Fatalf("step %d (%s at +%v): %d of %d allowed, want %d", i, s.addr, s.at, got, s.n, s.allow)
				}
			}
		})
	}
}

func TestLimiterForgetsIdleSenders(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	l := NewLimiter(2, time.Hour)
	for i := range 100 {
		l.Allow(string(rune('a'+i%26))+"@x"+string(rune('0'+i/26)), t0)
	}
	l.Allow("late@x", t0.Add(2*time.Hour))
	if n := len(l.buckets); n != 1 {
		t.Fatalf("%d senders remembered two hours later, want 1", n)
	}
}
