package faxline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/rawtty"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
	"golang.org/x/sys/unix"
)

// received is what t30.Receive got on modem B.
type received struct {
	res   t30.RxResult
	pages []*t30.RxPage
	err   error
	log   timedLog
	steps []string // T.30 steps as "step: detail"
	mu    sync.Mutex
}

func (r *received) has(step string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.steps {
		if d, ok := strings.CutPrefix(s, step+": "); ok {
			out = append(out, d)
		}
	}
	return out
}

// answerB waits on modem B for the call (no ATZ: a called iaxmodem then
// refuses calls; no auto-answer: we answer with ATA after RING, as the
// driver does) and receives with t30.Receive. The result comes on the
// channel once the call is over.
//
// hook, when set, runs before each page is kept; its error refuses the page.
func answerB(ctx context.Context, t *testing.T, line *Line, cfg t30.RxConfig, hook ...func(n int) error) <-chan *received {
	t.Helper()
	rx := &received{}
	ch, err := at.Open(line.DevB, 115200, at.Options{Trace: func(d, s string) { rx.log.add("%s %q", d, s) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"E0V1Q0", "+FCLASS=1", "S0=0"} {
		if r, err := ch.Command(ctx, c, 3*time.Second); err != nil || !r.OK() {
			ch.Close()
			t.Fatalf("B: AT%s: %v %v", c, r, err)
		}
	}
	cfg.Log = func(step, d string) {
		rx.log.add("  [%s] %s", step, d)
		rx.mu.Lock()
		rx.steps = append(rx.steps, step+": "+d)
		rx.mu.Unlock()
	}
	cfg.Page = func(_ context.Context, n int, p *t30.RxPage) error {
		for _, h := range hook {
			if err := h(n); err != nil {
				return err
			}
		}
		if n != len(rx.pages)+1 {
			return fmt.Errorf("page %d after %d", n, len(rx.pages))
		}
		rx.pages = append(rx.pages, p)
		return nil
	}
	done := make(chan *received, 1)
	go func() {
		defer ch.Close()
		for {
			l, err := ch.ReadLine(ctx, 90*time.Second)
			if err != nil {
				rx.err = fmt.Errorf("waiting for RING: %w", err)
				done <- rx
				return
			}
			if l == "RING" {
				break
			}
		}
		rx.res, rx.err = t30.Receive(ctx, ch, cfg)
		done <- rx
	}()
	return done
}

// samePages checks that every page arrived row for row as sent.
func samePages(t *testing.T, got []*t30.RxPage, want [][][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("received %d pages, want %d", len(got), len(want))
	}
	for p, pg := range got {
		if pg.BadRows != 0 {
			t.Errorf("page %d: %d bad rows", p+1, pg.BadRows)
		}
		if len(pg.Rows) != len(want[p]) {
			t.Fatalf("page %d: %d rows, want %d", p+1, len(pg.Rows), len(want[p]))
		}
		for y := range pg.Rows {
			if !bytes.Equal(pg.Rows[y], want[p][y]) {
				t.Fatalf("page %d row %d differs", p+1, y)
			}
		}
	}
}

// TestReceiveFromOurSender: our sender on modem A calls our receiver on
// modem B: MR without ECM (copy quality checked, MCF; a page that could not
// be kept is refused with RTN and arrives again; MH is efax's test), and MMR
// in error correction mode (a page of two blocks; a page that takes long to
// keep holds the sender with RNR); every row as sent.
func TestReceiveFromOurSender(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "iaxmodem")
	for i, c := range []struct {
		name   string
		mod    string
		fine   bool
		pages  int
		height int
		ecm    string
		// failFirst makes keeping the first page fail once (RTN, the
		// sender trains again and repeats it); slow makes keeping each
		// page take that long (RNR in ECM)
		failFirst bool
		slow      time.Duration
		want      string // a step in the receiver's log
	}{
		{"V.17 MR fine 2 pages, first kept at the second try", t30.V17, true, 2, 50, "off", true, 0, "[tx] RTN"},
		{"V.17 ECM MMR fine, 64-octet frames in 2 blocks, slow store", t30.V17, true, 1, 640, "on", false, 4 * time.Second, "[rnr] page 1 is being stored"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			line, err := Start(ctx, filepath.Join(shortDir(t), "line"))
			if err != nil {
				t.Fatal(err)
			}
			defer line.Close()
			time.Sleep(2 * time.Second) // a just-started iaxmodem answers "NO DIALTONE" for a moment
			failed := false
			done := answerB(ctx, t, line, t30.RxConfig{LocalID: "+1 555 0002"}, func(n int) error {
				if c.failFirst && !failed {
					failed = true
					return errors.New("disk full")
				}
				time.Sleep(c.slow)
				return nil
			})
			ch, err := at.Open(line.DevA, 115200, at.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			if err := initModem(ctx, ch); err != nil {
				t.Fatal(err)
			}
			var want [][][]byte
			for p := range c.pages {
				want = append(want, testPage(c.height, 20+i*3+p))
			}
			var txlog timedLog
			cfg := t30.Config{LocalID: "+1 555 0001", Fine: c.fine, MR: true, ECM: c.ecm, Modulations: []string{c.mod}, Pace: true, RTNRetries: 1,
				Log: func(step, d string) { txlog.add("[%s] %s", step, d) }}
			if c.ecm == "on" {
				cfg.FrameSize = 64 // over 256 frames: a page of two blocks (PPS-NULL)
			}
			res, err := t30.Send(ctx, ch, line.NumB, encodePages(want), cfg)
			rx := <-done
			if err != nil || rx.err != nil || t.Failed() || os.Getenv("FAXLINE_LOG") != "" {
				t.Logf("sender:\n%s\nreceiver:\n%s", txlog.String(), rx.log.String())
			}
			if err != nil || rx.err != nil {
				t.Fatalf("send: %v, receive: %v", err, rx.err)
			}
			if rx.res.RemoteID != "+1 555 0001" || rx.res.Pages != c.pages {
				t.Errorf("receiver: %+v", rx.res)
			}
			if rx.res.Params.ECM != (c.ecm == "on") || rx.res.Params.MMR != (c.ecm == "on") || rx.res.Params.Speed.Modulation != c.mod || rx.res.Params.Fine != c.fine {
				t.Errorf("received at %v", rx.res.Params)
			}
			if !strings.Contains(rx.log.String(), c.want) {
				t.Errorf("the receiver's log lacks %q", c.want)
			}
			if c.ecm == "on" && !strings.Contains(rx.log.String(), "[rx] PPS 00 00 00 FF") {
				t.Errorf("no first block of 256 frames ended with PPS-NULL")
			}
			samePages(t, rx.pages, want)
			t.Logf("%s: %d pages pixel-identical at %s, %v", c.name, len(rx.pages), rx.res.Params, res.Duration.Round(time.Millisecond))
		})
	}
}

// TestReceiveECMCorrupted damages chosen ECM frames on their way from our
// sender to modem A (the relay of ecm_relay_test.go): our receiver answers
// PPR naming exactly the damaged frames; damaged four times, the sender
// moves down with CTC and our receiver answers CTR and trains anew. The
// page arrives exact either way.
func TestReceiveECMCorrupted(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "iaxmodem")
	for _, tt := range []struct {
		name    string
		offsets []int
		times   int
		pprs    int
		speed   int
	}{
		// one call (the CI budget of the soft-modem suite): the first PPRs
		// show the selective resend, the fourth the CTC
		{"one place four times", []int{300}, 4, 4, 12000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			line, err := Start(ctx, filepath.Join(shortDir(t), "line"))
			if err != nil {
				t.Fatal(err)
			}
			defer line.Close()
			time.Sleep(2 * time.Second)
			done := answerB(ctx, t, line, t30.RxConfig{LocalID: "+1 555 0002"})
			f, err := os.OpenFile(line.DevA, os.O_RDWR|unix.O_NOCTTY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := rawtty.Make(f); err != nil {
				t.Fatal(err)
			}
			cr := &corrupter{f: f, code: "146", offsets: tt.offsets, times: tt.times}
			ch := at.New(cr, at.Options{})
			defer ch.Close()
			if err := initModem(ctx, ch); err != nil {
				t.Fatal(err)
			}
			want := [][][]byte{testPage(400, 7)}
			var txlog timedLog
			var sentPPR []string
			cfg := t30.Config{LocalID: "+1 555 0001", Fine: true, ECM: "on", Modulations: []string{t30.V17}, Pace: true,
				Log: func(step, d string) {
					txlog.add("[%s] %s", step, d)
					if step == "ppr" {
						sentPPR = append(sentPPR, d)
					}
				}}
			_, err = t30.Send(ctx, ch, line.NumB, encodePages(want), cfg)
			rx := <-done
			if err != nil || rx.err != nil || t.Failed() || os.Getenv("FAXLINE_LOG") != "" {
				defer t.Logf("sender:\n%s\nreceiver:\n%s", txlog.String(), rx.log.String())
			}
			if err != nil || rx.err != nil {
				t.Fatalf("send: %v, receive: %v", err, rx.err)
			}
			pprs := rx.has("ppr")
			t.Logf("damaged %d octets in %d transmissions; receiver: %q; ctc: %q", cr.damaged, cr.hit, pprs, rx.has("ctc"))
			if len(pprs) != tt.pprs || len(sentPPR) != tt.pprs {
				t.Fatalf("receiver sent %d PPRs, the sender saw %d; want %d", len(pprs), len(sentPPR), tt.pprs)
			}
			for i := range pprs {
				var named, total int
				fmt.Sscanf(pprs[i], "page 1 block 0: %d of %d frames in error", &named, &total)
				if named == 0 || named >= total || !strings.Contains(sentPPR[i], fmt.Sprintf(": %d frames in error", named)) {
					t.Errorf("PPR %d: receiver %q, sender %q", i+1, pprs[i], sentPPR[i])
				}
			}
			if tt.speed != 14400 && len(rx.has("ctc")) != 1 {
				t.Errorf("CTC at the receiver: %q", rx.has("ctc"))
			}
			if rx.res.Params.Speed.Bits != tt.speed {
				t.Errorf("ended at %v, want %d bit/s", rx.res.Params, tt.speed)
			}
			samePages(t, rx.pages, want)
		})
	}
}

// shortDir is a temporary directory with a short path: iaxmodem truncates
// long device paths.
func shortDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "fl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
