package o365test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin/o365/xoauth2"
)

func TestDovecotChecksTokens(t *testing.T) {
	testenv.LookPath(t, "dovecot")
	id, err := StartIdentity(IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer id.Close()
	d, err := StartDovecot(DovecotOptions{Dir: t.TempDir(), Identity: id, Folders: []string{"Processed"}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	uids, err := d.Append(context.Background(), id.Mailbox, "INBOX", Message(1))
	if err != nil || len(uids) != 1 {
		t.Fatalf("append: %v %v", uids, err)
	}
	other, _ := id.Mint("boss@example.com", "https://outlook.office.com", time.Hour)
	expired, _ := id.Mint(id.Mailbox, "https://outlook.office.com", -time.Minute)
	wrongAud, _ := id.Mint(id.Mailbox, "https://graph.microsoft.com", time.Hour)
	for name, tok := range map[string]string{"other mailbox": other, "expired": expired, "wrong aud": wrongAud} {
		c, err := imapclient.DialTLS(d.Addr, &imapclient.Options{TLSConfig: d.TLSConfig()})
		if err != nil {
			t.Fatal(err)
		}
		sc := xoauth2.New(id.Mailbox, tok)
		err = c.Authenticate(sc)
		c.Close()
		if err == nil || !strings.Contains(err.Error(), "AUTHENTICATIONFAILED") {
			t.Errorf("%s: err = %v, want AUTHENTICATIONFAILED", name, err)
		}
		if sc.LastError == nil || sc.LastError.Status != "401" {
			t.Errorf("%s: challenge %+v", name, sc.LastError)
		}
		// Dovecot slows repeated failures from one IP; a restart forgets.
		if err := d.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Append(context.Background(), id.Mailbox, "Processed", Message(2)); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
