package report

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/plugin"
)

// MailPrefix leads the name of each connector's mail driver: the same
// driver as its reports, for mail the gateway writes on its own (a received
// fax), with a queue and slots of its own so that neither holds up the
// other.
const MailPrefix = "mail:"

// MailDriverName is the name of the mail driver of a connector.
func MailDriverName(connector string) string { return MailPrefix + connector }

// NewMailDriver makes the mail driver of a connector. Its jobs carry their
// message in a MailJob (the job's State); the record's documents named in
// Attach are attached. It needs the connector's sender (SetSender), not a
// notify section.
func NewMailDriver(connector string, svc *Service, log *slog.Logger) *Driver {
	d := NewDriver(connector, svc, log)
	d.mail = true
	return d
}

// MailJob is one mail, written when the job was made so that every attempt
// sends the same message (the same Message-ID: the job's id).
type MailJob struct {
	From    string    `json:"from"`
	To      []string  `json:"to"`
	Subject string    `json:"subject"`
	Body    string    `json:"body"`
	Time    time.Time `json:"time"`
	// Attach names the record's documents to attach, in order.
	Attach []string `json:"attach,omitempty"`
	// Tag goes into X-Mediagw-Report, so that the gateway never answers
	// its own mail should it come back to a mailbox it reads.
	Tag string `json:"tag"`
}

// startWait is how long a mail waits for its connector's plugin to come up
// (at the gateway's start, or after the plugin was relaunched) before the
// attempt is put off by downRetry.
var startWait = 15 * time.Second

func (d *Driver) deliverMail(ctx context.Context, job *linedriver.Job, report func(linedriver.Progress)) linedriver.Outcome {
	snd, state := d.awaitSender(ctx)
	if o, ok := d.senderDown(state); !ok {
		return o
	}
	var mj MailJob
	if err := json.Unmarshal(job.State, &mj); err != nil || len(mj.To) == 0 {
		return linedriver.Fail("state", fmt.Sprintf("mail job is unreadable: %v", err))
	}
	// The job's id, the same at every attempt (':' is not allowed in a msg-id).
	id := strings.ReplaceAll(job.ID, ":", "-") + "@" + domainOf(mj.From)
	msg := &Message{From: mj.From, To: strings.Join(mj.To, ", "), Subject: mj.Subject, Body: mj.Body,
		MessageID: id, Date: mj.Time, Tag: mj.Tag, AutoSubmitted: "auto-generated"}
	for _, doc := range job.Record.Documents {
		if slices.Contains(mj.Attach, doc.Name) {
			msg.Attachments = append(msg.Attachments, Attachment{Name: doc.Name, MediaType: doc.MediaType, Data: doc.Data})
		}
	}
	raw, err := msg.Bytes()
	if err != nil {
		return linedriver.Fail("template", err.Error())
	}
	to := make([]string, len(mj.To))
	for i, a := range mj.To {
		to[i] = bare(a)
	}
	report(linedriver.Progress{Step: "send", Detail: strings.Join(to, ", ")})
	res, err := snd.Send(ctx, &plugin.OutgoingMessage{From: bare(mj.From), To: to, Raw: raw})
	if err != nil {
		return d.sendFailed(job, strings.Join(to, ", "), err)
	}
	if res.MessageID != "" {
		id = res.MessageID
	}
	return linedriver.Done(map[string]string{"to": strings.Join(to, ", "), "message_id": id, "subject": msg.Subject})
}

// awaitSender returns the connector's sender, waiting up to startWait while
// its plugin is not running: a fax received while the gateway starts goes
// out as soon as the plugin is up, not a downRetry later.
func (d *Driver) awaitSender(ctx context.Context) (plugin.Sender, senderState) {
	timeout := time.NewTimer(startWait)
	defer timeout.Stop()
	for {
		changed := d.svc.senderChanged()
		_, snd, state := d.svc.sender(d.connector)
		if state != senderUnknown {
			return snd, state
		}
		select {
		case <-changed:
		case <-timeout.C:
			return nil, senderUnknown
		case <-ctx.Done():
			return nil, senderUnknown
		}
	}
}
