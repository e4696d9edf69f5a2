// Package imapbox watches one IMAP folder with XOAUTH2 logins and offers each
// unseen message once until the host settles it.
//
// Nothing changes on the server before a settlement: messages are found with
// UID SEARCH UNSEEN and read with UID FETCH BODY.PEEK[]. An ack marks the
// message \Seen, moves it, or deletes it (as configured); a reject moves it to
// the failed folder (created when missing); a retry leaves it and offers it
// again later. Settlements are recorded in a small state file first and
// applied in batches, so a restart applies them rather than offering the
// messages again. New mail is noticed with IDLE, or by polling.
package imapbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mediagw/mediagw/internal/backoff"
	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/internal/healthhub"
	"github.com/mediagw/mediagw/plugin/o365/token"
	"github.com/mediagw/mediagw/plugin/o365/xoauth2"
)

// ActionKind is what an ack does to a message.
type ActionKind int

const (
	ActionSeen ActionKind = iota + 1
	ActionMove
	ActionDelete
)

// Action is the after_processing setting.
type Action struct {
	Kind   ActionKind
	Folder string // for ActionMove
}

// Errors a connection attempt can end with (besides token errors).
var (
	ErrDial     = errors.New("imapbox: cannot reach the IMAP server")
	ErrAuth     = errors.New("imapbox: the IMAP server refused the token")
	ErrNoFolder = errors.New("imapbox: folder not found")
)

// Options configure a Mailbox.
type Options struct {
	Addr      string // host:port of the IMAPS server
	User      string // mailbox address (SASL user)
	Folder    string
	TLSConfig *tls.Config
	// Dial opens the TCP connection (through a proxy when configured).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Token returns an access token; called before every connection.
	Token func(ctx context.Context) (token.Token, error)
	// InvalidateToken, when set, is called after the server refused a
	// token, so that the next connection gets a new one, not a cached one.
	InvalidateToken func()

	Idle            bool
	PollInterval    time.Duration
	AfterProcessing Action
	FailedFolder    string
	MaxMessageSize  int64
	ConnectTimeout  time.Duration
	// StatePath is the state file; "" keeps state in memory only.
	StatePath string
	// RejectLogPath, when set, gets one JSON line per rejected message
	// (time, source id, Message-ID, folder, reason): IMAP keeps no reason.
	RejectLogPath string
	BatchSize     int
	BackoffMin    time.Duration
	BackoffMax    time.Duration
	Logger        *slog.Logger
}

func (o *Options) defaults() {
	if o.Folder == "" {
		o.Folder = "INBOX"
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Minute
	}
	if o.AfterProcessing.Kind == 0 {
		o.AfterProcessing.Kind = ActionSeen
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 50
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Dial == nil {
		d := &net.Dialer{}
		o.Dial = d.DialContext
	}
}

type delivery struct {
	uidValidity uint32
	uid         imap.UID
	messageID   string
}

// Mailbox is one watched folder. Read, Settle and Close may be called from
// different goroutines.
type Mailbox struct {
	opts Options
	log  *slog.Logger

	out  chan *plugin.Message
	wake chan struct{} // settlements or retries to look at

	mu       sync.Mutex
	st       state
	inflight map[string]delivery      // delivery id → message
	settling map[string]chan struct{} // delivery id → closed when applied
	offered  map[imap.UID]string      // uid → delivery id (current uidvalidity)
	deferred map[imap.UID]time.Time
	flushed  chan struct{} // closed and replaced when Pending empties
	health   *healthhub.Hub

	// Saves of the state for settlements are shared: see persist.
	saveMu             sync.Mutex
	saveCond           *sync.Cond
	saving             bool
	saveWant, saveDone uint64
	saveErr            error

	seq       atomic.Uint64
	startOnce sync.Once
	stop      chan struct{}
	stopOnce  sync.Once
	done      chan struct{}
	started   atomic.Bool
}

// New makes a Mailbox; it does not connect.
func New(opts Options) (*Mailbox, error) {
	opts.defaults()
	if opts.Addr == "" || opts.User == "" || opts.Token == nil {
		return nil, errors.New("imapbox: Addr, User and Token are required")
	}
	st, err := loadState(opts.StatePath)
	if err != nil {
		return nil, err
	}
	m := &Mailbox{
		opts:     opts,
		log:      opts.Logger,
		out:      make(chan *plugin.Message),
		wake:     make(chan struct{}, 1),
		st:       st,
		inflight: map[string]delivery{},
		settling: map[string]chan struct{}{},
		offered:  map[imap.UID]string{},
		deferred: map[imap.UID]time.Time{},
		flushed:  make(chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		health:   healthhub.New(plugin.HealthStarting, ""),
	}
	m.saveCond = sync.NewCond(&m.saveMu)
	return m, nil
}

// persist saves the state and returns once a save that began after the call
// is on disk, so it holds the caller's change. Concurrent callers share one
// save (one fsync): while a save runs, the changes made meanwhile wait and go
// together in the next.
func (m *Mailbox) persist() error {
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	m.saveWant++
	mine := m.saveWant
	for m.saveDone < mine {
		if m.saving {
			m.saveCond.Wait()
			continue
		}
		m.saving = true
		upTo := m.saveWant
		m.saveMu.Unlock()
		m.mu.Lock()
		err := saveState(m.opts.StatePath, m.st)
		m.mu.Unlock()
		m.saveMu.Lock()
		m.saving = false
		m.saveDone, m.saveErr = upTo, err
		m.saveCond.Broadcast()
	}
	return m.saveErr
}

// Read returns the next message, starting the watcher on first use.
func (m *Mailbox) Read(ctx context.Context) (*plugin.Message, error) {
	m.startOnce.Do(func() {
		select {
		case <-m.stop:
			close(m.done)
			return
		default:
		}
		m.started.Store(true)
		go m.run()
	})
	select {
	case msg := <-m.out:
		return msg, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-m.stop:
		return nil, plugin.ErrClosed
	case <-m.done:
		return nil, plugin.ErrClosed
	}
}

// Settle records the host's verdict and waits until the server applied it
// (or ctx ends: the record stays and is applied when the server is back; it
// survives a restart when a state file is set).
func (m *Mailbox) Settle(ctx context.Context, deliveryID string, s plugin.Settlement) error {
	m.mu.Lock()
	applied, waiting := m.settling[deliveryID]
	d, ok := m.inflight[deliveryID]
	save := false
	switch {
	case waiting:
		// Settled before and not applied yet: wait for it again.
	case !ok:
		m.mu.Unlock()
		return nil // settled already, or from before a UIDVALIDITY change or restart
	case s.Kind == plugin.Retry:
		delete(m.inflight, deliveryID)
		delete(m.offered, d.uid)
		m.deferred[d.uid] = time.Now().Add(s.RetryAfter)
		m.mu.Unlock()
		m.poke()
		return nil
	case s.Kind == plugin.Ack || s.Kind == plugin.Reject:
		delete(m.inflight, deliveryID)
		applied = make(chan struct{})
		m.settling[deliveryID] = applied
		m.st.Pending = append(m.st.Pending, pendingSettle{UIDValidity: d.uidValidity, UID: d.uid, Kind: s.Kind, Reason: s.Reason,
			SourceID:  "imap:" + strconv.FormatUint(uint64(d.uidValidity), 10) + ":" + strconv.FormatUint(uint64(d.uid), 10),
			MessageID: d.messageID, applied: applied, deliveryID: deliveryID})
		save = true
	default:
		m.mu.Unlock()
		return fmt.Errorf("imapbox: unknown settlement %v", s.Kind)
	}
	m.mu.Unlock()
	if save {
		if err := m.persist(); err != nil {
			m.log.Warn("imapbox: state not saved; the message may be offered again after a restart", "err", err)
		}
	}
	m.poke()
	select {
	case <-applied:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("imapbox: settlement recorded, not yet applied on the server: %w", ctx.Err())
	}
}

func (m *Mailbox) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Flush waits until every ack and reject so far is applied on the server.
func (m *Mailbox) Flush(ctx context.Context) error {
	for {
		m.mu.Lock()
		n, ch := len(m.st.Pending), m.flushed
		m.mu.Unlock()
		if n == 0 {
			return nil
		}
		m.poke()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("imapbox: flush: %w", ctx.Err())
		}
	}
}

// Health returns a channel of health changes, closed when ctx ends.
func (m *Mailbox) Health(ctx context.Context) <-chan plugin.Health { return m.health.Subscribe(ctx) }

func (m *Mailbox) setHealth(s plugin.HealthState, msg string) { m.health.Set(s, msg) }

// Close stops the watcher. Settlements not yet applied stay in the state
// file (when one is set) and are applied by the next run.
func (m *Mailbox) Close() error {
	m.stopOnce.Do(func() { close(m.stop) })
	if m.started.Load() {
		<-m.done
	}
	return nil
}

// run keeps a session going until Close.
func (m *Mailbox) run() {
	defer close(m.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	attempt := 0
	var lastExpired time.Time
	for {
		s, err := m.connect(ctx)
		if err == nil {
			attempt = 0
			m.setHealth(plugin.HealthHealthy, "watching "+m.opts.Folder)
			err = s.serve(ctx)
			s.close()
			if bye := s.bye.Bye(); ctx.Err() == nil && isTokenExpired(bye) {
				// Exchange Online: "* BYE Session invalidated -
				// AccessTokenExpired". MSAL may still hold that token as
				// valid (it renews five minutes before the expiry it was
				// told, clocks differ), so drop its cache and log in again at
				// once; a second such end within a minute takes the backoff.
				m.log.Info("imapbox: access token expired; reconnecting with a fresh token", "server", bye)
				if m.opts.InvalidateToken != nil {
					m.opts.InvalidateToken()
				}
				if time.Since(lastExpired) > time.Minute {
					lastExpired = time.Now()
					continue
				}
				err = fmt.Errorf("imapbox: the server ended the session again for an expired token: %s", bye)
			}
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errReconnect) {
			m.log.Info("imapbox: reconnecting for a fresh token")
			continue
		}
		attempt++
		d := backoff.Policy{Min: m.opts.BackoffMin, Max: m.opts.BackoffMax, Jitter: true}.Delay(attempt)
		m.log.Warn("imapbox: session ended; reconnecting", "err", err, "in", d.Round(time.Millisecond).String())
		m.setHealth(plugin.HealthDegraded, err.Error())
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
	}
}

var errReconnect = errors.New("imapbox: reconnect")

type session struct {
	m        *Mailbox
	c        *imapclient.Client
	newMail  chan struct{}
	tokenExp time.Time
	tokenAt  time.Time
	uidValid uint32
	created  map[string]bool
	done     chan struct{}
	bye      *byeConn // the connection, noting an untagged BYE's text
	ready    atomic.Bool

	numMessages uint32
}

// Probe connects, logs in and selects the folder once, for a settings test.
// It returns what it saw: message count, unseen count and UIDVALIDITY.
func (m *Mailbox) Probe(ctx context.Context) (ProbeResult, error) {
	s, err := m.connect(ctx)
	if err != nil {
		return ProbeResult{}, err
	}
	defer s.close()
	res := ProbeResult{UIDValidity: s.uidValid, Messages: s.numMessages}
	data, err := s.c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil {
		return res, fmt.Errorf("imapbox: search: %w", err)
	}
	res.Unseen = len(data.AllUIDs())
	return res, nil
}

// ProbeResult is what Probe saw.
type ProbeResult struct {
	Messages    uint32
	Unseen      int
	UIDValidity uint32
}

func (m *Mailbox) connect(ctx context.Context) (*session, error) {
	tok, err := m.opts.Token(ctx)
	if err != nil {
		return nil, err
	}
	m.log.Debug("imapbox: token in hand; connecting", "addr", m.opts.Addr, "user", m.opts.User, "token_expires", tok.ExpiresOn.Format(time.RFC3339))
	cctx, cancel := context.WithTimeout(ctx, m.opts.ConnectTimeout)
	defer cancel()
	raw, err := m.opts.Dial(cctx, "tcp", m.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDial, err)
	}
	tc := m.opts.TLSConfig.Clone()
	if tc == nil {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		host, _, _ := net.SplitHostPort(m.opts.Addr)
		tc.ServerName = host
	}
	conn := tls.Client(raw, tc)
	if err := conn.HandshakeContext(cctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("%w: TLS: %w", ErrDial, err)
	}
	s := &session{m: m, newMail: make(chan struct{}, 1), tokenExp: tok.ExpiresOn, tokenAt: time.Now(), created: map[string]bool{}, done: make(chan struct{}),
		bye: &byeConn{Conn: conn}}
	s.c = imapclient.New(s.bye, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case s.newMail <- struct{}{}:
					default:
					}
				}
			},
		},
	})
	// The connect deadline, and later ctx, end the session by closing it.
	go func() {
		select {
		case <-cctx.Done():
			if ctx.Err() != nil || !s.ready.Load() {
				s.c.Close()
				return
			}
		case <-s.done:
			return
		}
		select {
		case <-ctx.Done():
			s.c.Close()
		case <-s.done:
		}
	}()
	fail := func(err error) (*session, error) {
		if cerr := cctx.Err(); cerr != nil {
			err = fmt.Errorf("%w (%w)", err, cerr)
		}
		s.close()
		return nil, err
	}
	if err := s.c.WaitGreeting(); err != nil {
		return fail(fmt.Errorf("%w: greeting: %w", ErrDial, err))
	}
	sc := xoauth2.New(m.opts.User, tok.Value.Reveal())
	if err := s.c.Authenticate(sc); err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && (ie.Type == imap.StatusResponseTypeNo || ie.Code == imap.ResponseCodeAuthenticationFailed) {
			if m.opts.InvalidateToken != nil {
				m.opts.InvalidateToken()
			}
			return fail(fmt.Errorf("%w: %s", ErrAuth, ie.Text))
		}
		return fail(fmt.Errorf("%w: authenticate: %w", ErrDial, err))
	}
	sel, err := s.c.Select(m.opts.Folder, nil).Wait()
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			return fail(fmt.Errorf("%w: %s: %s", ErrNoFolder, m.opts.Folder, ie.Text))
		}
		return fail(fmt.Errorf("imapbox: select %s: %w", m.opts.Folder, err))
	}
	s.uidValid, s.numMessages = sel.UIDValidity, sel.NumMessages
	m.log.Debug("imapbox: logged in and selected", "folder", m.opts.Folder, "messages", sel.NumMessages, "uidvalidity", sel.UIDValidity, "uidnext", uint32(sel.UIDNext))
	s.ready.Store(true)
	m.noteSelect(sel)
	return s, nil
}

// tokenMargin is how long before its token expires a session reconnects:
// two minutes, or a quarter of the token's life for short-lived tokens.
func (s *session) tokenMargin() time.Duration {
	return min(2*time.Minute, s.tokenExp.Sub(s.tokenAt)/4)
}

func (s *session) close() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	s.c.Close()
}

// noteSelect compares UIDVALIDITY with the saved state: when it changed, the
// UIDs we know mean other messages now, so everything about them is dropped.
func (m *Mailbox) noteSelect(sel *imap.SelectData) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st.UIDValidity != 0 && m.st.UIDValidity != sel.UIDValidity {
		m.log.Warn("imapbox: UIDVALIDITY changed; unsettled messages will be offered again under new ids",
			"folder", m.opts.Folder, "old", m.st.UIDValidity, "new", sel.UIDValidity)
	}
	if m.st.UIDValidity != sel.UIDValidity {
		clear(m.inflight)
		clear(m.offered)
		clear(m.deferred)
		m.st.Pending = slices.DeleteFunc(m.st.Pending, func(p pendingSettle) bool {
			if p.UIDValidity != sel.UIDValidity {
				m.finishLocked(p)
				return true
			}
			return false
		})
		m.notifyFlushedLocked()
	}
	m.st.UIDValidity, m.st.UIDNext = sel.UIDValidity, sel.UIDNext
	if err := saveState(m.opts.StatePath, m.st); err != nil {
		m.log.Warn("imapbox: state not saved", "err", err)
	}
}

// finishLocked releases a Settle waiting for p.
func (m *Mailbox) finishLocked(p pendingSettle) {
	if p.applied != nil {
		select {
		case <-p.applied:
		default:
			close(p.applied)
		}
	}
	delete(m.settling, p.deliveryID)
}

func (m *Mailbox) notifyFlushedLocked() {
	if len(m.st.Pending) == 0 {
		close(m.flushed)
		m.flushed = make(chan struct{})
	}
}

// serve runs one session: apply settlements, find and offer messages, wait.
func (s *session) serve(ctx context.Context) error {
	m := s.m
	var ready []*plugin.Message
	// While the host takes the messages fetched, they are offered one after
	// the other; the settlements made meanwhile are applied together (one
	// STORE, one save of the state) once an offer would wait or none is left.
	apply := true
	for {
		if apply {
			if err := s.applySettlements(); err != nil {
				return err
			}
		}
		apply = true
		if len(ready) == 0 {
			var err error
			ready, err = s.fetchNew()
			if err != nil {
				return err
			}
		}
		if len(ready) > 0 {
			msg := ready[0]
			uid := msg.Metadata["uid"]
			u, _ := strconv.ParseUint(uid, 10, 32)
			m.mu.Lock()
			m.inflight[msg.DeliveryID] = delivery{uidValidity: s.uidValid, uid: imap.UID(u), messageID: headerValue(msg.Raw, "Message-Id")}
			m.offered[imap.UID(u)] = msg.DeliveryID
			m.mu.Unlock()
			select {
			case m.out <- msg:
				ready = ready[1:]
				apply = len(ready) == 0
				continue
			default:
			}
			select {
			case m.out <- msg:
				ready = ready[1:]
				apply = len(ready) == 0
			case <-m.wake:
				s.unoffer(msg, imap.UID(u))
			case <-s.c.Closed():
				s.unoffer(msg, imap.UID(u))
				return fmt.Errorf("imapbox: connection closed")
			case <-ctx.Done():
				s.unoffer(msg, imap.UID(u))
				return ctx.Err()
			}
			continue
		}
		if err := s.wait(ctx); err != nil {
			return err
		}
	}
}

// unoffer takes back a message that was not handed over.
func (s *session) unoffer(msg *plugin.Message, uid imap.UID) {
	s.m.mu.Lock()
	delete(s.m.inflight, msg.DeliveryID)
	delete(s.m.offered, uid)
	s.m.mu.Unlock()
}

// wait blocks until there may be something to do: new mail (IDLE), a
// settlement, a retry coming due, the poll interval, or a token about to
// expire (errReconnect).
func (s *session) wait(ctx context.Context) error {
	m := s.m
	timeout := m.opts.PollInterval
	m.mu.Lock()
	now := time.Now()
	for _, t := range m.deferred {
		if d := t.Sub(now); d < timeout {
			timeout = max(d, 0)
		}
	}
	pending := len(m.st.Pending)
	m.mu.Unlock()
	if pending > 0 {
		return nil
	}
	idle := m.opts.Idle && (s.c.Caps().Has(imap.CapIdle) || s.c.Caps().Has(imap.CapIMAP4rev2))
	if idle && !s.tokenExp.IsZero() {
		// A server ends sessions whose token expired; reconnect with a fresh
		// one rather than idle past it.
		left := time.Until(s.tokenExp) - s.tokenMargin()
		if left <= 0 {
			return errReconnect
		}
		timeout = min(timeout, left)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var cmd *imapclient.IdleCommand
	if idle {
		var err error
		if cmd, err = s.c.Idle(); err != nil {
			return fmt.Errorf("imapbox: idle: %w", err)
		}
	}
	var err error
	select {
	case <-s.newMail:
	case <-m.wake:
	case <-timer.C:
	case <-s.c.Closed():
		err = errors.New("imapbox: connection closed")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if cmd != nil {
		if cerr := cmd.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("imapbox: idle: %w", cerr)
		}
		if werr := cmd.Wait(); werr != nil && err == nil {
			err = fmt.Errorf("imapbox: idle: %w", werr)
		}
	}
	if err == nil && idle && !s.tokenExp.IsZero() && time.Until(s.tokenExp) < s.tokenMargin() {
		return errReconnect
	}
	return err
}

// fetchNew searches for unseen messages not yet offered and fetches a batch.
func (s *session) fetchNew() ([]*plugin.Message, error) {
	m := s.m
	data, err := s.c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("imapbox: search: %w", err)
	}
	m.mu.Lock()
	skip := map[imap.UID]bool{}
	for _, p := range m.st.Pending {
		skip[p.UID] = true
	}
	now := time.Now()
	var uids []imap.UID
	for _, uid := range data.AllUIDs() {
		if _, ok := m.offered[uid]; ok || skip[uid] {
			continue
		}
		if t, ok := m.deferred[uid]; ok {
			if now.Before(t) {
				continue
			}
			delete(m.deferred, uid)
		}
		uids = append(uids, uid)
	}
	m.mu.Unlock()
	if len(uids) == 0 {
		return nil, nil
	}
	slices.Sort(uids)
	if len(uids) > m.opts.BatchSize {
		uids = uids[:m.opts.BatchSize]
	}
	want := uids
	if m.opts.MaxMessageSize > 0 {
		sizes, err := s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
		if err != nil {
			return nil, fmt.Errorf("imapbox: fetch sizes: %w", err)
		}
		want = want[:0:0]
		for _, b := range sizes {
			if b.RFC822Size > m.opts.MaxMessageSize {
				m.log.Warn("imapbox: message larger than max_message_size; moving it to the failed folder",
					"uid", b.UID, "size", b.RFC822Size, "max", m.opts.MaxMessageSize)
				m.mu.Lock()
				m.st.Pending = append(m.st.Pending, pendingSettle{UIDValidity: s.uidValid, UID: b.UID, Kind: plugin.Reject, applied: make(chan struct{}),
					SourceID: "imap:" + strconv.FormatUint(uint64(s.uidValid), 10) + ":" + strconv.FormatUint(uint64(b.UID), 10),
					Reason:   fmt.Sprintf("message of %d bytes exceeds max_message_size %d", b.RFC822Size, m.opts.MaxMessageSize)})
				m.mu.Unlock()
				continue
			}
			want = append(want, b.UID)
		}
		if len(want) == 0 {
			return nil, nil
		}
	}
	section := &imap.FetchItemBodySection{Peek: true}
	bufs, err := s.c.Fetch(imap.UIDSetNum(want...), &imap.FetchOptions{
		UID: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{section},
	}).Collect()
	if err != nil {
		return nil, fmt.Errorf("imapbox: fetch: %w", err)
	}
	slices.SortFunc(bufs, func(a, b *imapclient.FetchMessageBuffer) int { return int(a.UID) - int(b.UID) })
	m.log.Debug("imapbox: fetched", "messages", len(bufs), "unseen_waiting", len(uids))
	msgs := make([]*plugin.Message, 0, len(bufs))
	var top imap.UID
	for _, b := range bufs {
		raw := b.FindBodySection(section)
		if raw == nil || b.UID == 0 {
			continue // expunged meanwhile
		}
		top = max(top, b.UID)
		uv, uid := strconv.FormatUint(uint64(s.uidValid), 10), strconv.FormatUint(uint64(b.UID), 10)
		msgs = append(msgs, &plugin.Message{
			DeliveryID: uv + ":" + uid + ":" + strconv.FormatUint(m.seq.Add(1), 10),
			SourceID:   "imap:" + uv + ":" + uid,
			Raw:        raw,
			Metadata:   map[string]string{"protocol": "imap", "mailbox": m.opts.User, "folder": m.opts.Folder, "uid": uid, "uidvalidity": uv},
			ReceivedAt: b.InternalDate,
		})
	}
	m.mu.Lock()
	if top+1 > m.st.UIDNext {
		m.st.UIDNext = top + 1
	}
	m.mu.Unlock()
	return msgs, nil
}

// applySettlements applies recorded acks and rejects in batches.
func (s *session) applySettlements() error {
	m := s.m
	m.mu.Lock()
	batch := slices.Clone(m.st.Pending)
	m.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	var acks, rejects []imap.UID
	for _, p := range batch {
		if p.UIDValidity != s.uidValid {
			continue
		}
		if p.Kind == plugin.Reject {
			m.log.Info("imapbox: rejected message moves to the failed folder", "uid", p.UID, "folder", m.opts.FailedFolder, "reason", p.Reason)
			rejects = append(rejects, p.UID)
		} else {
			acks = append(acks, p.UID)
		}
	}
	if len(acks) > 0 {
		set := imap.UIDSetNum(acks...)
		var err error
		switch m.opts.AfterProcessing.Kind {
		case ActionMove:
			// Processed mail reads as read in the target folder too.
			err = s.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
			if err == nil {
				err = s.move(set, m.opts.AfterProcessing.Folder)
			}
		case ActionDelete:
			err = s.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
			if err == nil {
				if s.c.Caps().Has(imap.CapUIDPlus) || s.c.Caps().Has(imap.CapIMAP4rev2) {
					err = s.c.UIDExpunge(set).Close()
				} else {
					err = s.c.Expunge().Close()
				}
			}
		default:
			err = s.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
		}
		if err != nil {
			return s.settleErr("ack", err, batch)
		}
	}
	if len(rejects) > 0 {
		// The reasons are on disk before the mails move: a crash between
		// the two leaves a reason for a mail still in the inbox (it is
		// moved, and its reason written again, next time), never a moved
		// mail without one.
		if err := m.logRejects(batch, s.uidValid); err != nil {
			m.log.Error("imapbox: reject log not written; the rejected messages move all the same", "err", err)
		}
		if err := s.move(imap.UIDSetNum(rejects...), m.opts.FailedFolder); err != nil {
			return s.settleErr("reject", err, batch)
		}
	}
	m.mu.Lock()
	done := map[pendingSettle]bool{}
	for _, p := range batch {
		done[p] = true
		if p.UIDValidity == s.uidValid {
			delete(m.offered, p.UID)
		}
	}
	m.st.Pending = slices.DeleteFunc(m.st.Pending, func(p pendingSettle) bool { return done[p] })
	for _, p := range batch {
		m.finishLocked(p)
	}
	if err := saveState(m.opts.StatePath, m.st); err != nil {
		m.log.Warn("imapbox: state not saved", "err", err)
	}
	m.notifyFlushedLocked()
	m.mu.Unlock()
	return nil
}

// settleErr keeps settlements for the next session on connection errors;
// a refusal from the server (NO/BAD) is logged and the batch dropped, so one
// bad message cannot block the rest forever. Settlements recorded after the
// batch was taken stay pending: they were never tried.
func (s *session) settleErr(what string, err error, batch []pendingSettle) error {
	var ie *imap.Error
	if !errors.As(err, &ie) {
		return fmt.Errorf("imapbox: %s: %w", what, err)
	}
	s.m.log.Error("imapbox: server refused to apply settlements; the messages stay where they are", "op", what, "err", err)
	s.m.mu.Lock()
	tried := make(map[pendingSettle]bool, len(batch))
	for _, p := range batch {
		tried[p] = true
		s.m.finishLocked(p)
	}
	s.m.st.Pending = slices.DeleteFunc(s.m.st.Pending, func(p pendingSettle) bool { return tried[p] })
	_ = saveState(s.m.opts.StatePath, s.m.st)
	s.m.notifyFlushedLocked()
	s.m.mu.Unlock()
	return nil
}

// beforeMove, when set by a test, is called just before a MOVE is sent.
var beforeMove func(folder string)

// move moves messages, creating the target folder when it is missing.
func (s *session) move(set imap.UIDSet, folder string) error {
	if !s.created[folder] {
		err := s.c.Create(folder, nil).Wait()
		var ie *imap.Error
		if err != nil && !(errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists) {
			return fmt.Errorf("create %s: %w", folder, err)
		}
		if err == nil {
			s.m.log.Info("imapbox: created folder", "folder", folder)
		}
		s.created[folder] = true
	}
	if beforeMove != nil {
		beforeMove(folder)
	}
	_, err := s.c.Move(set, folder).Wait()
	return err
}
