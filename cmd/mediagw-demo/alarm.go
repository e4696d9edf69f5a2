package main

// The alarm demo: sample alarm mails in a Maildir → the alarm map → the
// dc09 driver → two DC-09 receivers on 127.0.0.1 (the test receivers of
// linedriver/dc09/dc09rx), encrypted with a key made for the run. The
// primary hangs up on the first message, so the backup takes it over.
// Run by `mediagw-demo --example alarm`.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediagw/mediagw/linedriver/dc09/dc09rx"
)

func demoAlarm(stdout, stderr io.Writer, dir string, verbose bool, timeout time.Duration) error {
	dir, err := siteDir(dir, "mediagw-demo-alarm-")
	if err != nil {
		return err
	}
	step := narrator(stdout)
	step("unpacking the alarm example into %s", dir)
	if err := demoMaildirUnpack(dir); err != nil {
		return err
	}
	keyBytes := make([]byte, 32)
	if _, err := rand.Read(keyBytes); err != nil {
		return err
	}
	key := strings.ToUpper(hex.EncodeToString(keyBytes))
	if err := os.Setenv("ALARM_DC09_KEY", key); err != nil {
		return err
	}
	primary, backup := &dc09rx.Receiver{Key: keyBytes}, &dc09rx.Receiver{Key: keyBytes}
	paddr, err := primary.ListenTCP("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer primary.Close()
	baddr, err := backup.ListenTCP("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer backup.Close()
	primary.Then(dc09rx.Hangup)
	step("DC-09 receivers listening: primary %s (it will hang up on the first message), backup %s; AES-256 key made for this run", paddr, baddr)

	cfgPath := filepath.Join(dir, "alarm-email-to-dc09.yaml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return err
	}
	s := strings.NewReplacer("127.0.0.1:9001", paddr, "127.0.0.1:9002", baddr,
		"# key: env:ALARM_DC09_KEY", "key: env:ALARM_DC09_KEY").Replace(string(b))
	if err := os.WriteFile(cfgPath, []byte(s), 0o644); err != nil {
		return err
	}
	maildir := filepath.Join(dir, "var", "alarm-Maildir")
	if err := makeMaildir(maildir); err != nil {
		return err
	}
	mails, err := deliverMails(maildir, "samples/alarm-*.eml", "", func(name string) { step("alarm mail delivered to the Maildir: %s", name) })
	if err != nil {
		return err
	}

	g, err := startGateway(cfgPath, stderr, verbose, true)
	if err != nil {
		return err
	}
	step("gateway running: connector alarms (maildir plugin) → map alarm → driver alarm-primary (dc09, ADM-CID over TCP, encrypted)")

	reasons := filepath.Join(dir, "var", "alarm-failed", "*.reason")
	shown := map[string]int{}
	show := func(who string, rx *dc09rx.Receiver) {
		got := rx.Signals()
		for _, sig := range got[shown[who]:] {
			enc := ""
			if sig.Encrypted {
				enc = ", decrypted"
			}
			step("ACK from the %s receiver: %s seq %04d account %s  [%s]%s", who, sig.ID, sig.Seq, sig.Account, sig.Data, enc)
		}
		shown[who] = len(got)
	}
	want := mails - 1 // one sample has an unknown event code
	if !g.await(timeout, func() bool {
		show("primary", primary)
		show("backup", backup)
		rejected, _ := filepath.Glob(reasons)
		return shown["primary"]+shown["backup"] >= want && len(rejected) == mails-want && g.queueEmpty()
	}) {
		return fmt.Errorf("after %s only %d of %d alarms were acknowledged (run with -v to see the gateway's log)", timeout, shown["primary"]+shown["backup"], want)
	}
	if err := g.stop(); err != nil {
		return err
	}
	rejected, _ := filepath.Glob(reasons)
	for _, r := range rejected {
		b, _ := os.ReadFile(r)
		step("rejected %s: %s", strings.TrimSuffix(filepath.Base(r), ".reason"), strings.TrimSpace(string(b)))
	}
	fmt.Fprintf(stdout, "\nAll %d alarm mails settled: %d signals acknowledged (%d by the backup after the primary hung up), %d rejected with its reason. Files are in %s\n",
		mails, want, shown["backup"], len(rejected), dir)
	return nil
}
