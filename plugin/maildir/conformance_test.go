package maildir

import (
	"path/filepath"
	"testing"

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
