package host

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/pluginmgr"
	"github.com/mediagw/mediagw/internal/testenv"
)

// TestLaunchConnectorRejectedConfig: a connector whose plugin rejects its
// settings fails to launch with the plugin's problem at its file:line, no
// heading before it, and the error is still pluginmgr.ErrConfig.
func TestLaunchConnectorRejectedConfig(t *testing.T) {
	bin := testenv.Binaries(t, "github.com/mediagw/mediagw/plugin/maildir/cmd/mediagw-connector-maildir")
	dir := t.TempDir()
	bad := strings.Replace(reportConfig, "poll_interval: 10ms", "poll_interval: -1s", 1)
	cfgFile := filepath.Join(dir, "mediagw.yaml")
	if err := os.WriteFile(filepath.Join(dir, "fax.yaml"), []byte(reportMap), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, fmt.Appendf(nil, bad, filepath.Join(bin, "mediagw-connector-maildir")), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	plan, err := Prepare(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	inst, err := LaunchConnector(plan, "inbox", log)
	if err == nil {
		inst.Kill()
		t.Fatal("launched with poll_interval: -1s")
	}
	if !errors.Is(err, pluginmgr.ErrConfig) {
		t.Errorf("error %v is not pluginmgr.ErrConfig", err)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, pluginmgr.ErrConfig.Error()) || !strings.Contains(msg, "poll_interval") || !strings.Contains(msg, "mediagw.yaml:") {
		t.Errorf("error %q: want the plugin's problem at its file:line, no heading", msg)
	}
}
