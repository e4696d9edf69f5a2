// Package console is the operator's web console on the status listener:
// server-rendered pages (overview, activity, queues, failed jobs, a job, the
// data-map preview), a live activity feed over server-sent events, and the
// sign-in, roles, CSRF and headers that guard the whole listener, the JSON
// API included.
package console

import (
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a console.
type Options struct {
	Users []User
	// Token is the bearer token from status.token_file ("" for none).
	Token string
	// Loopback: the listener is loopback and no proxy is in front, so a
	// request from this machine without credentials acts as an operator
	// (the CLI relies on it).
	Loopback bool
	// TLS: the listener serves HTTPS itself. Secure: the browser sees
	// HTTPS (TLS, or a proxy in front); cookies are then Secure.
	TLS, Secure bool
	// API serves every path the console does not (/status, /api/, /metrics).
	// It is wrapped by the same sign-in and roles: viewers may only GET.
	API http.Handler
	// APIPaths are the path prefixes handed to API; default /status,
	// /api/, /metrics.
	APIPaths []string
	// MaxStreams bounds the open activity streams (default 256).
	MaxStreams int
	Log        *slog.Logger
	Now        func() time.Time
}

// Server is the console. Create it with New; it is an http.Handler.
type Server struct {
	b        Backend
	opts     Options
	users    map[string]User
	token    string
	key      []byte // signs sessions and CSRF tokens; new at every start
	tpl      map[string]*template.Template
	cop      *http.CrossOriginProtection
	handler  http.Handler
	streams  atomic.Int64
	throttle throttle
	log      *slog.Logger
}

// New builds a console on a backend.
func New(b Backend, opts Options) (*Server, error) {
	s := &Server{b: b, opts: opts, users: map[string]User{}, token: strings.TrimSpace(opts.Token), log: opts.Log}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	if s.opts.MaxStreams == 0 {
		s.opts.MaxStreams = 256
	}
	if len(s.opts.APIPaths) == 0 {
		s.opts.APIPaths = []string{"/status", "/api/", "/metrics"}
	}
	for _, u := range opts.Users {
		if u.Role != Viewer && u.Role != Operator {
			return nil, fmt.Errorf("console: user %s: role %q: want viewer or operator", u.Name, u.Role)
		}
		s.users[u.Name] = u
	}
	s.key = make([]byte, 32)
	if _, err := rand.Read(s.key); err != nil {
		return nil, fmt.Errorf("console: session key: %w", err)
	}
	var err error
	if s.tpl, err = parseTemplates(s); err != nil {
		return nil, err
	}
	s.cop = http.NewCrossOriginProtection()
	s.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.deny(w, r, http.StatusForbidden, "cross-origin request refused")
	}))
	s.handler = s.middleware(s.routes())
	return s, nil
}

func (s *Server) now() time.Time { return s.opts.Now() }

// ServeHTTP serves the console and, behind the same guard, the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) apiPath(p string) bool {
	for _, pre := range s.opts.APIPaths {
		if p == strings.TrimSuffix(pre, "/") || strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(time.Hour, http.FileServerFS(static))))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /{$}", s.overviewPage)
	mux.HandleFunc("GET /fragments/overview", s.overviewFragment)
	mux.HandleFunc("GET /activity", s.activityPage)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /queue", s.queuePage)
	mux.HandleFunc("GET /fragments/queue", s.queueFragment)
	mux.HandleFunc("GET /failed", s.failedPage)
	mux.HandleFunc("GET /jobs/{id}", s.jobPage)
	mux.HandleFunc("GET /jobs/{id}/pages/{n}", s.jobThumb)
	mux.HandleFunc("POST /jobs/{id}/retry", s.operatorOnly(s.retry))
	mux.HandleFunc("POST /jobs/{id}/purge", s.operatorOnly(s.purge))
	mux.HandleFunc("POST /connectors/{name}/test", s.operatorOnly(s.test))
	mux.HandleFunc("GET /maps", s.mapsPage)
	mux.HandleFunc("POST /maps", s.withCSRF(s.tryMap))
	if s.opts.API != nil {
		for _, p := range s.opts.APIPaths {
			mux.Handle(p, s.opts.API)
		}
	}
	return mux
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(d.Seconds())))
		h.ServeHTTP(w, r)
	})
}

// withCSRF guards a console form: its token must match the session's.
func (s *Server) withCSRF(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 10<<20)
		if !s.checkCSRF(r, who(r)) {
			s.deny(w, r, http.StatusForbidden, "missing or wrong CSRF token: reload the page and try again")
			return
		}
		h(w, r)
	}
}

// operatorOnly guards the buttons that change something.
func (s *Server) operatorOnly(h http.HandlerFunc) http.HandlerFunc {
	return s.withCSRF(func(w http.ResponseWriter, r *http.Request) {
		if id := who(r); !id.Operator() {
			s.deny(w, r, http.StatusForbidden, "your role ("+string(id.Role)+") may only look; an operator may retry, purge and test")
			return
		}
		h(w, r)
	})
}

// deny answers with a short error page (or text for the API).
func (s *Server) deny(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if s.apiPath(r.URL.Path) || r.URL.Path == "/events" || s.tpl == nil {
		http.Error(w, msg, code)
		return
	}
	w.WriteHeader(code)
	s.render(w, r, "error", map[string]any{"Code": code, "Status": http.StatusText(code), "Message": msg})
}

// fail reports a backend error: 404 for ErrNotFound, 409 for ErrConflict,
// else 500 with the error logged.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		s.deny(w, r, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrConflict):
		s.deny(w, r, http.StatusConflict, err.Error())
	default:
		s.log.Error("console", "path", r.URL.Path, "error", err)
		s.deny(w, r, http.StatusInternalServerError, err.Error())
	}
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// localPath keeps a redirect target on this site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}
