package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mediagw/mediagw/host/console/passwd"
)

// Role is what a signed-in user may do.
type Role string

// The two roles. Anonymous requests on a loopback listener act as operators.
const (
	Viewer   Role = "viewer"
	Operator Role = "operator"
)

// User is one account from status.users.
type User struct {
	Name         string
	PasswordHash string
	Role         Role
}

// How a request proved who it is.
const (
	viaNone     = ""
	viaCookie   = "cookie"
	viaBasic    = "basic"
	viaBearer   = "bearer"
	viaLoopback = "loopback"
)

const (
	sessionCookie = "mediagw_session"
	sessionTTL    = 12 * time.Hour
)

// session is the content of the signed cookie. Every browser gets one, signed
// in or not: its id binds the CSRF token.
type session struct {
	ID      string
	User    string
	Role    Role
	Expires time.Time
}

// identity is attached to each request's context.
type identity struct {
	User    string // "" when anonymous
	Role    Role   // "" when not allowed to see anything
	Via     string
	Session session // the browser's session (may be anonymous)
	CSRF    string  // the token its forms carry
}

type ctxKey struct{}

func who(r *http.Request) *identity {
	if id, ok := r.Context().Value(ctxKey{}).(*identity); ok {
		return id
	}
	return &identity{}
}

// Operator reports whether the request may retry, purge and test.
func (id *identity) Operator() bool { return id.Role == Operator }

// Label is the name shown in the page header.
func (id *identity) Label() string {
	switch {
	case id.User != "":
		return id.User + " (" + string(id.Role) + ")"
	case id.Via == viaLoopback:
		return "local (operator)"
	case id.Via == viaBearer:
		return "token (operator)"
	}
	return ""
}

// SignedIn reports whether a sign-out button makes sense.
func (id *identity) SignedIn() bool { return id.Via == viaCookie }

func newID() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// encodeSession signs a session: base64(payload) "." base64(mac).
func (s *Server) encodeSession(se session) string {
	payload := strings.Join([]string{"v1", se.ID, se.User, string(se.Role), strconv.FormatInt(se.Expires.Unix(), 10)}, "\n")
	p := base64.RawURLEncoding.EncodeToString([]byte(payload))
	return p + "." + base64.RawURLEncoding.EncodeToString(s.mac("session", p))
}

func (s *Server) decodeSession(v string) (session, bool) {
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return session{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac("session", p)) {
		return session{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return session{}, false
	}
	f := strings.Split(string(raw), "\n")
	if len(f) != 5 || f[0] != "v1" || f[1] == "" {
		return session{}, false
	}
	exp, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil {
		return session{}, false
	}
	se := session{ID: f[1], User: f[2], Role: Role(f[3]), Expires: time.Unix(exp, 0)}
	if !s.now().Before(se.Expires) {
		return session{}, false
	}
	// A user removed from the config (and reloaded) loses their session;
	// a changed role takes effect at once.
	if se.User != "" {
		u, ok := s.users[se.User]
		if !ok {
			return session{}, false
		}
		se.Role = u.Role
	}
	return se, true
}

func (s *Server) setSession(w http.ResponseWriter, se session) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: s.encodeSession(se), Path: "/",
		Expires: se.Expires, HttpOnly: true, Secure: s.opts.Secure, SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) csrfToken(se session) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("csrf", se.ID))
}

// checkCSRF compares the token of a form (or the X-CSRF-Token header) with the
// one bound to the request's session.
func (s *Server) checkCSRF(r *http.Request, id *identity) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return id.Session.ID != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(id.CSRF)) == 1
}

// authenticate finds out who is asking. A wrong credential is never
// overruled by the loopback rule.
func (s *Server) authenticate(r *http.Request) (*identity, bool) {
	id := &identity{}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if se, ok := s.decodeSession(c.Value); ok {
			id.Session = se
		}
	}
	if authz := r.Header.Get("Authorization"); authz != "" {
		scheme, cred, _ := strings.Cut(authz, " ")
		switch strings.ToLower(scheme) {
		case "bearer":
			if s.token == "" || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(cred)), []byte(s.token)) != 1 {
				return id, false
			}
			id.Role, id.Via = Operator, viaBearer
		case "basic":
			name, pw, ok := r.BasicAuth()
			if !ok || s.throttle.blocked(clientKey(r), s.now()) {
				return id, false
			}
			u, ok := s.verify(name, pw)
			if !ok {
				s.throttle.failed(clientKey(r), s.now())
				return id, false
			}
			id.User, id.Role, id.Via = u.Name, u.Role, viaBasic
		default:
			return id, false
		}
	} else if id.Session.User != "" {
		id.User, id.Role, id.Via = id.Session.User, id.Session.Role, viaCookie
	} else if s.opts.Loopback && remoteLoopback(r) {
		id.Role, id.Via = Operator, viaLoopback
	}
	if id.Session.ID != "" {
		id.CSRF = s.csrfToken(id.Session)
	}
	return id, true
}

// dummyHash makes an unknown name cost as much as a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, _ := passwd.Hash("mediagw: no such user")
	return h
})

func (s *Server) verify(name, pw string) (User, bool) {
	u, ok := s.users[name]
	if !ok {
		_, _ = passwd.Verify(dummyHash(), pw)
		return User{}, false
	}
	good, err := passwd.Verify(u.PasswordHash, pw)
	if err != nil || !good {
		return User{}, false
	}
	return u, true
}

func remoteLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// open paths need no sign-in: the login form and the style sheet and script.
func openPath(p string) bool {
	return p == "/login" || strings.HasPrefix(p, "/static/")
}

// browserPath: pages a browser navigates to, answered with a redirect to the
// login form instead of a 401.
func (s *Server) browserPath(r *http.Request) bool {
	return r.Method == http.MethodGet && !s.apiPath(r.URL.Path) && r.URL.Path != "/events" &&
		!strings.HasPrefix(r.URL.Path, "/fragments/")
}

// middleware wraps the whole listener: security headers, cross-origin
// refusal, sign-in, a session cookie for every browser, roles on the API.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if s.opts.TLS {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		// A POST from another site (Sec-Fetch-Site, or an Origin that is
		// not this host) is refused before anything else.
		if err := s.cop.Check(r); err != nil {
			s.deny(w, r, http.StatusForbidden, "cross-origin request refused")
			return
		}
		id, ok := s.authenticate(r)
		if !ok {
			h.Set("WWW-Authenticate", `Bearer realm="mediagw", Basic realm="mediagw"`)
			s.deny(w, r, http.StatusUnauthorized, "wrong credentials")
			return
		}
		if id.Session.ID == "" {
			// Every browser gets an anonymous session for the CSRF token
			// of its forms (the login form first of all).
			id.Session = session{ID: newID(), Expires: s.now().Add(sessionTTL)}
			id.CSRF = s.csrfToken(id.Session)
			s.setSession(w, id.Session)
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, id))
		if openPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if id.Role == "" {
			if s.browserPath(r) {
				http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			h.Set("WWW-Authenticate", `Bearer realm="mediagw", Basic realm="mediagw"`)
			s.deny(w, r, http.StatusUnauthorized, "sign in first")
			return
		}
		if s.apiPath(r.URL.Path) && !safeMethod(r.Method) {
			if !id.Operator() {
				s.deny(w, r, http.StatusForbidden, "your role ("+string(id.Role)+") may only look")
				return
			}
			// A browser session must prove the request came from our page.
			if id.Via == viaCookie && !s.checkCSRF(r, id) {
				s.deny(w, r, http.StatusForbidden, "missing or wrong CSRF token")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}
