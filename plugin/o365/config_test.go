package o365

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
)

func goodConfig() map[string]any {
	return map[string]any{
		"email_user":    "fax@contoso.com",
		"tenant_id":     "6f1c3a52-0d2e-4b5a-9c1e-2a7d8b9e0f11",
		"client_id":     "3b9d6e0a-7c41-4f2b-8d5e-1a2b3c4d5e6f",
		"client_secret": "Q~abc.def",
		"state_dir":     "",
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg := goodConfig()
	delete(cfg, "state_dir")
	b, _ := json.Marshal(cfg)
	s, diags := decodeConfig(b)
	if s == nil {
		t.Fatalf("diagnostics %v", diags)
	}
	if s.AuthorityHost != "login.microsoftonline.com" || s.imapAddress != "outlook.office365.com:993" || s.Folder != "INBOX" ||
		!s.idle || s.after.Kind != 1 || s.Protocol != "imap" || s.FailedFolder == "" || time.Duration(s.PollInterval) != time.Minute {
		t.Fatalf("defaults: %+v", s)
	}
	if len(diags) != 1 || diags[0].Field != "state_dir" || diags[0].Severity != plugin.SeverityWarning {
		t.Fatalf("want one warning about state_dir, got %v", diags)
	}
	if strings.Contains(s.ClientSecret.String(), "abc") {
		t.Fatal("secret printed")
	}
	if s.SendVia != "smtp" || s.SendAs != s.EmailUser || s.SMTPHost != "smtp.office365.com" || s.SMTPPort != 587 || s.Auth != "app" {
		t.Fatalf("send defaults: via %s as %s %s:%d auth %s", s.SendVia, s.SendAs, s.SMTPHost, s.SMTPPort, s.Auth)
	}
	cfg["protocol"] = "graph"
	b, _ = json.Marshal(cfg)
	if s, _ := decodeConfig(b); s == nil || s.SendVia != "graph" {
		t.Fatalf("send_via with protocol graph: %+v", s)
	}
}

func TestConfigDiagnostics(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	os.WriteFile(secretFile, []byte("Q~fromfile\n"), 0o600)
	cc, err := o365test.NewClientCert(10 * 24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "app.crt"), filepath.Join(dir, "app.key")
	os.WriteFile(certFile, cc.CertPEM, 0o600)
	os.WriteFile(keyFile, cc.KeyPEM, 0o600)
	both := filepath.Join(dir, "both.pem")
	os.WriteFile(both, append(append([]byte{}, cc.CertPEM...), cc.KeyPEM...), 0o600)
	t.Setenv("O365_TEST_SECRET", "Q~fromenv")

	tests := []struct {
		name   string
		mutate func(map[string]any)
		err    string // field of the expected error, "" for none
		warn   string // field of an expected warning
	}{
		{"good", func(map[string]any) {}, "", ""},
		{"unknown key", func(c map[string]any) { c["imap_hostname"] = "x" }, "imap_hostname", ""},
		{"missing email", func(c map[string]any) { delete(c, "email_user") }, "email_user", ""},
		{"email not an address", func(c map[string]any) { c["email_user"] = "fax" }, "email_user", ""},
		{"missing tenant", func(c map[string]any) { c["tenant_id"] = "" }, "tenant_id", ""},
		{"missing client id", func(c map[string]any) { delete(c, "client_id") }, "client_id", ""},
		{"no credential", func(c map[string]any) { delete(c, "client_secret") }, "client_secret", ""},
		{"two credentials", func(c map[string]any) { c["client_secret_file"] = secretFile }, "client_secret", ""},
		{"secret file", func(c map[string]any) { delete(c, "client_secret"); c["client_secret_file"] = secretFile }, "", ""},
		{"secret file missing", func(c map[string]any) { delete(c, "client_secret"); c["client_secret_file"] = dir + "/nope" }, "client_secret_file", ""},
		{"secret from env", func(c map[string]any) { c["client_secret"] = "env:O365_TEST_SECRET" }, "", ""},
		{"secret env unset", func(c map[string]any) { c["client_secret"] = "env:O365_TEST_UNSET_VAR" }, "client_secret", ""},
		{"secret id pasted", func(c map[string]any) { c["client_secret"] = "8d2f4c1e-5b6a-4e3d-9f10-0123456789ab" }, "", "client_secret"},
		{"secret not a string", func(c map[string]any) { c["client_secret"] = 12 }, "client_secret", ""},
		{"certificate with key file", func(c map[string]any) {
			delete(c, "client_secret")
			c["certificate_file"], c["certificate_key_file"] = certFile, keyFile
		}, "", "certificate_file"}, // expires in 10 days: warned
		{"certificate and key in one file", func(c map[string]any) {
			delete(c, "client_secret")
			c["certificate_file"], c["certificate_expiry_warning"] = both, "24h"
		}, "", ""},
		{"certificate without key", func(c map[string]any) { delete(c, "client_secret"); c["certificate_file"] = certFile }, "certificate_file", ""},
		{"key file unreadable", func(c map[string]any) {
			delete(c, "client_secret")
			c["certificate_file"], c["certificate_key_file"] = certFile, dir+"/nope"
		}, "certificate_key_file", ""},
		{"key without certificate", func(c map[string]any) { c["certificate_key_file"] = keyFile }, "certificate_key_file", ""},
		{"protocol", func(c map[string]any) { c["protocol"] = "pop3" }, "protocol", ""},
		{"graph", func(c map[string]any) { c["protocol"] = "graph" }, "", ""},
		{"port range", func(c map[string]any) { c["imap_port"] = 70000 }, "imap_port", ""},
		{"port type", func(c map[string]any) { c["imap_port"] = "993" }, "imap_port", ""},
		{"poll interval text", func(c map[string]any) { c["poll_interval"] = "soon" }, "poll_interval", ""},
		{"poll interval seconds", func(c map[string]any) { c["poll_interval"] = 30 }, "", ""},
		{"poll interval too short", func(c map[string]any) { c["poll_interval"] = "10ms" }, "poll_interval", ""},
		{"idle type", func(c map[string]any) { c["idle"] = "yes" }, "idle", ""},
		{"after processing", func(c map[string]any) { c["after_processing"] = "archive" }, "after_processing", ""},
		{"after processing move", func(c map[string]any) { c["after_processing"] = "move:Faxed" }, "", ""},
		{"after processing move empty", func(c map[string]any) { c["after_processing"] = "move:" }, "after_processing", ""},
		{"failed folder is the folder", func(c map[string]any) { c["failed_folder"] = "INBOX" }, "failed_folder", ""},
		{"proxy scheme", func(c map[string]any) { c["proxy"] = "ftp://proxy:21" }, "proxy", ""},
		{"proxy password not shown", func(c map[string]any) { c["proxy"] = "fax:Q~pw@proxy:8080" }, "proxy", ""},
		{"proxy password not shown unparsable", func(c map[string]any) { c["proxy"] = "http://fax:Q~pw@prox y:8080" }, "proxy", ""},
		{"proxy socks", func(c map[string]any) { c["proxy"] = "socks5://127.0.0.1:1080" }, "", ""},
		{"authority host with path", func(c map[string]any) { c["authority_host"] = "https://login.microsoftonline.us/tenant" }, "authority_host", ""},
		{"authority host sovereign", func(c map[string]any) { c["authority_host"] = "login.microsoftonline.us" }, "", ""},
		{"graph endpoint", func(c map[string]any) { c["graph_endpoint"] = "graph.microsoft.com" }, "graph_endpoint", ""},
		{"ca file", func(c map[string]any) { c["tls_ca_file"] = keyFile }, "tls_ca_file", ""},
		{"negative size", func(c map[string]any) { c["max_message_size"] = -1 }, "max_message_size", ""},
		{"state dir is a file", func(c map[string]any) { c["state_dir"] = keyFile }, "state_dir", ""},
		{"state dir below a file", func(c map[string]any) { c["state_dir"] = filepath.Join(keyFile, "state") }, "state_dir", ""},
		{"state dir not yet there", func(c map[string]any) { c["state_dir"] = filepath.Join(c["state_dir"].(string), "a", "b") }, "", ""},
		{"send via", func(c map[string]any) { c["send_via"] = "carrier pigeon" }, "send_via", ""},
		{"send via graph", func(c map[string]any) { c["send_via"] = "graph" }, "", ""},
		{"send via none", func(c map[string]any) { c["send_via"] = "none" }, "", ""},
		{"send as not an address", func(c map[string]any) { c["send_as"] = "reports" }, "send_as", ""},
		{"smtp host with port", func(c map[string]any) { c["smtp_host"] = "smtp.office365.com:587" }, "smtp_host", ""},
		{"smtp port range", func(c map[string]any) { c["smtp_port"] = 0x10000 }, "smtp_port", ""},
		{"auth", func(c map[string]any) { c["auth"] = "user" }, "auth", ""},
		{"auth delegated", func(c map[string]any) { c["auth"] = "delegated"; delete(c, "client_secret") }, "", ""},
		{"auth delegated with a secret", func(c map[string]any) { c["auth"] = "delegated" }, "client_secret", ""},
		{"auth delegated without state dir", func(c map[string]any) { c["auth"] = "delegated"; delete(c, "client_secret"); delete(c, "state_dir") }, "state_dir", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := goodConfig()
			cfg["state_dir"] = t.TempDir()
			tt.mutate(cfg)
			b, _ := json.Marshal(cfg)
			c := New(nil)
			diags, err := c.Configure(t.Context(), b)
			if err != nil {
				t.Fatal(err)
			}
			var errField, warnField []string
			for _, d := range diags {
				if d.Severity == plugin.SeverityError {
					errField = append(errField, d.Field)
				} else {
					warnField = append(warnField, d.Field)
				}
				if strings.Contains(d.Message, "Q~") {
					t.Errorf("diagnostic shows a secret: %s", d)
				}
			}
			if tt.err == "" && len(errField) > 0 {
				t.Fatalf("unexpected errors %v", diags)
			}
			if tt.err != "" && (len(errField) == 0 || errField[0] != tt.err) {
				t.Fatalf("errors on %v (%v), want %q", errField, diags, tt.err)
			}
			if tt.warn != "" && !contains(warnField, tt.warn) {
				t.Fatalf("warnings on %v, want %q", warnField, tt.warn)
			}
		})
	}
	for _, bad := range []string{`[]`, `{"email_user":`, `{} {}`, `null`} {
		diags, _ := New(nil).Configure(t.Context(), []byte(bad))
		if !diags.HasErrors() {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func FuzzConfigure(f *testing.F) {
	b, _ := json.Marshal(goodConfig())
	f.Add(b)
	f.Add([]byte(`{"poll_interval":"1h","idle":false,"after_processing":"move:x"}`))
	f.Add([]byte(`{"imap_port":1e99}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, diags := decodeConfig(b)
		if s == nil && !diags.HasErrors() {
			t.Fatal("refused without an error diagnostic")
		}
		if s != nil && diags.HasErrors() {
			t.Fatal("accepted with errors")
		}
	})
}

// Validation (Configure) checks state_dir but leaves the disk as it was.
func TestConfigureCreatesNoStateDir(t *testing.T) {
	cfg := goodConfig()
	dir := filepath.Join(t.TempDir(), "var", "o365")
	cfg["state_dir"] = dir
	b, _ := json.Marshal(cfg)
	if _, err := New(nil).Configure(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !os.IsNotExist(err) {
		t.Fatalf("Configure created %s (%v)", filepath.Dir(dir), err)
	}
}

// A settlement after Close is not applied anywhere, so it must not read as
// done.
func TestSettleAfterClose(t *testing.T) {
	cfg := goodConfig()
	cfg["state_dir"] = t.TempDir()
	b, _ := json.Marshal(cfg)
	c := New(nil)
	if diags, err := c.Configure(t.Context(), b); err != nil || diags.HasErrors() {
		t.Fatalf("Configure: %v %v", diags, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Settle(t.Context(), "1:1:1", plugin.Settlement{Kind: plugin.Ack}); !errors.Is(err, plugin.ErrClosed) {
		t.Fatalf("Settle after Close = %v, want plugin.ErrClosed", err)
	}
}

// The schema drives strict decoding: every key it lists is one the settings
// decode, and every key the settings decode is in the schema (so the docs
// checked against the schema cover all of them).
func TestSchemaMatchesSettings(t *testing.T) {
	inSchema := map[string]bool{}
	for _, f := range schema() {
		inSchema[f.Name] = true
	}
	typ := reflect.TypeOf(Config{})
	inStruct := map[string]bool{}
	for i := range typ.NumField() {
		if tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ","); tag != "" && tag != "-" {
			inStruct[tag] = true
		}
	}
	for k := range inSchema {
		if !inStruct[k] {
			t.Errorf("schema key %s is not decoded", k)
		}
	}
	for k := range inStruct {
		if !inSchema[k] {
			t.Errorf("setting %s is not in the schema (it would be refused as unknown)", k)
		}
	}
}
