package surgard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/alarm"
	"github.com/mediagw/mediagw/linedriver/surgard"
	"github.com/mediagw/mediagw/linedriver/surgard/surgardrx"
)

func newDriver(t testing.TB, opts map[string]any) *surgard.Driver {
	t.Helper()
	if _, ok := opts["ack_timeout"]; !ok {
		opts["ack_timeout"] = "300ms"
	}
	b, _ := json.Marshal(opts)
	d, err := surgard.New("automation", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d.(*surgard.Driver)
}

func job(fields map[string]string) *linedriver.Job {
	return &linedriver.Job{ID: "j", Attempt: 1, Record: linedriver.Record{Fields: fields}}
}

func TestLine(t *testing.T) {
	tests := []struct {
		format string
		rr, ll int
		sig    alarm.Signal
		want   string
	}{
		{"contact_id", 1, 1, alarm.Signal{Account: "1234", Qualifier: alarm.New, CID: 130, Partition: 1, Zone: 3}, "501001 181234E13001003"},
		{"contact_id", 12, 345, alarm.Signal{Account: "00AB", Qualifier: alarm.Restore, CID: 110, Partition: 2, Zone: 12}, "512345 1800ABR11002012"},
		{"contact_id", 1, 1, alarm.Signal{Account: "0001234", Qualifier: alarm.Status, CID: 301}, "501001 181234P30100000"},
		{"sia", 1, 1, alarm.Signal{Account: "1234", CID: 130, SIA: "BA", Partition: 1, Zone: 3}, "S01001[#1234|Nri1/BA003]"},
		{"sia", 2, 7, alarm.Signal{Account: "123456", CID: 401, SIA: "CL", Zone: 12, IsUser: true}, "S02007[#123456|Nid12/CL012]"},
	}
	for _, tc := range tests {
		got, err := surgard.Line(tc.format, tc.rr, tc.ll, tc.sig)
		if err != nil || got != tc.want {
			t.Errorf("Line(%s, %+v) = %q, %v; want %q", tc.format, tc.sig, got, err, tc.want)
		}
		if _, err := surgardrx.Parse(got); err != nil {
			t.Errorf("the test receiver does not take %q: %v", got, err)
		}
	}
	if _, err := surgard.Line("contact_id", 1, 1, alarm.Signal{Account: "123456", CID: 130}); err == nil {
		t.Error("a six-digit account made a Contact ID line")
	}
	if hb := surgard.HeartbeatLine(1); hb != "1011           @    " {
		t.Errorf("heartbeat %q", hb)
	}
}

func burglary(zone int) map[string]string {
	return map[string]string{"alarm_account": "1234", "alarm_event": "burglary", "alarm_zone": fmt.Sprint(zone), "alarm_partition": "1"}
}

// Over TCP and over a serial line (a pty pair), each line is acknowledged;
// NAK and silence are resent within the attempt, and when the software
// keeps refusing the attempt ends temporary and the next one goes through.
func TestDeliver(t *testing.T) {
	for _, transport := range []string{"tcp", "serial"} {
		t.Run(transport, func(t *testing.T) {
			rx := &surgardrx.Receiver{}
			opts := map[string]any{"transport": transport, "receiver": 2, "line": 5, "resends": 1}
			if transport == "tcp" {
				addr, err := rx.ListenTCP("127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				opts["address"] = addr
			} else {
				tty, err := rx.PTY()
				if err != nil {
					t.Fatal(err)
				}
				opts["device"] = tty
			}
			t.Cleanup(func() { rx.Close() })
			d := newDriver(t, opts)
			steps := []struct {
				plan []surgardrx.Behaviour
				want linedriver.Result
				cat  string
			}{
				{nil, linedriver.Delivered, ""},
				{[]surgardrx.Behaviour{surgardrx.Nak}, linedriver.Delivered, ""},
				{[]surgardrx.Behaviour{surgardrx.Silent}, linedriver.Delivered, ""},
				{[]surgardrx.Behaviour{surgardrx.Nak, surgardrx.Nak}, linedriver.Temporary, "nak"},
				{[]surgardrx.Behaviour{surgardrx.Silent, surgardrx.Silent}, linedriver.Temporary, "timeout"},
			}
			zone := 0
			for i, st := range steps {
				rx.Then(st.plan...)
				zone++
				o := d.Deliver(context.Background(), job(burglary(zone)), nil)
				if o.Result != st.want || o.Category != st.cat {
					t.Fatalf("step %d: %v %q (%s)", i, o.Result, o.Category, o.Reason)
				}
				if o.Result == linedriver.Temporary {
					if o := d.Deliver(context.Background(), job(burglary(zone)), nil); o.Result != linedriver.Delivered {
						t.Fatalf("step %d, next attempt: %+v", i, o)
					}
				}
			}
			got := rx.Lines()
			if len(got) != len(steps) {
				t.Fatalf("took %d lines, want %d: %+v", len(got), len(steps), got)
			}
			for i, l := range got {
				if l.Kind != "cid" || l.Receiver != "02" || l.Line != "005" || l.Account != "1234" || l.Event != "130" || l.Zone != fmt.Sprintf("%03d", i+1) {
					t.Errorf("line %d: %+v", i, l)
				}
			}
		})
	}
}

func TestRefused(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	d := newDriver(t, map[string]any{"address": addr})
	o := d.Deliver(context.Background(), job(burglary(1)), nil)
	if o.Result != linedriver.Temporary || o.Category != "refused" {
		t.Fatalf("%+v", o)
	}
	if err := d.Check(&linedriver.Record{Fields: map[string]string{"alarm_account": "1234", "alarm_event": "zombie"}}); err == nil || !strings.Contains(err.Error(), `"zombie"`) {
		t.Errorf("Check = %v", err)
	}
}

// The heartbeat goes out when no line was acknowledged for the interval.
func TestHeartbeat(t *testing.T) {
	rx := &surgardrx.Receiver{}
	addr, err := rx.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	d := newDriver(t, map[string]any{"address": addr, "heartbeat": "30s"})
	now := time.Now()
	d.SetClock(func() time.Time { return now })
	d.Beat()
	d.Deliver(context.Background(), job(burglary(1)), nil)
	now = now.Add(20 * time.Second)
	d.Beat() // too soon after the alarm
	now = now.Add(11 * time.Second)
	d.Beat()
	var kinds []string
	for _, l := range rx.Lines() {
		kinds = append(kinds, l.Kind)
	}
	if strings.Join(kinds, ",") != "heartbeat,cid,heartbeat" {
		t.Fatalf("lines %v", kinds)
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct{ opts, want string }{
		{`{}`, "address"},
		{`{"transport":"serial"}`, "device"},
		{`{"address":"a:1","format":"x"}`, "format"},
		{`{"address":"a:1","receiver":100}`, "receiver"},
		{`{"address":"a:1","default_event":"zombie"}`, "default_event"},
		{`{"address":"a:1","nope":1}`, "nope"},
	} {
		if _, err := surgard.New("x", []byte(tc.opts), nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%s) = %v, want %q", tc.opts, err, tc.want)
		}
	}
}
