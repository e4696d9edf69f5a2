package faxline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/rawtty"
	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
	"golang.org/x/sys/unix"
)

// corrupter sits between the sender and its modem and damages page data:
// in each of the first `times` high-speed transmissions after
// AT+FTM=<code>, it inverts the octets at the given offsets, so the far end
// gets those HDLC frames with a bad FCS. Commands and everything else pass
// untouched.
type corrupter struct {
	f       *os.File
	code    string
	offsets []int
	times   int

	mu      sync.Mutex
	armed   bool // data of a transmission to damage is being written
	seen    int  // data octets written since arming
	cmd     []byte
	damaged int // octets damaged
	hit     int // transmissions damaged
}

func (c *corrupter) Read(p []byte) (int, error) { return c.f.Read(p) }
func (c *corrupter) Close() error               { return c.f.Close() }

func (c *corrupter) Write(p []byte) (int, error) {
	c.mu.Lock()
	q := p
	if c.armed {
		q = append([]byte(nil), p...)
		for i := range q {
			for _, off := range c.offsets {
				// never touch DLE stuffing or make a DLE
				if c.seen+i == off && q[i] != at.DLE && q[i]^0xFF != at.DLE {
					q[i] ^= 0xFF
					c.damaged++
				}
			}
		}
		c.seen += len(q)
		if c.seen > c.offsets[len(c.offsets)-1] {
			c.armed = false
			c.hit++
		}
	} else if c.hit < c.times {
		c.cmd = append(c.cmd, p...)
		if len(c.cmd) > 64 {
			c.cmd = c.cmd[len(c.cmd)-64:]
		}
		if bytes.Contains(c.cmd, []byte("AT+FTM="+c.code+"\r")) {
			c.armed, c.seen, c.cmd = true, 0, c.cmd[:0]
		}
	}
	c.mu.Unlock()
	return c.f.Write(q)
}

// TestHylaFAXECMCorrupted damages ECM frames on their way to the modem.
// Once: HylaFAX answers PPR naming the frames in error and only those are
// sent again. Four times in a row: after the fourth PPR the sender moves to
// 12000 bit/s with CTC, HylaFAX answers CTR, and the frames go through.
// Either way the page HylaFAX files is pixel-exact.
func TestHylaFAXECMCorrupted(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "iaxmodem")
	testenv.LookPath(t, "faxgetty")
	testenv.LookPath(t, "tiffsplit")
	testenv.LookPath(t, "tifftopnm")
	tests := []struct {
		name    string
		offsets []int // octets of the DLE-stuffed stream; frames are ~256 octets
		times   int
		pprs    int
		speed   int
	}{
		{"two places once", []int{1000, 2600}, 1, 1, 14400},
		{"one place four times", []int{300}, 4, 4, 12000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			line, err := Start(ctx, filepath.Join(t.TempDir(), "line"))
			if err != nil {
				t.Fatal(err)
			}
			defer line.Close()
			hf, err := line.StartHylaFAX(ctx, HylaFAXOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer hf.Close()
			f, err := os.OpenFile(line.DevA, os.O_RDWR|unix.O_NOCTTY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := rawtty.Make(f); err != nil {
				t.Fatal(err)
			}
			// V.17 14400 page data is AT+FTM=146
			cr := &corrupter{f: f, code: "146", offsets: tt.offsets, times: tt.times}
			var log timedLog
			ch := at.New(cr, at.Options{Trace: func(d, s string) { log.add("%s %q", d, s) }})
			defer ch.Close()
			if err := initModem(ctx, ch); err != nil {
				t.Fatal(err)
			}
			want := [][][]byte{testPage(400, 7)}
			var pprs, blocks []string
			cfg := t30.Config{LocalID: "+1 555 0001", Fine: true, Modulations: []string{t30.V17}, Pace: true, Log: func(step, d string) {
				log.add("  [%s] %s", step, d)
				switch step {
				case "ppr":
					pprs = append(pprs, d)
				case "ecm":
					blocks = append(blocks, d)
				}
			}}
			res, err := t30.Send(ctx, ch, line.NumB, encodePages(want), cfg)
			defer func() {
				if t.Failed() || os.Getenv("FAXLINE_LOG") != "" {
					t.Logf("sender:\n%s\nHylaFAX:\n%s", log.String(), tail(hf.SessionLogs(), 8000))
				}
			}()
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			t.Logf("damaged %d octets in %d transmissions; %q; %q", cr.damaged, cr.hit, pprs, blocks)
			if !res.Params.ECM || !res.Params.MMR || res.Params.Speed.Bits != tt.speed {
				t.Errorf("ended at %v, want %d bit/s", res.Params, tt.speed)
			}
			sent := tt.pprs + 1 // the last PPR is answered by a resend
			if len(pprs) != tt.pprs || len(blocks) != sent {
				t.Fatalf("%d PPRs, %d transmissions; want %d and %d", len(pprs), len(blocks), tt.pprs, sent)
			}
			if res.FramesLost > 0 {
				t.Errorf("%d frames lost", res.FramesLost)
			}
			// each resend carries only the frames the PPR named
			for i, p := range pprs[:sent-1] {
				var named, sent, total int
				fmt.Sscanf(p, "page 1 block 0: %d frames in error", &named)
				fmt.Sscanf(blocks[i+1], "page 1 block 0: %d of %d frames", &sent, &total)
				if named == 0 || sent != named || sent >= total {
					t.Errorf("PPR %d named %d frames, resent %d of %d", i+1, named, sent, total)
				}
			}
			file, err := hf.Received(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := decodeTIFF(t, file)
			if len(got) != 1 || len(got[0]) != len(want[0]) {
				t.Fatalf("HylaFAX filed %d pages", len(got))
			}
			if _, ok := findPage(got[0], want[0]); !ok {
				t.Errorf("the page HylaFAX filed differs from what was sent")
			}
		})
	}
}
