package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Format is the on-disk format this release writes (meta/format):
//
//	1  no meta bucket: every job one JSON value with its documents inline
//	   (base64) and its state; the releases before store once.
//	2  store once: small job rows, documents once each by SHA-256 with a
//	   count of the rows that hold them, states in rows of their own.
//
// Open upgrades an older file in place, in one transaction, and refuses a
// newer one (ErrFormat).
const Format = 2

var (
	bucketMeta = []byte("meta") // "format" → the file's format, decimal
	keyFormat  = []byte("format")
)

// ErrFormat is returned by Open for a spool file written by a newer
// release, in a format this one cannot read.
var ErrFormat = errors.New("spool: the file's format is newer than this release reads")

// Upgrade is what Open did to a file of an older format.
type Upgrade struct {
	From, To int
	// Jobs and Failed count the queued and failed jobs rewritten;
	// Undecodable the entries left as they were, to be quarantined when
	// read.
	Jobs, Failed, Undecodable int
}

var allBuckets = [][]byte{bucketMeta, bucketJobs, bucketDue, bucketSources, bucketFailed, bucketHistory, bucketRetry,
	bucketQuarantine, bucketDocs, bucketRefs, bucketState}

// prepare makes a new file, checks the format of an existing one and
// upgrades an older one, all in tx.
func prepare(tx *bolt.Tx) (*Upgrade, error) {
	from := 0 // a new file
	if meta := tx.Bucket(bucketMeta); meta != nil {
		v := meta.Get(keyFormat)
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("spool: the file's format %q cannot be read", v)
		}
		if n > Format {
			return nil, fmt.Errorf("%w: the file has format %d, this release reads formats 1 to %d (upgrade the gateway, or start with a new spool)", ErrFormat, n, Format)
		}
		from = n
	} else if tx.Bucket(bucketJobs) != nil {
		from = 1 // the releases before the format was written down
	}
	for _, b := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return nil, err
		}
	}
	var up *Upgrade
	if from == 1 {
		up = &Upgrade{From: 1, To: Format}
		var err error
		if up.Jobs, up.Undecodable, err = upgradeRows(tx, bucketJobs); err != nil {
			return nil, fmt.Errorf("spool: upgrade the queued jobs from format 1: %w", err)
		}
		n, bad, err := upgradeRows(tx, bucketFailed)
		if err != nil {
			return nil, fmt.Errorf("spool: upgrade the failed jobs from format 1: %w", err)
		}
		up.Failed, up.Undecodable = n, up.Undecodable+bad
	}
	if from != Format {
		if err := tx.Bucket(bucketMeta).Put(keyFormat, []byte(strconv.Itoa(Format))); err != nil {
			return nil, err
		}
	}
	return up, nil
}

// upgradeFault, when set (tests only), is called after each row upgradeRows
// rewrote: an error stands for a crash in the middle of the upgrade.
var upgradeFault func(bucket []byte, rows int) error

// upgradeRows rewrites every format-1 job of bucket as a row with its
// documents and state apart. Its schedule, retry mark, history and source
// id do not change. An entry that cannot be decoded stays as it is: the
// first read quarantines it, as it would have before.
func upgradeRows(tx *bolt.Tx, bucket []byte) (n, undecodable int, err error) {
	var keys [][]byte
	err = tx.Bucket(bucket).ForEach(func(k, _ []byte) error {
		keys = append(keys, append([]byte(nil), k...))
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	b := tx.Bucket(bucket)
	for _, k := range keys {
		var e Entry
		if err := json.Unmarshal(b.Get(k), &e); err != nil || e.Job.ID != string(k) {
			undecodable++
			continue
		}
		if err := b.Delete(k); err != nil {
			return n, undecodable, err
		}
		if err := insertJob(tx, bucket, &e); err != nil {
			return n, undecodable, err
		}
		n++
		if upgradeFault != nil {
			if err := upgradeFault(bucket, n); err != nil {
				return n, undecodable, err
			}
		}
	}
	return n, undecodable, nil
}
