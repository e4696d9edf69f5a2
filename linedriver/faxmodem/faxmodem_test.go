package faxmodem

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/modemsim"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// lab runs a driver against emulated modems: each open of a device starts
// a new emulator with the next scripted remote for that device.
type lab struct {
	mu      sync.Mutex
	ctx     context.Context
	scripts map[string][]modemsim.Remote
	sims    []*modemsim.Modem
	opens   map[string]int
}

func decodeRows(data []byte, p t30.Params) ([][]byte, error) {
	o := t4.Options{Encoding: t4.MH, LSBFirst: true}
	switch {
	case p.MMR:
		o.Encoding = t4.MMR
	case p.MR:
		o.Encoding, o.K = t4.MR, p.K()
	}
	return t4.DecodePage(bytes.NewReader(data), render.Width, o, 5000)
}

func (l *lab) open(d DeviceConfig) (*at.Channel, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.opens[d.Device]
	l.opens[d.Device]++
	s := l.scripts[d.Device]
	if len(s) == 0 {
		return nil, fmt.Errorf("no such device %s", d.Device)
	}
	r := s[min(n, len(s)-1)]
	r.Decode = decodeRows
	port, sim := modemsim.Pipe(l.ctx, r)
	l.sims = append(l.sims, sim)
	return at.New(port, at.Options{}), nil
}

func (l *lab) pages() []modemsim.Page {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []modemsim.Page
	for _, s := range l.sims {
		out = append(out, s.Pages()...)
	}
	return out
}

func newLab(t *testing.T, scripts map[string][]modemsim.Remote, extra string) (*Driver, *lab) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := &lab{ctx: ctx, scripts: scripts, opens: map[string]int{}}
	var devs []string
	for d := range scripts {
		devs = append(devs, fmt.Sprintf(`{"device": %q, "flow": "none"}`, d)) // no pacing to the line rate
	}
	if !strings.Contains(extra, `"dial"`) {
		extra += `, "dial": {"region": "US"}`
	}
	raw := fmt.Sprintf(`{"devices": [%s], "local_id": "+1 555 0001", "header": "ACME Alarm Centre" %s}`, strings.Join(devs, ","), extra)
	o, err := ParseOptions(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	o.Open = l.open
	o.Timers = &t30.Config{T1: 2 * time.Second, T4: 300 * time.Millisecond, DialWait: time.Second, ModemWait: 500 * time.Millisecond}
	return NewWith("fax", o, nil), l
}

func textJob(lines int) *linedriver.Job {
	var b strings.Builder
	for i := range lines {
		fmt.Fprintf(&b, "Line %d of the alarm report: zone %d open, panel 0x%04X.\n", i+1, i%8, i*37)
	}
	return &linedriver.Job{
		ID: "job-1", Attempt: 1, Accepted: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		Record: linedriver.Record{ID: "r1", Fields: map[string]string{"fax_number": "+12015550100"},
			Documents: []linedriver.Document{{Name: "body.txt", MediaType: "text/plain; charset=utf-8", Data: []byte(b.String())}}},
	}
}

// expected renders the job as the driver does, for pixel comparisons.
func expected(t *testing.T, d *Driver, job *linedriver.Job) []*render.Page {
	t.Helper()
	pages, err := d.render(context.Background(), job, "+1 201-555-0100")
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

func samePixels(t *testing.T, got modemsim.Page, want *render.Page) {
	t.Helper()
	if got.Err != nil {
		t.Fatalf("remote could not decode page: %v", got.Err)
	}
	if !got.Params.Fine {
		t.Fatalf("page sent at standard resolution")
	}
	if len(got.Rows) != want.Height {
		t.Fatalf("remote decoded %d rows, want %d", len(got.Rows), want.Height)
	}
	for y := range got.Rows {
		if !bytes.Equal(got.Rows[y], want.Row(y)) {
			t.Fatalf("row %d differs", y)
		}
	}
}

func TestDeliverSuccessPixelExact(t *testing.T) {
	d, l := newLab(t, map[string][]modemsim.Remote{"ttyS0": {{}}}, "")
	job := textJob(120) // two pages
	want := expected(t, d, job)
	var steps []string
	out := d.Deliver(context.Background(), job, func(p linedriver.Progress) { steps = append(steps, p.Step) })
	if out.Result != linedriver.Delivered {
		t.Fatalf("outcome %+v", out)
	}
	if out.Details["pages"] != fmt.Sprint(len(want)) || out.Details["encoding"] != "MR" || out.Details["resolution"] != "fine" || out.Details["remote_id"] != "+1 555 0100" {
		t.Errorf("details %v", out.Details)
	}
	got := l.pages()
	if len(want) < 2 || len(got) != len(want) {
		t.Fatalf("remote got %d pages, rendered %d", len(got), len(want))
	}
	for i := range got {
		samePixels(t, got[i], want[i])
	}
	if !strings.Contains(strings.Join(steps, " "), "dcs") {
		t.Errorf("no T.30 progress reported: %v", steps)
	}
}

// A far end offering ECM and MMR gets MMR over ECM by default; the options
// turn ECM off or force a coding. Every page arrives pixel-exact.
func TestDeliverECM(t *testing.T) {
	ecm := &t30.Caps{CanReceive: true, V17: true, V29: true, V27ter: true, Fine: true, MR: true, ECM: true, MMR: true}
	tests := []struct {
		name     string
		extra    string
		remote   modemsim.Remote
		encoding string
	}{
		{"auto", "", modemsim.Remote{Caps: ecm}, "MMR with ECM"},
		{"frames in error", `, "ecm_frame_size": 64`, modemsim.Remote{Caps: ecm, CorruptFrames: map[int]int{1: 1, 7: 2}}, "MMR with ECM"},
		{"ecm off", `, "ecm": "off"`, modemsim.Remote{Caps: ecm}, "MR"},
		{"mh over ECM", `, "encoding": "mh"`, modemsim.Remote{Caps: ecm}, "MH with ECM"},
		{"far end without ECM", `, "ecm": "on"`, modemsim.Remote{}, "MR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, l := newLab(t, map[string][]modemsim.Remote{"ttyS0": {tt.remote}}, tt.extra)
			job := textJob(120)
			want := expected(t, d, job)
			out := d.Deliver(context.Background(), job, nil)
			if out.Result != linedriver.Delivered {
				t.Fatalf("outcome %+v", out)
			}
			if out.Details["encoding"] != tt.encoding {
				t.Errorf("encoding %q, want %q", out.Details["encoding"], tt.encoding)
			}
			got := l.pages()
			if len(got) != len(want) {
				t.Fatalf("remote got %d pages, rendered %d", len(got), len(want))
			}
			for i := range got {
				samePixels(t, got[i], want[i])
			}
		})
	}
}

func TestDeliverClass2AutoSelected(t *testing.T) {
	for _, classes := range []string{"0,2,2.0", "0,2"} {
		d, l := newLab(t, map[string][]modemsim.Remote{"ttyS0": {{Classes: classes, CloseInPage: 2}, {Classes: classes}}}, "")
		job := textJob(120)
		want := expected(t, d, job)
		out := d.Deliver(context.Background(), job, nil)
		if out.Result != linedriver.Temporary || out.Category != t30.CatModem {
			t.Fatalf("%s: first attempt %+v", classes, out)
		}
		for _, m := range d.pool.modems {
			m.badTill = time.Now().Add(-time.Second)
		}
		job.Attempt, job.State = 2, out.State
		out = d.Deliver(context.Background(), job, nil)
		if out.Result != linedriver.Delivered || out.Details["pages"] != fmt.Sprint(len(want)) {
			t.Fatalf("%s: second attempt %+v", classes, out)
		}
		got := l.pages()
		if len(got) != len(want) {
			t.Fatalf("%s: remote has %d pages, want %d", classes, len(got), len(want))
		}
		for i := range got {
			samePixels(t, got[i], want[i])
		}
		cmds := strings.Join(l.sims[len(l.sims)-1].Commands(), " ")
		wantClass := "AT+FCLASS=2.0"
		if classes == "0,2" {
			wantClass = "AT+FCLASS=2"
		}
		if !strings.Contains(cmds+" ", wantClass+" ") {
			t.Errorf("%s: commands %s", classes, cmds)
		}
	}
}

func TestDeliverResumesAfterLineDrop(t *testing.T) {
	d, l := newLab(t, map[string][]modemsim.Remote{"ttyS0": {{CloseInPage: 2}, {}}}, "")
	job := textJob(150) // three pages
	want := expected(t, d, job)
	if len(want) != 3 {
		t.Fatalf("rendered %d pages, want 3", len(want))
	}
	out := d.Deliver(context.Background(), job, nil)
	if out.Result != linedriver.Temporary || out.Category != t30.CatModem || out.RetryAfter != time.Minute {
		t.Fatalf("first attempt: %+v", out)
	}
	var st State
	json.Unmarshal(out.State, &st)
	if st.Confirmed != 1 || st.Pages != 3 {
		t.Fatalf("state %+v", st)
	}
	// The modem that dropped is out of the pool until probed again.
	if o := d.Deliver(context.Background(), textJob(3), nil); o.Category != "no_modem" || !o.Uncounted {
		t.Fatalf("with the only modem out of service: %+v", o)
	}
	for _, m := range d.pool.modems {
		m.badTill = time.Now().Add(-time.Second) // its time out is over: probe it
	}
	job.Attempt, job.State = 2, out.State
	out = d.Deliver(context.Background(), job, nil)
	if out.Result != linedriver.Delivered || out.Details["pages"] != "3" {
		t.Fatalf("second attempt: %+v", out)
	}
	got := l.pages()
	if len(got) != 3 {
		t.Fatalf("remote confirmed %d pages over both calls, want 3 (nothing lost, nothing twice)", len(got))
	}
	for i := range got {
		samePixels(t, got[i], want[i])
	}
}

func TestDeliverCategories(t *testing.T) {
	tests := []struct {
		remote   modemsim.Remote
		attempt  int
		result   linedriver.Result
		category string
		after    time.Duration
	}{
		{modemsim.Remote{Dial: "BUSY"}, 1, linedriver.Temporary, t30.CatBusy, 3 * time.Minute},
		{modemsim.Remote{Dial: "NO ANSWER"}, 1, linedriver.Temporary, t30.CatNoAnswer, 10 * time.Minute},
		{modemsim.Remote{Dial: "NO DIALTONE"}, 1, linedriver.Temporary, t30.CatNoDialtone, 2 * time.Minute},
		{modemsim.Remote{Dial: "NO CARRIER"}, 1, linedriver.Temporary, t30.CatNoCarrier, 5 * time.Minute},
		{modemsim.Remote{Dial: "BUSY"}, 6, linedriver.Permanent, t30.CatBusy, 0},
		{modemsim.Remote{IgnoreDCS: true}, 1, linedriver.Temporary, t30.CatTraining, 5 * time.Minute},
		{modemsim.Remote{RTN: map[int]int{1: 5}}, 1, linedriver.Temporary, t30.CatRejected, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.category, tt.attempt), func(t *testing.T) {
			t.Parallel()
			d, _ := newLab(t, map[string][]modemsim.Remote{"ttyS0": {tt.remote}}, "")
			job := textJob(5)
			job.Attempt = tt.attempt
			out := d.Deliver(context.Background(), job, nil)
			if out.Result != tt.result || out.Category != tt.category || out.RetryAfter != tt.after {
				t.Fatalf("outcome %+v, want %v %s after %v", out, tt.result, tt.category, tt.after)
			}
		})
	}
}

func TestNoCarrierLimit(t *testing.T) {
	d, _ := newLab(t, map[string][]modemsim.Remote{"ttyS0": {{Dial: "NO CARRIER"}}}, "")
	job := textJob(3)
	var out linedriver.Outcome
	for i := 1; i <= 3; i++ {
		job.Attempt = i
		out = d.Deliver(context.Background(), job, nil)
		job.State = out.State
	}
	if out.Result != linedriver.Permanent || out.Category != t30.CatNoCarrier {
		t.Fatalf("third no-carrier attempt: %+v", out)
	}
}

func TestPoolUsesFreeAndHealthyModems(t *testing.T) {
	d, l := newLab(t, map[string][]modemsim.Remote{"ttyS0": {{}}, "ttyS1": {{}}}, "")
	if d.Slots() != 2 {
		t.Fatalf("slots %d", d.Slots())
	}
	// Each call waits at its dial until the other has dialled too (for at
	// most 10 s): two calls at once need both modems.
	var wg, dialled sync.WaitGroup
	dialled.Add(2)
	both := make(chan struct{})
	go func() { dialled.Wait(); close(both) }()
	outs := make([]linedriver.Outcome, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			once := sync.Once{}
			outs[i] = d.Deliver(context.Background(), textJob(3), func(p linedriver.Progress) {
				if p.Step != "dial" {
					return
				}
				once.Do(dialled.Done)
				select {
				case <-both:
				case <-time.After(10 * time.Second):
				}
			})
		}()
	}
	wg.Wait()
	used := map[string]bool{}
	for _, o := range outs {
		if o.Result != linedriver.Delivered {
			t.Fatalf("outcome %+v", o)
		}
		used[o.Details["modem"]] = true
	}
	if len(used) != 2 {
		t.Errorf("jobs used modems %v, want both", used)
	}
	// A device that fails to open is taken out; the other carries on.
	l.scripts["ttyS1"] = nil
	for _, m := range d.pool.modems {
		if m.Config.Device == "ttyS1" {
			d.pool.MarkBad(m, "test")
		}
	}
	o := d.Deliver(context.Background(), textJob(3), nil)
	if o.Result != linedriver.Delivered || o.Details["modem"] != "ttyS0" {
		t.Fatalf("with one modem out: %+v", o)
	}
}

func TestCancelKeepsConfirmedPages(t *testing.T) {
	d, _ := newLab(t, map[string][]modemsim.Remote{"ttyS0": {{SilentInPage: 2}}}, "")
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	out := d.Deliver(ctx, textJob(150), func(p linedriver.Progress) {
		if p.Step == "page" && strings.HasPrefix(p.Detail, "2:") {
			once.Do(func() { time.AfterFunc(50*time.Millisecond, cancel) })
		}
	})
	var st State
	json.Unmarshal(out.State, &st)
	if out.Result != linedriver.Temporary || st.Confirmed != 1 {
		t.Fatalf("stopped mid-page: %+v (state %+v)", out, st)
	}
}

func TestOptionsStrict(t *testing.T) {
	bad := []string{
		`{}`,
		`{"devices": [{"device": "/dev/ttyS0", "clas": "1"}]}`,
		`{"devices": [{"device": "/dev/ttyS0", "class": "3"}]}`,
		`{"devices": [{"device": "/dev/ttyS0"}], "resolution": "superfine"}`,
		`{"devices": [{"device": "/dev/ttyS0"}], "retry": {"delay": {"busy": "soon"}}}`,
		`{"devices": [{"device": "/dev/ttyS0"}], "modulations": ["V.17", "V29"]}`,
		`{"devices": [{"device": "/dev/ttyS0"}], "max_speed": 1200}`,
		`{"devices": [{"device": "/dev/ttyS0"}], "dial": {"region": "US"}, "max_speed": 1200}`,
		`{"devices": [{"device": "/dev/ttyS0", "dial_modifiers": "9,"}], "dial": {"region": "US"}}`,
		`{"devices": [{"device": "/dev/ttyS0"}], "dial": {"region": "US"}, "ecm": "yes"}`,
		`{"devices": [{"device": "/dev/ttyS0"}], "dial": {"region": "US"}, "encoding": "jbig"}`,
		`{"devices": [{"device": "/dev/ttyS0"}], "dial": {"region": "US"}, "ecm_frame_size": 128}`,
		`{"devices": [{"device": "/dev/ttyS0"}], "dial": {"region": "US"}, "pdf_renderer": "mupdf"}`,
		`{"devices": [{"device": "/dev/ttyS0"}], "dial": {"region": "US"}, "paper": "legal"}`,
	}
	for _, raw := range bad {
		if _, err := New("fax", json.RawMessage(raw), nil); err == nil {
			t.Errorf("options %s accepted", raw)
		}
	}
	for _, r := range []string{"auto", "pdfium", "ghostscript"} {
		if _, err := New("fax", json.RawMessage(`{"devices": [{"device": "/dev/ttyS0"}], "dial": {"region": "US"}, "pdf_renderer": "`+r+`"}`), nil); err != nil {
			t.Errorf("pdf_renderer %s: %v", r, err)
		}
	}
	drv, err := New("fax", json.RawMessage(`{"devices": [{"device": "/dev/ttyS0", "class": "auto", "init": ["&K4"], "dial_modifiers": "t"}], "dial": {"region": "US"}, "modulations": ["v.17", "V.27ter"], "retry": {"max_attempts": 3, "delay": {"busy": "90s"}}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := drv.(*Driver); d.opts.Retry.delay("busy") != 90*time.Second || d.opts.Retry.maxAttempts() != 3 {
		t.Errorf("retry policy %+v", d.opts.Retry)
	}
	if f, ok := linedriver.Lookup("faxmodem"); !ok || f == nil {
		t.Error("faxmodem is not registered")
	}
}

// TestCheckRefusesWhatCannotBeFaxed: a document that cannot be faxed makes
// Check refuse the record, naming it.
func TestCheckRefusesWhatCannotBeFaxed(t *testing.T) {
	d, _ := newLab(t, map[string][]modemsim.Remote{"ttyS0": {{}}}, "")
	rec := &linedriver.Record{Fields: map[string]string{"fax_number": "+12015550100"}, Documents: []linedriver.Document{
		{Name: "a.txt", Data: []byte("x")}, {Name: "order.zip", MediaType: "application/pdf", Data: []byte("PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")}}}
	if err := d.Check(rec); !errors.Is(err, render.ErrUnsupported) || !strings.Contains(err.Error(), "order.zip is an empty ZIP archive") {
		t.Errorf("Check(zip) = %v", err)
	}
	rec.Documents = rec.Documents[:1]
	if err := d.Check(rec); err != nil {
		t.Errorf("Check(text) = %v", err)
	}
}

// TestSkippedOnFirstPage: what the data map skipped is printed on the first
// page of the fax.
func TestSkippedOnFirstPage(t *testing.T) {
	d, _ := newLab(t, map[string][]modemsim.Remote{"ttyS0": {{}}}, "")
	job := &linedriver.Job{ID: "j", Record: linedriver.Record{Fields: map[string]string{"fax_number": "+12015550100"},
		Documents: []linedriver.Document{{Name: "a.txt", MediaType: "text/plain", Data: []byte("x\fy")}}}}
	plain, err := d.Render(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	job.Record.Skipped = []linedriver.Skipped{{Name: "order.zip", Type: "application/zip", Reason: "a ZIP archive, which cannot be delivered as pages"}}
	noted, err := d.Render(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if len(noted) != 2 || bytes.Equal(noted[0].Pix, plain[0].Pix) || !bytes.Equal(noted[1].Pix, plain[1].Pix) {
		t.Errorf("the note should change page 1 only (%d pages)", len(noted))
	}
}

// TestModemHealth follows the light of a modem through calls: green while
// it answers (idle, on a call), degraded once it did not answer a call,
// down when its probe five minutes later fails too, and healthy again when
// a probe finds it answering.
func TestModemHealth(t *testing.T) {
	type step struct {
		works  bool // the emulator answers on the device
		wait   time.Duration
		result linedriver.Result
		health string
		state  string
		errHas string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"working modem", []step{
			{works: true, result: linedriver.Delivered, health: linedriver.DeviceHealthy, state: "idle"},
		}},
		{"dead modem", []step{
			{result: linedriver.Temporary, health: linedriver.DeviceDegraded, state: "out of service", errHas: "cannot open ttyS0"},
			{wait: 6 * time.Minute, result: linedriver.Temporary, health: linedriver.DeviceDown, state: "not answering", errHas: "cannot open ttyS0"},
			{wait: time.Minute, result: linedriver.Temporary, health: linedriver.DeviceDown, state: "not answering", errHas: "cannot open ttyS0"},
		}},
		{"modem back", []step{
			{result: linedriver.Temporary, health: linedriver.DeviceDegraded, state: "out of service", errHas: "cannot open ttyS0"},
			{works: true, wait: 6 * time.Minute, result: linedriver.Delivered, health: linedriver.DeviceHealthy, state: "idle"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d, l := newLab(t, map[string][]modemsim.Remote{"ttyS0": {{}}}, "")
				start := time.Now()
				if got := d.Devices(); len(got) != 1 || got[0].Health != linedriver.DeviceHealthy || got[0].State != "idle" || !got[0].Since.Equal(start) {
					t.Fatalf("before any call: %+v", got)
				}
				for i, s := range tt.steps {
					time.Sleep(s.wait)
					l.mu.Lock()
					if s.works {
						l.scripts["ttyS0"] = []modemsim.Remote{{}}
					} else {
						l.scripts["ttyS0"] = nil
					}
					l.mu.Unlock()
					var during []linedriver.DeviceStatus
					out := d.Deliver(context.Background(), textJob(1), func(p linedriver.Progress) {
						if p.Step == "page" && during == nil {
							during = d.Devices()
						}
					})
					if out.Result != s.result {
						t.Fatalf("step %d: outcome %+v, want %v", i, out, s.result)
					}
					if s.works && (len(during) != 1 || during[0].State != "on a call" || during[0].Health != linedriver.DeviceHealthy) {
						t.Errorf("step %d: during the call: %+v", i, during)
					}
					got := d.Devices()[0]
					if got.Health != s.health || got.State != s.state || !strings.Contains(got.LastError, s.errHas) || (s.errHas == "") != (got.LastError == "") {
						t.Errorf("step %d: %+v, want %s %q with error %q", i, got, s.health, s.state, s.errHas)
					}
					if (got.Health != linedriver.DeviceHealthy) != got.ProbeAt.After(time.Now()) {
						t.Errorf("step %d: %s, probed again at %v", i, got.Health, got.ProbeAt)
					}
				}
			})
		})
	}
}

func TestParsePaperAndModulations(t *testing.T) {
	papers := []struct {
		in   string
		want render.PaperSize
		err  error
	}{
		{"", render.A4, nil},
		{"a4", render.A4, nil},
		{"Letter", render.Letter, nil},
		{"legal", render.A4, ErrPaper},
	}
	for _, tt := range papers {
		got, err := ParsePaper(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("ParsePaper(%q) = %v, %v; want %v, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	mods := []struct {
		in   string
		want []string
		err  error
	}{
		{"", nil, nil},
		{"V.17,V.29,V.27ter", []string{"V.17", "V.29", "V.27ter"}, nil},
		{" v.29 , ,V.27TER", []string{"v.29", "V.27TER"}, nil},
		{"V.17,V.34", nil, ErrModulation},
		{"V29", nil, ErrModulation},
	}
	for _, tt := range mods {
		got, err := ParseModulations(tt.in)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) || !errors.Is(err, tt.err) {
			t.Errorf("ParseModulations(%q) = %v, %v; want %v, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// With paper: letter the far end gets pages 11 in long (2156 rows at fine),
// pixel-exact; the default is A4 (2292 rows).
func TestDeliverPaper(t *testing.T) {
	tests := []struct {
		extra string
		rows  int
	}{
		{"", 2292},
		{`, "paper": "letter"`, 2156},
	}
	for _, tt := range tests {
		t.Run(tt.extra, func(t *testing.T) {
			d, l := newLab(t, map[string][]modemsim.Remote{"ttyS0": {{}}}, tt.extra)
			job := textJob(10)
			want := expected(t, d, job)
			out := d.Deliver(context.Background(), job, func(linedriver.Progress) {})
			if out.Result != linedriver.Delivered {
				t.Fatalf("outcome %+v", out)
			}
			got := l.pages()
			if len(got) != 1 || len(want) != 1 {
				t.Fatalf("remote got %d pages, rendered %d", len(got), len(want))
			}
			if len(got[0].Rows) != tt.rows {
				t.Errorf("the far end got %d rows, want %d", len(got[0].Rows), tt.rows)
			}
			samePixels(t, got[0], want[0])
		})
	}
}
