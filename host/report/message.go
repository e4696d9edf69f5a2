package report

import (
	"bytes"
	"fmt"
	"io"
	"net/mail"
	"time"

	gomail "github.com/emersion/go-message/mail"
)

// Message is one report, ready to be written as RFC 5322.
type Message struct {
	From, To, ReplyTo string // addresses, "Name <addr>" allowed
	Subject, Body     string
	MessageID         string // without angle brackets
	InReplyTo         string // the original mail's Message-ID, without brackets
	References        string // the original mail's References header, as it came
	Date              time.Time
	Tag               string // X-Mediagw-Report: <record>/<event>
	// AutoSubmitted is the Auto-Submitted header (RFC 3834): "" is
	// auto-replied (a report answers a mail); a received fax's mail is
	// auto-generated.
	AutoSubmitted string
	Attachments   []Attachment
}

// Attachment is a file attached to a report.
type Attachment struct {
	Name, MediaType string
	Data            []byte
}

// Bytes writes the message: text/plain (quoted-printable), or
// multipart/mixed with base64 attachments when there are any (RFC 2045).
func (m *Message) Bytes() ([]byte, error) {
	var h gomail.Header
	h.SetDate(m.Date)
	for _, kv := range [][2]string{{"From", m.From}, {"To", m.To}, {"Reply-To", m.ReplyTo}} {
		key, v := kv[0], kv[1]
		if v == "" {
			continue
		}
		as, err := mail.ParseAddressList(v)
		if err != nil {
			return nil, fmt.Errorf("report: %s %q: %w", key, v, err)
		}
		list := make([]*gomail.Address, len(as))
		for i, a := range as {
			list[i] = &gomail.Address{Name: a.Name, Address: a.Address}
		}
		h.SetAddressList(key, list)
	}
	h.SetSubject(m.Subject)
	h.SetMessageID(m.MessageID)
	if m.InReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{m.InReplyTo})
		// References: the original's, then the original itself (RFC 5322 3.6.4).
		var orig gomail.Header
		orig.Set("References", m.References)
		refs, _ := orig.MsgIDList("References")
		h.SetMsgIDList("References", append(refs, m.InReplyTo))
	}
	auto := m.AutoSubmitted
	if auto == "" {
		auto = "auto-replied"
	}
	h.Set("Auto-Submitted", auto)
	h.Set("X-Mediagw-Report", m.Tag)

	var buf bytes.Buffer
	text := func(w io.Writer) error {
		_, err := io.WriteString(w, m.Body)
		return err
	}
	if len(m.Attachments) == 0 {
		h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		w, err := gomail.CreateSingleInlineWriter(&buf, h)
		if err != nil {
			return nil, fmt.Errorf("report: write: %w", err)
		}
		if err := text(w); err != nil {
			return nil, fmt.Errorf("report: write: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("report: write: %w", err)
		}
		return buf.Bytes(), nil
	}
	mw, err := gomail.CreateWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("report: write: %w", err)
	}
	var th gomail.InlineHeader
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	th.Set("Content-Transfer-Encoding", "quoted-printable")
	tw, err := mw.CreateSingleInline(th)
	if err == nil {
		err = text(tw)
		if cerr := tw.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return nil, fmt.Errorf("report: write: %w", err)
	}
	for _, a := range m.Attachments {
		var ah gomail.AttachmentHeader
		ah.SetContentType(a.MediaType, nil)
		ah.SetFilename(a.Name)
		ah.Set("Content-Transfer-Encoding", "base64")
		aw, err := mw.CreateAttachment(ah)
		if err == nil {
			_, err = aw.Write(a.Data)
			if cerr := aw.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return nil, fmt.Errorf("report: attach %s: %w", a.Name, err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("report: write: %w", err)
	}
	return buf.Bytes(), nil
}
