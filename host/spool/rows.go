package spool

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mediagw/mediagw/linedriver"
)

// Store once (format 2): a job is a small row (jobRow: driver, schedule,
// attempts, last error, the record's fields and origin, its documents'
// names, types, sizes and keys); the documents' bytes are kept once each,
// raw, in docs under their SHA-256, shared by every job that holds them
// (the jobs of one record, its report) and counted in refs; the driver's
// state of a job (SaveState) is a row of its own in state. Lease and Entry
// read a row with its documents and state; listings and Stats read rows
// only.

var (
	bucketDocs  = []byte("docs")  // sha-256 → a document's bytes
	bucketRefs  = []byte("refs")  // sha-256 → how many job rows hold the document (uint32)
	bucketState = []byte("state") // job id → the driver's state of the job
)

// jobRow is a job as the jobs and failed buckets keep it: the job without
// its documents' bytes and its state.
type jobRow struct {
	Job       linedriver.Job `json:"job"`
	Docs      []docRef       `json:"docs,omitempty"` // one per Job.Record.Documents
	Due       time.Time      `json:"due"`
	LastError string         `json:"last_error,omitempty"`
	Category  string         `json:"category,omitempty"`
	Finished  time.Time      `json:"finished,omitzero"`
}

// docRef names a document's bytes in docs.
type docRef struct {
	Key  string `json:"sha256"` // hex
	Size int    `json:"size"`
}

func docKey(data []byte) []byte {
	sum := sha256.Sum256(data)
	return sum[:]
}

// insertJob stores e as a new row of bucket (jobs: queued, and scheduled in
// due; failed), its documents once, and its state. A row of the same id
// that was there is replaced.
func insertJob(tx *bolt.Tx, bucket []byte, e *Entry) error {
	id := []byte(e.Job.ID)
	if old := tx.Bucket(bucket).Get(id); old != nil {
		var r jobRow
		if json.Unmarshal(old, &r) == nil {
			if err := dropRow(tx, bucket, &r); err != nil {
				return err
			}
		}
	}
	r := jobRow{Job: e.Job, Due: e.Due, LastError: e.LastError, Category: e.Category, Finished: e.Finished}
	r.Job.State = nil
	r.Job.Record.Documents = make([]linedriver.Document, len(e.Job.Record.Documents))
	docs, refs := tx.Bucket(bucketDocs), tx.Bucket(bucketRefs)
	for i, d := range e.Job.Record.Documents {
		r.Job.Record.Documents[i] = linedriver.Document{Name: d.Name, MediaType: d.MediaType}
		k := docKey(d.Data)
		n := uint32(0)
		if v := refs.Get(k); len(v) == 4 {
			n = binary.BigEndian.Uint32(v)
		}
		if n == 0 || docs.Get(k) == nil {
			if err := docs.Put(k, d.Data); err != nil {
				return err
			}
		}
		if err := refs.Put(k, binary.BigEndian.AppendUint32(nil, n+1)); err != nil {
			return err
		}
		r.Docs = append(r.Docs, docRef{Key: hex.EncodeToString(k), Size: len(d.Data)})
	}
	if len(e.Job.State) > 0 {
		if err := tx.Bucket(bucketState).Put(id, e.Job.State); err != nil {
			return err
		}
	}
	return putRow(tx, bucket, &r)
}

// putRow writes r to bucket (and its schedule, for jobs).
func putRow(tx *bolt.Tx, bucket []byte, r *jobRow) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucket).Put([]byte(r.Job.ID), b); err != nil {
		return err
	}
	if bytes.Equal(bucket, bucketJobs) {
		return tx.Bucket(bucketDue).Put(dueKey(r.Job.Driver, r.Due, r.Job.ID), nil)
	}
	return nil
}

// getRow reads job id's row from bucket: ErrNotFound, or ErrCorrupt.
func getRow(tx *bolt.Tx, bucket []byte, id string) (*jobRow, error) {
	v := tx.Bucket(bucket).Get([]byte(id))
	if v == nil {
		return nil, ErrNotFound
	}
	var r jobRow
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, corruptJob(id, err)
	}
	if len(r.Docs) != 0 && len(r.Docs) != len(r.Job.Record.Documents) {
		return nil, corruptJob(id, fmt.Errorf("%d documents, %d keys", len(r.Job.Record.Documents), len(r.Docs)))
	}
	return &r, nil
}

// entry is r whole: its documents' bytes and its state, read in tx and
// copied out of it.
func (r *jobRow) entry(tx *bolt.Tx) (*Entry, error) {
	e := &Entry{Job: r.Job, Due: r.Due, LastError: r.LastError, Category: r.Category, Finished: r.Finished}
	if len(r.Docs) > 0 {
		docs := make([]linedriver.Document, len(r.Docs))
		for i, ref := range r.Docs {
			k, err := hex.DecodeString(ref.Key)
			if err != nil {
				return nil, corruptJob(r.Job.ID, fmt.Errorf("document key %q: %w", ref.Key, err))
			}
			v := tx.Bucket(bucketDocs).Get(k)
			if v == nil || len(v) != ref.Size {
				return nil, corruptJob(r.Job.ID, fmt.Errorf("document %s (%s) is missing", r.Job.Record.Documents[i].Name, ref.Key))
			}
			docs[i] = r.Job.Record.Documents[i]
			docs[i].Data = bytes.Clone(v)
		}
		e.Job.Record.Documents = docs
	}
	if v := tx.Bucket(bucketState).Get([]byte(r.Job.ID)); v != nil {
		e.Job.State = json.RawMessage(bytes.Clone(v))
	}
	return e, nil
}

// getEntry is a queued job whole.
func getEntry(tx *bolt.Tx, id string) (*Entry, error) {
	r, err := getRow(tx, bucketJobs, id)
	if err != nil {
		return nil, err
	}
	return r.entry(tx)
}

// dropRow removes r from bucket with its schedule and retry mark, and lets
// go of its documents. Its state and history stay (the caller decides).
func dropRow(tx *bolt.Tx, bucket []byte, r *jobRow) error {
	id := []byte(r.Job.ID)
	if err := tx.Bucket(bucket).Delete(id); err != nil {
		return err
	}
	if bytes.Equal(bucket, bucketJobs) {
		if err := tx.Bucket(bucketDue).Delete(dueKey(r.Job.Driver, r.Due, r.Job.ID)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRetry).Delete(id); err != nil {
			return err
		}
	}
	return releaseDocs(tx, r.Docs)
}

// moveRow takes r out of bucket from (with its schedule) and writes it to
// to, keeping its documents.
func moveRow(tx *bolt.Tx, from, to []byte, r *jobRow, old time.Time) error {
	id := []byte(r.Job.ID)
	if err := tx.Bucket(from).Delete(id); err != nil {
		return err
	}
	if bytes.Equal(from, bucketJobs) {
		if err := tx.Bucket(bucketDue).Delete(dueKey(r.Job.Driver, old, r.Job.ID)); err != nil {
			return err
		}
		if !bytes.Equal(to, bucketJobs) {
			if err := tx.Bucket(bucketRetry).Delete(id); err != nil {
				return err
			}
		}
	}
	return putRow(tx, to, r)
}

// forgetJob removes what is kept of a job beside its row: state, history.
func forgetJob(tx *bolt.Tx, id string) error {
	if err := tx.Bucket(bucketState).Delete([]byte(id)); err != nil {
		return err
	}
	return tx.Bucket(bucketHistory).Delete([]byte(id))
}

func releaseDocs(tx *bolt.Tx, refs []docRef) error {
	docs, counts := tx.Bucket(bucketDocs), tx.Bucket(bucketRefs)
	for _, ref := range refs {
		k, err := hex.DecodeString(ref.Key)
		if err != nil {
			continue // a row that names no document holds none
		}
		n := uint32(0)
		if v := counts.Get(k); len(v) == 4 {
			n = binary.BigEndian.Uint32(v)
		}
		if n > 1 {
			if err := counts.Put(k, binary.BigEndian.AppendUint32(nil, n-1)); err != nil {
				return err
			}
			continue
		}
		if err := errors.Join(counts.Delete(k), docs.Delete(k)); err != nil {
			return err
		}
	}
	return nil
}

// sweepDocsLocked sets every document's count to the rows that hold it and
// drops the documents no row holds: those of a row quarantined because it
// could not be decoded (which cannot say what it held). It writes only
// when something is off. s.mu is held for writing (Compact).
func (s *Spool) sweepDocsLocked() error {
	held := map[string]uint32{}
	var fix bool
	scan := func(tx *bolt.Tx) error {
		clear(held)
		fix = false
		for _, b := range [][]byte{bucketJobs, bucketFailed} {
			err := tx.Bucket(b).ForEach(func(k, _ []byte) error {
				if r, err := getRow(tx, b, string(k)); err == nil {
					for _, ref := range r.Docs {
						// (A document missing holds nothing: its row is
						// quarantined when read.)
						if k, err := hex.DecodeString(ref.Key); err == nil && tx.Bucket(bucketDocs).Get(k) != nil {
							held[string(k)]++
						}
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		refs := tx.Bucket(bucketRefs)
		if refs.Stats().KeyN != len(held) || tx.Bucket(bucketDocs).Stats().KeyN != len(held) {
			fix = true
			return nil
		}
		return refs.ForEach(func(k, v []byte) error {
			if len(v) != 4 || binary.BigEndian.Uint32(v) != held[string(k)] {
				fix = true
			}
			return nil
		})
	}
	if err := s.db.View(scan); err != nil || !fix {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := scan(tx); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketRefs, bucketDocs} {
			b := tx.Bucket(name)
			var drop [][]byte
			err := b.ForEach(func(k, _ []byte) error {
				if held[string(k)] == 0 {
					drop = append(drop, bytes.Clone(k))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range drop {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		refs := tx.Bucket(bucketRefs)
		for k, n := range held {
			if err := refs.Put([]byte(k), binary.BigEndian.AppendUint32(nil, n)); err != nil {
				return err
			}
		}
		return nil
	})
}
