package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/console"
)

// statusHandler is what the status listener serves: the console, wrapping
// the JSON API and the metrics in its sign-in and roles.
func statusHandler(cfg *config.Config, b console.Backend, api http.Handler, log *slog.Logger) (http.Handler, error) {
	st := cfg.Status
	opts := console.Options{
		API:      api,
		Loopback: config.IsLoopback(st.Listen) && !st.BehindProxy,
		TLS:      st.TLSCert != "",
		Secure:   st.TLSCert != "" || st.BehindProxy,
		Log:      log.With("component", "console"),
	}
	for _, u := range st.Users {
		opts.Users = append(opts.Users, console.User{Name: u.Name, PasswordHash: u.PasswordHash, Role: console.Role(u.Role)})
	}
	if st.TokenFile != "" {
		tok, err := os.ReadFile(cfg.Resolve(st.TokenFile))
		if err != nil {
			return nil, fmt.Errorf("status: token_file: %w", err)
		}
		opts.Token = string(tok)
	}
	return console.New(b, opts)
}

// statusToken is the token of status.token_file for the CLI's requests
// (status, jobs): a listener off loopback wants it. "" when none is set or
// it cannot be read (the request then says 401).
func statusToken(cfg *config.Config) string {
	if cfg.Status.TokenFile == "" {
		return ""
	}
	b, err := os.ReadFile(cfg.Resolve(cfg.Status.TokenFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
