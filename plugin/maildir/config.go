package maildir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mediagw/mediagw/plugin"
)

// Defaults, in one place.
const (
	DefaultPollInterval   = time.Second
	DefaultMaxMessageSize = 50 << 20
	minPollInterval       = time.Millisecond
)

// Config is the decoded configuration.
type Config struct {
	// Path is a Maildir (with new/, cur/, tmp/) or a plain directory of
	// *.eml files.
	Path string
	// Processed is where acked mail goes; "" means the default: cur/ with
	// the S flag for a Maildir, <path>/processed for a directory of .eml.
	Processed string
	// Failed is where rejected mail goes, each with a <name>.reason file.
	Failed string
	// PollInterval is how often the folder is scanned when idle.
	PollInterval time.Duration
	// MaxMessageSize is the largest file read; a bigger one is rejected.
	MaxMessageSize int64
	// Send is the optional send: section; nil means the connector does not send.
	Send *SendConfig
}

var schema = []plugin.ConfigField{
	{Name: "path", Type: "string", Required: true,
		Description: "a Maildir (with new/, cur/, tmp/) or a directory of *.eml files"},
	{Name: "processed", Type: "string", Default: "cur/ (flag S) or <path>/processed",
		Description: "folder for acked mail; by default a Maildir marks it seen in cur/, a .eml directory moves it to <path>/processed"},
	{Name: "failed", Type: "string", Default: "<path>/failed",
		Description: "folder for rejected mail; each file gets a <name>.reason file beside it"},
	{Name: "poll_interval", Type: "duration", Default: DefaultPollInterval.String(),
		Description: "how often the folder is scanned for new mail"},
	{Name: "max_message_size", Type: "string", Default: "50MiB",
		Description: "largest message read (bytes, or with a unit: 512KB, 50MB, 1GiB); a bigger one is rejected to failed"},
	sendField,
}

// parseConfig decodes raw strictly. Every problem becomes a diagnostic naming
// its key; the error is only for input that is not a JSON object.
func parseConfig(raw []byte) (Config, plugin.Diagnostics) {
	var diags plugin.Diagnostics
	cfg := Config{PollInterval: DefaultPollInterval, MaxMessageSize: DefaultMaxMessageSize}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&fields); err != nil || fields == nil {
		msg := "the configuration must be a JSON object"
		if err != nil {
			msg += ": " + err.Error()
		}
		diags.Errorf("", "%s", msg)
		return cfg, diags
	}
	if dec.More() {
		diags.Errorf("", "trailing data after the configuration object")
	}
	known := map[string]bool{}
	var names []string
	for _, f := range schema {
		known[f.Name] = true
		names = append(names, f.Name)
	}
	var unknown []string
	for k := range fields {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		diags.Errorf(k, "unknown key (valid keys: %s)", strings.Join(names, ", "))
	}

	str := func(key string) (string, bool) {
		v, ok := fields[key]
		if !ok || string(v) == "null" {
			return "", false
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			diags.Errorf(key, "want a string, got %s", abbreviate(v))
			return "", false
		}
		return s, true
	}
	absPath := func(key, p string) string {
		if p == "" {
			return ""
		}
		a, err := filepath.Abs(p)
		if err != nil {
			diags.Errorf(key, "%v", err)
			return p
		}
		return a
	}

	if p, ok := str("path"); ok && strings.TrimSpace(p) != "" {
		cfg.Path = absPath("path", p)
	} else if !hasField(diags, "path") {
		diags.Errorf("path", "required: the Maildir or .eml directory to read")
	}
	if p, ok := str("processed"); ok {
		cfg.Processed = absPath("processed", p)
	}
	if p, ok := str("failed"); ok {
		cfg.Failed = absPath("failed", p)
	}
	if v, ok := fields["poll_interval"]; ok && string(v) != "null" {
		d, err := parseDuration(v)
		switch {
		case err != nil:
			diags.Errorf("poll_interval", "%v", err)
		case d < minPollInterval:
			diags.Errorf("poll_interval", "%v is too short (at least %v)", d, minPollInterval)
		default:
			cfg.PollInterval = d
		}
	}
	if v, ok := fields["max_message_size"]; ok && string(v) != "null" {
		n, err := parseSizeJSON(v)
		switch {
		case err != nil:
			diags.Errorf("max_message_size", "%v", err)
		case n <= 0:
			diags.Errorf("max_message_size", "must be positive")
		default:
			cfg.MaxMessageSize = n
		}
	}
	if v, ok := fields["send"]; ok && string(v) != "null" {
		cfg.Send = parseSend(v, &diags)
	}
	if cfg.Path != "" {
		if cfg.Processed != "" && cfg.Processed == cfg.Path {
			diags.Errorf("processed", "must differ from path, or processed mail would be read again")
		}
		if cfg.Failed != "" && cfg.Failed == cfg.Path {
			diags.Errorf("failed", "must differ from path, or rejected mail would be read again")
		}
		newDir := filepath.Join(cfg.Path, "new")
		if cfg.Processed == newDir {
			diags.Errorf("processed", "must not be the Maildir's new/")
		}
		if cfg.Failed == newDir {
			diags.Errorf("failed", "must not be the Maildir's new/")
		}
	}
	return cfg, diags
}

func hasField(diags plugin.Diagnostics, field string) bool {
	for _, d := range diags {
		if d.Field == field {
			return true
		}
	}
	return false
}

func abbreviate(v json.RawMessage) string {
	s := string(v)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// parseDuration accepts a Go duration string ("1s", "250ms").
func parseDuration(v json.RawMessage) (time.Duration, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return 0, fmt.Errorf("want a duration string like \"1s\" or \"250ms\", got %s", abbreviate(v))
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("want a duration like \"1s\" or \"250ms\": %w", err)
	}
	return d, nil
}

// parseSizeJSON accepts a number of bytes or a string with a unit.
func parseSizeJSON(v json.RawMessage) (int64, error) {
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return 0, fmt.Errorf("want a size: %w", err)
	}
	switch x := x.(type) {
	case json.Number:
		n = x
		i, err := n.Int64()
		if err != nil {
			return 0, fmt.Errorf("want a whole number of bytes, got %s", n)
		}
		return i, nil
	case string:
		return ParseSize(x)
	}
	return 0, fmt.Errorf("want a size like 50MB or a number of bytes, got %s", abbreviate(v))
}

var errSize = errors.New("want a size like 512KB, 50MB, 1GiB or a number of bytes")

// ParseSize parses a byte size: a whole number with an optional unit B, KB,
// MB, GB (powers of 1000), KiB, MiB, GiB (powers of 1024), case-insensitive.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%w, got %q", errSize, s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w, got %q", errSize, s)
	}
	unit := strings.ToLower(strings.TrimSpace(s[i:]))
	var mult int64
	switch unit {
	case "", "b":
		mult = 1
	case "k", "kb":
		mult = 1000
	case "m", "mb":
		mult = 1000 * 1000
	case "g", "gb":
		mult = 1000 * 1000 * 1000
	case "kib":
		mult = 1 << 10
	case "mib":
		mult = 1 << 20
	case "gib":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("%w, got unit %q", errSize, unit)
	}
	if n > (1<<63-1)/mult {
		return 0, fmt.Errorf("%w, got %q (too large)", errSize, s)
	}
	return n * mult, nil
}
