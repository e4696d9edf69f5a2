package pipeline

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/plugin"
)

// checkingSource looks into the spool when a settlement arrives.
type checkingSource struct {
	*source
	sp       spool.Store
	mu       sync.Mutex
	atSettle map[string]int // queued report jobs when each delivery was settled
}

func (s *checkingSource) Settle(ctx context.Context, id string, st plugin.Settlement) error {
	stats, _ := s.sp.Stats(ctx)
	s.mu.Lock()
	s.atSettle[id] = stats.Queued["report:inbox"]
	s.mu.Unlock()
	return s.source.Settle(ctx, id, st)
}

// TestRejectionReportBeforeSettle: the report of a rejected mail is in the
// spool before the rejection is settled, once per source id however often
// the mail comes; when the spool cannot take it the mail is retried, not
// rejected without its report.
func TestRejectionReportBeforeSettle(t *testing.T) {
	origin := &linedriver.Origin{From: "alice@example.org", MessageID: "m1@example.org"}
	rejecting := mapper(func([]byte) (*Mapped, error) { return &Mapped{Origin: origin}, errors.New("fax_number: missing") })
	var gotOrigin *linedriver.Origin
	var gotWhy error
	onReject := func(rec *linedriver.Record, why error) []spool.FollowUp {
		gotOrigin, gotWhy = rec.Origin, why
		return []spool.FollowUp{{Namespace: "report:inbox", Key: "rejected/" + rec.SourceID,
			Job: &linedriver.Job{ID: rec.ID + ".report.rejected", Driver: "report:inbox", Record: *rec}}}
	}
	sp := openSpool(t)
	woken := 0
	p := &Pipeline{Connector: "inbox", Mapper: rejecting, Targets: map[string]Target{}, Spool: sp, Log: discard(), MaxInFlight: 1,
		OnReject: onReject, FollowedUp: func() { woken++ }}
	src := &checkingSource{source: newSource(msg("d1", "maildir:a.eml"), msg("d2", "maildir:a.eml")), sp: sp, atSettle: map[string]int{}}
	runUntil(t, p, src, 2)

	for _, d := range []string{"d1", "d2"} {
		if s := src.settlements()[d]; len(s) != 1 || s[0].Kind != plugin.Reject {
			t.Fatalf("%s settled %+v, want one reject", d, s)
		}
		if n := src.atSettle[d]; n != 1 {
			t.Fatalf("%s: %d report jobs in the spool when the rejection was settled, want 1", d, n)
		}
	}
	if gotOrigin != origin || gotWhy == nil || gotWhy.Error() != "fax_number: missing" {
		t.Fatalf("OnReject saw origin %v, reason %v", gotOrigin, gotWhy)
	}
	if woken != 1 {
		t.Fatalf("report dispatcher woken %d times, want 1 (the second offer added nothing)", woken)
	}

	// The spool fails: the mail is retried, not rejected without a report.
	sp2 := openSpool(t)
	sp2.Close()
	p.Spool = sp2
	src2 := newSource(msg("d3", "maildir:b.eml"))
	runUntil(t, p, src2, 1)
	if s := src2.settlements()["d3"]; len(s) != 1 || s[0].Kind != plugin.Retry {
		t.Fatalf("with a failing spool: %+v, want retry", s)
	}
}
