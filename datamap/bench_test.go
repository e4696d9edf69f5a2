package datamap

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"
)

// typicalMail is an Outlook-shaped mail of about size bytes: a plain and an
// HTML alternative with signature, disclaimer and quoted reply, and PDF
// attachments filling the rest.
func typicalMail(size int, attachments int) []byte {
	r := rand.New(rand.NewPCG(3, 4))
	var b bytes.Buffer
	b.WriteString("From: Jane Doe <jane.doe@contoso.example>\r\nTo: \"+12015551234@fax.example.com\" <+12015551234@fax.example.com>\r\n" +
		"Subject: RE: Order 4711\r\nDate: Tue, 10 Nov 2026 10:30:00 +0000\r\nMessage-ID: <bench@contoso.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"_mixed_\"\r\n\r\n--_mixed_\r\nContent-Type: multipart/alternative; boundary=\"_alt_\"\r\n\r\n")
	text := "Hi team,\r\n\r\nPlease fax the order.\r\nAttention: Harbour Logistics\r\n\r\nKind regards,\r\nJane\r\n-- \r\nJane Doe | Contoso\r\n\r\n" +
		"CONFIDENTIALITY NOTICE: This e-mail message is confidential.\r\n\r\nFrom: Tom <tom@harbour.example>\r\nSent: Monday\r\nSubject: Order\r\n\r\n" +
		strings.Repeat("> earlier text of the thread, quoted line by line\r\n", 40)
	b.WriteString("--_alt_\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n")
	b.WriteString("--_alt_\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><head><style>p{margin:0}</style></head><body>")
	for _, l := range strings.Split(text, "\r\n") {
		b.WriteString("<p class=MsoNormal>" + l + "<o:p></o:p></p>\r\n")
	}
	b.WriteString("</body></html>\r\n--_alt_--\r\n")
	rest := size - b.Len() - 200*attachments
	for i := 0; i < attachments; i++ {
		data := make([]byte, rest*3/4/attachments)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		copy(data, "%PDF-1.7\n")
		fmt.Fprintf(&b, "--_mixed_\r\nContent-Type: application/pdf; name=\"doc%d.pdf\"\r\nContent-Disposition: attachment; filename=\"doc%d.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", i, i)
		enc := base64.StdEncoding.EncodeToString(data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--_mixed_--\r\n")
	return b.Bytes()
}

// BenchmarkApply maps a typical 50 KB mail and a 5 MB mail with three
// attachments with the email-to-fax map. BenchmarkReference/* walks the same
// mails with go-message alone, decoding every part to io.Discard: the floor
// any mapping pays.
func BenchmarkApply(b *testing.B) {
	m := exampleMap(b, "email-to-fax")
	for _, tc := range []struct {
		name string
		raw  []byte
	}{{"50KB", typicalMail(50<<10, 1)}, {"5MB", typicalMail(5<<20, 3)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.raw)))
			b.ReportAllocs()
			for b.Loop() {
				res, err := m.Apply(tc.raw)
				if err != nil || len(res.Documents) == 0 {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkReference(b *testing.B) {
	for _, tc := range []struct {
		name string
		raw  []byte
	}{{"50KB", typicalMail(50<<10, 1)}, {"5MB", typicalMail(5<<20, 3)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.raw)))
			b.ReportAllocs()
			for b.Loop() {
				mr, err := mail.CreateReader(bytes.NewReader(tc.raw))
				if err != nil {
					b.Fatal(err)
				}
				for {
					p, err := mr.NextPart()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, p.Body); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func TestTypicalMail(t *testing.T) {
	raw := typicalMail(50<<10, 1)
	if len(raw) < 45<<10 || len(raw) > 55<<10 {
		t.Fatalf("typical mail is %d bytes", len(raw))
	}
	res, err := exampleMap(t, "email-to-fax").Apply(raw)
	if err != nil {
		t.Fatal(err)
	}
	if res.Value("recipient") != "Harbour Logistics" || len(res.Documents) != 1 {
		var sb strings.Builder
		_ = res.WriteText(&sb)
		t.Fatal(sb.String())
	}
}
