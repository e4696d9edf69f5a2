// Package graphbox watches one mail folder through Microsoft Graph: it lists
// unread messages (following @odata.nextLink), fetches each as MIME with
// /$value, and on settlement marks it read, moves or deletes it (ack) or
// records the reason and moves it to the failed folder (reject). Throttling
// (429, 503) is honoured with Retry-After, or a default pause without it.
package graphbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/internal/healthhub"
	"github.com/mediagw/mediagw/plugin/o365/token"
)

// ActionKind is what an ack does.
type ActionKind int

const (
	ActionRead ActionKind = iota + 1
	ActionMove
	ActionDelete
)

// Action is the after_processing setting.
type Action struct {
	Kind   ActionKind
	Folder string
}

// ReasonProperty is the single-value extended property (a named MAPI string
// property) that holds the reason on a rejected message.
const ReasonProperty = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name mediagw.reject_reason"

// Errors a Graph call can end with.
var (
	ErrUnreachable = errors.New("graphbox: cannot reach Microsoft Graph")
	ErrForbidden   = errors.New("graphbox: Graph refused access to the mailbox")
	ErrNotFound    = errors.New("graphbox: mailbox or folder not found")
	ErrToken       = errors.New("graphbox: Graph refused the token")
)

// Options configure a Mailbox.
type Options struct {
	Endpoint          string // https://graph.microsoft.com
	User              string
	Folder            string // "INBOX", a well-known name, or a path like "Inbox/Fax"
	HTTPClient        *http.Client
	Token             func(ctx context.Context) (token.Token, error)
	PollInterval      time.Duration
	AfterProcessing   Action
	FailedFolder      string
	MaxMessageSize    int64
	PageSize          int
	DefaultRetryAfter time.Duration // when 429/503 comes without Retry-After
	MaxRetries        int
	Logger            *slog.Logger
}

// APIError is an error answer from Graph.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("graphbox: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Unwrap maps the status to the package's error kinds.
func (e *APIError) Unwrap() error {
	switch {
	case e.Status == http.StatusUnauthorized:
		return ErrToken
	case e.Status == http.StatusForbidden:
		return ErrForbidden
	case e.Status == http.StatusNotFound, e.Code == "ErrorInvalidUser", e.Code == "MailboxNotEnabledForRESTAPI":
		return ErrNotFound
	}
	return nil
}

type delivery struct {
	id string
}

// Mailbox is one watched Graph folder.
type Mailbox struct {
	opts Options
	log  *slog.Logger
	base string // endpoint + /v1.0/users/{user}

	out  chan *plugin.Message
	wake chan struct{}

	folderMu sync.Mutex
	mu       sync.Mutex
	folders  map[string]string // display path → id
	inflight map[string]delivery
	offered  map[string]string // message id → delivery id
	deferred map[string]time.Time
	settled  map[string]time.Time // acked or rejected: a scan listed before may still hold them
	health   *healthhub.Hub

	seq       atomic.Uint64
	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
	started   atomic.Bool
}

// New makes a Mailbox; it does not connect.
func New(opts Options) (*Mailbox, error) {
	if opts.Endpoint == "" || opts.User == "" || opts.Token == nil {
		return nil, errors.New("graphbox: Endpoint, User and Token are required")
	}
	if opts.Folder == "" {
		opts.Folder = "INBOX"
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Minute
	}
	if opts.AfterProcessing.Kind == 0 {
		opts.AfterProcessing.Kind = ActionRead
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 50
	}
	if opts.DefaultRetryAfter <= 0 {
		opts.DefaultRetryAfter = 5 * time.Second
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 6
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Mailbox{
		opts:     opts,
		log:      opts.Logger,
		base:     strings.TrimSuffix(opts.Endpoint, "/") + "/v1.0/users/" + url.PathEscape(opts.User),
		out:      make(chan *plugin.Message),
		wake:     make(chan struct{}, 1),
		folders:  map[string]string{},
		inflight: map[string]delivery{},
		offered:  map[string]string{},
		deferred: map[string]time.Time{},
		settled:  map[string]time.Time{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		health:   healthhub.New(plugin.HealthStarting, ""),
	}, nil
}

// do sends one request with a fresh token, waiting out throttling. out, when
// not nil, receives the decoded JSON answer.
func (m *Mailbox) do(ctx context.Context, method, u string, body any, out any) error {
	resp, err := m.send(ctx, method, u, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("graphbox: %s %s: decode: %w", method, redactURL(u), err)
	}
	return nil
}

// send returns a 2xx response (the caller closes its body).
func (m *Mailbox) send(ctx context.Context, method, u string, body any) (*http.Response, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		tok, err := m.opts.Token(ctx)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok.Value.Reveal())
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := m.opts.HTTPClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		if resp.StatusCode/100 == 2 {
			return resp, nil
		}
		if (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable ||
			resp.StatusCode == http.StatusGatewayTimeout) && attempt < m.opts.MaxRetries {
			wait := RetryAfter(resp.Header.Get("Retry-After"), m.opts.DefaultRetryAfter)
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			m.log.Info("graphbox: throttled; waiting", "status", resp.StatusCode, "wait", wait)
			select {
			case <-time.After(wait):
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		defer resp.Body.Close()
		ae := &APIError{Status: resp.StatusCode}
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &eb) == nil {
			ae.Code, ae.Message = eb.Error.Code, eb.Error.Message
		}
		return nil, ae
	}
}

// RetryAfter reads a Retry-After header (seconds or an HTTP date); def
// applies when it is missing or unreadable. The result is capped at 5 min.
func RetryAfter(h string, def time.Duration) time.Duration {
	h = strings.TrimSpace(h)
	d := def
	if h != "" {
		if n, err := strconv.Atoi(h); err == nil && n >= 0 {
			d = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(h); err == nil {
			d = max(time.Until(t), 0)
		}
	}
	return min(d, 5*time.Minute)
}

func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// folderIDFor resolves a folder path ("INBOX", "Inbox/Fax", "Archive") to an
// id; create makes missing folders.
func (m *Mailbox) folderIDFor(ctx context.Context, path string, create bool) (string, error) {
	// One resolution at a time, so concurrent settlements create a folder once.
	m.folderMu.Lock()
	defer m.folderMu.Unlock()
	m.mu.Lock()
	id, ok := m.folders[path]
	m.mu.Unlock()
	if ok {
		return id, nil
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	parent := ""
	for i, name := range parts {
		if i == 0 && strings.EqualFold(name, "inbox") {
			var f struct {
				ID string `json:"id"`
			}
			if err := m.do(ctx, http.MethodGet, m.base+"/mailFolders/inbox", nil, &f); err != nil {
				return "", err
			}
			parent = f.ID
			continue
		}
		list := m.base + "/mailFolders"
		if parent != "" {
			list = m.base + "/mailFolders/" + url.PathEscape(parent) + "/childFolders"
		}
		q := url.Values{"$filter": {"displayName eq '" + strings.ReplaceAll(name, "'", "''") + "'"}}
		var res struct {
			Value []struct {
				ID string `json:"id"`
			} `json:"value"`
		}
		if err := m.do(ctx, http.MethodGet, list+"?"+q.Encode(), nil, &res); err != nil {
			return "", err
		}
		if len(res.Value) > 0 {
			parent = res.Value[0].ID
			continue
		}
		if !create {
			return "", fmt.Errorf("%w: folder %q", ErrNotFound, path)
		}
		var f struct {
			ID string `json:"id"`
		}
		if err := m.do(ctx, http.MethodPost, list, map[string]any{"displayName": name}, &f); err != nil {
			return "", fmt.Errorf("graphbox: create folder %s: %w", name, err)
		}
		m.log.Info("graphbox: created folder", "folder", name)
		parent = f.ID
	}
	m.mu.Lock()
	m.folders[path] = parent
	m.mu.Unlock()
	return parent, nil
}

// listUnread returns the ids of unread messages in the folder, oldest first.
func (m *Mailbox) listUnread(ctx context.Context, folderID string) ([]listed, error) {
	q := url.Values{
		"$filter":  {"isRead eq false"},
		"$select":  {"id,receivedDateTime"},
		"$orderby": {"receivedDateTime asc"},
		"$top":     {strconv.Itoa(m.opts.PageSize)},
	}
	next := m.base + "/mailFolders/" + url.PathEscape(folderID) + "/messages?" + q.Encode()
	var out []listed
	for next != "" {
		var page struct {
			Value    []listed `json:"value"`
			NextLink string   `json:"@odata.nextLink"`
		}
		if err := m.do(ctx, http.MethodGet, next, nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Value...)
		next = page.NextLink
	}
	return out, nil
}

type listed struct {
	ID       string    `json:"id"`
	Received time.Time `json:"receivedDateTime"`
}

// Probe resolves the folder and counts unread messages, for a settings test.
func (m *Mailbox) Probe(ctx context.Context) (int, error) {
	id, err := m.folderIDFor(ctx, m.opts.Folder, false)
	if err != nil {
		return 0, err
	}
	l, err := m.listUnread(ctx, id)
	return len(l), err
}

// Read returns the next message.
func (m *Mailbox) Read(ctx context.Context) (*plugin.Message, error) {
	m.startOnce.Do(func() {
		select {
		case <-m.stop:
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
	}
}

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
	failures := 0
	for {
		err := m.scan(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := m.opts.PollInterval
		if err != nil {
			failures++
			m.log.Warn("graphbox: scan failed", "err", err)
			m.setHealth(plugin.HealthDegraded, err.Error())
			wait = min(wait, time.Duration(failures)*time.Second)
		} else {
			failures = 0
			m.setHealth(plugin.HealthHealthy, "watching "+m.opts.Folder)
		}
		m.mu.Lock()
		now := time.Now()
		for _, t := range m.deferred {
			wait = min(wait, max(t.Sub(now), 0))
		}
		m.mu.Unlock()
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-m.wake:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

// scan offers every unread message not yet offered.
func (m *Mailbox) scan(ctx context.Context) error {
	fid, err := m.folderIDFor(ctx, m.opts.Folder, false)
	if err != nil {
		return err
	}
	listedAt := time.Now()
	list, err := m.listUnread(ctx, fid)
	if err != nil {
		return err
	}
	m.mu.Lock()
	present := make(map[string]bool, len(list))
	for _, l := range list {
		present[l.ID] = true
	}
	for id, t := range m.settled {
		if !present[id] && t.Before(listedAt) {
			delete(m.settled, id)
		}
	}
	m.mu.Unlock()
	for _, l := range list {
		m.mu.Lock()
		_, busy := m.offered[l.ID]
		if _, done := m.settled[l.ID]; done {
			busy = true
		}
		if t, ok := m.deferred[l.ID]; ok && !busy {
			if time.Now().Before(t) {
				busy = true
			} else {
				delete(m.deferred, l.ID)
			}
		}
		m.mu.Unlock()
		if busy {
			continue
		}
		resp, err := m.send(ctx, http.MethodGet, m.base+"/messages/"+url.PathEscape(l.ID)+"/$value", nil)
		if err != nil {
			var ae *APIError
			if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
				continue // gone meanwhile
			}
			return err
		}
		limit := m.opts.MaxMessageSize
		if limit <= 0 {
			limit = 1 << 40
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		did := "g" + strconv.FormatUint(m.seq.Add(1), 10)
		m.mu.Lock()
		m.inflight[did] = delivery{id: l.ID}
		m.offered[l.ID] = did
		m.mu.Unlock()
		if int64(len(raw)) > limit {
			m.log.Warn("graphbox: message larger than max_message_size; moving it to the failed folder", "max", limit)
			if err := m.Settle(ctx, did, plugin.Settlement{Kind: plugin.Reject, Reason: fmt.Sprintf("message exceeds max_message_size %d", limit)}); err != nil {
				return err
			}
			continue
		}
		msg := &plugin.Message{
			DeliveryID: did,
			SourceID:   "graph:" + l.ID,
			Raw:        raw,
			Metadata:   map[string]string{"protocol": "graph", "mailbox": m.opts.User, "folder": m.opts.Folder, "graph_id": l.ID},
			ReceivedAt: l.Received,
		}
		select {
		case m.out <- msg:
		case <-ctx.Done():
			m.mu.Lock()
			delete(m.inflight, did)
			delete(m.offered, l.ID)
			m.mu.Unlock()
			return ctx.Err()
		}
	}
	return nil
}

// Settle applies the verdict on the server before returning. A failed call
// leaves the delivery open so that the host may settle it again.
func (m *Mailbox) Settle(ctx context.Context, deliveryID string, s plugin.Settlement) error {
	m.mu.Lock()
	d, ok := m.inflight[deliveryID]
	if ok && s.Kind == plugin.Retry {
		delete(m.inflight, deliveryID)
		delete(m.offered, d.id)
		m.deferred[d.id] = time.Now().Add(s.RetryAfter)
	}
	m.mu.Unlock()
	if !ok {
		return nil
	}
	msgURL := m.base + "/messages/" + url.PathEscape(d.id)
	var err error
	switch s.Kind {
	case plugin.Retry:
		select {
		case m.wake <- struct{}{}:
		default:
		}
		return nil
	case plugin.Ack:
		switch m.opts.AfterProcessing.Kind {
		case ActionMove:
			err = m.move(ctx, msgURL, m.opts.AfterProcessing.Folder)
		case ActionDelete:
			err = m.do(ctx, http.MethodDelete, msgURL, nil, nil)
		default:
			err = m.do(ctx, http.MethodPatch, msgURL, map[string]any{"isRead": true}, nil)
		}
	case plugin.Reject:
		err = m.do(ctx, http.MethodPatch, msgURL, map[string]any{
			"singleValueExtendedProperties": []map[string]string{{"id": ReasonProperty, "value": s.Reason}},
		}, nil)
		if err == nil {
			err = m.move(ctx, msgURL, m.opts.FailedFolder)
		}
	default:
		return fmt.Errorf("graphbox: unknown settlement %v", s.Kind)
	}
	var ae *APIError
	if err != nil && !(errors.As(err, &ae) && ae.Status == http.StatusNotFound) {
		return fmt.Errorf("graphbox: %s: %w", s.Kind, err)
	}
	m.mu.Lock()
	delete(m.inflight, deliveryID)
	delete(m.offered, d.id)
	m.settled[d.id] = time.Now()
	m.mu.Unlock()
	return nil
}

func (m *Mailbox) move(ctx context.Context, msgURL, folder string) error {
	fid, err := m.folderIDFor(ctx, folder, true)
	if err != nil {
		return err
	}
	return m.do(ctx, http.MethodPost, msgURL+"/move", map[string]string{"destinationId": fid}, nil)
}

// Health returns a channel of health changes, closed when ctx ends.
func (m *Mailbox) Health(ctx context.Context) <-chan plugin.Health { return m.health.Subscribe(ctx) }

func (m *Mailbox) setHealth(s plugin.HealthState, msg string) { m.health.Set(s, msg) }

// Close stops the watcher.
func (m *Mailbox) Close() error {
	m.stopOnce.Do(func() { close(m.stop) })
	if m.started.Load() {
		<-m.done
	}
	return nil
}
