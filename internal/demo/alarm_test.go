package demo_test

// The alarm rig with the production gateway binary (`mediagw run`) as its
// own process, so that it can be killed with SIGKILL: the o365 connector
// plugin over IMAP IDLE, the alarm map and the dc09 driver to the DC-09
// test receiver.

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mediagw/mediagw/internal/demo"
	"github.com/mediagw/mediagw/internal/demo/oauthimap"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/dc09/dc09rx"
	"github.com/mediagw/mediagw/plugin/o365/xoauth2"
)

func alarmBinaries(t testing.TB) string {
	t.Helper()
	return testenv.Binaries(t, "github.com/mediagw/mediagw/cmd/mediagw",
		"github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
}

// idleWatch counts the connector's IDLE commands on the rig's mailbox.
type idleWatch struct {
	mu    sync.Mutex
	idles int
}

func (w *idleWatch) event(e oauthimap.Event) {
	if e.Kind == "idle" {
		w.mu.Lock()
		w.idles++
		w.mu.Unlock()
	}
}

func (w *idleWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.idles
}

type gatewayProc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
	mu  *sync.Mutex
}

func (g *gatewayProc) output() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.out.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// startMediagw runs `mediagw run -c config` with the rig's environment.
func startMediagw(t testing.TB, bins string, rig *demo.AlarmRig) *gatewayProc {
	t.Helper()
	g := &gatewayProc{out: &bytes.Buffer{}, mu: &sync.Mutex{}}
	g.cmd = exec.Command(filepath.Join(bins, "mediagw"), "run", "-c", rig.Config)
	g.cmd.Env = append(os.Environ(), rig.Env()...)
	g.cmd.Stdout, g.cmd.Stderr = lockedWriter{g.mu, g.out}, lockedWriter{g.mu, g.out}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if g.cmd.ProcessState == nil {
			g.cmd.Process.Signal(syscall.SIGTERM)
			g.cmd.Wait()
		}
	})
	return g
}

func (g *gatewayProc) stop(t testing.TB) {
	t.Helper()
	g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("mediagw stopped with %v; output:\n%s", err, g.output())
		}
	case <-time.After(30 * time.Second):
		g.cmd.Process.Kill()
		t.Errorf("mediagw did not stop within 30 s of SIGTERM")
	}
}

// waitUntil polls cond every few milliseconds until it holds or 30 s pass.
func waitUntil(t testing.TB, g *gatewayProc, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; gateway output:\n%s", what, g.output())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func startRig(t testing.TB, bins, driver string, w *idleWatch) *demo.AlarmRig {
	t.Helper()
	rig, err := demo.StartAlarmRig(filepath.Join(t.TempDir(), "rig"), driver, filepath.Join(bins, demo.PluginName), w.event)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rig.Close)
	return rig
}

func setOption(t testing.TB, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAlarmRigKillBeforeACK: an alarm mail arrives by IDLE, the gateway
// sends its DC-09 message, and is killed (SIGKILL) before the receiver's
// ACK. After the restart the signal is sent again with the same sequence
// number, which the receiver marks as a repeat (at least once), and no
// other signal is made of the mail.
func TestAlarmRigKillBeforeACK(t *testing.T) {
	bins := alarmBinaries(t)
	w := &idleWatch{}
	rig := startRig(t, bins, demo.DC09, w)
	// Long enough that the kill, not the driver's timeout, ends the wait.
	setOption(t, rig.Config, "ack_timeout: 10s", "ack_timeout: 60s")
	rig.DC09.Then(dc09rx.Silent)

	g := startMediagw(t, bins, rig)
	waitUntil(t, g, "the connector idling", func() bool { return w.count() > 0 })
	samples, err := demo.AlarmSamples()
	if err != nil {
		t.Fatal(err)
	}
	burglary := samples[slices.IndexFunc(samples, func(s *demo.AlarmSample) bool { return s.File == "alarm-burglary.eml" })]
	if err := rig.Deliver(burglary.Raw); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, g, "the receiver hearing the message", func() bool { return len(rig.DC09.Heard()) == 1 })
	if err := g.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	g.cmd.Wait()
	if n := len(rig.DC09.Signals()); n != 0 {
		t.Fatalf("the receiver acknowledged %d signals before the kill", n)
	}

	g = startMediagw(t, bins, rig)
	waitUntil(t, g, "the signal acknowledged after the restart", func() bool { return len(rig.Acked()) == 1 })
	waitUntil(t, g, "INBOX processed", func() bool {
		_, unseen, err := rig.IMAP.Status(demo.AlarmMailbox, "INBOX")
		return err == nil && unseen == 0
	})
	g.stop(t)

	heard, acked := rig.DC09.Heard(), rig.Acked()
	if len(acked) != 1 {
		t.Fatalf("acknowledged %+v, want one signal", acked)
	}
	a := acked[0]
	if a.Seq != heard[0].Seq || !a.Duplicate {
		t.Errorf("heard sequence %04d before the kill, then acknowledged %+v: want the same sequence, marked a repeat", heard[0].Seq, a)
	}
	if a.Account != "123588" || a.Event != "1130" || a.Zone != "001" || a.Partition != "01" {
		t.Errorf("acknowledged %+v, want account 123588, event 1130 (burglary), partition 01, zone 001", a)
	}
	if rej := rig.DC09.Rejects(); len(rej) > 0 {
		t.Errorf("the receiver refused messages: %v", rej)
	}
}

// BenchmarkAlarmRigLatency: from the APPEND of an alarm mail into INBOX to
// the DC-09 receiver's ACK of its signal, with the production gateway and
// the o365 plugin on IDLE — beside, for the same APPENDs, the time until a
// bare go-imap client idling on the same INBOX of the same IMAP server sees
// the EXISTS notification (what IDLE itself takes).
func BenchmarkAlarmRigLatency(b *testing.B) {
	bins := alarmBinaries(b)
	w := &idleWatch{}
	rig := startRig(b, bins, demo.DC09, w)
	g := startMediagw(b, bins, rig)
	defer g.stop(b)
	waitUntil(b, g, "the connector idling", func() bool { return w.count() > 0 })

	tok, err := rig.ID.Mint(demo.AlarmMailbox, "https://outlook.office.com", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	exists := make(chan struct{}, 64)
	c, err := imapclient.DialTLS(rig.IMAP.Addr, &imapclient.Options{
		TLSConfig: &tls.Config{RootCAs: rig.ID.CA.Pool},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- struct{}{}
			}
		}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(xoauth2.New(demo.AlarmMailbox, tok)); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		b.Fatal(err)
	}
	defer idle.Close()

	const samples = 30
	var mail, notify []time.Duration
	b.ResetTimer()
	last := 0
	for i := range max(b.N, samples) {
		// The connector back in IDLE after the last mail.
		waitUntil(b, g, "the connector back in IDLE", func() bool { return w.count() > last })
		last = w.count()
		acct := fmt.Sprintf("%06d", 300000+i)
		raw := fmt.Sprintf("From: panel@site.example\r\nTo: %s\r\nSubject: Alarm %s\r\nMessage-ID: <bench-%d-%d@site.example>\r\n\r\n%s BA 1 1\r\n",
			demo.AlarmMailbox, acct, time.Now().UnixNano(), i, acct)
		start := time.Now()
		if err := rig.Deliver([]byte(raw)); err != nil {
			b.Fatal(err)
		}
		select {
		case <-exists:
			notify = append(notify, time.Since(start))
		case <-time.After(10 * time.Second):
			b.Fatal("no EXISTS within 10 s")
		}
		deadline := start.Add(30 * time.Second)
		for !slices.ContainsFunc(rig.Acked(), func(a demo.AlarmSignal) bool { return a.Account == acct }) {
			if time.Now().After(deadline) {
				b.Fatalf("no ACK of %s within 30 s; gateway output:\n%s", acct, g.output())
			}
			select {
			case <-rig.DC09.Changed():
			case <-time.After(time.Millisecond):
			}
		}
		mail = append(mail, time.Since(start))
	}
	b.StopTimer()
	q := func(ds []time.Duration, p float64) float64 {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(q(mail, 0.50), "mail-to-ack-p50-ms")
	b.ReportMetric(q(mail, 0.95), "mail-to-ack-p95-ms")
	b.ReportMetric(q(notify, 0.50), "idle-notify-p50-ms")
	b.ReportMetric(q(notify, 0.95), "idle-notify-p95-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d mails, %d signals acknowledged", len(mail), len(rig.Acked()))
}

func TestMain(m *testing.M) { testenv.RunMain(m) }
