package faxmodem

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/class2"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
)

// Modes of a device: which way its calls go.
const (
	ModeSend    = "send"    // dials out only (the default)
	ModeReceive = "receive" // answers only
	ModeBoth    = "both"    // answers while idle; taken for sending when a job comes
)

// Receiving is the driver of a configuration where a device answers calls:
// the Driver with Receive. New returns it then, so that the host, which
// takes every linedriver.Receiver for a line that answers, finds a
// send-only configuration without it.
type Receiving struct{ *Driver }

var _ linedriver.Receiver = Receiving{}

// Receiver returns the driver as a linedriver.Receiver when one of its
// devices answers calls (mode receive or both), else nil.
func (d *Driver) Receiver() linedriver.Receiver {
	for _, m := range d.pool.modems {
		if m.Config.receives() {
			return Receiving{d}
		}
	}
	return nil
}

// receives reports whether a device answers calls.
func (c DeviceConfig) receives() bool { return c.Mode == ModeReceive || c.Mode == ModeBoth }

// sends reports whether a device dials out.
func (c DeviceConfig) sends() bool { return c.Mode == "" || c.Mode == ModeSend || c.Mode == ModeBoth }

func (c DeviceConfig) rings() int {
	if c.Rings <= 0 {
		return 2
	}
	return c.Rings
}

// Receive answers calls on every device whose mode is receive or both, one
// call at a time per device, until ctx ends. A "both" device waits for
// calls only while no job is using it, and stops waiting (cleanly, on hook)
// when the pool hands it to a job.
func (r Receiving) Receive(ctx context.Context, in linedriver.Inbound) error {
	d := r.Driver
	var wg sync.WaitGroup
	for _, m := range d.pool.modems {
		if !m.Config.receives() {
			continue
		}
		wg.Go(func() { d.listenLoop(ctx, m, in) })
	}
	wg.Wait()
	return nil
}

// listenLoop keeps a device waiting for calls while it is free and in
// service.
func (d *Driver) listenLoop(ctx context.Context, m *Modem, in linedriver.Inbound) {
	for ctx.Err() == nil {
		lctx, done, ok := d.pool.startListening(ctx, m)
		if !ok {
			// sending, or out of service until its probe: look again soon
			select {
			case <-ctx.Done():
				return
			case <-d.pool.changed(m):
			case <-time.After(time.Second):
			}
			continue
		}
		err := d.listen(lctx, m, in)
		d.pool.stopListening(m, done)
		var e *t30.Error
		switch {
		case err == nil, ctx.Err() != nil, lctx.Err() != nil:
		case errors.As(err, &e) && e.Category == t30.CatModem:
			d.log.Warn("fax modem not answering while waiting for calls", "device", m.Config.Device, "error", err)
			d.pool.MarkBad(m, e.Reason)
		default:
			d.log.Info("fax call in", "device", m.Config.Device, "error", err)
		}
	}
}

// listen opens the device, sets it up for answering by hand (ATS0=0, the
// host counts the rings) and waits for a call; it returns after one call
// or when ctx ends (the pool took the device for a job).
func (d *Driver) listen(ctx context.Context, m *Modem, in linedriver.Inbound) error {
	ch, err := d.opts.Open(m.Config)
	if err != nil {
		return &t30.Error{Category: t30.CatModem, Reason: "cannot open " + m.Config.Device + ": " + err.Error(), Err: err}
	}
	defer ch.Close()
	return d.answer(ctx, ch, m, in, func() bool { return d.pool.claim(m) }, nil)
}

// ReceiveOne answers one call on the device (which need not be in the
// pool's modes) and returns when it is over: the manual `fax receive`.
// log, when set, gets each T.30 step.
func (d *Driver) ReceiveOne(ctx context.Context, device DeviceConfig, in linedriver.Inbound, log func(step, detail string)) error {
	ch, err := d.opts.Open(device)
	if err != nil {
		return fmt.Errorf("faxmodem: open %s: %w", device.Device, err)
	}
	defer ch.Close()
	m := &Modem{Config: device}
	return d.answer(ctx, ch, m, in, func() bool { return true }, log)
}

// CallerInfo is what a modem reports about a call between the rings.
type CallerInfo struct {
	Number string // the caller's number (NMBR)
	Called string // the number dialled (NDID / DID / DNID)
}

// parseCallerLine reads one caller-id line ("NMBR = 5550100", "NDID=100",
// "CID: 5550100", "DNID: 100") into ci; it reports whether it was one.
func parseCallerLine(line string, ci *CallerInfo) bool {
	key, val, ok := strings.Cut(line, "=")
	if !ok {
		key, val, ok = strings.Cut(line, ":")
	}
	if !ok {
		return false
	}
	key, val = strings.ToUpper(strings.TrimSpace(key)), strings.TrimSpace(val)
	switch key {
	case "NMBR", "CID", "CALLER NUMBER":
		if val != "" && !strings.EqualFold(val, "O") && !strings.EqualFold(val, "P") { // out of area, private
			ci.Number = val
		}
	case "NDID", "DID", "DNID", "CALLED NUMBER":
		ci.Called = val
	default:
		return false
	}
	return true
}

// ringGap is the longest pause between two rings of one call (cadences
// are 4–6 s); after it the count starts again.
const ringGap = 8 * time.Second

// answer sets the modem up, waits for its rings, claims the device (a job
// may have taken it meanwhile: then it returns without answering) and
// receives the fax into in.
func (d *Driver) answer(ctx context.Context, ch *at.Channel, m *Modem, in linedriver.Inbound, claim func() bool, steplog func(step, detail string)) error {
	class, err := Setup(ctx, ch, m.Config)
	if err != nil {
		return err
	}
	d.pool.Answered(m)
	if r, err := ch.Command(ctx, "S0=0", 3*time.Second); err != nil || !r.OK() {
		if err != nil {
			return &t30.Error{Category: t30.CatModem, Reason: "ATS0=0 not answered", Err: err}
		}
		return &t30.Error{Category: t30.CatModem, Reason: "ATS0=0: " + r.Result}
	}
	// caller id, where the modem has it (not every modem knows the command)
	ch.Command(ctx, "+VCID=1", 3*time.Second) //nolint:errcheck // optional
	if steplog != nil {
		steplog("listen", fmt.Sprintf("Class %s modem waiting for %d rings", class, m.Config.rings()))
	}
	var ci CallerInfo
	rings := 0
	var last time.Time
	for rings < m.Config.rings() {
		line, err := ch.ReadLine(ctx, time.Hour)
		switch {
		case errors.Is(err, at.ErrTimeout):
			continue
		case err != nil:
			if ctx.Err() != nil {
				return nil // stopped listening: the modem is on hook
			}
			return &t30.Error{Category: t30.CatModem, Reason: "the modem stopped while waiting for calls", Err: err}
		}
		switch {
		case line == "RING" || strings.HasPrefix(line, "RING "):
			if !last.IsZero() && time.Since(last) > ringGap {
				rings, ci = 0, CallerInfo{}
			}
			rings++
			last = time.Now()
		case parseCallerLine(line, &ci):
		}
	}
	if !claim() {
		return nil // a job took the modem between the rings
	}
	return d.receiveCall(ctx, ch, m, class, ci, in, steplog)
}

// newCallID is the time and 4 random octets.
func newCallID(t time.Time) string {
	var b [4]byte
	rand.Read(b[:]) //nolint:errcheck // never fails
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// receiveCall answers and runs T.30 with the Inbound taking the pages.
func (d *Driver) receiveCall(ctx context.Context, ch *at.Channel, m *Modem, class string, ci CallerInfo, in linedriver.Inbound, steplog func(step, detail string)) error {
	started := time.Now()
	call := &linedriver.Call{ID: newCallID(started), Driver: d.name, Device: m.Config.Device,
		CalledNumber: ci.Called, CallerNumber: ci.Number, Started: started}
	var logb strings.Builder
	var mu sync.Mutex
	logf := func(step, detail string) {
		mu.Lock()
		fmt.Fprintf(&logb, "%s [%s] %s\n", time.Now().Format("15:04:05.000"), step, detail)
		call.Log = logb.String()
		mu.Unlock()
		if steplog != nil {
			steplog(step, detail)
		}
	}
	if ci.Number != "" || ci.Called != "" {
		logf("ring", fmt.Sprintf("caller %q, called %q", ci.Number, ci.Called))
	}
	if class == "2" || class == "2.0" {
		// the modem runs T.30: class2.Receive takes the call from here
		return d.receiveClass2(ctx, ch, m, class, call, in, steplog)
	}
	cfg := t30.RxConfig{Log: logf}
	if d.opts.Timers != nil {
		t := d.opts.Timers
		cfg.T1, cfg.T4, cfg.Silence = t.T1, t.T4, t.Silence
	}
	cfg.LocalID = d.opts.LocalID
	cfg.Standard = d.opts.Resolution == "standard"
	cfg.ECM = strings.ToLower(d.opts.ECM)
	switch strings.ToLower(d.opts.Encoding) {
	case "mh":
		cfg.NoMR, cfg.NoMMR = true, true
	case "mr":
		cfg.NoMMR = true
	}
	cfg.MaxBits = d.opts.MaxSpeed
	cfg.Modulations = d.opts.Modulations
	cfg.ModemCodes = m.codes
	// The Inbound gets a copy of the call as it is at each step: the log
	// grows while a page is being kept.
	snapshot := func() *linedriver.Call {
		mu.Lock()
		defer mu.Unlock()
		c := *call
		return &c
	}
	begun := false
	cfg.Begin = func(ctx context.Context, remoteID string, p t30.Params) error {
		mu.Lock()
		call.RemoteID, call.Params = remoteID, p.String()
		mu.Unlock()
		begun = true
		return in.Begin(ctx, snapshot())
	}
	cfg.Page = func(ctx context.Context, n int, p *t30.RxPage) error {
		mu.Lock()
		call.Params = p.Params.String()
		mu.Unlock()
		yres := 98.0
		if p.Params.Fine {
			yres = 196
		}
		return in.Page(ctx, snapshot(), n, &linedriver.InboundPage{Width: p.Width, Height: len(p.Rows), XRes: 204, YRes: yres, Rows: p.Rows, BadRows: p.BadRows, FramesLost: p.FramesLost})
	}
	res, err := t30.Receive(ctx, ch, cfg)
	d.log.Info("fax received", "device", m.Config.Device, "call", call.ID, "pages", res.Pages, "remote_id", res.RemoteID, "error", err)
	if begun {
		// End gets its own context: the call's may be over (gateway stopping)
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if eerr := in.End(ectx, snapshot(), err); eerr != nil {
			d.log.Warn("fax received: end", "call", call.ID, "error", eerr)
		}
	}
	return err
}

// receiveClass2 hands an answered Class 2/2.0 call to class2.Receive, which
// runs it with the Inbound (Begin, each Page before the modem confirms it,
// End) and appends its steps to call.Log after the rings'.
func (d *Driver) receiveClass2(ctx context.Context, ch *at.Channel, m *Modem, class string, call *linedriver.Call, in linedriver.Inbound, steplog func(step, detail string)) error {
	cfg := class2.ReceiveConfig{Class: class, LocalID: d.opts.LocalID, Fine: d.opts.Resolution != "standard",
		ECM: strings.ToLower(d.opts.ECM), Encoding: strings.ToLower(d.opts.Encoding), FrameSize: d.opts.ECMFrameSize, Log: steplog}
	err := class2.Receive(ctx, ch, cfg, call, in)
	d.log.Info("fax received", "device", m.Config.Device, "call", call.ID, "class", class, "remote_id", call.RemoteID, "error", err)
	return err
}
