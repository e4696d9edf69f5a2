// Package plugintest is the test kit for connector authors: a harness that
// describes a message source, and a conformance suite (RunConformance) that
// every connector runs, in process or through the plugin boundary.
//
// A connector test supplies a Harness: how to construct the connector, how to
// make a fresh source (a directory, a mailbox on a test IMAP server), how to
// put messages into it and how to see what happened to them. The suite then
// checks the contract of plugin.Connector: exactly-once settlement, redelivery
// after retry, reject with reason, reconnect, idempotent settle, Close
// unblocking Read, and concurrent use.
package plugintest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin"
)

// Status is what happened to a message at its source.
type Status int

const (
	// Untouched: the message is where it was injected, to be offered.
	Untouched Status = iota + 1
	// Processed: the message was acked (marked or moved as processed).
	Processed
	// Rejected: the message was moved aside with a reason.
	Rejected
)

func (s Status) String() string {
	switch s {
	case Untouched:
		return "untouched"
	case Processed:
		return "processed"
	case Rejected:
		return "rejected"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Stored is one message as the source holds it now.
type Stored struct {
	Raw    []byte // the message bytes as stored
	Status Status
	Reason string // for Rejected: the reason the source recorded
}

// Source is one isolated message source for one test case.
type Source interface {
	// Config returns a valid JSON configuration (an object) for a connector
	// reading this source.
	Config(t testing.TB) []byte
	// Inject delivers one raw RFC 5322 message to the source, the way a
	// real sender would (complete and visible at once).
	Inject(t testing.TB, raw []byte)
	// State lists every message the source holds, with its status.
	State(t testing.TB) []Stored
}

// BadConfig is a broken configuration the connector must refuse with an
// error diagnostic naming Field.
type BadConfig struct {
	Name string
	// Mutate changes a decoded copy of the good configuration.
	Mutate func(cfg map[string]any)
	// Field is the key the error diagnostic must name.
	Field string
}

// Harness describes a connector and its source to the suite.
type Harness struct {
	// Factory constructs the connector under test.
	Factory plugin.Factory
	// NewSource makes a fresh, empty source; it is called once per case
	// and must clean up after itself with t.Cleanup.
	NewSource func(t testing.TB) Source
	// Wrap, when set, is applied to every connector the factory makes
	// before the suite uses it: the plugin boundary (a gRPC client talking
	// to a server that hosts the in-process connector) plugs in here, so
	// the same suite checks a connector both in process and over gRPC.
	Wrap func(plugin.Connector) plugin.Connector
	// BadConfigs are extra broken configurations to check. The suite
	// always checks an unknown top-level key on its own.
	BadConfigs []BadConfig
	// Quiet is how long the suite waits to conclude that nothing more will
	// be offered (a few poll intervals of the connector). Default 500ms.
	Quiet time.Duration
	// Timeout bounds the wait for an expected message. Default 10s.
	Timeout time.Duration
	// LargeMessage is the size of the large message in the receive case
	// (to cross chunk boundaries); 0 means 1 MiB + 7 bytes, <0 none.
	LargeMessage int
	// Logger is handed to the factory; nil discards.
	Logger *slog.Logger
	// Sink, when set, is where the connector's send path delivers: the
	// suite turns sending on with it and finds what was sent there. A
	// connector that cannot send leaves it nil.
	Sink SendSink
}

// SendSink is the far end of a connector's send path in a test: an SMTP
// server, an outbox folder, a mailbox.
type SendSink interface {
	// Enable adds the settings that make the connector send into this sink
	// to a decoded good configuration.
	Enable(t testing.TB, cfg map[string]any)
	// Received lists the raw messages that reached the sink so far (a
	// relay may have added trace headers).
	Received(t testing.TB) [][]byte
}

func (h Harness) quiet() time.Duration {
	if h.Quiet > 0 {
		return h.Quiet
	}
	return 500 * time.Millisecond
}

func (h Harness) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return 10 * time.Second
}

func (h Harness) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// New constructs a connector (wrapped when Wrap is set) without configuring
// it; the connector is closed when the test ends.
func (h Harness) New(t testing.TB) plugin.Connector {
	t.Helper()
	c := h.make(t)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// make constructs a connector (wrapped when Wrap is set); the caller closes it.
func (h Harness) make(t testing.TB) plugin.Connector {
	t.Helper()
	c := h.Factory(h.logger())
	if c == nil {
		t.Fatal("plugintest: factory returned nil")
	}
	if h.Wrap != nil {
		c = h.Wrap(c)
	}
	return c
}

// Open constructs a connector and configures it with cfg; it fails the test
// on an error or an error diagnostic.
func (h Harness) Open(t testing.TB, cfg []byte) plugin.Connector {
	t.Helper()
	c := h.New(t)
	ctx := t.Context()
	diags, err := c.Configure(ctx, cfg)
	if err != nil {
		t.Fatalf("Configure(%s): %v", cfg, err)
	}
	if diags.HasErrors() {
		t.Fatalf("Configure(%s): diagnostics %v", cfg, diags)
	}
	return c
}

// Message builds a distinct RFC 5322 test message whose Message-ID carries
// key, with a body of at least size bytes (CRLF line endings, 8-bit text).
func Message(key string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Conformance <sender@example.test>\r\n")
	fmt.Fprintf(&b, "To: Fax 0123 <fax@example.test>\r\n")
	fmt.Fprintf(&b, "Subject: conformance %s\r\n", key)
	fmt.Fprintf(&b, "Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n")
	fmt.Fprintf(&b, "Message-ID: %s\r\n", messageID(key))
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\n")
	fmt.Fprintf(&b, "Content-Transfer-Encoding: 8bit\r\n\r\n")
	fmt.Fprintf(&b, "Grüße aus der Prüfung %s.\r\n", key)
	line := 0
	for b.Len() < size {
		fmt.Fprintf(&b, "%06d %s the quick brown fox jumps over the lazy dog äöü\r\n", line, key)
		line++
	}
	return b.Bytes()
}

func messageID(key string) string { return "<conformance-" + key + "@mediagw.test>" }

// keyOf finds the key of a message made by Message, or "".
func keyOf(raw []byte) string {
	const prefix = "<conformance-"
	i := bytes.Index(raw, []byte(prefix))
	if i < 0 {
		return ""
	}
	rest := raw[i+len(prefix):]
	j := bytes.Index(rest, []byte("@mediagw.test>"))
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// decodeConfig decodes a JSON object configuration.
func decodeConfig(t testing.TB, cfg []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(cfg, &m); err != nil {
		t.Fatalf("plugintest: the harness config is not a JSON object: %v", err)
	}
	return m
}

func encodeConfig(t testing.TB, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
