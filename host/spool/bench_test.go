package spool

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/linedriver"
)

// BenchmarkSaveState: a fax driver saves a page's state of a job whose
// record carries a 256 KiB document. "store-once" is SaveState; "whole-job"
// is the write it replaced (format 1: the whole job, documents in base64,
// encoded and put again). It reports the bytes of pages written per save.
func BenchmarkSaveState(b *testing.B) {
	for _, mode := range []string{"whole-job", "store-once"} {
		b.Run(mode, func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "spool.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			j := &linedriver.Job{ID: "r1.fax", Driver: "fax", Record: linedriver.Record{ID: "r1", SourceID: "s1",
				Fields:    map[string]string{"fax_number": "+41445551234"},
				Documents: []linedriver.Document{{Name: "order.pdf", MediaType: "application/pdf", Data: make([]byte, 256<<10)}}}}
			if _, err := s.Accept(bg, "inbox", "s1", []*linedriver.Job{j}); err != nil {
				b.Fatal(err)
			}
			s.hold(j.ID)
			if err := s.update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists([]byte("bench")); return err }); err != nil {
				b.Fatal(err)
			}
			before := pageAlloc(s)
			b.ResetTimer()
			for i := range b.N {
				state := json.RawMessage(fmt.Sprintf(`{"pages_done":%d}`, i))
				if mode == "store-once" {
					err = s.SaveState(bg, j.ID, testHolder, state)
				} else {
					err = s.update(func(tx *bolt.Tx) error {
						e := Entry{Job: *j, Due: time.Now()}
						e.Job.State = state
						v, err := json.Marshal(e)
						if err != nil {
							return err
						}
						return tx.Bucket([]byte("bench")).Put([]byte(j.ID), v)
					})
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(pageAlloc(s)-before)/float64(b.N), "bytes-written/save")
		})
	}
}
