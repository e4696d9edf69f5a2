package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	connectorv1 "github.com/mediagw/mediagw/proto/mediagw/connector/v1"
)

// ErrStreamEnded is returned by a gRPC client's Read when the plugin ended
// the Receive stream (it crashed, or it was stopped). Unsettled messages
// come again on the next stream.
var ErrStreamEnded = errors.New("plugin receive stream ended")

// ErrSettleRefused is returned by a gRPC client's Settle when the plugin is
// running but its connector could not carry out the settlement (a lost IMAP
// session, an unwritable folder). The delivery is still unsettled and keeps
// its place in flight: settle it again later. The error's text carries the
// connector's reason.
var ErrSettleRefused = errors.New("connector refused the settlement")

// GRPCClient is the host side of a connector plugin: it implements Connector
// over the gRPC connection go-plugin made.
type GRPCClient struct {
	c connectorv1.ConnectorClient

	// MaxInFlight bounds unsettled envelopes on the stream; set it before
	// the first Read. Zero means DefaultMaxInFlight.
	MaxInFlight int

	once    sync.Once
	cancel  context.CancelFunc
	msgs    chan *Message
	mu      sync.Mutex
	recvErr error
	closed  bool
}

var _ Connector = (*GRPCClient)(nil)
var _ HealthReporter = (*GRPCClient)(nil)

// NewGRPCClient wraps a generated client.
func NewGRPCClient(c connectorv1.ConnectorClient) *GRPCClient {
	return &GRPCClient{c: c}
}

const rpcTimeout = 30 * time.Second

// Info asks the plugin for its name. On a transport error it returns a zero Info.
func (g *GRPCClient) Info() Info {
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	r, err := g.c.Info(ctx, &connectorv1.InfoRequest{})
	if err != nil {
		return Info{}
	}
	return Info{Name: r.Name, Version: r.Version, Description: r.Description, Capabilities: r.Capabilities}
}

// ConfigSchema asks the plugin for its configuration keys.
func (g *GRPCClient) ConfigSchema() []ConfigField {
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	r, err := g.c.ConfigSchema(ctx, &connectorv1.ConfigSchemaRequest{})
	if err != nil {
		return nil
	}
	out := make([]ConfigField, 0, len(r.Fields))
	for _, f := range r.Fields {
		out = append(out, ConfigField{Name: f.Name, Type: f.Type, Description: f.Description, Required: f.Required, Default: f.Default})
	}
	return out
}

// Configure sends the configuration and returns the plugin's diagnostics.
func (g *GRPCClient) Configure(ctx context.Context, configJSON []byte) (Diagnostics, error) {
	r, err := g.c.Configure(ctx, &connectorv1.ConfigureRequest{ConfigJson: configJSON})
	if err != nil {
		return nil, fmt.Errorf("configure: %w", err)
	}
	var ds Diagnostics
	for _, d := range r.Diagnostics {
		sev := SeverityError
		if d.Severity == connectorv1.Diagnostic_SEVERITY_WARNING {
			sev = SeverityWarning
		}
		ds = append(ds, Diagnostic{Severity: sev, Field: d.Field, Message: d.Message})
	}
	return ds, nil
}

// Test runs the plugin's Test.
func (g *GRPCClient) Test(ctx context.Context) TestResult {
	r, err := g.c.Test(ctx, &connectorv1.TestRequest{})
	if err != nil {
		return TestResult{Category: TestError, Hint: "the connector plugin did not answer; see the gateway log", Detail: err.Error()}
	}
	res := TestResult{Category: categoryFromProto(r.Category), Hint: r.Hint, Detail: r.Detail}
	if r.Send != nil {
		res.Send = &TestResult{Category: categoryFromProto(r.Send.Category), Hint: r.Send.Hint, Detail: r.Send.Detail}
	}
	return res
}

// Read returns the next message from the plugin's Receive stream, opening the
// stream on first use. After the stream ends it returns ErrStreamEnded
// (wrapping the cause) for good: the host makes a new client.
func (g *GRPCClient) Read(ctx context.Context) (*Message, error) {
	g.once.Do(g.start)
	select {
	case m, ok := <-g.msgs:
		if !ok {
			g.mu.Lock()
			err := g.recvErr
			if g.closed {
				err = ErrClosed
			}
			g.mu.Unlock()
			return nil, err
		}
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *GRPCClient) start() {
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	n := g.MaxInFlight
	if n <= 0 {
		n = DefaultMaxInFlight
	}
	g.msgs = make(chan *Message)
	go g.pump(ctx, n)
}

func (g *GRPCClient) pump(ctx context.Context, n int) {
	defer close(g.msgs)
	fail := func(err error) {
		g.mu.Lock()
		g.recvErr = err
		g.mu.Unlock()
	}
	rs, err := g.c.Receive(ctx, &connectorv1.ReceiveRequest{MaxInFlight: uint32(n)})
	if err != nil {
		fail(fmt.Errorf("%w: %v", ErrStreamEnded, err))
		return
	}
	var cur *Message
	for {
		f, err := rs.Recv()
		if err != nil {
			if err == io.EOF || ctx.Err() != nil {
				err = nil
			}
			if err == nil {
				fail(ErrStreamEnded)
			} else {
				fail(fmt.Errorf("%w: %v", ErrStreamEnded, err))
			}
			return
		}
		if f.Envelope != nil {
			e := f.Envelope
			cur = &Message{DeliveryID: e.DeliveryId, SourceID: e.SourceId, Metadata: e.Metadata, Raw: make([]byte, 0, e.Size)}
			if e.ReceivedUnixMs != 0 {
				cur.ReceivedAt = time.UnixMilli(e.ReceivedUnixMs)
			}
		}
		if cur == nil {
			fail(fmt.Errorf("%w: frame without envelope", ErrStreamEnded))
			return
		}
		cur.Raw = append(cur.Raw, f.Data...)
		if f.Last {
			select {
			case g.msgs <- cur:
			case <-ctx.Done():
				fail(ErrStreamEnded)
				return
			}
			cur = nil
		}
	}
}

// Settle sends the host's verdict on a delivery.
func (g *GRPCClient) Settle(ctx context.Context, deliveryID string, s Settlement) error {
	kind, err := settlementToProto(s.Kind)
	if err != nil {
		return err
	}
	_, err = g.c.Ack(ctx, &connectorv1.AckRequest{
		DeliveryId: deliveryID, Settlement: kind, Reason: s.Reason, RetryAfterMs: s.RetryAfter.Milliseconds(),
	})
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.Unavailable:
		// The plugin process is gone (or its connector is closed): its
		// deliveries died with it and come again from the source; settling
		// them again cannot succeed.
		return fmt.Errorf("settle %s: %w: %v", deliveryID, ErrStreamEnded, err)
	case codes.Aborted:
		// The connector is running and said no: the delivery keeps its
		// credit until a later try succeeds.
		return fmt.Errorf("settle %s: %w: %s", deliveryID, ErrSettleRefused, status.Convert(err).Message())
	default:
		return fmt.Errorf("settle %s: %w", deliveryID, err)
	}
}

// Health streams the plugin's health changes until ctx ends or the plugin goes.
func (g *GRPCClient) Health(ctx context.Context) <-chan Health {
	out := make(chan Health, 1)
	go func() {
		defer close(out)
		st, err := g.c.Status(ctx, &connectorv1.StatusRequest{})
		if err != nil {
			return
		}
		for {
			r, err := st.Recv()
			if err != nil {
				return
			}
			h := Health{State: healthFromProto(r.Health), Message: r.Message, Time: time.UnixMilli(r.UnixMs)}
			select {
			case out <- h:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Close ends the Receive stream. The plugin process itself is ended by the
// go-plugin client that made this connection.
func (g *GRPCClient) Close() error {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.once.Do(func() { g.msgs = make(chan *Message); close(g.msgs) })
	if g.cancel != nil {
		g.cancel()
	}
	return nil
}
