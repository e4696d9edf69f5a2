// Package plugin is the SDK for mediagw connector plugins.
//
// A connector author implements Connector and writes a three-line main:
//
//	func main() { plugin.ServeConnector(myconnector.New) }
//
// The host talks to the plugin over hashicorp/go-plugin (gRPC); authors never
// import generated code. The host uses the same Connector interface for a
// plugin process (through NewGRPCClient) and for a connector in process.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Connector is a source of messages: a mailbox, a directory, a queue.
//
// Lifecycle: the factory constructs it (no side effects), Configure checks
// and applies the configuration, the first Read starts it, Close stops it
// (Close must work after a partial start, and after no start at all).
type Connector interface {
	// Info names the connector and lists its capabilities. An error means
	// the connector cannot say what it is: the host treats it as a failed
	// launch.
	Info(ctx context.Context) (Info, error)
	// ConfigSchema lists the configuration keys. It is the one list the
	// connector's strict decoding checks keys against (a key it does not
	// list is unknown), and the one the docs are checked against.
	ConfigSchema(ctx context.Context) ([]ConfigField, error)
	// Configure decodes and checks a JSON configuration. Problems with the
	// configuration are returned as diagnostics naming the key; the error
	// is for anything else.
	Configure(ctx context.Context, configJSON []byte) (Diagnostics, error)
	// Test checks credentials and reachability and names the fix.
	Test(ctx context.Context) TestResult
	// Read blocks until the next message is ready, ctx ends, or the source
	// fails. A message is offered again after a Retry settlement, and is
	// never offered twice while unsettled.
	Read(ctx context.Context) (*Message, error)
	// Settle settles one delivery. It is idempotent: settling a delivery
	// that was already settled (or is unknown) returns nil.
	Settle(ctx context.Context, deliveryID string, s Settlement) error
	// Close releases everything the connector holds.
	Close() error
}

// HealthReporter is implemented by connectors that report health changes.
// The channel must be closed when ctx ends.
type HealthReporter interface {
	Health(ctx context.Context) <-chan Health
}

// Factory constructs a connector. The logger writes to the host's log.
type Factory func(logger *slog.Logger) Connector

// Info names a connector.
type Info struct {
	Name         string
	Version      string
	Description  string
	Capabilities []string
}

// ConfigField describes one configuration key.
type ConfigField struct {
	Name        string
	Type        string // string, int, bool, duration, secret, list
	Description string
	Required    bool
	Default     string
}

// Severity of a diagnostic.
type Severity int

const (
	SeverityError Severity = iota + 1
	SeverityWarning
)

// Diagnostic is one finding about a configuration.
type Diagnostic struct {
	Severity Severity
	Field    string // dotted key path, "" for the whole config
	Message  string
}

func (d Diagnostic) String() string {
	if d.Field == "" {
		return d.Message
	}
	return d.Field + ": " + d.Message
}

// Diagnostics is a list of findings.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Errorf appends an error diagnostic for field.
func (ds *Diagnostics) Errorf(field, format string, args ...any) {
	*ds = append(*ds, Diagnostic{Severity: SeverityError, Field: field, Message: fmt.Sprintf(format, args...)})
}

// Warnf appends a warning diagnostic for field.
func (ds *Diagnostics) Warnf(field, format string, args ...any) {
	*ds = append(*ds, Diagnostic{Severity: SeverityWarning, Field: field, Message: fmt.Sprintf(format, args...)})
}

// TestCategory is the outcome class of a connector Test.
type TestCategory string

const (
	TestOK                TestCategory = "ok"
	TestInvalidCredential TestCategory = "invalid_credential"
	TestUnreachable       TestCategory = "unreachable"
	TestPermissionDenied  TestCategory = "permission_denied"
	TestMailboxNotFound   TestCategory = "mailbox_not_found"
	TestError             TestCategory = "error"
	// TestSMTPAuthDisabled: SMTP AUTH is off for the tenant or mailbox (send path).
	TestSMTPAuthDisabled TestCategory = "smtp_auth_disabled"
	// TestConsentRequired: the signed-in user (delegated mode) has not
	// consented, or the consent was withdrawn (AADSTS65001).
	TestConsentRequired TestCategory = "consent_required"
	// TestInteractionRequired: the user must sign in again (no sign-in yet,
	// refresh token expired AADSTS700082, MFA required AADSTS50076).
	TestInteractionRequired TestCategory = "interaction_required"
)

// TestResult is what Test found.
type TestResult struct {
	Category TestCategory
	Hint     string // one line: what to do
	Detail   string // what was observed; never a secret
	// Send is the result for the send path of a connector that can send
	// (AUTH only: no mail is sent); nil when it does not send.
	Send *TestResult
}

// Message is one raw RFC 5322 message offered by a connector.
type Message struct {
	DeliveryID string            // names this offer; Settle refers to it
	SourceID   string            // stable id at the source; the host dedupes on it
	Raw        []byte            // the whole RFC 5322 message
	Metadata   map[string]string // e.g. folder, uid, path
	ReceivedAt time.Time         // zero if unknown
}

// SettleKind says what happens to a message at its source.
type SettleKind int

const (
	// Ack: a line driver took the message; mark it processed.
	Ack SettleKind = iota + 1
	// Retry: leave it; offer it again (after RetryAfter).
	Retry
	// Reject: no line driver can take it; move it aside with the reason.
	Reject
)

func (k SettleKind) String() string {
	switch k {
	case Ack:
		return "ack"
	case Retry:
		return "retry"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("settle(%d)", int(k))
}

// Settlement is the host's verdict on one delivery.
type Settlement struct {
	Kind       SettleKind
	Reason     string
	RetryAfter time.Duration
}

// Health is a connector's state.
type Health struct {
	State   HealthState
	Message string
	Time    time.Time
}

// HealthState is a coarse connector state.
type HealthState string

const (
	HealthStarting HealthState = "starting"
	HealthHealthy  HealthState = "healthy"
	HealthDegraded HealthState = "degraded"
	HealthDown     HealthState = "down"
)

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("connector closed")
