package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/mediagw/mediagw/datamap"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/plugin"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2026, 3, 4, 10, 11, 12, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// recSender is the test Sender: it keeps what it was given, or fails as told.
type recSender struct {
	mu   sync.Mutex
	got  []*plugin.OutgoingMessage
	fail error
}

func (s *recSender) Send(_ context.Context, m *plugin.OutgoingMessage) (plugin.SendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return plugin.SendResult{}, s.fail
	}
	s.got = append(s.got, m)
	return plugin.SendResult{MessageID: "server-id"}, nil
}

func newService(t *testing.T, n *datamap.NotifySpec) *Service {
	t.Helper()
	ts, err := LoadTemplates(n, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := NewService(quiet())
	s.Now = func() time.Time { return t0 }
	s.SetConfigs(map[string]*Config{"inbox": {Notify: withDefaults(n), Templates: ts}})
	return s
}

func withDefaults(n *datamap.NotifySpec) *datamap.NotifySpec {
	m, err := datamap.Compile("m", datamap.Spec{Notify: n, Fields: []datamap.FieldSpec{{Name: "x", From: []datamap.SourceSpec{{Source: "subject"}}, Default: new(string)}},
		Routes: []datamap.RouteSpec{{Drivers: []string{"fax"}}}})
	if err != nil {
		panic(err)
	}
	return m.Notify()
}

func faxJob() *linedriver.Job {
	return &linedriver.Job{ID: "20260304T101000.000Z-aabbcc.fax", Driver: "fax", Attempt: 2, Record: linedriver.Record{
		ID: "20260304T101000.000Z-aabbcc", SourceID: "maildir:inbox@1", Connector: "inbox",
		Fields:   map[string]string{"fax_number": "+12015550101", "fax_number_as_written": "(201) 555-0101", "recipient": "Dr. Bob"},
		Received: t0.Add(-time.Minute),
		Origin: &linedriver.Origin{MessageID: "orig-1@example.org", References: "<thread-0@example.org>", Subject: "Lab results",
			From: "alice@example.org", To: "fax@example.com"},
		Documents: []linedriver.Document{{Name: "a.txt", MediaType: "text/plain", Data: []byte("hi")}},
	}}
}

var allEvents = &datamap.NotifySpec{Events: datamap.Events,
	Formats: "Put the number in the subject as Fax: +1 555 123 4567, or send to 5551234567@fax.example.com."}

// TestGolden renders each event's built-in report and compares the whole
// message with testdata/golden/<event>.eml (go test -update rewrites them).
func TestGolden(t *testing.T) {
	delivered := linedriver.Done(map[string]string{"pages": "3", "duration": "1m2.5s", "speed": "14400", "remote_id": "+1 555 0101 LAB", "resolution": "fine"})
	cases := []struct {
		event string
		make  func(s *Service) []*linedriver.Job
	}{
		{"delivered", func(s *Service) []*linedriver.Job { return jobs(s.FollowUps(faxJob(), delivered)) }},
		{"failed", func(s *Service) []*linedriver.Job {
			return jobs(s.FollowUps(faxJob(), linedriver.Fail("busy", "BUSY (gave up after 6 attempts)")))
		}},
		{"rejected", func(s *Service) []*linedriver.Job {
			rec := faxJob().Record
			rec.Fields = nil
			return jobs(s.Rejected(&rec, &datamap.Rejection{Field: "fax_number", Reason: "no fax number found in To, Subject or X-Fax-Number",
				Tried: []datamap.Tried{
					{Source: "Subject", Held: "Order for ward 3", Rule: "regex `(?P<value>\\+?[0-9 ]{6,})`"},
					{Source: "X-Fax-Number", Absent: true, Rule: "header"},
				}}))
		}},
	}
	for _, c := range cases {
		t.Run(c.event, func(t *testing.T) {
			s := newService(t, allEvents)
			snd := &recSender{}
			s.SetSender("inbox", snd, true, true)
			js := c.make(s)
			if len(js) != 1 {
				t.Fatalf("%d report jobs, want 1", len(js))
			}
			d := NewDriver("inbox", s, quiet())
			if o := d.Deliver(context.Background(), js[0], func(linedriver.Progress) {}); o.Result != linedriver.Delivered {
				t.Fatalf("Deliver = %+v", o)
			}
			if len(snd.got) != 1 || len(snd.got[0].To) != 1 || snd.got[0].To[0] != "alice@example.org" {
				t.Fatalf("sent %+v, want one message to alice@example.org", snd.got)
			}
			raw := snd.got[0].Raw
			golden := filepath.Join("testdata", "golden", c.event+".eml")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				os.WriteFile(golden, raw, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if c.event == "rejected" && (!bytes.Contains(raw, []byte(`- Subject: "Order for ward 3"`)) || bytes.Contains(raw, []byte("regex"))) {
				t.Errorf("the rejection report should say where the gateway looked, without the map's rules:\n%s", raw)
			}
			if !bytes.Equal(raw, want) {
				t.Fatalf("report differs from %s (go test -update rewrites it):\n%s", golden, raw)
			}
			checkHeaders(t, raw, js[0].Record.ID+"/"+c.event)
		})
	}
}

func jobs(f []spool.FollowUp) []*linedriver.Job {
	var out []*linedriver.Job
	for _, x := range f {
		out = append(out, x.Job)
	}
	return out
}

// checkHeaders reads the report as a mail client would.
func checkHeaders(t *testing.T, raw []byte, tag string) {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header
	if v, _ := h.MsgIDList("In-Reply-To"); len(v) != 1 || v[0] != "orig-1@example.org" {
		t.Errorf("In-Reply-To = %v", v)
	}
	if v, _ := h.MsgIDList("References"); strings.Join(v, " ") != "thread-0@example.org orig-1@example.org" {
		t.Errorf("References = %v", v)
	}
	if v := h.Get("Auto-Submitted"); v != "auto-replied" {
		t.Errorf("Auto-Submitted = %q", v)
	}
	if v := h.Get("X-Mediagw-Report"); v != tag {
		t.Errorf("X-Mediagw-Report = %q, want %q", v, tag)
	}
	if id, _ := h.MessageID(); !strings.HasSuffix(id, "@example.com") || !strings.Contains(id, ".report.") {
		t.Errorf("Message-ID = %q, want <job id>@<domain of From>", id)
	}
	if from, _ := h.AddressList("From"); len(from) != 1 || from[0].Address != "fax@example.com" {
		t.Errorf("From = %v, want the gateway's mailbox", from)
	}
}

func TestDeliverOutcomes(t *testing.T) {
	cases := []struct {
		name      string
		running   bool
		canSend   bool
		fail      error
		want      linedriver.Result
		uncounted bool
		category  string
	}{
		{"sent", true, true, nil, linedriver.Delivered, false, ""},
		{"plugin not running", false, false, nil, linedriver.Temporary, true, "connector_down"},
		{"plugin cannot send", true, false, nil, linedriver.Permanent, false, "send_unsupported"},
		{"throttled", true, true, &plugin.SendFailure{Category: plugin.SendThrottled, Temporary: true, Reason: "429"}, linedriver.Temporary, false, "throttled"},
		{"recipient refused", true, true, &plugin.SendFailure{Category: plugin.SendRecipientRefused, Reason: "550 no such user"}, linedriver.Permanent, false, "recipient_refused"},
		{"unsupported at the plugin", true, true, plugin.ErrSendUnsupported, linedriver.Permanent, false, "send_unsupported"},
		{"untyped error", true, true, errors.New("connection reset"), linedriver.Temporary, false, "send"},
		{"plugin gone mid-send", true, true, fmt.Errorf("send: %w", plugin.ErrStreamEnded), linedriver.Temporary, true, "connector_down"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newService(t, allEvents)
			// The job was queued before the plugin (re)started as the case says.
			js := jobs(s.FollowUps(faxJob(), linedriver.Done(map[string]string{"pages": "1"})))
			snd := &recSender{fail: c.fail}
			s.SetSender("inbox", snd, c.canSend, c.running)
			js[0].Attempt = 3
			o := NewDriver("inbox", s, quiet()).Deliver(context.Background(), js[0], func(linedriver.Progress) {})
			if o.Result != c.want || o.Uncounted != c.uncounted || o.Category != c.category {
				t.Fatalf("outcome %v/%s uncounted=%v (%s), want %v/%s uncounted=%v", o.Result, o.Category, o.Uncounted, o.Reason, c.want, c.category, c.uncounted)
			}
			if o.Result == linedriver.Temporary && !o.Uncounted && o.RetryAfter != 4*time.Minute {
				t.Fatalf("third attempt retries after %v, want 4m (1m doubling)", o.RetryAfter)
			}
		})
	}
}

func TestFollowUps(t *testing.T) {
	done := linedriver.Done(map[string]string{"pages": "1"})
	cases := []struct {
		name    string
		notify  datamap.NotifySpec
		job     func(j *linedriver.Job)
		outcome linedriver.Outcome
		wantTo  string // "" no report
		counts  Counts
	}{
		{"delivered to the sender", datamap.NotifySpec{Events: []string{"delivered"}}, nil, done, "alice@example.org", Counts{Queued: 1}},
		{"Reply-To wins over From", datamap.NotifySpec{Events: []string{"delivered"}}, func(j *linedriver.Job) { j.Record.Origin.ReplyTo = "desk@example.org" }, done, "desk@example.org", Counts{Queued: 1}},
		{"event not asked for", datamap.NotifySpec{Events: []string{"failed"}}, nil, done, "", Counts{}},
		{"temporary outcome", datamap.NotifySpec{Events: datamap.Events}, nil, linedriver.Retry("busy", "BUSY", time.Minute), "", Counts{}},
		{"fixed recipient", datamap.NotifySpec{Events: []string{"failed"}, To: "ops@example.com"}, nil, linedriver.Fail("busy", "BUSY"), "ops@example.com", Counts{Queued: 1}},
		{"auto-submitted sender", datamap.NotifySpec{Events: []string{"delivered"}}, func(j *linedriver.Job) { j.Record.Origin.AutoSubmitted = "auto-generated" }, done, "", Counts{Suppressed: 1}},
		{"auto-submitted, fixed recipient", datamap.NotifySpec{Events: []string{"delivered"}, To: "ops@example.com"}, func(j *linedriver.Job) { j.Record.Origin.AutoSubmitted = "auto-generated" }, done, "ops@example.com", Counts{Queued: 1}},
		{"our report, fixed recipient", datamap.NotifySpec{Events: []string{"delivered"}, To: "ops@example.com"}, func(j *linedriver.Job) { j.Record.Origin.Report = "x/failed" }, done, "", Counts{Suppressed: 1}},
		{"a report job", datamap.NotifySpec{Events: datamap.Events}, func(j *linedriver.Job) { j.Driver = DriverName("inbox") }, done, "", Counts{}},
		{"plugin cannot send", datamap.NotifySpec{Events: []string{"delivered"}}, func(j *linedriver.Job) { j.Record.Connector = "nosend" }, done, "", Counts{Off: 1}},
		{"rate limit", datamap.NotifySpec{Events: []string{"delivered"}, RateLimit: datamap.RateLimitSpec{Reports: 0}}, nil, done, "alice@example.org", Counts{Queued: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newService(t, &c.notify)
			s.SetConfigs(map[string]*Config{"inbox": s.conns["inbox"].cfg, "nosend": s.conns["inbox"].cfg})
			s.SetSender("nosend", nil, false, true)
			j := faxJob()
			if c.job != nil {
				c.job(j)
			}
			f := s.FollowUps(j, c.outcome)
			if c.wantTo == "" {
				if len(f) != 0 {
					t.Fatalf("a report was made: %+v", f[0].Job)
				}
			} else {
				if len(f) != 1 {
					t.Fatalf("%d reports, want 1", len(f))
				}
				var st jobState
				json.Unmarshal(f[0].Job.State, &st)
				if st.To != c.wantTo || f[0].Job.ID != j.Record.ID+".report."+st.Event || f[0].Key != j.Record.ID+"/"+st.Event {
					t.Fatalf("report job %s key %s to %s", f[0].Job.ID, f[0].Key, st.To)
				}
				if len(f[0].Job.Record.Documents) != 0 {
					t.Fatal("the report job carries the fax's documents without attach_pages")
				}
			}
			if got := s.Counts()[j.Record.Connector]; got != c.counts {
				t.Fatalf("counts %+v, want %+v", got, c.counts)
			}
		})
	}
}

func TestRateLimitCounts(t *testing.T) {
	s := newService(t, &datamap.NotifySpec{Events: []string{"delivered"}, RateLimit: datamap.RateLimitSpec{Reports: 3, Per: time.Hour}})
	made := 0
	for i := range 5 {
		j := faxJob()
		j.Record.ID += string(rune('a' + i))
		made += len(s.FollowUps(j, linedriver.Done(nil)))
	}
	if c := s.Counts()["inbox"]; made != 3 || c.RateLimited != 2 || c.Queued != 3 {
		t.Fatalf("made %d, counts %+v; want 3 made and 2 rate-limited", made, c)
	}
	s.Now = func() time.Time { return t0.Add(time.Hour) }
	if len(s.FollowUps(faxJob(), linedriver.Done(nil))) != 1 {
		t.Fatal("no report an hour later")
	}
}

func TestTemplateErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "nosubject.tmpl"), []byte(`{{define "body"}}x{{end}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "badfield.tmpl"), []byte(`{{define "subject"}}{{.NoSuchField}}{{end}}{{define "body"}}x{{end}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "ok.tmpl"), []byte(`{{define "subject"}}Sent {{.Pages}}{{end}}{{define "body"}}to {{.FaxNumber}}{{end}}`), 0o644)
	cases := []struct {
		file, want string
	}{
		{"nosubject.tmpl", `defines no "subject"`},
		{"badfield.tmpl", "NoSuchField"},
		{"missing.tmpl", "no such file"},
		{"ok.tmpl", ""},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			_, err := LoadTemplates(&datamap.NotifySpec{Events: datamap.Events, Templates: map[string]string{"delivered": c.file}}, dir)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("LoadTemplates: %v, want %q", err, c.want)
			}
		})
	}
}

// TestAttachPages: with attach_pages, a delivered report is multipart with
// the text and the PDF the driver made of the delivered job (base64).
func TestAttachPages(t *testing.T) {
	s := newService(t, &datamap.NotifySpec{Events: []string{"delivered"}, AttachPages: true})
	snd := &recSender{}
	s.SetSender("inbox", snd, true, true)
	fax := faxJob()
	fax.Accepted = t0.Add(-30 * time.Second)
	js := jobs(s.FollowUps(fax, linedriver.Done(map[string]string{"pages": "2"})))
	if len(js[0].Record.Documents) != 1 {
		t.Fatal("the report job does not keep the documents to make the pages of")
	}
	pdf := []byte("%PDF-1.4 the pages")
	d := NewDriver("inbox", s, quiet())
	var asked *linedriver.Job
	d.PDF = func(_ context.Context, j *linedriver.Job) ([]byte, error) { asked = j; return pdf, nil }
	if o := d.Deliver(context.Background(), js[0], func(linedriver.Progress) {}); o.Result != linedriver.Delivered {
		t.Fatalf("Deliver = %+v", o)
	}
	if asked.ID != fax.ID || asked.Driver != "fax" || !asked.Accepted.Equal(fax.Accepted) {
		t.Fatalf("pages asked of job %s/%s accepted %v, want the fax job as delivered", asked.ID, asked.Driver, asked.Accepted)
	}
	r, err := gomail.CreateReader(bytes.NewReader(snd.got[0].Raw))
	if err != nil {
		t.Fatal(err)
	}
	var text string
	var att []byte
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p.Body)
		switch h := p.Header.(type) {
		case *gomail.InlineHeader:
			text = string(b)
		case *gomail.AttachmentHeader:
			name, _ := h.Filename()
			ct, _, _ := h.ContentType()
			if ct != "application/pdf" || !strings.HasSuffix(name, ".pdf") || h.Get("Content-Transfer-Encoding") != "base64" {
				t.Errorf("attachment %s %s %s", name, ct, h.Get("Content-Transfer-Encoding"))
			}
			att = b
		}
	}
	if !bytes.Equal(att, pdf) || !strings.Contains(text, "attached as a PDF") {
		t.Fatalf("attachment %q, text:\n%s", att, text)
	}
	// When the pages cannot be made the report goes without them.
	d.PDF = func(context.Context, *linedriver.Job) ([]byte, error) { return nil, errors.New("gs missing") }
	snd.got = nil
	if o := d.Deliver(context.Background(), js[0], func(linedriver.Progress) {}); o.Result != linedriver.Delivered || bytes.Contains(snd.got[0].Raw, []byte("application/pdf")) {
		t.Fatalf("without pages: %+v", o)
	}
}

// TestNotifyRemoved: after a reload whose map has no notify section, the
// connector makes no more reports, though its plugin still runs.
func TestNotifyRemoved(t *testing.T) {
	s := newService(t, allEvents)
	s.SetSender("inbox", &recSender{}, true, true)
	s.SetConfigs(map[string]*Config{})
	if f := s.FollowUps(faxJob(), linedriver.Done(nil)); len(f) != 0 {
		t.Fatal("a report was made for a connector whose map no longer asks for them")
	}
	if got := s.Connectors(); len(got) != 0 {
		t.Fatalf("connectors with notify: %v", got)
	}
}

// TestSentEvent: every send is an activity event with its recipient and result, which
// the metrics count per connector and result.
func TestSentEvent(t *testing.T) {
	cases := []struct {
		fail error
		want string
	}{
		{nil, "result=ok"},
		{&plugin.SendFailure{Category: plugin.SendThrottled, Temporary: true}, "result=throttled"},
		{errors.New("reset"), "result=error"},
	}
	for _, c := range cases {
		var log bytes.Buffer
		s := newService(t, allEvents)
		js := jobs(s.FollowUps(faxJob(), linedriver.Done(nil)))
		s.SetSender("inbox", &recSender{fail: c.fail}, true, true)
		NewDriver("inbox", s, slog.New(slog.NewTextHandler(&log, nil))).Deliver(context.Background(), js[0], func(linedriver.Progress) {})
		if !strings.Contains(log.String(), "event=report_sent connector=inbox") || !strings.Contains(log.String(), c.want) ||
			!strings.Contains(log.String(), "to=alice@example.org") {
			t.Errorf("log lacks the report_sent event with %s and to=alice@example.org:\n%s", c.want, log.String())
		}
	}
}

// TestSkippedInReport: attachments the map left out are named in the
// delivered report, so the sender knows what did not go.
func TestSkippedInReport(t *testing.T) {
	s := newService(t, allEvents)
	snd := &recSender{}
	s.SetSender("inbox", snd, true, true)
	fax := faxJob()
	fax.Record.Skipped = []linedriver.Skipped{{Name: "data.zip", Type: "application/zip", Reason: "archives are not faxed"}}
	js := jobs(s.FollowUps(fax, linedriver.Done(map[string]string{"pages": "1"})))
	NewDriver("inbox", s, quiet()).Deliver(context.Background(), js[0], func(linedriver.Progress) {})
	if len(snd.got) != 1 || !bytes.Contains(snd.got[0].Raw, []byte("data.zip: archives are not faxed")) {
		t.Fatalf("the report does not name the skipped attachment:\n%s", snd.got[0].Raw)
	}
}

// TestNumberAsWritten: a report names the number as the sender wrote it,
// with the E.164 form beside it when the two differ.
func TestNumberAsWritten(t *testing.T) {
	for _, tc := range []struct{ e164, written, asWritten, shown string }{
		{"+12015550142", "(201) 555-0142", "(201) 555-0142", "(201) 555-0142 (+12015550142)"},
		{"+12015550142", "+12015550142", "+12015550142", "+12015550142"},
		{"+12015550142", "", "+12015550142", "+12015550142"},
		{"", "201 555\t0142", "201 555 0142", "201 555 0142"},
		{"", "", "", ""},
	} {
		if a, s := number(tc.e164, tc.written); a != tc.asWritten || s != tc.shown {
			t.Errorf("number(%q, %q) = %q, %q; want %q, %q", tc.e164, tc.written, a, s, tc.asWritten, tc.shown)
		}
	}
}
