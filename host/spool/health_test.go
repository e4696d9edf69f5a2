package spool

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// The tracker that both spools keep their health with: what a user sees in
// the status after a sequence of results, and how often the change hook ran.
func TestHealthTracker(t *testing.T) {
	disk := errors.New("disk full")
	type event struct {
		deferral bool
		err      error
	}
	tests := []struct {
		name        string
		events      []event
		wantHealth  string
		wantWrites  int
		wantDefers  int
		wantLast    string
		wantChanges []string // old→new, one per change
	}{
		{"a success stays healthy", []event{{err: nil}}, Healthy, 0, 0, "", nil},
		{"a failing write degrades", []event{{err: disk}}, Degraded, 1, 0, "disk full", []string{"healthy→degraded"}},
		{"a deferral degrades", []event{{deferral: true, err: disk}}, Degraded, 0, 1, "disk full", []string{"healthy→degraded"}},
		{"the next success heals, once per change",
			[]event{{err: disk}, {err: disk}, {deferral: true, err: disk}, {err: nil}, {err: nil}},
			Healthy, 2, 1, "disk full", []string{"healthy→degraded", "degraded→healthy"}},
		{"the contract's answers count for nothing",
			[]event{{err: fmt.Errorf("job 1: %w", ErrNotFound)}, {err: ErrLeaseLost}, {err: ErrActive}, {err: ErrNotFailed}, {err: ErrClosed}, {err: ErrCorrupt}, {err: context.Canceled}},
			Healthy, 0, 0, "", nil},
		{"an answer leaves a degraded store degraded",
			[]event{{err: disk}, {err: ErrNotFound}},
			Degraded, 1, 0, "disk full", []string{"healthy→degraded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			tr := NewHealthTracker(func() time.Time { return now }, 3)
			var changes []string
			tr.OnHealthChange(func(old, new Health) {
				changes = append(changes, old.Health+"→"+new.Health)
				if !new.Since.Equal(now) {
					t.Errorf("change stamped %v, want %v", new.Since, now)
				}
			})
			for _, e := range tt.events {
				now = now.Add(time.Second)
				if e.deferral {
					tr.Deferred(e.err)
				} else if got := tr.Observe(e.err); got != e.err {
					t.Errorf("Observe returned %v, want %v", got, e.err)
				}
			}
			h := tr.Health()
			if h.Health != tt.wantHealth || h.WriteErrors != tt.wantWrites || h.Deferrals != tt.wantDefers || h.LastError != tt.wantLast || h.Quarantined != 3 {
				t.Errorf("health %+v, want %s with %d write errors, %d deferrals, last %q, 3 quarantined", h, tt.wantHealth, tt.wantWrites, tt.wantDefers, tt.wantLast)
			}
			if fmt.Sprint(changes) != fmt.Sprint(tt.wantChanges) {
				t.Errorf("changes %v, want %v", changes, tt.wantChanges)
			}
		})
	}
}

func TestHealthTrackerQuarantine(t *testing.T) {
	tr := NewHealthTracker(time.Now, 0)
	var got []string
	tr.OnQuarantine(func(q Quarantined) { got = append(got, q.Key) })
	tr.Quarantined(Quarantined{Key: "a"})
	tr.Quarantined(Quarantined{Key: "b"})
	if h := tr.Health(); h.Quarantined != 2 || h.Health != Healthy || fmt.Sprint(got) != "[a b]" {
		t.Errorf("after two entries: %+v, hook saw %v", h, got)
	}
}

// TestHealthTrackerHookOrder: results that arrive at once from many
// goroutines (the PostgreSQL spool's reads, writes and listener) reach the
// change hook in the order the state changed, so the log's last line is the
// health the status shows.
func TestHealthTrackerHookOrder(t *testing.T) {
	disk := errors.New("disk full")
	tr := NewHealthTracker(time.Now, 0)
	var changes [][2]string // only the hook appends; the hooks run one at a time
	tr.OnHealthChange(func(old, new Health) { changes = append(changes, [2]string{old.Health, new.Health}) })
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 2000 {
				if (g+i)%2 == 0 {
					tr.Observe(nil)
				} else {
					tr.Observe(disk)
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	if len(changes) == 0 {
		t.Fatal("no change reached the hook")
	}
	for i := 1; i < len(changes); i++ {
		if changes[i][0] != changes[i-1][1] {
			t.Fatalf("change %d is %s→%s after %s→%s: the hook saw the changes out of order", i, changes[i][0], changes[i][1], changes[i-1][0], changes[i-1][1])
		}
	}
	if last, now := changes[len(changes)-1][1], tr.Health().Health; last != now {
		t.Errorf("the hook's last change is to %s, the health is %s", last, now)
	}
}
