package main_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestFaxSendDialPlan runs the built `mediagw fax send` against the modem
// emulator: the number as written in the region is dialled after the
// outside line; a premium-rate number is refused before anything is
// dialled; the removed --dial-prefix names its replacements.
func TestFaxSendDialPlan(t *testing.T) {
	sim := startFaxsim(t)
	bin := filepath.Join(binaries(t), "mediagw")
	doc := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(doc, []byte("A short note.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, append([]string{"fax", "send", "--device", sim.dev, "--class", "1"}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout *regexp.Regexp
		stderr string
	}{
		{"national number behind a PBX", []string{"--region", "US", "--outside-line", "9", "--to", "(201) 555-0100", "-v", doc}, 0,
			regexp.MustCompile(`(?m)^\s+\S+s\s+dial\s+912015550100$`), ""},
		{"international, allowed by pattern", []string{"--region", "US", "--dial-modifiers", "T", "--allow", "+44 20*", "--to", "+44 20 7946 0018", "-v", doc}, 0,
			regexp.MustCompile(`(?m)^\s+\S+s\s+dial\s+T011442079460018$`), ""},
		{"premium rate", []string{"--region", "US", "--to", "1-900-555-0199", doc}, 1, nil,
			"number refused by the dial policy: +19005550199 is a premium-rate number"},
		{"international, refused by default", []string{"--region", "GB", "--to", "+1 201 555 0100", doc}, 1, nil,
			"+12015550100 is international (US; the line is in GB)"},
		{"no region", []string{"--to", "+1 201 555 0100", doc}, 2, nil, "Usage:"},
		{"dial prefix, removed", []string{"--region", "US", "--dial-prefix", "9,", "--to", "+1 201 555 0100", doc}, 2, nil,
			"--dial-prefix was removed: --outside-line takes a PBX code, --dial-modifiers the modem's T, P, W"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(tt.args...)
			if code != tt.code || tt.stdout != nil && !tt.stdout.MatchString(stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
		})
	}
}

// TestFaxSendECM runs the built `mediagw fax send` against the emulator
// offering ECM and MMR: by default the page goes MMR over ECM; --ecm off,
// --encoding and --max-speed change what is negotiated.
func TestFaxSendECM(t *testing.T) {
	sim := startFaxsim(t, "-ecm")
	bin := filepath.Join(binaries(t), "mediagw")
	doc := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(doc, []byte("A short note.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string // in the "sent" line
	}{
		{"default", nil, "at V.17 14400, fine, MMR with ECM in"},
		{"ecm off", []string{"--ecm", "off"}, "at V.17 14400, fine, MR in"},
		{"MH over ECM", []string{"--encoding", "mh"}, "at V.17 14400, fine, MH with ECM in"},
		{"max speed", []string{"--max-speed", "9600"}, "at V.17 9600, fine, MMR with ECM in"},
		{"modulations V.29", []string{"--modulations", "V.29"}, "at V.29 9600, fine, MMR with ECM in"},
		{"modulations V.27ter, any case", []string{"--modulations", " v.27ter"}, "at V.27ter 4800, fine, MMR with ECM in"},
		{"modulations V.29 and V.27ter", []string{"--modulations", "V.27ter,V.29"}, "at V.29 9600, fine, MMR with ECM in"},
		{"letter paper", []string{"--paper", "letter"}, "at V.17 14400, fine, MMR with ECM in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"fax", "send", "--device", sim.dev, "--class", "1", "--region", "US", "--to", "+1 201 555 0100"}, tt.args...)
			out, err := exec.Command(bin, append(args, doc)...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), tt.want) {
				t.Errorf("%v: %v\n%s\nwant %q", tt.args, err, out, tt.want)
			}
		})
	}
}

// TestFaxSendFlags: an unknown modulation or paper size is refused before
// the modem is opened, naming what is accepted.
func TestFaxSendFlags(t *testing.T) {
	bin := filepath.Join(binaries(t), "mediagw")
	doc := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(doc, []byte("A short note.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"unknown modulation", []string{"--modulations", "V.17,V.34"}, `--modulations: want V.17, V.29 or V.27ter, got "V.34"`},
		{"modulation without dot", []string{"--modulations", "V29"}, `--modulations: want V.17, V.29 or V.27ter, got "V29"`},
		{"unknown paper", []string{"--paper", "legal"}, `--paper: want a4 or letter, got "legal"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"fax", "send", "--device", "/dev/null-no-modem", "--region", "US", "--to", "+1 201 555 0100"}, tt.args...)
			cmd := exec.Command(bin, append(args, doc)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("%v: %v\n%s\nwant exit 2 and %q", tt.args, err, stderr.String(), tt.stderr)
			}
		})
	}
}
