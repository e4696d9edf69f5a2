package main

// The alarm demo: sample alarm mails in a Maildir → the alarm map → the
// dc09 driver → two DC-09 receivers on 127.0.0.1 (the test receivers of
// linedriver/dc09/dc09rx), encrypted with a key made for the run. The
// primary hangs up on the first message, so the backup takes it over.
// Run by `mediagw-demo --example alarm`.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediagw/mediagw/examples"
	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/linedriver/dc09/dc09rx"
)

func demoAlarm(stdout, stderr io.Writer, dir string, verbose bool, timeout time.Duration) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "mediagw-demo-alarm-")
		if err != nil {
			return err
		}
		dir = d
	}
	step := func(format string, args ...any) { fmt.Fprintf(stdout, "==> "+format+"\n", args...) }
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
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(maildir, sub), 0o755); err != nil {
			return err
		}
	}
	mails, _ := fs.Glob(examples.FS, "samples/alarm-*.eml")
	for _, m := range mails {
		b, _ := examples.FS.ReadFile(m)
		name := filepath.Base(m)
		tmp := filepath.Join(maildir, "tmp", name)
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(maildir, "new", name)); err != nil {
			return err
		}
		step("alarm mail delivered to the Maildir: %s", name)
	}

	cfg, err := config.Load(cfgPath)
	if err != nil {
		return fmt.Errorf("%w\n(the demo needs the plugin binaries beside mediagw-demo: run `make build` or `make demo`)", err)
	}
	var logOut io.Writer = io.Discard
	if verbose {
		logOut = stderr
	}
	log := host.NewLogger(logOut, cfg.Log)
	plan, err := host.Prepare(cfg, log)
	if err != nil {
		return err
	}
	if problems, _ := host.CheckConnectors(plan); len(problems) > 0 {
		plan.Close()
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	h, err := host.New(plan, log)
	if err != nil {
		plan.Close()
		return err
	}
	step("gateway running: connector alarms (maildir plugin) → map alarm → driver alarm-primary (dc09, ADM-CID over TCP, encrypted)")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, plan) }()

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
	want := len(mails) - 1 // one sample has an unknown event code
	deadline := time.Now().Add(timeout)
	for {
		show("primary", primary)
		show("backup", backup)
		rejected, _ := filepath.Glob(reasons)
		if shown["primary"]+shown["backup"] >= want && len(rejected) == len(mails)-want && spoolEmpty(h) {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			return fmt.Errorf("after %s only %d of %d alarms were acknowledged (run with -v to see the gateway's log)", timeout, shown["primary"]+shown["backup"], want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		return err
	}
	rejected, _ := filepath.Glob(reasons)
	for _, r := range rejected {
		b, _ := os.ReadFile(r)
		step("rejected %s: %s", strings.TrimSuffix(filepath.Base(r), ".reason"), strings.TrimSpace(string(b)))
	}
	fmt.Fprintf(stdout, "\nAll %d alarm mails settled: %d signals acknowledged (%d by the backup after the primary hung up), %d rejected with its reason. Files are in %s\n",
		len(mails), want, shown["backup"], len(rejected), dir)
	return nil
}
