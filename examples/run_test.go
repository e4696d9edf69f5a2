package examples_test

import (
	"github.com/mediagw/mediagw/linedriver/surgard/surgardrx"

	"github.com/mediagw/mediagw/linedriver/dc09/dc09rx"

	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/modemsim"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// gateway is `mediagw run` on an installed example.
type gateway struct {
	cmd *exec.Cmd
	out testenv.Buffer
}

func startGateway(t *testing.T, config string) *gateway {
	t.Helper()
	g := &gateway{cmd: exec.Command(filepath.Join(binaries(t), "mediagw"), "run", "-c", config)}
	g.cmd.Stdout, g.cmd.Stderr = &g.out, &g.out
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if g.cmd.ProcessState == nil {
			g.cmd.Process.Kill()
			g.cmd.Wait()
		}
	})
	return g
}

// stop sends SIGTERM and expects a clean exit.
func (g *gateway) stop(t *testing.T) {
	t.Helper()
	g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("mediagw run after SIGTERM: %v\n%s", err, g.out.String())
		}
	case <-time.After(30 * time.Second):
		g.cmd.Process.Kill()
		t.Fatalf("mediagw run did not stop within 30s of SIGTERM\n%s", g.out.String())
	}
}

// deliver puts mails into a Maildir's new/ as a mail server does.
func deliver(t *testing.T, maildir string, mails ...string) {
	t.Helper()
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(maildir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range mails {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(maildir, "tmp", filepath.Base(m))
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(maildir, "new", filepath.Base(m))); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, g *gateway, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 45*time.Second, what, cond, g.out.String)
}

func glob(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	return m
}

// TestRunAlarmExample runs alarm-email-to-file.yaml as shipped: a burglary
// alarm reaches the primary folder, a fire alarm both, and an alarm with an
// unknown event code is rejected with the reason beside it.
func TestRunAlarmExample(t *testing.T) {
	dir := install(t)
	deliver(t, filepath.Join(dir, "var", "alarm-Maildir"),
		"samples/alarm-burglary.eml", "samples/alarm-fire-html.eml", "samples/alarm-unknown-code.eml")
	g := startGateway(t, filepath.Join(dir, "alarm-email-to-file.yaml"))
	primary := filepath.Join(dir, "var", "alarms", "primary", "*", "record.json")
	backup := filepath.Join(dir, "var", "alarms", "backup", "*", "record.json")
	reasons := filepath.Join(dir, "var", "alarm-failed", "*.reason")
	waitFor(t, g, "two alarms in primary, one in backup, one rejected", func() bool {
		return len(glob(primary)) == 2 && len(glob(backup)) == 1 && len(glob(reasons)) == 1
	})
	g.stop(t)

	events := map[string]string{}
	for _, f := range glob(primary) {
		var rec struct {
			Fields map[string]string `json:"fields"`
		}
		b, _ := os.ReadFile(f)
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		events[rec.Fields["txid"]] = rec.Fields["event"] + " zone " + rec.Fields["zone"] + " area " + rec.Fields["area"]
	}
	if events["123588"] != "BA zone 1 area 1" || events["204711"] != "FA zone 12 area 2" {
		t.Errorf("primary alarms = %v", events)
	}
	b, _ := os.ReadFile(glob(backup)[0])
	if !strings.Contains(string(b), `"txid": "204711"`) && !strings.Contains(string(b), `"txid":"204711"`) {
		t.Errorf("backup holds %s, want the fire alarm 204711", b)
	}
	r, _ := os.ReadFile(glob(reasons)[0])
	if !strings.Contains(string(r), `event: not one of the allowed values`) || !strings.Contains(string(r), `"ZZ"`) {
		t.Errorf("reason = %q", r)
	}
	if n := len(glob(filepath.Join(dir, "var", "alarm-Maildir", "new", "*"))); n != 0 {
		t.Errorf("%d mails left in new/", n)
	}
}

// TestRunAlarmDC09Example runs alarm-email-to-dc09.yaml with its receivers
// replaced by test receivers on loopback: the primary hangs up on the first
// message, so the burglary and the fire alarm arrive, acknowledged, as
// Contact ID; the unknown code is rejected.
func TestRunAlarmDC09Example(t *testing.T) {
	dir := install(t)
	primary, backup := &dc09rx.Receiver{}, &dc09rx.Receiver{}
	paddr, err := primary.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	baddr, err := backup.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backup.Close()
	primary.Then(dc09rx.Hangup, dc09rx.Hangup)
	cfg := filepath.Join(dir, "alarm-email-to-dc09.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("127.0.0.1:9001", paddr, "127.0.0.1:9002", baddr).Replace(string(b))
	if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	deliver(t, filepath.Join(dir, "var", "alarm-Maildir"),
		"samples/alarm-burglary.eml", "samples/alarm-fire-html.eml", "samples/alarm-unknown-code.eml")
	g := startGateway(t, cfg)
	reasons := filepath.Join(dir, "var", "alarm-failed", "*.reason")
	waitFor(t, g, "two signals acknowledged, one mail rejected", func() bool {
		return len(primary.Signals())+len(backup.Signals()) >= 2 && len(glob(reasons)) == 1 &&
			len(glob(filepath.Join(dir, "var", "alarms", "life-safety", "*", "record.json"))) == 1
	})
	g.stop(t)
	got := map[string]bool{}
	for _, s := range append(primary.Signals(), backup.Signals()...) {
		got[s.Data] = true
	}
	if !got["#123588|1130 01 001"] || !got["#204711|1110 02 012"] {
		t.Errorf("receivers took %v", got)
	}
	if len(backup.Signals()) == 0 {
		t.Errorf("the backup receiver took nothing though the primary hung up")
	}
}

// TestAlarmDC09KillBeforeACK kills the gateway (kill -9) after the DC-09
// message left and before the receiver's ACK: after the restart the signal
// is sent again with the same sequence number, which the receiver sees as
// a repeat of the message it had heard (at least once).
func TestAlarmDC09KillBeforeACK(t *testing.T) {
	dir := install(t)
	rx := &dc09rx.Receiver{}
	addr, err := rx.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	rx.Then(dc09rx.Silent)
	cfg := filepath.Join(dir, "alarm-email-to-dc09.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("127.0.0.1:9001", addr, "ack_timeout: 10s", "ack_timeout: 60s").Replace(string(b))
	if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	deliver(t, filepath.Join(dir, "var", "alarm-Maildir"), "samples/alarm-burglary.eml")
	g := startGateway(t, cfg)
	waitFor(t, g, "the receiver hears the message", func() bool { return len(rx.Heard()) == 1 })
	if err := g.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	g.cmd.Wait()
	if n := len(rx.Signals()); n != 0 {
		t.Fatalf("the receiver acknowledged %d signals before the kill", n)
	}
	g = startGateway(t, cfg)
	waitFor(t, g, "the signal acknowledged after the restart", func() bool { return len(rx.Signals()) == 1 })
	g.stop(t)
	heard, got := rx.Heard(), rx.Signals()
	if got[0].Seq != heard[0].Seq || !got[0].Duplicate || got[0].Data != "#123588|1130 01 001" {
		t.Errorf("heard %+v, then acknowledged %+v: want the same sequence, marked a repeat", heard[0], got[0])
	}
}

// TestRunAlarmSurgardExample runs alarm-email-to-surgard.yaml with the
// automation software replaced by a test receiver that NAKs the first line:
// both alarms arrive as SIA lines, acknowledged.
func TestRunAlarmSurgardExample(t *testing.T) {
	dir := install(t)
	rx := &surgardrx.Receiver{}
	addr, err := rx.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	rx.Then(surgardrx.Nak)
	cfg := filepath.Join(dir, "alarm-email-to-surgard.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "127.0.0.1:1025", addr, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	deliver(t, filepath.Join(dir, "var", "alarm-Maildir"), "samples/alarm-burglary.eml", "samples/alarm-fire-html.eml")
	g := startGateway(t, cfg)
	waitFor(t, g, "two lines acknowledged", func() bool { return len(rx.Lines()) >= 2 })
	g.stop(t)
	got := map[string]bool{}
	for _, l := range rx.Lines() {
		got[l.Raw] = true
	}
	if !got["S01001[#123588|Nri1/BA001]"] || !got["S01001[#204711|Nri2/FA012]"] {
		t.Errorf("automation took %v", got)
	}
}

// TestRunMaildirToFaxExample runs maildir-to-fax.yaml with its modem
// replaced by the modem emulator on a pty: the PDF mail becomes a fax the
// far end confirms, dialled by the driver's dial plan (outside line 9, then
// 1 + area code); the 1-900 mail is refused by the plan and never dialled.
func TestRunMaildirToFaxExample(t *testing.T) {
	testenv.LookPath(t, "gs") // PDF pages are rendered by ghostscript
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tty, modem, err := modemsim.PTY(ctx, modemsim.Remote{CSI: "+1 555 1234567",
		Decode: func(data []byte, p t30.Params) ([][]byte, error) {
			o := t4.Options{Encoding: t4.MH, LSBFirst: true}
			if p.MR {
				o.Encoding, o.K = t4.MR, p.K()
			}
			return t4.DecodePage(bytes.NewReader(data), 1728, o, 10000)
		}})
	if err != nil {
		testenv.Skip(t, "no pty: "+err.Error())
	}
	dir := install(t)
	cfg := filepath.Join(dir, "maildir-to-fax.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("device: /dev/ttyUSB0")) {
		t.Fatal("maildir-to-fax.yaml names no /dev/ttyUSB0")
	}
	if err := os.WriteFile(cfg, bytes.Replace(b, []byte("device: /dev/ttyUSB0"), []byte("device: "+tty), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	deliver(t, filepath.Join(dir, "var", "Maildir"), "samples/fax-pdf.eml", "samples/fax-premium.eml")
	g := startGateway(t, cfg)
	waitFor(t, g, "the fax to be confirmed and the premium-rate mail rejected", func() bool {
		return len(modem.Pages()) == 1 && len(glob(filepath.Join(dir, "var", "failed", "*.reason"))) == 1 &&
			strings.Contains(g.out.String(), "event=delivered")
	})
	g.stop(t)

	calls := modem.Calls()
	if len(calls) != 1 || calls[0].Number != "912015550142" || !calls[0].Ended {
		t.Fatalf("calls = %+v, want one completed call to 912015550142", calls)
	}
	if calls[0].TSI != "+1 555 0100" {
		t.Errorf("TSI = %q, want the example's local_id", calls[0].TSI)
	}
	pg := modem.Pages()[0]
	if pg.Err != nil || len(pg.Rows) < 1000 {
		t.Errorf("page: %d rows, decode error %v", len(pg.Rows), pg.Err)
	}
	r, _ := os.ReadFile(glob(filepath.Join(dir, "var", "failed", "*.reason"))[0])
	if !strings.Contains(string(r), "premium-rate") {
		t.Errorf("reason = %q, want the dial policy's premium-rate refusal", r)
	}
}

// TestDatamapTryShowsSignal: `mediagw datamap try` on an alarm example
// prints, after the fields, the signal each alarm driver would send.
func TestDatamapTryShowsSignal(t *testing.T) {
	dir := install(t)
	t.Setenv("PATH", binaries(t)+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, tc := range []struct{ config, mail, want string }{
		{"alarm-email-to-dc09.yaml", "samples/alarm-fire-html.eml", "  alarm-primary (dc09): ADM-CID [#204711|1110 02 012][Ifire alarm]\n"},
		{"alarm-email-to-surgard.yaml", "samples/alarm-burglary.eml", "  alarm-primary (surgard): S01001[#123588|Nri1/BA001]\n"},
	} {
		mail, err := os.Open(tc.mail)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(binaries(t), "mediagw"), "datamap", "try", "-c", filepath.Join(dir, tc.config), "alarm")
		cmd.Stdin = mail
		out, err := cmd.CombinedOutput()
		mail.Close()
		if err != nil || !strings.Contains(string(out), "drivers:\n"+tc.want) {
			t.Errorf("%s: %v\n%s", tc.config, err, out)
		}
	}
}
