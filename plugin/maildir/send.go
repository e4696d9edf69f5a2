package maildir

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/internal/smtpsubmit"
	"github.com/mediagw/mediagw/secret"
)

var _ plugin.Sender = (*Connector)(nil)

// SendConfig is the send: section. Exactly one of SMTP and Outbox is set.
type SendConfig struct {
	// From is the envelope sender when the host gives none.
	From string
	// SMTP is a relay that takes the mail.
	SMTP *SMTPConfig
	// Outbox is a Maildir each message is written into (tmp/ → new/).
	Outbox string
	roots  *x509.CertPool
}

// SMTPConfig is a submission relay.
type SMTPConfig struct {
	Host     string        `json:"host"`
	Port     int           `json:"port"`
	TLS      string        `json:"tls"` // starttls (default), implicit, none
	Username string        `json:"username"`
	Password secret.Secret `json:"password"`
	CAFile   string        `json:"tls_ca_file"`
	Timeout  string        `json:"timeout"`
	timeout  time.Duration
}

const (
	defaultSMTPPort    = 587
	defaultSendTimeout = 2 * time.Minute
)

var sendField = plugin.ConfigField{Name: "send", Type: "object",
	Description: "optional: how the connector sends mail (reports). from: envelope sender; then either smtp: {host, port (587), tls: starttls|implicit|none (starttls), username, password, tls_ca_file, timeout (2m)} or outbox: a Maildir each message is written into"}

// parseSend decodes the send section strictly into diags under "send.".
func parseSend(v json.RawMessage, diags *plugin.Diagnostics) *SendConfig {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(v, &obj); err != nil || obj == nil {
		diags.Errorf("send", "want an object with from and smtp or outbox")
		return nil
	}
	sc := &SendConfig{}
	var keys []string
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		val := obj[k]
		switch k {
		case "from":
			if err := json.Unmarshal(val, &sc.From); err != nil {
				diags.Errorf("send.from", "want a string")
			}
		case "outbox":
			var p string
			if err := json.Unmarshal(val, &p); err != nil || strings.TrimSpace(p) == "" {
				diags.Errorf("send.outbox", "want the path of a Maildir")
				continue
			}
			a, err := filepath.Abs(p)
			if err != nil {
				diags.Errorf("send.outbox", "%v", err)
				continue
			}
			sc.Outbox = a
		case "smtp":
			sc.SMTP = parseSMTP(val, diags)
		default:
			diags.Errorf("send."+k, "unknown key (known: from, smtp, outbox)")
		}
	}
	switch {
	case sc.SMTP != nil && sc.Outbox != "":
		diags.Errorf("send", "give smtp or outbox, not both")
	case sc.SMTP == nil && sc.Outbox == "" && !hasFieldPrefix(*diags, "send."):
		diags.Errorf("send", "give smtp (a relay) or outbox (a Maildir)")
	}
	if sc.From != "" {
		if _, err := mail.ParseAddress(sc.From); err != nil {
			diags.Errorf("send.from", "%q is not a mail address", sc.From)
		}
	} else if sc.SMTP != nil {
		diags.Errorf("send.from", "required with smtp: the envelope sender, e.g. fax@example.com")
	}
	if sc.SMTP != nil && sc.SMTP.CAFile != "" {
		b, err := os.ReadFile(sc.SMTP.CAFile)
		if err != nil {
			diags.Errorf("send.smtp.tls_ca_file", "cannot read: %v", err)
		} else {
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(b) {
				diags.Errorf("send.smtp.tls_ca_file", "no PEM certificate in the file")
			}
			sc.roots = pool
		}
	}
	return sc
}

func hasFieldPrefix(diags plugin.Diagnostics, prefix string) bool {
	for _, d := range diags {
		if strings.HasPrefix(d.Field, prefix) {
			return true
		}
	}
	return false
}

func parseSMTP(v json.RawMessage, diags *plugin.Diagnostics) *SMTPConfig {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(v, &obj); err != nil || obj == nil {
		diags.Errorf("send.smtp", "want an object with host, port, tls, username, password")
		return nil
	}
	s := &SMTPConfig{}
	known := map[string]any{"host": &s.Host, "port": &s.Port, "tls": &s.TLS, "username": &s.Username,
		"password": &s.Password, "tls_ca_file": &s.CAFile, "timeout": &s.Timeout}
	var keys []string
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dst, ok := known[k]
		if !ok {
			diags.Errorf("send.smtp."+k, "unknown key (known: host, port, tls, username, password, tls_ca_file, timeout)")
			continue
		}
		if err := json.Unmarshal(obj[k], dst); err != nil {
			diags.Errorf("send.smtp."+k, "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	if strings.TrimSpace(s.Host) == "" {
		diags.Errorf("send.smtp.host", "required: the relay's host name")
	}
	switch s.TLS {
	case "":
		s.TLS = string(smtpsubmit.StartTLS)
	case string(smtpsubmit.StartTLS), string(smtpsubmit.Implicit), string(smtpsubmit.None):
	default:
		diags.Errorf("send.smtp.tls", "want starttls, implicit or none, got %q", s.TLS)
	}
	if s.Port == 0 {
		s.Port = defaultSMTPPort
		if s.TLS == string(smtpsubmit.Implicit) {
			s.Port = 465
		}
	} else if s.Port < 1 || s.Port > 65535 {
		diags.Errorf("send.smtp.port", "want 1..65535, got %d", s.Port)
	}
	if (s.Username == "") != s.Password.IsZero() {
		diags.Errorf("send.smtp.password", "give username and password together (AUTH PLAIN), or neither")
	}
	s.timeout = defaultSendTimeout
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil || d <= 0 {
			diags.Errorf("send.smtp.timeout", "want a duration such as \"30s\", got %q", s.Timeout)
		} else {
			s.timeout = d
		}
	}
	return s
}

func (c *Connector) sendConfig() (*SendConfig, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Send, c.configured
}

func (sc *SendConfig) options() smtpsubmit.Options {
	s := sc.SMTP
	o := smtpsubmit.Options{
		Addr:      net.JoinHostPort(s.Host, strconv.Itoa(s.Port)),
		TLS:       smtpsubmit.TLSMode(s.TLS),
		TLSConfig: &tls.Config{ServerName: s.Host, RootCAs: sc.roots, MinVersion: tls.VersionTLS12},
	}
	if s.Username != "" {
		user, pass := s.Username, s.Password
		o.Auth = func(context.Context) (sasl.Client, error) { return sasl.NewPlainClient("", user, pass.Reveal()), nil }
	}
	return o
}

func (sc *SendConfig) hints() smtpsubmit.Hints {
	addr := net.JoinHostPort(sc.SMTP.Host, strconv.Itoa(sc.SMTP.Port))
	return smtpsubmit.Hints{
		Credential:  "The relay refused send.smtp.username/password: check them.",
		Permission:  fmt.Sprintf("The relay may not send as %s: check send.from, or allow that sender on the relay.", sc.From),
		Unreachable: fmt.Sprintf("Cannot reach the relay %s: check send.smtp.host/port, DNS and the firewall.", addr),
	}
}

// Send submits m through the configured relay, or writes it into the outbox.
func (c *Connector) Send(ctx context.Context, m *plugin.OutgoingMessage) (plugin.SendResult, error) {
	sc, configured := c.sendConfig()
	if !configured || sc == nil {
		return plugin.SendResult{}, &plugin.SendFailure{Category: plugin.SendNotConfigured, Reason: "no send section", Hint: "add send: with smtp or outbox to the connector's config"}
	}
	if sc.Outbox != "" {
		return writeOutbox(sc.Outbox, m.Raw)
	}
	from := m.From
	if from == "" {
		from = sc.From
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, sc.SMTP.timeout)
		defer cancel()
	}
	o := sc.options()
	id, err := smtpsubmit.Send(ctx, o, from, m.To, m.Raw)
	if err != nil {
		return plugin.SendResult{}, smtpsubmit.Classify(err, o, sc.hints())
	}
	return plugin.SendResult{MessageID: id}, nil
}

// writeOutbox writes raw into the Maildir dir: tmp/ first, fsync'd, then
// renamed into new/, so a reader never sees half a message.
func writeOutbox(dir string, raw []byte) (plugin.SendResult, error) {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return plugin.SendResult{}, &plugin.SendFailure{Category: plugin.SendError, Reason: fmt.Sprintf("maildir: outbox: %v", err), Hint: "check that send.outbox is writable"}
		}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	host = strings.NewReplacer("/", "_", ":", "_").Replace(host)
	name := fmt.Sprintf("%d.%s.%s", time.Now().UnixNano(), hex.EncodeToString(b[:]), host)
	tmp := filepath.Join(dir, "tmp")
	if err := writeFileAtomic(tmp, name, raw); err != nil {
		return plugin.SendResult{}, &plugin.SendFailure{Category: plugin.SendError, Temporary: true, Reason: fmt.Sprintf("maildir: outbox: %v", err), Hint: "check that send.outbox is writable and has space"}
	}
	if err := move(filepath.Join(tmp, name), filepath.Join(dir, "new"), name); err != nil {
		return plugin.SendResult{}, &plugin.SendFailure{Category: plugin.SendError, Temporary: true, Reason: fmt.Sprintf("maildir: outbox: %v", err), Hint: "check that send.outbox is writable"}
	}
	id := name
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil && msg.Header.Get("Message-Id") != "" {
		id = msg.Header.Get("Message-Id")
	}
	return plugin.SendResult{MessageID: id}, nil
}

// testSend checks the send path without sending: AUTH at the relay, or
// that the outbox can be written.
func (c *Connector) testSend(ctx context.Context) *plugin.TestResult {
	sc, configured := c.sendConfig()
	if !configured || sc == nil {
		return nil
	}
	if sc.Outbox != "" {
		for _, sub := range []string{"", "tmp", "new"} {
			d := filepath.Join(sc.Outbox, sub)
			if err := os.MkdirAll(d, 0o750); err != nil {
				return &plugin.TestResult{Category: plugin.TestPermissionDenied, Hint: "make send.outbox writable by the gateway's user", Detail: err.Error()}
			}
			if r := writable(d); r != nil {
				return r
			}
		}
		return &plugin.TestResult{Category: plugin.TestOK, Hint: "Mail will be written to the outbox.", Detail: "outbox " + sc.Outbox + " is writable"}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, sc.SMTP.timeout)
		defer cancel()
	}
	o := sc.options()
	err := smtpsubmit.Probe(ctx, o)
	if err == nil {
		what := "connected"
		if o.Auth != nil {
			what = "logged in as " + sc.SMTP.Username
		}
		return &plugin.TestResult{Category: plugin.TestOK, Hint: "The relay takes our login; no mail was sent.", Detail: fmt.Sprintf("SMTP %s (%s): %s", o.Addr, o.TLS, what)}
	}
	return testResultOf(smtpsubmit.Classify(err, o, sc.hints()))
}

// writable reports (as a test result) why dir cannot be written, or nil.
func writable(dir string) *plugin.TestResult {
	f, err := os.CreateTemp(dir, ".mediagw-test-*")
	if err != nil {
		return &plugin.TestResult{Category: plugin.TestPermissionDenied, Hint: "make " + dir + " writable by the gateway's user", Detail: err.Error()}
	}
	name := f.Name()
	f.Close()
	_ = os.Remove(name)
	return nil
}

// testResultOf turns a send failure into a Test line.
func testResultOf(f *plugin.SendFailure) *plugin.TestResult {
	cat := plugin.TestError
	switch f.Category {
	case plugin.SendInvalidCredential:
		cat = plugin.TestInvalidCredential
	case plugin.SendAuthDisabled:
		cat = plugin.TestSMTPAuthDisabled
	case plugin.SendPermissionDenied:
		cat = plugin.TestPermissionDenied
	case plugin.SendUnreachable, plugin.SendThrottled:
		cat = plugin.TestUnreachable
	}
	return &plugin.TestResult{Category: cat, Hint: f.Hint, Detail: f.Reason}
}
