package inbound

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/mediagw/mediagw/host/config"
)

// Facts are what a route matches on: what the line and the far end said
// about a call, and when it was answered.
type Facts struct {
	CalledNumber string
	CallerNumber string
	RemoteID     string
	Time         time.Time
}

// Target is one place a received fax goes, ready to use.
type Target struct {
	// Driver queues the fax's job: "mail:CONNECTOR" or "folder:ROUTE".
	Driver string
	// Folder is the resolved folder of a folder target.
	Folder string
	// Mail is set for a mail target.
	Mail *Mail
}

// Mail is a compiled mail target.
type Mail struct {
	Connector string
	To        []string
	From      string
	Subject   *template.Template
	Body      *template.Template
	Attach    []string // pdf, tiff
}

// Route is one compiled rule.
type Route struct {
	Name    string
	called  []*regexp.Regexp
	caller  []*regexp.Regexp
	remote  []*regexp.Regexp
	days    [7]bool // by time.Weekday; all false: any day
	anyDay  bool
	hours   []window
	Targets []Target
}

// window is [from, to) in minutes of the day; from > to crosses midnight.
type window struct{ from, to int }

// Router picks the route of a call: the first that matches, else the
// default, else the unrouted folder.
type Router struct {
	Routes   []*Route
	Default  *Route // nil: none configured
	Unrouted *Route // the folder under the spool for faxes nothing took
	loc      *time.Location
}

// UnroutedName is the route (and folder driver) of a fax nothing took.
const UnroutedName = "unrouted"

// FolderDriver is the name of the file driver of a folder route.
func FolderDriver(route string) string { return "folder:" + route }

// MailDriver is the name of a connector's mail driver (host/report's).
func MailDriver(connector string) string { return "mail:" + connector }

// Compile builds the router of a config's inbound section. unroutedDir is
// the folder of faxes no route takes. The error lists every problem, each
// at its key's line.
func Compile(cfg *config.Config, unroutedDir string) (*Router, error) {
	r := &Router{loc: time.Local,
		Unrouted: &Route{Name: UnroutedName, Targets: []Target{{Driver: FolderDriver(UnroutedName), Folder: unroutedDir}}}}
	in := cfg.Inbound
	if in == nil {
		return r, nil
	}
	e := &config.Error{}
	if in.Timezone != "" {
		loc, err := time.LoadLocation(in.Timezone)
		if err != nil {
			e.Problems = append(e.Problems, fmt.Sprintf("%s: inbound.timezone %q: %v", cfg.At("inbound.timezone"), in.Timezone, err))
		} else {
			r.loc = loc
		}
	}
	for i := range in.Routes {
		cr := &in.Routes[i]
		rt := compileRoute(cfg, e, i, cr.Name, &cr.Match, &cr.InboundTarget)
		r.Routes = append(r.Routes, rt)
	}
	if in.Default != nil {
		r.Default = compileRoute(cfg, e, -1, "default", &config.InboundMatch{}, in.Default)
	}
	if len(e.Problems) > 0 {
		return nil, e
	}
	return r, nil
}

func compileRoute(cfg *config.Config, e *config.Error, i int, name string, m *config.InboundMatch, t *config.InboundTarget) *Route {
	at := func(key string) string { return cfg.At(config.InboundKey(i, key)) }
	bad := func(key, format string, args ...any) {
		e.Problems = append(e.Problems, fmt.Sprintf("%s: inbound route %s: %s", at(key), name, fmt.Sprintf(format, args...)))
	}
	rt := &Route{Name: name}
	pats := func(key string, list []string, number bool) []*regexp.Regexp {
		var out []*regexp.Regexp
		for j, p := range list {
			if number {
				p = normNumber(p)
			}
			if p == "" {
				bad(fmt.Sprintf("match.%s.%d", key, j), "%s: an empty pattern", key)
				continue
			}
			out = append(out, glob(p, !number))
		}
		return out
	}
	rt.called = pats("called", m.Called, true)
	rt.caller = pats("caller", m.Caller, true)
	rt.remote = pats("remote_id", m.RemoteID, false)
	rt.anyDay = len(m.Days) == 0
	for j, d := range m.Days {
		if err := addDays(&rt.days, d); err != nil {
			bad(fmt.Sprintf("match.days.%d", j), "days %q: %v", d, err)
		}
	}
	for j, h := range m.Hours {
		w, err := parseWindow(h)
		if err != nil {
			bad(fmt.Sprintf("match.hours.%d", j), "hours %q: %v", h, err)
			continue
		}
		rt.hours = append(rt.hours, w)
	}
	if t.Folder != "" {
		rt.Targets = append(rt.Targets, Target{Driver: FolderDriver(name), Folder: cfg.Resolve(t.Folder)})
	}
	if mt := t.Mail; mt != nil {
		mm := &Mail{Connector: mt.Connector, To: mt.To, From: mt.From, Attach: mt.Attach}
		var err error
		if mm.Subject, err = parseTemplate("subject", mt.Subject, defaultSubject); err != nil {
			bad("mail.subject", "%v", err)
		}
		if mm.Body, err = parseTemplate("body", mt.Body, defaultBody); err != nil {
			bad("mail.body", "%v", err)
		}
		rt.Targets = append(rt.Targets, Target{Driver: MailDriver(mt.Connector), Mail: mm})
	}
	return rt
}

// Route returns the route of a call.
func (r *Router) Route(f *Facts) *Route {
	for _, rt := range r.Routes {
		if rt.matches(f, r.loc) {
			return rt
		}
	}
	if r.Default != nil {
		return r.Default
	}
	return r.Unrouted
}

// Location is the time zone of the routes' days and hours.
func (r *Router) Location() *time.Location { return r.loc }

// Drivers are the drivers the router's targets queue jobs for.
func (r *Router) Drivers() []Target {
	var out []Target
	for _, rt := range append(append([]*Route{}, r.Routes...), r.Default, r.Unrouted) {
		if rt != nil {
			out = append(out, rt.Targets...)
		}
	}
	return out
}

func (rt *Route) matches(f *Facts, loc *time.Location) bool {
	if !anyMatch(rt.called, normNumber(f.CalledNumber)) || !anyMatch(rt.caller, normNumber(f.CallerNumber)) ||
		!anyMatch(rt.remote, strings.TrimSpace(f.RemoteID)) {
		return false
	}
	t := f.Time.In(loc)
	if !rt.anyDay && !rt.days[t.Weekday()] {
		return false
	}
	if len(rt.hours) == 0 {
		return true
	}
	min := t.Hour()*60 + t.Minute()
	for _, w := range rt.hours {
		if w.from <= w.to && min >= w.from && min < w.to || w.from > w.to && (min >= w.from || min < w.to) {
			return true
		}
	}
	return false
}

// anyMatch: no patterns match anything; patterns never match a value the
// line did not report.
func anyMatch(pats []*regexp.Regexp, v string) bool {
	if len(pats) == 0 {
		return true
	}
	if v == "" {
		return false
	}
	for _, p := range pats {
		if p.MatchString(v) {
			return true
		}
	}
	return false
}

// normNumber drops what people write between digits: spaces, dashes, dots
// and parentheses.
func normNumber(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')', '\t':
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}

// glob turns a pattern with * and ? into an anchored expression.
func glob(p string, fold bool) *regexp.Regexp {
	q := regexp.QuoteMeta(p)
	q = strings.ReplaceAll(q, `\*`, `.*`)
	q = strings.ReplaceAll(q, `\?`, `.`)
	if fold {
		q = "(?i)" + q
	}
	return regexp.MustCompile("^" + q + "$")
}

var dayNames = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

func day(s string) (time.Weekday, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) > 3 {
		s = s[:3]
	}
	d, ok := dayNames[s]
	if !ok {
		return 0, fmt.Errorf("want mon, tue, wed, thu, fri, sat or sun")
	}
	return d, nil
}

// addDays adds "mon" or a range "mon-fri" (which may wrap: "fri-mon").
func addDays(days *[7]bool, s string) error {
	a, b, isRange := strings.Cut(s, "-")
	from, err := day(a)
	if err != nil {
		return err
	}
	to := from
	if isRange {
		if to, err = day(b); err != nil {
			return err
		}
	}
	for d := from; ; d = (d + 1) % 7 {
		days[d] = true
		if d == to {
			return nil
		}
	}
}

func parseWindow(s string) (window, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return window{}, fmt.Errorf("want HH:MM-HH:MM")
	}
	from, err := clock(a)
	if err == nil {
		var to int
		if to, err = clock(b); err == nil {
			if from == to {
				return window{}, fmt.Errorf("the window is empty")
			}
			return window{from, to}, nil
		}
	}
	return window{}, err
}

func clock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || hh == 24 && mm != 0 {
		return 0, fmt.Errorf("%q is not a time of day (HH:MM, 00:00 to 24:00)", strings.TrimSpace(s))
	}
	return hh*60 + mm, nil
}
