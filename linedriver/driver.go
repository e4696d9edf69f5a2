// Package linedriver defines the outputs of the gateway: a line driver takes a
// record (named fields and documents) that the host has accepted into its
// durable spool and delivers it: a fax, a file, a pager message.
//
// The host owns the spool and the retry schedule. A driver checks whether it
// can ever take a record (Check), and delivers one job at a time per slot
// (Deliver), reporting progress and a final Outcome.
package linedriver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Driver is a line driver.
type Driver interface {
	// Name is the configured instance name.
	Name() string
	// Check reports whether the driver could ever deliver rec. A non-nil
	// error means no: the host rejects the message with the error's text.
	Check(rec *Record) error
	// Slots is how many jobs the driver can deliver at once (modems, ...).
	Slots() int
	// Deliver makes one attempt at a job. It returns when the attempt ends
	// or ctx is cancelled (then with a Temporary outcome). report may be
	// called with progress; State in the outcome is kept in the spool and
	// handed back on the next attempt (e.g. pages already confirmed).
	Deliver(ctx context.Context, job *Job, report func(Progress)) Outcome
	// Close releases the driver's resources.
	Close() error
}

// Record is what a data map made of one message.
type Record struct {
	ID        string            `json:"id"`        // host-assigned, unique
	SourceID  string            `json:"source_id"` // the message's id at its source
	Connector string            `json:"connector"`
	Fields    map[string]string `json:"fields"`
	Documents []Document        `json:"documents"`
	// Skipped lists what the data map left out of Documents (under
	// `unsupported: skip`) and why; a driver tells the recipient (the fax
	// driver prints it on the first page) and a delivery report the sender.
	Skipped []Skipped `json:"skipped,omitempty"`
	// Warnings are about the documents as delivered (e.g. characters no
	// installed font can draw).
	Warnings []string  `json:"warnings,omitempty"`
	Received time.Time `json:"received"`
	// Origin is what the gateway needs to answer the message's sender
	// (delivery reports); nil when the source gave no message headers.
	Origin *Origin `json:"origin,omitempty"`
	// CallLog is the T.30 log of the call a received fax came in on.
	CallLog string `json:"call_log,omitempty"`
}

// Skipped is an attachment, or part of a message, left out of a record.
type Skipped struct {
	Name   string `json:"name"`
	Type   string `json:"type,omitempty"`
	Reason string `json:"reason"`
}

// Origin holds the headers of a record's message that a reply needs: where
// to send it, what to thread it under, and whether the message came from a
// machine that must not be answered. Addresses are bare (no display name).
type Origin struct {
	MessageID     string `json:"message_id,omitempty"` // without angle brackets
	References    string `json:"references,omitempty"`
	Subject       string `json:"subject,omitempty"`
	From          string `json:"from,omitempty"`
	ReplyTo       string `json:"reply_to,omitempty"`
	To            string `json:"to,omitempty"` // the first recipient: the gateway's mailbox, as a rule
	ReturnPath    string `json:"return_path,omitempty"`
	AutoSubmitted string `json:"auto_submitted,omitempty"`
	Precedence    string `json:"precedence,omitempty"`
	ListID        string `json:"list_id,omitempty"`
	Report        string `json:"report,omitempty"` // X-Mediagw-Report: the message is one of our reports
}

// Document is one thing to deliver: a body text, an attachment.
type Document struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	Data      []byte `json:"data"`
}

// Job is one record on its way through one driver.
type Job struct {
	ID       string          `json:"id"`
	Driver   string          `json:"driver"`
	Record   Record          `json:"record"`
	Attempt  int             `json:"attempt"` // 1 for the first attempt
	State    json.RawMessage `json:"state,omitempty"`
	Accepted time.Time       `json:"accepted"`
}

// Progress is a step of a delivery attempt, for the activity log.
type Progress struct {
	Step   string // e.g. "dial", "dcs", "tcf", "page"
	Detail string
	// Page and Pages, when a driver knows them, say which page of how many
	// is on its way (1-based; 0: not a page step).
	Page, Pages int
}

// Result of one delivery attempt.
type Result int

const (
	// Delivered: done, remove from the spool.
	Delivered Result = iota + 1
	// Temporary: try again after RetryAfter.
	Temporary
	// Permanent: give up; the job failed for good.
	Permanent
)

func (r Result) String() string {
	switch r {
	case Delivered:
		return "delivered"
	case Temporary:
		return "temporary"
	case Permanent:
		return "permanent"
	}
	return fmt.Sprintf("result(%d)", int(r))
}

// Outcome ends one delivery attempt.
type Outcome struct {
	Result     Result
	Category   string        // e.g. "busy", "no_answer", "io"; "" when delivered
	Reason     string        // human words
	RetryAfter time.Duration // for Temporary
	State      json.RawMessage
	Details    map[string]string // e.g. pages, remote_id, speed
	// Uncounted marks a Temporary outcome of an attempt that never reached
	// the line (no modem free or answering): it does not count toward the
	// job's attempts, so an outage of the equipment cannot use them up.
	Uncounted bool
}

// Done is a Delivered outcome.
func Done(details map[string]string) Outcome { return Outcome{Result: Delivered, Details: details} }

// Retry is a Temporary outcome.
func Retry(category, reason string, after time.Duration) Outcome {
	return Outcome{Result: Temporary, Category: category, Reason: reason, RetryAfter: after}
}

// Fail is a Permanent outcome.
func Fail(category, reason string) Outcome {
	return Outcome{Result: Permanent, Category: category, Reason: reason}
}

// Factory builds a driver from its name and its YAML/JSON options (decoded
// strictly by the factory). Construction has no side effects beyond checks.
type Factory func(name string, options json.RawMessage, logger *slog.Logger) (Driver, error)

var (
	mu       sync.RWMutex
	registry = map[string]Factory{}
)

// Register makes a driver type available by name. It panics on a duplicate.
func Register(typ string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[typ]; dup {
		panic("linedriver: duplicate driver type " + typ)
	}
	registry[typ] = f
}

// Lookup returns the factory of a driver type.
func Lookup(typ string) (Factory, bool) {
	mu.RLock()
	defer mu.RUnlock()
	f, ok := registry[typ]
	return f, ok
}

// Types lists the registered driver types.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// BaseDirSetter is implemented by drivers whose options hold paths: the host
// calls it so that relative paths are relative to the config file's folder.
type BaseDirSetter interface {
	SetBaseDir(dir string)
}

// Starter is implemented by drivers with work of their own beside their
// jobs (the alarm drivers' link supervision and heartbeat): the host calls
// Start once, when it starts the driver, and Close ends that work.
type Starter interface {
	Start()
}

// StateSaver is implemented by drivers that can save a job's state during an
// attempt, not only in its outcome: the faxmodem driver saves the pages the
// far end confirmed after each one. The host keeps what save receives in the
// spool, so an attempt cut off by a crash resumes there on the next attempt.
// save may be nil; a driver that is handed one calls it from the attempt's
// goroutine.
type StateSaver interface {
	DeliverSaving(ctx context.Context, job *Job, report func(Progress), save func(state json.RawMessage) error) Outcome
}

// Previewer is implemented by drivers that can say what they would put on
// the line for a record, without sending it: `mediagw datamap try` prints
// it after the fields (the alarm drivers show the signal).
type Previewer interface {
	Preview(rec *Record) (string, error)
}

// PDFMaker is implemented by drivers that turn a record into pages (the fax
// driver): the host attaches the pages of a delivered job, as one PDF, to
// its delivery report. job is the delivered job as it was attempted.
type PDFMaker interface {
	PagesPDF(ctx context.Context, job *Job) ([]byte, error)
}

// DeviceReporter is implemented by drivers that work through devices of
// their own (the fax driver's modems): the host shows each device's health
// in its status, the console a light per device.
type DeviceReporter interface {
	Devices() []DeviceStatus
}

// The health of a device, in the words of the host's status.
const (
	DeviceHealthy  = "healthy"  // in service: idle or on a call
	DeviceDegraded = "degraded" // out of service after a failure, to be probed again
	DeviceDown     = "down"     // it does not answer: its probe failed too
)

// DeviceStatus is one device of a driver.
type DeviceStatus struct {
	Name   string `json:"name"`   // e.g. the modem's device path
	Health string `json:"health"` // DeviceHealthy, DeviceDegraded or DeviceDown
	// State is a few words: idle, on a call, out of service, not answering.
	State string    `json:"state"`
	Since time.Time `json:"since"` // when Health last changed
	// LastError is the failure that took the device out, in plain words;
	// empty while it is healthy.
	LastError string `json:"last_error,omitempty"`
	// ProbeAt is when a device out of service is tried again.
	ProbeAt time.Time `json:"probe_at,omitzero"`
}
