package o365_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/plugintest"
)

// pluginProc is the connector in its own process, as the host runs it.
type pluginProc struct {
	plugin.Connector
	client *goplugin.Client
	pid    int
}

func startPlugin(t testing.TB, bin string, cfg map[string]any) *pluginProc {
	t.Helper()
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		VersionedPlugins: plugin.HostPlugins(),
		Cmd:              exec.Command(bin),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.New(&hclog.LoggerOptions{Output: tw{t}, Level: hclog.Info}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	c := raw.(plugin.Connector)
	b, _ := json.Marshal(cfg)
	diags, err := c.Configure(context.Background(), b)
	if err != nil || diags.HasErrors() {
		t.Fatalf("Configure: %v %v", diags, err)
	}
	return &pluginProc{Connector: c, client: client, pid: client.ReattachConfig().Pid}
}

// TestEndToEnd pushes 1,000 messages through the plugin binary while the
// peers fail in every way the issue names, and checks that each message is
// acked exactly once and ends \Seen.
func TestEndToEnd(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "doveadm")
	p := startPeers(t)
	bin := plugintest.BuildPlugin(t, "github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
	// Tokens live 4 s: every connection needs a fresh one, and those of
	// earlier sessions expire during the run.
	p.id.SetTokenLifetime(4 * time.Second)
	const total, early = 1000, 600
	var all [][]byte
	for i := range total {
		all = append(all, o365test.Message(i))
	}
	if _, err := p.dc.Append(context.Background(), p.id.Mailbox, "INBOX", all[:early]...); err != nil {
		t.Fatal(err)
	}
	cfg := p.config(t)
	proc := startPlugin(t, bin, cfg)

	var (
		acked     = map[string]int{}
		unacked   = map[string]bool{} // read, then the plugin was killed
		reoffered = 0
		appendWG  sync.WaitGroup
		step      = 0
		start     = time.Now()
	)
	read := func() *plugin.Message {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		m, err := proc.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %d acks: %v", len(acked), err)
		}
		return m
	}
	ack := func(m *plugin.Message) {
		if err := proc.Settle(context.Background(), m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
			t.Fatalf("Settle: %v", err)
		}
		acked[m.SourceID]++
	}
	for len(acked) < total {
		m := read()
		if unacked[m.SourceID] {
			reoffered++
			delete(unacked, m.SourceID)
		}
		if acked[m.SourceID] > 0 {
			t.Fatalf("%s offered again after its ack", m.SourceID)
		}
		ack(m)
		switch {
		case step == 0 && len(acked) == 100:
			step++
			// The rest arrive while the connector runs (IDLE push).
			appendWG.Add(1)
			go func() {
				defer appendWG.Done()
				for i := early; i < total; i += 50 {
					if _, err := p.dc.Append(context.Background(), p.id.Mailbox, "INBOX", all[i:i+50]...); err != nil {
						t.Errorf("append: %v", err)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
		case step == 1 && len(acked) == 200:
			step++
			appendWG.Wait() // the test's own appender does not reconnect
			t.Log("fault: Dovecot stopped and restarted")
			if err := p.dc.Stop(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			if err := p.dc.Start(); err != nil {
				t.Fatal(err)
			}
		case step == 2 && len(acked) == 350:
			step++
			t.Log("fault: the session's token expires, then the server ends the session")
			issued := p.id.TokensIssued()
			time.Sleep(4 * time.Second)
			if err := p.dc.Kick(p.id.Mailbox); err != nil {
				t.Fatal(err)
			}
			// Messages fetched before the kick may still come first: read on
			// until the new session has logged in with a fresh token.
			deadline := time.Now().Add(30 * time.Second)
			for p.id.TokensIssued() <= issued {
				if time.Now().After(deadline) {
					t.Fatal("no fresh token after the session ended")
				}
				ack(read())
			}
		case step == 3 && len(acked) == 500:
			step++
			t.Log("fault: identity platform failing while the session is lost")
			p.id.SetFault(o365test.Fault500)
			if err := p.dc.Kick(p.id.Mailbox); err != nil {
				t.Fatal(err)
			}
			time.AfterFunc(1500*time.Millisecond, func() { p.id.SetFault(o365test.FaultNone) })
		case step == 4 && len(acked) == 700:
			step++
			t.Log("fault: plugin killed with unacked messages")
			for range 10 { // the plugin boundary allows 16 in flight
				m := read()
				unacked[m.SourceID] = true
			}
			if err := syscall.Kill(proc.pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			proc.client.Kill()
			proc = startPlugin(t, bin, cfg)
		}
	}
	appendWG.Wait()
	if step != 5 {
		t.Fatalf("only %d fault steps ran", step)
	}
	if reoffered != 10 || len(unacked) != 0 {
		t.Fatalf("after the kill %d unacked messages came again, %d did not", reoffered, len(unacked))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if m, err := proc.Read(ctx); err == nil {
		t.Fatalf("message %s offered after all were acked", m.SourceID)
	}
	// The server agrees: 1,000 messages, all \Seen.
	c, err := p.dc.Dial(p.id.Mailbox, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	unseen, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != total || len(unseen.AllUIDs()) != 0 {
		t.Fatalf("INBOX: %d messages, %d unseen; want %d, 0", sel.NumMessages, len(unseen.AllUIDs()), total)
	}
	t.Logf("1,000 messages with 4 faults in %v; %d tokens issued", time.Since(start).Round(time.Millisecond), p.id.TokensIssued())
}
