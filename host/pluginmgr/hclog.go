package pluginmgr

import (
	"context"
	"io"
	"log"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// slogAdapter lets go-plugin log (and relay plugin logs) into the host's
// slog logger, keeping levels and key/value pairs.
type slogAdapter struct {
	l     *slog.Logger
	name  string
	level hclog.Level
	args  []any
	// stderr keeps the plugin's last plain-text stderr lines; relay is
	// the name of the logger go-plugin relays the plugin's stderr through
	// (the base name of its binary).
	stderr *stderrTail
	relay  string
}

// newPluginHclog makes the hclog logger of one plugin binary: the plugin's
// stderr lines that are not hclog JSON (a panic, "fatal: cannot start", a
// missing library) are shown at warn, whatever log.level, and the last of
// them are kept in tail for the launch error.
func newPluginHclog(l *slog.Logger, level hclog.Level, binary string, tail *stderrTail) hclog.Logger {
	return &slogAdapter{l: l, level: level, stderr: tail, relay: filepath.Base(binary)}
}

// stderrTail holds the last few plain-text lines a plugin wrote to stderr.
type stderrTail struct {
	mu    sync.Mutex
	lines []string
}

const stderrTailLines = 5

func (t *stderrTail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > stderrTailLines {
		t.lines = t.lines[len(t.lines)-stderrTailLines:]
	}
}

// String joins the lines kept, oldest first, or returns "".
func (t *stderrTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, " / ")
}

func toSlog(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (a *slogAdapter) Log(level hclog.Level, msg string, args ...interface{}) {
	if a.relay != "" && a.name == a.relay && len(args) == 0 {
		// go-plugin relays a plugin's hclog JSON lines with their fields
		// (a timestamp at least) and its other stderr lines bare, at debug
		// unless they look like a panic.
		if a.stderr != nil {
			a.stderr.add(msg)
		}
		level = max(level, hclog.Warn)
	}
	if level < a.level || level == hclog.Off {
		return
	}
	all := append([]any{}, a.args...)
	for i := 0; i+1 < len(args); i += 2 {
		// go-plugin passes the plugin's own timestamp along; the host's
		// record has its time already.
		if k, _ := args[i].(string); k == "timestamp" {
			continue
		}
		all = append(all, args[i], args[i+1])
	}
	if len(args)%2 == 1 {
		all = append(all, args[len(args)-1])
	}
	if a.name != "" {
		all = append(all, "plugin", a.name)
	}
	a.l.Log(context.Background(), toSlog(level), msg, all...)
}

func (a *slogAdapter) Trace(msg string, args ...interface{}) { a.Log(hclog.Trace, msg, args...) }
func (a *slogAdapter) Debug(msg string, args ...interface{}) { a.Log(hclog.Debug, msg, args...) }
func (a *slogAdapter) Info(msg string, args ...interface{})  { a.Log(hclog.Info, msg, args...) }
func (a *slogAdapter) Warn(msg string, args ...interface{})  { a.Log(hclog.Warn, msg, args...) }
func (a *slogAdapter) Error(msg string, args ...interface{}) { a.Log(hclog.Error, msg, args...) }
func (a *slogAdapter) IsTrace() bool                         { return a.level <= hclog.Trace }
func (a *slogAdapter) IsDebug() bool                         { return a.level <= hclog.Debug }
func (a *slogAdapter) IsInfo() bool                          { return a.level <= hclog.Info }
func (a *slogAdapter) IsWarn() bool                          { return a.level <= hclog.Warn }
func (a *slogAdapter) IsError() bool                         { return a.level <= hclog.Error }
func (a *slogAdapter) ImpliedArgs() []interface{}            { return a.args }
func (a *slogAdapter) With(args ...interface{}) hclog.Logger {
	c := *a
	c.args = append(append([]any{}, a.args...), args...)
	return &c
}
func (a *slogAdapter) Name() string { return a.name }
func (a *slogAdapter) Named(name string) hclog.Logger {
	c := *a
	if c.name != "" {
		c.name += "." + name
	} else {
		c.name = name
	}
	return &c
}
func (a *slogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}
func (a *slogAdapter) SetLevel(level hclog.Level) { a.level = level }
func (a *slogAdapter) GetLevel() hclog.Level      { return a.level }
func (a *slogAdapter) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(a.l.Handler(), slog.LevelInfo)
}
func (a *slogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return io.Discard
}
