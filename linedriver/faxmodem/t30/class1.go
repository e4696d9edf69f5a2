package t30

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mediagw/mediagw/linedriver/faxmodem/at"
)

// Failure categories of a send. The driver maps each to a retry policy.
const (
	CatBusy       = "busy"
	CatNoAnswer   = "no_answer"
	CatNoCarrier  = "no_carrier"
	CatNoDialtone = "no_dialtone"
	CatTraining   = "training_failed"
	CatRejected   = "page_rejected"
	CatProtocol   = "protocol"
	CatModem      = "modem_not_responding"
	CatHangup     = "remote_hangup"
	CatCancelled  = "cancelled"
)

// Error is a failed send: a category, words, and how many pages the far end
// had confirmed before the failure.
type Error struct {
	Category  string
	Reason    string
	Confirmed int // pages confirmed in this call (from Config.FirstPage)
	Err       error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("t30: %s: %s: %v", e.Category, e.Reason, e.Err)
	}
	return fmt.Sprintf("t30: %s: %s", e.Category, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

// Page is one page to send. Encode returns its T.4 data (EOL-framed lines
// and RTC) for the negotiated parameters; it is called again after a
// change of speed, since the minimum scan line length depends on it.
type Page struct {
	Encode func(p Params) ([]byte, error)
}

// Config of a Class 1 send.
type Config struct {
	LocalID     string // TSI
	Fine        bool   // send at fine resolution when the far end can
	MR          bool   // allow 2-D coding
	MaxBits     int    // highest speed to use (0: no limit)
	Modulations []string
	// ModemCodes are the AT+FTM codes the modem offers (AT+FTM=?); empty
	// means all.
	ModemCodes []int
	// RTNRetries is how many times a page the far end rejected (RTN) is
	// sent again after retraining; 0 gives up at once.
	RTNRetries int
	FirstPage  int // index of the first page to send (resume)
	// ECM is error correction mode: "auto" or "" (when the far end's DIS
	// offers it), "on" (the same, logged when the far end lacks it), "off".
	ECM string
	// Encoding forces a coding: "mh", "mr", "mmr", or "" for the best the
	// far end takes (MMR over ECM, else MR when MR is set, else MH).
	Encoding string
	// FrameSize is the ECM frame size, 256 (default) or 64.
	FrameSize int
	// NoSpeedFallback: after four PPRs for one block the sender ends the
	// retransmission with EOR (the far end keeps the frames it has) rather
	// than lowering the speed with CTC. At the lowest speed EOR is sent
	// either way.
	NoSpeedFallback bool
	Pace            bool // pace page data to the line rate

	T1       time.Duration // time to identify the far end after dialing (35 s)
	T4       time.Duration // time for a response to a command (3 s)
	DialWait time.Duration // time for the dial result (60 s)
	// ModemWait is how long the modem may take beyond the line time to
	// finish a transmission and answer (10 s).
	ModemWait time.Duration
	// Silence is the pause before answering a received frame (80 ms).
	Silence time.Duration
	// Log receives each T.30 step.
	Log func(step, detail string)
	// Confirmed is called after the far end confirmed a page, with the
	// page's 1-based number in the whole job, so the caller can save its
	// progress before the next page.
	Confirmed func(page int)
}

func (c *Config) defaults() {
	if c.T1 == 0 {
		c.T1 = 35 * time.Second
	}
	if c.T4 == 0 {
		c.T4 = 3 * time.Second
	}
	if c.DialWait == 0 {
		c.DialWait = 60 * time.Second
	}
	if c.ModemWait == 0 {
		c.ModemWait = 10 * time.Second
	}
	if c.Silence == 0 {
		c.Silence = 80 * time.Millisecond
	}
}

// Result of a completed send.
type Result struct {
	Pages int // pages confirmed in this call
	// FramesLost counts the ECM frames the far end still had in error
	// when the sender gave up correcting them (EOR); their pages were
	// confirmed (ERR) with those frames missing.
	FramesLost int
	// PagesDegraded lists the 1-based pages (of the whole job) sent with
	// frames lost.
	PagesDegraded []int
	RemoteID      string
	Params        Params
	Duration      time.Duration
}

// Session runs T.30 as the calling, sending terminal over a Class 1 modem.
type Session struct {
	ch *at.Channel
	// listening is set while the modem receives (after ATD's CONNECT, and
	// from AT+FRH until the frame's result): a command sent then would be
	// taken as an abort, so hangup aborts the reception first.
	listening bool
	cfg       Config
	log       func(step, detail string)
	res       Result
	caps      Caps
	dis       []byte
}

// Send dials number and sends pages[cfg.FirstPage:].
func Send(ctx context.Context, ch *at.Channel, dial string, pages []Page, cfg Config) (Result, error) {
	cfg.defaults()
	s := &Session{ch: ch, cfg: cfg, log: cfg.Log}
	if s.log == nil {
		s.log = func(string, string) {}
	}
	start := time.Now()
	err := s.run(ctx, dial, pages)
	s.res.Duration = time.Since(start)
	s.hangup()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = classify(err, "")
		}
		e.Confirmed = s.res.Pages
		return s.res, e
	}
	return s.res, nil
}

func classify(err error, reason string) *Error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Category: CatCancelled, Reason: "stopped", Err: err}
	case errors.Is(err, at.ErrNoCarrier):
		if reason == "" {
			reason = "the far end hung up (NO CARRIER)"
		}
		return &Error{Category: CatHangup, Reason: reason, Err: err}
	case errors.Is(err, at.ErrTimeout), errors.Is(err, at.ErrClosed):
		if reason == "" {
			reason = "the modem stopped answering"
		}
		return &Error{Category: CatModem, Reason: reason, Err: err}
	}
	if reason == "" {
		reason = "protocol error"
	}
	return &Error{Category: CatProtocol, Reason: reason, Err: err}
}

// hangup puts the modem on hook. A reception still pending is aborted
// first and its answer consumed; otherwise the "A" of ATH0 would be taken
// as the abort, its OK read as ATH0's, and the line kept. ATH0 counts only
// when its answer is OK without the DLE ETX of an aborted reception.
func (s *Session) hangup() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wait := min(3*time.Second, s.cfg.ModemWait)
	if s.listening {
		s.abort(ctx)
	}
	for range 3 {
		r, err := s.ch.Command(ctx, "H0", wait)
		if err != nil {
			s.log("hangup", "ATH0: "+err.Error())
			return
		}
		if r.OK() && !r.Aborted {
			s.log("hangup", "on hook")
			return
		}
	}
	s.log("hangup", "the modem did not confirm ATH0")
}

// abort ends a pending reception; an error means the modem did not answer.
func (s *Session) abort(ctx context.Context) error {
	_, err := s.ch.Abort(ctx, min(3*time.Second, s.cfg.ModemWait))
	s.listening = false
	return err
}

var errNoResponse = errors.New("no response")

func (s *Session) run(ctx context.Context, dial string, pages []Page) error {
	if s.cfg.FirstPage >= len(pages) {
		return &Error{Category: CatProtocol, Reason: "no pages to send"}
	}
	s.log("dial", dial)
	if err := s.ch.Send("D" + dial); err != nil {
		return classify(err, "")
	}
	r, err := s.ch.ReadResult(ctx, s.cfg.DialWait)
	if err != nil {
		if errors.Is(err, at.ErrTimeout) {
			s.ch.Abort(ctx, 2*time.Second) //nolint:errcheck // the call failed either way
			return &Error{Category: CatNoAnswer, Reason: "no answer to the call", Err: err}
		}
		return classify(err, "")
	}
	if !r.Connect() {
		return dialError(r.Result)
	}
	s.log("connect", r.Result)
	s.listening = true // the modem now waits for the far end's first frame
	if err := s.phaseB(ctx, pages); err != nil {
		return err
	}
	s.log("done", fmt.Sprintf("%d pages confirmed", s.res.Pages))
	return nil
}

func dialError(result string) *Error {
	switch result {
	case "BUSY":
		return &Error{Category: CatBusy, Reason: "line busy"}
	case "NO DIALTONE", "NO DIAL TONE":
		return &Error{Category: CatNoDialtone, Reason: "no dial tone"}
	case "NO ANSWER":
		return &Error{Category: CatNoAnswer, Reason: "no answer"}
	case "NO CARRIER":
		return &Error{Category: CatNoCarrier, Reason: "no fax answered the call"}
	}
	return &Error{Category: CatProtocol, Reason: "dial: " + result}
}

// readFrameData reads one frame after CONNECT and its result code, the
// data within wait.
func (s *Session) readFrameData(ctx context.Context, wait time.Duration) (Frame, error) {
	data, err := s.ch.ReadData(ctx, wait)
	if err != nil {
		return Frame{}, err
	}
	r, err := s.ch.ReadResult(ctx, 2*time.Second)
	if err != nil {
		return Frame{}, err
	}
	s.listening = false
	if !r.OK() {
		return Frame{}, fmt.Errorf("%w: frame check failed (%s)", ErrBadFrame, r.Result)
	}
	f, err := Parse(data)
	if err != nil {
		return Frame{}, err
	}
	s.log("rx", f.String())
	return f, nil
}

// receive waits up to wait for the far end's carrier and reads one frame.
// errNoResponse means nothing came.
func (s *Session) receive(ctx context.Context, wait time.Duration) (Frame, error) {
	if err := s.ch.Send("+FRH=3"); err != nil {
		return Frame{}, err
	}
	s.listening = true
	r, err := s.ch.ReadResult(ctx, wait)
	if errors.Is(err, at.ErrTimeout) {
		if err := s.abort(ctx); err != nil {
			return Frame{}, err
		}
		return Frame{}, errNoResponse
	}
	if err != nil {
		return Frame{}, err
	}
	if !r.Connect() {
		s.listening = false
	}
	switch {
	case r.Connect():
		return s.readFrameData(ctx, 5*time.Second)
	case r.Result == "NO CARRIER", r.Result == "ERROR", r.Result == "+FCERROR":
		return Frame{}, errNoResponse
	}
	return Frame{}, fmt.Errorf("t30: AT+FRH=3: %s", r.Result)
}

// response reads the far end's answer: frames up to a final one. Leading
// identification frames (NSF, CSI) of a repeated DIS are passed over.
func (s *Session) response(ctx context.Context) (Frame, error) {
	f, err := s.receive(ctx, s.cfg.T4)
	for err == nil && !f.Final {
		if c := Code(f.FCF); c == CSI {
			s.res.RemoteID = DecodeID(f.Info)
		}
		f, err = s.receive(ctx, s.cfg.T4)
	}
	return f, err
}

// transmit sends frames in one V.21 transmission.
func (s *Session) transmit(ctx context.Context, frames ...Frame) error {
	r, err := s.ch.Command(ctx, "+FTH=3", 5*time.Second)
	if err != nil {
		return err
	}
	if !r.Connect() {
		return fmt.Errorf("t30: AT+FTH=3: %s", r.Result)
	}
	return s.sendFrames(ctx, frames...)
}

// sendFrames sends frames to a modem that is in HDLC transmit mode (after
// AT+FTH=3's or ATA's CONNECT); the last one is final.
func (s *Session) sendFrames(ctx context.Context, frames ...Frame) error {
	for i, f := range frames {
		f.Final = i == len(frames)-1
		s.log("tx", f.String())
		if err := s.ch.WriteData(ctx, f.Marshal(), 0, 0); err != nil {
			return err
		}
		r, err := s.ch.ReadResult(ctx, 5*time.Second)
		if err != nil {
			return err
		}
		want := "OK"
		if !f.Final {
			want = "CONNECT"
		}
		if !(want == "OK" && r.OK() || want == "CONNECT" && r.Connect()) {
			return fmt.Errorf("t30: sending %s: %s", f, r.Result)
		}
	}
	return nil
}

// silence waits for the line to be quiet before the host transmits after
// having received (T.30: 75 ms ± 20 ms).
func (s *Session) silence(ctx context.Context) {
	n := int(s.cfg.Silence / (10 * time.Millisecond))
	r, err := s.ch.Command(ctx, fmt.Sprintf("+FRS=%d", n), 2*time.Second)
	if err != nil || !r.OK() {
		if errors.Is(err, at.ErrTimeout) {
			s.ch.Abort(ctx, time.Second) //nolint:errcheck // the pause is taken either way
		}
		time.Sleep(s.cfg.Silence)
	}
}

func (s *Session) usable(sp Speed) bool {
	if s.cfg.MaxBits > 0 && sp.Bits > s.cfg.MaxBits {
		return false
	}
	if len(s.cfg.Modulations) > 0 {
		ok := false
		for _, m := range s.cfg.Modulations {
			if strings.EqualFold(m, sp.Modulation) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if len(s.cfg.ModemCodes) == 0 {
		return true
	}
	var tr, da bool
	for _, c := range s.cfg.ModemCodes {
		tr = tr || c == sp.TrainCode
		da = da || c == sp.DataCode
	}
	return tr && da
}

// identify reads the far end's frames after CONNECT up to its DIS.
func (s *Session) identify(ctx context.Context) error {
	deadline := time.Now().Add(s.cfg.T1)
	first := true
	for time.Now().Before(deadline) {
		var f Frame
		var err error
		if first {
			// The far end's first frame may take until T1 (T.30 5.4.3.1):
			// silence is not our modem's fault.
			f, err = s.readFrameData(ctx, time.Until(deadline))
			first = false
			if errors.Is(err, at.ErrTimeout) {
				if aerr := s.abort(ctx); aerr != nil {
					return classify(aerr, "the modem did not answer the abort after T1")
				}
				return &Error{Category: CatNoAnswer, Reason: "the far end answered but sent no fax identification (T1)", Err: err}
			}
		} else {
			f, err = s.receive(ctx, time.Until(deadline))
		}
		switch {
		case errors.Is(err, errNoResponse), errors.Is(err, ErrBadFrame):
			continue
		case err != nil:
			return classify(err, "")
		}
		switch Code(f.FCF) {
		case CSI:
			s.res.RemoteID = DecodeID(f.Info)
		case DIS:
			s.dis = f.Info
			s.caps = ParseDIS(f.Info)
			s.log("caps", s.caps.String())
			if !s.caps.CanReceive {
				return &Error{Category: CatProtocol, Reason: "the far end cannot receive faxes"}
			}
			if f.Final {
				return nil
			}
		case DCN:
			return &Error{Category: CatHangup, Reason: "the far end hung up"}
		}
		if f.Final && s.dis != nil {
			return nil
		}
	}
	return &Error{Category: CatNoAnswer, Reason: "no fax identification (DIS) from the far end (T1)"}
}

// train sends TSI+DCS and TCF at params[*idx], falling back on FTT and on
// silence, until the far end confirms (CFR).
func (s *Session) train(ctx context.Context, params []Params, idx *int) error {
	unanswered, tries := 0, 0
	for *idx < len(params) {
		p := params[*idx]
		s.res.Params = p
		s.log("dcs", p.String())
		s.silence(ctx)
		frames := []Frame{}
		if s.cfg.LocalID != "" {
			frames = append(frames, Frame{FCF: TSI | XBit, Info: EncodeID(s.cfg.LocalID)})
		}
		frames = append(frames, Frame{FCF: DCS | XBit, Info: p.DCSBytes()})
		if err := s.transmit(ctx, frames...); err != nil {
			return classify(err, "")
		}
		if _, err := s.ch.Command(ctx, fmt.Sprintf("+FTS=%d", s.cfg.Silence/(10*time.Millisecond)), 3*time.Second); err != nil {
			return classify(err, "")
		}
		r, err := s.ch.Command(ctx, fmt.Sprintf("+FTM=%d", p.Speed.TrainCode), 5*time.Second)
		if err != nil {
			return classify(err, "")
		}
		if !r.Connect() {
			return &Error{Category: CatProtocol, Reason: "modem refused training at " + p.Speed.String() + ": " + r.Result}
		}
		s.log("tcf", p.Speed.String())
		if err := s.ch.WriteData(ctx, make([]byte, p.Speed.Bits*3/16), 0, 0); err != nil {
			return classify(err, "")
		}
		if r, err := s.ch.ReadResult(ctx, 10*time.Second); err != nil || !r.OK() {
			if err != nil {
				return classify(err, "")
			}
			return &Error{Category: CatProtocol, Reason: "training data: " + r.Result}
		}
		f, err := s.response(ctx)
		tries++
		switch {
		case errors.Is(err, errNoResponse), errors.Is(err, ErrBadFrame):
			unanswered++
			s.log("timeout", "no answer to DCS")
			if unanswered >= 6 {
				return &Error{Category: CatTraining, Reason: "the far end did not answer the DCS"}
			}
			if tries >= 3 {
				*idx++
				tries = 0
			}
			continue
		case err != nil:
			return classify(err, "")
		}
		switch Code(f.FCF) {
		case CFR:
			return nil
		case FTT:
			*idx++
			tries = 0
			continue
		case DCN:
			return &Error{Category: CatHangup, Reason: "the far end hung up during training"}
		case CRP:
			continue
		case DIS:
			// the far end missed our DCS and repeats its DIS
			continue
		default:
			return &Error{Category: CatProtocol, Reason: "unexpected " + f.String() + " after training"}
		}
	}
	return &Error{Category: CatTraining, Reason: "failure to train at every speed"}
}

func (s *Session) phaseB(ctx context.Context, pages []Page) error {
	if err := s.identify(ctx); err != nil {
		return err
	}
	params := Choose(s.caps, s.dis, s.cfg.Fine, s.cfg.MR && s.cfg.Encoding != "mh", s.usable)
	if len(params) == 0 {
		return &Error{Category: CatProtocol, Reason: "no common modulation with the far end"}
	}
	s.chooseECM(params)
	idx := 0
	if err := s.train(ctx, params, &idx); err != nil {
		return err
	}
	rtn := 0
	for i := s.cfg.FirstPage; i < len(pages); {
		p := params[idx]
		data, err := pages[i].Encode(p)
		if err != nil {
			return &Error{Category: CatProtocol, Reason: fmt.Sprintf("encoding page %d", i+1), Err: err}
		}
		ppm := byte(MPS)
		if i == len(pages)-1 {
			ppm = EOP
		}
		if p.ECM {
			if err := s.sendECMPage(ctx, data, i, ppm, params, &idx); err != nil {
				return err
			}
			s.res.Pages++
			i++
			s.confirmed(i)
			continue
		}
		s.silence(ctx)
		r, err := s.ch.Command(ctx, fmt.Sprintf("+FTM=%d", p.Speed.DataCode), 5*time.Second)
		if err != nil {
			return classify(err, "")
		}
		if !r.Connect() {
			return &Error{Category: CatProtocol, Reason: "modem refused page data: " + r.Result}
		}
		s.log("page", fmt.Sprintf("%d: %d bytes at %s", i+1, len(data), p.Speed))
		rate := 0
		if s.cfg.Pace {
			rate = p.Speed.Bits
		}
		if err := s.ch.WriteData(ctx, data, rate, 2*time.Second); err != nil {
			return pageError(err, i+1)
		}
		drain := time.Duration(float64(len(data)*8)/float64(p.Speed.Bits)*float64(time.Second)) + s.cfg.ModemWait
		if r, err := s.ch.ReadResult(ctx, drain); err != nil || !r.OK() {
			if err == nil {
				err = &at.ResultError{Result: r.Result}
			}
			return pageError(err, i+1)
		}
		var f Frame
		got := false
		for try := 0; try < 3 && !got; try++ {
			if try == 0 {
				if _, err := s.ch.Command(ctx, fmt.Sprintf("+FTS=%d", s.cfg.Silence/(10*time.Millisecond)), 3*time.Second); err != nil {
					return classify(err, "")
				}
			} else {
				s.silence(ctx)
			}
			if err := s.transmit(ctx, Frame{FCF: ppm | XBit}); err != nil {
				return classify(err, "")
			}
			f, err = s.response(ctx)
			switch {
			case errors.Is(err, errNoResponse), errors.Is(err, ErrBadFrame):
				s.log("timeout", "no answer to "+Name(ppm))
				continue
			case err != nil:
				return classify(err, "")
			}
			if Code(f.FCF) == CRP {
				continue
			}
			got = true
		}
		if !got {
			return &Error{Category: CatProtocol, Reason: fmt.Sprintf("no confirmation of page %d", i+1)}
		}
		switch Code(f.FCF) {
		case MCF:
			s.res.Pages++
			i++
			rtn = 0
			s.confirmed(i)
		case RTP:
			s.res.Pages++
			i++
			rtn = 0
			s.confirmed(i)
			if i < len(pages) {
				if err := s.train(ctx, params, &idx); err != nil {
					return err
				}
			}
		case RTN:
			s.log("rtn", fmt.Sprintf("page %d rejected", i+1))
			if rtn >= s.cfg.RTNRetries {
				return &Error{Category: CatRejected, Reason: fmt.Sprintf("page %d rejected by the far end (RTN)", i+1)}
			}
			rtn++
			if idx+1 < len(params) {
				idx++
			}
			if err := s.train(ctx, params, &idx); err != nil {
				return err
			}
		case PIP:
			s.res.Pages++
			s.confirmed(i + 1)
			return &Error{Category: CatHangup, Reason: "the far end interrupted the call (PIP)"}
		case PIN:
			return &Error{Category: CatHangup, Reason: "the far end interrupted the call (PIN)"}
		case DCN:
			return &Error{Category: CatHangup, Reason: fmt.Sprintf("the far end hung up after page %d", i+1)}
		default:
			return &Error{Category: CatProtocol, Reason: "unexpected " + f.String() + " after page"}
		}
	}
	s.silence(ctx)
	if err := s.transmit(ctx, Frame{FCF: DCN | XBit}); err != nil {
		s.log("dcn", err.Error()) // every page is confirmed; a lost DCN changes nothing
	}
	return nil
}

// pageError files a failure while page data was sent: the far end hanging
// up (NO CARRIER) is remote_hangup, a silent modem modem_not_responding.
func pageError(err error, page int) *Error {
	var re *at.ResultError
	switch {
	case errors.Is(err, at.ErrNoCarrier):
		return &Error{Category: CatHangup, Reason: fmt.Sprintf("the far end hung up during page %d (NO CARRIER)", page), Err: err}
	case errors.As(err, &re):
		return &Error{Category: CatProtocol, Reason: fmt.Sprintf("page %d data: %s", page, re.Result), Err: err}
	}
	return classify(err, fmt.Sprintf("the modem stopped during page %d", page))
}

func (s *Session) confirmed(page int) {
	if s.cfg.Confirmed != nil {
		s.cfg.Confirmed(page)
	}
}
