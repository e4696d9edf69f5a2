package imapbox

import (
	"bytes"
	"encoding/json"
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

func (m *Mailbox) logRejects(batch []pendingSettle) {
	if m.opts.RejectLogPath == "" {
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, p := range batch {
		if p.Kind != plugin.Reject {
			continue
		}
		_ = enc.Encode(RejectRecord{Time: time.Now().UTC(), SourceID: p.SourceID, MessageID: p.MessageID, Folder: m.opts.FailedFolder, Reason: p.Reason})
	}
	if err := os.MkdirAll(filepath.Dir(m.opts.RejectLogPath), 0o700); err != nil {
		m.log.Warn("imapbox: reject log", "err", err)
		return
	}
	f, err := os.OpenFile(m.opts.RejectLogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		m.log.Warn("imapbox: reject log", "err", err)
		return
	}
	defer f.Close()
	if _, err := f.Write(buf.Bytes()); err != nil {
		m.log.Warn("imapbox: reject log", "err", err)
	}
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
