package spool

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/linedriver"
)

// BenchmarkAccept: accepts of a 4 KiB record on disk by 1, 16 and 64
// concurrent callers (connectors' messages in flight), with group commit
// and with one transaction (one fsync) per accept as before. It reports
// accepts per commit (each commit is bbolt's two fsyncs: data, then meta),
// the p99 latency of one accept, and accepts per second.
func BenchmarkAccept(b *testing.B) {
	doc := make([]byte, 4<<10)
	for _, path := range []string{"per-accept", "group"} {
		for _, callers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/callers=%d", path, callers), func(b *testing.B) {
				s, err := Open(filepath.Join(b.TempDir(), "spool.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				s.c.single = path == "per-accept"
				var next atomic.Int64
				lat := make([][]time.Duration, callers)
				before := s.CommitStats()
				b.ResetTimer()
				var wg sync.WaitGroup
				for c := range callers {
					wg.Go(func() {
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							id := fmt.Sprint("r", i)
							j := job(id, "file")
							j.Record.Documents = []linedriver.Document{{Name: "body.txt", MediaType: "text/plain", Data: doc}}
							start := time.Now()
							if _, err := s.Accept(bg, "inbox", id, []*linedriver.Job{j}); err != nil {
								b.Error(err)
								return
							}
							lat[c] = append(lat[c], time.Since(start))
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				after := s.CommitStats()
				all := slices.Concat(lat...)
				slices.Sort(all)
				if len(all) == 0 {
					return
				}
				b.ReportMetric(float64(after.Writes-before.Writes)/float64(max(after.Commits-before.Commits, 1)), "accepts/fsync")
				b.ReportMetric(float64(all[(len(all)-1)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepts/s")
			})
		}
	}
}

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
