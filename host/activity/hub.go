package activity

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of Event beyond the log's event names: the log's "accepted" is the
// event "spooled", and a progress line becomes "dialing", "training" or
// "page" when its step is one of those (other steps stay "progress").
const (
	KindSpooled  = "spooled"
	KindDialing  = "dialing"
	KindTraining = "training"
	KindPage     = "page"
)

// Event is one thing that happened, for live views.
type Event struct {
	Time      time.Time         `json:"time"`
	Kind      string            `json:"kind"`
	Connector string            `json:"connector,omitempty"`
	Driver    string            `json:"driver,omitempty"`
	JobID     string            `json:"job_id,omitempty"`
	SourceID  string            `json:"source_id,omitempty"`
	Message   string            `json:"message,omitempty"`
	Fields    map[string]string `json:"fields,omitempty"`
}

// Hub fans events out to subscribers and observers. Publishing never
// blocks: a subscriber whose buffer is full misses the event (counted in
// Dropped).
type Hub struct {
	mu        sync.RWMutex
	subs      map[chan Event]struct{}
	observers []func(Event)
	dropped   atomic.Uint64
	now       func() time.Time
}

// NewHub makes an empty hub.
func NewHub() *Hub { return &Hub{subs: map[chan Event]struct{}{}, now: time.Now} }

// Subscribe returns a channel of the events published from now on, with a
// buffer of buf, and a function that ends the subscription (and closes the
// channel).
func (h *Hub) Subscribe(buf int) (<-chan Event, func()) {
	ch := make(chan Event, max(buf, 1))
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, ch)
			h.mu.Unlock()
			close(ch)
		})
	}
}

// Observe calls f for every event, synchronously, in the publisher's
// goroutine: f must be quick and must not block (metrics counters).
func (h *Hub) Observe(f func(Event)) {
	h.mu.Lock()
	h.observers = append(h.observers, f)
	h.mu.Unlock()
}

// Subscribers counts the open subscriptions.
func (h *Hub) Subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs)
}

// Dropped counts the events subscribers missed because they were slow.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// Publish hands e to every observer and subscriber.
func (h *Hub) Publish(e Event) {
	if e.Time.IsZero() {
		e.Time = h.now()
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, f := range h.observers {
		f(e)
	}
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
			h.dropped.Add(1)
		}
	}
}

// Handler returns a slog.Handler that passes every record to next and
// publishes the activity lines (those with an "event" attribute, see Log)
// as Events; connector, driver, job and source_id attributes, also from
// the logger's With, fill the Event's own fields. Activity lines reach the
// hub even when next's level would hide them.
func (h *Hub) Handler(next slog.Handler) slog.Handler { return &teeHandler{hub: h, next: next} }

type teeHandler struct {
	hub   *Hub
	next  slog.Handler
	attrs []slog.Attr // from WithAttrs, outside any group
	group bool        // a group was opened: later attrs are not ours
}

func (t *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || t.next.Enabled(ctx, l)
}

func (t *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *t
	c.next = t.next.WithAttrs(as)
	if !t.group {
		c.attrs = append(append([]slog.Attr(nil), t.attrs...), as...)
	}
	return &c
}

func (t *teeHandler) WithGroup(name string) slog.Handler {
	c := *t
	c.next = t.next.WithGroup(name)
	c.group = true
	return &c
}

func (t *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if t.next.Enabled(ctx, r.Level) {
		err = t.next.Handle(ctx, r)
	}
	if t.group {
		return err
	}
	var event string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "event" {
			event = a.Value.String()
			return false
		}
		return true
	})
	if event == "" {
		return err
	}
	e := Event{Time: r.Time, Kind: event, Fields: map[string]string{}}
	set := func(a slog.Attr) {
		v := a.Value.Resolve()
		switch a.Key {
		case "event":
		case "connector":
			e.Connector = v.String()
		case "driver":
			e.Driver = v.String()
		case "job":
			e.JobID = v.String()
		case "source_id":
			e.SourceID = v.String()
		default:
			e.Fields[a.Key] = v.String()
		}
	}
	for _, a := range t.attrs {
		set(a)
	}
	r.Attrs(func(a slog.Attr) bool { set(a); return true })
	e.Kind, e.Message = describe(e)
	t.hub.Publish(e)
	return err
}

func documents(n string) string {
	if n == "1" {
		return "1 document"
	}
	if n == "" {
		n = "0"
	}
	return n + " documents"
}

func or(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func ifSet(prefix, v string) string {
	if v == "" {
		return ""
	}
	return prefix + v
}

// describe names the event's kind for the live view and says in a few
// words what happened.
func describe(e Event) (kind, msg string) {
	f := e.Fields
	switch e.Kind {
	case Accepted:
		return KindSpooled, "spooled as record " + f["record"]
	case Received:
		return e.Kind, fmt.Sprintf("mail received (%s bytes)", f["bytes"])
	case Mapped:
		msg := "mapped: "
		if s := f["summary"]; s != "" {
			msg += s + "; "
		} else if n := f["field_names"]; n != "" {
			msg += fmt.Sprintf("%s fields (%s); ", f["fields"], strings.ReplaceAll(n, ",", ", "))
		}
		if from := f["from"]; from != "" {
			msg += "from " + from + "; "
		}
		return e.Kind, msg + documents(f["documents"])
	case ReportSent:
		to := ""
		if f["to"] != "" {
			to = " to " + f["to"]
		}
		if r := f["result"]; r != "" && r != "ok" {
			return e.Kind, fmt.Sprintf("%s report%s not sent: %s", f["report"], to, r)
		}
		return e.Kind, fmt.Sprintf("%s report sent%s", f["report"], to)
	case Incoming:
		return e.Kind, strings.TrimSpace(fmt.Sprintf("fax call from %s %s", or(f["remote_id"], f["caller_number"], "an unknown sender"), ifSet("to ", f["called_number"])))
	case PageReceived:
		return e.Kind, fmt.Sprintf("page %s received", f["page"])
	case FaxReceived:
		msg := fmt.Sprintf("fax received, %s pages, route %s", f["pages"], f["route"])
		if f["incomplete"] != "" {
			msg += "; incomplete: " + f["incomplete"]
		}
		return e.Kind, msg
	case Routed:
		// drivers is a list; the log's value reads "[fax archive]".
		return e.Kind, "routed to " + strings.Join(strings.Fields(strings.Trim(f["drivers"], "[]")), ", ")
	case Rejected, Deferred:
		return e.Kind, f["reason"]
	case Attempt:
		return e.Kind, "attempt " + f["attempt"]
	case Retried:
		return e.Kind, fmt.Sprintf("%s; retry in %s", f["reason"], f["retry_after"])
	case Failed:
		return e.Kind, f["reason"]
	case Delivered:
		if p := f["pages"]; p != "" {
			return e.Kind, "delivered, " + p + " pages"
		}
		return e.Kind, "delivered"
	case Progress:
		step, detail := f["step"], f["detail"]
		switch step {
		case "dial":
			return KindDialing, "dialling " + detail
		case "dcs", "tcf":
			return KindTraining, strings.TrimSpace("training " + detail)
		case "page":
			if f["pages"] != "" && f["page"] != "" {
				return KindPage, fmt.Sprintf("page %s of %s", f["page"], f["pages"])
			}
			return KindPage, "page " + detail
		}
		return Progress, strings.TrimSpace(step + " " + detail)
	}
	if r := f["reason"]; r != "" {
		return e.Kind, r
	}
	return e.Kind, f["message"]
}
