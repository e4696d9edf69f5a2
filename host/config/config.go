// Package config reads the gateway's YAML configuration strictly: an unknown
// key or a wrong type is an error that names file:line, and every problem
// in a file is reported at once. Defaults are set in one place (Defaults).
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mediagw/mediagw/internal/duration"
	"github.com/mediagw/mediagw/secret"
)

// Config is a whole gateway configuration.
type Config struct {
	// Gateway is this gateway's name among the gateways that share one
	// spool database (default: the host name); it must be unique there.
	Gateway    string                `yaml:"gateway"`
	Spool      Spool                 `yaml:"spool"`
	Log        Log                   `yaml:"log"`
	Status     Status                `yaml:"status"`
	Connectors map[string]*Connector `yaml:"connectors"`
	Maps       map[string]string     `yaml:"maps"` // name → data-map file
	Drivers    map[string]*Driver    `yaml:"drivers"`
	// Inbound routes received faxes (see inbound.go).
	Inbound *Inbound `yaml:"inbound"`

	// File is the path the config was read from; relative paths in it are
	// relative to its directory.
	File string `yaml:"-"`
	// Lines of the sections, for messages that point at them.
	lines map[string]int
}

// Spool configures the durable store.
type Spool struct {
	Dir string `yaml:"dir"`
	// ForgetAfter is how long accepted source ids are remembered for dedupe.
	ForgetAfter Duration `yaml:"forget_after"`
	// FailedRetention is how long jobs that failed for good are kept (with
	// their documents) for the operator to retry or purge.
	FailedRetention Duration `yaml:"failed_retention"`
	// Compact gives the file's free pages back to the disk after a burst.
	Compact Compact `yaml:"compact"`

	// Backend is where the queue lives: bbolt (one file in Dir, one
	// gateway) or postgres (a database several gateways share).
	Backend string `yaml:"backend"`
	// DSN is the PostgreSQL connection string (postgres): a secret, given
	// inline, as env:NAME or file:PATH.
	DSN secret.Secret `yaml:"dsn"`
	// TLS is the client's TLS to PostgreSQL (it replaces the DSN's sslmode).
	TLS SpoolTLS `yaml:"tls"`
	// Migrate is auto (apply pending schema migrations on start) or manual
	// (refuse to start until `mediagw spool migrate` ran).
	Migrate string `yaml:"migrate"`
	// TakeoverAfter bounds how long a connector stays unowned when the
	// gateway that ran it died, with several gateways on one database.
	TakeoverAfter Duration `yaml:"takeover_after"`
}

// Spool backends.
const (
	BackendBolt     = "bbolt"
	BackendPostgres = "postgres"
)

// SpoolTLS is the client side of TLS to the spool's database.
type SpoolTLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// Compact is the automatic compaction of the spool file: when the queue
// becomes empty and every hour, a file of at least MinSize whose free
// pages are more than half of it is compacted.
type Compact struct {
	Auto    bool     `yaml:"auto"`
	MinSize ByteSize `yaml:"min_size"`
}

// ByteSize reads "64MiB", "512KiB", "1GiB", "100MB" or a number of bytes.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	n      int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}

// UnmarshalYAML parses a size with an optional unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, unit := strings.TrimSpace(n.Value), int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(v, u.suffix) {
			v, unit = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.n
			break
		}
	}
	x, err := strconv.ParseInt(v, 10, 64)
	if err != nil || x < 0 || x > (1<<62)/unit {
		return fmt.Errorf("line %d: %q is not a size (write e.g. 64MiB, 512KiB, 1GiB)", n.Line, n.Value)
	}
	*b = ByteSize(x * unit)
	return nil
}

// Log configures the gateway's log.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// Status configures the status listener: the JSON API, /metrics and the web
// console. See status.go for the rules that keep it safe off loopback.
type Status struct {
	Listen string `yaml:"listen"` // e.g. 127.0.0.1:8025; empty: off
	// Users may sign in to the console (and use HTTP basic on the API).
	Users []StatusUser `yaml:"users"`
	// TokenFile holds one bearer token; whoever presents it is an operator.
	TokenFile string `yaml:"token_file"`
	// TLSCert and TLSKey make the listener serve HTTPS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// BehindProxy says a reverse proxy in front terminates TLS.
	BehindProxy bool `yaml:"behind_proxy"`
}

// StatusUser is one console account.
type StatusUser struct {
	Name         string `yaml:"name"`
	PasswordHash string `yaml:"password_hash"` // bcrypt or argon2id
	Role         string `yaml:"role"`          // viewer or operator
}

// Connector is one connector plugin instance.
type Connector struct {
	Plugin      string    `yaml:"plugin"`   // binary path or name
	Checksum    string    `yaml:"checksum"` // "sha256:<hex>", optional
	Map         string    `yaml:"map"`      // data map name
	Routes      []string  `yaml:"routes"`   // default drivers when the map chooses none
	MaxInFlight int       `yaml:"max_in_flight"`
	Config      yaml.Node `yaml:"config"` // handed to the plugin as JSON

	// PluginPath is Plugin resolved to an executable file.
	PluginPath string `yaml:"-"`
	Line       int    `yaml:"-"`
}

// Driver is one line driver instance.
type Driver struct {
	Type        string    `yaml:"type"`
	MaxAttempts int       `yaml:"max_attempts"`
	Options     yaml.Node `yaml:"options"`
	// Gateways names the gateways that run this driver (those with its
	// lines); empty: every gateway. The others still route records to
	// it: its jobs wait in the shared queue for a gateway that runs it.
	Gateways []string `yaml:"gateways"`

	Line int `yaml:"-"`
}

// RunsOn reports whether gateway gw runs the driver.
func (d *Driver) RunsOn(gw string) bool {
	return len(d.Gateways) == 0 || slices.Contains(d.Gateways, gw)
}

// Duration reads "30s", "5m", "72h" or a number of seconds.
type Duration = duration.Duration

// Defaults are the values of keys the file leaves out.
var Defaults = Config{
	Spool: Spool{Dir: "spool", ForgetAfter: Duration(14 * 24 * time.Hour), FailedRetention: Duration(30 * 24 * time.Hour),
		Compact: Compact{Auto: true, MinSize: 64 << 20}, Backend: BackendBolt, Migrate: "auto", TakeoverAfter: Duration(15 * time.Second)},
	Log: Log{Level: "info", Format: "text"},
}

// DefaultMaxInFlight is a connector's in-flight bound when none is set.
const DefaultMaxInFlight = 16

// Error lists every problem found in a config file, one per line.
type Error struct{ Problems []string }

func (e *Error) Error() string { return strings.Join(e.Problems, "\n") }

func (e *Error) add(format string, args ...any) {
	e.Problems = append(e.Problems, fmt.Sprintf(format, args...))
}

var yamlLine = regexp.MustCompile(`^line (\d+): `)

// Load reads and checks a config file. It checks what can be checked without
// starting anything: keys, types, references between sections, plugin
// binaries and their checksums. The error is an *Error.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Problems: []string{fmt.Sprintf("config: %v", err)}}
	}
	return Parse(path, b)
}

// Parse is Load on bytes already read.
func Parse(path string, b []byte) (*Config, error) {
	cfg := Defaults
	cfg.File = path
	e := &Error{}
	// Unknown keys are found by walking the tree beside the types, so that
	// each names its own line and the keys valid there; the decoder then
	// reports values of the wrong type.
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err == nil && len(root.Content) > 0 {
		unknownKeys(root.Content[0], reflect.TypeFor[Config](), "", path, e)
	}
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				e.add("%s:%s", path, fileLine(m))
			}
		} else {
			e.add("%s:%s", path, fileLine(strings.TrimPrefix(err.Error(), "yaml: ")))
		}
	}
	if len(e.Problems) > 0 {
		return nil, e
	}
	cfg.lines = sectionLines(b)
	cfg.check(e)
	if len(e.Problems) > 0 {
		return nil, e
	}
	return &cfg, nil
}

// fileLine turns yaml's "line 4: msg" into "4: msg".
func fileLine(m string) string {
	if sm := yamlLine.FindStringSubmatch(m); sm != nil {
		return sm[1] + ": " + strings.TrimPrefix(m, sm[0])
	}
	return " " + m
}

func sectionLines(b []byte) map[string]int {
	var root yaml.Node
	out := map[string]int{}
	if yaml.Unmarshal(b, &root) != nil || len(root.Content) == 0 {
		return out
	}
	top := root.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		out[k.Value] = k.Line
		if k.Value == "inbound" {
			keyLines(v, "inbound", out)
			continue
		}
		if v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				out[k.Value+"."+v.Content[j].Value] = v.Content[j].Line
			}
		}
	}
	return out
}

// At returns "file:line" for a section key like "connectors.inbox" (under
// inbound: any key, "inbound.routes.0.match.hours.1"); a key the file
// does not have gives the line of its nearest parent.
func (c *Config) At(key string) string {
	for key != "" {
		if l, ok := c.lines[key]; ok {
			return fmt.Sprintf("%s:%d", c.File, l)
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return c.File
}

// Resolve makes a path from the config relative to the config's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.File), p)
}

func (c *Config) check(e *Error) {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		e.add("%s: log.level %q: want debug, info, warn or error", c.At("log.level"), c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		e.add("%s: log.format %q: want text or json", c.At("log.format"), c.Log.Format)
	}
	c.checkStatus(e)
	c.checkSpool(e)
	if c.Gateway == "" {
		if h, err := os.Hostname(); err == nil {
			c.Gateway = h
		}
	}
	if c.Spool.TakeoverAfter < Duration(time.Second) {
		e.add("%s: spool.takeover_after %s: want at least 1s", c.At("spool.takeover_after"), time.Duration(c.Spool.TakeoverAfter))
	}
	if len(c.Connectors) == 0 && !c.HasInbound() {
		e.add("%s: no connectors: name at least one under connectors: (or route received faxes under inbound:)", c.File)
	}
	// A name with nothing under it ("inbox:" alone) decodes as nil; it gets
	// the same messages as any entry that lacks its keys.
	for name, cn := range c.Connectors {
		if cn == nil {
			c.Connectors[name] = &Connector{}
		}
	}
	for name, d := range c.Drivers {
		if d == nil {
			c.Drivers[name] = &Driver{}
		}
	}
	c.checkInbound(e)
	for _, name := range sortedKeys(c.Drivers) {
		d := c.Drivers[name]
		d.Line = c.lines["drivers."+name]
		if strings.ContainsRune(name, ':') {
			e.add("%s: driver %s: a name must not contain \":\" (report:, mail: and folder: name the gateway's own drivers)", c.At("drivers."+name), name)
		}
		if d.Type == "" {
			e.add("%s: driver %s: type is missing", c.At("drivers."+name), name)
		}
		if d.MaxAttempts < 0 {
			e.add("%s: driver %s: max_attempts must not be negative", c.At("drivers."+name), name)
		}
	}
	for name, file := range c.Maps {
		if _, err := os.Stat(c.Resolve(file)); err != nil {
			e.add("%s: map %s: %v", c.At("maps."+name), name, err)
		}
	}
	for _, name := range sortedKeys(c.Connectors) {
		cn := c.Connectors[name]
		at := c.At("connectors." + name)
		cn.Line = c.lines["connectors."+name]
		if cn.MaxInFlight == 0 {
			cn.MaxInFlight = DefaultMaxInFlight
		}
		if cn.MaxInFlight < 0 {
			e.add("%s: connector %s: max_in_flight must be positive", at, name)
		}
		if cn.Map != "" {
			if _, ok := c.Maps[cn.Map]; !ok {
				e.add("%s: connector %s: map %q is not defined under maps:", at, name, cn.Map)
			}
		} else {
			e.add("%s: connector %s: map is missing (name a data map under maps:)", at, name)
		}
		for _, r := range cn.Routes {
			if _, ok := c.Drivers[r]; !ok {
				e.add("%s: connector %s: route %q is not defined under drivers:", at, name, r)
			}
		}
		if cn.Config.Kind != 0 && cn.Config.Kind != yaml.MappingNode {
			e.add("%s:%d: connector %s: config must be a mapping of keys", c.File, cn.Config.Line, name)
		}
		if cn.Plugin == "" {
			e.add("%s: connector %s: plugin is missing (the connector's binary)", at, name)
			continue
		}
		p, err := c.findPlugin(cn.Plugin)
		if err != nil {
			e.add("%s: connector %s: %v", at, name, err)
			continue
		}
		cn.PluginPath = p
		if cn.Checksum != "" {
			if err := verifyChecksum(p, cn.Checksum); err != nil {
				e.add("%s: connector %s: %v", at, name, err)
			}
		}
	}
}

// findPlugin resolves a plugin binary: a path (relative to the config), or a
// bare name looked up beside the mediagw binary and then in PATH.
func (c *Config) findPlugin(p string) (string, error) {
	if strings.ContainsRune(p, os.PathSeparator) {
		full, err := filepath.Abs(c.Resolve(p))
		if err != nil {
			return "", err
		}
		if err := executable(full); err != nil {
			return "", err
		}
		return full, nil
	}
	if self, err := os.Executable(); err == nil {
		full := filepath.Join(filepath.Dir(self), p)
		if executable(full) == nil {
			return full, nil
		}
	}
	if full, err := exec.LookPath(p); err == nil {
		return full, nil
	}
	return "", fmt.Errorf("plugin binary %q not found beside mediagw or in PATH (build it with make build, or give its path)", p)
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("plugin binary %s: %w", p, errors.Unwrap(err))
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("plugin binary %s is not an executable file", p)
	}
	return nil
}

// Checksum returns the SHA-256 of a file as "sha256:<hex>".
func Checksum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func verifyChecksum(path, want string) error {
	hexWant, ok := strings.CutPrefix(want, "sha256:")
	if !ok || len(hexWant) != 64 {
		return fmt.Errorf("checksum %q: want sha256:<64 hex digits>", want)
	}
	got, err := Checksum(path)
	if err != nil {
		return fmt.Errorf("checksum of %s: %w", path, err)
	}
	if !strings.EqualFold(got, want) {
		return fmt.Errorf("plugin binary %s has checksum %s, config says %s: the binary changed; refusing to run it", path, got, want)
	}
	return nil
}

// ChecksumBytes decodes a configured checksum for go-plugin's SecureConfig.
func ChecksumBytes(want string) ([]byte, error) {
	return hex.DecodeString(strings.TrimPrefix(want, "sha256:"))
}

// NodeJSON turns a YAML mapping (connector config, driver options) into JSON.
// An empty node gives "{}".
func NodeJSON(n *yaml.Node) ([]byte, error) {
	if n.Kind == 0 {
		return []byte("{}"), nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(jsonable(v))
}

// jsonable converts yaml's map[string]any / map[any]any trees for encoding/json.
func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = jsonable(x)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = jsonable(x)
		}
		return m
	case []any:
		for i, x := range t {
			t[i] = jsonable(x)
		}
		return t
	}
	return v
}

// KeyLine finds the line of a dotted key path ("imap.port") inside a
// mapping node, for pointing a plugin's diagnostic at the config file. A key
// it cannot find gives the line of the deepest part it found.
func KeyLine(n *yaml.Node, path string) int {
	line, cur := n.Line, n
	if path == "" {
		return line
	}
	for _, part := range strings.Split(path, ".") {
		next := (*yaml.Node)(nil)
		switch cur.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(cur.Content); i += 2 {
				if cur.Content[i].Value == part {
					line, next = cur.Content[i].Line, cur.Content[i+1]
					break
				}
			}
		case yaml.SequenceNode:
			if k, err := strconv.Atoi(part); err == nil && k >= 0 && k < len(cur.Content) {
				next = cur.Content[k]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		cur = next
	}
	return line
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SortedKeys is exported for callers that walk sections in a stable order.
func SortedKeys[V any](m map[string]V) []string { return sortedKeys(m) }

func (c *Config) checkSpool(e *Error) {
	sp := &c.Spool
	switch sp.Backend {
	case BackendBolt:
		for _, k := range []string{"dsn", "tls", "migrate"} {
			if _, ok := c.lines["spool."+k]; ok {
				e.add("%s: spool.%s is for backend: postgres (this spool is bbolt)", c.At("spool."+k), k)
			}
		}
	case BackendPostgres:
		if sp.DSN.IsZero() {
			e.add("%s: spool.dsn is missing: backend postgres needs the database's connection string (e.g. env:MEDIAGW_DSN)", c.At("spool.backend"))
		}
		switch sp.Migrate {
		case "auto", "manual":
		default:
			e.add("%s: spool.migrate %q: want auto or manual", c.At("spool.migrate"), sp.Migrate)
		}
		t := &sp.TLS
		if (t.CertFile == "") != (t.KeyFile == "") {
			e.add("%s: spool.tls: cert_file and key_file go together", c.At("spool.tls"))
		}
		for _, f := range []*string{&t.CAFile, &t.CertFile, &t.KeyFile} {
			if *f == "" {
				continue
			}
			*f = c.Resolve(*f)
			if _, err := os.Stat(*f); err != nil {
				e.add("%s: spool.tls: %v", c.At("spool.tls"), err)
			}
		}
	default:
		e.add("%s: spool.backend %q: want bbolt or postgres", c.At("spool.backend"), sp.Backend)
	}
}
