package faxmodem

import (
	"context"
	"errors"
	"testing"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/modemsim"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
)

// A record's fax_ecm and fax_encoding override the driver's ecm and
// encoding for that fax, on Class 1 and Class 2.0 modems alike.
func TestJobOptions(t *testing.T) {
	ecm := &t30.Caps{CanReceive: true, V17: true, V29: true, V27ter: true, Fine: true, MR: true, ECM: true, MMR: true}
	tests := []struct {
		name     string
		extra    string // driver options
		fields   map[string]string
		encoding string
	}{
		{name: "driver's default", encoding: "MMR with ECM"},
		{name: "ECM off for this fax", fields: map[string]string{FieldECM: "off"}, encoding: "MR"},
		{name: "MH for this fax", fields: map[string]string{FieldEncoding: "MH"}, encoding: "MH with ECM"},
		{name: "both", fields: map[string]string{FieldECM: "Off", FieldEncoding: "mh"}, encoding: "MH"},
		{name: "ECM on over the driver's off", extra: `, "ecm": "off"`, fields: map[string]string{FieldECM: "on"}, encoding: "MMR with ECM"},
		{name: "empty fields keep the driver's", extra: `, "ecm": "off"`, fields: map[string]string{FieldECM: "", FieldEncoding: " "}, encoding: "MR"},
	}
	for _, classes := range []string{"0,1", "0,2.0"} {
		for _, tt := range tests {
			t.Run(classes+"/"+tt.name, func(t *testing.T) {
				d, l := newLab(t, map[string][]modemsim.Remote{"ttyS0": {{Caps: ecm, Classes: classes}}}, tt.extra)
				job := textJob(60)
				for k, v := range tt.fields {
					job.Record.Fields[k] = v
				}
				if err := d.Check(&job.Record); err != nil {
					t.Fatalf("Check: %v", err)
				}
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
}

// A bad value is refused at intake, naming the field and what it takes.
func TestJobOptionsRefusedByCheck(t *testing.T) {
	d, _ := newLab(t, map[string][]modemsim.Remote{"ttyS0": {{}}}, "")
	for _, f := range []map[string]string{{FieldECM: "yes"}, {FieldEncoding: "jbig"}, {FieldECM: "on", FieldEncoding: "g4"}} {
		job := textJob(1)
		for k, v := range f {
			job.Record.Fields[k] = v
		}
		err := d.Check(&job.Record)
		if !errors.Is(err, ErrJobOption) {
			t.Errorf("Check(%v) = %v, want ErrJobOption", f, err)
			continue
		}
		t.Log(err)
		// the same record reaching Deliver fails for good, without a call
		if out := d.Deliver(context.Background(), job, nil); out.Result != linedriver.Permanent || out.Category != "options" {
			t.Errorf("Deliver(%v) = %+v", f, out)
		}
	}
}

// A frame the far end never receives right: after four PPRs the sender
// lowers the speed with CTC, and at the lowest speed (or at once with
// fax_ecm_fallback: eor) ends the retransmission with EOR. The far end
// answers ERR and keeps the page without that frame; the fax is delivered
// with the frames lost and the degraded page named in the details.
func TestECMEndOfRetransmission(t *testing.T) {
	ecm := &t30.Caps{CanReceive: true, V17: true, V29: true, V27ter: true, Fine: true, MR: true, ECM: true, MMR: true}
	tests := []struct {
		name   string
		extra  string
		fields map[string]string
		ctc    int // speed changes before EOR
	}{
		{"eor for this fax", "", map[string]string{FieldECMFallback: "eor"}, 0},
		{"at the lowest speed", `, "modulations": ["V.27ter"]`, nil, 1}, // 4800, then 2400
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// frame 5 of the second page's block never arrives right
			remote := modemsim.Remote{Caps: ecm, CorruptFrames: map[int]int{5: 1000}}
			d, l := newLab(t, map[string][]modemsim.Remote{"ttyS0": {remote}}, tt.extra+`, "ecm_frame_size": 64`)
			job := textJob(10)
			for k, v := range tt.fields {
				job.Record.Fields[k] = v
			}
			if err := d.Check(&job.Record); err != nil {
				t.Fatal(err)
			}
			out := d.Deliver(context.Background(), job, nil)
			if out.Result != linedriver.Delivered {
				t.Fatalf("outcome %+v", out)
			}
			if out.Details["frames_lost"] != "1" || out.Details["pages_degraded"] != "1" {
				t.Errorf("details %v, want 1 frame lost on page 1", out.Details)
			}
			calls := l.sims[0].Calls()
			c := calls[len(calls)-1]
			if c.EOR != 1 || len(c.CTC) != tt.ctc || c.PPR != 4*(tt.ctc+1) {
				t.Errorf("EOR %d, CTC %v, PPR %d; want 1 EOR after %d CTC", c.EOR, c.CTC, c.PPR, tt.ctc)
			}
			if len(c.Pages) != 1 || c.Pages[0].FramesLost != 1 {
				t.Fatalf("far end kept %d pages (%+v)", len(c.Pages), c.Pages)
			}
			if !c.Ended {
				t.Error("no DCN after ERR to EOR-EOP")
			}
		})
	}
}

func TestECMFallbackRefused(t *testing.T) {
	d, _ := newLab(t, map[string][]modemsim.Remote{"ttyS0": {{}}}, "")
	job := textJob(1)
	job.Record.Fields[FieldECMFallback] = "never"
	if err := d.Check(&job.Record); !errors.Is(err, ErrJobOption) {
		t.Errorf("Check = %v, want ErrJobOption", err)
	}
}
