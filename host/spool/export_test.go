package spool

import bolt "go.etcd.io/bbolt"

// CorruptJob makes queued job id undecodable (for the conformance test,
// which runs outside the package).
func (s *Spool) CorruptJob(id string) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).Put([]byte(id), []byte("{\x00not json"))
	})
}
