// Package pipeline carries the messages of one connector through the gateway:
// read → dedupe → map → route → accept into the spool → settle. Every
// delivery is settled exactly once: ack once the spool holds its jobs, reject
// when no driver can ever take it, retry when the gateway cannot take it now.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mediagw/mediagw/host/activity"
	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/internal/backoff"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/plugin"
)

// Mapped is what a data map made of a message.
type Mapped struct {
	Fields    map[string]string
	Documents []linedriver.Document
	Skipped   []linedriver.Skipped // left out of Documents by the map
	Warnings  []string             // about the documents (e.g. characters no font has)
	Routes    []string             // driver names
	// Origin holds the headers a reply to the message needs; a Mapper sets
	// it also when it returns an error, as far as it could read them.
	Origin *linedriver.Origin
}

// Mapper turns a raw message into a record. An error means the message can
// never be mapped (it is rejected with the error's text).
type Mapper interface {
	Map(raw []byte) (*Mapped, error)
}

// Target is a driver a record can be routed to. Its dispatcher learns of
// the jobs accepted for it from the spool (Store.Wake), not from the
// pipeline.
type Target struct {
	Driver linedriver.Driver
}

// Pipeline is one connector's flow. Fields are set before Run.
type Pipeline struct {
	Connector   string // configured connector name
	Mapper      Mapper
	Targets     map[string]Target
	Routes      []string // used when the map chooses none
	Spool       spool.Store
	Log         *slog.Logger
	MaxInFlight int
	RetryAfter  time.Duration // for deferred messages (spool errors)
	// OnReject, when set, says which jobs a rejection brings about (its
	// delivery report). They are in the spool before the rejection is
	// settled; when the spool cannot take them the message is retried.
	OnReject func(rec *linedriver.Record, reason error) []spool.FollowUp
	// FollowedUp is called after OnReject's jobs were written.
	FollowedUp func()
}

// Run reads from src until ctx ends (returns nil) or src fails (returns the
// error, after every message in flight was settled or abandoned to the
// source's redelivery).
func (p *Pipeline) Run(ctx context.Context, src plugin.Connector) error {
	n := max(p.MaxInFlight, 1)
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	// running ends when Run returns: settlements still being retried give
	// up then (the stream is gone; the source offers those messages again).
	running, stop := context.WithCancel(ctx)
	defer wg.Wait()
	defer stop()
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		msg, err := src.Read(ctx)
		if err != nil {
			<-sem
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("connector %s: %w", p.Connector, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p.handle(running, src, msg)
		}()
	}
}

func (p *Pipeline) handle(running context.Context, src plugin.Connector, msg *plugin.Message) {
	ids := []slog.Attr{slog.String("source_id", msg.SourceID), slog.String("delivery", msg.DeliveryID)}
	activity.Log(p.Log, activity.Received, append(ids, slog.Int("bytes", len(msg.Raw)))...)
	// A message taken is spooled whole even while the pipeline stops.
	s, recordID, class := p.decide(context.WithoutCancel(running), msg, ids)
	s, err := p.settle(running, src, msg, s)
	if err != nil {
		// Not settled at the source: it offers the message again and the
		// spool's source ids keep the drivers from seeing it twice.
		p.Log.Warn("settle failed; the message will come again", "source_id", msg.SourceID, "settlement", s.Kind.String(), "error", err)
		return
	}
	switch s.Kind {
	case plugin.Ack:
		if recordID != "" {
			activity.Log(p.Log, activity.Accepted, append(ids, slog.String("record", recordID))...)
		}
	case plugin.Reject:
		activity.Log(p.Log, activity.Rejected, append(ids, slog.String("reason", s.Reason), slog.String("class", class))...)
	case plugin.Retry:
		activity.Log(p.Log, activity.Deferred, append(ids, slog.String("reason", s.Reason))...)
	}
}

// settle tells the source what became of a message and returns the
// settlement the source took. A settlement the source could not carry out
// (plugin.ErrSettleRefused: an unwritable processed folder, a lost IMAP
// session) is tried again with growing pauses while the stream lives (not
// once the plugin is gone, plugin.ErrStreamEnded: then the message comes
// again from the source): the message keeps its in-flight slot meanwhile,
// and settlements are idempotent. After settleFallbackAfter refusals of an
// ack or reject, the message is handed back as retry instead, so that a
// source that keeps refusing one kind of settlement cannot hold every slot:
// it offers the message again later, and dedupe acks it. Each try has a
// context of its own, so a gateway that is stopping still tells the source
// what it did with a message it took.
func (p *Pipeline) settle(running context.Context, src plugin.Connector, msg *plugin.Message, s plugin.Settlement) (plugin.Settlement, error) {
	try := func(s plugin.Settlement) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return src.Settle(ctx, msg.DeliveryID, s)
	}
	for tries := 1; ; tries++ {
		wait := settleRetry.Delay(tries)
		err := try(s)
		if err == nil || errors.Is(err, plugin.ErrClosed) || errors.Is(err, plugin.ErrStreamEnded) {
			return s, err
		}
		if tries >= settleFallbackAfter && s.Kind != plugin.Retry {
			back := plugin.Settlement{Kind: plugin.Retry, RetryAfter: wait,
				Reason: fmt.Sprintf("the source refused the %s %d times: %v", s.Kind, tries, err)}
			if rerr := try(back); rerr == nil {
				return back, nil
			}
		}
		p.Log.Warn("settle failed; trying again", "source_id", msg.SourceID, "settlement", s.Kind.String(), "error", err, "in", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-running.Done():
			t.Stop()
			return s, err
		case <-t.C:
		}
	}
}

// settleFallbackAfter is how many refusals of an ack or reject are tried
// before the message is handed back as retry (1+2+4+8 s of pauses).
const settleFallbackAfter = 5

var settleRetry = backoff.Policy{Min: time.Second, Max: time.Minute}

// Classes of rejection, for metrics and filters: the reason says more.
const (
	RejectMap          = "map"           // the data map refused the message
	RejectNoRoute      = "no_route"      // neither the map nor the connector names a driver
	RejectUnknownRoute = "unknown_route" // a route names a driver that is not configured
	RejectDriver       = "driver"        // the driver's Check refused the record
)

// decide maps, routes and spools a message and returns its settlement (and,
// for a rejection, its class).
func (p *Pipeline) decide(ctx context.Context, msg *plugin.Message, ids []slog.Attr) (plugin.Settlement, string, string) {
	retry := func(err error) (plugin.Settlement, string, string) {
		p.Spool.Deferred(err)
		return plugin.Settlement{Kind: plugin.Retry, Reason: err.Error(), RetryAfter: p.RetryAfter}, "", ""
	}
	var mapped *Mapped
	rec := linedriver.Record{ID: newID(), SourceID: msg.SourceID, Connector: p.Connector, Received: msg.ReceivedAt}
	if rec.Received.IsZero() {
		rec.Received = time.Now()
	}
	reject := func(class string, why error) (plugin.Settlement, string, string) {
		if p.OnReject != nil {
			if mapped != nil && rec.Origin == nil {
				rec.Origin = mapped.Origin
			}
			if f := p.OnReject(&rec, why); len(f) > 0 {
				n, err := p.Spool.Add(ctx, f)
				if err != nil {
					return retry(err)
				}
				if n > 0 && p.FollowedUp != nil {
					p.FollowedUp()
				}
			}
		}
		reason := why.Error()
		var d interface{ Detail() string } // a data map's rejection says where it looked
		if errors.As(why, &d) {
			reason = d.Detail()
		}
		return plugin.Settlement{Kind: plugin.Reject, Reason: reason}, "", class
	}
	if seen, err := p.Spool.Seen(ctx, p.Connector, msg.SourceID); err != nil {
		return retry(err)
	} else if seen {
		activity.Log(p.Log, activity.Duplicate, ids...)
		return plugin.Settlement{Kind: plugin.Ack, Reason: "already accepted"}, "", ""
	}

	mapped, err := p.mapSafely(msg.Raw)
	if err != nil {
		return reject(RejectMap, err)
	}
	names := make([]string, 0, len(mapped.Fields))
	for k := range mapped.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	shown := append(ids, slog.Int("fields", len(mapped.Fields)), slog.String("field_names", strings.Join(names, ",")),
		slog.String("summary", activity.Summary(mapped.Fields)), slog.Int("documents", len(mapped.Documents)))
	if mapped.Origin != nil && mapped.Origin.From != "" {
		shown = append(shown, slog.String("from", activity.Clip(mapped.Origin.From)))
	}
	activity.Log(p.Log, activity.Mapped, shown...)

	routes := mapped.Routes
	if len(routes) == 0 {
		routes = p.Routes
	}
	rec.Fields, rec.Documents, rec.Origin = mapped.Fields, mapped.Documents, mapped.Origin
	rec.Skipped, rec.Warnings = mapped.Skipped, mapped.Warnings
	if len(routes) == 0 {
		return reject(RejectNoRoute, errors.New("no route: the data map chose no line driver and the connector has no default route"))
	}
	var jobs []*linedriver.Job
	for _, name := range routes {
		t, ok := p.Targets[name]
		if !ok {
			return reject(RejectUnknownRoute, fmt.Errorf("route names line driver %q, which is not configured", name))
		}
		if err := t.Driver.Check(&rec); err != nil {
			return reject(RejectDriver, fmt.Errorf("%s: %w", name, err))
		}
		jobs = append(jobs, &linedriver.Job{ID: rec.ID + "." + name, Driver: name, Record: rec, Accepted: time.Now()})
	}
	activity.Log(p.Log, activity.Routed, append(ids, slog.String("record", rec.ID), slog.Any("drivers", routes))...)

	dup, err := p.Spool.Accept(ctx, p.Connector, msg.SourceID, jobs)
	if err != nil {
		return retry(err)
	}
	if dup {
		activity.Log(p.Log, activity.Duplicate, ids...)
		return plugin.Settlement{Kind: plugin.Ack, Reason: "already accepted"}, "", ""
	}
	return plugin.Settlement{Kind: plugin.Ack}, rec.ID, ""
}

// mapSafely turns a panic in a data map into a rejection: bad input must not
// take the gateway down.
func (p *Pipeline) mapSafely(raw []byte) (m *Mapped, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("data map failed on this message: %v", r)
		}
	}()
	m, err = p.Mapper.Map(raw)
	if err != nil {
		return m, err
	}
	if m == nil {
		err = errors.New("data map returned no record")
	}
	return m, err
}

// newID returns a sortable unique id: UTC time and 6 random bytes.
func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b[:])
}
