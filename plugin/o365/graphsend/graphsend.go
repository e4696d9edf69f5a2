// Package graphsend sends a complete MIME message with Microsoft Graph:
// POST /users/{id}/sendMail with the message base64-encoded as a text/plain
// body (the app permission Mail.Send). 429 and 503 are waited out with
// Retry-After as the mailbox reader does; failures come back as
// *plugin.SendFailure.
package graphsend

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/graphbox"
	"github.com/mediagw/mediagw/plugin/o365/token"
)

// Options configure a Sender.
type Options struct {
	Endpoint   string // https://graph.microsoft.com
	User       string // the mailbox that sends (send_as)
	HTTPClient *http.Client
	Token      func(ctx context.Context) (token.Token, error)
	// DefaultRetryAfter applies to a 429/503 without Retry-After.
	DefaultRetryAfter time.Duration
	// MaxRetries bounds the waits for one message; then the send fails as
	// throttled (temporary).
	MaxRetries int
	// Sleep waits d or until ctx ends; nil uses a timer (tests inject one).
	Sleep func(ctx context.Context, d time.Duration) error
	// Hints name the fixes.
	PermissionHint, CredentialHint, UnreachableHint string
}

// Sender submits messages through Graph.
type Sender struct {
	o   Options
	url string
}

// New makes a Sender; it does not connect.
func New(o Options) (*Sender, error) {
	if o.Endpoint == "" || o.User == "" || o.Token == nil {
		return nil, errors.New("graphsend: Endpoint, User and Token are required")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.DefaultRetryAfter <= 0 {
		o.DefaultRetryAfter = 5 * time.Second
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 3
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return &Sender{o: o, url: strings.TrimSuffix(o.Endpoint, "/") + "/v1.0/users/" + url.PathEscape(o.User) + "/sendMail"}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Send submits raw. Graph takes the recipients from the message's To, Cc and
// Bcc headers; envelope recipients that none of them names are added as a
// Bcc header, so that every one is reached. Graph gives no id: the result
// is the message's Message-ID.
func (s *Sender) Send(ctx context.Context, to []string, raw []byte) (plugin.SendResult, error) {
	raw = withBcc(raw, to)
	body := []byte(base64.StdEncoding.EncodeToString(raw))
	for attempt := 0; ; attempt++ {
		tok, err := s.o.Token(ctx)
		if err != nil {
			return plugin.SendResult{}, err // the token source's error: the caller classifies it
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
		if err != nil {
			return plugin.SendResult{}, fmt.Errorf("graphsend: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok.Value.Reveal())
		req.Header.Set("Content-Type", "text/plain")
		resp, err := s.o.HTTPClient.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return plugin.SendResult{}, ctx.Err()
			}
			return plugin.SendResult{}, &plugin.SendFailure{Category: plugin.SendUnreachable, Temporary: true,
				Reason: fmt.Sprintf("POST sendMail: %v", err), Hint: s.o.UnreachableHint}
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return plugin.SendResult{MessageID: messageID(raw)}, nil
		}
		throttled := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout
		if throttled && attempt < s.o.MaxRetries {
			if err := s.o.Sleep(ctx, graphbox.RetryAfter(resp.Header.Get("Retry-After"), s.o.DefaultRetryAfter)); err != nil {
				return plugin.SendResult{}, err
			}
			continue
		}
		return plugin.SendResult{}, s.failure(resp, b, throttled)
	}
}

func (s *Sender) failure(resp *http.Response, b []byte, throttled bool) *plugin.SendFailure {
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &eb)
	reason := fmt.Sprintf("Graph sendMail as %s: HTTP %d %s: %s", s.o.User, resp.StatusCode, eb.Error.Code, eb.Error.Message)
	switch {
	case throttled:
		return &plugin.SendFailure{Category: plugin.SendThrottled, Temporary: true, Reason: reason, Hint: "Microsoft Graph is throttling this mailbox: the report is sent later."}
	case resp.StatusCode == http.StatusUnauthorized:
		return &plugin.SendFailure{Category: plugin.SendInvalidCredential, Reason: reason, Hint: s.o.CredentialHint}
	case resp.StatusCode == http.StatusForbidden:
		return &plugin.SendFailure{Category: plugin.SendPermissionDenied, Reason: reason, Hint: s.o.PermissionHint}
	case resp.StatusCode == http.StatusNotFound || eb.Error.Code == "ErrorInvalidUser" || eb.Error.Code == "MailboxNotEnabledForRESTAPI":
		return &plugin.SendFailure{Category: plugin.SendPermissionDenied, Reason: reason, Hint: fmt.Sprintf("No mailbox %s to send from: check send_as (or email_user).", s.o.User)}
	case resp.StatusCode >= 500:
		return &plugin.SendFailure{Category: plugin.SendError, Temporary: true, Reason: reason, Hint: "Microsoft Graph failed; the report is sent later."}
	}
	return &plugin.SendFailure{Category: plugin.SendError, Reason: reason, Hint: "Microsoft Graph refused the message; see the reason."}
}

// withBcc adds a Bcc header naming the envelope recipients that the
// message's To, Cc and Bcc do not.
func withBcc(raw []byte, to []string) []byte {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return raw
	}
	named := map[string]bool{}
	for _, h := range []string{"To", "Cc", "Bcc"} {
		list, _ := msg.Header.AddressList(h)
		for _, a := range list {
			named[strings.ToLower(a.Address)] = true
		}
	}
	var missing []string
	for _, r := range to {
		if !named[strings.ToLower(r)] {
			missing = append(missing, (&mail.Address{Address: r}).String())
			named[strings.ToLower(r)] = true
		}
	}
	if len(missing) == 0 {
		return raw
	}
	return append([]byte("Bcc: "+strings.Join(missing, ", ")+"\r\n"), raw...)
}

func messageID(raw []byte) string {
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		return msg.Header.Get("Message-Id")
	}
	return ""
}

// Probe checks, without sending, that the access token for Graph carries
// Mail.Send: the application role (roles claim) or, signed in as a user,
// the delegated scope (scp claim). It cannot
// see an application access policy that keeps the app from one mailbox; the
// first send does.
func (s *Sender) Probe(ctx context.Context) error {
	tok, err := s.o.Token(ctx)
	if err != nil {
		return err
	}
	roles, err := tokenRoles(tok.Value.Reveal())
	if err != nil {
		return fmt.Errorf("graphsend: %w", err)
	}
	for _, r := range roles {
		if r == "Mail.Send" {
			return nil
		}
	}
	return &plugin.SendFailure{Category: plugin.SendPermissionDenied,
		Reason: fmt.Sprintf("the Graph token's roles and scopes are %v, without Mail.Send", roles), Hint: s.o.PermissionHint}
}

// tokenRoles reads the roles claim of a JWT without checking its signature
// (the token came straight from the identity platform over TLS).
func tokenRoles(jwt string) ([]string, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, errors.New("the access token is not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("access token payload: %w", err)
	}
	var c struct {
		Roles []string `json:"roles"`
		Scp   string   `json:"scp"` // a delegated token's scopes
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("access token payload: %w", err)
	}
	return append(c.Roles, strings.Fields(c.Scp)...), nil
}
