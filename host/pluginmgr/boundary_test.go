package pluginmgr

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
)

func TestPluginEnv(t *testing.T) {
	host := []string{
		"PATH=/usr/bin", "HOME=/var/lib/mediagw", "TZ=Europe/Zurich", "LANG=de_CH.UTF-8", "LC_TIME=C",
		"TMPDIR=/tmp", "SSL_CERT_FILE=/etc/ca.pem", "HTTPS_PROXY=http://proxy:3128", "no_proxy=localhost",
		"O365_CLIENT_SECRET=s3cret", "DB_PASSWORD=hunter2", "AWS_SECRET_ACCESS_KEY=x", "ODD",
	}
	cases := []struct {
		name   string
		config string
		want   []string // names passed beyond the base set
	}{
		{"no references", `{"path":"Maildir"}`, nil},
		{"a named secret", `{"client_secret":"env:O365_CLIENT_SECRET"}`, []string{"O365_CLIENT_SECRET"}},
		{"nested and in lists", `{"a":{"b":["x","env:DB_PASSWORD"]},"n":3,"t":true}`, []string{"DB_PASSWORD"}},
		{"named but not set", `{"client_secret":"env:NOT_SET"}`, nil},
		{"env: alone names nothing", `{"x":"env:"}`, nil},
		{"not JSON", `{`, nil},
	}
	base := []string{"PATH", "HOME", "TZ", "LANG", "LC_TIME", "TMPDIR", "SSL_CERT_FILE", "HTTPS_PROXY", "no_proxy"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, kv := range pluginEnv([]byte(tc.config), host) {
				k, _, _ := strings.Cut(kv, "=")
				got = append(got, k)
			}
			want := append(slices.Clone(base), tc.want...)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("plugin environment %v, want %v", got, want)
			}
		})
	}
}

// environOf reads a running process's environment.
func environOf(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		testenv.Skip(t, "no /proc: "+err.Error())
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	return env
}

// The real O365 plugin, started as the host starts it, sees the secret its
// settings name and none of the host's other secrets.
func TestPluginEnvironmentReal(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Binaries(t, "github.com/mediagw/mediagw/plugin/o365/cmd/mediagw-connector-o365")
	t.Setenv("O365_CLIENT_SECRET", "named-secret-value")
	t.Setenv("MEDIAGW_TEST_UNRELATED_SECRET", "unrelated-secret-value")
	cfg := `{"email_user":"fax@contoso.com","tenant_id":"contoso.onmicrosoft.com",
		"client_id":"3b9d6e0a-7c41-4f2b-8d5e-1a2b3c4d5e6f","client_secret":"env:O365_CLIENT_SECRET","state_dir":"` + t.TempDir() + `"}`
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inst, err := Launch(ctx, Spec{Name: "fax", Path: filepath.Join(dir, "mediagw-connector-o365"), Dir: t.TempDir(), ConfigJSON: []byte(cfg), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Kill()
	env := environOf(t, inst.Pid)
	if env["O365_CLIENT_SECRET"] != "named-secret-value" {
		t.Errorf("the plugin lacks O365_CLIENT_SECRET, which its config names")
	}
	if _, ok := env["MEDIAGW_TEST_UNRELATED_SECRET"]; ok {
		t.Errorf("the plugin sees the host's MEDIAGW_TEST_UNRELATED_SECRET")
	}
	if env["PATH"] != os.Getenv("PATH") {
		t.Errorf("the plugin's PATH is %q, want the host's", env["PATH"])
	}
}

// A plugin that writes plain text to stderr and exits: the operator sees its
// words at warn, with the plugin's name, and the launch error repeats them
// instead of go-plugin's guess at a wrong architecture.
func TestPlainStderrShown(t *testing.T) {
	sh := testenv.LookPath(t, "sh")
	bin := filepath.Join(t.TempDir(), "mediagw-connector-broken")
	script := "#!" + sh + "\necho 'starting up' >&2\necho 'fatal: cannot start' >&2\nexit 1\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf testenv.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := Launch(ctx, Spec{Name: "inbox", Path: bin, Log: log.With("connector", "inbox")})
	if err == nil {
		inst.Kill()
		t.Fatal("Launch succeeded")
	}
	if !errors.Is(err, ErrStart) {
		t.Errorf("Launch = %v, want ErrStart", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "fatal: cannot start") || !strings.Contains(msg, "starting up") || strings.Contains(msg, "architecture") {
		t.Errorf("Launch = %q, want the plugin's last stderr lines and no architecture hint", msg)
	}
	var line string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, "fatal: cannot start") {
			line = l
		}
	}
	for _, want := range []string{"level=WARN", "plugin=mediagw-connector-broken", "connector=inbox"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %s; log:\n%s", line, want, buf.String())
		}
	}
}
