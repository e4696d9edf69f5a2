package faxmodem

import (
	"time"

	"github.com/mediagw/mediagw/internal/duration"
)

// Duration is a time.Duration written as "3m", "90s" or seconds in options.
type Duration = duration.Duration

// RetryPolicy says when a failed attempt is tried again.
type RetryPolicy struct {
	// MaxAttempts is the most attempts of a job in all (default 6).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Delay per failure category (defaults in DefaultDelays).
	Delay map[string]Duration `json:"delay,omitempty"`
	// MaxPerCategory bounds the attempts that end in one category
	// (defaults: no_carrier 3, page_rejected 3, training_failed 4).
	MaxPerCategory map[string]int `json:"max_per_category,omitempty"`
}

// DefaultDelays are the retry delays per category.
var DefaultDelays = map[string]time.Duration{
	"busy":                 3 * time.Minute,
	"no_answer":            10 * time.Minute,
	"no_carrier":           5 * time.Minute,
	"no_dialtone":          2 * time.Minute,
	"training_failed":      5 * time.Minute,
	"page_rejected":        10 * time.Minute,
	"protocol":             5 * time.Minute,
	"modem_not_responding": time.Minute,
	"remote_hangup":        5 * time.Minute,
	"no_modem":             time.Minute,
	"cancelled":            0,
}

var defaultMaxPerCategory = map[string]int{"no_carrier": 3, "page_rejected": 3, "training_failed": 4}

func (r RetryPolicy) delay(cat string) time.Duration {
	if d, ok := r.Delay[cat]; ok {
		return time.Duration(d)
	}
	if d, ok := DefaultDelays[cat]; ok {
		return d
	}
	return 5 * time.Minute
}

func (r RetryPolicy) maxAttempts() int {
	if r.MaxAttempts > 0 {
		return r.MaxAttempts
	}
	return 6
}

func (r RetryPolicy) maxFor(cat string) int {
	if n, ok := r.MaxPerCategory[cat]; ok {
		return n
	}
	return defaultMaxPerCategory[cat]
}
