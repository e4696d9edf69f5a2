package plugintest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin"
)

// unknownKey is the key the suite adds to a good configuration to check that
// decoding is strict.
const unknownKey = "conformance_unknown_key"

// RunConformance runs the connector conformance suite as subtests of t.
// errUnexpectedMessage marks a message read where none was expected.
var errUnexpectedMessage = errors.New("unexpected message")

func RunConformance(t *testing.T, h Harness) {
	t.Helper()
	if h.Factory == nil || h.NewSource == nil {
		t.Fatal("plugintest: Harness needs Factory and NewSource")
	}
	cases := []struct {
		name string
		run  func(*testing.T, Harness)
	}{
		{"info", caseInfo},
		{"configure/good", caseConfigureGood},
		{"configure/unknown_key", caseConfigureUnknownKey},
		{"configure/not_json", caseConfigureNotJSON},
		{"configure/bad", caseConfigureBad},
		{"close/unconfigured", caseCloseUnconfigured},
		{"close/without_read", caseCloseWithoutRead},
		{"close/unblocks_read", caseCloseUnblocksRead},
		{"read/context_cancel", caseReadContextCancel},
		{"receive", caseReceive},
		{"ack", caseAck},
		{"retry", caseRetry},
		{"retry/immediate", caseRetryImmediate},
		{"reject", caseReject},
		{"settle/twice", caseSettleTwice},
		{"settle/unknown", caseSettleUnknown},
		{"unsettled_not_reoffered", caseUnsettledNotReoffered},
		{"reconnect", caseReconnect},
		{"concurrency", caseConcurrency},
		{"send", caseSend},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, h) })
	}
}

// --- helpers ---

type fixture struct {
	h   Harness
	src Source
	cfg []byte
	// keys and raws of the injected messages, by key
	raws map[string][]byte
	seq  int
	name string
}

func newFixture(t *testing.T, h Harness) *fixture {
	t.Helper()
	src := h.NewSource(t)
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	name = fmt.Sprintf("%s-%08x", name[strings.LastIndex(name, "-")+1:], rand.Uint32())
	return &fixture{h: h, src: src, cfg: src.Config(t), raws: map[string][]byte{}, name: name}
}

// inject puts n messages of about size bytes into the source and returns
// their keys in order.
func (f *fixture) inject(t *testing.T, n, size int) []string {
	t.Helper()
	keys := make([]string, 0, n)
	for range n {
		f.seq++
		key := fmt.Sprintf("%s-%03d", f.name, f.seq)
		raw := Message(key, size)
		f.src.Inject(t, raw)
		f.raws[key] = raw
		keys = append(keys, key)
	}
	return keys
}

func (f *fixture) open(t *testing.T) plugin.Connector {
	t.Helper()
	return f.h.Open(t, f.cfg)
}

// read waits for the next message, failing the test after the timeout.
func (f *fixture) read(t *testing.T, c plugin.Connector) *plugin.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), f.h.timeout())
	defer cancel()
	m, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if m == nil {
		t.Fatal("Read returned a nil message and no error")
	}
	f.check(t, m)
	return m
}

// readN reads n messages and returns them by key; none may come twice.
func (f *fixture) readN(t *testing.T, c plugin.Connector, n int) map[string]*plugin.Message {
	t.Helper()
	byKey := make(map[string]*plugin.Message, n)
	for range n {
		m := f.read(t, c)
		key := keyOf(m.Raw)
		if byKey[key] != nil {
			t.Fatalf("message %s offered twice while unsettled", key)
		}
		byKey[key] = m
	}
	return byKey
}

// check verifies a message against what was injected.
func (f *fixture) check(t *testing.T, m *plugin.Message) string {
	t.Helper()
	if m.DeliveryID == "" {
		t.Errorf("message has no DeliveryID")
	}
	if m.SourceID == "" {
		t.Errorf("message has no SourceID")
	}
	key := keyOf(m.Raw)
	want, ok := f.raws[key]
	if !ok {
		t.Fatalf("Read offered a message the suite did not inject (key %q, %d bytes)", key, len(m.Raw))
	}
	if !bytes.Equal(m.Raw, want) {
		t.Errorf("message %s: raw bytes differ from the injected ones (got %d bytes, want %d)", key, len(m.Raw), len(want))
	}
	return key
}

// expectNone checks that nothing is offered for the quiet period.
func (f *fixture) expectNone(t *testing.T, c plugin.Connector, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), f.h.quiet())
	defer cancel()
	m, err := c.Read(ctx)
	if err == nil {
		key := ""
		if m != nil {
			key = keyOf(m.Raw)
		}
		t.Fatalf("%s: Read offered message %q (source id %q)", why, key, sourceID(m))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: Read on an idle source: want a context deadline error, got %v", why, err)
	}
}

func sourceID(m *plugin.Message) string {
	if m == nil {
		return ""
	}
	return m.SourceID
}

func (f *fixture) settle(t *testing.T, c plugin.Connector, id string, s plugin.Settlement) {
	t.Helper()
	if err := c.Settle(t.Context(), id, s); err != nil {
		t.Fatalf("Settle(%s, %v): %v", id, s.Kind, err)
	}
}

// state returns the source's messages by key.
func (f *fixture) state(t *testing.T) map[string]Stored {
	t.Helper()
	out := map[string]Stored{}
	for _, s := range f.src.State(t) {
		key := keyOf(s.Raw)
		if key == "" {
			t.Fatalf("source holds a message the suite did not inject (%d bytes)", len(s.Raw))
		}
		if _, dup := out[key]; dup {
			t.Errorf("source holds message %s twice", key)
		}
		out[key] = s
	}
	return out
}

// expectState checks the status of the given keys (and that no injected
// message was lost).
func (f *fixture) expectState(t *testing.T, want map[string]Status) {
	t.Helper()
	got := f.state(t)
	for key := range f.raws {
		if _, ok := got[key]; !ok {
			t.Errorf("message %s is gone from the source", key)
		}
	}
	for key, st := range want {
		s, ok := got[key]
		if !ok {
			continue
		}
		if s.Status != st {
			t.Errorf("message %s: source status %v, want %v", key, s.Status, st)
		}
		if !bytes.Equal(s.Raw, f.raws[key]) {
			t.Errorf("message %s: stored bytes changed (%d bytes, injected %d)", key, len(s.Raw), len(f.raws[key]))
		}
	}
}

func statuses(st Status, keys ...string) map[string]Status {
	m := map[string]Status{}
	for _, k := range keys {
		m[k] = st
	}
	return m
}

func merge(ms ...map[string]Status) map[string]Status {
	out := map[string]Status{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// --- cases ---

func caseInfo(t *testing.T, h Harness) {
	f := newFixture(t, h)
	c := h.New(t)
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Name == "" {
		t.Error("Info().Name is empty")
	}
	if info.Version == "" {
		t.Error("Info().Version is empty")
	}
	schema, err := c.ConfigSchema(t.Context())
	if err != nil {
		t.Fatalf("ConfigSchema: %v", err)
	}
	if len(schema) == 0 {
		t.Fatal("ConfigSchema() is empty")
	}
	names := map[string]bool{}
	for _, fld := range schema {
		if fld.Name == "" {
			t.Errorf("ConfigSchema has a field without a name: %+v", fld)
		}
		if names[fld.Name] {
			t.Errorf("ConfigSchema lists %q twice", fld.Name)
		}
		names[fld.Name] = true
		if fld.Description == "" {
			t.Errorf("ConfigSchema field %q has no description", fld.Name)
		}
	}
	for key := range decodeConfig(t, f.cfg) {
		if !names[key] {
			t.Errorf("the good config uses key %q that ConfigSchema does not list", key)
		}
	}
}

func caseConfigureGood(t *testing.T, h Harness) {
	f := newFixture(t, h)
	c := h.New(t)
	diags, err := c.Configure(t.Context(), f.cfg)
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if diags.HasErrors() {
		t.Fatalf("Configure(%s): %v", f.cfg, diags)
	}
	res := c.Test(t.Context())
	if res.Category != plugin.TestOK {
		t.Fatalf("Test on a good source: %s (hint %q, detail %q)", res.Category, res.Hint, res.Detail)
	}
}

// expectDiag configures c with cfg and expects an error diagnostic naming field.
func expectDiag(t *testing.T, h Harness, cfg []byte, field string) {
	t.Helper()
	c := h.New(t)
	diags, err := c.Configure(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Configure(%s): want diagnostics, got error %v", cfg, err)
	}
	for _, d := range diags {
		if d.Severity == plugin.SeverityError && (d.Field == field || strings.Contains(d.String(), field)) {
			return
		}
	}
	t.Fatalf("Configure(%s): want an error diagnostic naming %q, got %v", cfg, field, diags)
}

func caseConfigureUnknownKey(t *testing.T, h Harness) {
	f := newFixture(t, h)
	m := decodeConfig(t, f.cfg)
	m[unknownKey] = 1
	expectDiag(t, h, encodeConfig(t, m), unknownKey)
}

func caseConfigureNotJSON(t *testing.T, h Harness) {
	c := h.New(t)
	for _, cfg := range []string{`{`, `[1,2]`, `"path"`} {
		diags, err := c.Configure(t.Context(), []byte(cfg))
		if err == nil && !diags.HasErrors() {
			t.Errorf("Configure(%s): accepted", cfg)
		}
	}
}

func caseConfigureBad(t *testing.T, h Harness) {
	if len(h.BadConfigs) == 0 {
		t.Skip("the harness lists no bad configurations")
	}
	for _, bc := range h.BadConfigs {
		t.Run(bc.Name, func(t *testing.T) {
			f := newFixture(t, h)
			m := decodeConfig(t, f.cfg)
			bc.Mutate(m)
			expectDiag(t, h, encodeConfig(t, m), bc.Field)
		})
	}
}

func caseCloseUnconfigured(t *testing.T, h Harness) {
	c := h.make(t)
	if err := c.Close(); err != nil {
		t.Fatalf("Close before Configure: %v", err)
	}
	_ = c.Close() // a second Close must not panic
}

func caseCloseWithoutRead(t *testing.T, h Harness) {
	f := newFixture(t, h)
	f.inject(t, 1, 0)
	c := h.make(t)
	if diags, err := c.Configure(t.Context(), f.cfg); err != nil || diags.HasErrors() {
		t.Fatalf("Configure: %v %v", err, diags)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close without Read: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), h.timeout())
	defer cancel()
	if m, err := c.Read(ctx); err == nil {
		t.Fatalf("Read after Close offered %q", sourceID(m))
	}
	f.expectState(t, nil)
}

func caseCloseUnblocksRead(t *testing.T, h Harness) {
	f := newFixture(t, h)
	c := h.make(t)
	if diags, err := c.Configure(t.Context(), f.cfg); err != nil || diags.HasErrors() {
		t.Fatalf("Configure: %v %v", err, diags)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*h.timeout())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		m, err := c.Read(ctx)
		if err == nil {
			err = fmt.Errorf("%w %q", errUnexpectedMessage, sourceID(m))
		}
		done <- err
	}()
	time.Sleep(h.quiet() / 2)
	select {
	case err := <-done:
		t.Fatalf("Read on an empty source returned before Close: %v", err)
	default:
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errUnexpectedMessage) {
			t.Fatalf("Read unblocked by Close: want an error from Close, got %v", err)
		}
		if !errors.Is(err, plugin.ErrClosed) {
			t.Logf("Read unblocked by Close returned %v (not plugin.ErrClosed)", err)
		}
	case <-time.After(h.timeout()):
		t.Fatal("Close did not unblock a pending Read")
	}
}

func caseReadContextCancel(t *testing.T, h Harness) {
	f := newFixture(t, h)
	c := f.open(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(ctx)
		done <- err
	}()
	time.Sleep(h.quiet() / 4)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Read after its context was cancelled: want context.Canceled, got %v", err)
		}
	case <-time.After(h.timeout()):
		t.Fatal("cancelling the context did not unblock Read")
	}
	// The connector still works afterwards.
	keys := f.inject(t, 1, 0)
	m := f.read(t, c)
	if got := keyOf(m.Raw); got != keys[0] {
		t.Fatalf("Read after a cancelled Read: got %q, want %q", got, keys[0])
	}
}

func caseReceive(t *testing.T, h Harness) {
	f := newFixture(t, h)
	keys := f.inject(t, 4, 0)
	large := h.LargeMessage
	if large == 0 {
		large = 1<<20 + 7
	}
	if large > 0 {
		keys = append(keys, f.inject(t, 1, large)...)
	}
	c := f.open(t)
	seen := map[string]*plugin.Message{}
	sids := map[string]string{}
	dids := map[string]bool{}
	for range keys {
		m := f.read(t, c)
		key := keyOf(m.Raw)
		if seen[key] != nil {
			t.Fatalf("message %s offered twice while unsettled", key)
		}
		seen[key] = m
		if other, dup := sids[m.SourceID]; dup {
			t.Errorf("messages %s and %s share source id %q", other, key, m.SourceID)
		}
		sids[m.SourceID] = key
		if dids[m.DeliveryID] {
			t.Errorf("delivery id %q used twice", m.DeliveryID)
		}
		dids[m.DeliveryID] = true
	}
	f.expectNone(t, c, "after every message was read")
	// Reading changes nothing at the source.
	f.expectState(t, statuses(Untouched, keys...))
	for _, key := range keys {
		f.settle(t, c, seen[key].DeliveryID, plugin.Settlement{Kind: plugin.Ack})
	}
	f.expectState(t, statuses(Processed, keys...))
	f.expectNone(t, c, "after every message was acked")
}

func caseAck(t *testing.T, h Harness) {
	f := newFixture(t, h)
	keys := f.inject(t, 2, 0)
	c := f.open(t)
	byKey := f.readN(t, c, 2)
	f.settle(t, c, byKey[keys[0]].DeliveryID, plugin.Settlement{Kind: plugin.Ack})
	f.expectState(t, merge(statuses(Processed, keys[0]), statuses(Untouched, keys[1])))
	f.expectNone(t, c, "after an ack")
	// A new message after the ack still arrives, the acked one does not.
	more := f.inject(t, 1, 0)
	m := f.read(t, c)
	if keyOf(m.Raw) != more[0] {
		t.Fatalf("after an ack: got %q, want the new message %q", keyOf(m.Raw), more[0])
	}
	f.settle(t, c, m.DeliveryID, plugin.Settlement{Kind: plugin.Ack})
	f.settle(t, c, byKey[keys[1]].DeliveryID, plugin.Settlement{Kind: plugin.Ack})
	f.expectState(t, statuses(Processed, keys[0], keys[1], more[0]))
	f.expectNone(t, c, "after all were acked")
}

func caseRetry(t *testing.T, h Harness) {
	f := newFixture(t, h)
	keys := f.inject(t, 1, 0)
	c := f.open(t)
	m1 := f.read(t, c)
	after := max(h.quiet(), 300*time.Millisecond)
	start := time.Now()
	f.settle(t, c, m1.DeliveryID, plugin.Settlement{Kind: plugin.Retry, Reason: "line busy", RetryAfter: after})
	f.expectState(t, statuses(Untouched, keys...))
	m2 := f.read(t, c)
	elapsed := time.Since(start)
	if elapsed < after {
		t.Errorf("retry with RetryAfter %v offered again after %v", after, elapsed)
	}
	if m2.DeliveryID == m1.DeliveryID {
		t.Errorf("redelivery reuses delivery id %q", m1.DeliveryID)
	}
	if m2.SourceID != m1.SourceID {
		t.Errorf("redelivery changed the source id: %q, then %q", m1.SourceID, m2.SourceID)
	}
	// The first delivery id is spent: settling it does nothing.
	f.settle(t, c, m1.DeliveryID, plugin.Settlement{Kind: plugin.Reject, Reason: "stale"})
	f.expectState(t, statuses(Untouched, keys...))
	f.settle(t, c, m2.DeliveryID, plugin.Settlement{Kind: plugin.Ack})
	f.expectState(t, statuses(Processed, keys...))
	f.expectNone(t, c, "after the redelivered message was acked")
}

func caseRetryImmediate(t *testing.T, h Harness) {
	f := newFixture(t, h)
	keys := f.inject(t, 1, 0)
	c := f.open(t)
	m := f.read(t, c)
	seenDIDs := map[string]bool{m.DeliveryID: true}
	for range 3 {
		f.settle(t, c, m.DeliveryID, plugin.Settlement{Kind: plugin.Retry})
		next := f.read(t, c)
		if next.SourceID != m.SourceID {
			t.Fatalf("redelivery changed the source id: %q, then %q", m.SourceID, next.SourceID)
		}
		if seenDIDs[next.DeliveryID] {
			t.Fatalf("redelivery reuses delivery id %q", next.DeliveryID)
		}
		seenDIDs[next.DeliveryID] = true
		m = next
	}
	f.settle(t, c, m.DeliveryID, plugin.Settlement{Kind: plugin.Ack})
	f.expectState(t, statuses(Processed, keys...))
}

func caseReject(t *testing.T, h Harness) {
	f := newFixture(t, h)
	keys := f.inject(t, 2, 0)
	c := f.open(t)
	byKey := f.readN(t, c, 2)
	const reason = "datamap: no fax number in the subject (“Fax an 0123”)"
	f.settle(t, c, byKey[keys[0]].DeliveryID, plugin.Settlement{Kind: plugin.Reject, Reason: reason})
	f.settle(t, c, byKey[keys[1]].DeliveryID, plugin.Settlement{Kind: plugin.Ack})
	f.expectState(t, merge(statuses(Rejected, keys[0]), statuses(Processed, keys[1])))
	if got := f.state(t)[keys[0]].Reason; !strings.Contains(got, reason) {
		t.Errorf("rejected message: the source recorded reason %q, want it to hold %q", got, reason)
	}
	f.expectNone(t, c, "after a reject")
}

func caseSettleTwice(t *testing.T, h Harness) {
	f := newFixture(t, h)
	keys := f.inject(t, 2, 0)
	c := f.open(t)
	byKey := f.readN(t, c, 2)
	a, r := byKey[keys[0]], byKey[keys[1]]
	f.settle(t, c, a.DeliveryID, plugin.Settlement{Kind: plugin.Ack})
	f.settle(t, c, r.DeliveryID, plugin.Settlement{Kind: plugin.Reject, Reason: "first"})
	for _, s := range []plugin.Settlement{
		{Kind: plugin.Ack},
		{Kind: plugin.Reject, Reason: "second"},
		{Kind: plugin.Retry},
	} {
		f.settle(t, c, a.DeliveryID, s)
		f.settle(t, c, r.DeliveryID, s)
	}
	f.expectState(t, merge(statuses(Processed, keys[0]), statuses(Rejected, keys[1])))
	if got := f.state(t)[keys[1]].Reason; !strings.Contains(got, "first") {
		t.Errorf("a second settle changed the reject reason to %q", got)
	}
	f.expectNone(t, c, "after settling twice")
}

func caseSettleUnknown(t *testing.T, h Harness) {
	f := newFixture(t, h)
	keys := f.inject(t, 1, 0)
	c := f.open(t)
	for _, id := range []string{"no-such-delivery", "", "0", strings.Repeat("x", 300)} {
		for _, k := range []plugin.SettleKind{plugin.Ack, plugin.Reject, plugin.Retry} {
			f.settle(t, c, id, plugin.Settlement{Kind: k, Reason: "unknown"})
		}
	}
	f.expectState(t, statuses(Untouched, keys...))
	m := f.read(t, c)
	f.settle(t, c, m.DeliveryID+"-not", plugin.Settlement{Kind: plugin.Ack})
	f.expectState(t, statuses(Untouched, keys...))
	f.settle(t, c, m.DeliveryID, plugin.Settlement{Kind: plugin.Ack})
	f.expectState(t, statuses(Processed, keys...))
}

func caseUnsettledNotReoffered(t *testing.T, h Harness) {
	f := newFixture(t, h)
	keys := f.inject(t, 3, 0)
	c := f.open(t)
	byKey := f.readN(t, c, 3)
	f.expectNone(t, c, "three messages unsettled")
	f.expectNone(t, c, "three messages unsettled, again")
	f.settle(t, c, byKey[keys[1]].DeliveryID, plugin.Settlement{Kind: plugin.Retry})
	m := f.read(t, c)
	if keyOf(m.Raw) != keys[1] {
		t.Fatalf("after retrying %s, got %s", keys[1], keyOf(m.Raw))
	}
	f.expectNone(t, c, "after the retried message came again")
	for _, id := range []string{byKey[keys[0]].DeliveryID, m.DeliveryID, byKey[keys[2]].DeliveryID} {
		f.settle(t, c, id, plugin.Settlement{Kind: plugin.Ack})
	}
	f.expectState(t, statuses(Processed, keys...))
}

func caseReconnect(t *testing.T, h Harness) {
	f := newFixture(t, h)
	keys := f.inject(t, 5, 0)
	c1 := f.open(t)
	first := f.readN(t, c1, len(keys))
	f.settle(t, c1, first[keys[0]].DeliveryID, plugin.Settlement{Kind: plugin.Ack})
	f.settle(t, c1, first[keys[1]].DeliveryID, plugin.Settlement{Kind: plugin.Reject, Reason: "bad"})
	f.settle(t, c1, first[keys[2]].DeliveryID, plugin.Settlement{Kind: plugin.Retry, RetryAfter: time.Hour})
	if err := c1.Close(); err != nil {
		t.Fatalf("Close with unsettled messages: %v", err)
	}
	// Closing with unsettled messages changes nothing at the source.
	f.expectState(t, merge(statuses(Processed, keys[0]), statuses(Rejected, keys[1]), statuses(Untouched, keys[2:]...)))

	c2 := f.open(t)
	// Delivery ids of the closed connector mean nothing to the new one.
	for _, m := range first {
		f.settle(t, c2, m.DeliveryID, plugin.Settlement{Kind: plugin.Ack})
	}
	f.expectState(t, merge(statuses(Processed, keys[0]), statuses(Rejected, keys[1]), statuses(Untouched, keys[2:]...)))
	// The unsettled come again, with the same source ids; a retry delay does
	// not outlive the connector.
	second := map[string]*plugin.Message{}
	for range keys[2:] {
		m := f.read(t, c2)
		key := keyOf(m.Raw)
		if second[key] != nil {
			t.Fatalf("after reconnect, %s offered twice", key)
		}
		second[key] = m
		old := first[key]
		switch {
		case key == keys[0] || key == keys[1]:
			t.Fatalf("after reconnect, the settled message %s came again", key)
		case old.SourceID != m.SourceID:
			t.Errorf("message %s: source id %q before reconnect, %q after", key, old.SourceID, m.SourceID)
		}
	}
	f.expectNone(t, c2, "after reconnect, every unsettled message was read")
	for _, m := range second {
		f.settle(t, c2, m.DeliveryID, plugin.Settlement{Kind: plugin.Ack})
	}
	f.expectState(t, merge(statuses(Processed, keys[0]), statuses(Rejected, keys[1]), statuses(Processed, keys[2:]...)))
}

func caseConcurrency(t *testing.T, h Harness) {
	f := newFixture(t, h)
	const n, readers, settlers = 40, 4, 3
	keys := f.inject(t, n, 0)
	want := map[string]Status{}
	index := map[string]int{}
	for i, k := range keys {
		index[k] = i
		if i%5 == 0 {
			want[k] = Rejected
		} else {
			want[k] = Processed
		}
	}
	c := f.open(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*h.timeout())
	defer cancel()

	var (
		mu       sync.Mutex
		inflight = map[string]bool{} // by source id
		retried  = map[string]bool{} // by key
		done     = 0
		errs     []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		errs = append(errs, fmt.Sprintf(format, args...))
		mu.Unlock()
		cancel()
	}
	work := make(chan *plugin.Message)
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			for {
				m, err := c.Read(ctx)
				if err != nil {
					if ctx.Err() == nil {
						fail("Read: %v", err)
					}
					return
				}
				mu.Lock()
				if inflight[m.SourceID] {
					mu.Unlock()
					fail("source id %q offered twice while unsettled", m.SourceID)
					return
				}
				inflight[m.SourceID] = true
				mu.Unlock()
				select {
				case work <- m:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	var sw sync.WaitGroup
	for range settlers {
		sw.Go(func() {
			for m := range work {
				key := keyOf(m.Raw)
				if !bytes.Equal(m.Raw, f.raws[key]) {
					fail("message %q: raw bytes differ", key)
					continue
				}
				s := plugin.Settlement{Kind: plugin.Ack}
				mu.Lock()
				first := !retried[key]
				retried[key] = true
				mu.Unlock()
				switch {
				case first && index[key]%3 == 0:
					s = plugin.Settlement{Kind: plugin.Retry, RetryAfter: time.Duration(rand.IntN(20)) * time.Millisecond}
				case want[key] == Rejected:
					s = plugin.Settlement{Kind: plugin.Reject, Reason: "reject " + key}
				}
				// Clear the in-flight mark before settling: once settled,
				// the connector may offer it again at once.
				mu.Lock()
				delete(inflight, m.SourceID)
				mu.Unlock()
				if err := c.Settle(ctx, m.DeliveryID, s); err != nil {
					fail("Settle(%s, %v): %v", key, s.Kind, err)
					continue
				}
				if s.Kind != plugin.Retry {
					mu.Lock()
					done++
					all := done == n
					mu.Unlock()
					if all {
						cancel()
					}
				}
			}
		})
	}
	wg.Wait()
	close(work)
	sw.Wait()
	for _, e := range errs {
		t.Error(e)
	}
	if done != n {
		t.Fatalf("settled %d of %d messages (ctx: %v)", done, n, ctx.Err())
	}
	f.expectState(t, want)
	f.expectNone(t, c, "after the concurrent run")
}

// caseSend checks the send path of a connector whose harness has a Sink: it
// advertises CapabilitySend once sending is configured, and a message it
// sends arrives at the sink with its Message-ID and body intact. Without a
// Sink it checks only that a connector advertising "send" implements
// plugin.Sender.
func caseSend(t *testing.T, h Harness) {
	f := newFixture(t, h)
	if h.Sink == nil {
		c := f.open(t)
		if info, err := c.Info(t.Context()); err == nil && slices.Contains(info.Capabilities, plugin.CapabilitySend) {
			if _, ok := c.(plugin.Sender); !ok {
				t.Fatal("Info lists \"send\" but the connector does not implement plugin.Sender")
			}
		}
		return
	}
	cfg := decodeConfig(t, f.cfg)
	h.Sink.Enable(t, cfg)
	c := h.Open(t, encodeConfig(t, cfg))
	if !plugin.Sends(t.Context(), c) {
		t.Fatalf("configured to send, the connector does not (Sender %T)", c)
	}
	key := f.name + "-send"
	raw := Message(key, 20<<10)
	ctx, cancel := context.WithTimeout(t.Context(), h.timeout())
	defer cancel()
	res, err := c.(plugin.Sender).Send(ctx, &plugin.OutgoingMessage{To: []string{"reports@example.test"}, Raw: raw})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.MessageID == "" {
		t.Error("Send returned no message id")
	}
	body := raw[bytes.Index(raw, []byte("\r\n\r\n")):]
	deadline := time.Now().Add(h.timeout())
	for {
		for _, got := range h.Sink.Received(t) {
			if keyOf(got) != key {
				continue
			}
			if !bytes.HasSuffix(bytes.ReplaceAll(got, []byte("\r\n"), []byte("\n")), bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))) {
				t.Fatalf("the sent message arrived changed: %d bytes, want the %d-byte body at its end", len(got), len(body))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sent message %s did not reach the sink within %v", key, h.timeout())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
