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

	settle settleStream
}

var _ Connector = (*GRPCClient)(nil)
var _ HealthReporter = (*GRPCClient)(nil)

// NewGRPCClient wraps a generated client.
func NewGRPCClient(c connectorv1.ConnectorClient) *GRPCClient {
	return &GRPCClient{c: c}
}

const rpcTimeout = 30 * time.Second

// Info asks the plugin for its name and capabilities.
func (g *GRPCClient) Info(ctx context.Context) (Info, error) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	r, err := g.c.Info(ctx, &connectorv1.InfoRequest{})
	if err != nil {
		return Info{}, fmt.Errorf("plugin: info: %w", err)
	}
	return Info{Name: r.Name, Version: r.Version, Description: r.Description, Capabilities: r.Capabilities}, nil
}

// ConfigSchema asks the plugin for its configuration keys.
func (g *GRPCClient) ConfigSchema(ctx context.Context) ([]ConfigField, error) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	r, err := g.c.ConfigSchema(ctx, &connectorv1.ConfigSchemaRequest{})
	if err != nil {
		return nil, fmt.Errorf("plugin: config schema: %w", err)
	}
	out := make([]ConfigField, 0, len(r.Fields))
	for _, f := range r.Fields {
		out = append(out, ConfigField{Name: f.Name, Type: f.Type, Description: f.Description, Required: f.Required, Default: f.Default})
	}
	return out, nil
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
	rs, err := g.c.Receive(ctx, &connectorv1.ReceiveRequest{MaxInFlight: uint32(n), Batches: true})
	if err != nil {
		fail(fmt.Errorf("%w: %v", ErrStreamEnded, err))
		return
	}
	var cur *Message
	deliver := func(m *Message) bool {
		select {
		case g.msgs <- m:
			return true
		case <-ctx.Done():
			fail(ErrStreamEnded)
			return false
		}
	}
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
		if len(f.Messages) > 0 {
			// A batch of whole messages: each body is the frame's own
			// bytes, not copied again.
			for _, w := range f.Messages {
				if w.Envelope == nil {
					fail(fmt.Errorf("%w: message without envelope", ErrStreamEnded))
					return
				}
				m := fromEnvelope(w.Envelope)
				m.Raw = w.Data
				if !deliver(m) {
					return
				}
			}
			continue
		}
		switch {
		case f.Envelope != nil:
			cur = fromEnvelope(f.Envelope)
			if f.Last {
				cur.Raw = f.Data // one frame: its bytes are the message
			} else {
				cur.Raw = append(make([]byte, 0, f.Envelope.Size), f.Data...)
			}
		case cur != nil:
			cur.Raw = append(cur.Raw, f.Data...)
		default:
			fail(fmt.Errorf("%w: frame without envelope", ErrStreamEnded))
			return
		}
		if f.Last {
			if !deliver(cur) {
				return
			}
			cur = nil
		}
	}
}

func fromEnvelope(e *connectorv1.Envelope) *Message {
	m := &Message{DeliveryID: e.DeliveryId, SourceID: e.SourceId, Metadata: e.Metadata}
	if e.ReceivedUnixMs != 0 {
		m.ReceivedAt = time.UnixMilli(e.ReceivedUnixMs)
	}
	return m
}

// Settle sends the host's verdict on a delivery: over the Settle stream,
// with the settlements of other deliveries made at the same moment, or with
// the Ack RPC when the plugin has no Settle stream.
func (g *GRPCClient) Settle(ctx context.Context, deliveryID string, s Settlement) error {
	kind, err := settlementToProto(s.Kind)
	if err != nil {
		return err
	}
	req := &connectorv1.AckRequest{
		DeliveryId: deliveryID, Settlement: kind, Reason: s.Reason, RetryAfterMs: s.RetryAfter.Milliseconds(),
	}
	if code, msg, ok := g.settle.do(ctx, g, req); ok {
		return settleError(deliveryID, code, msg, nil)
	}
	return g.ack(ctx, req)
}

// ack settles one delivery with the Ack RPC.
func (g *GRPCClient) ack(ctx context.Context, req *connectorv1.AckRequest) error {
	_, err := g.c.Ack(ctx, req)
	return settleError(req.DeliveryId, status.Code(err), status.Convert(err).Message(), err)
}

// settleError turns the answer to one settlement into the SDK's errors.
func settleError(deliveryID string, code codes.Code, msg string, err error) error {
	switch code {
	case codes.OK:
		return nil
	case codes.Unavailable:
		// The plugin process is gone (or its connector is closed): its
		// deliveries died with it and come again from the source; settling
		// them again cannot succeed.
		return fmt.Errorf("settle %s: %w: %s", deliveryID, ErrStreamEnded, msg)
	case codes.Aborted:
		// The connector is running and said no: the delivery keeps its
		// credit until a later try succeeds.
		return fmt.Errorf("settle %s: %w: %s", deliveryID, ErrSettleRefused, msg)
	default:
		if err == nil {
			err = status.Error(code, msg)
		}
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
	g.settle.close()
	return nil
}
