package plugin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// LoginCommand is the argument that makes a plugin binary run its
// connector's Login instead of serving: `mediagw login CONNECTOR` starts the
// plugin as `<plugin> login` in the config file's folder, with the
// connector's settings (JSON) on stdin and the terminal on stdout.
const LoginCommand = "login"

// Loginer is implemented by connectors whose credential needs a person to
// sign in once (a delegated OAuth mode): Login decodes configJSON, runs the
// sign-in (telling the person what to do on out), and keeps what it gets
// (a refresh token) where the connector finds it later. It never writes a
// secret to out.
type Loginer interface {
	Login(ctx context.Context, configJSON []byte, out io.Writer) error
}

// runLogin is a plugin binary's `login` mode; it returns the exit code.
func runLogin(factory Factory) int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	impl := factory(logger)
	defer impl.Close()
	l, ok := impl.(Loginer)
	if !ok {
		name := "connector"
		if info, err := impl.Info(context.Background()); err == nil {
			name = info.Name
		}
		fmt.Fprintf(os.Stderr, "%s: this connector has no sign-in to run\n", name)
		return 2
	}
	cfg, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "login: read settings: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := l.Login(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "login: %v\n", err)
		return 1
	}
	return 0
}
