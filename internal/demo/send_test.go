package demo

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	demofiles "github.com/mediagw/mediagw/examples/demo"
	"github.com/mediagw/mediagw/internal/demo/oauthimap"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/plugintest"
)

// TestSendThroughDemoRig sends a report through the demo's o365 plugin (the
// real binary, with the connector settings of the demo's mediagw.yaml) to
// the demo's submission stand-in and finds it in the sender's demo mailbox.
func TestSendThroughDemoRig(t *testing.T) {
	testenv.Short(t)
	samples, err := Samples()
	if err != nil {
		t.Fatal(err)
	}
	id, err := o365test.StartIdentity(o365test.IdentityOptions{Mailbox: "fax@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer id.Close()
	tlsConf, err := id.CA.ServerTLS()
	if err != nil {
		t.Fatal(err)
	}
	senders := Senders(samples)
	if len(senders) != 4 {
		t.Fatalf("senders %v", senders)
	}
	box, err := oauthimap.Start(oauthimap.Options{Verifier: oauthimap.VerifierFor(id), TLS: tlsConf, Users: append([]string{id.Mailbox}, senders...)})
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	var (
		mu     sync.Mutex
		events []SubmissionEvent
	)
	sub, err := StartSubmission(oauthimap.VerifierFor(id), tlsConf, box, func(e SubmissionEvent) { mu.Lock(); events = append(events, e); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	cfg := demoConnectorConfig(t)
	dir := t.TempDir()
	ca, err := id.CA.WriteFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	smtpHost, smtpPort, _ := strings.Cut(sub.Addr, ":")
	for k, v := range map[string]any{
		"authority_host": id.Host, "imap_host": box.Host, "imap_port": box.Port, "smtp_host": smtpHost, "smtp_port": atoi(t, smtpPort),
		"tls_ca_file": ca, "state_dir": filepath.Join(dir, "state"), "client_secret": id.Secret,
	} {
		cfg[k] = v
	}
	delete(cfg, "client_secret_file")
	if cfg["send_via"] != "smtp" {
		t.Fatalf("the demo config sends via %v, want smtp", cfg["send_via"])
	}
	bin := plugintest.BuildPlugin(t, "github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
	c := plugintest.ProcessWrap(t, bin)(o365.New(nil))
	defer c.Close()
	b, _ := json.Marshal(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if diags, err := c.Configure(ctx, b); err != nil || diags.HasErrors() {
		t.Fatalf("Configure: %v %v", diags, err)
	}
	if !plugin.Sends(t.Context(), c) {
		t.Fatal("the demo connector does not advertise send")
	}
	r := c.Test(ctx)
	if r.Category != plugin.TestOK || r.Send == nil || r.Send.Category != plugin.TestOK {
		t.Fatalf("Test: %+v send %+v", r, r.Send)
	}
	to := senders[0]
	raw := []byte("From: Fax Gateway <fax@example.com>\r\nTo: " + to + "\r\nSubject: Your fax was delivered\r\n" +
		"Message-ID: <demo-report-1@mediagw>\r\nAuto-Submitted: auto-replied\r\n\r\n2 pages to +1 555 0100.\r\n")
	if _, err := c.(plugin.Sender).Send(ctx, &plugin.OutgoingMessage{To: []string{to}, Raw: raw}); err != nil {
		t.Fatal(err)
	}
	n, unseen, err := box.Status(to, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || unseen != 1 {
		t.Fatalf("%s's INBOX holds %d messages (%d unseen), want the report", to, n, unseen)
	}
	mu.Lock()
	defer mu.Unlock()
	kinds := []string{}
	for _, e := range events {
		kinds = append(kinds, e.Kind+" "+e.User)
	}
	if strings.Join(kinds, ", ") != "login fax@example.com, login fax@example.com, delivered "+to {
		t.Errorf("submission events %v (Test logs in, then the send)", kinds)
	}
}

// demoConnectorConfig is the o365 connector's config in the demo's mediagw.yaml.
func demoConnectorConfig(t *testing.T) map[string]any {
	b, err := demofiles.FS.ReadFile("mediagw.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Connectors map[string]struct {
			Config map[string]any `yaml:"config"`
		} `yaml:"connectors"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	c, ok := doc.Connectors["fax-mailbox"]
	if !ok {
		t.Fatal("the demo config has no connector fax-mailbox")
	}
	return c.Config
}

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
