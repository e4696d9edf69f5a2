package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	p := Policy{Min: time.Second, Max: time.Minute}
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{0, time.Second},
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{6, 32 * time.Second},
		{7, time.Minute},
		{1000, time.Minute},
	} {
		if got := p.Delay(tc.attempt); got != tc.want {
			t.Errorf("Delay(%d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}
}

func TestJitter(t *testing.T) {
	p := Policy{Min: time.Second, Max: 8 * time.Second, Jitter: true}
	for _, tc := range []struct {
		attempt  int
		low, top time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{3, 2 * time.Second, 4 * time.Second},
		{10, 4 * time.Second, 8 * time.Second},
	} {
		seen := map[time.Duration]bool{}
		for range 200 {
			got := p.Delay(tc.attempt)
			if got < tc.low || got > tc.top {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", tc.attempt, got, tc.low, tc.top)
			}
			seen[got] = true
		}
		if len(seen) < 10 {
			t.Errorf("Delay(%d): only %d distinct pauses: no jitter", tc.attempt, len(seen))
		}
	}
}

func TestSchedule(t *testing.T) {
	s := &Schedule{Min: 5 * time.Second, Max: 2 * time.Minute, Stable: 2 * time.Minute}
	for i, tc := range []struct {
		ran, want time.Duration
	}{
		{time.Second, 5 * time.Second},
		{time.Second, 10 * time.Second},
		{time.Second, 20 * time.Second},
		{time.Second, 40 * time.Second},
		{time.Second, 80 * time.Second},
		{time.Second, 2 * time.Minute},
		{time.Second, 2 * time.Minute},
		{3 * time.Minute, 5 * time.Second}, // a long run starts over
		{time.Second, 10 * time.Second},
	} {
		if got := s.Next(tc.ran); got != tc.want {
			t.Errorf("step %d: Next(%v) = %v, want %v", i, tc.ran, got, tc.want)
		}
	}
}
