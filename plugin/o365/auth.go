package o365

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/token"
)

// tokenSource is what the mailboxes and senders take tokens from: the
// app-only source (client credentials) or a signed-in user's (delegated).
type tokenSource interface {
	Token(ctx context.Context) (token.Token, error)
	Invalidate()
	CertificateNotAfter() time.Time
}

var (
	_ tokenSource    = (*token.Source)(nil)
	_ tokenSource    = (*token.DelegatedScope)(nil)
	_ plugin.Loginer = (*Connector)(nil)
)

// tokenFactory returns how to make the token source of one resource's
// ".default" scope for s.Auth.
func tokenFactory(s *settings, hc *http.Client) (func(scope string) (tokenSource, error), error) {
	if s.Auth == "delegated" {
		d, err := newDelegated(s, hc)
		if err != nil {
			return nil, err
		}
		scopes := s.delegatedScopes()
		return func(scope string) (tokenSource, error) {
			return d.For(scopes[scope]...), nil
		}, nil
	}
	return func(scope string) (tokenSource, error) {
		return token.New(token.Config{
			AuthorityHost: s.AuthorityHost,
			TenantID:      s.TenantID,
			ClientID:      s.ClientID,
			ClientSecret:  s.ClientSecret,
			Certificates:  s.certs,
			Key:           s.key,
			Scope:         scope,
			HTTPClient:    hc,
		})
	}, nil
}

func newDelegated(s *settings, hc *http.Client) (*token.Delegated, error) {
	return token.NewDelegated(token.DelegatedConfig{
		AuthorityHost: s.AuthorityHost,
		TenantID:      s.TenantID,
		ClientID:      s.ClientID,
		CacheFile:     TokenCacheFile(s.StateDir),
		HTTPClient:    hc,
	})
}

// Login runs the device-code sign-in of auth: delegated: it prints where to
// sign in and the code, waits, and keeps the refresh token in state_dir.
func (c *Connector) Login(ctx context.Context, configJSON []byte, out io.Writer) error {
	s, diags := decodeConfig(configJSON)
	if s == nil {
		var msgs []string
		for _, d := range diags {
			msgs = append(msgs, d.String())
		}
		return fmt.Errorf("o365: the settings have errors: %s", strings.Join(msgs, "; "))
	}
	if s.Auth != "delegated" {
		return errors.New("o365: login is for auth: delegated; with auth: app the app signs in by itself")
	}
	d, err := newDelegated(s, newHTTPClient(s))
	if err != nil {
		return fmt.Errorf("o365: %w", err)
	}
	// One resource per sign-in (Entra's rule); the scopes of the other
	// resource (send by Graph while reading by IMAP) come with the refresh
	// token, or Test says consent_required.
	scopes := s.delegatedScopes()[s.scope()]
	user, err := d.Login(ctx, scopes, func(msg string) { fmt.Fprintln(out, msg) })
	if err != nil {
		return fmt.Errorf("o365: sign-in: %w", err)
	}
	fmt.Fprintf(out, "Signed in as %s. The refresh token is kept in %s (mode 0600).\n", user, TokenCacheFile(s.StateDir))
	if !strings.EqualFold(user, s.EmailUser) {
		fmt.Fprintf(out, "Note: email_user is %s; the user must have access to that mailbox.\n", s.EmailUser)
	}
	return nil
}
