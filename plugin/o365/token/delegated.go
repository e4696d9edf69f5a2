package token

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/mediagw/mediagw/secret"
)

// The delegated ("OAuth User") mode: a public client (no secret) signed in
// once as a user with the device-code flow; MSAL keeps the refresh token in a
// cache file (mode 0600) and refreshes access tokens silently.

// ErrLoginRequired means no user has signed in yet (no refresh token in the
// cache file): run the login.
var ErrLoginRequired = errors.New("token: no signed-in user: run the login")

// DelegatedConfig names a public client and where its tokens are kept.
type DelegatedConfig struct {
	AuthorityHost string
	TenantID      string // a tenant id or domain, or "organizations"
	ClientID      string
	// CacheFile holds MSAL's token cache (refresh token included), 0600.
	CacheFile  string
	HTTPClient *http.Client
}

// Delegated is one signed-in user's token source.
type Delegated struct {
	client public.Client
	mu     sync.Mutex
}

// NewDelegated builds the client; it makes no network call.
func NewDelegated(cfg DelegatedConfig) (*Delegated, error) {
	host := cfg.AuthorityHost
	if host == "" {
		host = DefaultAuthorityHost
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "https://"), "/")
	if cfg.TenantID == "" || cfg.ClientID == "" || cfg.CacheFile == "" {
		return nil, errors.New("token: delegated: tenant id, client id and a cache file are required")
	}
	opts := []public.Option{
		public.WithAuthority("https://" + host + "/" + cfg.TenantID),
		public.WithCache(&fileCache{path: cfg.CacheFile}),
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, public.WithHTTPClient(cfg.HTTPClient))
	}
	if host != DefaultAuthorityHost {
		opts = append(opts, public.WithInstanceDiscovery(false))
	}
	c, err := public.New(cfg.ClientID, opts...)
	if err != nil {
		return nil, fmt.Errorf("token: delegated: %w", err)
	}
	return &Delegated{client: c}, nil
}

// Login runs the device-code sign-in for scopes: show gets the message with
// the URL and the code, then Login waits until the user has signed in (or
// the code expires, or ctx ends) and keeps the refresh token. It returns
// the signed-in user's name.
func (d *Delegated) Login(ctx context.Context, scopes []string, show func(message string)) (string, error) {
	dc, err := d.client.AcquireTokenByDeviceCode(ctx, scopes)
	if err != nil {
		return "", classify(err)
	}
	show(dc.Result.Message)
	res, err := dc.AuthenticationResult(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", classify(err)
	}
	return res.Account.PreferredUsername, nil
}

// For returns the token source for one resource's scopes.
func (d *Delegated) For(scopes ...string) *DelegatedScope {
	return &DelegatedScope{d: d, scopes: scopes}
}

// DelegatedScope hands out access tokens for some scopes of the signed-in
// user, refreshing them silently.
type DelegatedScope struct {
	d      *Delegated
	scopes []string
}

// Token returns an access token from the cache, or refreshed with the
// refresh token. ErrLoginRequired when nobody has signed in; an *AuthError
// (e.g. AADSTS700082, 65001, 50076) when the refresh was refused.
func (s *DelegatedScope) Token(ctx context.Context) (Token, error) {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	accts, err := s.d.client.Accounts(ctx)
	if err != nil {
		return Token{}, fmt.Errorf("token: delegated: %w", err)
	}
	if len(accts) == 0 {
		return Token{}, ErrLoginRequired
	}
	res, err := s.d.client.AcquireTokenSilent(ctx, s.scopes, public.WithSilentAccount(accts[0]))
	if err != nil {
		return Token{}, classify(err)
	}
	return Token{Value: secret.New(res.AccessToken), ExpiresOn: res.ExpiresOn}, nil
}

// Invalidate is a no-op: MSAL refreshes a delegated token once it expires.
func (s *DelegatedScope) Invalidate() {}

// CertificateNotAfter is zero: a public client has no certificate.
func (s *DelegatedScope) CertificateNotAfter() time.Time { return time.Time{} }

// fileCache keeps MSAL's cache in one file, written atomically with mode 0600.
type fileCache struct {
	path string
	mu   sync.Mutex
}

func (f *fileCache) Replace(ctx context.Context, c cache.Unmarshaler, _ cache.ReplaceHints) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("token: cache: %w", err)
	}
	return c.Unmarshal(b)
}

func (f *fileCache) Export(ctx context.Context, c cache.Marshaler, _ cache.ExportHints) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := c.Marshal()
	if err != nil {
		return fmt.Errorf("token: cache: %w", err)
	}
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("token: cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tokens-*")
	if err != nil {
		return fmt.Errorf("token: cache: %w", err)
	}
	name := tmp.Name()
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, f.path)
	}
	if err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("token: cache: %w", err)
	}
	return nil
}
