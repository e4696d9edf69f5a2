package plugin

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"

	connectorv1 "github.com/mediagw/mediagw/proto/mediagw/connector/v1"
)

// sendingMem is memConnector that can send: it keeps what it was given, or
// fails as told.
type sendingMem struct {
	*memConnector
	advertise bool
	fail      error

	mu   sync.Mutex
	sent []*OutgoingMessage
}

func (s *sendingMem) Info(ctx context.Context) (Info, error) {
	i, err := s.memConnector.Info(ctx)
	if s.advertise {
		i.Capabilities = append(i.Capabilities, CapabilitySend)
	}
	return i, err
}

func (s *sendingMem) Test(ctx context.Context) TestResult {
	r := s.memConnector.Test(ctx)
	r.Send = &TestResult{Category: TestSMTPAuthDisabled, Hint: "enable SMTP AUTH", Detail: "535 5.7.139"}
	return r
}

func (s *sendingMem) Send(ctx context.Context, m *OutgoingMessage) (SendResult, error) {
	if s.fail != nil {
		return SendResult{}, s.fail
	}
	s.mu.Lock()
	s.sent = append(s.sent, m)
	s.mu.Unlock()
	return SendResult{MessageID: "<id@server>"}, nil
}

func TestGRPCSend(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 2*ChunkSize+5)
	small := []byte("Subject: report\r\n\r\ndone\r\n")
	for _, raw := range [][]byte{small, big} {
		impl := &sendingMem{memConnector: newMem(), advertise: true}
		c := connect(t, impl)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := c.Send(ctx, &OutgoingMessage{From: "fax@example.com", To: []string{"a@example.com", "b@example.com"}, Raw: raw})
		if err != nil {
			t.Fatal(err)
		}
		if res.MessageID != "<id@server>" {
			t.Errorf("MessageID = %q", res.MessageID)
		}
		if len(impl.sent) != 1 {
			t.Fatalf("connector got %d messages", len(impl.sent))
		}
		got := impl.sent[0]
		if got.From != "fax@example.com" || len(got.To) != 2 || got.To[1] != "b@example.com" || !bytes.Equal(got.Raw, raw) {
			t.Errorf("connector got from %q to %v and %d bytes, want %d", got.From, got.To, len(got.Raw), len(raw))
		}
	}
}

func TestGRPCSendFailures(t *testing.T) {
	msg := &OutgoingMessage{To: []string{"a@example.com"}, Raw: []byte("Subject: x\r\n\r\n")}
	tests := []struct {
		name      string
		impl      Connector
		wantUnsup bool
		want      *SendFailure
		wantPlain bool
		wantGone  bool
	}{
		{name: "not a sender", impl: newMem(), wantUnsup: true},
		{name: "sender not configured to send", impl: &sendingMem{memConnector: newMem()}, wantUnsup: true},
		{name: "classified failure", impl: &sendingMem{memConnector: newMem(), advertise: true,
			fail: &SendFailure{Category: SendAuthDisabled, Reason: "535 5.7.139 Authentication unsuccessful", Hint: "Set-CASMailbox"}},
			want: &SendFailure{Category: SendAuthDisabled, Reason: "535 5.7.139 Authentication unsuccessful", Hint: "Set-CASMailbox"}},
		{name: "temporary failure", impl: &sendingMem{memConnector: newMem(), advertise: true,
			fail: &SendFailure{Category: SendThrottled, Temporary: true, Reason: "429"}},
			want: &SendFailure{Category: SendThrottled, Temporary: true, Reason: "429"}},
		{name: "wrapped failure", impl: &sendingMem{memConnector: newMem(), advertise: true,
			fail: errors.Join(errors.New("smtp"), &SendFailure{Category: SendUnreachable, Temporary: true, Reason: "refused"})},
			want: &SendFailure{Category: SendUnreachable, Temporary: true, Reason: "refused"}},
		{name: "unclassified error", impl: &sendingMem{memConnector: newMem(), advertise: true, fail: errors.New("disk on fire")}, wantPlain: true},
		{name: "connector closed", impl: &sendingMem{memConnector: newMem(), advertise: true, fail: ErrClosed}, wantPlain: true, wantGone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connect(t, tt.impl)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := c.Send(ctx, msg)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if got := errors.Is(err, ErrSendUnsupported); got != tt.wantUnsup {
				t.Errorf("errors.Is(%v, ErrSendUnsupported) = %v", err, got)
			}
			var sf *SendFailure
			if tt.want != nil {
				if !errors.As(err, &sf) {
					t.Fatalf("err %v is not a *SendFailure", err)
				}
				if *sf != *tt.want {
					t.Errorf("SendFailure = %+v, want %+v", *sf, *tt.want)
				}
			}
			if tt.wantPlain && errors.As(err, &sf) {
				t.Errorf("unclassified error came back as %+v", sf)
			}
			if got := errors.Is(err, ErrStreamEnded); got != tt.wantGone {
				t.Errorf("errors.Is(%v, ErrStreamEnded) = %v", err, got)
			}
		})
	}
}

func TestGRPCSendTooLarge(t *testing.T) {
	impl := &sendingMem{memConnector: newMem(), advertise: true}
	c := connect(t, impl)
	_, err := c.Send(context.Background(), &OutgoingMessage{To: []string{"a@b"}, Raw: make([]byte, MaxSendSize+1)})
	var sf *SendFailure
	if !errors.As(err, &sf) || sf.Category != SendError || sf.Temporary {
		t.Fatalf("err = %v, want a permanent SendFailure", err)
	}
	if len(impl.sent) != 0 {
		t.Error("the oversized message reached the connector")
	}
}

func TestGRPCTestCarriesSendResult(t *testing.T) {
	c := connect(t, &sendingMem{memConnector: newMem(), advertise: true})
	r := c.Test(context.Background())
	if r.Category != TestPermissionDenied || r.Send == nil || r.Send.Category != TestSMTPAuthDisabled || r.Send.Hint != "enable SMTP AUTH" || r.Send.Detail != "535 5.7.139" {
		t.Fatalf("Test = %+v send %+v", r, r.Send)
	}
	if r := connect(t, newMem()).Test(context.Background()); r.Send != nil {
		t.Errorf("a connector without a send path reported %+v", r.Send)
	}
}

func TestSendCategoriesRoundTrip(t *testing.T) {
	seen := map[connectorv1.SendCategory]bool{}
	for _, c := range []SendCategory{SendInvalidCredential, SendAuthDisabled, SendPermissionDenied, SendRecipientRefused, SendUnreachable, SendThrottled, SendNotConfigured, SendError} {
		p := sendCategoryToProto(c)
		if seen[p] || p == connectorv1.SendCategory_SEND_CATEGORY_UNSPECIFIED {
			t.Errorf("category %s → %v (shared or unspecified)", c, p)
		}
		seen[p] = true
		if got := sendCategoryFromProto(p); got != c {
			t.Errorf("category %s → %v → %s", c, p, got)
		}
	}
	if got := sendCategoryFromProto(connectorv1.SendCategory_SEND_CATEGORY_UNSPECIFIED); got != SendError {
		t.Errorf("unspecified → %s, want error", got)
	}
}

func TestGRPCSendPluginGone(t *testing.T) {
	impl := &sendingMem{memConnector: newMem(), advertise: true}
	client, server := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{PluginName: &grpcPlugin{impl: impl}})
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	c := raw.(*GRPCClient)
	server.Stop()
	_, err = c.Send(context.Background(), &OutgoingMessage{To: []string{"a@b"}, Raw: []byte("x")})
	if !errors.Is(err, ErrStreamEnded) {
		t.Fatalf("err = %v, want ErrStreamEnded", err)
	}
	client.Close()
}
