package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/plugin"
)

func mailJob(t *testing.T) *linedriver.Job {
	t.Helper()
	st, err := json.Marshal(MailJob{From: "Fax <fax@gw.example>", To: []string{"a@example.com", "Desk <desk@example.com>"},
		Subject: "Fax from ACME, 2 pages", Body: "A fax came in.\n", Time: t0, Attach: []string{"fax-c1.pdf"}, Tag: "r1/fax_received"})
	if err != nil {
		t.Fatal(err)
	}
	return &linedriver.Job{ID: "r1.mail:inbox", Driver: MailDriverName("inbox"), Attempt: 1, State: st, Record: linedriver.Record{ID: "r1",
		Documents: []linedriver.Document{{Name: "fax-c1.pdf", MediaType: "application/pdf", Data: []byte("%PDF-1.4 pages")},
			{Name: "fax-c1.tiff", MediaType: "image/tiff", Data: []byte("II*\x00")}}}}
}

// TestMailDriver: the mail of a job goes to every recipient with the
// documents it names attached and no other, marked auto-generated.
func TestMailDriver(t *testing.T) {
	svc := NewService(quiet())
	snd := &recSender{}
	svc.SetSender("inbox", snd, true, true)
	d := NewMailDriver("inbox", svc, quiet())
	if d.Name() != "mail:inbox" {
		t.Errorf("name %q", d.Name())
	}
	o := d.Deliver(context.Background(), mailJob(t), func(linedriver.Progress) {})
	if o.Result != linedriver.Delivered || len(snd.got) != 1 {
		t.Fatalf("outcome %+v, %d sent", o, len(snd.got))
	}
	m := snd.got[0]
	if m.From != "fax@gw.example" || len(m.To) != 2 || m.To[0] != "a@example.com" || m.To[1] != "desk@example.com" {
		t.Errorf("envelope from %q to %v", m.From, m.To)
	}
	r, err := gomail.CreateReader(bytes.NewReader(m.Raw))
	if err != nil {
		t.Fatal(err)
	}
	if v := r.Header.Get("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("Auto-Submitted %q", v)
	}
	if id, _ := r.Header.MessageID(); id != "r1.mail-inbox@gw.example" {
		t.Errorf("Message-ID %q: want the job's, the same at every attempt", id)
	}
	var atts []string
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ah, ok := p.Header.(*gomail.AttachmentHeader); ok {
			name, _ := ah.Filename()
			atts = append(atts, name)
		}
	}
	if len(atts) != 1 || atts[0] != "fax-c1.pdf" {
		t.Errorf("attachments %v, want the PDF only", atts)
	}
}

// TestMailWaitsForItsConnector: a mail made while the connector's plugin is
// not running waits for it (up to startWait) instead of being put off by a
// downRetry; a plugin that does not come is an uncounted connector_down.
func TestMailWaitsForItsConnector(t *testing.T) {
	for _, tc := range []struct {
		name    string
		upAfter time.Duration // 0: never
		want    linedriver.Result
		took    time.Duration
	}{
		{"the plugin comes up after 4 s", 4 * time.Second, linedriver.Delivered, 4 * time.Second},
		{"the plugin stays down", 0, linedriver.Temporary, startWait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				svc := NewService(quiet())
				snd := &recSender{}
				if tc.upAfter > 0 {
					time.AfterFunc(tc.upAfter, func() { svc.SetSender("other", nil, false, true); svc.SetSender("inbox", snd, true, true) })
				}
				start := time.Now()
				o := NewMailDriver("inbox", svc, quiet()).Deliver(context.Background(), mailJob(t), func(linedriver.Progress) {})
				if o.Result != tc.want || time.Since(start) != tc.took {
					t.Errorf("outcome %v %s after %s, want %v after %s", o.Result, o.Category, time.Since(start), tc.want, tc.took)
				}
				if o.Result == linedriver.Temporary && (o.Category != "connector_down" || !o.Uncounted || o.RetryAfter != downRetry) {
					t.Errorf("outcome %+v, want an uncounted connector_down in %s", o, downRetry)
				}
			})
		})
	}
}

// TestMailSendFails: the connector's word decides between a retry and a
// failure for good.
func TestMailSendFails(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want linedriver.Result
		cat  string
	}{
		{&plugin.SendFailure{Category: plugin.SendRecipientRefused, Reason: "550 no such user"}, linedriver.Permanent, "recipient_refused"},
		{&plugin.SendFailure{Category: plugin.SendThrottled, Temporary: true, Reason: "421 later"}, linedriver.Temporary, "throttled"},
		{plugin.ErrSendUnsupported, linedriver.Permanent, "send_unsupported"},
	} {
		svc := NewService(quiet())
		svc.SetSender("inbox", &recSender{fail: tc.err}, true, true)
		o := NewMailDriver("inbox", svc, quiet()).Deliver(context.Background(), mailJob(t), func(linedriver.Progress) {})
		if o.Result != tc.want || o.Category != tc.cat {
			t.Errorf("%v: outcome %v %s, want %v %s", tc.err, o.Result, o.Category, tc.want, tc.cat)
		}
	}
}
