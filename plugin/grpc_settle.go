package plugin

import (
	"context"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	connectorv1 "github.com/mediagw/mediagw/proto/mediagw/connector/v1"
)

// settleStream carries the host's settlements to the plugin over the Settle
// stream: the settlements made while the previous frame was on its way go
// together in the next (at most maxSettleBatch), each numbered, and each
// caller waits for its own answer. When the stream is not there — a plugin
// built before it answers UNIMPLEMENTED, or the stream ended — every
// settlement still unanswered, and every later one, goes by the Ack RPC;
// settlements are idempotent, so one that reached the plugin before the
// stream ended is answered "already settled".
type settleStream struct {
	once   sync.Once
	calls  chan *settleCall
	dead   chan struct{} // closed when the stream ended: use Ack
	cancel context.CancelFunc

	mu      sync.Mutex
	pending map[uint64]*settleCall
	seq     uint64
	ended   bool
}

const maxSettleBatch = 256

type settleCall struct {
	req  *connectorv1.AckRequest
	done chan settleAnswer
}

type settleAnswer struct {
	code codes.Code
	msg  string
	ok   bool // false: not settled over the stream, use Ack
}

func (s *settleStream) start(g *GRPCClient) {
	s.calls = make(chan *settleCall)
	s.dead = make(chan struct{})
	s.pending = map[uint64]*settleCall{}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	st, err := g.c.Settle(ctx)
	if err != nil {
		s.end()
		return
	}
	go s.send(st)
	go s.recv(st)
}

// close ends the stream; settlements still waiting go by Ack.
func (s *settleStream) close() {
	s.once.Do(func() {
		s.dead = make(chan struct{})
		close(s.dead)
	})
	if s.cancel != nil {
		s.cancel()
	}
}

// do settles req over the stream and returns the answer's code and message;
// ok is false when the caller must use Ack instead.
func (s *settleStream) do(ctx context.Context, g *GRPCClient, req *connectorv1.AckRequest) (code codes.Code, msg string, ok bool) {
	s.once.Do(func() { s.start(g) })
	c := &settleCall{req: req, done: make(chan settleAnswer, 1)}
	select {
	case s.calls <- c:
	case <-s.dead:
		return 0, "", false
	case <-ctx.Done():
		st := status.FromContextError(ctx.Err())
		return st.Code(), st.Message(), true
	}
	select {
	case a := <-c.done:
		return a.code, a.msg, a.ok
	case <-ctx.Done():
		st := status.FromContextError(ctx.Err())
		return st.Code(), st.Message(), true
	}
}

func (s *settleStream) send(st connectorv1.Connector_SettleClient) {
	batch := make([]*settleCall, 0, maxSettleBatch)
	for {
		select {
		case c := <-s.calls:
			batch = append(batch[:0], c)
		case <-s.dead:
			return
		}
	more:
		for len(batch) < maxSettleBatch {
			select {
			case c := <-s.calls:
				batch = append(batch, c)
			default:
				break more
			}
		}
		req := &connectorv1.SettleRequest{Acks: make([]*connectorv1.NumberedAck, 0, len(batch))}
		s.mu.Lock()
		if s.ended {
			s.mu.Unlock()
			for _, c := range batch {
				c.done <- settleAnswer{}
			}
			continue
		}
		for _, c := range batch {
			s.seq++
			s.pending[s.seq] = c
			req.Acks = append(req.Acks, &connectorv1.NumberedAck{Seq: s.seq, Ack: c.req})
		}
		s.mu.Unlock()
		if err := st.Send(req); err != nil {
			// The stream is broken: recv sees its end and hands every
			// pending settlement back to Ack.
			return
		}
	}
}

func (s *settleStream) recv(st connectorv1.Connector_SettleClient) {
	for {
		resp, err := st.Recv()
		if err != nil {
			s.end()
			return
		}
		for _, r := range resp.Results {
			s.mu.Lock()
			c := s.pending[r.Seq]
			delete(s.pending, r.Seq)
			s.mu.Unlock()
			if c != nil {
				c.done <- settleAnswer{code: codes.Code(r.Code), msg: r.Message, ok: true}
			}
		}
	}
}

// end marks the stream gone and hands every unanswered settlement to Ack.
func (s *settleStream) end() {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	pend := s.pending
	s.pending = nil
	s.mu.Unlock()
	close(s.dead)
	if s.cancel != nil {
		s.cancel()
	}
	for _, c := range pend {
		c.done <- settleAnswer{}
	}
}
