package pluginmgr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin"
)

func TestBackoff(t *testing.T) {
	const s = time.Second
	cases := []struct {
		name string
		ran  []time.Duration // how long each run lasted
		want []time.Duration // the wait before each relaunch
	}{
		{"crash loop doubles from 5 s to the 2 min cap",
			[]time.Duration{0, 1 * s, 0, 2 * s, 0, 0, 0, 0},
			[]time.Duration{5 * s, 10 * s, 20 * s, 40 * s, 80 * s, 120 * s, 120 * s, 120 * s}},
		{"a run of 2 min starts over",
			[]time.Duration{0, 0, 0, 2 * time.Minute, 0},
			[]time.Duration{5 * s, 10 * s, 20 * s, 5 * s, 10 * s}},
		{"just under stable keeps doubling",
			[]time.Duration{0, 2*time.Minute - 1, 2*time.Minute - 1},
			[]time.Duration{5 * s, 10 * s, 20 * s}},
		{"long runs every time stay at 5 s",
			[]time.Duration{time.Hour, 3 * time.Minute, 10 * time.Minute},
			[]time.Duration{5 * s, 5 * s, 5 * s}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := DefaultBackoff()
			for i, ran := range tc.ran {
				if got := b.Next(ran); got != tc.want[i] {
					t.Errorf("relaunch %d after a run of %v: wait %v, want %v", i+1, ran, got, tc.want[i])
				}
			}
		})
	}
}

func TestStateSnapshot(t *testing.T) {
	var st State
	st.Set(func(s *State) { s.Health, s.Pid = plugin.HealthHealthy, 42 })
	snap := st.Snapshot()
	st.Set(func(s *State) {
		s.Health, s.Pid, s.LastError = plugin.HealthDown, 0, "exit status 2"
		s.Restarts++
	})
	if snap.Health != plugin.HealthHealthy || snap.Pid != 42 || snap.Restarts != 0 {
		t.Errorf("snapshot changed with the state: health %s pid %d restarts %d", snap.Health, snap.Pid, snap.Restarts)
	}
	now := st.Snapshot()
	if now.Health != plugin.HealthDown || now.Pid != 0 || now.Restarts != 1 || now.LastError != "exit status 2" {
		t.Errorf("state after a crash: health %s pid %d restarts %d error %q", now.Health, now.Pid, now.Restarts, now.LastError)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// notAPlugin is a program that exits without the go-plugin handshake.
func notAPlugin(t *testing.T) string {
	t.Helper()
	return testenv.LookPath(t, "true")
}

func TestLaunchFailures(t *testing.T) {
	bin := notAPlugin(t)
	cases := []struct {
		name     string
		path     string
		checksum string
		want     string
	}{
		{"missing binary", filepath.Join(t.TempDir(), "no-such-plugin"), "", "connector inbox: start plugin"},
		{"checksum mismatch", bin, "sha256:" + strings.Repeat("0", 64), "does not match its configured checksum; refusing to run it"},
		{"checksum not hex", bin, "sha256:xyz", "connector inbox: encoding/hex"},
		{"right checksum, no handshake", bin, sha(t, bin), "connector inbox: start plugin"},
		{"no handshake", bin, "", "connector inbox: start plugin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			inst, err := Launch(ctx, Spec{Name: "inbox", Path: tc.path, Checksum: tc.checksum, Log: quiet()})
			if err == nil {
				inst.Kill()
				t.Fatal("Launch succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Launch error %q, want it to contain %q", err, tc.want)
			}
			if errors.Is(err, ErrConfig) {
				t.Errorf("%v is not a configuration rejection", err)
			}
		})
	}
}

// maildirPlugin builds the maildir connector, a real plugin binary, once
// per test run.
func maildirPlugin(t *testing.T) string {
	t.Helper()
	if testing.Short() && !testenv.InCI() {
		t.Skip("builds a plugin binary")
	}
	dir := testenv.Binaries(t, "github.com/mediagw/mediagw/plugin/maildir/cmd/mediagw-connector-maildir")
	return filepath.Join(dir, "mediagw-connector-maildir")
}

func TestMain(m *testing.M) { testenv.RunMain(m) }

func TestLaunchRealPlugin(t *testing.T) {
	bin := maildirPlugin(t)
	dir := t.TempDir()
	for _, d := range []string{"Maildir/new", "Maildir/cur", "Maildir/tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("configuration rejected", func(t *testing.T) {
		_, err := Launch(ctx, Spec{Name: "inbox", Path: bin, Dir: dir, ConfigJSON: []byte(`{"path":"Maildir","colour":"blue"}`), Log: quiet(),
			ConfigError: func(d plugin.Diagnostic) string { return "mediagw.yaml:7: config." + d.Field + ": " + d.Message }})
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("Launch = %v, want ErrConfig", err)
		}
		if !strings.Contains(err.Error(), "mediagw.yaml:7: config.colour:") {
			t.Errorf("error %q does not point at the config line", err)
		}
	})

	t.Run("started, checksum verified, killed", func(t *testing.T) {
		inst, err := Launch(ctx, Spec{Name: "inbox", Path: bin, Dir: dir, Checksum: sha(t, bin),
			ConfigJSON: []byte(`{"path":"Maildir"}`), MaxInFlight: 4, Log: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		if inst.Pid <= 0 || syscall.Kill(inst.Pid, 0) != nil {
			t.Fatalf("pid %d is not a running process", inst.Pid)
		}
		if inst.Info.Name == "" {
			t.Errorf("Info has no name: %+v", inst.Info)
		}
		if err := os.WriteFile(filepath.Join(dir, "Maildir/new/m1"), []byte("Subject: x\r\n\r\nhi\r\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		m, err := inst.Connector.Read(rctx)
		rcancel()
		if err != nil || m.SourceID != "maildir:m1" {
			t.Fatalf("Read = %+v, %v", m, err)
		}
		if err := inst.Connector.Settle(ctx, m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
			t.Fatal(err)
		}
		inst.Kill()
		testenv.Eventually(t, 5*time.Second, "the plugin to end after Kill", func() bool { return syscall.Kill(inst.Pid, 0) != nil })
		if cur, _ := os.ReadDir(filepath.Join(dir, "Maildir/cur")); len(cur) != 1 {
			t.Errorf("acked message not in cur/ (%d files)", len(cur))
		}
		if slices.Contains(inst.Info.Capabilities, plugin.CapabilitySend) {
			t.Errorf("a connector without send: lists %v", inst.Info.Capabilities)
		}
	})

	t.Run("capabilities after the settings", func(t *testing.T) {
		inst, err := Launch(ctx, Spec{Name: "inbox", Path: bin, Dir: dir,
			ConfigJSON: []byte(`{"path":"Maildir","send":{"outbox":"Outbox"}}`), Log: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Kill()
		if !slices.Contains(inst.Info.Capabilities, plugin.CapabilitySend) || !plugin.Sends(t.Context(), inst.Connector) {
			t.Errorf("a connector configured to send lists %v", inst.Info.Capabilities)
		}
	})
}

// The plugin's own log lines reach the host's logger with their levels, and
// the host's log.level decides which are shown.
func TestPluginLogLevels(t *testing.T) {
	bin := maildirPlugin(t)
	for _, tc := range []struct {
		level     slog.Level
		wantDebug bool
	}{{slog.LevelDebug, true}, {slog.LevelInfo, false}} {
		t.Run(tc.level.String(), func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"Maildir/new", "Maildir/cur", "Maildir/tmp"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			os.WriteFile(filepath.Join(dir, "Maildir/new/m1"), []byte("Subject: x\r\n\r\nhi\r\n"), 0o644)
			var buf testenv.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level}))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			inst, err := Launch(ctx, Spec{Name: "inbox", Path: bin, Dir: dir, ConfigJSON: []byte(`{"path":"Maildir"}`), MaxInFlight: 1, Log: log})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Kill()
			if _, err := inst.Connector.Read(ctx); err != nil {
				t.Fatal(err)
			}
			// The plugin logs "maildir: offered" at debug when it offers m1;
			// give the relay a moment to pass it on.
			if tc.wantDebug {
				testenv.Eventually(t, 3*time.Second, "the plugin's debug line", func() bool { return strings.Contains(buf.String(), "maildir: offered") })
			} else {
				time.Sleep(300 * time.Millisecond)
			}
			out := buf.String()
			if got := strings.Contains(out, "maildir: offered"); got != tc.wantDebug {
				t.Fatalf("log.level %s: plugin debug line shown=%v, want %v\n%s", tc.level, got, tc.wantDebug, out)
			}
			if tc.wantDebug && !strings.Contains(out, "level=DEBUG") {
				t.Errorf("plugin debug line not logged at DEBUG:\n%s", out)
			}
			if strings.Contains(out, " timestamp=") {
				t.Errorf("relayed plugin lines repeat the time:\n%s", out)
			}
		})
	}
}
