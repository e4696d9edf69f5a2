package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/image/draw"

	"github.com/mediagw/mediagw/datamap"
	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/host/activity"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
	"github.com/mediagw/mediagw/plugin"
)

// HostBackend is the Backend of a running gateway: its status, spool, job
// API, activity hub, connector tests and compiled data maps.
type HostBackend struct {
	h *host.Host

	mu     sync.Mutex
	plan   *host.Plan
	thumbs map[string][]Thumb // by job id, the last few rendered
	order  []string
}

// NewHostBackend wraps a host and the plan it runs.
func NewHostBackend(h *host.Host, p *host.Plan) *HostBackend {
	return &HostBackend{h: h, plan: p, thumbs: map[string][]Thumb{}}
}

// SetPlan gives the backend the plan after a reload (maps, driver types).
func (b *HostBackend) SetPlan(p *host.Plan) {
	b.mu.Lock()
	b.plan = p
	b.mu.Unlock()
}

func (b *HostBackend) currentPlan() *host.Plan {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.plan
}

var _ Backend = (*HostBackend)(nil)

func lightOf(health string) Light {
	switch health {
	case "healthy", "standby": // standby: another gateway of the group runs it
		return Green
	case "down":
		return Red
	}
	return Amber
}

// Overview turns host.Status into lights.
func (b *HostBackend) Overview(ctx context.Context) (Overview, error) {
	st, err := b.h.Status(ctx)
	if err != nil && st.Connectors == nil {
		return Overview{}, err
	}
	ov := Overview{Health: lightOf(st.Health)}
	if len(st.Gateways) > 0 {
		ov.Gateway = st.Gateway
	}
	for _, g := range st.Gateways {
		u := Unit{Kind: "gateway", Name: g.Name, Light: Green, State: "up", Since: g.Heartbeat,
			Detail: []Field{{"drivers", list(g.Drivers)}, {"connectors owned", list(g.Connectors)}, {"started", g.Started.Local().Format(time.DateTime)}}}
		if g.Name == st.Gateway {
			u.State = "up (this gateway)"
		}
		if g.Down {
			u.Light, u.State = Red, "down: no heartbeat; its connectors go to the other gateways"
		}
		if g.Version != "" {
			u.Detail = append(u.Detail, Field{"version", g.Version})
		}
		ov.Units = append(ov.Units, u)
	}
	for _, name := range sortedKeys(st.Connectors) {
		// pluginmgr.State holds a mutex: read its fields, copy nothing.
		health, msg := st.Connectors[name].Health, st.Connectors[name].Message
		u := Unit{Kind: "connector", Name: name, Light: lightOf(string(health)), State: string(health),
			Since: st.Connectors[name].Since, LastError: st.Connectors[name].LastError, Restarts: st.Connectors[name].Restarts}
		if msg != "" && health != plugin.HealthHealthy && health != plugin.HealthDown {
			u.State += ": " + msg
		}
		ov.Units = append(ov.Units, u)
	}
	var devices []Unit
	for _, name := range sortedKeys(st.Drivers) {
		d := st.Drivers[name]
		u := Unit{Kind: "driver", Name: name, Light: lightOf(d.Health), State: d.Health, Since: d.Since,
			Queued: d.Queued, InProgress: d.InProgress, Retrying: d.Retrying, Failed: d.Failed,
			OldestAge: time.Duration(d.OldestAge * float64(time.Second))}
		if d.Health != "healthy" {
			u.LastError = d.Message
		}
		for _, a := range d.Active {
			u.Active = append(u.Active, Active{JobID: a.JobID, Step: a.Step, Detail: a.Detail, Page: a.Page, Pages: a.Pages})
		}
		ov.Units = append(ov.Units, u)
		devices = append(devices, modemUnits(name, d.Devices)...)
	}
	for _, name := range st.Unserved {
		ov.Units = append(ov.Units, Unit{Kind: "driver", Name: name, Light: Red, State: "waiting",
			LastError: "no gateway runs driver " + name + ": its jobs wait for one", Queued: st.Queued[name]})
	}
	ov.Units = append(ov.Units, devices...)
	sp := st.Spool
	ov.Units = append(ov.Units, Unit{Kind: "spool", Name: "spool", Light: lightOf(sp.Health), State: sp.Health, Since: sp.Since,
		LastError: sp.LastError, Detail: []Field{{"write errors", fmt.Sprint(sp.WriteErrors)}, {"deferrals", fmt.Sprint(sp.Deferrals)}}})
	if err != nil {
		// The counts failed but the lights are there: show them, and say so.
		ov.Health = Amber
	}
	return ov, nil
}

// modemUnits are the lights of a driver's devices: green in service (idle
// or on a call), amber out of service until its next probe, red when it
// does not answer.
func modemUnits(driver string, devs []linedriver.DeviceStatus) []Unit {
	var out []Unit
	for _, dev := range devs {
		u := Unit{Kind: "modem", Name: driver + " " + dev.Name, Light: lightOf(dev.Health), State: dev.State,
			Since: dev.Since, LastError: dev.LastError}
		if !dev.ProbeAt.IsZero() {
			u.Detail = []Field{{"probed again", when(time.Now(), dev.ProbeAt)}}
		}
		if !dev.ProbeAt.IsZero() {
			u.Detail = append(u.Detail, Field{"tried again", dev.ProbeAt.Local().Format("15:04:05")})
		}
		out = append(out, u)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// backendErr maps the host's errors to the console's.
func backendErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, spool.ErrNotFound), errors.Is(err, host.ErrUnknownConnector):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, spool.ErrNotFailed), errors.Is(err, spool.ErrActive):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

func row(j spool.JobInfo) JobRow {
	r := JobRow{ID: j.ID, Driver: j.Driver, Connector: j.Connector, State: j.State, Created: j.Accepted, Next: j.Due,
		Attempts: j.Attempts, Category: j.Category, Reason: j.LastError}
	var parts []string
	for _, k := range []string{"fax_number", "recipient", "to", "subject"} {
		if v := j.Fields[k]; v != "" {
			parts = append(parts, v)
		}
	}
	r.Summary = strings.Join(parts, " · ")
	return r
}

// Jobs lists jobs through the host (which knows the ones in an attempt).
func (b *HostBackend) Jobs(ctx context.Context, driver, state string, limit int) ([]JobRow, error) {
	js, err := b.h.Jobs(ctx, spool.Query{Driver: driver, State: state, Limit: limit})
	if err != nil {
		return nil, backendErr(err)
	}
	out := make([]JobRow, 0, len(js))
	for _, j := range js {
		out = append(out, row(j))
	}
	return out, nil
}

// Job shows one job; a fax job gets its pages as thumbnails.
func (b *HostBackend) Job(ctx context.Context, id string) (*JobPage, error) {
	d, err := b.h.Job(ctx, id)
	if err != nil {
		return nil, backendErr(err)
	}
	p := &JobPage{JobRow: row(d.JobInfo)}
	for _, k := range sortedKeys(d.Fields) {
		p.Fields = append(p.Fields, Field{k, d.Fields[k]})
	}
	for _, doc := range d.Documents {
		p.Documents = append(p.Documents, Document{doc.Name, doc.MediaType, doc.Size})
	}
	for _, a := range d.History {
		at := Attempt{N: a.N, Started: a.Started, Ended: a.Ended, Result: a.Result, Category: a.Category, Reason: a.Reason}
		if a.Log != "" {
			at.Log = strings.Split(strings.TrimRight(a.Log, "\n"), "\n")
		}
		p.History = append(p.History, at)
	}
	p.Thumbs = b.faxThumbs(ctx, d.Driver, id)
	if e, err := b.h.Spool().Entry(ctx, id); err == nil && e.Job.Record.CallLog != "" {
		p.CallLog = strings.Split(strings.TrimRight(e.Job.Record.CallLog, "\n"), "\n")
	}
	return p, nil
}

// received reports whether a record is a received fax: it came in on a
// driver's line (its Connector names a driver), not from a connector.
func received(p *host.Plan, rec *linedriver.Record) bool {
	_, isDriver := p.Config.Drivers[rec.Connector]
	_, isConnector := p.Config.Connectors[rec.Connector]
	return isDriver && !isConnector
}

const thumbWidth = 340

// faxThumbs renders a fax job's documents as the fax driver would lay them
// out (default options, without the header line), scaled down; the last
// few jobs' pages are kept.
func (b *HostBackend) faxThumbs(ctx context.Context, driver, id string) []Thumb {
	p := b.currentPlan()
	if p == nil {
		return nil
	}
	b.mu.Lock()
	t, ok := b.thumbs[id]
	b.mu.Unlock()
	if ok {
		return t
	}
	e, err := b.h.Spool().Entry(ctx, id)
	if err != nil {
		return nil
	}
	// A fax to send, or a received fax (whose pages are its TIFF; the
	// PDF beside it holds the same pages).
	in := received(p, &e.Job.Record)
	if !in && (p.Config.Drivers[driver] == nil || p.Config.Drivers[driver].Type != "faxmodem") {
		return nil
	}
	docs := make([]render.Document, 0, len(e.Job.Record.Documents))
	for _, d := range e.Job.Record.Documents {
		if in && d.MediaType != "image/tiff" {
			continue
		}
		docs = append(docs, render.Document{Name: d.Name, MediaType: d.MediaType, Data: d.Data})
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pages, err := render.Render(ctx, docs, render.Options{MaxPages: 20})
	if err != nil {
		return nil
	}
	for _, pg := range pages {
		if png := thumbPNG(pg); png != nil {
			t = append(t, Thumb{PNG: png})
		}
	}
	b.mu.Lock()
	b.thumbs[id] = t
	b.order = append(b.order, id)
	if len(b.order) > 16 {
		delete(b.thumbs, b.order[0])
		b.order = b.order[1:]
	}
	b.mu.Unlock()
	return t
}

func thumbPNG(pg *render.Page) []byte {
	var full bytes.Buffer
	if render.WritePNG(&full, pg) != nil {
		return nil
	}
	src, err := png.Decode(&full)
	if err != nil {
		return nil
	}
	sb := src.Bounds()
	dst := image.NewGray(image.Rect(0, 0, thumbWidth, sb.Dy()*thumbWidth/sb.Dx()))
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), src, sb, draw.Src, nil)
	var out bytes.Buffer
	if png.Encode(&out, dst) != nil {
		return nil
	}
	return out.Bytes()
}

// Retry and Purge act through the host, which logs them as activity.
func (b *HostBackend) Retry(ctx context.Context, id string) error {
	return backendErr(b.h.RetryJob(ctx, id))
}

// Purge removes a failed or queued job.
func (b *HostBackend) Purge(ctx context.Context, id string) error {
	return backendErr(b.h.PurgeJob(ctx, id))
}

// Test runs a connector's Test, bounded to two minutes.
func (b *HostBackend) Test(ctx context.Context, name string) (TestView, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	r, err := b.h.TestConnector(ctx, name)
	if err != nil {
		return TestView{}, backendErr(err)
	}
	return TestView{Connector: name, Category: string(r.Category), Hint: r.Hint, Detail: r.Detail}, nil
}

// Subscribe follows the host's activity hub.
func (b *HostBackend) Subscribe() (<-chan Event, func()) {
	in, cancel := b.h.Activity().Subscribe(256)
	out := make(chan Event, 256)
	go func() {
		defer close(out)
		for e := range in {
			select {
			case out <- toEvent(e):
			default: // a slow browser misses events rather than holding the hub
			}
		}
	}()
	return out, cancel
}

func toEvent(e activity.Event) Event {
	return Event{Time: e.Time, Kind: e.Kind, Connector: e.Connector, Driver: e.Driver, JobID: e.JobID, Message: e.Message}
}

// Maps names the data maps of the running config.
func (b *HostBackend) Maps() []string {
	p := b.currentPlan()
	if p == nil {
		return nil
	}
	return sortedKeys(p.Maps)
}

// TryMap runs a compiled map on a pasted email, as `mediagw datamap try`.
func (b *HostBackend) TryMap(name string, raw []byte) (MapPreview, error) {
	p := b.currentPlan()
	if p == nil || p.Maps[name] == nil {
		return MapPreview{}, fmt.Errorf("console: map %q: %w", name, ErrNotFound)
	}
	var buf bytes.Buffer
	err := datamap.Try(&buf, p.Maps[name], raw)
	mp := MapPreview{Map: name, Text: buf.String()}
	var rej *datamap.Rejection
	switch {
	case errors.As(err, &rej):
		mp.Rejected, mp.Reason = true, rej.Error()
	case err != nil:
		return MapPreview{}, fmt.Errorf("console: map %s: %w", name, err)
	}
	return mp, nil
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
