// Package inbound keeps the faxes the gateway receives: the host's
// linedriver.Inbound. Each page is on disk, fsync'd, before the receiver
// confirms it to the far end; when the call ends (or, after a crash, when
// the gateway starts again) the pages become one TIFF-F and one PDF in a
// record, routed by the config's inbound rules and accepted into the spool
// like a mail's record.
package inbound

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mediagw/mediagw/host/activity"
	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/report"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/faxtiff"
)

// Acceptor takes a record's jobs into the spool (spool.Spool's Accept):
// once per source id, so a call accepted just before a crash is not
// accepted again when its folder is found at the next start.
type Acceptor interface {
	Accept(ctx context.Context, connector, sourceID string, jobs []*linedriver.Job) (dup bool, err error)
}

// Store is the host's linedriver.Inbound. Its folder holds one folder per
// call in progress: call.json and page-001.tiff, page-002.tiff, …
type Store struct {
	dir    string
	spool  Acceptor
	router func() *Router
	log    *slog.Logger
	// Now is the clock of the records and mails; tests set it.
	Now func() time.Time

	mu sync.Mutex
	// active holds the calls between Begin and the end of End, by id: a
	// Page or End of another call under the same id (one whose Begin was
	// refused) touches nothing. A receiver may hand a copy of the call at
	// each step (its log grows meanwhile), so a call is known by its id,
	// line and start (sameCall), not by its pointer. Recover holds the
	// calls it finishes under recovering.
	active map[string]*linedriver.Call
}

// recovering marks, in Store.active, a call Recover is finishing.
var recovering = &linedriver.Call{}

// sameCall tells whether a and b are the same call: two calls with one id
// (a receiver's fault) differ in their line or start.
func sameCall(a, b *linedriver.Call) bool {
	return a != nil && b != nil && a != recovering && a.ID == b.ID && a.Device == b.Device && a.Started.Equal(b.Started)
}

var _ linedriver.Inbound = (*Store)(nil)

// ErrCall is wrapped by the errors of calls the store cannot take (a bad
// call id, a page out of order, a malformed page).
var ErrCall = errors.New("inbound: call refused")

// New makes a store in dir. router returns the routes in force (they may
// change on a reload). The spool wakes the dispatchers of the jobs it
// accepts (spool.Store's Wake).
func New(dir string, sp Acceptor, router func() *Router, log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{dir: dir, spool: sp, router: router, log: log, Now: time.Now, active: map[string]*linedriver.Call{}}
}

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }

// callFile is call.json: what the call was, kept with its pages.
type callFile struct {
	ID           string    `json:"id"`
	Driver       string    `json:"driver"`
	Device       string    `json:"device,omitempty"`
	CalledNumber string    `json:"called_number,omitempty"`
	CallerNumber string    `json:"caller_number,omitempty"`
	RemoteID     string    `json:"remote_id,omitempty"`
	Started      time.Time `json:"started"`
	Params       string    `json:"params,omitempty"`
	Log          string    `json:"log,omitempty"`
	Pages        int       `json:"pages"`              // confirmed so far; the page files are the truth
	LastPage     time.Time `json:"last_page,omitzero"` // when the last page was stored
	// Ended is set by End before the pages are assembled: a crash after it
	// finishes the call as it ended, not as cut.
	Ended  time.Time `json:"ended,omitzero"`
	Reason string    `json:"reason,omitempty"` // why the call was cut; "" when it ended properly
}

func fromCall(c *linedriver.Call) *callFile {
	return &callFile{ID: c.ID, Driver: c.Driver, Device: c.Device, CalledNumber: c.CalledNumber, CallerNumber: c.CallerNumber,
		RemoteID: strings.TrimSpace(c.RemoteID), Started: c.Started, Params: c.Params, Log: c.Log}
}

func (s *Store) callDir(id string) string { return filepath.Join(s.dir, id) }

func validID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, `/\`) && !strings.HasPrefix(id, ".") && len(id) <= 200
}

// Begin makes the call's folder and its call.json, durably.
func (s *Store) Begin(ctx context.Context, call *linedriver.Call) error {
	if !validID(call.ID) {
		return fmt.Errorf("%w: call id %q cannot name a folder", ErrCall, call.ID)
	}
	s.mu.Lock()
	if s.active[call.ID] != nil {
		s.mu.Unlock()
		return fmt.Errorf("%w: call %s is already in progress", ErrCall, call.ID)
	}
	cp := *call
	s.active[call.ID] = &cp
	s.mu.Unlock()
	if err := s.begin(call); err != nil {
		s.done(call.ID, call)
		return err
	}
	activity.Log(s.log, activity.Incoming, slog.String("driver", call.Driver), slog.String("call", call.ID),
		slog.String("device", call.Device), slog.String("called_number", call.CalledNumber),
		slog.String("caller_number", call.CallerNumber), slog.String("remote_id", strings.TrimSpace(call.RemoteID)),
		slog.String("params", call.Params))
	return nil
}

func (s *Store) begin(call *linedriver.Call) error {
	if err := mkdirSync(s.dir); err != nil {
		return fmt.Errorf("inbound: %w", err)
	}
	dir := s.callDir(call.ID)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("inbound: call %s: %w", call.ID, err)
	} else if err != nil && countPages(dir) > 0 {
		// Another call's confirmed pages, left by an earlier run and not
		// finished yet: this call must not write over them.
		return fmt.Errorf("%w: call %s: the pages of an earlier call with this id wait in its folder", ErrCall, call.ID)
	}
	if err := writeCall(dir, fromCall(call)); err != nil {
		return fmt.Errorf("inbound: call %s: %w", call.ID, err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("inbound: call %s: %w", call.ID, err)
	}
	return nil
}

// done ends c's hold on id.
func (s *Store) done(id string, c *linedriver.Call) {
	s.mu.Lock()
	if sameCall(s.active[id], c) {
		delete(s.active, id)
	}
	s.mu.Unlock()
}

// own reports whether call is the one in progress under its id.
func (s *Store) own(call *linedriver.Call) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sameCall(s.active[call.ID], call)
}

func pageName(n int) string { return fmt.Sprintf("page-%03d.tiff", n) }

// Page writes page n as page-NNN.tiff (a temporary file fsync'd, renamed,
// the folder fsync'd) and returns when it is on disk. A page sent again
// (the far end repeats a page it heard no confirmation of) replaces it.
func (s *Store) Page(ctx context.Context, call *linedriver.Call, n int, page *linedriver.InboundPage) error {
	if !s.own(call) {
		return fmt.Errorf("%w: page %d of call %s, which has not begun", ErrCall, n, call.ID)
	}
	dir := s.callDir(call.ID)
	have := countPages(dir)
	if n < 1 || n > have+1 {
		return fmt.Errorf("%w: page %d of call %s after %d pages", ErrCall, n, call.ID, have)
	}
	b, err := bitmap(page)
	if err != nil {
		return fmt.Errorf("%w: page %d of call %s: %v", ErrCall, n, call.ID, err)
	}
	data, err := pageFile(b)
	if err != nil {
		return fmt.Errorf("inbound: page %d of call %s: %w", n, call.ID, err)
	}
	if err := writeFileSync(dir, pageName(n), data); err != nil {
		return fmt.Errorf("inbound: page %d of call %s: %w", n, call.ID, err)
	}
	cf := fromCall(call)
	cf.Pages, cf.LastPage = max(n, have), s.Now()
	if err := writeCall(dir, cf); err != nil {
		// The page is safe; call.json only loses the latest log lines.
		s.log.Warn("inbound: call.json not updated", "call", call.ID, "error", err)
	}
	activity.Log(s.log, activity.PageReceived, slog.String("driver", call.Driver), slog.String("call", call.ID),
		slog.Int("page", n), slog.Int("bytes", len(data)), slog.Int("bad_rows", page.BadRows), slog.Int("frames_lost", page.FramesLost))
	return nil
}

// End turns the call's pages into a record in the spool and removes the
// folder. A call with no page leaves nothing but a log line. When the
// record cannot be made (the spool refuses it) the folder stays and is
// tried again at the next Recover.
func (s *Store) End(ctx context.Context, call *linedriver.Call, cause error) error {
	if !s.own(call) {
		return fmt.Errorf("%w: end of call %s, which has not begun", ErrCall, call.ID)
	}
	defer s.done(call.ID, call)
	dir := s.callDir(call.ID)
	cf := fromCall(call)
	cf.Pages = countPages(dir)
	cf.Ended = s.Now()
	if cause != nil {
		cf.Reason = cause.Error()
	}
	if err := writeCall(dir, cf); err != nil {
		s.log.Warn("inbound: call.json not updated", "call", call.ID, "error", err)
	}
	// A call cut because the gateway stops still goes into the spool.
	return s.finish(context.WithoutCancel(ctx), cf)
}

// Recover finishes the calls whose folders an earlier run left (it was
// killed during a call, or the spool refused the record): the pages
// confirmed so far are delivered, marked incomplete unless the call had
// ended properly. Calls in progress are left alone.
func (s *Store) Recover(ctx context.Context) error {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inbound: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		id := e.Name()
		if !e.IsDir() || !validID(id) {
			continue
		}
		s.mu.Lock()
		busy := s.active[id] != nil
		if !busy {
			s.active[id] = recovering
		}
		s.mu.Unlock()
		if busy {
			continue
		}
		err := s.recoverCall(ctx, id)
		s.done(id, recovering)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Store) recoverCall(ctx context.Context, id string) error {
	dir := s.callDir(id)
	cf, err := readCall(dir)
	if err != nil {
		if countPages(dir) == 0 {
			// Cut inside Begin: no page was ever confirmed.
			s.log.Warn("inbound: removing the folder of a call cut before its first page", "call", id, "error", err)
			return removeCall(s.dir, dir)
		}
		s.log.Error("inbound: a call's call.json is unreadable; its pages are delivered without it", "call", id, "error", err)
		// Its pages' times date it (and route it by time): the first
		// page's write stands for the start, the last one's for the end.
		cf = &callFile{ID: id, Driver: "unknown"}
		if fi, err := os.Stat(filepath.Join(dir, pageName(1))); err == nil {
			cf.Started = fi.ModTime()
		}
		if fi, err := os.Stat(filepath.Join(dir, pageName(countPages(dir)))); err == nil {
			cf.LastPage = fi.ModTime()
		}
	}
	cf.ID = id
	cf.Pages = countPages(dir)
	if cf.Ended.IsZero() {
		cf.Reason = "the gateway stopped during the call"
	}
	s.log.Warn("inbound: finishing a call an earlier run left", "call", id, "pages", cf.Pages, "reason", cf.Reason)
	return s.finish(ctx, cf)
}

// finish assembles, routes and accepts a call, then removes its folder.
func (s *Store) finish(ctx context.Context, cf *callFile) error {
	dir := s.callDir(cf.ID)
	log := s.log.With("driver", cf.Driver, "call", cf.ID)
	var pages []*faxtiff.Bitmap
	var lost []string
	for n := 1; n <= cf.Pages; n++ {
		data, err := os.ReadFile(filepath.Join(dir, pageName(n)))
		if err == nil {
			var b *faxtiff.Bitmap
			if b, err = readPage(data); err == nil {
				pages = append(pages, b)
				continue
			}
		}
		// A page confirmed to the far end is lost: say so, keep the rest.
		log.Error("inbound: a stored page cannot be read", "page", n, "error", err)
		lost = append(lost, strconv.Itoa(n))
	}
	if len(pages) == 0 {
		log.Warn("inbound: the call ended with no page", "reason", cf.Reason)
		return removeCall(s.dir, dir)
	}
	rec, err := s.record(cf, pages)
	if err != nil {
		return fmt.Errorf("inbound: call %s: %w", cf.ID, err)
	}
	if len(lost) > 0 {
		why := fmt.Sprintf("page %s of %d could not be read back from disk", strings.Join(lost, ", "), cf.Pages)
		if rec.Fields["incomplete"] != "" {
			why = rec.Fields["incomplete"] + "; " + why
		}
		rec.Fields["incomplete"] = why
	}
	rtr := s.router()
	if rtr == nil { // no inbound section compiled: everything is unrouted
		rtr, _ = Compile(&config.Config{}, filepath.Join(filepath.Dir(s.dir), UnroutedName))
	}
	rt := rtr.Route(&Facts{CalledNumber: cf.CalledNumber, CallerNumber: cf.CallerNumber, RemoteID: cf.RemoteID, Time: cf.Started})
	rec.Fields["route"] = rt.Name
	if rt.Name == UnroutedName {
		log.Error("inbound: no route takes this fax and there is no default route; it goes to the unrouted folder",
			"called_number", cf.CalledNumber, "caller_number", cf.CallerNumber, "remote_id", cf.RemoteID, "folder", rt.Targets[0].Folder)
	}
	jobs := make([]*linedriver.Job, 0, len(rt.Targets))
	now := s.Now()
	for _, t := range rt.Targets {
		j := &linedriver.Job{ID: rec.ID + "." + t.Driver, Driver: t.Driver, Record: *rec, Accepted: now}
		if t.Mail != nil {
			if j.State, err = s.mail(t.Mail, rec, cf, len(pages), rtr.Location(), log); err != nil {
				return fmt.Errorf("inbound: call %s: %w", cf.ID, err)
			}
		}
		jobs = append(jobs, j)
	}
	dup, err := s.spool.Accept(ctx, cf.Driver, cf.ID, jobs)
	if err != nil {
		return fmt.Errorf("inbound: call %s: %w", cf.ID, err)
	}
	if dup {
		log.Info("inbound: the call was put in the spool before a restart; removing its folder")
	} else {
		targets := make([]string, len(jobs))
		for i, j := range jobs {
			targets[i] = j.Driver
		}
		activity.Log(log, activity.FaxReceived, slog.String("record", rec.ID), slog.String("source_id", cf.ID),
			slog.Int("pages", len(pages)), slog.String("route", rt.Name), slog.String("targets", strings.Join(targets, ",")),
			slog.String("incomplete", rec.Fields["incomplete"]), slog.String("remote_id", cf.RemoteID))
	}
	return removeCall(s.dir, dir)
}

func (s *Store) record(cf *callFile, pages []*faxtiff.Bitmap) (*linedriver.Record, error) {
	tiff, pdf, err := documents(pages)
	if err != nil {
		return nil, err
	}
	end := cf.Ended
	if end.IsZero() {
		end = cf.LastPage // a call cut by a crash: until its last page, not until the restart
	}
	if end.IsZero() {
		end = s.Now()
	}
	fields := map[string]string{
		"called_number": cf.CalledNumber, "caller_number": cf.CallerNumber, "remote_id": cf.RemoteID,
		"pages": strconv.Itoa(len(pages)), "started": cf.Started.UTC().Format(time.RFC3339),
		"duration": end.Sub(cf.Started).Round(time.Second).String(), "params": cf.Params, "device": cf.Device,
		"incomplete": "",
	}
	if cf.Reason != "" {
		fields["incomplete"] = fmt.Sprintf("the call was cut after page %d (%s)", len(pages), cf.Reason)
	}
	base := "fax-" + cf.ID
	return &linedriver.Record{
		ID: newID(s.Now()), SourceID: cf.ID, Connector: cf.Driver, Fields: fields, Received: cf.Started, CallLog: cf.Log,
		Documents: []linedriver.Document{
			{Name: base + ".pdf", MediaType: "application/pdf", Data: pdf},
			{Name: base + ".tiff", MediaType: "image/tiff", Data: tiff},
		},
	}, nil
}

// mail writes a mail target's message, kept in the job's state.
func (s *Store) mail(m *Mail, rec *linedriver.Record, cf *callFile, pages int, loc *time.Location, log *slog.Logger) ([]byte, error) {
	d := &Data{CalledNumber: cf.CalledNumber, CallerNumber: cf.CallerNumber, RemoteID: cf.RemoteID, Params: cf.Params,
		Device: cf.Device, Route: rec.Fields["route"], Pages: pages, Started: cf.Started.In(loc),
		Incomplete: rec.Fields["incomplete"], Fields: rec.Fields}
	d.Duration, _ = time.ParseDuration(rec.Fields["duration"])
	subject, err := execute(m.Subject, builtinSubject, d)
	if err != nil {
		log.Warn("inbound: the route's subject template failed; the built-in one is used", "error", err)
	}
	body, err := execute(m.Body, builtinBody, d)
	if err != nil {
		log.Warn("inbound: the route's body template failed; the built-in one is used", "error", err)
	}
	mj := report.MailJob{From: m.From, To: m.To, Subject: strings.TrimSpace(subject), Body: body, Time: s.Now().UTC(),
		Tag: rec.ID + "/fax_received"}
	for _, kind := range m.Attach {
		for _, doc := range rec.Documents {
			if strings.HasSuffix(doc.Name, "."+kind) {
				mj.Attach = append(mj.Attach, doc.Name)
			}
		}
	}
	return json.Marshal(mj)
}

// newID is a record id like the pipeline's: UTC time and 6 random bytes.
func newID(t time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b[:])
}

// countPages counts page-001.tiff, page-002.tiff, … from 1 without a gap.
func countPages(dir string) int {
	n := 0
	for {
		if _, err := os.Stat(filepath.Join(dir, pageName(n+1))); err != nil {
			return n
		}
		n++
	}
}

func writeCall(dir string, cf *callFile) error {
	b, err := json.MarshalIndent(cf, "", "  ")
	if err != nil {
		return err
	}
	return writeFileSync(dir, "call.json", append(b, '\n'))
}

func readCall(dir string) (*callFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, "call.json"))
	if err != nil {
		return nil, err
	}
	var cf callFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return nil, fmt.Errorf("call.json: %w", err)
	}
	return &cf, nil
}

// writeFileSync writes dir/name through a temporary file: written,
// fsync'd, renamed over name, and the folder fsync'd.
func writeFileSync(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func mkdirSync(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

func removeCall(base, dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("inbound: remove %s: %w", dir, err)
	}
	if err := syncDir(base); err != nil {
		return fmt.Errorf("inbound: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
