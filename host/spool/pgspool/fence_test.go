package pgspool

import (
	"errors"
	"testing"

	"github.com/mediagw/mediagw/host/ownership"
	"github.com/mediagw/mediagw/linedriver"
)

// An accept that carries a connector's fence is stored only while its
// gateway holds the connector's lease at that epoch.
func TestAcceptFenced(t *testing.T) {
	s, _, dsn := newStore(t)
	other := open(t, dsn, "gw2")
	ctx := ctxT(t)
	a := ownership.NewPostgres(s.Pool(), ownership.Options{Gateway: "gw1"})
	b := ownership.NewPostgres(other.Pool(), ownership.Options{Gateway: "gw2"})
	la, err := a.Acquire(ctx, "inbox")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		before func()
		store  *Store
		lease  func() *ownership.Lease
		source string
		fenced bool
	}{
		{"owner", func() {}, s, func() *ownership.Lease { return la }, "s1", false},
		{"former owner after it handed the lease back", func() { la.Release() }, s, func() *ownership.Lease { return la }, "s2", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.before()
			_, err := tc.store.Accept(ownership.WithFence(ctx, tc.lease().Fence()), "inbox", tc.source, []*linedriver.Job{job(tc.source, "fax")})
			if got := errors.Is(err, ownership.ErrFenced); got != tc.fenced {
				t.Fatalf("accept: %v, want fenced %v", err, tc.fenced)
			}
			seen, err := tc.store.Seen(ctx, "inbox", tc.source)
			if err != nil || seen == tc.fenced {
				t.Fatalf("seen %v (%v) after a fenced=%v accept", seen, err, tc.fenced)
			}
		})
	}
	lb, err := b.Acquire(ctx, "inbox")
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Release()
	if dup, err := other.Accept(ownership.WithFence(ctx, lb.Fence()), "inbox", "s2", []*linedriver.Job{job("s2", "fax")}); err != nil || dup {
		t.Fatalf("the new owner's accept: dup %v, %v", dup, err)
	}
}
