// Package maildir is a connector that reads RFC 5322 files from a Maildir or
// from a plain directory of .eml files, as a local MTA (Postfix, Dovecot's
// LDA, fetchmail) delivers them.
//
// Ack moves the file to cur/ with the S flag (or to a processed folder),
// Reject moves it to a failure folder with a .reason file beside it, Retry
// leaves it in place and offers it again after the delay. Every move is an
// atomic rename followed by an fsync of both directories, so a crash at any
// point leaves each file either still waiting or settled.
package maildir

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/internal/healthhub"
)

// Version of the connector.
const Version = "0.1.0"

// SourcePrefix starts every SourceID.
const SourcePrefix = "maildir:"

var (
	_ plugin.Connector      = (*Connector)(nil)
	_ plugin.HealthReporter = (*Connector)(nil)
)

// errNotConfigured is returned by Read before a successful Configure.
var errNotConfigured = errors.New("maildir: not configured")

// Connector reads a Maildir or a directory of .eml files.
type Connector struct {
	log *slog.Logger

	mu         sync.Mutex
	cfg        Config
	configured bool
	lay        *layout // resolved by the first Read
	closed     bool
	closeCh    chan struct{}
	wake       chan struct{} // closed (and replaced) when a retried file is due at once
	prefix     string
	seq        uint64
	inflight   map[string]*delivery // by delivery id
	offered    map[string]bool      // file names in flight (or being loaded)
	retryAt    map[string]time.Time // file names held back by a retry
	queue      []string             // candidates from the last scan

	health *healthhub.Hub
}

type delivery struct {
	id, name, sourceID string
}

// New constructs a connector; it has no side effects.
func New(logger *slog.Logger) plugin.Connector {
	return newConnector(logger)
}

func newConnector(logger *slog.Logger) *Connector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	c := &Connector{
		log:      logger,
		closeCh:  make(chan struct{}),
		wake:     make(chan struct{}),
		prefix:   hex.EncodeToString(b[:]),
		inflight: map[string]*delivery{},
		offered:  map[string]bool{},
		retryAt:  map[string]time.Time{},
	}
	c.health = healthhub.New(plugin.HealthStarting, "not started")
	return c
}

// Info names the connector.
func (c *Connector) Info(context.Context) (plugin.Info, error) {
	caps := []string{"ack", "retry", "reject", "health"}
	if sc, _ := c.sendConfig(); sc != nil {
		caps = append(caps, plugin.CapabilitySend)
	}
	return plugin.Info{
		Name:         "maildir",
		Version:      Version,
		Description:  "reads RFC 5322 files from a Maildir or a directory of .eml files",
		Capabilities: caps,
	}, nil
}

// ConfigSchema lists the configuration keys.
func (c *Connector) ConfigSchema(context.Context) ([]plugin.ConfigField, error) {
	return append([]plugin.ConfigField(nil), schema...), nil
}

// Configure decodes and checks the configuration.
func (c *Connector) Configure(ctx context.Context, configJSON []byte) (plugin.Diagnostics, error) {
	cfg, diags := parseConfig(configJSON)
	if diags.HasErrors() {
		return diags, nil
	}
	if _, err := os.Stat(cfg.Path); err != nil {
		diags.Warnf("path", "%v (checked again when reading starts)", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lay != nil {
		return diags, errors.New("maildir: Configure after reading started")
	}
	c.cfg = cfg
	c.configured = true
	return diags, nil
}

// start resolves the folders and creates the processed and failed folders.
func (c *Connector) start() (*layout, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, plugin.ErrClosed
	}
	if c.lay != nil {
		return c.lay, nil
	}
	if !c.configured {
		return nil, errNotConfigured
	}
	l, err := detect(c.cfg)
	if err != nil {
		c.health.Set(plugin.HealthDown, err.Error())
		return nil, err
	}
	for _, d := range []string{l.processed, l.failed} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			err = fmt.Errorf("maildir: create %s: %w", d, err)
			c.health.Set(plugin.HealthDown, err.Error())
			return nil, err
		}
	}
	c.lay = l
	c.log.Info("maildir: reading", "format", l.format, "inbox", l.inbox, "processed", l.processed, "failed", l.failed)
	c.health.Set(plugin.HealthHealthy, "reading "+l.inbox)
	return l, nil
}

// Read returns the next waiting message.
func (c *Connector) Read(ctx context.Context) (*plugin.Message, error) {
	l, err := c.start()
	if err != nil {
		return nil, err
	}
	scanned := false
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, plugin.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		name, ok := c.nextLocked(time.Now())
		if ok {
			c.offered[name] = true // reserved while it loads
			c.mu.Unlock()
			m, err := c.load(l, name)
			if err != nil || m == nil {
				if err != nil {
					return nil, err
				}
				continue // gone, too big or unreadable: look at the next
			}
			return m, nil
		}
		if !scanned {
			c.mu.Unlock()
			c.rescan(l)
			scanned = true
			continue
		}
		wait := c.cfg.PollInterval
		now := time.Now()
		for _, at := range c.retryAt {
			if d := at.Sub(now); d < wait {
				wait = max(d, 0)
			}
		}
		wake := c.wake
		c.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-c.closeCh:
			t.Stop()
			return nil, plugin.ErrClosed
		case <-wake:
		case <-t.C:
		}
		t.Stop()
		scanned = false
	}
}

// nextLocked pops the first queued name that is neither in flight nor held
// back by a retry.
func (c *Connector) nextLocked(now time.Time) (string, bool) {
	for len(c.queue) > 0 {
		name := c.queue[0]
		c.queue = c.queue[1:]
		if c.offered[name] {
			continue
		}
		if at, ok := c.retryAt[name]; ok {
			if now.Before(at) {
				continue // found again by a scan once due
			}
			delete(c.retryAt, name)
		}
		return name, true
	}
	return "", false
}

// rescan lists the inbox and replaces the queue.
func (c *Connector) rescan(l *layout) {
	names, err := l.scan()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.health.Set(plugin.HealthDown, err.Error())
		c.log.Warn("maildir: scan failed", "err", err)
		return
	}
	c.health.Set(plugin.HealthHealthy, "reading "+l.inbox)
	if len(c.retryAt) > 0 {
		present := make(map[string]bool, len(names))
		for _, n := range names {
			present[n] = true
		}
		for n := range c.retryAt {
			if !present[n] {
				delete(c.retryAt, n)
			}
		}
	}
	q := names[:0]
	for _, n := range names {
		if !c.offered[n] {
			q = append(q, n)
		}
	}
	c.queue = q
}

// sourceID names a message for the host's dedupe. Maildir file names are
// unique by the Maildir rules. A folder of .eml files has no such rule: a
// drop folder may see "alarm.eml" again with new content, so the name is
// joined with a digest of the bytes — the same file read again after a crash
// keeps its id; a new file under an old name gets a new one.
func sourceID(format, name string, raw []byte) string {
	if format == FormatEML {
		sum := sha256.Sum256(raw)
		return SourcePrefix + name + "@" + hex.EncodeToString(sum[:8])
	}
	return SourcePrefix + baseName(name)
}

// load reads one reserved file and registers the delivery. It returns a nil
// message (and releases the reservation) when the file is gone, too big or
// unreadable; the error is only for a closed connector.
func (c *Connector) load(l *layout, name string) (*plugin.Message, error) {
	release := func(holdFor time.Duration) {
		c.mu.Lock()
		delete(c.offered, name)
		if holdFor > 0 {
			c.retryAt[name] = time.Now().Add(holdFor)
		}
		c.mu.Unlock()
	}
	p := filepath.Join(l.inbox, name)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		release(0) // settled or moved away by someone else meanwhile
		return nil, nil
	}
	if err != nil {
		c.log.Warn("maildir: cannot open message; trying again later", "file", name, "err", err)
		c.health.Set(plugin.HealthDegraded, fmt.Sprintf("cannot read %s: %v", name, err))
		release(10 * c.cfg.PollInterval)
		return nil, nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		release(10 * c.cfg.PollInterval)
		return nil, nil
	}
	var raw []byte
	limit := c.cfg.MaxMessageSize
	if err == nil && fi.Size() <= limit {
		raw, err = io.ReadAll(io.LimitReader(f, limit+1))
	}
	if err != nil {
		c.log.Warn("maildir: cannot read message; trying again later", "file", name, "err", err)
		c.health.Set(plugin.HealthDegraded, fmt.Sprintf("cannot read %s: %v", name, err))
		release(10 * c.cfg.PollInterval)
		return nil, nil
	}
	if size := max(fi.Size(), int64(len(raw))); size > limit {
		_ = f.Close()
		reason := fmt.Sprintf("maildir: message size %d bytes exceeds max_message_size %d bytes", size, limit)
		if err := c.reject(l, name, reason); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("maildir: cannot move an oversized message aside", "file", name, "err", err)
			release(10 * c.cfg.PollInterval)
			return nil, nil
		}
		c.log.Warn("maildir: rejected an oversized message", "file", name, "size", size, "max_message_size", limit)
		release(0)
		return nil, nil
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		delete(c.offered, name)
		return nil, plugin.ErrClosed
	}
	c.seq++
	d := &delivery{
		id:       c.prefix + "-" + strconv.FormatUint(c.seq, 10),
		name:     name,
		sourceID: sourceID(l.format, name, raw),
	}
	c.inflight[d.id] = d
	folder := "new"
	if l.format == FormatEML {
		folder = l.inbox
	}
	c.log.Debug("maildir: offered", "delivery_id", d.id, "source_id", d.sourceID, "size", len(raw))
	return &plugin.Message{
		DeliveryID: d.id,
		SourceID:   d.sourceID,
		Raw:        raw,
		Metadata: map[string]string{
			"format": l.format,
			"folder": folder,
			"file":   name,
			"path":   p,
			"size":   strconv.Itoa(len(raw)),
		},
		ReceivedAt: fi.ModTime(),
	}, nil
}

// Settle acks, retries or rejects one delivery. Settling an unknown or
// already settled delivery does nothing. When a move fails, the delivery
// stays open and the error is returned: Settle may be called again.
func (c *Connector) Settle(ctx context.Context, deliveryID string, s plugin.Settlement) error {
	if s.Kind != plugin.Ack && s.Kind != plugin.Retry && s.Kind != plugin.Reject {
		return fmt.Errorf("maildir: settle %s: unknown settlement %v", deliveryID, s.Kind)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return plugin.ErrClosed
	}
	d := c.inflight[deliveryID]
	if d == nil {
		c.mu.Unlock()
		return nil
	}
	delete(c.inflight, deliveryID)
	l := c.lay
	if s.Kind == plugin.Retry {
		delete(c.offered, d.name)
		if s.RetryAfter > 0 {
			c.retryAt[d.name] = time.Now().Add(s.RetryAfter)
		} else {
			delete(c.retryAt, d.name)
			c.queue = append(c.queue, d.name)
			close(c.wake)
			c.wake = make(chan struct{})
		}
		c.mu.Unlock()
		c.log.Debug("maildir: retry", "delivery_id", d.id, "source_id", d.sourceID, "retry_after", s.RetryAfter, "reason", s.Reason)
		return nil
	}
	c.mu.Unlock()

	var err error
	if s.Kind == plugin.Ack {
		err = c.ack(l, d.name)
	} else {
		err = c.reject(l, d.name, s.Reason)
	}
	if errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("maildir: the message vanished before it was settled", "delivery_id", d.id, "source_id", d.sourceID, "settlement", s.Kind)
		err = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.inflight[d.id] = d
		return fmt.Errorf("maildir: %v %s: %w", s.Kind, d.sourceID, err)
	}
	delete(c.offered, d.name)
	delete(c.retryAt, d.name)
	c.log.Debug("maildir: settled", "delivery_id", d.id, "source_id", d.sourceID, "settlement", s.Kind, "reason", s.Reason)
	return nil
}

// ack moves a message to the processed folder.
func (c *Connector) ack(l *layout, name string) error {
	src := filepath.Join(l.inbox, name)
	target := name
	if l.markSeen {
		target = seenName(name)
	}
	return move(src, l.processed, freeName(l.processed, target))
}

// reject writes the reason file and moves the message beside it.
func (c *Connector) reject(l *layout, name, reason string) error {
	src := filepath.Join(l.inbox, name)
	if _, err := os.Lstat(src); err != nil {
		return err
	}
	target := freeName(l.failed, name)
	if err := writeFileAtomic(l.failed, target+".reason", reasonText(reason)); err != nil {
		return fmt.Errorf("write reason: %w", err)
	}
	return move(src, l.failed, target)
}

// Close stops the connector. Unsettled messages stay where they are and are
// offered again by the next connector on the same folder.
func (c *Connector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.closeCh)
	c.inflight = map[string]*delivery{}
	c.health.Close()
	return nil
}

// Health reports health changes until ctx ends or the connector closes.
func (c *Connector) Health(ctx context.Context) <-chan plugin.Health {
	return c.health.Subscribe(ctx)
}
