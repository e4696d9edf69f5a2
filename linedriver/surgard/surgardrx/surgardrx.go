// Package surgardrx is automation software for tests: it reads Sur-Gard
// MLR2 automation lines (ended by DC4) from a TCP connection or a pty,
// checks each, and answers ACK — or NAK, or nothing, when a test asks. It
// is written apart from the surgard driver and shares no code with it.
package surgardrx

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sync"

	"github.com/creack/pty"

	"github.com/mediagw/mediagw/internal/rawtty"
)

// Behaviour is how the next line is answered.
type Behaviour int

const (
	Ack Behaviour = iota
	Nak
	Silent
)

// Line is a line the receiver took.
type Line struct {
	Kind      string // "cid", "sia", "heartbeat"
	Receiver  string // RR
	Line      string // LLL
	Account   string
	Qualifier string // E, R, P (Contact ID)
	Event     string // Contact ID code or SIA code
	Group     string // partition
	Zone      string
	Raw       string
}

// Receiver reads automation lines.
type Receiver struct {
	mu      sync.Mutex
	plan    []Behaviour
	got     []Line
	rejects []error
	closers []io.Closer
	wg      sync.WaitGroup
}

// Then makes the next lines get these behaviours, one each.
func (r *Receiver) Then(b ...Behaviour) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plan = append(r.plan, b...)
}

// Lines returns what was acknowledged.
func (r *Receiver) Lines() []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Line(nil), r.got...)
}

// Rejects returns the lines that did not parse.
func (r *Receiver) Rejects() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.rejects...)
}

// ListenTCP serves connections on addr and returns its address.
func (r *Receiver) ListenTCP(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("surgardrx: %w", err)
	}
	r.mu.Lock()
	r.closers = append(r.closers, ln)
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.closers = append(r.closers, c)
			r.mu.Unlock()
			r.wg.Add(1)
			go func() { defer r.wg.Done(); r.Serve(c) }()
		}
	}()
	return ln.Addr().String(), nil
}

// PTY opens a pty pair, serves its master side and returns the path of the
// tty the driver opens as its serial port.
func (r *Receiver) PTY() (string, error) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return "", fmt.Errorf("surgardrx: pty: %w", err)
	}
	if err := rawtty.Make(tty); err != nil {
		ptmx.Close()
		tty.Close()
		return "", err
	}
	r.mu.Lock()
	r.closers = append(r.closers, ptmx, tty) // the tty stays open: the master never sees EIO between opens
	r.mu.Unlock()
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.Serve(ptmx) }()
	return tty.Name(), nil
}

// Close stops serving.
func (r *Receiver) Close() error {
	r.mu.Lock()
	for _, c := range r.closers {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

// Serve reads lines from rw until it fails.
func (r *Receiver) Serve(rw io.ReadWriter) {
	br := bufio.NewReader(rw)
	for {
		b, err := br.ReadBytes(0x14)
		if err != nil {
			return
		}
		r.mu.Lock()
		beh := Ack
		if len(r.plan) > 0 {
			beh, r.plan = r.plan[0], r.plan[1:]
		}
		r.mu.Unlock()
		l, err := Parse(string(b[:len(b)-1]))
		if err != nil {
			r.mu.Lock()
			r.rejects = append(r.rejects, err)
			r.mu.Unlock()
			rw.Write([]byte{0x15})
			continue
		}
		switch beh {
		case Silent:
			continue
		case Nak:
			rw.Write([]byte{0x15})
			continue
		}
		r.mu.Lock()
		r.got = append(r.got, l)
		r.mu.Unlock()
		rw.Write([]byte{0x06})
	}
}

var (
	cidRE       = regexp.MustCompile(`^5(\d{2})(\d{3}) 18([0-9A-F]{4})([ERP])(\d{3})(\d{2})(\d{3})$`)
	siaRE       = regexp.MustCompile(`^S(\d{2})(\d{3})\[#([0-9A-F]{3,16})\|N(?:ri(\d{1,2})/)?(?:id\d{1,3}/)?([A-Z]{2})(\d{3})\]$`)
	heartbeatRE = regexp.MustCompile(`^1(\d{2})1 {11}@ {4}$`)
)

// ErrLine is wrapped by errors about a line that does not parse.
var ErrLine = errors.New("surgardrx: line not understood")

// Parse reads one line without its DC4.
func Parse(s string) (Line, error) {
	if m := cidRE.FindStringSubmatch(s); m != nil {
		return Line{Kind: "cid", Receiver: m[1], Line: m[2], Account: m[3], Qualifier: m[4], Event: m[5], Group: m[6], Zone: m[7], Raw: s}, nil
	}
	if m := siaRE.FindStringSubmatch(s); m != nil {
		return Line{Kind: "sia", Receiver: m[1], Line: m[2], Account: m[3], Group: m[4], Event: m[5], Zone: m[6], Raw: s}, nil
	}
	if m := heartbeatRE.FindStringSubmatch(s); m != nil {
		return Line{Kind: "heartbeat", Receiver: m[1], Raw: s}, nil
	}
	return Line{}, fmt.Errorf("%w: %q", ErrLine, s)
}
