package plugin

import (
	"context"
	"log/slog"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	connectorv1 "github.com/mediagw/mediagw/proto/mediagw/connector/v1"
)

// ProtocolVersion is the connector protocol major version served by this SDK.
const ProtocolVersion = 1

// PluginName is the name under which a connector is dispensed.
const PluginName = "connector"

// Handshake is shared by host and plugins. The cookie only keeps a plugin
// binary from being run by hand by mistake; it is not a security measure.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "MEDIAGW_PLUGIN",
	MagicCookieValue: "connector-7f3c1e0a",
}

// grpcPlugin binds a Connector to go-plugin's gRPC transport, on both sides.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	impl Connector    // plugin side only
	log  *slog.Logger // plugin side only; nil discards
}

func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	connectorv1.RegisterConnectorServer(s, newServer(p.impl, p.log))
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return NewGRPCClient(connectorv1.NewConnectorClient(c)), nil
}

// HostPlugins is the plugin set a host passes to go-plugin's ClientConfig as
// VersionedPlugins. Dispense(PluginName) then yields a Connector.
func HostPlugins() map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{
		ProtocolVersion: {PluginName: &grpcPlugin{}},
	}
}
