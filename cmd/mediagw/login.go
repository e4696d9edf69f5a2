package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mediagw/mediagw/plugin"
)

func init() {
	register(command{Name: "login", Usage: "-c FILE CONNECTOR", Short: "sign a connector in as a user (delegated OAuth: device code)", Run: runLogin})
}

// runLogin starts the connector's plugin as `<plugin> login` in the config
// file's folder, hands it the connector's settings on stdin, and leaves the
// terminal to it: it prints the sign-in URL and code and waits.
func runLogin(args []string, std stdio) int {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	cfgPath := fs.String("c", "mediagw.yaml", "config file")
	timeout := fs.Duration("timeout", 20*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw login -c FILE CONNECTOR\n\nSigns the connector in as a user (an o365 connector with auth: delegated):\nprints a URL and a code to enter there, waits for the sign-in, and keeps the\nrefresh token in the connector's state_dir. Run it again when mediagw test\nsays consent_required or interaction_required.")
		fs.PrintDefaults()
	}
	if exit, code := parseFlags(fs, args, std); exit {
		return code
	}
	plan, _, cp, code, ok := loadConnector(fs, *cfgPath, std)
	if !ok {
		return code
	}
	defer plan.Close()
	name := cp.Name
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cp.Config.PluginPath, plugin.LoginCommand)
	cmd.Dir = filepath.Dir(plan.Config.File)
	cmd.Stdin = bytes.NewReader(cp.JSON)
	cmd.Stdout, cmd.Stderr = std.out, std.err
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		fmt.Fprintf(std.err, "login: %s: %v\n", name, err)
		return 1
	}
	return 0
}
