package host

import (
	"slices"
	"time"

	"github.com/mediagw/mediagw/host/gateways"
	"github.com/mediagw/mediagw/host/ownership"
)

// Version is the gateway's version, shown in the gateways registry (the
// command sets it).
var Version = "dev"

// SharedDB is the PostgreSQL database a group of gateways shares
// (*pgxpool.Pool): the connectors' leases and the gateways registry live
// there beside the spool.
type SharedDB interface {
	ownership.DB
	gateways.DB
}

type shared struct {
	db       SharedDB
	takeover time.Duration
	registry *gateways.Registry
}

// Share makes the host one gateway of a group on db: a connector runs here
// only while this gateway holds its lease (ownership.Postgres), and the
// gateway keeps its row in the registry (its drivers, the connectors it
// owns). Call it before Run.
func (h *Host) Share(db SharedDB, takeoverAfter time.Duration, version string) {
	h.owner = ownership.NewPostgres(db, ownership.Options{Gateway: h.gateway, TakeoverAfter: takeoverAfter, Log: h.log})
	h.shared = &shared{db: db, takeover: takeoverAfter,
		registry: gateways.New(db, h.gateway, version, takeoverAfter, h.running, h.log)}
}

// Shared reports whether the host is one gateway of a group (Share).
func (h *Host) Shared() bool { return h.shared != nil }

// Gateway is this gateway's name.
func (h *Host) Gateway() string { return h.gateway }

// running returns the drivers this gateway runs and the connectors it
// owns now, sorted.
func (h *Host) running() (drivers, connectors []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name := range h.drivers {
		drivers = append(drivers, name)
	}
	h.rmu.Lock()
	for _, u := range h.reporters {
		drivers = append(drivers, u.driver.Name())
	}
	for _, u := range h.mailers {
		drivers = append(drivers, u.driver.Name())
	}
	h.rmu.Unlock()
	for name, u := range h.conns {
		if u.owned() {
			connectors = append(connectors, name)
		}
	}
	slices.Sort(drivers)
	slices.Sort(connectors)
	return drivers, connectors
}

// kickRegistry writes this gateway's row now (a connector was taken or
// lost), when it shares its spool.
func (h *Host) kickRegistry() {
	if h.shared != nil {
		h.shared.registry.Kick()
	}
}
