package datamap

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func exampleMap(t testing.TB, name string) *Map {
	return mustLoad(t, "../examples/maps/"+name+".yaml", name)
}

// mail builds a small plain-text message.
func plainMail(headers, body string) []byte {
	h := "From: Alice Example <alice@example.com>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <t@example.com>\r\n" + headers
	return []byte(strings.ReplaceAll(h+"\n"+body, "\n", "\r\n"))
}

// attachMail is a mail to the fax gateway with a PDF and one more
// attachment (just the named file when it is a document).
func attachMail(name, mediaType string, data []byte) []byte {
	var b strings.Builder
	b.WriteString("From: Alice Example <alice@example.com>\r\nTo: +12015551234@fax.example.com\r\nSubject: order\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nPlease see the attached order.\r\n")
	if strings.HasSuffix(name, ".zip") {
		b.WriteString("--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\n%PDF-1.4\r\n")
	}
	fmt.Fprintf(&b, "--B\r\nContent-Type: %s\r\nContent-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--B--\r\n",
		mediaType, name, base64.StdEncoding.EncodeToString(data))
	return []byte(b.String())
}

type want struct {
	fields map[string]string
	docs   []string // name/media type
	routes string
	reject string // the whole rejection, when one is expected
}

// fieldNames is the fields of a result, in order: those of the spec, each
// fax number followed by the number as written.
func fieldNames(m *Map) []string {
	var names []string
	for _, f := range m.fields {
		names = append(names, f.spec.Name)
		if f.spec.Type == "fax" {
			names = append(names, f.spec.Name+WrittenSuffix)
		}
	}
	return names
}

func check(t *testing.T, m *Map, raw []byte, w want) {
	t.Helper()
	res, err := m.Apply(raw)
	if w.reject != "" {
		var rej *Rejection
		if !errors.As(err, &rej) {
			t.Fatalf("err = %v, want rejection %q", err, w.reject)
		}
		if rej.Error() != w.reject {
			t.Fatalf("rejection = %q, want %q", rej.Error(), w.reject)
		}
		return
	}
	if err != nil {
		var sb strings.Builder
		_ = res.WriteText(&sb)
		t.Fatalf("Apply: %v\n%s", err, sb.String())
	}
	for k, v := range w.fields {
		if got := res.Value(k); got != v {
			t.Errorf("field %s = %q, want %q", k, got, v)
		}
	}
	var docs []string
	for _, d := range res.Documents {
		docs = append(docs, d.Name+" "+d.MediaType)
		if len(d.Data) == 0 {
			t.Errorf("document %s has no data", d.Name)
		}
	}
	if strings.Join(docs, ", ") != strings.Join(w.docs, ", ") {
		t.Errorf("documents = %q, want %q", docs, w.docs)
	}
	if got := strings.Join(res.Routes, ","); got != w.routes {
		t.Errorf("routes = %s, want %s", got, w.routes)
	}
	// Every field is in spec order, a fax number followed by the number as
	// written, and none is silently empty.
	names := fieldNames(m)
	if len(res.Fields) != len(names) {
		t.Fatalf("%d fields, want %d", len(res.Fields), len(names))
	}
	for i, f := range res.Fields {
		if f.Name != names[i] {
			t.Errorf("field %d is %s, want %s", i, f.Name, names[i])
		}
		if f.Source == "" || f.Rule == "" {
			t.Errorf("field %s has no provenance: %+v", f.Name, f)
		}
	}
}

func TestEmailToFaxMap(t *testing.T) {
	m := exampleMap(t, "email-to-fax")
	if got := strings.Join(m.Drivers(), ","); got != "fax-international,fax" {
		t.Errorf("Drivers() = %s", got)
	}
	tests := []struct {
		name string
		raw  []byte
		want want
	}{
		{"to local part, pdf and tiff; a zip named .docx is not dropped in silence", readMail(t, "pdf-tiff.eml"), want{
			fields: map[string]string{"fax_number": "+12015551234", "fax_number_as_written": "+12015551234", "sender": "scanner@office.example", "subject": "Scanned documents", "recipient": "Fax"},
			reject: "documents: notes.docx (part 4) is a ZIP archive, which cannot be delivered as pages; or unsupported: skip to deliver the rest"}},
		{"pdf sent as octet-stream", attachMail("order", "application/octet-stream", []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")), want{
			fields: map[string]string{"fax_number": "+12015551234"},
			docs:   []string{"order application/pdf"}, routes: "fax"}},
		{"photo sent as application/x-unknown", attachMail("IMG_1234", "application/x-unknown", []byte("\xff\xd8\xff\xe0\x00\x10JFIF")), want{
			fields: map[string]string{"fax_number": "+12015551234"},
			docs:   []string{"IMG_1234 image/jpeg"}, routes: "fax"}},
		{"an archive beside the pdf", attachMail("order.zip", "application/zip", []byte("PK\x05\x06"+strings.Repeat("\x00", 18))), want{
			reject: "documents: order.zip (part 3) is an empty ZIP archive, which cannot be delivered as pages; or unsupported: skip to deliver the rest"}},
		{"subject, html-only body as cover", plainMail("To: fax@fax.example.com\nSubject: Fax: +1 (212) 555-0100\nContent-Type: text/html; charset=utf-8\n",
			"<p>Attention: Billing&nbsp;Dept</p><p>Call us.</p>"), want{
			fields: map[string]string{"fax_number": "+12125550100", "fax_number_as_written": "+1 (212) 555-0100", "recipient": "Billing Dept", "subject": ""},
			docs:   []string{"cover.txt text/plain; charset=utf-8"}, routes: "fax"}},
		{"header X-Fax-Number, international", plainMail("To: fax@fax.example.com\nSubject: Hello\nX-Fax-Number: +44 20 7946 0018\n", "Hello there.\n"), want{
			fields: map[string]string{"fax_number": "+442079460018", "fax_number_as_written": "+44 20 7946 0018", "subject": "Hello"},
			docs:   []string{"cover.txt text/plain; charset=utf-8"}, routes: "fax-international"}},
		{"Outlook signature, disclaimer and quoted reply stripped", readMail(t, "outlook-signature-disclaimer.eml"), want{
			fields: map[string]string{"fax_number": "", "recipient": "Harbour Logistics Ltd"},
			reject: "fax_number: no match in To, Subject or X-Fax-Number"}},
		{"Outlook HTML only", readMail(t, "outlook-html-only.eml"), want{
			fields: map[string]string{"fax_number": "+12015551234", "recipient": "Mr. Robert Miller", "subject": "Purchase order PO-2026-0815", "sender": "sandra.lopez@contoso.example"},
			docs:   []string{"cover.txt text/plain; charset=utf-8"}, routes: "fax"}},
		{"Apple Mail inline image", readMail(t, "apple-inline-image.eml"), want{
			fields: map[string]string{"fax_number": "+33145678900"},
			docs:   []string{"IMG_0042.jpeg image/jpeg"}, routes: "fax-international"}},
		{"RFC 2231 names", readMail(t, "rfc2231-filenames.eml"), want{
			fields: map[string]string{"fax_number": "+49301234567"},
			docs:   []string{"€ Rechnung März.pdf application/pdf", "Lieferschein Nr. 4711 übersicht.tif image/tiff", "Übersicht 2026.pdf application/pdf"}, routes: "fax-international"}},
		{"gmail subject number", readMail(t, "gmail-alternative.eml"), want{
			fields: map[string]string{"fax_number": "+12019876543", "fax_number_as_written": "+1 (201) 987-6543", "recipient": "Dr. Müller"},
			docs:   []string{"cover.txt text/plain; charset=utf-8"}, routes: "fax"}},
		{"winmail.dat", readMail(t, "winmail.eml"), want{
			reject: "documents: winmail.dat (TNEF) attachment not decoded; ask the sender to send HTML or plain text mail"}},
		{"empty body, no attachment", readMail(t, "empty-body.eml"), want{
			reject: "documents: document cover.txt: the body is empty"}},
		{"no number anywhere", plainMail("To: fax@fax.example.com\nSubject: please fax\n", "no number\n"), want{
			reject: "fax_number: no match in To, Subject or X-Fax-Number"}},
		{"number with letters", plainMail("To: fax@fax.example.com\nSubject: x\nX-Fax-Number: 555-CALL-NOW\n", "x\n"), want{
			reject: `fax_number: "555-CALL-NOW" holds 'C'; only digits, spaces, + ( ) - . / and a pause after an outside-line code are read; write it as "+1 201-555-0123", "(201) 555-0123" (a number in US) or "0049 30 123456" (from header X-Fax-Number)`}},
		{"number without an area code", plainMail("To: fax@fax.example.com\nSubject: x\nX-Fax-Number: 555-0100\n", "x\n"), want{
			reject: `fax_number: "555-0100" is not a valid number in US (nor one with a country code); write it as "+1 201-555-0123", "(201) 555-0123" (a number in US) or "0049 30 123456" (from header X-Fax-Number)`}},
		{"feature code", plainMail("To: fax@fax.example.com\nSubject: x\nX-Fax-Number: *67 201 555 0100\n", "x\n"), want{
			reject: `fax_number: "*67 201 555 0100" holds a feature code (* or #); feature codes are not dialled from a message; write it as "+1 201-555-0123", "(201) 555-0123" (a number in US) or "0049 30 123456" (from header X-Fax-Number)`}},
		{"outside line written by the sender, dropped", plainMail("To: fax@fax.example.com\nSubject: x\nX-Fax-Number: 9, 0049 30 1234567\n", "x\n"), want{
			fields: map[string]string{"fax_number": "+49301234567", "fax_number_as_written": "9, 0049 30 1234567"},
			docs:   []string{"cover.txt text/plain; charset=utf-8"}, routes: "fax-international"}},
		{"no sender", []byte("To: +12015551234@fax.example.com\r\nSubject: x\r\n\r\nhello\r\n"), want{
			reject: "sender: no match in From"}},
		{"not a message", []byte("\x00\x01garbage without a header"), want{
			reject: "message: mailparse: malformed message: header: message: malformed MIME header line: ??garbage without a header"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, m, tt.raw, tt.want) })
	}
}

func TestAlarmMap(t *testing.T) {
	m := exampleMap(t, "alarm")
	tests := []struct {
		name string
		raw  []byte
		want want
	}{
		{"receiver mail with snapshot and clip", readMail(t, "alarm-video.eml"), want{
			fields: map[string]string{"txid": "123588", "event": "BA", "event_name": "burglary alarm", "zone": "1", "area": "1", "priority": "normal", "site": ""},
			docs:   []string{"cam3-031245.jpg image/jpeg", "cam3-031245.mp4 video/mp4"}, routes: "alarm-primary"}},
		{"forwarded inline with header block", readMail(t, "forwarded-inline.eml"), want{
			fields: map[string]string{"txid": "123588", "event": "BA", "zone": "1", "area": "1", "site": "Site 42, north entrance"},
			routes: "alarm-primary"}},
		{"forwarded as attachment, fire", readMail(t, "forwarded-attachment.eml"), want{
			fields: map[string]string{"txid": "123588", "event": "FA", "event_name": "fire alarm", "zone": "3", "area": "2", "priority": "high"},
			routes: "alarm-primary,alarm-backup"}},
		{"html body with signature", plainMail("To: alarms@gateway.example.com\nSubject: alarm\nX-Site: Depot 7\nContent-Type: text/html\n",
			"<div>Alarm from panel:</div><div>  000042  PA 12 3 </div><div>-- </div><div>Panel 9000 mailer 123 XX 1 1</div>"), want{
			fields: map[string]string{"txid": "000042", "event": "PA", "zone": "12", "area": "3", "site": "Depot 7", "priority": "high"},
			routes: "alarm-primary,alarm-backup"}},
		{"unknown event code", plainMail("To: a@b\nSubject: alarm\n", "123588 ZZ 1 1\n"), want{
			reject: `event: not one of the allowed values BA, BR, FA, FR, PA, PR, TA, TR, HA, HR, MA, MR, AT, AR, YT, YR, OP, CL (value "ZZ" from body (text part 1))`}},
		{"no alarm line", plainMail("To: a@b\nSubject: alarm\n", "The panel says hello.\n"), want{
			reject: "txid: no match in body"}},
		{"empty body", readMail(t, "empty-body.eml"), want{reject: "txid: no match in body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, m, tt.raw, tt.want) })
	}
}

// TestExamplePreviewGolden keeps the preview an operator sees for the
// example maps (testdata/golden/examples/MAP.MAIL.txt).
func TestExamplePreviewGolden(t *testing.T) {
	for _, c := range []struct{ m, mail string }{
		{"email-to-fax", "outlook-html-only"},
		{"email-to-fax", "outlook-signature-disclaimer"},
		{"email-to-fax", "pdf-tiff"},
		{"email-to-fax", "winmail"},
		{"alarm", "alarm-video"},
		{"alarm", "forwarded-inline"},
	} {
		t.Run(c.m+"/"+c.mail, func(t *testing.T) {
			var out strings.Builder
			_ = Try(&out, exampleMap(t, c.m), readMail(t, c.mail+".eml"))
			golden(t, "examples/"+c.m+"."+c.mail+".txt", []byte(out.String()))
		})
	}
}

func TestExpressionEnv(t *testing.T) {
	spec, err := Parse("env.yaml", []byte(`
fields:
  - name: who
    expr: 'from + " " + join(to, ",") + " " + header("X-Prio") + " " + string(len(attachments)) + " " + subject'
    default: ""
  - name: first_line
    expr: 'split(body, "\n")[0]'
    default: ""
routes:
  - when: 'header("x-prio") == "1" && fields.first_line == "hello"'
    drivers: [urgent]
  - drivers: [normal]
`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Compile("env", spec)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Apply(plainMail("To: a@x, b@x\nSubject: s\nX-Prio: 1\n", "hello\nworld\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Value("who"); got != "alice@example.com a@x,b@x 1 0 s" {
		t.Errorf("who = %q", got)
	}
	if res.Value("first_line") != "hello" || strings.Join(res.Routes, ",") != "urgent" || res.Route != "rule 1" {
		t.Errorf("first_line %q routes %v %s", res.Value("first_line"), res.Routes, res.Route)
	}
}

// TestShippedMapsNumberForms: the shipped fax maps read the usual ways of
// writing a number, in the subject and in the To local part (quoted when
// it holds spaces or parentheses), to the same E.164 number.
func TestShippedMapsNumberForms(t *testing.T) {
	forms := []struct{ written, e164 string }{
		{"(201) 555-0142", "+12015550142"},
		{"201.555.0142", "+12015550142"},
		{"+1 (201) 555 0142", "+12015550142"},
		{"0049 30 1234567", "+49301234567"},
		{"201-555-0143", "+12015550143"},
		{"+44 20 7946 0018", "+442079460018"},
	}
	for _, file := range []string{"../examples/maps/email-to-fax.yaml", "../examples/demo/maps/email-to-fax.yaml"} {
		m := mustLoad(t, file, "email-to-fax")
		for _, f := range forms {
			local := f.written
			if strings.ContainsAny(local, " ()") {
				local = `"` + local + `"`
			}
			for _, c := range []struct{ where, headers string }{
				{"subject", "To: fax@fax.example.com\nSubject: Fax: " + f.written + "\n"},
				{"to local part", "To: " + local + "@fax.example.com\nSubject: order\n"},
			} {
				t.Run(file+"/"+c.where+"/"+f.written, func(t *testing.T) {
					res, err := m.Apply(plainMail(c.headers, "Please see below.\n"))
					if err != nil {
						var sb strings.Builder
						_ = Try(&sb, m, plainMail(c.headers, "Please see below.\n"))
						t.Fatalf("Apply: %v\n%s", err, sb.String())
					}
					if got := res.Value("fax_number"); got != f.e164 {
						t.Errorf("fax_number = %q, want %q", got, f.e164)
					}
					if got := res.Value("fax_number" + WrittenSuffix); got != f.written {
						t.Errorf("fax_number_as_written = %q, want %q", got, f.written)
					}
				})
			}
		}
	}
}

// TestPreviewJSON: the JSON preview of an accepted mail shows the fields,
// the documents with the start of the text to be faxed, and the route; of a
// mail whose number is nowhere, the rejection with what each source held
// and the rule it was tried with.
func TestPreviewJSON(t *testing.T) {
	m := exampleMap(t, "email-to-fax")
	body := ""
	for i := 1; i <= 20; i++ {
		body += fmt.Sprintf("line %d\n", i)
	}
	res, err := m.Apply(plainMail("To: fax@fax.example.com\nSubject: Fax: (201) 555-0142\n", body))
	p := NewPreview(m, res, err)
	if !p.Accepted || p.Rejection != nil || p.Route == nil || p.Route.Drivers[0] != "fax" {
		t.Fatalf("accepted %v, rejection %+v, route %+v", p.Accepted, p.Rejection, p.Route)
	}
	if len(p.Documents) != 1 || p.Documents[0].Text == nil {
		t.Fatalf("documents %+v, want the cover text", p.Documents)
	}
	txt := p.Documents[0].Text
	if len(txt.Lines) != PreviewLines || txt.Lines[0] != "line 1" || !txt.Truncated || txt.TotalLines != 20 {
		t.Errorf("text preview %+v, want the first %d of 20 lines", txt, PreviewLines)
	}
	var fax *PreviewField
	for i := range p.Fields {
		if p.Fields[i].Name == "fax_number" {
			fax = &p.Fields[i]
		}
	}
	if fax == nil || fax.Value != "+12015550142" || fax.Source != "Subject" {
		t.Errorf("fax_number %+v", fax)
	}

	res, err = m.Apply(plainMail("To: fax@fax.example.com\nSubject: please fax\n", "no number\n"))
	p = NewPreview(m, res, err)
	if p.Accepted || p.Rejection == nil || p.Rejection.Field != "fax_number" {
		t.Fatalf("accepted %v, rejection %+v", p.Accepted, p.Rejection)
	}
	want := []Tried{
		{Source: "To local (fax@fax.example.com)", Held: "fax"},
		{Source: "Subject", Held: "please fax"},
		{Source: "header X-Fax-Number", Absent: true, Rule: "whole value"},
	}
	if len(p.Rejection.Tried) != len(want) {
		t.Fatalf("tried %+v, want %d sources", p.Rejection.Tried, len(want))
	}
	for i, w := range want {
		got := p.Rejection.Tried[i]
		if got.Source != w.Source || got.Held != w.Held || got.Absent != w.Absent || !strings.HasPrefix(got.Rule, "regex `") && w.Rule == "" || w.Rule != "" && got.Rule != w.Rule {
			t.Errorf("tried[%d] = %+v, want %+v (rule a regex unless given)", i, got, w)
		}
	}
	// The document is stable JSON: lists are [], never null.
	b, _ := json.Marshal(p)
	for _, key := range []string{`"skipped":[]`, `"drivers":[]`, `"route":null`, `"documents":[`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
}
