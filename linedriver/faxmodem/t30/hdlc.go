package t30

// HDLC framing in software, for error correction mode on Class 1: the
// modem's +FTM/+FRM carry raw bits at the page's speed, so the host sends
// flags, zero-bit insertion and the FCS itself (T.30 Annex A, ISO 3309).
// Bits go on the line least significant first, as page data does.

// hdlcFlag is the HDLC flag, 0111 1110.
const hdlcFlag = 0x7E

type bitOut struct {
	b    []byte
	cur  byte
	n    uint
	ones int
}

func (w *bitOut) bit(v byte) {
	w.cur |= v << w.n
	w.n++
	if w.n == 8 {
		w.b = append(w.b, w.cur)
		w.cur, w.n = 0, 0
	}
}

func (w *bitOut) flag() {
	for i := range 8 {
		w.bit(hdlcFlag >> i & 1)
	}
	w.ones = 0
}

func (w *bitOut) octet(x byte) {
	for i := range 8 {
		v := x >> i & 1
		w.bit(v)
		if v == 1 {
			w.ones++
			if w.ones == 5 {
				w.bit(0) // zero-bit insertion
				w.ones = 0
			}
		} else {
			w.ones = 0
		}
	}
}

// HDLCEncode frames each of frames (address, control, FCF, FIF; the FCS
// is added here) between flags, after preamble flags, and pads the end
// with ones (the idle line) to whole octets.
func HDLCEncode(frames [][]byte, preamble int) []byte {
	var w bitOut
	for range max(preamble, 1) {
		w.flag()
	}
	for _, f := range frames {
		for _, x := range f {
			w.octet(x)
		}
		fcs := FCS(f)
		w.octet(byte(fcs))
		w.octet(byte(fcs >> 8))
		w.flag()
	}
	w.flag()
	for w.n != 0 {
		w.bit(1)
	}
	return w.b
}

// HDLCDecode finds the frames in a received bit stream. Frames whose FCS
// fails are dropped, as a receiver does; the FCS is removed from the rest.
func HDLCDecode(data []byte) [][]byte {
	var frames [][]byte
	var cur []byte
	var acc byte
	var nb uint
	ones := 0
	inFrame := false
	end := func() {
		if inFrame && nb == 0 && len(cur) >= 4 {
			n := len(cur) - 2
			if FCS(cur[:n]) == uint16(cur[n])|uint16(cur[n+1])<<8 {
				frames = append(frames, append([]byte(nil), cur[:n]...))
			}
		}
		cur, acc, nb = cur[:0], 0, 0
		inFrame = true
	}
	for _, x := range data {
		for i := range 8 {
			v := x >> i & 1
			if v == 1 {
				ones++
				if ones > 6 { // abort / idle
					inFrame, cur, acc, nb = false, cur[:0], 0, 0
					continue
				}
				acc |= 1 << nb
				nb++
			} else {
				switch {
				case ones == 5: // a stuffed zero
					ones = 0
					continue
				case ones == 6: // a flag: 0111111 0; drop its six ones taken as data
					ones = 0
					// the flag's first 0 and six 1s went into acc/cur
					cur, acc, nb = unwind(cur, acc, nb, 7)
					end()
					continue
				}
				ones = 0
				nb++
			}
			if nb == 8 {
				cur = append(cur, acc)
				acc, nb = 0, 0
			}
		}
	}
	return frames
}

// unwind removes the last k bits taken into cur/acc.
func unwind(cur []byte, acc byte, nb uint, k int) ([]byte, byte, uint) {
	for range k {
		if nb == 0 {
			if len(cur) == 0 {
				return cur, 0, 0
			}
			acc = cur[len(cur)-1]
			cur = cur[:len(cur)-1]
			nb = 8
		}
		nb--
		acc &^= 1 << nb
	}
	return cur, acc, nb
}
