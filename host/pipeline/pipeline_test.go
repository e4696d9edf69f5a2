package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/datamap"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/internal/backoff"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/plugin"
)

// source is a fake connector: it offers queued messages and records every
// settlement. When the queue is empty Read blocks until more come, the
// source fails (fail is closed), or ctx ends.
type source struct {
	mu        sync.Mutex
	queue     []*plugin.Message
	more      chan struct{}
	fail      chan struct{}
	settled   map[string][]plugin.Settlement
	reads     int
	unsettle  int // read but not yet settled
	maxOpen   int
	settleErr error
	failFirst int // this many Settle calls fail before they succeed
}

var _ plugin.Connector = (*source)(nil)

func newSource(msgs ...*plugin.Message) *source {
	return &source{queue: msgs, more: make(chan struct{}, 1), fail: make(chan struct{}), settled: map[string][]plugin.Settlement{}}
}

func (s *source) Info(context.Context) (plugin.Info, error)                     { return plugin.Info{Name: "fake"}, nil }
func (s *source) ConfigSchema(context.Context) ([]plugin.ConfigField, error)    { return nil, nil }
func (s *source) Configure(context.Context, []byte) (plugin.Diagnostics, error) { return nil, nil }
func (s *source) Test(context.Context) plugin.TestResult                        { return plugin.TestResult{} }
func (s *source) Close() error                                                  { return nil }

func (s *source) Read(ctx context.Context) (*plugin.Message, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			m := s.queue[0]
			s.queue = s.queue[1:]
			s.reads++
			s.unsettle++
			s.maxOpen = max(s.maxOpen, s.unsettle)
			s.mu.Unlock()
			return m, nil
		}
		s.mu.Unlock()
		select {
		case <-s.more:
		case <-s.fail:
			return nil, errors.New("stream ended")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *source) Settle(_ context.Context, id string, st plugin.Settlement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settled[id] = append(s.settled[id], st)
	if s.failFirst > 0 {
		s.failFirst--
		return errors.New("processed folder not writable")
	}
	s.unsettle--
	return s.settleErr
}

func (s *source) settlements() map[string][]plugin.Settlement {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]plugin.Settlement{}
	for k, v := range s.settled {
		out[k] = append([]plugin.Settlement(nil), v...)
	}
	return out
}

func (s *source) settledCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.settled {
		n += len(v)
	}
	return n
}

func msg(delivery, source string) *plugin.Message {
	return &plugin.Message{DeliveryID: delivery, SourceID: source, Raw: []byte("Subject: " + source + "\r\n\r\nbody\r\n")}
}

// mapper is a fake data map.
type mapper func(raw []byte) (*Mapped, error)

func (f mapper) Map(raw []byte) (*Mapped, error) { return f(raw) }

func routeTo(drivers ...string) mapper {
	return func(raw []byte) (*Mapped, error) {
		return &Mapped{Fields: map[string]string{"subject": string(raw[9:20])}, Routes: drivers,
			Documents: []linedriver.Document{{Name: "body.txt", MediaType: "text/plain", Data: raw}}}, nil
	}
}

// driver is a fake line driver whose Check can refuse.
type driver struct {
	name  string
	check error
}

var _ linedriver.Driver = (*driver)(nil)

func (d *driver) Name() string                   { return d.name }
func (d *driver) Check(*linedriver.Record) error { return d.check }
func (d *driver) Slots() int                     { return 1 }
func (d *driver) Close() error                   { return nil }
func (d *driver) Deliver(context.Context, *linedriver.Job, func(linedriver.Progress)) linedriver.Outcome {
	return linedriver.Done(nil)
}

func openSpool(t *testing.T) spool.Store {
	t.Helper()
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// runUntil runs the pipeline until the source has n settlements.
func runUntil(t *testing.T, p *Pipeline, src interface {
	plugin.Connector
	settledCount() int
}, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, src) }()
	testenv.Eventually(t, 5*time.Second, fmt.Sprintf("%d settlements", n), func() bool { return src.settledCount() >= n })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
}

func TestSettlement(t *testing.T) {
	refuse := errors.New("no fax number")
	cases := []struct {
		name    string
		mapper  Mapper
		routes  []string // connector's default routes
		refuse  string   // driver whose Check refuses
		closeSp bool     // the spool fails
		kind    plugin.SettleKind
		reason  string         // substring of the settlement reason
		jobs    map[string]int // queued jobs per driver afterwards
		notify  []string
	}{
		{name: "mapped and routed: ack after the spool took it", mapper: routeTo("fax"), kind: plugin.Ack,
			jobs: map[string]int{"fax": 1}, notify: []string{"fax"}},
		{name: "two drivers: one job each", mapper: routeTo("fax", "file"), kind: plugin.Ack,
			jobs: map[string]int{"fax": 1, "file": 1}, notify: []string{"fax", "file"}},
		{name: "map chose no route: connector default", mapper: routeTo(), routes: []string{"file"}, kind: plugin.Ack,
			jobs: map[string]int{"file": 1}, notify: []string{"file"}},
		{name: "map rejects", mapper: mapper(func([]byte) (*Mapped, error) { return nil, errors.New("field fax_number: missing") }),
			kind: plugin.Reject, reason: "field fax_number: missing"},
		{name: "map rejects a missing field: the reason says where it looked", mapper: mapper(func([]byte) (*Mapped, error) {
			return nil, fmt.Errorf("map: %w", &datamap.Rejection{Field: "fax_number", Reason: "required, found nothing",
				Tried: []datamap.Tried{{Source: "Subject", Held: "Hello", Rule: "regex `[0-9]+`"}, {Source: "X-Fax", Absent: true, Rule: "header"}}})
		}), kind: plugin.Reject, reason: `fax_number: required, found nothing (looked in: Subject "Hello" by regex ` + "`[0-9]+`" + `; X-Fax absent by header)`},
		{name: "map panics", mapper: mapper(func([]byte) (*Mapped, error) { panic("boom") }),
			kind: plugin.Reject, reason: "data map failed on this message: boom"},
		{name: "map returns nothing", mapper: mapper(func([]byte) (*Mapped, error) { return nil, nil }),
			kind: plugin.Reject, reason: "no record"},
		{name: "no route anywhere", mapper: routeTo(), kind: plugin.Reject, reason: "no route"},
		{name: "route to an unknown driver", mapper: routeTo("pager"), kind: plugin.Reject, reason: `"pager", which is not configured`},
		{name: "driver Check refuses", mapper: routeTo("fax"), refuse: "fax", kind: plugin.Reject, reason: "fax: no fax number"},
		{name: "second driver refuses: nothing spooled", mapper: routeTo("file", "fax"), refuse: "fax", kind: plugin.Reject, reason: "fax: no fax number"},
		{name: "spool fails: retry later", mapper: routeTo("fax"), closeSp: true, kind: plugin.Retry, reason: "spool: closed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp := openSpool(t)
			var mu sync.Mutex
			var notified []string
			targets := map[string]Target{}
			for _, name := range []string{"fax", "file"} {
				d := &driver{name: name}
				if name == tc.refuse {
					d.check = refuse
				}
				targets[name] = Target{Driver: d}
			}
			// The dispatchers are woken by the spool when it has the jobs.
			sp.Wake(func(driver string) { mu.Lock(); notified = append(notified, driver); mu.Unlock() })
			p := &Pipeline{Connector: "inbox", Mapper: tc.mapper, Targets: targets, Routes: tc.routes, Spool: sp,
				Log: discard(), MaxInFlight: 2, RetryAfter: 42 * time.Second}
			if tc.closeSp {
				sp.Close()
			}
			src := newSource(msg("d1", "maildir:a.eml"))
			runUntil(t, p, src, 1)

			got := src.settlements()["d1"]
			if len(got) != 1 {
				t.Fatalf("delivery settled %d times, want exactly once: %+v", len(got), got)
			}
			if got[0].Kind != tc.kind || !strings.Contains(got[0].Reason, tc.reason) {
				t.Errorf("settlement = %s %q, want %s containing %q", got[0].Kind, got[0].Reason, tc.kind, tc.reason)
			}
			if tc.kind == plugin.Retry && got[0].RetryAfter != 42*time.Second {
				t.Errorf("retry after %v, want the pipeline's 42s", got[0].RetryAfter)
			}
			mu.Lock()
			if fmt.Sprint(sortedCopy(notified)) != fmt.Sprint(tc.notify) && !(len(notified) == 0 && len(tc.notify) == 0) {
				t.Errorf("notified %v, want %v", notified, tc.notify)
			}
			mu.Unlock()
			if tc.closeSp {
				return
			}
			st, err := sp.Stats(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{"fax", "file"} {
				if st.Queued[d] != tc.jobs[d] {
					t.Errorf("driver %s has %d jobs in the spool, want %d", d, st.Queued[d], tc.jobs[d])
				}
			}
			seen, _ := sp.Seen(t.Context(), "inbox", "maildir:a.eml")
			if seen != (tc.kind == plugin.Ack) {
				t.Errorf("source id remembered = %v, want %v (only an accepted message is remembered)", seen, tc.kind == plugin.Ack)
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestDedupe: the same source id offered again (a redelivery after a crash,
// or twice at once) is acked without a second job.
func TestDedupe(t *testing.T) {
	sp := openSpool(t)
	var mapped atomic.Int32
	m := mapper(func(raw []byte) (*Mapped, error) {
		mapped.Add(1)
		time.Sleep(5 * time.Millisecond) // let the twin offers overlap
		return routeTo("fax")(raw)
	})
	p := &Pipeline{Connector: "inbox", Mapper: m, Targets: map[string]Target{"fax": {Driver: &driver{name: "fax"}}},
		Spool: sp, Log: discard(), MaxInFlight: 8}
	src := newSource(msg("d1", "imap:1:7"), msg("d2", "imap:1:7"), msg("d3", "imap:1:8"), msg("d4", "imap:1:7"))
	runUntil(t, p, src, 4)
	for id, ss := range src.settlements() {
		if len(ss) != 1 || ss[0].Kind != plugin.Ack {
			t.Errorf("delivery %s: settlements %+v, want one ack", id, ss)
		}
	}
	st, _ := sp.Stats(t.Context())
	if st.Queued["fax"] != 2 {
		t.Errorf("%d jobs spooled, want 2 (one per source id)", st.Queued["fax"])
	}
	// A later redelivery is acked without being mapped again.
	before := mapped.Load()
	src2 := newSource(msg("d5", "imap:1:8"))
	runUntil(t, p, src2, 1)
	if got := src2.settlements()["d5"]; len(got) != 1 || got[0].Kind != plugin.Ack || got[0].Reason != "already accepted" {
		t.Errorf("redelivery settled %+v, want ack already accepted", got)
	}
	if mapped.Load() != before {
		t.Errorf("a message already in the spool was mapped again")
	}
	// Another connector's message with the same source id is its own.
	p.Connector = "other"
	src3 := newSource(msg("d6", "imap:1:8"))
	runUntil(t, p, src3, 1)
	if st, _ := sp.Stats(t.Context()); st.Queued["fax"] != 3 {
		t.Errorf("%d jobs, want 3: source ids are per connector", st.Queued["fax"])
	}
}

// TestBoundedInFlight: no more than MaxInFlight messages are read and
// unsettled at once, whatever the source has waiting.
func TestBoundedInFlight(t *testing.T) {
	for _, limit := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			sp := openSpool(t)
			gate := make(chan struct{})
			var inMap atomic.Int32
			m := mapper(func(raw []byte) (*Mapped, error) {
				inMap.Add(1)
				<-gate
				return routeTo("fax")(raw)
			})
			var msgs []*plugin.Message
			for i := range 20 {
				msgs = append(msgs, msg(fmt.Sprintf("d%d", i), fmt.Sprintf("src-%02d", i)))
			}
			src := newSource(msgs...)
			p := &Pipeline{Connector: "inbox", Mapper: m, Targets: map[string]Target{"fax": {Driver: &driver{name: "fax"}}},
				Spool: sp, Log: discard(), MaxInFlight: limit}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx, src) }()
			waitUntil(t, "the bound's worth of messages in the map", func() bool { return inMap.Load() >= int32(limit) })
			time.Sleep(30 * time.Millisecond) // room for a read beyond the bound
			src.mu.Lock()
			reads := src.reads
			src.mu.Unlock()
			if reads != limit {
				t.Fatalf("%d messages read while %d were unsettled, want %d", reads, limit, limit)
			}
			close(gate)
			waitUntil(t, "every message settled", func() bool { return src.settledCount() >= 20 })
			cancel()
			<-done
			if src.maxOpen > limit {
				t.Errorf("%d messages unsettled at once, limit %d", src.maxOpen, limit)
			}
			for id, ss := range src.settlements() {
				if len(ss) != 1 {
					t.Errorf("delivery %s settled %d times", id, len(ss))
				}
			}
		})
	}
}

// TestSourceFails: Run returns the source's error once every message in
// flight is settled.
func TestSourceFails(t *testing.T) {
	sp := openSpool(t)
	gate := make(chan struct{})
	m := mapper(func(raw []byte) (*Mapped, error) { <-gate; return routeTo("fax")(raw) })
	src := newSource(msg("d1", "s1"), msg("d2", "s2"))
	p := &Pipeline{Connector: "inbox", Mapper: m, Targets: map[string]Target{"fax": {Driver: &driver{name: "fax"}}},
		Spool: sp, Log: discard(), MaxInFlight: 4}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background(), src) }()
	waitUntil(t, "both messages read", func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.reads == 2
	})
	close(src.fail)
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before the messages in flight were settled", err)
	case <-time.After(30 * time.Millisecond):
	}
	close(gate)
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "connector inbox: stream ended") {
		t.Errorf("Run = %v, want the source's error with the connector's name", err)
	}
	if n := src.settledCount(); n != 2 {
		t.Errorf("%d settled, want both in flight", n)
	}
}

// TestSettleFails: a settlement the source did not take is not repeated by
// the pipeline (the source offers the message again; dedupe acks it).
func TestSettleFails(t *testing.T) {
	sp := openSpool(t)
	p := &Pipeline{Connector: "inbox", Mapper: routeTo("fax"), Targets: map[string]Target{"fax": {Driver: &driver{name: "fax"}}},
		Spool: sp, Log: discard(), MaxInFlight: 1}
	src := newSource(msg("d1", "s1"))
	src.settleErr = errors.New("plugin gone")
	runUntil(t, p, src, 1)
	src2 := newSource(msg("d2", "s1"))
	runUntil(t, p, src2, 1)
	if got := src2.settlements()["d2"]; len(got) != 1 || got[0].Kind != plugin.Ack {
		t.Errorf("redelivery after a failed ack: %+v, want ack", got)
	}
	if st, _ := sp.Stats(t.Context()); st.Queued["fax"] != 1 {
		t.Errorf("%d jobs, want 1", st.Queued["fax"])
	}
}

// A settlement the source could not carry out is tried again while the
// message keeps its in-flight slot; it is not left hanging at the source.
func TestFailedSettleTriedAgain(t *testing.T) {
	defer func(p backoff.Policy) { settleRetry = p }(settleRetry)
	settleRetry = backoff.Policy{Min: time.Millisecond, Max: 4 * time.Millisecond}
	sp := openSpool(t)
	p := &Pipeline{Connector: "inbox", Mapper: routeTo("fax"), Targets: map[string]Target{"fax": {Driver: &driver{name: "fax"}}},
		Spool: sp, Log: discard(), MaxInFlight: 1}
	src := newSource(msg("d1", "s1"), msg("d2", "s2"))
	src.failFirst = 3
	runUntil(t, p, src, 5)
	got := src.settlements()
	if len(got["d1"]) != 4 || len(got["d2"]) != 1 {
		t.Fatalf("settle calls: d1 %d, d2 %d; want 4 (3 failed, then done) and 1", len(got["d1"]), len(got["d2"]))
	}
	for _, st := range append(got["d1"], got["d2"]...) {
		if st.Kind != plugin.Ack {
			t.Errorf("settlement %+v, want the same ack each time", st)
		}
	}
	if src.maxOpen != 1 {
		t.Errorf("%d messages open at once, want 1 (the unsettled one keeps its slot)", src.maxOpen)
	}
	if st, _ := sp.Stats(t.Context()); st.Queued["fax"] != 2 {
		t.Errorf("%d jobs, want 2", st.Queued["fax"])
	}
}

// Once the plugin is gone its deliveries cannot be settled any more: the
// pipeline does not hold their slots retrying, so it reads on, sees the
// stream end, and the host relaunches the plugin.
func TestSettleAfterPluginGoneNotRetried(t *testing.T) {
	sp := openSpool(t)
	p := &Pipeline{Connector: "inbox", Mapper: routeTo("fax"), Targets: map[string]Target{"fax": {Driver: &driver{name: "fax"}}},
		Spool: sp, Log: discard(), MaxInFlight: 1}
	src := newSource(msg("d1", "s1"), msg("d2", "s2"))
	src.settleErr = fmt.Errorf("settle d1: %w: connection refused", plugin.ErrStreamEnded)
	runUntil(t, p, src, 2)
	if got := src.settlements(); len(got["d1"]) != 1 || len(got["d2"]) != 1 {
		t.Fatalf("settle calls %v, want one each", got)
	}
}

// TestMappedLineShowsFields: the mapped activity line names the record's
// fields and sender for the operator, never a field named like a secret.
func TestMappedLineShowsFields(t *testing.T) {
	var log bytes.Buffer
	m := mapper(func(raw []byte) (*Mapped, error) {
		return &Mapped{Fields: map[string]string{"fax_number": "+12015550142", "fax_number_as_written": "+1 (201) 555-0142",
			"recipient": "London office", "door_pin": "4711"}, Routes: []string{"fax"},
			Origin:    &linedriver.Origin{From: "dave@contoso.example"},
			Documents: []linedriver.Document{{Name: "body.txt", MediaType: "text/plain", Data: raw}}}, nil
	})
	p := &Pipeline{Connector: "inbox", Mapper: m, Targets: map[string]Target{"fax": {Driver: &driver{name: "fax"}}},
		Spool: openSpool(t), Log: slog.New(slog.NewTextHandler(&log, nil)), MaxInFlight: 1}
	runUntil(t, p, newSource(msg("d1", "maildir:a.eml")), 1)
	want := `summary="fax_number_as_written=\"+1 (201) 555-0142\" fax_number=+12015550142 recipient=\"London office\"" documents=1 from=dave@contoso.example`
	if !strings.Contains(log.String(), want) {
		t.Errorf("the mapped line lacks %s:\n%s", want, log.String())
	}
	if strings.Contains(log.String(), "4711") {
		t.Errorf("the log shows the pin:\n%s", log.String())
	}
}
