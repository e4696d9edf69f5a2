package faxmodem

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/modemsim"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// inbound keeps what a receiving driver hands over.
type inbound struct {
	mu    sync.Mutex
	calls []*linedriver.Call
	pages map[string][]*linedriver.InboundPage
	ends  map[string]error
	// failPages makes Page fail that many times.
	failPages int
	// slow delays each Page.
	slow time.Duration
}

func newInbound() *inbound {
	return &inbound{pages: map[string][]*linedriver.InboundPage{}, ends: map[string]error{}}
}

func (in *inbound) Begin(_ context.Context, c *linedriver.Call) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.calls = append(in.calls, c)
	return nil
}

func (in *inbound) Page(ctx context.Context, c *linedriver.Call, n int, p *linedriver.InboundPage) error {
	if in.slow > 0 {
		select {
		case <-time.After(in.slow):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.failPages > 0 {
		in.failPages--
		return errDiskFull
	}
	in.pages[c.ID] = append(in.pages[c.ID], p)
	return nil
}

func (in *inbound) End(_ context.Context, c *linedriver.Call, err error) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.ends[c.ID] = err
	in.calls[len(in.calls)-1] = c
	return nil
}

type diskFull struct{}

func (diskFull) Error() string { return "disk full" }

var errDiskFull error = diskFull{}

func TestParseCallerLine(t *testing.T) {
	for _, c := range []struct {
		line           string
		ok             bool
		number, called string
	}{
		{"NMBR = 2015550100", true, "2015550100", ""},
		{"NMBR=O", true, "", ""}, // out of area
		{"NDID = 100", true, "", "100"},
		{"DID=5550002", true, "", "5550002"},
		{"CID: 1001", true, "1001", ""},
		{"DNID: 1002", true, "", "1002"},
		{"NAME = ACME", false, "", ""},
		{"DATE = 1201", false, "", ""},
		{"CONNECT", false, "", ""},
	} {
		var ci CallerInfo
		if ok := parseCallerLine(c.line, &ci); ok != c.ok || ci.Number != c.number || ci.Called != c.called {
			t.Errorf("%q: %v %+v, want %v %q %q", c.line, ok, ci, c.ok, c.number, c.called)
		}
	}
}

// TestReceiverOnlyWhenAnswering: the host takes every linedriver.Receiver
// for a line that answers, so a send-only configuration is none.
func TestReceiverOnlyWhenAnswering(t *testing.T) {
	for _, c := range []struct {
		devs string
		recv bool
	}{
		{`[{"device": "a"}]`, false},
		{`[{"device": "a", "mode": "send"}, {"device": "b"}]`, false},
		{`[{"device": "a"}, {"device": "b", "mode": "receive"}]`, true},
		{`[{"device": "a", "mode": "both"}]`, true},
	} {
		d, err := New("fax", json.RawMessage(`{"devices": `+c.devs+`, "dial": {"region": "US"}}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := d.(linedriver.Receiver); ok != c.recv {
			t.Errorf("%s: a Receiver %v, want %v", c.devs, ok, c.recv)
		}
		if _, ok := d.(linedriver.DeviceReporter); !ok {
			t.Errorf("%s: no DeviceReporter", c.devs)
		}
	}
}

func TestModeOptions(t *testing.T) {
	for _, c := range []struct {
		dev   string
		ok    bool
		send  bool
		recv  bool
		rings int
	}{
		{`{"device": "a"}`, true, true, false, 2},
		{`{"device": "a", "mode": "send"}`, true, true, false, 2},
		{`{"device": "a", "mode": "receive", "rings": 4}`, true, false, true, 4},
		{`{"device": "a", "mode": "both", "rings": 1}`, true, true, true, 1},
		{`{"device": "a", "mode": "answer"}`, false, false, false, 0},
		{`{"device": "a", "rings": -1}`, false, false, false, 0},
	} {
		o, err := ParseOptions(json.RawMessage(`{"devices": [` + c.dev + `], "dial": {"region": "US"}}`))
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.dev, err)
			continue
		}
		if err != nil {
			continue
		}
		d := o.Devices[0]
		if d.sends() != c.send || d.receives() != c.recv || d.rings() != c.rings {
			t.Errorf("%s: sends %v receives %v rings %d", c.dev, d.sends(), d.receives(), d.rings())
		}
	}
}

// TestBothModeTakenForSending: a "both" modem waits for calls while idle;
// a job takes it (the listener stops, the port is closed, then the job
// dials), and afterwards it waits for calls again. A receive-only modem is
// never given to a job.
func TestBothModeTakenForSending(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := &lab{ctx: ctx, scripts: map[string][]modemsim.Remote{"ttyS0": {{}}, "ttyS1": {{}}}, opens: map[string]int{}}
	o, err := ParseOptions(json.RawMessage(`{"devices": [{"device": "ttyS0", "flow": "none", "mode": "both"}, {"device": "ttyS1", "mode": "receive"}], "dial": {"region": "US"}}`))
	if err != nil {
		t.Fatal(err)
	}
	o.Open = l.open
	o.Timers = &t30.Config{T1: 2 * time.Second, T4: 300 * time.Millisecond, DialWait: time.Second, ModemWait: 500 * time.Millisecond}
	d := NewWith("fax", o, nil)
	in := newInbound()
	rdone := make(chan error, 1)
	go func() { rdone <- d.Receiver().Receive(ctx, in) }()
	state := func(i int) func() bool {
		return func() bool { return d.Devices()[i].State == "waiting for calls" }
	}
	testenv.Eventually(t, 5*time.Second, "both modems waiting for calls", func() bool { return state(0)() && state(1)() })
	out := d.Deliver(ctx, textJob(10), nil)
	if out.Result != linedriver.Delivered {
		t.Fatalf("outcome %+v", out)
	}
	if n := len(l.pages()); n != 1 {
		t.Fatalf("%d pages at the far end", n)
	}
	opens := func(dev string) int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.opens[dev]
	}
	if n := opens("ttyS1"); n != 1 {
		t.Errorf("the receive-only modem was opened %d times, want once (for listening)", n)
	}
	testenv.Eventually(t, 5*time.Second, "the both modem waiting for calls again", state(0))
	if n := opens("ttyS0"); n < 3 {
		t.Errorf("ttyS0 opened %d times, want listen, send, listen", n)
	}
	cancel()
	select {
	case err := <-rdone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Receive did not return after its context ended")
	}
	if len(in.calls) != 0 {
		t.Errorf("calls answered: %d", len(in.calls))
	}
}

// TestClass2Receive: a Class 2 and a Class 2.0 modem (the emulator) ring
// and a fax machine sends two pages; the driver answers after two rings and
// hands the call to class2.Receive, which keeps each page before the modem
// confirms it (+FPS/+FPTS=1); a page that cannot be kept is answered 2
// (RTN) and sent again.
func TestClass2Receive(t *testing.T) {
	page := func(h, seed int) [][]byte {
		rows := make([][]byte, h)
		for y := range rows {
			rows[y] = make([]byte, render.Width/8)
			for x := (y + seed) % 13; x < len(rows[y]); x += 13 {
				rows[y][x] = 0x3C
			}
		}
		return rows
	}
	want := [][][]byte{page(60, 1), page(45, 2)}
	for _, c := range []struct {
		class     string
		failPages int
		verdicts  string
	}{
		{"2", 0, "[1 1]"},
		{"2.0", 0, "[1 1]"},
		{"2.0", 1, "[2 1 1]"},
	} {
		t.Run(fmt.Sprintf("class %s, %d refused", c.class, c.failPages), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			caller := &modemsim.Caller{TSI: "+1 201 555 0123", Pages: len(want), Resend: 1,
				Caps: &t30.Caps{CanReceive: true, V17: true, V29: true, V27ter: true, Fine: true, MR: true},
				Encode: func(i int, p t30.Params) ([]byte, error) {
					o := t4.Options{Encoding: t4.MH, EndOfPage: true, LSBFirst: true}
					if p.MR {
						o.Encoding, o.K = t4.MR, p.K()
					}
					var b bytes.Buffer
					_, err := t4.EncodePage(&b, render.Width, func(y int) []byte { return want[i][y] }, len(want[i]), o)
					return b.Bytes(), err
				}}
			l := &lab{ctx: ctx, scripts: map[string][]modemsim.Remote{"ttyS0": {{Caller: caller, Classes: "0," + c.class}}}, opens: map[string]int{}}
			o, err := ParseOptions(json.RawMessage(`{"devices": [{"device": "ttyS0", "class": "` + c.class + `", "mode": "receive"}], "local_id": "+1 555 0002", "ecm": "off", "dial": {"region": "US"}}`))
			if err != nil {
				t.Fatal(err)
			}
			o.Open = l.open
			d := NewWith("fax", o, nil)
			in := newInbound()
			in.failPages = c.failPages
			done := make(chan error, 1)
			go func() { done <- d.ReceiveOne(ctx, o.Devices[0], in, nil) }()
			sim := func() *modemsim.Modem {
				l.mu.Lock()
				defer l.mu.Unlock()
				if len(l.sims) == 0 {
					return nil
				}
				return l.sims[0]
			}
			testenv.Eventually(t, 5*time.Second, "the driver waiting for rings", func() bool {
				s := sim()
				return s != nil && strings.Contains(strings.Join(s.Commands(), " "), "+VCID=1")
			})
			sim().Ring()
			sim().Ring()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("receive: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no call received")
			}
			in.mu.Lock()
			defer in.mu.Unlock()
			if len(in.calls) != 1 {
				t.Fatalf("%d calls", len(in.calls))
			}
			call := in.calls[0]
			if call.RemoteID != "+1 201 555 0123" || in.ends[call.ID] != nil || !strings.Contains(call.Log, "[answer]") && !strings.Contains(call.Log, "ATA") {
				t.Errorf("call %+v, end %v", call, in.ends[call.ID])
			}
			got := in.pages[call.ID]
			if len(got) != len(want) {
				t.Fatalf("%d pages kept, want %d", len(got), len(want))
			}
			for p, pg := range got {
				if pg.Height != len(want[p]) {
					t.Fatalf("page %d: %d rows, want %d", p+1, pg.Height, len(want[p]))
				}
				for y := range want[p] {
					if !bytes.Equal(pg.Rows[y], want[p][y]) {
						t.Fatalf("page %d row %d differs", p+1, y)
					}
				}
			}
			if v := fmt.Sprint(sim().Calls()[0].Verdicts); v != c.verdicts {
				t.Errorf("the modem got verdicts %s, want %s", v, c.verdicts)
			}
		})
	}
}
