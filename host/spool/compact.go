package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Size is how the spool file is used: FileBytes on disk, of which LiveBytes
// hold data and FreeBytes are pages bbolt keeps for reuse (and the tail the
// file was grown by). Only Compact gives FreeBytes back to the disk.
type Size struct {
	FileBytes int64 `json:"file_bytes"`
	LiveBytes int64 `json:"live_bytes"`
	FreeBytes int64 `json:"free_bytes"`
}

// Compaction is what one Compact did.
type Compaction struct {
	Before Size      `json:"before"`
	After  Size      `json:"after"`
	At     time.Time `json:"at"`
	// Paused is how long writes (accepts, outcomes, state saves) and reads
	// waited: the copy and the swap.
	Paused time.Duration `json:"paused_ns"`
}

// Reclaimed is the disk space the compaction gave back.
func (c Compaction) Reclaimed() int64 { return c.Before.FileBytes - c.After.FileBytes }

// compactPath is the copy a compaction writes beside the live file.
func compactPath(path string) string { return path + ".compact" }

// Size reports the file's size and how much of it is live.
func (s *Spool) Size() (Size, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return Size{}, ErrClosed
	}
	return s.sizeLocked()
}

func (s *Spool) sizeLocked() (Size, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return Size{}, fmt.Errorf("spool: size: %w", err)
	}
	var used, pageSize int64
	err = s.db.View(func(tx *bolt.Tx) error {
		used = tx.Size() // up to the highest page in use
		// Info reads the mapping, which a writer may remap; a read
		// transaction holds the remap off.
		pageSize = int64(tx.DB().Info().PageSize)
		return nil
	})
	if err != nil {
		return Size{}, fmt.Errorf("spool: size: %w", err)
	}
	st := s.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * pageSize
	sz := Size{FileBytes: fi.Size()}
	sz.FreeBytes = min(free+max(sz.FileBytes-used, 0), sz.FileBytes)
	sz.LiveBytes = sz.FileBytes - sz.FreeBytes
	return sz, nil
}

// LastCompaction is the spool's last compaction since it was opened (nil:
// none).
func (s *Spool) LastCompaction() *Compaction { return s.lastCompaction.Load() }

// Compact copies the live data into a new file beside the spool, syncs it
// and its folder, renames it over the spool file and goes on with it: the
// space free pages held goes back to the disk, and the memory map shrinks
// with the file. Every transaction waits meanwhile (Compaction.Paused).
//
// A crash at any point leaves a whole spool: before the rename the old
// file is live (Open removes the copy), after it the new one, which holds
// everything the old one did.
func (s *Spool) Compact(ctx context.Context) (Compaction, error) {
	if err := ctx.Err(); err != nil {
		return Compaction{}, fmt.Errorf("spool: compact: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	if s.db == nil {
		return Compaction{}, ErrClosed
	}
	before, err := s.sizeLocked()
	if err != nil {
		return Compaction{}, fmt.Errorf("spool: compact: %w", err)
	}
	if err := s.sweepDocsLocked(); err != nil {
		return Compaction{}, fmt.Errorf("spool: compact: %w", err)
	}
	dst, err := s.copyLocked()
	if err != nil {
		return Compaction{}, fmt.Errorf("spool: compact: %w", err)
	}
	// The commit point: from here on the path names the copy.
	if err := os.Rename(compactPath(s.path), s.path); err != nil {
		dst.Close()
		os.Remove(compactPath(s.path))
		return Compaction{}, fmt.Errorf("spool: compact: %w", err)
	}
	s.step("renamed")
	// The old file has no name any more: writes go to the copy even if the
	// folder cannot be synced (then the error says the rename may not
	// survive a power cut).
	old := s.db
	dst.NoSync = false
	s.db = dst
	dirErr := syncDir(filepath.Dir(s.path))
	s.step("synced-dir")
	closeErr := old.Close()
	after, err := s.sizeLocked()
	c := Compaction{Before: before, After: after, At: start, Paused: time.Since(start)}
	s.lastCompaction.Store(&c)
	if err := errors.Join(dirErr, closeErr, err); err != nil {
		return c, fmt.Errorf("spool: compact: %w", err)
	}
	return c, nil
}

// copyLocked writes the live data to compactPath, synced. The copy stays
// open (its lock held) so that no other process takes the file between
// the rename and its use.
func (s *Spool) copyLocked() (*bolt.DB, error) {
	tmp := compactPath(s.path)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// One sync at the end instead of one per commit of the copy.
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		return nil, err
	}
	s.step("created")
	fail := func(err error) (*bolt.DB, error) {
		dst.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := bolt.Compact(dst, s.db, 16<<20); err != nil {
		return fail(err)
	}
	s.step("copied")
	if err := dst.Sync(); err != nil {
		return fail(err)
	}
	s.step("synced")
	return dst, nil
}

func (s *Spool) step(name string) {
	if s.compactHook != nil {
		s.compactHook(name)
	}
}
