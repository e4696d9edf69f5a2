package spool

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/linedriver"
)

// copyTestdata copies a spool file kept in testdata to a temporary folder:
// the kept file is never written.
func copyTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "spool.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func tdID(n, driver string) string { return "20261130T090000.000Z-" + n + "." + driver }

// TestUpgradeFromV1 opens the spool file of the release before the format
// was versioned (testdata/README.md says what it holds) and checks each
// item: queued jobs with their state, the retrying job with its history,
// the failed job and its queued report, the delivered one's source id, the
// follow-up key, the undecodable entry quarantined, the documents byte for
// byte and stored once. Then it opens the file again: nothing to upgrade.
func TestUpgradeFromV1(t *testing.T) {
	path := copyTestdata(t, "spool-v1.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Upgrade{From: 1, To: Format, Jobs: 4, Failed: 1, Undecodable: 1}
	if up := s.Upgraded(); up == nil || *up != want {
		t.Errorf("Upgraded = %+v, want %+v", up, want)
	}
	checkV1Content(t, s, true)
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if up := s.Upgraded(); up != nil {
		t.Errorf("second Open upgraded again: %+v", up)
	}
	checkV1Content(t, s, false)
}

func checkV1Content(t *testing.T, s *Spool, first bool) {
	t.Helper()
	for _, src := range []string{"<m1>", "<m2>", "<m3>", "<m4>"} {
		if seen, err := s.Seen(bg, "inbox", src); err != nil || !seen {
			t.Errorf("source id %s: seen %v, %v; want remembered", src, seen, err)
		}
	}
	a1State, a1Category := StateQueued, ""
	if !first {
		a1State, a1Category = StateRetrying, "busy" // the first pass leased it and put it back
	}
	for _, tc := range []struct {
		id, state, category string
		attempts, history   int
	}{
		{tdID("a1", "fax"), a1State, a1Category, 0, 0},
		{tdID("a1", "file"), StateQueued, "", 0, 0},
		{tdID("b2", "fax"), StateRetrying, "busy", 1, 1},
		{tdID("c3", "fax"), StateFailed, "bad_number", 1, 1},
		{tdID("c3r", "report:inbox"), StateQueued, "", 0, 0},
	} {
		d, err := s.Job(bg, tc.id)
		if err != nil {
			t.Errorf("%s: %v", tc.id, err)
			continue
		}
		if d.State != tc.state || d.Category != tc.category || d.Attempts != tc.attempts || len(d.History) != tc.history ||
			d.Connector != "inbox" || d.Fields["fax_number"] != "+41445551234" || d.Fields["recipient"] != "Ward 3" ||
			len(d.Documents) != 1 || d.Documents[0] != (DocInfo{"order.pdf", "application/pdf", len(testdataDoc)}) {
			t.Errorf("%s = %+v; want %s, category %q, %d attempts, %d in history, its fields and order.pdf", tc.id, d, tc.state, tc.category, tc.attempts, tc.history)
		}
		e, err := s.Entry(bg, tc.id)
		if err != nil || len(e.Job.Record.Documents) != 1 || string(e.Job.Record.Documents[0].Data) != string(testdataDoc) ||
			e.Job.Record.Origin == nil || e.Job.Record.Origin.From != "doctor@example.org" {
			t.Errorf("%s: the record did not come back whole: %v", tc.id, err)
		}
	}
	if d, _ := s.Job(bg, tdID("b2", "fax")); d != nil && (d.History[0].Category != "busy" || d.History[0].Log != "ATD...\nBUSY") {
		t.Errorf("b2's attempt = %+v", d.History[0])
	}
	if _, err := s.Job(bg, tdID("d4", "file")); !errors.Is(err, ErrNotFound) {
		t.Errorf("the delivered job: %v, want ErrNotFound", err)
	}
	// The report's key deduplicates still.
	rep := FollowUp{Namespace: "report:inbox", Key: tdID("c3", "fax") + "/failed", Job: testdataJob(tdID("c3x", "report:inbox"), "report:inbox", "<m3>", time.Now())}
	if n, err := s.Add(bg, []FollowUp{rep}); err != nil || n != 0 {
		t.Errorf("Add of the report's key again = %d, %v; want 0", n, err)
	}
	// One document, held by the five jobs that have it.
	err := s.view(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketDocs).Stats().KeyN; n != 1 {
			t.Errorf("%d documents stored, want 1", n)
		}
		if v := tx.Bucket(bucketRefs).Get(docKey(testdataDoc)); len(v) != 4 || binary.BigEndian.Uint32(v) != 5 {
			t.Errorf("document held %v times, want 5", v)
		}
		if v := tx.Bucket(bucketMeta).Get(keyFormat); string(v) != "2" {
			t.Errorf("format %q, want 2", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if first {
		// The lease meets the undecodable entry first (it is due
		// earliest), quarantines it and goes on with a1.fax and its
		// page state.
		e, _, err := s.Lease(bg, "fax", "w", time.Minute)
		if err != nil || e == nil || e.Job.ID != tdID("a1", "fax") || string(e.Job.State) != `{"pages_done":1}` {
			t.Fatalf("Lease(fax) = %+v, %v; want a1.fax with its page state", e, err)
		}
		if _, err := s.Complete(bg, e.Job.ID, "w", linedriver.Retry("busy", "busy", 0), false, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	q, err := s.Quarantine(bg)
	if err != nil || len(q) != 1 || q[0].Key != tdID("e5", "fax") || string(q[0].Data) != "{not json" || !strings.Contains(q[0].Error, ErrCorrupt.Error()) {
		t.Errorf("Quarantine = %+v, %v; want e5.fax with its bytes", q, err)
	}
	st, err := s.Stats(bg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Queued["fax"] != 2 || st.Queued["file"] != 1 || st.Queued["report:inbox"] != 1 || st.Failed != 1 || st.Sources != 5 {
		t.Errorf("Stats = %+v; want fax 2, file 1, report 1 queued, 1 failed, 5 source ids", st)
	}
}

// TestNewerFormatRefused: a file of a format this release does not know
// is not opened, and the error names both formats.
func TestNewerFormatRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, []byte("3")) })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "format 3") || !strings.Contains(err.Error(), "to 2") {
		t.Fatalf("Open of a format-3 file = %v; want ErrFormat naming 3 and 2", err)
	}
}

// A job's state saved in the middle of an attempt is written alone.
func TestSaveStateWritesOnlyTheState(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	j := testdataJob(tdID("a1", "fax"), "fax", "<m1>", time.Now())
	j.Record.Documents[0].Data = make([]byte, 1<<20)
	if _, err := s.Accept(bg, "inbox", "<m1>", []*linedriver.Job{j}); err != nil {
		t.Fatal(err)
	}
	before := pageAlloc(s)
	if err := s.saveState(j.ID, json.RawMessage(`{"pages_done":1}`)); err != nil {
		t.Fatal(err)
	}
	if n := pageAlloc(s) - before; n > 64<<10 {
		t.Errorf("a page state of a job with a 1 MiB document wrote %d bytes", n)
	}
}

// pageAlloc is the bytes of pages the spool's transactions allocated (wrote)
// since it opened.
func pageAlloc(s *Spool) int64 {
	st := s.db.Stats()
	return st.TxStats.GetPageAlloc()
}

// TestUpgradeCutOff: an upgrade cut off after some rows were rewritten
// (the queued jobs, and one failed job) leaves the file as it was, in
// format 1; the next Open upgrades all of it, as if the first had not been.
func TestUpgradeCutOff(t *testing.T) {
	path := copyTestdata(t, "spool-v1.db")
	cut := errors.New("cut off")
	upgradeFault = func(bucket []byte, rows int) error {
		if string(bucket) == string(bucketFailed) {
			return cut
		}
		return nil
	}
	s, err := Open(path)
	upgradeFault = nil
	if !errors.Is(err, cut) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open with the upgrade cut off = %v, want the cut", err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := Upgrade{From: 1, To: Format, Jobs: 4, Failed: 1, Undecodable: 1}
	if up := s.Upgraded(); up == nil || *up != want {
		t.Errorf("Upgraded after a cut-off upgrade = %+v, want all of it again: %+v", up, want)
	}
	checkV1Content(t, s, true)
}
