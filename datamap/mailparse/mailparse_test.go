package mailparse

import (
	"errors"
	"strings"
	"testing"
)

func parse(t *testing.T, raw string, opts Options) *Message {
	t.Helper()
	m, err := Parse(strings.NewReader(strings.ReplaceAll(raw, "\n", "\r\n")), opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHeadersAndAddresses(t *testing.T) {
	m := parse(t, `From: =?utf-8?q?J=C3=BCrgen?= <j@example.de>
To: "+1 555" <+15551234567@fax.example.com>, bob@example.com
Cc: Broken <cc@example.com
Reply-To: r@example.com
Subject: =?iso-8859-1?q?Gr=FC=DFe?= aus
Message-ID: <abc@x>
X-Fax-Number: =?utf-8?b?KzQ5IDMw?=
X-Fax-Number: 2nd

body
`, Options{})
	if m.Subject != "Grüße aus" {
		t.Errorf("subject %q", m.Subject)
	}
	if len(m.From) != 1 || m.From[0].Name != "Jürgen" || m.From[0].Address != "j@example.de" {
		t.Errorf("from %+v", m.From)
	}
	if len(m.To) != 2 || m.To[0].Local() != "+15551234567" || m.To[0].Domain() != "fax.example.com" || m.To[1].Address != "bob@example.com" {
		t.Errorf("to %+v", m.To)
	}
	if len(m.Cc) != 1 || m.Cc[0].Address != "cc@example.com" || m.Cc[0].Name != "Broken" {
		t.Errorf("cc %+v (broken header kept)", m.Cc)
	}
	if len(m.Warnings) == 0 || !strings.Contains(m.Warnings[0], "Cc") {
		t.Errorf("warnings %q", m.Warnings)
	}
	if got := m.HeaderValues("x-fax-number"); len(got) != 2 || got[0] != "+49 30" || got[1] != "2nd" {
		t.Errorf("header values %q", got)
	}
	if m.MessageID != "abc@x" || m.Text != "body\n" {
		t.Errorf("id %q text %q", m.MessageID, m.Text)
	}
}

const multi = `Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain; format=flowed

soft 
line 
joined
--b
Content-Type: application/pdf; name="a.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--b
Content-Type: image/png
Content-ID: <logo>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--b
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="WINMAIL.DAT"

xx
--b--
`

func TestAttachmentsKeepAndLimits(t *testing.T) {
	var seen []string
	m := parse(t, multi, Options{Keep: func(a *Attachment) bool {
		seen = append(seen, a.Path+" "+a.MediaType)
		return a.MediaType == "application/pdf"
	}})
	if strings.Join(seen, ",") != "2 application/pdf,3 image/png,4 application/octet-stream" {
		t.Errorf("keep saw %q", seen)
	}
	if len(m.Attachments) != 3 {
		t.Fatalf("attachments %d", len(m.Attachments))
	}
	pdf, png, tnef := m.Attachments[0], m.Attachments[1], m.Attachments[2]
	if !pdf.Kept || string(pdf.Data) != "%PDF-1.4\n" || pdf.Size != 9 || pdf.Filename != "a.pdf" {
		t.Errorf("pdf %+v", pdf)
	}
	if png.Kept || png.Data != nil || png.Size != 8 || !png.Inline || png.Role != RoleInline {
		t.Errorf("png %+v", png)
	}
	if tnef.Role != RoleTNEF || !strings.Contains(strings.Join(m.Warnings, ";"), "winmail.dat (TNEF) attachment not decoded") {
		t.Errorf("tnef %+v warnings %q", tnef, m.Warnings)
	}
	if m.Text != "soft line joined" {
		t.Errorf("flowed text %q", m.Text)
	}

	m = parse(t, multi, Options{Keep: func(*Attachment) bool { return true }, MaxAttachmentBytes: 4})
	if a := m.Attachments[0]; !a.TooLarge || a.Data != nil || a.Size != 9 {
		t.Errorf("too large: %+v", a)
	}
	m = parse(t, multi, Options{MaxParts: 2})
	if len(m.Attachments) != 0 || len(m.Incomplete) != 1 || !strings.Contains(m.Incomplete[0], "more than 2 MIME parts") {
		t.Errorf("max parts: %d attachments, incomplete %q", len(m.Attachments), m.Incomplete)
	}
	m = parse(t, "Content-Type: text/plain\n\n"+strings.Repeat("x", 100), Options{MaxTextBytes: 10})
	if m.Text != "xxxxxxxxxx" || !strings.Contains(strings.Join(m.Warnings, ";"), "truncated") {
		t.Errorf("max text: %q %q", m.Text, m.Warnings)
	}
}

func TestDepthLimit(t *testing.T) {
	raw := strings.Repeat("Content-Type: message/rfc822\n\n", 40) + "Subject: deep\n\ntext\n"
	m := parse(t, raw, Options{MaxDepth: 5})
	if len(m.Incomplete) != 1 || !strings.Contains(m.Incomplete[0], "nested deeper than 5") {
		t.Errorf("incomplete %q", m.Incomplete)
	}
}

func TestMalformed(t *testing.T) {
	_, err := Parse(strings.NewReader("\x00bad header\r\n\r\n"), Options{})
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("err = %v", err)
	}
	_, err = Parse(strings.NewReader("X: "+strings.Repeat("a", 1<<20)+"\r\n\r\n"), Options{MaxHeaderBytes: 1 << 10})
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("huge header: err = %v", err)
	}
}

// FuzzParse: any bytes parse without panic, within the limits.
func FuzzParse(f *testing.F) {
	f.Add([]byte(strings.ReplaceAll(multi, "\n", "\r\n")))
	f.Add([]byte("Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\n\r\nhi\r\n--x--"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(strings.NewReader(string(raw)), Options{MaxTextBytes: 1 << 10, MaxAttachmentBytes: 1 << 10, MaxParts: 20, Keep: func(*Attachment) bool { return true }})
		if err != nil {
			return
		}
		if len(m.Text) > 20<<10 || len(m.Parts) > 40 {
			t.Fatalf("limits exceeded: text %d parts %d", len(m.Text), len(m.Parts))
		}
		for _, a := range m.Attachments {
			if len(a.Data) > 1<<10 {
				t.Fatalf("attachment data %d", len(a.Data))
			}
		}
	})
}
