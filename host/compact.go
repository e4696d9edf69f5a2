package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mediagw/mediagw/host/spool"
)

// autoCheckSpacing keeps checks after the queue empties (it may empty
// often in a burst) at least this far apart; the hourly check always runs.
const autoCheckSpacing = time.Minute

// ErrNoCompaction is returned by CompactSpool when the spool's backend
// keeps no file of its own to compact (a shared database).
var ErrNoCompaction = errors.New("the spool's backend has no compaction")

// CompactSpool compacts the spool now (the operator asked): accepts,
// outcomes and state saves wait while the live data is copied.
func (h *Host) CompactSpool(ctx context.Context) (spool.Compaction, error) {
	return h.compact(ctx, "operator")
}

// autoCompact compacts the spool when spool.compact.auto is on, the file is
// at least spool.compact.min_size and more than half of it is free.
func (h *Host) autoCompact(ctx context.Context, reason string) {
	h.mu.Lock()
	cc := h.plan.Config.Spool.Compact // as last reloaded
	h.mu.Unlock()
	if !cc.Auto || h.maint == nil {
		return
	}
	now := h.now()
	if reason != "hourly" && now.Sub(h.lastAuto) < autoCheckSpacing {
		return
	}
	sz, err := h.maint.Size()
	if err != nil {
		h.log.Warn("spool: size", "error", err)
		return
	}
	if !worthCompacting(sz, int64(cc.MinSize)) {
		return
	}
	h.lastAuto = now
	h.compact(ctx, reason)
}

// worthCompacting: a file of at least minSize whose free pages are more than
// half of it.
func worthCompacting(sz spool.Size, minSize int64) bool {
	return sz.FileBytes >= minSize && sz.FreeBytes*2 > sz.FileBytes
}

func (h *Host) compact(ctx context.Context, reason string) (spool.Compaction, error) {
	h.compactMu.Lock()
	defer h.compactMu.Unlock()
	if h.maint == nil {
		return spool.Compaction{}, fmt.Errorf("host: %w", ErrNoCompaction)
	}
	c, err := h.maint.Compact(ctx)
	if c.After.FileBytes > 0 {
		h.compactions.Add(1)
	}
	if err != nil {
		h.log.Error("spool: compact", "reason", reason, "error", err)
		return c, fmt.Errorf("host: %w", err)
	}
	h.log.Info("spool compacted", slog.String("component", "spool"), slog.String("reason", reason),
		slog.String("file", fmt.Sprintf("%s → %s", mib(c.Before.FileBytes), mib(c.After.FileBytes))),
		slog.Int64("reclaimed_bytes", c.Reclaimed()), slog.Int64("live_bytes", c.After.LiveBytes),
		slog.Duration("paused", c.Paused.Round(time.Microsecond)))
	return c, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
