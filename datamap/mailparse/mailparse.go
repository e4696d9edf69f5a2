// Package mailparse reads an RFC 5322 message the way a data map needs it:
// decoded headers and addresses, one readable text body (plain text, or the
// HTML part when there is no plain part), the HTML body, and the attachments
// in the order attached, with decoded file names. Charsets beyond UTF-8 and
// the quoted-printable and base64 transfer encodings are decoded by
// emersion/go-message and its charset package.
//
// Memory is bounded: text parts are read up to Options.MaxTextBytes, and an
// attachment's content is only kept when Options.Keep asks for it (and up to
// Options.MaxAttachmentBytes); the others are streamed through and counted.
package mailparse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // ISO-8859-x, Windows-125x, Shift_JIS, ...
	"github.com/emersion/go-message/mail"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"

	"github.com/mediagw/mediagw/internal/sniff"
)

// Options bound what Parse reads and keeps.
type Options struct {
	MaxTextBytes       int64 // per text part; default 1 MiB
	MaxAttachmentBytes int64 // per kept attachment; default 32 MiB
	MaxParts           int   // default 500
	MaxDepth           int   // nesting of multiparts and messages; default 16
	MaxHeaderBytes     int64 // per header block; default 256 KiB
	// DefaultCharset reads 8-bit text that names no charset (or claims
	// us-ascii) and is not UTF-8: headers, text parts. Default
	// windows-1252, the code page of most such mail.
	DefaultCharset string
	// Keep reports whether the content of an attachment is needed. It sees
	// the attachment's metadata and the type sniffed from its first bytes
	// (Data is nil, Size is 0). Nil keeps none.
	Keep func(a *Attachment) bool
}

func (o Options) withDefaults() Options {
	if o.MaxTextBytes <= 0 {
		o.MaxTextBytes = 1 << 20
	}
	if o.MaxAttachmentBytes <= 0 {
		o.MaxAttachmentBytes = 32 << 20
	}
	if o.MaxParts <= 0 {
		o.MaxParts = 500
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 16
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 256 << 10
	}
	if o.DefaultCharset == "" {
		o.DefaultCharset = "windows-1252"
	}
	return o
}

// Address is one mailbox of an address header.
type Address struct {
	Name    string
	Address string
}

// Local is the part of the address before the last "@".
func (a Address) Local() string {
	if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
		return a.Address[:i]
	}
	return a.Address
}

// Domain is the part of the address after the last "@".
func (a Address) Domain() string {
	if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
		return a.Address[i+1:]
	}
	return ""
}

func (a Address) String() string {
	if a.Name == "" {
		return a.Address
	}
	return fmt.Sprintf("%q <%s>", a.Name, a.Address)
}

// Roles of a part.
const (
	RoleContainer  = "container"  // multipart/*
	RoleMessage    = "message"    // message/rfc822 (forwarded as attachment)
	RoleText       = "text"       // part of the plain-text body
	RoleHTML       = "html"       // part of the HTML body
	RoleAttachment = "attachment" // a file
	RoleInline     = "inline"     // a file shown inline (e.g. an image referenced by the HTML)
	RoleTNEF       = "tnef"       // Outlook winmail.dat, not decoded
)

// Part summarises one MIME part.
type Part struct {
	Path        string // "1", "1.2", ...; "" for a multipart root
	MediaType   string
	Charset     string
	Encoding    string
	Disposition string
	Filename    string
	ContentID   string
	Size        int64 // decoded bytes
	Role        string
	// Content is the media type found in the content of a file part (see
	// package sniff), whatever MediaType claims; "" for other parts.
	Content string
}

// Attachment is a file part. Data is nil unless Options.Keep asked for it.
type Attachment struct {
	Part
	Inline   bool  // shown inline, not offered as a file
	Kept     bool  // Data holds the whole content
	TooLarge bool  // more than MaxAttachmentBytes; Data is nil
	Err      error // decoding failed (e.g. corrupt base64); Data may be partial
	Data     []byte
	// Type is what the content is (from the whole content when kept, else
	// from its first bytes).
	Type sniff.Type
}

// Message is a parsed message.
type Message struct {
	Header    message.Header
	Subject   string
	From      []Address
	To        []Address
	Cc        []Address
	ReplyTo   []Address
	Date      string
	MessageID string

	Text      string // plain-text body, parts joined by a blank line
	HTML      string // HTML body
	TextParts []string
	HTMLParts []string

	Attachments []*Attachment
	Parts       []Part
	Warnings    []string
	dec         encoding.Encoding // for 8-bit header text without a charset

	// Incomplete lists why parts of the message were not read (too many
	// parts, nested too deep); empty when the whole message was read.
	Incomplete []string
}

// HeaderValues returns every value of a header field, decoded (RFC 2047).
func (m *Message) HeaderValues(name string) []string {
	var out []string
	fields := m.Header.FieldsByKey(name)
	for fields.Next() {
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		out = append(out, decode8bit(strings.TrimSpace(v), m.dec))
	}
	return out
}

// ErrMalformed is wrapped when the message cannot be read at all.
var ErrMalformed = errors.New("malformed message")

// Parse reads a message. It returns an error (wrapping ErrMalformed) only
// when the top-level header cannot be read; damage further in is reported in
// Warnings and the parts read so far are kept.
func Parse(r io.Reader, opts Options) (*Message, error) {
	opts = opts.withDefaults()
	dec, derr := htmlindex.Get(opts.DefaultCharset)
	if derr != nil {
		return nil, fmt.Errorf("mailparse: default charset %q: %w", opts.DefaultCharset, derr)
	}
	e, err := message.ReadWithOptions(r, &message.ReadOptions{MaxHeaderBytes: opts.MaxHeaderBytes})
	p := &parser{opts: opts, msg: &Message{dec: dec}}
	if e == nil {
		return nil, fmt.Errorf("mailparse: %w: header: %v", ErrMalformed, err)
	}
	if err != nil {
		p.warn("message: %v", err)
	}
	m := p.msg
	m.Header = e.Header
	h := mail.Header{Header: e.Header}
	var serr error
	m.Subject, serr = h.Subject()
	if serr != nil {
		p.warn("Subject: %v", serr)
		m.Subject = h.Get("Subject")
	}
	m.Subject = p.text(strings.TrimSpace(m.Subject))
	m.From = p.addresses(h, "From")
	m.To = p.addresses(h, "To")
	m.Cc = p.addresses(h, "Cc")
	m.ReplyTo = p.addresses(h, "Reply-To")
	m.Date = strings.TrimSpace(h.Get("Date"))
	m.MessageID = strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")

	b := p.entity(e, "", 0)
	m.Text = strings.Join(b.text, "\n\n")
	m.HTML = strings.Join(b.html, "\n")
	return m, nil
}

type parser struct {
	opts  Options
	msg   *Message
	parts int
}

func (p *parser) warn(format string, args ...any) {
	w := validUTF8(fmt.Sprintf(format, args...))
	if len(p.msg.Warnings) < 50 && !slices.Contains(p.msg.Warnings, w) {
		p.msg.Warnings = append(p.msg.Warnings, w)
	}
}

// incomplete records that part of the message was not read.
func (p *parser) incomplete(reason string) {
	p.warn("%s", reason)
	if len(p.msg.Incomplete) < 10 {
		p.msg.Incomplete = append(p.msg.Incomplete, reason)
	}
}

func (p *parser) addresses(h mail.Header, key string) []Address {
	if h.Get(key) == "" {
		return nil
	}
	list, err := h.AddressList(key)
	if err == nil {
		out := make([]Address, 0, len(list))
		for _, a := range list {
			out = append(out, Address{Name: p.text(a.Name), Address: validUTF8(a.Address)})
		}
		return out
	}
	// Broken header: keep what looks like addresses so that rules still see them.
	p.warn("%s: %v", key, err)
	raw, terr := h.Text(key)
	if terr != nil {
		raw = h.Get(key)
	}
	var out []Address
	for _, s := range strings.Split(raw, ",") {
		s = strings.TrimSpace(s)
		if i := strings.LastIndexByte(s, '<'); i >= 0 {
			addr := s[i+1:]
			if j := strings.IndexByte(addr, '>'); j >= 0 {
				addr = addr[:j]
			}
			out = append(out, Address{Name: p.text(strings.Trim(strings.TrimSpace(s[:i]), `"`)), Address: validUTF8(strings.TrimSpace(addr))})
		} else if s != "" {
			out = append(out, Address{Address: validUTF8(s)})
		}
	}
	return out
}

type bodies struct {
	text []string
	html []string
}

func childPath(parent string, i int) string {
	if parent == "" {
		return fmt.Sprint(i)
	}
	return fmt.Sprintf("%s.%d", parent, i)
}

// entity walks one entity. path is its part number ("" for a multipart root).
func (p *parser) entity(e *message.Entity, path string, depth int) bodies {
	var out bodies
	p.parts++
	if p.parts > p.opts.MaxParts {
		if p.parts == p.opts.MaxParts+1 {
			p.incomplete(fmt.Sprintf("more than %d MIME parts: the parts from %s on were not read", p.opts.MaxParts, orRoot(path)))
		}
		return out
	}
	if depth > p.opts.MaxDepth {
		p.incomplete(fmt.Sprintf("part %s is nested deeper than %d levels: it was not read", path, p.opts.MaxDepth))
		return out
	}
	mt, params, err := e.Header.ContentType()
	if err != nil && e.Header.Get("Content-Type") != "" {
		p.warn("part %s: Content-Type: %v", orRoot(path), err)
	}
	mt = strings.ToLower(mt)
	if mt == "" {
		mt = "text/plain"
	}
	part := Part{Path: path, MediaType: mt, Charset: strings.ToLower(params["charset"]),
		Encoding:  strings.ToLower(strings.TrimSpace(e.Header.Get("Content-Transfer-Encoding"))),
		ContentID: strings.Trim(strings.TrimSpace(e.Header.Get("Content-Id")), "<>")}
	disp, dparams, derr := e.Header.ContentDisposition()
	if derr != nil && e.Header.Get("Content-Disposition") != "" {
		// Outlook sometimes writes unquoted names with spaces; mime.ParseMediaType
		// rejects them. Keep the disposition word.
		disp = strings.ToLower(strings.TrimSpace(strings.SplitN(e.Header.Get("Content-Disposition"), ";", 2)[0]))
		p.warn("part %s: Content-Disposition: %v", orRoot(path), derr)
	}
	part.Disposition = strings.ToLower(disp)
	part.Filename = filename(dparams, params)
	if part.Filename == "" && derr != nil {
		part.Filename = looseFilename(e.Header.Get("Content-Disposition"))
	}
	part.Filename = p.text(part.Filename)
	if path == "" && !strings.HasPrefix(mt, "multipart/") {
		path = "1"
		part.Path = path
	}

	switch {
	case strings.HasPrefix(mt, "multipart/"):
		part.Role = RoleContainer
		p.msg.Parts = append(p.msg.Parts, part)
		mr := e.MultipartReader()
		if mr == nil {
			p.warn("part %s: %s without boundary", orRoot(path), mt)
			return out
		}
		var children []bodies
		for i := 1; ; i++ {
			child, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if child == nil {
				if err != nil {
					p.warn("part %s: %v", childPath(path, i), err)
				}
				break
			}
			if err != nil {
				p.warn("part %s: %v", childPath(path, i), err)
			}
			cb := p.entity(child, childPath(path, i), depth+1)
			// What the child left unread (after a decoding error, say) is
			// skipped by NextPart, which looks for the next boundary in the
			// raw part.
			_, _ = io.Copy(io.Discard, child.Body)
			children = append(children, cb)
		}
		if mt == "multipart/alternative" {
			// One rendering of the same content: take the first plain text
			// and the first HTML.
			for _, c := range children {
				if len(c.text) > 0 && len(out.text) == 0 {
					out.text = c.text
				}
				if len(c.html) > 0 && len(out.html) == 0 {
					out.html = c.html
				}
			}
			return out
		}
		for _, c := range children {
			out.text = append(out.text, c.text...)
			out.html = append(out.html, c.html...)
		}
		return out

	case mt == "message/rfc822" || mt == "message/global":
		part.Role = RoleMessage
		idx := len(p.msg.Parts)
		p.msg.Parts = append(p.msg.Parts, part)
		cr := &countingReader{r: e.Body}
		inner, err := message.ReadWithOptions(cr, &message.ReadOptions{MaxHeaderBytes: p.opts.MaxHeaderBytes})
		if inner == nil {
			p.warn("part %s: forwarded message: %v", path, err)
			return out
		}
		if err != nil {
			p.warn("part %s: forwarded message: %v", path, err)
		}
		ib := p.entity(inner, path+".1", depth+1)
		_, _ = io.Copy(io.Discard, cr)
		p.msg.Parts[idx].Size = cr.n
		ih := mail.Header{Header: inner.Header}
		var hdr strings.Builder
		hdr.WriteString("---------- Forwarded message ---------\n")
		for _, k := range []string{"From", "Date", "Subject", "To", "Cc"} {
			if v, err := ih.Text(k); err == nil && v != "" {
				fmt.Fprintf(&hdr, "%s: %s\n", k, p.text(v))
			}
		}
		text := hdr.String() + "\n" + strings.Join(ib.text, "\n\n")
		out.text = append(out.text, text)
		out.html = append(out.html, ib.html...)
		return out
	}

	isTNEF := mt == "application/ms-tnef" || mt == "application/vnd.ms-tnef" || strings.EqualFold(part.Filename, "winmail.dat")
	isText := (mt == "text/plain" || mt == "text/html") && part.Disposition != "attachment" && part.Filename == ""
	if isText {
		body := e.Body
		if err != nil && (message.IsUnknownCharset(err) || message.IsUnknownEncoding(err)) {
			p.warn("part %s: %v (read undecoded)", path, err)
		}
		data, n, rerr := readLimited(body, p.opts.MaxTextBytes)
		if rerr != nil {
			p.warn("part %s: %v", path, rerr)
		}
		part.Size = n
		if n > p.opts.MaxTextBytes {
			p.warn("part %s: text longer than %d bytes: truncated", path, p.opts.MaxTextBytes)
		}
		if !utf8.Valid(data) && (part.Charset == "" || part.Charset == "us-ascii") {
			p.warn("part %s: 8-bit text without a charset: read as %s", path, p.opts.DefaultCharset)
			data = []byte(decode8bit(string(data), p.msg.dec))
		}
		s := strings.ReplaceAll(validUTF8(string(data)), "\r\n", "\n")
		s = strings.TrimPrefix(s, "\ufeff")
		if mt == "text/plain" {
			part.Role = RoleText
			if strings.EqualFold(params["format"], "flowed") {
				s = unflow(s, strings.EqualFold(params["delsp"], "yes"))
			}
			out.text = append(out.text, s)
			p.msg.TextParts = append(p.msg.TextParts, path)
		} else {
			part.Role = RoleHTML
			out.html = append(out.html, s)
			p.msg.HTMLParts = append(p.msg.HTMLParts, path)
		}
		p.msg.Parts = append(p.msg.Parts, part)
		return out
	}

	// A file.
	a := &Attachment{Part: part}
	a.Role = RoleAttachment
	if isTNEF {
		a.Role = RoleTNEF
		p.warn("part %s: winmail.dat (TNEF) attachment not decoded", path)
	} else if part.Disposition == "inline" || (part.Disposition == "" && part.ContentID != "") {
		a.Inline = true
		a.Role = RoleInline
	}
	if err != nil && message.IsUnknownEncoding(err) {
		a.Err = err
		p.warn("part %s: %v", path, err)
	}
	// The first bytes tell what the file is, whatever it claims to be.
	head := make([]byte, sniffHead)
	hn, herr := io.ReadFull(e.Body, head)
	head = head[:hn]
	if herr == io.EOF || herr == io.ErrUnexpectedEOF {
		herr = nil
	}
	a.Type = sniff.Detect(head, a.MediaType)
	keep := herr == nil && p.opts.Keep != nil && p.opts.Keep(a)
	body := io.MultiReader(bytes.NewReader(head), e.Body)
	var rerr error
	if keep {
		var data []byte
		var n int64
		data, n, rerr = readLimited(body, p.opts.MaxAttachmentBytes)
		a.Size = n
		if n > p.opts.MaxAttachmentBytes {
			a.TooLarge = true
		} else {
			a.Data = data
			a.Kept = true
			a.Type = sniff.Detect(data, a.MediaType)
		}
	} else {
		a.Size, rerr = io.Copy(io.Discard, body)
	}
	if rerr == nil {
		rerr = herr
	}
	if rerr != nil {
		a.Err = rerr
		p.warn("part %s: %v", path, rerr)
	}
	a.Content = a.Type.MediaType
	p.msg.Parts = append(p.msg.Parts, a.Part)
	p.msg.Attachments = append(p.msg.Attachments, a)
	return out
}

func orRoot(path string) string {
	if path == "" {
		return "root"
	}
	return path
}

// sniffHead is how much of an attachment is read to tell its type before
// deciding whether to keep it.
const sniffHead = 8 << 10

// readLimited reads up to max bytes and counts the rest. n is the full size.
// It reads into chunks of growing size and copies them once into a slice of
// the exact length, so a kept attachment costs about twice its size in
// allocations (a doubling buffer would cost three to four times).
func readLimited(r io.Reader, max int64) (data []byte, n int64, err error) {
	var chunks [][]byte
	size := int64(32 << 10)
	lr := io.LimitReader(r, max)
	for {
		if size > 4<<20 {
			size = 4 << 20
		}
		c := make([]byte, size)
		m, rerr := io.ReadFull(lr, c)
		chunks = append(chunks, c[:m])
		n += int64(m)
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
		size *= 2
	}
	if err == nil {
		var rest int64
		rest, err = io.Copy(io.Discard, r)
		n += rest
	}
	data = make([]byte, 0, min(n, max))
	for _, c := range chunks {
		data = append(data, c...)
	}
	return data, n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// filename decodes the attachment name: RFC 2231 (handled by mime) and RFC
// 2047 words (handled by go-message), from Content-Disposition, else the
// Content-Type name parameter.
func filename(dparams, params map[string]string) string {
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	name = strings.TrimSpace(name)
	// Keep only the base name: some clients send paths.
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	return name
}

var filenameParam = regexp.MustCompile(`(?i)filename\s*=`)

// looseFilename finds filename=... in a header value that mime could not parse.
func looseFilename(v string) string {
	loc := filenameParam.FindStringIndex(v)
	if loc == nil {
		return ""
	}
	s := strings.TrimSpace(v[loc[1]:])
	if strings.HasPrefix(s, `"`) {
		if j := strings.IndexByte(s[1:], '"'); j >= 0 {
			s = s[1 : j+1]
		}
	} else if j := strings.IndexByte(s, ';'); j >= 0 {
		s = s[:j]
	}
	dec := new(mime.WordDecoder)
	if d, err := dec.DecodeHeader(s); err == nil {
		s = d
	}
	return strings.TrimSpace(s)
}

// unflow joins the soft line breaks of format=flowed text (RFC 3676).
func unflow(s string, delsp bool) string {
	lines := strings.Split(s, "\n")
	var b strings.Builder
	for i, l := range lines {
		if l != "-- " && strings.HasSuffix(l, " ") && i < len(lines)-1 {
			if delsp {
				l = l[:len(l)-1]
			}
			b.WriteString(l)
			continue
		}
		b.WriteString(l)
		if i < len(lines)-1 {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// text is header text: 8-bit bytes that are not UTF-8 are read in the
// default charset.
func (p *parser) text(s string) string { return decode8bit(s, p.msg.dec) }

func decode8bit(s string, enc encoding.Encoding) string {
	if utf8.ValidString(s) {
		return s
	}
	if enc != nil {
		if d, err := enc.NewDecoder().String(s); err == nil {
			return validUTF8(d)
		}
	}
	return validUTF8(s)
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
