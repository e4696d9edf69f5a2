package hoste2e_test

import (
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin/o365/o365test"
)

// needles are the strings that must appear nowhere: the client secret, and
// every access token the identity stand-in issued, whole, as the signature
// part alone, and inside the XOAUTH2 string the IMAP login sends.
func needles(p *peers) map[string]string {
	n := map[string]string{"client secret": p.id.Secret}
	for i, tok := range p.id.IssuedTokens() {
		n[fmt.Sprintf("token %d", i)] = tok
		if j := strings.LastIndexByte(tok, '.'); j > 0 {
			n[fmt.Sprintf("token %d signature", i)] = tok[j+1:]
		}
		n[fmt.Sprintf("token %d in XOAUTH2", i)] = base64.StdEncoding.EncodeToString(
			[]byte("user=" + p.id.Mailbox + "\x01auth=Bearer " + tok + "\x01\x01"))
	}
	return n
}

// leaks names the needles found in data.
func leaks(data []byte, needles map[string]string) []string {
	var found []string
	for name, v := range needles {
		if v != "" && strings.Contains(string(data), v) {
			found = append(found, name)
		}
	}
	return found
}

// scanDir scans every byte of every file under dir, except the named ones
// (the config and the secret file, which hold the secret on purpose).
func scanDir(t *testing.T, dir string, needles map[string]string, except ...string) []string {
	t.Helper()
	var found []string
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		for _, e := range except {
			if path == e {
				return nil
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, l := range leaks(b, needles) {
			found = append(found, l+" in "+strings.TrimPrefix(path, dir+"/"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("no files under %s to scan", dir)
	}
	return found
}

// TestSecretsNeverLogged runs the gateway at debug level in both log formats
// with the client secret inline, from env: and from file:, through a
// wrong-secret failure, `mediagw test` (failing and passing), a delivery and
// a rejection, and scans every byte the gateway wrote — its stdout and stderr (which carry
// the plugin's relayed log), the test command's output, the file driver's
// records, the spool, the connector's state with the reject reasons — for the secret and the tokens.
func TestSecretsNeverLogged(t *testing.T) {
	p := startPeers(t)

	t.Run("scanner finds a planted secret", func(t *testing.T) {
		dir := t.TempDir()
		tok, err := p.id.Mint(p.id.Mailbox, "https://outlook.office.com", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]string{"client secret": p.id.Secret, "token": tok}
		line := fmt.Sprintf(`{"level":"debug","msg":"login","secret":%q,"bearer":"%s"}`, p.id.Secret, tok)
		if got := leaks([]byte(line), n); len(got) != 2 {
			t.Fatalf("scanner found %v in a line holding both", got)
		}
		if err := os.MkdirAll(filepath.Join(dir, "spool"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "spool", "db"), []byte("\x00\x01"+tok+"\x00"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := scanDir(t, dir, n); len(got) != 1 {
			t.Fatalf("directory scan found %v, want the planted token", got)
		}
	})

	secretFile := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secretFile, []byte(p.id.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sources := []struct {
		name  string
		value string
		env   []string
	}{
		{"inline", p.id.Secret, nil},
		{"env", "env:MEDIAGW_TEST_O365_SECRET", []string{"MEDIAGW_TEST_O365_SECRET=" + p.id.Secret}},
		{"file", "file:" + secretFile, nil},
	}
	seq := 0
	for _, format := range []string{"text", "json"} {
		for _, src := range sources {
			t.Run(format+"/"+src.name, func(t *testing.T) {
				seq++
				folder := fmt.Sprintf("sec%d", seq)
				p.create(t, folder)
				s := newSite(t, p, folder, map[string]string{"level": "debug", "format": format},
					func(c map[string]any) { c["client_secret"] = src.value })
				s.env = src.env

				// A wrong secret at the identity platform, while running and in a test.
				p.id.SetFault(o365test.FaultWrongSecret)
				g := s.start()
				p.append(t, folder, o365test.Message(1000+seq), noSender(1000+seq))
				waitFor(t, "the wrong-secret failure in the log", 30*time.Second, func() bool {
					return strings.Contains(g.output(), "7000215")
				}, g.output)
				failed, code := mediagwTest(t, s)
				if code == 0 || !strings.Contains(failed, "invalid_credential") {
					t.Fatalf("test with the fault: exit %d\n%s", code, failed)
				}
				p.id.SetFault(o365test.FaultNone)
				passed, code := mediagwTest(t, s)
				if code != 0 {
					t.Fatalf("test after the fault: exit %d\n%s", code, passed)
				}
				// And a delivery, and a rejection with its reason.
				waitFor(t, "the record at the driver and the rejected mail in the failed folder", 60*time.Second, func() bool {
					return len(s.records()) == 1 && len(p.folder(t, folder+"-failed")) == 1
				}, g.output)
				checkReason(t, s, "sender")
				g.stop(t)

				n := needles(p)
				if len(n) < 4 {
					t.Fatalf("no tokens were issued (%d needles)", len(n))
				}
				out := g.output()
				// The plugin's own log lines reach the host's output (relayed
				// from its stderr): the scan covers them.
				if !strings.Contains(out, "mediagw-connector-o365") || !strings.Contains(out, "7000215") {
					t.Errorf("the plugin's relayed log is not in the gateway's output; the scan would prove little:\n%s", out)
				}
				var found []string
				for name, data := range map[string]string{"gateway output": out, "failing test output": failed, "passing test output": passed} {
					for _, l := range leaks([]byte(data), n) {
						found = append(found, l+" in "+name)
					}
				}
				found = append(found, scanDir(t, s.dir, n, s.cfg)...)
				if len(found) > 0 {
					t.Errorf("secrets leaked: %v", found)
				}
				t.Logf("scanned %d bytes of output and the site folder for %d secrets", len(out)+len(failed)+len(passed), len(n))
			})
		}
	}
}
