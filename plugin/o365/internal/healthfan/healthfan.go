// Package healthfan hands one mailbox's health changes to every subscriber,
// for the IMAP and Graph back ends alike.
package healthfan

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/mediagw/mediagw/plugin"
)

// Fan holds the current health and the subscribers' channels. The zero value
// is not ready; use New.
type Fan struct {
	mu   sync.Mutex
	cur  plugin.Health
	subs []chan plugin.Health
}

// New starts in HealthStarting.
func New() *Fan {
	return &Fan{cur: plugin.Health{State: plugin.HealthStarting, Time: time.Now()}}
}

// Subscribe returns a channel that gets the current health at once, then
// every change; it is closed when ctx ends. A subscriber that does not keep
// up misses changes rather than blocking the mailbox.
func (f *Fan) Subscribe(ctx context.Context) <-chan plugin.Health {
	ch := make(chan plugin.Health, 8)
	f.mu.Lock()
	ch <- f.cur
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		f.subs = slices.DeleteFunc(f.subs, func(c chan plugin.Health) bool { return c == ch })
		f.mu.Unlock()
		close(ch)
	}()
	return ch
}

// Set records a health state; an unchanged state and message sends nothing.
func (f *Fan) Set(s plugin.HealthState, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur.State == s && f.cur.Message == msg {
		return
	}
	f.cur = plugin.Health{State: s, Message: msg, Time: time.Now()}
	for _, ch := range f.subs {
		select {
		case ch <- f.cur:
		default:
		}
	}
}
