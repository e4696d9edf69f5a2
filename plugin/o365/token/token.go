// Package token gets app-only access tokens from the Microsoft identity
// platform with MSAL's confidential client (client credentials grant, with a
// client secret or a certificate). Keep one Source per connector: the token
// cache lives in it, so a token is reused until five minutes before it expires.
package token

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"

	"github.com/mediagw/mediagw/secret"
)

// Scopes for the two mailbox protocols.
const (
	ScopeIMAP  = "https://outlook.office365.com/.default"
	ScopeGraph = "https://graph.microsoft.com/.default"
)

// DefaultAuthorityHost is the public cloud's login host.
const DefaultAuthorityHost = "login.microsoftonline.com"

// Config names an app registration and its credential.
type Config struct {
	AuthorityHost string // host[:port]; default login.microsoftonline.com
	TenantID      string
	ClientID      string
	// Exactly one of ClientSecret or Certificates+Key.
	ClientSecret secret.Secret
	Certificates []*x509.Certificate
	Key          crypto.PrivateKey
	Scope        string
	// HTTPClient carries proxy and TLS settings; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Source hands out access tokens.
type Source struct {
	mu       sync.Mutex
	client   confidential.Client
	newFn    func() (confidential.Client, error)
	scope    string
	notAfter time.Time
}

// Token is an access token. Value must never be logged.
type Token struct {
	Value     secret.Secret
	ExpiresOn time.Time
}

// New builds a Source. It makes no network call.
func New(cfg Config) (*Source, error) {
	host := cfg.AuthorityHost
	if host == "" {
		host = DefaultAuthorityHost
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "https://"), "/")
	if cfg.TenantID == "" || cfg.ClientID == "" {
		return nil, errors.New("token: tenant id and client id are required")
	}
	var (
		cred     confidential.Credential
		err      error
		notAfter time.Time
	)
	switch {
	case len(cfg.Certificates) > 0 && cfg.Key != nil:
		cred, err = confidential.NewCredFromCert(cfg.Certificates, cfg.Key)
		notAfter = cfg.Certificates[0].NotAfter
	case !cfg.ClientSecret.IsZero():
		cred, err = confidential.NewCredFromSecret(cfg.ClientSecret.Reveal())
	default:
		return nil, errors.New("token: a client secret or a certificate is required")
	}
	if err != nil {
		return nil, fmt.Errorf("token: credential: %w", err)
	}
	opts := []confidential.Option{confidential.WithInstanceDiscovery(false)}
	if cfg.HTTPClient != nil {
		opts = append(opts, confidential.WithHTTPClient(cfg.HTTPClient))
	}
	newFn := func() (confidential.Client, error) {
		return confidential.New("https://"+host+"/"+cfg.TenantID, cfg.ClientID, cred, opts...)
	}
	c, err := newFn()
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	scope := cfg.Scope
	if scope == "" {
		scope = ScopeIMAP
	}
	return &Source{client: c, newFn: newFn, scope: scope, notAfter: notAfter}, nil
}

// Invalidate drops the cached token, so the next Token call asks the
// identity platform again (after a server refused a token the cache still
// holds as valid, e.g. "AccessTokenExpired" with clock skew).
func (s *Source) Invalidate() {
	c, err := s.newFn()
	if err != nil {
		return
	}
	s.mu.Lock()
	s.client = c
	s.mu.Unlock()
}

// CertificateNotAfter is when the certificate credential expires (zero for a
// secret).
func (s *Source) CertificateNotAfter() time.Time { return s.notAfter }

// Token returns a token valid for at least a few more minutes: from the cache
// when it has one, else from the token endpoint.
func (s *Source) Token(ctx context.Context) (Token, error) {
	s.mu.Lock()
	client := s.client
	s.mu.Unlock()
	res, err := client.AcquireTokenByCredential(ctx, []string{s.scope})
	if err != nil {
		return Token{}, classify(err)
	}
	return Token{Value: secret.New(res.AccessToken), ExpiresOn: res.ExpiresOn}, nil
}

// AuthError is an answer from the identity platform refusing the request.
type AuthError struct {
	Status      int    // HTTP status
	Code        string // OAuth error, e.g. invalid_client
	AADSTS      int    // first of error_codes, e.g. 7000215
	Description string // error_description (names no secret)
}

func (e *AuthError) Error() string {
	// An error MSAL could only give as text has no status or code.
	var parts []string
	if e.Status != 0 {
		parts = append(parts, fmt.Sprintf("HTTP %d", e.Status))
	}
	if e.Code != "" {
		parts = append(parts, e.Code)
	}
	if e.AADSTS != 0 {
		parts = append(parts, fmt.Sprintf("AADSTS%d", e.AADSTS))
	}
	if len(parts) == 0 {
		return "token: identity platform refused"
	}
	return "token: identity platform refused (" + strings.Join(parts, ", ") + ")"
}

// Temporary reports whether retrying may help (5xx, throttling).
func (e *AuthError) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// ErrUnreachable wraps failures to reach the token endpoint at all (DNS,
// refused, TLS, timeout, proxy).
var ErrUnreachable = errors.New("token: identity platform unreachable")

func classify(err error) error {
	var ce msalerrors.CallErr
	if errors.As(err, &ce) && ce.Resp != nil {
		ae := &AuthError{Status: ce.Resp.StatusCode}
		var body struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
			Codes       []int  `json:"error_codes"`
		}
		if ce.Resp.Body != nil {
			b, _ := io.ReadAll(io.LimitReader(ce.Resp.Body, 64<<10))
			_ = json.Unmarshal(b, &body)
		}
		if body.Error == "" && ce.Err != nil {
			// MSAL read the body already (the device-code poll does, to
			// tell "pending" from a failure); its text ends with the body.
			if i := strings.Index(ce.Err.Error(), "{"); i >= 0 {
				_ = json.Unmarshal([]byte(ce.Err.Error()[i:]), &body)
			}
		}
		ae.Code, ae.Description = body.Error, body.Description
		if len(body.Codes) > 0 {
			ae.AADSTS = body.Codes[0]
		}
		return ae
	}
	// MSAL reports an error body it could not map as a plain error; look for
	// an AADSTS code in its text before calling it a network failure.
	msg := err.Error()
	if i := strings.Index(msg, "AADSTS"); i >= 0 {
		ae := &AuthError{Description: msg[i:]}
		_, _ = fmt.Sscanf(msg[i:], "AADSTS%d", &ae.AADSTS)
		if ae.AADSTS != 0 {
			return ae
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}
