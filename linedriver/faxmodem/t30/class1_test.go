package t30_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/modemsim"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
)

// fakePages returns n pages whose data names the page and the parameters
// and contains DLE bytes, to exercise stuffing.
func fakePages(n int) []t30.Page {
	pages := make([]t30.Page, n)
	for i := range pages {
		pages[i] = t30.Page{Encode: func(p t30.Params) ([]byte, error) {
			return pageData(i, p), nil
		}}
	}
	return pages
}

func pageData(i int, p t30.Params) []byte {
	reps := 40
	if p.ECM && p.FrameSize == 64 {
		reps = 400 // more than one block of 256 frames
	}
	return bytes.Repeat([]byte(fmt.Sprintf("page %d %s \x10\x03|", i+1, p)), reps)
}

var ecmCaps = &t30.Caps{CanReceive: true, V17: true, V29: true, V27ter: true, Fine: true, MR: true, ECM: true, MMR: true}

func fastConfig() t30.Config {
	return t30.Config{
		LocalID: "+1 555 0001", Fine: true, MR: true, RTNRetries: 1,
		T1: 2 * time.Second, T4: 300 * time.Millisecond, DialWait: time.Second, ModemWait: 500 * time.Millisecond,
	}
}

func TestClass1Paths(t *testing.T) {
	tests := []struct {
		name      string
		remote    modemsim.Remote
		cfg       func(*t30.Config)
		pages     int
		category  string // "" for success
		confirmed int    // pages the far end confirmed
		speed     int    // bit rate of the last DCS, for successes
		check     func(t *testing.T, calls []modemsim.Call)
		within    time.Duration // the send ends within this (0: no bound)
	}{
		{name: "success", pages: 3, confirmed: 3, speed: 14400, check: func(t *testing.T, calls []modemsim.Call) {
			c := calls[0]
			if c.TSI != "+1 555 0001" || !c.Ended || !c.OnHook || c.Number != "5550100" {
				t.Errorf("call %+v", c)
			}
			if !c.DCS[0].Fine || !c.DCS[0].MR {
				t.Errorf("DCS %v: want fine and MR", c.DCS[0])
			}
		}},
		{name: "busy", remote: modemsim.Remote{Dial: "BUSY"}, pages: 1, category: t30.CatBusy},
		{name: "no carrier", remote: modemsim.Remote{Dial: "NO CARRIER"}, pages: 1, category: t30.CatNoCarrier},
		{name: "no dial tone", remote: modemsim.Remote{Dial: "NO DIALTONE"}, pages: 1, category: t30.CatNoDialtone},
		{name: "no answer", remote: modemsim.Remote{Dial: "NO ANSWER"}, pages: 1, category: t30.CatNoAnswer},
		{name: "FTT then lower speed", remote: modemsim.Remote{FTTAbove: 9600}, pages: 2, confirmed: 2, speed: 9600,
			check: func(t *testing.T, calls []modemsim.Call) {
				if got := fmt.Sprint(calls[0].Training); got != "[14400 12000 9600]" {
					t.Errorf("training %s", got)
				}
			}},
		{name: "V.29 only receiver", remote: modemsim.Remote{Caps: &t30.Caps{CanReceive: true, V29: true, V27ter: true, MinScan: 20, MinScanFine: 20}},
			pages: 1, confirmed: 1, speed: 9600, check: func(t *testing.T, calls []modemsim.Call) {
				p := calls[0].DCS[0]
				if p.Speed.Modulation != t30.V29 || p.Fine || p.MR || p.MinScan != 20 {
					t.Errorf("DCS %v", p)
				}
			}},
		{name: "RTN then retrain", remote: modemsim.Remote{RTN: map[int]int{2: 1}}, pages: 3, confirmed: 3, speed: 12000},
		{name: "RTN gives up", remote: modemsim.Remote{RTN: map[int]int{2: 1}}, cfg: func(c *t30.Config) { c.RTNRetries = 0 },
			pages: 3, category: t30.CatRejected, confirmed: 1},
		{name: "remote never answers DCS", remote: modemsim.Remote{IgnoreDCS: true}, pages: 2, category: t30.CatTraining},
		{name: "modem silent mid-page", remote: modemsim.Remote{SilentInPage: 2}, pages: 3, category: t30.CatModem, confirmed: 1},
		{name: "line closes mid-page", remote: modemsim.Remote{CloseInPage: 2}, pages: 3, category: t30.CatModem, confirmed: 1},
		// The far end answers and sends nothing: after T1 it is no_answer
		// (not our modem's fault), and the modem is on hook: the pending
		// reception was aborted before ATH0, so ATH0 was not eaten.
		{name: "far end answers with nothing behind it", remote: modemsim.Remote{Mute: true}, pages: 1, category: t30.CatNoAnswer,
			check: onHook},
		{name: "modem dies after CONNECT", remote: modemsim.Remote{SilentAfterConnect: true}, pages: 1, category: t30.CatModem},
		{name: "far end hangs up mid-page", remote: modemsim.Remote{HangupInPage: 2}, pages: 3, category: t30.CatHangup, confirmed: 1,
			within: 2 * time.Second, check: func(t *testing.T, calls []modemsim.Call) {
				if !calls[0].Hangup {
					t.Errorf("the far end did not hang up")
				}
			}},
		{name: "ECM with MMR", remote: modemsim.Remote{Caps: ecmCaps}, pages: 2, confirmed: 2, speed: 14400,
			check: func(t *testing.T, calls []modemsim.Call) {
				p := calls[0].DCS[0]
				if !p.ECM || !p.MMR || p.MR || p.FrameSize != 256 || calls[0].PPR != 0 {
					t.Errorf("DCS %v, %d PPR", p, calls[0].PPR)
				}
			}},
		{name: "ECM off", remote: modemsim.Remote{Caps: ecmCaps}, cfg: func(c *t30.Config) { c.ECM = "off" }, pages: 1, confirmed: 1, speed: 14400,
			check: func(t *testing.T, calls []modemsim.Call) {
				if p := calls[0].DCS[0]; p.ECM || p.MMR || !p.MR {
					t.Errorf("DCS %v", p)
				}
			}},
		{name: "ECM with MR by choice", remote: modemsim.Remote{Caps: ecmCaps}, cfg: func(c *t30.Config) { c.Encoding = "mr" }, pages: 1, confirmed: 1, speed: 14400,
			check: func(t *testing.T, calls []modemsim.Call) {
				if p := calls[0].DCS[0]; !p.ECM || p.MMR || !p.MR {
					t.Errorf("DCS %v", p)
				}
			}},
		{name: "ECM asked, far end without it", cfg: func(c *t30.Config) { c.ECM = "on" }, pages: 1, confirmed: 1, speed: 14400,
			check: func(t *testing.T, calls []modemsim.Call) {
				if p := calls[0].DCS[0]; p.ECM {
					t.Errorf("DCS %v", p)
				}
			}},
		{name: "ECM frames in error are sent again, alone", remote: modemsim.Remote{Caps: ecmCaps, CorruptFrames: map[int]int{2: 1, 5: 2}},
			pages: 2, confirmed: 2, speed: 14400, check: func(t *testing.T, calls []modemsim.Call) {
				// page 1: PPR for 2 and 5, then for 5; page 2 the same
				if got := fmt.Sprint(calls[0].Resent); got != "[2 5 5 2 5 5]" || calls[0].PPR != 4 {
					t.Errorf("resent %s after %d PPR", got, calls[0].PPR)
				}
			}},
		{name: "ECM four PPRs then CTC to a lower speed", remote: modemsim.Remote{Caps: ecmCaps, CorruptFrames: map[int]int{3: 4}},
			pages: 1, confirmed: 1, speed: 12000, check: func(t *testing.T, calls []modemsim.Call) {
				if got := fmt.Sprint(calls[0].CTC); got != "[12000]" || calls[0].PPR != 4 {
					t.Errorf("CTC %s after %d PPR", got, calls[0].PPR)
				}
			}},
		{name: "ECM 64-octet frames, two blocks", remote: modemsim.Remote{Caps: ecmCaps}, cfg: func(c *t30.Config) { c.FrameSize = 64 },
			pages: 1, confirmed: 1, speed: 14400, check: func(t *testing.T, calls []modemsim.Call) {
				if p := calls[0].DCS[0]; p.FrameSize != 64 {
					t.Errorf("DCS %v", p)
				}
				if n := strings.Count(strings.Join(calls[0].Frames, ","), "PPS"); n != 2 {
					t.Errorf("%d PPS, want 2 (a block of 256 frames, then the rest): %v", n, calls[0].Frames)
				}
			}},
		{name: "ECM receiver not ready", remote: modemsim.Remote{Caps: ecmCaps, NotReady: 2}, pages: 2, confirmed: 2, speed: 14400,
			check: func(t *testing.T, calls []modemsim.Call) {
				if calls[0].RR != 2 {
					t.Errorf("%d RR, want 2", calls[0].RR)
				}
			}},
		{name: "modem silent on dial", remote: modemsim.Remote{Dial: "silent"}, pages: 1, category: t30.CatNoAnswer},
		{name: "resume from page 2", cfg: func(c *t30.Config) { c.FirstPage = 1 }, pages: 3, confirmed: 2, speed: 14400,
			check: func(t *testing.T, calls []modemsim.Call) {
				if !strings.HasPrefix(string(calls[0].Pages[0].Data), "page 2 ") {
					t.Errorf("first page sent was %.10q", calls[0].Pages[0].Data)
				}
			}},
		{name: "XON/XOFF during pages", remote: modemsim.Remote{XOFFEvery: 512}, pages: 2, confirmed: 2, speed: 14400},
		{name: "modulation limited to V.27ter", cfg: func(c *t30.Config) { c.Modulations = []string{"V.27ter"} }, pages: 1, confirmed: 1, speed: 4800},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			port, sim := modemsim.Pipe(ctx, tt.remote)
			var log strings.Builder
			ch := at.New(port, at.Options{Trace: func(d, s string) { fmt.Fprintf(&log, "%s %s\n", d, s) }})
			defer ch.Close()
			cfg := fastConfig()
			cfg.Log = func(step, detail string) { fmt.Fprintf(&log, "  [%s] %s\n", step, detail) }
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			start := time.Now()
			res, err := t30.Send(ctx, ch, "5550100", fakePages(tt.pages), cfg)
			if took := time.Since(start); tt.within > 0 && took > tt.within {
				t.Errorf("the send took %v, want at most %v", took, tt.within)
			}
			defer func() {
				if t.Failed() {
					t.Log(log.String())
				}
			}()
			var e *t30.Error
			switch {
			case tt.category == "" && err != nil:
				t.Fatalf("send failed: %v", err)
			case tt.category != "" && !errors.As(err, &e):
				t.Fatalf("got %v, want category %s", err, tt.category)
			case tt.category != "" && e.Category != tt.category:
				t.Fatalf("category %s (%v), want %s", e.Category, err, tt.category)
			}
			if res.Pages != tt.confirmed || (e != nil && e.Confirmed != tt.confirmed) {
				t.Errorf("confirmed %d, want %d", res.Pages, tt.confirmed)
			}
			if tt.speed != 0 && res.Params.Speed.Bits != tt.speed {
				t.Errorf("speed %v, want %d", res.Params.Speed, tt.speed)
			}
			// Nothing lost: every page the remote confirmed is one we sent,
			// byte for byte, in order, and the count matches ours.
			calls := sim.Calls()
			got := sim.Pages()
			if len(got) != tt.confirmed {
				t.Fatalf("remote confirmed %d pages, driver says %d", len(got), tt.confirmed)
			}
			for i, p := range got {
				ref := p.Params
				data := p.Data
				if p.Params.ECM {
					// the page was coded for the DCS; CTC changed only the speed
					dcs := calls[0].DCS
					ref = dcs[len(dcs)-1]
					// the last frame is padded with zeros
					data = bytes.TrimRight(data, "\x00")
				}
				want := pageData(cfg.FirstPage+i, ref)
				if !bytes.Equal(data, want) {
					t.Errorf("page %d differs", i+1)
				}
			}
			if tt.check != nil {
				tt.check(t, calls)
			}
		})
	}
}

func onHook(t *testing.T, calls []modemsim.Call) {
	t.Helper()
	if len(calls) == 0 || !calls[0].OnHook {
		t.Errorf("the modem was left off hook: %+v", calls)
	}
}

// TestClass1WaitsT1 runs on a fake clock: the far end's first frame may
// come late, up to T1 (35 s), and only silence beyond T1 fails the call,
// as no_answer. The modem answers the abort, so it is not blamed.
func TestClass1WaitsT1(t *testing.T) {
	tests := []struct {
		name     string
		remote   modemsim.Remote
		category string
		took     time.Duration // fake time the send takes, at least
	}{
		{name: "first frame after 20 s", remote: modemsim.Remote{FirstFrameDelay: 20 * time.Second}, took: 20 * time.Second},
		{name: "no frame at all", remote: modemsim.Remote{Mute: true}, category: t30.CatNoAnswer, took: 35 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				port, sim := modemsim.Pipe(ctx, tt.remote)
				ch := at.New(port, at.Options{})
				defer ch.Close()
				cfg := fastConfig()
				cfg.T1 = 0 // T.30's 35 s
				start := time.Now()
				res, err := t30.Send(ctx, ch, "5550100", fakePages(1), cfg)
				took := time.Since(start)
				var e *t30.Error
				switch {
				case tt.category == "" && err != nil:
					t.Fatalf("send: %v", err)
				case tt.category != "" && (!errors.As(err, &e) || e.Category != tt.category):
					t.Fatalf("got %v, want %s", err, tt.category)
				case tt.category == "" && res.Pages != 1:
					t.Fatalf("%d pages confirmed", res.Pages)
				}
				if took < tt.took || took > tt.took+10*time.Second {
					t.Errorf("the send took %v, want %v and a little", took, tt.took)
				}
				onHook(t, sim.Calls())
				cancel()
				port.Close()
			})
		})
	}
}

func TestClass1OverPTY(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, remote := range []modemsim.Remote{{XOFFEvery: 300}, {CloseInPage: 2}} {
		dev, sim, err := modemsim.PTY(ctx, remote)
		if err != nil {
			testenv.Skip(t, "no pseudo-terminal for the modem emulator: "+err.Error())
		}
		ch, err := at.Open(dev, 115200, at.Options{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := t30.Send(ctx, ch, "5550100", fakePages(3), fastConfig())
		ch.Close()
		if remote.CloseInPage == 0 {
			if err != nil || res.Pages != 3 || len(sim.Pages()) != 3 {
				t.Fatalf("pty send: %d pages, %v", res.Pages, err)
			}
			continue
		}
		var e *t30.Error
		if !errors.As(err, &e) || e.Category != t30.CatModem || e.Confirmed != 1 || len(sim.Pages()) != 1 {
			t.Fatalf("pty closed mid-page: %v (confirmed %d, remote %d)", err, res.Pages, len(sim.Pages()))
		}
	}
}
