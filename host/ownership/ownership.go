// Package ownership decides which gateway runs a connector: with several
// gateways on one PostgreSQL spool, a connector (a mailbox) is read by
// exactly one of them at a time. Each connector has a lease row (owner,
// expires, epoch) that its owner renews by a heartbeat; when the owner stops
// renewing, another gateway takes the lease within takeover_after; an owner
// that cannot renew stops reading before its lease can expire.
//
// With one gateway (the bbolt spool) ownership is always held: Single.
package ownership

import (
	"context"
	"errors"
	"sync"
)

// Owner hands out leases on connectors.
type Owner interface {
	// Acquire blocks until this gateway owns connector, or ctx ends (then
	// it returns ctx's error). The caller may read the connector's source
	// until the lease's Lost channel is closed, and must stop at once then.
	Acquire(ctx context.Context, connector string) (*Lease, error)
}

// Lease is this gateway's ownership of one connector.
type Lease struct {
	Connector string
	// Owner is the gateway's name.
	Owner string
	// Epoch is the fencing token: it grows by one every time the lease
	// changes hands (or is taken again), so a write stamped with an old
	// epoch can be refused (CheckFence).
	Epoch int64

	lost    chan struct{}
	once    sync.Once
	release func()
}

// Lost is closed when the lease ends: it was not renewed in time (the
// gateway stops before it could expire), another gateway holds it now, or
// Release was called.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Release gives the lease up so that another gateway may take it at once
// (the gateway stops, or stops running the connector). It returns when the
// lease has ended; calling it again, or after the lease was lost, does
// nothing.
func (l *Lease) Release() {
	l.once.Do(func() {
		if l.release != nil {
			l.release()
		} else {
			close(l.lost)
		}
	})
}

// Fence is the lease's fencing token, to go with the owner's writes.
func (l *Lease) Fence() Fence { return Fence{Connector: l.Connector, Owner: l.Owner, Epoch: l.Epoch} }

// Single is the owner of a gateway that shares its spool with no other
// (bbolt): every connector is always owned, and a lease is lost only when
// released.
type Single struct {
	Gateway string
}

var _ Owner = Single{}

// Acquire returns a lease that is held until Release.
func (s Single) Acquire(ctx context.Context, connector string) (*Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &Lease{Connector: connector, Owner: s.Gateway, lost: make(chan struct{})}, nil
}

// Fence identifies the holder of a connector's lease at one epoch.
type Fence struct {
	Connector string
	Owner     string
	Epoch     int64
}

type fenceKey struct{}

// WithFence returns a context that carries f, for a backend whose writes
// check it (CheckFence).
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceFrom returns the fence ctx carries.
func FenceFrom(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}

// ErrFenced is returned by CheckFence when the writer no longer holds the
// connector's lease at its epoch.
var ErrFenced = errors.New("ownership: lease no longer held at this epoch")
