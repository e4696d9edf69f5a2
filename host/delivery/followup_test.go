package delivery

import (
	"context"
	"sync"
	"testing"

	"github.com/mediagw/mediagw/host/spool"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver"
)

// TestFollowUpsWithFinalOutcome: a final outcome's follow-up job (its
// report) is written with it; a temporary one makes none.
func TestFollowUpsWithFinalOutcome(t *testing.T) {
	cases := []struct {
		name     string
		outcomes []func(context.Context, *linedriver.Job) linedriver.Outcome
		asked    []linedriver.Result // outcomes the hook was asked about
		reports  int
	}{
		{"delivered", []func(context.Context, *linedriver.Job) linedriver.Outcome{give(linedriver.Done(nil))}, []linedriver.Result{linedriver.Delivered}, 1},
		{"failed after a retry", []func(context.Context, *linedriver.Job) linedriver.Outcome{
			give(linedriver.Retry("busy", "BUSY", 0)), give(linedriver.Fail("dial_policy", "refused"))}, []linedriver.Result{linedriver.Permanent}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sp := newSpool(t)
			d := &script{name: "fax", slots: 1, outcomes: c.outcomes}
			var log testenv.Buffer
			disp := New(d, sp, logger(&log), 0)
			var mu sync.Mutex
			var asked []linedriver.Result
			woken := 0
			disp.FollowUps = func(j *linedriver.Job, o linedriver.Outcome) []spool.FollowUp {
				mu.Lock()
				asked = append(asked, o.Result)
				mu.Unlock()
				return []spool.FollowUp{{Namespace: "report:inbox", Key: j.Record.ID + "/x",
					Job: &linedriver.Job{ID: j.Record.ID + ".report.x", Driver: "report:inbox", Record: j.Record}}}
			}
			disp.FollowedUp = func() { mu.Lock(); woken++; mu.Unlock() }
			accept(t, sp, "fax", "r1")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { disp.Run(ctx); close(done) }()
			disp.Notify()
			waitUntil(t, "the report job", func() bool { st, _ := sp.Stats(t.Context()); return st.Queued["report:inbox"] == 1 })
			cancel()
			<-done
			mu.Lock()
			defer mu.Unlock()
			if len(asked) != len(c.asked) || asked[0] != c.asked[0] || woken != 1 {
				t.Fatalf("hook asked about %v, woken %d; want %v, 1", asked, woken, c.asked)
			}
			if st, _ := sp.Stats(t.Context()); st.Queued["fax"] != 0 || st.Queued["report:inbox"] != c.reports {
				t.Fatalf("spool %+v", st)
			}
		})
	}
}
