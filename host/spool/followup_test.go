package spool

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/mediagw/mediagw/linedriver"
)

func report(rec, event string) FollowUp {
	return FollowUp{Namespace: "report:inbox", Key: rec + "/" + event, Job: job(rec+".report."+event, "report:inbox")}
}

// TestCompleteWith: the outcome and its follow-up are one transaction, so a
// spool reopened after it (a crash after "fax done") holds the report, and
// the same follow-up is added once however often it is offered.
func TestCompleteWith(t *testing.T) {
	cases := []struct {
		name      string
		outcome   linedriver.Outcome
		follow    []FollowUp
		wantAdded int
		wantFax   int // fax jobs queued after
		wantRep   int // report jobs queued after
		wantFail  int
	}{
		{"delivered with its report", linedriver.Done(nil), []FollowUp{report("a", "delivered")}, 1, 0, 1, 0},
		{"failed with its report", linedriver.Fail("busy", "BUSY"), []FollowUp{report("a", "failed")}, 1, 0, 1, 1},
		{"delivered without report", linedriver.Done(nil), nil, 0, 0, 0, 0},
		{"the same report twice in one call", linedriver.Done(nil), []FollowUp{report("a", "delivered"), report("a", "delivered")}, 1, 0, 1, 0},
		{"temporary with a follow-up", linedriver.Retry("busy", "BUSY", 0), []FollowUp{report("a", "x")}, 1, 1, 1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spool.db")
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Accept(bg, "inbox", "src-a", []*linedriver.Job{job("a.fax", "fax")}); err != nil {
				t.Fatal(err)
			}
			n, err := s.finishWith("a.fax", c.outcome, true, nil, c.follow)
			if err != nil || n != c.wantAdded {
				t.Fatalf("CompleteWith = %d, %v; want %d added", n, err, c.wantAdded)
			}
			s.Close() // as if killed: nothing more happens before the reopen

			s, err = Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			st, _ := s.Stats(bg)
			if st.Queued["fax"] != c.wantFax || st.Queued["report:inbox"] != c.wantRep || st.Failed != c.wantFail {
				t.Fatalf("after reopen: %+v, want fax %d report %d failed %d", st, c.wantFax, c.wantRep, c.wantFail)
			}
			// Offered again (a second driver of the record, a replay): no second report.
			if n, err := s.Add(bg, c.follow); err != nil || n != 0 {
				t.Fatalf("Add of the same follow-ups again = %d, %v; want 0", n, err)
			}
		})
	}
}

// TestFollowUpDedupeOutlivesJob: once a report was sent (its job gone), the
// same key adds nothing until Forget drops it.
func TestFollowUpDedupeOutlivesJob(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := []FollowUp{report("r", "rejected")}
	if n, err := s.Add(bg, f); n != 1 || err != nil {
		t.Fatalf("Add = %d, %v", n, err)
	}
	if err := s.finish(f[0].Job.ID, linedriver.Done(nil), true); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Add(bg, f); n != 0 {
		t.Fatal("a sent report was queued again")
	}
	if n, err := s.Forget(bg, time.Now().Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("Forget = %d, %v", n, err)
	}
	if n, _ := s.Add(bg, f); n != 1 {
		t.Fatal("a forgotten key still blocks its follow-up")
	}
}
