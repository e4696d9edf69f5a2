// Package healthhub hands a connector's health changes to every subscriber,
// for the Maildir connector and the O365 IMAP and Graph mailboxes alike.
package healthhub

import (
	"context"
	"sync"
	"time"

	"github.com/mediagw/mediagw/plugin"
)

// buffered is how many changes a subscriber that does not read may fall
// behind; beyond that the oldest change is dropped, so the latest state
// always arrives and the connector never blocks on a subscriber.
const buffered = 8

// Hub holds the current health and the subscribers' channels. Use New.
type Hub struct {
	mu     sync.Mutex
	cur    plugin.Health
	subs   map[chan plugin.Health]struct{}
	closed bool
	done   chan struct{}
}

// New starts the hub in the given state.
func New(state plugin.HealthState, msg string) *Hub {
	return &Hub{
		cur:  plugin.Health{State: state, Message: msg, Time: time.Now()},
		subs: map[chan plugin.Health]struct{}{},
		done: make(chan struct{}),
	}
}

// Set records a health state and sends it to every subscriber; an unchanged
// state and message sends nothing. After Close it does nothing.
func (h *Hub) Set(state plugin.HealthState, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.cur.State == state && h.cur.Message == msg {
		return
	}
	h.cur = plugin.Health{State: state, Message: msg, Time: time.Now()}
	for ch := range h.subs {
		push(ch, h.cur)
	}
}

// push sends v, dropping the oldest queued change when the channel is full.
// Only the hub sends, under its lock, so the send cannot block.
func push(ch chan plugin.Health, v plugin.Health) {
	select {
	case ch <- v:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	ch <- v
}

// Subscribe returns a channel that gets the current health at once, then
// every change; it is closed when ctx ends or the hub closes. After Close it
// gets one "down: closed" health and is closed.
func (h *Hub) Subscribe(ctx context.Context) <-chan plugin.Health {
	ch := make(chan plugin.Health, buffered)
	h.mu.Lock()
	defer h.mu.Unlock()
	ch <- h.cur
	if h.closed {
		close(ch)
		return ch
	}
	h.subs[ch] = struct{}{}
	go func() {
		select {
		case <-ctx.Done():
		case <-h.done:
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}()
	return ch
}

// Close sends "down: closed" to every subscriber and closes their channels.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.done)
	h.cur = plugin.Health{State: plugin.HealthDown, Message: "closed", Time: time.Now()}
	for ch := range h.subs {
		push(ch, h.cur)
		delete(h.subs, ch)
		close(ch)
	}
}
