package smtpsubmit

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mediagw/mediagw/internal/smtpsink"
	"github.com/mediagw/mediagw/plugin"
)

const raw = "From: fax@example.test\r\nTo: a@example.test\r\nSubject: report\r\nMessage-ID: <m1@example.test>\r\n\r\nFax delivered.\r\n"

func TestSend(t *testing.T) {
	srvTLS, pool, _, err := smtpsink.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	plain := func(u, p string) error {
		if u == "fax" && p == "right" {
			return nil
		}
		return errors.New("no")
	}
	refuse := func(code int, ec smtp.EnhancedCode, msg string) func(string, string) error {
		return func(string, string) error { return &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: msg} }
	}
	auth := func(pass string) func(context.Context) (sasl.Client, error) {
		return func(context.Context) (sasl.Client, error) { return sasl.NewPlainClient("", "fax", pass), nil }
	}
	tests := []struct {
		name     string
		sink     smtpsink.Options
		tls      TLSMode
		noTLSCfg bool
		pass     string
		want     plugin.SendCategory
		temp     bool
	}{
		{name: "starttls and auth plain", sink: smtpsink.Options{TLS: srvTLS, Plain: plain}, pass: "right"},
		{name: "no tls when said so", sink: smtpsink.Options{Plain: plain}, tls: None, pass: "right"},
		{name: "wrong password", sink: smtpsink.Options{TLS: srvTLS, Plain: plain}, pass: "wrong", want: plugin.SendInvalidCredential},
		{name: "starttls required but not offered", sink: smtpsink.Options{Plain: plain}, pass: "right", want: plugin.SendError},
		{name: "untrusted certificate", sink: smtpsink.Options{TLS: srvTLS, Plain: plain}, noTLSCfg: true, pass: "right", want: plugin.SendUnreachable},
		{name: "greylisted", sink: smtpsink.Options{TLS: srvTLS, Plain: plain, Mail: refuse(451, smtp.EnhancedCode{4, 7, 1}, "try later")}, pass: "right", want: plugin.SendThrottled, temp: true},
		{name: "recipient refused", sink: smtpsink.Options{TLS: srvTLS, Plain: plain, Rcpt: refuse(550, smtp.EnhancedCode{5, 1, 1}, "no such user")}, pass: "right", want: plugin.SendRecipientRefused},
		{name: "sender refused", sink: smtpsink.Options{TLS: srvTLS, Plain: plain, Mail: refuse(550, smtp.EnhancedCode{5, 7, 1}, "not yours")}, pass: "right", want: plugin.SendPermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink, err := smtpsink.Start(tt.sink)
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			o := Options{Addr: sink.Addr, TLS: tt.tls, TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, Auth: auth(tt.pass)}
			if tt.noTLSCfg {
				o.TLSConfig = &tls.Config{ServerName: "127.0.0.1"}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			id, err := Send(ctx, o, "fax@example.test", []string{"a@example.test"}, []byte(raw))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				msgs := sink.Messages()
				if len(msgs) != 1 || string(msgs[0].Raw) != raw || msgs[0].User != "fax" || msgs[0].From != "fax@example.test" {
					t.Fatalf("sink holds %+v", msgs)
				}
				if id != msgs[0].ID {
					t.Errorf("id %q, want the server's %q", id, msgs[0].ID)
				}
				return
			}
			if err == nil {
				t.Fatal("Send succeeded")
			}
			f := Classify(err, o, Hints{})
			if f.Category != tt.want || f.Temporary != tt.temp {
				t.Errorf("Classify(%v) = %s temporary=%v, want %s temporary=%v", err, f.Category, f.Temporary, tt.want, tt.temp)
			}
			if len(sink.Messages()) != 0 {
				t.Error("a refused send reached the sink")
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	o := Options{Addr: addr, TLS: StartTLS}
	err = Probe(context.Background(), o)
	f := Classify(err, o, Hints{Unreachable: "check the host"})
	if f.Category != plugin.SendUnreachable || !f.Temporary || f.Hint != "check the host" {
		t.Fatalf("Classify(%v) = %+v", err, f)
	}
}

func TestClassifyHook(t *testing.T) {
	sink, err := smtpsink.Start(smtpsink.Options{Plain: func(string, string) error {
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 139}, Message: "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	o := Options{Addr: sink.Addr, TLS: None,
		Auth: func(context.Context) (sasl.Client, error) { return sasl.NewPlainClient("", "u", "p"), nil },
		Classify: func(st Stage, e *smtp.SMTPError) *plugin.SendFailure {
			if st == StageAuth && Enhanced(e, 5, 7, 139) {
				return &plugin.SendFailure{Category: plugin.SendAuthDisabled, Reason: e.Message}
			}
			return nil
		}}
	err = Probe(context.Background(), o)
	if f := Classify(err, o, Hints{}); f.Category != plugin.SendAuthDisabled || !strings.Contains(f.Reason, "SmtpClientAuthentication") {
		t.Fatalf("Classify(%v) = %+v", err, f)
	}
}

func TestMessageID(t *testing.T) {
	tests := []struct{ reply, raw, want string }{
		{"2.6.0 <abc@host.prod.outlook.com> [InternalId=1] Queued mail for delivery", raw, "<abc@host.prod.outlook.com>"},
		{"2.0.0 OK: queued", raw, "<m1@example.test>"},
		{"2.0.0 OK", "Subject: x\r\n\r\n", ""},
	}
	for _, tt := range tests {
		if got := messageID(tt.reply, []byte(tt.raw)); got != tt.want {
			t.Errorf("messageID(%q) = %q, want %q", tt.reply, got, tt.want)
		}
	}
}
