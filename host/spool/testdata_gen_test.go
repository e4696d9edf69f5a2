package spool

import (
	"encoding/json"
	"flag"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/linedriver"
)

// writeTestdata, when set, makes TestWriteTestdata write a spool file in
// the format of the code it is built from: the upgrade tests open such a
// file kept in testdata (see testdata/README.md).
var writeTestdata = flag.String("spool.write-testdata", "", "write a spool file in the current format to this path")

// testdataJobs is what a testdata spool holds, as the upgrade tests expect it.
var testdataDoc = []byte("%PDF-1.4\n% a small document kept byte for byte\n%%EOF\n")

func testdataJob(id, driver, sourceID string, accepted time.Time) *linedriver.Job {
	return &linedriver.Job{
		ID: id, Driver: driver, Accepted: accepted,
		Record: linedriver.Record{
			ID: id[:len(id)-len(driver)-1], SourceID: sourceID, Connector: "inbox", Received: accepted,
			Fields:    map[string]string{"fax_number": "+41445551234", "recipient": "Ward 3"},
			Documents: []linedriver.Document{{Name: "order.pdf", MediaType: "application/pdf", Data: testdataDoc}},
			Origin:    &linedriver.Origin{MessageID: sourceID + "@example.org", From: "doctor@example.org", Subject: "Order"},
		},
	}
}

func TestWriteTestdata(t *testing.T) {
	if *writeTestdata == "" {
		t.Skip("writes testdata only with -spool.write-testdata=FILE")
	}
	s, err := Open(*writeTestdata)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	id := func(n string, driver string) string { return "20261130T090000.000Z-" + n + "." + driver }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	accept := func(src string, jobs ...*linedriver.Job) {
		t.Helper()
		dup, err := s.Accept(bg, "inbox", src, jobs)
		must(err)
		if dup {
			t.Fatalf("%s: dup", src)
		}
	}
	// queued: a fax job (with a page state, as after page 1 of 2) and a file job from one mail.
	accept("<m1>", testdataJob(id("a1", "fax"), "fax", "<m1>", at), testdataJob(id("a1", "file"), "file", "<m1>", at))
	must(s.saveState(id("a1", "fax"), json.RawMessage(`{"pages_done":1}`)))
	// retrying: one failed attempt, in its history.
	accept("<m2>", testdataJob(id("b2", "fax"), "fax", "<m2>", at))
	a := &Attempt{N: 1, Started: at, Ended: at.Add(time.Minute), Result: "temporary", Category: "busy", Reason: "line busy", Log: "ATD...\nBUSY"}
	must(s.finishAttempt(id("b2", "fax"), linedriver.Outcome{Result: linedriver.Temporary, Category: "busy", Reason: "line busy", RetryAfter: time.Hour}, true, a))
	// failed for good, with a report follow-up queued in the same transaction.
	accept("<m3>", testdataJob(id("c3", "fax"), "fax", "<m3>", at))
	rep := testdataJob(id("c3r", "report:inbox"), "report:inbox", "<m3>", at)
	_, err = s.finishWith(id("c3", "fax"), linedriver.Outcome{Result: linedriver.Permanent, Category: "bad_number", Reason: "number unobtainable"}, true,
		&Attempt{N: 1, Started: at, Ended: at, Result: "permanent", Category: "bad_number", Reason: "number unobtainable"},
		[]FollowUp{{Namespace: "report:inbox", Key: id("c3", "fax") + "/failed", Job: rep}})
	must(err)
	// delivered: gone, but its source id is remembered.
	accept("<m4>", testdataJob(id("d4", "file"), "file", "<m4>", at))
	must(s.finish(id("d4", "file"), linedriver.Outcome{Result: linedriver.Delivered}, true))
	must(s.Close())
	// one undecodable entry in the queue: it must be quarantined, not block it.
	db, err := bolt.Open(*writeTestdata, 0o600, nil)
	must(err)
	must(db.Update(func(tx *bolt.Tx) error {
		bad := id("e5", "fax")
		if err := tx.Bucket(bucketJobs).Put([]byte(bad), []byte("{not json")); err != nil {
			return err
		}
		return tx.Bucket(bucketDue).Put(dueKey("fax", at, bad), nil)
	}))
	must(db.Close())
}
