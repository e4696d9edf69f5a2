package datamap

import (
	"bytes"
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

// HTMLToText renders HTML as readable plain text: block elements start new
// lines, <br> breaks a line, list items get "- ", table cells are separated
// by a tab, scripts, styles and the head are dropped, entities are decoded
// and runs of white space collapse as a browser would.
func HTMLToText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b textBuf
	skip := 0       // inside script/style/head/title
	pre := 0        // inside pre
	cell := 0       // inside a table cell
	blockStart := 0 // output length when the last block began
	newline := func(n int) {
		// Ensure the output ends with n newlines (at most).
		if b.Len() == 0 {
			return
		}
		have := b.Len() - len(bytes.TrimRight(b.buf, "\n"))
		for ; have < n; have++ {
			b.WriteByte('\n')
		}
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return tidyLines(b.String())
		case html.TextToken:
			if skip > 0 {
				continue
			}
			t := strings.ReplaceAll(string(z.Text()), "\u00a0", " ")
			if pre > 0 {
				b.WriteString(t)
				continue
			}
			fields := strings.FieldsFunc(t, isHTMLSpace)
			if len(fields) == 0 {
				if t != "" && !endsWithSpaceOrNewline(&b) {
					b.WriteByte(' ')
				}
				continue
			}
			if startsWithSpace(t) && !endsWithSpaceOrNewline(&b) {
				b.WriteByte(' ')
			}
			b.WriteString(strings.Join(fields, " "))
			if isHTMLSpace(rune(t[len(t)-1])) {
				b.WriteByte(' ')
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			end := tt == html.EndTagToken
			switch tag {
			case "script", "style", "head", "title", "xml":
				if tt == html.StartTagToken {
					skip++
				} else if end && skip > 0 {
					skip--
				}
			case "pre":
				if end {
					if pre > 0 {
						pre--
					}
				} else {
					pre++
				}
				newline(1)
			case "br":
				trimTrailingSpace(&b)
				b.WriteByte('\n')
			case "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul", "ol", "hr", "address", "section", "article", "header", "footer":
				if cell > 0 && tag != "table" {
					// Outlook wraps every table cell in <p>: keep cells on one row.
					if !end && !endsWithSpaceOrNewline(&b) {
						b.WriteByte(' ')
					}
					continue
				}
				// One newline: Outlook writes every line as <p class=MsoNormal>.
				newline(1)
				if end && b.Len() == blockStart && (tag == "p" || tag == "div") && b.Len() > 0 {
					// An empty paragraph (<p>&nbsp;</p>) is a blank line.
					b.WriteByte('\n')
				}
				blockStart = -1
				if !end {
					blockStart = b.Len()
				}
				if tag == "hr" {
					b.WriteString("----\n")
				}
			case "tr":
				cell = 0
				newline(1)
			case "li":
				newline(1)
				if !end {
					b.WriteString("- ")
				}
			case "td", "th":
				if end {
					if cell > 0 {
						cell--
					}
					continue
				}
				cell++
				if !endsWithNewline(&b) && b.Len() > 0 {
					trimTrailingSpace(&b)
					b.WriteByte('\t')
				}
			case "img":
				if hasAttr {
					for {
						k, v, more := z.TagAttr()
						if string(k) == "alt" && strings.TrimSpace(string(v)) != "" && skip == 0 {
							if !endsWithSpaceOrNewline(&b) {
								b.WriteByte(' ')
							}
							b.WriteString("[" + strings.TrimSpace(string(v)) + "]")
						}
						if !more {
							break
						}
					}
				}
			}
		}
	}
}

func isHTMLSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' }

func startsWithSpace(s string) bool { return s != "" && isHTMLSpace(rune(s[0])) }

// textBuf is the output of HTMLToText; unlike strings.Builder it can drop
// trailing spaces without copying.
type textBuf struct{ buf []byte }

func (b *textBuf) Len() int               { return len(b.buf) }
func (b *textBuf) String() string         { return string(b.buf) }
func (b *textBuf) WriteByte(c byte) error { b.buf = append(b.buf, c); return nil }
func (b *textBuf) WriteString(s string)   { b.buf = append(b.buf, s...) }
func (b *textBuf) last() byte {
	if len(b.buf) == 0 {
		return '\n'
	}
	return b.buf[len(b.buf)-1]
}

func endsWithNewline(b *textBuf) bool { return b.last() == '\n' }

func endsWithSpaceOrNewline(b *textBuf) bool {
	c := b.last()
	return c == '\n' || c == ' ' || c == '\t'
}

func trimTrailingSpace(b *textBuf) { b.buf = bytes.TrimRight(b.buf, " ") }

// tidyLines trims trailing blanks on each line and collapses more than one
// empty line.
func tidyLines(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		if strings.TrimSpace(l) == "" {
			blank++
			if blank > 1 || len(out) == 0 {
				continue
			}
			l = ""
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// mobileFooters are the lines phones and mail apps append.
var mobileFooters = regexp.MustCompile(`(?i)^(sent from my \S+.*|sent from (outlook|yahoo mail|mail for windows|samsung|my samsung).*|get outlook for (ios|android).*|sent from outlook for (ios|android).*|sent via .*|von meinem \S+ gesendet|envoyé de mon \S+|enviado desde mi \S+|inviato da \S+.*)$`)

// stripSignature removes everything from the "-- " signature separator on,
// and mobile footers wherever they stand.
func stripSignature(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		t := strings.TrimRight(l, "\r")
		if t == "-- " || t == "--" || t == "—" {
			break
		}
		if mobileFooters.MatchString(strings.TrimSpace(t)) {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

var (
	replyMarker    = regexp.MustCompile(`(?i)^(-{3,}\s*original message\s*-{3,}|_{10,}|on .{1,200} wrote:|am .{1,200} schrieb .{1,80}:|le .{1,200} a écrit\s?:)$`)
	forwardMarker  = regexp.MustCompile(`(?i)^(-{3,}\s*forwarded message\s*-{3,}|begin forwarded message:|-{3,}\s*weitergeleitete nachricht\s*-{3,})$`)
	headerLine     = regexp.MustCompile(`(?i)^\*?(from|von|de|sent|gesendet|date|datum|to|an|cc|subject|betreff|objet|reply-to)\*?:`)
	forwardSubject = regexp.MustCompile(`(?i)^\s*(fw|fwd|wg|tr)\s*:`)
)

// stripQuoted removes quoted replies (">" lines, and everything from a reply
// header such as "On ... wrote:" or Outlook's "From:/Sent:" block on) and
// the header blocks of forwarded messages, keeping the forwarded text. An
// Outlook header block counts as a forward when the subject starts with
// FW:/Fwd:.
func stripQuoted(s, subject string) string {
	lines := strings.Split(s, "\n")
	var out []string
	forwarded := forwardSubject.MatchString(subject)
	for i := 0; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		if strings.HasPrefix(t, ">") {
			continue
		}
		if forwardMarker.MatchString(t) {
			i = skipHeaderBlock(lines, i+1) - 1
			continue
		}
		outlookBlock := headerLine.MatchString(t) && strings.HasPrefix(strings.ToLower(strings.TrimLeft(t, "*")), "from") || headerLine.MatchString(t) && strings.HasPrefix(strings.ToLower(strings.TrimLeft(t, "*")), "von")
		if outlookBlock && isHeaderBlock(lines, i) {
			if forwarded {
				i = skipHeaderBlock(lines, i) - 1
				continue
			}
			break
		}
		if replyMarker.MatchString(t) {
			if strings.HasPrefix(t, "_") && forwarded {
				continue
			}
			if strings.HasPrefix(t, "_") && !(i+1 < len(lines) && isHeaderBlock(lines, nextNonBlank(lines, i+1))) {
				out = append(out, lines[i])
				continue
			}
			break
		}
		out = append(out, lines[i])
	}
	return strings.Join(out, "\n")
}

func nextNonBlank(lines []string, i int) int {
	for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
		i++
	}
	return i
}

// isHeaderBlock reports whether lines[i:] start with at least two header
// lines (From: and one of Sent:/Date:/To:/Subject:).
func isHeaderBlock(lines []string, i int) bool {
	n := 0
	for j := i; j < len(lines) && j < i+8; j++ {
		t := strings.TrimSpace(lines[j])
		if t == "" {
			break
		}
		if headerLine.MatchString(t) {
			n++
		}
	}
	return n >= 2
}

// skipHeaderBlock returns the index after the header lines starting at i
// (and the blank line ending them).
func skipHeaderBlock(lines []string, i int) int {
	for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
		i++
	}
	for i < len(lines) {
		t := strings.TrimSpace(lines[i])
		if t == "" {
			return i + 1
		}
		if !headerLine.MatchString(t) {
			return i
		}
		i++
	}
	return i
}

// stripParagraphs removes each paragraph (lines between blank lines) that
// has a line matching one of the patterns, and everything after it when
// toEnd is set.
func stripParagraphs(s string, patterns []*regexp.Regexp) string {
	if len(patterns) == 0 {
		return s
	}
	paras := strings.Split(s, "\n\n")
	out := paras[:0]
	for _, p := range paras {
		drop := false
		for _, re := range patterns {
			if re.MatchString(p) {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, p)
		}
	}
	return strings.Join(out, "\n\n")
}

// normalizeSpace trims lines, turns tabs and non-breaking spaces into
// spaces, collapses runs of spaces and of empty lines.
func normalizeSpace(s string) string {
	s = strings.NewReplacer("\r", "", "\u00a0", " ", "\t", " ", "\u200b", "").Replace(s)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return tidyLines(strings.Join(lines, "\n"))
}
