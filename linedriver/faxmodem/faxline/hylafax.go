package faxline

import (
	"context"
	"fmt"
	"net"
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
UUCPLockDir: locks
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
	spool, err := l.hylafaxSpool(ctx, "hylafax")
	if err != nil {
		return nil, err
	}
	// faxgetty names its config after the device: /dev/ttyX is ttyX,
	// other paths have their slashes turned into underscores.
	devID := devID(l.DevB)
	ecm := "yes"
	if opts.NoECM {
		ecm = "no"
	}
	if opts.LocalID == "" {
		opts.LocalID = "+1 555 0002"
	}
	conf := fmt.Sprintf(hylafaxConfig, opts.LocalID, ecm)
	if err := os.WriteFile(filepath.Join(spool, "etc", "config."+devID), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	chownUUCP(spool)
	h := &HylaFAX{Spool: spool, devID: devID, log: &lockedBuffer{mu: &l.mu}, done: make(chan error, 1)}
	h.cmd = exec.CommandContext(ctx, bin, "-q", spool, l.DevB)
	h.cmd.Stdout, h.cmd.Stderr = h.log, h.log
	h.cmd.Cancel = func() error { return h.cmd.Process.Signal(unix.SIGTERM) }
	h.cmd.WaitDelay = 3 * time.Second
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("faxline: start faxgetty: %w", err)
	}
	go func() { h.done <- h.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(spool, "status", devID)); err == nil && strings.Contains(string(b), "Running and idle") {
			break
		}
		select {
		case err := <-h.done:
			return nil, fmt.Errorf("faxline: faxgetty ended: %v: %s", err, h.log.String())
		case <-ctx.Done():
			h.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			h.Close()
			return nil, fmt.Errorf("faxline: faxgetty not ready after 30 s: %s", h.Status())
		}
	}
	// faxgetty's modem setup hung up; iaxmodem refuses calls for 5 s.
	select {
	case <-time.After(6 * time.Second):
	case <-ctx.Done():
		h.Close()
		return nil, ctx.Err()
	}
	return h, nil
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

// hylafaxSpool makes a HylaFAX spool of the line's own under dir/name: a
// copy of the system's spool and configuration.
func (l *Line) hylafaxSpool(ctx context.Context, name string) (string, error) {
	const sys = "/var/spool/hylafax"
	if _, err := os.Stat(filepath.Join(sys, "bin")); err != nil {
		return "", fmt.Errorf("faxline: HylaFAX spool: %w", err)
	}
	spool := filepath.Join(l.Dir, name)
	if err := os.MkdirAll(spool, 0o755); err != nil {
		return "", err
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", sys+"/.", spool+"/").CombinedOutput(); err != nil {
		return "", fmt.Errorf("faxline: copy the HylaFAX spool: %v: %s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", "/etc/hylafax/.", filepath.Join(spool, "etc")+"/").CombinedOutput(); err != nil {
		return "", fmt.Errorf("faxline: copy the HylaFAX config: %v: %s", err, out)
	}
	if err := ownLocks(spool); err != nil {
		return "", err
	}
	return spool, nil
}

// chownUUCP gives the spool to uucp, as which HylaFAX's programs work.
func chownUUCP(spool string) {
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
}

// devID is HylaFAX's name for a device: /dev/ttyX is ttyX, other paths
// have their slashes turned into underscores.
func devID(dev string) string {
	return strings.ReplaceAll(strings.TrimPrefix(dev, "/dev/"), "/", "_")
}

// HylaFAXSender is HylaFAX sending from modem A: its queue manager faxq,
// its client-server daemon hfaxd on a free port of 127.0.0.1, and modem A
// made known to faxq as a send-only modem; Send submits with sendfax.
type HylaFAXSender struct {
	Spool string
	port  int
	procs []*exec.Cmd
	log   *lockedBuffer
	waits []chan error
}

// hylafaxSendConfig is faxsend's modem config for iaxmodem (Class 1);
// TagLineFont "" turns the tag line off, so pages go as they are.
const hylafaxSendConfig = `CountryCode: 1
AreaCode: 555
LongDistancePrefix: 1
InternationalPrefix: 011
DialStringRules: etc/dialrules
FAXNumber: +1.555.0001
LocalIdentifier: "+1 555 0001"
SessionTracing: 0xFFF
LogFileMode: 0644
ModemType: Class1
ModemRate: 115200
ModemFlowControl: rtscts
ModemResetCmds: ATH1
ModemReadyCmds: ATH0
Class1TMConnectDelay: 400
Class1ECMSupport: %s
TagLineFont: ""
`

// StartHylaFAXSender starts faxq and hfaxd with a spool of their own and
// tells faxq that modem A sends. Close stops them.
func (l *Line) StartHylaFAXSender(ctx context.Context, noECM bool) (*HylaFAXSender, error) {
	for _, b := range []string{"faxq", "hfaxd", "faxmodem", "sendfax"} {
		if _, err := exec.LookPath(b); err != nil {
			return nil, fmt.Errorf("faxline: %w", err)
		}
	}
	spool, err := l.hylafaxSpool(ctx, "hylafax-tx")
	if err != nil {
		return nil, err
	}
	ecm := "yes"
	if noECM {
		ecm = "no"
	}
	if err := os.WriteFile(filepath.Join(spool, "etc", "config."+devID(l.DevA)), []byte(fmt.Sprintf(hylafaxSendConfig, ecm)), 0o644); err != nil {
		return nil, err
	}
	chownUUCP(spool)
	port, err := freePortPair()
	if err != nil {
		return nil, err
	}
	h := &HylaFAXSender{Spool: spool, port: port, log: &lockedBuffer{mu: &l.mu}}
	start := func(args ...string) error {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = h.log, h.log
		cmd.Cancel = func() error { return cmd.Process.Signal(unix.SIGTERM) }
		cmd.WaitDelay = 3 * time.Second
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("faxline: start %s: %w", args[0], err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		h.procs, h.waits = append(h.procs, cmd), append(h.waits, done)
		return nil
	}
	if err := start("faxq", "-D", "-q", spool); err != nil {
		return nil, err
	}
	if err := start("hfaxd", "-d", "-q", spool, "-l", "127.0.0.1", "-i", strconv.Itoa(port)); err != nil {
		h.Close()
		return nil, err
	}
	// faxq takes the modem once its FIFO is there
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := exec.CommandContext(ctx, "faxmodem", "-q", spool, devID(l.DevA)).CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			h.Close()
			return nil, fmt.Errorf("faxline: faxmodem: %v: %s\n%s", err, out, h.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			h.Close()
			return nil, fmt.Errorf("faxline: hfaxd not listening: %v\n%s", err, h.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return h, nil
}

// Send submits files (TIFF) to number with sendfax: no cover page, fine
// resolution, no mail; noECM adds -E.
func (h *HylaFAXSender) Send(ctx context.Context, number string, noECM bool, files ...string) (string, error) {
	args := []string{"-h", fmt.Sprintf("127.0.0.1:%d", h.port), "-n", "-N", "-m", "-t", "1"}
	if noECM {
		args = append(args, "-E")
	}
	args = append(args, "-d", number)
	cmd := exec.CommandContext(ctx, "sendfax", append(args, files...)...)
	cmd.Env = append(os.Environ(), "FAXUSER=faxline")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("faxline: sendfax: %v: %s", err, out)
	}
	return string(out), nil
}

// Logs returns what faxq and hfaxd printed and HylaFAX's session logs.
func (h *HylaFAXSender) Logs() string {
	var b strings.Builder
	b.WriteString(h.log.String())
	m, _ := filepath.Glob(filepath.Join(h.Spool, "log", "c*"))
	for _, f := range m {
		x, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "--- %s\n%s", filepath.Base(f), x)
	}
	return b.String()
}

// Close stops faxq and hfaxd.
func (h *HylaFAXSender) Close() error {
	for i, p := range h.procs {
		p.Process.Signal(unix.SIGTERM) //nolint:errcheck // it may have ended
		select {
		case <-h.waits[i]:
		case <-time.After(5 * time.Second):
			p.Process.Kill() //nolint:errcheck // did not stop
			<-h.waits[i]
		}
	}
	h.procs = nil
	return nil
}
