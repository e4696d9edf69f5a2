package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/datamap"
)

// TestDatamapTryExitCodes: 0 accepted, 1 rejected, 2 usage, config or map
// error; --json prints one document saying the same.
func TestDatamapTryExitCodes(t *testing.T) {
	const faxMap = "../../examples/maps/email-to-fax.yaml"
	dir := t.TempDir()
	badMap := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badMap, []byte("fields:\n  - name: x\n    frm: [{source: subject}]\nroutes: [{drivers: [fax]}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mail := func(headers, body string) string {
		return strings.ReplaceAll("From: Ann <ann@example.com>\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <t@example.com>\n"+headers+"\n"+body, "\n", "\r\n")
	}
	good := mail("To: fax@fax.example.com\nSubject: Fax: (201) 555-0142\n", "Attention: Billing\nPlease pay the invoice.\n")
	noNumber := mail("To: fax@fax.example.com\nSubject: please fax\n", "no number\n")
	for _, c := range []struct {
		name  string
		args  []string
		stdin string
		code  int
		out   []string // in stdout
		err   string   // in stderr
	}{
		{"accepted", []string{"-f", faxMap}, good, 0, []string{"fax_number (fax) = +12015550142", "     | Please pay the invoice.", "\nOK\n"}, ""},
		{"rejected", []string{"-f", faxMap}, noNumber, 1, []string{"REJECTED: fax_number: no match in To, Subject or X-Fax-Number", "tried:\n  To local (fax@fax.example.com): \"fax\"", "header X-Fax-Number: (not in the mail)"}, ""},
		{"no arguments", nil, good, 2, nil, "Usage:"},
		{"unknown flag", []string{"-x", "-f", faxMap}, good, 2, nil, "flag provided but not defined"},
		{"map file missing", []string{"-f", filepath.Join(dir, "nope.yaml")}, good, 2, nil, "nope.yaml"},
		{"map file with an unknown key", []string{"-f", badMap}, good, 2, nil, "frm"},
		{"config missing", []string{"-c", filepath.Join(dir, "nope.yaml"), "email-to-fax"}, good, 2, nil, "nope.yaml"},
		{"no mail", []string{"-f", faxMap}, "", 2, nil, "no mail on stdin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runDatamapTry(c.args, stdio{in: strings.NewReader(c.stdin), out: &stdout, err: &stderr})
			if code != c.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, stdout.String(), stderr.String())
			}
			for _, o := range c.out {
				if !strings.Contains(stdout.String(), o) {
					t.Errorf("stdout lacks %q:\n%s", o, stdout.String())
				}
			}
			if c.err != "" && !strings.Contains(stderr.String(), c.err) {
				t.Errorf("stderr lacks %q:\n%s", c.err, stderr.String())
			}
		})
	}

	for _, c := range []struct {
		name     string
		stdin    string
		code     int
		accepted bool
	}{{"json accepted", good, 0, true}, {"json rejected", noNumber, 1, false}} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runDatamapTry([]string{"--json", "-f", faxMap}, stdio{in: strings.NewReader(c.stdin), out: &stdout, err: &stderr})
			if code != c.code {
				t.Fatalf("exit code %d, want %d: %s", code, c.code, stderr.String())
			}
			var p datamap.Preview
			dec := json.NewDecoder(&stdout)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				t.Fatalf("not one JSON preview: %v", err)
			}
			if p.Accepted != c.accepted {
				t.Errorf("accepted = %v, want %v", p.Accepted, c.accepted)
			}
			if c.accepted {
				if len(p.Documents) != 1 || p.Documents[0].Text == nil || p.Documents[0].Text.Lines[1] != "Please pay the invoice." {
					t.Errorf("documents %+v, want the cover text's lines", p.Documents)
				}
				if p.Route == nil || p.Route.Drivers[0] != "fax" || p.Rejection != nil {
					t.Errorf("route %+v, rejection %+v", p.Route, p.Rejection)
				}
			} else if p.Rejection == nil || p.Rejection.Field != "fax_number" || len(p.Rejection.Tried) != 3 {
				t.Errorf("rejection %+v, want fax_number with three sources tried", p.Rejection)
			}
		})
	}
}
