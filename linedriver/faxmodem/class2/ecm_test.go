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
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4/t4test"
)

// t4Options codes page data as negotiated, in the direct bit order the
// driver sets with +FBO=0.
func t4Options(p t30.Params) t4.Options {
	o := t4.Options{Encoding: t4.MH, EndOfPage: true, LSBFirst: true, MinLineBits: p.MinLineBits()}
	switch {
	case p.MMR:
		o.Encoding = t4.MMR
	case p.MR:
		o.Encoding, o.K = t4.MR, p.K()
	}
	return o
}

// bitmapPages are CCITT test pages coded for the negotiated parameters.
func bitmapPages(t *testing.T, bms []*t4test.Bitmap) []t30.Page {
	out := make([]t30.Page, len(bms))
	for i, bm := range bms {
		out[i] = t30.Page{Encode: func(p t30.Params) ([]byte, error) {
			var b bytes.Buffer
			_, err := t4.EncodePage(&b, bm.W, bm.Row, bm.H, t4Options(p))
			return b.Bytes(), err
		}}
	}
	return out
}

func decodeRows(data []byte, p t30.Params) ([][]byte, error) {
	return t4.DecodePage(bytes.NewReader(data), 1728, t4Options(p), 0)
}

// samePixels reports where rows differ from bm ("" when they do not).
func samePixels(bm *t4test.Bitmap, rows [][]byte) string {
	if len(rows) != bm.H {
		return fmt.Sprintf("%d rows, want %d", len(rows), bm.H)
	}
	for y, r := range rows {
		if !bytes.Equal(r, bm.Row(y)) {
			return fmt.Sprintf("row %d differs", y)
		}
	}
	return ""
}

func TestSendECMAndMMR(t *testing.T) {
	ccitt := t4test.CCITT(t)[:2]
	ecmCaps := &t30.Caps{CanReceive: true, V17: true, V29: true, V27ter: true, Fine: true, MR: true, MMR: true, ECM: true}
	noECMModem := "(0,1),(0-5),(0-2),(0-2),(0,1),(0),(0),(0-7)"
	tests := []struct {
		name      string
		remote    modemsim.Remote
		cfg       class2.Config
		want      string // the session's parameters, as Params.String begins
		category  string
		confirmed int
		check     func(t *testing.T, calls []modemsim.Call, cmds []string)
	}{
		{name: "MMR over ECM by default", remote: modemsim.Remote{Caps: ecmCaps}, want: "V.17 14400, fine, MMR, ECM 256-octet frames", confirmed: 2,
			check: func(t *testing.T, _ []modemsim.Call, cmds []string) {
				if !hasCommand(cmds, "+FCC=1,5,0,2,3,2,0,0") && !hasCommand(cmds, "+FDCC=1,5,0,2,3,2,0,0") {
					t.Errorf("capabilities not set for MMR and ECM: %q", cmds)
				}
			}},
		{name: "64-octet frames", remote: modemsim.Remote{Caps: ecmCaps}, cfg: class2.Config{FrameSize: 64}, want: "V.17 14400, fine, MMR, ECM 64-octet frames", confirmed: 2},
		{name: "MR over ECM by choice", remote: modemsim.Remote{Caps: ecmCaps}, cfg: class2.Config{Encoding: "mr"}, want: "V.17 14400, fine, MR, ECM 256-octet frames", confirmed: 2},
		{name: "MH over ECM by choice", remote: modemsim.Remote{Caps: ecmCaps}, cfg: class2.Config{Encoding: "mh"}, want: "V.17 14400, fine, MH, ECM 256-octet frames", confirmed: 2},
		{name: "ECM off", remote: modemsim.Remote{Caps: ecmCaps}, cfg: class2.Config{ECM: "off"}, want: "V.17 14400, fine, MR, min scan", confirmed: 2},
		{name: "MMR asked with ECM off", remote: modemsim.Remote{Caps: ecmCaps}, cfg: class2.Config{ECM: "off", Encoding: "mmr"}, want: "V.17 14400, fine, MR, min scan", confirmed: 2},
		{name: "far end without ECM", cfg: class2.Config{ECM: "on"}, want: "V.17 14400, fine, MR, min scan", confirmed: 2,
			check: func(t *testing.T, _ []modemsim.Call, cmds []string) {
				if !hasCommand(cmds, "+FIS=1,5,0,2,1,0,0,0") && !hasCommand(cmds, "+FDIS=1,5,0,2,1,0,0,0") {
					t.Errorf("session not set to the far end's capabilities: %q", cmds)
				}
			}},
		{name: "far end MH only", remote: modemsim.Remote{Caps: &t30.Caps{CanReceive: true, V17: true, Fine: true}}, want: "V.17 14400, fine, MH, min scan", confirmed: 2},
		{name: "modem without ECM", remote: modemsim.Remote{Caps: ecmCaps, Ranges: noECMModem}, want: "V.17 14400, fine, MR, min scan", confirmed: 2},
		{name: "frames in error resent by the modem", remote: modemsim.Remote{Caps: ecmCaps, CorruptFrames: map[int]int{2: 1, 5: 2}}, want: "V.17 14400, fine, MMR, ECM", confirmed: 2,
			check: func(t *testing.T, calls []modemsim.Call, _ []string) {
				if calls[0].PPR == 0 {
					t.Error("no PPR on the line")
				}
			}},
		{name: "page given up in ECM is not resent", remote: modemsim.Remote{Caps: ecmCaps, RTN: map[int]int{2: 1}}, cfg: class2.Config{RTNRetries: 1}, category: t30.CatRejected, confirmed: 1},
	}
	for _, class := range []string{"2", "2.0"} {
		for _, tt := range tests {
			t.Run(class+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				tt.remote.Decode = decodeRows
				port, sim := modemsim.Pipe(ctx, tt.remote)
				var log strings.Builder
				ch := at.New(port, at.Options{Trace: func(d, s string) { fmt.Fprintf(&log, "%s %s\n", d, s) }})
				defer ch.Close()
				defer func() {
					if t.Failed() {
						t.Log(log.String())
					}
				}()
				if r, err := ch.Command(ctx, "+FCLASS="+class, time.Second); err != nil || !r.OK() {
					t.Fatalf("+FCLASS=%s: %v %v", class, r, err)
				}
				cfg := tt.cfg
				cfg.Class, cfg.LocalID, cfg.Fine, cfg.MR, cfg.Timeout = class, "+1 555 0001", true, true, 5*time.Second
				res, err := class2.Send(ctx, ch, "5550100", bitmapPages(t, ccitt), cfg)
				var e *t30.Error
				if tt.category == "" {
					if err != nil {
						t.Fatal(err)
					}
					if !strings.HasPrefix(res.Params.String(), tt.want) {
						t.Errorf("session %q, want %q", res.Params, tt.want)
					}
				} else if !errors.As(err, &e) || e.Category != tt.category {
					t.Fatalf("got %v, want %s", err, tt.category)
				}
				got := sim.Pages()
				if len(got) != tt.confirmed {
					t.Fatalf("the far end has %d pages, want %d", len(got), tt.confirmed)
				}
				for i, p := range got {
					if p.Err != nil {
						t.Errorf("page %d: %v", i+1, p.Err)
					} else if d := samePixels(ccitt[i], p.Rows); d != "" {
						t.Errorf("page %d (%s): %s", i+1, p.Params, d)
					}
				}
				if tt.check != nil {
					tt.check(t, sim.Calls(), sim.Commands())
				}
			})
		}
	}
}

func hasCommand(cmds []string, c string) bool {
	for _, x := range cmds {
		if strings.Contains(strings.ToUpper(x), c) {
			return true
		}
	}
	return false
}

func TestParseRanges(t *testing.T) {
	tests := []struct {
		in          string
		mmr, ecm256 bool
		err         bool
	}{
		{in: "(0,1),(0-5),(0-2),(0-2),(0-3),(0-2),(0),(0-7)", mmr: true, ecm256: true},
		{in: "(0,1),(0-5),(0-2),(0-2),(0,1),(0),(0),(0-7)"},
		{in: "(0,1),(0-3),(0),(0-2),(0-1),0,0,(0-7)"},
		{in: "(0,1),(0-5),(0-2),(0-2),(0,1,3),(0,2),(0),(0-7)", mmr: true, ecm256: true},
		{in: "(0,1", err: true},
		{in: "(x)", err: true},
	}
	for _, tt := range tests {
		r, err := class2.ParseRanges(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("ParseRanges(%q): %v", tt.in, err)
			continue
		}
		if err != nil {
			continue
		}
		if r.Has(4, 3) != tt.mmr || r.Has(5, 2) != tt.ecm256 || !r.Has(4, 0) {
			t.Errorf("ParseRanges(%q) = %v: MMR %v, ECM 256 %v", tt.in, r, r.Has(4, 3), r.Has(5, 2))
		}
	}
}
