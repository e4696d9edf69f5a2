package datamap

import (
	"regexp"
	"testing"
)

func TestHTMLToText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`<p class=MsoNormal>Hello,<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>Fax:&nbsp;555-1234<o:p></o:p></p>`,
			"Hello,\n\nFax: 555-1234"},
		{`<div dir="ltr"><div>Hi,</div><div><br></div><div>two  spaces
 and a newline</div></div>`, "Hi,\n\ntwo spaces and a newline"},
		{`<head><title>t</title><style>p{}</style></head><script>alert(1)</script><b>bold</b> and <i>italic</i>`, "bold and italic"},
		{`<table><tr><td><p>PO</p></td><td><p>4711</p></td></tr><tr><td>Sum</td><td>$5</td></tr></table>`, "PO\t4711\nSum\t$5"},
		{`<ul><li>one</li><li>two</li></ul>after`, "- one\n- two\nafter"},
		{`<pre>a  b
  c</pre>`, "a  b\n  c"},
		{`line<br>next<br/><br>para`, "line\nnext\n\npara"},
		{`<img src="cid:x" alt="Logo"> text &amp; &lt;tag&gt; &euro;`, "[Logo] text & <tag> €"},
		{``, ""},
		{`<p>unclosed <b>tags`, "unclosed tags"},
	}
	for _, tt := range tests {
		if got := HTMLToText(tt.in); got != tt.want {
			t.Errorf("HTMLToText(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestStripSignature(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Body\n-- \nJohn\n+1 555", "Body"},
		{"Body\n\nSent from my iPhone", "Body\n"},
		{"Body\nGet Outlook for Android\nmore", "Body\nmore"},
		{"Body\nVon meinem iPhone gesendet", "Body"},
		{"a -- b\nc", "a -- b\nc"},
	}
	for _, tt := range tests {
		if got := stripSignature(tt.in); got != tt.want {
			t.Errorf("stripSignature(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStripQuoted(t *testing.T) {
	tests := []struct{ subject, in, want string }{
		{"Re: x", "Answer\n\nOn Mon, Nov 9, 2026 at 4:02 PM Tom <t@x> wrote:\n> old\n> text", "Answer\n"},
		{"RE: x", "Answer\n\nFrom: Tom Baker <t@x>\nSent: Monday\nTo: Jane\nSubject: x\n\nold", "Answer\n"},
		{"RE: x", "Answer\n________________________________\nFrom: Tom\nSent: Monday\nSubject: x\n\nold", "Answer"},
		{"FW: alarm", "FYI\n\nFrom: Panel\nSent: Monday\nTo: desk\nSubject: alarm\n\n123588 BA 1 1", "FYI\n\n123588 BA 1 1"},
		{"Fwd: alarm", "FYI\n---------- Forwarded message ---------\nFrom: Panel\nDate: Mon\nSubject: a\nTo: <d@x>\n\n\n123588 BA 1 1", "FYI\n\n123588 BA 1 1"},
		{"x", "Answer\n-----Original Message-----\nFrom: a", "Answer"},
		{"x", "From: the desk of Mr. X we ask\nplease fax", "From: the desk of Mr. X we ask\nplease fax"},
		{"x", "a\n> quoted\nb", "a\nb"},
	}
	for _, tt := range tests {
		if got := stripQuoted(tt.in, tt.subject); got != tt.want {
			t.Errorf("stripQuoted(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestStripParagraphsAndSpace(t *testing.T) {
	re := []*regexp.Regexp{regexp.MustCompile(`(?i)confidential`)}
	in := "Keep\nthis\n\nThis e-mail is CONFIDENTIAL and\nfor you only.\n\nAnd this"
	if got, want := stripParagraphs(in, re), "Keep\nthis\n\nAnd this"; got != want {
		t.Errorf("stripParagraphs = %q, want %q", got, want)
	}
	if got, want := normalizeSpace("  a \t b\u00a0c \n\n\n\n d\u200b \r\n"), "a b c\n\nd"; got != want {
		t.Errorf("normalizeSpace = %q, want %q", got, want)
	}
}
