package console

import (
	"net/http"
)

type loginData struct {
	Next  string
	Name  string
	Error string
	Users bool // false: no accounts are configured
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "login", loginData{Next: localPath(r.URL.Query().Get("next")), Users: len(s.users) > 0})
}

// login checks a name and password and starts a signed session under a new
// id, so a session planted before sign-in is worth nothing after it.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	id := who(r)
	d := loginData{Next: localPath(r.PostFormValue("next")), Name: r.PostFormValue("name"), Users: len(s.users) > 0}
	if !s.checkCSRF(r, id) {
		s.deny(w, r, http.StatusForbidden, "missing or wrong CSRF token: reload the page and try again")
		return
	}
	if s.throttle.blocked(clientKey(r), s.now()) {
		s.log.Warn("console: sign-in refused: too many failures", "remote", r.RemoteAddr)
		d.Error = "Too many failed sign-ins from your address. Wait a minute and try again."
		w.WriteHeader(http.StatusTooManyRequests)
		s.render(w, r, "login", d)
		return
	}
	u, ok := s.verify(d.Name, r.PostFormValue("password"))
	if !ok {
		s.throttle.failed(clientKey(r), s.now())
		s.log.Warn("console: sign-in refused", "user", d.Name, "remote", r.RemoteAddr)
		d.Error = "Wrong name or password."
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, r, "login", d)
		return
	}
	s.setSession(w, session{ID: newID(), User: u.Name, Role: u.Role, Expires: s.now().Add(sessionTTL)})
	s.log.Info("console: signed in", "user", u.Name, "role", u.Role, "remote", r.RemoteAddr)
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(r, who(r)) {
		s.deny(w, r, http.StatusForbidden, "missing or wrong CSRF token: reload the page and try again")
		return
	}
	s.setSession(w, session{ID: newID(), Expires: s.now().Add(sessionTTL)})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
