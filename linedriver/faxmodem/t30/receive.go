package t30

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
	"github.com/mediagw/mediagw/linedriver/faxmodem/t4"
)

// Receiving (T.30 as the called terminal over a Class 1 modem): answer,
// CSI+DIS, TSI/DCS, the TCF check (CFR or FTT), pages without ECM (decoded
// with copy quality: MCF, RTP or RTN) or in error correction mode (HDLC
// frames in software, PPS/PPR, CTC/CTR, RNR while a page is stored), the
// post-page messages MPS/EOP/EOM, and DCN.

// Copy quality of a page received without ECM: rows the decoder could not
// read are repeated from the row above. A page with no bad row is confirmed
// with MCF; with up to QualityPercent of its rows bad and no more than
// QualityRun bad rows in a row it is kept and answered RTP (the sender
// retrains before its next page); worse, it is refused with RTN and not
// kept (the sender may send it again).
const (
	QualityPercent = 5
	QualityRun     = 8
)

// RxPage is one page received, decoded.
type RxPage struct {
	Params  Params
	Width   int
	Rows    [][]byte // (Width+7)/8 bytes each, most significant bit first, 1 = black
	BadRows int      // rows repeated from the row above (copy quality)
	// FramesLost counts ECM frames still in error when the caller ended
	// their retransmission with EOR: the page is kept (and confirmed with
	// ERR) without them, its rows from the first gap on may be missing.
	FramesLost int
	bad        []bool // which rows
}

// RxConfig configures a Class 1 receive.
type RxConfig struct {
	LocalID string // CSI, 20 characters at most
	// Standard offers standard resolution only (fine is offered by default).
	Standard bool
	// NoMR and NoMMR take those codings out of the DIS.
	NoMR, NoMMR bool
	// ECM "off" offers no error correction mode; "" or anything else
	// offers it (with MMR unless NoMMR).
	ECM         string
	MaxBits     int      // highest speed accepted (0: no limit); a DCS above it fails training
	Modulations []string // modulation families offered (empty: V.17, V.29, V.27ter)
	ModemCodes  []int    // AT+FRM codes the modem offers (AT+FRM=?); empty: all
	// Answered means the modem has answered already and reported CONNECT;
	// otherwise Receive answers with ATA.
	Answered bool

	T1 time.Duration // time for the caller's DCS (35 s)
	T2 time.Duration // time for the caller's next command (6 s)
	T4 time.Duration // time before the DIS is repeated (3 s)
	T5 time.Duration // how long the caller is kept waiting with RNR (60 s)
	// StoreWait is how long the answer to a PPS waits for Page before RNR
	// holds the caller (1.5 s).
	StoreWait time.Duration
	Silence   time.Duration // pause before answering a frame (80 ms)

	// Log receives each T.30 step.
	Log func(step, detail string)
	// Begin is called once, after the first good training (before CFR;
	// the caller waits 3 s for it); an error refuses the call (DCN).
	Begin func(ctx context.Context, remoteID string, p Params) error
	// Page stores page n (1-based). It returns once the page is kept;
	// the page is confirmed to the caller only after it returned nil.
	Page func(ctx context.Context, n int, page *RxPage) error
}

func (c *RxConfig) defaults() {
	if c.T1 == 0 {
		c.T1 = 35 * time.Second
	}
	if c.T2 == 0 {
		c.T2 = 6 * time.Second
	}
	if c.T4 == 0 {
		c.T4 = 3 * time.Second
	}
	if c.T5 == 0 {
		c.T5 = 60 * time.Second
	}
	if c.StoreWait == 0 {
		c.StoreWait = 1500 * time.Millisecond
	}
	if c.Silence == 0 {
		c.Silence = 80 * time.Millisecond
	}
}

// RxResult is what a receive got.
type RxResult struct {
	Pages    int // pages confirmed (MCF/RTP) and stored
	RemoteID string
	Params   Params // the last DCS
	Duration time.Duration
}

// rxSession is the called terminal's side; it shares the frame layer with
// the sending Session.
type rxSession struct {
	*Session
	rc      RxConfig
	dis     []byte
	begun   bool
	pages   int
	params  Params
	lastPPS [2]byte // page and block of the last confirmed ECM block
	ppsSeen bool
	// lastReply answers a repeated post-page message (0: none to repeat).
	lastReply  byte
	storeFails int // pages in a row Page refused
	// ECM: the frames of the block being received, the page's data from
	// the blocks confirmed, the first transmission after CTC trains long.
	block     map[int][]byte
	pageData  []byte
	longTrain bool
	pprs      int // PPRs sent
	count     int // frames in the block, from its last PPS
	lost      int // frames of the page given up with EOR
	resent    int // frames received again after a PPR
}

// errWrongCarrier is +FCERROR: the modem heard another carrier than the
// one asked for (a V.21 frame instead of page data).
var errWrongCarrier = errors.New("t30: another carrier than expected")

// ErrRefused is returned (wrapped) when Begin or Page refused the call.
var ErrRefused = errors.New("t30: refused by the receiving side")

// Receive answers a call (unless cfg.Answered) and receives a fax, calling
// cfg.Begin at the first DCS and cfg.Page for every page before it is
// confirmed. It returns nil when the caller ended properly (EOP confirmed,
// then DCN) and always leaves the modem on hook.
func Receive(ctx context.Context, ch *at.Channel, cfg RxConfig) (RxResult, error) {
	cfg.defaults()
	log := cfg.Log
	if log == nil {
		log = func(string, string) {}
	}
	s := &Session{ch: ch, log: log, cfg: Config{T1: cfg.T1, T4: cfg.T4, Silence: cfg.Silence, ModemCodes: cfg.ModemCodes,
		MaxBits: cfg.MaxBits, Modulations: cfg.Modulations}}
	s.cfg.defaults()
	r := &rxSession{Session: s, rc: cfg}
	start := time.Now()
	err := r.run(ctx)
	res := RxResult{Pages: r.pages, RemoteID: s.res.RemoteID, Params: r.params, Duration: time.Since(start)}
	s.hangup()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = classify(err, "")
		}
		e.Confirmed = r.pages
		return res, e
	}
	return res, nil
}

// caps is what the DIS offers.
func (r *rxSession) caps() Caps {
	c := Caps{CanReceive: true, Fine: !r.rc.Standard, MR: !r.rc.NoMR, V27ter: true, Length: 1}
	for _, sp := range Speeds {
		if !r.usable(sp) {
			continue
		}
		switch sp.Modulation {
		case V17:
			c.V17 = true
		case V29:
			c.V29 = true
		}
	}
	if !strings.EqualFold(r.rc.ECM, "off") {
		c.ECM = true
		c.MMR = !r.rc.NoMMR
	}
	return c
}

func (r *rxSession) run(ctx context.Context) error {
	if !r.rc.Answered {
		r.log("answer", "ATA")
		if err := r.ch.Send("A"); err != nil {
			return classify(err, "")
		}
		res, err := r.ch.ReadResult(ctx, 30*time.Second)
		if err != nil {
			if errors.Is(err, at.ErrTimeout) {
				r.ch.Abort(ctx, 2*time.Second) //nolint:errcheck // the call failed either way
			}
			return classify(err, "no answer from the modem to ATA")
		}
		if !res.Connect() {
			return &Error{Category: CatNoCarrier, Reason: "answering: " + res.Result}
		}
	}
	r.log("connect", "answered")
	caps := r.caps()
	r.dis = caps.Bytes()
	r.log("dis", caps.String())
	id := r.idFrames()
	if err := r.sendFrames(ctx, id...); err != nil {
		return classify(err, "")
	}
	return r.loop(ctx)
}

func (r *rxSession) idFrames() []Frame {
	var fr []Frame
	if r.rc.LocalID != "" {
		fr = append(fr, Frame{FCF: CSI, Info: EncodeID(r.rc.LocalID)})
	}
	return append(fr, Frame{FCF: DIS, Info: r.dis})
}

// reply sends frames after the pause T.30 asks for.
func (r *rxSession) reply(ctx context.Context, frames ...Frame) error {
	r.silence(ctx)
	if err := r.transmit(ctx, frames...); err != nil {
		return classify(err, "")
	}
	return nil
}

// await waits up to wait for the caller's next command: frames up to a
// final one. TSI is noted on the way. errNoResponse means none came.
func (r *rxSession) await(ctx context.Context, wait time.Duration) (Frame, error) {
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return Frame{}, errNoResponse
		}
		f, err := r.receive(ctx, left)
		switch {
		case errors.Is(err, ErrBadFrame), errors.Is(err, errNoResponse):
			continue
		case err != nil:
			return Frame{}, err
		}
		if Code(f.FCF) == TSI {
			r.res.RemoteID = DecodeID(f.Info)
		}
		if f.Final {
			return f, nil
		}
	}
}

// acceptable reports whether the DCS asks for what we offered.
func (r *rxSession) acceptable(p Params) bool {
	c := ParseDIS(r.dis)
	if !r.usable(p.Speed) || !c.Supports(p.Speed, r.dis) {
		return false
	}
	if (p.Fine && !c.Fine) || (p.MR && !c.MR) || (p.ECM && !c.ECM) || (p.MMR && !(c.MMR && p.ECM)) {
		return false
	}
	return true
}

// tcf receives the training check and reports whether it was good: at
// least one second of the 1.5 s of zeros arrived as zero octets.
func (r *rxSession) tcf(ctx context.Context, p Params) (bool, error) {
	data, err := r.receiveData(ctx, p.Speed.TrainCode, 10*time.Second)
	if errors.Is(err, errWrongCarrier) {
		r.log("tcf", "no training heard")
		return false, nil
	}
	if err != nil {
		return false, classify(err, "")
	}
	zeros := bytes.Count(data, []byte{0})
	good := zeros >= p.Speed.Bits/8 && r.acceptable(p)
	r.log("tcf", fmt.Sprintf("%d octets, %d zero: %s", len(data), zeros, map[bool]string{true: "good", false: "bad"}[good]))
	return good, nil
}

// receiveData runs AT+FRM=code and reads the data up to the end of the
// carrier. errWrongCarrier means the modem heard V.21 instead.
func (r *rxSession) receiveData(ctx context.Context, code int, wait time.Duration) ([]byte, error) {
	if err := r.ch.Send(fmt.Sprintf("+FRM=%d", code)); err != nil {
		return nil, err
	}
	r.listening = true
	res, err := r.ch.ReadResult(ctx, r.rc.T2)
	if errors.Is(err, at.ErrTimeout) {
		if err := r.abort(ctx); err != nil {
			return nil, err
		}
		return nil, errNoResponse
	}
	if err != nil {
		return nil, err
	}
	if !res.Connect() {
		r.listening = false
		switch res.Result {
		case "+FCERROR":
			return nil, errWrongCarrier
		case "NO CARRIER":
			return nil, errNoResponse
		}
		return nil, fmt.Errorf("t30: AT+FRM=%d: %s", code, res.Result)
	}
	data, err := r.ch.ReadData(ctx, wait)
	if err != nil {
		return data, err
	}
	r.listening = false
	// the carrier's end: NO CARRIER (or OK)
	if _, err := r.ch.ReadResult(ctx, 2*time.Second); err != nil && !errors.Is(err, at.ErrTimeout) {
		return data, err
	}
	return data, nil
}

// pageWait is how long one page's data may take to arrive: an A4 page at
// 2400 bit/s with dense MH coding stays well within it.
const pageWait = 6 * time.Minute

// What the receiver waits for next.
type rxWait int

const (
	waitDCS  rxWait = iota // the first DCS: the DIS is repeated every T4 until T1
	waitCmd                // a command within T2 (a new DCS after FTT, RTP or RTN)
	waitPage               // page data (or a block of it) after CFR or MCF
	waitDCN                // the caller's DCN after the last page
)

// next is where the call goes after reply to the post-page message ppm.
func (r *rxSession) next(ctx context.Context, ppm, reply byte) (rxWait, error) {
	switch {
	case reply == RTN:
		return waitCmd, nil
	case ppm == EOP || ppm == PriEOP:
		return waitDCN, nil
	case ppm == EOM || ppm == PriEOM:
		r.log("eom", "another document: DIS again")
		return waitDCS, r.reply(ctx, r.idFrames()...)
	case reply == RTP:
		return waitCmd, nil
	}
	return waitPage, nil
}

func isPPM(c byte) bool {
	switch c {
	case MPS, EOP, EOM, PriMPS, PriEOP, PriEOM:
		return true
	}
	return false
}

// loop runs the call after the DIS was sent.
func (r *rxSession) loop(ctx context.Context) error {
	wait := waitDCS
	deadline := time.Now().Add(r.rc.T1)
	for {
		if wait == waitPage {
			var err error
			if r.params.ECM {
				wait, err = r.ecmPage(ctx)
			} else {
				wait, err = r.page(ctx)
			}
			if err != nil {
				return err
			}
			if wait == waitDCS {
				deadline = time.Now().Add(r.rc.T1)
			}
			continue
		}
		timeout := r.rc.T2
		if wait == waitDCS {
			timeout = r.rc.T4
		}
		f, err := r.await(ctx, timeout)
		if errors.Is(err, errNoResponse) {
			switch {
			case wait == waitDCN:
				r.log("done", fmt.Sprintf("%d pages received; no DCN from the caller", r.pages))
				return nil // every page is confirmed and kept
			case wait == waitDCS && time.Now().Before(deadline):
				r.log("timeout", "no DCS: DIS again")
				if err := r.reply(ctx, r.idFrames()...); err != nil {
					return err
				}
				continue
			case wait == waitDCS && r.pages == 0:
				return &Error{Category: CatNoAnswer, Reason: "the caller sent no DCS (T1): not a fax machine, or it hung up"}
			}
			return &Error{Category: CatHangup, Reason: fmt.Sprintf("the caller went silent after %d pages", r.pages)}
		}
		if err != nil {
			return classify(err, "")
		}
		c := Code(f.FCF)
		switch {
		case c == DCS:
			if wait, err = r.dcs(ctx, f); err != nil {
				return err
			}
		case c == DCN:
			if wait == waitDCN {
				r.log("done", fmt.Sprintf("%d pages received", r.pages))
				return nil
			}
			return &Error{Category: CatHangup, Reason: fmt.Sprintf("the caller hung up (DCN) after %d pages", r.pages)}
		case (isPPM(c) || c == PPS) && r.lastReply != 0:
			// our answer was lost: the caller repeats its post-page message
			r.log("repeat", f.String())
			if err := r.reply(ctx, Frame{FCF: r.lastReply}); err != nil {
				return err
			}
			ppm := c
			if c == PPS && len(f.Info) > 0 {
				ppm = Code(f.Info[0])
			}
			if c == PPS && ppm == 0 {
				wait = waitPage
				continue
			}
			if wait, err = r.next(ctx, ppm, r.lastReply); err != nil {
				return err
			}
		case c == CRP:
			if wait == waitDCS {
				err = r.reply(ctx, r.idFrames()...)
			} else if r.lastReply != 0 {
				err = r.reply(ctx, Frame{FCF: r.lastReply})
			}
			if err != nil {
				return err
			}
		default:
			r.log("ignored", f.String())
		}
	}
}

// dcs takes a DCS: Begin at the first, then the TCF check: CFR (page data
// follows) or FTT (the caller trains again).
func (r *rxSession) dcs(ctx context.Context, f Frame) (rxWait, error) {
	p, err := ParseDCS(f.Info)
	if err != nil {
		return 0, &Error{Category: CatProtocol, Reason: "unreadable DCS", Err: err}
	}
	r.params = p
	r.log("dcs", p.String())
	// the TCF follows the DCS within 75 ms: nothing may come between
	ok, err := r.tcf(ctx, p)
	if err != nil {
		return 0, err
	}
	if !ok {
		r.lastReply = 0
		return waitCmd, r.reply(ctx, Frame{FCF: FTT})
	}
	if !r.begun {
		// the caller waits T4 (3 s) for CFR
		r.begun = true
		if r.rc.Begin != nil {
			if err := r.rc.Begin(ctx, r.res.RemoteID, p); err != nil {
				r.reply(ctx, Frame{FCF: DCN}) //nolint:errcheck // refusing either way
				return 0, &Error{Category: CatProtocol, Reason: "the call was refused", Err: fmt.Errorf("%w: %w", ErrRefused, err)}
			}
		}
	}
	r.lastReply = 0
	r.longTrain = false
	return waitPage, r.reply(ctx, Frame{FCF: CFR})
}

// page receives one page without ECM, its post-page message, keeps the
// page (overlapping the wait for the message) and answers.
func (r *rxSession) page(ctx context.Context) (rxWait, error) {
	data, err := r.receiveData(ctx, r.params.Speed.DataCode, pageWait)
	switch {
	case errors.Is(err, errWrongCarrier), errors.Is(err, errNoResponse):
		return waitCmd, nil // a frame instead: a repeated command or a new DCS
	case err != nil:
		return 0, pageError(err, r.pages+1)
	}
	pg, derr := decode(data, r.params)
	q := quality(pg)
	r.log("page", fmt.Sprintf("%d: %d octets, %d rows, %d bad: %s", r.pages+1, len(data), len(pg.Rows), pg.BadRows, Name(q)))
	if derr != nil {
		r.log("page", "decoding: "+derr.Error())
		q = RTN
	}
	done := make(chan error, 1)
	if q != RTN {
		go func() { done <- r.store(ctx, pg) }()
	} else {
		done <- nil
	}
	f, err := r.await(ctx, r.rc.T2)
	serr := <-done
	if err != nil {
		if errors.Is(err, errNoResponse) {
			err = &Error{Category: CatHangup, Reason: fmt.Sprintf("no post-page message after page %d", r.pages+1)}
		}
		return 0, classify(err, "")
	}
	ppm := Code(f.FCF)
	if ppm == DCN {
		return 0, &Error{Category: CatHangup, Reason: fmt.Sprintf("the caller hung up (DCN) after page %d", r.pages+1)}
	}
	if !isPPM(ppm) {
		return 0, &Error{Category: CatProtocol, Reason: "unexpected " + f.String() + " after page data"}
	}
	if serr != nil {
		r.storeFails++
		r.log("store", fmt.Sprintf("page %d not kept: %v", r.pages+1, serr))
		if r.storeFails > 1 {
			r.reply(ctx, Frame{FCF: DCN}) //nolint:errcheck // ending either way
			return 0, &Error{Category: CatProtocol, Reason: fmt.Sprintf("page %d could not be kept", r.pages+1), Err: fmt.Errorf("%w: %w", ErrRefused, serr)}
		}
		q = RTN
	}
	if q != RTN {
		r.storeFails = 0
		r.pages++
	}
	r.lastReply = q
	if err := r.reply(ctx, Frame{FCF: q}); err != nil {
		return 0, err
	}
	return r.next(ctx, ppm, q)
}

// store hands a page to Page.
func (r *rxSession) store(ctx context.Context, pg *RxPage) error {
	if r.rc.Page == nil {
		return nil
	}
	return r.rc.Page(ctx, r.pages+1, pg)
}

// ecmPage receives blocks in error correction mode up to the end of a page
// (or a repeated command in their place) and answers each PPS.
func (r *rxSession) ecmPage(ctx context.Context) (rxWait, error) {
	if r.block == nil {
		r.block = map[int][]byte{}
	}
	for {
		code := r.params.Speed.DataCode
		if r.longTrain {
			code = r.params.Speed.TrainCode
		}
		data, err := r.receiveData(ctx, code, pageWait)
		switch {
		case errors.Is(err, errWrongCarrier), errors.Is(err, errNoResponse):
		case err != nil:
			return 0, pageError(err, r.pages+1)
		default:
			r.longTrain = false
			n := 0
			for _, fr := range HDLCDecode(data) {
				if len(fr) >= 4 && Code(fr[2]) == FCD {
					if _, dup := r.block[int(fr[3])]; dup {
						r.resent++
					}
					r.block[int(fr[3])] = fr[4:]
					n++
				}
			}
			r.log("ecm", fmt.Sprintf("%d frames good of %d octets at %s", n, len(data), r.params.Speed))
		}
		f, err := r.await(ctx, r.rc.T2)
		if err != nil {
			if errors.Is(err, errNoResponse) {
				return 0, &Error{Category: CatHangup, Reason: fmt.Sprintf("no PPS during page %d", r.pages+1)}
			}
			return 0, classify(err, "")
		}
		switch c := Code(f.FCF); c {
		case PPS, EOR:
			if len(f.Info) < 4 && c == PPS {
				return 0, &Error{Category: CatProtocol, Reason: "short PPS " + f.String()}
			}
			var fcf2 byte
			var id [2]byte
			count := 0
			if len(f.Info) >= 4 {
				fcf2, id, count = Code(f.Info[0]), [2]byte{f.Info[1], f.Info[2]}, int(f.Info[3])+1
			} else if len(f.Info) > 0 {
				fcf2 = Code(f.Info[0])
			}
			if c == PPS && len(r.block) == 0 && r.ppsSeen && id == r.lastPPS {
				// our MCF was lost: the caller repeats the PPS of a block we kept
				r.log("repeat", f.String())
				if err := r.reply(ctx, Frame{FCF: MCF}); err != nil {
					return 0, err
				}
				if fcf2 == 0 {
					continue
				}
				return r.next(ctx, fcf2, MCF)
			}
			if c == PPS {
				if bad := missing(r.block, count); len(bad) > 0 {
					r.pprs++
					r.log("ppr", fmt.Sprintf("page %d block %d: %d of %d frames in error", r.pages+1, id[1], len(bad), count))
					r.lastReply = 0
					if err := r.reply(ctx, Frame{FCF: PPR, Info: pprMap(bad)}); err != nil {
						return 0, err
					}
					continue
				}
				r.count = count
			} else {
				// EOR carries the post-page message only: the block is
				// the one the last PPS announced
				count = r.count
				for n := range r.block {
					count = max(count, n+1)
				}
				lost := missing(r.block, count)
				r.lost += len(lost)
				r.log("eor", fmt.Sprintf("page %d: the caller gives up correcting %d of %d frames: ERR, the page is kept without them", r.pages+1, len(lost), count))
			}
			for n := range count {
				r.pageData = append(r.pageData, r.block[n]...)
			}
			r.count = 0
			clear(r.block)
			r.lastPPS, r.ppsSeen = id, true
			answer := byte(MCF)
			if c == EOR {
				answer = ERR
			}
			if fcf2 == 0 {
				r.lastReply = answer
				if err := r.reply(ctx, Frame{FCF: answer}); err != nil {
					return 0, err
				}
				continue
			}
			if err := r.ecmPageDone(ctx); err != nil {
				return 0, err
			}
			r.lastReply = answer
			if err := r.reply(ctx, Frame{FCF: answer}); err != nil {
				return 0, err
			}
			return r.next(ctx, fcf2, MCF)
		case CTC:
			p, err := ParseDCS(f.Info)
			if err != nil {
				return 0, &Error{Category: CatProtocol, Reason: "unreadable CTC", Err: err}
			}
			r.params.Speed = p.Speed
			r.longTrain = true
			r.log("ctc", p.Speed.String())
			if err := r.reply(ctx, Frame{FCF: CTR}); err != nil {
				return 0, err
			}
		case DCN:
			return 0, &Error{Category: CatHangup, Reason: fmt.Sprintf("the caller hung up (DCN) during page %d", r.pages+1)}
		case CRP:
			if r.lastReply != 0 {
				if err := r.reply(ctx, Frame{FCF: r.lastReply}); err != nil {
					return 0, err
				}
			}
		case DCS:
			return r.dcs(ctx, f)
		default:
			return 0, &Error{Category: CatProtocol, Reason: "unexpected " + f.String() + " in error correction mode"}
		}
	}
}

// ecmPageDone decodes the page's blocks and keeps it, holding the caller
// with RNR while Page takes long (up to T5).
func (r *rxSession) ecmPageDone(ctx context.Context) error {
	pg, derr := decode(r.pageData, r.params)
	pg.FramesLost, r.lost = r.lost, 0
	r.log("page", fmt.Sprintf("%d: %d octets, %d rows", r.pages+1, len(r.pageData), len(pg.Rows)))
	r.pageData = r.pageData[:0]
	if derr != nil {
		r.log("page", "decoding: "+derr.Error())
	}
	done := make(chan error, 1)
	go func() { done <- r.store(ctx, pg) }()
	t5 := time.Now().Add(r.rc.T5)
	refuse := func(err error) error {
		r.reply(ctx, Frame{FCF: DCN}) //nolint:errcheck // ending either way
		return &Error{Category: CatProtocol, Reason: fmt.Sprintf("page %d could not be kept", r.pages+1), Err: fmt.Errorf("%w: %w", ErrRefused, err)}
	}
	for {
		t := time.NewTimer(r.rc.StoreWait)
		select {
		case err := <-done:
			t.Stop()
			if err != nil {
				r.log("store", fmt.Sprintf("page %d not kept: %v", r.pages+1, err))
				return refuse(err)
			}
			r.pages++
			return nil
		case <-t.C:
		}
		if time.Now().After(t5) {
			err := <-done // Page ends with ctx; the call ends here
			if err == nil {
				r.pages++
			}
			return refuse(fmt.Errorf("t30: storing took longer than T5 (%v)", r.rc.T5))
		}
		r.log("rnr", fmt.Sprintf("page %d is being stored", r.pages+1))
		if err := r.reply(ctx, Frame{FCF: RNR}); err != nil {
			<-done
			return err
		}
		f, err := r.await(ctx, r.rc.T2)
		if err == nil && Code(f.FCF) != RR {
			err = &Error{Category: CatProtocol, Reason: "unexpected " + f.String() + " after RNR"}
		}
		if err != nil {
			<-done
			if errors.Is(err, errNoResponse) {
				err = &Error{Category: CatHangup, Reason: "no RR after RNR"}
			}
			return classify(err, "")
		}
	}
}

// missing lists the frames of 0..count-1 not received.
func missing(block map[int][]byte, count int) []int {
	var out []int
	for n := range count {
		if _, ok := block[n]; !ok {
			out = append(out, n)
		}
	}
	return out
}

// pprMap is a PPR's 256-bit map: bit n (least significant first) marks
// frame n in error.
func pprMap(bad []int) []byte {
	m := make([]byte, 32)
	for _, n := range bad {
		m[n/8] |= 1 << (n % 8)
	}
	return m
}

// decode decodes a page's data; rows that fail are repeated from the row
// above (MH and MR only: MMR comes with ECM, where no row is lost).
func decode(data []byte, p Params) (*RxPage, error) {
	o := t4.Options{Encoding: t4.MH, LSBFirst: true}
	switch {
	case p.MMR:
		o.Encoding = t4.MMR
	case p.MR:
		o.Encoding, o.K = t4.MR, p.K()
	}
	const width = 1728
	nb := (width + 7) / 8
	pg := &RxPage{Params: p, Width: width}
	d := t4.NewDecoder(bytes.NewReader(data), width, o)
	if !p.MMR {
		// what the modem delivers before the first EOL (ones while the
		// sender pauses after training) is no part of the page
		if err := d.SkipToEOL(); err != nil {
			return pg, nil // no EOL: an empty page
		}
	}
	for {
		if len(pg.Rows) > t4.DefaultMaxRows {
			return pg, fmt.Errorf("t30: page longer than %d rows", t4.DefaultMaxRows)
		}
		row := make([]byte, nb)
		err := d.ReadRow(row)
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return pg, nil
		}
		if err != nil {
			if !errors.Is(err, t4.ErrInvalid) || p.MMR {
				return pg, err
			}
			lost, rerr := d.Resync()
			if len(pg.Rows) == 0 {
				lost = 0 // noise before the first EOL is no row
			}
			for range lost {
				prev := make([]byte, nb)
				if n := len(pg.Rows); n > 0 {
					copy(prev, pg.Rows[n-1])
				}
				pg.Rows = append(pg.Rows, prev)
				pg.bad = append(pg.bad, true)
				pg.BadRows++
			}
			if rerr == io.EOF {
				return pg, nil
			}
			if rerr != nil {
				return pg, rerr
			}
			continue
		}
		pg.Rows = append(pg.Rows, row)
		pg.bad = append(pg.bad, false)
	}
}

// quality judges a page without ECM: MCF, RTP or RTN (see QualityPercent).
func quality(pg *RxPage) byte {
	if pg.BadRows == 0 && len(pg.Rows) > 0 {
		return MCF
	}
	if len(pg.Rows) == 0 || pg.BadRows*100 > len(pg.Rows)*QualityPercent {
		return RTN
	}
	run, worst := 0, 0
	for _, b := range pg.bad {
		if b {
			run++
			worst = max(worst, run)
		} else {
			run = 0
		}
	}
	if worst > QualityRun {
		return RTN
	}
	return RTP
}
