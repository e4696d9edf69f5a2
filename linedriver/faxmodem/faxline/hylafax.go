package faxline

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// HylaFAX is HylaFAX's faxgetty answering on modem B with a spool of its
// own (a copy of the system's, so several can run at once and nothing of
// the machine's HylaFAX is touched). Received faxes land in Spool/recvq.
type HylaFAX struct {
	Spool string
	devID string
	cmd   *exec.Cmd
	log   *lockedBuffer
	done  chan error
	once  sync.Once
}

// hylafaxConfig is faxgetty's modem config for iaxmodem (Class 1).
// ECM is on: HylaFAX's DIS then offers 256-octet ECM frames and MMR.
const hylafaxConfig = `CountryCode: 1
AreaCode: 555
LongDistancePrefix: 1
InternationalPrefix: 011
DialStringRules: etc/dialrules
FAXNumber: +1.555.0002
LocalIdentifier: "%s"
SessionTracing: 0xFFF
RecvFileMode: 0644
LogFileMode: 0644
RingsBeforeAnswer: 1
ModemType: Class1
ModemRate: 115200
ModemFlowControl: rtscts
ModemResetCmds: "ATH1\nAT+VCID=1"
ModemReadyCmds: ATH0
Class1AdaptRecvCmd: AT+FAR=1
Class1TMConnectDelay: 400
Class1ECMSupport: %s
`

// HylaFAXOptions configure StartHylaFAX.
type HylaFAXOptions struct {
	LocalID string // CSI (default "+1 555 0002")
	NoECM   bool   // Class1ECMSupport: no
}

// StartHylaFAX starts faxgetty on modem B and waits until it has set the
// modem up and iaxmodem takes calls again. Close stops it.
func (l *Line) StartHylaFAX(ctx context.Context, opts HylaFAXOptions) (*HylaFAX, error) {
	bin, err := exec.LookPath("faxgetty")
	if err != nil {
		return nil, fmt.Errorf("faxline: %w", err)
	}
	spool, devID, err := l.hylafaxSpool(ctx, "hylafax", l.DevB, opts)
	if err != nil {
		return nil, err
	}
	h := &HylaFAX{Spool: spool, devID: devID, log: &lockedBuffer{mu: &l.mu}, done: make(chan error, 1)}
	h.cmd = exec.CommandContext(ctx, bin, "-q", spool, l.DevB)
	h.cmd.Stdout, h.cmd.Stderr = h.log, h.log
	h.cmd.Cancel = func() error { return h.cmd.Process.Signal(unix.SIGTERM) }
	h.cmd.WaitDelay = 3 * time.Second
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("faxline: start faxgetty: %w", err)
	}
	go func() { h.done <- h.cmd.Wait() }()
	if err := waitIdle(ctx, spool, devID, h.done, h.log); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// hylafaxSpool makes a HylaFAX spool of its own under the line's directory
// (a copy of the system's spool and of /etc/hylafax, owned by uucp) with a
// modem config for dev, and returns it with the device's id.
func (l *Line) hylafaxSpool(ctx context.Context, name, dev string, opts HylaFAXOptions) (spool, devID string, err error) {
	const sys = "/var/spool/hylafax"
	if _, err := os.Stat(filepath.Join(sys, "bin")); err != nil {
		return "", "", fmt.Errorf("faxline: HylaFAX spool: %w", err)
	}
	spool = filepath.Join(l.Dir, name)
	if err := os.MkdirAll(spool, 0o755); err != nil {
		return "", "", err
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", sys+"/.", spool+"/").CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("faxline: copy the HylaFAX spool: %v: %s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", "/etc/hylafax/.", filepath.Join(spool, "etc")+"/").CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("faxline: copy the HylaFAX config: %v: %s", err, out)
	}
	// faxgetty names its config after the device: /dev/ttyX is ttyX,
	// other paths have their slashes turned into underscores.
	devID = strings.ReplaceAll(strings.TrimPrefix(dev, "/dev/"), "/", "_")
	ecm := "yes"
	if opts.NoECM {
		ecm = "no"
	}
	if opts.LocalID == "" {
		opts.LocalID = "+1 555 0002"
	}
	// UUCP lock files are named after the device's base name (LCK..ttyIAXB),
	// so lines running at once would lock each other out in /var/lock: each
	// spool locks in a folder of its own (a scheduler parameter too).
	locks := filepath.Join(spool, "locks")
	if err := os.MkdirAll(locks, 0o755); err != nil {
		return "", "", err
	}
	lockConf := "UUCPLockDir: " + locks + "\n"
	conf := fmt.Sprintf(hylafaxConfig, opts.LocalID, ecm) + lockConf
	if err := os.WriteFile(filepath.Join(spool, "etc", "config."+devID), []byte(conf), 0o644); err != nil {
		return "", "", err
	}
	f, err := os.OpenFile(filepath.Join(spool, "etc", "config"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return "", "", err
	}
	_, err = f.WriteString("\n" + lockConf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", "", err
	}
	// HylaFAX works as uucp in its spool
	if u, err := user.Lookup("uucp"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		filepath.Walk(spool, func(p string, _ os.FileInfo, err error) error { //nolint:errcheck // best effort
			if err == nil {
				os.Lchown(p, uid, gid) //nolint:errcheck // best effort
			}
			return nil
		})
	}
	return spool, devID, nil
}

// waitIdle waits until faxgetty's status says "Running and idle", then 6 s
// more: faxgetty's modem setup hung up, and iaxmodem refuses calls for 5 s.
func waitIdle(ctx context.Context, spool, devID string, done <-chan error, log *lockedBuffer) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(spool, "status", devID)); err == nil && strings.Contains(string(b), "Running and idle") {
			break
		}
		select {
		case err := <-done:
			return fmt.Errorf("faxline: faxgetty ended: %v: %s", err, log.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(spool, "status", devID))
			return fmt.Errorf("faxline: faxgetty not ready after 30 s: %s %s", b, log.String())
		}
	}
	select {
	case <-time.After(6 * time.Second):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status is faxgetty's status line.
func (h *HylaFAX) Status() string {
	b, _ := os.ReadFile(filepath.Join(h.Spool, "status", h.devID))
	return strings.TrimSpace(string(b)) + "\n" + h.log.String()
}

// Received waits until faxgetty has filed a received fax, and the
// session ended, and returns its TIFF file.
func (h *HylaFAX) Received(ctx context.Context) (string, error) {
	for {
		m, _ := filepath.Glob(filepath.Join(h.Spool, "recvq", "fax*.tif"))
		if len(m) > 0 {
			if b, _ := os.ReadFile(filepath.Join(h.Spool, "status", h.devID)); strings.Contains(string(b), "Running and idle") {
				return m[0], nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("faxline: no fax received: %w (%s)", ctx.Err(), h.Status())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// SessionLogs returns HylaFAX's session logs (log/c*): every frame.
func (h *HylaFAX) SessionLogs() string {
	m, _ := filepath.Glob(filepath.Join(h.Spool, "log", "c*"))
	var b strings.Builder
	for _, f := range m {
		x, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "--- %s\n%s", filepath.Base(f), x)
	}
	return b.String()
}

// Close stops faxgetty; it may be called more than once.
func (h *HylaFAX) Close() error {
	h.once.Do(func() {
		h.cmd.Process.Signal(unix.SIGTERM) //nolint:errcheck // it may have ended
		select {
		case <-h.done:
		case <-time.After(5 * time.Second):
			h.cmd.Process.Kill() //nolint:errcheck // did not stop
			<-h.done
		}
	})
	return nil
}
