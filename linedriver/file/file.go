// Package file is the "file" line driver: it writes each record as
// record.json plus its documents into a folder of its own under a directory,
// an audit trail or a hand-off to another system.
//
// A record's folder is named after its job id and appears atomically (written
// in a temporary folder, fsync'd, renamed), so a reader never sees half a
// record, and a second attempt at the same job replaces the first.
package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/mediagw/mediagw/linedriver"
)

func init() { linedriver.Register("file", New) }

// Options of the file driver.
type Options struct {
	Dir string `json:"dir"` // output directory (created if missing)
	// Require lists fields a record must have (non-empty) to be accepted.
	Require []string `json:"require"`
}

// Driver writes records to a directory.
type Driver struct {
	name  string
	opts  Options
	log   *slog.Logger
	sweep sync.Once
}

var _ linedriver.Driver = (*Driver)(nil)

// New decodes options strictly. It creates nothing.
func New(name string, options json.RawMessage, logger *slog.Logger) (linedriver.Driver, error) {
	var o Options
	if err := linedriver.DecodeOptions(options, &o); err != nil {
		return nil, fmt.Errorf("file driver %s: options: %w", name, err)
	}
	if o.Dir == "" {
		return nil, fmt.Errorf("file driver %s: options: %w", name, &linedriver.OptionError{Key: "dir", Err: errors.New("missing (the folder to write records to)")})
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Driver{name: name, opts: o, log: logger}, nil
}

// SetBaseDir makes a relative Dir relative to base (the config's folder).
func (d *Driver) SetBaseDir(base string) {
	if !filepath.IsAbs(d.opts.Dir) {
		d.opts.Dir = filepath.Join(base, d.opts.Dir)
	}
}

func (d *Driver) Name() string { return d.name }
func (d *Driver) Slots() int   { return 4 }
func (d *Driver) Close() error { return nil }

// Check requires the configured fields.
func (d *Driver) Check(rec *linedriver.Record) error {
	var missing []string
	for _, f := range d.opts.Require {
		if strings.TrimSpace(rec.Fields[f]) == "" {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("record lacks required field(s) %s", strings.Join(missing, ", "))
	}
	return nil
}

// recordFile is what record.json holds: the record without document bytes.
type recordFile struct {
	Job       string            `json:"job"`
	Record    string            `json:"record"`
	SourceID  string            `json:"source_id"`
	Connector string            `json:"connector"`
	Fields    map[string]string `json:"fields"`
	Documents []docFile         `json:"documents"`
	Received  string            `json:"received"`
	Attempt   int               `json:"attempt"`
}

type docFile struct {
	File      string `json:"file"`
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	Size      int    `json:"size"`
}

// Deliver writes the job's folder.
func (d *Driver) Deliver(ctx context.Context, job *linedriver.Job, report func(linedriver.Progress)) linedriver.Outcome {
	if err := os.MkdirAll(d.opts.Dir, 0o755); err != nil {
		return linedriver.Retry("io", fmt.Sprintf("create %s: %v", d.opts.Dir, err), 30e9)
	}
	d.sweep.Do(d.removeStale)
	final := filepath.Join(d.opts.Dir, safeName(job.ID))
	tmp, err := os.MkdirTemp(d.opts.Dir, ".tmp-")
	if err != nil {
		return linedriver.Retry("io", err.Error(), 30e9)
	}
	defer os.RemoveAll(tmp)
	rf := recordFile{
		Job: job.ID, Record: job.Record.ID, SourceID: job.Record.SourceID, Connector: job.Record.Connector,
		Fields: job.Record.Fields, Received: job.Record.Received.UTC().Format("2006-01-02T15:04:05Z"), Attempt: job.Attempt,
	}
	for i, doc := range job.Record.Documents {
		name := fmt.Sprintf("%02d-%s", i+1, safeName(doc.Name))
		if doc.Name == "" {
			name = fmt.Sprintf("%02d-document", i+1)
		}
		if err := writeSync(filepath.Join(tmp, name), doc.Data); err != nil {
			return linedriver.Retry("io", err.Error(), 30e9)
		}
		rf.Documents = append(rf.Documents, docFile{File: name, Name: doc.Name, MediaType: doc.MediaType, Size: len(doc.Data)})
	}
	b, err := json.MarshalIndent(rf, "", "  ")
	if err != nil {
		return linedriver.Fail("encode", err.Error())
	}
	if err := writeSync(filepath.Join(tmp, "record.json"), append(b, '\n')); err != nil {
		return linedriver.Retry("io", err.Error(), 30e9)
	}
	if ctx.Err() != nil {
		return linedriver.Retry("interrupted", "gateway stopping", 0)
	}
	// A second attempt at the same job replaces the first.
	if err := os.RemoveAll(final); err != nil && !errors.Is(err, os.ErrNotExist) {
		return linedriver.Retry("io", err.Error(), 30e9)
	}
	if err := os.Rename(tmp, final); err != nil {
		return linedriver.Retry("io", err.Error(), 30e9)
	}
	if err := syncDir(d.opts.Dir); err != nil {
		return linedriver.Retry("io", err.Error(), 30e9)
	}
	report(linedriver.Progress{Step: "written", Detail: final})
	return linedriver.Done(map[string]string{"path": final, "documents": fmt.Sprint(len(rf.Documents))})
}

// removeStale deletes the temporary folders an earlier process left behind
// when it was killed mid-write. It runs once, before this process makes any.
func (d *Driver) removeStale() {
	stale, _ := filepath.Glob(filepath.Join(d.opts.Dir, ".tmp-*"))
	for _, dir := range stale {
		if err := os.RemoveAll(dir); err != nil {
			d.log.Warn("file driver: cannot remove a stale temporary folder", "driver", d.name, "path", dir, "err", err)
			continue
		}
		d.log.Info("file driver: removed a half-written record left by an interrupted run", "driver", d.name, "path", dir)
	}
}

func writeSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// safeName keeps a file name inside its folder.
func safeName(s string) string {
	s = filepath.Base(strings.ReplaceAll(s, "\\", "/"))
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == '/' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
	if s == "." || s == ".." || s == "" {
		return "_"
	}
	return s
}
