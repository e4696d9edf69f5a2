package console

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Failed sign-ins are counted per client address: after maxFails within
// failWindow, that address gets 429 until the window has passed. Bcrypt's
// cost already makes each guess slow; this caps the rate.
const (
	maxFails   = 10
	failWindow = time.Minute
	maxClients = 10000 // the table is cleared rather than grown past this
)

type throttle struct {
	mu    sync.Mutex
	fails map[string][]time.Time
}

func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// blocked reports whether the client has failed too often lately.
func (t *throttle) blocked(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	recent := t.recent(key, now)
	return len(recent) >= maxFails
}

// failed counts a failed sign-in.
func (t *throttle) failed(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fails == nil || len(t.fails) >= maxClients {
		t.fails = map[string][]time.Time{}
	}
	t.fails[key] = append(t.recent(key, now), now)
}

func (t *throttle) recent(key string, now time.Time) []time.Time {
	ts := t.fails[key]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= failWindow {
		i++
	}
	if i == len(ts) {
		delete(t.fails, key)
		return nil
	}
	t.fails[key] = ts[i:]
	return ts[i:]
}
