// Package backoff computes the pauses between tries: exponential, from a
// minimum doubling up to a maximum, with optional jitter. Every retry loop of
// the gateway and its plugins takes its pauses from here.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is an exponential schedule: attempt 1 waits Min, each further
// attempt twice as long, never more than Max. With Jitter the pause is a
// random duration in [d/2, d], so that many clients do not retry in step.
type Policy struct {
	Min, Max time.Duration
	Jitter   bool
}

// Delay returns the pause before try attempt+1 (attempt counts from 1; less
// is taken as 1).
func (p Policy) Delay(attempt int) time.Duration {
	d := p.Min
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	if p.Max > 0 && d > p.Max {
		d = p.Max
	}
	if p.Jitter && d > 0 {
		return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	}
	return d
}

// Schedule is a Policy with memory, for relaunching something that runs for
// a while: it starts over at Min after a run that lasted Stable or longer.
// The zero value of its counter is ready to use.
type Schedule struct {
	Min, Max, Stable time.Duration
	attempt          int
}

// Next returns the pause before the next run, given how long the last one
// lasted.
func (s *Schedule) Next(ran time.Duration) time.Duration {
	if ran >= s.Stable {
		s.attempt = 0
	}
	s.attempt++
	return Policy{Min: s.Min, Max: s.Max}.Delay(s.attempt)
}
