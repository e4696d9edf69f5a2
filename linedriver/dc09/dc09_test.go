package dc09_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/mediagw/mediagw/linedriver/alarm"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/dc09"
	"github.com/mediagw/mediagw/linedriver/dc09/dc09rx"
)

const keyHex = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"

func newDriver(t testing.TB, opts map[string]any) *dc09.Driver {
	t.Helper()
	if _, ok := opts["state_dir"]; !ok {
		opts["state_dir"] = t.TempDir()
	}
	if _, ok := opts["ack_timeout"]; !ok {
		opts["ack_timeout"] = "2s"
	}
	b, _ := json.Marshal(opts)
	d, err := dc09.New("alarm", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d.(*dc09.Driver)
}

func job(id string, fields map[string]string) *linedriver.Job {
	return &linedriver.Job{ID: id, Attempt: 1, Record: linedriver.Record{ID: id, Fields: fields}}
}

func burglary(zone int) map[string]string {
	return map[string]string{"alarm_account": "1234", "alarm_event": "burglary", "alarm_zone": fmt.Sprint(zone), "alarm_partition": "1"}
}

func listen(t *testing.T, rx *dc09rx.Receiver, transport string) string {
	t.Helper()
	var addr string
	var err error
	if transport == "udp" {
		addr, err = rx.ListenUDP("127.0.0.1:0")
	} else {
		addr, err = rx.ListenTCP("127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	return addr
}

// A signal reaches the receiver as the payload a centre expects, plain and
// encrypted, over TCP and UDP.
func TestDeliver(t *testing.T) {
	for _, transport := range []string{"tcp", "udp"} {
		for _, enc := range []bool{false, true} {
			for _, proto := range []string{"ADM-CID", "SIA-DCS"} {
				t.Run(fmt.Sprintf("%s/encrypted=%v/%s", transport, enc, proto), func(t *testing.T) {
					rx := &dc09rx.Receiver{}
					opts := map[string]any{"protocol": proto, "transport": transport}
					if enc {
						rx.Key = mustHex(keyHex)
						opts["key"] = keyHex
					}
					addr := listen(t, rx, transport)
					opts["receivers"] = []map[string]string{{"address": addr, "receiver": "12", "line": "3"}}
					d := newDriver(t, opts)
					fields := burglary(3)
					fields["alarm_text"] = "Hall [PIR] 1"
					o := d.Deliver(context.Background(), job("j1", fields), nil)
					if o.Result != linedriver.Delivered {
						t.Fatalf("outcome %+v; receiver rejects %v", o, rx.Rejects())
					}
					got := rx.Signals()
					if len(got) != 1 {
						t.Fatalf("receiver took %d signals", len(got))
					}
					want := "#1234|1130 01 003"
					if proto == "SIA-DCS" {
						want = "#1234|Nri1/BA003"
					}
					s := got[0]
					if s.Data != want || s.Encrypted != enc || s.Seq != 1 || s.Receiver != "12" || s.Line != "3" || s.Account != "1234" {
						t.Errorf("receiver got %+v, want data %q", s, want)
					}
					if len(s.Ext) != 1 || s.Ext[0] != "IHall PIR 1" {
						t.Errorf("extended blocks %q", s.Ext)
					}
				})
			}
		}
	}
}

func mustHex(s string) []byte {
	k, err := dc09.ParseKey(s)
	if err != nil {
		panic(err)
	}
	return k
}

// The receiver NAKs, DUHs, stays silent or hangs up; the driver reports the
// category, the next attempt goes through, and every signal arrives.
func TestRecovery(t *testing.T) {
	tests := []struct {
		name      string
		transport string
		plan      []dc09rx.Behaviour
		category  string
	}{
		{"nak then ack (resend in the attempt)", "tcp", []dc09rx.Behaviour{dc09rx.Nak}, ""},
		{"nak three times", "tcp", []dc09rx.Behaviour{dc09rx.Nak, dc09rx.Nak, dc09rx.Nak}, "nak"},
		{"duh", "tcp", []dc09rx.Behaviour{dc09rx.Duh}, "duh"},
		{"silent", "tcp", []dc09rx.Behaviour{dc09rx.Silent}, "timeout"},
		{"hangup (the kept connection is dialled again)", "tcp", []dc09rx.Behaviour{dc09rx.Hangup}, ""},
		{"hangup twice", "tcp", []dc09rx.Behaviour{dc09rx.Hangup, dc09rx.Hangup}, "unreachable"},
		{"udp silent", "udp", []dc09rx.Behaviour{dc09rx.Silent}, "timeout"},
		{"udp duh", "udp", []dc09rx.Behaviour{dc09rx.Duh}, "duh"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rx := &dc09rx.Receiver{Key: mustHex(keyHex)}
			addr := listen(t, rx, tc.transport)
			d := newDriver(t, map[string]any{"transport": tc.transport, "key": keyHex, "ack_timeout": "300ms",
				"receivers": []map[string]string{{"address": addr}}})
			// One signal before, so a kept TCP connection is in play.
			if o := d.Deliver(context.Background(), job("j0", burglary(1)), nil); o.Result != linedriver.Delivered {
				t.Fatalf("first signal: %+v", o)
			}
			rx.Then(tc.plan...)
			j := job("j1", burglary(2))
			o := d.Deliver(context.Background(), j, nil)
			if tc.category == "" {
				if o.Result != linedriver.Delivered {
					t.Fatalf("outcome %+v", o)
				}
			} else {
				if o.Result != linedriver.Temporary || o.Category != tc.category {
					t.Fatalf("outcome %v %q (%s), want temporary %q", o.Result, o.Category, o.Reason, tc.category)
				}
				j.State, j.Attempt = o.State, 2
				if o := d.Deliver(context.Background(), j, nil); o.Result != linedriver.Delivered {
					t.Fatalf("second attempt: %+v", o)
				}
			}
			got := rx.Signals()
			if len(got) != 2 || got[1].Data != "#1234|1130 01 002" {
				t.Fatalf("receiver took %+v", got)
			}
			if got[1].Seq != 2 {
				t.Errorf("the signal's sequence is %d, want 2 (kept across attempts)", got[1].Seq)
			}
		})
	}
}

// A clock far off is corrected by the receiver's NAK: the message is sent
// again with the receiver's time and acknowledged in the same attempt.
func TestNAKResync(t *testing.T) {
	rx := &dc09rx.Receiver{Now: func() time.Time { return time.Now().Add(-3 * time.Hour) }}
	addr := listen(t, rx, "tcp")
	d := newDriver(t, map[string]any{"receivers": []map[string]string{{"address": addr}}})
	o := d.Deliver(context.Background(), job("j1", burglary(1)), nil)
	if o.Result != linedriver.Delivered {
		t.Fatalf("outcome %+v", o)
	}
	if len(rx.Rejects()) != 1 {
		t.Errorf("receiver rejects %v, want the one timestamp", rx.Rejects())
	}
	o = d.Deliver(context.Background(), job("j2", burglary(2)), nil)
	if o.Result != linedriver.Delivered || len(rx.Rejects()) != 1 {
		t.Errorf("second signal: %+v, rejects %v (the offset should be kept)", o, rx.Rejects())
	}
}

// The primary is down (refused) or silent: the backup takes the signal.
func TestFailover(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	backup := &dc09rx.Receiver{}
	baddr := listen(t, backup, "tcp")
	d := newDriver(t, map[string]any{"receivers": []map[string]string{{"address": deadAddr}, {"address": baddr, "receiver": "2"}}})
	o := d.Deliver(context.Background(), job("j1", burglary(1)), nil)
	if o.Result != linedriver.Delivered || o.Details["backup"] != "true" || o.Details["receiver"] != baddr {
		t.Fatalf("outcome %+v", o)
	}
	if got := backup.Signals(); len(got) != 1 || got[0].Receiver != "2" {
		t.Fatalf("backup took %+v", got)
	}

	// Both down: refused, retried later, the reason names both.
	backup.Close()
	o = d.Deliver(context.Background(), job("j2", burglary(2)), nil)
	if o.Result != linedriver.Temporary || o.Category != "refused" || !strings.Contains(o.Reason, deadAddr) || !strings.Contains(o.Reason, baddr) {
		t.Fatalf("outcome %v %q %q", o.Result, o.Category, o.Reason)
	}
}

// Sequence numbers survive a restart of the driver and wrap after 9999.
func TestSequencePersisted(t *testing.T) {
	rx := &dc09rx.Receiver{}
	addr := listen(t, rx, "tcp")
	dir := t.TempDir()
	opts := func() map[string]any {
		return map[string]any{"state_dir": dir, "receivers": []map[string]string{{"address": addr}}}
	}
	d := newDriver(t, opts())
	d.Deliver(context.Background(), job("j1", burglary(1)), nil)
	d.Close()
	d = newDriver(t, opts())
	d.Deliver(context.Background(), job("j2", burglary(2)), nil)
	got := rx.Signals()
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("sequences %+v", got)
	}
}

// The state handed to save before the message leaves carries the sequence,
// so a gateway killed before the ACK resends with the same number and the
// receiver sees a duplicate it can recognise.
func TestResendAfterCrashKeepsSequence(t *testing.T) {
	rx := &dc09rx.Receiver{}
	addr := listen(t, rx, "tcp")
	d := newDriver(t, map[string]any{"ack_timeout": "300ms", "receivers": []map[string]string{{"address": addr}}})
	var saved json.RawMessage
	rx.Then(dc09rx.Ack)
	j := job("j1", burglary(1))
	d.DeliverSaving(context.Background(), j, nil, func(s json.RawMessage) error { saved = s; return nil })
	// As after a crash: the job comes back with what was saved.
	j2 := job("j1", burglary(1))
	j2.State, j2.Attempt = saved, 2
	if o := d.Deliver(context.Background(), j2, nil); o.Result != linedriver.Delivered {
		t.Fatal(o)
	}
	got := rx.Signals()
	if len(got) != 2 || got[0].Seq != got[1].Seq || !got[1].Duplicate {
		t.Fatalf("receiver saw %+v, want the same sequence twice, the second a duplicate", got)
	}
}

func TestCheck(t *testing.T) {
	d := newDriver(t, map[string]any{"protocol": "SIA-DCS", "receivers": []map[string]string{{"address": "127.0.0.1:1"}}})
	for _, tc := range []struct {
		fields map[string]string
		want   string
	}{
		{map[string]string{"alarm_account": "1234", "alarm_event": "burglary"}, ""},
		{map[string]string{"alarm_account": "1234", "alarm_event": "BA"}, ""},
		{map[string]string{"alarm_account": "1234", "alarm_event": "zombie"}, `"zombie"`},
		{map[string]string{"alarm_account": "1234", "alarm_event": "999"}, "999"},
		{map[string]string{"alarm_account": "12", "alarm_event": "fire"}, "alarm_account"},
		{map[string]string{"alarm_account": "1234", "alarm_event": "fire", "alarm_zone": "1000"}, "alarm_zone"},
	} {
		err := d.Check(&linedriver.Record{Fields: tc.fields})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Check(%v) = %v, want %q", tc.fields, err, tc.want)
		}
	}
	dd := newDriver(t, map[string]any{"default_event": "burglary", "receivers": []map[string]string{{"address": "127.0.0.1:1"}}})
	if err := dd.Check(&linedriver.Record{Fields: map[string]string{"alarm_account": "1234", "alarm_event": "zombie"}}); err != nil {
		t.Errorf("with default_event: %v", err)
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		opts string
		want string
	}{
		{`{}`, "receivers"},
		{`{"receivers":[{"address":"x"}]}`, "host:port"},
		{`{"receivers":[{"address":"a:1"}],"key":"abcd"}`, "32, 48 or 64"},
		{`{"receivers":[{"address":"a:1"}],"protocol":"XX"}`, "protocol"},
		{`{"receivers":[{"address":"a:1"}],"supervision":"60s"}`, "account"},
		{`{"receivers":[{"address":"a:1"}],"default_event":"zombie"}`, "default_event"},
		{`{"receivers":[{"address":"a:1"}],"bogus":1}`, "bogus"},
		{`{"receivers":[{"address":"a:1"}],"key":"env:DC09_TEST_NO_SUCH_VAR"}`, "DC09_TEST_NO_SUCH_VAR"},
	} {
		_, err := dc09.New("x", []byte(tc.opts), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%s) = %v, want an error naming %q", tc.opts, err, tc.want)
		}
	}
	t.Setenv("DC09_TEST_KEY", keyHex)
	if _, err := dc09.New("x", []byte(`{"receivers":[{"address":"a:1"}],"key":"env:DC09_TEST_KEY"}`), nil); err != nil {
		t.Errorf("key from env: %v", err)
	}
}

// A quiet link gets a NULL message once per supervision interval; traffic
// on the primary postpones it.
func TestSupervision(t *testing.T) {
	rx := &dc09rx.Receiver{Key: mustHex(keyHex)}
	addr := listen(t, rx, "tcp")
	d := newDriver(t, map[string]any{"key": keyHex, "supervision": "60s", "account": "9999",
		"receivers": []map[string]string{{"address": addr}}})
	now := time.Now()
	d.SetClock(func() time.Time { return now })
	d.Supervise() // never any traffic: a NULL now
	if got := rx.Signals(); len(got) != 1 || got[0].ID != "NULL" || got[0].Account != "9999" || !got[0].Encrypted {
		t.Fatalf("receiver took %+v, want one encrypted NULL", got)
	}
	now = now.Add(30 * time.Second)
	d.Deliver(context.Background(), job("j1", burglary(1)), nil)
	now = now.Add(50 * time.Second)
	d.Supervise() // 50 s since the signal: quiet enough? no
	if n := len(rx.Signals()); n != 2 {
		t.Fatalf("%d messages, want the NULL and the signal only", n)
	}
	now = now.Add(11 * time.Second)
	d.Supervise()
	got := rx.Signals()
	if len(got) != 3 || got[2].ID != "NULL" || got[2].Seq != 3 {
		t.Fatalf("receiver took %+v, want a second NULL with sequence 3", got)
	}
}

// The wire examples of docs/alarm.md are what the encoder makes.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/alarm.md")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 12, 1, 14, 2, 11, 0, time.UTC)
	s := alarm.Signal{Account: "1234", Qualifier: alarm.New, CID: 130, SIA: "BA", Partition: 1, Zone: 3}
	msgs := []dc09.Message{
		{ID: "ADM-CID", Seq: 17, Receiver: "1", Line: "1", Account: "1234", Data: dc09.Payload("ADM-CID", s), Ext: []string{"IHall PIR"}, Time: ts},
		{ID: "SIA-DCS", Seq: 18, Receiver: "1", Line: "1", Account: "1234", Data: dc09.Payload("SIA-DCS", s), Ext: []string{"IHall PIR"}, Time: ts},
		{ID: "NULL", Seq: 19, Receiver: "1", Line: "1", Account: "9999", Time: ts},
	}
	for _, m := range msgs {
		b, err := m.Encode(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		line := "<LF>" + strings.TrimSuffix(strings.TrimPrefix(string(b), "\n"), "\r") + "<CR>"
		if !strings.Contains(string(doc), line) {
			t.Errorf("docs/alarm.md lacks %s", line)
		}
	}
}

// BenchmarkDeliver: signals per second over one kept TCP connection, each
// waiting for the receiver's ACK (the sequence number is fsync'd to the
// state folder before each message, as in production).
func BenchmarkDeliver(b *testing.B) {
	for _, enc := range []bool{false, true} {
		b.Run(fmt.Sprintf("encrypted=%v", enc), func(b *testing.B) {
			rx := &dc09rx.Receiver{}
			opts := map[string]any{}
			if enc {
				rx.Key = mustHex(keyHex)
				opts["key"] = keyHex
			}
			addr, err := rx.ListenTCP("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer rx.Close()
			opts["receivers"] = []map[string]string{{"address": addr}}
			d := newDriver(b, opts)
			j := job("j", burglary(1))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				j.State = nil
				if o := d.Deliver(context.Background(), j, nil); o.Result != linedriver.Delivered {
					b.Fatal(o)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signals/s")
		})
	}
}
