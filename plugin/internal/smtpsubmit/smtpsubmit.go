// Package smtpsubmit submits one message to an SMTP submission server with
// emersion/go-smtp: dial (through the connector's dialer, so a proxy
// applies), STARTTLS (or implicit TLS), AUTH, MAIL, RCPT, DATA. Failures
// come back as *plugin.SendFailure, classified by the reply code; a
// connector adds its own server's codes with Options.Classify.
package smtpsubmit

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"regexp"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mediagw/mediagw/plugin"
)

// TLSMode says how the connection is secured.
type TLSMode string

const (
	StartTLS TLSMode = "starttls" // plain connect, then STARTTLS (required)
	Implicit TLSMode = "implicit" // TLS from the first byte (port 465)
	None     TLSMode = "none"     // no TLS at all: only when configured explicitly
)

// Stage is the step of the submission that failed.
type Stage string

const (
	StageConnect Stage = "connect"
	StageTLS     Stage = "starttls"
	StageAuth    Stage = "auth"
	StageMail    Stage = "mail"
	StageRcpt    Stage = "rcpt"
	StageData    Stage = "data"
)

// Options describe one submission server.
type Options struct {
	Addr      string // host:port
	TLS       TLSMode
	TLSConfig *tls.Config // ServerName set to the host
	// Dial opens the TCP connection; nil dials directly.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Auth makes the SASL client for one connection (a fresh token each
	// time); nil means no AUTH.
	Auth func(ctx context.Context) (sasl.Client, error)
	// Classify may classify a server's refusal first; returning nil leaves
	// it to the generic rules.
	Classify func(stage Stage, e *smtp.SMTPError) *plugin.SendFailure
}

// Error is a failed step with its cause: an *smtp.SMTPError (the server's
// answer) or a network error.
type Error struct {
	Stage Stage
	Err   error
}

func (e *Error) Error() string { return fmt.Sprintf("smtp %s: %v", e.Stage, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// session is one connected, authenticated client.
type session struct {
	c    *smtp.Client
	stop func() bool
}

func open(ctx context.Context, o Options) (*session, error) {
	dial := o.Dial
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, &Error{Stage: StageConnect, Err: err}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(st Stage, err error) (*session, error) {
		stop()
		conn.Close()
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, &Error{Stage: st, Err: err}
	}
	var c *smtp.Client
	switch o.TLS {
	case Implicit:
		tc := tls.Client(conn, o.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(StageTLS, err)
		}
		c = smtp.NewClient(tc)
	case None:
		c = smtp.NewClient(conn)
	default:
		cs, err := smtp.NewClientStartTLS(conn, o.TLSConfig)
		if err != nil {
			return fail(StageTLS, startTLSError(err))
		}
		c = cs
	}
	if o.Auth != nil {
		a, err := o.Auth(ctx)
		if err != nil {
			stop()
			conn.Close()
			return nil, err // the token source's own error
		}
		if err := c.Auth(a); err != nil {
			return fail(StageAuth, err)
		}
	}
	return &session{c: c, stop: stop}, nil
}

// startTLSError tells apart what NewClientStartTLS can fail with: the
// server's answer, the network, the TLS handshake, or (an untyped error) no
// STARTTLS in the server's EHLO reply.
func startTLSError(err error) error {
	var se *smtp.SMTPError
	var ce *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	switch {
	case errors.As(err, &se), isNet(err), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &ce), errors.As(err, &rh), errors.As(err, &ae), errors.As(err, &ue), errors.As(err, &he):
		return err
	}
	return fmt.Errorf("%w: %v", ErrNoStartTLS, err)
}

// ErrNoStartTLS: the server does not offer STARTTLS and TLS is required.
var ErrNoStartTLS = errors.New("the server does not offer STARTTLS (set tls: none only for a trusted local relay)")

func (s *session) close() {
	_ = s.c.Quit()
	s.stop()
	s.c.Close()
}

// Probe connects, secures and authenticates, then quits: no mail is sent.
func Probe(ctx context.Context, o Options) error {
	s, err := open(ctx, o)
	if err != nil {
		return err
	}
	s.close()
	return nil
}

// Send submits raw from from to every recipient and returns the server's
// message id (or the message's Message-ID header).
func Send(ctx context.Context, o Options, from string, to []string, raw []byte) (string, error) {
	if len(to) == 0 {
		return "", &Error{Stage: StageRcpt, Err: errors.New("no recipients")}
	}
	s, err := open(ctx, o)
	if err != nil {
		return "", err
	}
	defer s.close()
	if err := s.c.Mail(from, nil); err != nil {
		return "", &Error{Stage: StageMail, Err: err}
	}
	for _, r := range to {
		if err := s.c.Rcpt(r, nil); err != nil {
			return "", &Error{Stage: StageRcpt, Err: err}
		}
	}
	w, err := s.c.Data()
	if err != nil {
		return "", &Error{Stage: StageData, Err: err}
	}
	if _, err := w.Write(raw); err != nil {
		return "", &Error{Stage: StageData, Err: err}
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", &Error{Stage: StageData, Err: err}
	}
	return messageID(resp.StatusText, raw), nil
}

var idInReply = regexp.MustCompile(`<[^<>\s]+>`)

// messageID takes the id from the DATA reply ("2.0.0 <id> Queued", Exchange:
// "2.6.0 <id> [InternalId=…] Queued mail for delivery"), else the message's
// own Message-ID.
func messageID(reply string, raw []byte) string {
	if m := idInReply.FindString(reply); m != "" {
		return m
	}
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		if id := msg.Header.Get("Message-Id"); id != "" {
			return id
		}
	}
	return ""
}

// Classify turns a Send or Probe error into a *plugin.SendFailure (returned
// as is when err already is one). hint names the fix for a refused
// credential, unreachable the fix for a connection failure.
func Classify(err error, o Options, hints Hints) *plugin.SendFailure {
	var sf *plugin.SendFailure
	if errors.As(err, &sf) {
		return sf
	}
	var se *smtp.SMTPError
	var stage Stage
	var e *Error
	if errors.As(err, &e) {
		stage = e.Stage
	}
	if errors.As(err, &se) {
		if o.Classify != nil {
			if f := o.Classify(stage, se); f != nil {
				return f
			}
		}
		reason := fmt.Sprintf("%s refused at %s: %d %s", o.Addr, stage, se.Code, enhanced(se)+se.Message)
		switch {
		case se.Code >= 400 && se.Code < 500:
			return &plugin.SendFailure{Category: plugin.SendThrottled, Temporary: true, Reason: reason, Hint: "The server asked to try again later."}
		case stage == StageAuth && (se.Code == 535 || se.Code == 534):
			return &plugin.SendFailure{Category: plugin.SendInvalidCredential, Reason: reason, Hint: hints.Credential}
		case stage == StageAuth && se.Code == 523 || stage == StageAuth && se.Code == 538:
			return &plugin.SendFailure{Category: plugin.SendError, Reason: reason, Hint: "The server wants an encrypted connection before AUTH: use tls: starttls or implicit."}
		case stage == StageRcpt:
			return &plugin.SendFailure{Category: plugin.SendRecipientRefused, Reason: reason, Hint: "Check the recipient address."}
		case stage == StageMail && se.EnhancedCode[0] == 5 && se.EnhancedCode[1] == 7:
			return &plugin.SendFailure{Category: plugin.SendPermissionDenied, Reason: reason, Hint: hints.Permission}
		}
		return &plugin.SendFailure{Category: plugin.SendError, Reason: reason, Hint: "The submission server refused the message; see the reason."}
	}
	reason := err.Error()
	var ce *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	if errors.As(err, &ce) || errors.As(err, &ue) || errors.As(err, &he) {
		// The handshake runs at the first command after STARTTLS.
		return &plugin.SendFailure{Category: plugin.SendUnreachable, Reason: reason, Hint: "The server's TLS certificate is not trusted: check the host name and tls_ca_file."}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return &plugin.SendFailure{Category: plugin.SendUnreachable, Temporary: true, Reason: reason, Hint: "The send was cancelled."}
	case stage == StageTLS && errors.Is(err, ErrNoStartTLS):
		return &plugin.SendFailure{Category: plugin.SendError, Reason: fmt.Sprintf("%s: %v", o.Addr, err), Hint: "Use a server that offers STARTTLS, or implicit TLS (port 465)."}
	}
	if stage == StageConnect || errors.Is(err, context.DeadlineExceeded) || isNet(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &plugin.SendFailure{Category: plugin.SendUnreachable, Temporary: true, Reason: reason, Hint: hints.Unreachable}
	}
	return &plugin.SendFailure{Category: plugin.SendError, Reason: reason, Hint: "Unexpected failure; see the reason."}
}

// Hints are a connector's fixes for the generic categories.
type Hints struct {
	Credential  string
	Permission  string
	Unreachable string
}

func enhanced(se *smtp.SMTPError) string {
	c := se.EnhancedCode
	if c == smtp.NoEnhancedCode || c == smtp.EnhancedCodeNotSet {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d ", c[0], c[1], c[2])
}

// Enhanced reports whether se carries the enhanced code a.b.c.
func Enhanced(se *smtp.SMTPError, a, b, c int) bool {
	return se.EnhancedCode == smtp.EnhancedCode{a, b, c}
}

func isNet(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}
