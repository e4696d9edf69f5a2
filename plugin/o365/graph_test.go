package o365_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365"
	"github.com/mediagw/mediagw/plugin/o365/graphbox"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/plugintest"
)

type graphPeers struct {
	id     *o365test.Identity
	g      *o365test.Graph
	caFile string
}

func startGraphPeers(t testing.TB) *graphPeers {
	id, err := o365test.StartIdentity(o365test.IdentityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = id.Close() })
	g, err := o365test.StartGraph(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	ca, err := id.CA.WriteFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &graphPeers{id: id, g: g, caFile: ca}
}

func (p *graphPeers) config() map[string]any {
	return map[string]any{
		"protocol":       "graph",
		"email_user":     p.id.Mailbox,
		"tenant_id":      p.id.TenantID,
		"client_id":      p.id.ClientID,
		"client_secret":  p.id.Secret,
		"authority_host": p.id.Host,
		"graph_endpoint": p.g.URL,
		"tls_ca_file":    p.caFile,
		"poll_interval":  "1s",
		"failed_folder":  "Fax Failed",
		"send_via":       "none",
	}
}

type graphSource struct {
	p      *graphPeers
	folder string
	failed string
}

func (s *graphSource) Config(t testing.TB) []byte {
	cfg := s.p.config()
	cfg["folder"], cfg["failed_folder"] = s.folder, s.failed
	b, _ := json.Marshal(cfg)
	return b
}

func (s *graphSource) Inject(t testing.TB, raw []byte) { s.p.g.Deliver(s.folder, raw) }

func (s *graphSource) State(t testing.TB) []plugintest.Stored {
	var out []plugintest.Stored
	for _, m := range s.p.g.Messages() {
		switch m.Folder {
		case s.folder:
			st := plugintest.Stored{Raw: m.Raw, Status: plugintest.Untouched}
			if m.IsRead {
				st.Status = plugintest.Processed
			}
			out = append(out, st)
		case s.failed:
			out = append(out, plugintest.Stored{Raw: m.Raw, Status: plugintest.Rejected, Reason: m.Props[graphbox.ReasonProperty]})
		}
	}
	return out
}

func TestConformanceGraph(t *testing.T) {
	p := startGraphPeers(t)
	var n atomic.Int64
	plugintest.RunConformance(t, plugintest.Harness{
		Factory: o365.New,
		NewSource: func(t testing.TB) plugintest.Source {
			i := n.Add(1)
			s := &graphSource{p: p, folder: fmt.Sprintf("case%d", i), failed: fmt.Sprintf("case%d-failed", i)}
			p.g.CreateFolder(s.folder)
			return s
		},
		BadConfigs: []plugintest.BadConfig{
			{Name: "graph_endpoint", Mutate: func(c map[string]any) { c["graph_endpoint"] = "ftp://graph" }, Field: "graph_endpoint"},
			{Name: "poll_interval", Mutate: func(c map[string]any) { c["poll_interval"] = "0.1s" }, Field: "poll_interval"},
		},
		Quiet:   1500 * time.Millisecond,
		Timeout: 15 * time.Second,
		Logger:  logger(t),
	})
}

func TestTestGraph(t *testing.T) {
	p := startGraphPeers(t)
	tests := []struct {
		name   string
		mutate func(map[string]any)
		want   plugin.TestCategory
		hint   string
	}{
		{"ok", nil, plugin.TestOK, ""},
		{"mailbox not granted", func(c map[string]any) { c["email_user"] = "boss@example.com" }, plugin.TestPermissionDenied, "Mail.ReadWrite"},
		{"folder missing", func(c map[string]any) { c["folder"] = "Faxes" }, plugin.TestMailboxNotFound, "Faxes"},
		{"graph down", func(c map[string]any) { c["graph_endpoint"] = "https://127.0.0.1:1" }, plugin.TestUnreachable, "Graph"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := p.config()
			if tt.mutate != nil {
				tt.mutate(cfg)
			}
			res := configure(t, cfg).Test(context.Background())
			if res.Category != tt.want || !strings.Contains(res.Hint, tt.hint) {
				t.Fatalf("got %s %q (%s), want %s mentioning %q", res.Category, res.Hint, res.Detail, tt.want, tt.hint)
			}
		})
	}
}
