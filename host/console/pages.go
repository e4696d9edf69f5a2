package console

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// page is what every template gets.
type page struct {
	Title string
	Nav   string
	Me    *identity
	Now   time.Time
	Flash string
	Data  any
}

var pageNames = []string{"overview", "activity", "queue", "failed", "job", "test", "maps", "login", "error"}

func parseTemplates(s *Server) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"ago":  func(t time.Time) string { return ago(s.now(), t) },
		"when": func(t time.Time) string { return when(s.now(), t) },
		"dur":  roundDur,
		"pct": func(k, n int) int {
			if n <= 0 {
				return 0
			}
			return 100 * k / n
		},
		"join": strings.Join,
		"word": func(l Light) string {
			switch l {
			case Green:
				return "healthy"
			case Red:
				return "down"
			}
			return "degraded"
		},
		"inc":   func(i int) int { return i + 1 },
		"label": fieldLabel,
		// dict2 hands a name (or job id) and the CSRF token to a
		// button template.
		"dict2": func(name, csrf string) map[string]string {
			return map[string]string{"Name": name, "ID": name, "CSRF": csrf}
		},
	}
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render executes a page into a buffer first, so a template error is a 500
// and not half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	s.renderTemplate(w, r, name, "layout", data)
}

func (s *Server) renderTemplate(w http.ResponseWriter, r *http.Request, name, tmpl string, data any) {
	p := page{Title: titles[name], Nav: name, Me: who(r), Now: s.now(), Flash: r.URL.Query().Get("done"), Data: data}
	var buf bytes.Buffer
	if err := s.tpl[name].ExecuteTemplate(&buf, tmpl, p); err != nil {
		s.log.Error("console: render", "page", name, "error", err)
		http.Error(w, "console: cannot render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.Copy(w, &buf)
}

var titles = map[string]string{
	"overview": "Overview", "activity": "Activity", "queue": "Queue", "failed": "Failed jobs",
	"job": "Job", "test": "Connector test", "maps": "Data maps", "login": "Sign in", "error": "Error",
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + roundDur(-d)
	}
	return roundDur(d) + " ago"
}

func when(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	t = t.Local()
	if y, m, d := t.Date(); y == now.Local().Year() && m == now.Local().Month() && d == now.Local().Day() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04")
}

func roundDur(d time.Duration) string {
	switch {
	case d < time.Second:
		return "0s"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}

// overviewData groups units by kind for the page.
type overviewData struct {
	Overview
	Gateways, Connectors, Drivers, Others []Unit
}

func (s *Server) overviewData(ctx context.Context) (overviewData, error) {
	ov, err := s.b.Overview(ctx)
	if err != nil {
		return overviewData{}, err
	}
	d := overviewData{Overview: ov}
	for _, u := range ov.Units {
		switch u.Kind {
		case "gateway":
			d.Gateways = append(d.Gateways, u)
		case "connector":
			d.Connectors = append(d.Connectors, u)
		case "driver":
			d.Drivers = append(d.Drivers, u)
		default:
			d.Others = append(d.Others, u)
		}
	}
	return d, nil
}

func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.overviewData(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "overview", d)
}

func (s *Server) overviewFragment(w http.ResponseWriter, r *http.Request) {
	d, err := s.overviewData(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.renderTemplate(w, r, "overview", "units", d)
}

type activityData struct {
	Connector, Driver   string
	Connectors, Drivers []string
	Source              string
}

func (s *Server) activityPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := activityData{Connector: q.Get("connector"), Driver: q.Get("driver")}
	if ov, err := s.b.Overview(r.Context()); err == nil {
		for _, u := range ov.Units {
			switch u.Kind {
			case "connector":
				d.Connectors = append(d.Connectors, u.Name)
			case "driver":
				d.Drivers = append(d.Drivers, u.Name)
			}
		}
	}
	v := url.Values{}
	if d.Connector != "" {
		v["connector"] = []string{d.Connector}
	}
	if d.Driver != "" {
		v["driver"] = []string{d.Driver}
	}
	d.Source = "/events"
	if len(v) > 0 {
		d.Source += "?" + v.Encode()
	}
	s.render(w, r, "activity", d)
}

// queueData is one section per driver.
type queueData struct {
	Driver  string
	Drivers []driverQueue
}

type driverQueue struct {
	Unit
	Active, Retrying, Queued []JobRow
}

const listLimit = 200

func (s *Server) queueData(r *http.Request) (queueData, error) {
	d := queueData{Driver: r.URL.Query().Get("driver")}
	ov, err := s.b.Overview(r.Context())
	if err != nil {
		return d, err
	}
	for _, u := range ov.Units {
		if u.Kind != "driver" || (d.Driver != "" && u.Name != d.Driver) {
			continue
		}
		q := driverQueue{Unit: u}
		for _, st := range []struct {
			state string
			into  *[]JobRow
		}{{"active", &q.Active}, {"retrying", &q.Retrying}, {"queued", &q.Queued}} {
			rows, err := s.b.Jobs(r.Context(), u.Name, st.state, listLimit)
			if err != nil {
				return d, err
			}
			*st.into = rows
		}
		// Page progress comes from the overview's active list.
		for i, j := range q.Active {
			for _, a := range u.Active {
				if a.JobID == j.ID && j.Pages == 0 {
					q.Active[i].Page, q.Active[i].Pages = a.Page, a.Pages
					if q.Active[i].Reason == "" {
						q.Active[i].Reason = strings.TrimSpace(a.Step + " " + a.Detail)
					}
				}
			}
		}
		d.Drivers = append(d.Drivers, q)
	}
	sort.Slice(d.Drivers, func(i, j int) bool { return d.Drivers[i].Name < d.Drivers[j].Name })
	return d, nil
}

func (s *Server) queuePage(w http.ResponseWriter, r *http.Request) {
	d, err := s.queueData(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "queue", d)
}

func (s *Server) queueFragment(w http.ResponseWriter, r *http.Request) {
	d, err := s.queueData(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.renderTemplate(w, r, "queue", "drivers", d)
}

func (s *Server) failedPage(w http.ResponseWriter, r *http.Request) {
	rows, err := s.b.Jobs(r.Context(), r.URL.Query().Get("driver"), "failed", listLimit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "failed", rows)
}

func (s *Server) jobPage(w http.ResponseWriter, r *http.Request) {
	j, err := s.b.Job(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "job", j)
}

// jobThumb serves page n (1-based) of a job as PNG.
func (s *Server) jobThumb(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(strings.TrimSuffix(r.PathValue("n"), ".png"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	j, err := s.b.Job(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if n < 1 || n > len(j.Thumbs) || len(j.Thumbs[n-1].PNG) == 0 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	_, _ = w.Write(j.Thumbs[n-1].PNG)
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.b.Retry(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("console: job retried", "job", id, "by", who(r).Label())
	http.Redirect(w, r, "/failed?done="+urlQueryEscape("Job "+id+" is queued again."), http.StatusSeeOther)
}

func (s *Server) purge(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.b.Purge(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("console: job purged", "job", id, "by", who(r).Label())
	http.Redirect(w, r, "/failed?done="+urlQueryEscape("Job "+id+" is purged."), http.StatusSeeOther)
}

func (s *Server) test(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	tv, err := s.b.Test(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if tv.Connector == "" {
		tv.Connector = name
	}
	s.render(w, r, "test", tv)
}

type mapsData struct {
	Maps    []string
	Map     string
	Mail    string
	Preview *MapPreview
	Error   string
}

func (s *Server) mapsPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "maps", mapsData{Maps: s.b.Maps(), Map: r.URL.Query().Get("map")})
}

func (s *Server) tryMap(w http.ResponseWriter, r *http.Request) {
	d := mapsData{Maps: s.b.Maps(), Map: r.PostFormValue("map"), Mail: r.PostFormValue("mail")}
	// A pasted mail has bare newlines; RFC 5322 wants CRLF, the parser takes both.
	p, err := s.b.TryMap(d.Map, []byte(d.Mail))
	if err != nil {
		d.Error = err.Error()
	} else {
		d.Preview = &p
	}
	s.render(w, r, "maps", d)
}

// fieldLabels are the words a person reads for the fields of a received
// fax; the page shows the field's name beside them, as maps and inbound
// rules use it.
var fieldLabels = map[string]string{
	"remote_id":     "Station id",
	"caller_number": "Caller",
	"called_number": "Called number",
	"pages":         "Pages",
	"incomplete":    "Incomplete",
	"params":        "Line parameters",
	"device":        "Device",
	"duration":      "Duration",
	"started":       "Started",
	"route":         "Route",
}

// fieldLabel is the label of a job's field: its words when it has some,
// else the field's name as it is.
func fieldLabel(name string) string {
	if l, ok := fieldLabels[name]; ok {
		return l
	}
	return name
}
