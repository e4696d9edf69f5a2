package t30

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Error correction mode, sending side (T.30 Annex A): the page's T.4/T.6
// data is cut into frames of 256 (or 64) octets, sent in HDLC at the
// page's speed in blocks (partial pages) of up to 256 frames, each block
// ending with three RCP and followed by PPS carrying the post-page message
// (NULL within a page, MPS/EOP at its end). The receiver answers MCF, or
// PPR with a map of the frames in error, which alone are sent again. After
// four PPRs for one block the sender lowers the speed with CTC (answered by
// CTR) and goes on correcting, the first transmission at the new speed with
// long training; at the lowest speed (or with NoSpeedFallback) it ends the
// block with EOR carrying the post-page message instead (EOR-NULL, EOR-MPS,
// EOR-EOP), answered by ERR: the receiver keeps the frames it has and the
// page counts as sent, with the frames lost reported in the Result. RNR is
// answered with RR until the receiver is ready.

const (
	ecmMaxFrames = 256
	ecmPPRLimit  = 4 // PPRs for one block before CTC
	ecmPreamble  = 40
)

// chooseECM sets ECM and MMR in params from the far end's DIS and the
// config.
func (s *Session) chooseECM(params []Params) {
	mode := strings.ToLower(s.cfg.ECM)
	enc := strings.ToLower(s.cfg.Encoding)
	ecm := mode != "off" && s.caps.ECM
	if mode == "on" && !s.caps.ECM {
		s.log("ecm", "the far end does not offer ECM: sending without it")
	}
	if enc == "mmr" && !(ecm && s.caps.MMR) {
		s.log("encoding", "the far end does not take MMR over ECM: sending MR or MH")
	}
	size := s.cfg.FrameSize
	if size != 64 {
		size = 256
	}
	for i := range params {
		p := &params[i]
		p.ECM = ecm
		if !ecm {
			continue
		}
		p.FrameSize = size
		switch {
		case enc == "mh":
			p.MR = false
		case enc == "mr":
		case s.caps.MMR:
			p.MMR, p.MR = true, false
		}
	}
}

// ppsFCF2 is the post-page message inside PPS: the FCF with the X bit of a
// caller that received DIS, or NULL within a page.
func ppsFCF2(ppm byte, last bool) byte {
	if !last {
		return 0
	}
	return ppm | XBit
}

// sendECMPage sends one page in blocks and returns when the far end has
// confirmed its last block.
func (s *Session) sendECMPage(ctx context.Context, data []byte, page int, ppm byte, params []Params, idx *int) error {
	size := params[*idx].FrameSize
	var frames [][]byte
	for off := 0; off < len(data); off += size {
		chunk := data[off:min(off+size, len(data))]
		if len(chunk) < size { // the last frame is padded (T.4 fill is zeros)
			chunk = append(append([]byte(nil), chunk...), make([]byte, size-len(chunk))...)
		}
		frames = append(frames, chunk)
	}
	blocks := (len(frames) + ecmMaxFrames - 1) / ecmMaxFrames
	for b := range blocks {
		block := frames[b*ecmMaxFrames : min((b+1)*ecmMaxFrames, len(frames))]
		if err := s.sendECMBlock(ctx, block, page, b, ppsFCF2(ppm, b == blocks-1), params, idx); err != nil {
			return err
		}
	}
	return nil
}

func (s *Session) sendECMBlock(ctx context.Context, block [][]byte, page, blockNo int, fcf2 byte, params []Params, idx *int) error {
	bad := make([]int, len(block))
	for i := range bad {
		bad[i] = i
	}
	pprs := 0
	longTrain := false // the first transmission at a new speed trains long
	for {
		p := params[*idx]
		code := p.Speed.DataCode
		if longTrain {
			code, longTrain = p.Speed.TrainCode, false
		}
		hd := make([][]byte, 0, len(bad)+3)
		for _, n := range bad {
			hd = append(hd, append([]byte{Address, ControlMore, FCD, byte(n)}, block[n]...))
		}
		for range 3 {
			hd = append(hd, []byte{Address, ControlMore, RCP})
		}
		stream := HDLCEncode(hd, ecmPreamble)
		s.silence(ctx)
		r, err := s.ch.Command(ctx, fmt.Sprintf("+FTM=%d", code), 5*time.Second)
		if err != nil {
			return classify(err, "")
		}
		if !r.Connect() {
			return &Error{Category: CatProtocol, Reason: "modem refused page data: " + r.Result}
		}
		s.log("ecm", fmt.Sprintf("page %d block %d: %d of %d frames at %s", page+1, blockNo, len(bad), len(block), p.Speed))
		rate := 0
		if s.cfg.Pace {
			rate = p.Speed.Bits
		}
		if err := s.ch.WriteData(ctx, stream, rate, 2*time.Second); err != nil {
			return pageError(err, page+1)
		}
		drain := time.Duration(float64(len(stream)*8)/float64(p.Speed.Bits)*float64(time.Second)) + s.cfg.ModemWait
		if r, err := s.ch.ReadResult(ctx, drain); err != nil || !r.OK() {
			if err == nil {
				err = fmt.Errorf("t30: page data: %s", r.Result)
			}
			return pageError(err, page+1)
		}
		pps := Frame{FCF: PPS | XBit, Info: []byte{fcf2, byte(page), byte(blockNo), byte(len(block) - 1)}}
		f, err := s.command(ctx, pps, true)
		if err != nil {
			return err
		}
		for Code(f.FCF) == RNR {
			s.log("ecm", "the far end is not ready (RNR)")
			if f, err = s.command(ctx, Frame{FCF: RR | XBit}, false); err != nil {
				return err
			}
		}
		switch Code(f.FCF) {
		case MCF:
			return nil
		case PPR:
			bad = pprFrames(f.Info, len(block))
			pprs++
			s.log("ppr", fmt.Sprintf("page %d block %d: %d frames in error (PPR %d)", page+1, blockNo, len(bad), pprs))
			if len(bad) == 0 {
				bad = []int{0} // a PPR naming none: send one frame again
			}
			if pprs%ecmPPRLimit == 0 {
				if *idx+1 >= len(params) || s.cfg.NoSpeedFallback {
					return s.endRetransmission(ctx, page, blockNo, fcf2, len(bad))
				}
				*idx++
				np := params[*idx]
				s.log("ctc", np.Speed.String())
				f, err := s.command(ctx, Frame{FCF: CTC | XBit, Info: np.DCSBytes()[:2]}, false)
				if err != nil {
					return err
				}
				if Code(f.FCF) != CTR {
					return &Error{Category: CatProtocol, Reason: "unexpected " + f.String() + " after CTC"}
				}
				s.res.Params = np
				longTrain = true
			}
		case DCN:
			return &Error{Category: CatHangup, Reason: fmt.Sprintf("the far end hung up during page %d", page+1)}
		default:
			return &Error{Category: CatProtocol, Reason: "unexpected " + f.String() + " after PPS"}
		}
	}
}

// endRetransmission sends EOR with the block's post-page message (NULL,
// MPS or EOP) and waits for ERR: the far end keeps the block with lost
// frames missing.
func (s *Session) endRetransmission(ctx context.Context, page, blockNo int, fcf2 byte, lost int) error {
	s.log("eor", fmt.Sprintf("page %d block %d: %d frames still in error at %s: giving up correcting them", page+1, blockNo, lost, s.res.Params.Speed))
	f, err := s.command(ctx, Frame{FCF: EOR | XBit, Info: []byte{fcf2}}, false)
	if err != nil {
		return err
	}
	for Code(f.FCF) == RNR {
		s.log("ecm", "the far end is not ready (RNR)")
		if f, err = s.command(ctx, Frame{FCF: RR | XBit}, false); err != nil {
			return err
		}
	}
	switch Code(f.FCF) {
	case ERR:
	case DCN:
		return &Error{Category: CatHangup, Reason: fmt.Sprintf("the far end hung up during page %d", page+1)}
	default:
		return &Error{Category: CatProtocol, Reason: "unexpected " + f.String() + " after EOR"}
	}
	s.res.FramesLost += lost
	if n := page + 1; len(s.res.PagesDegraded) == 0 || s.res.PagesDegraded[len(s.res.PagesDegraded)-1] != n {
		s.res.PagesDegraded = append(s.res.PagesDegraded, n)
	}
	return nil
}

// command sends a control frame and reads the answer, repeating the
// command up to three times when nothing (or CRP) comes back.
func (s *Session) command(ctx context.Context, cmd Frame, afterData bool) (Frame, error) {
	for try := range 3 {
		if try == 0 && afterData {
			if _, err := s.ch.Command(ctx, fmt.Sprintf("+FTS=%d", s.cfg.Silence/(10*time.Millisecond)), 3*time.Second); err != nil {
				return Frame{}, classify(err, "")
			}
		} else {
			s.silence(ctx)
		}
		if err := s.transmit(ctx, cmd); err != nil {
			return Frame{}, classify(err, "")
		}
		f, err := s.response(ctx)
		switch {
		case errors.Is(err, errNoResponse), errors.Is(err, ErrBadFrame):
			s.log("timeout", "no answer to "+Name(cmd.FCF))
			continue
		case err != nil:
			return Frame{}, classify(err, "")
		}
		if Code(f.FCF) == CRP {
			continue
		}
		return f, nil
	}
	return Frame{}, &Error{Category: CatProtocol, Reason: "no answer to " + Name(cmd.FCF)}
}

// pprFrames lists the frames a PPR's map marks in error (bit n of the
// 256-bit map, least significant first, is frame n).
func pprFrames(m []byte, n int) []int {
	var out []int
	for i := 0; i < n && i/8 < len(m); i++ {
		if m[i/8]&(1<<(i%8)) != 0 {
			out = append(out, i)
		}
	}
	return out
}
