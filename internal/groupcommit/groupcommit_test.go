package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
)

// store is a transactional log: a transaction appends to its own copy,
// which becomes the log only when it commits.
type store struct {
	mu        sync.Mutex
	log       []string
	groups    [][]string // the writes each Run was given, by name
	commitErr error      // fails every commit that has no failing write
	gate      chan struct{}
}

type write struct {
	name string
	fail error
	pan  bool
}

func (s *store) run(group []write) (int, error) {
	if s.gate != nil {
		<-s.gate
	}
	var tx []string
	names := make([]string, len(group))
	for i, w := range group {
		names[i] = w.name
	}
	s.mu.Lock()
	s.groups = append(s.groups, names)
	s.mu.Unlock()
	for i, w := range group {
		err := Call("test", &tx, func(tx *[]string) error {
			if w.pan {
				panic("boom")
			}
			if w.fail != nil {
				return w.fail
			}
			*tx = append(*tx, w.name)
			return nil
		})
		if err != nil {
			return i, err
		}
	}
	if s.commitErr != nil {
		return -1, s.commitErr
	}
	s.mu.Lock()
	s.log = append(s.log, tx...)
	s.mu.Unlock()
	return -1, nil
}

var (
	errBad  = errors.New("bad write")
	errDisk = errors.New("disk full")
)

// TestGroup queues a first write that holds the committer, then the writes
// of the case, which therefore wait together and form one group.
func TestGroup(t *testing.T) {
	tests := []struct {
		name      string
		writes    []write
		commitErr error
		wantLog   []string // committed, in order
		wantErrs  []string // per write of the case: "" or a text the error holds
		wantStats Stats    // for the case's writes (the first write's commit left out)
		wantRuns  int      // transactions run for the case's writes
	}{
		{
			name:      "all succeed in one commit, in order",
			writes:    []write{{name: "a"}, {name: "b"}, {name: "c"}},
			wantLog:   []string{"a", "b", "c"},
			wantErrs:  []string{"", "", ""},
			wantStats: Stats{Commits: 1, Writes: 3},
			wantRuns:  1,
		},
		{
			name:      "a failing write is run alone and gets its own error",
			writes:    []write{{name: "a"}, {name: "b", fail: errBad}, {name: "c"}},
			wantLog:   []string{"a", "c"},
			wantErrs:  []string{"", errBad.Error(), ""},
			wantStats: Stats{Commits: 1, Writes: 2},
			wantRuns:  3, // a b (fails), b alone, a c
		},
		{
			name:      "two failing writes",
			writes:    []write{{name: "a", fail: errBad}, {name: "b"}, {name: "c", fail: errBad}, {name: "d"}},
			wantLog:   []string{"b", "d"},
			wantErrs:  []string{errBad.Error(), "", errBad.Error(), ""},
			wantStats: Stats{Commits: 1, Writes: 2},
			wantRuns:  5, // a, a alone, b c, c alone, b d
		},
		{
			name:      "a panicking write fails alone",
			writes:    []write{{name: "a"}, {name: "b", pan: true}},
			wantLog:   []string{"a"},
			wantErrs:  []string{"", "test: write failed: boom"},
			wantStats: Stats{Commits: 1, Writes: 1},
			wantRuns:  3,
		},
		{
			name:      "a failing commit answers every write of the group",
			writes:    []write{{name: "a"}, {name: "b"}},
			commitErr: errDisk,
			wantErrs:  []string{errDisk.Error(), errDisk.Error()},
			wantRuns:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &store{gate: make(chan struct{})}
				c := Start(Config[write]{Run: s.run})
				defer c.Close()
				first := make(chan error, 1)
				go func() { first <- c.Do(context.Background(), write{name: "first"}) }()
				synctest.Wait() // the committer holds "first"
				errs := make([]error, len(tt.writes))
				var wg sync.WaitGroup
				for i, w := range tt.writes {
					wg.Go(func() { errs[i] = c.Do(context.Background(), w) })
					synctest.Wait() // queued in this order
				}
				s.gate <- struct{}{}
				if err := <-first; err != nil {
					t.Fatalf("first write: %v", err)
				}
				before := c.Stats()
				s.mu.Lock()
				s.log, s.groups, s.commitErr = nil, nil, tt.commitErr
				s.mu.Unlock()
				close(s.gate)
				wg.Wait()
				for i, err := range errs {
					switch want := tt.wantErrs[i]; {
					case want == "" && err != nil:
						t.Errorf("write %s: %v", tt.writes[i].name, err)
					case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
						t.Errorf("write %s: error %v, want %q", tt.writes[i].name, err, want)
					}
				}
				if !slices.Equal(s.log, tt.wantLog) {
					t.Errorf("committed %v, want %v", s.log, tt.wantLog)
				}
				if len(s.groups) != tt.wantRuns {
					t.Errorf("transactions %v, want %d", s.groups, tt.wantRuns)
				}
				after := c.Stats()
				if got := (Stats{after.Commits - before.Commits, after.Writes - before.Writes}); got != tt.wantStats {
					t.Errorf("stats %+v, want %+v", got, tt.wantStats)
				}
			})
		})
	}
}

// The failing write is matched by the caller with errors.Is.
func TestOwnErrorIsMatchable(t *testing.T) {
	s := &store{}
	c := Start(Config[write]{Run: s.run})
	defer c.Close()
	if err := c.Do(context.Background(), write{name: "x", fail: fmt.Errorf("job 7: %w", errBad)}); !errors.Is(err, errBad) {
		t.Fatalf("got %v, want errBad", err)
	}
}

func TestMaxBoundsAGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &store{gate: make(chan struct{})}
		c := Start(Config[write]{Run: s.run, Max: 2})
		defer c.Close()
		var wg sync.WaitGroup
		wg.Go(func() { _ = c.Do(context.Background(), write{name: "first"}) })
		synctest.Wait()
		for i := range 5 {
			wg.Go(func() { _ = c.Do(context.Background(), write{name: fmt.Sprint(i)}) })
		}
		synctest.Wait()
		close(s.gate)
		wg.Wait()
		for _, g := range s.groups {
			if len(g) > 2 {
				t.Errorf("a group of %d writes: %v", len(g), g)
			}
		}
		if st := c.Stats(); st.Writes != 6 || st.Commits < 4 {
			t.Errorf("stats %+v, want 6 writes in at least 4 commits", st)
		}
	})
}

func TestClosedAndCancelled(t *testing.T) {
	errMine := errors.New("mine: closed")
	tests := []struct {
		name string
		cfg  Config[write]
		do   func(c *Committer[write]) error
		want error
	}{
		{"after Close: the default error", Config[write]{}, func(c *Committer[write]) error {
			c.Close()
			c.Close() // twice is fine
			return c.Do(context.Background(), write{name: "late"})
		}, ErrClosed},
		{"after Close: the configured error", Config[write]{Closed: errMine}, func(c *Committer[write]) error {
			c.Close()
			return c.Do(context.Background(), write{name: "late"})
		}, errMine},
		{"a cancelled context", Config[write]{}, func(c *Committer[write]) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return c.Do(ctx, write{name: "late"})
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &store{}
			tt.cfg.Run = s.run
			c := Start(tt.cfg)
			defer c.Close()
			if err := tt.do(c); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if len(s.log) != 0 {
				t.Errorf("committed %v", s.log)
			}
		})
	}
}

func TestAlone(t *testing.T) {
	s := &store{}
	c := Start(Config[write]{Run: s.run})
	defer c.Close()
	for _, w := range []write{{name: "a"}, {name: "b", fail: errBad}, {name: "c"}} {
		if err := c.Alone(w); !errors.Is(err, w.fail) {
			t.Errorf("write %s: %v, want %v", w.name, err, w.fail)
		}
	}
	if !slices.Equal(s.log, []string{"a", "c"}) || c.Stats() != (Stats{2, 2}) {
		t.Errorf("committed %v with %+v, want [a c] in 2 commits", s.log, c.Stats())
	}
}
