package testenv

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// recorder is a testing.TB that records a failure instead of ending the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper()           {}
func (r *recorder) Fatal(args ...any) { r.failed = args[0].(string); runtime.Goexit() }

func TestEventually(t *testing.T) {
	for _, tc := range []struct {
		name     string
		trueAt   time.Duration // cond holds from then on; 0: never
		timeout  time.Duration
		wantFail bool
	}{
		{"at once", time.Nanosecond, time.Second, false},
		{"before the deadline", 300 * time.Millisecond, time.Second, false},
		{"never", 0, time.Second, true},
		{"after the deadline", 2 * time.Second, time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				var calls atomic.Int32
				cond := func() bool {
					calls.Add(1)
					return tc.trueAt > 0 && time.Since(start) >= tc.trueAt
				}
				r := &recorder{TB: t}
				done := make(chan struct{})
				go func() {
					defer close(done)
					Eventually(r, tc.timeout, "the thing", cond, func() string { return "a\nb\nlast line" })
				}()
				<-done
				if got := r.failed != ""; got != tc.wantFail {
					t.Fatalf("failed %v (%q), want %v", got, r.failed, tc.wantFail)
				}
				if tc.wantFail && (!strings.Contains(r.failed, "waiting for the thing") || !strings.HasSuffix(r.failed, "last line")) {
					t.Errorf("failure %q does not name what it waited for and the log tail", r.failed)
				}
				if !tc.wantFail && time.Since(start) > tc.trueAt+50*time.Millisecond {
					t.Errorf("returned %v after cond held", time.Since(start)-tc.trueAt)
				}
			})
		})
	}
}
