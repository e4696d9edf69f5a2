package inbound

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

// recAcceptor is the real spool, with a list of the jobs it took.
type recAcceptor struct {
	sp   *spool.Spool
	mu   sync.Mutex
	jobs []*linedriver.Job
}

func (a *recAcceptor) Accept(ctx context.Context, connector, sourceID string, jobs []*linedriver.Job) (bool, error) {
	dup, err := a.sp.Accept(ctx, connector, sourceID, jobs)
	if err == nil && !dup {
		a.mu.Lock()
		a.jobs = append(a.jobs, jobs...)
		a.mu.Unlock()
	}
	return dup, err
}

func (a *recAcceptor) taken() []*linedriver.Job {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*linedriver.Job(nil), a.jobs...)
}

type site struct {
	dir    string
	acc    *recAcceptor
	router *Router
}

func newSite(t *testing.T) *site {
	t.Helper()
	dir := t.TempDir()
	sp, err := spool.Open(filepath.Join(dir, "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	r, err := Compile(&config.Config{File: filepath.Join(dir, "mediagw.yaml")}, filepath.Join(dir, "unrouted"))
	if err != nil {
		t.Fatal(err)
	}
	return &site{dir: dir, acc: &recAcceptor{sp: sp}, router: r}
}

func (s *site) store() *Store {
	return New(filepath.Join(s.dir, "inbound"), s.acc, func() *Router { return s.router }, nil)
}

// pages renders a text of n pages at the resolution, the pages a far end
// would send.
func pages(t *testing.T, n int, res render.Resolution) []*render.Page {
	t.Helper()
	var text strings.Builder
	for i := range n {
		if i > 0 {
			text.WriteString("\f")
		}
		fmt.Fprintf(&text, "Page %d of a received fax\n\nThe quick brown fox jumps over the lazy dog.\n", i+1)
	}
	ps, err := render.Render(context.Background(), []render.Document{{Name: "t.txt", MediaType: "text/plain", Data: []byte(text.String())}},
		render.Options{Resolution: res})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != n {
		t.Fatalf("rendered %d pages, want %d", len(ps), n)
	}
	return ps
}

func inboundPage(p *render.Page) *linedriver.InboundPage {
	ip := &linedriver.InboundPage{Width: p.Width, Height: p.Height, XRes: 204, YRes: p.Resolution.DPI()}
	for y := range p.Height {
		ip.Rows = append(ip.Rows, bytes.Clone(p.Row(y)))
	}
	return ip
}

func testCall(id string) *linedriver.Call {
	return &linedriver.Call{ID: id, Driver: "modem", Device: "/dev/ttyIAX1", CalledNumber: "1001", CallerNumber: "+1 555 0199",
		RemoteID: " +1 555 0199 ACME ", Started: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC), Params: "V.17 14400, fine, MMR, ECM",
		Log: "<- DIS\n-> DCS\n"}
}

// TestReceiveWholeFax: three pages in, one record out: both documents
// hold exactly the pages received, read by libtiff and ghostscript, the
// fields say who called and that the fax is whole, the folder is gone.
func TestReceiveWholeFax(t *testing.T) {
	s := newSite(t)
	st := s.store()
	ctx := context.Background()
	call := testCall("call-1")
	sent := pages(t, 3, render.Fine)
	if err := st.Begin(ctx, call); err != nil {
		t.Fatal(err)
	}
	for i, p := range sent {
		if err := st.Page(ctx, call, i+1, inboundPage(p)); err != nil {
			t.Fatal(err)
		}
		// On disk before Page returned: a page file per confirmed page.
		if _, err := os.Stat(filepath.Join(st.Dir(), call.ID, pageName(i+1))); err != nil {
			t.Fatalf("page %d not on disk after Page: %v", i+1, err)
		}
	}
	call.Log += "-> MCF\n<- DCN\n"
	if err := st.End(ctx, call, nil); err != nil {
		t.Fatal(err)
	}
	jobs := s.acc.taken()
	if len(jobs) != 1 || jobs[0].Driver != FolderDriver(UnroutedName) {
		t.Fatalf("jobs %v, want one for the unrouted folder (no routes configured)", jobs)
	}
	rec := jobs[0].Record
	want := map[string]string{"called_number": "1001", "caller_number": "+1 555 0199", "remote_id": "+1 555 0199 ACME",
		"pages": "3", "started": "2026-03-02T09:30:00Z", "params": "V.17 14400, fine, MMR, ECM", "incomplete": "", "route": UnroutedName}
	for k, v := range want {
		if rec.Fields[k] != v {
			t.Errorf("field %s = %q, want %q", k, rec.Fields[k], v)
		}
	}
	if rec.SourceID != call.ID || rec.Connector != "modem" || !strings.Contains(rec.CallLog, "<- DCN") {
		t.Errorf("record source %q connector %q log %q", rec.SourceID, rec.Connector, rec.CallLog)
	}
	checkDocuments(t, &rec, sent)
	if _, err := os.Stat(filepath.Join(st.Dir(), call.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the call's folder is still there: %v", err)
	}
}

// checkDocuments reads the record's TIFF with libtiff (tiffinfo for its
// pages and coding, tiffcp to decode it) and renders its PDF with
// ghostscript; every page must equal the page sent, row for row.
func checkDocuments(t *testing.T, rec *linedriver.Record, sent []*render.Page) {
	t.Helper()
	if len(rec.Documents) != 2 || rec.Documents[0].MediaType != "application/pdf" || rec.Documents[1].MediaType != "image/tiff" {
		t.Fatalf("documents %v, want a PDF and a TIFF", rec.Documents)
	}
	dir := t.TempDir()
	tif := filepath.Join(dir, "fax.tiff")
	os.WriteFile(tif, rec.Documents[1].Data, 0o644)
	info, err := exec.Command(testenv.LookPath(t, "tiffinfo"), tif).CombinedOutput()
	if err != nil {
		t.Fatalf("tiffinfo: %v\n%s", err, info)
	}
	if n := strings.Count(string(info), "TIFF Directory"); n != len(sent) {
		t.Errorf("tiffinfo sees %d pages, want %d", n, len(sent))
	}
	if n := strings.Count(string(info), "Compression Scheme: CCITT Group 3"); n != len(sent) {
		t.Errorf("%d of %d pages coded MH (CCITT Group 3):\n%s", n, len(sent), info)
	}
	raw := filepath.Join(dir, "raw.tiff")
	if out, err := exec.Command(testenv.LookPath(t, "tiffcp"), "-c", "none", tif, raw).CombinedOutput(); err != nil {
		t.Fatalf("tiffcp: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(raw)
	frames, err := faxtiff.Read(b, faxtiff.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != len(sent) {
		t.Fatalf("libtiff decoded %d pages, want %d", len(frames), len(sent))
	}
	for i, f := range frames {
		samePage(t, fmt.Sprintf("TIFF page %d", i+1), f.Bitmap.Width, f.Bitmap.Height, f.Bitmap.Row, sent[i])
	}

	pdf := filepath.Join(dir, "fax.pdf")
	os.WriteFile(pdf, rec.Documents[0].Data, 0o644)
	res := sent[0].Resolution
	out, err := exec.Command(testenv.LookPath(t, "gs"), "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pbmraw",
		fmt.Sprintf("-r204x%d", int(res.DPI())), "-o", filepath.Join(dir, "p%d.pbm"), pdf).CombinedOutput()
	if err != nil {
		t.Fatalf("ghostscript cannot read the PDF: %v\n%s", err, out)
	}
	for i, want := range sent {
		got := readPBM(t, filepath.Join(dir, fmt.Sprintf("p%d.pbm", i+1)))
		samePage(t, fmt.Sprintf("PDF page %d", i+1), got.Width, got.Height, got.Row, want)
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("p%d.pbm", len(sent)+1))); err == nil {
		t.Errorf("the PDF has more pages than the %d received", len(sent))
	}
}

func samePage(t *testing.T, what string, w, h int, row func(int) []byte, want *render.Page) {
	t.Helper()
	if w != want.Width || h != want.Height {
		t.Errorf("%s: %d×%d, received %d×%d", what, w, h, want.Width, want.Height)
		return
	}
	diff := 0
	for y := range h {
		if !bytes.Equal(row(y), want.Row(y)) {
			diff++
		}
	}
	if diff != 0 {
		t.Errorf("%s: %d of %d rows differ from the page received", what, diff, h)
	}
}

// readPBM reads ghostscript's raw PBM (P4).
func readPBM(t *testing.T, path string) *render.Page {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var fields []string
	for len(fields) < 3 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: not a raw PBM: %v", path, err)
		}
		if line[0] != '#' {
			fields = append(fields, strings.Fields(line)...)
		}
	}
	var w, h int
	if _, err := fmt.Sscanf(strings.Join(fields, " "), "P4 %d %d", &w, &h); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	p := render.NewPage(w, h, render.Fine)
	if _, err := io.ReadFull(r, p.Pix); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCutCall: a call cut after page 2 (End with an error), and a call an
// earlier run left on disk (the gateway died after page 2): both deliver
// pages 1–2, marked incomplete in the fields.
func TestCutCall(t *testing.T) {
	ctx := context.Background()
	sent := pages(t, 2, render.Standard)
	for _, tc := range []struct {
		name   string
		finish func(t *testing.T, s *site, st *Store, call *linedriver.Call)
		reason string
	}{
		{"End with the receiver's error", func(t *testing.T, s *site, st *Store, call *linedriver.Call) {
			if err := st.End(ctx, call, errors.New("the far end hung up during page 3")); err != nil {
				t.Fatal(err)
			}
		}, "the call was cut after page 2 (the far end hung up during page 3)"},
		{"the gateway died: the next run's Recover", func(t *testing.T, s *site, st *Store, call *linedriver.Call) {
			// A crash leaves a page written halfway (its temporary file).
			os.WriteFile(filepath.Join(st.Dir(), call.ID, ".page-003.tiff.tmp-1"), []byte("II*\x00"), 0o600)
			next := s.store()
			next.Now = func() time.Time { return call.Started.Add(3 * time.Hour) } // the restart, hours later
			if err := next.Recover(ctx); err != nil {
				t.Fatal(err)
			}
		}, "the call was cut after page 2 (the gateway stopped during the call)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			st := s.store()
			call := testCall("call-cut")
			st.Now = func() time.Time { return call.Started.Add(40 * time.Second) }
			if err := st.Begin(ctx, call); err != nil {
				t.Fatal(err)
			}
			for i, p := range sent {
				if err := st.Page(ctx, call, i+1, inboundPage(p)); err != nil {
					t.Fatal(err)
				}
			}
			tc.finish(t, s, st, call)
			jobs := s.acc.taken()
			if len(jobs) != 1 {
				t.Fatalf("%d jobs, want 1", len(jobs))
			}
			rec := jobs[0].Record
			if rec.Fields["incomplete"] != tc.reason || rec.Fields["pages"] != "2" || rec.Fields["duration"] != "40s" {
				t.Errorf("incomplete %q, pages %s, duration %s; want %q, 2, 40s (until the last page)",
					rec.Fields["incomplete"], rec.Fields["pages"], rec.Fields["duration"], tc.reason)
			}
			checkDocuments(t, &rec, sent)
			if ents, _ := os.ReadDir(st.Dir()); len(ents) != 0 {
				t.Errorf("left in the inbound folder: %v", ents)
			}
		})
	}
}

// TestLostPage: a page file damaged on disk is left out and the fax is
// marked incomplete, naming it; the other pages are delivered.
func TestLostPage(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	st := s.store()
	call := testCall("call-lost")
	sent := pages(t, 2, render.Fine)
	st.Begin(ctx, call)
	for i, p := range sent {
		if err := st.Page(ctx, call, i+1, inboundPage(p)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(st.Dir(), call.ID, pageName(1)), []byte("II*\x00 damaged"), 0o600)
	if err := st.End(ctx, call, nil); err != nil {
		t.Fatal(err)
	}
	jobs := s.acc.taken()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs, want 1", len(jobs))
	}
	rec := jobs[0].Record
	if rec.Fields["pages"] != "1" || rec.Fields["incomplete"] != "page 1 of 2 could not be read back from disk" {
		t.Errorf("pages %s, incomplete %q", rec.Fields["pages"], rec.Fields["incomplete"])
	}
	checkDocuments(t, &rec, sent[1:])
}

// TestRecoverAcceptedCall: a run that died between the spool's accept and
// the folder's removal leaves the folder; the next run removes it without
// a second job. A call cut inside Begin (no page) leaves nothing.
func TestRecoverAcceptedCall(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	st := s.store()
	call := testCall("call-twice")
	st.Begin(ctx, call)
	st.Page(ctx, call, 1, inboundPage(pages(t, 1, render.Fine)[0]))
	saved := t.TempDir()
	if out, err := exec.Command("cp", "-a", filepath.Join(st.Dir(), call.ID), saved).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if err := st.End(ctx, call, nil); err != nil {
		t.Fatal(err)
	}
	os.Rename(filepath.Join(saved, call.ID), filepath.Join(st.Dir(), call.ID))
	os.Mkdir(filepath.Join(st.Dir(), "call-nopage"), 0o700) // cut before call.json was written
	if err := s.store().Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(s.acc.taken()); n != 1 {
		t.Errorf("%d jobs, want 1: the call was accepted twice", n)
	}
	if ents, _ := os.ReadDir(st.Dir()); len(ents) != 0 {
		t.Errorf("left in the inbound folder: %v", ents)
	}
}

// TestPageRefused: what the store refuses, with ErrCall; a page sent again
// replaces the stored one.
func TestPageRefused(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	st := s.store()
	p := inboundPage(pages(t, 1, render.Fine)[0])
	if err := st.Begin(ctx, &linedriver.Call{ID: "../escape", Driver: "modem"}); !errors.Is(err, ErrCall) {
		t.Errorf("Begin with id ../escape: %v, want ErrCall", err)
	}
	call := testCall("call-bad")
	if err := st.Page(ctx, call, 1, p); !errors.Is(err, ErrCall) {
		t.Errorf("Page before Begin: %v, want ErrCall", err)
	}
	st.Begin(ctx, call)
	short := *p
	short.Rows = short.Rows[:10]
	huge := &linedriver.InboundPage{Width: 1728, Height: 20000, Rows: make([][]byte, 20000)}
	for _, tc := range []struct {
		name string
		n    int
		page *linedriver.InboundPage
	}{
		{"page 2 before page 1", 2, p},
		{"page 0", 0, p},
		{"fewer rows than its height", 1, &short},
		{"a page of 34 million pels", 1, huge},
	} {
		if err := st.Page(ctx, call, tc.n, tc.page); !errors.Is(err, ErrCall) {
			t.Errorf("%s: %v, want ErrCall", tc.name, err)
		}
	}
	for range 2 { // the far end repeats page 1
		if err := st.Page(ctx, call, 1, p); err != nil {
			t.Fatal(err)
		}
	}
	if n := countPages(filepath.Join(st.Dir(), call.ID)); n != 1 {
		t.Errorf("%d pages stored, want 1", n)
	}
	if err := st.Begin(ctx, call); !errors.Is(err, ErrCall) {
		t.Errorf("a second Begin of a call in progress: %v, want ErrCall", err)
	}
}

// BenchmarkPage: the time between a page received and its MCF, as far as
// the gateway is concerned (MMR coding, the page file and call.json written
// and fsync'd), for a fine text page.
func BenchmarkPage(b *testing.B) {
	dir := b.TempDir()
	st := New(filepath.Join(dir, "inbound"), nil, nil, nil)
	ps, err := render.Render(context.Background(), []render.Document{{Name: "t.txt", MediaType: "text/plain",
		Data: bytes.Repeat([]byte("The quick brown fox jumps over the lazy dog. 0123456789\n"), 60)}}, render.Options{Resolution: render.Fine})
	if err != nil {
		b.Fatal(err)
	}
	p := inboundPage(ps[0])
	call := testCall("bench")
	if err := st.Begin(context.Background(), call); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := st.Page(context.Background(), call, i+1, p); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTwoCallsOneID: a second call under the id of a call in progress (a
// receiver's mistake) or of a call an earlier run left on disk is refused,
// and its Page and End touch nothing of the first: the first call's pages
// are delivered whole, once.
func TestTwoCallsOneID(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	st := s.store()
	sent := pages(t, 2, render.Fine)
	first, second := testCall("call-x"), testCall("call-x")
	second.RemoteID, second.Started = "OTHER", second.Started.Add(time.Second)
	if err := st.Begin(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := st.Page(ctx, first, 1, inboundPage(sent[0])); err != nil {
		t.Fatal(err)
	}
	if err := st.Begin(ctx, second); !errors.Is(err, ErrCall) {
		t.Errorf("Begin of a second call with the id of one in progress: %v, want ErrCall", err)
	}
	other := pages(t, 1, render.Standard)[0]
	if err := st.Page(ctx, second, 1, inboundPage(other)); !errors.Is(err, ErrCall) {
		t.Errorf("Page of the refused call: %v, want ErrCall", err)
	}
	if err := st.End(ctx, second, errors.New("refused")); !errors.Is(err, ErrCall) {
		t.Errorf("End of the refused call: %v, want ErrCall", err)
	}
	if n := len(s.acc.taken()); n != 0 {
		t.Fatalf("%d jobs after the refused call ended, want none: the first call is still in progress", n)
	}
	// The receiver hands a copy of the call at each step (its log grew).
	again := *first
	again.Log += "<- MPS\n"
	if err := st.Page(ctx, &again, 2, inboundPage(sent[1])); err != nil {
		t.Fatalf("page 2 of the first call, handed as a copy: %v", err)
	}

	// The gateway dies; the next run gets a call with the same id before
	// the left folder was finished.
	next := s.store()
	third := testCall("call-x")
	if err := next.Begin(ctx, third); !errors.Is(err, ErrCall) {
		t.Errorf("Begin of a call with the id of a call left on disk: %v, want ErrCall", err)
	}
	if err := next.End(ctx, third, errors.New("refused")); !errors.Is(err, ErrCall) {
		t.Errorf("End of the refused call: %v, want ErrCall", err)
	}
	if err := next.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	jobs := s.acc.taken()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs, want the first call's", len(jobs))
	}
	rec := jobs[0].Record
	if rec.Fields["remote_id"] != "+1 555 0199 ACME" {
		t.Errorf("remote_id %q, want the first call's", rec.Fields["remote_id"])
	}
	checkDocuments(t, &rec, sent)
}

// TestRecoverWithoutCallFile: a call left by a dead gateway whose call.json
// cannot be read is still delivered, dated and routed by its pages' times
// (the first page's write for its start, the last one's for its end), not
// as a call of the year 1.
func TestRecoverWithoutCallFile(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	r, _, err := load(t, routesYAML) // a night route (18:00-08:00) and a default
	if err != nil {
		t.Fatal(err)
	}
	s.router = r
	st := s.store()
	call := testCall("call-nofile") // Monday 10:30 in Berlin
	sent := pages(t, 2, render.Standard)
	if err := st.Begin(ctx, call); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(st.Dir(), call.ID)
	for i, p := range sent {
		if err := st.Page(ctx, call, i+1, inboundPage(p)); err != nil {
			t.Fatal(err)
		}
		at := call.Started.Add(time.Duration(20*(i+1)) * time.Second)
		if err := os.Chtimes(filepath.Join(dir, pageName(i+1)), at, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "call.json"), []byte("{\"id\": \"call-nof"), 0o600); err != nil {
		t.Fatal(err)
	}
	next := s.store()
	next.Now = func() time.Time { return call.Started.Add(3 * time.Hour) }
	if err := next.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	jobs := s.acc.taken()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs, want 1", len(jobs))
	}
	rec := jobs[0].Record
	want := map[string]string{"route": "default", "started": call.Started.Add(20 * time.Second).UTC().Format(time.RFC3339),
		"duration": "20s", "pages": "2"}
	for k, v := range want {
		if rec.Fields[k] != v {
			t.Errorf("field %s = %q, want %q", k, rec.Fields[k], v)
		}
	}
	checkDocuments(t, &rec, sent)
}
