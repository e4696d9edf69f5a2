package token_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/o365/token"
)

const imapScope = "https://outlook.office365.com/IMAP.AccessAsUser.All"

func delegated(t *testing.T, id *o365test.Identity, cacheFile string) *token.Delegated {
	t.Helper()
	d, err := token.NewDelegated(token.DelegatedConfig{
		AuthorityHost: id.Host, TenantID: id.TenantID, ClientID: id.ClientID, CacheFile: cacheFile, HTTPClient: id.CA.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDeviceCodeLogin(t *testing.T) {
	id, err := o365test.StartIdentity(o365test.IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer id.Close()
	tests := []struct {
		name    string
		answers []string
		code    string // OAuth error of the failure, "" = signed in
	}{
		{"approved after pending and slow_down", []string{o365test.DevicePending, o365test.DeviceSlowDown, o365test.DevicePending}, ""},
		{"code expired", []string{o365test.DevicePending, o365test.DeviceExpired}, "expired_token"},
		{"user declined", []string{o365test.DeviceDenied}, "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id.SetDeviceAnswers(tt.answers...)
			cacheFile := filepath.Join(t.TempDir(), "state", "tokens.json")
			d := delegated(t, id, cacheFile)
			var shown string
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			user, err := d.Login(ctx, []string{imapScope}, func(m string) { shown = m })
			if !strings.Contains(shown, "/devicelogin") || !strings.Contains(shown, "enter the code") {
				t.Errorf("message shown: %q", shown)
			}
			if tt.code != "" {
				var ae *token.AuthError
				if !errors.As(err, &ae) || ae.Code != tt.code {
					t.Fatalf("Login: %v, want %s", err, tt.code)
				}
				if _, err := d.For(imapScope).Token(ctx); !errors.Is(err, token.ErrLoginRequired) {
					t.Errorf("Token after a failed login: %v, want ErrLoginRequired", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if user != id.Mailbox {
				t.Errorf("signed in as %q", user)
			}
			st, err := os.Stat(cacheFile)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("cache file mode %v, want 0600", st.Mode().Perm())
			}
			// A new process (a new client on the same file) gets tokens
			// silently, for another resource too.
			d2 := delegated(t, id, cacheFile)
			tok, err := d2.For(imapScope).Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if email, _, err := id.Verify(tok.Value.Reveal(), "https://outlook.office.com"); err != nil || email != id.Mailbox {
				t.Errorf("token for %q: %v", email, err)
			}
			if _, err := d2.For("https://graph.microsoft.com/Mail.Send").Token(ctx); err != nil {
				t.Errorf("Graph token by refresh: %v", err)
			}
		})
	}
}

func TestRefreshRefused(t *testing.T) {
	id, err := o365test.StartIdentity(o365test.IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer id.Close()
	id.SetTokenLifetime(time.Second) // the cached access token is too old at once: every Token refreshes
	cacheFile := filepath.Join(t.TempDir(), "tokens.json")
	d := delegated(t, id, cacheFile)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := d.Login(ctx, []string{imapScope}, func(string) {}); err != nil {
		t.Fatal(err)
	}
	for _, code := range []int{700082, 65001, 50076} {
		id.SetRefreshFault(code)
		_, err := delegated(t, id, cacheFile).For(imapScope).Token(ctx)
		var ae *token.AuthError
		if !errors.As(err, &ae) || ae.AADSTS != code {
			t.Errorf("refresh with fault %d: %v", code, err)
		}
	}
	id.SetRefreshFault(0)
	if _, err := delegated(t, id, cacheFile).For(imapScope).Token(ctx); err != nil {
		t.Errorf("refresh after healing: %v", err)
	}
}
