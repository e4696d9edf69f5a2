package t30_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t30"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// caller is a calling fax machine behind a scripted Class 1 modem: the host
// answers with ATA, and the caller sends its pages without ECM as a T.30
// sender does, reacting to the host's frames.
type caller struct {
	pages    [][][]byte // rows of each page
	noDCS    bool       // never answers the DIS (a voice call)
	badAbove int        // TCF spoiled above this bit rate (FTT)
	loseMCF  int        // the first n MCFs are not heard: the post-page message is repeated
	eomAfter int        // page (1-based) after which EOM starts a second document
	// ECM: pages go MH in 64-octet frames; the frames of lost never
	// arrive (the host asks for them with PPR); after four PPRs the
	// caller ends the block with EOR.
	ecm  bool
	lost map[int]bool

	frames [][]byte // ECM: the page's frames
	pprs   int

	mu      *sync.Mutex
	queue   []item // what the caller sends next, in order
	speed   int    // index in t30.Speeds
	page    int    // index of the page being sent
	lastPPM byte
	heard   []string // the host's frames
}

type item struct {
	frame *t30.Frame
	data  []byte
}

func (c *caller) push(items ...item) { c.queue = append(c.queue, items...) }

func (c *caller) dcs() {
	p := t30.Params{Speed: t30.Speeds[c.speed], Fine: true, ECM: c.ecm, FrameSize: 64}
	c.push(item{frame: &t30.Frame{FCF: t30.TSI | t30.XBit, Info: t30.EncodeID("+1 555 0001")}},
		item{frame: &t30.Frame{FCF: t30.DCS | t30.XBit, Info: p.DCSBytes(), Final: true}})
	tcf := make([]byte, p.Speed.Bits*3/16)
	if c.badAbove > 0 && p.Speed.Bits > c.badAbove {
		for i := range tcf {
			tcf[i] = byte(i)
		}
	}
	c.push(item{data: tcf})
}

func (c *caller) sendPage() {
	var b bytes.Buffer
	rows := c.pages[c.page]
	t4.EncodePage(&b, 1728, func(y int) []byte { return rows[y] }, len(rows), t4.Options{Encoding: t4.MH, EndOfPage: true, LSBFirst: true}) //nolint:errcheck // fixed pages
	ppm := byte(t30.MPS)
	switch {
	case c.page == len(c.pages)-1:
		ppm = t30.EOP
	case c.page+1 == c.eomAfter:
		ppm = t30.EOM
	}
	c.lastPPM = ppm
	if c.ecm {
		c.frames, c.pprs = nil, 0
		data := b.Bytes()
		for off := 0; off < len(data); off += 64 {
			f := make([]byte, 64) // the last one padded with zeros (fill)
			copy(f, data[off:min(off+64, len(data))])
			c.frames = append(c.frames, f)
		}
		all := make([]int, len(c.frames))
		for i := range all {
			all[i] = i
		}
		c.sendFrames(all)
		return
	}
	c.push(item{data: append(bytes.Repeat([]byte{0xFF}, 40), b.Bytes()...)}) // the idle line before the page
	c.push(item{frame: &t30.Frame{FCF: ppm | t30.XBit, Final: true}})
}

// sendFrames sends the block's frames numbered in which (but the lost
// ones), three RCP and the PPS with the page's post-page message.
func (c *caller) sendFrames(which []int) {
	var hd [][]byte
	for _, n := range which {
		if !c.lost[n] {
			hd = append(hd, append([]byte{t30.Address, t30.ControlMore, t30.FCD, byte(n)}, c.frames[n]...))
		}
	}
	for range 3 {
		hd = append(hd, []byte{t30.Address, t30.ControlMore, t30.RCP})
	}
	c.push(item{data: t30.HDLCEncode(hd, 40)},
		item{frame: &t30.Frame{FCF: t30.PPS | t30.XBit, Final: true, Info: []byte{c.lastPPM | t30.XBit, byte(c.page), 0, byte(len(c.frames) - 1)}}})
}

// heardFrame is the caller's reaction to a frame from the host.
func (c *caller) heardFrame(f t30.Frame) {
	c.heard = append(c.heard, t30.Name(f.FCF))
	if !f.Final {
		return
	}
	switch t30.Code(f.FCF) {
	case t30.DIS:
		if !c.noDCS {
			c.dcs()
		}
	case t30.FTT:
		c.speed++
		c.dcs()
	case t30.CFR:
		c.sendPage()
	case t30.PPR:
		c.pprs++
		if c.pprs == 4 {
			c.push(item{frame: &t30.Frame{FCF: t30.EOR | t30.XBit, Final: true, Info: []byte{c.lastPPM | t30.XBit}}})
			return
		}
		var bad []int
		for n := range c.frames {
			if f.Info[n/8]&(1<<(n%8)) != 0 {
				bad = append(bad, n)
			}
		}
		c.sendFrames(bad)
	case t30.MCF, t30.RTP, t30.ERR:
		if c.loseMCF > 0 {
			c.loseMCF--
			c.push(item{frame: &t30.Frame{FCF: c.lastPPM | t30.XBit, Final: true}})
			return
		}
		c.page++
		switch c.lastPPM {
		case t30.MPS:
			c.sendPage()
		case t30.EOP:
			c.push(item{frame: &t30.Frame{FCF: t30.DCN | t30.XBit, Final: true}})
		}
		// EOM: the host sends DIS again
	case t30.RTN:
		c.dcs() // retrain, then the page again
	}
}

// serve plays the modem on rw until it closes.
func (c *caller) serve(rw io.ReadWriter) {
	r := bufio.NewReader(rw)
	say := func(s string) { io.WriteString(rw, "\r\n"+s+"\r\n") } //nolint:errcheck // the pipe ends the test
	readFrames := func() {
		for {
			var raw []byte
			for {
				b, err := r.ReadByte()
				if err != nil {
					return
				}
				if b == at.DLE {
					n, _ := r.ReadByte()
					if n == at.ETX {
						break
					}
					raw = append(raw, n)
					continue
				}
				raw = append(raw, b)
			}
			f, err := t30.Parse(raw)
			c.mu.Lock()
			if err == nil {
				c.heardFrame(f)
			}
			c.mu.Unlock()
			if err != nil || f.Final {
				say("OK")
				return
			}
			say("CONNECT")
		}
	}
	for {
		line, err := r.ReadString('\r')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(strings.TrimLeft(line, "\x18\n")))
		switch {
		case cmd == "ATA", cmd == "AT+FTH=3":
			say("CONNECT")
			readFrames()
		case cmd == "AT+FRH=3", strings.HasPrefix(cmd, "AT+FRM="):
			c.mu.Lock()
			var it *item
			if len(c.queue) > 0 {
				it = &c.queue[0]
			}
			wantFrame := cmd == "AT+FRH=3"
			switch {
			case it == nil:
				c.mu.Unlock()
				// nothing on the line: wait for the host's abort
				if _, err := r.ReadByte(); err != nil {
					return
				}
				say("OK")
				continue
			case wantFrame != (it.frame != nil):
				c.mu.Unlock()
				say("+FCERROR")
				continue
			}
			c.queue = c.queue[1:]
			c.mu.Unlock()
			say("CONNECT")
			if it.frame != nil {
				rw.Write(append(at.Stuff(it.frame.MarshalFCS()), at.DLE, at.ETX)) //nolint:errcheck // see say
				say("OK")
			} else {
				rw.Write(append(at.Stuff(it.data), at.DLE, at.ETX)) //nolint:errcheck // see say
				say("NO CARRIER")
			}
		default: // +FRS, +FTS, H0
			say("OK")
		}
	}
}

type duplex struct {
	io.Reader
	io.Writer
}

func rxPage(h, seed int) [][]byte {
	rows := make([][]byte, h)
	for y := range rows {
		r := make([]byte, 1728/8)
		for x := (y*seed + 3) % 200; x < 1728/8; x += 17 {
			r[x] = byte(0xF0 >> (y % 4))
		}
		rows[y] = r
	}
	return rows
}

// TestReceivePaths runs t30.Receive against a scripted caller: pages kept
// before they are confirmed, FTT and the lower speed, a repeated post-page
// message answered again without keeping the page twice, EOM, a refused
// call, a caller that never sends a DCS, a page that cannot be kept.
func TestReceivePaths(t *testing.T) {
	for _, tt := range []struct {
		name      string
		caller    caller
		begin     error
		failPages int    // Page fails that many times
		category  string // "" for success
		pages     int    // pages kept
		speed     int    // bit rate of the last DCS
		heard     string // the host's final frames as the caller heard them
	}{
		{name: "three pages", caller: caller{pages: [][][]byte{rxPage(40, 1), rxPage(30, 2), rxPage(20, 3)}},
			pages: 3, speed: 14400, heard: "CSI DIS CFR MCF MCF MCF"},
		{name: "FTT then a lower speed", caller: caller{pages: [][][]byte{rxPage(40, 1)}, badAbove: 9600},
			pages: 1, speed: 9600, heard: "CSI DIS FTT FTT CFR MCF"},
		{name: "MCF lost: MPS again", caller: caller{pages: [][][]byte{rxPage(40, 1), rxPage(30, 2)}, loseMCF: 1},
			pages: 2, speed: 14400, heard: "CSI DIS CFR MCF MCF MCF"},
		{name: "EOM: a second document", caller: caller{pages: [][][]byte{rxPage(40, 1), rxPage(30, 2)}, eomAfter: 1},
			pages: 2, speed: 14400, heard: "CSI DIS CFR MCF CSI DIS CFR MCF"},
		{name: "refused at Begin", caller: caller{pages: [][][]byte{rxPage(40, 1)}}, begin: errors.New("no such mailbox"),
			category: t30.CatProtocol, heard: "CSI DIS DCN"},
		{name: "no DCS (T1)", caller: caller{noDCS: true}, category: t30.CatNoAnswer},
		{name: "page not kept: RTN, then kept", caller: caller{pages: [][][]byte{rxPage(40, 1)}}, failPages: 1,
			pages: 1, speed: 14400, heard: "CSI DIS CFR RTN CFR MCF"},
		{name: "page not kept twice: DCN", caller: caller{pages: [][][]byte{rxPage(40, 1)}}, failPages: 2,
			category: t30.CatProtocol, heard: "CSI DIS CFR RTN CFR DCN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hostR, modemW := io.Pipe()
				modemR, hostW := io.Pipe()
				c := &tt.caller
				c.mu = &sync.Mutex{}
				go c.serve(duplex{modemR, modemW})
				ch := at.New(duplex{hostR, hostW}, at.Options{})
				defer func() {
					hostW.Close()
					modemW.Close()
					ch.Close()
				}()
				var kept [][][]byte
				fails := tt.failPages
				var log strings.Builder
				cfg := t30.RxConfig{LocalID: "+1 555 0002", T1: 2 * time.Second,
					Log:   func(step, d string) { fmt.Fprintf(&log, "[%s] %s\n", step, d) },
					Begin: func(context.Context, string, t30.Params) error { return tt.begin },
					Page: func(_ context.Context, n int, p *t30.RxPage) error {
						if fails > 0 {
							fails--
							return errors.New("disk full")
						}
						if n != len(kept)+1 {
							return fmt.Errorf("page %d after %d", n, len(kept))
						}
						kept = append(kept, p.Rows)
						return nil
					}}
				res, err := t30.Receive(context.Background(), ch, cfg)
				c.mu.Lock()
				heard := strings.Join(c.heard, " ")
				c.mu.Unlock()
				defer func() {
					if t.Failed() {
						t.Logf("receiver:\n%s", log.String())
					}
				}()
				var e *t30.Error
				switch {
				case tt.category == "" && err != nil:
					t.Fatalf("receive: %v", err)
				case tt.category != "" && (!errors.As(err, &e) || e.Category != tt.category):
					t.Fatalf("receive: %v, want category %s", err, tt.category)
				}
				if tt.begin != nil && !errors.Is(err, t30.ErrRefused) {
					t.Errorf("%v does not wrap ErrRefused", err)
				}
				if tt.heard != "" && heard != tt.heard {
					t.Errorf("the caller heard %q, want %q", heard, tt.heard)
				}
				if res.Pages != tt.pages || len(kept) != tt.pages {
					t.Fatalf("%d pages confirmed, %d kept, want %d", res.Pages, len(kept), tt.pages)
				}
				if tt.pages > 0 && res.Params.Speed.Bits != tt.speed {
					t.Errorf("last DCS at %v", res.Params)
				}
				c.mu.Lock()
				left := len(c.queue)
				c.mu.Unlock()
				if tt.category == "" && (res.RemoteID != "+1 555 0001" || left != 0) {
					t.Errorf("remote %q, %d items the caller sent not taken", res.RemoteID, left)
				}
				for p, rows := range kept {
					want := c.pages[p]
					if len(rows) != len(want) {
						t.Fatalf("page %d: %d rows, want %d", p+1, len(rows), len(want))
					}
					for y := range rows {
						if !bytes.Equal(rows[y], want[y]) {
							t.Fatalf("page %d row %d differs", p+1, y)
						}
					}
				}
			})
		})
	}
}

// TestReceiveEOR: in error correction mode a frame that never arrives is
// asked for with PPR four times; the caller then ends the retransmission
// with EOR-EOP. The host answers ERR and keeps the page without that frame
// (FramesLost 1): the rows before the gap exact, the page counted as
// received. The same caller without a lost frame gets MCF and a whole page.
func TestReceiveEOR(t *testing.T) {
	for _, tt := range []struct {
		name  string
		lost  map[int]bool
		heard string
	}{
		{"no frame lost", nil, "CSI DIS CFR MCF"},
		{"frame 3 never arrives", map[int]bool{3: true}, "CSI DIS CFR PPR PPR PPR PPR ERR"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hostR, modemW := io.Pipe()
				modemR, hostW := io.Pipe()
				want := rxPage(200, 1)
				c := &caller{pages: [][][]byte{want}, ecm: true, lost: tt.lost, mu: &sync.Mutex{}}
				go c.serve(duplex{modemR, modemW})
				ch := at.New(duplex{hostR, hostW}, at.Options{})
				defer func() {
					hostW.Close()
					modemW.Close()
					ch.Close()
				}()
				var kept []*t30.RxPage
				var log strings.Builder
				cfg := t30.RxConfig{LocalID: "+1 555 0002", T1: 2 * time.Second,
					Log: func(step, d string) { fmt.Fprintf(&log, "[%s] %s\n", step, d) },
					Page: func(_ context.Context, n int, p *t30.RxPage) error {
						kept = append(kept, p)
						return nil
					}}
				res, err := t30.Receive(context.Background(), ch, cfg)
				defer func() {
					if t.Failed() {
						t.Logf("receiver:\n%s", log.String())
					}
				}()
				if err != nil {
					t.Fatalf("receive: %v", err)
				}
				c.mu.Lock()
				heard := strings.Join(c.heard, " ")
				c.mu.Unlock()
				if heard != tt.heard {
					t.Errorf("the caller heard %q, want %q", heard, tt.heard)
				}
				if res.Pages != 1 || len(kept) != 1 {
					t.Fatalf("%d pages confirmed, %d kept, want 1", res.Pages, len(kept))
				}
				pg := kept[0]
				if !pg.Params.ECM || pg.FramesLost != len(tt.lost) {
					t.Errorf("page %v, %d frames lost, want ECM and %d", pg.Params, pg.FramesLost, len(tt.lost))
				}
				// rows up to the gap (3 frames of 64 octets, ~30 octets a row) are exact
				if len(tt.lost) == 0 && len(pg.Rows) != len(want) {
					t.Fatalf("%d rows, want %d", len(pg.Rows), len(want))
				}
				if len(tt.lost) > 0 && (len(pg.Rows) >= len(want) || len(pg.Rows) < len(want)/2) {
					t.Errorf("%d rows kept of %d sent: want the page less the lost frame's rows", len(pg.Rows), len(want))
				}
				for y := range min(len(pg.Rows), 4) {
					if !bytes.Equal(pg.Rows[y], want[y]) {
						t.Errorf("row %d differs", y)
					}
				}
				t.Logf("%d rows of %d, %d frames lost", len(pg.Rows), len(want), pg.FramesLost)
				if len(tt.lost) > 0 && !strings.Contains(log.String(), "[eor] page 1: the caller gives up correcting 1 of ") {
					t.Errorf("no EOR step in the log")
				}
			})
		})
	}
}
