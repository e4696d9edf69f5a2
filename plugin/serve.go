package plugin

import (
	"fmt"
	"log/slog"
	"os"

	goplugin "github.com/hashicorp/go-plugin"
)

// ServeConnector serves the connector made by factory over go-plugin and
// returns when the host ends the plugin. It is the whole of a plugin's main:
//
//	func main() { plugin.ServeConnector(myconnector.New) }
//
// Logs go to stderr as hclog JSON lines, so the host keeps their levels.
func ServeConnector(factory Factory) {
	logger := NewLogger(os.Stderr, slog.LevelDebug)
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		fmt.Fprintln(os.Stderr, "This is a mediagw connector plugin. It is started by the mediagw host, not by hand:\n"+
			"name it in the connectors section of the gateway's config.")
		os.Exit(1)
	}
	impl := factory(logger)
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		VersionedPlugins: map[int]goplugin.PluginSet{
			ProtocolVersion: {PluginName: &grpcPlugin{impl: impl, log: logger}},
		},
		GRPCServer: goplugin.DefaultGRPCServer,
	})
	if err := impl.Close(); err != nil {
		logger.Error("close connector", "error", err)
	}
}
