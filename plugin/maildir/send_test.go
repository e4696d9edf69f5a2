package maildir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/smtpsink"
	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/plugintest"
)

// relaySink is an SMTP relay (go-smtp, STARTTLS, AUTH PLAIN) for the
// conformance suite's send case.
type relaySink struct {
	mu   sync.Mutex
	sink *smtpsink.Sink
}

func (r *relaySink) Enable(t testing.TB, cfg map[string]any) {
	t.Helper()
	addr, caFile := startRelay(t, func(s *smtpsink.Sink) { r.mu.Lock(); r.sink = s; r.mu.Unlock() })
	host, port := splitAddr(t, addr)
	cfg["send"] = map[string]any{"from": "fax@example.test", "smtp": map[string]any{
		"host": host, "port": port, "username": "fax", "password": "s3cret", "tls_ca_file": caFile}}
}

func (r *relaySink) Received(testing.TB) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]byte
	for _, m := range r.sink.Messages() {
		out = append(out, m.Raw)
	}
	return out
}

// outboxSink is an outbox Maildir.
type outboxSink struct{ dir string }

func (o *outboxSink) Enable(t testing.TB, cfg map[string]any) {
	o.dir = filepath.Join(t.TempDir(), "Outbox")
	cfg["send"] = map[string]any{"outbox": o.dir}
}

func (o *outboxSink) Received(t testing.TB) [][]byte {
	var out [][]byte
	for _, sub := range []string{"new", "tmp"} {
		es, _ := os.ReadDir(filepath.Join(o.dir, sub))
		for _, e := range es {
			if sub == "tmp" {
				t.Errorf("outbox tmp/ holds %s after the send returned", e.Name())
				continue
			}
			b, err := os.ReadFile(filepath.Join(o.dir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// startRelay starts a relay that wants STARTTLS and AUTH PLAIN fax/s3cret
// and returns its address and the file of the CA that signed it.
func startRelay(t testing.TB, got func(*smtpsink.Sink)) (string, string) {
	t.Helper()
	srvTLS, _, caPEM, err := smtpsink.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	s, err := smtpsink.Start(smtpsink.Options{TLS: srvTLS, RequireAuth: true, Plain: func(u, p string) error {
		if u == "fax" && p == "s3cret" {
			return nil
		}
		return errors.New("bad password")
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if got != nil {
		got(s)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return s.Addr, caFile
}

func splitAddr(t testing.TB, addr string) (string, int) {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	var port int
	for _, c := range addr[i+1:] {
		port = port*10 + int(c-'0')
	}
	return addr[:i], port
}

func TestConformanceSend(t *testing.T) {
	t.Run("smtp_relay", func(t *testing.T) {
		h := harness(newMaildir)
		h.Sink = &relaySink{}
		plugintest.RunConformance(t, h)
	})
	t.Run("outbox", func(t *testing.T) {
		h := harness(newMaildir)
		h.Sink = &outboxSink{}
		plugintest.RunConformance(t, h)
	})
}

func TestSendConfig(t *testing.T) {
	tests := []struct {
		name  string
		send  any
		field string // "" = accepted
	}{
		{name: "relay", send: map[string]any{"from": "fax@example.test", "smtp": map[string]any{"host": "mail.example.test"}}},
		{name: "outbox", send: map[string]any{"outbox": "out"}},
		{name: "both", send: map[string]any{"from": "a@b.c", "outbox": "out", "smtp": map[string]any{"host": "h"}}, field: "send"},
		{name: "neither", send: map[string]any{"from": "a@b.c"}, field: "send"},
		{name: "not an object", send: "smtp://x", field: "send"},
		{name: "unknown key", send: map[string]any{"outbox": "o", "relay": "x"}, field: "send.relay"},
		{name: "unknown smtp key", send: map[string]any{"from": "a@b.c", "smtp": map[string]any{"host": "h", "starttls": true}}, field: "send.smtp.starttls"},
		{name: "relay without from", send: map[string]any{"smtp": map[string]any{"host": "h"}}, field: "send.from"},
		{name: "bad from", send: map[string]any{"from": "not an address", "outbox": "o"}, field: "send.from"},
		{name: "no host", send: map[string]any{"from": "a@b.c", "smtp": map[string]any{"port": 25}}, field: "send.smtp.host"},
		{name: "bad tls", send: map[string]any{"from": "a@b.c", "smtp": map[string]any{"host": "h", "tls": "maybe"}}, field: "send.smtp.tls"},
		{name: "bad port", send: map[string]any{"from": "a@b.c", "smtp": map[string]any{"host": "h", "port": 70000}}, field: "send.smtp.port"},
		{name: "user without password", send: map[string]any{"from": "a@b.c", "smtp": map[string]any{"host": "h", "username": "u"}}, field: "send.smtp.password"},
		{name: "bad timeout", send: map[string]any{"from": "a@b.c", "smtp": map[string]any{"host": "h", "timeout": "soon"}}, field: "send.smtp.timeout"},
		{name: "missing ca file", send: map[string]any{"from": "a@b.c", "smtp": map[string]any{"host": "h", "tls_ca_file": "/nonexistent/ca.pem"}}, field: "send.smtp.tls_ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newMaildir(t)
			src.extra = map[string]any{"send": tt.send}
			cfg, diags := parseConfig(src.Config(t))
			if tt.field == "" {
				if diags.HasErrors() {
					t.Fatalf("diagnostics %v", diags)
				}
				if cfg.Send == nil {
					t.Fatal("no send config")
				}
				return
			}
			if !hasField(diags, tt.field) || !diags.HasErrors() {
				t.Fatalf("diagnostics %v, want an error on %s", diags, tt.field)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		src := newMaildir(t)
		src.extra = map[string]any{"send": map[string]any{"from": "a@b.c", "smtp": map[string]any{"host": "h"}}}
		cfg, _ := parseConfig(src.Config(t))
		if s := cfg.Send.SMTP; s.Port != 587 || s.TLS != "starttls" || s.timeout != 2*time.Minute {
			t.Errorf("defaults: %+v", s)
		}
		src.extra = map[string]any{"send": map[string]any{"from": "a@b.c", "smtp": map[string]any{"host": "h", "tls": "implicit"}}}
		cfg, _ = parseConfig(src.Config(t))
		if cfg.Send.SMTP.Port != 465 {
			t.Errorf("implicit TLS port %d, want 465", cfg.Send.SMTP.Port)
		}
	})
}

func TestSendNotConfigured(t *testing.T) {
	src := newMaildir(t)
	c := harness(newMaildir).Open(t, src.Config(t))
	if plugin.Sends(t.Context(), c) {
		t.Fatal("a connector without send: advertises send")
	}
	_, err := c.(plugin.Sender).Send(context.Background(), &plugin.OutgoingMessage{To: []string{"a@b.c"}, Raw: []byte("x")})
	var sf *plugin.SendFailure
	if !errors.As(err, &sf) || sf.Category != plugin.SendNotConfigured {
		t.Fatalf("err = %v, want not_configured", err)
	}
	if r := c.Test(context.Background()); r.Send != nil {
		t.Errorf("Test reports a send path: %+v", r.Send)
	}
}

func TestSendTestPath(t *testing.T) {
	addr, caFile := startRelay(t, nil)
	host, port := splitAddr(t, addr)
	closed, _ := startRelay(t, func(s *smtpsink.Sink) { s.Close() })
	chost, cport := splitAddr(t, closed)
	tests := []struct {
		name string
		smtp map[string]any
		want plugin.TestCategory
	}{
		{name: "ok", smtp: map[string]any{"host": host, "port": port, "username": "fax", "password": "s3cret", "tls_ca_file": caFile}, want: plugin.TestOK},
		{name: "wrong password", smtp: map[string]any{"host": host, "port": port, "username": "fax", "password": "nope", "tls_ca_file": caFile}, want: plugin.TestInvalidCredential},
		{name: "untrusted certificate", smtp: map[string]any{"host": host, "port": port, "username": "fax", "password": "s3cret"}, want: plugin.TestUnreachable},
		{name: "relay down", smtp: map[string]any{"host": chost, "port": cport, "username": "fax", "password": "s3cret"}, want: plugin.TestUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newMaildir(t)
			src.extra = map[string]any{"send": map[string]any{"from": "fax@example.test", "smtp": tt.smtp}}
			c := harness(newMaildir).Open(t, src.Config(t))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r := c.Test(ctx)
			if r.Category != plugin.TestOK {
				t.Errorf("read path: %+v", r)
			}
			if r.Send == nil || r.Send.Category != tt.want || r.Send.Hint == "" {
				t.Fatalf("send path: %+v, want %s with a hint", r.Send, tt.want)
			}
			if strings.Contains(r.Send.Detail+r.Send.Hint, "s3cret") {
				t.Error("the password reached the test result")
			}
		})
	}
}
