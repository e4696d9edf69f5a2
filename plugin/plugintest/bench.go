package plugintest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin"
)

// BenchReadAck measures Read followed by Settle(Ack) for messages of about
// size bytes: it injects batches of messages with the timer stopped and
// times reading and acking them. It reports msg/s beside the usual figures,
// so the same connector can be compared in process and through Wrap in one
// run.
func BenchReadAck(b *testing.B, h Harness, size int) {
	const batch = 64
	src := h.NewSource(b)
	c := h.Open(b, src.Config(b))
	template := Message("bench-00000000", size)
	oldID := []byte(messageID("bench-00000000"))
	b.SetBytes(int64(len(template)))
	b.ResetTimer()
	var elapsed time.Duration
	done := 0
	for done < b.N {
		b.StopTimer()
		k := min(batch, b.N-done)
		for i := range k {
			raw := bytes.Replace(template, oldID, []byte(messageID(fmt.Sprintf("bench-%08d", done+i))), 1)
			src.Inject(b, raw)
		}
		b.StartTimer()
		start := time.Now()
		for range k {
			ctx, cancel := context.WithTimeout(context.Background(), h.timeout())
			m, err := c.Read(ctx)
			cancel()
			if err != nil {
				b.Fatalf("Read: %v", err)
			}
			if len(m.Raw) != len(template) {
				b.Fatalf("Read: %d bytes, want %d", len(m.Raw), len(template))
			}
			if err := c.Settle(context.Background(), m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
				b.Fatalf("Settle: %v", err)
			}
		}
		elapsed += time.Since(start)
		done += k
	}
	b.StopTimer()
	if elapsed > 0 {
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
	}
}
