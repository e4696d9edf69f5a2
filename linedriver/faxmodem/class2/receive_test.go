package class2_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/class2"
	"github.com/mediagw/mediagw/linedriver/faxmodem/modemsim"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4/t4test"
)

// inbox is the host's side of the seam: it keeps what it is given and
// fails as scripted.
type inbox struct {
	mu        sync.Mutex
	beginErr  error
	failPage  map[int]int // page number → times Page fails
	begun     int
	pages     map[int]*linedriver.InboundPage
	ends      []error
	remoteID  string
	callParam string
	afterPage func(n int) // called once page n is stored
	endCtxErr error       // End's context's error
}

var errDisk = errors.New("disk full")

func (b *inbox) Begin(_ context.Context, call *linedriver.Call) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.begun++
	b.remoteID, b.callParam = call.RemoteID, call.Params
	return b.beginErr
}

func (b *inbox) Page(_ context.Context, _ *linedriver.Call, n int, p *linedriver.InboundPage) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failPage[n] > 0 {
		b.failPage[n]--
		return errDisk
	}
	if b.pages == nil {
		b.pages = map[int]*linedriver.InboundPage{}
	}
	b.pages[n] = p
	if b.afterPage != nil {
		b.afterPage(n)
	}
	return nil
}

func (b *inbox) End(ctx context.Context, _ *linedriver.Call, err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ends = append(b.ends, err)
	b.endCtxErr = ctx.Err()
	return nil
}

func TestReceive(t *testing.T) {
	ccitt := t4test.CCITT(t)[:3]
	encode := func(i int, p t30.Params) ([]byte, error) {
		bm := ccitt[i]
		var b bytes.Buffer
		_, err := t4.EncodePage(&b, bm.W, bm.Row, bm.H, t4Options(p))
		return b.Bytes(), err
	}
	tests := []struct {
		name     string
		caller   modemsim.Caller
		cfg      class2.ReceiveConfig
		beginErr error
		failPage map[int]int
		stored   int    // pages stored
		params   string // the session, as Params.String begins
		verdicts []int
		endErr   error  // want End's error to match (errors.Is); nil: a proper end
		endCat   string // or its category
		noEnd    bool   // Begin refused: no End
		aborted  bool
		stopAt   int // the gateway stops (ctx cancelled) once this page is stored
	}{
		{name: "MMR over ECM", caller: modemsim.Caller{Pages: 3}, stored: 3, params: "V.17 14400, fine, MMR, ECM 256-octet frames", verdicts: []int{1, 1, 1}},
		{name: "ECM with 64-octet frames offered", caller: modemsim.Caller{Pages: 1}, cfg: class2.ReceiveConfig{FrameSize: 64}, stored: 1, params: "V.17 14400, fine, MMR, ECM 64-octet frames", verdicts: []int{1}},
		{name: "MR without ECM", caller: modemsim.Caller{Pages: 2}, cfg: class2.ReceiveConfig{ECM: "off"}, stored: 2, params: "V.17 14400, fine, MR, min scan", verdicts: []int{1, 1}},
		{name: "MH only offered", caller: modemsim.Caller{Pages: 2}, cfg: class2.ReceiveConfig{ECM: "off", Encoding: "mh"}, stored: 2, params: "V.17 14400, fine, MH", verdicts: []int{1, 1}},
		{name: "caller without ECM", caller: modemsim.Caller{Pages: 2, Caps: &t30.Caps{CanReceive: true, V17: true, Fine: true, MR: true}}, stored: 2, params: "V.17 14400, fine, MR", verdicts: []int{1, 1}},
		{name: "page not stored, sent again", caller: modemsim.Caller{Pages: 3, Resend: 1}, failPage: map[int]int{2: 1}, stored: 3, params: "V.17", verdicts: []int{1, 2, 1, 1}},
		{name: "page not stored, not sent again", caller: modemsim.Caller{Pages: 2}, failPage: map[int]int{2: 1}, stored: 1, params: "V.17", verdicts: []int{1, 2}, endErr: class2.ErrRefused},
		{name: "damaged page refused, then good", caller: modemsim.Caller{Pages: 2, Resend: 1, Corrupt: map[int]int{2: 1}, Caps: &t30.Caps{CanReceive: true, V17: true, Fine: true}}, stored: 2, params: "V.17 14400, fine, MH", verdicts: []int{1, 2, 1}},
		{name: "far end hangs up mid-page", caller: modemsim.Caller{Pages: 3, HangupInPage: 2}, stored: 1, params: "V.17", verdicts: []int{1}, endCat: t30.CatProtocol},
		{name: "page refused three times: call ended", caller: modemsim.Caller{Pages: 2, Resend: 5}, failPage: map[int]int{1: 9}, stored: 0, params: "V.17", verdicts: []int{2, 2}, endCat: t30.CatProtocol, aborted: true},
		{name: "gateway stopping mid-call", caller: modemsim.Caller{Pages: 3}, stopAt: 1, stored: 1, params: "V.17", endCat: t30.CatCancelled},
		{name: "call refused by the host", caller: modemsim.Caller{Pages: 1}, beginErr: errDisk, noEnd: true, params: "V.17", aborted: true},
	}
	for _, class := range []string{"2", "2.0"} {
		for _, tt := range tests {
			t.Run(class+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				caller := tt.caller
				caller.Encode = encode
				port, sim := modemsim.Pipe(ctx, modemsim.Remote{Caller: &caller})
				var log strings.Builder
				ch := at.New(port, at.Options{Trace: func(d, s string) {
					if len(s) > 80 {
						s = s[:80]
					}
					fmt.Fprintf(&log, "%s %q\n", d, s)
				}})
				defer ch.Close()
				defer func() {
					if t.Failed() {
						t.Log(log.String())
					}
				}()
				if r, err := ch.Command(ctx, "+FCLASS="+class, time.Second); err != nil || !r.OK() {
					t.Fatalf("+FCLASS=%s: %v %v", class, r, err)
				}
				in := &inbox{beginErr: tt.beginErr, failPage: maps(tt.failPage)}
				cfg := tt.cfg
				cfg.Class, cfg.LocalID, cfg.Fine, cfg.Timeout = class, "+1 555 0002", true, 5*time.Second
				call := &linedriver.Call{ID: "c1", Device: "sim", Log: "ring: caller 1002\n"}
				rctx, stop := context.WithCancel(ctx)
				defer stop()
				if tt.stopAt > 0 {
					in.afterPage = func(n int) {
						if n == tt.stopAt {
							stop()
						}
					}
				}
				err := class2.Receive(rctx, ch, cfg, call, in)
				if in.endCtxErr != nil {
					t.Errorf("End's context: %v", in.endCtxErr)
				}

				if in.begun != 1 {
					t.Fatalf("Begin called %d times", in.begun)
				}
				if in.remoteID != "+1 555 0200" || !strings.HasPrefix(in.callParam, tt.params) {
					t.Errorf("Begin saw %q, %q; want +1 555 0200, %q", in.remoteID, in.callParam, tt.params)
				}
				if tt.noEnd {
					if len(in.ends) != 0 || !errors.Is(err, errDisk) {
						t.Errorf("refused call: End %v, Receive %v", in.ends, err)
					}
				} else {
					if len(in.ends) != 1 {
						t.Fatalf("End called %d times", len(in.ends))
					}
					e := in.ends[0]
					var te *t30.Error
					switch {
					case tt.endErr == nil && tt.endCat == "":
						if e != nil || err != nil {
							t.Errorf("End(%v), Receive %v; want a proper end", e, err)
						}
					case tt.endErr != nil:
						if !errors.Is(e, tt.endErr) || !errors.Is(err, tt.endErr) {
							t.Errorf("End(%v), Receive %v; want %v", e, err, tt.endErr)
						}
					default:
						if !errors.As(e, &te) || te.Category != tt.endCat {
							t.Errorf("End(%v); want category %s", e, tt.endCat)
						}
					}
				}
				if len(in.pages) != tt.stored {
					t.Errorf("%d pages stored, want %d", len(in.pages), tt.stored)
				}
				for n, p := range in.pages {
					bm := ccitt[n-1]
					if p.Width != 1728 || p.XRes != 204 || p.YRes != 196 {
						t.Errorf("page %d: %d wide, %v×%v dpi", n, p.Width, p.XRes, p.YRes)
					}
					if d := samePixels(bm, p.Rows); d != "" || p.Height != bm.H {
						t.Errorf("page %d: %s", n, d)
					}
				}
				calls := sim.Calls()
				if len(calls) != 1 {
					t.Fatalf("%d calls", len(calls))
				}
				c := calls[0]
				if !slices.Equal(c.Verdicts, tt.verdicts) {
					t.Errorf("verdicts %v, want %v", c.Verdicts, tt.verdicts)
				}
				if c.Aborted != tt.aborted {
					t.Errorf("aborted %v, want %v", c.Aborted, tt.aborted)
				}
				if !strings.HasPrefix(call.Log, "ring: caller 1002\n") || !strings.Contains(call.Log, "[answer] ATA") {
					t.Errorf("call log %q", call.Log)
				}
			})
		}
	}
}

func maps(m map[int]int) map[int]int {
	out := map[int]int{}
	for k, v := range m {
		out[k] = v
	}
	return out
}
