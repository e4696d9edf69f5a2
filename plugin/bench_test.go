package plugin

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// endless offers the same message forever.
type endless struct {
	memConnector
	raw []byte
	n   int
}

func (e *endless) Read(ctx context.Context) (*Message, error) {
	e.mu.Lock()
	e.n++
	id := fmt.Sprintf("d%d", e.n)
	e.mu.Unlock()
	return &Message{DeliveryID: id, SourceID: "s" + id, Raw: e.raw}, nil
}

func (e *endless) Settle(context.Context, string, Settlement) error { return nil }

// BenchmarkEnvelopes compares Read+Settle through the gRPC plugin boundary
// (go-plugin's transport over a local socket, chunked frames, Ack RPC) with
// the same connector called in process.
func BenchmarkEnvelopes(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		raw := bytes.Repeat([]byte("x"), size)
		b.Run(fmt.Sprintf("size=%dKB/in-process", size>>10), func(b *testing.B) {
			runEnvelopes(b, &endless{raw: raw}, size)
		})
		b.Run(fmt.Sprintf("size=%dKB/grpc", size>>10), func(b *testing.B) {
			c := connectB(b, &endless{raw: raw})
			runEnvelopes(b, c, size)
		})
	}
}

func runEnvelopes(b *testing.B, c Connector, size int) {
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := c.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(m.Raw) != size {
			b.Fatalf("got %d bytes", len(m.Raw))
		}
		if err := c.Settle(ctx, m.DeliveryID, Settlement{Kind: Ack}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
}
