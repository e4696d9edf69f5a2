package faxline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
)

// timedLog is a sender's trace with times, shown when a test fails.
type timedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *timedLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func (l *timedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func openA(ctx context.Context, t *testing.T, line *Line, log *timedLog) *at.Channel {
	t.Helper()
	ch, err := at.Open(line.DevA, 115200, at.Options{Trace: func(d, s string) { log.add("%s %q", d, s) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	if err := initModem(ctx, ch); err != nil {
		t.Fatal(err)
	}
	return ch
}

// The far modem answers with nothing behind it: its host set it to answer
// in Class 1 and then said nothing. Our side waits T1 (35 s, for real),
// files no_answer, and hangs up — modem B sees the call end at once.
func TestRealLineSilentFarEnd(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "iaxmodem")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	line, err := Start(ctx, filepath.Join(t.TempDir(), "line"))
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()
	var log timedLog
	b, err := at.Open(line.DevB, 115200, at.Options{Trace: func(d, s string) { log.add("B %s %q", d, s) }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// no ATZ: it hangs up, and iaxmodem refuses calls for 5 s after that
	for _, c := range []string{"E0V1Q0", "+FCLASS=1", "S0=1"} {
		if r, err := b.Command(ctx, c, 3*time.Second); err != nil || !r.OK() {
			t.Fatalf("B AT%s: %+v %v", c, r, err)
		}
	}
	ended := make(chan time.Time, 1)
	go func() {
		for {
			l, err := b.ReadLine(ctx, 2*time.Minute)
			if err != nil {
				return
			}
			if l == "NO CARRIER" {
				ended <- time.Now()
				return
			}
		}
	}()
	a := openA(ctx, t, line, &log)
	cfg := t30.Config{LocalID: "+1 555 0001", Pace: true, Log: func(step, d string) { log.add("  [%s] %s", step, d) }}
	start := time.Now()
	_, err = t30.Send(ctx, a, line.NumB, encodePages([][][]byte{testPage(20, 1)}), cfg)
	done := time.Now()
	defer func() {
		if t.Failed() {
			t.Logf("trace:\n%s\nmodems:\n%s", log.String(), tail(line.Log(), 3000))
		}
	}()
	var e *t30.Error
	if !errors.As(err, &e) || e.Category != t30.CatNoAnswer {
		t.Fatalf("got %v, want %s", err, t30.CatNoAnswer)
	}
	if took := done.Sub(start); took < 35*time.Second {
		t.Errorf("gave up after %v, before T1", took)
	}
	select {
	case at := <-ended:
		t.Logf("no_answer after %v; the far modem saw the call end %v after the send returned", done.Sub(start).Round(time.Millisecond), at.Sub(done).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Errorf("the far modem still holds the call 5 s after the send returned: our modem did not hang up")
	}
}

// The far end hangs up in the middle of a page: efax is killed and its
// modem hangs up (iaxmodem ignores its pty closing, so the test sends the
// ATH0 that a real modem's DTR drop stands for). Ours says NO CARRIER while page data is being
// written, and the send stops at once as remote_hangup.
func TestRealLineHangupMidPage(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "iaxmodem")
	testenv.LookPath(t, "efax")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	line, err := Start(ctx, filepath.Join(t.TempDir(), "line"))
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()
	rx, err := line.Receive(ctx, filepath.Join(line.Dir, "rx"), "+1 555 0002", "1,5,0,2,0,0,0,0", 80*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // let efax initialise its modem
	var log timedLog
	a := openA(ctx, t, line, &log)
	killed := make(chan time.Time, 1)
	cfg := t30.Config{LocalID: "+1 555 0001", Modulations: []string{t30.V17}, Pace: true, Log: func(step, d string) {
		log.add("  [%s] %s", step, d)
		if step == "page" && strings.HasPrefix(d, "1:") {
			go func() {
				time.Sleep(3 * time.Second)
				rx.cmd.Process.Kill() //nolint:errcheck // the test kills it on purpose
				killed <- time.Now()
				rx.Wait(ctx) //nolint:errcheck // killed
				if err := line.HangUpB(ctx); err != nil {
					log.add("hang up B: %v", err)
				}
			}()
		}
	}}
	// a page of some 20 s at 14,400 bit/s
	_, err = t30.Send(ctx, a, line.NumB, encodePages([][][]byte{testPage(1500, 2), testPage(20, 3)}), cfg)
	done := time.Now()
	defer func() {
		if t.Failed() {
			t.Logf("trace:\n%s\nmodems:\n%s", log.String(), tail(line.Log(), 3000))
		}
	}()
	var e *t30.Error
	if !errors.As(err, &e) || e.Category != t30.CatHangup || e.Confirmed != 0 {
		t.Fatalf("got %v, want %s with no page confirmed", err, t30.CatHangup)
	}
	select {
	case k := <-killed:
		took := done.Sub(k)
		t.Logf("efax killed; the send ended %v later: %v", took.Round(time.Millisecond), err)
		if took > 3*time.Second {
			t.Errorf("the hang-up was noticed %v after efax died", took)
		}
	default:
		t.Fatalf("the send ended before efax was killed: %v", err)
	}
}
