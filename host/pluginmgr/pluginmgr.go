// Package pluginmgr launches connector plugins as separate processes over
// hashicorp/go-plugin (gRPC only, AutoMTLS, optional SHA-256 check of the
// binary), configures them, and keeps them running: a plugin that dies is
// relaunched with backoff (5 s doubling to 2 min).
package pluginmgr

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/internal/backoff"
	"github.com/mediagw/mediagw/plugin"
)

// Spec names a plugin process to run.
type Spec struct {
	Name        string // connector name, for logs
	Path        string // binary
	Dir         string // working directory: relative paths in the config are relative to it
	Checksum    string // "sha256:<hex>" or ""
	ConfigJSON  []byte
	MaxInFlight int
	Log         *slog.Logger
	// ConfigError turns a diagnostic into an error message that points at
	// the config file; nil keeps the plugin's words.
	ConfigError func(plugin.Diagnostic) string
}

// Instance is one running plugin process.
type Instance struct {
	Client    *goplugin.Client
	Connector *plugin.GRPCClient
	Info      plugin.Info
	Pid       int
	// Warnings are the plugin's remarks on its settings that do not stop
	// it (with file:line when the Spec has ConfigError).
	Warnings []string
}

// ErrConfig wraps a configuration rejected by the plugin.
var ErrConfig = errors.New("connector configuration rejected")

// ErrStart wraps a plugin that did not start: it could not be run, or it
// ended before the go-plugin handshake. When the plugin wrote plain text to
// stderr, the error ends with its last lines.
var ErrStart = errors.New("start plugin")

// Launch starts the plugin, checks its protocol, and configures it. On any
// error the process is gone when Launch returns.
func Launch(ctx context.Context, s Spec) (*Instance, error) {
	cmd := exec.Command(s.Path)
	cmd.Dir = s.Dir
	cmd.Env = pluginEnv(s.ConfigJSON, os.Environ())
	dieWithHost(cmd)
	var stderr stderrTail
	cc := &goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		VersionedPlugins: plugin.HostPlugins(),
		Cmd:              cmd,
		SkipHostEnv:      true, // cmd.Env is all the plugin gets, besides go-plugin's own variables
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           newPluginHclog(s.Log, levelOf(s.Log), s.Path, &stderr),
		StartTimeout:     30 * time.Second,
	}
	if s.Checksum != "" {
		sum, err := config.ChecksumBytes(s.Checksum)
		if err != nil {
			return nil, fmt.Errorf("connector %s: %w", s.Name, err)
		}
		cc.SecureConfig = &goplugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	client := goplugin.NewClient(cc)
	fail := func(err error) (*Instance, error) {
		client.Kill()
		return nil, err
	}
	rpc, err := client.Client()
	if err != nil {
		if errors.Is(err, goplugin.ErrChecksumsDoNotMatch) {
			return fail(fmt.Errorf("connector %s: plugin binary %s does not match its configured checksum; refusing to run it", s.Name, s.Path))
		}
		client.Kill() // waits until the plugin's stderr is read to the end
		if last := stderr.String(); last != "" {
			// go-plugin's own text guesses at a wrong architecture or
			// missing libraries; the plugin's last words say what happened.
			return nil, fmt.Errorf("connector %s: %w: plugin %s: %s", s.Name, ErrStart, s.Path, last)
		}
		return nil, fmt.Errorf("connector %s: %w: plugin %s: %w", s.Name, ErrStart, s.Path, err)
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		return fail(fmt.Errorf("connector %s: plugin %s is not a connector: %w", s.Name, s.Path, err))
	}
	conn := raw.(*plugin.GRPCClient)
	conn.MaxInFlight = s.MaxInFlight
	info, err := conn.Info(ctx)
	if err != nil {
		return fail(fmt.Errorf("connector %s: %w: plugin %s: %w", s.Name, ErrStart, s.Path, err))
	}
	inst := &Instance{Client: client, Connector: conn, Info: info}
	if rc := client.ReattachConfig(); rc != nil {
		inst.Pid = rc.Pid
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	diags, err := conn.Configure(cctx, s.ConfigJSON)
	if err != nil {
		return fail(fmt.Errorf("connector %s: %w", s.Name, err))
	}
	var problems []string
	for _, d := range diags {
		msg := d.String()
		if s.ConfigError != nil {
			msg = s.ConfigError(d)
		}
		if d.Severity == plugin.SeverityError {
			problems = append(problems, msg)
		} else {
			s.Log.Warn("connector config", "connector", s.Name, "warning", msg)
			inst.Warnings = append(inst.Warnings, msg)
		}
	}
	if len(problems) > 0 {
		return fail(fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "\n")))
	}
	// Some capabilities follow the settings (a connector lists "send" only
	// when it is configured to send): ask again now that it has them.
	if inst.Info, err = conn.Info(ctx); err != nil {
		return fail(fmt.Errorf("connector %s: %w: plugin %s: %w", s.Name, ErrStart, s.Path, err))
	}
	return inst, nil
}

// Kill ends the plugin process.
func (i *Instance) Kill() {
	i.Connector.Close()
	i.Client.Kill()
}

// Backoff is the relaunch schedule: 5 s, doubling, at most 2 min; it starts
// over after a plugin ran for Stable.
type Backoff = backoff.Schedule

// DefaultBackoff is the schedule the design sets.
func DefaultBackoff() *Backoff {
	return &Backoff{Min: 5 * time.Second, Max: 2 * time.Minute, Stable: 2 * time.Minute}
}

// State is what the status endpoint shows of a plugin.
type State struct {
	mu        sync.Mutex
	Health    plugin.HealthState `json:"health"`
	Message   string             `json:"message,omitempty"`
	Pid       int                `json:"pid,omitempty"`
	Restarts  int                `json:"restarts"`
	LastError string             `json:"last_error,omitempty"`
	Since     time.Time          `json:"since"`
}

// Set updates the state.
func (s *State) Set(f func(*State)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// Snapshot copies the state for reading.
func (s *State) Snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return State{Health: s.Health, Message: s.Message, Pid: s.Pid, Restarts: s.Restarts, LastError: s.LastError, Since: s.Since}
}

// levelOf is the lowest level the host's logger shows, so that a plugin's
// debug lines appear with log.level: debug and cost nothing otherwise.
func levelOf(l *slog.Logger) hclog.Level {
	for _, lv := range []struct {
		slog  slog.Level
		hclog hclog.Level
	}{{slog.LevelDebug, hclog.Debug}, {slog.LevelInfo, hclog.Info}, {slog.LevelWarn, hclog.Warn}} {
		if l.Enabled(context.Background(), lv.slog) {
			return lv.hclog
		}
	}
	return hclog.Error
}
