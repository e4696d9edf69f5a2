// Package t30 holds the T.30 fax protocol as a Class 1 host runs it: HDLC
// control frames, facsimile control field (FCF) codes, the DIS/DTC/DCS bit
// fields of T.30 Table 2, and the sending session over the T.31 command set.
package t30

import (
	"errors"
	"fmt"
	"strings"
)

// HDLC address and control octets of T.30 frames.
const (
	Address      = 0xFF
	ControlMore  = 0x03 // not the last frame of the transmission
	ControlFinal = 0x13 // the last frame: the far end answers next
)

// FCF codes as sent on the line (first bit transmitted = least significant
// bit). Commands from the station that received a DIS carry the X bit 0x01.
const (
	DIS    = 0x80
	CSI    = 0x40
	NSF    = 0x20
	DTC    = 0x81
	CIG    = 0x41
	NSC    = 0x21
	DCS    = 0x82
	TSI    = 0x42
	NSS    = 0x22
	CFR    = 0x84
	FTT    = 0x44
	EOM    = 0x8E
	MPS    = 0x4E
	EOP    = 0x2E
	PriEOM = 0x9E
	PriMPS = 0x5E
	PriEOP = 0x3E
	MCF    = 0x8C
	RTP    = 0xCC
	RTN    = 0x4C
	PIP    = 0xAC
	PIN    = 0x2C
	DCN    = 0xFA
	CRP    = 0x1A
	XBit   = 0x01

	// Error correction mode (T.30 Annex A).
	FCD = 0x06 // facsimile coded data: frame number + data
	RCP = 0x86 // return to control for partial page
	PPS = 0xBE // partial page signal: PPM, page, block, frames-1
	PPR = 0xBC // partial page request: map of frames in error
	CTC = 0x12 // continue to correct (with a new speed)
	CTR = 0xC4 // response to CTC
	RR  = 0x6E // receive ready?
	RNR = 0xEC // receive not ready
	EOR = 0xCE // end of retransmission
	ERR = 0x1C // response to EOR
)

var fcfNames = map[byte]string{
	DIS: "DIS", CSI: "CSI", NSF: "NSF", DTC: "DTC", CIG: "CIG", NSC: "NSC",
	DCS: "DCS", TSI: "TSI", NSS: "NSS", CFR: "CFR", FTT: "FTT",
	EOM: "EOM", MPS: "MPS", EOP: "EOP", PriEOM: "PRI-EOM", PriMPS: "PRI-MPS", PriEOP: "PRI-EOP",
	MCF: "MCF", RTP: "RTP", RTN: "RTN", PIP: "PIP", PIN: "PIN", DCN: "DCN", CRP: "CRP",
	FCD: "FCD", RCP: "RCP", PPS: "PPS", PPR: "PPR", CTC: "CTC", CTR: "CTR", RR: "RR", RNR: "RNR", EOR: "EOR", ERR: "ERR",
}

// initial identification frames where bit 0 is part of the code, not X.
func isInitial(fcf byte) bool {
	switch fcf {
	case DIS, CSI, NSF, DTC, CIG, NSC:
		return true
	}
	return false
}

// Code returns the FCF without the X bit (except for DIS/DTC, CSI/CIG and
// NSF/NSC, which differ only in that bit).
func Code(fcf byte) byte {
	if isInitial(fcf) {
		return fcf
	}
	return fcf &^ XBit
}

// Name is the T.30 name of an FCF, e.g. "DCS".
func Name(fcf byte) string {
	if n, ok := fcfNames[Code(fcf)]; ok {
		return n
	}
	return fmt.Sprintf("FCF(0x%02X)", fcf)
}

// Frame is one T.30 HDLC control frame.
type Frame struct {
	Final bool
	FCF   byte
	Info  []byte // facsimile information field (FIF)
}

func (f Frame) String() string {
	if len(f.Info) == 0 {
		return Name(f.FCF)
	}
	switch Code(f.FCF) {
	case CSI, TSI, CIG:
		return fmt.Sprintf("%s %q", Name(f.FCF), DecodeID(f.Info))
	}
	return fmt.Sprintf("%s % X", Name(f.FCF), f.Info)
}

// Marshal returns address, control, FCF and FIF (no FCS: the modem adds it).
func (f Frame) Marshal() []byte {
	c := byte(ControlMore)
	if f.Final {
		c = ControlFinal
	}
	return append([]byte{Address, c, f.FCF}, f.Info...)
}

// MarshalFCS returns the frame with its 16-bit FCS, as a modem delivers it.
func (f Frame) MarshalFCS() []byte {
	b := f.Marshal()
	fcs := FCS(b)
	return append(b, byte(fcs), byte(fcs>>8))
}

// ErrBadFrame is returned for octets that are not a T.30 frame.
var ErrBadFrame = errors.New("t30: bad frame")

// Parse decodes a frame as received from a Class 1 modem. When the last two
// octets are a valid FCS they are removed.
func Parse(b []byte) (Frame, error) {
	if len(b) < 3 {
		return Frame{}, fmt.Errorf("%w: %d octets", ErrBadFrame, len(b))
	}
	if b[0] != Address || (b[1] != ControlMore && b[1] != ControlFinal) {
		return Frame{}, fmt.Errorf("%w: address/control % X", ErrBadFrame, b[:2])
	}
	if len(b) >= 5 {
		n := len(b) - 2
		if FCS(b[:n]) == uint16(b[n])|uint16(b[n+1])<<8 {
			b = b[:n]
		}
	}
	return Frame{Final: b[1] == ControlFinal, FCF: b[2], Info: append([]byte(nil), b[3:]...)}, nil
}

// FCS is the HDLC frame check sequence (CRC-16/X.25) of b.
func FCS(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, x := range b {
		crc ^= uint16(x)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x8408
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

// EncodeID makes the 20-octet FIF of TSI/CSI/CIG: printable characters,
// padded with spaces, last character first.
func EncodeID(id string) []byte {
	s := []byte(id)
	if len(s) > 20 {
		s = s[:20]
	}
	out := make([]byte, 20)
	for i := range out {
		out[i] = ' '
	}
	for i, c := range s {
		if c < 0x20 || c > 0x7e {
			c = ' '
		}
		out[19-i] = c
	}
	return out
}

// DecodeID reverses EncodeID.
func DecodeID(b []byte) string {
	r := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = ' '
		}
		r[len(b)-1-i] = c
	}
	return strings.TrimSpace(string(r))
}
