package datamap

import (
	"strings"
	"testing"
	"time"
)

func TestNotifySpec(t *testing.T) {
	base := func(notify string) string {
		return "fields:\n  - name: s\n    from: [{source: subject}]\n    default: \"\"\nroutes:\n  - drivers: [fax]\n" + notify
	}
	cases := []struct {
		name, yaml string
		want       string // error substring; "" compiles
		check      func(t *testing.T, n *NotifySpec)
	}{
		{"none", base(""), "", func(t *testing.T, n *NotifySpec) {
			if n != nil {
				t.Fatal("a map without notify has a notify section")
			}
		}},
		{"defaults", base("notify:\n  events: [delivered]\n"), "", func(t *testing.T, n *NotifySpec) {
			if n.To != "sender" || n.RateLimit.Reports != 20 || n.RateLimit.Per != time.Hour || n.AttachPages {
				t.Fatalf("defaults %+v", n)
			}
		}},
		{"all", base("notify:\n  events: [delivered, failed, rejected]\n  to: ops@example.com\n  from: \"Fax <fax@example.com>\"\n  attach_pages: true\n  rate_limit: {reports: 5, per: 10m}\n  templates: {failed: f.tmpl}\n"), "", func(t *testing.T, n *NotifySpec) {
			if n.To != "ops@example.com" || n.RateLimit.Reports != 5 || n.RateLimit.Per != 10*time.Minute || n.Templates["failed"] != "f.tmpl" {
				t.Fatalf("%+v", n)
			}
		}},
		{"unknown event", base("notify:\n  events: [delivred]\n"), `notify.events[0]: unknown event "delivred"`, nil},
		{"no events", base("notify:\n  to: sender\n"), "notify.events: name at least one", nil},
		{"bad to", base("notify:\n  events: [failed]\n  to: the boss\n"), "notify.to: want sender or an address", nil},
		{"bad from", base("notify:\n  events: [failed]\n  from: fax at example\n"), "notify.from: not an address", nil},
		{"template of an unknown event", base("notify:\n  events: [failed]\n  templates: {done: x.tmpl}\n"), "notify.templates.done: unknown event", nil},
		{"unknown key", base("notify:\n  events: [failed]\n  cc: x@example.com\n"), "field cc not found", nil},
		{"negative rate", base("notify:\n  events: [failed]\n  rate_limit: {reports: -2}\n"), "notify.rate_limit", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec, err := Parse("m.yaml", []byte(c.yaml))
			var m *Map
			if err == nil {
				m, err = Compile("m", spec)
			}
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err = %v, want %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, m.Notify())
		})
	}
}

// TestReplyInfo: the headers a reply needs are read from the mail, also
// when the map rejects it.
func TestReplyInfo(t *testing.T) {
	spec, _ := Parse("m.yaml", []byte("fields:\n  - name: n\n    required: true\n    from: [{source: header:X-None}]\nroutes:\n  - drivers: [fax]\n"))
	m, err := Compile("m", spec)
	if err != nil {
		t.Fatal(err)
	}
	raw := "From: Alice <alice@example.org>\r\nReply-To: desk@example.org\r\nTo: Fax <fax@example.com>\r\nSubject: s\r\n" +
		"Message-ID: <m1@example.org>\r\nReferences: <r0@example.org>\r\nAuto-Submitted: auto-generated\r\nPrecedence: bulk\r\n" +
		"List-Id: <fax.example.org>\r\nReturn-Path: <>\r\nX-Mediagw-Report: r/delivered\r\n\r\nbody\r\n"
	res, err := m.Apply([]byte(raw))
	if err == nil {
		t.Fatal("the map did not reject the mail")
	}
	want := ReplyInfo{From: "alice@example.org", ReplyTo: "desk@example.org", To: "fax@example.com", References: "<r0@example.org>",
		ReturnPath: "<>", AutoSubmitted: "auto-generated", Precedence: "bulk", ListID: "<fax.example.org>", Report: "r/delivered"}
	if res.Message.Reply != want || res.Message.MessageID != "m1@example.org" {
		t.Fatalf("reply info %+v, message id %q\nwant %+v", res.Message.Reply, res.Message.MessageID, want)
	}
}
