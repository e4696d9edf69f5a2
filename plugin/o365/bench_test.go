package o365_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/plugintest"
)

func reportLatency(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	q := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.95), "p95-ms")
	b.ReportMetric(0, "ns/op")
}

// appender keeps one logged-in connection for APPEND.
func appender(b *testing.B, p *peers, folder string) *imapclient.Client {
	c, err := p.dc.Dial(p.id.Mailbox, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func appendOne(b *testing.B, c *imapclient.Client, folder string, raw []byte) {
	cmd := c.Append(folder, int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		b.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPushLatency: from the start of an APPEND on another connection to
// the message in hand, with IDLE. "dovecot-idle" is a bare go-imap client
// waiting for the EXISTS notification (the floor); "connector" and
// "connector-plugin" go through the connector's Read, in process and through
// the plugin binary.
func BenchmarkPushLatency(b *testing.B) {
	p := startPeers(b)
	bin := plugintest.BuildPlugin(b, "github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
	seq := 0
	b.Run("dovecot-idle", func(b *testing.B) {
		folder := fmt.Sprintf("lat%d", seq)
		seq++
		if err := p.dc.Create(p.id.Mailbox, folder); err != nil {
			b.Fatal(err)
		}
		exists := make(chan uint32, 16)
		c, err := p.dc.Dial(p.id.Mailbox, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists <- *d.NumMessages
				}
			},
		}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Select(folder, nil).Wait(); err != nil {
			b.Fatal(err)
		}
		app := appender(b, p, folder)
		idle, err := c.Idle()
		if err != nil {
			b.Fatal(err)
		}
		var ds []time.Duration
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			appendOne(b, app, folder, o365test.Message(i))
			select {
			case <-exists:
			case <-time.After(10 * time.Second):
				b.Fatal("no EXISTS")
			}
			ds = append(ds, time.Since(start))
		}
		b.StopTimer()
		_ = idle.Close()
		reportLatency(b, ds)
	})
	for _, mode := range []string{"connector", "connector-plugin"} {
		b.Run(mode, func(b *testing.B) {
			folder := fmt.Sprintf("lat%d", seq)
			seq++
			if err := p.dc.Create(p.id.Mailbox, folder); err != nil {
				b.Fatal(err)
			}
			cfg := p.config(b)
			cfg["folder"] = folder
			var c plugin.Connector
			if mode == "connector" {
				c = configure(b, cfg)
			} else {
				c = startPlugin(b, bin, cfg)
			}
			app := appender(b, p, folder)
			var ds []time.Duration
			// Warm up: the first Read connects.
			appendOne(b, app, folder, o365test.Message(-1))
			m, err := c.Read(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			_ = c.Settle(context.Background(), m.DeliveryID, plugin.Settlement{Kind: plugin.Ack})
			time.Sleep(50 * time.Millisecond) // let the connector settle into IDLE
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				appendOne(b, app, folder, o365test.Message(i))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				m, err := c.Read(ctx)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
				b.StopTimer()
				if err := c.Settle(context.Background(), m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
					b.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond) // back in IDLE
				b.StartTimer()
			}
			b.StopTimer()
			reportLatency(b, ds)
		})
	}
}

// BenchmarkThroughput: messages read and marked \Seen per second. "bare" is
// a plain go-imap loop (UID SEARCH UNSEEN, then per message UID FETCH
// BODY.PEEK[] and UID STORE +FLAGS \Seen) on the same Dovecot.
func BenchmarkThroughput(b *testing.B) {
	p := startPeers(b)
	bin := plugintest.BuildPlugin(b, "github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
	const size = 4 << 10
	b.Run("bare-go-imap", func(b *testing.B) {
		folder := "tp-bare"
		if err := p.dc.Create(p.id.Mailbox, folder); err != nil {
			b.Fatal(err)
		}
		app := appender(b, p, folder)
		c, err := p.dc.Dial(p.id.Mailbox, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Select(folder, nil).Wait(); err != nil {
			b.Fatal(err)
		}
		tmpl := plugintest.Message("bench", size)
		b.SetBytes(int64(len(tmpl)))
		var elapsed time.Duration
		done := 0
		b.ResetTimer()
		for done < b.N {
			b.StopTimer()
			k := min(64, b.N-done)
			for range k {
				appendOne(b, app, folder, tmpl)
			}
			b.StartTimer()
			start := time.Now()
			data, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
			if err != nil {
				b.Fatal(err)
			}
			for _, uid := range data.AllUIDs() {
				sec := &imap.FetchItemBodySection{Peek: true}
				msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
				if err != nil || len(msgs) != 1 || len(msgs[0].FindBodySection(sec)) != len(tmpl) {
					b.Fatalf("fetch: %v", err)
				}
				if err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
					b.Fatal(err)
				}
			}
			elapsed += time.Since(start)
			done += k
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
	})
	h := harness(b, p)
	h.Logger = nil
	b.Run("connector", func(b *testing.B) { plugintest.BenchReadAck(b, h, size) })
	hp := h
	hp.Wrap = plugintest.ProcessWrap(b, bin)
	b.Run("connector-plugin", func(b *testing.B) { plugintest.BenchReadAck(b, hp, size) })
}
