package console

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
)

// TestReceivedFaxJobPage: the job of a received fax shows its pages as
// thumbnails (from its TIFF, not twice from the PDF beside it) and the T.30
// log of the call it came in on.
func TestReceivedFaxJobPage(t *testing.T) {
	h, plan := lineHost(t) // not run: the job stays queued

	ctx := context.Background()
	call := &linedriver.Call{ID: "call-1", Driver: "line", RemoteID: "ACME", Started: time.Now(),
		Log: "-> CSI +1 555 0100\n-> DIS V.17\n<- TSI ACME\n<- DCS V.17 14400\n"}
	ps, err := render.Render(ctx, []render.Document{{Name: "a.txt", MediaType: "text/plain", Data: []byte("one\fand two")}}, render.Options{})
	if err != nil || len(ps) != 2 {
		t.Fatalf("render: %v, %d pages", err, len(ps))
	}
	in := h.Inbound()
	if err := in.Begin(ctx, call); err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		ip := &linedriver.InboundPage{Width: p.Width, Height: p.Height, XRes: 204, YRes: p.Resolution.DPI()}
		for y := range p.Height {
			ip.Rows = append(ip.Rows, bytes.Clone(p.Row(y)))
		}
		if err := in.Page(ctx, call, i+1, ip); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.End(ctx, call, nil); err != nil {
		t.Fatal(err)
	}
	jobs, err := h.Spool().Jobs(ctx, spool.Query{})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs %v, %v; want the received fax's", jobs, err)
	}
	id := jobs[0].ID

	b := NewHostBackend(h, plan)
	page, err := b.Job(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Thumbs) != 2 {
		t.Errorf("%d thumbnails, want the 2 pages received", len(page.Thumbs))
	}
	if strings.Join(page.CallLog, "|") != "-> CSI +1 555 0100|-> DIS V.17|<- TSI ACME|<- DCS V.17 14400" {
		t.Errorf("call log %q", page.CallLog)
	}
	srv, err := New(b, Options{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/jobs/"+id, nil)
	req.RemoteAddr = "127.0.0.1:5000"
	srv.ServeHTTP(rec, req)
	body := rec.Body.String()
	for _, want := range []string{"T.30 log of the received call", "&lt;- DCS V.17 14400", `src="/jobs/` + id + `/pages/2"`, "remote_id"} {
		if !strings.Contains(body, want) {
			t.Errorf("the job page lacks %q (status %d)", want, rec.Code)
		}
	}
}
