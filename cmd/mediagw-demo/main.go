// Command mediagw-demo runs the whole gateway on this machine with no tenant
// and no modem: stand-ins of the Microsoft identity platform and of an
// Office 365 mailbox, and an emulated fax line. It ships apart from mediagw,
// so that none of its stand-ins link into the production binary.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/internal/demo"
	"github.com/mediagw/mediagw/internal/rawtty"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is the whole command, writing to stdout and stderr.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 2 && args[0] == gatewayFlag {
		return runHAGateway(args[1], stderr)
	}
	fs := flag.NewFlagSet("mediagw-demo", flag.ContinueOnError)
	dir := fs.String("dir", "", "where to put the demo's files (default: a new temporary folder, kept)")
	verbose := fs.Bool("v", false, "also show the gateway's log")
	timeout := fs.Duration("timeout", 2*time.Minute, "fail when the mails are not all settled by then")
	example := fs.String("example", "o365", "o365 (mailbox → fax), maildir (the Maildir → file example), alarm (alarm mail by IMAP IDLE → DC-09 receiver over TCP), alarm-surgard (→ Sur-Gard automation output over a serial pty pair), alarm-maildir (alarm mail from a Maildir → two DC-09 receivers), fax-in (received faxes from a simulated line → mail and a folder) or ha (two gateways on a throwaway PostgreSQL; one is killed, the other takes the mailbox over)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: mediagw-demo [--dir DIR] [-v] [--example o365|maildir|alarm|alarm-surgard|alarm-maildir|fax-in|ha]

Runs the whole gateway on this machine, with no tenant and no modem: a
stand-in of the Microsoft identity platform, an IMAP mailbox that accepts
only its OAuth 2.0 tokens (XOAUTH2), and an emulated fax line on a pty. The
real gateway, with the real O365 connector plugin and the real fax-modem
driver, takes four sample mails (a PDF, a photo, plain text, and one with a
premium-rate fax number) from the mailbox to the fax line. Each step is
shown as it happens; the received pages are written as TIFF and PNG.
Exit code 0 only when every fax arrived and the bad mail was rejected.`)
		fs.PrintDefaults()
	}
	// --help prints the usage to stdout and exits 0; a bad flag, to stderr.
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			stdout.Write(usage.Bytes()) //nolint:errcheck // nothing to tell
			return 0
		}
		stderr.Write(usage.Bytes()) //nolint:errcheck
		return 2
	}
	switch *example {
	case "alarm", "alarm-surgard":
		driver := demo.DC09
		if *example == "alarm-surgard" {
			driver = demo.SurGard
		}
		if err := demoAlarmIMAP(stdout, stderr, *dir, driver, *verbose, *timeout); err != nil {
			fmt.Fprintln(stderr, "demo failed:", err)
			return 1
		}
		return 0
	case "alarm-maildir":
		if err := demoAlarm(stdout, stderr, *dir, *verbose, *timeout); err != nil {
			fmt.Fprintln(stderr, "demo failed:", err)
			return 1
		}
		return 0
	case "ha":
		if err := demoHA(stdout, stderr, *dir, *verbose, *timeout); err != nil {
			fmt.Fprintln(stderr, "demo failed:", err)
			return 1
		}
		return 0
	case "fax-in":
		if err := demoFaxIn(stdout, stderr, *dir, *verbose, *timeout); err != nil {
			fmt.Fprintln(stderr, "demo failed:", err)
			return 1
		}
		return 0
	case "maildir":
		if err := demoMaildir(stdout, stderr, *dir, *verbose, *timeout); err != nil {
			fmt.Fprintln(stderr, "demo failed:", err)
			return 1
		}
		return 0
	case "o365":
	default:
		fmt.Fprintf(stderr, "demo: unknown example %q (want o365, maildir, alarm, alarm-surgard, alarm-maildir, fax-in or ha)\n", *example)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	opts := demo.Options{Dir: *dir, Out: stdout, Timeout: *timeout, CheckConnectors: func(p *host.Plan) []string { problems, _ := host.CheckConnectors(p); return problems }}
	if *verbose {
		opts.Log = stderr
	}
	if f, ok := stdout.(*os.File); ok && rawtty.Is(f) {
		opts.Tick = progressLine(stdout)
	}
	fmt.Fprintln(stdout, "mediagw-demo: Office 365 mailbox (stand-in) → gateway → fax line (emulated), all on 127.0.0.1")
	res, err := demo.Run(ctx, opts)
	if res != nil && (len(res.Faxes) > 0 || len(res.Rejected) > 0) {
		res.Print(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "\ndemo failed:", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nOK: %d faxes arrived, %d mail rejected with its reason. Look at the PNG pages above.\n", len(res.Faxes), len(res.Rejected))
	return 0
}

// progressLine returns a status line writer for a terminal: each call
// replaces the line; "" clears it.
func progressLine(w io.Writer) func(string) {
	spin := []string{"|", "/", "-", "\\"}
	n := 0
	return func(s string) {
		if s == "" {
			fmt.Fprint(w, "\r\033[K")
			return
		}
		n++
		fmt.Fprintf(w, "\r\033[K%s %s", spin[n%len(spin)], s)
	}
}
