package plugin

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestWatchParent(t *testing.T) {
	cases := []struct {
		name     string
		diesAt   time.Duration // when the parent changes; 0: never
		cancelAt time.Duration // when ctx ends; 0: never
		want     time.Duration // when the watch returns
	}{
		{"host dies: noticed at the next tick", 2500 * time.Millisecond, 0, 3 * time.Second},
		{"host dies right after a tick", 3001 * time.Millisecond, 0, 4 * time.Second},
		{"asked to stop", 0, 1500 * time.Millisecond, 1500 * time.Millisecond},
		{"host died before the watch began", 1, 0, time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				var ppid atomic.Int64
				ppid.Store(4242)
				if tc.diesAt > 0 {
					time.AfterFunc(tc.diesAt, func() { ppid.Store(1) })
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if tc.cancelAt > 0 {
					time.AfterFunc(tc.cancelAt, cancel)
				}
				watchParent(ctx, 4242, func() int { return int(ppid.Load()) }, time.Second)
				if got := time.Since(start); got != tc.want {
					t.Errorf("watch returned after %v, want %v", got, tc.want)
				}
			})
		})
	}
}

// A host that is process 1 (in a container) is not mistaken for a dead one.
func TestWatchParentHostIsInit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		start := time.Now()
		watchParent(ctx, 1, func() int { return 1 }, time.Second)
		if got := time.Since(start); got != time.Hour {
			t.Errorf("watch returned after %v with a parent that never changed, want the hour of ctx", got)
		}
	})
}
