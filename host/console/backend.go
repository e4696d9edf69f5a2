package console

import (
	"context"
	"errors"
	"time"
)

// Backend is what the console shows and acts on. The gateway's adapter
// (hostbackend.go) implements it on a running host; the tests use a fake.
type Backend interface {
	// Overview returns a light for every connector, driver, modem and the
	// spool, with the queue counts and active jobs of each driver.
	//
	// The calls that read or change the spool take the request's
	// context: a client that goes away, or a spool that does not answer
	// (a shared database), ends them.
	Overview(ctx context.Context) (Overview, error)
	// Jobs lists a driver's jobs ("" for all drivers) in a state: queued,
	// active, retrying, failed, or "" for all; at most limit.
	Jobs(ctx context.Context, driver, state string, limit int) ([]JobRow, error)
	// Job returns one job with its fields, documents, attempts and pages.
	// A job that does not exist is an error matching ErrNotFound.
	Job(ctx context.Context, id string) (*JobPage, error)
	// Retry schedules a failed job again; Purge deletes it and its documents.
	Retry(ctx context.Context, id string) error
	Purge(ctx context.Context, id string) error
	// Test runs a connector's Test, as `mediagw test` does.
	Test(ctx context.Context, connector string) (TestView, error)
	// Subscribe returns live activity events and a function that ends the
	// subscription.
	Subscribe() (<-chan Event, func())
	// Maps names the data maps; TryMap shows what one makes of an email.
	Maps() []string
	TryMap(mapName string, raw []byte) (MapPreview, error)
}

// ErrNotFound is what a Backend returns for a job, connector or map that does
// not exist; the console answers 404.
var ErrNotFound = errors.New("not found")

// ErrConflict is what a Backend returns when a job is not in a state that
// allows the action (retrying a job that is not failed); the console answers 409.
var ErrConflict = errors.New("not allowed in this state")

// Light is a unit's health at a glance.
type Light string

// The three lights.
const (
	Green Light = "green" // working
	Amber Light = "amber" // degraded: working with trouble, or starting
	Red   Light = "red"   // down
)

// Overview is the front page.
type Overview struct {
	Health Light // the gateway as a whole
	// Gateway is this gateway's name when it is one of a group on a
	// shared spool; "" when it runs alone.
	Gateway string
	Units   []Unit
}

// Unit is one connector, driver, modem or the spool.
type Unit struct {
	Kind      string // connector, driver, modem, spool
	Name      string
	Light     Light
	State     string    // a word or two: healthy, degraded, down, starting
	Since     time.Time // when the light last changed; zero if unknown
	LastError string    // plain words; "" when none
	Restarts  int       // plugin restarts (connectors)
	// Queue counts (drivers).
	Queued, InProgress, Retrying, Failed int
	OldestAge                            time.Duration
	Active                               []Active
	// Detail holds further facts as label/value pairs (a spool's write
	// errors and deferrals, a modem's device).
	Detail []Field
}

// Active is a job on the line now.
type Active struct {
	JobID  string
	Step   string // dialling, training, sending, …
	Detail string
	Page   int // page k …
	Pages  int // … of n; 0 when unknown
}

// JobRow is one line of a queue or of the failed list.
type JobRow struct {
	ID        string
	Driver    string
	Connector string
	State     string // queued, active, retrying, failed
	Created   time.Time
	Next      time.Time // when the next attempt is due (retrying, queued)
	Attempts  int
	Category  string // of the last attempt's failure
	Reason    string // plain words
	Summary   string // e.g. the fax number and the subject
	Page      int    // page progress of an active job
	Pages     int
}

// JobPage is everything about one job.
type JobPage struct {
	JobRow
	Fields    []Field
	Documents []Document
	History   []Attempt
	Thumbs    []Thumb // the fax pages, in order
	// CallLog is the T.30 log of the call a received fax came in on, one
	// line each.
	CallLog []string
}

// Field returns the value of the job's field name, "" when it has none.
func (p *JobPage) Field(name string) string {
	for _, f := range p.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// Field is a label and its value.
type Field struct{ Name, Value string }

// Document is one document of a job.
type Document struct {
	Name      string
	MediaType string
	Size      int
}

// Attempt is one delivery attempt.
type Attempt struct {
	N              int
	Started, Ended time.Time
	Result         string // delivered, temporary, permanent
	Category       string
	Reason         string
	Log            []string // the T.30 log of a fax call, one line each
}

// Thumb is one fax page as a PNG, given as bytes (served by the console) or
// as a URL of the backend's own.
type Thumb struct {
	PNG []byte
	URL string
}

// TestView is the answer of a connector's Test.
type TestView struct {
	Connector string
	Category  string // ok, invalid_credential, unreachable, …
	Hint      string // what to do about it
	Detail    string
}

// OK reports whether the test passed.
func (t TestView) OK() bool { return t.Category == "ok" }

// Event is one line of the activity feed.
type Event struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Connector string    `json:"connector,omitempty"`
	Driver    string    `json:"driver,omitempty"`
	JobID     string    `json:"job,omitempty"`
	Message   string    `json:"message"`
}

// MapPreview is what `mediagw datamap try` shows.
type MapPreview struct {
	Map      string
	Rejected bool
	Reason   string // why the mail would be rejected
	Text     string // the preview as datamap try prints it
}
