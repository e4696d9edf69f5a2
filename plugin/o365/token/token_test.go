package token_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/o365/token"
	"github.com/mediagw/mediagw/secret"
)

func startIdentity(t *testing.T) *o365test.Identity {
	t.Helper()
	id, err := o365test.StartIdentity(o365test.IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = id.Close() })
	return id
}

func newSource(t *testing.T, id *o365test.Identity, mod func(*token.Config)) *token.Source {
	t.Helper()
	cfg := token.Config{
		AuthorityHost: id.Host,
		TenantID:      id.TenantID,
		ClientID:      id.ClientID,
		ClientSecret:  secret.New(id.Secret),
		Scope:         token.ScopeIMAP,
		HTTPClient:    id.CA.Client(),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := token.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenSecretAndCache(t *testing.T) {
	id := startIdentity(t)
	s := newSource(t, id, nil)
	ctx := context.Background()
	tok, err := s.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(tok.Value.Reveal(), claims, func(*jwt.Token) (any, error) { return &id.Key.PublicKey, nil })
	if err != nil || !parsed.Valid {
		t.Fatalf("token does not verify: %v", err)
	}
	if claims["aud"] != "https://outlook.office.com" || claims["email"] != id.Mailbox || claims["appidacr"] != "1" {
		t.Fatalf("claims %v", claims)
	}
	if parsed.Header["kid"] != id.KeyID {
		t.Fatalf("kid %v", parsed.Header["kid"])
	}
	if time.Until(tok.ExpiresOn) < 50*time.Minute {
		t.Fatalf("ExpiresOn %v", tok.ExpiresOn)
	}
	if _, err := s.Token(ctx); err != nil {
		t.Fatal(err)
	}
	if n := id.TokensIssued(); n != 1 {
		t.Fatalf("token endpoint called %d times, want 1 (cache)", n)
	}
	// Tokens within five minutes of expiry are fetched anew.
	id.SetTokenLifetime(2 * time.Minute)
	s2 := newSource(t, id, nil)
	for i := 0; i < 2; i++ {
		if _, err := s2.Token(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := id.TokensIssued(); n != 3 {
		t.Fatalf("token endpoint called %d times, want 3", n)
	}
}

func TestTokenCertificate(t *testing.T) {
	id := startIdentity(t)
	cc, err := o365test.NewClientCert(30 * 24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id.AddCertificate(cc.Cert)
	s := newSource(t, id, func(c *token.Config) {
		c.ClientSecret = secret.Secret{}
		c.Certificates = append(c.Certificates, cc.Cert)
		c.Key = cc.Key
		c.Scope = token.ScopeGraph
	})
	tok, err := s.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok.Value.Reveal(), claims); err != nil {
		t.Fatal(err)
	}
	if claims["aud"] != "https://graph.microsoft.com" || claims["appidacr"] != "2" {
		t.Fatalf("claims %v", claims)
	}
	if !s.CertificateNotAfter().Equal(cc.Cert.NotAfter) {
		t.Fatal("CertificateNotAfter")
	}
	// A certificate the app registration does not know.
	other, _ := o365test.NewClientCert(time.Hour)
	s2 := newSource(t, id, func(c *token.Config) {
		c.ClientSecret = secret.Secret{}
		c.Certificates = append(c.Certificates, other.Cert)
		c.Key = other.Key
	})
	_, err = s2.Token(context.Background())
	var ae *token.AuthError
	if !errors.As(err, &ae) || ae.AADSTS != 700027 {
		t.Fatalf("err = %v, want AADSTS700027", err)
	}
}

func TestTokenFaults(t *testing.T) {
	id := startIdentity(t)
	tests := []struct {
		name   string
		fault  o365test.Fault
		mod    func(*token.Config)
		aadsts int
		temp   bool
	}{
		{"wrong secret", o365test.FaultNone, func(c *token.Config) { c.ClientSecret = secret.New(id.SecretID) }, 7000215, false},
		{"expired secret", o365test.FaultExpiredSecret, nil, 7000222, false},
		{"unknown app", o365test.FaultNone, func(c *token.Config) { c.ClientID = "00000000-0000-0000-0000-000000000000" }, 700016, false},
		{"unknown tenant", o365test.FaultNone, func(c *token.Config) { c.TenantID = "contoso.onmicrosoft.com" }, 90002, false},
		{"server error", o365test.Fault500, nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id.SetFault(tt.fault)
			defer id.SetFault(o365test.FaultNone)
			_, err := newSource(t, id, tt.mod).Token(context.Background())
			var ae *token.AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *AuthError", err, err)
			}
			if ae.AADSTS != tt.aadsts || ae.Temporary() != tt.temp {
				t.Fatalf("got %+v, want AADSTS%d temporary=%v", ae, tt.aadsts, tt.temp)
			}
			if s := err.Error(); strings.Contains(s, id.Secret) {
				t.Fatal("error text holds the secret")
			}
		})
	}
}

func TestTokenUnreachable(t *testing.T) {
	id := startIdentity(t)
	t.Run("slow", func(t *testing.T) {
		id.SetSlow(5 * time.Second)
		defer id.SetFault(o365test.FaultNone)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := newSource(t, id, nil).Token(ctx)
		if !errors.Is(err, token.ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
	})
	t.Run("closed port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, err = newSource(t, id, func(c *token.Config) { c.AuthorityHost = addr }).Token(context.Background())
		if !errors.Is(err, token.ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		_, err := newSource(t, id, func(c *token.Config) { c.HTTPClient = &http.Client{} }).Token(context.Background())
		if !errors.Is(err, token.ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
	})
}

func TestInvalidate(t *testing.T) {
	id := startIdentity(t)
	s := newSource(t, id, nil)
	for range 2 {
		if _, err := s.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	s.Invalidate()
	if _, err := s.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := id.TokensIssued(); n != 2 {
		t.Fatalf("%d tokens issued, want 2 (cache, then a new one after Invalidate)", n)
	}
}

func TestAuthErrorText(t *testing.T) {
	tests := []struct {
		err  token.AuthError
		want string
	}{
		{token.AuthError{Status: 401, Code: "invalid_client", AADSTS: 7000215}, "token: identity platform refused (HTTP 401, invalid_client, AADSTS7000215)"},
		{token.AuthError{Status: 500, Code: "temporarily_unavailable"}, "token: identity platform refused (HTTP 500, temporarily_unavailable)"},
		{token.AuthError{AADSTS: 7000222, Description: "AADSTS7000222: expired"}, "token: identity platform refused (AADSTS7000222)"},
		{token.AuthError{}, "token: identity platform refused"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.err, got, tt.want)
		}
	}
}
