package inbound

import (
	"bytes"
	"fmt"
	"text/template"
	"time"
)

// Data is what a mail target's subject and body templates see.
type Data struct {
	CalledNumber, CallerNumber, RemoteID string
	Params, Device, Route                string
	Pages                                int
	Started                              time.Time // in the routes' time zone
	Duration                             time.Duration
	// Incomplete says why the fax is short ("the call was cut after page
	// 2 (…)"); empty for a whole fax.
	Incomplete string
	Fields     map[string]string
}

const defaultSubject = `Fax from {{if .RemoteID}}{{.RemoteID}}{{else if .CallerNumber}}{{.CallerNumber}}{{else}}an unknown sender{{end}}, ` +
	`{{.Pages}} page{{if ne .Pages 1}}s{{end}}{{if .Incomplete}} (incomplete){{end}}`

const defaultBody = `A fax came in{{if .CalledNumber}} on {{.CalledNumber}}{{end}}; its pages are attached.
{{if .Incomplete}}
INCOMPLETE: {{.Incomplete}}.
The pages received before that are attached; ask the sender for the rest.
{{end}}
Sender's id:  {{or .RemoteID "(none given)"}}
Caller:       {{or .CallerNumber "(not reported by the line)"}}
Pages:        {{.Pages}}
Received:     {{.Started.Format "2006-01-02 15:04:05 MST"}}
Duration:     {{.Duration}}
Line:         {{.Params}}
`

func parseTemplate(name, text, def string) (*template.Template, error) {
	if text == "" {
		text = def
	}
	t, err := template.New(name).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s template: %w", name, err)
	}
	return t, nil
}

var (
	builtinSubject = template.Must(parseTemplate("subject", "", defaultSubject))
	builtinBody    = template.Must(parseTemplate("body", "", defaultBody))
)

// execute runs t, or the built-in template if t fails on this fax (a
// template that names a field the fax lacks must not lose the fax).
func execute(t, builtin *template.Template, d *Data) (string, error) {
	var b bytes.Buffer
	err := t.Execute(&b, d)
	if err == nil {
		return b.String(), nil
	}
	b.Reset()
	if berr := builtin.Execute(&b, d); berr != nil {
		return "", berr
	}
	return b.String(), err
}
