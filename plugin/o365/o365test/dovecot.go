package o365test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/mediagw/mediagw/internal/smtpsink"
	"github.com/mediagw/mediagw/plugin/o365/xoauth2"
)

// Dovecot is a private Dovecot 2.3 that accepts XOAUTH2/OAUTHBEARER logins
// and validates the bearer tokens locally against an Identity's signing key,
// as Exchange Online does against Entra's.
type Dovecot struct {
	Dir  string
	Addr string // IMAPS 127.0.0.1:port
	// SubmissionAddr is the SMTP submission listener (STARTTLS, AUTH
	// XOAUTH2 against the same oauth2 passdb), when started with Submission.
	SubmissionAddr string
	// Relay is where the submission service relays accepted mail: a go-smtp
	// sink that keeps each message and appends it to every recipient's INBOX.
	Relay    *smtpsink.Sink
	ConfPath string
	CA       *CA
	id       *Identity

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when cmd exits.
	exited chan struct{}
}

// DovecotOptions configures StartDovecot.
type DovecotOptions struct {
	// Dir is where config, mail, keys and logs go (a test's t.TempDir()).
	Dir      string
	Identity *Identity
	// Folders are created (and subscribed) for every user besides INBOX.
	Folders []string
	// Submission adds Dovecot's submission service (dovecot-submissiond),
	// relaying into Relay.
	Submission bool
}

// StartDovecot writes a configuration into opts.Dir and starts dovecot from
// PATH (or /usr/sbin) in the foreground as a child process.
func StartDovecot(opts DovecotOptions) (*Dovecot, error) {
	if opts.Identity == nil || opts.Dir == "" {
		return nil, errors.New("o365test: dovecot needs Dir and Identity")
	}
	d := &Dovecot{Dir: opts.Dir, CA: opts.Identity.CA, id: opts.Identity}
	if opts.Submission {
		relay, err := smtpsink.Start(smtpsink.Options{Deliver: d.deliver})
		if err != nil {
			return nil, err
		}
		d.Relay = relay
	}
	if err := d.writeConfig(opts.Folders); err != nil {
		d.closeRelay()
		return nil, err
	}
	if err := d.Start(); err != nil {
		d.closeRelay()
		return nil, err
	}
	return d, nil
}

// DovecotPath finds the dovecot binary, or "" when it is not installed.
func DovecotPath() string {
	if p, err := exec.LookPath("dovecot"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/dovecot"); err == nil {
		return "/usr/sbin/dovecot"
	}
	return ""
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (d *Dovecot) writeConfig(folders []string) error {
	dir, err := filepath.Abs(d.Dir)
	if err != nil {
		return err
	}
	d.Dir = dir
	for _, sub := range []string{"run", "log", "tls", "mail", "keys/default/RS256"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return fmt.Errorf("o365test: dovecot dir: %w", err)
		}
	}
	uid, gid := os.Getuid(), os.Getgid()
	internalUser := ""
	if uid == 0 {
		// Mail processes never run as root: use an unprivileged uid, and let
		// it reach the mail directory through the test's private temp dirs.
		uid, gid = 5000, 5000
		if err := os.Chown(filepath.Join(dir, "mail"), uid, gid); err != nil {
			return err
		}
		for p := dir; p != filepath.Dir(p) && p != filepath.Clean(os.TempDir()); p = filepath.Dir(p) {
			if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o001 == 0 {
				_ = os.Chmod(p, st.Mode().Perm()|0o011)
			}
		}
	} else {
		u, err := user.Current()
		if err != nil {
			return fmt.Errorf("o365test: current user: %w", err)
		}
		internalUser = u.Username
	}
	certPEM, keyPEM, err := d.CA.Issue()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls/imap.crt"), certPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls/imap.key"), keyPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "keys/default/RS256", d.id.CurrentKeyID()), d.id.PublicKeyPEM(), 0o644); err != nil {
		return err
	}
	oauth := fmt.Sprintf(`introspection_mode = local
local_validation_key_dict = fs:posix:prefix=%s/keys/
username_attribute = email
client_id = https://outlook.office.com
issuers = %s
`, dir, d.id.Issuer())
	if err := os.WriteFile(filepath.Join(dir, "dovecot-oauth2.conf.ext"), []byte(oauth), 0o644); err != nil {
		return err
	}
	imapPort, err := freePort()
	if err != nil {
		return err
	}
	imapsPort, err := freePort()
	if err != nil {
		return err
	}
	d.Addr = fmt.Sprintf("127.0.0.1:%d", imapsPort)
	var b strings.Builder
	protocols := "imap"
	if d.Relay != nil {
		protocols = "imap submission"
	}
	fmt.Fprintf(&b, "protocols = %s\n", protocols)
	fmt.Fprintf(&b, `listen = 127.0.0.1
base_dir = %[1]s/run
state_dir = %[1]s/run/state
log_path = %[1]s/log/dovecot.log
info_log_path = %[1]s/log/dovecot.log
ssl = yes
ssl_cert = <%[1]s/tls/imap.crt
ssl_key = <%[1]s/tls/imap.key
disable_plaintext_auth = no
auth_mechanisms = xoauth2 oauthbearer
auth_failure_delay = 0
auth_verbose = yes
mail_max_userip_connections = 200
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = %[1]s/dovecot-oauth2.conf.ext
}
userdb {
  driver = static
  args = uid=%[2]d gid=%[3]d home=%[1]s/mail/%%u
}
mail_location = maildir:~/Maildir
first_valid_uid = %[2]d
first_valid_gid = %[3]d
namespace inbox {
  inbox = yes
  separator = /
`, dir, uid, gid)
	for _, f := range folders {
		fmt.Fprintf(&b, "  mailbox %q {\n    auto = subscribe\n  }\n", f)
	}
	fmt.Fprintf(&b, `}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = %d
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %d
    ssl = yes
  }
}
service anvil {
  chroot =
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
`, imapPort, imapsPort)
	if d.Relay != nil {
		subPort, err := freePort()
		if err != nil {
			return err
		}
		d.SubmissionAddr = fmt.Sprintf("127.0.0.1:%d", subPort)
		_, relayPort, _ := net.SplitHostPort(d.Relay.Addr)
		fmt.Fprintf(&b, `hostname = localhost
submission_relay_host = 127.0.0.1
submission_relay_port = %s
submission_relay_ssl = no
service submission-login {
  chroot =
  inet_listener submission {
    address = 127.0.0.1
    port = %d
  }
}
`, relayPort, subPort)
	}
	if internalUser != "" {
		fmt.Fprintf(&b, "default_internal_user = %s\ndefault_login_user = %s\n", internalUser, internalUser)
	}
	d.ConfPath = filepath.Join(dir, "dovecot.conf")
	return os.WriteFile(d.ConfPath, []byte(b.String()), 0o644)
}

// Start starts dovecot (again, on the same ports) and waits until it accepts
// connections.
func (d *Dovecot) Start() error {
	bin := DovecotPath()
	if bin == "" {
		return errors.New("o365test: dovecot is not installed")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return errors.New("o365test: dovecot already running")
	}
	cmd := exec.Command(bin, "-F", "-c", d.ConfPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := os.OpenFile(filepath.Join(d.Dir, "log/stderr.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("o365test: start dovecot: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(exited) }()
	d.cmd, d.exited = cmd, exited
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			d.cmd = nil
			b, _ := os.ReadFile(filepath.Join(d.Dir, "log/stderr.log"))
			return fmt.Errorf("o365test: dovecot exited at start: %s", strings.TrimSpace(string(b)))
		default:
		}
		c, err := net.DialTimeout("tcp", d.Addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.stopLocked()
	return errors.New("o365test: dovecot did not open its port in 15s")
}

// Stop stops dovecot and every process it started.
func (d *Dovecot) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopLocked()
}

func (d *Dovecot) stopLocked() error {
	if d.cmd == nil {
		return nil
	}
	pgid := d.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-d.exited
	}
	// Children (imap, auth) leave with the master; give them a moment so
	// the port is free for a restart.
	for i := 0; i < 100; i++ {
		if c, err := net.DialTimeout("tcp", d.Addr, 100*time.Millisecond); err == nil {
			c.Close()
			time.Sleep(20 * time.Millisecond)
			continue
		}
		break
	}
	d.cmd = nil
	return nil
}

// Restart stops and starts dovecot; it also forgets auth failure penalties.
func (d *Dovecot) Restart() error {
	if err := d.Stop(); err != nil {
		return err
	}
	return d.Start()
}

// Close stops dovecot (and the relay sink).
func (d *Dovecot) Close() error {
	err := d.Stop()
	d.closeRelay()
	return err
}

func (d *Dovecot) closeRelay() {
	if d.Relay != nil {
		d.Relay.Close()
	}
}

// deliver is the relay sink's delivery: the message goes into each
// recipient's INBOX (over IMAP, as that user), so a test reads it back as a
// user would.
func (d *Dovecot) deliver(m smtpsink.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, rcpt := range m.To {
		if _, err := d.Append(ctx, rcpt, "INBOX", m.Raw); err != nil {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: err.Error()}
		}
	}
	return nil
}

// SubmissionTLSConfig trusts the harness CA for STARTTLS on SubmissionAddr.
func (d *Dovecot) SubmissionTLSConfig() *tls.Config { return d.TLSConfig() }

// Log returns Dovecot's log so far (reasons for refused tokens are only here).
func (d *Dovecot) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "log/dovecot.log"))
	return string(b)
}

// Kick disconnects user's sessions (doveadm kick).
func (d *Dovecot) Kick(user string) error {
	out, err := exec.Command("doveadm", "-c", d.ConfPath, "kick", user).CombinedOutput()
	if err != nil {
		return fmt.Errorf("o365test: doveadm kick: %w: %s", err, out)
	}
	return nil
}

// TLSConfig trusts the harness CA.
func (d *Dovecot) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: d.CA.Pool, ServerName: "127.0.0.1"}
}

// Dial logs user in over IMAPS with a freshly minted token: a second client
// beside the connector, for APPEND and checks.
func (d *Dovecot) Dial(user string, opts *imapclient.Options) (*imapclient.Client, error) {
	tok, err := d.id.Mint(user, "https://outlook.office.com", time.Hour)
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &imapclient.Options{}
	}
	opts.TLSConfig = d.TLSConfig()
	c, err := imapclient.DialTLS(d.Addr, opts)
	if err != nil {
		return nil, fmt.Errorf("o365test: dial dovecot: %w", err)
	}
	if err := c.Authenticate(xoauth2.New(user, tok)); err != nil {
		c.Close()
		return nil, fmt.Errorf("o365test: authenticate %s: %w", user, err)
	}
	return c, nil
}

// Append stores msgs in user's folder and returns their UIDs.
func (d *Dovecot) Append(ctx context.Context, user, folder string, msgs ...[]byte) ([]imap.UID, error) {
	c, err := d.Dial(user, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	uids := make([]imap.UID, 0, len(msgs))
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return uids, err
		}
		cmd := c.Append(folder, int64(len(m)), nil)
		if _, err := cmd.Write(m); err != nil {
			return uids, err
		}
		if err := cmd.Close(); err != nil {
			return uids, err
		}
		data, err := cmd.Wait()
		if err != nil {
			return uids, fmt.Errorf("o365test: append: %w", err)
		}
		uids = append(uids, data.UID)
	}
	_ = c.Logout().Wait()
	return uids, nil
}

// Read returns every message of user's folder, whole, without marking
// them seen; nil when the folder is empty or not made yet.
func (d *Dovecot) Read(user, folder string) ([][]byte, error) {
	c, err := d.Dial(user, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Code == imap.ResponseCodeNonExistent {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("o365test: select %s of %s: %w", folder, user, err)
	}
	if sel.NumMessages == 0 {
		return nil, nil
	}
	var seq imap.SeqSet
	seq.AddRange(1, 0) // 1:*
	msgs, err := c.Fetch(seq, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		return nil, fmt.Errorf("o365test: fetch %s of %s: %w", folder, user, err)
	}
	var out [][]byte
	for _, m := range msgs {
		for _, b := range m.BodySection {
			out = append(out, b.Bytes)
		}
	}
	return out, nil
}

// Message builds a small RFC 5322 message with a text part and a PDF-named
// attachment; n makes it unique.
func Message(n int) []byte {
	return []byte("From: Sender <sender@example.org>\r\n" +
		"To: fax@example.com\r\n" +
		"Subject: fax " + strconv.Itoa(n) + "\r\n" +
		"Message-ID: <m" + strconv.Itoa(n) + "@example.org>\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n" +
		"\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease fax to +15550100 (" + strconv.Itoa(n) + ")\r\n" +
		"--b\r\nContent-Type: application/pdf; name=\"doc.pdf\"\r\nContent-Disposition: attachment; filename=\"doc.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK\r\n" +
		"--b--\r\n")
}

// Create makes a folder for user (no error when it exists).
func (d *Dovecot) Create(user, folder string) error {
	c, err := d.Dial(user, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	err = c.Create(folder, nil).Wait()
	var ie *imap.Error
	if err != nil && !(errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists) {
		return fmt.Errorf("o365test: create %s: %w", folder, err)
	}
	return nil
}

// InstallKeys replaces the validation keys with the identity's current one.
func (d *Dovecot) InstallKeys() error {
	dir := filepath.Join(d.Dir, "keys/default/RS256")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, d.id.CurrentKeyID()), d.id.PublicKeyPEM(), 0o644)
}
