package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/mediagw/mediagw/internal/testenv"
	connectorv1 "github.com/mediagw/mediagw/proto/mediagw/connector/v1"
)

// memConnector is a tiny in-memory source for testing the transport.
type memConnector struct {
	infoErr  error // Info and ConfigSchema fail with it
	mu       sync.Mutex
	queue    []*Message
	settled  map[string]Settlement
	inflight map[string]*Message
	next     int
	wake     chan struct{}
	closed   bool
}

func newMem(msgs ...[]byte) *memConnector {
	m := &memConnector{settled: map[string]Settlement{}, inflight: map[string]*Message{}, wake: make(chan struct{}, 1)}
	for i, raw := range msgs {
		m.queue = append(m.queue, &Message{SourceID: fmt.Sprintf("mem:%d", i), Raw: raw, Metadata: map[string]string{"i": fmt.Sprint(i)}})
	}
	return m
}

func (m *memConnector) Info(context.Context) (Info, error) {
	if m.infoErr != nil {
		return Info{}, m.infoErr
	}
	return Info{Name: "mem", Version: "1", Capabilities: []string{"test"}}, nil
}
func (m *memConnector) ConfigSchema(context.Context) ([]ConfigField, error) {
	if m.infoErr != nil {
		return nil, m.infoErr
	}
	return []ConfigField{{Name: "path", Type: "string", Required: true}}, nil
}
func (m *memConnector) Configure(_ context.Context, b []byte) (Diagnostics, error) {
	var ds Diagnostics
	if !bytes.Contains(b, []byte(`"path"`)) {
		ds.Errorf("path", "required")
	}
	ds.Warnf("", "just a warning")
	return ds, nil
}
func (m *memConnector) Test(context.Context) TestResult {
	return TestResult{Category: TestPermissionDenied, Hint: "grant it", Detail: "NO"}
}
func (m *memConnector) Read(ctx context.Context) (*Message, error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		if len(m.queue) > 0 {
			msg := m.queue[0]
			m.queue = m.queue[1:]
			m.next++
			cp := *msg
			cp.DeliveryID = fmt.Sprintf("d%d", m.next)
			m.inflight[cp.DeliveryID] = msg
			m.mu.Unlock()
			return &cp, nil
		}
		m.mu.Unlock()
		select {
		case <-m.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
func (m *memConnector) Settle(_ context.Context, id string, s Settlement) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	msg, ok := m.inflight[id]
	if !ok {
		return nil
	}
	delete(m.inflight, id)
	m.settled[id] = s
	if s.Kind == Retry {
		m.queue = append(m.queue, msg)
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
	return nil
}
func (m *memConnector) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}
func (m *memConnector) unsettled() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.inflight)
}

func connect(t *testing.T, impl Connector) *GRPCClient { return connectB(t, impl) }

func connectB(t testing.TB, impl Connector) *GRPCClient {
	t.Helper()
	var client *goplugin.GRPCClient
	withTestLog(t, func() {
		client, _ = goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{PluginName: &grpcPlugin{impl: impl}})
	})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*GRPCClient)
}

func TestGRPCUnaryCalls(t *testing.T) {
	c := connect(t, newMem())
	ctx := context.Background()
	if got, err := c.Info(ctx); err != nil || got.Name != "mem" || got.Version != "1" || len(got.Capabilities) != 1 {
		t.Errorf("Info = %+v, %v", got, err)
	}
	if got, err := c.ConfigSchema(ctx); err != nil || len(got) != 1 || got[0].Name != "path" || !got[0].Required {
		t.Errorf("ConfigSchema = %+v, %v", got, err)
	}
	ds, err := c.Configure(ctx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if !ds.HasErrors() || ds[0].Field != "path" || ds[1].Severity != SeverityWarning {
		t.Errorf("Configure diagnostics = %+v", ds)
	}
	if r := c.Test(ctx); r.Category != TestPermissionDenied || r.Hint != "grant it" || r.Detail != "NO" {
		t.Errorf("Test = %+v", r)
	}
}

func TestGRPCReceiveChunksLargeMessages(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), (3*ChunkSize+17)/16)
	small := []byte("Subject: hi\r\n\r\nbody\r\n")
	empty := []byte{}
	mem := newMem(big, small, empty)
	c := connect(t, mem)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, want := range [][]byte{big, small, empty} {
		m, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Raw, want) {
			t.Fatalf("message %d: got %d bytes, want %d", i, len(m.Raw), len(want))
		}
		if m.SourceID != fmt.Sprintf("mem:%d", i) || m.Metadata["i"] != fmt.Sprint(i) {
			t.Errorf("message %d: source %q metadata %v", i, m.SourceID, m.Metadata)
		}
		if err := c.Settle(ctx, m.DeliveryID, Settlement{Kind: Ack}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGRPCMaxInFlightAndRelease(t *testing.T) {
	var msgs [][]byte
	for i := 0; i < 5; i++ {
		msgs = append(msgs, []byte(fmt.Sprint("m", i)))
	}
	mem := newMem(msgs...)
	c := connect(t, mem)
	c.MaxInFlight = 2
	ctx := context.Background()
	first, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = c.Read(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third Read with 2 unsettled: err = %v, want a timeout (credit exhausted)", err)
	}
	if err := c.Settle(ctx, first.DeliveryID, Settlement{Kind: Ack}); err != nil {
		t.Fatal(err)
	}
	// Settling twice is a no-op and does not return credit twice.
	if err := c.Settle(ctx, first.DeliveryID, Settlement{Kind: Ack}); err != nil {
		t.Fatal(err)
	}
	short, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.Read(short); err != nil {
		t.Fatalf("Read after a settle: %v", err)
	}
	short2, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if _, err := c.Read(short2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("double settle returned credit twice: err = %v", err)
	}
}

func TestGRPCStreamEndRetriesUnsettled(t *testing.T) {
	mem := newMem([]byte("a"), []byte("b"))
	c := connect(t, mem)
	ctx := context.Background()
	m, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	testenv.Eventually(t, 5*time.Second, "every delivery settled after the stream ended", func() bool { return mem.unsettled() == 0 })
	mem.mu.Lock()
	s := mem.settled[m.DeliveryID]
	mem.mu.Unlock()
	if s.Kind != Retry {
		t.Fatalf("unsettled delivery settled as %v, want retry", s.Kind)
	}
	if _, err := c.Read(ctx); err == nil {
		t.Fatal("Read after Close succeeded")
	}
}

func TestGRPCSettleKinds(t *testing.T) {
	mem := newMem([]byte("a"))
	c := connect(t, mem)
	ctx := context.Background()
	m, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Settle(ctx, m.DeliveryID, Settlement{Kind: Reject, Reason: "fax_number: missing"}); err != nil {
		t.Fatal(err)
	}
	mem.mu.Lock()
	got := mem.settled[m.DeliveryID]
	mem.mu.Unlock()
	if got.Kind != Reject || got.Reason != "fax_number: missing" {
		t.Fatalf("settled %+v", got)
	}
	if err := c.Settle(ctx, "x", Settlement{}); err == nil {
		t.Fatal("settlement without a kind accepted")
	}
}

func TestLoggerWritesHclogJSON(t *testing.T) {
	var buf bytes.Buffer
	NewLogger(&buf, -4).Warn("hello", "k", "v", "wait", 810*time.Millisecond, slog.Group("g", "d", 2*time.Second))
	s := buf.String()
	for _, want := range []string{`"@level":"warn"`, `"@message":"hello"`, `"@timestamp":"`, `"k":"v"`, `"wait":"810ms"`, `"g":{"d":"2s"}`} {
		if !bytes.Contains([]byte(s), []byte(want)) {
			t.Errorf("log line %s lacks %s", s, want)
		}
	}
}

// failingSettle refuses every settlement.
type failingSettle struct{ *memConnector }

func (failingSettle) Settle(context.Context, string, Settlement) error {
	return errors.New("folder not writable")
}

// safeBuffer is a bytes.Buffer for a logger written from another goroutine.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestGRPCStreamEndLogsFailedRetry(t *testing.T) {
	var logs safeBuffer
	impl := failingSettle{newMem([]byte("a"))}
	client, _ := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{
		PluginName: &grpcPlugin{impl: impl, log: NewLogger(&logs, slog.LevelInfo)},
	})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	c := raw.(*GRPCClient)
	m, err := c.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	testenv.Eventually(t, 5*time.Second, "the failed retry in the log", func() bool { return strings.Contains(logs.String(), "folder not writable") })
	got := logs.String()
	for _, want := range []string{`"@level":"error"`, `"delivery_id":"` + m.DeliveryID + `"`, "folder not writable"} {
		if !strings.Contains(got, want) {
			t.Errorf("log after a failed retry at stream end lacks %s:\n%s", want, got)
		}
	}
}

func TestGRPCSettleErrorNamesDeliveryOnce(t *testing.T) {
	c := connect(t, failingSettle{newMem([]byte("a"))})
	m, err := c.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	err = c.Settle(context.Background(), m.DeliveryID, Settlement{Kind: Ack})
	if err == nil {
		t.Fatal("a refused settlement returned no error")
	}
	if n := strings.Count(err.Error(), m.DeliveryID); n != 1 || !strings.Contains(err.Error(), "folder not writable") {
		t.Errorf("settle error %q: want the delivery id once and the connector's reason", err)
	}
}

func TestEnumMappingsRoundTrip(t *testing.T) {
	seen := map[connectorv1.TestCategory]bool{}
	for _, c := range []TestCategory{TestOK, TestInvalidCredential, TestUnreachable, TestPermissionDenied, TestMailboxNotFound, TestError, TestSMTPAuthDisabled, TestConsentRequired, TestInteractionRequired} {
		p := categoryToProto(c)
		if seen[p] {
			t.Errorf("category %s shares protocol value %v", c, p)
		}
		seen[p] = true
		if got := categoryFromProto(p); got != c {
			t.Errorf("category %s → %v → %s", c, p, got)
		}
	}
	if got := categoryToProto("made_up"); got != connectorv1.TestCategory_TEST_CATEGORY_ERROR {
		t.Errorf("unknown category → %v, want error", got)
	}
	if got := categoryFromProto(connectorv1.TestCategory_TEST_CATEGORY_UNSPECIFIED); got != TestError {
		t.Errorf("unspecified category → %s, want error", got)
	}
	for _, h := range []HealthState{HealthStarting, HealthHealthy, HealthDegraded, HealthDown} {
		p := healthToProto(h)
		if p == connectorv1.Health_HEALTH_UNSPECIFIED {
			t.Errorf("health %s has no protocol value", h)
		}
		if got := healthFromProto(p); got != h {
			t.Errorf("health %s → %v → %s", h, p, got)
		}
	}
	if got := healthToProto("made_up"); got != connectorv1.Health_HEALTH_UNSPECIFIED {
		t.Errorf("unknown health → %v, want unspecified", got)
	}
	if got := healthFromProto(connectorv1.Health_HEALTH_UNSPECIFIED); got != HealthDown {
		t.Errorf("unspecified health → %s, want down", got)
	}
}

// closedSettle is a connector that was closed: it settles nothing more.
type closedSettle struct{ *memConnector }

func (closedSettle) Settle(context.Context, string, Settlement) error { return ErrClosed }

// "Connector refused" and "plugin gone" reach the host as different errors:
// the first is tried again (the delivery keeps its credit), the second is
// given up, because the deliveries died with the plugin.
func TestGRPCSettleRefusedOrGone(t *testing.T) {
	cases := []struct {
		name        string
		impl        Connector
		stopServer  bool
		wantRefused bool
		wantReason  string
	}{
		{"connector refuses", failingSettle{newMem([]byte("a"))}, false, true, "folder not writable"},
		{"connector closed", closedSettle{newMem([]byte("a"))}, false, false, ""},
		{"plugin gone", newMem([]byte("a")), true, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{PluginName: &grpcPlugin{impl: tc.impl}})
			t.Cleanup(func() { client.Close() })
			raw, err := client.Dispense(PluginName)
			if err != nil {
				t.Fatal(err)
			}
			c := raw.(*GRPCClient)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tc.stopServer {
				server.Stop()
			}
			err = c.Settle(ctx, m.DeliveryID, Settlement{Kind: Ack})
			if got := errors.Is(err, ErrSettleRefused); got != tc.wantRefused {
				t.Errorf("Settle = %v: ErrSettleRefused %v, want %v", err, got, tc.wantRefused)
			}
			if got := errors.Is(err, ErrStreamEnded); got == tc.wantRefused {
				t.Errorf("Settle = %v: ErrStreamEnded %v, want %v", err, got, !tc.wantRefused)
			}
			if !strings.Contains(fmt.Sprint(err), tc.wantReason) {
				t.Errorf("Settle = %v, want the connector's reason %q", err, tc.wantReason)
			}
		})
	}
}

// A connector whose Info or ConfigSchema fails says so across the plugin
// boundary, instead of answering with an empty Info.
func TestGRPCInfoError(t *testing.T) {
	m := newMem()
	m.infoErr = errors.New("cannot read the build info")
	c := connect(t, m)
	if got, err := c.Info(t.Context()); err == nil {
		t.Fatalf("Info = %+v, want an error", got)
	}
	if got, err := c.ConfigSchema(t.Context()); err == nil {
		t.Fatalf("ConfigSchema = %+v, want an error", got)
	}
}
