package config

import (
	"testing"

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
