// Package dc09 is the "dc09" line driver: it sends each record's alarm
// signal to a monitoring centre's receiver over IP as ANSI/SIA DC-09
// (ADM-CID or SIA-DCS payloads, optionally AES-encrypted), waits for the
// receiver's ACK, and fails over from the primary to the backup receivers.
// It keeps the link supervised with NULL messages.
package dc09

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/alarm"
	"github.com/mediagw/mediagw/secret"
)

func init() { linedriver.Register("dc09", New) }

// Receiver is one receiver of the monitoring centre.
type Receiver struct {
	Address  string `json:"address"`  // host:port
	Receiver string `json:"receiver"` // R<receiver> in hex; "" omits it
	Line     string `json:"line"`     // L<line prefix> in hex; default "0"
}

// Options of the dc09 driver.
type Options struct {
	Protocol     string         `json:"protocol"`  // ADM-CID (default) or SIA-DCS
	Transport    string         `json:"transport"` // tcp (default) or udp
	Receivers    []Receiver     `json:"receivers"` // the first is the primary
	Key          secret.Secret  `json:"key"`       // AES key as hex; env:NAME or file:PATH
	AckTimeout   alarm.Duration `json:"ack_timeout"`
	Supervision  alarm.Duration `json:"supervision"`   // NULL message interval; 0: none
	Account      string         `json:"account"`       // account of NULL messages
	StateDir     string         `json:"state_dir"`     // sequence numbers; default var/dc09/<name>
	DefaultEvent string         `json:"default_event"` // for an alarm_event not in the table
	RetryAfter   alarm.Duration `json:"retry_after"`
	NAKResends   *int           `json:"nak_resends"` // resends after a NAK with the receiver's time; default 2
}

// Defaults, in one place.
const (
	defaultAckTimeout = 10 * time.Second
	defaultRetryAfter = 30 * time.Second
	defaultNAKResends = 2
)

// Driver sends DC-09 messages.
type Driver struct {
	name string
	o    Options
	key  []byte
	log  *slog.Logger
	now  func() time.Time

	mu     sync.Mutex // one message at a time; guards what follows
	links  []*link
	offset time.Duration // receiver clock minus ours, learnt from a NAK
	seqs   *seqStore
	last   time.Time // last traffic on the primary link

	superOnce sync.Once
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var (
	_ linedriver.Driver        = (*Driver)(nil)
	_ linedriver.StateSaver    = (*Driver)(nil)
	_ linedriver.BaseDirSetter = (*Driver)(nil)
	_ linedriver.Previewer     = (*Driver)(nil)
)

// New decodes options strictly. It opens no connection.
func New(name string, options json.RawMessage, logger *slog.Logger) (linedriver.Driver, error) {
	var o Options
	if err := linedriver.DecodeOptions(options, &o); err != nil {
		return nil, fmt.Errorf("dc09 driver %s: options: %w", name, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Driver{name: name, o: o, log: logger, now: time.Now, stop: make(chan struct{})}
	if err := d.validate(); err != nil {
		return nil, fmt.Errorf("dc09 driver %s: options: %w", name, err)
	}
	return d, nil
}

func isHex(s string) bool { return strings.Trim(strings.ToUpper(s), "0123456789ABCDEF") == "" }

func (d *Driver) validate() error {
	o := &d.o
	switch strings.ToUpper(o.Protocol) {
	case "", "ADM-CID":
		o.Protocol = "ADM-CID"
	case "SIA-DCS":
		o.Protocol = "SIA-DCS"
	default:
		return fmt.Errorf("protocol %q: want ADM-CID or SIA-DCS", o.Protocol)
	}
	switch strings.ToLower(o.Transport) {
	case "", "tcp":
		o.Transport = "tcp"
	case "udp":
		o.Transport = "udp"
	default:
		return fmt.Errorf("transport %q: want tcp or udp", o.Transport)
	}
	if len(o.Receivers) == 0 {
		return fmt.Errorf("receivers: give at least the primary receiver's address")
	}
	for i := range o.Receivers {
		r := &o.Receivers[i]
		if _, _, err := net.SplitHostPort(r.Address); err != nil {
			return fmt.Errorf("receivers[%d].address %q: want host:port", i, r.Address)
		}
		if r.Line == "" {
			r.Line = "0"
		}
		if len(r.Receiver) > 6 || !isHex(r.Receiver) {
			return fmt.Errorf("receivers[%d].receiver %q: want up to 6 hex digits", i, r.Receiver)
		}
		if len(r.Line) > 6 || !isHex(r.Line) {
			return fmt.Errorf("receivers[%d].line %q: want 1 to 6 hex digits", i, r.Line)
		}
		r.Receiver, r.Line = strings.ToUpper(r.Receiver), strings.ToUpper(r.Line)
		d.links = append(d.links, &link{rx: *r, transport: o.Transport})
	}
	if !o.Key.IsZero() {
		k, err := ParseKey(o.Key.Reveal())
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		d.key = k
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = alarm.Duration(defaultAckTimeout)
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = alarm.Duration(defaultRetryAfter)
	}
	if o.NAKResends == nil {
		n := defaultNAKResends
		o.NAKResends = &n
	}
	if o.Supervision < 0 {
		return fmt.Errorf("supervision: want a positive interval or 0 for none")
	}
	if o.Supervision > 0 {
		a := strings.ToUpper(o.Account)
		if len(a) < 3 || len(a) > 16 || !isHex(a) {
			return fmt.Errorf("account %q: supervision needs the account of its NULL messages, 3 to 16 hex digits", o.Account)
		}
		o.Account = a
	}
	if o.DefaultEvent != "" && !alarm.Known(o.DefaultEvent) {
		return fmt.Errorf("default_event %q is not a known event (%s or a Contact ID code)", o.DefaultEvent, strings.Join(alarm.Names(), ", "))
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join("var", "dc09", d.name)
	}
	return nil
}

// SetBaseDir makes a relative state_dir relative to the config's folder.
func (d *Driver) SetBaseDir(base string) {
	if !filepath.IsAbs(d.o.StateDir) {
		d.o.StateDir = filepath.Join(base, d.o.StateDir)
	}
}

func (d *Driver) Name() string { return d.name }

// Slots is 1: signals leave in order, one at a time, each with its sequence
// number.
var _ linedriver.Starter = (*Driver)(nil)

func (d *Driver) Slots() int { return 1 }

// Close stops the supervision and closes the links.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() { close(d.stop) })
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.links {
		l.close()
	}
	return nil
}

// Check refuses a record whose alarm fields make no signal.
func (d *Driver) Check(rec *linedriver.Record) error {
	_, err := d.signal(rec)
	return err
}

func (d *Driver) signal(rec *linedriver.Record) (alarm.Signal, error) {
	s, err := alarm.FromFields(rec.Fields, d.o.DefaultEvent)
	if err != nil {
		return s, err
	}
	if d.o.Protocol == "SIA-DCS" && s.SIA == "" {
		return s, fmt.Errorf("alarm: Contact ID event %03d has no SIA code in the table; name a SIA code or use protocol ADM-CID: %w", s.CID, alarm.ErrUnknownEvent)
	}
	return s, nil
}

// Preview is the message the record becomes, before the sequence number
// and timestamp are given (they are added when it is sent).
func (d *Driver) Preview(rec *linedriver.Record) (string, error) {
	s, err := d.signal(rec)
	if err != nil {
		return "", err
	}
	id := d.o.Protocol
	if d.key != nil {
		id = "*" + id + " (encrypted)"
	}
	out := fmt.Sprintf("%s [%s]", id, Payload(d.o.Protocol, s))
	if s.Text != "" {
		out += "[I" + s.Text + "]"
	}
	return out, nil
}

// Payload is the first data block of a signal, without brackets.
func Payload(protocol string, s alarm.Signal) string {
	if protocol == "SIA-DCS" {
		var b strings.Builder
		b.WriteString("#" + s.Account + "|N")
		if s.Partition > 0 {
			fmt.Fprintf(&b, "ri%d/", s.Partition)
		}
		if s.IsUser {
			fmt.Fprintf(&b, "id%d/", s.Zone)
		}
		fmt.Fprintf(&b, "%s%03d", s.SIA, s.Zone)
		return b.String()
	}
	return fmt.Sprintf("#%s|%d%03d %02d %03d", s.Account, s.Qualifier, s.CID, s.Partition, s.Zone)
}

// state is what a job keeps between attempts: the sequence number each
// receiver got, so that a resend (after a crash too) carries the same one.
type state struct {
	Seq map[string]int `json:"seq,omitempty"`
}

// Deliver sends one signal; see DeliverSaving.
func (d *Driver) Deliver(ctx context.Context, job *linedriver.Job, report func(linedriver.Progress)) linedriver.Outcome {
	return d.DeliverSaving(ctx, job, report, nil)
}

// DeliverSaving sends the job's signal to the primary receiver, then to each
// backup in turn, until one acknowledges it. The sequence number a receiver
// gets is saved before the message leaves.
func (d *Driver) DeliverSaving(ctx context.Context, job *linedriver.Job, report func(linedriver.Progress), save func(json.RawMessage) error) linedriver.Outcome {
	if report == nil {
		report = func(linedriver.Progress) {}
	}
	sig, err := d.signal(&job.Record)
	if err != nil {
		return linedriver.Fail("invalid", err.Error())
	}
	var st state
	if len(job.State) > 0 {
		_ = json.Unmarshal(job.State, &st) // a bad state only costs new numbers
	}
	if st.Seq == nil {
		st.Seq = map[string]int{}
	}
	var ext []string
	if sig.Text != "" {
		ext = append(ext, "I"+sig.Text)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var fails []string
	first := ""
	for i, l := range d.links {
		if ctx.Err() != nil {
			return linedriver.Retry("interrupted", "gateway stopping", 0)
		}
		key := l.key()
		seq, ok := st.Seq[key]
		if !ok {
			if seq, err = d.nextSeq(key); err != nil {
				return linedriver.Retry("io", err.Error(), time.Duration(d.o.RetryAfter))
			}
			st.Seq[key] = seq
			if save != nil {
				b, _ := json.Marshal(st)
				if err := save(b); err != nil {
					return linedriver.Retry("io", fmt.Sprintf("dc09: save state: %v", err), time.Duration(d.o.RetryAfter))
				}
			}
		}
		msg := Message{ID: d.o.Protocol, Seq: seq, Receiver: l.rx.Receiver, Line: l.rx.Line, Account: sig.Account,
			Data: Payload(d.o.Protocol, sig), Ext: ext}
		report(linedriver.Progress{Step: "sending", Detail: fmt.Sprintf("%s seq %04d to %s", d.o.Protocol, seq, l.rx.Address)})
		cat, reason := d.exchange(ctx, l, msg)
		if cat == "" {
			b, _ := json.Marshal(st)
			o := linedriver.Done(map[string]string{"receiver": l.rx.Address, "sequence": fmt.Sprintf("%04d", seq),
				"payload": msg.Data, "backup": strconv.FormatBool(i > 0)})
			o.State = b
			report(linedriver.Progress{Step: "acknowledged", Detail: l.rx.Address})
			return o
		}
		if first == "" {
			first = cat
		}
		fails = append(fails, fmt.Sprintf("%s: %s", l.rx.Address, reason))
		d.log.Warn("dc09: receiver did not acknowledge", "driver", d.name, "receiver", l.rx.Address, "category", cat, "reason", reason)
	}
	b, _ := json.Marshal(st)
	o := linedriver.Retry(first, strings.Join(fails, "; "), time.Duration(d.o.RetryAfter))
	o.State = b
	return o
}

// exchange sends msg and waits for its reply, resending after a NAK that
// gives the receiver's time. It returns "" when the receiver acknowledged,
// or a category (refused, unreachable, timeout, nak, duh) and a reason.
func (d *Driver) exchange(ctx context.Context, l *link, msg Message) (string, string) {
	naks := 0
	redialed := false
	for {
		msg.Time = d.now().Add(d.offset)
		b, err := msg.Encode(d.key, nil)
		if err != nil {
			return "invalid", err.Error()
		}
		r, err := l.roundTrip(ctx, b, msg.Seq, d.key, time.Duration(d.o.AckTimeout))
		if errors.Is(err, errStale) && !redialed {
			// A kept TCP connection the receiver had closed: dial again once.
			redialed = true
			continue
		}
		if err != nil {
			return classify(err), err.Error()
		}
		if l == d.links[0] {
			d.last = d.now()
		}
		switch r.Kind {
		case ACK:
			return "", ""
		case DUH:
			return "duh", "the receiver answered DUH (it does not take this message or account)"
		case NAK:
			if r.Time.IsZero() || naks >= *d.o.NAKResends {
				return "nak", fmt.Sprintf("the receiver answered NAK %d time(s)", naks+1)
			}
			naks++
			d.offset = r.Time.Sub(d.now())
			d.log.Info("dc09: NAK with the receiver's time; resending with its clock", "driver", d.name,
				"receiver", l.rx.Address, "offset", d.offset.Round(time.Second))
		}
	}
}

// Error categories of a round trip.
var (
	errTimeout = errors.New("dc09: no reply before ack_timeout")
	errStale   = errors.New("dc09: connection closed by the receiver")
)

func classify(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, errTimeout):
		return "timeout"
	}
	return "unreachable"
}

// link is the connection to one receiver.
type link struct {
	rx        Receiver
	transport string
	conn      net.Conn
	rd        *bufio.Reader
}

func (l *link) key() string {
	return strings.NewReplacer(":", "_", "/", "_", "[", "", "]", "").Replace(l.rx.Address)
}

func (l *link) close() {
	if l.conn != nil {
		l.conn.Close()
		l.conn, l.rd = nil, nil
	}
}

// roundTrip writes one message and reads replies until the one with its
// sequence number comes (a late reply to an earlier message is skipped).
func (l *link) roundTrip(ctx context.Context, msg []byte, seq int, key []byte, timeout time.Duration) (Reply, error) {
	reused := l.conn != nil
	if l.conn == nil {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		c, err := (&net.Dialer{}).DialContext(dctx, l.transport, l.rx.Address)
		timedOut := errors.Is(dctx.Err(), context.DeadlineExceeded)
		cancel()
		if err != nil {
			if timedOut && ctx.Err() == nil {
				return Reply{}, fmt.Errorf("dc09: connect %s: %w", l.rx.Address, errTimeout)
			}
			return Reply{}, fmt.Errorf("dc09: connect %s: %w", l.rx.Address, err)
		}
		l.conn, l.rd = c, bufio.NewReaderSize(c, 1024)
	}
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	l.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { l.conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := l.conn.Write(msg); err != nil {
		l.close()
		if reused {
			return Reply{}, errStale
		}
		return Reply{}, fmt.Errorf("dc09: send to %s: %w", l.rx.Address, err)
	}
	for {
		frame, err := l.readFrame()
		if err != nil {
			l.close()
			var ne net.Error
			switch {
			case ctx.Err() != nil:
				return Reply{}, ctx.Err()
			case errors.As(err, &ne) && ne.Timeout():
				return Reply{}, fmt.Errorf("dc09: %s: %w", l.rx.Address, errTimeout)
			case reused && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
				return Reply{}, errStale
			}
			return Reply{}, fmt.Errorf("dc09: read from %s: %w", l.rx.Address, err)
		}
		r, err := ParseReply(frame, key)
		if err != nil {
			continue // noise or a damaged reply: wait for a good one until the deadline
		}
		if r.Kind == NAK || r.Seq == seq {
			return r, nil
		}
	}
}

// readFrame reads one reply: up to CR for TCP, one datagram for UDP.
func (l *link) readFrame() ([]byte, error) {
	if l.transport == "udp" {
		buf := make([]byte, 2048)
		n, err := l.conn.Read(buf)
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	b, err := l.rd.ReadBytes('\r')
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i:]
	}
	if len(b) > 1024 {
		return nil, fmt.Errorf("dc09: reply too long")
	}
	return b, nil
}

// nextSeq hands out a receiver's next sequence number, 0001–9999, and
// keeps it in the state folder before it is used.
func (d *Driver) nextSeq(key string) (int, error) {
	if d.seqs == nil {
		d.seqs = &seqStore{dir: d.o.StateDir}
	}
	return d.seqs.next(key)
}

type seqStore struct{ dir string }

func (s *seqStore) next(key string) (int, error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return 0, fmt.Errorf("dc09: state folder: %w", err)
	}
	p := filepath.Join(s.dir, key+".seq")
	last := 0
	if b, err := os.ReadFile(p); err == nil {
		last, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("dc09: read sequence: %w", err)
	}
	n := last%9999 + 1
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err == nil {
		_, err = fmt.Fprintf(f, "%04d\n", n)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		return 0, fmt.Errorf("dc09: write sequence: %w", err)
	}
	return n, nil
}

// Start begins the supervision (linedriver.Starter): a NULL message to the
// primary receiver whenever the link has been quiet for the supervision
// interval, until Close.
func (d *Driver) Start() {
	if d.o.Supervision <= 0 {
		return
	}
	d.superOnce.Do(func() { alarm.KeepAlive(d.stop, &d.wg, time.Duration(d.o.Supervision), d.supervise) })
}

// supervise sends one NULL message if the primary link was quiet for every.
func (d *Driver) supervise(every time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.now().Sub(d.last) < every {
		return
	}
	l := d.links[0]
	seq, err := d.nextSeq(l.key())
	if err != nil {
		d.log.Warn("dc09: supervision", "driver", d.name, "err", err)
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
	msg := Message{ID: "NULL", Seq: seq, Receiver: l.rx.Receiver, Line: l.rx.Line, Account: d.o.Account}
	if cat, reason := d.exchange(ctx, l, msg); cat != "" {
		d.log.Warn("dc09: supervision message not acknowledged", "driver", d.name, "receiver", l.rx.Address, "category", cat, "reason", reason)
		d.last = d.now() // try again after the next interval, not at every tick
		return
	}
	d.log.Debug("dc09: supervision acknowledged", "driver", d.name, "receiver", l.rx.Address, "sequence", seq)
}
