package main

import (
	"bytes"
	"os"
	"sort"
	"strings"
	"testing"
)

// runCLI runs mediagw in process with the given stdin.
func runCLI(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = dispatch(args, stdio{in: strings.NewReader(stdin), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

// TestHelp: --help and -h print the usage of every command to stdout and
// exit 0, as they do for mediagw itself and for a group of commands.
func TestHelp(t *testing.T) {
	type helpCase struct {
		args []string
		want string // in stdout
	}
	cases := []helpCase{
		{[]string{"--help"}, "Usage: mediagw COMMAND"},
		{[]string{"-h"}, "Usage: mediagw COMMAND"},
		{[]string{"help"}, "Usage: mediagw COMMAND"},
		{nil, "Usage: mediagw COMMAND"},
		{[]string{"fax", "--help"}, "Subcommands of fax:"},
		{[]string{"datamap", "-h"}, "Subcommands of datamap:"},
	}
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, flag := range []string{"--help", "-h"} {
			cases = append(cases, helpCase{append(strings.Fields(n), flag), "Usage: mediagw " + n})
		}
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI("", tc.args...)
			if code != 0 {
				t.Errorf("exit %d, want 0\nstderr:\n%s", code, stderr)
			}
			if !strings.Contains(stdout, tc.want) {
				t.Errorf("stdout lacks %q:\n%s", tc.want, stdout)
			}
			if stderr != "" {
				t.Errorf("stderr is not empty:\n%s", stderr)
			}
		})
	}
}

// TestUsageErrors: a bad flag, a missing argument or an unknown command
// exits 2 with the reason on stderr and nothing on stdout.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"validate", "--colour"}, "flag provided but not defined: -colour"},
		{[]string{"test", "-c", "x.yaml"}, "Usage: mediagw test"},
		{[]string{"fax", "send", "--to", "123"}, "Usage: mediagw fax send"},
		{[]string{"fax", "render"}, "no input files"},
		{[]string{"datamap", "try"}, "Usage: mediagw datamap try"},
		{[]string{"fax"}, "Subcommands of fax:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"spool", "export"}, "--to-postgres DSN is required"},
		{[]string{"spool", "export", "--to-postgres", "env:X", "extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI("", tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout is not empty:\n%s", stdout)
			}
		})
	}
}

// TestDatamapTryInProcess: a command reads the injected stdin and writes
// the injected stdout.
func TestDatamapTryInProcess(t *testing.T) {
	mail, err := os.ReadFile("../../examples/mail/01-order.eml")
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(string(mail), "datamap", "try", "-f", "../../examples/maps/archive.yaml")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"sender", "subject", "archive"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}
