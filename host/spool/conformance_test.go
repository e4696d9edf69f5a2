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
		return open(t, filepath.Join(t.TempDir(), "spool.db"))
	})
}

func open(t *testing.T, path string) spool.Store {
	s, err := spool.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return corruptible{s, path}
}

// corruptible lets the conformance test plant an undecodable job and
// reopen the file.
type corruptible struct {
	*spool.Spool
	path string
}

func (c corruptible) Reopen(t *testing.T) spool.Store {
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return open(t, c.path)
}

func (c corruptible) Corrupt(t *testing.T, id string) {
	t.Helper()
	if err := c.CorruptJob(id); err != nil {
		t.Fatal(err)
	}
}
