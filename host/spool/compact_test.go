package spool

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mediagw/mediagw/linedriver"
)

// mail is a job as a burst of small mails makes them: one 200-byte document.
func mail(id string) *linedriver.Job {
	j := job(id, "file")
	j.Record.Documents = []linedriver.Document{{Name: "body.txt", MediaType: "text/plain", Data: bytes.Repeat([]byte(id[:1]), 200)}}
	return j
}

func TestCompactAfterBurst(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mails  int
		queued int // left in the queue
		failed int // failed for good
	}{
		{"all delivered", 2000, 0, 0},
		{"some queued", 2000, 25, 0},
		{"queued and failed", 2000, 25, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spool.db")
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Close() }()
			idle, _ := s.Size()
			s.db.NoSync = true // the burst is not what this test is about: fill it fast
			ids := make([]string, tc.mails)
			for i := range ids {
				ids[i] = fmt.Sprintf("m%05d", i)
				if dup, err := s.Accept(bg, "inbox", "imap:1:"+ids[i], []*linedriver.Job{mail(ids[i])}); err != nil || dup {
					t.Fatalf("Accept %d = %v, %v", i, dup, err)
				}
			}
			for i, id := range ids[tc.queued:] {
				o := linedriver.Done(nil)
				if i < tc.failed {
					o = linedriver.Fail("bad_number", "no such number")
				}
				if err := s.finish(id, o, true); err != nil {
					t.Fatal(err)
				}
			}
			s.db.NoSync = false
			wantJobs, err := s.Jobs(bg, Query{})
			if err != nil {
				t.Fatal(err)
			}
			burst, _ := s.Size()

			c, err := s.Compact(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("idle %+v, after the burst %+v, compacted %+v in %v", idle, burst, c.After, c.Paused)
			if c.Before != burst {
				t.Errorf("Compaction.Before = %+v, want %+v", c.Before, burst)
			}
			// Small again: the file holds the live data, grown in bbolt's
			// doubling steps.
			if c.After.FileBytes > burst.FileBytes/4 || c.After.FileBytes > 2*c.After.LiveBytes+64<<10 {
				t.Errorf("after compaction the file is %d bytes (live %d), after the burst it was %d",
					c.After.FileBytes, c.After.LiveBytes, burst.FileBytes)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() != c.After.FileBytes {
				t.Errorf("spool file on disk: %v, %v; want %d bytes", fi, err, c.After.FileBytes)
			}
			if _, err := os.Stat(compactPath(path)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the compaction's copy is left: %v", err)
			}
			if got := s.LastCompaction(); got == nil || *got != c {
				t.Errorf("LastCompaction = %+v", got)
			}
			// A mail accepted after the compaction is in the renamed file.
			if _, err := s.Accept(bg, "inbox", "imap:1:after", []*linedriver.Job{mail("after")}); err != nil {
				t.Fatal(err)
			}
			wantJobs = append(wantJobs, JobInfo{ID: "after"})

			check := func(when string) {
				for i, id := range ids {
					if seen, err := s.Seen(bg, "inbox", "imap:1:"+id); err != nil || !seen {
						t.Fatalf("%s: source id of %s forgotten: %v", when, id, err)
					}
					if i%100 != 0 {
						continue
					}
					dup, err := s.Accept(bg, "inbox", "imap:1:"+id, []*linedriver.Job{mail("again-" + id)})
					if err != nil || !dup {
						t.Fatalf("%s: mail %s redelivered was taken again: dup = %v, %v", when, id, dup, err)
					}
				}
				got, err := s.Jobs(bg, Query{})
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(wantJobs) {
					t.Fatalf("%s: %d jobs, want %d", when, len(got), len(wantJobs))
				}
				for _, w := range wantJobs {
					e, err := s.Entry(bg, w.ID)
					if err != nil {
						t.Fatalf("%s: job %s: %v", when, w.ID, err)
					}
					if d := e.Job.Record.Documents; len(d) != 1 || !bytes.Equal(d[0].Data, bytes.Repeat([]byte(w.ID[:1]), 200)) {
						t.Fatalf("%s: job %s documents changed: %+v", when, w.ID, d)
					}
				}
				st, _ := s.Stats(bg)
				if st.Queued["file"] != tc.queued+1 || st.Failed != tc.failed {
					t.Fatalf("%s: stats %+v, want %d queued, %d failed", when, st, tc.queued+1, tc.failed)
				}
			}
			check("after compaction")
			s.Close()
			if s, err = Open(path); err != nil {
				t.Fatal(err)
			}
			check("after reopening")
		})
	}
}

func TestCompactSizeFigures(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.db.NoSync = true
	var ids []*linedriver.Job
	for i := range 2000 {
		id := fmt.Sprintf("m%d", i)
		ids = append(ids, mail(id))
		s.Accept(bg, "c", id, ids[i:])
	}
	for _, j := range ids {
		s.finish(j.ID, linedriver.Done(nil), true)
	}
	// Forgetting the source ids leaves only free pages.
	if n, err := s.Forget(bg, time.Now().Add(time.Hour)); err != nil || n != 2000 {
		t.Fatalf("Forget = %d, %v", n, err)
	}
	sz, err := s.Size()
	if err != nil {
		t.Fatal(err)
	}
	if sz.FileBytes != sz.LiveBytes+sz.FreeBytes || sz.FreeBytes < sz.FileBytes*3/4 {
		t.Fatalf("after 2000 mails delivered and forgotten: %+v; want free bytes over 3/4 of the file", sz)
	}
	h := s.Health()
	if h.Size != sz {
		t.Fatalf("Health().Size = %+v, want %+v", h.Size, sz)
	}
	s.Close()
	if _, err := s.Size(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Size after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Compact(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Compact after Close = %v, want ErrClosed", err)
	}
}

func TestOnDrained(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	s.OnDrained(func() { n++ })
	s.Accept(bg, "c", "1", []*linedriver.Job{job("a", "fax"), job("b", "fax")})
	s.finish("a", linedriver.Done(nil), true)
	if n != 0 {
		t.Fatalf("drained with a job queued: %d calls", n)
	}
	s.finish("b", linedriver.Fail("x", "y"), true)
	s.Forget(bg, time.Now()) // a write that finds the queue empty again
	if n != 1 {
		t.Fatalf("after the last job: %d calls, want 1", n)
	}
}

func TestOpenDropsUnfinishedCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	if err := os.WriteFile(compactPath(path), []byte("half a copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(compactPath(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("copy of an unfinished compaction left after Open: %v", err)
	}
	// A second opener (a running gateway holds the file) is refused and
	// leaves the running compaction's copy alone.
	os.WriteFile(compactPath(path), nil, 0o600)
	if _, err := openTimeout(path, 50*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if _, err := os.Stat(compactPath(path)); err != nil {
		t.Fatalf("second Open removed the copy: %v", err)
	}
}

// The helper process: a gateway that accepts, delivers and compacts in a
// loop, printing what it did after it returned ("A n": accepted mail n,
// "C n" about to deliver it, "D n" delivered, "K" compacting, "k" done).
// SPOOL_CRASH_AT names a step of Compact where it kills itself.
func TestCompactHelperProcess(t *testing.T) {
	path, run := os.Getenv("SPOOL_HELPER_PATH"), os.Getenv("SPOOL_HELPER_RUN")
	if path == "" {
		return
	}
	s, err := Open(path)
	if err != nil {
		fmt.Println("E", err)
		os.Exit(3)
	}
	if at := os.Getenv("SPOOL_CRASH_AT"); at != "" {
		s.compactHook = func(step string) {
			if step == at {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	say := func(f string, a ...any) { fmt.Fprintf(os.Stdout, f+"\n", a...) }
	for n := 0; ; n++ {
		id := run + "-" + strconv.Itoa(n)
		if _, err := s.Accept(bg, "c", "src-"+id, []*linedriver.Job{mail(id)}); err != nil {
			say("E %v", err)
			os.Exit(3)
		}
		say("A %d", n)
		if n >= 3 && n%2 == 0 { // every other mail is delivered; the rest stay
			old := run + "-" + strconv.Itoa(n-3)
			say("C %d", n-3)
			if err := s.finish(old, linedriver.Done(nil), true); err != nil && !errors.Is(err, ErrNotFound) {
				say("E %v", err)
				os.Exit(3)
			}
			say("D %d", n-3)
		}
		if n%3 == 2 {
			say("K")
			if _, err := s.Compact(context.Background()); err != nil {
				say("E %v", err)
				os.Exit(3)
			}
			say("k")
		}
	}
}

func TestCompactKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	runs, deadline := 40, time.Now().Add(40*time.Second)
	if testing.Short() {
		runs = 10
	}
	type mailState struct{ accepted, delivering, delivered bool }
	mails := map[string]*mailState{}
	inCompaction := 0
	steps := []string{"created", "copied", "synced", "renamed", "synced-dir"}
	for r := 0; r < runs+len(steps) && time.Now().Before(deadline); r++ {
		run := fmt.Sprintf("r%d", r)
		cmd := exec.Command(os.Args[0], "-test.run=^TestCompactHelperProcess$")
		cmd.Env = append(os.Environ(), "SPOOL_HELPER_PATH="+path, "SPOOL_HELPER_RUN="+run)
		killAfter := 1 + rand.IntN(150) // lines printed before the kill
		if r < len(steps) {
			cmd.Env = append(cmd.Env, "SPOOL_CRASH_AT="+steps[r])
			killAfter = -1 // it kills itself
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		timeout := time.NewTimer(30 * time.Second)
		last, n := "", 0
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				last, n = l, n+1
				f := strings.Fields(l)
				switch f[0] {
				case "E":
					t.Fatalf("run %s: helper failed: %s", run, l)
				case "A", "C", "D":
					id := run + "-" + f[1]
					m := mails[id]
					if m == nil {
						m = &mailState{}
						mails[id] = m
					}
					m.accepted = m.accepted || f[0] == "A"
					m.delivering = m.delivering || f[0] == "C"
					m.delivered = m.delivered || f[0] == "D"
				}
				if n == killAfter {
					cmd.Process.Kill()
				}
			case <-timeout.C:
				cmd.Process.Kill()
				t.Fatalf("run %s: the helper did not end within 30s", run)
			}
		}
		timeout.Stop()
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("run %s: helper ended with %v, want killed", run, err)
		}
		if last == "K" {
			inCompaction++
		}

		s, err := Open(path)
		if err != nil {
			t.Fatalf("run %s: open after kill -9: %v", run, err)
		}
		if _, err := os.Stat(compactPath(path)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("run %s: copy left after Open: %v", run, err)
		}
		for id, m := range mails {
			if !m.accepted {
				continue
			}
			if seen, err := s.Seen(bg, "c", "src-"+id); err != nil || !seen {
				t.Fatalf("run %s: source id of accepted mail %s forgotten (%v)", run, id, err)
			}
			e, err := s.Entry(bg, id)
			switch {
			case m.delivered:
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("run %s: delivered mail %s is back: %v", run, id, err)
				}
			case !m.delivering:
				if err != nil {
					t.Fatalf("run %s: queued mail %s lost: %v", run, id, err)
				}
				if d := e.Job.Record.Documents; len(d) != 1 || len(d[0].Data) != 200 {
					t.Fatalf("run %s: queued mail %s damaged: %+v", run, id, d)
				}
			}
		}
		s.Close()
	}
	t.Logf("%d mails over the runs, %d runs killed inside a compaction by a random kill, plus %d at each step",
		len(mails), inCompaction, 1)
}

// openTimeout is Open with a shorter wait for the lock (tests).
func openTimeout(path string, d time.Duration) (*Spool, error) {
	old := openLockTimeout
	openLockTimeout = d
	defer func() { openLockTimeout = old }()
	return Open(path)
}
