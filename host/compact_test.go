package host

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/linedriver"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// completeAll leases every due job of driver and records o for it.
func completeAll(t *testing.T, sp spool.Store, driver string, o linedriver.Outcome) {
	t.Helper()
	for {
		e, _, err := sp.Lease(t.Context(), driver, "test", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if e == nil {
			return
		}
		if _, err := sp.Complete(t.Context(), e.Job.ID, "test", o, true, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// burst accepts n mails of 4 KiB for driver fax.
func burst(t *testing.T, h *Host, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("m%d.fax", i)
		j := &linedriver.Job{ID: id, Driver: "fax", Record: linedriver.Record{ID: id, SourceID: id,
			Documents: []linedriver.Document{{Name: "a.txt", MediaType: "text/plain", Data: bytes.Repeat([]byte("x"), 4096)}}}}
		if _, err := h.Spool().Accept(t.Context(), "inbox", id, []*linedriver.Job{j}); err != nil {
			t.Fatal(err)
		}
	}
}

// When a burst has been delivered and the queue is empty, the host
// compacts the spool and says so in one log line.
func TestAutoCompactWhenDrained(t *testing.T) {
	dir := t.TempDir()
	p := planWith(dir, &idleDriver{}, "a")
	p.Config.Spool.Compact = config.Compact{Auto: true, MinSize: 256 << 10}
	var log syncBuffer
	h, err := New(p, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	burst(t, h, 300)
	before, _ := h.maint.Size()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, p) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(log.String(), "spool compacted") {
		if time.Now().After(deadline) {
			t.Fatalf("no compaction within 30s after the burst (file %+v); log:\n%s", before, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	line := log.String()[strings.Index(log.String(), "msg=\"spool compacted\""):]
	line = line[:strings.IndexByte(line, '\n')]
	for _, want := range []string{"reason=\"queue empty\"", "reclaimed_bytes=", "paused="} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
	st, _ := h.Status(t.Context())
	if st.Spool.LastCompaction == nil || st.Spool.FileBytes >= before.FileBytes/2 {
		t.Errorf("status after compaction: %+v (before: %+v)", st.Spool, before)
	}
	if m := h.metricsSnapshot(); m.SpoolCompactions != 1 || m.SpoolFileBytes != st.Spool.FileBytes {
		t.Errorf("metrics: %d compactions, file %d bytes; want 1, %d", m.SpoolCompactions, m.SpoolFileBytes, st.Spool.FileBytes)
	}
}

// The policy: automatic compaction on, a file of at least min_size, more
// than half of it free.
func TestAutoCompactPolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		compact config.Compact
		deliver bool // deliver the burst (free pages) or leave it queued
		want    bool
	}{
		{"burst delivered", config.Compact{Auto: true, MinSize: 256 << 10}, true, true},
		{"auto off", config.Compact{Auto: false, MinSize: 256 << 10}, true, false},
		{"file under min_size", config.Compact{Auto: true, MinSize: 64 << 20}, true, false},
		{"burst still queued", config.Compact{Auto: true, MinSize: 256 << 10}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planWith(t.TempDir(), &idleDriver{}, "a")
			p.Config.Spool.Compact = tc.compact
			h, err := New(p, slog.New(slog.NewTextHandler(&syncBuffer{}, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer h.Spool().Close()
			h.plan = p
			burst(t, h, 200)
			if tc.deliver {
				completeAll(t, h.Spool(), "fax", linedriver.Done(nil))
			}
			h.autoCompact(context.Background(), "hourly")
			if got := h.maint.LastCompaction() != nil; got != tc.want {
				t.Fatalf("compacted = %v, want %v", got, tc.want)
			}
			// Checks after the queue empties are spaced out; hourly ones are not.
			if tc.want {
				first := h.maint.LastCompaction()
				h.Spool().Forget(t.Context(), time.Now().Add(time.Hour))
				burst(t, h, 200) // another burst: free pages again
				for i := range 200 {
					h.Spool().Purge(t.Context(), fmt.Sprintf("m%d.fax", i))
				}
				h.Spool().Forget(t.Context(), time.Now().Add(time.Hour))
				if sz, _ := h.maint.Size(); !worthCompacting(sz, int64(tc.compact.MinSize)) {
					t.Fatalf("after the second burst: %+v", sz)
				}
				h.autoCompact(context.Background(), "queue empty")
				if h.maint.LastCompaction() != first {
					t.Fatal("a check within a minute of a compaction compacted again")
				}
				h.now = func() time.Time { return time.Now().Add(2 * autoCheckSpacing) }
				h.autoCompact(context.Background(), "queue empty")
				if h.maint.LastCompaction() == first {
					t.Fatal("a check two minutes after a compaction did not compact a file mostly free")
				}
			}
		})
	}
}
