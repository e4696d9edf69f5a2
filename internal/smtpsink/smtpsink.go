// Package smtpsink is a small SMTP submission server built on
// emersion/go-smtp, for tests and the demo: it takes mail over STARTTLS
// (or plain), checks AUTH PLAIN or XOAUTH2 with a callback, can refuse MAIL
// or RCPT with a scripted answer, and hands every accepted message to a
// delivery callback (or keeps it in memory).
package smtpsink

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one accepted message.
type Message struct {
	From string
	To   []string
	Raw  []byte
	User string // the authenticated user, "" without AUTH
	ID   string // the id the sink answered with
}

// Options configure a Sink. Zero values mean: no TLS, no AUTH required,
// every message kept in memory.
type Options struct {
	// TLS, when set, is offered with STARTTLS.
	TLS *tls.Config
	// AllowInsecureAuth allows AUTH before STARTTLS.
	AllowInsecureAuth bool
	// Plain checks AUTH PLAIN; nil offers no PLAIN.
	Plain func(user, password string) error
	// XOAUTH2 checks AUTH XOAUTH2 (user and bearer token); nil offers no
	// XOAUTH2. A refusal answers the error challenge, then 535 5.7.8 (or
	// the *smtp.SMTPError it returns).
	XOAUTH2 func(user, token string) error
	// RequireAuth refuses MAIL before AUTH when an AUTH method is set.
	RequireAuth bool
	// Mail and Rcpt may refuse an address with an *smtp.SMTPError.
	Mail func(user, from string) error
	Rcpt func(user, to string) error
	// Deliver takes an accepted message; an error refuses the DATA. Nil
	// keeps messages for Messages.
	Deliver func(m Message) error
	// Domain is the name in the greeting.
	Domain string
}

// Sink is a running server.
type Sink struct {
	Addr string
	opts Options
	srv  *smtp.Server

	mu   sync.Mutex
	msgs []Message
}

// Start listens on 127.0.0.1 (a free port) and serves until Close.
func Start(opts Options) (*Sink, error) {
	return Listen("127.0.0.1:0", opts)
}

// Listen serves on addr until Close.
func Listen(addr string, opts Options) (*Sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtpsink: %w", err)
	}
	s := &Sink{Addr: ln.Addr().String(), opts: opts}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s}, nil
	}))
	srv.Domain = opts.Domain
	if srv.Domain == "" {
		srv.Domain = "localhost"
	}
	srv.TLSConfig = opts.TLS
	srv.AllowInsecureAuth = opts.AllowInsecureAuth || opts.TLS == nil
	srv.MaxMessageBytes = 64 << 20
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = discard{}
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
	return s, nil
}

type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}

// Close stops the server and drops its connections.
func (s *Sink) Close() error { return s.srv.Close() }

// Messages returns the messages kept so far (without Options.Deliver).
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

type session struct {
	s    *Sink
	user string
	from string
	to   []string
}

func (ss *session) AuthMechanisms() []string {
	var m []string
	if ss.s.opts.Plain != nil {
		m = append(m, sasl.Plain)
	}
	if ss.s.opts.XOAUTH2 != nil {
		m = append(m, "XOAUTH2")
	}
	return m
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	switch {
	case mech == sasl.Plain && ss.s.opts.Plain != nil:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if err := ss.s.opts.Plain(user, pass); err != nil {
				return authError(err)
			}
			ss.user = user
			return nil
		}), nil
	case mech == "XOAUTH2" && ss.s.opts.XOAUTH2 != nil:
		return &xoauth2Server{check: ss.s.opts.XOAUTH2, ok: func(u string) { ss.user = u }}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func authError(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	return smtp.ErrAuthFailed
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.RequireAuth && len(ss.AuthMechanisms()) > 0 && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	if ss.s.opts.Mail != nil {
		if err := ss.s.opts.Mail(ss.user, from); err != nil {
			return err
		}
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.opts.Rcpt != nil {
		if err := ss.s.opts.Rcpt(ss.user, to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	m := Message{From: ss.from, To: ss.to, Raw: raw, User: ss.user, ID: "<" + hex.EncodeToString(b[:]) + "@smtpsink>"}
	if ss.s.opts.Deliver != nil {
		if err := ss.s.opts.Deliver(m); err != nil {
			return err
		}
	} else {
		ss.s.mu.Lock()
		ss.s.msgs = append(ss.s.msgs, m)
		ss.s.mu.Unlock()
	}
	// A 250 with the id, as Exchange and Dovecot answer.
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: m.ID + " Message accepted for delivery"}
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// xoauth2Server checks "user=U\x01auth=Bearer T\x01\x01". On a refusal it
// sends the JSON error challenge first and fails after the client's
// (empty) reply, as Exchange Online and Dovecot do.
type xoauth2Server struct {
	check   func(user, token string) error
	ok      func(user string)
	refused error
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.refused != nil {
		return nil, true, x.refused
	}
	if resp == nil { // "AUTH XOAUTH2" alone: ask for the response
		return []byte{}, false, nil
	}
	user, tok, err := ParseXOAUTH2(resp)
	if err == nil {
		err = x.check(user, tok)
	}
	if err != nil {
		x.refused = authError(err)
		ch, _ := json.Marshal(map[string]string{"status": "401", "schemes": "bearer", "scope": "mail"})
		return ch, false, nil
	}
	x.ok(user)
	return nil, true, nil
}

// ParseXOAUTH2 splits an XOAUTH2 initial response.
func ParseXOAUTH2(resp []byte) (user, token string, err error) {
	for _, part := range bytes.Split(resp, []byte{1}) {
		switch {
		case bytes.HasPrefix(part, []byte("user=")):
			user = string(part[5:])
		case bytes.HasPrefix(part, []byte("auth=")):
			v := string(part[5:])
			if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
				token = v[7:]
			}
		}
	}
	if user == "" || token == "" {
		return "", "", errors.New("smtpsink: malformed XOAUTH2 response")
	}
	return user, token, nil
}
