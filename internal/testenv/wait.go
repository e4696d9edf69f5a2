package testenv

import (
	"strings"
	"testing"
	"time"
)

// Eventually polls cond until it holds and fails the test when it still
// does not after timeout, naming what it waited for and, when given, the
// last 40 lines of detail() (a log). Under testing/synctest the polls
// advance the bubble's clock, so the wait costs no real time.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	tick := min(max(timeout/200, time.Millisecond), 50*time.Millisecond)
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := "timed out after " + timeout.String() + " waiting for " + what
			for _, d := range detail {
				msg += "; log tail:\n" + Tail(d(), 40)
			}
			t.Fatal(msg)
		}
		time.Sleep(tick)
	}
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
