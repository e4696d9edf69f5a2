package demo

import (
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/mediagw/mediagw/internal/demo/oauthimap"
	"github.com/mediagw/mediagw/internal/smtpsink"
)

// SubmissionEvent is one thing the submission stand-in saw.
type SubmissionEvent struct {
	Kind   string // "login", "login-failed", "delivered"
	User   string
	Detail string
}

// StartSubmission starts the demo's SMTP submission stand-in (what
// smtp.office365.com:587 is to a real site): STARTTLS, AUTH XOAUTH2 with a
// token checked exactly as the IMAP stand-in checks it (signature, audience,
// issuer, expiry, mailbox = login), MAIL FROM only as the logged-in
// mailbox (Exchange Online's send-as rule), and every accepted message
// delivered into the recipient's mailbox on the IMAP stand-in.
func StartSubmission(v *oauthimap.Verifier, tlsConf *tls.Config, mailboxes *oauthimap.Server, onEvent func(SubmissionEvent)) (*smtpsink.Sink, error) {
	emit := func(e SubmissionEvent) {
		if onEvent != nil {
			onEvent(e)
		}
	}
	return smtpsink.Start(smtpsink.Options{
		TLS:         tlsConf,
		RequireAuth: true,
		Domain:      "smtp.demo.invalid",
		XOAUTH2: func(user, token string) error {
			if _, err := v.Verify(user, token); err != nil {
				emit(SubmissionEvent{Kind: "login-failed", User: user, Detail: err.Error()})
				return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 3}, Message: "Authentication unsuccessful"}
			}
			emit(SubmissionEvent{Kind: "login", User: user})
			return nil
		},
		Mail: func(user, from string) error {
			if !strings.EqualFold(user, from) {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 60}, Message: "SMTP; Client does not have permissions to send as this sender"}
			}
			return nil
		},
		Deliver: func(m smtpsink.Message) error {
			for _, rcpt := range m.To {
				uid, err := mailboxes.Append(rcpt, "INBOX", m.Raw)
				if err != nil {
					return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: fmt.Sprintf("no mailbox %s here", rcpt)}
				}
				emit(SubmissionEvent{Kind: "delivered", User: rcpt, Detail: fmt.Sprintf("uid %d, %d bytes, from %s", uid, len(m.Raw), m.From)})
			}
			return nil
		},
	})
}
