package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/mediagw/mediagw/datamap"
	"github.com/mediagw/mediagw/host/activity"
	"github.com/mediagw/mediagw/internal/backoff"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/plugin"
)

// Driver is the built-in line driver of one connector's reports: each job
// is one report, sent through the connector's plugin. It is not configured
// under drivers: the host runs one per connector whose map has notify.
type Driver struct {
	connector string
	svc       *Service
	log       *slog.Logger
	mail      bool // the connector's mail driver (received faxes), see mail.go
	// PDF, when set, makes the PDF of a delivered job's pages for
	// notify.attach_pages; job is the delivered job, rebuilt.
	PDF func(ctx context.Context, job *linedriver.Job) ([]byte, error)
}

var _ linedriver.Driver = (*Driver)(nil)

// NewDriver makes the report driver of a connector.
func NewDriver(connector string, svc *Service, log *slog.Logger) *Driver {
	return &Driver{connector: connector, svc: svc, log: log}
}

// Name is DriverName(connector), or MailDriverName(connector).
func (d *Driver) Name() string {
	if d.mail {
		return MailDriverName(d.connector)
	}
	return DriverName(d.connector)
}

// Check accepts every record: report jobs are made by the host only.
func (d *Driver) Check(*linedriver.Record) error { return nil }

// Slots: two reports of a connector go out at once.
func (d *Driver) Slots() int { return 2 }

// Close has nothing to release.
func (d *Driver) Close() error { return nil }

// Retry pauses: a minute, doubling, at most an hour; while the plugin is
// not running, half a minute without using up an attempt.
const (
	retryMin  = time.Minute
	retryMax  = time.Hour
	downRetry = 30 * time.Second
	// MaxAttempts is what the host gives the report dispatcher: with the
	// pauses above, about a day and a half of trying.
	MaxAttempts = 40
)

var retry = backoff.Policy{Min: retryMin, Max: retryMax}

// Deliver sends one report (or, for the mail driver, one mail).
func (d *Driver) Deliver(ctx context.Context, job *linedriver.Job, report func(linedriver.Progress)) linedriver.Outcome {
	if d.mail {
		return d.deliverMail(ctx, job, report)
	}
	cfg, snd, state := d.svc.sender(d.connector)
	if cfg == nil {
		return linedriver.Fail("notify_off", fmt.Sprintf("connector %s no longer has a notify section", d.connector))
	}
	if o, ok := d.senderDown(state); !ok {
		return o
	}
	var st jobState
	if err := json.Unmarshal(job.State, &st); err != nil {
		return linedriver.Fail("state", fmt.Sprintf("report job is unreadable: %v", err))
	}
	msg, err := d.compose(ctx, cfg, job, &st)
	if err != nil {
		return linedriver.Fail("template", err.Error())
	}
	raw, err := msg.Bytes()
	if err != nil {
		return linedriver.Fail("template", err.Error())
	}
	report(linedriver.Progress{Step: "send", Detail: st.To})
	res, err := snd.Send(ctx, &plugin.OutgoingMessage{From: bare(cfg.Notify.From), To: []string{st.To}, Raw: raw})
	d.sent(job, st.Event, st.To, err)
	if err != nil {
		o := d.sendFailed(job, st.To, err)
		if o.Result == linedriver.Permanent {
			d.svc.count(d.connector, func(c *Counts) { c.Failed++ })
		}
		return o
	}
	d.svc.count(d.connector, func(c *Counts) { c.Sent++ })
	id := res.MessageID
	if id == "" {
		id = msg.MessageID
	}
	details := map[string]string{"to": st.To, "message_id": id, "report": st.Event, "subject": msg.Subject,
		"after": d.svc.Now().Sub(st.Time).Round(time.Millisecond).String()}
	if st.Reason != "" {
		details["why"] = st.Reason // what the report told the sender went wrong
	}
	return linedriver.Done(details)
}

func (d *Driver) what() string {
	if d.mail {
		return "mails"
	}
	return "reports"
}

// senderDown is the outcome of an attempt while the connector cannot send;
// ok when it can.
func (d *Driver) senderDown(state senderState) (linedriver.Outcome, bool) {
	switch state {
	case senderOff:
		return linedriver.Fail("send_unsupported", fmt.Sprintf("%s for connector %s are off: its plugin cannot send", d.what(), d.connector)), false
	case senderUnknown:
		o := linedriver.Retry("connector_down", fmt.Sprintf("connector %s is not running", d.connector), downRetry)
		o.Uncounted = true
		return o, false
	}
	return linedriver.Outcome{}, true
}

// sendFailed is the outcome of a send that failed: for good when the
// connector says so, else tried again with backoff; a plugin that went
// away is waited for without using up an attempt.
func (d *Driver) sendFailed(job *linedriver.Job, to string, err error) linedriver.Outcome {
	var sf *plugin.SendFailure
	switch {
	case errors.As(err, &sf) && !sf.Temporary:
		return linedriver.Fail(string(sf.Category), fmt.Sprintf("%s to %s: %v", strings.TrimSuffix(d.what(), "s"), to, err))
	case errors.Is(err, plugin.ErrSendUnsupported):
		return linedriver.Fail("send_unsupported", fmt.Sprintf("%s for connector %s are off: %v", d.what(), d.connector, err))
	case errors.As(err, &sf):
		return linedriver.Retry(string(sf.Category), err.Error(), retry.Delay(job.Attempt))
	case errors.Is(err, plugin.ErrStreamEnded) || errors.Is(err, plugin.ErrClosed):
		// The plugin went away mid-send: it is relaunched; the mail
		// waits for it like one made while it was down.
		o := linedriver.Retry("connector_down", err.Error(), downRetry)
		o.Uncounted = true
		return o
	}
	return linedriver.Retry("send", err.Error(), retry.Delay(job.Attempt))
}

// sent logs the send as an activity event (report_sent, with the result:
// ok or the failure's category), which the metrics count.
func (d *Driver) sent(job *linedriver.Job, event, to string, err error) {
	result := "ok"
	var sf *plugin.SendFailure
	switch {
	case errors.As(err, &sf):
		result = string(sf.Category)
	case errors.Is(err, plugin.ErrSendUnsupported):
		result = "send_unsupported"
	case err != nil:
		result = "error"
	}
	activity.Log(d.log, activity.ReportSent, slog.String("connector", d.connector), slog.String("job", job.ID),
		slog.String("source_id", job.Record.SourceID), slog.String("report", event), slog.String("to", to), slog.String("result", result))
}

// compose makes the report of a job: the same message, Message-ID and Date
// included, on every attempt, so a receiver can drop a duplicate.
func (d *Driver) compose(ctx context.Context, cfg *Config, job *linedriver.Job, st *jobState) (*Message, error) {
	rec := &job.Record
	o := rec.Origin
	if o == nil {
		o = &linedriver.Origin{}
	}
	from := cfg.Notify.From
	if from == "" {
		from = o.To
	}
	if from == "" {
		return nil, errors.New("report: no From address: the mail named no recipient; set notify.from")
	}
	data := &Data{
		Event: st.Event, Record: rec.ID, FaxNumber: rec.Fields["fax_number"], Fields: rec.Fields,
		Subject: o.Subject, From: o.From, Received: rec.Received.UTC(), Time: st.Time, Attempts: st.Attempts,
		Details: st.Details, Category: st.Category, Reason: st.Reason, Field: st.Field, Looked: st.Looked, Formats: cfg.Notify.Formats,
		Skipped: rec.Skipped,
	}
	if data.Fields == nil {
		data.Fields = map[string]string{}
	}
	data.AsWritten, data.Number = number(data.FaxNumber, data.Fields["fax_number"+datamap.WrittenSuffix])
	if data.Details == nil {
		data.Details = map[string]string{}
	}
	data.Pages, data.Duration, data.Speed, data.RemoteID = st.Details["pages"], st.Details["duration"], st.Details["speed"], st.Details["remote_id"]
	if st.Event == datamap.EventFailed {
		e := Explain(st.Category, st.Reason)
		data.Words, data.Advice = e.Words, e.Advice
	}
	var atts []Attachment
	if st.Event == datamap.EventDelivered && cfg.Notify.AttachPages && d.PDF != nil && len(rec.Documents) > 0 {
		pdf, err := d.PDF(ctx, &linedriver.Job{ID: st.JobID, Driver: st.Driver, Record: *rec, Attempt: st.Attempts, Accepted: st.Accepted})
		if err != nil {
			// The report matters more than its attachment.
			d.log.Warn("report without its PDF: the pages could not be made", "record", rec.ID, "error", err)
		} else {
			atts = append(atts, Attachment{Name: "fax-" + rec.ID + ".pdf", MediaType: "application/pdf", Data: pdf})
			data.PDF = true
		}
	}
	subject, body, err := cfg.Templates.Render(data)
	if err != nil {
		return nil, err
	}
	return &Message{
		From: from, To: st.To, ReplyTo: cfg.Notify.ReplyTo, Subject: subject, Body: body,
		MessageID: job.ID + "@" + domainOf(from), InReplyTo: o.MessageID, References: o.References,
		Date: st.Time, Tag: rec.ID + "/" + st.Event, Attachments: atts,
	}, nil
}

func bare(a string) string {
	if a == "" {
		return ""
	}
	if p, err := mail.ParseAddress(a); err == nil {
		return p.Address
	}
	return a
}

func domainOf(a string) string {
	a = bare(a)
	if i := strings.LastIndexByte(a, '@'); i >= 0 && i < len(a)-1 {
		return a[i+1:]
	}
	return "mediagw.invalid"
}
