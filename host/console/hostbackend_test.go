package console

import (
	"errors"
	"fmt"
	"testing"

	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/host/spool"
)

// TestBackendErr: the host's errors reach the console as the answers a user
// sees: 404 for what does not exist, 409 for a job in the wrong state.
func TestBackendErr(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("x: %w", spool.ErrNotFound), ErrNotFound},
		{fmt.Errorf("x: %w", host.ErrUnknownConnector), ErrNotFound},
		{spool.ErrNotFailed, ErrConflict},
		{spool.ErrActive, ErrConflict},
	} {
		got := backendErr(tc.err)
		if !errors.Is(got, tc.want) || !errors.Is(got, tc.err) {
			t.Errorf("backendErr(%v) = %v, want it to match %v and keep the cause", tc.err, got, tc.want)
		}
	}
	other := errors.New("disk on fire")
	if got := backendErr(other); got != other {
		t.Errorf("backendErr(other) = %v", got)
	}
	for h, want := range map[string]Light{"healthy": Green, "degraded": Amber, "starting": Amber, "down": Red} {
		if got := lightOf(h); got != want {
			t.Errorf("lightOf(%s) = %s, want %s", h, got, want)
		}
	}
}
