package t30

import (
	"fmt"
	"strings"
)

// Modulation families of the image data carrier.
const (
	V27ter = "V.27ter"
	V29    = "V.29"
	V17    = "V.17"
)

// Speed is one image data rate with its Class 1 modulation codes and its
// DCS bits 11-14 (as they sit in the second FIF octet).
type Speed struct {
	Bits       int
	Modulation string
	TrainCode  int  // AT+FTM/+FRM code for TCF (long training)
	DataCode   int  // AT+FTM/+FRM code for page data (short training for V.17)
	dcs        byte // bits 11..14 of DCS in octet 2
}

func (s Speed) String() string { return fmt.Sprintf("%s %d", s.Modulation, s.Bits) }

// Speeds is the fallback order: V.17 14400→12000→9600, V.29 9600, V.17
// 7200, V.29 7200, V.27ter 4800→2400.
var Speeds = []Speed{
	{14400, V17, 145, 146, 0x20},
	{12000, V17, 121, 122, 0x28},
	{9600, V17, 97, 98, 0x24},
	{9600, V29, 96, 96, 0x04},
	{7200, V17, 73, 74, 0x2C},
	{7200, V29, 72, 72, 0x0C},
	{4800, V27ter, 48, 48, 0x08},
	{2400, V27ter, 24, 24, 0x00},
}

// octet 2 (bits 9-16)
const (
	bitReceive = 0x02 // bit 10
	bitFine    = 0x40 // bit 15
	bit2D      = 0x80 // bit 16
	speedMask  = 0x3C // bits 11-14
)

// Caps are the capabilities a DIS (or DTC) announces.
type Caps struct {
	CanReceive bool
	V27ter     bool // 4800 and 2400 (2400 alone when no modulation bit is set)
	V29        bool
	V17        bool
	Fine       bool
	MR         bool
	MMR        bool
	ECM        bool
	Width      int // 0: 215 mm (1728 pels), 1: up to 255 mm, 2: up to 303 mm
	Length     int // bits 19-20: 0 A4, 1 A4 and B4, 2 unlimited
	// MinScan is the minimum scan line time in ms at standard resolution;
	// MinScanFine at fine resolution.
	MinScan, MinScanFine int
}

func octet(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

// minScan for DIS bits 21-23 (mask 0x70 of octet 3): std, fine in ms.
func disMinScan(v byte) (int, int) {
	switch v & 0x70 {
	case 0x00:
		return 20, 20
	case 0x40:
		return 40, 40
	case 0x20:
		return 10, 10
	case 0x10:
		return 5, 5
	case 0x60:
		return 10, 5
	case 0x30:
		return 20, 10
	case 0x50:
		return 40, 20
	default: // 0x70
		return 0, 0
	}
}

// dcsMinScan codes a scan line time for DCS bits 21-23.
func dcsMinScan(ms int) (byte, int) {
	switch {
	case ms <= 0:
		return 0x70, 0
	case ms <= 5:
		return 0x10, 5
	case ms <= 10:
		return 0x20, 10
	case ms <= 20:
		return 0x00, 20
	default:
		return 0x40, 40
	}
}

// ParseDIS decodes the FIF of a DIS or DTC.
func ParseDIS(fif []byte) Caps {
	o2, o3, o4 := octet(fif, 1), octet(fif, 2), byte(0)
	if o3&0x80 != 0 {
		o4 = octet(fif, 3)
	}
	c := Caps{
		CanReceive: o2&bitReceive != 0,
		Fine:       o2&bitFine != 0,
		MR:         o2&bit2D != 0,
		Width:      int(o3 & 0x03),
		Length:     int(o3 >> 2 & 0x03),
		ECM:        o4&0x04 != 0,
		MMR:        o4&0x40 != 0,
	}
	if c.Width == 3 {
		c.Width = 2
	}
	switch m := o2 & speedMask; {
	case m&0x20 != 0: // bit 14: V.17 (with V.29 and V.27ter)
		c.V17, c.V29, c.V27ter = true, true, true
	default:
		c.V29 = m&0x04 != 0
		c.V27ter = true // 4800 when bit 12 is set, 2400 in any case
	}
	c.MinScan, c.MinScanFine = disMinScan(o3)
	return c
}

// Supports reports whether the far end can receive at s.
func (c Caps) Supports(s Speed, fif []byte) bool {
	switch s.Modulation {
	case V17:
		return c.V17
	case V29:
		return c.V29
	default:
		if s.Bits == 4800 {
			return c.V17 || octet(fif, 1)&0x08 != 0
		}
		return true
	}
}

// Bytes encodes caps as a DIS FIF (3 or 4 octets), for an emulated receiver.
func (c Caps) Bytes() []byte {
	b := []byte{0, 0, 0, 0}
	if c.CanReceive {
		b[1] |= bitReceive
	}
	switch {
	case c.V17:
		b[1] |= 0x2C
	case c.V29 && c.V27ter:
		b[1] |= 0x0C
	case c.V29:
		b[1] |= 0x04
	case c.V27ter:
		b[1] |= 0x08
	}
	if c.Fine {
		b[1] |= bitFine
	}
	if c.MR {
		b[1] |= bit2D
	}
	b[2] |= byte(c.Width&3) | byte(c.Length&3)<<2
	ms, _ := dcsMinScan(c.MinScan)
	if c.MinScanFine*2 == c.MinScan && c.MinScan > 0 {
		switch c.MinScan {
		case 10:
			ms = 0x60
		case 20:
			ms = 0x30
		case 40:
			ms = 0x50
		}
	}
	b[2] |= ms
	if c.ECM || c.MMR {
		b[2] |= 0x80
		if c.ECM {
			b[3] |= 0x04
		}
		if c.MMR {
			b[3] |= 0x40
		}
		return b
	}
	return b[:3]
}

func (c Caps) String() string {
	var m []string
	if c.V17 {
		m = append(m, V17)
	}
	if c.V29 {
		m = append(m, V29)
	}
	if c.V27ter {
		m = append(m, V27ter)
	}
	res := "standard"
	if c.Fine {
		res = "fine"
	}
	enc := "MH"
	if c.MR {
		enc += "/MR"
	}
	if c.MMR {
		enc += "/MMR"
	}
	return fmt.Sprintf("%s, %s, %s, min scan %d/%d ms", strings.Join(m, "+"), res, enc, c.MinScan, c.MinScanFine)
}

// Params are the settings a DCS commands.
type Params struct {
	Speed   Speed
	Fine    bool
	MR      bool
	MinScan int // ms per scan line at the chosen resolution
	// ECM is error correction mode (T.30 Annex A): page data in HDLC
	// frames of FrameSize octets (256 or 64), resent when in error.
	ECM       bool
	FrameSize int
	// MMR is T.6 coding (only with ECM); MR is then false.
	MMR bool
}

// MinLineBits is the fewest bits a coded scan line may take at these
// parameters (speed × minimum scan line time).
// With ECM there is no minimum: frames, not scan lines, pace the receiver.
func (p Params) MinLineBits() int {
	if p.ECM {
		return 0
	}
	return p.Speed.Bits * p.MinScan / 1000
}

// K is the MR parameter: 2 at standard resolution, 4 at fine (T.4 4.2.1).
func (p Params) K() int {
	if p.Fine {
		return 4
	}
	return 2
}

func (p Params) String() string {
	res, enc := "standard", "MH"
	if p.Fine {
		res = "fine"
	}
	if p.MR {
		enc = "MR"
	}
	if p.MMR {
		enc = "MMR"
	}
	if p.ECM {
		return fmt.Sprintf("%s, %s, %s, ECM %d-octet frames", p.Speed, res, enc, p.FrameSize)
	}
	return fmt.Sprintf("%s, %s, %s, min scan %d ms", p.Speed, res, enc, p.MinScan)
}

// DCSBytes encodes p as a DCS FIF (3 octets: 215 mm, A4).
func (p Params) DCSBytes() []byte {
	b := []byte{0, bitReceive | p.Speed.dcs, 0}
	if p.Fine {
		b[1] |= bitFine
	}
	if p.MR {
		b[1] |= bit2D
	}
	ms, _ := dcsMinScan(p.MinScan)
	b[2] |= ms
	if p.ECM {
		b[2] |= 0x80
		o4 := byte(0x04) // bit 27: ECM
		if p.FrameSize == 64 {
			o4 |= 0x08 // bit 28: 64-octet frames
		}
		if p.MMR {
			o4 |= 0x40 // bit 31: T.6
		}
		b = append(b, o4)
	}
	return b
}

// ParseDCS decodes a DCS FIF.
func ParseDCS(fif []byte) (Params, error) {
	o2, o3 := octet(fif, 1), octet(fif, 2)
	var p Params
	found := false
	for _, s := range Speeds {
		if s.dcs == o2&speedMask {
			p.Speed, found = s, true
			break
		}
	}
	if !found {
		return p, fmt.Errorf("t30: DCS with unknown modulation bits 0x%02X", o2&speedMask)
	}
	p.Fine = o2&bitFine != 0
	p.MR = o2&bit2D != 0
	p.MinScan, _ = disMinScan(o3)
	if o3&0x80 != 0 {
		o4 := octet(fif, 3)
		p.ECM = o4&0x04 != 0
		if p.ECM {
			p.FrameSize = 256
			if o4&0x08 != 0 {
				p.FrameSize = 64
			}
			p.MMR = o4&0x40 != 0
		}
	}
	return p, nil
}

// Choose picks the DCS for a far end's caps: the first speed of the
// fallback order at or below maxBits that both ends support (modulations
// limits it to those families when not empty), fine when wanted and
// offered, MR when allowed and offered.
func Choose(c Caps, fif []byte, wantFine, allowMR bool, usable func(Speed) bool) []Params {
	var out []Params
	fine := wantFine && c.Fine
	minScan := c.MinScan
	if fine {
		minScan = c.MinScanFine
	}
	_, minScan = dcsMinScan(minScan)
	for _, s := range Speeds {
		if !c.Supports(s, fif) || (usable != nil && !usable(s)) {
			continue
		}
		out = append(out, Params{Speed: s, Fine: fine, MR: allowMR && c.MR, MinScan: minScan})
	}
	return out
}
