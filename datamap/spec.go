package datamap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Spec is a data map as an operator writes it in YAML. A map file
// (examples/maps/*.yaml) is one Spec document; the host embeds the same
// shape in its configuration.
type Spec struct {
	Description string     `yaml:"description,omitempty"`
	Preprocess  Preprocess `yaml:"preprocess,omitempty"`
	Limits      Limits     `yaml:"limits,omitempty"`
	// Region is the ISO 3166 code of the country whose numbers senders
	// write without a country code ("US", "GB", "DE"). Fields of type phone
	// and fax are read with it into E.164; without it only numbers with a
	// country code are accepted.
	Region string `yaml:"region,omitempty"`
	// Dial held the dial rules of earlier versions. A map that still has
	// them does not compile: the error names what replaced them.
	Dial      *RemovedKey    `yaml:"dial,omitempty"`
	Fields    []FieldSpec    `yaml:"fields"`
	Rejects   []RejectSpec   `yaml:"rejects,omitempty"`
	Documents []DocumentSpec `yaml:"documents,omitempty"`
	// Unsupported says what happens to an attachment that no documents
	// entry takes (a file the map does not deliver, e.g. a ZIP archive) and
	// to parts of a message that were not read (limits.max_parts, nesting):
	// "reject" (default) rejects the mail naming the file and why; "skip"
	// delivers the rest and lists what was left out in the record
	// (Result.Skipped), which the fax driver prints on the first page.
	// Attachments excluded by an entry's exclude_names are not counted.
	Unsupported string `yaml:"unsupported,omitempty"`
	// DefaultCharset reads 8-bit text that names no charset and is not
	// UTF-8 (subject, names, body, text attachments); default
	// windows-1252.
	DefaultCharset string      `yaml:"default_charset,omitempty"`
	Routes         []RouteSpec `yaml:"routes"`
	Notify         *NotifySpec `yaml:"notify,omitempty"`
}

// RemovedKey is a key of earlier versions, kept so that Compile can name
// what replaced it instead of reporting an unknown key.
type RemovedKey struct {
	Node yaml.Node
}

// UnmarshalYAML keeps the node, whatever it holds.
func (r *RemovedKey) UnmarshalYAML(n *yaml.Node) error {
	r.Node = *n
	return nil
}

// Values of Spec.Unsupported.
const (
	UnsupportedReject = "reject"
	UnsupportedSkip   = "skip"
)

// RejectSpec rejects a mail on a condition, checked after the fields and
// before the documents: e.g. Outlook rich text whose attachments are inside
// an undecoded winmail.dat.
type RejectSpec struct {
	When   string `yaml:"when"`
	Field  string `yaml:"field,omitempty"` // what the rejection names; default "message"
	Reason string `yaml:"reason"`
}

// Preprocess switches the clean-up steps applied to the text body before
// fields are extracted from it (source "body"). The steps run in the order
// of the fields here.
type Preprocess struct {
	// HTMLToText renders the HTML body as text when there is no plain-text
	// part (default true). When false such a body is the raw HTML.
	HTMLToText *bool `yaml:"html_to_text,omitempty"`
	// PreferHTML renders the HTML part even when a plain part exists.
	PreferHTML bool `yaml:"prefer_html,omitempty"`
	// StripQuoted removes quoted replies and the header blocks of forwarded
	// messages (keeping the forwarded text).
	StripQuoted bool `yaml:"strip_quoted,omitempty"`
	// StripSignature removes everything after a "-- " line and mobile
	// footers such as "Sent from my iPhone".
	StripSignature bool `yaml:"strip_signature,omitempty"`
	// StripDisclaimers are RE2 patterns; every paragraph that matches one is
	// removed.
	StripDisclaimers []string `yaml:"strip_disclaimers,omitempty"`
	// NormalizeSpace trims lines and collapses runs of spaces and blank lines.
	NormalizeSpace bool `yaml:"normalize_space,omitempty"`
}

// Limits bound what one message may cost.
type Limits struct {
	MaxDocumentBytes int64 `yaml:"max_document_bytes,omitempty"` // per attachment document; default 32 MiB
	MaxTextBytes     int64 `yaml:"max_text_bytes,omitempty"`     // per text part; default 1 MiB
	MaxParts         int   `yaml:"max_parts,omitempty"`          // default 500
}

// FieldSpec is one field of the record.
type FieldSpec struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	// From lists where the value may come from, tried in order; the first
	// that yields a non-empty value wins.
	From []SourceSpec `yaml:"from,omitempty"`
	// Expr computes the value with an expression (expr-lang) instead of From.
	Expr string `yaml:"expr,omitempty"`
	// Transforms run on the extracted value, in order.
	Transforms []Transform `yaml:"transforms,omitempty"`
	// Default is used when no source yields a value. A field that is not
	// required must have a default (default: "" allows an empty value), so
	// that a value is never silently empty.
	Default *string `yaml:"default,omitempty"`
	// Required rejects the mail when no value is found.
	Required bool `yaml:"required,omitempty"`
	// Type validates (and for phone and fax, normalises) the value:
	// string (default), integer, phone (read with Region into E.164), fax
	// (as phone; the number as written is kept in the field
	// NAME_as_written), email.
	Type string `yaml:"type,omitempty"`
	// Pattern is an RE2 the whole value must match.
	Pattern string `yaml:"pattern,omitempty"`
	// Allowed lists the values accepted.
	Allowed []string `yaml:"allowed,omitempty"`
}

// SourceSpec names a source and an extraction.
//
// Sources: subject, body (after pre-processing), text (plain part as is),
// html (raw HTML), header:NAME, from / to / cc / reply_to with .address,
// .name, .local or .domain (each address tried in turn), attachment.names,
// message_id, date.
//
// Extraction, applied in this order when several are given: line (1-based,
// among non-blank lines; negative counts from the end) or line_match (first
// line matching an RE2); then one of key, regex, split, columns. With none,
// the whole (selected) text is the value.
type SourceSpec struct {
	Source    string     `yaml:"source"`
	Line      int        `yaml:"line,omitempty"`
	LineMatch string     `yaml:"line_match,omitempty"`
	Key       string     `yaml:"key,omitempty"`   // "Key: value" or "Key = value" line, case-insensitive
	Regex     string     `yaml:"regex,omitempty"` // RE2; value is group "value", else the only group, else the match
	Group     string     `yaml:"group,omitempty"` // named group to use instead of "value"
	Split     *SplitSpec `yaml:"split,omitempty"`
	Columns   string     `yaml:"columns,omitempty"` // fixed columns "7-9" or "12-" (1-based, in characters)
}

// SplitSpec splits the text at a separator and takes one item.
type SplitSpec struct {
	Separator string `yaml:"separator,omitempty"` // default: runs of white space
	Index     int    `yaml:"index"`               // 1-based; negative counts from the end
}

// Transform is one transformation. In YAML a simple one is a word (trim,
// upper, lower, digits, collapse_space), the others a mapping:
// {replace: RE2, with: TEXT} or {lookup: {K: V, ...}, else: TEXT}.
type Transform struct {
	Op      string            `yaml:"op,omitempty"`
	Replace string            `yaml:"replace,omitempty"`
	With    string            `yaml:"with,omitempty"`
	Lookup  map[string]string `yaml:"lookup,omitempty"`
	Else    *string           `yaml:"else,omitempty"`
}

var transformKeys = map[string]bool{"op": true, "replace": true, "with": true, "lookup": true, "else": true}

// UnmarshalYAML accepts a word or a mapping, strictly.
func (t *Transform) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		t.Op = n.Value
		return nil
	case yaml.MappingNode:
		var errs []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; !transformKeys[k.Value] {
				errs = append(errs, fmt.Sprintf("line %d: transform: unknown key %q (want op, replace, with, lookup, else)", k.Line, k.Value))
			}
		}
		if len(errs) > 0 {
			return &yaml.TypeError{Errors: errs}
		}
		type plain Transform
		return n.Decode((*plain)(t))
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: transform: want a word or a mapping", n.Line)}}
}

// DocumentSpec selects what a line driver delivers. Entries are delivered
// in order; the attachments of one entry in the order they were attached,
// each attachment at most once.
type DocumentSpec struct {
	Name string `yaml:"name,omitempty"`
	// Body delivers the text body (after pre-processing) as text/plain.
	Body bool `yaml:"body,omitempty"`
	// Types are media types of attachments, "image/*" allowed. They are
	// matched against what the content is (a PDF sent as
	// application/octet-stream is application/pdf), not what the sender's
	// mail program declared.
	Types []string `yaml:"types,omitempty"`
	// Names is an RE2 the file name must match.
	Names string `yaml:"names,omitempty"`
	// ExcludeNames is an RE2 that drops matching files (e.g. signature logos).
	ExcludeNames string `yaml:"exclude_names,omitempty"`
	// Inline also takes parts shown inline (e.g. pasted images).
	Inline bool `yaml:"inline,omitempty"`
	// When is an expression; the entry applies only when it is true.
	When string `yaml:"when,omitempty"`
	// Required rejects the mail when this entry yields nothing.
	Required bool `yaml:"required,omitempty"`
}

// RouteSpec is a routing rule: the first rule whose condition holds (or that
// has none) chooses the drivers.
type RouteSpec struct {
	Name    string   `yaml:"name,omitempty"`
	When    string   `yaml:"when,omitempty"`
	Drivers []string `yaml:"drivers"`
}

// LoadFile reads a map file strictly: unknown keys and type mismatches are
// errors reported as FILE:LINE: message.
func LoadFile(path string) (Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("datamap: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes a map document; name is used in error messages.
func Parse(name string, data []byte) (Spec, error) {
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("datamap: %w", yamlError(name, err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return Spec{}, fmt.Errorf("datamap: %s: more than one YAML document", name)
	}
	return s, nil
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// yamlError rewrites yaml.v3's "line N: msg" as "FILE:N: msg".
func yamlError(name string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, 0, len(te.Errors))
		for _, e := range te.Errors {
			errs = append(errs, errors.New(withFile(name, e)))
		}
		return errors.Join(errs...)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: empty map document", name)
	}
	return errors.New(withFile(name, err.Error()))
}

func withFile(name, msg string) string {
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		return name + ":" + m[1] + ": " + msg[len(m[0]):]
	}
	return name + ": " + strings.TrimPrefix(msg, "yaml: ")
}
