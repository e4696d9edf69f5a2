// Package surgard is the "surgard" line driver: it hands alarm signals to
// automation (alarm handling) software the way a Sur-Gard MLR2 receiver
// does on its automation output, over TCP or a serial line: one Contact ID
// or SIA line per signal, closed with DC4, acknowledged with ACK; NAK and
// silence are retried; a heartbeat line keeps the link supervised.
package surgard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tarm/serial"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/alarm"
)

func init() { linedriver.Register("surgard", New) }

// Control characters of the automation protocol.
const (
	DC4 = 0x14 // ends a line
	ACK = 0x06
	NAK = 0x15
)

// Options of the surgard driver.
type Options struct {
	Transport    string         `json:"transport"` // tcp (default) or serial
	Address      string         `json:"address"`   // host:port of the automation software (tcp)
	Device       string         `json:"device"`    // serial device (serial)
	Baud         int            `json:"baud"`      // serial bit rate, default 9600
	Format       string         `json:"format"`    // contact_id (default) or sia
	Receiver     int            `json:"receiver"`  // RR, 0–99, default 1
	Line         int            `json:"line"`      // LLL, 0–999, default 1
	AckTimeout   alarm.Duration `json:"ack_timeout"`
	Resends      *int           `json:"resends"`   // after a NAK or silence, within one attempt; default 3
	Heartbeat    alarm.Duration `json:"heartbeat"` // heartbeat interval; 0: none
	RetryAfter   alarm.Duration `json:"retry_after"`
	DefaultEvent string         `json:"default_event"`
}

// Defaults, in one place.
const (
	defaultAckTimeout = 4 * time.Second
	defaultResends    = 3
	defaultRetryAfter = 15 * time.Second
	defaultBaud       = 9600
)

// Driver writes automation lines.
type Driver struct {
	name string
	o    Options
	log  *slog.Logger
	now  func() time.Time

	mu   sync.Mutex // one line at a time; guards what follows
	conn io.ReadWriteCloser
	last time.Time

	hbOnce    sync.Once
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var (
	_ linedriver.Driver    = (*Driver)(nil)
	_ linedriver.Previewer = (*Driver)(nil)
)

// Preview is the line the record becomes (without its DC4).
func (d *Driver) Preview(rec *linedriver.Record) (string, error) { return d.lineOf(rec) }

// New decodes options strictly. It opens nothing.
func New(name string, options json.RawMessage, logger *slog.Logger) (linedriver.Driver, error) {
	var o Options
	if err := linedriver.DecodeOptions(options, &o); err != nil {
		return nil, fmt.Errorf("surgard driver %s: options: %w", name, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Driver{name: name, o: o, log: logger, now: time.Now, stop: make(chan struct{})}
	if err := d.validate(); err != nil {
		return nil, fmt.Errorf("surgard driver %s: options: %w", name, err)
	}
	return d, nil
}

func (d *Driver) validate() error {
	o := &d.o
	switch o.Transport {
	case "", "tcp":
		o.Transport = "tcp"
		if _, _, err := net.SplitHostPort(o.Address); err != nil {
			return fmt.Errorf("address %q: want host:port of the automation software", o.Address)
		}
	case "serial":
		if o.Device == "" {
			return fmt.Errorf("device: the serial port is missing")
		}
	default:
		return fmt.Errorf("transport %q: want tcp or serial", o.Transport)
	}
	if o.Baud == 0 {
		o.Baud = defaultBaud
	}
	switch o.Format {
	case "", "contact_id":
		o.Format = "contact_id"
	case "sia":
	default:
		return fmt.Errorf("format %q: want contact_id or sia", o.Format)
	}
	if o.Receiver == 0 {
		o.Receiver = 1
	}
	if o.Line == 0 {
		o.Line = 1
	}
	if o.Receiver < 0 || o.Receiver > 99 {
		return fmt.Errorf("receiver %d: want 1 to 99", o.Receiver)
	}
	if o.Line < 0 || o.Line > 999 {
		return fmt.Errorf("line %d: want 1 to 999", o.Line)
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = alarm.Duration(defaultAckTimeout)
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = alarm.Duration(defaultRetryAfter)
	}
	if o.Resends == nil {
		n := defaultResends
		o.Resends = &n
	}
	if o.Heartbeat < 0 {
		return fmt.Errorf("heartbeat: want a positive interval or 0 for none")
	}
	if o.DefaultEvent != "" && !alarm.Known(o.DefaultEvent) {
		return fmt.Errorf("default_event %q is not a known event (%s or a Contact ID code)", o.DefaultEvent, strings.Join(alarm.Names(), ", "))
	}
	return nil
}

func (d *Driver) Name() string { return d.name }

// Slots is 1: lines leave in order.
var _ linedriver.Starter = (*Driver)(nil)

func (d *Driver) Slots() int { return 1 }

// Close stops the heartbeat and closes the link.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() { close(d.stop) })
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hangup()
	return nil
}

// Check refuses a record whose alarm fields make no line.
func (d *Driver) Check(rec *linedriver.Record) error {
	_, err := d.lineOf(rec)
	return err
}

func (d *Driver) lineOf(rec *linedriver.Record) (string, error) {
	s, err := alarm.FromFields(rec.Fields, d.o.DefaultEvent)
	if err != nil {
		return "", err
	}
	return Line(d.o.Format, d.o.Receiver, d.o.Line, s)
}

// Line is the automation line of a signal, without its DC4.
func Line(format string, rr, lll int, s alarm.Signal) (string, error) {
	if format == "sia" {
		if s.SIA == "" {
			return "", fmt.Errorf("alarm: Contact ID event %03d has no SIA code in the table; use format contact_id: %w", s.CID, alarm.ErrUnknownEvent)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "S%02d%03d[#%s|N", rr, lll, s.Account)
		if s.Partition > 0 {
			fmt.Fprintf(&b, "ri%d/", s.Partition)
		}
		if s.IsUser {
			fmt.Fprintf(&b, "id%d/", s.Zone)
		}
		fmt.Fprintf(&b, "%s%03d]", s.SIA, s.Zone)
		return b.String(), nil
	}
	if len(s.Account) != 4 {
		acct := strings.TrimLeft(s.Account, "0")
		if len(acct) > 4 {
			return "", fmt.Errorf("alarm: account %s: Contact ID lines carry 4 hex digits: %w", s.Account, alarm.ErrInvalid)
		}
		s.Account = strings.Repeat("0", 4-len(acct)) + acct
	}
	q := map[alarm.Qualifier]string{alarm.New: "E", alarm.Restore: "R", alarm.Status: "P"}[s.Qualifier]
	return fmt.Sprintf("5%02d%03d 18%s%s%03d%02d%03d", rr, lll, s.Account, q, s.CID, s.Partition, s.Zone), nil
}

// HeartbeatLine is the supervision line, without its DC4.
func HeartbeatLine(rr int) string { return fmt.Sprintf("1%02d1           @    ", rr) }

// Deliver writes the job's line and waits for ACK, resending after NAK or
// silence up to resends times.
func (d *Driver) Deliver(ctx context.Context, job *linedriver.Job, report func(linedriver.Progress)) linedriver.Outcome {
	line, err := d.lineOf(&job.Record)
	if err != nil {
		return linedriver.Fail("invalid", err.Error())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	cat, reason := d.send(ctx, line)
	if cat != "" {
		return linedriver.Retry(cat, reason, time.Duration(d.o.RetryAfter))
	}
	if report != nil {
		report(linedriver.Progress{Step: "acknowledged", Detail: line})
	}
	return linedriver.Done(map[string]string{"line": line})
}

// send writes one line until it is acknowledged. It returns "" or an
// outcome category (refused, unreachable, nak, timeout) and a reason.
func (d *Driver) send(ctx context.Context, line string) (string, string) {
	msg := append([]byte(line), DC4)
	var cat, reason string
	for try := 0; try <= *d.o.Resends; try++ {
		if ctx.Err() != nil {
			return "interrupted", "gateway stopping"
		}
		if err := d.open(ctx); err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return "refused", err.Error()
			}
			return "unreachable", err.Error()
		}
		if _, err := d.conn.Write(msg); err != nil {
			d.hangup()
			cat, reason = "unreachable", fmt.Sprintf("surgard: write: %v", err)
			continue
		}
		b, err := d.readReply(ctx)
		switch {
		case err == nil && b == ACK:
			d.last = d.now()
			return "", ""
		case err == nil && b == NAK:
			cat, reason = "nak", "the automation software answered NAK"
		case errors.Is(err, errSilence):
			cat, reason = "timeout", fmt.Sprintf("no ACK within %s", time.Duration(d.o.AckTimeout))
		default:
			d.hangup()
			cat, reason = "unreachable", fmt.Sprintf("surgard: read: %v", err)
		}
		d.log.Warn("surgard: line not acknowledged", "driver", d.name, "try", try+1, "category", cat)
	}
	return cat, fmt.Sprintf("%s (%d tries)", reason, *d.o.Resends+1)
}

var errSilence = errors.New("surgard: no answer")

// readReply waits up to ack_timeout for ACK or NAK; other bytes are skipped.
func (d *Driver) readReply(ctx context.Context) (byte, error) {
	deadline := time.Now().Add(time.Duration(d.o.AckTimeout))
	buf := make([]byte, 1)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if c, ok := d.conn.(net.Conn); ok {
			c.SetReadDeadline(deadline)
		}
		n, err := d.conn.Read(buf)
		if n == 1 && (buf[0] == ACK || buf[0] == NAK) {
			return buf[0], nil
		}
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			return 0, errSilence
		case d.o.Transport == "serial" && errors.Is(err, io.EOF):
			continue // tarm/serial: a read timeout reads as (0, io.EOF)
		case err != nil:
			return 0, err
		}
	}
	return 0, errSilence
}

func (d *Driver) open(ctx context.Context) error {
	if d.conn != nil {
		return nil
	}
	if d.o.Transport == "serial" {
		p, err := serial.OpenPort(&serial.Config{Name: d.o.Device, Baud: d.o.Baud, ReadTimeout: 100 * time.Millisecond})
		if err != nil {
			return fmt.Errorf("surgard: open %s: %w", d.o.Device, err)
		}
		d.conn = p
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, time.Duration(d.o.AckTimeout))
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(dctx, "tcp", d.o.Address)
	if err != nil {
		return fmt.Errorf("surgard: connect %s: %w", d.o.Address, err)
	}
	d.conn = c
	return nil
}

func (d *Driver) hangup() {
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
}

// Start begins the heartbeat (linedriver.Starter): the heartbeat line
// whenever no line was acknowledged for the heartbeat interval, until Close.
func (d *Driver) Start() {
	if d.o.Heartbeat <= 0 {
		return
	}
	d.hbOnce.Do(func() { alarm.KeepAlive(d.stop, &d.wg, time.Duration(d.o.Heartbeat), d.heartbeat) })
}

// heartbeat writes the heartbeat line if no line was acknowledged for every.
func (d *Driver) heartbeat(every time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.now().Sub(d.last) < every {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-d.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if cat, reason := d.send(ctx, HeartbeatLine(d.o.Receiver)); cat != "" {
		d.log.Warn("surgard: heartbeat not acknowledged", "driver", d.name, "category", cat, "reason", reason)
		d.last = d.now()
	}
}
