// Package faxline starts a real fax line for tests and benchmarks: two
// iaxmodem soft modems (spandsp: V.21, V.27ter, V.29, V.17; Class 1) that
// call each other over IAX2 on 127.0.0.1, and efax answering on the far
// side. A pty relay sits between efax and its modem and holds each AT+FTH
// of the receiver for a moment, because efax answers faster than the
// 75 ms of silence T.30 asks for.
package faxline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/mediagw/mediagw/internal/rawtty"
)

// Line is a running pair of soft modems.
type Line struct {
	Dir  string // working directory (configs, ptys, received files)
	DevA string // the calling modem's tty
	DevB string // the answering modem's tty
	NumB string // what to dial to reach B
	NumA string // what to dial to reach A
	// FaxB is a fax number (E.164, region US) for the fax driver, whose
	// dial plan makes it 12015550102: B answers whatever A dials.
	FaxB   string
	cancel context.CancelFunc
	short  string // a directory for the ttys when Dir is too long a path
	procs  []*exec.Cmd
	logs   []*lockedBuffer
	mu     sync.Mutex
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// maxDevPath is the longest tty path iaxmodem keeps whole.
const maxDevPath = 56

const modemConf = `device    %s
owner     root:root
mode      666
port      %d
refresh   0
server    127.0.0.1:%d
peername  %s
secret    none
cidname   %s
cidnumber %s
codec     slinear
`

// Start writes the configs into dir (which must be empty or new) and starts
// both modems. Close stops them.
func Start(ctx context.Context, dir string) (*Line, error) {
	bin, err := exec.LookPath("iaxmodem")
	if err != nil {
		return nil, fmt.Errorf("faxline: %w", err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	// iaxmodem drops privileges to uucp: it must be able to make its
	// pty links in dir.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for d := dir; d != "/"; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(d, fi.Mode().Perm()|0o011) //nolint:errcheck // best effort
		}
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		return nil, err
	}
	pa, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	pb, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &Line{Dir: dir, DevA: filepath.Join(dir, "ttyIAXA"), DevB: filepath.Join(dir, "ttyIAXB"), NumA: "1001", NumB: "1002", FaxB: "+12015550102", cancel: cancel}
	if len(l.DevA) > maxDevPath {
		// iaxmodem cuts longer device paths (long test names make them):
		// the ttys go into a short directory of their own
		short, err := os.MkdirTemp("", "fl")
		if err != nil {
			cancel()
			return nil, err
		}
		os.Chmod(short, 0o777) //nolint:errcheck // checked by the wait below
		l.short = short
		l.DevA, l.DevB = filepath.Join(short, "ttyIAXA"), filepath.Join(short, "ttyIAXB")
	}
	confs := []struct{ name, dev string }{{"modemA", l.DevA}, {"modemB", l.DevB}}
	ports := [][2]int{{pa, pb}, {pb, pa}}
	nums := []string{"1001", "1002"}
	for i, c := range confs {
		path := filepath.Join(dir, c.name)
		body := fmt.Sprintf(modemConf, c.dev, ports[i][0], ports[i][1], c.name, c.name, nums[i])
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			cancel()
			return nil, err
		}
		// iaxmodem reads /etc/iaxmodem/NAME only: climb out of it.
		args := []string{bin, "../.." + path}
		if sb, err := exec.LookPath("stdbuf"); err == nil {
			args = append([]string{sb, "-oL"}, args...) // a line-buffered log
		}
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		log := &lockedBuffer{mu: &l.mu}
		cmd.Stdout, cmd.Stderr = log, log
		cmd.Cancel = func() error { return cmd.Process.Signal(unix.SIGTERM) }
		cmd.WaitDelay = 3 * time.Second
		if err := cmd.Start(); err != nil {
			l.Close()
			return nil, fmt.Errorf("faxline: start iaxmodem: %w", err)
		}
		l.procs = append(l.procs, cmd)
		l.logs = append(l.logs, log)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, dev := range []string{l.DevA, l.DevB} {
		for {
			if _, err := os.Stat(dev); err == nil {
				break
			}
			if time.Now().After(deadline) {
				l.Close()
				return nil, fmt.Errorf("faxline: %s did not appear; iaxmodem said: %s", dev, l.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return l, nil
}

// Log returns what the modems printed.
func (l *Line) Log() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for i, x := range l.logs {
		fmt.Fprintf(&b, "--- modem %c\n%s", 'A'+i, x.String())
	}
	return b.String()
}

// HangUpB hangs up modem B's call, as a modem does when DTR falls because
// the program behind it died (iaxmodem ignores its pty closing). It opens
// B's tty, so whatever used it must have closed it; B may be receiving,
// so it aborts that first.
func (l *Line) HangUpB(ctx context.Context) error {
	f, err := os.OpenFile(l.DevB, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("faxline: open %s: %w", l.DevB, err)
	}
	defer f.Close()
	if err := rawtty.Make(f); err != nil {
		return err
	}
	for _, c := range []string{"\x18", "ATH0\r"} {
		if _, err := f.WriteString(c); err != nil {
			return fmt.Errorf("faxline: hang up B: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// Close stops the modems.
func (l *Line) Close() error {
	l.cancel()
	for _, p := range l.procs {
		p.Wait() //nolint:errcheck // stopped on purpose
	}
	if l.short != "" {
		os.RemoveAll(l.short) //nolint:errcheck // a temporary directory
	}
	return nil
}

// Receiver is efax answering on modem B through the relay.
type Receiver struct {
	cmd    *exec.Cmd
	relay  *relay
	Out    bytes.Buffer
	Prefix string // received pages are Prefix.001, Prefix.002, ...
	done   chan error
}

// Receive starts efax on B to answer one call, writing pages to prefix.NNN.
// holdFTH is how long the relay holds each AT+FTH of the receiver (80 ms
// keeps T.30's silence; 0 passes it at once).
//
// caps is efax's capability string (-c vr,br,wd,ln,df,ec,bf,st), e.g.
// "1,5,0,2,1,0,0,0" for fine, 14400, 2-D; "" keeps efax's default.
func (l *Line) Receive(ctx context.Context, prefix, localID, caps string, holdFTH time.Duration) (*Receiver, error) {
	bin, err := exec.LookPath("efax")
	if err != nil {
		return nil, fmt.Errorf("faxline: %w", err)
	}
	rl, err := newRelay(l.DevB, holdFTH)
	if err != nil {
		return nil, err
	}
	r := &Receiver{relay: rl, Prefix: prefix, done: make(chan error, 1)}
	args := []string{"-d", rl.tty, "-o1", "-iS0=1", "-w", "-l", localID, "-v", "ewinct", "-r", prefix}
	if caps != "" {
		args = append([]string{"-c", caps}, args...)
	}
	r.cmd = exec.CommandContext(ctx, bin, args...)
	r.cmd.Stdout, r.cmd.Stderr = &r.Out, &r.Out
	r.cmd.Cancel = func() error { return r.cmd.Process.Signal(unix.SIGTERM) }
	r.cmd.WaitDelay = 3 * time.Second
	if err := r.cmd.Start(); err != nil {
		rl.close()
		return nil, err
	}
	go func() {
		err := r.cmd.Wait()
		rl.close()
		r.done <- err
	}()
	return r, nil
}

// Wait waits for efax to end (after one call) and returns its exit error.
func (r *Receiver) Wait(ctx context.Context) error {
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		r.cmd.Process.Signal(unix.SIGTERM) //nolint:errcheck
		return errors.Join(ctx.Err(), <-r.done)
	}
}

// Pages lists the files efax wrote.
func (r *Receiver) Pages() []string {
	m, _ := filepath.Glob(r.Prefix + ".[0-9][0-9][0-9]")
	return m
}

// relay copies bytes between a new pty (for efax) and the modem's tty,
// holding each AT+FTH command from efax for hold.
type relay struct {
	tty   string
	ptmx  *os.File
	slave *os.File
	modem *os.File
	once  sync.Once
}

func newRelay(modemDev string, hold time.Duration) (*relay, error) {
	modem, err := os.OpenFile(modemDev, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("faxline: open %s: %w", modemDev, err)
	}
	if err := rawtty.Make(modem); err != nil {
		modem.Close()
		return nil, err
	}
	ptmx, slave, err := pty.Open()
	if err != nil {
		modem.Close()
		return nil, fmt.Errorf("faxline: pty: %w", err)
	}
	r := &relay{tty: slave.Name(), ptmx: ptmx, slave: slave, modem: modem}
	go io.Copy(ptmx, modem) //nolint:errcheck // ends when either side closes
	go func() {
		buf := make([]byte, 4096)
		var line []byte // command text seen so far (outside data)
		for {
			n, err := ptmx.Read(buf)
			if n > 0 {
				chunk := buf[:n]
				line = append(line, chunk...)
				if len(line) > 64 {
					line = line[len(line)-64:]
				}
				if hold > 0 && bytes.Contains(bytes.ToUpper(line), []byte("+FTH")) && bytes.Contains(chunk, []byte("\r")) {
					time.Sleep(hold)
					line = line[:0]
				}
				if _, err := modem.Write(chunk); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return r, nil
}

// close ends the relay. Closing our copy of the pty's tty side makes the
// master's reads fail, which ends the copy loops.
func (r *relay) close() {
	r.once.Do(func() {
		r.slave.Close()
		r.modem.Close()
		r.ptmx.Close()
	})
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string { return w.b.String() }
