package imapbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediagw/mediagw/plugin"
)

// RejectRecord is one line of the reject log.
type RejectRecord struct {
	Time      time.Time `json:"time"`
	SourceID  string    `json:"source_id"`
	MessageID string    `json:"message_id,omitempty"`
	Folder    string    `json:"folder"`
	Reason    string    `json:"reason"`
}

// logRejects appends the batch's rejections of this UIDVALIDITY to the
// reject log and syncs it to disk.
func (m *Mailbox) logRejects(batch []pendingSettle, uidValidity uint32) error {
	if m.opts.RejectLogPath == "" {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, p := range batch {
		if p.Kind != plugin.Reject || p.UIDValidity != uidValidity {
			continue
		}
		_ = enc.Encode(RejectRecord{Time: time.Now().UTC(), SourceID: p.SourceID, MessageID: p.MessageID, Folder: m.opts.FailedFolder, Reason: p.Reason})
	}
	if err := os.MkdirAll(filepath.Dir(m.opts.RejectLogPath), 0o700); err != nil {
		return fmt.Errorf("imapbox: reject log: %w", err)
	}
	f, err := os.OpenFile(m.opts.RejectLogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("imapbox: reject log: %w", err)
	}
	_, err = f.Write(buf.Bytes())
	if err == nil {
		err = f.Sync() // the reason must survive a power cut, like the move
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("imapbox: reject log: %w", err)
	}
	return nil
}

// ReadRejectLog reads a reject log.
func ReadRejectLog(path string) ([]RejectRecord, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []RejectRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var r RejectRecord
		if err := dec.Decode(&r); err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// headerValue returns the first value of header name in a raw message's
// header block, or "".
func headerValue(raw []byte, name string) string {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = bytes.Index(raw, []byte("\n\n"))
	}
	if end < 0 {
		end = len(raw)
	}
	want := textproto.CanonicalMIMEHeaderKey(name)
	lines := bytes.Split(raw[:end], []byte("\n"))
	for i, l := range lines {
		k, v, ok := bytes.Cut(bytes.TrimRight(l, "\r"), []byte(":"))
		if !ok || textproto.CanonicalMIMEHeaderKey(string(bytes.TrimSpace(k))) != want || bytes.HasPrefix(l, []byte(" ")) || bytes.HasPrefix(l, []byte("\t")) {
			continue
		}
		val := string(bytes.TrimSpace(v))
		for j := i + 1; j < len(lines) && len(lines[j]) > 0 && (lines[j][0] == ' ' || lines[j][0] == '\t'); j++ {
			val += " " + string(bytes.TrimSpace(lines[j]))
		}
		return strings.TrimSpace(val)
	}
	return ""
}
