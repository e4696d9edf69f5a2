package report

import (
	"strings"
	"testing"

	"github.com/mediagw/mediagw/linedriver"
)

func TestSuppressed(t *testing.T) {
	own := []string{"Fax Gateway <fax@example.com>", "other-box@example.com"}
	person := linedriver.Origin{From: "alice@example.org", To: "fax@example.com", MessageID: "m1@example.org"}
	with := func(f func(o *linedriver.Origin)) *linedriver.Origin {
		o := person
		f(&o)
		return &o
	}
	cases := []struct {
		name   string
		origin *linedriver.Origin
		want   string // "" answers; else a word of the reason
	}{
		{"a person", &person, ""},
		{"Auto-Submitted: no", with(func(o *linedriver.Origin) { o.AutoSubmitted = "no" }), ""},
		{"Auto-Submitted: auto-replied", with(func(o *linedriver.Origin) { o.AutoSubmitted = "auto-replied" }), "Auto-Submitted"},
		{"Auto-Submitted: auto-generated", with(func(o *linedriver.Origin) { o.AutoSubmitted = "Auto-Generated" }), "Auto-Submitted"},
		{"Precedence: bulk", with(func(o *linedriver.Origin) { o.Precedence = "bulk" }), "Precedence"},
		{"Precedence: list", with(func(o *linedriver.Origin) { o.Precedence = "List" }), "Precedence"},
		{"Precedence: junk", with(func(o *linedriver.Origin) { o.Precedence = "junk" }), "Precedence"},
		{"Precedence: first-class", with(func(o *linedriver.Origin) { o.Precedence = "first-class" }), ""},
		{"List-Id", with(func(o *linedriver.Origin) { o.ListID = "<fax.lists.example.org>" }), "mailing list"},
		{"empty Return-Path", with(func(o *linedriver.Origin) { o.ReturnPath = "<>" }), "Return-Path"},
		{"Return-Path of a person", with(func(o *linedriver.Origin) { o.ReturnPath = "<alice@example.org>" }), ""},
		{"MAILER-DAEMON", with(func(o *linedriver.Origin) { o.From = "MAILER-DAEMON@mx.example.org" }), "mail system"},
		{"postmaster", with(func(o *linedriver.Origin) { o.From = "postmaster@example.org" }), "mail system"},
		{"list owner", with(func(o *linedriver.Origin) { o.From = "owner-fax@lists.example.org" }), "mail system"},
		{"list request", with(func(o *linedriver.Origin) { o.From = "fax-request@lists.example.org" }), "mail system"},
		{"postmaster in Reply-To", with(func(o *linedriver.Origin) { o.ReplyTo = "postmaster@example.org" }), "mail system"},
		{"our own report", with(func(o *linedriver.Origin) { o.Report = "20260101T000000.000Z-abc/delivered" }), "X-Mediagw-Report"},
		{"the gateway's mailbox", with(func(o *linedriver.Origin) { o.From = "FAX@Example.com" }), "gateway itself"},
		{"another own address", with(func(o *linedriver.Origin) { o.From = "other-box@example.com" }), "gateway itself"},
		{"no sender", with(func(o *linedriver.Origin) { o.From = "" }), "no sender"},
		{"no header", nil, "no message header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Suppressed(c.origin, own)
			if c.want == "" && got != "" {
				t.Fatalf("suppressed (%s), want answered", got)
			}
			if c.want != "" && !strings.Contains(got, c.want) {
				t.Fatalf("Suppressed = %q, want a reason naming %q", got, c.want)
			}
		})
	}
}
