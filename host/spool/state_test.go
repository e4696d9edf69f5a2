package spool

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediagw/mediagw/linedriver"
)

func TestSaveState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Accept(bg, "inbox", "src-a", []*linedriver.Job{job("a.fax", "fax")}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.next("fax", nil)
	if err := s.saveState("a.fax", []byte(`{"confirmed":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.saveState("nope", []byte(`{}`)); !errors.Is(err, ErrNotFound) {
		t.Errorf("SaveState of an unknown job = %v, want ErrNotFound", err)
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e, err := s.next("fax", nil)
	if err != nil || e == nil {
		t.Fatalf("Next = %v, %v", e, err)
	}
	if string(e.Job.State) != `{"confirmed":1}` || !e.Due.Equal(before.Due) || e.Job.Attempt != 0 {
		t.Errorf("after reopen: state %s due %v (was %v) attempt %d", e.Job.State, e.Due, before.Due, e.Job.Attempt)
	}
	// The next outcome without state keeps the saved one.
	if err := s.finish("a.fax", linedriver.Retry("busy", "busy", time.Hour), true); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.next("fax", nil); string(e.Job.State) != `{"confirmed":1}` || e.Job.Attempt != 1 {
		t.Errorf("after a retry: state %s attempt %d", e.Job.State, e.Job.Attempt)
	}
}
