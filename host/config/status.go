package config

import (
	"net"
	"os"
	"strings"

	"github.com/mediagw/mediagw/host/console/passwd"
)

// Roles of console users.
const (
	RoleViewer   = "viewer"   // sees every page
	RoleOperator = "operator" // may also retry, purge and test
)

// IsLoopback reports whether a listen address only accepts connections from
// this machine: localhost, 127.0.0.0/8 or ::1. An empty host (":8025") means
// every interface and is not loopback.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkStatus: a listener off loopback needs a way to sign in (users or a
// token file) and encryption (TLS, or a proxy that does it).
func (c *Config) checkStatus(e *Error) {
	s := &c.Status
	at := c.At("status")
	if s.Listen != "" {
		if _, _, err := net.SplitHostPort(s.Listen); err != nil {
			e.add("%s: status.listen %q: want host:port, e.g. 127.0.0.1:8025", at, s.Listen)
			return
		}
	}
	seen := map[string]bool{}
	for i, u := range s.Users {
		switch {
		case u.Name == "":
			e.add("%s: status.users[%d]: name is missing", at, i)
		case seen[u.Name]:
			e.add("%s: status.users: %q is named twice", at, u.Name)
		case strings.ContainsAny(u.Name, ":\x00\r\n"):
			e.add("%s: status.users[%d]: name must not contain ':' or control characters", at, i)
		}
		seen[u.Name] = true
		if u.PasswordHash == "" {
			e.add("%s: status.users[%d] (%s): password_hash is missing (make one with mediagw hash-password)", at, i, u.Name)
		} else if err := passwd.Check(u.PasswordHash); err != nil {
			// The hash itself is never repeated in a message.
			e.add("%s: status.users[%d] (%s): password_hash: %v (make one with mediagw hash-password)", at, i, u.Name, err)
		}
		if u.Role != RoleViewer && u.Role != RoleOperator {
			e.add("%s: status.users[%d] (%s): role %q: want viewer or operator", at, i, u.Name, u.Role)
		}
	}
	if s.TokenFile != "" {
		if b, err := os.ReadFile(c.Resolve(s.TokenFile)); err != nil {
			e.add("%s: status.token_file: %v", at, err)
		} else if len(strings.TrimSpace(string(b))) < 16 {
			e.add("%s: status.token_file: the token is shorter than 16 characters", at)
		}
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		e.add("%s: status: tls_cert and tls_key go together; give both or neither", at)
	}
	for _, f := range []struct{ key, path string }{{"tls_cert", s.TLSCert}, {"tls_key", s.TLSKey}} {
		if f.path != "" {
			if _, err := os.Stat(c.Resolve(f.path)); err != nil {
				e.add("%s: status.%s: %v", at, f.key, err)
			}
		}
	}
	if s.Listen == "" || IsLoopback(s.Listen) {
		return
	}
	if len(s.Users) == 0 && s.TokenFile == "" {
		e.add("%s: status.listen %s is not loopback: give status.users or status.token_file so that only you can sign in", at, s.Listen)
	}
	if s.TLSCert == "" && !s.BehindProxy {
		e.add("%s: status.listen %s is not loopback: give status.tls_cert and status.tls_key, or set status.behind_proxy: true when a proxy in front serves HTTPS", at, s.Listen)
	}
}
