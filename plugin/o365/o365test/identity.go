package o365test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Fault is a failure the identity stand-in can be switched to.
type Fault int

const (
	FaultNone           Fault = iota
	FaultWrongSecret          // AADSTS7000215: invalid client secret (often the secret's ID)
	FaultExpiredSecret        // AADSTS7000222: the client secret has expired
	FaultUnknownApp           // AADSTS700016: application not found in the directory
	FaultUnknownTenant        // AADSTS90002: tenant not found
	FaultBadCertificate       // AADSTS700027: client assertion failed signature validation
	FaultSlow                 // every answer waits SlowDelay
	Fault500                  // every answer is 500
)

// Identity is a stand-in for the Microsoft identity platform's v2.0 endpoints
// (openid-configuration and the client-credentials token endpoint). Its tokens
// look like Entra app-only tokens and carry an extra email claim naming the
// one mailbox the app is granted, which Dovecot matches against the login.
type Identity struct {
	// Host is host:port, the value for the connector's authority_host.
	Host     string
	URL      string // https://Host
	CA       *CA
	TenantID string
	ClientID string
	// Secret is the client secret value the app registration accepts.
	Secret string
	// SecretID is the secret's ID as the portal shows it (not a credential).
	SecretID string
	// Mailbox is the mailbox the app may open; tokens name it in "email".
	Mailbox string
	// KeyID names the RS256 signing key in the token header.
	KeyID string
	Key   *rsa.PrivateKey

	mu        sync.Mutex
	fault     Fault
	certs     map[string]*x509.Certificate // x5t#S256 → cert
	lifetime  time.Duration
	slowDelay time.Duration
	roles     []string
	delegated delegatedState

	tokens atomic.Int64
	issued []string // every access token minted at the token endpoint
	srv    *http.Server
	ln     net.Listener
	wg     sync.WaitGroup
}

// IdentityOptions configures StartIdentity. Empty fields get defaults.
type IdentityOptions struct {
	CA       *CA
	TenantID string
	ClientID string
	Secret   string
	Mailbox  string
}

// StartIdentity starts the stand-in on a free 127.0.0.1 port.
func StartIdentity(opts IdentityOptions) (*Identity, error) {
	if opts.CA == nil {
		ca, err := NewCA()
		if err != nil {
			return nil, err
		}
		opts.CA = ca
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&opts.TenantID, "6f1c3a52-0d2e-4b5a-9c1e-2a7d8b9e0f11")
	def(&opts.ClientID, "3b9d6e0a-7c41-4f2b-8d5e-1a2b3c4d5e6f")
	def(&opts.Secret, "Q~s3cr3t.value_"+randHex(12))
	def(&opts.Mailbox, "fax@example.com")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("o365test: signing key: %w", err)
	}
	tlsConf, err := opts.CA.ServerTLS()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("o365test: identity listen: %w", err)
	}
	id := &Identity{
		Host:     ln.Addr().String(),
		CA:       opts.CA,
		TenantID: opts.TenantID,
		ClientID: opts.ClientID,
		Secret:   opts.Secret,
		SecretID: "8d2f4c1e-5b6a-4e3d-9f10-" + randHex(6),
		Mailbox:  opts.Mailbox,
		KeyID:    "kid-" + randHex(4),
		Key:      key,
		certs:    map[string]*x509.Certificate{},
		lifetime: time.Hour,
	}
	id.URL = "https://" + id.Host
	id.ln = ln
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", id.discovery)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", id.keys)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", id.token)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/devicecode", id.deviceCode)
	id.srv = &http.Server{Handler: mux, TLSConfig: tlsConf, ReadHeaderTimeout: 10 * time.Second}
	id.wg.Add(1)
	go func() {
		defer id.wg.Done()
		_ = id.srv.ServeTLS(ln, "", "")
	}()
	return id, nil
}

// DefaultRoles are the application roles a token carries unless SetRoles
// says otherwise: reading and sending, by IMAP/SMTP and by Graph.
var DefaultRoles = []string{"IMAP.AccessAsApp", "SMTP.SendAsApp", "Mail.ReadWrite", "Mail.Send"}

// SetRoles sets the roles claim of tokens minted from now on (the app's
// granted application permissions); nil restores DefaultRoles.
func (id *Identity) SetRoles(roles []string) {
	id.mu.Lock()
	id.roles = roles
	id.mu.Unlock()
}

// Roles returns the roles tokens carry.
func (id *Identity) Roles() []string {
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.roles == nil {
		return DefaultRoles
	}
	return id.roles
}

// Verify checks a token as a resource server would (signature, issuer,
// audience aud) and returns its mailbox (email claim) and roles.
func (id *Identity) Verify(raw, aud string) (email string, roles []string, err error) {
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return id.PublicKey(), nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(aud), jwt.WithIssuer(id.Issuer()), jwt.WithExpirationRequired())
	if err != nil {
		return "", nil, err
	}
	email, _ = claims["email"].(string)
	if rs, ok := claims["roles"].([]any); ok {
		for _, r := range rs {
			if s, ok := r.(string); ok {
				roles = append(roles, s)
			}
		}
	}
	return email, roles, nil
}

// Close stops the stand-in.
func (id *Identity) Close() error {
	err := id.srv.Close()
	id.wg.Wait()
	return err
}

// SetFault switches the stand-in to f (FaultNone to heal).
func (id *Identity) SetFault(f Fault) {
	id.mu.Lock()
	id.fault = f
	id.mu.Unlock()
}

// SetSlow makes every answer wait d (with FaultSlow).
func (id *Identity) SetSlow(d time.Duration) {
	id.mu.Lock()
	id.fault, id.slowDelay = FaultSlow, d
	id.mu.Unlock()
}

// SetTokenLifetime sets expires_in (and exp) for tokens issued from now on.
func (id *Identity) SetTokenLifetime(d time.Duration) {
	id.mu.Lock()
	id.lifetime = d
	id.mu.Unlock()
}

// AddCertificate registers an application certificate (as uploading it under
// "Certificates & secrets" does).
func (id *Identity) AddCertificate(c *x509.Certificate) {
	sum := sha256.Sum256(c.Raw)
	id.mu.Lock()
	id.certs[base64.StdEncoding.EncodeToString(sum[:])] = c
	id.mu.Unlock()
}

// TokensIssued counts access tokens minted so far.
func (id *Identity) TokensIssued() int64 { return id.tokens.Load() }

// IssuedTokens returns every access token the token endpoint handed out so
// far, for tests that check no token reaches a log.
func (id *Identity) IssuedTokens() []string {
	id.mu.Lock()
	defer id.mu.Unlock()
	return append([]string(nil), id.issued...)
}

// PublicKeyPEM is the signing key as Dovecot's local validation reads it.
func (id *Identity) PublicKeyPEM() []byte {
	key, _ := id.signingKey()
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Issuer is the iss claim of v1 app-only tokens, which Dovecot checks.
func (id *Identity) Issuer() string { return "https://sts.windows.net/" + id.TenantID + "/" }

// Mint signs a token for mailbox with resource as aud and the given lifetime,
// for tests that need a token without going through the token endpoint.
func (id *Identity) Mint(mailbox, aud string, lifetime time.Duration) (string, error) {
	now := time.Now()
	oid := "5e0c9b7a-1f2d-4c3b-8a9e-" + randHex(6)
	claims := jwt.MapClaims{
		"aud":      aud,
		"iss":      id.Issuer(),
		"iat":      now.Unix(),
		"nbf":      now.Unix(),
		"exp":      now.Add(lifetime).Unix(),
		"tid":      id.TenantID,
		"appid":    id.ClientID,
		"appidacr": "1",
		"idtyp":    "app",
		"oid":      oid,
		"sub":      oid,
		"roles":    id.Roles(),
		"ver":      "1.0",
		"email":    mailbox,
	}
	key, kid := id.signingKey()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	return tok.SignedString(key)
}

func (id *Identity) state() (Fault, time.Duration, time.Duration) {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.fault, id.lifetime, id.slowDelay
}

// preamble applies the slow and 500 faults; false means the answer is sent.
func (id *Identity) preamble(w http.ResponseWriter, r *http.Request) (Fault, bool) {
	f, _, slow := id.state()
	switch f {
	case FaultSlow:
		select {
		case <-time.After(slow):
		case <-r.Context().Done():
			return f, false
		}
	case Fault500:
		http.Error(w, `{"error":"server_error","error_description":"AADSTS90033: A transient error has occurred."}`, http.StatusInternalServerError)
		return f, false
	}
	if f == FaultUnknownTenant || r.PathValue("tenant") != id.TenantID {
		writeAADError(w, http.StatusBadRequest, "invalid_tenant", 90002,
			fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", r.PathValue("tenant")))
		return f, false
	}
	return f, true
}

func (id *Identity) discovery(w http.ResponseWriter, r *http.Request) {
	if _, ok := id.preamble(w, r); !ok {
		return
	}
	base := id.URL + "/" + id.TenantID
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"issuer":                                base + "/v2.0",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"tenant_region_scope":                   "EU",
	})
}

func (id *Identity) keys(w http.ResponseWriter, r *http.Request) {
	if _, ok := id.preamble(w, r); !ok {
		return
	}
	key, kid := id.signingKey()
	pub := key.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "kid": kid, "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString([]byte{1, 0, 1}),
	}}})
}

func (id *Identity) token(w http.ResponseWriter, r *http.Request) {
	f, ok := id.preamble(w, r)
	if !ok {
		return
	}
	if err := r.ParseForm(); err != nil {
		writeAADError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "device_code", "urn:ietf:params:oauth:grant-type:device_code": // Entra takes both
		id.deviceToken(w, r)
		return
	case "refresh_token":
		id.refreshToken(w, r)
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeAADError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
		return
	}
	clientID := r.PostForm.Get("client_id")
	if f == FaultUnknownApp || clientID != id.ClientID {
		writeAADError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", clientID, id.TenantID))
		return
	}
	appidacr := "1"
	switch {
	case r.PostForm.Get("client_assertion") != "":
		appidacr = "2"
		if f == FaultBadCertificate || !id.checkAssertion(r.PostForm.Get("client_assertion")) {
			writeAADError(w, http.StatusUnauthorized, "invalid_client", 700027,
				"Client assertion failed signature validation.")
			return
		}
	case r.PostForm.Get("client_secret") != "":
		sec := r.PostForm.Get("client_secret")
		if f == FaultExpiredSecret {
			writeAADError(w, http.StatusUnauthorized, "invalid_client", 7000222,
				fmt.Sprintf("The provided client secret keys for app '%s' are expired.", id.ClientID))
			return
		}
		if f == FaultWrongSecret || sec != id.Secret {
			writeAADError(w, http.StatusUnauthorized, "invalid_client", 7000215,
				"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+id.ClientID+"'.")
			return
		}
	default:
		writeAADError(w, http.StatusUnauthorized, "invalid_client", 7000218,
			"The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}
	aud := ""
	for _, s := range strings.Fields(r.PostForm.Get("scope")) {
		switch {
		case strings.HasPrefix(s, "https://outlook.office365.com/"), strings.HasPrefix(s, "https://outlook.office.com/"):
			aud = "https://outlook.office.com"
		case strings.HasPrefix(s, "https://graph.microsoft.com/"):
			aud = "https://graph.microsoft.com"
		}
	}
	if aud == "" {
		writeAADError(w, http.StatusBadRequest, "invalid_scope", 1002012,
			"The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
		return
	}
	_, life, _ := id.state()
	tok, err := id.Mint(id.Mailbox, aud, life)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if appidacr == "2" {
		// Re-sign with appidacr 2: certificate credential.
		p := jwt.NewParser()
		claims := jwt.MapClaims{}
		if _, _, err := p.ParseUnverified(tok, claims); err == nil {
			claims["appidacr"] = "2"
			t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
			key, kid := id.signingKey()
			t.Header["kid"] = kid
			tok, _ = t.SignedString(key)
		}
	}
	id.tokens.Add(1)
	id.mu.Lock()
	id.issued = append(id.issued, tok)
	id.mu.Unlock()
	secs := int64(life / time.Second)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

func (id *Identity) checkAssertion(assertion string) bool {
	_, err := jwt.Parse(assertion, func(t *jwt.Token) (any, error) {
		x5t, _ := t.Header["x5t#S256"].(string)
		id.mu.Lock()
		c := id.certs[x5t]
		id.mu.Unlock()
		if c == nil {
			return nil, fmt.Errorf("unknown certificate")
		}
		return c.PublicKey, nil
	}, jwt.WithValidMethods([]string{"PS256", "RS256"}), jwt.WithAudience(id.URL+"/"+id.TenantID+"/oauth2/v2.0/token"), jwt.WithIssuer(id.ClientID))
	return err == nil
}

func writeAADError(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", aadsts, desc, randHex(8), randHex(8), time.Now().UTC().Format("2006-01-02 15:04:05Z")),
		"error_codes":       []int{aadsts},
		"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          randHex(8),
		"correlation_id":    randHex(8),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// WriteFiles writes the CA certificate (ca.pem) into dir for a connector's
// tls_ca_file and returns its path.
func (id *Identity) WriteFiles(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return id.CA.WriteFile(filepath.Clean(dir))
}

// RotateKey replaces the signing key (new kid), as Entra rolls its keys;
// tokens issued before no longer verify once a validator drops the old key.
func (id *Identity) RotateKey() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	id.mu.Lock()
	id.Key, id.KeyID = key, "kid-"+randHex(4)
	id.mu.Unlock()
	return nil
}

func (id *Identity) signingKey() (*rsa.PrivateKey, string) {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.Key, id.KeyID
}

// PublicKey is the current signing key's public half.
func (id *Identity) PublicKey() *rsa.PublicKey {
	k, _ := id.signingKey()
	return &k.PublicKey
}

// CurrentKeyID is the current signing key's kid.
func (id *Identity) CurrentKeyID() string {
	_, kid := id.signingKey()
	return kid
}
