package maildir

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name      string
		json      string
		wantField []string // fields of the error diagnostics, in order
		check     func(t *testing.T, c Config)
	}{
		{name: "defaults", json: `{"path":"/srv/mail"}`, check: func(t *testing.T, c Config) {
			if c.Path != "/srv/mail" || c.Processed != "" || c.Failed != "" {
				t.Errorf("folders: %+v", c)
			}
			if c.PollInterval != time.Second || c.MaxMessageSize != 50<<20 {
				t.Errorf("defaults: poll %v, max %d", c.PollInterval, c.MaxMessageSize)
			}
		}},
		{name: "all keys", json: `{"path":"/a","processed":"/b","failed":"/c","poll_interval":"250ms","max_message_size":"2MiB"}`,
			check: func(t *testing.T, c Config) {
				if c.Processed != "/b" || c.Failed != "/c" || c.PollInterval != 250*time.Millisecond || c.MaxMessageSize != 2<<20 {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "size as number", json: `{"path":"/a","max_message_size":1234}`, check: func(t *testing.T, c Config) {
			if c.MaxMessageSize != 1234 {
				t.Errorf("max %d", c.MaxMessageSize)
			}
		}},
		{name: "relative path made absolute", json: `{"path":"mail"}`, check: func(t *testing.T, c Config) {
			if !strings.HasPrefix(c.Path, "/") || !strings.HasSuffix(c.Path, "/mail") {
				t.Errorf("path %q", c.Path)
			}
		}},
		{name: "nulls are defaults", json: `{"path":"/a","processed":null,"poll_interval":null,"max_message_size":null}`,
			check: func(t *testing.T, c Config) {
				if c.Processed != "" || c.PollInterval != time.Second || c.MaxMessageSize != 50<<20 {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "missing path", json: `{}`, wantField: []string{"path"}},
		{name: "empty path", json: `{"path":"  "}`, wantField: []string{"path"}},
		{name: "null path", json: `{"path":null}`, wantField: []string{"path"}},
		{name: "path wrong type", json: `{"path":["a"]}`, wantField: []string{"path"}},
		{name: "unknown keys sorted", json: `{"path":"/a","zeta":1,"alpha":2}`, wantField: []string{"alpha", "zeta"}},
		{name: "misspelt key", json: `{"path":"/a","poll_intervall":"1s"}`, wantField: []string{"poll_intervall"}},
		{name: "poll number", json: `{"path":"/a","poll_interval":1}`, wantField: []string{"poll_interval"}},
		{name: "poll negative", json: `{"path":"/a","poll_interval":"-1s"}`, wantField: []string{"poll_interval"}},
		{name: "poll too short", json: `{"path":"/a","poll_interval":"10us"}`, wantField: []string{"poll_interval"}},
		{name: "size zero", json: `{"path":"/a","max_message_size":0}`, wantField: []string{"max_message_size"}},
		{name: "size fraction", json: `{"path":"/a","max_message_size":1.5}`, wantField: []string{"max_message_size"}},
		{name: "size bad unit", json: `{"path":"/a","max_message_size":"3 TB"}`, wantField: []string{"max_message_size"}},
		{name: "size bool", json: `{"path":"/a","max_message_size":true}`, wantField: []string{"max_message_size"}},
		{name: "processed equals path", json: `{"path":"/a","processed":"/a/"}`, wantField: []string{"processed"}},
		{name: "failed is new", json: `{"path":"/a","failed":"/a/new"}`, wantField: []string{"failed"}},
		{name: "several at once", json: `{"poll_interval":"x","bogus":1}`, wantField: []string{"bogus", "path", "poll_interval"}},
		{name: "not an object", json: `[1]`, wantField: []string{""}},
		{name: "truncated", json: `{"path":`, wantField: []string{""}},
		{name: "trailing data", json: `{"path":"/a"} {}`, wantField: []string{""}},
		{name: "null", json: `null`, wantField: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := parseConfig([]byte(tt.json))
			var got []string
			for _, d := range diags {
				if d.Severity == plugin.SeverityError {
					got = append(got, d.Field)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.wantField, ",") {
				t.Fatalf("error fields %q, want %q (diagnostics %v)", got, tt.wantField, diags)
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false},
		{"512", 512, false},
		{"512B", 512, false},
		{"4KB", 4000, false},
		{"4kib", 4096, false},
		{" 50 MB ", 50_000_000, false},
		{"50MiB", 50 << 20, false},
		{"1GiB", 1 << 30, false},
		{"2g", 2_000_000_000, false},
		{"", 0, true},
		{"MB", 0, true},
		{"-1", 0, true},
		{"1.5MB", 0, true},
		{"10 parsecs", 0, true},
		{"99999999999999999999", 0, true},
		{"9999999999999GiB", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1", "4KB", "50MiB", "1 gib", "x", "9223372036854775807", "9223372036854775807KB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{"path":"/a"}`, `{"path":"/a","max_message_size":"5MB","poll_interval":"1s"}`, `{"x":1}`, `[]`, `{"path":1}`} {
		f.Add([]byte(s))
	}
	known := map[string]bool{"": true}
	for _, fld := range schema {
		known[fld.Name] = true
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, diags := parseConfig(b)
		var obj map[string]json.RawMessage
		_ = json.NewDecoder(bytes.NewReader(b)).Decode(&obj) // the first value, as parseConfig reads it
		for _, d := range diags {
			if _, inInput := obj[d.Field]; !known[d.Field] && !inInput {
				t.Fatalf("diagnostic names %q, neither a known key nor one in the input", d.Field)
			}
		}
		if !diags.HasErrors() {
			if cfg.Path == "" || cfg.PollInterval < minPollInterval || cfg.MaxMessageSize <= 0 {
				t.Fatalf("accepted an unusable config %+v from %q", cfg, b)
			}
		}
	})
}

func FuzzSeenName(f *testing.F) {
	for _, s := range []string{"1700000000.M1P2.host", "x:2,F", "x:2,S", "x:1,abc", "x:", ":2,", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		seen := seenName(name)
		if baseName(seen) != baseName(name) {
			t.Fatalf("seenName(%q) = %q changes the base name", name, seen)
		}
		if seenName(seen) != seen {
			t.Fatalf("seenName is not idempotent: %q → %q → %q", name, seen, seenName(seen))
		}
		_, info, _ := strings.Cut(seen, ":")
		if !strings.HasPrefix(info, "2,") || !strings.Contains(info[2:], "S") {
			t.Fatalf("seenName(%q) = %q has no S flag", name, seen)
		}
	})
}

// The unknown-key diagnostic lists every key the schema has, so a user who
// misspells one sees the right spelling.
func TestUnknownKeyNamesEveryKey(t *testing.T) {
	_, diags := parseConfig([]byte(`{"path":"/a","poll_intervall":"1s"}`))
	if len(diags) != 1 {
		t.Fatalf("diagnostics %v, want one", diags)
	}
	for _, f := range schema {
		if !strings.Contains(diags[0].Message, f.Name) {
			t.Errorf("unknown-key message %q does not name %q", diags[0].Message, f.Name)
		}
	}
}
