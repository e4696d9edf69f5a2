package hoste2e_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin/o365/o365test"
	"github.com/mediagw/mediagw/plugin/plugintest"
)

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

func dial(b *testing.B, p *peers, opts *imapclient.Options) *imapclient.Client {
	c, err := p.dc.Dial(p.id.Mailbox, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// outCount counts the records the file driver finished (cheap: no reading).
func (s *site) outCount() int {
	es, _ := os.ReadDir(filepath.Join(s.dir, "out"))
	n := 0
	for _, e := range es {
		if !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

func unseen(b *testing.B, c *imapclient.Client, folder string) int {
	st, err := c.Status(folder, &imap.StatusOptions{NumUnseen: true}).Wait()
	if err != nil {
		b.Fatal(err)
	}
	return int(*st.NumUnseen)
}

// BenchmarkHostThroughput: messages per second from Dovecot through the
// plugin and the host into the file driver, settled (record written, mail
// \Seen on the server), beside a bare go-imap loop on the same Dovecot
// (UID SEARCH UNSEEN, then per message UID FETCH BODY.PEEK[] and UID STORE
// +FLAGS \Seen). The messages (4 KiB) wait in a staging folder and are moved
// into the watched one in one command when the clock starts.
func BenchmarkHostThroughput(b *testing.B) {
	p := startPeers(b)
	tmpl := plugintest.Message("bench", 4<<10)
	stage := func(b *testing.B, c *imapclient.Client, n int) {
		b.Helper()
		for range n {
			appendOne(b, c, "stage", tmpl)
		}
	}
	moveIn := func(b *testing.B, c *imapclient.Client, folder string) {
		b.Helper()
		if _, err := c.Select("stage", nil).Wait(); err != nil {
			b.Fatal(err)
		}
		var all imap.SeqSet
		all.AddRange(1, 0)
		if _, err := c.Move(all, folder).Wait(); err != nil {
			b.Fatal(err)
		}
	}
	for _, f := range []string{"stage", "tp-bare", "tp-host"} {
		p.create(b, f)
	}
	ctl := dial(b, p, nil)

	b.Run("bare-go-imap", func(b *testing.B) {
		c := dial(b, p, nil)
		stage(b, ctl, b.N)
		moveIn(b, ctl, "tp-bare")
		b.SetBytes(int64(len(tmpl)))
		b.ResetTimer()
		if _, err := c.Select("tp-bare", nil).Wait(); err != nil {
			b.Fatal(err)
		}
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
		b.StopTimer()
		if len(data.AllUIDs()) != b.N {
			b.Fatalf("%d messages, want %d", len(data.AllUIDs()), b.N)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	})

	s := newSite(b, p, "tp-host", nil, nil)
	g := s.start()
	g.pluginPid(b)
	defer g.stop(b)
	done := 0
	b.Run("host-file-driver", func(b *testing.B) {
		stage(b, ctl, b.N)
		time.Sleep(200 * time.Millisecond) // the connector idles
		b.SetBytes(int64(len(tmpl)))
		b.ResetTimer()
		moveIn(b, ctl, "tp-host")
		want := done + b.N
		deadline := time.Now().Add(5 * time.Minute)
		for s.outCount() < want || unseen(b, ctl, "tp-host") > 0 {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d records; log:\n%s", s.outCount(), want, testenv.Tail(g.output(), 30))
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		done = want
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	})
}

// latencySamples is the least number of APPENDs a latency figure is
// taken from (each takes ~0.5 s: Dovecot's own notify delay).
const latencySamples = 20

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

// BenchmarkHostPushLatency: from the start of an APPEND on another
// connection to the record written by the file driver, with IDLE and a poll
// interval of an hour, beside a bare go-imap client idling on the same
// Dovecot and waiting for the EXISTS notification (the floor).
func BenchmarkHostPushLatency(b *testing.B) {
	p := startPeers(b)
	for _, f := range []string{"lat-bare", "lat-host"} {
		p.create(b, f)
	}
	app := dial(b, p, nil)

	b.Run("dovecot-idle", func(b *testing.B) {
		exists := make(chan uint32, 16)
		c := dial(b, p, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists <- *d.NumMessages
				}
			},
		}})
		if _, err := c.Select("lat-bare", nil).Wait(); err != nil {
			b.Fatal(err)
		}
		idle, err := c.Idle()
		if err != nil {
			b.Fatal(err)
		}
		var ds []time.Duration
		b.ResetTimer()
		for i := range max(b.N, latencySamples) {
			start := time.Now()
			appendOne(b, app, "lat-bare", o365test.Message(i))
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

	s := newSite(b, p, "lat-host", nil, nil)
	g := s.start()
	g.pluginPid(b)
	defer g.stop(b)
	seq := 0
	b.Run("host-file-driver", func(b *testing.B) {
		// Warm up: the first message finds the session connected.
		seq++
		appendOne(b, app, "lat-host", o365test.Message(-seq))
		have := s.outCount() + 1
		waitFor(b, "warm-up record", 30*time.Second, func() bool { return s.outCount() >= have }, g.output)
		var ds []time.Duration
		b.ResetTimer()
		for i := range max(b.N, latencySamples) {
			time.Sleep(50 * time.Millisecond) // settled and back in IDLE
			start := time.Now()
			appendOne(b, app, "lat-host", o365test.Message(seq*100000+i))
			have++
			deadline := start.Add(10 * time.Second)
			for s.outCount() < have {
				if time.Now().After(deadline) {
					b.Fatalf("no record; log:\n%s", testenv.Tail(g.output(), 30))
				}
				time.Sleep(time.Millisecond)
			}
			ds = append(ds, time.Since(start))
		}
		b.StopTimer()
		reportLatency(b, ds)
		b.Logf("%d records, %d samples", have, len(ds))
	})
}
