package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	connectorv1 "github.com/mediagw/mediagw/proto/mediagw/connector/v1"
)

// The Send RPC, both sides. A failed send travels as a gRPC status whose
// details carry a SendFailure, so the host gets a *SendFailure back.

var _ Sender = (*GRPCClient)(nil)

// Send submits m through the plugin. It returns ErrSendUnsupported when the
// plugin does not send (no Send RPC, or "send" not in its capabilities), a
// *SendFailure when the connector classified the failure, and an error
// wrapping ErrStreamEnded when the plugin process is gone.
func (g *GRPCClient) Send(ctx context.Context, m *OutgoingMessage) (SendResult, error) {
	if len(m.Raw) > MaxSendSize {
		return SendResult{}, &SendFailure{Category: SendError, Reason: fmt.Sprintf("message of %d bytes is larger than %d", len(m.Raw), MaxSendSize), Hint: "send a smaller message"}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := g.c.Send(ctx)
	if err != nil {
		return SendResult{}, sendErrorFromStatus(err)
	}
	raw := m.Raw
	first := true
	for first || len(raw) > 0 {
		n := min(len(raw), ChunkSize)
		f := &connectorv1.SendRequest{Data: raw[:n]}
		if first {
			f.Envelope = &connectorv1.SendEnvelope{From: m.From, To: m.To, Size: int64(len(m.Raw))}
			first = false
		}
		if err := st.Send(f); err != nil {
			if err == io.EOF { // the server ended the call: its status says why
				break
			}
			return SendResult{}, sendErrorFromStatus(err)
		}
		raw = raw[n:]
	}
	r, err := st.CloseAndRecv()
	if err != nil {
		return SendResult{}, sendErrorFromStatus(err)
	}
	return SendResult{MessageID: r.MessageId}, nil
}

func sendErrorFromStatus(err error) error {
	s, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("send: %w", err)
	}
	for _, d := range s.Details() {
		if f, ok := d.(*connectorv1.SendFailure); ok {
			return &SendFailure{Category: sendCategoryFromProto(f.Category), Temporary: f.Temporary, Reason: f.Reason, Hint: f.Hint}
		}
	}
	switch s.Code() {
	case codes.Unimplemented:
		return ErrSendUnsupported
	case codes.Unavailable:
		// The plugin process is gone (as for Settle): try again once the
		// host has started it again.
		return fmt.Errorf("send: %w: %v", ErrStreamEnded, err)
	case codes.Canceled:
		return fmt.Errorf("send: %w", context.Canceled)
	case codes.DeadlineExceeded:
		return fmt.Errorf("send: %w", context.DeadlineExceeded)
	}
	return fmt.Errorf("send: %w", err)
}

// Send receives one message from the host and hands it to the connector.
func (s *server) Send(in connectorv1.Connector_SendServer) error {
	snd, ok := s.impl.(Sender)
	if !ok || !Sends(in.Context(), s.impl) {
		return status.Error(codes.Unimplemented, ErrSendUnsupported.Error())
	}
	var m *OutgoingMessage
	for {
		f, err := in.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if f.Envelope != nil && m == nil {
			e := f.Envelope
			if e.Size < 0 || e.Size > MaxSendSize {
				return sendFailureStatus(&SendFailure{Category: SendError, Reason: fmt.Sprintf("message of %d bytes is larger than %d", e.Size, MaxSendSize)})
			}
			m = &OutgoingMessage{From: e.From, To: e.To, Raw: make([]byte, 0, e.Size)}
		}
		if m == nil {
			return status.Error(codes.InvalidArgument, "send: first frame without envelope")
		}
		if len(m.Raw)+len(f.Data) > MaxSendSize {
			return sendFailureStatus(&SendFailure{Category: SendError, Reason: fmt.Sprintf("message larger than %d bytes", MaxSendSize)})
		}
		m.Raw = append(m.Raw, f.Data...)
	}
	if m == nil {
		return status.Error(codes.InvalidArgument, "send: no message")
	}
	res, err := snd.Send(in.Context(), m)
	if err != nil {
		var sf *SendFailure
		if errors.As(err, &sf) {
			return sendFailureStatus(sf)
		}
		if errors.Is(err, ErrSendUnsupported) {
			return status.Error(codes.Unimplemented, err.Error())
		}
		if errors.Is(err, ErrClosed) { // as good as gone, as for Ack
			return status.Error(codes.Unavailable, err.Error())
		}
		if in.Context().Err() != nil {
			return status.FromContextError(in.Context().Err()).Err()
		}
		return status.Error(codes.Unknown, err.Error())
	}
	return in.SendAndClose(&connectorv1.SendResponse{MessageId: res.MessageID})
}

func sendFailureStatus(f *SendFailure) error {
	code := codes.FailedPrecondition
	if f.Temporary {
		code = codes.Unavailable
	}
	st, err := status.New(code, f.Error()).WithDetails(&connectorv1.SendFailure{
		Category: sendCategoryToProto(f.Category), Temporary: f.Temporary, Reason: f.Reason, Hint: f.Hint,
	})
	if err != nil {
		return status.Error(code, f.Error())
	}
	return st.Err()
}

var sendCategories = []enumPair[SendCategory, connectorv1.SendCategory]{
	{SendInvalidCredential, connectorv1.SendCategory_SEND_CATEGORY_INVALID_CREDENTIAL},
	{SendAuthDisabled, connectorv1.SendCategory_SEND_CATEGORY_SMTP_AUTH_DISABLED},
	{SendPermissionDenied, connectorv1.SendCategory_SEND_CATEGORY_PERMISSION_DENIED},
	{SendRecipientRefused, connectorv1.SendCategory_SEND_CATEGORY_RECIPIENT_REFUSED},
	{SendUnreachable, connectorv1.SendCategory_SEND_CATEGORY_UNREACHABLE},
	{SendThrottled, connectorv1.SendCategory_SEND_CATEGORY_THROTTLED},
	{SendNotConfigured, connectorv1.SendCategory_SEND_CATEGORY_NOT_CONFIGURED},
	{SendError, connectorv1.SendCategory_SEND_CATEGORY_ERROR},
}

func sendCategoryToProto(c SendCategory) connectorv1.SendCategory {
	return toProto(sendCategories, c, connectorv1.SendCategory_SEND_CATEGORY_ERROR)
}

func sendCategoryFromProto(p connectorv1.SendCategory) SendCategory {
	return fromProto(sendCategories, p, SendError)
}
