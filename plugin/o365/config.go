package o365

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/mediagw/mediagw/internal/duration"
	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/imapbox"
	"github.com/mediagw/mediagw/plugin/o365/token"
	"github.com/mediagw/mediagw/secret"
)

// Config is the connector's configuration. Key names follow the ones
// administrators know from the commercial gateways.
type Config struct {
	EmailUser           string        `json:"email_user"`
	TenantID            string        `json:"tenant_id"`
	ClientID            string        `json:"client_id"`
	ClientSecret        secret.Secret `json:"client_secret"`
	ClientSecretFile    string        `json:"client_secret_file"`
	CertificateFile     string        `json:"certificate_file"`
	CertificateKeyFile  string        `json:"certificate_key_file"`
	CertificatePassword secret.Secret `json:"certificate_password"`
	AuthorityHost       string        `json:"authority_host"`
	Protocol            string        `json:"protocol"`
	IMAPHost            string        `json:"imap_host"`
	IMAPPort            int           `json:"imap_port"`
	GraphEndpoint       string        `json:"graph_endpoint"`
	Folder              string        `json:"folder"`
	PollInterval        Duration      `json:"poll_interval"`
	Idle                *bool         `json:"idle"`
	AfterProcessing     string        `json:"after_processing"`
	FailedFolder        string        `json:"failed_folder"`
	Proxy               string        `json:"proxy"`
	MaxMessageSize      int64         `json:"max_message_size"`
	ConnectTimeout      Duration      `json:"connect_timeout"`
	RequestTimeout      Duration      `json:"request_timeout"`
	TLSCAFile           string        `json:"tls_ca_file"`
	StateDir            string        `json:"state_dir"`
	CertificateWarn     Duration      `json:"certificate_expiry_warning"`
	SendVia             string        `json:"send_via"`
	SendAs              string        `json:"send_as"`
	SMTPHost            string        `json:"smtp_host"`
	SMTPPort            int           `json:"smtp_port"`
	Auth                string        `json:"auth"`
}

// Defaults, in one place.
const (
	defaultAuthorityHost  = "login.microsoftonline.com"
	defaultIMAPHost       = "outlook.office365.com"
	defaultIMAPPort       = 993
	defaultGraphEndpoint  = "https://graph.microsoft.com"
	defaultFolder         = "INBOX"
	defaultPollInterval   = time.Minute
	defaultAfter          = "seen"
	defaultFailedFolder   = "mediagw-failed"
	defaultMaxMessageSize = 50 << 20
	defaultConnectTimeout = 30 * time.Second
	defaultRequestTimeout = 60 * time.Second
	defaultCertWarn       = 30 * 24 * time.Hour
	defaultSMTPHost       = "smtp.office365.com"
	defaultSMTPPort       = 587
)

// Duration reads "90s", "5m" or a number of seconds.
type Duration = duration.Duration

func schema() []plugin.ConfigField {
	return []plugin.ConfigField{
		{Name: "email_user", Type: "string", Required: true, Description: "Mailbox address the app reads, e.g. fax@contoso.com"},
		{Name: "tenant_id", Type: "string", Required: true, Description: "Directory (tenant) ID of the app registration"},
		{Name: "client_id", Type: "string", Required: true, Description: "Application (client) ID"},
		{Name: "client_secret", Type: "secret", Description: "Client secret value (not its ID); env:NAME and file:PATH work"},
		{Name: "client_secret_file", Type: "string", Description: "File holding the client secret value"},
		{Name: "certificate_file", Type: "string", Description: "PEM certificate (and key, unless certificate_key_file) uploaded to the app registration"},
		{Name: "certificate_key_file", Type: "string", Description: "PEM private key for certificate_file"},
		{Name: "certificate_password", Type: "secret", Description: "Password of an encrypted key"},
		{Name: "authority_host", Type: "string", Default: defaultAuthorityHost, Description: "Login host; login.microsoftonline.us for US Government"},
		{Name: "protocol", Type: "string", Default: "imap", Description: "imap or graph"},
		{Name: "imap_host", Type: "string", Default: defaultIMAPHost, Description: "IMAP server (outlook.office365.com; outlook.office365.us for GCC High)"},
		{Name: "imap_port", Type: "int", Default: strconv.Itoa(defaultIMAPPort), Description: "IMAPS port (implicit TLS)"},
		{Name: "graph_endpoint", Type: "string", Default: defaultGraphEndpoint, Description: "Microsoft Graph base URL (graph.microsoft.us for US Government)"},
		{Name: "folder", Type: "string", Default: defaultFolder, Description: "Folder to watch"},
		{Name: "poll_interval", Type: "duration", Default: defaultPollInterval.String(), Description: "Rescan interval (IMAP without IDLE, Graph)"},
		{Name: "idle", Type: "bool", Default: "true", Description: "Use IMAP IDLE for push"},
		{Name: "after_processing", Type: "string", Default: defaultAfter, Description: "seen, move:<folder> or delete"},
		{Name: "failed_folder", Type: "string", Default: defaultFailedFolder, Description: "Rejected messages go here (created when missing)"},
		{Name: "proxy", Type: "string", Description: "http://host:port (CONNECT) or socks5://host:port, for login, IMAP and Graph"},
		{Name: "max_message_size", Type: "int", Default: strconv.Itoa(defaultMaxMessageSize), Description: "Larger messages are rejected"},
		{Name: "connect_timeout", Type: "duration", Default: defaultConnectTimeout.String(), Description: "Dial, TLS and login to the IMAP server"},
		{Name: "request_timeout", Type: "duration", Default: defaultRequestTimeout.String(), Description: "Token and Graph requests"},
		{Name: "tls_ca_file", Type: "string", Description: "Extra trusted CA certificates (PEM), e.g. for a TLS-inspecting proxy"},
		{Name: "state_dir", Type: "string", Description: "Where UIDVALIDITY, unapplied settlements and the reject log are kept"},
		{Name: "certificate_expiry_warning", Type: "duration", Default: defaultCertWarn.String(), Description: "Warn this long before the certificate expires"},
		{Name: "auth", Type: "string", Default: "app", Description: "app (client credentials: secret or certificate) or delegated (a public client signed in as a user with mediagw login; needs state_dir)"},
		{Name: "send_via", Type: "string", Default: "smtp with protocol imap, graph with protocol graph", Description: "How reports are sent: smtp (SMTP AUTH XOAUTH2, SMTP.SendAsApp), graph (sendMail, Mail.Send) or none"},
		{Name: "send_as", Type: "string", Default: "email_user", Description: "Address (and mailbox) reports are sent from"},
		{Name: "smtp_host", Type: "string", Default: defaultSMTPHost, Description: "SMTP submission server (STARTTLS); smtp.office365.us for GCC High"},
		{Name: "smtp_port", Type: "int", Default: strconv.Itoa(defaultSMTPPort), Description: "SMTP submission port"},
	}
}

// settings is a checked configuration, ready to use.
type settings struct {
	Config
	after       imapbox.Action
	certs       []*x509.Certificate
	key         crypto.PrivateKey
	proxyURL    *url.URL
	roots       *x509.CertPool
	graphURL    *url.URL
	idle        bool
	imapAddress string
}

// decodeConfig decodes strictly and checks every key; problems become
// diagnostics naming the key.
func decodeConfig(raw []byte) (*settings, plugin.Diagnostics) {
	var diags plugin.Diagnostics
	var c Config
	if !decodeStrict(raw, &c, schema(), &diags) {
		return nil, diags
	}
	s := &settings{Config: c}
	req := func(field, v, what string) {
		if strings.TrimSpace(v) == "" {
			diags.Errorf(field, "required: %s", what)
		}
	}
	req("email_user", c.EmailUser, "the mailbox address, e.g. fax@contoso.com")
	if c.EmailUser != "" && !strings.Contains(c.EmailUser, "@") {
		diags.Errorf("email_user", "%q is not a mailbox address", c.EmailUser)
	}
	req("tenant_id", c.TenantID, "the Directory (tenant) ID from the app registration's overview")
	req("client_id", c.ClientID, "the Application (client) ID from the app registration's overview")
	if c.TenantID != "" && strings.ContainsAny(c.TenantID, "/ ?#") {
		diags.Errorf("tenant_id", "%q is not a tenant id or domain", c.TenantID)
	}

	// Credential: exactly one of secret, secret file, certificate.
	n := 0
	if !c.ClientSecret.IsZero() {
		n++
	}
	if c.ClientSecretFile != "" {
		n++
		b, err := os.ReadFile(c.ClientSecretFile)
		switch {
		case err != nil:
			diags.Errorf("client_secret_file", "cannot read: %v", unwrapPath(err))
		case strings.TrimSpace(string(b)) == "":
			diags.Errorf("client_secret_file", "the file is empty")
		default:
			s.ClientSecret = secret.New(strings.TrimRight(string(b), "\r\n"))
		}
	}
	if c.CertificateFile != "" {
		n++
		certs, key, err := loadCertificate(c.CertificateFile, c.CertificateKeyFile, c.CertificatePassword)
		if err != nil {
			field := "certificate_file"
			if c.CertificateKeyFile != "" && errors.Is(err, errKey) {
				field = "certificate_key_file"
			}
			diags.Errorf(field, "%v", err)
		} else {
			s.certs, s.key = certs, key
			if left := time.Until(certs[0].NotAfter); left < 0 {
				diags.Errorf("certificate_file", "the certificate expired on %s; upload a new one to the app registration", certs[0].NotAfter.Format(time.DateOnly))
			} else if left < s.certWarn() {
				diags.Warnf("certificate_file", "the certificate expires on %s (in %d days); upload a new one to the app registration", certs[0].NotAfter.Format(time.DateOnly), int(left.Hours()/24))
			}
		}
	} else if c.CertificateKeyFile != "" {
		diags.Errorf("certificate_key_file", "set certificate_file as well")
	}
	delegated := c.Auth == "delegated"
	switch c.Auth {
	case "", "app", "delegated":
	default:
		diags.Errorf("auth", "want app or delegated, got %q", c.Auth)
	}
	if delegated {
		if n > 0 {
			diags.Errorf("client_secret", "auth: delegated uses a public client: remove the secret or certificate")
		}
		if c.StateDir == "" {
			diags.Errorf("state_dir", "required with auth: delegated: the signed-in user's refresh token is kept there")
		}
	} else if n == 0 {
		diags.Errorf("client_secret", "required: a client secret (client_secret or client_secret_file) or a certificate (certificate_file)")
	} else if n > 1 {
		diags.Errorf("client_secret", "give one credential: client_secret, client_secret_file or certificate_file")
	}
	if c.ClientSecret.Ref() == "" && !c.ClientSecret.IsZero() && looksLikeGUID(c.ClientSecret.Reveal()) {
		diags.Warnf("client_secret", "this looks like the secret's ID (a GUID), not its value; copy the Value column under Certificates & secrets")
	}

	if s.AuthorityHost == "" {
		s.AuthorityHost = defaultAuthorityHost
	} else if h := strings.TrimSuffix(strings.TrimPrefix(s.AuthorityHost, "https://"), "/"); strings.ContainsAny(h, "/ ") {
		diags.Errorf("authority_host", "want a host name such as login.microsoftonline.us, got %q", s.AuthorityHost)
	} else {
		s.AuthorityHost = h
	}
	switch s.Protocol {
	case "":
		s.Protocol = "imap"
	case "imap", "graph":
	default:
		diags.Errorf("protocol", "want imap or graph, got %q", s.Protocol)
	}
	if s.IMAPHost == "" {
		s.IMAPHost = defaultIMAPHost
	}
	if s.IMAPPort == 0 {
		s.IMAPPort = defaultIMAPPort
	} else if s.IMAPPort < 1 || s.IMAPPort > 65535 {
		diags.Errorf("imap_port", "want 1..65535, got %d", s.IMAPPort)
	}
	s.imapAddress = net.JoinHostPort(s.IMAPHost, strconv.Itoa(s.IMAPPort))
	if s.GraphEndpoint == "" {
		s.GraphEndpoint = defaultGraphEndpoint
	}
	if u, err := url.Parse(s.GraphEndpoint); err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		diags.Errorf("graph_endpoint", "want an https URL, got %q", s.GraphEndpoint)
	} else {
		s.graphURL = u
	}
	if s.Folder == "" {
		s.Folder = defaultFolder
	}
	if s.PollInterval == 0 {
		s.PollInterval = Duration(defaultPollInterval)
	} else if s.PollInterval < Duration(time.Second) {
		diags.Errorf("poll_interval", "want at least 1s, got %s", time.Duration(s.PollInterval))
	}
	s.idle = c.Idle == nil || *c.Idle
	if s.AfterProcessing == "" {
		s.AfterProcessing = defaultAfter
	}
	switch a := s.AfterProcessing; {
	case a == "seen":
		s.after = imapbox.Action{Kind: imapbox.ActionSeen}
	case a == "delete":
		s.after = imapbox.Action{Kind: imapbox.ActionDelete}
	case strings.HasPrefix(a, "move:") && strings.TrimSpace(a[5:]) != "":
		s.after = imapbox.Action{Kind: imapbox.ActionMove, Folder: strings.TrimSpace(a[5:])}
	default:
		diags.Errorf("after_processing", "want seen, delete or move:<folder>, got %q", a)
	}
	if s.FailedFolder == "" {
		s.FailedFolder = defaultFailedFolder
	}
	if s.FailedFolder == s.Folder {
		diags.Errorf("failed_folder", "must differ from folder %q", s.Folder)
	}
	if s.after.Kind == imapbox.ActionMove && s.after.Folder == s.Folder {
		diags.Errorf("after_processing", "the move target must differ from folder %q", s.Folder)
	}
	if s.Proxy != "" {
		u, err := url.Parse(s.Proxy)
		if err != nil || u.Host == "" {
			diags.Errorf("proxy", "want http://host:port or socks5://host:port, got %q", redactUserinfo(s.Proxy))
		} else {
			switch u.Scheme {
			case "http", "https", "socks5", "socks5h":
				s.proxyURL = u
			default:
				diags.Errorf("proxy", "scheme %q: want http, https or socks5", u.Scheme)
			}
		}
	}
	if s.MaxMessageSize == 0 {
		s.MaxMessageSize = defaultMaxMessageSize
	} else if s.MaxMessageSize < 0 {
		diags.Errorf("max_message_size", "must be positive")
	}
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = Duration(defaultConnectTimeout)
	} else if s.ConnectTimeout < 0 {
		diags.Errorf("connect_timeout", "must be positive")
	}
	if s.RequestTimeout == 0 {
		s.RequestTimeout = Duration(defaultRequestTimeout)
	} else if s.RequestTimeout < 0 {
		diags.Errorf("request_timeout", "must be positive")
	}
	if s.TLSCAFile != "" {
		b, err := os.ReadFile(s.TLSCAFile)
		if err != nil {
			diags.Errorf("tls_ca_file", "cannot read: %v", unwrapPath(err))
		} else {
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(b) {
				diags.Errorf("tls_ca_file", "no PEM certificate in the file")
			}
			s.roots = pool
		}
	}
	if s.StateDir != "" {
		// Checked, not created: validation has no side effects; the folder
		// is made when state is first written.
		if err := creatableDir(s.StateDir); err != nil {
			diags.Errorf("state_dir", "%v", err)
		}
	} else if s.Protocol == "imap" {
		diags.Warnf("state_dir", "not set: settlements not yet applied when the plugin stops are offered again after a restart")
	}
	if s.Auth == "" {
		s.Auth = "app"
	}
	switch s.SendVia {
	case "":
		s.SendVia = "smtp"
		if s.Protocol == "graph" {
			s.SendVia = "graph"
		}
	case "smtp", "graph", "none":
	default:
		diags.Errorf("send_via", "want smtp, graph or none, got %q", s.SendVia)
	}
	if s.SendAs == "" {
		s.SendAs = s.EmailUser
	} else if !strings.Contains(s.SendAs, "@") {
		diags.Errorf("send_as", "%q is not a mail address", s.SendAs)
	}
	if s.SMTPHost == "" {
		s.SMTPHost = defaultSMTPHost
	} else if strings.ContainsAny(s.SMTPHost, "/: ") {
		diags.Errorf("smtp_host", "want a host name such as smtp.office365.com, got %q", s.SMTPHost)
	}
	if s.SMTPPort == 0 {
		s.SMTPPort = defaultSMTPPort
	} else if s.SMTPPort < 1 || s.SMTPPort > 65535 {
		diags.Errorf("smtp_port", "want 1..65535, got %d", s.SMTPPort)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return s, diags
}

// smtpScope is the token scope for SMTP submission: Exchange Online's
// resource (outlook.office365.com), or a national cloud's when smtp_host or
// imap_host names one of its hosts.
func (s *settings) smtpScope() string {
	switch h := strings.ToLower(s.SMTPHost); {
	case strings.HasSuffix(h, ".office365.us"):
		if strings.Contains(h, "dod") {
			return "https://outlook-dod.office365.us/.default"
		}
		return "https://outlook.office365.us/.default"
	case strings.HasSuffix(h, ".partner.outlook.cn"), h == "partner.outlook.cn":
		return "https://partner.outlook.cn/.default"
	}
	if h := strings.ToLower(s.IMAPHost); sovereignResources[h] {
		return "https://" + h + "/.default"
	}
	return token.ScopeIMAP
}

func (s *settings) certWarn() time.Duration {
	if s.CertificateWarn > 0 {
		return time.Duration(s.CertificateWarn)
	}
	return defaultCertWarn
}

func (s *settings) tlsConfig(serverName string) *tls.Config {
	return &tls.Config{RootCAs: s.roots, ServerName: serverName, MinVersion: tls.VersionTLS12}
}

var errKey = errors.New("private key")

func loadCertificate(certFile, keyFile string, password secret.Secret) ([]*x509.Certificate, crypto.PrivateKey, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	if keyFile != "" {
		k, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: cannot read: %w", errKey, unwrapPath(err))
		}
		b = append(append(b, '\n'), k...)
	}
	certs, key, err := confidential.CertFromPEM(b, password.Reveal())
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errKey, err)
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("no certificate in the PEM data")
	}
	if key == nil {
		return nil, nil, fmt.Errorf("%w: none found; set certificate_key_file", errKey)
	}
	return certs, key, nil
}

// redactUserinfo hides a proxy setting's user and password (everything
// before the last "@" after the scheme), so that a setting the URL parser
// refused can still be shown.
func redactUserinfo(raw string) string {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	scheme := ""
	if i := strings.Index(raw[:at], "://"); i >= 0 {
		scheme = raw[:i+3]
	}
	return scheme + "xxxxx@" + raw[at+1:]
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func looksLikeGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// decodeStrict decodes a JSON object into the struct at dst key by key, so
// that every problem (unknown key, wrong type, bad duration, unreadable
// secret file) is reported against its key. The schema says which keys
// there are: a key it does not list is unknown.
func decodeStrict(raw []byte, dst any, schema []plugin.ConfigField, diags *plugin.Diagnostics) bool {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&obj); err != nil {
		diags.Errorf("", "the configuration is not a JSON object: %s", strings.TrimPrefix(err.Error(), "json: "))
		return false
	}
	if obj == nil {
		diags.Errorf("", "the configuration is not a JSON object")
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		diags.Errorf("", "trailing data after the configuration object")
		return false
	}
	v := reflect.ValueOf(dst).Elem()
	fields := map[string]reflect.Value{}
	for i := 0; i < v.NumField(); i++ {
		if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ","); tag != "" {
			fields[tag] = v.Field(i)
		}
	}
	known := make(map[string]bool, len(schema))
	names := make([]string, 0, len(schema))
	for _, f := range schema {
		known[f.Name] = true
		names = append(names, f.Name)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ok := true
	for _, k := range keys {
		f, field := fields[k]
		if !known[k] || !field {
			diags.Errorf(k, "unknown key (valid keys: %s)", strings.Join(names, ", "))
			ok = false
			continue
		}
		if err := json.Unmarshal(obj[k], f.Addr().Interface()); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				diags.Errorf(k, "want %s, got JSON %s", te.Type, te.Value)
			} else {
				diags.Errorf(k, "%s", strings.TrimPrefix(err.Error(), "json: "))
			}
			ok = false
		}
	}
	return ok
}

// sovereignResources are the Exchange Online and Microsoft Graph hosts of the
// national clouds, whose tokens need that cloud's resource as their scope.
var sovereignResources = map[string]bool{
	"outlook.office365.us":            true, // GCC High
	"outlook-dod.office365.us":        true, // DoD
	"partner.outlook.cn":              true, // operated by 21Vianet
	"graph.microsoft.us":              true,
	"dod-graph.microsoft.us":          true,
	"microsoftgraph.chinacloudapi.cn": true,
}

// scope is the token scope for the configured protocol: the commercial
// cloud's resource, or a national cloud's when imap_host or graph_endpoint
// names one of its hosts.
func (s *settings) scope() string {
	if s.Protocol == "graph" {
		if u, err := url.Parse(s.GraphEndpoint); err == nil && sovereignResources[strings.ToLower(u.Hostname())] {
			return "https://" + strings.ToLower(u.Hostname()) + "/.default"
		}
		return token.ScopeGraph
	}
	if h := strings.ToLower(s.IMAPHost); sovereignResources[h] {
		return "https://" + h + "/.default"
	}
	return token.ScopeIMAP
}

// creatableDir reports why dir could not be a folder: a file in its place,
// or a file where one of its missing parents would go.
func creatableDir(dir string) error {
	p := filepath.Clean(dir)
	for {
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.IsDir():
			return nil
		case err == nil:
			return fmt.Errorf("%s is a file, not a folder", p)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("cannot use %s: %v", p, unwrapPath(err))
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("cannot create %s", dir)
		}
		p = parent
	}
}

// TokenCacheFile is where auth: delegated keeps the signed-in user's tokens
// (MSAL's cache, refresh token included; mode 0600).
func TokenCacheFile(stateDir string) string { return filepath.Join(stateDir, "delegated-tokens.json") }

// delegatedScopes are the user scopes the configuration needs, by resource
// (the app-only ".default" scope of the same resource as the key).
func (s *settings) delegatedScopes() map[string][]string {
	out := map[string][]string{}
	add := func(dflt, name string) {
		res := strings.TrimSuffix(dflt, "/.default")
		out[dflt] = append(out[dflt], res+"/"+name)
	}
	if s.Protocol == "graph" {
		add(s.scope(), "Mail.ReadWrite")
	} else {
		add(s.scope(), "IMAP.AccessAsUser.All")
	}
	switch s.SendVia {
	case "smtp":
		add(s.smtpScope(), "SMTP.Send")
	case "graph":
		add(s.graphSendScope(), "Mail.Send")
	}
	return out
}

// graphSendScope is the Graph resource's scope (a national cloud's when
// graph_endpoint names one).
func (s *settings) graphSendScope() string {
	if u, err := url.Parse(s.GraphEndpoint); err == nil && sovereignResources[strings.ToLower(u.Hostname())] {
		return "https://" + strings.ToLower(u.Hostname()) + "/.default"
	}
	return token.ScopeGraph
}
