package datamap

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/unicode/norm"

	"github.com/mediagw/mediagw/datamap/mailparse"
	"github.com/mediagw/mediagw/internal/fonts"
	"github.com/mediagw/mediagw/internal/sniff"
	"github.com/mediagw/mediagw/phone"
)

// Result is the record a map makes of one mail.
type Result struct {
	Map       string
	Fields    []Field    // in spec order
	Documents []Document // in delivery order
	Routes    []string   // driver names chosen by the routing rules
	Route     string     // the rule that chose them
	// Skipped lists what the map left out under `unsupported: skip`:
	// attachments no documents entry takes, and parts of the message that
	// were not read. Empty when nothing was left out.
	Skipped []Skipped
	// Warnings are about the documents as delivered, e.g. characters of a
	// text no installed font can draw.
	Warnings []string
	Message  MessageInfo
}

// Skipped is an attachment (or part of the message) that is not delivered,
// and why.
type Skipped struct {
	Name   string // file name, or "part 1.3"
	Type   string // what the content is, e.g. "application/zip"
	Reason string // e.g. "a ZIP archive, which no documents entry takes"
}

func (s Skipped) String() string { return s.Name + ": " + s.Reason }

// Field is one extracted, validated value with its provenance.
type Field struct {
	Name   string
	Value  string
	Type   string
	Source string // which part or header the value came from
	Rule   string // which extraction produced it
}

// Document is something a line driver delivers.
type Document struct {
	Name      string
	MediaType string
	Data      []byte
	Source    string // part number or "body"
}

// Part summarises one MIME part of the mail.
type Part = mailparse.Part

// MessageInfo describes the mail itself.
type MessageInfo struct {
	Subject    string
	From       []string
	To         []string
	Cc         []string
	Date       string
	MessageID  string
	BodySource string // which parts the body text came from
	Body       string // the body after pre-processing
	Parts      []Part
	Warnings   []string // e.g. "winmail.dat (TNEF) attachment not decoded"
	// Reply holds what answering the sender needs (delivery reports):
	// bare addresses and the headers that mark machine-sent mail.
	Reply ReplyInfo
}

// ReplyInfo is the part of a message's header a reply to it needs.
type ReplyInfo struct {
	From          string // bare address of the first From
	ReplyTo       string // bare address of the first Reply-To
	To            string // bare address of the first To
	References    string
	ReturnPath    string
	AutoSubmitted string
	Precedence    string
	ListID        string
	Report        string // X-Mediagw-Report: the message is a report of ours
}

// Value returns the value of a field, "" when there is no such field.
func (r *Result) Value(name string) string {
	for _, f := range r.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// Values returns the fields as a map.
func (r *Result) Values() map[string]string {
	out := make(map[string]string, len(r.Fields))
	for _, f := range r.Fields {
		out[f.Name] = f.Value
	}
	return out
}

// Rejection is returned by Apply when the mail cannot be mapped: it names
// the field (or "message", "documents", "route") and the reason.
type Rejection struct {
	Field  string
	Reason string
	// Tried is set when a required field found nothing: each source it was
	// looked for in, what that held and the rule it was tried with. The
	// preview prints it; Error does not (a reason stays one short line).
	Tried []Tried
}

// Tried is one place a field was looked for without result.
type Tried struct {
	Source string `json:"source"`           // e.g. "Subject", "To local (fax@example.com)"
	Held   string `json:"held"`             // what it held (the first 200 characters)
	Absent bool   `json:"absent,omitempty"` // the mail has no such header, address or part
	Rule   string `json:"rule"`             // e.g. "regex `^(?P<value>…)$`"
}

func (r *Rejection) Error() string { return r.Field + ": " + r.Reason }

// Detail is Error followed, when Tried is set, by where the field was
// looked for, on the same line: the reason an operator reads in a rejected
// mail's .reason file or the reject log.
func (r *Rejection) Detail() string {
	if len(r.Tried) == 0 {
		return r.Error()
	}
	parts := make([]string, 0, len(r.Tried))
	for _, t := range r.Tried {
		held := "absent"
		if !t.Absent {
			held = strconv.Quote(truncate(t.Held, 60))
		}
		parts = append(parts, t.Source+" "+held+" by "+t.Rule)
	}
	return r.Error() + " (looked in: " + strings.Join(parts, "; ") + ")"
}

// env is what expressions see.
type env struct {
	Fields      map[string]string   `expr:"fields"`
	Subject     string              `expr:"subject"`
	Body        string              `expr:"body"`
	From        string              `expr:"from"`
	To          []string            `expr:"to"`
	Cc          []string            `expr:"cc"`
	Attachments []envAttachment     `expr:"attachments"`
	Header      func(string) string `expr:"header"`
}

type envAttachment struct {
	Name         string `expr:"name"`
	Type         string `expr:"type"`          // what the content is
	DeclaredType string `expr:"declared_type"` // the Content-Type the sender gave
	Size         int    `expr:"size"`
	Inline       bool   `expr:"inline"`
}

// state is one application of a map.
type state struct {
	m    *Map
	msg  *mailparse.Message
	body string
	env  env
	res  *Result
}

// Apply maps one raw RFC 5322 message. When the mail cannot be mapped the
// error is a *Rejection; the Result then holds what was found up to that
// point (for the preview), and the caller must not deliver it. Apply never
// panics on any input.
func (m *Map) Apply(raw []byte) (res *Result, err error) {
	res = &Result{Map: m.name}
	defer func() {
		if p := recover(); p != nil {
			// A bug of ours must not take the gateway down with one odd mail.
			err = &Rejection{Field: "message", Reason: fmt.Sprintf("internal error while mapping: %v", p)}
		}
		var rej *Rejection
		if errors.As(err, &rej) {
			rej.Reason = cleanReason(rej.Reason)
		}
	}()
	maxDoc := m.spec.Limits.MaxDocumentBytes
	if maxDoc == 0 {
		maxDoc = 32 << 20
	}
	msg, perr := mailparse.Parse(bytes.NewReader(raw), mailparse.Options{
		MaxTextBytes:       m.spec.Limits.MaxTextBytes,
		MaxAttachmentBytes: maxDoc,
		MaxParts:           m.spec.Limits.MaxParts,
		DefaultCharset:     m.spec.DefaultCharset,
		Keep:               m.keep,
	})
	if perr != nil {
		return res, &Rejection{Field: "message", Reason: perr.Error()}
	}
	s := &state{m: m, msg: msg, res: res}
	s.info()
	s.env = env{
		Fields:  map[string]string{},
		Subject: msg.Subject,
		Body:    s.body,
		Header: func(name string) string {
			if v := msg.HeaderValues(name); len(v) > 0 {
				return v[0]
			}
			return ""
		},
	}
	if len(msg.From) > 0 {
		s.env.From = msg.From[0].Address
	}
	for _, a := range msg.To {
		s.env.To = append(s.env.To, a.Address)
	}
	for _, a := range msg.Cc {
		s.env.Cc = append(s.env.Cc, a.Address)
	}
	for _, a := range msg.Attachments {
		s.env.Attachments = append(s.env.Attachments, envAttachment{Name: a.Filename, Type: contentType(a), DeclaredType: a.MediaType, Size: int(a.Size), Inline: a.Inline})
	}
	// On a rejected field the others are still worked out, so that the
	// preview shows the whole picture; the first rejection is returned.
	var first *Rejection
	for _, f := range m.fields {
		if rej := s.field(f); rej != nil && first == nil {
			first = rej
		}
	}
	if first != nil {
		return res, first
	}
	for i, r := range m.rejects {
		ok, err := s.cond(r.when)
		if err != nil {
			return res, &Rejection{Field: r.spec.Field, Reason: fmt.Sprintf("rejects[%d]: condition failed: %v", i, err)}
		}
		if ok {
			return res, &Rejection{Field: r.spec.Field, Reason: r.spec.Reason}
		}
	}
	if rej := s.documents(); rej != nil {
		return res, rej
	}
	s.glyphs()
	if rej := s.route(); rej != nil {
		return res, rej
	}
	return res, nil
}

// keep decides, from its metadata, whether an attachment's content is read:
// only when some document entry may deliver it.
func (m *Map) keep(a *mailparse.Attachment) bool {
	for _, d := range m.docs {
		if d.matches(a) {
			return true
		}
	}
	return false
}

func (d *document) matches(a *mailparse.Attachment) bool {
	if d.spec.Body || (a.Inline && !d.spec.Inline) {
		return false
	}
	if len(d.types) > 0 {
		ok := false
		mt := contentType(a)
		for _, t := range d.types {
			if t == mt || (strings.HasSuffix(t, "/*") && strings.HasPrefix(mt, t[:len(t)-1])) || t == "*/*" {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if d.names != nil && !d.names.MatchString(a.Filename) {
		return false
	}
	if d.exclude != nil && d.exclude.MatchString(a.Filename) {
		return false
	}
	return true
}

// contentType is what an attachment's content is, without parameters.
func contentType(a *mailparse.Attachment) string {
	mt := a.Type.MediaType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	return mt
}

// excluded: an attachment entry's exclude_names drops the file on purpose.
func (m *Map) excluded(a *mailparse.Attachment) bool {
	for _, d := range m.docs {
		if !d.spec.Body && d.exclude != nil && d.exclude.MatchString(a.Filename) {
			return true
		}
	}
	return false
}

// leftOut checks what the documents did not take: parts of the message
// that were not read, and attachments no entry took (when the map delivers
// attachments at all). Under `unsupported: skip` they are listed in
// Result.Skipped; otherwise the first is the rejection.
func (s *state) leftOut(used map[*mailparse.Attachment]bool) *Rejection {
	skip := s.m.spec.Unsupported == UnsupportedSkip
	for _, why := range s.msg.Incomplete {
		if !skip {
			return &Rejection{Field: "message", Reason: why + " (limits.max_parts; or unsupported: skip to deliver the rest)"}
		}
		s.res.Skipped = append(s.res.Skipped, Skipped{Name: "rest of the message", Reason: why})
	}
	takesFiles := false
	for _, d := range s.m.docs {
		takesFiles = takesFiles || !d.spec.Body
	}
	if !takesFiles {
		return nil
	}
	for _, a := range s.msg.Attachments {
		if used[a] || a.Inline || s.m.excluded(a) {
			continue
		}
		name := a.Filename
		if name == "" {
			name = "part " + a.Path
		}
		why := a.Type.Name
		if a.Type.Kind == sniff.Unknown {
			why += ", which cannot be delivered as pages"
		} else {
			why += ", which no documents entry takes (" + s.m.docTypes() + ")"
		}
		if !skip {
			return &Rejection{Field: "documents", Reason: fmt.Sprintf("%s (part %s) is %s; or unsupported: skip to deliver the rest", name, a.Path, why)}
		}
		s.res.Skipped = append(s.res.Skipped, Skipped{Name: name, Type: contentType(a), Reason: why})
	}
	return nil
}

// docTypes lists the types the attachment entries take, for messages.
func (m *Map) docTypes() string {
	var types []string
	for _, d := range m.docs {
		if d.spec.Body {
			continue
		}
		if len(d.types) == 0 {
			types = append(types, "names "+d.spec.Names)
		}
		for _, t := range d.types {
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	return strings.Join(types, ", ")
}

func (s *state) info() {
	msg, m := s.msg, s.m
	info := &s.res.Message
	info.Subject = msg.Subject
	info.Date = msg.Date
	info.MessageID = msg.MessageID
	for _, a := range msg.From {
		info.From = append(info.From, a.String())
	}
	for _, a := range msg.To {
		info.To = append(info.To, a.String())
	}
	for _, a := range msg.Cc {
		info.Cc = append(info.Cc, a.String())
	}
	info.Parts = msg.Parts
	info.Warnings = msg.Warnings
	first := func(as []mailparse.Address) string {
		if len(as) > 0 {
			return as[0].Address
		}
		return ""
	}
	header := func(name string) string {
		if v := msg.HeaderValues(name); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	info.Reply = ReplyInfo{
		From: first(msg.From), ReplyTo: first(msg.ReplyTo), To: first(msg.To),
		References: header("References"), ReturnPath: header("Return-Path"),
		AutoSubmitted: header("Auto-Submitted"), Precedence: header("Precedence"),
		ListID: header("List-Id"), Report: header("X-Mediagw-Report"),
	}

	body := msg.Text
	info.BodySource = "text part " + strings.Join(msg.TextParts, ", ")
	useHTML := msg.HTML != "" && (strings.TrimSpace(body) == "" || m.spec.Preprocess.PreferHTML)
	switch {
	case useHTML && m.htmlToText:
		body = HTMLToText(msg.HTML)
		info.BodySource = "HTML part " + strings.Join(msg.HTMLParts, ", ") + " as text"
	case useHTML:
		body = msg.HTML
		info.BodySource = "HTML part " + strings.Join(msg.HTMLParts, ", ")
	case len(msg.TextParts) == 0 && strings.TrimSpace(body) == "":
		info.BodySource = "none"
	}
	p := m.spec.Preprocess
	if p.StripQuoted {
		body = stripQuoted(body, msg.Subject)
	}
	if p.StripSignature {
		body = stripSignature(body)
	}
	body = stripParagraphs(body, m.disclaimers)
	if p.NormalizeSpace {
		body = normalizeSpace(body)
	} else {
		body = strings.Trim(body, "\n")
	}
	s.body = body
	info.Body = body
}

type candidate struct {
	text  string
	label string
}

func (s *state) candidates(src *source) []candidate {
	msg := s.msg
	switch src.kind {
	case "subject":
		return []candidate{{msg.Subject, "Subject"}}
	case "body":
		return []candidate{{s.body, "body (" + s.res.Message.BodySource + ")"}}
	case "text":
		return []candidate{{msg.Text, "text part " + strings.Join(msg.TextParts, ", ")}}
	case "html":
		return []candidate{{msg.HTML, "HTML part " + strings.Join(msg.HTMLParts, ", ")}}
	case "header":
		var out []candidate
		for _, v := range msg.HeaderValues(src.header) {
			if src.header == "Message-Id" {
				v = strings.Trim(v, "<>")
			}
			out = append(out, candidate{v, "header " + src.header})
		}
		return out
	case "attachment.names":
		var out []candidate
		for _, a := range msg.Attachments {
			out = append(out, candidate{a.Filename, "attachment name (part " + a.Path + ")"})
		}
		return out
	case "address":
		var list []mailparse.Address
		name := ""
		switch src.addrList {
		case "from":
			list, name = msg.From, "From"
		case "to":
			list, name = msg.To, "To"
		case "cc":
			list, name = msg.Cc, "Cc"
		case "reply_to":
			list, name = msg.ReplyTo, "Reply-To"
		}
		var out []candidate
		for i, a := range list {
			var v string
			switch src.addrPart {
			case "address":
				v = a.Address
			case "name":
				v = a.Name
			case "local":
				v = a.Local()
			case "domain":
				v = a.Domain()
			}
			label := name
			if len(list) > 1 {
				label = fmt.Sprintf("%s[%d]", name, i+1)
			}
			out = append(out, candidate{v, label + " " + src.addrPart + " (" + a.Address + ")"})
		}
		return out
	}
	return nil
}

// extract applies a source's extraction to one text.
func (src *source) extract(text string) (string, bool) {
	ss := src.spec
	if ss.Line != 0 {
		var lines []string
		for _, l := range strings.Split(text, "\n") {
			if strings.TrimSpace(l) != "" {
				lines = append(lines, strings.TrimRight(l, "\r"))
			}
		}
		i := ss.Line - 1
		if ss.Line < 0 {
			i = len(lines) + ss.Line
		}
		if i < 0 || i >= len(lines) {
			return "", false
		}
		text = lines[i]
	} else if src.lineMatch != nil {
		found := false
		for _, l := range strings.Split(text, "\n") {
			if src.lineMatch.MatchString(l) {
				text, found = strings.TrimRight(l, "\r"), true
				break
			}
		}
		if !found {
			return "", false
		}
	}
	var v string
	switch {
	case src.key != nil:
		m := src.key.FindStringSubmatch(text)
		if m == nil {
			return "", false
		}
		v = m[1]
	case src.regex != nil:
		m := src.regex.FindStringSubmatch(text)
		if m == nil {
			return "", false
		}
		v = m[src.group]
	case ss.Split != nil:
		var items []string
		if ss.Split.Separator == "" {
			items = strings.Fields(text)
		} else {
			items = strings.Split(text, ss.Split.Separator)
		}
		i := ss.Split.Index - 1
		if ss.Split.Index < 0 {
			i = len(items) + ss.Split.Index
		}
		if i < 0 || i >= len(items) {
			return "", false
		}
		v = items[i]
	case src.colStart > 0:
		runes := []rune(text)
		start, end := src.colStart-1, len(runes)
		if src.colEnd > 0 && src.colEnd < end {
			end = src.colEnd
		}
		if start >= end {
			return "", false
		}
		v = string(runes[start:end])
	default:
		v = text
	}
	v = strings.TrimSpace(v)
	return v, v != ""
}

func (t *transform) apply(v string) (string, error) {
	switch t.op {
	case "trim":
		return strings.TrimSpace(v), nil
	case "upper":
		return strings.ToUpper(v), nil
	case "lower":
		return strings.ToLower(v), nil
	case "digits":
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, v), nil
	case "collapse_space":
		return strings.Join(strings.Fields(v), " "), nil
	case "replace":
		return t.replace.ReplaceAllString(v, t.with), nil
	case "lookup":
		if out, ok := t.lookup[v]; ok {
			return out, nil
		}
		if t.els != nil {
			return *t.els, nil
		}
		return "", fmt.Errorf("%q is not in the lookup table", v)
	}
	return v, nil
}

func (s *state) field(f *field) *Rejection {
	name := f.spec.Name
	out := Field{Name: name, Type: f.spec.Type}
	if out.Type == "" {
		out.Type = "string"
	}
	found := false
	if f.expr != nil {
		v, err := expr.Run(f.expr, s.env)
		if err != nil {
			return s.reject(out, name, "expression failed: "+oneLine(err))
		}
		str := ""
		if v != nil {
			str = fmt.Sprint(v)
		}
		if str != "" {
			out.Value, out.Source, out.Rule, found = str, "expression", "expr "+quoteRule(truncate(strings.Join(strings.Fields(f.spec.Expr), " "), 60)), true
		}
	}
	var tried []Tried
	for _, src := range f.sources {
		if found {
			break
		}
		cands := s.candidates(src)
		if len(cands) == 0 {
			label := src.label
			if src.kind == "header" {
				label = "header " + src.header
			}
			tried = append(tried, Tried{Source: label, Absent: true, Rule: src.rule})
		}
		for _, c := range cands {
			v, ok := src.extract(c.text)
			if !ok {
				tried = append(tried, Tried{Source: c.label, Held: truncate(c.text, 200), Rule: src.rule})
				continue
			}
			for _, t := range f.transforms {
				var err error
				if v, err = t.apply(v); err != nil {
					out.Value, out.Source, out.Rule = v, c.label, src.rule
					return s.reject(out, name, err.Error()+" (from "+c.label+")")
				}
			}
			if strings.TrimSpace(v) == "" {
				tried = append(tried, Tried{Source: c.label, Held: truncate(c.text, 200), Rule: src.rule + " (empty after the transforms)"})
				continue
			}
			out.Value, out.Source, out.Rule, found = v, c.label, src.rule, true
			break
		}
	}
	if !found {
		switch {
		case f.spec.Required:
			rej := s.reject(out, name, "no match in "+f.missing)
			rej.Tried = tried
			return rej
		default:
			out.Value, out.Source = *f.spec.Default, "default"
			out.Rule = "no match in " + f.missing
			s.add(out)
			s.addWritten(f, out)
			return nil
		}
	}
	written := out
	v, rule, err := s.validate(f, out.Value)
	var perr *phone.Error
	switch {
	case errors.As(err, &perr):
		// It quotes what was written and names the forms accepted.
		return s.reject(out, name, fmt.Sprintf("%s (from %s)", err, out.Source))
	case err != nil:
		return s.reject(out, name, fmt.Sprintf("%s (value %q from %s)", err, truncate(out.Value, 80), out.Source))
	}
	out.Value = v
	if rule != "" {
		out.Rule += "; " + rule
	}
	s.add(out)
	s.addWritten(f, written)
	return nil
}

// WrittenSuffix names the field that keeps a fax number as the sender
// wrote it, beside the E.164 one: fax_number_as_written.
const WrittenSuffix = "_as_written"

// addWritten keeps a fax number as written, for reports and the preview.
func (s *state) addWritten(f *field, written Field) {
	if f.spec.Type != "fax" {
		return
	}
	written.Name += WrittenSuffix
	written.Type = "string"
	written.Rule += " (as written, before E.164)"
	s.add(written)
}

func (s *state) add(f Field) {
	s.res.Fields = append(s.res.Fields, f)
	s.env.Fields[f.Name] = f.Value
}

func (s *state) reject(f Field, name, reason string) *Rejection {
	if f.Value != "" {
		f.Rule += " [rejected]"
		s.res.Fields = append(s.res.Fields, f)
	}
	return &Rejection{Field: name, Reason: reason}
}

func (s *state) validate(f *field, v string) (string, string, error) {
	rule := ""
	switch f.spec.Type {
	case "integer":
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return "", "", errors.New("not an integer")
		}
	case "phone", "fax":
		n, err := phone.Parse(v, s.m.spec.Region)
		if err != nil {
			return "", "", err
		}
		rule = fmt.Sprintf("E.164, %s in %s", strings.ReplaceAll(string(n.Type), "_", " "), n.Region)
		if n.AccessCode != "" {
			rule += fmt.Sprintf(" (outside-line code %q dropped)", n.AccessCode)
		}
		v = n.E164
	case "email":
		a, err := mail.ParseAddress(v)
		if err != nil {
			return "", "", errors.New("not an email address")
		}
		v = a.Address
	}
	if f.pattern != nil && !f.pattern.MatchString(v) {
		return "", "", fmt.Errorf("does not match pattern %q", f.spec.Pattern)
	}
	if f.allowed != nil && !f.allowed[v] {
		return "", "", fmt.Errorf("not one of the allowed values %s", strings.Join(f.spec.Allowed, ", "))
	}
	return v, rule, nil
}

func (s *state) cond(p *vm.Program) (bool, error) {
	if p == nil {
		return true, nil
	}
	v, err := expr.Run(p, s.env)
	if err != nil {
		return false, errors.New(oneLine(err))
	}
	b, _ := v.(bool)
	return b, nil
}

func (s *state) documents() *Rejection {
	used := map[*mailparse.Attachment]bool{}
	for _, d := range s.m.docs {
		ok, err := s.cond(d.when)
		if err != nil {
			return &Rejection{Field: "documents", Reason: d.label + ": condition failed: " + err.Error()}
		}
		if !ok {
			continue
		}
		n := 0
		if d.spec.Body {
			if strings.TrimSpace(s.body) != "" {
				name := d.spec.Name
				if name == "" {
					name = "body.txt"
				}
				s.res.Documents = append(s.res.Documents, Document{Name: name, MediaType: "text/plain; charset=utf-8", Data: []byte(s.body), Source: "body (" + s.res.Message.BodySource + ")"})
				n++
			}
		} else {
			for _, a := range s.msg.Attachments {
				if used[a] || !d.matches(a) {
					continue
				}
				used[a] = true
				label := a.Filename
				if label == "" {
					label = "part " + a.Path
				}
				switch {
				case a.TooLarge:
					return &Rejection{Field: "documents", Reason: fmt.Sprintf("%s (part %s, %d bytes) is larger than the limit of %d bytes", label, a.Path, a.Size, s.maxDoc())}
				case a.Err != nil:
					return &Rejection{Field: "documents", Reason: fmt.Sprintf("%s (part %s) cannot be decoded: %v", label, a.Path, a.Err)}
				case !a.Kept:
					return &Rejection{Field: "documents", Reason: fmt.Sprintf("%s (part %s) was not read", label, a.Path)}
				}
				mt := a.Type.MediaType
				if a.Type.Kind == sniff.Text && mt == "text/plain" && !utf8.Valid(a.Data) {
					// 8-bit text that names no charset.
					mt = mime.FormatMediaType("text/plain", map[string]string{"charset": s.defaultCharset()})
				}
				s.res.Documents = append(s.res.Documents, Document{Name: docName(a), MediaType: mt, Data: a.Data, Source: "part " + a.Path})
				n++
			}
		}
		if n == 0 && d.spec.Required {
			reason := d.label + ": nothing matched"
			if d.spec.Body {
				reason = d.label + ": the body is empty"
			} else if len(d.types) > 0 {
				reason += " (types " + strings.Join(d.types, ", ") + ")"
			}
			for _, a := range s.msg.Attachments {
				if a.Role == mailparse.RoleTNEF {
					reason += "; winmail.dat (TNEF) attachment not decoded: ask the sender to send as HTML or plain text"
					break
				}
			}
			return &Rejection{Field: "documents", Reason: reason}
		}
	}
	return s.leftOut(used)
}

func (s *state) defaultCharset() string {
	if s.m.spec.DefaultCharset != "" {
		return s.m.spec.DefaultCharset
	}
	return "windows-1252"
}

// glyphs warns about characters of the text documents that no installed
// font can draw (the fax would show a box).
func (s *state) glyphs() {
	chain := fonts.Default()
	for _, d := range s.res.Documents {
		if !strings.HasPrefix(d.MediaType, "text/plain") {
			continue
		}
		text := string(d.Data)
		if _, params, err := mime.ParseMediaType(d.MediaType); err == nil && params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8") {
			enc, err := htmlindex.Get(params["charset"])
			if err != nil {
				continue
			}
			if text, err = enc.NewDecoder().String(text); err != nil {
				continue
			}
		}
		if missing := chain.Missing(norm.NFC.String(text)); len(missing) > 0 {
			s.res.Warnings = append(s.res.Warnings, d.Name+": "+chain.Describe(missing))
		}
	}
}

func (s *state) maxDoc() int64 {
	if s.m.spec.Limits.MaxDocumentBytes > 0 {
		return s.m.spec.Limits.MaxDocumentBytes
	}
	return 32 << 20
}

// docName is the file name, or one made from the part number and type.
func docName(a *mailparse.Attachment) string {
	if a.Filename != "" {
		return a.Filename
	}
	ext := ""
	if i := strings.IndexByte(a.MediaType, '/'); i >= 0 {
		ext = "." + path.Base(a.MediaType[i+1:])
	}
	return "part-" + a.Path + ext
}

func (s *state) route() *Rejection {
	for i, r := range s.m.routes {
		ok, err := s.cond(r.when)
		if err != nil {
			return &Rejection{Field: "route", Reason: fmt.Sprintf("rule %d: condition failed: %v", i+1, err)}
		}
		if ok {
			s.res.Routes = append([]string(nil), r.spec.Drivers...)
			s.res.Route = r.spec.Name
			if s.res.Route == "" {
				s.res.Route = fmt.Sprintf("rule %d", i+1)
			}
			return nil
		}
	}
	return &Rejection{Field: "route", Reason: "no routing rule matched"}
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// cleanReason keeps a rejection reason printable and short: it ends up in a
// mail folder and in logs.
func cleanReason(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, strings.TrimSpace(s))
	return truncate(s, 300)
}
