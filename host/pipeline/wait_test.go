package pipeline

import (
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
)

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, what, cond)
}
