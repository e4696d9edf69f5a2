// Package at is the AT command channel to a fax modem: commands with
// deadlines, verbose result codes, DLE-framed data in both directions,
// XON/XOFF flow control and pacing of page data to the line rate.
//
// It works over any io.ReadWriter. Serial ports opened with Open use
// tarm/serial with a read timeout, which reports "no data yet" as
// (0, io.EOF); the channel treats that as silence, not as the end.
package at

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/tarm/serial"
)

// Control characters of the DTE-DCE data framing (T.31, T.32).
const (
	DLE  = 0x10
	ETX  = 0x03
	XON  = 0x11
	XOFF = 0x13
	SUB  = 0x1a // DLE SUB = two DLEs (T.31 8.3.1, optional)
	CAN  = 0x18
)

var (
	// ErrTimeout means the modem did not answer in time.
	ErrTimeout = errors.New("at: modem did not respond in time")
	// ErrClosed means the port was closed or failed.
	ErrClosed = errors.New("at: port closed")
	// ErrNoCarrier means the modem reported NO CARRIER: the far end is
	// gone. A *ResultError with that result matches it.
	ErrNoCarrier = errors.New("at: carrier lost")
)

// ResultError is a final result code the modem gave by itself, e.g. NO
// CARRIER while page data was being written.
type ResultError struct {
	Result string
}

func (e *ResultError) Error() string { return "at: the modem said " + e.Result }

// Is matches ErrNoCarrier for NO CARRIER.
func (e *ResultError) Is(target error) bool {
	return target == ErrNoCarrier && e.Result == "NO CARRIER"
}

// Final result codes a command can end with (verbose form).
var finalCodes = []string{
	"OK", "CONNECT", "ERROR", "NO CARRIER", "BUSY", "NO DIALTONE", "NO DIAL TONE",
	"NO ANSWER", "+FCERROR", "+FHNG", "+FHS", "DELAYED", "BLACKLISTED",
}

// IsFinal reports whether line is a final result code. The Class 2 hang-up
// reports (+FHNG:, +FHS:) are informational and followed by OK, so they are
// not final here.
func IsFinal(line string) bool {
	switch {
	case strings.HasPrefix(line, "+FHNG"), strings.HasPrefix(line, "+FHS"):
		return false
	}
	for _, c := range finalCodes {
		if line == c || strings.HasPrefix(line, c+" ") || (c == "+FCERROR" && strings.HasPrefix(line, c)) {
			return true
		}
	}
	return false
}

// Response is what the modem answered to one command.
type Response struct {
	Lines  []string // informational lines before the result (echo removed)
	Result string   // the final result code, e.g. "OK", "CONNECT", "NO CARRIER"
	// Aborted is set when a DLE ETX came before the result: the modem was
	// still receiving (+FRH, +FRM, or the frame after ATD's CONNECT), took
	// the command's first character as an abort and ended the reception.
	// The command itself was not run.
	Aborted bool
}

// OK reports whether the result is OK.
func (r Response) OK() bool { return r.Result == "OK" }

// Connect reports whether the result is CONNECT (with or without a speed).
func (r Response) Connect() bool {
	return r.Result == "CONNECT" || strings.HasPrefix(r.Result, "CONNECT ")
}

// Value returns the text after "prefix" (e.g. "+FCS:") in the first
// informational line that starts with it.
func (r Response) Value(prefix string) (string, bool) {
	for _, l := range r.Lines {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimSpace(strings.TrimPrefix(l, prefix)), true
		}
	}
	return "", false
}

// Options configure a Channel.
type Options struct {
	// EOFIsSilence makes a read of (0, io.EOF) mean "no data yet" (tarm/serial
	// with a read timeout); otherwise io.EOF ends the channel.
	EOFIsSilence bool
	// Trace, when set, receives each line sent and received ("> AT..", "< OK").
	Trace func(dir, text string)
	// XOFFTimeout is how long page data may stay paused by XOFF before the
	// write fails (default 10 s).
	XOFFTimeout time.Duration
}

// Channel is an AT command channel. It is used by one goroutine at a time.
type Channel struct {
	w      io.Writer
	closer io.Closer
	opts   Options

	in   chan []byte
	done chan struct{}
	once sync.Once
	rerr error // set before in is closed

	pending []byte // received bytes not yet consumed
	skipLF  bool   // a line ended in CR: drop an LF that follows

	mu       sync.Mutex
	txMode   bool          // interpret XON/XOFF from the modem
	paused   bool          // XOFF seen
	resumed  chan struct{} // closed on XON
	lastSent string        // last command, to drop its echo
}

// New starts a channel on rw. If rw is an io.Closer, Close closes it.
func New(rw io.ReadWriter, opts Options) *Channel {
	if opts.XOFFTimeout == 0 {
		opts.XOFFTimeout = 10 * time.Second
	}
	c := &Channel{w: rw, opts: opts, in: make(chan []byte, 64), done: make(chan struct{}), resumed: make(chan struct{})}
	close(c.resumed)
	if cl, ok := rw.(io.Closer); ok {
		c.closer = cl
	}
	go c.readLoop(rw)
	return c
}

// Open opens a serial device (or pty) with tarm/serial, always with a read
// timeout, and starts a channel on it.
func Open(device string, baud int, opts Options) (*Channel, error) {
	if baud == 0 {
		baud = 115200
	}
	p, err := serial.OpenPort(&serial.Config{Name: device, Baud: baud, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		return nil, fmt.Errorf("at: open %s: %w", device, err)
	}
	opts.EOFIsSilence = true
	return New(p, opts), nil
}

func (c *Channel) readLoop(r io.Reader) {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			data := c.filterFlow(append([]byte(nil), buf[:n]...))
			if len(data) > 0 {
				select {
				case c.in <- data:
				case <-c.done:
					return
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) && c.opts.EOFIsSilence && n == 0 {
				select {
				case <-c.done:
					return
				case <-time.After(5 * time.Millisecond):
				}
				continue
			}
			c.rerr = err
			close(c.in)
			return
		}
	}
}

// filterFlow removes XON/XOFF while page data is being sent and applies
// them to the writer.
func (c *Channel) filterFlow(b []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.txMode {
		return b
	}
	out := b[:0]
	for _, x := range b {
		switch x {
		case XOFF:
			if !c.paused {
				c.paused = true
				c.resumed = make(chan struct{})
			}
		case XON:
			if c.paused {
				c.paused = false
				close(c.resumed)
			}
		default:
			out = append(out, x)
		}
	}
	return out
}

func (c *Channel) setTxMode(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.txMode = on
	if !on && c.paused {
		c.paused = false
		close(c.resumed)
	}
}

// Close stops the channel and closes the port.
func (c *Channel) Close() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		if c.closer != nil {
			err = c.closer.Close()
		}
	})
	return err
}

func (c *Channel) trace(dir, s string) {
	if c.opts.Trace != nil {
		c.opts.Trace(dir, s)
	}
}

// fill waits for more input until deadline.
func (c *Channel) fill(ctx context.Context, deadline time.Time) error {
	d := time.Until(deadline)
	if d <= 0 {
		return ErrTimeout
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case b, ok := <-c.in:
		if !ok {
			if c.rerr != nil {
				return fmt.Errorf("%w: %v", ErrClosed, c.rerr)
			}
			return ErrClosed
		}
		c.pending = append(c.pending, b...)
		return nil
	case <-t.C:
		return ErrTimeout
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
}

// Write sends raw bytes.
func (c *Channel) Write(b []byte) error {
	if _, err := c.w.Write(b); err != nil {
		return fmt.Errorf("%w: write: %v", ErrClosed, err)
	}
	return nil
}

// Send writes "AT"+cmd+CR without waiting for an answer.
func (c *Channel) Send(cmd string) error {
	line := "AT" + cmd
	c.lastSent = line
	c.trace(">", line)
	return c.Write([]byte(line + "\r"))
}

// Command sends AT+cmd and reads the answer up to its final result code.
func (c *Channel) Command(ctx context.Context, cmd string, timeout time.Duration) (Response, error) {
	if err := c.Send(cmd); err != nil {
		return Response{}, err
	}
	r, err := c.ReadResult(ctx, timeout)
	if err != nil {
		return r, fmt.Errorf("at: AT%s: %w", cmd, err)
	}
	return r, nil
}

// ReadLine reads one non-empty line (without XON/XOFF and NUL bytes).
func (c *Channel) ReadLine(ctx context.Context, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		c.dropLF()
		if i := bytes.IndexAny(c.pending, "\r\n"); i >= 0 {
			raw := c.pending[:i]
			c.skipLF = c.pending[i] == '\r'
			c.pending = c.pending[i+1:]
			c.dropLF()
			line := strings.TrimSpace(strings.Map(func(r rune) rune {
				if r == XON || r == XOFF || r == 0 {
					return -1
				}
				return r
			}, string(raw)))
			if line == "" {
				continue
			}
			c.trace("<", line)
			return line, nil
		}
		if err := c.fill(ctx, deadline); err != nil {
			return "", err
		}
	}
}

// dropLF drops the LF of a CR LF line end whose CR was consumed.
func (c *Channel) dropLF() {
	if c.skipLF && len(c.pending) > 0 {
		if c.pending[0] == '\n' {
			c.pending = c.pending[1:]
		}
		c.skipLF = false
	}
}

// ReadResult reads lines up to a final result code. The echo of the last
// command and RING are dropped.
func (c *Channel) ReadResult(ctx context.Context, timeout time.Duration) (Response, error) {
	var r Response
	deadline := time.Now().Add(timeout)
	for {
		line, err := c.ReadLine(ctx, time.Until(deadline))
		if err != nil {
			return r, err
		}
		if rest, ok := strings.CutPrefix(line, string([]byte{DLE, ETX})); ok {
			r.Aborted = true
			if line = strings.TrimSpace(rest); line == "" {
				continue
			}
		}
		if line == c.lastSent || line == "RING" {
			continue
		}
		if IsFinal(line) {
			r.Result = line
			return r, nil
		}
		r.Lines = append(r.Lines, line)
	}
}

// ReadData reads DLE-framed data up to DLE ETX and returns it unstuffed.
// A lone DLE SUB stands for two DLEs; other DLE pairs are dropped.
func (c *Channel) ReadData(ctx context.Context, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	var out []byte
	i := 0
	for {
		if i == 0 && len(out) == 0 {
			c.dropLF()
		}
		for i < len(c.pending) {
			b := c.pending[i]
			if b != DLE {
				out = append(out, b)
				i++
				continue
			}
			if i+1 >= len(c.pending) {
				break
			}
			switch c.pending[i+1] {
			case DLE:
				out = append(out, DLE)
			case SUB:
				out = append(out, DLE, DLE)
			case ETX:
				c.pending = c.pending[i+2:]
				return out, nil
			}
			i += 2
		}
		c.pending = c.pending[i:]
		i = 0
		if err := c.fill(ctx, deadline); err != nil {
			return out, err
		}
	}
}

// WaitByte waits for byte b (e.g. the XON a Class 2 modem sends after
// CONNECT before it takes page data), dropping what comes before it.
func (c *Channel) WaitByte(ctx context.Context, b byte, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if i := bytes.IndexByte(c.pending, b); i >= 0 {
			c.pending = c.pending[i+1:]
			return nil
		}
		c.pending = c.pending[:0]
		if err := c.fill(ctx, deadline); err != nil {
			return err
		}
	}
}

// Stuff doubles each DLE in b.
func Stuff(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/64+2)
	for _, x := range b {
		out = append(out, x)
		if x == DLE {
			out = append(out, DLE)
		}
	}
	return out
}

// Unstuff reverses Stuff on data without the DLE ETX trailer.
func Unstuff(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == DLE && i+1 < len(b) {
			i++
			switch b[i] {
			case DLE:
				out = append(out, DLE)
			case SUB:
				out = append(out, DLE, DLE)
			}
			continue
		}
		out = append(out, b[i])
	}
	return out
}

// WriteData sends data DLE-stuffed and ends it with DLE ETX. With rate > 0
// (bits per second on the line) it keeps no more than lead ahead of the
// line; it always pauses while the modem has sent XOFF. A final result code
// from the modem while data is written (NO CARRIER when the far end hangs
// up, ERROR) stops the write at once with a *ResultError.
func (c *Channel) WriteData(ctx context.Context, data []byte, rate int, lead time.Duration) error {
	c.setTxMode(true)
	defer c.setTxMode(false)
	const chunk = 256
	start := time.Now()
	sent := 0
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		if err := c.waitXON(ctx); err != nil {
			return err
		}
		if rate > 0 {
			// seconds of line time the bytes sent so far take, minus the lead
			ahead := time.Duration(float64(sent*8)/float64(rate)*float64(time.Second)) - lead - time.Since(start)
			if ahead > 0 {
				if err := c.pause(ctx, ahead); err != nil {
					return err
				}
			}
		}
		if err := c.takeResult(); err != nil {
			return err
		}
		if err := c.Write(Stuff(data[off:end])); err != nil {
			return err
		}
		sent += end - off
	}
	if err := c.waitXON(ctx); err != nil {
		return err
	}
	return c.Write([]byte{DLE, ETX})
}

func (c *Channel) waitXON(ctx context.Context) error {
	t := time.NewTimer(c.opts.XOFFTimeout)
	defer t.Stop()
	for {
		if err := c.takeResult(); err != nil {
			return err
		}
		c.mu.Lock()
		ch := c.resumed
		c.mu.Unlock()
		select {
		case <-ch:
			return nil
		case b, ok := <-c.in:
			if !ok {
				return c.closedErr()
			}
			c.pending = append(c.pending, b...)
		case <-t.C:
			return fmt.Errorf("%w: paused by XOFF for %v", ErrTimeout, c.opts.XOFFTimeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return ErrClosed
		}
	}
}

// pause waits d while data is written, taking in what the modem sends.
func (c *Channel) pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		if err := c.takeResult(); err != nil {
			return err
		}
		select {
		case <-t.C:
			return nil
		case b, ok := <-c.in:
			if !ok {
				return c.closedErr()
			}
			c.pending = append(c.pending, b...)
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return ErrClosed
		}
	}
}

func (c *Channel) closedErr() error {
	if c.rerr != nil {
		return fmt.Errorf("%w: %v", ErrClosed, c.rerr)
	}
	return ErrClosed
}

// takeResult takes in what has arrived without waiting and, if it holds a
// final result code, consumes it and returns it as a *ResultError. Only a
// modem that has ended the transmission by itself sends one during data.
func (c *Channel) takeResult() error {
	for {
		select {
		case b, ok := <-c.in:
			if !ok {
				return c.closedErr()
			}
			c.pending = append(c.pending, b...)
			continue
		default:
		}
		break
	}
	rest := c.pending
	for {
		i := bytes.IndexAny(rest, "\r\n")
		if i < 0 {
			return nil
		}
		line := strings.TrimSpace(strings.Map(func(r rune) rune {
			if r == XON || r == XOFF || r == 0 || r == DLE || r == ETX {
				return -1
			}
			return r
		}, string(rest[:i])))
		rest = rest[i+1:]
		if IsFinal(line) {
			c.trace("<", line)
			c.pending = append(c.pending[:0], rest...)
			c.skipLF = false
			return &ResultError{Result: line}
		}
	}
}

// Abort interrupts a pending reception (+FRH, +FRM, or the frame after
// ATD's CONNECT: any character does, T.31) and reads the modem's answer up
// to its final result code. An error means the modem did not answer.
func (c *Channel) Abort(ctx context.Context, timeout time.Duration) (Response, error) {
	c.trace(">", "<CAN>")
	if err := c.Write([]byte{CAN}); err != nil {
		return Response{}, err
	}
	r, err := c.ReadResult(ctx, timeout)
	if err != nil {
		return r, fmt.Errorf("at: abort: %w", err)
	}
	return r, nil
}

// Drain drops whatever arrives during d.
func (c *Channel) Drain(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	for c.fill(ctx, deadline) == nil {
	}
	c.pending = c.pending[:0]
}
