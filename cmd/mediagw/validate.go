package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/plugin"
)

func init() {
	register(command{Name: "validate", Usage: "-c FILE", Short: "check a config: keys, maps, drivers, plugins and their settings", Run: runValidate})
	register(command{Name: "test", Usage: "-c FILE CONNECTOR", Short: "run a connector's Test (credentials, reachability, mailbox access)", Run: runTest})
}

func runValidate(args []string, std stdio) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	cfgPath := fs.String("c", "mediagw.yaml", "config file")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw validate -c FILE\n\nReports every problem in the config with file:line, including the\nsettings each connector plugin rejects. Exit code 0 only when all is well.")
		fs.PrintDefaults()
	}
	if exit, code := parseFlags(fs, args, std); exit {
		return code
	}
	plan, _, ok := loadPlan(*cfgPath, std.err)
	if !ok {
		return 1
	}
	defer plan.Close()
	problems, warnings := host.CheckConnectors(plan)
	for _, w := range warnings {
		fmt.Fprintln(std.err, "warning:", w)
	}
	if len(problems) > 0 {
		fmt.Fprintln(std.err, strings.Join(problems, "\n"))
		return 1
	}
	in := ""
	if plan.Config.HasInbound() {
		in = fmt.Sprintf(", %d inbound route(s)", len(plan.Inbound.Routes))
		if plan.Inbound.Default != nil {
			in += " and a default"
		}
	}
	fmt.Fprintf(std.out, "%s: ok (%d connector(s), %d map(s), %d driver(s)%s)\n", *cfgPath, len(plan.Connectors), len(plan.Maps), len(plan.Drivers), in)
	return 0
}

func runTest(args []string, std stdio) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfgPath := fs.String("c", "mediagw.yaml", "config file")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw test -c FILE CONNECTOR\n\nRuns the connector's Test, prints its category and a one-line fix, and\nthe same for its send path when it sends mail (a second line, NAME (send)).\nExit code 0 only when every category is ok.")
		fs.PrintDefaults()
	}
	if exit, code := parseFlags(fs, args, std); exit {
		return code
	}
	plan, log, cp, code, ok := loadConnector(fs, *cfgPath, std)
	if !ok {
		return code
	}
	defer plan.Close()
	name := cp.Name
	inst, err := host.LaunchConnector(plan, name, log)
	if err != nil {
		fmt.Fprintln(std.err, err)
		return 1
	}
	defer inst.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	r := inst.Connector.Test(ctx)
	printTestResult(std.out, name, r)
	if r.Send != nil {
		printTestResult(std.out, name+" (send)", *r.Send)
	}
	if r.Category != plugin.TestOK || r.Send != nil && r.Send.Category != plugin.TestOK {
		return 1
	}
	return 0
}

// printTestResult prints one result line of `mediagw test`, its fix and
// what was seen.
func printTestResult(w io.Writer, label string, r plugin.TestResult) {
	fmt.Fprintf(w, "%s: %s\n", label, r.Category)
	if r.Hint != "" {
		fmt.Fprintf(w, "  fix:    %s\n", r.Hint)
	}
	if r.Detail != "" {
		fmt.Fprintf(w, "  detail: %s\n", r.Detail)
	}
}
