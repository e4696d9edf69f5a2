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
