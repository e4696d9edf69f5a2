package spool

// CommitEachWrite makes s commit each write in its own transaction, as the
// spool did before group commit (the baseline of BenchmarkAccept, which is
// in package spool_test with the benchmarks of every backend).
func CommitEachWrite(s *Spool, on bool) { s.c.single = on }
