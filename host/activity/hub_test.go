package activity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"
)

func TestHandlerTurnsActivityLinesIntoEvents(t *testing.T) {
	hub := NewHub()
	var logged bytes.Buffer
	// The log shows warnings only: activity still reaches the hub.
	log := slog.New(hub.Handler(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn})))
	events, cancel := hub.Subscribe(16)
	defer cancel()

	conn := log.With("connector", "inbox")
	drv := log.With("driver", "fax")
	job := slog.String("job", "r1.fax")
	for _, tc := range []struct {
		log   func()
		want  Event
		inLog bool
	}{
		{func() { Log(conn, Received, slog.String("source_id", "s1"), slog.Int("bytes", 120)) },
			Event{Kind: Received, Connector: "inbox", SourceID: "s1", Message: "mail received (120 bytes)"}, false},
		{func() {
			Log(conn, Mapped, slog.String("source_id", "s1"), slog.Int("fields", 2), slog.String("field_names", "fax_number,sender"), slog.Int("documents", 1))
		}, Event{Kind: Mapped, Connector: "inbox", SourceID: "s1", Message: "mapped: 2 fields (fax_number, sender); 1 document"}, false},
		{func() {
			Log(conn, Mapped, slog.String("source_id", "s2"), slog.String("summary", Summary(map[string]string{"fax_number": "+12015550142", "recipient": "London office"})),
				slog.String("from", "dave@contoso.example"), slog.Int("documents", 2))
		}, Event{Kind: Mapped, Connector: "inbox", SourceID: "s2", Message: `mapped: fax_number=+12015550142 recipient="London office"; from dave@contoso.example; 2 documents`}, false},
		{func() {
			Log(conn, ReportSent, job, slog.String("report", "delivered"), slog.String("to", "dave@contoso.example"), slog.String("result", "ok"))
		}, Event{Kind: ReportSent, Connector: "inbox", JobID: "r1.fax", Message: "delivered report sent to dave@contoso.example"}, false},
		{func() {
			Log(conn, ReportSent, job, slog.String("report", "failed"), slog.String("to", "dave@contoso.example"), slog.String("result", "permission_denied"))
		}, Event{Kind: ReportSent, Connector: "inbox", JobID: "r1.fax", Message: "failed report to dave@contoso.example not sent: permission_denied"}, false},
		{func() { Log(conn, Accepted, slog.String("source_id", "s1"), slog.String("record", "r1")) },
			Event{Kind: KindSpooled, Connector: "inbox", SourceID: "s1", Message: "spooled as record r1"}, false},
		{func() {
			Log(conn, Routed, slog.String("record", "r1"), slog.Any("drivers", []string{"fax", "archive"}))
		},
			Event{Kind: Routed, Connector: "inbox", Message: "routed to fax, archive"}, false},
		{func() { Log(conn, Rejected, slog.String("reason", "no fax_number"), slog.String("class", "map")) },
			Event{Kind: Rejected, Connector: "inbox", Message: "no fax_number"}, true},
		{func() { Log(drv, Progress, job, slog.String("step", "dial"), slog.String("detail", "1002")) },
			Event{Kind: KindDialing, Driver: "fax", JobID: "r1.fax", Message: "dialling 1002"}, false},
		{func() { Log(drv, Progress, job, slog.String("step", "tcf"), slog.String("detail", "V.17 14400")) },
			Event{Kind: KindTraining, Driver: "fax", JobID: "r1.fax", Message: "training V.17 14400"}, false},
		{func() {
			Log(drv, Progress, job, slog.String("step", "page"), slog.String("detail", "2: 3000 bytes"), slog.Int("page", 2), slog.Int("pages", 3))
		}, Event{Kind: KindPage, Driver: "fax", JobID: "r1.fax", Message: "page 2 of 3"}, false},
		{func() { Log(drv, Progress, job, slog.String("step", "rx"), slog.String("detail", "CFR")) },
			Event{Kind: Progress, Driver: "fax", JobID: "r1.fax", Message: "rx CFR"}, false},
		{func() {
			Log(drv, Failed, job, slog.String("reason", "no answer"), slog.String("category", "no_answer"))
		},
			Event{Kind: Failed, Driver: "fax", JobID: "r1.fax", Message: "no answer"}, true},
	} {
		logged.Reset()
		tc.log()
		select {
		case e := <-events:
			if e.Time.IsZero() || e.Kind != tc.want.Kind || e.Connector != tc.want.Connector || e.Driver != tc.want.Driver ||
				e.JobID != tc.want.JobID || e.SourceID != tc.want.SourceID || e.Message != tc.want.Message {
				t.Errorf("event = %+v\nwant %+v", e, tc.want)
			}
		default:
			t.Errorf("no event for %+v", tc.want)
		}
		if (logged.Len() > 0) != tc.inLog {
			t.Errorf("%s: logged %q, want a line: %v", tc.want.Kind, logged.String(), tc.inLog)
		}
	}
	// A line without event= is no activity.
	log.Warn("something else", "connector", "inbox")
	select {
	case e := <-events:
		t.Errorf("plain log line became an event: %+v", e)
	default:
	}
}

// A subscriber that does not read misses events, counted; the publisher
// never waits for it, and the others get every event.
func TestSlowSubscriberDrops(t *testing.T) {
	hub := NewHub()
	_, cancelSlow := hub.Subscribe(2)
	defer cancelSlow()
	fast, cancelFast := hub.Subscribe(100)
	var observed int
	hub.Observe(func(Event) { observed++ })
	for i := range 10 {
		hub.Publish(Event{Kind: Received, Message: fmt.Sprint(i)})
	}
	if hub.Dropped() != 8 || observed != 10 || len(fast) != 10 {
		t.Errorf("dropped %d (want 8), observed %d (want 10), fast subscriber got %d (want 10)", hub.Dropped(), observed, len(fast))
	}
	if hub.Subscribers() != 2 {
		t.Errorf("%d subscribers, want 2", hub.Subscribers())
	}
	cancelFast()
	cancelFast() // twice is fine
	n := 0
	for range fast {
		n++
	}
	if n != 10 || hub.Subscribers() != 1 {
		t.Errorf("after cancel: drained %d, %d subscribers", n, hub.Subscribers())
	}
}

// BenchmarkActivityFeed is the console's cost: one activity line through
// the log and the hub, with 0 or 50 live subscribers that each encode every
// event as a server-sent event (as the console's stream does). Every
// subscriber has handled an event before the next is published. cpu-ns/op
// is the process's CPU time per event (all goroutines); cpu-%@100/s is the
// share of one core the gateway spends at 100 events a second.
func BenchmarkActivityFeed(b *testing.B) {
	for _, subs := range []int{0, 50} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			hub := NewHub()
			log := slog.New(hub.Handler(slog.NewTextHandler(io.Discard, nil))).With("driver", "fax")
			done := make(chan struct{}, subs)
			for range subs {
				ch, cancel := hub.Subscribe(64)
				defer cancel()
				go func() {
					var buf bytes.Buffer
					for e := range ch {
						buf.Reset()
						buf.WriteString("event: activity\ndata: ")
						_ = json.NewEncoder(&buf).Encode(e)
						buf.WriteString("\n")
						_, _ = io.Discard.Write(buf.Bytes())
						done <- struct{}{}
					}
				}()
			}
			job := slog.String("job", "20260101T000000.000Z-0123456789ab.fax")
			b.ReportAllocs()
			before := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				Log(log, Progress, job, slog.String("step", "page"), slog.String("detail", "2: 30000 bytes at V.17"),
					slog.Int("page", i%3+1), slog.Int("pages", 3))
				for range subs {
					<-done
				}
			}
			b.StopTimer()
			cpu := cpuTime() - before
			perOp := float64(cpu.Nanoseconds()) / float64(b.N)
			b.ReportMetric(perOp, "cpu-ns/op")
			b.ReportMetric(perOp*100/1e9*100, "cpu-%@100/s")
			if hub.Dropped() != 0 {
				b.Fatalf("%d events dropped", hub.Dropped())
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
