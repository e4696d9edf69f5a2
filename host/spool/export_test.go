package spool

import (
	"bytes"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// CorruptJob makes queued job id undecodable (for the conformance test,
// which runs outside the package).
func (s *Spool) CorruptJob(id string) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).Put([]byte(id), []byte("{\x00not json"))
	})
}

// TestExport hands over every queued and failed job whole (documents byte
// for byte, state, history, retry mark) and every remembered source id, from
// a file upgraded from format 1: what `mediagw spool export` copies.
func TestExport(t *testing.T) {
	s, err := Open(copyTestdata(t, "spool-v1.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	jobs := map[string]*Exported{}
	var sources []string
	skipped, err := s.Export(t.Context(), func(x *Exported) error { jobs[x.Entry.Job.ID] = x; return nil },
		func(src *Source) error { sources = append(sources, src.Connector+" "+src.SourceID); return nil })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		failed, retry bool
		history       int
		state         string
	}{
		tdID("a1", "fax"):           {state: `{"pages_done":1}`},
		tdID("a1", "file"):          {},
		tdID("b2", "fax"):           {retry: true, history: 1},
		tdID("c3", "fax"):           {failed: true, history: 1},
		tdID("c3r", "report:inbox"): {},
	}
	if len(jobs) != len(want) {
		t.Errorf("%d jobs exported, want %d (the undecodable one stays behind)", len(jobs), len(want))
	}
	if len(skipped) != 1 || skipped[0] != tdID("e5", "fax") {
		t.Errorf("skipped %q, want the one undecodable job", skipped)
	}
	for id, w := range want {
		x := jobs[id]
		if x == nil {
			t.Errorf("%s not exported", id)
			continue
		}
		if x.Failed != w.failed || x.Retry != w.retry || len(x.History) != w.history || string(x.Entry.Job.State) != w.state {
			t.Errorf("%s: failed %v retry %v history %d state %q; want %+v", id, x.Failed, x.Retry, len(x.History), x.Entry.Job.State, w)
		}
		if d := x.Entry.Job.Record.Documents; len(d) != 1 || !bytes.Equal(d[0].Data, testdataDoc) {
			t.Errorf("%s: documents not exported whole: %d", id, len(d))
		}
	}
	if len(sources) != 5 {
		t.Errorf("sources %q, want the 4 mails and the report's key", sources)
	}
}
