package datamap

import (
	"fmt"
	"net/mail"
	"slices"
	"time"
)

// Report events a map can ask for.
const (
	EventDelivered = "delivered" // a line driver finished the record's job
	EventFailed    = "failed"    // a line driver gave up on it for good
	EventRejected  = "rejected"  // the map (or a driver's Check) refused the mail
)

// Events lists the report events in the order the docs name them.
var Events = []string{EventDelivered, EventFailed, EventRejected}

// NotifySpec asks the gateway to tell someone what became of each mail this
// map took: delivery reports sent back through the connector that read it.
type NotifySpec struct {
	// Events are the outcomes reported: delivered, failed, rejected.
	Events []string `yaml:"events"`
	// To is "sender" (default: the mail's Reply-To, else its From) or a
	// fixed address.
	To string `yaml:"to,omitempty"`
	// From is the report's From address; default: the address the mail was
	// sent to (the gateway's mailbox).
	From string `yaml:"from,omitempty"`
	// ReplyTo is an optional Reply-To for the report (e.g. the help desk).
	ReplyTo string `yaml:"reply_to,omitempty"`
	// AttachPages attaches the sent pages as one PDF to a delivered report
	// (drivers that render pages only).
	AttachPages bool `yaml:"attach_pages,omitempty"`
	// Templates replace the built-in text of an event's report: event →
	// file (text/template, relative to the map file).
	Templates map[string]string `yaml:"templates,omitempty"`
	// Formats tells a sender whose mail was rejected how to write one the
	// map accepts, e.g. "Put the number in the subject as Fax: +1 555 123 4567".
	Formats string `yaml:"formats,omitempty"`
	// RateLimit caps reports per recipient address.
	RateLimit RateLimitSpec `yaml:"rate_limit,omitempty"`
	// IgnoreSenders are addresses never answered besides the built-in rules
	// (e.g. the gateway's other mailboxes).
	IgnoreSenders []string `yaml:"ignore_senders,omitempty"`
}

// RateLimitSpec is at most Reports reports per Per to one address.
type RateLimitSpec struct {
	Reports int           `yaml:"reports,omitempty"` // default 20; -1 switches the limit off
	Per     time.Duration `yaml:"per,omitempty"`     // default 1h
}

// Defaults of the notify section, in one place.
const (
	DefaultRateReports = 20
	DefaultRatePer     = time.Hour
)

// Notify returns the map's notify section with its defaults filled in, or
// nil when the map sends no reports.
func (m *Map) Notify() *NotifySpec {
	n := m.spec.Notify
	if n == nil || len(n.Events) == 0 {
		return nil
	}
	out := *n
	if out.To == "" {
		out.To = "sender"
	}
	if out.RateLimit.Reports == 0 {
		out.RateLimit.Reports = DefaultRateReports
	}
	if out.RateLimit.Per == 0 {
		out.RateLimit.Per = DefaultRatePer
	}
	return &out
}

func checkNotify(n *NotifySpec, bad func(where, format string, args ...any)) {
	if n == nil {
		return
	}
	if len(n.Events) == 0 {
		bad("notify.events", "name at least one event (%v), or leave notify out", Events)
	}
	for i, e := range n.Events {
		if !slices.Contains(Events, e) {
			bad(fmt.Sprintf("notify.events[%d]", i), "unknown event %q (want one of %v)", e, Events)
		}
	}
	if n.To != "" && n.To != "sender" {
		if _, err := mail.ParseAddress(n.To); err != nil {
			bad("notify.to", "want sender or an address: %v", err)
		}
	}
	for key, v := range map[string]string{"notify.from": n.From, "notify.reply_to": n.ReplyTo} {
		if v != "" {
			if _, err := mail.ParseAddress(v); err != nil {
				bad(key, "not an address: %v", err)
			}
		}
	}
	for i, v := range n.IgnoreSenders {
		if _, err := mail.ParseAddress(v); err != nil {
			bad(fmt.Sprintf("notify.ignore_senders[%d]", i), "not an address: %v", err)
		}
	}
	for e := range n.Templates {
		if !slices.Contains(Events, e) {
			bad("notify.templates."+e, "unknown event (want one of %v)", Events)
		}
	}
	if n.RateLimit.Reports < -1 || n.RateLimit.Per < 0 {
		bad("notify.rate_limit", "reports must be -1 (no limit) or more, per not negative")
	}
}
