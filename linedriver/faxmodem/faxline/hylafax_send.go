package faxline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// freePortPair finds a port for hfaxd on 127.0.0.1 whose port below is
// free too: like an FTP server, hfaxd opens a job's data connection from
// its control port minus one ("425 Cannot create data socket" when that
// one is taken).
func freePortPair() (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("faxline: free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		below, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port-1))
		ln.Close()
		if err == nil {
			below.Close()
			return port, nil
		}
	}
	return 0, errors.New("faxline: no two free ports in a row")
}

// ownLocks makes the spool keep its UUCP lock files in a folder of its own:
// they are named after the device's base name (LCK..ttyIAXB), so lines
// running at once would lock each other out in /var/lock. The setting is
// read by faxq and, from etc/config, by faxgetty and faxsend.
func ownLocks(spool string) error {
	locks := filepath.Join(spool, "locks")
	if err := os.MkdirAll(locks, 0o755); err != nil {
		return fmt.Errorf("faxline: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(spool, "etc", "config"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("faxline: %w", err)
	}
	_, err = fmt.Fprintf(f, "\nUUCPLockDir: %s\n", locks)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("faxline: %w", err)
	}
	return nil
}

// ErrJobFailed is a HylaFAX job that ended other than done.
var ErrJobFailed = errors.New("faxline: HylaFAX job failed")

var requestID = regexp.MustCompile(`request id is (\d+)`)

// JobID reads the job id from what sendfax printed ("request id is 5").
func JobID(sendfaxOut string) (string, error) {
	m := requestID.FindStringSubmatch(sendfaxOut)
	if m == nil {
		return "", fmt.Errorf("faxline: sendfax: no request id in %q", sendfaxOut)
	}
	return m[1], nil
}

// Wait waits until job is in doneq and returns how long its call took, from
// the dial to the session's end, as HylaFAX's session log times them.
func (h *HylaFAXSender) Wait(ctx context.Context, job string) (time.Duration, error) {
	q := filepath.Join(h.Spool, "doneq", "q"+job)
	for {
		b, err := os.ReadFile(q)
		if err == nil {
			info := string(b)
			if !strings.Contains(info, "\nstate:7\n") {
				status := regexp.MustCompile(`(?m)^status:(.*)$`).FindStringSubmatch(info)
				return 0, fmt.Errorf("%w: %v", ErrJobFailed, status)
			}
			return callTime(h.sessionLogs())
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("faxline: job %s not done: %w (%s)", job, ctx.Err(), h.log.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// sessionLogs is the sender's session logs (log/c*).
func (h *HylaFAXSender) sessionLogs() string {
	m, _ := filepath.Glob(filepath.Join(h.Spool, "log", "c*"))
	var b strings.Builder
	for _, f := range m {
		x, _ := os.ReadFile(f)
		b.Write(x)
	}
	return b.String()
}

var logStamp = regexp.MustCompile(`(?m)^(\w{3} [ \d]\d \d\d:\d\d:\d\d\.\d+): `)

// callTime is the time from the DIAL line of a session log to its last
// line.
func callTime(logs string) (time.Duration, error) {
	i := strings.Index(logs, ": DIAL ")
	if i < 0 {
		return 0, errors.New("faxline: no DIAL in HylaFAX's session log")
	}
	start := strings.LastIndex(logs[:i], "\n") + 1
	stamps := logStamp.FindAllStringSubmatch(logs[start:], -1)
	if len(stamps) < 2 {
		return 0, errors.New("faxline: no times in HylaFAX's session log")
	}
	a, err := time.Parse("Jan _2 15:04:05", stamps[0][1])
	if err != nil {
		return 0, fmt.Errorf("faxline: session log time: %w", err)
	}
	z, err := time.Parse("Jan _2 15:04:05", stamps[len(stamps)-1][1])
	if err != nil {
		return 0, fmt.Errorf("faxline: session log time: %w", err)
	}
	return z.Sub(a), nil
}
