package plugin

import (
	"context"
	"errors"
	"fmt"
)

// CapabilitySend is listed in Info.Capabilities by a connector that can send
// mail (delivery reports, received faxes). The host sends through a connector
// only when it advertises this capability and implements Sender.
const CapabilitySend = "send"

// Sender is implemented by connectors that can send mail with the same
// credentials they read with: the way back from a line driver to a person.
type Sender interface {
	// Send submits one complete RFC 5322 message and returns once the
	// submission server (or outbox) has taken it. The error is a *SendFailure
	// whenever the connector knows whether trying again can help.
	Send(ctx context.Context, m *OutgoingMessage) (SendResult, error)
}

// OutgoingMessage is one message to submit.
type OutgoingMessage struct {
	// From is the envelope sender; "" means the connector's own address
	// (its send_as, or the mailbox it reads).
	From string
	// To are the envelope recipients; the message's headers are not parsed
	// for them.
	To []string
	// Raw is the whole RFC 5322 message, headers and body.
	Raw []byte
}

// SendResult is what the submission server answered.
type SendResult struct {
	// MessageID is the id the server gave the message, or the Message-ID
	// header when the server gives none.
	MessageID string
}

// SendCategory classifies a failed send, like TestCategory for reading.
type SendCategory string

const (
	SendInvalidCredential SendCategory = "invalid_credential" // the token or password was refused
	SendAuthDisabled      SendCategory = "smtp_auth_disabled" // SMTP AUTH switched off for the tenant or mailbox (535 5.7.139)
	SendPermissionDenied  SendCategory = "permission_denied"  // may not send as that address (5.7.60, Graph 403)
	SendRecipientRefused  SendCategory = "recipient_refused"  // the server refused a recipient for good
	SendUnreachable       SendCategory = "unreachable"        // no connection to the submission server
	SendThrottled         SendCategory = "throttled"          // 429 / 4.x.x: try again later
	SendNotConfigured     SendCategory = "not_configured"     // send_via none, or no relay configured
	SendError             SendCategory = "error"              // anything else
)

// SendFailure is the typed error of a failed send.
type SendFailure struct {
	Category  SendCategory
	Temporary bool   // trying again later may help
	Reason    string // what the server said; never a secret
	Hint      string // one line: what to do
}

func (e *SendFailure) Error() string {
	s := fmt.Sprintf("send: %s: %s", e.Category, e.Reason)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// ErrSendUnsupported is returned by the host-side client of a plugin that does
// not advertise CapabilitySend.
var ErrSendUnsupported = errors.New("connector cannot send mail")

// MaxSendSize is the largest raw message Send carries (as the protocol says).
const MaxSendSize = 25 << 20

// Sends reports whether c can send now: it implements Sender and its Info
// lists CapabilitySend (a connector lists it only when it is configured to
// send).
func Sends(ctx context.Context, c Connector) bool {
	if _, ok := c.(Sender); !ok {
		return false
	}
	info, err := c.Info(ctx)
	if err != nil {
		return false
	}
	for _, cap := range info.Capabilities {
		if cap == CapabilitySend {
			return true
		}
	}
	return false
}
