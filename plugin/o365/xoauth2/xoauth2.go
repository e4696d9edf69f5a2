// Package xoauth2 is a SASL client for the XOAUTH2 mechanism used by Office
// 365 and Gmail for IMAP with OAuth 2.0 access tokens.
//
// The initial response is "user=<user>\x01auth=Bearer <token>\x01\x01". A
// server that refuses the token answers with a challenge holding a JSON
// error; the client must reply with a single 0x01 byte (an empty reply is
// sent as "=" by go-imap, which Dovecot answers with BAD instead of NO).
package xoauth2

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/emersion/go-sasl"
)

// Mechanism is the SASL mechanism name.
const Mechanism = "XOAUTH2"

// Error is the server's refusal, decoded from its challenge.
type Error struct {
	Status  string `json:"status"`
	Schemes string `json:"schemes"`
	Scope   string `json:"scope"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("xoauth2: server refused the token (status %s)", e.Status)
}

// Client implements sasl.Client. LastError holds the decoded challenge after
// a refusal.
type Client struct {
	user, token string
	emptyReply  bool
	LastError   *Error
}

var _ sasl.Client = (*Client)(nil)

// New returns a client for user with access token token, for IMAP.
func New(user, token string) *Client { return &Client{user: user, token: token} }

// NewSMTP returns a client for SMTP AUTH. It answers the error challenge with
// an empty line (the reply RFC 7628 and Dovecot's submission service expect),
// which go-smtp sends for an empty non-nil reply; a nil reply would end the
// exchange early and leave the server's 535 for the next command.
func NewSMTP(user, token string) *Client {
	return &Client{user: user, token: token, emptyReply: true}
}

// Start returns the initial response.
func (c *Client) Start() (string, []byte, error) {
	return Mechanism, InitialResponse(c.user, c.token), nil
}

// Next answers the server's error challenge (with 0x01 for IMAP, an empty
// reply for SMTP) and records the error.
func (c *Client) Next(challenge []byte) ([]byte, error) {
	e, err := ParseChallenge(challenge)
	if err != nil {
		c.LastError = &Error{Status: "unknown"}
	} else {
		c.LastError = e
	}
	if c.emptyReply {
		return []byte{}, nil
	}
	return []byte{0x01}, nil
}

// InitialResponse builds the XOAUTH2 client response.
func InitialResponse(user, token string) []byte {
	b := make([]byte, 0, len(user)+len(token)+24)
	b = append(b, "user="...)
	b = append(b, user...)
	b = append(b, 0x01)
	b = append(b, "auth=Bearer "...)
	b = append(b, token...)
	return append(b, 0x01, 0x01)
}

// ParseChallenge decodes the JSON error a server sends as a challenge.
func ParseChallenge(challenge []byte) (*Error, error) {
	var e Error
	if err := json.Unmarshal(challenge, &e); err != nil {
		return nil, fmt.Errorf("xoauth2: challenge: %w", err)
	}
	if e.Status == "" {
		return nil, errors.New("xoauth2: challenge has no status")
	}
	return &e, nil
}
