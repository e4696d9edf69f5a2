package datamap

import (
	"golang.org/x/text/encoding/htmlindex"

	"errors"
	"fmt"
	"mime"
	"regexp"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/mediagw/mediagw/phone"
)

// Map is a compiled data map. It is safe for concurrent use.
type Map struct {
	name        string
	spec        Spec
	htmlToText  bool
	disclaimers []*regexp.Regexp
	fields      []*field
	docs        []*document
	rejects     []*reject
	routes      []*route
	drivers     []string
}

type field struct {
	spec       FieldSpec
	sources    []*source
	expr       *vm.Program
	transforms []*transform
	pattern    *regexp.Regexp
	allowed    map[string]bool
	missing    string // "To, Subject or X-Fax-Number"
}

type source struct {
	spec      SourceSpec
	kind      string // subject, body, text, html, header, address, attachment.names, message_id, date
	header    string // for header
	addrList  string // from, to, cc, reply_to
	addrPart  string // address, name, local, domain
	lineMatch *regexp.Regexp
	regex     *regexp.Regexp
	group     int
	key       *regexp.Regexp
	colStart  int // 1-based
	colEnd    int // 0: to the end
	label     string
	rule      string
}

type transform struct {
	op      string
	replace *regexp.Regexp
	with    string
	lookup  map[string]string
	els     *string
}

type document struct {
	spec    DocumentSpec
	label   string
	types   []string
	names   *regexp.Regexp
	exclude *regexp.Regexp
	when    *vm.Program
}

type reject struct {
	spec RejectSpec
	when *vm.Program
}

type route struct {
	spec RouteSpec
	when *vm.Program
}

var fieldName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Compile checks a spec and prepares it for Apply. Every problem found is
// reported (errors.Join), each naming the map and the field it is about.
func Compile(name string, spec Spec) (*Map, error) {
	m := &Map{name: name, spec: spec, htmlToText: spec.Preprocess.HTMLToText == nil || *spec.Preprocess.HTMLToText}
	var errs []error
	bad := func(where string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("datamap %s: %s: %s", name, where, fmt.Sprintf(format, args...)))
	}
	if name == "" {
		bad("name", "empty map name")
	}
	for i, p := range spec.Preprocess.StripDisclaimers {
		re, err := regexp.Compile(p)
		if err != nil {
			bad(fmt.Sprintf("preprocess.strip_disclaimers[%d]", i), "%v", err)
			continue
		}
		m.disclaimers = append(m.disclaimers, re)
	}
	if spec.DefaultCharset != "" {
		if _, err := htmlindex.Get(spec.DefaultCharset); err != nil {
			bad("default_charset", "%q is not a charset this gateway knows (like windows-1252, iso-8859-2, koi8-r)", spec.DefaultCharset)
		}
	}
	switch spec.Unsupported {
	case "", UnsupportedReject, UnsupportedSkip:
	default:
		bad("unsupported", "%q: want reject or skip", spec.Unsupported)
	}
	if spec.Limits.MaxDocumentBytes < 0 || spec.Limits.MaxTextBytes < 0 || spec.Limits.MaxParts < 0 {
		bad("limits", "limits must not be negative")
	}
	checkNotify(spec.Notify, bad)
	if spec.Dial != nil {
		var old struct {
			CountryCode string `yaml:"country_code"`
		}
		spec.Dial.Node.Decode(&old) //nolint:errcheck // only for the hint
		region := "US"
		if cc, err := strconv.Atoi(old.CountryCode); err == nil {
			if r := phone.RegionOf(cc); r != "" {
				region = r
			}
		}
		bad("dial", "line %d: the dial rules were removed: fax numbers are E.164 now; write region: %s in the map for numbers without a country code, and the outside line in the fax driver's dial section (region: %s, outside_line)", spec.Dial.Node.Line, region, region)
	}
	if spec.Region != "" && !phone.ValidRegion(spec.Region) {
		bad("region", "%q is not an ISO 3166 country code (US, GB, DE, …)", spec.Region)
	}

	seen := map[string]bool{}
	for i, fs := range spec.Fields {
		where := fmt.Sprintf("fields[%d]", i)
		if fs.Name != "" {
			where = "field " + fs.Name
		}
		f := &field{spec: fs}
		switch {
		case !fieldName.MatchString(fs.Name):
			bad(where, "name %q must be letters, digits and _ (not starting with a digit)", fs.Name)
		case seen[fs.Name]:
			bad(where, "defined twice")
		}
		seen[fs.Name] = true
		switch {
		case len(fs.From) == 0 && fs.Expr == "":
			bad(where, "needs from: (sources) or expr:")
		case len(fs.From) > 0 && fs.Expr != "":
			bad(where, "has both from: and expr:; use one")
		}
		if fs.Expr != "" {
			p, err := expr.Compile(fs.Expr, expr.Env(env{}))
			if err != nil {
				bad(where+".expr", "%v", oneLine(err))
			}
			f.expr = p
		}
		var labels []string
		for j, ss := range fs.From {
			s, err := compileSource(ss)
			if err != nil {
				bad(fmt.Sprintf("%s.from[%d]", where, j), "%v", err)
				continue
			}
			f.sources = append(f.sources, s)
			if !contains(labels, s.label) {
				labels = append(labels, s.label)
			}
		}
		f.missing = orList(labels)
		if fs.Expr != "" {
			f.missing = "expression " + quoteRule(truncate(strings.Join(strings.Fields(fs.Expr), " "), 60))
		}
		for j, ts := range fs.Transforms {
			t, err := compileTransform(ts)
			if err != nil {
				bad(fmt.Sprintf("%s.transforms[%d]", where, j), "%v", err)
				continue
			}
			f.transforms = append(f.transforms, t)
		}
		if !fs.Required && fs.Default == nil {
			bad(where, `optional field needs a default (write default: "" to allow an empty value)`)
		}
		switch fs.Type {
		case "", "string", "integer", "phone", "fax", "email":
		default:
			bad(where+".type", "unknown type %q (want string, integer, phone, fax, email)", fs.Type)
		}
		if fs.Pattern != "" {
			re, err := regexp.Compile(`^(?:` + fs.Pattern + `)$`)
			if err != nil {
				bad(where+".pattern", "%v", err)
			}
			f.pattern = re
		}
		if len(fs.Allowed) > 0 {
			f.allowed = map[string]bool{}
			for _, a := range fs.Allowed {
				f.allowed[a] = true
			}
		}
		m.fields = append(m.fields, f)
	}
	for _, fs := range spec.Fields {
		if fs.Type == "fax" && seen[fs.Name+WrittenSuffix] {
			bad("field "+fs.Name+WrittenSuffix, "is the name the map gives to field %s as written; rename it", fs.Name)
		}
	}

	for i, rs := range spec.Rejects {
		where := fmt.Sprintf("rejects[%d]", i)
		r := &reject{spec: rs}
		if r.spec.Field == "" {
			r.spec.Field = "message"
		}
		if strings.TrimSpace(rs.Reason) == "" {
			bad(where, "needs a reason")
		}
		if rs.When == "" {
			bad(where, "needs when:")
		} else {
			var err error
			if r.when, err = expr.Compile(rs.When, expr.Env(env{}), expr.AsBool()); err != nil {
				bad(where+".when", "%v", oneLine(err))
			}
		}
		m.rejects = append(m.rejects, r)
	}

	for i, ds := range spec.Documents {
		where := fmt.Sprintf("documents[%d]", i)
		if ds.Name != "" {
			where = "document " + ds.Name
		}
		d := &document{spec: ds, label: where}
		if ds.Body && (len(ds.Types) > 0 || ds.Names != "" || ds.ExcludeNames != "" || ds.Inline) {
			bad(where, "body: true takes no types, names, exclude_names or inline")
		}
		if !ds.Body && len(ds.Types) == 0 && ds.Names == "" {
			bad(where, "needs body: true, or types: and/or names: to select attachments")
		}
		for _, t := range ds.Types {
			t = strings.ToLower(strings.TrimSpace(t))
			if mt, _, err := mime.ParseMediaType(t); err != nil || mt != t || !strings.Contains(t, "/") {
				bad(where+".types", "%q is not a media type (like application/pdf or image/*)", t)
			}
			d.types = append(d.types, t)
		}
		var err error
		if ds.Names != "" {
			if d.names, err = regexp.Compile(ds.Names); err != nil {
				bad(where+".names", "%v", err)
			}
		}
		if ds.ExcludeNames != "" {
			if d.exclude, err = regexp.Compile(ds.ExcludeNames); err != nil {
				bad(where+".exclude_names", "%v", err)
			}
		}
		if ds.When != "" {
			if d.when, err = expr.Compile(ds.When, expr.Env(env{}), expr.AsBool()); err != nil {
				bad(where+".when", "%v", oneLine(err))
			}
		}
		m.docs = append(m.docs, d)
	}

	if len(spec.Routes) == 0 {
		bad("routes", "no routing rule: add one, e.g. - drivers: [fax]")
	}
	for i, rs := range spec.Routes {
		where := fmt.Sprintf("routes[%d]", i)
		if rs.Name != "" {
			where = "route " + rs.Name
		}
		r := &route{spec: rs}
		if len(rs.Drivers) == 0 {
			bad(where, "no drivers")
		}
		for _, d := range rs.Drivers {
			if strings.TrimSpace(d) == "" {
				bad(where, "empty driver name")
			} else if !contains(m.drivers, d) {
				m.drivers = append(m.drivers, d)
			}
		}
		if rs.When != "" {
			var err error
			if r.when, err = expr.Compile(rs.When, expr.Env(env{}), expr.AsBool()); err != nil {
				bad(where+".when", "%v", oneLine(err))
			}
		} else if i < len(spec.Routes)-1 {
			bad(where, "has no condition, so the rules after it never apply")
		}
		m.routes = append(m.routes, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

var addrParts = map[string]bool{"address": true, "name": true, "local": true, "domain": true}

func compileSource(ss SourceSpec) (*source, error) {
	s := &source{spec: ss}
	src := strings.TrimSpace(ss.Source)
	lower := strings.ToLower(src)
	switch {
	case lower == "subject":
		s.kind, s.label = "subject", "Subject"
	case lower == "body":
		s.kind, s.label = "body", "body"
	case lower == "text":
		s.kind, s.label = "text", "text part"
	case lower == "html":
		s.kind, s.label = "html", "HTML part"
	case lower == "message_id":
		s.kind, s.label = "header", "Message-Id"
		s.header = "Message-Id"
	case lower == "date":
		s.kind, s.label = "header", "Date"
		s.header = "Date"
	case lower == "attachment.names":
		s.kind, s.label = "attachment.names", "attachment names"
	case strings.HasPrefix(lower, "header:"):
		s.kind = "header"
		s.header = strings.TrimSpace(src[len("header:"):])
		s.label = s.header
		if s.header == "" || strings.ContainsAny(s.header, " :\t") {
			return nil, fmt.Errorf("source %q: header name missing or invalid", src)
		}
	default:
		list, part, ok := strings.Cut(lower, ".")
		if !ok {
			part = "address"
		}
		names := map[string]string{"from": "From", "to": "To", "cc": "Cc", "reply_to": "Reply-To"}
		if names[list] == "" || !addrParts[part] {
			return nil, fmt.Errorf("unknown source %q (want subject, body, text, html, header:NAME, from|to|cc|reply_to[.address|.name|.local|.domain], attachment.names, message_id, date)", src)
		}
		s.kind, s.addrList, s.addrPart, s.label = "address", list, part, names[list]
	}

	var rules []string
	if ss.Line != 0 && ss.LineMatch != "" {
		return nil, errors.New("line and line_match: use one")
	}
	if ss.Line != 0 {
		rules = append(rules, fmt.Sprintf("line %d", ss.Line))
	}
	if ss.LineMatch != "" {
		re, err := regexp.Compile(ss.LineMatch)
		if err != nil {
			return nil, fmt.Errorf("line_match: %v", err)
		}
		s.lineMatch = re
		rules = append(rules, "line matching "+quoteRule(ss.LineMatch))
	}
	n := 0
	for _, set := range []bool{ss.Key != "", ss.Regex != "", ss.Split != nil, ss.Columns != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("key, regex, split and columns: use one")
	}
	if ss.Group != "" && ss.Regex == "" {
		return nil, errors.New("group needs regex")
	}
	switch {
	case ss.Key != "":
		s.key = regexp.MustCompile(`(?im)^[ \t]*` + regexp.QuoteMeta(strings.TrimSpace(ss.Key)) + `[ \t]*[:=][ \t]*(.*?)[ \t]*$`)
		rules = append(rules, "key "+quoteRule(ss.Key))
	case ss.Regex != "":
		re, err := regexp.Compile(ss.Regex)
		if err != nil {
			return nil, fmt.Errorf("regex: %v", err)
		}
		s.regex = re
		group := ss.Group
		if group == "" && re.SubexpIndex("value") > 0 {
			group = "value"
		}
		switch {
		case group != "":
			s.group = re.SubexpIndex(group)
			if s.group < 0 {
				return nil, fmt.Errorf("regex %q has no group named %q", ss.Regex, group)
			}
		case re.NumSubexp() == 1:
			s.group = 1
		case re.NumSubexp() > 1:
			return nil, fmt.Errorf("regex %q has %d groups: name the one to use (?P<value>...) or set group", ss.Regex, re.NumSubexp())
		}
		rules = append(rules, "regex "+quoteRule(ss.Regex))
	case ss.Split != nil:
		if ss.Split.Index == 0 {
			return nil, errors.New("split.index: 1-based, must not be 0")
		}
		sep := "white space"
		if ss.Split.Separator != "" {
			sep = strconv.Quote(ss.Split.Separator)
		}
		rules = append(rules, fmt.Sprintf("item %d split at %s", ss.Split.Index, sep))
	case ss.Columns != "":
		a, b, _ := strings.Cut(ss.Columns, "-")
		start, err1 := strconv.Atoi(strings.TrimSpace(a))
		end := 0
		var err2 error
		if strings.TrimSpace(b) != "" {
			end, err2 = strconv.Atoi(strings.TrimSpace(b))
		} else if !strings.Contains(ss.Columns, "-") {
			end = start
		}
		if err1 != nil || err2 != nil || start < 1 || (end != 0 && end < start) {
			return nil, fmt.Errorf("columns %q: want FROM-TO, FROM- or COLUMN (1-based)", ss.Columns)
		}
		s.colStart, s.colEnd = start, end
		rules = append(rules, "columns "+ss.Columns)
	}
	if len(rules) == 0 {
		rules = append(rules, "whole value")
	}
	s.rule = strings.Join(rules, ", ")
	return s, nil
}

func compileTransform(ts Transform) (*transform, error) {
	t := &transform{op: ts.Op, with: ts.With, lookup: ts.Lookup, els: ts.Else}
	switch {
	case ts.Replace != "":
		if ts.Op != "" || ts.Lookup != nil || ts.Else != nil {
			return nil, errors.New("replace takes only with")
		}
		re, err := regexp.Compile(ts.Replace)
		if err != nil {
			return nil, fmt.Errorf("replace: %v", err)
		}
		t.op, t.replace = "replace", re
	case ts.Lookup != nil:
		if ts.Op != "" || ts.With != "" {
			return nil, errors.New("lookup takes only else")
		}
		t.op = "lookup"
	default:
		if ts.With != "" || ts.Else != nil {
			return nil, errors.New("with needs replace, else needs lookup")
		}
		switch ts.Op {
		case "trim", "upper", "lower", "digits", "collapse_space":
		default:
			return nil, fmt.Errorf("unknown transform %q (want trim, upper, lower, digits, collapse_space, {replace, with} or {lookup, else})", ts.Op)
		}
	}
	return t, nil
}

// Name is the map's name.
func (m *Map) Name() string { return m.name }

// Drivers lists every driver name the routes can choose, in order of first
// mention.
func (m *Map) Drivers() []string { return append([]string(nil), m.drivers...) }

// Spec returns the spec the map was compiled from.
func (m *Map) Spec() Spec { return m.spec }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// orList writes "A", "A or B", "A, B or C".
func orList(items []string) string {
	switch len(items) {
	case 0:
		return "no source"
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// quoteRule quotes a pattern or expression for the preview, in backquotes
// when possible so that regex backslashes read as written.
func quoteRule(s string) string {
	if strconv.CanBackquote(s) {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}
