package o365test

import (
	"errors"
	"strings"
	"sync"

	"github.com/emersion/go-smtp"

	"github.com/mediagw/mediagw/internal/smtpsink"
)

// ExchangeSMTP imitates Exchange Online's SMTP submission answers that
// Dovecot cannot give: SMTP AUTH switched off (535 5.7.139) and send-as
// refusals (550 5.7.60 at MAIL FROM, 554 5.2.252 SendAsDenied after DATA).
// It speaks STARTTLS with the harness CA and checks XOAUTH2 tokens from an
// Identity (aud https://outlook.office.com, email claim = login).
type ExchangeSMTP struct {
	Addr string
	sink *smtpsink.Sink

	mu           sync.Mutex
	authDisabled bool
	sendAsDenied bool
}

// StartExchangeSMTP starts the stand-in on a free 127.0.0.1 port.
func StartExchangeSMTP(id *Identity) (*ExchangeSMTP, error) {
	tlsConf, err := id.CA.ServerTLS()
	if err != nil {
		return nil, err
	}
	x := &ExchangeSMTP{}
	sink, err := smtpsink.Start(smtpsink.Options{
		TLS:         tlsConf,
		RequireAuth: true,
		Domain:      "SN4PR0201CA0001.outlook.office365.com",
		XOAUTH2: func(user, tok string) error {
			x.mu.Lock()
			disabled := x.authDisabled
			x.mu.Unlock()
			if disabled {
				return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 139},
					Message: "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."}
			}
			email, _, err := id.Verify(tok, "https://outlook.office.com")
			if err != nil || !strings.EqualFold(email, user) {
				return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 3}, Message: "Authentication unsuccessful"}
			}
			return nil
		},
		Mail: func(user, from string) error {
			if !strings.EqualFold(user, from) {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 60},
					Message: "SMTP; Client does not have permissions to send as this sender"}
			}
			return nil
		},
		Deliver: func(m smtpsink.Message) error {
			x.mu.Lock()
			denied := x.sendAsDenied
			x.mu.Unlock()
			if denied {
				return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 2, 252},
					Message: "SendAsDenied; " + m.User + " not allowed to send as " + m.From + "; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied"}
			}
			return errors.New("o365test: the Exchange stand-in keeps no mail")
		},
	})
	if err != nil {
		return nil, err
	}
	x.sink, x.Addr = sink, sink.Addr
	return x, nil
}

// SetAuthDisabled makes every AUTH fail with 535 5.7.139.
func (x *ExchangeSMTP) SetAuthDisabled(v bool) { x.mu.Lock(); x.authDisabled = v; x.mu.Unlock() }

// SetSendAsDenied makes every DATA fail with 554 5.2.252 SendAsDenied.
func (x *ExchangeSMTP) SetSendAsDenied(v bool) { x.mu.Lock(); x.sendAsDenied = v; x.mu.Unlock() }

// Close stops the stand-in.
func (x *ExchangeSMTP) Close() error { return x.sink.Close() }
