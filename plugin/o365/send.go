package o365

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/internal/smtpsubmit"
	"github.com/mediagw/mediagw/plugin/o365/graphsend"
	"github.com/mediagw/mediagw/plugin/o365/token"
	"github.com/mediagw/mediagw/plugin/o365/xoauth2"
)

var _ plugin.Sender = (*Connector)(nil)

// sender is the configured send path.
type sender interface {
	send(ctx context.Context, m *plugin.OutgoingMessage) (plugin.SendResult, error)
	probe(ctx context.Context) (detail string, err error)
}

// Send submits m as send_as (or m.From) by SMTP or Graph.
func (c *Connector) Send(ctx context.Context, m *plugin.OutgoingMessage) (plugin.SendResult, error) {
	c.mu.Lock()
	snd, s, closed := c.sender, c.s, c.closed
	c.mu.Unlock()
	if closed {
		return plugin.SendResult{}, plugin.ErrClosed
	}
	if snd == nil {
		return plugin.SendResult{}, &plugin.SendFailure{Category: plugin.SendNotConfigured, Reason: "send_via is none (or the connector is not configured)",
			Hint: "set send_via: smtp or graph"}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(s.ConnectTimeout)+2*time.Duration(s.RequestTimeout))
		defer cancel()
	}
	res, err := snd.send(ctx, m)
	if err != nil {
		return res, sendFailure(s, err)
	}
	return res, nil
}

// sendFailure classifies what the token source or the transport said.
func sendFailure(s *settings, err error) error {
	var sf *plugin.SendFailure
	if errors.As(err, &sf) {
		return sf
	}
	var ae *token.AuthError
	switch {
	case errors.As(err, &ae), errors.Is(err, token.ErrLoginRequired):
		r := classify(s, err)
		return &plugin.SendFailure{Category: plugin.SendInvalidCredential, Temporary: ae != nil && ae.Temporary(), Reason: r.Detail, Hint: r.Hint}
	case errors.Is(err, token.ErrUnreachable):
		return &plugin.SendFailure{Category: plugin.SendUnreachable, Temporary: true, Reason: err.Error(),
			Hint: fmt.Sprintf("Cannot reach the identity platform at %s: check DNS, outbound HTTPS (443), the proxy setting and tls_ca_file.", s.AuthorityHost)}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &plugin.SendFailure{Category: plugin.SendUnreachable, Temporary: true, Reason: err.Error(), Hint: "The send timed out or was cancelled; it is tried again."}
	}
	return &plugin.SendFailure{Category: plugin.SendError, Reason: err.Error(), Hint: "Unexpected failure; see the reason."}
}

// smtpSender submits to Exchange Online (smtp.office365.com:587) with
// STARTTLS and AUTH XOAUTH2, the app-only token of the Exchange Online
// resource carrying SMTP.SendAsApp.
type smtpSender struct {
	s      *settings
	opts   smtpsubmit.Options
	tokens tokenSource
}

func newSMTPSender(s *settings, dial dialFunc, tokens tokenSource) *smtpSender {
	ss := &smtpSender{s: s, tokens: tokens}
	ss.opts = smtpsubmit.Options{
		Addr:      net.JoinHostPort(s.SMTPHost, strconv.Itoa(s.SMTPPort)),
		TLS:       smtpsubmit.StartTLS,
		TLSConfig: s.tlsConfig(s.SMTPHost),
		Dial:      dial,
		Auth: func(ctx context.Context) (sasl.Client, error) {
			tok, err := tokens.Token(ctx)
			if err != nil {
				return nil, err
			}
			return xoauth2.NewSMTP(s.SendAs, tok.Value.Reveal()), nil
		},
		Classify: func(stage smtpsubmit.Stage, e *smtp.SMTPError) *plugin.SendFailure {
			return classifyExchange(s, stage, e)
		},
	}
	return ss
}

func (ss *smtpSender) hints() smtpsubmit.Hints {
	return smtpsubmit.Hints{
		Credential:  smtpCredentialHint(ss.s),
		Permission:  smtpPermissionHint(ss.s),
		Unreachable: fmt.Sprintf("Cannot reach the SMTP server %s: check smtp_host/smtp_port, DNS, outbound port %d (often blocked), the proxy setting and tls_ca_file.", ss.opts.Addr, ss.s.SMTPPort),
	}
}

func (ss *smtpSender) send(ctx context.Context, m *plugin.OutgoingMessage) (plugin.SendResult, error) {
	from := m.From
	if from == "" {
		from = ss.s.SendAs
	}
	id, err := smtpsubmit.Send(ctx, ss.opts, from, m.To, m.Raw)
	if err != nil {
		return plugin.SendResult{}, ss.failure(err)
	}
	return plugin.SendResult{MessageID: id}, nil
}

func (ss *smtpSender) probe(ctx context.Context) (string, error) {
	if err := smtpsubmit.Probe(ctx, ss.opts); err != nil {
		return "", ss.failure(err)
	}
	return fmt.Sprintf("SMTP %s: STARTTLS, AUTH XOAUTH2 as %s accepted; no mail sent", ss.opts.Addr, ss.s.SendAs), nil
}

func (ss *smtpSender) failure(err error) error {
	var se *smtpsubmit.Error
	if !errors.As(err, &se) {
		return err // the token source's error
	}
	f := smtpsubmit.Classify(err, ss.opts, ss.hints())
	if f.Category == plugin.SendInvalidCredential {
		ss.tokens.Invalidate() // the next attempt gets a fresh token
	}
	return f
}

// classifyExchange knows Exchange Online's answers.
func classifyExchange(s *settings, stage smtpsubmit.Stage, e *smtp.SMTPError) *plugin.SendFailure {
	reason := fmt.Sprintf("%s:%d refused at %s: %d %d.%d.%d %s", s.SMTPHost, s.SMTPPort, stage, e.Code,
		e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
	switch {
	case stage == smtpsubmit.StageAuth && smtpsubmit.Enhanced(e, 5, 7, 139):
		return &plugin.SendFailure{Category: plugin.SendAuthDisabled, Reason: reason, Hint: authDisabledHint(s)}
	case smtpsubmit.Enhanced(e, 5, 2, 252), smtpsubmit.Enhanced(e, 5, 7, 60), strings.Contains(e.Message, "SendAsDenied"):
		return &plugin.SendFailure{Category: plugin.SendPermissionDenied, Reason: reason, Hint: smtpPermissionHint(s)}
	}
	return nil
}

func authDisabledHint(s *settings) string {
	return fmt.Sprintf("SMTP AUTH is switched off for the mailbox or the tenant: run Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled $false "+
		"(or tenant-wide: Set-TransportConfig -SmtpClientAuthenticationDisabled $false), or set send_via: graph.", s.SendAs)
}

func smtpCredentialHint(s *settings) string {
	return fmt.Sprintf("Exchange Online refused the token for %s: give the app the application permission Office 365 Exchange Online › SMTP.SendAsApp "+
		"with admin consent, register its service principal (New-ServicePrincipal -AppId %s -ObjectId <enterprise app object id>) "+
		"and grant it the mailbox (Add-MailboxPermission -Identity %s -User <service principal id> -AccessRights FullAccess).", s.SendAs, s.ClientID, s.SendAs)
}

func smtpPermissionHint(s *settings) string {
	h := fmt.Sprintf("The app may not send as %s: grant SMTP.SendAsApp (admin consent) and Add-MailboxPermission -Identity %s -User <service principal id> -AccessRights FullAccess", s.SendAs, s.SendAs)
	if !strings.EqualFold(s.SendAs, s.EmailUser) {
		h += fmt.Sprintf("; for an address other than the mailbox also Add-RecipientPermission -Identity %s -Trustee <service principal id> -AccessRights SendAs", s.SendAs)
	}
	return h + "."
}

func graphPermissionHint(s *settings) string {
	return fmt.Sprintf("Microsoft Graph refused to send as %s: give the app the application permission Microsoft Graph › Mail.Send with admin consent, "+
		"and check that an application access policy does not exclude the mailbox (Test-ApplicationAccessPolicy -Identity %s -AppId %s).", s.SendAs, s.SendAs, s.ClientID)
}

// graphSender sends with Graph sendMail (Mail.Send).
type graphSender struct {
	s *settings
	g *graphsend.Sender
}

func (gs *graphSender) send(ctx context.Context, m *plugin.OutgoingMessage) (plugin.SendResult, error) {
	return gs.g.Send(ctx, m.To, m.Raw)
}

func (gs *graphSender) probe(ctx context.Context) (string, error) {
	if err := gs.g.Probe(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("Graph: the token for %s carries Mail.Send; no mail sent (an application access policy shows only at the first send)", gs.s.SendAs), nil
}

// testSend checks the send path without sending mail.
func (c *Connector) testSend(ctx context.Context) *plugin.TestResult {
	c.mu.Lock()
	snd, s := c.sender, c.s
	c.mu.Unlock()
	if snd == nil || s == nil {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(s.ConnectTimeout)+time.Duration(s.RequestTimeout))
		defer cancel()
	}
	detail, err := snd.probe(ctx)
	if err == nil {
		return &plugin.TestResult{Category: plugin.TestOK, Hint: "Reports can be sent.", Detail: detail}
	}
	if r := classify(s, err); r.Category == plugin.TestConsentRequired || r.Category == plugin.TestInteractionRequired {
		return &r // the signed-in user's token, not the send path
	}
	f, ok := sendFailure(s, err).(*plugin.SendFailure)
	if !ok {
		return &plugin.TestResult{Category: plugin.TestError, Detail: err.Error(), Hint: "Unexpected failure; see the detail."}
	}
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
