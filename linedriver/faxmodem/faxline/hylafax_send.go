package faxline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// HylaFAXSender is HylaFAX's sending side on modem A: faxq, hfaxd on a free
// port of 127.0.0.1 and faxgetty on A, in a spool of its own. Send submits
// a TIFF with sendfax, as a user would.
type HylaFAXSender struct {
	Spool string
	devID string
	port  int
	log   *lockedBuffer
	procs []*exec.Cmd
	dones []chan error
	once  sync.Once
}

// StartHylaFAXSender starts faxq, hfaxd and faxgetty on modem A and waits
// until the modem is idle and takes calls. opts.LocalID defaults to
// "+1 555 0001". Close stops them.
func (l *Line) StartHylaFAXSender(ctx context.Context, opts HylaFAXOptions) (*HylaFAXSender, error) {
	var bins [3]string
	for i, name := range []string{"faxq", "hfaxd", "faxgetty"} {
		b, err := exec.LookPath(name)
		if err != nil {
			return nil, fmt.Errorf("faxline: %w", err)
		}
		bins[i] = b
	}
	if opts.LocalID == "" {
		opts.LocalID = "+1 555 0001"
	}
	spool, devID, err := l.hylafaxSpool(ctx, "hylafax-send", l.DevA, opts)
	if err != nil {
		return nil, err
	}
	port, err := freeTCPPort()
	if err != nil {
		return nil, err
	}
	s := &HylaFAXSender{Spool: spool, devID: devID, port: port, log: &lockedBuffer{mu: &l.mu}}
	start := func(bin string, args ...string) (chan error, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = spool
		cmd.Stdout, cmd.Stderr = s.log, s.log
		cmd.Cancel = func() error { return cmd.Process.Signal(unix.SIGTERM) }
		cmd.WaitDelay = 3 * time.Second
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("faxline: start %s: %w", filepath.Base(bin), err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		s.procs = append(s.procs, cmd)
		s.dones = append(s.dones, done)
		return done, nil
	}
	if _, err := start(bins[0], "-q", spool, "-D"); err != nil {
		s.Close()
		return nil, err
	}
	if _, err := start(bins[1], "-q", spool, "-d", "-l", "127.0.0.1", "-i", strconv.Itoa(port)); err != nil {
		s.Close()
		return nil, err
	}
	done, err := start(bins[2], "-q", spool, l.DevA)
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := waitIdle(ctx, spool, devID, done, s.log); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func freeTCPPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("faxline: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Send submits file (TIFF) to number with sendfax (-n: no cover page; -m:
// fine) and returns the job id.
func (s *HylaFAXSender) Send(ctx context.Context, number, file string, fine bool) (string, error) {
	res := "-l"
	if fine {
		res = "-m"
	}
	// options before the destination: sendfax applies them to the ones after
	out, err := exec.CommandContext(ctx, "sendfax", "-h", fmt.Sprintf("127.0.0.1:%d", s.port), "-n", res, "-d", number, file).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("faxline: sendfax: %v: %s", err, out)
	}
	m := regexp.MustCompile(`request id is (\d+)`).FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("faxline: sendfax: no request id in %q", out)
	}
	return string(m[1]), nil
}

// ErrJobFailed is a HylaFAX job that ended other than done.
var ErrJobFailed = errors.New("faxline: HylaFAX job failed")

// Wait waits until job is in doneq and returns how long its call took, from
// the dial to the session's end, as HylaFAX's session log times them.
func (s *HylaFAXSender) Wait(ctx context.Context, job string) (time.Duration, error) {
	q := filepath.Join(s.Spool, "doneq", "q"+job)
	for {
		b, err := os.ReadFile(q)
		if err == nil {
			info := string(b)
			if !strings.Contains(info, "\nstate:7\n") {
				status := regexp.MustCompile(`(?m)^status:(.*)$`).FindStringSubmatch(info)
				return 0, fmt.Errorf("%w: %v", ErrJobFailed, status)
			}
			return s.callTime()
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("faxline: job %s not done: %w (%s)", job, ctx.Err(), s.log.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var logStamp = regexp.MustCompile(`(?m)^(\w{3} [ \d]\d \d\d:\d\d:\d\d\.\d+): `)

// callTime is the time from the DIAL line of the sender's session log to
// its last line.
func (s *HylaFAXSender) callTime() (time.Duration, error) {
	logs := s.SessionLogs()
	i := strings.Index(logs, ": DIAL ")
	if i < 0 {
		return 0, fmt.Errorf("faxline: no DIAL in HylaFAX's session log")
	}
	start := strings.LastIndex(logs[:i], "\n") + 1
	stamps := logStamp.FindAllStringSubmatch(logs[start:], -1)
	if len(stamps) < 2 {
		return 0, fmt.Errorf("faxline: no times in HylaFAX's session log")
	}
	parse := func(v string) (time.Time, error) { return time.Parse("Jan _2 15:04:05", v) }
	a, err := parse(stamps[0][1])
	if err != nil {
		return 0, fmt.Errorf("faxline: session log time: %w", err)
	}
	z, err := parse(stamps[len(stamps)-1][1])
	if err != nil {
		return 0, fmt.Errorf("faxline: session log time: %w", err)
	}
	return z.Sub(a), nil
}

// SessionLogs returns the sender's session logs (log/c*).
func (s *HylaFAXSender) SessionLogs() string {
	m, _ := filepath.Glob(filepath.Join(s.Spool, "log", "c*"))
	var b strings.Builder
	for _, f := range m {
		x, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "--- %s\n%s", filepath.Base(f), x)
	}
	return b.String()
}

// Log is what faxq, hfaxd and faxgetty wrote.
func (s *HylaFAXSender) Log() string { return s.log.String() }

// Close stops faxgetty, hfaxd and faxq; it may be called more than once.
func (s *HylaFAXSender) Close() error {
	s.once.Do(func() {
		for i := len(s.procs) - 1; i >= 0; i-- {
			s.procs[i].Process.Signal(unix.SIGTERM) //nolint:errcheck // it may have ended
			select {
			case <-s.dones[i]:
			case <-time.After(5 * time.Second):
				s.procs[i].Process.Kill() //nolint:errcheck // did not stop
				<-s.dones[i]
			}
		}
	})
	return nil
}
