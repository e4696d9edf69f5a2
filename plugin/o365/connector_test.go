package o365_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
)

// peers is one identity stand-in and one Dovecot checking its tokens.
type peers struct {
	id     *o365test.Identity
	dc     *o365test.Dovecot
	caFile string
}

func startPeers(t testing.TB) *peers {
	t.Helper()
	testenv.LookPath(t, "dovecot")
	id, err := o365test.StartIdentity(o365test.IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = id.Close() })
	dir := t.TempDir()
	dc, err := o365test.StartDovecot(o365test.DovecotOptions{Dir: filepath.Join(dir, "dovecot"), Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dc.Close()
		if t.Failed() {
			t.Log(dc.Log())
		}
	})
	ca, err := id.CA.WriteFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &peers{id: id, dc: dc, caFile: ca}
}

// config is a working configuration for the peers.
func (p *peers) config(t testing.TB) map[string]any {
	host, port, _ := net.SplitHostPort(p.dc.Addr)
	var portN int
	_ = json.Unmarshal([]byte(port), &portN)
	return map[string]any{
		"email_user":       p.id.Mailbox,
		"tenant_id":        p.id.TenantID,
		"client_id":        p.id.ClientID,
		"client_secret":    p.id.Secret,
		"authority_host":   p.id.Host,
		"imap_host":        host,
		"imap_port":        portN,
		"tls_ca_file":      p.caFile,
		"state_dir":        t.TempDir(),
		"poll_interval":    "1h",
		"connect_timeout":  "30s",
		"request_timeout":  "30s",
		"failed_folder":    "Fax Failed",
		"after_processing": "seen",
		"send_via":         "none", // the send path has its own tests (send_test.go)
	}
}

func logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tw{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tw struct{ t testing.TB }

func (w tw) Write(b []byte) (int, error) { w.t.Log(string(bytes.TrimSpace(b))); return len(b), nil }

func configure(t testing.TB, cfg map[string]any) plugin.Connector {
	t.Helper()
	b, _ := json.Marshal(cfg)
	c := o365.New(logger(t))
	t.Cleanup(func() { _ = c.Close() })
	diags, err := c.Configure(context.Background(), b)
	if err != nil || diags.HasErrors() {
		t.Fatalf("Configure: %v %v", diags, err)
	}
	return c
}

func TestTestCategories(t *testing.T) {
	p := startPeers(t)
	closedPort := func() int {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	cc, err := o365test.NewClientCert(365 * 24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p.id.AddCertificate(cc.Cert)
	certFile := filepath.Join(t.TempDir(), "app.pem")
	os.WriteFile(certFile, append(append([]byte{}, cc.CertPEM...), cc.KeyPEM...), 0o600)
	other, _ := o365test.NewClientCert(365 * 24 * time.Hour)
	otherFile := filepath.Join(t.TempDir(), "other.pem")
	os.WriteFile(otherFile, append(append([]byte{}, other.CertPEM...), other.KeyPEM...), 0o600)

	tests := []struct {
		name    string
		mutate  func(map[string]any)
		fault   o365test.Fault
		want    plugin.TestCategory
		hint    []string
		restart bool // Dovecot slows repeated auth failures: restart after
	}{
		{"ok", nil, o365test.FaultNone, plugin.TestOK, []string{"work"}, false},
		{"ok with certificate", func(c map[string]any) { delete(c, "client_secret"); c["certificate_file"] = certFile }, o365test.FaultNone, plugin.TestOK, nil, false},
		{"secret id instead of value", func(c map[string]any) { c["client_secret"] = p.id.SecretID }, o365test.FaultNone,
			plugin.TestInvalidCredential, []string{"Value", "not its Secret ID"}, false},
		{"expired secret", nil, o365test.FaultExpiredSecret, plugin.TestInvalidCredential, []string{"expired"}, false},
		{"unknown app", func(c map[string]any) { c["client_id"] = "11111111-2222-3333-4444-555555555555" }, o365test.FaultNone,
			plugin.TestInvalidCredential, []string{"client_id", "11111111-2222-3333-4444-555555555555"}, false},
		{"unknown tenant", func(c map[string]any) { c["tenant_id"] = "contoso.onmicrosoft.com" }, o365test.FaultNone,
			plugin.TestInvalidCredential, []string{"tenant_id", "authority_host"}, false},
		{"wrong certificate", func(c map[string]any) { delete(c, "client_secret"); c["certificate_file"] = otherFile }, o365test.FaultNone,
			plugin.TestInvalidCredential, []string{"certificate"}, false},
		{"identity platform 500", nil, o365test.Fault500, plugin.TestUnreachable, []string{"try again"}, false},
		{"identity platform down", func(c map[string]any) { c["authority_host"] = net.JoinHostPort("127.0.0.1", itoa(closedPort())) }, o365test.FaultNone,
			plugin.TestUnreachable, []string{"identity platform"}, false},
		{"identity platform slow", func(c map[string]any) { c["request_timeout"] = "300ms" }, o365test.FaultSlow,
			plugin.TestUnreachable, []string{"identity platform"}, false},
		{"imap port closed", func(c map[string]any) { c["imap_port"] = closedPort() }, o365test.FaultNone,
			plugin.TestUnreachable, []string{"IMAP server", "imap_port"}, false},
		{"certificates untrusted", func(c map[string]any) { c["tls_ca_file"] = "" }, o365test.FaultNone,
			plugin.TestUnreachable, []string{"tls_ca_file"}, false},
		{"token for another mailbox", func(c map[string]any) { c["email_user"] = "boss@example.com" }, o365test.FaultNone,
			plugin.TestPermissionDenied, []string{"New-ServicePrincipal -AppId " + p.id.ClientID, "-ObjectId", "Add-MailboxPermission", "FullAccess",
				"-User <service principal id>", "Test-ApplicationAccessPolicy"}, true},
		{"folder missing", func(c map[string]any) { c["folder"] = "Faxes" }, o365test.FaultNone,
			plugin.TestMailboxNotFound, []string{"Faxes"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := p.config(t)
			if tt.mutate != nil {
				tt.mutate(cfg)
			}
			if tt.fault == o365test.FaultSlow {
				p.id.SetSlow(3 * time.Second)
			} else {
				p.id.SetFault(tt.fault)
			}
			defer p.id.SetFault(o365test.FaultNone)
			c := configure(t, cfg)
			res := c.Test(context.Background())
			t.Logf("%s: %s | %s", res.Category, res.Hint, res.Detail)
			if res.Category != tt.want {
				t.Fatalf("category %s, want %s (%s; %s)", res.Category, tt.want, res.Hint, res.Detail)
			}
			for _, h := range tt.hint {
				if !strings.Contains(res.Hint, h) {
					t.Errorf("hint %q does not mention %q", res.Hint, h)
				}
			}
			if strings.Contains(res.Hint+res.Detail, p.id.Secret) {
				t.Fatal("the secret leaked into the result")
			}
			if strings.Contains(res.Hint, "\n") {
				t.Error("hint is not one line")
			}
			if tt.restart {
				if err := p.dc.Restart(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestCertificateExpiryWarning(t *testing.T) {
	p := startPeers(t)
	cc, err := o365test.NewClientCert(10 * 24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p.id.AddCertificate(cc.Cert)
	certFile := filepath.Join(t.TempDir(), "app.pem")
	os.WriteFile(certFile, append(append([]byte{}, cc.CertPEM...), cc.KeyPEM...), 0o600)
	cfg := p.config(t)
	delete(cfg, "client_secret")
	cfg["certificate_file"] = certFile
	c := configure(t, cfg)
	res := c.Test(context.Background())
	if res.Category != plugin.TestOK || !strings.Contains(res.Hint, "expires on") {
		t.Fatalf("Test: %s %q", res.Category, res.Hint)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := <-c.(plugin.HealthReporter).Health(ctx)
	if !strings.Contains(h.Message, "certificate expires on") {
		t.Fatalf("health %+v does not warn", h)
	}
}
