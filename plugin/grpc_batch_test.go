package plugin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	connectorv1 "github.com/mediagw/mediagw/proto/mediagw/connector/v1"
)

// oldServer is the plugin side as the SDK was before batches: it has no
// Settle stream (UNIMPLEMENTED) and does not know ReceiveRequest.batches.
type oldServer struct {
	connectorv1.UnimplementedConnectorServer
	s *server
}

func (o oldServer) Receive(req *connectorv1.ReceiveRequest, out connectorv1.Connector_ReceiveServer) error {
	return o.s.Receive(&connectorv1.ReceiveRequest{MaxInFlight: req.MaxInFlight}, out)
}

func (o oldServer) Ack(ctx context.Context, req *connectorv1.AckRequest) (*connectorv1.AckResponse, error) {
	return o.s.Ack(ctx, req)
}

// oldPlugin serves a connector as a plugin built with the old SDK.
type oldPlugin struct{ grpcPlugin }

func (p *oldPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	connectorv1.RegisterConnectorServer(s, oldServer{s: newServer(p.impl, nil)})
	return nil
}

// The host reads and settles the same way through a plugin built with this
// SDK (batches, the Settle stream) and one built before (a message per
// frame, Ack): every message arrives whole, every settlement reaches the
// connector with its kind and reason, and a repeated settlement is no error.
func TestGRPCBatchesAndOldPlugins(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), (2*ChunkSize+5)/16)
	for _, sdk := range []string{"current", "old"} {
		t.Run(sdk, func(t *testing.T) {
			var raws [][]byte
			for i := range 40 {
				raws = append(raws, []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)))
			}
			raws = append(raws[:20:20], append([][]byte{big}, raws[20:]...)...)
			mem := newMem(raws...)
			var p goplugin.Plugin = &grpcPlugin{impl: mem}
			if sdk == "old" {
				p = &oldPlugin{grpcPlugin{impl: mem}}
			}
			client, _ := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{PluginName: p})
			t.Cleanup(func() { client.Close() })
			raw, err := client.Dispense(PluginName)
			if err != nil {
				t.Fatal(err)
			}
			c := raw.(*GRPCClient)
			c.MaxInFlight = 64
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			var wg sync.WaitGroup
			errs := make(chan error, 2*len(raws))
			want := map[string]Settlement{}
			for i := range raws {
				m, err := c.Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				fmt.Sscan(m.Metadata["i"], &n)
				if !bytes.Equal(m.Raw, raws[n]) {
					t.Fatalf("message %d (%s): %d bytes, want %d", i, m.SourceID, len(m.Raw), len(raws[n]))
				}
				s := Settlement{Kind: Ack}
				if n%3 == 1 {
					s = Settlement{Kind: Reject, Reason: fmt.Sprint("reason ", n)}
				}
				want[m.DeliveryID] = s
				wg.Go(func() {
					errs <- c.Settle(ctx, m.DeliveryID, s)
					errs <- c.Settle(ctx, m.DeliveryID, s) // idempotent
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			mem.mu.Lock()
			defer mem.mu.Unlock()
			for id, s := range want {
				if got := mem.settled[id]; got.Kind != s.Kind || got.Reason != s.Reason {
					t.Errorf("%s settled %+v, want %+v", id, got, s)
				}
			}
			if len(mem.inflight) != 0 {
				t.Errorf("%d deliveries unsettled", len(mem.inflight))
			}
		})
	}
}

// A host that asks for batches gets the messages that were ready together
// in one frame (whole, in order), a message larger than a frame in chunks;
// a host built before batches gets one message per frame as it always did.
func TestGRPCReceiveFrames(t *testing.T) {
	big := bytes.Repeat([]byte("x"), ChunkSize+1)
	for _, batches := range []bool{true, false} {
		t.Run(fmt.Sprint("batches=", batches), func(t *testing.T) {
			var raws [][]byte
			for i := range 30 {
				raws = append(raws, []byte(fmt.Sprint("message ", i)))
			}
			raws = append(raws, big)
			mem := newMem(raws...)
			client, _ := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{PluginName: &grpcPlugin{impl: mem}})
			t.Cleanup(func() { client.Close() })
			rc := connectorv1.NewConnectorClient(client.Conn)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			rs, err := rc.Receive(ctx, &connectorv1.ReceiveRequest{MaxInFlight: 64, Batches: batches})
			if err != nil {
				t.Fatal(err)
			}
			var got [][]byte
			var cur []byte
			most := 0
			for len(got) < len(raws) {
				f, err := rs.Recv()
				if err == io.EOF || err != nil {
					t.Fatalf("after %d messages: %v", len(got), err)
				}
				if len(f.Messages) > 0 && (f.Envelope != nil || len(f.Data) > 0) {
					t.Fatal("a frame with a batch and a chunk")
				}
				if len(f.Messages) > 0 && !batches {
					t.Fatal("a batch for a host that did not ask for one")
				}
				most = max(most, len(f.Messages))
				for _, w := range f.Messages {
					got = append(got, w.Data)
				}
				if len(f.Messages) == 0 {
					cur = append(cur, f.Data...)
					if f.Last {
						got = append(got, cur)
						cur = nil
					}
				}
			}
			for i := range raws {
				if !bytes.Equal(got[i], raws[i]) {
					t.Errorf("message %d: %d bytes, want %d", i, len(got[i]), len(raws[i]))
				}
			}
			if batches && most < 2 {
				t.Errorf("at most %d message in a frame with 30 ready", most)
			}
		})
	}
}
