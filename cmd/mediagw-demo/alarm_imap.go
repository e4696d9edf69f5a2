package main

// The alarm demo over IMAP: alarm mails arrive by IMAP IDLE in the Office
// 365-style mailbox, the o365 connector plugin takes them, and the dc09
// (TCP) or surgard (serial, a pty pair) driver delivers them to a test
// receiver. Run by `mediagw-demo --example alarm` and `--example alarm-surgard`.

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/internal/demo"
)

func demoAlarmIMAP(stdout, stderr io.Writer, dir, driver string, verbose bool, timeout time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	o := demo.AlarmOptions{Dir: dir, Driver: driver, Out: stdout, Timeout: timeout,
		CheckConnectors: func(p *host.Plan) []string { problems, _ := host.CheckConnectors(p); return problems }}
	if verbose {
		o.Log = stderr
	}
	what := "DC-09 receiver (TCP, AES-256)"
	if driver == demo.SurGard {
		what = "Sur-Gard automation software (serial line)"
	}
	fmt.Fprintf(stdout, "mediagw-demo: alarm mail in an Office 365 mailbox (stand-in, IMAP IDLE) → gateway → %s, all on this machine\n", what)
	res, err := demo.RunAlarm(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nOK: %d signals acknowledged, %d mail rejected with its reason (moved to %s); mail to ACK at most %s.\nConfiguration: %s\nFiles are in %s\n",
		len(res.Acked), len(res.Rejected), demo.FailedFolder, slices.Max(append(res.Latency, 0)).Round(time.Millisecond), res.Config, res.Dir)
	return nil
}
