package plugintest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin"
)

// BuildPlugin builds the plugin main package pkg (an import path or a
// ./relative path as `go build` takes it) into a temporary directory and
// returns the binary's path.
func BuildPlugin(t testing.TB, pkg string) string {
	t.Helper()
	gobin := testenv.LookPath(t, "go")
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command(gobin, "build", "-o", bin, pkg)
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// ProcessWrap returns a Harness.Wrap that runs the suite through the real
// plugin boundary: each connector the factory makes is closed and replaced
// by a connector dispensed from a fresh plugin process started from bin
// (go-plugin, gRPC, AutoMTLS), exactly as the host starts it. Closing the
// returned connector ends the process; processes still running when the
// test ends are killed.
func ProcessWrap(t testing.TB, bin string) func(plugin.Connector) plugin.Connector {
	var (
		mu      sync.Mutex
		clients []*goplugin.Client
	)
	logw := testenv.LogWriter(t)
	t.Cleanup(func() {
		mu.Lock()
		cs := clients
		mu.Unlock()
		for _, c := range cs {
			c.Kill()
		}
	})
	return func(inproc plugin.Connector) plugin.Connector {
		_ = inproc.Close()
		client := goplugin.NewClient(&goplugin.ClientConfig{
			HandshakeConfig:  plugin.Handshake,
			VersionedPlugins: plugin.HostPlugins(),
			Cmd:              exec.Command(bin),
			AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
			AutoMTLS:         true,
			Logger:           hclog.New(&hclog.LoggerOptions{Output: logw, Level: hclog.Warn}),
		})
		mu.Lock()
		clients = append(clients, client)
		mu.Unlock()
		rpc, err := client.Client()
		if err != nil {
			client.Kill()
			t.Fatalf("start plugin %s: %v", bin, err)
		}
		raw, err := rpc.Dispense(plugin.PluginName)
		if err != nil {
			client.Kill()
			t.Fatalf("dispense plugin %s: %v", bin, err)
		}
		c, ok := raw.(plugin.Connector)
		if !ok {
			client.Kill()
			t.Fatalf("plugin %s dispensed %T, not a plugin.Connector", bin, raw)
		}
		return &processConnector{Connector: c, client: client}
	}
}

// processConnector ends its plugin process on Close.
type processConnector struct {
	plugin.Connector
	client *goplugin.Client
	once   sync.Once
}

// Send forwards to the plugin's Send (the gRPC client returns
// plugin.ErrSendUnsupported when the plugin does not send).
func (p *processConnector) Send(ctx context.Context, m *plugin.OutgoingMessage) (plugin.SendResult, error) {
	s, ok := p.Connector.(plugin.Sender)
	if !ok {
		return plugin.SendResult{}, plugin.ErrSendUnsupported
	}
	return s.Send(ctx, m)
}

func (p *processConnector) Close() error {
	err := p.Connector.Close()
	p.once.Do(p.client.Kill)
	return err
}
