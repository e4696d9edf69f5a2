package datamap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText writes the preview an operator reads when setting a map up:
// the message, its parts and warnings, every field with its value and where
// it came from, the documents and the route.
func (r *Result) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	msg := r.Message
	fmt.Fprintf(bw, "map: %s\n", r.Map)
	fmt.Fprintln(bw, "message:")
	fmt.Fprintf(bw, "  subject:    %s\n", quoteLine(msg.Subject))
	fmt.Fprintf(bw, "  from:       %s\n", strings.Join(msg.From, ", "))
	fmt.Fprintf(bw, "  to:         %s\n", strings.Join(msg.To, ", "))
	if len(msg.Cc) > 0 {
		fmt.Fprintf(bw, "  cc:         %s\n", strings.Join(msg.Cc, ", "))
	}
	fmt.Fprintf(bw, "  date:       %s\n", msg.Date)
	fmt.Fprintf(bw, "  message-id: %s\n", msg.MessageID)
	fmt.Fprintf(bw, "  body from:  %s\n", msg.BodySource)
	fmt.Fprintln(bw, "parts:")
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	for _, p := range msg.Parts {
		path := p.Path
		if path == "" {
			path = "-"
		}
		var extra []string
		if p.Charset != "" {
			extra = append(extra, "charset="+p.Charset)
		}
		if p.Encoding != "" {
			extra = append(extra, p.Encoding)
		}
		if p.Filename != "" {
			extra = append(extra, fmt.Sprintf("name=%q", p.Filename))
		}
		if p.Content != "" && p.Content != p.MediaType {
			extra = append(extra, "content="+p.Content)
		}
		if p.ContentID != "" {
			extra = append(extra, "cid")
		}
		size := ""
		if p.Role != "container" {
			size = fmt.Sprintf("%d bytes", p.Size)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", path, p.MediaType, p.Role, size, strings.Join(extra, " "))
	}
	tw.Flush()
	for _, l := range strings.SplitAfter(table.String(), "\n") {
		bw.WriteString(strings.TrimRight(l, " \n"))
		if l != "" {
			bw.WriteByte('\n')
		}
	}
	if len(msg.Warnings) > 0 {
		fmt.Fprintln(bw, "warnings:")
		for _, wn := range msg.Warnings {
			fmt.Fprintf(bw, "  - %s\n", wn)
		}
	}
	fmt.Fprintln(bw, "fields:")
	for _, f := range r.Fields {
		fmt.Fprintf(bw, "  %s (%s) = %s\n", f.Name, f.Type, indentValue(f.Value, "      "))
		fmt.Fprintf(bw, "      from %s by %s\n", f.Source, f.Rule)
	}
	fmt.Fprintln(bw, "documents:")
	if len(r.Documents) == 0 {
		fmt.Fprintln(bw, "  (none)")
	}
	for i, d := range r.Documents {
		fmt.Fprintf(bw, "  %d. %s  %s  %d bytes  from %s\n", i+1, quoteLine(d.Name), d.MediaType, len(d.Data), d.Source)
		if t := d.textPreview(); t != nil {
			for _, l := range t.Lines {
				fmt.Fprintln(bw, strings.TrimRight("     | "+l, " "))
			}
			if t.Truncated {
				fmt.Fprintf(bw, "     | … (%d lines in all)\n", t.TotalLines)
			}
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(bw, "  warning: %s\n", w)
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintln(bw, "skipped (unsupported: skip):")
		for _, sk := range r.Skipped {
			fmt.Fprintf(bw, "  - %s\n", quoteLine(sk.String()))
		}
	}
	if len(r.Routes) > 0 {
		fmt.Fprintf(bw, "route: %s (%s)\n", strings.Join(r.Routes, ", "), r.Route)
	} else {
		fmt.Fprintln(bw, "route: (none)")
	}
	return bw.Flush()
}

func quoteLine(s string) string {
	if strings.ContainsAny(s, "\n\r\t") || s == "" || strings.TrimSpace(s) != s {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// indentValue prints a multi-line value on following, indented lines.
func indentValue(v, indent string) string {
	if v == "" {
		return `""`
	}
	if !strings.Contains(v, "\n") {
		return quoteLine(v)
	}
	lines := strings.Split(v, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = indent + l
		}
	}
	return "|\n" + strings.Join(lines, "\n")
}

// Try applies m to raw and writes the preview, followed by the rejection if
// there is one. It returns the rejection (or other error) as well.
func Try(w io.Writer, m *Map, raw []byte) error {
	res, err := m.Apply(raw)
	if res != nil {
		if werr := res.WriteText(w); werr != nil {
			return werr
		}
	}
	var rej *Rejection
	if errors.As(err, &rej) {
		fmt.Fprintf(w, "REJECTED: %s\n", rej.Error())
		writeTried(w, rej.Tried)
	} else if err == nil {
		fmt.Fprintln(w, "OK")
	}
	return err
}

// writeTried lists, under a rejection for a field that found nothing, what
// each source held and the rule it was tried with.
func writeTried(w io.Writer, tried []Tried) {
	if len(tried) == 0 {
		return
	}
	fmt.Fprintln(w, "tried:")
	for _, t := range tried {
		held := "(not in the mail)"
		if !t.Absent {
			held = fmt.Sprintf("%q", t.Held)
		}
		fmt.Fprintf(w, "  %s: %s\n      by %s\n", t.Source, held, t.Rule)
	}
}

// PreviewLines is how many lines of a text document the preview shows.
const PreviewLines = 15

// TextPreview is the start of a text document, as it is delivered (the
// renderer wraps long lines at the page width).
type TextPreview struct {
	Lines      []string `json:"lines"`       // the first PreviewLines lines
	TotalLines int      `json:"total_lines"` // lines in the whole text
	Truncated  bool     `json:"truncated"`   // more lines follow
}

func (d *Document) textPreview() *TextPreview {
	if !strings.HasPrefix(d.MediaType, "text/plain") {
		return nil
	}
	text := strings.TrimRight(strings.ReplaceAll(strings.ReplaceAll(string(d.Data), "\r\n", "\n"), "\r", "\n"), "\n")
	lines := strings.Split(text, "\n")
	t := &TextPreview{TotalLines: len(lines)}
	if len(lines) > PreviewLines {
		lines, t.Truncated = lines[:PreviewLines], true
	}
	for _, l := range lines {
		t.Lines = append(t.Lines, strings.TrimRight(strings.ReplaceAll(l, "\t", "    "), " "))
	}
	return t
}

// Preview is the JSON document of `mediagw datamap try --json`. Its shape
// is stable: keys are only added, lists are [] when empty, and route and
// rejection are null when there is none.
type Preview struct {
	Map       string            `json:"map"`
	Accepted  bool              `json:"accepted"`
	Message   PreviewMessage    `json:"message"`
	Fields    []PreviewField    `json:"fields"`
	Documents []PreviewDocument `json:"documents"`
	Skipped   []PreviewSkipped  `json:"skipped"`
	Warnings  []string          `json:"warnings"` // about the documents as delivered
	Route     *PreviewRoute     `json:"route"`
	Rejection *PreviewRejection `json:"rejection"`
	// Drivers is what each routed driver that can preview would send; the
	// command fills it (the map does not know the drivers).
	Drivers []PreviewDriver `json:"drivers"`
}

// PreviewMessage describes the mail.
type PreviewMessage struct {
	Subject    string        `json:"subject"`
	From       []string      `json:"from"`
	To         []string      `json:"to"`
	Cc         []string      `json:"cc"`
	Date       string        `json:"date"`
	MessageID  string        `json:"message_id"`
	BodySource string        `json:"body_source"`
	Parts      []PreviewPart `json:"parts"`
	Warnings   []string      `json:"warnings"`
}

// PreviewPart is one MIME part.
type PreviewPart struct {
	Path      string `json:"path"`
	MediaType string `json:"media_type"` // as declared
	Content   string `json:"content"`    // what the content is
	Role      string `json:"role"`
	Size      int64  `json:"size"`
	Charset   string `json:"charset,omitempty"`
	Encoding  string `json:"encoding,omitempty"`
	Filename  string `json:"filename,omitempty"`
}

// PreviewField is one field with its provenance.
type PreviewField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Type   string `json:"type"`
	Source string `json:"source"`
	Rule   string `json:"rule"`
}

// PreviewDocument is one delivered document; Text is set for text.
type PreviewDocument struct {
	Name      string       `json:"name"`
	MediaType string       `json:"media_type"`
	Size      int          `json:"size"`
	Source    string       `json:"source"`
	Text      *TextPreview `json:"text,omitempty"`
}

// PreviewSkipped is what `unsupported: skip` left out.
type PreviewSkipped struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// PreviewRoute is the routing rule that held and its drivers.
type PreviewRoute struct {
	Rule    string   `json:"rule"`
	Drivers []string `json:"drivers"`
}

// PreviewRejection is why the mail would be refused.
type PreviewRejection struct {
	Field  string  `json:"field"`
	Reason string  `json:"reason"`
	Tried  []Tried `json:"tried"`
}

// PreviewDriver is what a driver would send, or why it refuses.
type PreviewDriver struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Send    string `json:"send,omitempty"`
	Refused string `json:"refused,omitempty"`
}

// NewPreview makes the JSON preview of an Apply: res and err as Apply
// returned them (err nil, a *Rejection, or another error reported as a
// rejection of the message).
func NewPreview(m *Map, res *Result, err error) *Preview {
	p := &Preview{Map: m.name, Accepted: err == nil}
	if res == nil {
		res = &Result{Map: m.name}
	}
	msg := res.Message
	p.Message = PreviewMessage{
		Subject: msg.Subject, From: nonNil(msg.From), To: nonNil(msg.To), Cc: nonNil(msg.Cc),
		Date: msg.Date, MessageID: msg.MessageID, BodySource: msg.BodySource,
		Parts: []PreviewPart{}, Warnings: nonNil(msg.Warnings),
	}
	for _, pt := range msg.Parts {
		content := pt.Content
		if content == "" {
			content = pt.MediaType
		}
		p.Message.Parts = append(p.Message.Parts, PreviewPart{Path: pt.Path, MediaType: pt.MediaType, Content: content,
			Role: pt.Role, Size: pt.Size, Charset: pt.Charset, Encoding: pt.Encoding, Filename: pt.Filename})
	}
	p.Fields = []PreviewField{}
	for _, f := range res.Fields {
		p.Fields = append(p.Fields, PreviewField(f))
	}
	p.Documents = []PreviewDocument{}
	p.Skipped = []PreviewSkipped{}
	p.Warnings = nonNil(res.Warnings)
	p.Drivers = []PreviewDriver{}
	for i := range res.Documents {
		d := &res.Documents[i]
		p.Documents = append(p.Documents, PreviewDocument{Name: d.Name, MediaType: d.MediaType, Size: len(d.Data), Source: d.Source, Text: d.textPreview()})
	}
	for _, sk := range res.Skipped {
		p.Skipped = append(p.Skipped, PreviewSkipped(sk))
	}
	if len(res.Routes) > 0 {
		p.Route = &PreviewRoute{Rule: res.Route, Drivers: res.Routes}
	}
	if err == nil {
		return p
	}
	var rej *Rejection
	if errors.As(err, &rej) {
		p.Rejection = &PreviewRejection{Field: rej.Field, Reason: rej.Reason, Tried: rej.Tried}
	} else {
		p.Rejection = &PreviewRejection{Field: "message", Reason: err.Error()}
	}
	if p.Rejection.Tried == nil {
		p.Rejection.Tried = []Tried{}
	}
	return p
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
