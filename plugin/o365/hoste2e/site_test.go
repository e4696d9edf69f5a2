package hoste2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"gopkg.in/yaml.v3"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
)

// binaries builds mediagw and the o365 plugin into one folder (the host
// finds plugins beside its own binary), once per test run.
func binaries(t testing.TB) string {
	t.Helper()
	testenv.LookPath(t, "go")
	return testenv.Binaries(t, "github.com/mediagw/mediagw/cmd/mediagw",
		"github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
}

func TestMain(m *testing.M) { testenv.RunMain(m) }

// peers is the identity stand-in and a Dovecot that checks its tokens.
type peers struct {
	id *o365test.Identity
	dc *o365test.Dovecot
	ca string // CA file for tls_ca_file
}

func startPeers(t testing.TB) *peers {
	t.Helper()
	testenv.LookPath(t, "dovecot")
	testenv.LookPath(t, "doveadm")
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
			t.Log(testenv.Tail(dc.Log(), 30))
		}
	})
	ca, err := id.CA.WriteFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &peers{id: id, dc: dc, ca: ca}
}

// connector is a working o365 connector config for the peers.
func (p *peers) connector(folder, stateDir string) map[string]any {
	host, port, _ := strings.Cut(p.dc.Addr, ":")
	portN, _ := strconv.Atoi(port)
	return map[string]any{
		"email_user":       p.id.Mailbox,
		"tenant_id":        p.id.TenantID,
		"client_id":        p.id.ClientID,
		"client_secret":    p.id.Secret,
		"authority_host":   p.id.Host,
		"imap_host":        host,
		"imap_port":        portN,
		"tls_ca_file":      p.ca,
		"folder":           folder,
		"failed_folder":    folder + "-failed",
		"state_dir":        stateDir,
		"poll_interval":    "1h", // only IDLE can bring new mail
		"connect_timeout":  "30s",
		"request_timeout":  "30s",
		"after_processing": "seen",
		"send_via":         "none",
	}
}

// mapYAML keeps the sender (required: a mail without From is rejected), the
// Message-ID (to count at the driver) and the subject, with the body and the
// PDF attachments as documents.
const mapYAML = `description: o365 host tests
fields:
  - name: sender
    from:
      - source: from.address
    type: email
    required: true
  - name: message_id
    from:
      - source: message_id
    required: true
  - name: subject
    from:
      - source: subject
    default: ""
documents:
  - body: true
  - name: attachments
    types: ["application/pdf"]
routes:
  - drivers: [out]
`

// site is one gateway installation in a temp dir.
type site struct {
	t     testing.TB
	dir   string
	bin   string
	cfg   string
	state string // the connector's state_dir
	env   []string
}

// newSite writes mediagw.yaml for one o365 connector "mailbox" into a
// file driver "out". edit may change the connector config.
func newSite(t testing.TB, p *peers, folder string, log map[string]string, edit func(conn map[string]any)) *site {
	t.Helper()
	s := &site{t: t, dir: t.TempDir(), bin: binaries(t)}
	s.state = filepath.Join(s.dir, "state")
	if err := os.WriteFile(filepath.Join(s.dir, "map.yaml"), []byte(mapYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	conn := p.connector(folder, s.state)
	if edit != nil {
		edit(conn)
	}
	if log == nil {
		log = map[string]string{"level": "info", "format": "text"}
	}
	cfg := map[string]any{
		"spool": map[string]any{"dir": "spool"},
		"log":   log,
		"connectors": map[string]any{"mailbox": map[string]any{
			"plugin": "mediagw-connector-o365", "map": "m", "max_in_flight": 16, "config": conn,
		}},
		"maps":    map[string]any{"m": "map.yaml"},
		"drivers": map[string]any{"out": map[string]any{"type": "file", "options": map[string]any{"dir": "out"}}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.cfg = filepath.Join(s.dir, "mediagw.yaml")
	if err := os.WriteFile(s.cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// gateway is a running `mediagw run`, its stdout and stderr kept apart and whole.
type gateway struct {
	cmd            *exec.Cmd
	mu             sync.Mutex
	stdout, stderr bytes.Buffer
	pids           chan int
	all            []int // every plugin pid seen, under mu
	done           chan struct{}
}

var pidRe = regexp.MustCompile(`plugin started.*?"?pid"?[=:](\d+)`)

type lockedWriter struct {
	g *gateway
	b *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.g.mu.Lock()
	defer w.g.mu.Unlock()
	return w.b.Write(p)
}

func (s *site) start() *gateway {
	s.t.Helper()
	g := &gateway{pids: make(chan int, 16), done: make(chan struct{})}
	g.cmd = exec.Command(filepath.Join(s.bin, "mediagw"), "run", "-c", s.cfg)
	g.cmd.Env = append(os.Environ(), s.env...)
	g.cmd.Stdout = lockedWriter{g, &g.stdout}
	pr, pw := io.Pipe()
	g.cmd.Stderr = io.MultiWriter(lockedWriter{g, &g.stderr}, pw)
	if err := g.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := pidRe.FindStringSubmatch(sc.Text()); m != nil {
				pid, _ := strconv.Atoi(m[1])
				g.mu.Lock()
				g.all = append(g.all, pid)
				g.mu.Unlock()
				g.pids <- pid
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() { _ = g.cmd.Wait(); pw.Close(); close(g.done) }()
	s.t.Cleanup(g.kill)
	return g
}

// output is everything the gateway wrote so far (stdout, then stderr).
func (g *gateway) output() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stdout.String() + g.stderr.String()
}

func (g *gateway) pluginPid(t testing.TB) int {
	t.Helper()
	select {
	case pid := <-g.pids:
		return pid
	case <-time.After(60 * time.Second):
		t.Fatalf("plugin did not start; log:\n%s", testenv.Tail(g.output(), 40))
	}
	return 0
}

func (g *gateway) stop(t testing.TB) {
	t.Helper()
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("gateway did not stop on SIGTERM; log:\n%s", testenv.Tail(g.output(), 40))
	}
}

// kill ends the gateway and any plugin process of it still running.
func (g *gateway) kill() {
	if g.cmd.Process != nil {
		_ = g.cmd.Process.Kill()
	}
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, pid := range g.all {
		// Only while the pid is still our plugin binary.
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(b), "mediagw-connector-o365") {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// record is what the file driver wrote for one email.
type record struct {
	SourceID  string            `json:"source_id"`
	Fields    map[string]string `json:"fields"`
	Documents []struct {
		File      string `json:"file"`
		Name      string `json:"name"`
		MediaType string `json:"media_type"`
		Size      int    `json:"size"`
	} `json:"documents"`
}

// records reads every record.json the file driver finished.
func (s *site) records() []record {
	s.t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.dir, "out/*/record.json"))
	var out []record
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(filepath.Dir(f)), ".") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue // replaced meanwhile by a second attempt
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil {
			s.t.Fatalf("%s: %v", f, err)
		}
		out = append(out, r)
	}
	return out
}

// byMessageID counts the records at the driver per Message-ID.
func (s *site) byMessageID() map[string]int {
	n := map[string]int{}
	for _, r := range s.records() {
		n[r.Fields["message_id"]]++
	}
	return n
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool, log func() string) {
	t.Helper()
	testenv.Eventually(t, timeout, what, cond, log)
}

// serverMessage is one message as the server holds it.
type serverMessage struct {
	MessageID string
	Seen      bool
}

// folder lists a folder's messages on the server, through a second login.
func (p *peers) folder(t testing.TB, name string) []serverMessage {
	t.Helper()
	c, err := p.dc.Dial(p.id.Mailbox, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sel, err := c.Select(name, &imap.SelectOptions{ReadOnly: true}).Wait()
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Code == imap.ResponseCodeNonExistent {
		return nil // not made yet: the connector creates its failed folder on the first rejection
	}
	if err != nil {
		t.Fatalf("select %s: %v", name, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	var seq imap.SeqSet
	seq.AddRange(1, 0)
	msgs, err := c.Fetch(seq, &imap.FetchOptions{Envelope: true, Flags: true}).Collect()
	if err != nil {
		t.Fatalf("fetch %s: %v", name, err)
	}
	out := make([]serverMessage, 0, len(msgs))
	for _, m := range msgs {
		sm := serverMessage{}
		if m.Envelope != nil {
			sm.MessageID = m.Envelope.MessageID
		}
		for _, f := range m.Flags {
			if f == imap.FlagSeen {
				sm.Seen = true
			}
		}
		out = append(out, sm)
	}
	return out
}

func (p *peers) create(t testing.TB, folder string) {
	t.Helper()
	if err := p.dc.Create(p.id.Mailbox, folder); err != nil {
		t.Fatal(err)
	}
}

func (p *peers) append(t testing.TB, folder string, msgs ...[]byte) {
	t.Helper()
	if _, err := p.dc.Append(context.Background(), p.id.Mailbox, folder, msgs...); err != nil {
		t.Fatal(err)
	}
}

// noSender is a mail the map rejects: it has no From.
func noSender(n int) []byte {
	return []byte("To: fax@example.com\r\nSubject: no sender " + strconv.Itoa(n) + "\r\n" +
		"Message-ID: <nosender" + strconv.Itoa(n) + "@example.org>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nWho sent this?\r\n")
}
