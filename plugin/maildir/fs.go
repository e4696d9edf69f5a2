package maildir

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Formats of the source folder.
const (
	FormatMaildir = "maildir"
	FormatEML     = "eml"
)

// layout is the resolved set of folders.
type layout struct {
	format    string
	inbox     string // scanned: <path>/new or <path>
	processed string // acked mail goes here
	markSeen  bool   // Maildir default: processed is cur/ and the name gets flag S
	failed    string
}

// detect resolves the folders for cfg. It does not create anything.
func detect(cfg Config) (*layout, error) {
	fi, err := os.Stat(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("maildir: path: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("maildir: path %s is not a directory", cfg.Path)
	}
	l := &layout{format: FormatEML, inbox: cfg.Path, processed: cfg.Processed, failed: cfg.Failed}
	if isDir(filepath.Join(cfg.Path, "new")) && isDir(filepath.Join(cfg.Path, "cur")) {
		l.format = FormatMaildir
		l.inbox = filepath.Join(cfg.Path, "new")
		if l.processed == "" {
			l.processed = filepath.Join(cfg.Path, "cur")
			l.markSeen = true
		}
	} else if l.processed == "" {
		l.processed = filepath.Join(cfg.Path, "processed")
	}
	if l.failed == "" {
		l.failed = filepath.Join(cfg.Path, "failed")
	}
	return l, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// candidate reports whether a directory entry in the inbox is a message to
// read: a regular, non-hidden file; in a .eml directory only *.eml.
func (l *layout) candidate(e fs.DirEntry) bool {
	name := e.Name()
	if strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
		return false
	}
	if l.format == FormatEML {
		return strings.EqualFold(filepath.Ext(name), ".eml")
	}
	return true
}

// scan lists the messages waiting in the inbox, in name order (Maildir names
// begin with the delivery time).
func (l *layout) scan() ([]string, error) {
	ents, err := os.ReadDir(l.inbox)
	if err != nil {
		return nil, fmt.Errorf("maildir: scan %s: %w", l.inbox, err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if l.candidate(e) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// baseName is a Maildir file name without its info part (":2,FLAGS").
func baseName(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

// seenName adds flag S to a Maildir name: "x" → "x:2,S", "x:2,F" → "x:2,FS".
func seenName(name string) string {
	base, info, ok := strings.Cut(name, ":")
	if !ok || !strings.HasPrefix(info, "2,") {
		return base + ":2,S"
	}
	flags := []byte(info[2:])
	if strings.IndexByte(info[2:], 'S') < 0 {
		flags = append(flags, 'S')
		sort.Slice(flags, func(i, j int) bool { return flags[i] < flags[j] })
	}
	return base + ":2," + string(flags)
}

// freeName returns name, or a variant of it that does not exist in dir yet
// (a suffix before the Maildir info part or the .eml extension). When dir
// cannot be examined it returns name, and the rename reports why.
func freeName(dir, name string) string {
	if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
		return name
	}
	stem, tail := name, ""
	if i := strings.IndexByte(name, ':'); i >= 0 {
		stem, tail = name[:i], name[i:]
	} else if ext := filepath.Ext(name); strings.EqualFold(ext, ".eml") {
		stem, tail = strings.TrimSuffix(name, ext), ext
	}
	ts := strconv.FormatInt(time.Now().UnixNano(), 36)
	cand := stem + "." + ts + tail
	for i := 1; i < 1000; i++ {
		if _, err := os.Lstat(filepath.Join(dir, cand)); err != nil {
			break
		}
		cand = stem + "." + ts + "-" + strconv.Itoa(i) + tail
	}
	return cand
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// move renames src into dir under name and makes both directories durable.
func move(src, dir, name string) error {
	dst := filepath.Join(dir, name)
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	if sd := filepath.Dir(src); sd != dir {
		if err := syncDir(sd); err != nil {
			return fmt.Errorf("sync %s: %w", sd, err)
		}
	}
	return nil
}

// writeFileAtomic writes data to dir/name through a temporary file, fsyncs
// it and renames it into place.
func writeFileAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
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
		err = os.Chmod(tmp, 0o640)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// reasonText is the content of a .reason file.
func reasonText(reason string) []byte {
	reason = strings.TrimRight(reason, "\r\n")
	if reason == "" {
		reason = "rejected (no reason given)"
	}
	return []byte(reason + "\n")
}
