package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const value = "Qx8~s3cr3t-VALUE.9z"

func TestEveryFormatRedacts(t *testing.T) {
	s := New(value)
	type cfg struct {
		ClientID     string
		ClientSecret Secret
		Ptr          *Secret
	}
	c := cfg{ClientID: "app", ClientSecret: s, Ptr: &s}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T"} {
		for name, arg := range map[string]any{"value": s, "pointer": &s, "struct": c, "slice": []Secret{s}, "map": map[string]Secret{"k": s}} {
			out := fmt.Sprintf(verb, arg)
			if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) || strings.Contains(strings.ToLower(out), strings.ToLower(fmt.Sprintf("%X", value))) {
				t.Errorf("fmt %s of %s leaks the secret: %s", verb, name, out)
			}
		}
	}
	if got := fmt.Sprint(s); got != Redacted {
		t.Errorf("Sprint = %q, want %q", got, Redacted)
	}
	if err := fmt.Errorf("login with %v failed", s); strings.Contains(err.Error(), value) {
		t.Errorf("error leaks the secret: %v", err)
	}
}

func TestLogsAndJSONRedact(t *testing.T) {
	s := New(value)
	var buf bytes.Buffer
	for _, h := range []slog.Handler{
		slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
	} {
		log := slog.New(h)
		log.Debug("configure", "client_secret", s, "ptr", &s, "group", slog.GroupValue(slog.Any("secret", s)))
		log.With("secret", s).Info("with")
	}
	b, err := json.Marshal(struct {
		S Secret  `json:"s"`
		P *Secret `json:"p"`
	}{s, &s})
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(b)
	y, err := yaml.Marshal(map[string]Secret{"s": s})
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(y)
	out := buf.String()
	if strings.Contains(out, value) {
		t.Fatalf("log, JSON or YAML output leaks the secret:\n%s", out)
	}
	if strings.Count(out, Redacted) < 8 {
		t.Fatalf("expected [redacted] in every line:\n%s", out)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte(value+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MEDIAGW_TEST_SECRET", value)
	for _, tc := range []struct {
		in, want, ref, wantErr string
	}{
		{in: value, want: value},
		{in: "env:MEDIAGW_TEST_SECRET", want: value, ref: "env:MEDIAGW_TEST_SECRET"},
		{in: "file:" + file, want: value, ref: "file:" + file},
		{in: "env:MEDIAGW_TEST_UNSET", wantErr: "environment variable MEDIAGW_TEST_UNSET is not set"},
		{in: "file:" + filepath.Join(dir, "missing"), wantErr: "no such file"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			s, err := Resolve(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Resolve(%q) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Reveal() != tc.want || s.Ref() != tc.ref {
				t.Fatalf("Resolve(%q) = %q (ref %q), want %q (ref %q)", tc.in, s.Reveal(), s.Ref(), tc.want, tc.ref)
			}
		})
	}
}

func TestFileErrorNeverShowsContent(t *testing.T) {
	// A directory cannot be read as a file; the error names the path only.
	dir := t.TempDir()
	_, err := Resolve("file:" + dir)
	var pe *os.PathError
	if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Resolve(dir) = %v, want an error naming the path (not a wrapped PathError)", err)
	}
}

func TestUnmarshal(t *testing.T) {
	t.Setenv("MEDIAGW_TEST_SECRET", value)
	var fromJSON struct {
		S Secret `json:"s"`
	}
	if err := json.Unmarshal([]byte(`{"s":"env:MEDIAGW_TEST_SECRET"}`), &fromJSON); err != nil || fromJSON.S.Reveal() != value {
		t.Fatalf("JSON: %q, %v", fromJSON.S.Reveal(), err)
	}
	if err := json.Unmarshal([]byte(`{"s":5}`), &fromJSON); err == nil {
		t.Fatal("JSON number accepted as a secret")
	}
	var fromYAML struct {
		S Secret `yaml:"s"`
	}
	if err := yaml.Unmarshal([]byte("a: 1\ns: env:MEDIAGW_TEST_SECRET\n"), &fromYAML); err != nil || fromYAML.S.Reveal() != value {
		t.Fatalf("YAML: %q, %v", fromYAML.S.Reveal(), err)
	}
	err := yaml.Unmarshal([]byte("a: 1\ns: env:MEDIAGW_TEST_UNSET\n"), &fromYAML)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("YAML with an unset variable: %v, want an error at line 2", err)
	}
	if err := yaml.Unmarshal([]byte("s: [a, b]\n"), &fromYAML); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("YAML list accepted as a secret: %v", err)
	}
	if !(Secret{}).IsZero() || New("x").IsZero() {
		t.Fatal("IsZero")
	}
}
