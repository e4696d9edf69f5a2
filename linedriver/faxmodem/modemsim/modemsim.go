// Package modemsim is a scripted fax modem emulator: it plays a Class 1 or
// Class 2/2.0 modem and, behind it, the remote fax machine that answers the
// call and receives the pages. It runs on any io.ReadWriter (a net.Pipe
// for fast tests) or on a pty that the driver opens like a serial port.
//
// The remote is scripted by Remote: busy, no carrier, no dial tone, failure
// to train above a speed, RTN for a page, never answering the DCS, a modem
// that goes silent, a line that drops in the middle of a page. Received
// pages are kept (raw T.4 data, and decoded rows when Decode is set), so
// the emulator also serves as the receiving fax machine of a demo.
package modemsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"

	"github.com/mediagw/mediagw/internal/rawtty"
	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
)

// Remote scripts the far end and the modem's own failures.
type Remote struct {
	// Dial is what the modem answers to ATD: "" (a fax answers), "BUSY",
	// "NO CARRIER", "NO DIALTONE", "NO ANSWER", or "silent" (nothing).
	Dial string
	// DialFirst answers the first dials in order (e.g. "BUSY", then
	// ""); once it is used up, Dial answers.
	DialFirst []string
	// CSI is the remote's identification.
	CSI string
	// Caps is the DIS the remote sends (default: V.17, fine, MR, 0 ms).
	Caps *t30.Caps
	// FTTAbove makes the remote answer FTT to training faster than this
	// many bit/s (0: never).
	FTTAbove int
	// IgnoreDCS makes the remote never answer the DCS.
	IgnoreDCS bool
	// RTN maps a page number (1-based, counted per call) to how many times
	// the remote answers RTN before MCF.
	RTN map[int]int
	// SilentInPage makes the modem stop answering anything once it has
	// received some data of this page (1-based; 0: never).
	SilentInPage int
	// CloseInPage makes the emulator close the port in the middle of this
	// page (1-based; 0: never).
	CloseInPage int
	// HangupInPage makes the far end hang up in the middle of this page
	// (1-based; 0: never): the modem sends XOFF, then NO CARRIER, and is
	// back in command mode; the rest of the page data is junk to it.
	HangupInPage int
	// Mute makes the far end answer the call and send nothing: the modem
	// says CONNECT and waits for a frame that never comes. As a real
	// (spandsp) modem does, it takes the next character from the host as
	// an abort, answers DLE ETX and OK, and drops the rest of that line.
	Mute bool
	// FirstFrameDelay is how long the far end takes after answering
	// before its first frame (CSI, DIS).
	FirstFrameDelay time.Duration
	// CorruptFrames maps an ECM frame number (within a block) to how many
	// of its transmissions arrive in error (the FCS fails), so the remote
	// asks for it again with PPR.
	CorruptFrames map[int]int
	// NotReady makes the remote answer the first complete ECM block of a
	// call with RNR, and RR with RNR, this many times in all before it
	// answers.
	NotReady int
	// SilentAfterConnect makes the modem stop answering anything once
	// ATD's CONNECT is out (a modem that died mid-call).
	SilentAfterConnect bool
	// Classes answers AT+FCLASS=? (default "0,1,1.0,2,2.0").
	Classes string
	// Ranges answers a Class 2/2.0 modem's AT+FCC=? (default: fine, V.17,
	// MH, MR and MMR, ECM with 64- and 256-octet frames). A +FCC or +FIS
	// outside them is answered with ERROR.
	Ranges string
	// XOFFEvery sends XOFF, then XON 20 ms later, every so many bytes of
	// page data (0: never).
	XOFFEvery int
	// Caller makes the far end a fax machine that calls the modem: a Class
	// 2/2.0 modem answers ATA with it and hands its pages to the host.
	Caller *Caller
	// Decode turns a received page into rows (e.g. with the t4 decoder).
	Decode func(data []byte, p t30.Params) ([][]byte, error)
	// OnPage is called for each page the remote confirmed.
	OnPage func(Page)
	// OnDrop is called when the user of a pty closes it during a call
	// or a command (DTR dropped) and the modem hangs up.
	OnDrop func()
}

// Page is a page the remote received.
type Page struct {
	Number int
	Params t30.Params
	Data   []byte // T.4 data as sent
	// FramesLost counts the ECM frames the sender gave up on (EOR): the
	// page was kept without them.
	FramesLost int
	Rows       [][]byte // decoded rows, when Remote.Decode is set
	Err        error    // decode error
}

// Call is what the remote saw of one call.
type Call struct {
	Number   string
	TSI      string
	DCS      []t30.Params // every DCS received, in order
	Training []int        // bit rate of every TCF received
	Pages    []Page       // confirmed pages
	Frames   []string     // frames from the sender, in order
	Ended    bool         // the sender sent DCN
	OnHook   bool         // the modem hung up on the host's ATH0 / ATZ
	Hangup   bool         // the far end hung up mid-call
	PPR      int          // ECM: partial page requests sent
	Resent   []int        // ECM: frame numbers received more than once, in order
	CTC      []int        // ECM: bit rates the sender moved to with CTC
	EOR      int          // ECM: EORs received (answered ERR)
	RR       int          // ECM: RR received`
	Dropped  bool         // the sender closed the port (DTR dropped) before DCN
	// a call from Remote.Caller
	Incoming bool
	Verdicts []int // the host's verdict on each page sent (+FPS=1 MCF, 2 RTN), in order
	Aborted  bool  // the host ended the call (+FKS / +FK)
}

// Modem is one emulated modem.
type Modem struct {
	rw     io.ReadWriter
	remote Remote

	mu    sync.Mutex
	calls []*Call
	cmds  []string

	pending []byte
	in      chan []byte
	rerr    error
	// hup is signalled when the user of a pty closes it: a real modem
	// sees DTR drop and hangs up (AT&D2).
	hup chan struct{}

	echo   bool
	class  string
	call   *Call
	state  int
	params t30.Params
	out    []t30.Frame // frames the remote will send on the next +FRH
	page   int         // pages received in this call (including rejected)
	rtn    map[int]int
	silent bool
	closed bool
	pty    bool // rw is a pty master: EIO means nobody has the tty open
	dials  int  // ATD commands so far
	inCall bool // off hook in a call
	// listening: after CONNECT the modem waits for a frame; the next
	// character is an abort.
	listening bool
	// junk: page data after the far end hung up may precede the next
	// command on its line.
	junk bool

	lastPage []byte

	// error correction mode
	ecmFrames     map[int][]byte
	ecmSeen       map[int]int
	ecmCorrupt    map[int]int
	ecmPage       []byte
	ecmCount      int // frames in the block, from its last PPS
	ecmLost       int // frames of the page given up with EOR
	notReady      int
	needLong      bool // after CTC the receiver must retrain: short training is lost
	lastPPMAnswer *t30.Frame

	// class 2
	c2 class2State
	rx *inbound // a call from Remote.Caller
}

const (
	stIdle = iota
	stWaitDCS
	stWaitTCF
	stWaitPage
	stWaitPPM
)

// New makes an emulator serving rw.
func New(rw io.ReadWriter, r Remote) *Modem {
	if r.Caps == nil {
		r.Caps = &t30.Caps{CanReceive: true, V17: true, V29: true, V27ter: true, Fine: true, MR: true}
	}
	if r.Classes == "" {
		r.Classes = "0,1,1.0,2,2.0"
	}
	if r.Ranges == "" {
		r.Ranges = defaultRanges
	}
	if r.CSI == "" {
		r.CSI = "+1 555 0100"
	}
	return &Modem{rw: rw, remote: r, echo: true, class: "0", in: make(chan []byte, 64), hup: make(chan struct{}, 1)}
}

// Calls returns what the remote saw of each call so far.
func (m *Modem) Calls() []Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Call, len(m.calls))
	for i, c := range m.calls {
		out[i] = *c
		out[i].Pages = append([]Page(nil), c.Pages...)
	}
	return out
}

// Pages returns every page confirmed in every call.
func (m *Modem) Pages() []Page {
	var out []Page
	for _, c := range m.Calls() {
		out = append(out, c.Pages...)
	}
	return out
}

// Commands returns the AT commands received.
func (m *Modem) Commands() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.cmds...)
}

// Pipe returns the driver's end of an in-memory serial line and starts an
// emulator on the other end; cancel ctx or close the returned end to stop.
func Pipe(ctx context.Context, r Remote) (io.ReadWriteCloser, *Modem) {
	a, b := netPipe()
	m := New(b, r)
	go func() {
		m.Serve(ctx) //nolint:errcheck // ends with the pipe
		b.Close()
	}()
	return a, m
}

// PTY starts an emulator on a new pty and returns the path of its tty,
// which the driver opens like a serial port. Cancel ctx to stop it.
func PTY(ctx context.Context, r Remote) (string, *Modem, error) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return "", nil, fmt.Errorf("modemsim: pty: %w", err)
	}
	name := tty.Name()
	// Raw mode on the tty side so bytes pass unchanged; the driver's
	// serial open sets it too, but the emulator may write first.
	if err := rawtty.Make(tty); err != nil {
		ptmx.Close()
		tty.Close()
		return "", nil, err
	}
	// The emulator does not keep the tty open: when the driver closes it
	// (or dies), reads on the master fail with EIO, which the emulator
	// takes for DTR dropping and hangs up, as a modem set to AT&D2 does.
	// The terminal settings stay with the pty.
	tty.Close()
	m := New(ptmx, r)
	m.pty = true
	go func() {
		<-ctx.Done()
		ptmx.Close()
	}()
	go func() {
		m.Serve(ctx) //nolint:errcheck // ends with the pty
		ptmx.Close()
	}()
	return name, m, nil
}

// Serve answers commands until the line closes or ctx ends.
func (m *Modem) Serve(ctx context.Context) error {
	go m.readLoop(ctx)
	for {
		line, err := m.readCommand(ctx)
		if errors.Is(err, errHangup) {
			m.dropped()
			continue
		}
		if err != nil {
			return err
		}
		if m.silent {
			continue
		}
		if err := m.command(ctx, line); errors.Is(err, errHangup) {
			m.dropped()
		} else if err != nil {
			return err
		}
		if m.closed {
			return nil
		}
	}
}

func (m *Modem) readLoop(ctx context.Context) {
	buf := make([]byte, 4096)
	open := false // the tty has a user (DTR on)
	for {
		n, err := m.rw.Read(buf)
		if n > 0 {
			open = true
			select {
			case m.in <- append([]byte(nil), buf[:n]...):
			case <-ctx.Done():
				return
			}
		}
		if m.pty && errors.Is(err, syscall.EIO) {
			// Nobody has the tty open: DTR is off.
			if open {
				open = false
				select {
				case m.hup <- struct{}{}:
				default:
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			m.rerr = err
			close(m.in)
			return
		}
	}
}

var errStopped = errors.New("modemsim: line closed")

func (m *Modem) fill(ctx context.Context, timeout time.Duration) error {
	var t <-chan time.Time
	if timeout > 0 {
		tm := time.NewTimer(timeout)
		defer tm.Stop()
		t = tm.C
	}
	// Bytes read before DTR dropped come first.
	select {
	case b, ok := <-m.in:
		if !ok {
			return errStopped
		}
		m.pending = append(m.pending, b...)
		return nil
	default:
	}
	select {
	case b, ok := <-m.in:
		if !ok {
			return errStopped
		}
		m.pending = append(m.pending, b...)
		return nil
	case <-m.hup:
		return errHangup
	case <-ctx.Done():
		return ctx.Err()
	case <-t:
		return errTimeout
	}
}

var (
	errTimeout = errors.New("timeout")
	errHangup  = errors.New("modemsim: DTR dropped")
)

// dropped ends the call after DTR dropped: whatever the modem was doing
// (receiving a page, waiting for a frame), it hangs up and returns to
// command mode with its settings reset, as AT&D2 and ATZ do.
func (m *Modem) dropped() {
	inCall := m.state != stIdle || m.c2.online
	m.mu.Lock()
	if inCall && m.call != nil && !m.call.Ended {
		m.call.Dropped = true
	}
	m.mu.Unlock()
	m.pending = nil
	m.silent = false
	m.echo, m.class = true, "0"
	m.state = stIdle
	m.out = nil
	m.c2 = class2State{}
	m.rx = nil
	if inCall && m.remote.OnDrop != nil {
		m.remote.OnDrop()
	}
}

func (m *Modem) readCommand(ctx context.Context) (string, error) {
	for {
		if m.listening && len(m.pending) > 0 {
			// any character aborts the reception; the rest of what came
			// with it, up to the end of its line, goes with it
			m.listening = false
			if i := bytes.IndexByte(m.pending, '\r'); i >= 0 {
				m.pending = m.pending[i+1:]
			} else {
				m.pending = m.pending[:0]
			}
			m.write(string([]byte{at.DLE, at.ETX}))
			m.result("OK")
			continue
		}
		if i := bytes.IndexByte(m.pending, '\r'); i >= 0 {
			line := strings.TrimSpace(string(m.pending[:i]))
			m.pending = m.pending[i+1:]
			if m.echo && !m.silent {
				m.write(line + "\r")
			}
			// any junk before AT (an abort byte) is dropped
			j := strings.Index(strings.ToUpper(line), "AT")
			if m.junk {
				j = strings.LastIndex(strings.ToUpper(line), "AT")
			}
			if j >= 0 {
				m.junk = false
				return line[j:], nil
			}
			continue
		}
		if err := m.fill(ctx, 0); err != nil {
			return "", err
		}
	}
}

// readData reads DLE-stuffed data up to DLE ETX. onByte is called with the
// running count (to script failures mid-page).
func (m *Modem) readData(ctx context.Context, onCount func(int) bool) ([]byte, error) {
	var out []byte
	i := 0
	for {
		for i < len(m.pending) {
			b := m.pending[i]
			if b != at.DLE {
				out = append(out, b)
				i++
				continue
			}
			if i+1 >= len(m.pending) {
				break
			}
			switch m.pending[i+1] {
			case at.DLE:
				out = append(out, at.DLE)
			case at.ETX:
				m.pending = m.pending[i+2:]
				if onCount != nil && !onCount(len(out)) {
					return out, errStopped
				}
				return out, nil
			}
			i += 2
		}
		m.pending = m.pending[i:]
		i = 0
		if onCount != nil && !onCount(len(out)) {
			return out, errStopped
		}
		if err := m.fill(ctx, 0); err != nil {
			return out, err
		}
	}
}

func (m *Modem) write(s string) {
	m.rw.Write([]byte(s)) //nolint:errcheck // the driver may have gone
}

func (m *Modem) result(s string) { m.write("\r\n" + s + "\r\n") }

func (m *Modem) sendFrame(f t30.Frame) {
	m.write(string(at.Stuff(f.MarshalFCS())) + string([]byte{at.DLE, at.ETX}))
	m.result("OK")
}

func splitCommands(line string) []string {
	body := line[2:]
	var out []string
	for _, part := range strings.Split(body, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		// basic commands chained without ';' (ATE0V1Q0) are split at
		// letters; extended ones (+F...) run to the end of the part.
		for part != "" {
			if part[0] == '+' {
				out = append(out, part)
				break
			}
			if part[0] == 'D' || part[0] == 'd' {
				out = append(out, part)
				break
			}
			n := 1
			if part[0] == '&' || part[0] == '\\' {
				n = 2
			}
			for n < len(part) && (part[n] >= '0' && part[n] <= '9' || part[n] == '=' || part[n] == '?') {
				n++
			}
			if n > len(part) {
				n = len(part)
			}
			out = append(out, part[:n])
			part = part[n:]
		}
	}
	return out
}

func (m *Modem) command(ctx context.Context, line string) error {
	m.mu.Lock()
	m.cmds = append(m.cmds, line)
	m.mu.Unlock()
	if strings.EqualFold(line, "AT") {
		m.result("OK")
		return nil
	}
	cmds := splitCommands(line)
	for i, c := range cmds {
		last := i == len(cmds)-1
		done, err := m.one(ctx, c, last)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
	m.result("OK")
	return nil
}

// one runs one command; done means it has answered the whole line.
func (m *Modem) one(ctx context.Context, c string, last bool) (bool, error) {
	u := strings.ToUpper(c)
	switch {
	case u == "Z" || u == "Z0" || u == "&F":
		m.echo, m.class = true, "0"
		m.hangupState()
	case u == "E0":
		m.echo = false
	case u == "E1" || u == "E":
		m.echo = true
	case u == "H" || u == "H0":
		m.hangupState()
	case u == "I" || u == "I0":
		m.write("\r\nmodemsim\r\n")
	case u == "I3":
		m.write("\r\nmodemsim fax modem emulator 1.0\r\n")
	case u == "+FCLASS=?":
		m.write("\r\n" + m.remote.Classes + "\r\n")
	case u == "+FCLASS?":
		m.write("\r\n" + m.class + "\r\n")
	case strings.HasPrefix(u, "+FCLASS="):
		v := u[len("+FCLASS="):]
		if !strings.Contains(","+m.remote.Classes+",", ","+v+",") {
			m.result("ERROR")
			return true, nil
		}
		m.class = v
	case u == "+FMI?" || u == "+GMI" || u == "+FMFR?":
		m.write("\r\nmodemsim\r\n")
	case u == "+FMM?" || u == "+GMM" || u == "+FMDL?":
		m.write("\r\nClass 1/2/2.0 emulator\r\n")
	case u == "+FMR?" || u == "+GMR" || u == "+FREV?":
		m.write("\r\n1.0\r\n")
	case u == "+FTM=?" || u == "+FRM=?":
		m.write("\r\n24,48,72,73,74,96,97,98,121,122,145,146\r\n")
	case u == "+FTH=?" || u == "+FRH=?":
		m.write("\r\n3\r\n")
	case strings.HasPrefix(u, "D"):
		return true, m.dial(ctx, c[1:])
	case strings.HasPrefix(u, "+FTS="), strings.HasPrefix(u, "+FRS="):
		n, _ := strconv.Atoi(u[5:])
		time.Sleep(time.Duration(n) * time.Millisecond) // a tenth of real time
	case u == "+FTH=3":
		return true, m.transmitHDLC(ctx)
	case u == "+FRH=3":
		return true, m.receiveHDLC(ctx)
	case strings.HasPrefix(u, "+FTM="):
		code, err := strconv.Atoi(u[5:])
		if err != nil {
			m.result("ERROR")
			return true, nil
		}
		return true, m.transmitData(ctx, code)
	case m.class == "2" || m.class == "2.0":
		return m.class2(ctx, u, c)
	default:
		// S registers, &K, +FLO and the like are accepted as they are.
	}
	return false, nil
}

func (m *Modem) hangupState() {
	if m.call != nil && m.state != stIdle {
		m.state = stIdle
	}
	if m.inCall && m.call != nil {
		m.mu.Lock()
		m.call.OnHook = true
		m.mu.Unlock()
	}
	m.inCall = false
	m.listening = false
	m.out = nil
	m.c2.online, m.rx = false, nil
}

func (m *Modem) dial(ctx context.Context, number string) error {
	number = strings.TrimLeft(number, "TtPpWw")
	answer := m.remote.Dial
	if m.dials < len(m.remote.DialFirst) {
		answer = m.remote.DialFirst[m.dials]
	}
	m.dials++
	switch answer {
	case "silent":
		m.silent = true
		return nil
	case "":
	default:
		time.Sleep(20 * time.Millisecond)
		m.result(answer)
		return nil
	}
	m.mu.Lock()
	m.call = &Call{Number: number}
	m.calls = append(m.calls, m.call)
	m.mu.Unlock()
	m.page = 0
	m.rtn = map[int]int{}
	for k, v := range m.remote.RTN {
		m.rtn[k] = v
	}
	if m.class == "2" || m.class == "2.0" {
		return m.class2Dial(ctx)
	}
	m.result("CONNECT")
	m.inCall = true
	if m.remote.SilentAfterConnect {
		m.silent = true
		return nil
	}
	if m.remote.Mute {
		m.listening = true
		return nil
	}
	if m.remote.FirstFrameDelay > 0 {
		select {
		case <-time.After(m.remote.FirstFrameDelay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.out = []t30.Frame{
		{FCF: t30.CSI, Info: t30.EncodeID(m.remote.CSI)},
		{FCF: t30.DIS, Final: true, Info: m.remote.Caps.Bytes()},
	}
	f := m.out[0]
	m.out = m.out[1:]
	m.sendFrame(f)
	m.state = stWaitDCS
	return nil
}

func (m *Modem) record(f t30.Frame) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.call != nil {
		m.call.Frames = append(m.call.Frames, f.String())
	}
}

func (m *Modem) transmitHDLC(ctx context.Context) error {
	m.result("CONNECT")
	for {
		data, err := m.readData(ctx, nil)
		if err != nil {
			return err
		}
		f, err := t30.Parse(data)
		if err != nil {
			m.result("ERROR")
			return nil
		}
		m.record(f)
		m.remoteFrame(f)
		if f.Final {
			m.result("OK")
			return nil
		}
		m.result("CONNECT")
	}
}

// remoteFrame is the remote fax machine receiving a frame.
func (m *Modem) remoteFrame(f t30.Frame) {
	if m.call == nil {
		return
	}
	switch t30.Code(f.FCF) {
	case t30.TSI:
		m.mu.Lock()
		m.call.TSI = t30.DecodeID(f.Info)
		m.mu.Unlock()
	case t30.DCS:
		p, err := t30.ParseDCS(f.Info)
		if err != nil {
			return
		}
		m.params = p
		m.notReady = m.remote.NotReady
		m.mu.Lock()
		m.call.DCS = append(m.call.DCS, p)
		m.mu.Unlock()
		m.state = stWaitTCF
	case t30.MPS, t30.EOP, t30.EOM:
		if m.state != stWaitPPM {
			// a repeated post-page message: answer as before
			if len(m.out) == 0 && m.lastPPMAnswer != nil {
				m.out = []t30.Frame{*m.lastPPMAnswer}
			}
			return
		}
		m.ppm()
	case t30.PPS:
		m.pps(f)
	case t30.EOR:
		m.eor(f)
	case t30.RR:
		m.mu.Lock()
		m.call.RR++
		m.mu.Unlock()
		if m.notReady > 0 {
			m.notReady--
			m.out = []t30.Frame{{FCF: t30.RNR, Final: true}}
			return
		}
		if m.lastPPMAnswer != nil {
			m.out = []t30.Frame{*m.lastPPMAnswer}
		}
	case t30.CTC:
		if p, err := t30.ParseDCS(append(append([]byte(nil), f.Info...), 0)); err == nil {
			m.params.Speed = p.Speed
			m.mu.Lock()
			m.call.CTC = append(m.call.CTC, p.Speed.Bits)
			m.mu.Unlock()
		}
		m.out = []t30.Frame{{FCF: t30.CTR, Final: true}}
		m.needLong = true
	case t30.DCN:
		m.mu.Lock()
		m.call.Ended = true
		m.mu.Unlock()
		m.state = stIdle
	case t30.CRP:
		if m.lastPPMAnswer != nil {
			m.out = []t30.Frame{*m.lastPPMAnswer}
		}
	}
}

// pps is the end of an ECM block: PPR for frames missing, else the block
// joins the page, and at the page's end the page is confirmed.
func (m *Modem) pps(f t30.Frame) {
	if len(f.Info) < 4 || !m.params.ECM {
		m.out = []t30.Frame{{FCF: t30.CRP, Final: true}}
		return
	}
	count := int(f.Info[3]) + 1
	m.ecmCount = count
	ppr := make([]byte, 32)
	missing := false
	for n := range count {
		if _, ok := m.ecmFrames[n]; !ok {
			ppr[n/8] |= 1 << (n % 8)
			missing = true
		}
	}
	if missing {
		m.mu.Lock()
		m.call.PPR++
		m.mu.Unlock()
		ans := t30.Frame{FCF: t30.PPR, Final: true, Info: ppr}
		m.lastPPMAnswer = &ans
		m.out = []t30.Frame{ans}
		return
	}
	if m.notReady > 0 {
		m.notReady--
		m.out = []t30.Frame{{FCF: t30.RNR, Final: true}}
		m.lastPPMAnswer = &t30.Frame{FCF: t30.MCF, Final: true}
	}
	for n := range count {
		m.ecmPage = append(m.ecmPage, m.ecmFrames[n]...)
	}
	m.ecmFrames, m.ecmSeen, m.ecmCorrupt = nil, nil, nil
	if f.Info[0] == 0 { // PPS-NULL: more of this page to come
		ans := t30.Frame{FCF: t30.MCF, Final: true}
		m.lastPPMAnswer = &ans
		if len(m.out) == 0 {
			m.out = []t30.Frame{ans}
		}
		return
	}
	m.lastPage, m.ecmPage = m.ecmPage, nil
	m.page++
	held := m.out
	m.ppm()
	if len(held) > 0 { // RNR first
		m.out = held
	}
}

// eor ends the block's retransmission: the frames received join the page
// (the others are lost), answered ERR; at the page's end (EOR-MPS/EOP) the
// page is kept as with PPS.
func (m *Modem) eor(f t30.Frame) {
	if len(f.Info) < 1 || !m.params.ECM {
		m.out = []t30.Frame{{FCF: t30.CRP, Final: true}}
		return
	}
	m.mu.Lock()
	m.call.EOR++
	m.mu.Unlock()
	for n := range m.ecmCount {
		if d, ok := m.ecmFrames[n]; ok {
			m.ecmPage = append(m.ecmPage, d...)
		} else {
			m.ecmLost++
		}
	}
	m.ecmFrames, m.ecmSeen, m.ecmCorrupt = nil, nil, nil
	ans := t30.Frame{FCF: t30.ERR, Final: true}
	if f.Info[0] == 0 { // EOR-NULL
		m.lastPPMAnswer = &ans
		m.out = []t30.Frame{ans}
		return
	}
	m.lastPage, m.ecmPage = m.ecmPage, nil
	m.page++
	m.ppm()
	m.lastPPMAnswer = &ans
	m.out = []t30.Frame{ans}
}

// ecmData takes in one transmission of ECM frames.
func (m *Modem) ecmData(data []byte) {
	if m.ecmFrames == nil {
		m.ecmFrames, m.ecmSeen, m.ecmCorrupt = map[int][]byte{}, map[int]int{}, map[int]int{}
		for k, v := range m.remote.CorruptFrames {
			m.ecmCorrupt[k] = v
		}
	}
	for _, f := range t30.HDLCDecode(data) {
		if len(f) < 4 || f[2] != t30.FCD {
			continue
		}
		n := int(f[3])
		m.ecmSeen[n]++
		if m.ecmSeen[n] > 1 {
			m.mu.Lock()
			m.call.Resent = append(m.call.Resent, n)
			m.mu.Unlock()
		}
		if m.ecmCorrupt[n] > 0 {
			m.ecmCorrupt[n]--
			continue
		}
		m.ecmFrames[n] = append([]byte(nil), f[4:]...)
	}
}

func (m *Modem) ppm() {
	ans := t30.Frame{FCF: t30.MCF, Final: true}
	n := len(m.call.Pages) + 1 // the page being confirmed, counted in this call
	if m.rtn[n] > 0 {
		m.rtn[n]--
		ans.FCF = t30.RTN
		m.state = stWaitDCS
	} else {
		pg := Page{Number: len(m.call.Pages) + 1, Params: m.params, Data: m.lastPage, FramesLost: m.ecmLost}
		m.ecmLost = 0
		if m.remote.Decode != nil {
			pg.Rows, pg.Err = m.remote.Decode(pg.Data, m.params)
		}
		m.mu.Lock()
		m.call.Pages = append(m.call.Pages, pg)
		m.mu.Unlock()
		if m.remote.OnPage != nil {
			m.remote.OnPage(pg)
		}
		m.state = stWaitPage
	}
	m.lastPPMAnswer = &ans
	m.out = []t30.Frame{ans}
}

func (m *Modem) receiveHDLC(ctx context.Context) error {
	if len(m.out) == 0 {
		// No carrier: wait for the host to abort with any character.
		for len(m.pending) == 0 {
			if err := m.fill(ctx, 0); err != nil {
				return err
			}
		}
		m.pending = m.pending[:0]
		m.result("OK")
		return nil
	}
	f := m.out[0]
	m.out = m.out[1:]
	m.result("CONNECT")
	m.sendFrame(f)
	return nil
}

func speedOf(code int) (t30.Speed, bool) {
	for _, s := range t30.Speeds {
		if s.TrainCode == code || s.DataCode == code {
			return s, true
		}
	}
	return t30.Speed{}, false
}

func (m *Modem) transmitData(ctx context.Context, code int) error {
	sp, ok := speedOf(code)
	if !ok {
		m.result("ERROR")
		return nil
	}
	m.result("CONNECT")
	switch m.state {
	case stWaitTCF:
		data, err := m.readData(ctx, nil)
		if err != nil {
			return err
		}
		m.result("OK")
		m.mu.Lock()
		m.call.Training = append(m.call.Training, sp.Bits)
		m.mu.Unlock()
		zeros := bytes.Count(data, []byte{0})
		good := sp.Bits == m.params.Speed.Bits && zeros >= len(data)*9/10 && len(data) >= sp.Bits/8
		if m.remote.FTTAbove > 0 && sp.Bits > m.remote.FTTAbove {
			good = false
		}
		if m.remote.IgnoreDCS {
			return nil
		}
		if good {
			m.out = []t30.Frame{{FCF: t30.CFR, Final: true}}
			m.state = stWaitPage
		} else {
			m.out = []t30.Frame{{FCF: t30.FTT, Final: true}}
			m.state = stWaitDCS
		}
		return nil
	case stWaitPage:
		if m.params.ECM {
			data, err := m.readData(ctx, nil)
			if err != nil {
				return err
			}
			m.result("OK")
			if m.needLong && code != sp.TrainCode {
				return nil // not trained at the new speed: nothing received
			}
			m.needLong = false
			if sp.Bits == m.params.Speed.Bits {
				m.ecmData(data)
			}
			return nil
		}
		m.page++
		n := m.page
		xoffAt := m.remote.XOFFEvery
		gone := false
		data, err := m.readData(ctx, func(count int) bool {
			if n == m.remote.HangupInPage && count > 0 {
				m.rw.Write([]byte{at.XOFF})
				m.result("NO CARRIER")
				m.mu.Lock()
				m.call.Hangup = true
				m.mu.Unlock()
				m.state, m.inCall, m.junk, gone = stIdle, false, true, true
				return false
			}
			if n == m.remote.CloseInPage && count > 0 {
				m.closed = true
				if c, ok := m.rw.(io.Closer); ok {
					c.Close()
				}
				return false
			}
			if n == m.remote.SilentInPage && count > 0 {
				m.silent = true
			}
			if xoffAt > 0 && count >= xoffAt {
				xoffAt += m.remote.XOFFEvery
				m.rw.Write([]byte{at.XOFF})
				time.Sleep(20 * time.Millisecond)
				m.rw.Write([]byte{at.XON})
			}
			return true
		})
		if err != nil {
			if m.closed || gone {
				return nil
			}
			return err
		}
		if m.silent {
			return nil
		}
		if sp.Bits != m.params.Speed.Bits {
			data = nil // wrong modulation: the remote sees nothing
		}
		m.lastPage = data
		m.state = stWaitPPM
		m.result("OK")
		return nil
	}
	_, err := m.readData(ctx, nil)
	if err != nil {
		return err
	}
	m.result("OK")
	return nil
}

// Open is a helper for tests: the path of a pty is a serial device.
func Open(path string) (*os.File, error) { return os.OpenFile(path, os.O_RDWR, 0) }
