package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"gopkg.in/yaml.v3"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
)

// TestReceiveToDovecot: a received fax routed to a mailbox goes out through
// the real o365 connector and Dovecot's submission service (STARTTLS, AUTH
// XOAUTH2 with the connector's token from the identity stand-in), and is
// read back over IMAP from the recipient's INBOX: its subject, sender,
// Auto-Submitted, and the TIFF holding exactly the pages received.
func TestReceiveToDovecot(t *testing.T) {
	testenv.LookPath(t, "dovecot")
	testenv.LookPath(t, "doveadm")
	bin := testenv.Binaries(t, "github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
	id, err := o365test.StartIdentity(o365test.IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer id.Close()
	dir := t.TempDir()
	dc, err := o365test.StartDovecot(o365test.DovecotOptions{Dir: filepath.Join(dir, "dovecot"), Identity: id, Submission: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Log(testenv.Tail(dc.Log(), 30))
		}
		dc.Close()
	}()
	ca, err := id.CA.WriteFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.Create(id.Mailbox, "Fax"); err != nil {
		t.Fatal(err)
	}
	imapHost, imapPort, _ := net.SplitHostPort(dc.Addr)
	subHost, subPort, _ := net.SplitHostPort(dc.SubmissionAddr)
	port := func(s string) int { n, _ := strconv.Atoi(s); return n }
	cfg := map[string]any{
		"spool": map[string]any{"dir": "var/spool"},
		"connectors": map[string]any{"mailbox": map[string]any{
			"plugin": filepath.Join(bin, "mediagw-connector-o365"), "map": "m",
			"config": map[string]any{
				"email_user": id.Mailbox, "tenant_id": id.TenantID, "client_id": id.ClientID, "client_secret": id.Secret,
				"authority_host": id.Host, "imap_host": imapHost, "imap_port": port(imapPort), "tls_ca_file": ca,
				"folder": "Fax", "failed_folder": "Fax-failed", "state_dir": "var/state", "poll_interval": "1h",
				"send_via": "smtp", "smtp_host": subHost, "smtp_port": port(subPort),
			},
		}},
		"maps": map[string]any{"m": "fax.yaml"},
		"drivers": map[string]any{
			"line": map[string]any{"type": "fakeline", "options": map[string]any{"calls": []any{
				map[string]any{"id": "call-dovecot", "called": "1001", "remote_id": "+1 555 0100 ACME", "pages": 2},
			}}},
			"out": map[string]any{"type": "file", "options": map[string]any{"dir": "var/out"}},
		},
		"inbound": map[string]any{"default": map[string]any{"mail": map[string]any{
			"connector": "mailbox", "from": id.Mailbox, "to": []string{"alice@example.org"}, "attach": []string{"pdf", "tiff"},
		}}},
	}
	b, _ := yaml.Marshal(cfg)
	file := filepath.Join(dir, "mediagw.yaml")
	os.WriteFile(file, b, 0o644)
	os.WriteFile(filepath.Join(dir, "fax.yaml"), []byte(strings.ReplaceAll(reportMap, "drivers: [line]", "drivers: [out]")), 0o644)
	c, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	p, err := Prepare(c, log)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(p, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, p) }()
	defer func() { cancel(); <-done }()

	var raw []byte
	testenv.Eventually(t, 90*time.Second, "the fax in alice's INBOX", func() bool {
		msgs := readInbox(t, dc, "alice@example.org")
		if len(msgs) > 0 {
			raw = msgs[0]
		}
		return raw != nil
	}, func() string { return testenv.Tail(logs.String(), 20) })
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := r.Header.Subject(); s != "Fax from +1 555 0100 ACME, 2 pages" {
		t.Errorf("subject %q", s)
	}
	if from, _ := r.Header.AddressList("From"); len(from) != 1 || from[0].Address != id.Mailbox {
		t.Errorf("From %v, want the gateway's mailbox %s", from, id.Mailbox)
	}
	if v := r.Header.Get("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("Auto-Submitted %q", v)
	}
	var atts []string
	for {
		part, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ah, ok := part.Header.(*gomail.AttachmentHeader); ok {
			name, _ := ah.Filename()
			atts = append(atts, name)
			data, _ := io.ReadAll(part.Body)
			if strings.HasSuffix(name, ".tiff") {
				checkTIFF(t, data, "call-dovecot", 2)
			}
		}
	}
	if fmt.Sprint(atts) != "[fax-call-dovecot.pdf fax-call-dovecot.tiff]" {
		t.Errorf("attachments %v", atts)
	}
}

// readInbox reads every message of user's INBOX over IMAP, whole.
func readInbox(t *testing.T, dc *o365test.Dovecot, user string) [][]byte {
	t.Helper()
	msgs, err := dc.Read(user, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}
