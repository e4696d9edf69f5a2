// Package o365 is the "O365 OAUTH" email connector: it watches one Microsoft
// 365 mailbox with an app-only token (client secret or certificate) over IMAP
// (XOAUTH2, IDLE) or Microsoft Graph, and offers every email to the host.
package o365

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/graphbox"
	"github.com/mediagw/mediagw/plugin/o365/graphsend"
	"github.com/mediagw/mediagw/plugin/o365/imapbox"
)

// Version of the connector.
const Version = "0.1.0"

// mailbox is what the IMAP and Graph back ends have in common.
type mailbox interface {
	Read(ctx context.Context) (*plugin.Message, error)
	Settle(ctx context.Context, deliveryID string, s plugin.Settlement) error
	Health(ctx context.Context) <-chan plugin.Health
	Close() error
}

// Connector implements plugin.Connector for Microsoft 365 mailboxes.
type Connector struct {
	log *slog.Logger

	mu     sync.Mutex
	s      *settings
	tokens tokenSource
	imap   *imapbox.Mailbox
	graph  *graphbox.Mailbox
	box    mailbox
	sender sender
	closed bool
}

var (
	_ plugin.Connector      = (*Connector)(nil)
	_ plugin.HealthReporter = (*Connector)(nil)
	_ plugin.Factory        = New
)

// New is the plugin.Factory.
func New(logger *slog.Logger) plugin.Connector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Connector{log: logger}
}

// Info names the connector.
func (c *Connector) Info(context.Context) (plugin.Info, error) {
	caps := []string{"imap", "graph", "idle", "test"}
	c.mu.Lock()
	if c.sender != nil {
		caps = append(caps, plugin.CapabilitySend)
	}
	c.mu.Unlock()
	return plugin.Info{
		Name:         "o365",
		Version:      Version,
		Description:  "O365 OAUTH: Microsoft 365 mailbox over IMAP (XOAUTH2, IDLE) or Microsoft Graph with an app-only token",
		Capabilities: caps,
	}, nil
}

// ConfigSchema lists the keys.
func (c *Connector) ConfigSchema(context.Context) ([]plugin.ConfigField, error) {
	return schema(), nil
}

// Configure checks the configuration and prepares (without connecting) the
// token source and the mailbox.
func (c *Connector) Configure(_ context.Context, raw []byte) (plugin.Diagnostics, error) {
	s, diags := decodeConfig(raw)
	if s == nil {
		return diags, nil
	}
	dial, err := newDialer(s.proxyURL)
	if err != nil {
		diags.Errorf("proxy", "%v", err)
		return diags, nil
	}
	httpClient := newHTTPClient(s)
	newTokens, err := tokenFactory(s, httpClient)
	if err != nil {
		return diags, fmt.Errorf("o365: %w", err)
	}
	scope := s.scope()
	tokens, err := newTokens(scope)
	if err != nil {
		return diags, fmt.Errorf("o365: %w", err)
	}
	snd, err := newSender(s, dial, httpClient, scope, tokens, newTokens)
	if err != nil {
		return diags, fmt.Errorf("o365: %w", err)
	}
	if na := tokens.CertificateNotAfter(); !na.IsZero() && time.Until(na) < s.certWarn() {
		c.log.Warn("o365: the app certificate expires soon; upload a new one to the app registration", "not_after", na.Format(time.DateOnly))
	}
	var (
		ib  *imapbox.Mailbox
		gb  *graphbox.Mailbox
		box mailbox
	)
	switch s.Protocol {
	case "graph":
		gb, err = graphbox.New(graphbox.Options{
			Endpoint:        s.graphURL.String(),
			User:            s.EmailUser,
			Folder:          s.Folder,
			HTTPClient:      httpClient,
			Token:           tokens.Token,
			PollInterval:    time.Duration(s.PollInterval),
			AfterProcessing: graphAction(s.after),
			FailedFolder:    s.FailedFolder,
			MaxMessageSize:  s.MaxMessageSize,
			Logger:          c.log,
		})
		box = gb
	default:
		opts := imapbox.Options{
			Addr:            s.imapAddress,
			User:            s.EmailUser,
			Folder:          s.Folder,
			TLSConfig:       s.tlsConfig(s.IMAPHost),
			Dial:            dial,
			Token:           tokens.Token,
			InvalidateToken: tokens.Invalidate,
			Idle:            s.idle,
			PollInterval:    time.Duration(s.PollInterval),
			AfterProcessing: s.after,
			FailedFolder:    s.FailedFolder,
			MaxMessageSize:  s.MaxMessageSize,
			ConnectTimeout:  time.Duration(s.ConnectTimeout),
			Logger:          c.log,
		}
		if s.StateDir != "" {
			opts.StatePath = imapbox.StateFile(s.StateDir, s.EmailUser, s.Folder)
			opts.RejectLogPath = RejectLogPath(s.StateDir)
		}
		ib, err = imapbox.New(opts)
		box = ib
	}
	if err != nil {
		return diags, fmt.Errorf("o365: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = box.Close()
		return diags, plugin.ErrClosed
	}
	if c.box != nil {
		_ = c.box.Close()
	}
	c.s, c.tokens, c.imap, c.graph, c.box, c.sender = s, tokens, ib, gb, box, snd
	return diags, nil
}

// newSender makes the send path of send_via, reusing the reading token
// source when the scopes agree.
func newSender(s *settings, dial dialFunc, hc *http.Client, readScope string, readTokens tokenSource,
	newTokens func(scope string) (tokenSource, error)) (sender, error) {
	tokensFor := func(scope string) (tokenSource, error) {
		if scope == readScope {
			return readTokens, nil
		}
		return newTokens(scope)
	}
	switch s.SendVia {
	case "smtp":
		t, err := tokensFor(s.smtpScope())
		if err != nil {
			return nil, err
		}
		return newSMTPSender(s, dial, t), nil
	case "graph":
		t, err := tokensFor(s.graphSendScope())
		if err != nil {
			return nil, err
		}
		g, err := graphsend.New(graphsend.Options{
			Endpoint:        s.graphURL.String(),
			User:            s.SendAs,
			HTTPClient:      hc,
			Token:           t.Token,
			PermissionHint:  graphPermissionHint(s),
			CredentialHint:  "Microsoft Graph refused the token: check the app registration (tenant_id, client_id, credential).",
			UnreachableHint: fmt.Sprintf("Cannot reach Microsoft Graph at %s: check DNS, outbound HTTPS (443), the proxy setting and tls_ca_file.", s.GraphEndpoint),
		})
		if err != nil {
			return nil, err
		}
		return &graphSender{s: s, g: g}, nil
	}
	return nil, nil
}

// RejectLogPath is where the IMAP back end records reasons for rejected
// messages (IMAP has no place for them on the message).
func RejectLogPath(stateDir string) string { return stateDir + "/rejected.jsonl" }

func (c *Connector) current() (mailbox, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, plugin.ErrClosed
	}
	if c.box == nil {
		return nil, errors.New("o365: not configured")
	}
	return c.box, nil
}

// Read returns the next message.
func (c *Connector) Read(ctx context.Context) (*plugin.Message, error) {
	box, err := c.current()
	if err != nil {
		return nil, err
	}
	return box.Read(ctx)
}

// Settle settles one delivery. After Close it returns plugin.ErrClosed: the
// settlement was not applied, and the message will be offered again.
func (c *Connector) Settle(ctx context.Context, deliveryID string, s plugin.Settlement) error {
	box, err := c.current()
	if err != nil {
		return err
	}
	return box.Settle(ctx, deliveryID, s)
}

// Health forwards the mailbox's health, noting a certificate about to expire.
func (c *Connector) Health(ctx context.Context) <-chan plugin.Health {
	out := make(chan plugin.Health, 1)
	box, err := c.current()
	if err != nil {
		out <- plugin.Health{State: plugin.HealthDown, Message: err.Error(), Time: time.Now()}
		go func() { <-ctx.Done(); close(out) }()
		return out
	}
	c.mu.Lock()
	tokens, s := c.tokens, c.s
	c.mu.Unlock()
	in := box.Health(ctx)
	go func() {
		defer close(out)
		for h := range in {
			if na := tokens.CertificateNotAfter(); !na.IsZero() && time.Until(na) < s.certWarn() {
				h.Message += fmt.Sprintf(" (warning: the app certificate expires on %s)", na.Format(time.DateOnly))
			}
			select {
			case out <- h:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Close stops the mailbox.
func (c *Connector) Close() error {
	c.mu.Lock()
	box := c.box
	c.closed = true
	c.mu.Unlock()
	if box != nil {
		return box.Close()
	}
	return nil
}

func graphAction(a imapbox.Action) graphbox.Action {
	switch a.Kind {
	case imapbox.ActionMove:
		return graphbox.Action{Kind: graphbox.ActionMove, Folder: a.Folder}
	case imapbox.ActionDelete:
		return graphbox.Action{Kind: graphbox.ActionDelete}
	}
	return graphbox.Action{Kind: graphbox.ActionRead}
}

// newHTTPClient is the client for the identity platform and Graph, with the
// proxy and TLS settings.
func newHTTPClient(s *settings) *http.Client {
	return &http.Client{
		Timeout: time.Duration(s.RequestTimeout),
		Transport: &http.Transport{
			Proxy:               proxyFunc(s),
			TLSClientConfig:     s.tlsConfig(""),
			TLSHandshakeTimeout: time.Duration(s.ConnectTimeout),
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 4,
		},
	}
}

// proxyFunc sends HTTPS through the configured proxy (net/http speaks both
// CONNECT and SOCKS5), and nowhere else: the proxy setting is explicit.
func proxyFunc(s *settings) func(*http.Request) (*url.URL, error) {
	if s.proxyURL == nil {
		return nil
	}
	return http.ProxyURL(s.proxyURL)
}
