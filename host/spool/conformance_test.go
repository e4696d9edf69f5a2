package spool_test

import (
	"path/filepath"
	"testing"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/host/spool/spooltest"
)

// TestConformance runs the Store contract's conformance test on the bbolt
// backend.
func TestConformance(t *testing.T) {
	spooltest.Run(t, func(t *testing.T) spool.Store {
		s, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return corruptible{s}
	})
}

// corruptible lets the conformance test plant an undecodable job.
type corruptible struct{ *spool.Spool }

func (c corruptible) Corrupt(t *testing.T, id string) {
	t.Helper()
	if err := c.CorruptJob(id); err != nil {
		t.Fatal(err)
	}
}
