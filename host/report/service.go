// Package report answers the person who sent a mail: when a line driver
// delivers a record or gives up on it, or the data map rejects the mail, a
// report job goes into the spool (in the same transaction as the outcome)
// and the connector that read the mail sends it back through its plugin.
//
// The package holds the loop and flood rules, the templates, the message
// writer and the built-in "report" line driver; the host wires it to the
// spool, the pipeline and the running plugins.
package report

import (
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mediagw/mediagw/datamap"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/plugin"
)

// DriverPrefix leads the name of each connector's report driver.
const DriverPrefix = "report:"

// DriverName is the name of the report driver of a connector: its jobs are
// queued under it and shown under it in status.
func DriverName(connector string) string { return DriverPrefix + connector }

// Config is one connector's notify section, ready to use.
type Config struct {
	Notify    *datamap.NotifySpec
	Templates Templates
}

// Counts are what became of the reports of one connector since start.
type Counts struct {
	Queued      int64 `json:"queued"`       // report jobs put in the spool
	Suppressed  int64 `json:"suppressed"`   // not made: the mail came from a machine or from us
	RateLimited int64 `json:"rate_limited"` // not made: the recipient had too many already
	Off         int64 `json:"off"`          // not made: the connector's plugin cannot send
	Sent        int64 `json:"sent"`         // accepted by the connector's submission server
	Failed      int64 `json:"failed"`       // refused for good
}

// Service decides which outcomes get a report and holds each connector's
// sender. It is safe for concurrent use.
type Service struct {
	log *slog.Logger
	// Now is the clock of the rate limits and report times; tests set it.
	Now func() time.Time

	mu    sync.Mutex
	conns map[string]*conn
	// changed is closed (and replaced) whenever a sender comes or goes.
	changed chan struct{}
}

type senderState int

const (
	senderUnknown senderState = iota // the plugin is not running (yet)
	senderReady
	senderOff // the plugin runs but cannot send
)

type conn struct {
	cfg     *Config
	limiter *Limiter
	sender  plugin.Sender
	state   senderState
	warned  bool
	counts  Counts
}

// NewService makes a service with no connectors.
func NewService(log *slog.Logger) *Service {
	return &Service{log: log, Now: time.Now, conns: map[string]*conn{}, changed: make(chan struct{})}
}

// SetConfigs replaces the notify sections (connector → config) after a
// (re)load. A connector whose rate limit did not change keeps its counts.
func (s *Service) SetConfigs(cfgs map[string]*Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, c := range s.conns {
		if _, ok := cfgs[name]; !ok {
			c.cfg = nil // its map no longer asks for reports
			if c.state == senderUnknown {
				delete(s.conns, name)
			}
		}
	}
	for name, cfg := range cfgs {
		c := s.conn(name)
		if c.cfg == nil || c.cfg.Notify.RateLimit != cfg.Notify.RateLimit {
			c.limiter = NewLimiter(cfg.Notify.RateLimit.Reports, cfg.Notify.RateLimit.Per)
		}
		c.cfg = cfg
	}
}

// Connectors lists the connectors with a notify section.
func (s *Service) Connectors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, c := range s.conns {
		if c.cfg != nil {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (s *Service) conn(name string) *conn {
	c := s.conns[name]
	if c == nil {
		c = &conn{}
		s.conns[name] = c
	}
	return c
}

// SetSender records the running plugin of a connector: snd is its sender
// (nil when it has none), canSend whether it advertises the send
// capability. Call it with (nil, false, false) when the plugin stops.
func (s *Service) SetSender(connector string, snd plugin.Sender, canSend, running bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
	c := s.conn(connector)
	switch {
	case !running:
		c.sender, c.state = nil, senderUnknown
	case canSend && snd != nil:
		c.sender, c.state = snd, senderReady
	default:
		c.sender, c.state = nil, senderOff
		if c.cfg != nil && !c.warned {
			c.warned = true
			s.log.Warn("reports for connector "+connector+" are off: its plugin cannot send", "connector", connector)
		}
	}
}

// Counts returns the counts per connector.
func (s *Service) Counts() map[string]Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Counts{}
	for name, c := range s.conns {
		if c.cfg != nil {
			out[name] = c.counts
		}
	}
	return out
}

// jobState is a report job's content, kept in the spool with the job: the
// message is written from it at each attempt, the same bytes each time.
type jobState struct {
	Event    string            `json:"event"`
	To       string            `json:"to"`
	Time     time.Time         `json:"time"`
	Attempts int               `json:"attempts,omitempty"`
	Category string            `json:"category,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	Field    string            `json:"field,omitempty"`
	Looked   []datamap.Tried   `json:"looked,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
	// The delivered job, for its pages: driver, job id, when it was accepted.
	Driver   string    `json:"driver,omitempty"`
	JobID    string    `json:"job,omitempty"`
	Accepted time.Time `json:"accepted,omitzero"`
}

// FollowUps returns the report job an attempt's outcome brings about, for
// the spool's Complete: none for a temporary outcome, for a report job, for a
// connector without notify, an event it does not ask for, or a mail that
// must not be answered.
func (s *Service) FollowUps(job *linedriver.Job, o linedriver.Outcome) []spool.FollowUp {
	if strings.HasPrefix(job.Driver, DriverPrefix) || strings.HasPrefix(job.Driver, MailPrefix) {
		return nil
	}
	st := jobState{Attempts: job.Attempt, Category: o.Category, Reason: o.Reason, Driver: job.Driver, JobID: job.ID, Accepted: job.Accepted}
	switch o.Result {
	case linedriver.Delivered:
		st.Event, st.Details = datamap.EventDelivered, maps.Clone(o.Details)
		st.Category, st.Reason = "", ""
	case linedriver.Permanent:
		st.Event = datamap.EventFailed
	default:
		return nil
	}
	return s.followUp(&job.Record, st, job.Record.ID+"/"+st.Event)
}

// Rejected returns the report job of a rejected mail, for spool.Add before
// the rejection is settled. It is keyed by the mail's source id, so the
// same mail offered again is not answered twice.
func (s *Service) Rejected(rec *linedriver.Record, why error) []spool.FollowUp {
	st := jobState{Event: datamap.EventRejected, Reason: why.Error()}
	var rej *datamap.Rejection
	if errors.As(why, &rej) {
		st.Field, st.Reason, st.Looked = rej.Field, rej.Reason, rej.Tried
	}
	return s.followUp(rec, st, "rejected/"+rec.SourceID)
}

func (s *Service) followUp(rec *linedriver.Record, st jobState, key string) []spool.FollowUp {
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conns[rec.Connector]
	if c == nil || c.cfg == nil || !slices.Contains(c.cfg.Notify.Events, st.Event) {
		return nil
	}
	n := c.cfg.Notify
	log := s.log.With("connector", rec.Connector, "record", rec.ID, "report", st.Event)
	if c.state == senderOff {
		// Said once when the plugin started; a job would only fail.
		c.counts.Off++
		return nil
	}
	if rec.Origin == nil {
		log.Info("no report: the message had no header to answer")
		return nil
	}
	if n.To == "sender" {
		if why := Suppressed(rec.Origin, ownAddresses(n, rec.Origin)); why != "" {
			c.counts.Suppressed++
			log.Info("no report: "+why, "from", rec.Origin.From)
			return nil
		}
		st.To = rec.Origin.ReplyTo
		if st.To == "" {
			st.To = rec.Origin.From
		}
	} else {
		// A fixed recipient (an operator) hears of machine-sent mail too,
		// but never of our own reports.
		if rec.Origin.Report != "" {
			c.counts.Suppressed++
			log.Info("no report: the message is a delivery report of this gateway")
			return nil
		}
		st.To = n.To
	}
	if !c.limiter.Allow(st.To, now) {
		c.counts.RateLimited++
		log.Warn("no report: rate limit reached for this recipient", "to", st.To,
			"limit", n.RateLimit.Reports, "per", n.RateLimit.Per.String())
		return nil
	}
	st.Time = now.UTC()
	state, err := json.Marshal(st)
	if err != nil {
		log.Error("no report: encode its state", "error", err)
		return nil
	}
	r := *rec
	r.Documents = nil
	if n.AttachPages && st.Event == datamap.EventDelivered {
		r.Documents = rec.Documents
	}
	c.counts.Queued++
	return []spool.FollowUp{{
		Namespace: DriverName(rec.Connector), Key: key,
		Job: &linedriver.Job{ID: rec.ID + ".report." + st.Event, Driver: DriverName(rec.Connector), Record: r, State: state, Accepted: now},
	}}
}

// ownAddresses are the addresses a report is never sent to: the gateway's
// own mailbox (the report's From) and the configured ones.
func ownAddresses(n *datamap.NotifySpec, o *linedriver.Origin) []string {
	own := append([]string{}, n.IgnoreSenders...)
	if n.From != "" {
		own = append(own, n.From)
	}
	if o.To != "" {
		own = append(own, o.To)
	}
	return own
}

// senderChanged returns a channel closed at the next SetSender.
func (s *Service) senderChanged() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// sender returns a connector's config and sender.
func (s *Service) sender(connector string) (*Config, plugin.Sender, senderState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conns[connector]
	if c == nil {
		return nil, nil, senderUnknown
	}
	return c.cfg, c.sender, c.state
}

func (s *Service) count(connector string, f func(*Counts)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.conns[connector]; c != nil {
		f(&c.counts)
	}
}
