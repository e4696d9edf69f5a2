package faxmodem

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration written as "3m", "90s" in options.
type Duration time.Duration

// UnmarshalJSON accepts a Go duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("faxmodem: duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("faxmodem: duration %s: want \"3m\" or seconds", b)
	}
	*d = Duration(n * float64(time.Second))
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// DialPolicy decides which numbers may be dialled. An email-to-fax gateway
// is a toll-fraud target: international and premium-rate numbers are
// denied unless a pattern in Allow lets them through.
type DialPolicy struct {
	// Allow: when not empty, only numbers matching one of these may be
	// dialled; a match here also lifts the international and premium
	// denials. Patterns: digits, 'X' for any one digit, '*' at the end for
	// anything after; a leading '+' is literal.
	Allow []string `json:"allow,omitempty"`
	// Deny: numbers matching any of these are refused, whatever Allow says.
	Deny []string `json:"deny,omitempty"`
	// InternationalPrefixes start an international number (default "+",
	// "00", "011").
	InternationalPrefixes []string `json:"international_prefixes,omitempty"`
	// Premium patterns are premium-rate numbers (default: 900*, 1900*,
	// 976*, 1976*, 09*, 0190*, 118*).
	Premium []string `json:"premium,omitempty"`
	// OutsideLine lists the access codes a PBX needs before an outside
	// number ("9", "0") when the data map's dial rules put one in front.
	// The international and premium checks, and the Allow and Deny
	// patterns, then also look at the number without it: "9 1900 555 0199"
	// is a premium-rate number, "9 011 44..." an international one.
	OutsideLine []string `json:"outside_line,omitempty"`
}

// DefaultPremium are the premium-rate patterns used when none are given.
var DefaultPremium = []string{"900*", "1900*", "976*", "1976*", "09*", "0190*", "118*"}

// ErrDenied is returned for a number the dial policy refuses.
var ErrDenied = errors.New("faxmodem: number refused by the dial policy")

// Normalize keeps what a modem dials: digits, a leading '+', and the dial
// modifiers ',', 'W', 'P', 'T', '*', '#'. Spaces, dashes, dots and
// parentheses are dropped; anything else is an error.
func Normalize(number string) (string, error) {
	var b strings.Builder
	for i, r := range strings.TrimSpace(number) {
		switch {
		case r >= '0' && r <= '9', r == ',', r == '*', r == '#':
			b.WriteRune(r)
		case r == 'W' || r == 'w' || r == 'P' || r == 'p' || r == 'T' || r == 't':
			b.WriteRune(r &^ 0x20)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ', r == '-', r == '.', r == '(', r == ')', r == '/':
		default:
			return "", fmt.Errorf("faxmodem: fax number %q: character %q not allowed", number, r)
		}
	}
	if digits(b.String()) == "" {
		return "", fmt.Errorf("faxmodem: fax number %q has no digits", number)
	}
	return b.String(), nil
}

// digits is the number as the network sees it: '+' and digits only.
func digits(n string) string {
	var b strings.Builder
	for _, r := range n {
		if r >= '0' && r <= '9' || r == '+' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func match(pattern, number string) bool {
	pattern = strings.TrimSpace(pattern)
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c == '*' {
			return true
		}
		if i >= len(number) {
			return false
		}
		if c == 'X' || c == 'x' {
			if number[i] < '0' || number[i] > '9' {
				return false
			}
			continue
		}
		if c != number[i] {
			return false
		}
	}
	return len(pattern) == len(number)
}

func matchAny(patterns []string, number string) bool {
	for _, p := range patterns {
		if match(p, number) {
			return true
		}
	}
	return false
}

// Check returns the number to dial, or an error wrapping ErrDenied.
func (p DialPolicy) Check(number string) (string, error) {
	n, err := Normalize(number)
	if err != nil {
		return "", err
	}
	d := digits(n)
	// '*' and '#' dial the line's feature codes (call forwarding, caller
	// ID blocking) and hide the number behind them from the checks below.
	if strings.ContainsAny(n, "*#") {
		return "", fmt.Errorf("%w: %s: '*' and '#' (feature codes) are not dialled from a message; a code the line needs belongs in the device's dial_prefix", ErrDenied, n)
	}
	// The forms of the number a pattern is matched against: as dialled,
	// and without the outside-line access code.
	forms := []string{d}
	for _, code := range p.OutsideLine {
		if code = digits(code); code != "" && strings.HasPrefix(d, code) && len(d) > len(code) {
			forms = append(forms, d[len(code):])
			break
		}
	}
	anyForm := func(patterns []string, forms []string) bool {
		for _, f := range forms {
			if matchAny(patterns, f) {
				return true
			}
		}
		return false
	}
	// Digits after a pause (',' or 'W') reach whatever answered the first
	// ones (a PBX, a calling-card line): each tail is checked as a number
	// of its own, so "555 0100, 011 44..." is international.
	var tails []string
	for i := 0; i < len(n); i++ {
		if n[i] == ',' || n[i] == 'W' {
			if t := digits(n[i+1:]); t != "" {
				tails = append(tails, t)
			}
		}
	}
	if anyForm(p.Deny, forms) || anyForm(p.Deny, tails) {
		return "", fmt.Errorf("%w: %s matches a denied pattern", ErrDenied, d)
	}
	allowed := anyForm(p.Allow, forms)
	if len(p.Allow) > 0 && !allowed {
		return "", fmt.Errorf("%w: %s matches no allowed pattern", ErrDenied, d)
	}
	intl := p.InternationalPrefixes
	if len(intl) == 0 {
		intl = []string{"+", "00", "011"}
	}
	prem := p.Premium
	if len(prem) == 0 {
		prem = DefaultPremium
	}
	check := forms
	if allowed {
		check = nil
	}
	for _, t := range tails {
		if !matchAny(p.Allow, t) {
			check = append(check, t)
		}
	}
	for _, f := range check {
		for _, pre := range intl {
			if strings.HasPrefix(f, pre) {
				return "", fmt.Errorf("%w: %s is international", ErrDenied, d)
			}
		}
	}
	if anyForm(prem, check) {
		return "", fmt.Errorf("%w: %s is a premium-rate number", ErrDenied, d)
	}
	return n, nil
}

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
