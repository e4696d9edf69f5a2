package class2_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/class2"
	"github.com/mediagw/mediagw/linedriver/faxmodem/modemsim"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
)

func pageData(i int, p t30.Params) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("page %d %s \x10|", i+1, p)), 30)
}

func pages(n int) []t30.Page {
	out := make([]t30.Page, n)
	for i := range out {
		out[i] = t30.Page{Encode: func(p t30.Params) ([]byte, error) { return pageData(i, p), nil }}
	}
	return out
}

func TestSend(t *testing.T) {
	tests := []struct {
		name      string
		remote    modemsim.Remote
		rtn       int
		category  string
		reason    string
		confirmed int
		speed     int
	}{
		{name: "success", confirmed: 3, speed: 14400},
		{name: "busy", remote: modemsim.Remote{Dial: "BUSY"}, category: t30.CatBusy},
		{name: "no carrier", remote: modemsim.Remote{Dial: "NO CARRIER"}, category: t30.CatNoCarrier},
		{name: "lower speed", remote: modemsim.Remote{FTTAbove: 9600}, confirmed: 3, speed: 9600},
		{name: "DCS unanswered", remote: modemsim.Remote{IgnoreDCS: true}, category: t30.CatTraining, reason: "the remote did not answer the DCS"},
		{name: "RTN resent", remote: modemsim.Remote{RTN: map[int]int{2: 1}}, rtn: 1, confirmed: 3, speed: 14400},
		{name: "RTN gives up", remote: modemsim.Remote{RTN: map[int]int{2: 1}}, category: t30.CatRejected, confirmed: 1},
		{name: "line closes mid-page", remote: modemsim.Remote{CloseInPage: 3}, category: t30.CatModem, confirmed: 2},
	}
	for _, class := range []string{"2", "2.0"} {
		for _, tt := range tests {
			t.Run(class+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				port, sim := modemsim.Pipe(ctx, tt.remote)
				var log strings.Builder
				ch := at.New(port, at.Options{Trace: func(d, s string) { fmt.Fprintf(&log, "%s %s\n", d, s) }})
				defer ch.Close()
				if r, err := ch.Command(ctx, "+FCLASS="+class, time.Second); err != nil || !r.OK() {
					t.Fatalf("+FCLASS=%s: %v %v", class, r, err)
				}
				res, err := class2.Send(ctx, ch, "5550100", pages(3), class2.Config{Class: class, LocalID: "+1 555 0001", Fine: true, MR: true, RTNRetries: tt.rtn, Timeout: 2 * time.Second})
				defer func() {
					if t.Failed() {
						t.Log(log.String())
					}
				}()
				var e *t30.Error
				if tt.category == "" {
					if err != nil {
						t.Fatal(err)
					}
				} else if !errors.As(err, &e) || e.Category != tt.category || !strings.Contains(e.Reason, tt.reason) {
					t.Fatalf("got %v, want %s", err, tt.category)
				}
				if res.Pages != tt.confirmed || (e != nil && e.Confirmed != tt.confirmed) {
					t.Errorf("confirmed %d, want %d", res.Pages, tt.confirmed)
				}
				if tt.speed != 0 && (res.Params.Speed.Bits != tt.speed || !res.Params.Fine || !res.Params.MR || res.RemoteID != "+1 555 0100") {
					t.Errorf("result %+v", res)
				}
				got := sim.Pages()
				if len(got) != tt.confirmed {
					t.Fatalf("remote has %d pages, driver says %d", len(got), tt.confirmed)
				}
				for i, p := range got {
					if !bytes.Equal(p.Data, pageData(i, p.Params)) {
						t.Errorf("page %d differs", i+1)
					}
				}
			})
		}
	}
}

func TestHangupWords(t *testing.T) {
	tests := map[string]string{"0": "", "00": "", "25": t30.CatTraining, "27": t30.CatTraining, "11": t30.CatNoAnswer, "54": t30.CatProtocol, "94": t30.CatProtocol, "A1": t30.CatProtocol, "x": t30.CatProtocol, "99": t30.CatProtocol}
	for v, cat := range tests {
		err := class2.HangupError(v)
		var e *t30.Error
		if cat == "" {
			if err != nil {
				t.Errorf("%s: %v", v, err)
			}
			continue
		}
		if !errors.As(err, &e) || e.Category != cat {
			t.Errorf("HangupError(%q) = %v, want %s", v, err, cat)
		}
	}
}

func TestParseParams(t *testing.T) {
	p, err := class2.ParseParams("1,3,0,2,1,0,0,4")
	if err != nil || p.Speed.Bits != 9600 || !p.Fine || !p.MR || p.MinScan != 10 {
		t.Fatalf("ParseParams = %+v, %v", p, err)
	}
	if _, err := class2.ParseParams("1,9,0,2,0"); err == nil {
		t.Error("bit rate code 9 accepted")
	}
	if _, err := class2.ParseParams("0,5,0,2,3,0,0,0"); err == nil {
		t.Error("MMR accepted without ECM")
	}
	if _, err := class2.ParseParams("0,5,0,2,2,1,0,0"); err == nil {
		t.Error("uncompressed mode accepted")
	}
	p, err = class2.ParseParams("1,5,0,2,3,2,0,0")
	if err != nil || !p.ECM || !p.MMR || p.MR || p.FrameSize != 256 || p.MinLineBits() != 0 {
		t.Errorf("ParseParams(MMR, ECM 256) = %+v, %v", p, err)
	}
	p, err = class2.ParseParams("0,3,0,2,1,1,0,0")
	if err != nil || !p.ECM || !p.MR || p.FrameSize != 64 {
		t.Errorf("ParseParams(MR, ECM 64) = %+v, %v", p, err)
	}
}

func FuzzParseParams(f *testing.F) {
	f.Add("1,5,0,2,1,0,0,0")
	f.Fuzz(func(t *testing.T, s string) {
		class2.ParseParams(s) //nolint:errcheck
		class2.HangupError(s) //nolint:errcheck
	})
}
