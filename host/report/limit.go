package report

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter allows at most n reports per window to one address: a token
// bucket per address that holds n and fills at n per window. Its time comes
// from the caller, so tests drive it with a clock of their own.
type Limiter struct {
	n      int
	window time.Duration

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time
}

// NewLimiter makes a limiter; n < 0 means no limit.
func NewLimiter(n int, window time.Duration) *Limiter {
	return &Limiter{n: n, window: window, buckets: map[string]*rate.Limiter{}}
}

// Allow takes one report for addr at now, or says no.
func (l *Limiter) Allow(addr string, now time.Time) bool {
	if l.n < 0 {
		return true
	}
	if l.n == 0 || l.window <= 0 {
		return false
	}
	key := normAddress(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.buckets[key]
	if b == nil {
		b = rate.NewLimiter(rate.Every(l.window/time.Duration(l.n)), l.n)
		l.buckets[key] = b
	}
	return b.AllowN(now, 1)
}

// sweep forgets addresses whose bucket is full again, once per window, so
// the table does not grow with every sender ever seen.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.swept) < l.window {
		return
	}
	l.swept = now
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.n) {
			delete(l.buckets, k)
		}
	}
}
