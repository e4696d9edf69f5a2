package pluginmgr

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// slogAdapter lets go-plugin log (and relay plugin logs) into the host's
// slog logger, keeping levels and key/value pairs.
type slogAdapter struct {
	l     *slog.Logger
	name  string
	level hclog.Level
	args  []any
}

func newHclog(l *slog.Logger, level hclog.Level) hclog.Logger {
	return &slogAdapter{l: l, level: level}
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
