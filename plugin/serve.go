package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
)

// ServeConnector serves the connector made by factory over go-plugin and
// returns when the host ends the plugin. It is the whole of a plugin's main:
//
//	func main() { plugin.ServeConnector(myconnector.New) }
//
// Logs go to stderr as hclog JSON lines, so the host keeps their levels.
//
// A plugin never outlives its host: when its parent process changes (the
// host died, even by kill -9, and the plugin was handed to init) or it gets
// SIGTERM (the host's parent-death signal, or a service manager stopping
// everything), the connector is closed and the process exits.
//
// Started as `<plugin> login` (by `mediagw login`), it runs the connector's
// Login instead (see Loginer) and exits.
func ServeConnector(factory Factory) {
	host := os.Getppid()
	if len(os.Args) == 2 && os.Args[1] == LoginCommand {
		os.Exit(runLogin(factory))
	}
	logger := NewLogger(os.Stderr, slog.LevelDebug)
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		fmt.Fprintln(os.Stderr, "This is a mediagw connector plugin. It is started by the mediagw host, not by hand:\n"+
			"name it in the connectors section of the gateway's config.")
		os.Exit(1)
	}
	// When the host dies, so does the reader of our stderr: a log line
	// then fails (EPIPE) instead of ending the process with SIGPIPE before
	// the connector is closed.
	signal.Ignore(syscall.SIGPIPE)
	impl := factory(logger)
	var once sync.Once
	closeImpl := func() {
		once.Do(func() {
			if err := impl.Close(); err != nil && !errors.Is(err, ErrClosed) {
				logger.Error("close connector", "error", err)
			}
		})
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-term
			cancel()
		}()
		watchParent(ctx, host, os.Getppid, ParentPollInterval)
		logger.Info("plugin: the host is gone or asked us to stop; closing the connector")
		closeImpl()
		os.Exit(0)
	}()
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		VersionedPlugins: map[int]goplugin.PluginSet{
			ProtocolVersion: {PluginName: &grpcPlugin{impl: impl, log: logger}},
		},
		GRPCServer: goplugin.DefaultGRPCServer,
	})
	closeImpl()
}

// ParentPollInterval is how often a plugin checks that its host still lives.
const ParentPollInterval = time.Second

// watchParent returns when the process's parent is no longer host, or when
// ctx ends. The parent is not compared with 1: in a container the host may
// well be process 1 itself.
func watchParent(ctx context.Context, host int, getppid func() int, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if getppid() != host {
				return
			}
		}
	}
}
