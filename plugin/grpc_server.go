package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	connectorv1 "github.com/mediagw/mediagw/proto/mediagw/connector/v1"
)

// ChunkSize is the largest piece of a raw message sent in one frame.
const ChunkSize = 256 << 10

// DefaultMaxInFlight applies when the host asks for no limit.
const DefaultMaxInFlight = 16

// server adapts a Connector to the gRPC service, in the plugin process.
type server struct {
	connectorv1.UnimplementedConnectorServer
	impl Connector
	log  *slog.Logger

	mu      sync.Mutex
	streams map[*stream]struct{}
}

// stream is one Receive call: its credit and its unsettled deliveries.
type stream struct {
	credit   chan struct{}
	mu       sync.Mutex
	inflight map[string]struct{}
}

func newServer(impl Connector, log *slog.Logger) *server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &server{impl: impl, log: log, streams: map[*stream]struct{}{}}
}

func (s *server) Info(ctx context.Context, _ *connectorv1.InfoRequest) (*connectorv1.InfoResponse, error) {
	i, err := s.impl.Info(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "info: %v", err)
	}
	return &connectorv1.InfoResponse{Name: i.Name, Version: i.Version, Description: i.Description, Capabilities: i.Capabilities}, nil
}

func (s *server) ConfigSchema(ctx context.Context, _ *connectorv1.ConfigSchemaRequest) (*connectorv1.ConfigSchemaResponse, error) {
	fields, err := s.impl.ConfigSchema(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "config schema: %v", err)
	}
	resp := &connectorv1.ConfigSchemaResponse{}
	for _, f := range fields {
		resp.Fields = append(resp.Fields, &connectorv1.ConfigField{
			Name: f.Name, Type: f.Type, Description: f.Description, Required: f.Required, Default: f.Default,
		})
	}
	return resp, nil
}

func (s *server) Configure(ctx context.Context, req *connectorv1.ConfigureRequest) (*connectorv1.ConfigureResponse, error) {
	diags, err := s.impl.Configure(ctx, req.ConfigJson)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp := &connectorv1.ConfigureResponse{}
	for _, d := range diags {
		sev := connectorv1.Diagnostic_SEVERITY_ERROR
		if d.Severity == SeverityWarning {
			sev = connectorv1.Diagnostic_SEVERITY_WARNING
		}
		resp.Diagnostics = append(resp.Diagnostics, &connectorv1.Diagnostic{Severity: sev, Field: d.Field, Message: d.Message})
	}
	return resp, nil
}

func (s *server) Test(ctx context.Context, _ *connectorv1.TestRequest) (*connectorv1.TestResponse, error) {
	r := s.impl.Test(ctx)
	resp := &connectorv1.TestResponse{Category: categoryToProto(r.Category), Hint: r.Hint, Detail: r.Detail}
	if r.Send != nil {
		resp.Send = &connectorv1.TestResponse{Category: categoryToProto(r.Send.Category), Hint: r.Send.Hint, Detail: r.Send.Detail}
	}
	return resp, nil
}

// Receive reads messages from the connector and streams them while the
// stream has credit. Deliveries still unsettled when the stream ends are
// settled as Retry, so that they come again on the next stream.
func (s *server) Receive(req *connectorv1.ReceiveRequest, out connectorv1.Connector_ReceiveServer) error {
	n := int(req.MaxInFlight)
	if n <= 0 {
		n = DefaultMaxInFlight
	}
	st := &stream{credit: make(chan struct{}, n), inflight: map[string]struct{}{}}
	s.mu.Lock()
	s.streams[st] = struct{}{}
	s.mu.Unlock()
	defer s.endStream(st)

	ctx := out.Context()
	if req.Batches {
		return s.receiveBatches(ctx, st, n, out)
	}
	for {
		select {
		case st.credit <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		msg, err := s.impl.Read(ctx)
		if err != nil {
			<-st.credit
			if ctx.Err() != nil {
				return nil
			}
			return status.Errorf(codes.Unavailable, "read: %v", err)
		}
		st.track(msg.DeliveryID)
		if err := sendMessage(out, msg); err != nil {
			return err
		}
	}
}

func (st *stream) track(id string) {
	st.mu.Lock()
	st.inflight[id] = struct{}{}
	st.mu.Unlock()
}

// receiveBatches is Receive for a host that takes batches: one goroutine
// reads from the connector while the stream has credit, and every frame
// carries all the messages read meanwhile (up to ChunkSize of them); a
// message larger than that goes in chunks as before. The bodies are not
// copied: the frame refers to each message's bytes.
func (s *server) receiveBatches(ctx context.Context, st *stream, n int, out connectorv1.Connector_ReceiveServer) error {
	rctx, stop := context.WithCancel(ctx)
	ready := make(chan *Message, n) // credit bounds it: a send never blocks
	readErr := make(chan error, 1)
	var reader sync.WaitGroup
	// Every message read is in flight before Receive returns, so that
	// endStream hands back even those never sent.
	defer reader.Wait()
	defer stop()
	reader.Go(func() {
		for {
			select {
			case st.credit <- struct{}{}:
			case <-rctx.Done():
				return
			}
			msg, err := s.impl.Read(rctx)
			if err != nil {
				<-st.credit
				if rctx.Err() == nil {
					readErr <- err
				}
				return
			}
			st.track(msg.DeliveryID)
			ready <- msg
		}
	})
	var carry *Message
	var batch []*connectorv1.WholeMessage
	for {
		m := carry
		carry = nil
		if m == nil {
			select {
			case m = <-ready:
			default:
				select {
				case m = <-ready:
				case err := <-readErr:
					return status.Errorf(codes.Unavailable, "read: %v", err)
				case <-ctx.Done():
					return nil
				}
			}
		}
		if len(m.Raw) > ChunkSize {
			if err := sendMessage(out, m); err != nil {
				return err
			}
			continue
		}
		batch = append(batch[:0], &connectorv1.WholeMessage{Envelope: envelope(m), Data: m.Raw})
		size := len(m.Raw)
	more:
		for {
			select {
			case m := <-ready:
				if size+len(m.Raw) > ChunkSize {
					carry = m
					break more
				}
				batch = append(batch, &connectorv1.WholeMessage{Envelope: envelope(m), Data: m.Raw})
				size += len(m.Raw)
			default:
				break more
			}
		}
		if err := out.Send(&connectorv1.ReceiveResponse{Messages: batch}); err != nil {
			return err
		}
	}
}

func envelope(m *Message) *connectorv1.Envelope {
	env := &connectorv1.Envelope{
		DeliveryId: m.DeliveryID,
		SourceId:   m.SourceID,
		Size:       int64(len(m.Raw)),
		Metadata:   m.Metadata,
	}
	if !m.ReceivedAt.IsZero() {
		env.ReceivedUnixMs = m.ReceivedAt.UnixMilli()
	}
	return env
}

func sendMessage(out connectorv1.Connector_ReceiveServer, m *Message) error {
	env := envelope(m)
	raw := m.Raw
	first := true
	for first || len(raw) > 0 {
		n := min(len(raw), ChunkSize)
		frame := &connectorv1.ReceiveResponse{Data: raw[:n], Last: n == len(raw)}
		if first {
			frame.Envelope = env
			first = false
		}
		if err := out.Send(frame); err != nil {
			return err
		}
		raw = raw[n:]
	}
	return nil
}

func (s *server) endStream(st *stream) {
	s.mu.Lock()
	delete(s.streams, st)
	s.mu.Unlock()
	st.mu.Lock()
	ids := make([]string, 0, len(st.inflight))
	for id := range st.inflight {
		ids = append(ids, id)
	}
	st.inflight = map[string]struct{}{}
	st.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range ids {
		err := s.impl.Settle(ctx, id, Settlement{Kind: Retry, Reason: "host stream ended before settlement"})
		if err != nil && !errors.Is(err, ErrClosed) { // a closed connector offers nothing again in this process anyway
			// The connector still holds it as offered: it comes again only
			// when this plugin process starts again.
			s.log.Error("could not hand an unsettled message back to the connector after the host's stream ended", "delivery_id", id, "error", err)
		}
	}
}

// release removes a delivery from the stream that sent it and returns its
// credit. It reports whether the delivery was unsettled.
func (s *server) release(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for st := range s.streams {
		st.mu.Lock()
		_, ok := st.inflight[id]
		if ok {
			delete(st.inflight, id)
		}
		st.mu.Unlock()
		if ok {
			<-st.credit
			return true
		}
	}
	return false
}

func (s *server) Ack(ctx context.Context, req *connectorv1.AckRequest) (*connectorv1.AckResponse, error) {
	return s.ack(ctx, req)
}

// Settle is Ack over a stream: each settlement is carried out on its own
// (concurrently, as concurrent Ack calls would be) and its answer goes back
// with those ready at the same moment.
func (s *server) Settle(in connectorv1.Connector_SettleServer) error {
	ctx := in.Context()
	results := make(chan *connectorv1.SettleResult, 64)
	sent := make(chan error, 1)
	go func() {
		var err error
		batch := make([]*connectorv1.SettleResult, 0, 64)
		for r := range results {
			batch = append(batch[:0], r)
		more:
			for len(batch) < cap(batch) {
				select {
				case r, ok := <-results:
					if !ok {
						break more
					}
					batch = append(batch, r)
				default:
					break more
				}
			}
			if err == nil {
				err = in.Send(&connectorv1.SettleResponse{Results: batch})
			}
		}
		sent <- err
	}()
	var work sync.WaitGroup
	var err error
	for {
		req, rerr := in.Recv()
		if rerr != nil {
			if rerr != io.EOF && ctx.Err() == nil {
				err = rerr
			}
			break
		}
		for _, a := range req.Acks {
			if a.GetAck() == nil {
				results <- &connectorv1.SettleResult{Seq: a.Seq, Code: uint32(codes.InvalidArgument), Message: "settlement missing"}
				continue
			}
			work.Go(func() {
				r := &connectorv1.SettleResult{Seq: a.Seq}
				resp, err := s.ack(ctx, a.Ack)
				if err != nil {
					st := status.Convert(err)
					r.Code, r.Message = uint32(st.Code()), st.Message()
				} else {
					r.AlreadySettled = resp.AlreadySettled
				}
				results <- r
			})
		}
	}
	work.Wait()
	close(results)
	if serr := <-sent; err == nil {
		err = serr
	}
	return err
}

func (s *server) ack(ctx context.Context, req *connectorv1.AckRequest) (*connectorv1.AckResponse, error) {
	set, err := settlementFromProto(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := s.impl.Settle(ctx, req.DeliveryId, set); err != nil {
		// Not settled: the delivery keeps its credit and stays in flight.
		// The client names the delivery; the message is the connector's.
		// A closed connector is as good as gone (Unavailable, the code a
		// dead plugin gives too); any other refusal is Aborted, so the host
		// tries again instead of giving the delivery up.
		if errors.Is(err, ErrClosed) {
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		return nil, status.Error(codes.Aborted, err.Error())
	}
	was := s.release(req.DeliveryId)
	return &connectorv1.AckResponse{AlreadySettled: !was}, nil
}

func (s *server) Status(_ *connectorv1.StatusRequest, out connectorv1.Connector_StatusServer) error {
	hr, ok := s.impl.(HealthReporter)
	if !ok {
		if err := out.Send(&connectorv1.StatusResponse{Health: connectorv1.Health_HEALTH_HEALTHY, UnixMs: time.Now().UnixMilli()}); err != nil {
			return err
		}
		<-out.Context().Done()
		return nil
	}
	for h := range hr.Health(out.Context()) {
		if err := out.Send(&connectorv1.StatusResponse{Health: healthToProto(h.State), Message: h.Message, UnixMs: h.Time.UnixMilli()}); err != nil {
			return err
		}
	}
	return nil
}

func settlementFromProto(req *connectorv1.AckRequest) (Settlement, error) {
	set := Settlement{Reason: req.Reason, RetryAfter: time.Duration(req.RetryAfterMs) * time.Millisecond}
	switch req.Settlement {
	case connectorv1.Settlement_SETTLEMENT_ACK:
		set.Kind = Ack
	case connectorv1.Settlement_SETTLEMENT_RETRY:
		set.Kind = Retry
	case connectorv1.Settlement_SETTLEMENT_REJECT:
		set.Kind = Reject
	default:
		return set, errors.New("settlement kind missing")
	}
	return set, nil
}

func settlementToProto(k SettleKind) (connectorv1.Settlement, error) {
	switch k {
	case Ack:
		return connectorv1.Settlement_SETTLEMENT_ACK, nil
	case Retry:
		return connectorv1.Settlement_SETTLEMENT_RETRY, nil
	case Reject:
		return connectorv1.Settlement_SETTLEMENT_REJECT, nil
	}
	return 0, fmt.Errorf("unknown settlement %v", k)
}

// enumPair is one SDK value and its protocol value.
type enumPair[S, P comparable] struct {
	sdk   S
	proto P
}

// toProto maps v by pairs, or to otherwise when it is not listed.
func toProto[S, P comparable](pairs []enumPair[S, P], v S, otherwise P) P {
	for _, e := range pairs {
		if e.sdk == v {
			return e.proto
		}
	}
	return otherwise
}

// fromProto maps v back by pairs, or to otherwise when it is not listed.
func fromProto[S, P comparable](pairs []enumPair[S, P], v P, otherwise S) S {
	for _, e := range pairs {
		if e.proto == v {
			return e.sdk
		}
	}
	return otherwise
}

var categories = []enumPair[TestCategory, connectorv1.TestCategory]{
	{TestOK, connectorv1.TestCategory_TEST_CATEGORY_OK},
	{TestInvalidCredential, connectorv1.TestCategory_TEST_CATEGORY_INVALID_CREDENTIAL},
	{TestUnreachable, connectorv1.TestCategory_TEST_CATEGORY_UNREACHABLE},
	{TestPermissionDenied, connectorv1.TestCategory_TEST_CATEGORY_PERMISSION_DENIED},
	{TestMailboxNotFound, connectorv1.TestCategory_TEST_CATEGORY_MAILBOX_NOT_FOUND},
	{TestError, connectorv1.TestCategory_TEST_CATEGORY_ERROR},
	{TestSMTPAuthDisabled, connectorv1.TestCategory_TEST_CATEGORY_SMTP_AUTH_DISABLED},
	{TestConsentRequired, connectorv1.TestCategory_TEST_CATEGORY_CONSENT_REQUIRED},
	{TestInteractionRequired, connectorv1.TestCategory_TEST_CATEGORY_INTERACTION_REQUIRED},
}

func categoryToProto(c TestCategory) connectorv1.TestCategory {
	return toProto(categories, c, connectorv1.TestCategory_TEST_CATEGORY_ERROR)
}

func categoryFromProto(p connectorv1.TestCategory) TestCategory {
	return fromProto(categories, p, TestError)
}

var healths = []enumPair[HealthState, connectorv1.Health]{
	{HealthStarting, connectorv1.Health_HEALTH_STARTING},
	{HealthHealthy, connectorv1.Health_HEALTH_HEALTHY},
	{HealthDegraded, connectorv1.Health_HEALTH_DEGRADED},
	{HealthDown, connectorv1.Health_HEALTH_DOWN},
}

func healthToProto(h HealthState) connectorv1.Health {
	return toProto(healths, h, connectorv1.Health_HEALTH_UNSPECIFIED)
}

func healthFromProto(p connectorv1.Health) HealthState {
	return fromProto(healths, p, HealthDown)
}
