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

	"github.com/mediagw/mediagw/internal/testenv"
	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
	"golang.org/x/sys/unix"
)

// corrupter sits between the sender and its modem and damages page data:
// in the first high-speed transmission after AT+FTM=<code>, it inverts the
// octets at the given offsets, so the far end gets those HDLC frames with
// a bad FCS. Commands and everything later pass untouched.
type corrupter struct {
	f       *os.File
	code    string
	offsets []int

	mu      sync.Mutex
	armed   bool // the next data is the page to damage
	done    bool
	seen    int // data octets written since arming
	cmd     []byte
	damaged int
}

func (c *corrupter) Read(p []byte) (int, error) { return c.f.Read(p) }
func (c *corrupter) Close() error               { return c.f.Close() }

func (c *corrupter) Write(p []byte) (int, error) {
	c.mu.Lock()
	q := p
	if c.armed && !c.done {
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
			c.done = true
		}
	} else if !c.done {
		c.cmd = append(c.cmd, p...)
		if len(c.cmd) > 64 {
			c.cmd = c.cmd[len(c.cmd)-64:]
		}
		if bytes.Contains(c.cmd, []byte("AT+FTM="+c.code+"\r")) {
			c.armed = true
		}
	}
	c.mu.Unlock()
	return c.f.Write(q)
}

// TestHylaFAXECMCorrupted damages two places of the first ECM block on its
// way to the modem: HylaFAX answers PPR naming the frames in error, only
// those are sent again, and the page it files is pixel-exact.
func TestHylaFAXECMCorrupted(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "iaxmodem")
	testenv.LookPath(t, "faxgetty")
	testenv.LookPath(t, "tiffsplit")
	testenv.LookPath(t, "tifftopnm")
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
	if err := rawTTY(f); err != nil {
		t.Fatal(err)
	}
	// V.17 14400 page data is +FTM=146; the offsets are octets of the
	// DLE-stuffed stream (frames of 256 octets: about frames 3 and 9)
	cr := &corrupter{f: f, code: "146", offsets: []int{1000, 2600}}
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
	if !res.Params.ECM || !res.Params.MMR {
		t.Errorf("negotiated %v", res.Params)
	}
	if cr.damaged == 0 || len(pprs) == 0 {
		t.Fatalf("%d octets damaged, PPRs %q", cr.damaged, pprs)
	}
	// the resend carries only the frames the PPR named, not the block
	var named, sent, total int
	fmt.Sscanf(pprs[0], "page 1 block 0: %d frames in error", &named)
	if len(blocks) < 2 {
		t.Fatalf("no resend: %q", blocks)
	}
	fmt.Sscanf(blocks[1], "page 1 block 0: %d of %d frames", &sent, &total)
	if named == 0 || sent != named || sent >= total {
		t.Errorf("PPR named %d frames, resent %d of %d", named, sent, total)
	}
	t.Logf("damaged %d octets; %q; %q", cr.damaged, pprs, blocks)
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
}
