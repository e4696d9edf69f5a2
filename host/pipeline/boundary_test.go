package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/mediagw/mediagw/internal/backoff"
	"github.com/mediagw/mediagw/plugin"
)

// pluginEnv makes this test binary serve a connector when the test starts it
// as a plugin process.
const pluginEnv = "MEDIAGW_PIPELINE_TEST_PLUGIN"

func TestMain(m *testing.M) {
	switch os.Getenv(pluginEnv) {
	case "refuses-twice":
		plugin.ServeConnector(func(*slog.Logger) plugin.Connector { return newRefusing(2, false, msg("d1", "s1"), msg("d2", "s2")) })
		os.Exit(0)
	case "refuses-acks":
		plugin.ServeConnector(func(*slog.Logger) plugin.Connector { return newRefusing(0, true, msg("d1", "s1"), msg("d2", "s2")) })
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// refusing offers its messages and refuses the first few settlements, as
// a connector does whose IMAP session dropped for a moment, or every ack,
// as one whose processed folder is not writable.
type refusing struct {
	mu         sync.Mutex
	queue      []*plugin.Message
	refuse     int
	refuseAcks bool
	wake       chan struct{}
}

func newRefusing(refuse int, refuseAcks bool, msgs ...*plugin.Message) *refusing {
	return &refusing{queue: msgs, refuse: refuse, refuseAcks: refuseAcks, wake: make(chan struct{})}
}

func (r *refusing) Info(context.Context) (plugin.Info, error) {
	return plugin.Info{Name: "refusing"}, nil
}
func (r *refusing) ConfigSchema(context.Context) ([]plugin.ConfigField, error)    { return nil, nil }
func (r *refusing) Configure(context.Context, []byte) (plugin.Diagnostics, error) { return nil, nil }
func (r *refusing) Test(context.Context) plugin.TestResult                        { return plugin.TestResult{} }
func (r *refusing) Close() error                                                  { return nil }

func (r *refusing) Read(ctx context.Context) (*plugin.Message, error) {
	r.mu.Lock()
	if len(r.queue) > 0 {
		m := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		return m, nil
	}
	r.mu.Unlock()
	select {
	case <-r.wake:
		return nil, plugin.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *refusing) Settle(_ context.Context, id string, s plugin.Settlement) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse > 0 {
		r.refuse--
		return errors.New("imap session lost")
	}
	if r.refuseAcks && s.Kind == plugin.Ack {
		return errors.New("processed folder not writable")
	}
	return nil
}

// startSelfPlugin runs this test binary as a plugin process over go-plugin,
// exactly as the host starts a connector, with the given credit.
func startSelfPlugin(t *testing.T, mode string, maxInFlight int) *plugin.GRPCClient {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), pluginEnv+"="+mode)
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		VersionedPlugins: plugin.HostPlugins(),
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatalf("dispense plugin: %v", err)
	}
	c := raw.(*plugin.GRPCClient)
	c.MaxInFlight = maxInFlight
	t.Cleanup(func() { c.Close() })
	return c
}

// countingSource counts the settlements that went through, by kind.
type countingSource struct {
	*plugin.GRPCClient
	mu      sync.Mutex
	settled map[string]plugin.SettleKind
	refused int
}

func (c *countingSource) Settle(ctx context.Context, id string, s plugin.Settlement) error {
	err := c.GRPCClient.Settle(ctx, id, s)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		c.settled[id] = s.Kind
	case errors.Is(err, plugin.ErrSettleRefused):
		c.refused++
	}
	return err
}

func (c *countingSource) counts() (map[string]plugin.SettleKind, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.settled), c.refused
}

// A running connector that refuses settlements across the real plugin
// boundary, with max_in_flight 1: the second message still comes (it used
// to stall for good: the refusal read as "plugin gone", so the pipeline gave
// up while the plugin kept the delivery's only credit). A passing refusal is
// tried again until it succeeds; an ack refused again and again is handed
// back as retry, which frees the credit.
func TestRefusedSettlementAcrossPluginBoundary(t *testing.T) {
	defer func(p backoff.Policy) { settleRetry = p }(settleRetry)
	settleRetry = backoff.Policy{Min: 10 * time.Millisecond, Max: 40 * time.Millisecond}
	cases := []struct {
		mode        string
		want        map[string]plugin.SettleKind
		wantRefused int
	}{
		{"refuses-twice", map[string]plugin.SettleKind{"d1": plugin.Ack, "d2": plugin.Ack}, 2},
		{"refuses-acks", map[string]plugin.SettleKind{"d1": plugin.Retry, "d2": plugin.Retry}, 2 * settleFallbackAfter},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			src := &countingSource{GRPCClient: startSelfPlugin(t, tc.mode, 1), settled: map[string]plugin.SettleKind{}}
			sp := openSpool(t)
			p := &Pipeline{Connector: "inbox", Mapper: routeTo("fax"), Targets: map[string]Target{"fax": {Driver: &driver{name: "fax"}}},
				Spool: sp, Log: discard(), MaxInFlight: 1}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx, src) }()
			deadline := time.Now().Add(15 * time.Second)
			for {
				settled, refused := src.counts()
				if len(settled) == 2 {
					if !maps.Equal(settled, tc.want) || refused != tc.wantRefused {
						t.Errorf("settled %v after %d refusals, want %v after %d", settled, refused, tc.want, tc.wantRefused)
					}
					break
				}
				if time.Now().After(deadline) {
					cancel()
					t.Fatalf("after 15 s: settled %v, %d refusals: the refused delivery kept the only credit", settled, refused)
				}
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run after cancel = %v, want nil", err)
			}
			if st, _ := sp.Stats(t.Context()); st.Queued["fax"] != 2 {
				t.Errorf("%d jobs spooled, want 2", st.Queued["fax"])
			}
		})
	}
}
