package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestKeyLine(t *testing.T) {
	var doc yaml.Node
	src := "path: x\nimap:\n  host: h\n  port: 993\nfolders:\n  - INBOX\n  - Sent\n"
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	n := doc.Content[0]
	for _, tc := range []struct {
		path string
		want int
	}{
		{"", 1}, {"path", 1}, {"imap", 2}, {"imap.port", 4}, {"imap.user", 2}, {"folders.1", 7}, {"colour", 1},
	} {
		if got := KeyLine(n, tc.path); got != tc.want {
			t.Errorf("KeyLine(%q) = %d, want %d", tc.path, got, tc.want)
		}
	}
}

// TestParseProblems: a mistake in the file is an error naming file:line,
// never a crash, and every problem is reported at once.
func TestParseProblems(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "mediagw.yaml")
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"connector and driver with nothing under them",
			"connectors:\n  inbox:\ndrivers:\n  fax:\n",
			[]string{cfgFile + ":4: driver fax: type is missing", cfgFile + ":2: connector inbox: map is missing", cfgFile + ":2: connector inbox: plugin is missing"}},
		{"no connectors", "log:\n  level: info\n", []string{"no connectors"}},
		{"unknown key", "connectors:\n  inbox:\n    plugn: x\n", []string{cfgFile + ":3: field plugn not found"}},
		{"bad level and route", "log:\n  level: loud\nconnectors:\n  inbox:\n    routes: [pager]\n",
			[]string{cfgFile + ":1: log.level \"loud\"", `route "pager" is not defined under drivers:`}},
		{"bad duration", "spool:\n  forget_after: two weeks\n", []string{cfgFile + `:2: "two weeks" is not a duration`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(cfgFile, []byte(tc.src))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse = %v, want a *config.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
		})
	}
}

// spool.failed_retention defaults to 30 days; the file may set it.
func TestFailedRetention(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want time.Duration
	}{
		{"dir: var/spool\n", 30 * 24 * time.Hour},
		{"failed_retention: 168h\n", 7 * 24 * time.Hour},
	} {
		sp := Defaults.Spool
		if err := yaml.Unmarshal([]byte(tc.src), &sp); err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if got := time.Duration(sp.FailedRetention); got != tc.want {
			t.Errorf("%q: failed_retention %v, want %v", tc.src, got, tc.want)
		}
	}
}
