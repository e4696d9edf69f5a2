// Package alarm turns a record's alarm fields into a Signal, the one
// description of an alarm event that the alarm-monitoring drivers (dc09,
// surgard) put on the wire as Contact ID or SIA codes.
//
// The fields are alarm_account, alarm_event (a Contact ID code, a SIA code or
// a name from the table in events.go), alarm_qualifier, alarm_zone or
// alarm_user, alarm_partition and alarm_text. An event that is not in the
// table is refused with the value named, unless the driver has a configured
// default event: never a guess.
package alarm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mediagw/mediagw/internal/duration"
)

// Field names read from a record.
const (
	FieldAccount   = "alarm_account"
	FieldEvent     = "alarm_event"
	FieldQualifier = "alarm_qualifier"
	FieldZone      = "alarm_zone"
	FieldUser      = "alarm_user"
	FieldPartition = "alarm_partition"
	FieldText      = "alarm_text"
)

// Qualifier of a Contact ID event.
type Qualifier int

const (
	New     Qualifier = 1 // a new event, an opening
	Restore Qualifier = 3 // a restore, a closing
	Status  Qualifier = 6 // a previously reported condition still present
)

// Signal is one alarm event.
type Signal struct {
	Account   string    // 3–16 hex digits (DC-09); 4 for Contact ID lines
	Qualifier Qualifier // 1, 3 or 6
	CID       int       // Contact ID event code, 0–999
	SIA       string    // SIA event code (two letters) for the qualifier, "" when none is known
	Partition int       // 0–99
	Zone      int       // zone or user number, 0–999
	IsUser    bool      // Zone holds a user number
	Text      string    // free text, printable ASCII without [ ] | ^
}

// ErrUnknownEvent is wrapped by errors about an alarm_event not in the table.
var ErrUnknownEvent = errors.New("unknown alarm event")

// ErrInvalid is wrapped by errors about a malformed alarm field.
var ErrInvalid = errors.New("invalid alarm field")

// FromFields makes the signal of a record's fields. defaultEvent, when not
// empty, is used for an alarm_event that is missing or not in the table.
func FromFields(f map[string]string, defaultEvent string) (Signal, error) {
	var s Signal
	acct := strings.ToUpper(strings.TrimSpace(f[FieldAccount]))
	if acct == "" {
		return s, fmt.Errorf("alarm: %s is missing: %w", FieldAccount, ErrInvalid)
	}
	if len(acct) < 3 || len(acct) > 16 || strings.Trim(acct, "0123456789ABCDEF") != "" {
		return s, fmt.Errorf("alarm: %s %q: want 3 to 16 hex digits: %w", FieldAccount, acct, ErrInvalid)
	}
	s.Account = acct

	ev := strings.TrimSpace(f[FieldEvent])
	e, q, ok := lookup(ev)
	if !ok {
		if defaultEvent == "" {
			if ev == "" {
				return s, fmt.Errorf("alarm: %s is missing: %w", FieldEvent, ErrUnknownEvent)
			}
			return s, fmt.Errorf("alarm: %s %q is not a known event (a Contact ID code, a SIA code or one of %s): %w",
				FieldEvent, ev, strings.Join(Names(), ", "), ErrUnknownEvent)
		}
		e, q, ok = lookup(defaultEvent)
		if !ok {
			return s, fmt.Errorf("alarm: default_event %q is not a known event: %w", defaultEvent, ErrUnknownEvent)
		}
	}
	s.CID = e.CID
	s.Qualifier = New
	if q != 0 {
		s.Qualifier = q
	}
	if qs := strings.TrimSpace(f[FieldQualifier]); qs != "" && q == 0 {
		qq, err := ParseQualifier(qs)
		if err != nil {
			return s, err
		}
		s.Qualifier = qq
	}
	s.SIA = e.SIA
	if s.Qualifier == Restore && e.SIARestore != "" {
		s.SIA = e.SIARestore
	}

	zone, user := strings.TrimSpace(f[FieldZone]), strings.TrimSpace(f[FieldUser])
	switch {
	case zone != "" && user != "":
		return s, fmt.Errorf("alarm: both %s and %s are set; a signal carries one: %w", FieldZone, FieldUser, ErrInvalid)
	case user != "":
		n, err := number(FieldUser, user, 999)
		if err != nil {
			return s, err
		}
		s.Zone, s.IsUser = n, true
	case zone != "":
		n, err := number(FieldZone, zone, 999)
		if err != nil {
			return s, err
		}
		s.Zone = n
	}
	if p := strings.TrimSpace(f[FieldPartition]); p != "" {
		n, err := number(FieldPartition, p, 99)
		if err != nil {
			return s, err
		}
		s.Partition = n
	}
	s.Text = CleanText(f[FieldText])
	return s, nil
}

// ParseQualifier reads "new"/"alarm"/"1", "restore"/"3", "status"/"6".
func ParseQualifier(s string) (Qualifier, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "new", "alarm", "e", "event", "open", "opening":
		return New, nil
	case "3", "restore", "r", "close", "closing":
		return Restore, nil
	case "6", "status", "p", "previous":
		return Status, nil
	}
	return 0, fmt.Errorf("alarm: %s %q: want new (1), restore (3) or status (6): %w", FieldQualifier, s, ErrInvalid)
}

func number(field, s string, max int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > max {
		return 0, fmt.Errorf("alarm: %s %q: want a number from 0 to %d: %w", field, s, max, ErrInvalid)
	}
	return n, nil
}

// CleanText keeps printable ASCII other than the characters that delimit
// blocks in the protocols ([ ] | ^ "), and at most 64 characters.
func CleanText(s string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		switch {
		case r < 0x20 || r > 0x7e:
			r = ' '
		case strings.ContainsRune("[]|^\"", r):
			r = ' '
		}
		b.WriteRune(r)
		if b.Len() == 64 {
			break
		}
	}
	return strings.TrimSpace(strings.Join(strings.Fields(b.String()), " "))
}

// Duration is a time.Duration in options: a Go duration string ("30s") or
// a number of seconds.
type Duration = duration.Duration

// KeepAlive runs check every quarter of every until stop closes, in a
// goroutine counted by wg: the shared loop behind DC-09 supervision (NULL
// messages) and the Sur-Gard heartbeat. check decides whether the link was
// quiet long enough to send something.
func KeepAlive(stop <-chan struct{}, wg *sync.WaitGroup, every time.Duration, check func(every time.Duration)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every / 4)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			check(every)
		}
	}()
}
