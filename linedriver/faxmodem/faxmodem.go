// Package faxmodem is the line driver that sends faxes through fax modems
// on serial ports: it renders a record's documents into pages, encodes them
// to the parameters the far end accepts, and runs T.30 itself over a
// Class 1 modem. A pool of modems takes one job each; failures come back as
// categories with a retry delay, and the pages the far end confirmed are
// kept in the job's state so that a retry resumes after them.
package faxmodem

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/class2"
	"github.com/mediagw/mediagw/linedriver/faxmodem/render"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

func init() { linedriver.Register("faxmodem", New) }

// DeviceConfig is one modem.
type DeviceConfig struct {
	Device string   `json:"device"`
	Class  string   `json:"class,omitempty"` // auto (default), 1, 1.0, 2, 2.0
	Init   []string `json:"init,omitempty"`  // extra commands after ATZ, without "AT"
	// DialModifiers are this modem's dial modifiers, sent after ATD and
	// before the outside line and the number: T (tone), P (pulse), W (wait
	// for dial tone), ',' (pause), '!' (flash), '@' (wait for quiet).
	DialModifiers string `json:"dial_modifiers,omitempty"`
	Flow          string `json:"flow,omitempty"`  // xonxoff (default) or none
	Speed         int    `json:"speed,omitempty"` // serial port bit rate (default 115200)
	// Mode is send (default), receive (answers calls only) or both
	// (answers while no job uses it).
	Mode string `json:"mode,omitempty"`
	// Rings is how many rings a receiving device lets pass before it
	// answers (default 2).
	Rings int `json:"rings,omitempty"`
}

// UnmarshalJSON decodes a device strictly and names the replacement of the
// removed dial_prefix.
func (d *DeviceConfig) UnmarshalJSON(b []byte) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	if _, ok := keys["dial_prefix"]; ok {
		return errors.New("dial_prefix was removed: the outside-line code goes in the driver's dial.outside_line, the modem's dial modifiers (T, P, W, ',') in dial_modifiers")
	}
	type plain DeviceConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode((*plain)(d))
}

// Options of the driver (the "options" of a faxmodem line driver).
type Options struct {
	Devices    []DeviceConfig `json:"devices"`
	LocalID    string         `json:"local_id,omitempty"`   // TSI, up to 20 characters
	Header     string         `json:"header,omitempty"`     // sender name on the header line; "" for none
	Resolution string         `json:"resolution,omitempty"` // fine (default) or standard
	// Paper is the page length documents are laid out on: a4 (default) or
	// letter. Never guessed from the region; the width is 215 mm for both.
	Paper        string `json:"paper,omitempty"`
	Encoding     string `json:"encoding,omitempty"`       // "" (best the far end takes: MMR over ECM, else MR), mmr, mr or mh
	ECM          string `json:"ecm,omitempty"`            // auto (default: when the far end offers it), on, off
	ECMFrameSize int    `json:"ecm_frame_size,omitempty"` // 256 (default) or 64
	Dither       bool   `json:"dither,omitempty"`         // every image as a photo (halftone screen); else each image's histogram decides
	// PDFRenderer renders PDFs: auto (default: ghostscript when installed,
	// else the embedded PDFium), pdfium or ghostscript.
	PDFRenderer string      `json:"pdf_renderer,omitempty"`
	Modulations []string    `json:"modulations,omitempty"`
	MaxSpeed    int         `json:"max_speed,omitempty"`
	RTNRetries  *int        `json:"rtn_retries,omitempty"` // resend a rejected page (default 1)
	Retry       RetryPolicy `json:"retry,omitempty"`
	Dial        DialPlan    `json:"dial"`
	// ReprobeAfter is how long a modem that stopped answering stays out of
	// the pool before it is probed again (default 5m).
	ReprobeAfter Duration `json:"reprobe_after,omitempty"`
	// Open opens a device; tests put an emulator here. Not configurable.
	Open func(dev DeviceConfig) (*at.Channel, error) `json:"-"`
	// Timers of T.30 (tests shorten them). Not configurable.
	Timers *t30.Config `json:"-"`
}

// ParseOptions decodes options strictly and fills in defaults.
func ParseOptions(raw json.RawMessage) (Options, error) {
	var o Options
	if err := linedriver.DecodeOptions(raw, &o); err != nil {
		return o, fmt.Errorf("faxmodem: options: %w", err)
	}
	if len(o.Devices) == 0 {
		return o, errors.New("faxmodem: options: at least one device is needed")
	}
	for i, d := range o.Devices {
		if d.Device == "" {
			return o, fmt.Errorf("faxmodem: options: devices[%d]: device is empty", i)
		}
		switch d.Class {
		case "", "auto", "1", "1.0", "2", "2.0":
		default:
			return o, fmt.Errorf("faxmodem: options: devices[%d]: class %q (want auto, 1, 1.0, 2 or 2.0)", i, d.Class)
		}
		switch d.Flow {
		case "", "xonxoff", "none":
		default:
			return o, fmt.Errorf("faxmodem: options: devices[%d]: flow %q (want xonxoff or none)", i, d.Flow)
		}
		switch d.Mode {
		case "", ModeSend, ModeReceive, ModeBoth:
		default:
			return o, fmt.Errorf("faxmodem: options: devices[%d]: mode %q (want send, receive or both)", i, d.Mode)
		}
		if d.Rings < 0 || d.Rings > 20 {
			return o, fmt.Errorf("faxmodem: options: devices[%d]: rings %d (want 1 to 20)", i, d.Rings)
		}
		if strings.Trim(strings.ToUpper(d.DialModifiers), "TPW,!@") != "" {
			return o, fmt.Errorf("faxmodem: options: devices[%d]: dial_modifiers %q (want T, P, W, ',', '!' or '@'; the outside line goes in dial.outside_line)", i, d.DialModifiers)
		}
		o.Devices[i].DialModifiers = strings.ToUpper(d.DialModifiers)
	}
	if err := o.Dial.validate(); err != nil {
		return o, fmt.Errorf("faxmodem: options: %w", err)
	}
	switch o.Resolution {
	case "", "fine", "standard":
	default:
		return o, fmt.Errorf("faxmodem: options: resolution %q (want fine or standard)", o.Resolution)
	}
	if _, err := ParsePaper(o.Paper); err != nil {
		return o, fmt.Errorf("faxmodem: options: %w", err)
	}
	if _, err := render.ParsePDFRenderer(o.PDFRenderer); err != nil {
		return o, fmt.Errorf("faxmodem: options: %w", err)
	}
	switch strings.ToLower(o.Encoding) {
	case "", "mmr", "mr", "mh":
	default:
		return o, fmt.Errorf("faxmodem: options: encoding %q (want mmr, mr or mh)", o.Encoding)
	}
	switch strings.ToLower(o.ECM) {
	case "", "auto", "on", "off":
	default:
		return o, fmt.Errorf("faxmodem: options: ecm %q (want auto, on or off)", o.ECM)
	}
	if o.ECMFrameSize != 0 && o.ECMFrameSize != 64 && o.ECMFrameSize != 256 {
		return o, fmt.Errorf("faxmodem: options: ecm_frame_size %d (want 256 or 64)", o.ECMFrameSize)
	}
	for _, m := range o.Modulations {
		if err := checkModulation(m); err != nil {
			return o, fmt.Errorf("faxmodem: options: %w", err)
		}
	}
	if o.MaxSpeed != 0 && o.MaxSpeed < 2400 {
		return o, fmt.Errorf("faxmodem: options: max_speed %d is below the slowest fax speed (2400)", o.MaxSpeed)
	}
	if len(o.LocalID) > 20 {
		return o, fmt.Errorf("faxmodem: options: local_id is longer than 20 characters")
	}
	return o, nil
}

// ErrPaper is returned for a paper size other than a4 or letter.
var ErrPaper = errors.New("paper: want a4 or letter")

// ParsePaper maps a4 ("" too) and letter, in any case, to the render's
// paper size.
func ParsePaper(s string) (render.PaperSize, error) {
	switch strings.ToLower(s) {
	case "", "a4":
		return render.A4, nil
	case "letter":
		return render.Letter, nil
	}
	return render.A4, fmt.Errorf("%w, got %q", ErrPaper, s)
}

// ErrModulation is returned for a modulation other than V.17, V.29 or V.27ter.
var ErrModulation = fmt.Errorf("modulations: want %s, %s or %s", t30.V17, t30.V29, t30.V27ter)

// ParseModulations splits a comma-separated list (V.17,V.29,V.27ter, any
// case, blanks ignored) and checks each name.
func ParseModulations(s string) ([]string, error) {
	var out []string
	for _, m := range strings.Split(s, ",") {
		if m = strings.TrimSpace(m); m == "" {
			continue
		}
		if err := checkModulation(m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func checkModulation(m string) error {
	if !strings.EqualFold(m, t30.V17) && !strings.EqualFold(m, t30.V29) && !strings.EqualFold(m, t30.V27ter) {
		return fmt.Errorf("%w, got %q", ErrModulation, m)
	}
	return nil
}

// Driver is the faxmodem line driver.
type Driver struct {
	name string
	opts Options
	log  *slog.Logger
	pool *Pool
}

var _ linedriver.Driver = (*Driver)(nil)

// New is the linedriver.Factory of faxmodem.
func New(name string, options json.RawMessage, logger *slog.Logger) (linedriver.Driver, error) {
	o, err := ParseOptions(options)
	if err != nil {
		return nil, err
	}
	d := NewWith(name, o, logger)
	if r := d.Receiver(); r != nil {
		return r.(Receiving), nil
	}
	return d, nil
}

// NewWith builds a driver from decoded options.
func NewWith(name string, o Options, logger *slog.Logger) *Driver {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Open == nil {
		o.Open = func(d DeviceConfig) (*at.Channel, error) { return at.Open(d.Device, d.Speed, at.Options{}) }
	}
	re := time.Duration(o.ReprobeAfter)
	if re == 0 {
		re = 5 * time.Minute
	}
	return &Driver{name: name, opts: o, log: logger.With("driver", name), pool: NewPool(o.Devices, re)}
}

// Name implements linedriver.Driver.
func (d *Driver) Name() string { return d.name }

// Slots is the number of modems.
func (d *Driver) Slots() int { return len(d.opts.Devices) }

// Close implements linedriver.Driver.
func (d *Driver) Close() error { return nil }

var _ linedriver.DeviceReporter = (*Driver)(nil)

// Devices reports the health of each modem, for the status and the console.
func (d *Driver) Devices() []linedriver.DeviceStatus { return d.pool.Devices() }

// Check refuses records without a fax number or documents, and numbers the
// dial policy denies.
func (d *Driver) Check(rec *linedriver.Record) error {
	num := rec.Fields["fax_number"]
	if num == "" {
		return errors.New("faxmodem: the record has no fax_number")
	}
	if _, err := d.opts.Dial.Check(num); err != nil {
		return err
	}
	if _, err := d.jobOptionsOf(rec.Fields); err != nil {
		return err
	}
	if len(rec.Documents) == 0 {
		return errors.New("faxmodem: the record has no documents to send")
	}
	for _, doc := range rec.Documents {
		if err := render.Supported(render.Document{Name: doc.Name, MediaType: doc.MediaType, Data: doc.Data}, render.Options{PDFRenderer: d.opts.PDFRenderer}); err != nil {
			return fmt.Errorf("faxmodem: %w", err)
		}
	}
	return nil
}

// State is what the spool keeps between attempts of a job.
type State struct {
	Confirmed int            `json:"confirmed"` // pages the far end confirmed, over all attempts
	Pages     int            `json:"pages"`     // pages of the job as rendered
	Tries     map[string]int `json:"tries,omitempty"`
	RemoteID  string         `json:"remote_id,omitempty"`
}

// Deliver makes one attempt at a job.
var _ linedriver.StateSaver = (*Driver)(nil)

func (d *Driver) Deliver(ctx context.Context, job *linedriver.Job, report func(linedriver.Progress)) linedriver.Outcome {
	return d.DeliverSaving(ctx, job, report, nil)
}

// DeliverSaving is Deliver that hands save the job's state after every
// page the far end confirmed, so that a gateway that dies in the middle of
// a call resumes at the first unconfirmed page. save may be nil.
func (d *Driver) DeliverSaving(ctx context.Context, job *linedriver.Job, report func(linedriver.Progress), save func(json.RawMessage) error) linedriver.Outcome {
	if report == nil {
		report = func(linedriver.Progress) {}
	}
	var st State
	if len(job.State) > 0 {
		if err := json.Unmarshal(job.State, &st); err != nil {
			return d.fail(st, "state", "unreadable job state: "+err.Error())
		}
	}
	call, err := d.opts.Dial.Check(job.Record.Fields["fax_number"])
	if err != nil {
		return d.fail(st, "dial_policy", err.Error())
	}
	jo, err := d.jobOptionsOf(job.Record.Fields)
	if err != nil {
		return d.fail(st, "options", err.Error())
	}
	report(linedriver.Progress{Step: "render", Detail: fmt.Sprintf("%d documents", len(job.Record.Documents))})
	pages, err := d.render(ctx, job, call.Number.International())
	if err != nil {
		return d.fail(st, "render", err.Error())
	}
	if st.Pages != 0 && st.Pages != len(pages) {
		// the documents rendered differently: start again from the top
		st.Confirmed = 0
	}
	st.Pages = len(pages)
	if st.Confirmed >= len(pages) {
		return linedriver.Done(map[string]string{"pages": fmt.Sprint(len(pages)), "remote_id": st.RemoteID})
	}
	m, err := d.pool.Acquire(ctx, d.probe)
	if err != nil {
		// Nothing was dialled: wait for a modem without using up the job's
		// attempts, however long the modems are out.
		o := linedriver.Retry("no_modem", err.Error(), d.opts.Retry.delay("no_modem"))
		o.State, _ = json.Marshal(st)
		o.Uncounted = true
		return o
	}
	defer d.pool.Release(m)
	confirmed := func(page int) {
		if save == nil {
			return
		}
		cp := st
		cp.Confirmed = page
		b, err := json.Marshal(cp)
		if err == nil {
			err = save(b)
		}
		if err != nil {
			d.log.Warn("save fax progress", "job", job.ID, "page", page, "error", err)
		}
	}
	res, err := d.send(ctx, m, call.Dial, pages, st.Confirmed, jo, report, confirmed)
	var e *t30.Error
	if err != nil && !errors.As(err, &e) {
		e = &t30.Error{Category: t30.CatModem, Reason: err.Error(), Err: err}
	}
	if e != nil {
		st.Confirmed += e.Confirmed
	} else {
		st.Confirmed += res.Pages
	}
	if res.RemoteID != "" {
		st.RemoteID = res.RemoteID
	}
	if e == nil {
		d.pool.Answered(m)
		report(linedriver.Progress{Step: "done", Detail: fmt.Sprintf("%d pages", st.Confirmed)})
		enc := "MH"
		switch {
		case res.Params.MMR:
			enc = "MMR"
		case res.Params.MR:
			enc = "MR"
		}
		if res.Params.ECM {
			enc += " with ECM"
		}
		resol := "standard"
		if res.Params.Fine {
			resol = "fine"
		}
		details := map[string]string{
			"pages": fmt.Sprint(st.Confirmed), "remote_id": st.RemoteID, "speed": res.Params.Speed.String(),
			"resolution": resol, "encoding": enc, "duration": res.Duration.Round(time.Millisecond).String(),
			"modem": m.Config.Device, "number": call.Number.E164, "dialled": m.Config.DialModifiers + call.Dial,
		}
		if res.FramesLost > 0 { // EOR: the far end kept these pages with frames missing
			pg := make([]string, len(res.PagesDegraded))
			for i, n := range res.PagesDegraded {
				pg[i] = fmt.Sprint(n)
			}
			details["frames_lost"] = fmt.Sprint(res.FramesLost)
			details["pages_degraded"] = strings.Join(pg, ",")
		}
		return linedriver.Done(details)
	}
	if e.Category == t30.CatModem {
		d.pool.MarkBad(m, e.Reason)
	} else {
		d.pool.Answered(m)
	}
	d.log.Info("fax attempt failed", "job", job.ID, "category", e.Category, "reason", e.Reason, "confirmed", st.Confirmed, "pages", len(pages))
	return d.retry(job, st, e.Category, e.Reason)
}

func (d *Driver) fail(st State, cat, reason string) linedriver.Outcome {
	o := linedriver.Fail(cat, reason)
	o.State, _ = json.Marshal(st)
	return o
}

func (d *Driver) retry(job *linedriver.Job, st State, cat, reason string) linedriver.Outcome {
	if st.Tries == nil {
		st.Tries = map[string]int{}
	}
	st.Tries[cat]++
	if cat == t30.CatCancelled {
		o := linedriver.Retry(cat, reason, 0)
		o.State, _ = json.Marshal(st)
		return o
	}
	pol := d.opts.Retry
	if job.Attempt >= pol.maxAttempts() {
		return d.fail(st, cat, fmt.Sprintf("%s (gave up after %d attempts)", reason, job.Attempt))
	}
	if n := pol.maxFor(cat); n > 0 && st.Tries[cat] >= n {
		return d.fail(st, cat, fmt.Sprintf("%s (%d times)", reason, st.Tries[cat]))
	}
	o := linedriver.Retry(cat, reason, pol.delay(cat))
	o.State, _ = json.Marshal(st)
	return o
}

// Render turns a job's documents into the pages Deliver sends (for
// previews and checks).
func (d *Driver) Render(ctx context.Context, job *linedriver.Job) ([]*render.Page, error) {
	call, err := d.opts.Dial.Check(job.Record.Fields["fax_number"])
	if err != nil {
		return nil, err
	}
	return d.render(ctx, job, call.Number.International())
}

// render turns the documents into pages at the configured resolution;
// number is shown on the header line.
func (d *Driver) render(ctx context.Context, job *linedriver.Job, number string) ([]*render.Page, error) {
	docs := make([]render.Document, len(job.Record.Documents))
	for i, doc := range job.Record.Documents {
		docs[i] = render.Document{Name: doc.Name, MediaType: doc.MediaType, Data: doc.Data}
	}
	ro := render.Options{Resolution: render.Fine, Dither: d.opts.Dither, PDFRenderer: d.opts.PDFRenderer}
	if d.opts.Resolution == "standard" {
		ro.Resolution = render.Standard
	}
	ro.Paper, _ = ParsePaper(d.opts.Paper) // checked by ParseOptions
	if d.opts.Header != "" {
		t := job.Accepted
		if t.IsZero() {
			t = job.Record.Received
		}
		ro.Header = &render.Header{From: d.opts.Header, To: number, Time: t}
	}
	for _, sk := range job.Record.Skipped {
		ro.Notes = append(ro.Notes, "Not faxed: "+sk.Name+" ("+sk.Reason+")")
	}
	return render.Render(ctx, docs, ro)
}

// Pages makes T.30 pages of rendered pages: each is encoded when the
// parameters are known (MH or MR, minimum line length, and halved in
// height when the far end takes standard resolution only).
func Pages(pages []*render.Page) []t30.Page {
	out := make([]t30.Page, len(pages))
	for i, pg := range pages {
		out[i] = t30.Page{Encode: func(p t30.Params) ([]byte, error) { return EncodePage(pg, p) }}
	}
	return out
}

// EncodePage codes one page for the negotiated parameters, as a Class 1
// modem carries it (first bit in the least significant bit).
func EncodePage(pg *render.Page, p t30.Params) ([]byte, error) {
	opts := t4.Options{Encoding: t4.MH, EndOfPage: true, LSBFirst: true, MinLineBits: p.MinLineBits()}
	switch {
	case p.MMR:
		opts.Encoding, opts.AutoMH = t4.MMR, false
	case p.MR:
		opts.Encoding, opts.K, opts.AutoMH = t4.MR, p.K(), false
	}
	rows, height := pg.Row, pg.Height
	if pg.Resolution == render.Fine && !p.Fine {
		// two fine rows make one standard row; keep thin lines visible
		height = pg.Height / 2
		buf := make([]byte, pg.Stride)
		rows = func(y int) []byte {
			a, b := pg.Row(2*y), pg.Row(2*y+1)
			for i := range buf {
				buf[i] = a[i] | b[i]
			}
			return buf
		}
	}
	var b bytes.Buffer
	if _, err := t4.EncodePage(&b, pg.Width, rows, height, opts); err != nil {
		return nil, fmt.Errorf("faxmodem: encode: %w", err)
	}
	return b.Bytes(), nil
}

// send runs one call on modem m; dial is the plan's dial string, which
// follows the modem's own dial modifiers.
func (d *Driver) send(ctx context.Context, m *Modem, dial string, pages []*render.Page, first int, jo jobOptions, report func(linedriver.Progress), confirmed func(page int)) (t30.Result, error) {
	ch, err := d.opts.Open(m.Config)
	if err != nil {
		return t30.Result{}, &t30.Error{Category: t30.CatModem, Reason: "cannot open " + m.Config.Device + ": " + err.Error(), Err: err}
	}
	defer ch.Close()
	class, err := Setup(ctx, ch, m.Config)
	if err != nil {
		return t30.Result{}, err
	}
	rtnRetries := 1
	if d.opts.RTNRetries != nil {
		rtnRetries = *d.opts.RTNRetries
	}
	if class == "2" || class == "2.0" {
		report(linedriver.Progress{Step: "class", Detail: "Class " + class + ": the modem runs T.30"})
		return class2.Send(ctx, ch, m.Config.DialModifiers+dial, Pages(pages), class2.Config{
			Class: class, LocalID: d.opts.LocalID, Fine: d.opts.Resolution != "standard",
			MR: jo.Encoding != "mh", RTNRetries: rtnRetries, FirstPage: first,
			ECM: jo.ECM, Encoding: jo.Encoding, FrameSize: d.opts.ECMFrameSize,
			Pace: m.Config.Flow != "none", Confirmed: confirmed,
			Log: func(step, detail string) { report(pageProgress(step, detail, len(pages))) },
		})
	}
	cfg := t30.Config{}
	if d.opts.Timers != nil {
		cfg = *d.opts.Timers
	}
	cfg.LocalID = d.opts.LocalID
	cfg.Fine = d.opts.Resolution != "standard"
	cfg.MR = jo.Encoding != "mh"
	cfg.Encoding = jo.Encoding
	cfg.ECM = jo.ECM
	cfg.NoSpeedFallback = jo.EOR
	cfg.FrameSize = d.opts.ECMFrameSize
	cfg.MaxBits = d.opts.MaxSpeed
	cfg.Modulations = d.opts.Modulations
	cfg.RTNRetries = rtnRetries
	cfg.FirstPage = first
	cfg.Pace = m.Config.Flow != "none"
	cfg.ModemCodes = m.codes
	cfg.Confirmed = confirmed
	inner := cfg.Log
	cfg.Log = func(step, detail string) {
		report(pageProgress(step, detail, len(pages)))
		if inner != nil {
			inner(step, detail)
		}
	}
	return t30.Send(ctx, ch, m.Config.DialModifiers+dial, Pages(pages), cfg)
}

// Setup resets the modem, applies its init commands and selects the fax
// class (auto: Class 1 when offered). It returns the class in use.
func Setup(ctx context.Context, ch *at.Channel, dev DeviceConfig) (string, error) {
	modemErr := func(err error) error {
		return &t30.Error{Category: t30.CatModem, Reason: "the modem does not answer commands", Err: err}
	}
	// A modem left in data mode or mid-command: a lone CR, then ATZ.
	ch.Write([]byte("\r")) //nolint:errcheck // the next command reports
	ch.Drain(ctx, 100*time.Millisecond)
	cmds := append([]string{"Z", "E0V1Q0"}, dev.Init...)
	for _, c := range cmds {
		r, err := ch.Command(ctx, c, 3*time.Second)
		if err != nil {
			return "", modemErr(err)
		}
		if !r.OK() {
			return "", &t30.Error{Category: t30.CatModem, Reason: fmt.Sprintf("AT%s: %s", c, r.Result)}
		}
	}
	r, err := ch.Command(ctx, "+FCLASS=?", 3*time.Second)
	if err != nil {
		return "", modemErr(err)
	}
	offered := ""
	if len(r.Lines) > 0 {
		offered = "," + strings.ReplaceAll(strings.Join(r.Lines, ","), " ", "") + ","
	}
	class := dev.Class
	if class == "" || class == "auto" {
		switch {
		case strings.Contains(offered, ",1,"):
			class = "1"
		case strings.Contains(offered, ",1.0,"):
			class = "1.0"
		case strings.Contains(offered, ",2.0,"):
			class = "2.0"
		case strings.Contains(offered, ",2,"):
			class = "2"
		default:
			return "", &t30.Error{Category: t30.CatModem, Reason: "the modem offers no fax class (AT+FCLASS=? answered " + strings.Join(r.Lines, " ") + ")"}
		}
	} else if offered != "" && !strings.Contains(offered, ","+class+",") {
		return "", &t30.Error{Category: t30.CatModem, Reason: fmt.Sprintf("the modem does not offer class %s (it offers %s)", class, strings.Trim(offered, ","))}
	}
	if r, err := ch.Command(ctx, "+FCLASS="+class, 3*time.Second); err != nil || !r.OK() {
		if err != nil {
			return "", modemErr(err)
		}
		return "", &t30.Error{Category: t30.CatModem, Reason: "AT+FCLASS=" + class + ": " + r.Result}
	}
	return class, nil
}

// Modem is one device of the pool.
type Modem struct {
	Config  DeviceConfig
	busy    bool
	badTill time.Time
	codes   []int
	// For the status: consecutive failures (a call that found the modem
	// not answering, then each failed probe), the last one's words, and
	// when the modem's health last changed.
	fails   int
	lastErr string
	since   time.Time
	// Receiving: waiting for calls (stopListen ends that; listenDone is
	// closed once the port is closed again), on an incoming call.
	listening  bool
	stopListen context.CancelFunc
	listenDone chan struct{}
	receiving  bool
	rxClaimed  bool // busy because the listener took a call
}

// health is the modem's health in the status's words.
func (m *Modem) health() string {
	switch {
	case m.fails == 0:
		return linedriver.DeviceHealthy
	case m.fails == 1:
		return linedriver.DeviceDegraded
	}
	return linedriver.DeviceDown
}

// Pool hands out free, healthy modems.
type Pool struct {
	mu      sync.Mutex
	modems  []*Modem
	reprobe time.Duration
	free    chan struct{}
	change  chan struct{} // closed (and replaced) when a modem is released or back in service
}

// NewPool makes a pool of devices.
func NewPool(devs []DeviceConfig, reprobe time.Duration) *Pool {
	p := &Pool{reprobe: reprobe, free: make(chan struct{}, 1), change: make(chan struct{})}
	now := time.Now()
	for _, d := range devs {
		p.modems = append(p.modems, &Modem{Config: d, since: now})
	}
	return p
}

// ErrNoModem means every modem is out of service.
var ErrNoModem = errors.New("faxmodem: no modem in service")

// Acquire waits for a free modem. A modem marked bad is probed with probe
// once its time out has passed; if every modem is out of service it fails
// with ErrNoModem.
func (p *Pool) Acquire(ctx context.Context, probe func(context.Context, *Modem) error) (*Modem, error) {
	for {
		p.mu.Lock()
		now := time.Now()
		var candidate *Modem
		allBad := true
		for _, m := range p.modems {
			if !m.Config.sends() || m.badTill.After(now) {
				continue
			}
			allBad = false
			if !m.busy {
				candidate = m
				break
			}
		}
		var stop context.CancelFunc
		var stopped chan struct{}
		if candidate != nil {
			candidate.busy = true
			if candidate.listening {
				// waiting for calls: stop that (the listener sees busy and
				// does not answer), then dial once its port is closed
				stop, stopped = candidate.stopListen, candidate.listenDone
			}
		}
		p.mu.Unlock()
		if stop != nil {
			stop()
			select {
			case <-stopped:
			case <-ctx.Done():
				p.Release(candidate)
				return nil, ctx.Err()
			}
		}
		if candidate != nil {
			if candidate.badTill.IsZero() || probe == nil {
				return candidate, nil
			}
			if err := probe(ctx, candidate); err != nil {
				if ctx.Err() != nil {
					// Cut short, the probe says nothing about the modem.
					p.Release(candidate)
					return nil, ctx.Err()
				}
				p.MarkBad(candidate, plainReason(err))
				p.Release(candidate)
				continue
			}
			p.Answered(candidate)
			return candidate, nil
		}
		if allBad {
			return nil, ErrNoModem
		}
		select {
		case <-p.free:
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Release returns a modem to the pool.
func (p *Pool) Release(m *Modem) {
	p.mu.Lock()
	m.busy = false
	p.changedLocked()
	p.mu.Unlock()
	select {
	case p.free <- struct{}{}:
	default:
	}
}

// MarkBad takes a modem out of service for the reprobe time; reason says
// why, in plain words, for the status. The first failure makes the modem
// degraded, a second in a row (its probe failed too) down.
func (p *Pool) MarkBad(m *Modem, reason string) {
	p.mu.Lock()
	now := time.Now()
	m.badTill = now.Add(p.reprobe)
	if m.fails < 2 {
		m.since = now
	}
	m.fails++
	m.lastErr = reason
	p.mu.Unlock()
}

// Answered records that a modem answered its commands (a call got past
// the set-up, or a probe passed): it is back in service.
func (p *Pool) Answered(m *Modem) {
	p.mu.Lock()
	m.badTill = time.Time{}
	if m.fails > 0 {
		m.fails, m.lastErr, m.since = 0, "", time.Now()
		p.changedLocked()
	}
	p.mu.Unlock()
}

func (p *Pool) changedLocked() {
	close(p.change)
	p.change = make(chan struct{})
}

// changed is closed at the next release of a modem or its return to
// service.
func (p *Pool) changed(*Modem) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.change
}

// startListening marks a free, healthy modem as waiting for calls; ctx
// ends when the pool takes it for a job. ok is false when it is busy or
// out of service.
func (p *Pool) startListening(ctx context.Context, m *Modem) (lctx context.Context, done chan struct{}, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.busy || m.badTill.After(time.Now()) {
		return nil, nil, false
	}
	lctx, cancel := context.WithCancel(ctx)
	m.listening, m.stopListen, m.listenDone = true, cancel, make(chan struct{})
	return lctx, m.listenDone, true
}

// stopListening ends a listener's turn: its port is closed.
func (p *Pool) stopListening(m *Modem, done chan struct{}) {
	p.mu.Lock()
	if m.stopListen != nil {
		m.stopListen()
	}
	m.listening, m.stopListen, m.receiving = false, nil, false
	if m.rxClaimed {
		m.busy, m.rxClaimed = false, false
	}
	close(done)
	p.changedLocked()
	p.mu.Unlock()
	select {
	case p.free <- struct{}{}:
	default:
	}
}

// claim takes a listening modem for the call that rang, unless a job took
// it first.
func (p *Pool) claim(m *Modem) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.busy {
		return false
	}
	m.busy, m.rxClaimed, m.receiving = true, true, true
	return true
}

// Devices reports each modem: idle or on a call, out of service until its
// next probe, or not answering.
func (p *Pool) Devices() []linedriver.DeviceStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]linedriver.DeviceStatus, 0, len(p.modems))
	for _, m := range p.modems {
		ds := linedriver.DeviceStatus{Name: m.Config.Device, Health: m.health(), Since: m.since, LastError: m.lastErr}
		switch {
		case m.fails == 0 && m.receiving:
			ds.State = "receiving a call"
		case m.fails == 0 && m.busy:
			ds.State = "on a call"
		case m.fails == 0 && m.listening:
			ds.State = "waiting for calls"
		case m.fails == 0:
			ds.State = "idle"
		case m.busy:
			ds.State = "being probed"
		case m.fails == 1:
			ds.State, ds.ProbeAt = "out of service", m.badTill
		default:
			ds.State, ds.ProbeAt = "not answering", m.badTill
		}
		out = append(out, ds)
	}
	return out
}

// plainReason is the words of a modem's failure, without the categories
// of the error's text.
func plainReason(err error) string {
	if e, ok := errors.AsType[*t30.Error](err); ok {
		return e.Reason
	}
	return err.Error()
}

// probe checks that a modem answers again.
func (d *Driver) probe(ctx context.Context, m *Modem) error {
	ch, err := d.opts.Open(m.Config)
	if err != nil {
		return &t30.Error{Category: t30.CatModem, Reason: "cannot open " + m.Config.Device + ": " + err.Error(), Err: err}
	}
	defer ch.Close()
	_, err = Setup(ctx, ch, m.Config)
	return err
}

// pageProgress is a step of the call; a "page" step, whose detail starts
// with the page's number, also says which page of how many is on its way.
func pageProgress(step, detail string, pages int) linedriver.Progress {
	p := linedriver.Progress{Step: step, Detail: detail}
	if step == "page" {
		if _, err := fmt.Sscanf(detail, "%d", &p.Page); err == nil && p.Page > 0 {
			p.Pages = pages
		}
	}
	return p
}
