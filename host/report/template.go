package report

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/mediagw/mediagw/datamap"
	"github.com/mediagw/mediagw/linedriver"
)

//go:embed templates/*.tmpl
var builtin embed.FS

// Data is what a report template sees.
type Data struct {
	Event     string // delivered, failed, rejected
	Record    string // the record id: the reference an operator finds in the log
	FaxNumber string // the record's fax_number field (E.164)
	// AsWritten is the number as the sender wrote it (the map's
	// fax_number_as_written); Number is that with the E.164 form in
	// parentheses when the two differ: "(201) 555-0142 (+12015550142)".
	// Either falls back to FaxNumber.
	AsWritten, Number string
	Fields            map[string]string // every field of the record
	Subject           string            // the original mail's subject
	From              string            // the original mail's sender
	Received          time.Time         // when the gateway received the mail (UTC)
	Time              time.Time         // when the outcome was recorded (UTC)
	Attempts          int               // delivery attempts made
	Pages             string            // delivered: pages sent
	Duration          string            // delivered: time on the line
	Speed             string            // delivered: bit/s
	RemoteID          string            // delivered: the far end's station id (TSI/CSI)
	Details           map[string]string // delivered: all the driver reported
	Category          string            // failed: the driver's category (busy, no_answer, …)
	Reason            string            // failed, rejected: the driver's or data map's own words
	Words             string            // failed: the category in plain words
	Advice            string            // failed: what the sender can do
	Field             string            // rejected: the field that was missing or wrong
	Formats           string            // rejected: how to write a mail the map accepts
	// Looked is, for a required field that found nothing, each place of
	// the mail it was looked for in and what that held (Source, Held,
	// Absent); the map's rules are for the administrator and not shown.
	Looked []datamap.Tried
	PDF    bool // the sent pages are attached as a PDF
	// Skipped are the attachments the map left out (unsupported: skip),
	// each with its Name, Type and Reason.
	Skipped []linedriver.Skipped
}

// Templates are the compiled templates of one notify section, per event.
type Templates map[string]*template.Template

// LoadTemplates compiles the built-in templates and the notify section's
// own files (relative to dir). Each template defines "subject" and "body".
func LoadTemplates(n *datamap.NotifySpec, dir string) (Templates, error) {
	out := Templates{}
	for _, ev := range datamap.Events {
		name := ev + ".tmpl"
		var src []byte
		var err error
		if file, ok := n.Templates[ev]; ok {
			if !filepath.IsAbs(file) {
				file = filepath.Join(dir, file)
			}
			name = file
			src, err = os.ReadFile(file)
		} else {
			src, err = builtin.ReadFile("templates/" + ev + ".tmpl")
		}
		if err != nil {
			return nil, fmt.Errorf("report: template for %s: %w", ev, err)
		}
		t, err := template.New(filepath.Base(name)).Option("missingkey=zero").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("report: template for %s: %w", ev, err)
		}
		for _, part := range []string{"subject", "body"} {
			if t.Lookup(part) == nil {
				return nil, fmt.Errorf("report: template for %s (%s) defines no %q: write {{define %q}}…{{end}}", ev, name, part, part)
			}
		}
		// A trial run finds field names that do not exist before the
		// first report needs them.
		if _, _, err := render(t, sample(ev)); err != nil {
			return nil, fmt.Errorf("report: template for %s: %w", ev, err)
		}
		out[ev] = t
	}
	return out, nil
}

// Render makes the subject and text of one report.
func (ts Templates) Render(d *Data) (subject, body string, err error) {
	t := ts[d.Event]
	if t == nil {
		return "", "", fmt.Errorf("report: no template for event %q", d.Event)
	}
	return render(t, d)
}

func render(t *template.Template, d *Data) (string, string, error) {
	var s, b bytes.Buffer
	if err := t.ExecuteTemplate(&s, "subject", d); err != nil {
		return "", "", err
	}
	if err := t.ExecuteTemplate(&b, "body", d); err != nil {
		return "", "", err
	}
	// A subject is one line, whatever the template made of it.
	subject := strings.Join(strings.Fields(s.String()), " ")
	return subject, b.String(), nil
}

// number is the fax number for a report's text: as the sender wrote it,
// with the E.164 form in parentheses when it differs.
func number(e164, written string) (asWritten, shown string) {
	written = strings.Join(strings.Fields(written), " ")
	switch {
	case written == "":
		return e164, e164
	case e164 == "" || written == e164:
		return written, written
	}
	return written, written + " (" + e164 + ")"
}

func sample(ev string) *Data {
	return &Data{Event: ev, Record: "r", FaxNumber: "+15550100", AsWritten: "555-0100", Number: "555-0100 (+15550100)", Fields: map[string]string{}, Details: map[string]string{},
		Pages: "1", Attempts: 1, Time: time.Unix(0, 0).UTC(), Received: time.Unix(0, 0).UTC()}
}
