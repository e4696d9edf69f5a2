package maildir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/plugintest"
)

// open configures a connector on s and closes it at the end of the test.
func open(t *testing.T, s *dirSource) *Connector {
	t.Helper()
	c := newConnector(nil)
	t.Cleanup(func() { _ = c.Close() })
	diags, err := c.Configure(t.Context(), s.Config(t))
	if err != nil || diags.HasErrors() {
		t.Fatalf("Configure: %v %v", err, diags)
	}
	return c
}

func readWithin(t *testing.T, c plugin.Connector, d time.Duration) (*plugin.Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	return c.Read(ctx)
}

func mustRead(t *testing.T, c plugin.Connector) *plugin.Message {
	t.Helper()
	m, err := readWithin(t, c, 5*time.Second)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return m
}

func expectNothing(t *testing.T, c plugin.Connector) {
	t.Helper()
	m, err := readWithin(t, c, 150*time.Millisecond)
	if err == nil {
		t.Fatalf("offered %s (%s)", m.SourceID, m.Metadata["file"])
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read: %v", err)
	}
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestFormats(t *testing.T) {
	msg := plugintest.Message("formats", 0)
	tests := []struct {
		name       string
		mk         func(testing.TB) *dirSource
		noise      func(t *testing.T, s *dirSource) // files that must not be offered
		wantFormat string
		wantFolder func(s *dirSource) string
	}{
		{
			name: "maildir", mk: newMaildir, wantFormat: FormatMaildir,
			noise: func(t *testing.T, s *dirSource) {
				writeFile(t, filepath.Join(s.path, "tmp", "1700000000.partial.test"), msg[:20]) // delivery in progress
				writeFile(t, filepath.Join(s.path, "cur", "1600000000.old.test:2,S"), msg)      // already seen
				writeFile(t, filepath.Join(s.path, "new", ".hidden"), msg)
				if err := os.Mkdir(filepath.Join(s.path, "new", "subdir"), 0o750); err != nil {
					t.Fatal(err)
				}
			},
			wantFolder: func(*dirSource) string { return "new" },
		},
		{
			name: "eml directory", mk: newEMLDir, wantFormat: FormatEML,
			noise: func(t *testing.T, s *dirSource) {
				writeFile(t, filepath.Join(s.path, "notes.txt"), msg)
				writeFile(t, filepath.Join(s.path, ".msg-9.eml.part"), msg[:20])
				writeFile(t, filepath.Join(s.path, "sub", "inner.eml"), msg)
				writeFile(t, filepath.Join(s.path, "processed", "done.eml"), msg)
				writeFile(t, filepath.Join(s.path, "failed", "bad.eml"), msg)
			},
			wantFolder: func(s *dirSource) string { return s.path },
		},
		{
			// new/ without cur/ is not a Maildir: a directory of .eml files
			// that happens to hold a folder called new.
			name: "new without cur", wantFormat: FormatEML,
			mk: func(t testing.TB) *dirSource {
				s := newEMLDir(t)
				writeFile(t.(*testing.T), filepath.Join(s.path, "new", "x.eml"), msg)
				return s
			},
			noise:      func(*testing.T, *dirSource) {},
			wantFolder: func(s *dirSource) string { return s.path },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.mk(t)
			tt.noise(t, s)
			name := s.deliver(t, msg)
			c := open(t, s)
			m := mustRead(t, c)
			if string(m.Raw) != string(msg) {
				t.Errorf("raw differs")
			}
			wantSID := "maildir:" + name
			if tt.wantFormat == FormatEML {
				wantSID += "@" + digest(msg)
			}
			if m.SourceID != wantSID {
				t.Errorf("source id %q, want %q", m.SourceID, wantSID)
			}
			if m.Metadata["format"] != tt.wantFormat || m.Metadata["folder"] != tt.wantFolder(s) || m.Metadata["file"] != name {
				t.Errorf("metadata %v", m.Metadata)
			}
			if m.ReceivedAt.IsZero() {
				t.Error("ReceivedAt is zero")
			}
			expectNothing(t, c)
			if err := c.Settle(t.Context(), m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(s.processedDir(), name)
			if tt.wantFormat == FormatMaildir {
				want += ":2,S"
			}
			if _, err := os.Stat(want); err != nil {
				t.Errorf("acked file: %v", err)
			}
		})
	}
}

func TestMaildirFlags(t *testing.T) {
	tests := []struct{ name, wantCur, wantSID string }{
		{"1700000001.A.host", "1700000001.A.host:2,S", "maildir:1700000001.A.host"},
		{"1700000002.B.host:2,F", "1700000002.B.host:2,FS", "maildir:1700000002.B.host"},
		{"1700000003.C.host:2,RS", "1700000003.C.host:2,RS", "maildir:1700000003.C.host"},
		{"1700000004.D.host:1,xyz", "1700000004.D.host:2,S", "maildir:1700000004.D.host"},
	}
	s := newMaildir(t)
	for i, tt := range tests {
		writeFile(t, filepath.Join(s.path, "new", tt.name), plugintest.Message(tt.name, i*10))
	}
	c := open(t, s)
	for _, tt := range tests {
		m := mustRead(t, c)
		if m.Metadata["file"] != tt.name || m.SourceID != tt.wantSID {
			t.Errorf("got file %q source id %q, want %q %q", m.Metadata["file"], m.SourceID, tt.name, tt.wantSID)
		}
		if err := c.Settle(t.Context(), m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(s.path, "cur", tt.wantCur)); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestPartialFileInTmpIgnored(t *testing.T) {
	s := newMaildir(t)
	c := open(t, s)
	raw := plugintest.Message("partial", 4096)
	tmp := filepath.Join(s.path, "tmp", "1700000000.M1P1.test")
	writeFile(t, tmp, raw[:1000])
	expectNothing(t, c)
	f, err := os.OpenFile(tmp, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(raw[1000:]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	expectNothing(t, c)
	if err := os.Rename(tmp, filepath.Join(s.path, "new", "1700000000.M1P1.test")); err != nil {
		t.Fatal(err)
	}
	m := mustRead(t, c)
	if string(m.Raw) != string(raw) {
		t.Fatalf("got %d bytes, want the complete %d", len(m.Raw), len(raw))
	}
}

func TestOversizedRejected(t *testing.T) {
	tests := []struct {
		name   string
		mk     func(testing.TB) *dirSource
		size   int64
		sparse bool
	}{
		{name: "maildir just over", mk: newMaildir, size: 1001},
		{name: "eml just over", mk: newEMLDir, size: 1001},
		// A sparse 8 GiB file: reading it whole would take minutes and
		// the memory of the machine; it must be refused by its size.
		{name: "maildir 8GiB sparse", mk: newMaildir, size: 8 << 30, sparse: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.mk(t)
			s.extra = map[string]any{"max_message_size": "1KB"}
			var big string
			if tt.sparse {
				big = "1600000000.big.test"
				if s.format == FormatEML {
					big = "big.eml"
				}
				p := filepath.Join(s.inbox(), big)
				f, err := os.Create(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.Truncate(tt.size); err != nil {
					f.Close()
					t.Skipf("no sparse files here: %v", err)
				}
				f.Close()
			} else {
				raw := plugintest.Message("big", int(tt.size))[:tt.size]
				big = s.deliver(t, raw)
			}
			small := plugintest.Message("small", 100)
			s.deliver(t, small)
			c := open(t, s)
			m := mustRead(t, c)
			if string(m.Raw) != string(small) {
				t.Fatalf("offered %s, want only the small message", m.Metadata["file"])
			}
			expectNothing(t, c)
			if _, err := os.Stat(filepath.Join(s.inbox(), big)); !os.IsNotExist(err) {
				t.Errorf("oversized file still in the inbox: %v", err)
			}
			fi, err := os.Stat(filepath.Join(s.failedDir(), big))
			if err != nil || fi.Size() != tt.size {
				t.Fatalf("oversized file in failed: %v", err)
			}
			reason, err := os.ReadFile(filepath.Join(s.failedDir(), big+".reason"))
			if err != nil {
				t.Fatal(err)
			}
			want := "maildir: message size " + strconv.FormatInt(tt.size, 10) + " bytes exceeds max_message_size 1000 bytes\n"
			if string(reason) != want {
				t.Errorf("reason %q, want %q", reason, want)
			}
		})
	}
}

func TestReasonFile(t *testing.T) {
	tests := []struct{ reason, want string }{
		{"datamap: no fax number", "datamap: no fax number\n"},
		{"trailing newline\n", "trailing newline\n"},
		{"two\nlines", "two\nlines\n"},
		{"", "rejected (no reason given)\n"},
		{"ünïcödé → ☎", "ünïcödé → ☎\n"},
	}
	for _, format := range []func(testing.TB) *dirSource{newMaildir, newEMLDir} {
		s := format(t)
		c := open(t, s)
		names := map[string]string{}
		for i, tt := range tests {
			names[s.deliver(t, plugintest.Message("reason"+strconv.Itoa(i), 0))] = tt.want
		}
		for range tests {
			m := mustRead(t, c)
			want := names[m.Metadata["file"]]
			reason := ""
			for _, tt := range tests {
				if tt.want == want {
					reason = tt.reason
				}
			}
			if err := c.Settle(t.Context(), m.DeliveryID, plugin.Settlement{Kind: plugin.Reject, Reason: reason}); err != nil {
				t.Fatal(err)
			}
		}
		for name, want := range names {
			got, err := os.ReadFile(filepath.Join(s.failedDir(), name+".reason"))
			if err != nil || string(got) != want {
				t.Errorf("%s: reason %q (%v), want %q", s.format, got, err, want)
			}
		}
		// No temporary files are left behind.
		ents, _ := os.ReadDir(s.failedDir())
		if len(ents) != 2*len(tests) {
			t.Errorf("%s: failed/ holds %d entries, want %d", s.format, len(ents), 2*len(tests))
		}
	}
}

func TestRenameRaces(t *testing.T) {
	t.Run("file vanishes while offered", func(t *testing.T) {
		for _, kind := range []plugin.SettleKind{plugin.Ack, plugin.Reject} {
			s := newMaildir(t)
			name := s.deliver(t, plugintest.Message("vanish", 0))
			c := open(t, s)
			m := mustRead(t, c)
			if err := os.Remove(filepath.Join(s.inbox(), name)); err != nil {
				t.Fatal(err)
			}
			if err := c.Settle(t.Context(), m.DeliveryID, plugin.Settlement{Kind: kind, Reason: "r"}); err != nil {
				t.Fatalf("%v of a vanished file: %v", kind, err)
			}
			if got := files(t, s.failedDir()); len(got) != 0 {
				t.Errorf("%v of a vanished file left %v in failed", kind, got)
			}
			expectNothing(t, c)
		}
	})
	t.Run("file vanishes between scan and read", func(t *testing.T) {
		s := newMaildir(t)
		s.deliver(t, plugintest.Message("first", 0))
		second := s.deliver(t, plugintest.Message("second", 0))
		c := open(t, s)
		mustRead(t, c) // the scan queued both
		if err := os.Remove(filepath.Join(s.inbox(), second)); err != nil {
			t.Fatal(err)
		}
		expectNothing(t, c)
		third := plugintest.Message("third", 0)
		s.deliver(t, third)
		if m := mustRead(t, c); string(m.Raw) != string(third) {
			t.Fatalf("got %s", m.Metadata["file"])
		}
	})
	t.Run("two connectors on one folder", func(t *testing.T) {
		s := newMaildir(t)
		name := s.deliver(t, plugintest.Message("shared", 0))
		c1, c2 := open(t, s), open(t, s)
		m1, m2 := mustRead(t, c1), mustRead(t, c2)
		if m1.SourceID != m2.SourceID {
			t.Fatalf("source ids %q and %q for one file", m1.SourceID, m2.SourceID)
		}
		if err := c1.Settle(t.Context(), m1.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
			t.Fatal(err)
		}
		if err := c2.Settle(t.Context(), m2.DeliveryID, plugin.Settlement{Kind: plugin.Reject, Reason: "late"}); err != nil {
			t.Fatalf("the second settle of a moved file: %v", err)
		}
		if got := files(t, s.processedDir()); len(got) != 1 || got[0] != name+":2,S" {
			t.Errorf("cur/ holds %v", got)
		}
		if got := files(t, s.failedDir()); len(got) != 0 {
			t.Errorf("failed/ holds %v", got)
		}
	})
	t.Run("name taken in processed", func(t *testing.T) {
		s := newEMLDir(t)
		raw := plugintest.Message("again", 0)
		name := s.deliver(t, raw)
		earlier := []byte("an earlier message with the same name")
		writeFile(t, filepath.Join(s.processedDir(), name), earlier)
		c := open(t, s)
		m := mustRead(t, c)
		if err := c.Settle(t.Context(), m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
			t.Fatal(err)
		}
		got := files(t, s.processedDir())
		if len(got) != 2 {
			t.Fatalf("processed/ holds %v, want the earlier and the new file", got)
		}
		if b, _ := os.ReadFile(filepath.Join(s.processedDir(), name)); string(b) != string(earlier) {
			t.Errorf("the earlier processed file was overwritten")
		}
		for _, n := range got {
			if n != name && (!strings.HasPrefix(n, strings.TrimSuffix(name, ".eml")+".") || !strings.HasSuffix(n, ".eml")) {
				t.Errorf("unexpected name %q", n)
			}
		}
	})
	t.Run("ack fails, settle again", func(t *testing.T) {
		s := newEMLDir(t)
		s.processed = filepath.Join(filepath.Dir(s.path), "done")
		s.deliver(t, plugintest.Message("blocked", 0))
		c := open(t, s)
		m := mustRead(t, c)
		// Replace the processed folder by a file: the rename fails.
		if err := os.Remove(s.processed); err != nil {
			t.Fatal(err)
		}
		writeFile(t, s.processed, []byte("in the way"))
		if err := c.Settle(t.Context(), m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err == nil {
			t.Fatal("ack into a file: no error")
		}
		expectNothing(t, c) // still in flight, not offered again
		if err := os.Remove(s.processed); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(s.processed, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := c.Settle(t.Context(), m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
			t.Fatalf("second ack: %v", err)
		}
		if got := files(t, s.processed); len(got) != 1 {
			t.Errorf("processed holds %v", got)
		}
	})
}

func TestLifecycleErrors(t *testing.T) {
	c := newConnector(nil)
	if _, err := readWithin(t, c, time.Second); !errors.Is(err, errNotConfigured) {
		t.Errorf("Read before Configure: %v", err)
	}
	s := newMaildir(t)
	c = open(t, s)
	s.deliver(t, plugintest.Message("life", 0))
	m := mustRead(t, c)
	if _, err := c.Configure(t.Context(), s.Config(t)); err == nil {
		t.Error("Configure after reading started: no error")
	}
	if err := c.Settle(t.Context(), m.DeliveryID, plugin.Settlement{}); err == nil {
		t.Error("Settle with no kind: no error")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Settle(t.Context(), m.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); !errors.Is(err, plugin.ErrClosed) {
		t.Errorf("Settle after Close: %v", err)
	}
	if _, err := readWithin(t, c, time.Second); !errors.Is(err, plugin.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if got := files(t, s.inbox()); len(got) != 1 {
		t.Errorf("new/ holds %v after Close", got)
	}
}

func TestTest(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) *dirSource
		want  plugin.TestCategory
		root  bool // the check cannot fail for root: run as nobody
	}{
		{"maildir", func(t *testing.T) *dirSource { return newMaildir(t) }, plugin.TestOK, false},
		{"eml directory", func(t *testing.T) *dirSource { return newEMLDir(t) }, plugin.TestOK, false},
		{"failed folder to be created", func(t *testing.T) *dirSource {
			s := newEMLDir(t)
			s.failed = filepath.Join(s.path, "a", "b", "c")
			return s
		}, plugin.TestOK, false},
		{"missing path", func(t *testing.T) *dirSource {
			s := newMaildir(t)
			s.path = filepath.Join(s.path, "nope")
			return s
		}, plugin.TestMailboxNotFound, false},
		{"path is a file", func(t *testing.T) *dirSource {
			s := newEMLDir(t)
			s.path = filepath.Join(s.path, "x.eml")
			writeFile(t, s.path, []byte("x"))
			return s
		}, plugin.TestError, false},
		{"failed is a file", func(t *testing.T) *dirSource {
			s := newMaildir(t)
			writeFile(t, filepath.Join(s.path, "failed"), []byte("x"))
			return s
		}, plugin.TestError, false},
		{"processed under a file", func(t *testing.T) *dirSource {
			s := newMaildir(t)
			writeFile(t, filepath.Join(s.path, "blocker"), []byte("x"))
			s.processed = filepath.Join(s.path, "blocker", "done")
			return s
		}, plugin.TestError, false},
		{"inbox not writable", func(t *testing.T) *dirSource {
			s := newMaildir(t)
			if err := os.Chmod(filepath.Join(s.path, "new"), 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(filepath.Join(s.path, "new"), 0o750) })
			return s
		}, plugin.TestPermissionDenied, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() == 0 {
				runAsNobody(t)
				return
			}
			s := tt.setup(t)
			c := open(t, s)
			r := c.Test(t.Context())
			if r.Category != tt.want {
				t.Fatalf("Test: %s (hint %q, detail %q), want %s", r.Category, r.Hint, r.Detail, tt.want)
			}
			if r.Category != plugin.TestOK && r.Hint == "" {
				t.Errorf("no hint for %s", r.Category)
			}
		})
	}
	if r := newConnector(nil).Test(t.Context()); r.Category != plugin.TestError {
		t.Errorf("Test before Configure: %s", r.Category)
	}
}

func TestHealth(t *testing.T) {
	s := newMaildir(t)
	c := open(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := c.Health(ctx)
	next := func() plugin.Health {
		t.Helper()
		select {
		case h, ok := <-ch:
			if !ok {
				t.Fatal("health channel closed")
			}
			return h
		case <-time.After(5 * time.Second):
			t.Fatal("no health change")
		}
		return plugin.Health{}
	}
	if h := next(); h.State != plugin.HealthStarting {
		t.Fatalf("first state %s", h.State)
	}
	expectNothing(t, c)
	if h := next(); h.State != plugin.HealthHealthy {
		t.Fatalf("after start: %s %q", h.State, h.Message)
	}
	if err := os.Rename(filepath.Join(s.path, "new"), filepath.Join(s.path, "new.away")); err != nil {
		t.Fatal(err)
	}
	expectNothing(t, c)
	if h := next(); h.State != plugin.HealthDown || !strings.Contains(h.Message, "new") {
		t.Fatalf("inbox gone: %s %q", h.State, h.Message)
	}
	if err := os.Rename(filepath.Join(s.path, "new.away"), filepath.Join(s.path, "new")); err != nil {
		t.Fatal(err)
	}
	expectNothing(t, c)
	if h := next(); h.State != plugin.HealthHealthy {
		t.Fatalf("inbox back: %s %q", h.State, h.Message)
	}
	// A second subscriber ends with its context.
	ctx2, cancel2 := context.WithCancel(t.Context())
	ch2 := c.Health(ctx2)
	<-ch2
	cancel2()
	select {
	case _, ok := <-ch2:
		if ok {
			t.Fatal("value after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after its context ended")
	}
	_ = c.Close()
	for range ch { // drains the last state, then ends
	}
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// A drop folder of .eml files may see the same name twice: the second file is
// a new message for the host's dedupe, while the same file read twice (after
// a crash) keeps its id.
func TestEMLNameReusedIsANewMessage(t *testing.T) {
	s := newEMLDir(t)
	first := plugintest.Message("first alarm", 0)
	writeFile(t, filepath.Join(s.path, "alarm.eml"), first)
	c := open(t, s)
	m1 := mustRead(t, c)
	if err := c.Settle(t.Context(), m1.DeliveryID, plugin.Settlement{Kind: plugin.Retry}); err != nil {
		t.Fatal(err)
	}
	c2 := open(t, s)
	again := mustRead(t, c2)
	if again.SourceID != m1.SourceID {
		t.Fatalf("the same file read again has source id %q, first %q", again.SourceID, m1.SourceID)
	}
	if err := c2.Settle(t.Context(), again.DeliveryID, plugin.Settlement{Kind: plugin.Ack}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(s.path, "alarm.eml"), plugintest.Message("second alarm", 0))
	m2 := mustRead(t, c2)
	if m2.Metadata["file"] != "alarm.eml" || m2.SourceID == m1.SourceID {
		t.Fatalf("a new file under a reused name: file %q source id %q (first %q)", m2.Metadata["file"], m2.SourceID, m1.SourceID)
	}
}
