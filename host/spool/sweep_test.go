package spool

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/linedriver"
)

// TestCompactSweepsDocuments: a job row that cannot be decoded cannot say
// which documents it held; once it is quarantined, the compaction gives
// back what no row holds and sets the counts right, and the last job of a
// shared document still frees it.
func TestCompactSweepsDocuments(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	alone := testdataJob(tdID("a1", "fax"), "fax", "<m1>", time.Now())
	alone.Record.Documents[0].Data = []byte("held by one job only")
	shared1, shared2 := testdataJob(tdID("b2", "fax"), "fax", "<m2>", time.Now()), testdataJob(tdID("b2", "file"), "file", "<m2>", time.Now())
	for src, jobs := range map[string][]*linedriver.Job{"<m1>": {alone}, "<m2>": {shared1, shared2}} {
		if _, err := s.Accept(bg, "inbox", src, jobs); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{alone.ID, shared1.ID} {
		if err := s.CorruptJob(id); err != nil {
			t.Fatal(err)
		}
	}
	if e, _, err := s.Lease(bg, "fax", "w", time.Minute); err != nil || e != nil {
		t.Fatalf("Lease = %v, %v; want both fax jobs quarantined", e, err)
	}
	counts := func() (docs int, shared uint32) {
		_ = s.view(func(tx *bolt.Tx) error {
			docs = tx.Bucket(bucketDocs).Stats().KeyN
			if v := tx.Bucket(bucketRefs).Get(docKey(testdataDoc)); len(v) == 4 {
				shared = binary.BigEndian.Uint32(v)
			}
			return nil
		})
		return docs, shared
	}
	if docs, shared := counts(); docs != 2 || shared != 2 {
		t.Fatalf("before the compaction: %d documents, the shared one held %d times; want the leak: 2 and 2", docs, shared)
	}
	if _, err := s.Compact(bg); err != nil {
		t.Fatal(err)
	}
	if docs, shared := counts(); docs != 1 || shared != 1 {
		t.Errorf("after the compaction: %d documents, the shared one held %d times; want 1 and 1", docs, shared)
	}
	if err := s.finish(shared2.ID, linedriver.Done(nil), true); err != nil {
		t.Fatal(err)
	}
	if docs, _ := counts(); docs != 0 {
		t.Errorf("after the last job was delivered: %d documents, want 0", docs)
	}
}
