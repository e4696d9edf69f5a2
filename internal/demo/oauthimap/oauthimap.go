// Package oauthimap is an in-memory IMAP server over implicit TLS that lets a
// client in only with SASL XOAUTH2 and a bearer token it verifies itself: an
// RS256 signature by a known key (by kid), the audience, the issuer, the
// expiry, and an "email" claim equal to the login name. It is the Office 365
// mailbox of `mediagw-demo`, built on go-imap v2's imapserver and its
// in-memory backend (IDLE, MOVE, UIDPLUS).
package oauthimap

import (
	"bytes"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/golang-jwt/jwt/v5"
)

// Mechanism is the only SASL mechanism offered.
const Mechanism = "XOAUTH2"

// Verifier checks bearer tokens.
type Verifier struct {
	// Key returns the public key a token's kid names.
	Key func(kid string) (*rsa.PublicKey, error)
	// Audience and Issuer are the required aud and iss claims.
	Audience string
	Issuer   string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Verify checks token for the mailbox user and returns the token's claims.
func (v *Verifier) Verify(user, token string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithAudience(v.Audience),
		jwt.WithIssuer(v.Issuer),
		jwt.WithExpirationRequired(),
	}
	if v.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(v.Now))
	}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		return v.Key(kid)
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("oauthimap: token: %w", err)
	}
	email, _ := claims["email"].(string)
	if !strings.EqualFold(email, user) {
		return nil, fmt.Errorf("oauthimap: token is for mailbox %q, not %q", email, user)
	}
	return claims, nil
}

// Event is one thing a client did, for a demo's narration.
type Event struct {
	Kind   string // login, login-failed, select, idle, fetch, store, move, create, append
	User   string
	Folder string
	Detail string
	// Expires is the token's expiry (login).
	Expires time.Time
}

// Options configure Start.
type Options struct {
	Verifier *Verifier
	// TLS is the server's configuration (implicit TLS, as port 993).
	TLS *tls.Config
	// Users are the mailboxes; each gets INBOX and Folders.
	Users   []string
	Folders []string
	// OnEvent, when set, sees every Event (called without locks held).
	OnEvent func(Event)
	// Addr to listen on (default 127.0.0.1:0).
	Addr string
}

// Server is a running stand-in.
type Server struct {
	Addr string // host:port
	Host string
	Port int

	opts  Options
	srv   *imapserver.Server
	ln    net.Listener
	mu    sync.Mutex
	users map[string]*imapmemserver.User // lower-cased name
	done  chan struct{}
	// change is closed (and replaced) when Append puts a message in.
	change chan struct{}
}

// Start listens and serves until Close.
func Start(opts Options) (*Server, error) {
	if opts.Verifier == nil || opts.TLS == nil {
		return nil, errors.New("oauthimap: a Verifier and a TLS config are required")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	s := &Server{opts: opts, users: map[string]*imapmemserver.User{}, done: make(chan struct{})}
	for _, u := range opts.Users {
		// The password is never used: Login (plain) is refused.
		mu := imapmemserver.NewUser(u, "")
		for _, f := range append([]string{"INBOX"}, opts.Folders...) {
			if err := mu.Create(f, nil); err != nil {
				return nil, fmt.Errorf("oauthimap: create %s: %w", f, err)
			}
		}
		s.users[strings.ToLower(u)] = mu
	}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &session{s: s}, nil, nil
		},
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {}, imap.CapMove: {}, imap.CapUIDPlus: {}, imap.CapNamespace: {},
		},
		TLSConfig: nil, // implicit TLS: the listener does it
		Logger:    discard{},
	})
	ln, err := tls.Listen("tcp", opts.Addr, opts.TLS)
	if err != nil {
		return nil, fmt.Errorf("oauthimap: listen: %w", err)
	}
	s.ln = ln
	s.Addr = ln.Addr().String()
	tcp := ln.Addr().(*net.TCPAddr)
	s.Host, s.Port = tcp.IP.String(), tcp.Port
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Close stops the server and drops every connection.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}

func (s *Server) user(name string) *imapmemserver.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[strings.ToLower(name)]
}

func (s *Server) emit(e Event) {
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(e)
	}
}

// Append puts a message into a user's folder, as mail delivery does, and
// returns its UID. Idling clients see it at once.
func (s *Server) Append(user, folder string, raw []byte) (imap.UID, error) {
	u := s.user(user)
	if u == nil {
		return 0, fmt.Errorf("oauthimap: no mailbox %q", user)
	}
	d, err := u.Append(folder, literal{bytes.NewReader(raw), int64(len(raw))}, &imap.AppendOptions{Time: time.Now()})
	if err != nil {
		return 0, fmt.Errorf("oauthimap: append: %w", err)
	}
	s.notify()
	s.emit(Event{Kind: "append", User: user, Folder: folder, Detail: fmt.Sprintf("uid %d, %d bytes", d.UID, len(raw))})
	return d.UID, nil
}

// Status returns the message and unseen counts of a folder.
func (s *Server) Status(user, folder string) (messages, unseen uint32, err error) {
	u := s.user(user)
	if u == nil {
		return 0, 0, fmt.Errorf("oauthimap: no mailbox %q", user)
	}
	st, err := u.Status(folder, &imap.StatusOptions{NumMessages: true, NumUnseen: true})
	if err != nil {
		return 0, 0, fmt.Errorf("oauthimap: status %s: %w", folder, err)
	}
	if st.NumMessages != nil {
		messages = *st.NumMessages
	}
	if st.NumUnseen != nil {
		unseen = *st.NumUnseen
	}
	return messages, unseen, nil
}

type literal struct {
	*bytes.Reader
	n int64
}

func (l literal) Size() int64 { return l.n }

type discard struct{}

func (discard) Printf(string, ...any) {}

// session is one connection: unauthenticated until XOAUTH2 succeeds, then
// the in-memory backend's session for that user.
type session struct {
	*imapmemserver.UserSession // nil before login
	s                          *Server
	user                       string
}

var (
	_ imapserver.SessionSASL = (*session)(nil)
	_ imapserver.SessionMove = (*session)(nil)
)

// errNoPlain is the answer to LOGIN and AUTHENTICATE PLAIN.
var errNoPlain = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeAuthenticationFailed,
	Text: "Basic authentication is disabled; use XOAUTH2 with an OAuth 2.0 token",
}

func (c *session) Close() error {
	if c.UserSession != nil {
		return c.UserSession.Close()
	}
	return nil
}

func (c *session) Login(username, password string) error {
	c.s.emit(Event{Kind: "login-failed", User: username, Detail: "LOGIN with a password (basic authentication is disabled)"})
	return errNoPlain
}

func (c *session) AuthenticateMechanisms() []string { return []string{Mechanism} }

func (c *session) Authenticate(mech string) (sasl.Server, error) {
	if mech != Mechanism {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported; use XOAUTH2"}
	}
	return &xoauth2Server{c: c}, nil
}

// xoauth2Server is the server side of SASL XOAUTH2: on a refused token it
// sends the JSON error challenge, then NO [AUTHENTICATIONFAILED] after the
// client's (empty or 0x01) reply, as Exchange Online and Dovecot do.
type xoauth2Server struct {
	c      *session
	failed bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, false, imapserver.ErrAuthFailed
	}
	if resp == nil {
		return []byte{}, false, nil // ask for the initial response
	}
	user, token, err := ParseResponse(resp)
	if err == nil {
		var claims jwt.MapClaims
		claims, err = x.c.s.opts.Verifier.Verify(user, token)
		if err == nil && x.c.s.user(user) == nil {
			err = fmt.Errorf("oauthimap: no mailbox %q", user)
		}
		if err == nil {
			x.c.UserSession = imapmemserver.NewUserSession(x.c.s.user(user))
			x.c.user = user
			e := Event{Kind: "login", User: user, Detail: "XOAUTH2"}
			if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
				e.Expires = exp.Time
			}
			x.c.s.emit(e)
			return nil, true, nil
		}
	}
	x.c.s.emit(Event{Kind: "login-failed", User: user, Detail: err.Error()})
	x.failed = true
	ch, _ := json.Marshal(map[string]string{"status": "401", "schemes": "bearer", "scope": "https://outlook.office365.com/"})
	return ch, false, nil
}

// ParseResponse splits an XOAUTH2 client response
// ("user=U\x01auth=Bearer T\x01\x01") into user and token.
func ParseResponse(resp []byte) (user, token string, err error) {
	for _, kv := range strings.Split(string(resp), "\x01") {
		switch {
		case strings.HasPrefix(kv, "user="):
			user = strings.TrimPrefix(kv, "user=")
		case strings.HasPrefix(kv, "auth="):
			a := strings.TrimPrefix(kv, "auth=")
			if len(a) < 7 || !strings.EqualFold(a[:7], "Bearer ") {
				return user, "", errors.New("oauthimap: auth is not a Bearer token")
			}
			token = a[7:]
		}
	}
	if user == "" || token == "" {
		return user, "", errors.New("oauthimap: malformed XOAUTH2 response")
	}
	return user, token, nil
}

func (c *session) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	d, err := c.UserSession.Select(mailbox, options)
	if err == nil {
		c.s.emit(Event{Kind: "select", User: c.user, Folder: mailbox, Detail: fmt.Sprintf("%d messages", d.NumMessages)})
	}
	return d, err
}

func (c *session) Create(mailbox string, options *imap.CreateOptions) error {
	err := c.UserSession.Create(mailbox, options)
	if err == nil {
		c.s.emit(Event{Kind: "create", User: c.user, Folder: mailbox})
	}
	return err
}

// Idle sends what is already queued, then idles; a message put in by
// Server.Append wakes it to send again. go-imap's SessionTracker.Idle
// (v2.0.0-beta.8) only waits for the next update, so a message appended
// between the client's last command and the moment its Idle registers
// stayed unannounced until another one arrived.
func (c *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	for first := true; ; first = false {
		changed := c.s.changed() // before the poll: nothing falls in between
		if err := c.UserSession.Poll(w, true); err != nil {
			return err
		}
		if first {
			c.s.emit(Event{Kind: "idle", User: c.user})
		}
		inner := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- c.UserSession.Idle(w, inner) }()
		select {
		case <-stop:
			close(inner)
			return <-done
		case err := <-done:
			return err
		case <-changed:
			close(inner)
			if err := <-done; err != nil {
				return err
			}
		}
	}
}

// changed returns a channel closed at the next Append.
func (s *Server) changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.change == nil {
		s.change = make(chan struct{})
	}
	return s.change
}

func (s *Server) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.change != nil {
		close(s.change)
		s.change = nil
	}
}

func (c *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	if len(options.BodySection) > 0 {
		c.s.emit(Event{Kind: "fetch", User: c.user, Detail: numSet.String()})
	}
	return c.UserSession.Fetch(w, numSet, options)
}

func (c *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	err := c.UserSession.Store(w, numSet, flags, options)
	if err == nil {
		var fl []string
		for _, f := range flags.Flags {
			fl = append(fl, string(f))
		}
		c.s.emit(Event{Kind: "store", User: c.user, Detail: numSet.String() + " " + strings.Join(fl, " ")})
	}
	return err
}

func (c *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	err := c.UserSession.Move(w, numSet, dest)
	if err == nil {
		c.s.emit(Event{Kind: "move", User: c.user, Folder: dest, Detail: numSet.String()})
	}
	return err
}

// KeySource is what Verifier needs of a token issuer: its current signing
// key (o365test.Identity has these methods).
type KeySource interface {
	PublicKey() *rsa.PublicKey
	CurrentKeyID() string
	Issuer() string
}

// VerifierFor returns a Verifier that accepts the issuer's IMAP tokens
// (aud https://outlook.office.com) signed with its current key.
func VerifierFor(src KeySource) *Verifier {
	return &Verifier{
		Key: func(kid string) (*rsa.PublicKey, error) {
			if kid != src.CurrentKeyID() {
				return nil, fmt.Errorf("unknown signing key %q", kid)
			}
			return src.PublicKey(), nil
		},
		Audience: "https://outlook.office.com",
		Issuer:   src.Issuer(),
	}
}
