package host

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/pluginmgr"
)

// NewLogger makes the gateway's logger from the log section of a config.
func NewLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // config.Load checked it
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// CheckConnectors starts each connector plugin of a plan once, hands it its
// config and stops it: the plugin's own checks of its settings, with
// file:line. Problems stop the gateway; warnings do not.
func CheckConnectors(plan *Plan) (problems, warnings []string) {
	quiet := slog.New(slog.DiscardHandler)
	for _, name := range config.SortedKeys(plan.Connectors) {
		inst, err := LaunchConnector(plan, name, quiet)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		warnings = append(warnings, inst.Warnings...)
		inst.Kill()
	}
	return problems, warnings
}

// LaunchConnector starts the plugin of one connector of a plan and hands it
// its settings; the caller kills the instance.
func LaunchConnector(plan *Plan, name string, log *slog.Logger) (*pluginmgr.Instance, error) {
	cp := plan.Connectors[name]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inst, err := pluginmgr.Launch(ctx, pluginmgr.Spec{
		Name: name, Path: cp.Config.PluginPath, Dir: filepath.Dir(plan.Config.File), Checksum: cp.Config.Checksum, ConfigJSON: cp.JSON,
		MaxInFlight: cp.Config.MaxInFlight, Log: log, ConfigError: ConfigError(plan.Config, name),
	})
	if err != nil {
		// the plugin's problems, each with file:line, without
		// pluginmgr's heading; errors.Is(err, pluginmgr.ErrConfig) holds
		return nil, &rejectedError{msg: strings.TrimPrefix(err.Error(), pluginmgr.ErrConfig.Error()+": "), err: err}
	}
	return inst, nil
}

// rejectedError is a connector's launch error, told as the plugin's
// problems alone, that still unwraps to pluginmgr's error.
type rejectedError struct {
	msg string
	err error
}

func (e *rejectedError) Error() string { return e.msg }
func (e *rejectedError) Unwrap() error { return e.err }
