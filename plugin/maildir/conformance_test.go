package maildir

import (
	"path/filepath"
	"testing"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/plugin/plugintest"
)

func TestConformance(t *testing.T) {
	t.Run("maildir", func(t *testing.T) {
		plugintest.RunConformance(t, harness(newMaildir))
	})
	t.Run("maildir_own_folders", func(t *testing.T) {
		plugintest.RunConformance(t, harness(func(t testing.TB) *dirSource {
			s := newMaildir(t)
			s.processed = filepath.Join(filepath.Dir(s.path), "done")
			s.failed = filepath.Join(filepath.Dir(s.path), "bad")
			return s
		}))
	})
	t.Run("eml", func(t *testing.T) {
		plugintest.RunConformance(t, harness(newEMLDir))
	})
}

// TestConformancePlugin runs the suite through the plugin boundary: the
// built plugin binary, started by go-plugin as the host starts it.
func TestConformancePlugin(t *testing.T) {
	testenv.Short(t)
	bin := plugintest.BuildPlugin(t, "github.com/mediagw/mediagw/plugin/maildir/cmd/mediagw-connector-maildir")
	t.Run("maildir", func(t *testing.T) {
		h := harness(newMaildir)
		h.Wrap = plugintest.ProcessWrap(t, bin)
		plugintest.RunConformance(t, h)
	})
	t.Run("eml", func(t *testing.T) {
		h := harness(newEMLDir)
		h.Wrap = plugintest.ProcessWrap(t, bin)
		plugintest.RunConformance(t, h)
	})
	t.Run("send_relay", func(t *testing.T) {
		h := harness(newMaildir)
		h.Wrap = plugintest.ProcessWrap(t, bin)
		h.Sink = &relaySink{}
		plugintest.RunConformance(t, h)
	})
}
