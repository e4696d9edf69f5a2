package t4

// The code tables of ITU-T T.4 (tables 2 and 3, and the extended make-up
// codes of table 3/T.4 shared by both colours) and the 2-D mode codes of
// table 4/T.4. Each code is written as its bit string, most significant
// (first transmitted) bit first.

type code struct {
	bits uint16 // the code, right-aligned
	n    uint8  // its length in bits
}

func c(s string) code {
	var v uint16
	for i := 0; i < len(s); i++ {
		v = v<<1 | uint16(s[i]-'0')
	}
	return code{v, uint8(len(s))}
}

// Terminating codes, runs 0..63.
var whiteTerm = [64]code{
	c("00110101"), c("000111"), c("0111"), c("1000"), c("1011"), c("1100"), c("1110"), c("1111"),
	c("10011"), c("10100"), c("00111"), c("01000"), c("001000"), c("000011"), c("110100"), c("110101"),
	c("101010"), c("101011"), c("0100111"), c("0001100"), c("0001000"), c("0010111"), c("0000011"), c("0000100"),
	c("0101000"), c("0101011"), c("0010011"), c("0100100"), c("0011000"), c("00000010"), c("00000011"), c("00011010"),
	c("00011011"), c("00010010"), c("00010011"), c("00010100"), c("00010101"), c("00010110"), c("00010111"), c("00101000"),
	c("00101001"), c("00101010"), c("00101011"), c("00101100"), c("00101101"), c("00000100"), c("00000101"), c("00001010"),
	c("00001011"), c("01010010"), c("01010011"), c("01010100"), c("01010101"), c("00100100"), c("00100101"), c("01011000"),
	c("01011001"), c("01011010"), c("01011011"), c("01001010"), c("01001011"), c("00110010"), c("00110011"), c("00110100"),
}

var blackTerm = [64]code{
	c("0000110111"), c("010"), c("11"), c("10"), c("011"), c("0011"), c("0010"), c("00011"),
	c("000101"), c("000100"), c("0000100"), c("0000101"), c("0000111"), c("00000100"), c("00000111"), c("000011000"),
	c("0000010111"), c("0000011000"), c("0000001000"), c("00001100111"), c("00001101000"), c("00001101100"), c("00000110111"), c("00000101000"),
	c("00000010111"), c("00000011000"), c("000011001010"), c("000011001011"), c("000011001100"), c("000011001101"), c("000001101000"), c("000001101001"),
	c("000001101010"), c("000001101011"), c("000011010010"), c("000011010011"), c("000011010100"), c("000011010101"), c("000011010110"), c("000011010111"),
	c("000001101100"), c("000001101101"), c("000011011010"), c("000011011011"), c("000001010100"), c("000001010101"), c("000001010110"), c("000001010111"),
	c("000001100100"), c("000001100101"), c("000001010010"), c("000001010011"), c("000000100100"), c("000000110111"), c("000000111000"), c("000000100111"),
	c("000000101000"), c("000001011000"), c("000001011001"), c("000000101011"), c("000000101100"), c("000001011010"), c("000001100110"), c("000001100111"),
}

// Make-up codes, index i is the run 64*i (index 0 unused); 1..27 are the
// colour-specific codes up to 1728, 28..40 the extended codes up to 2560.
var whiteMakeup = [41]code{
	{},
	c("11011"), c("10010"), c("010111"), c("0110111"), c("00110110"), c("00110111"), c("01100100"), c("01100101"),
	c("01101000"), c("01100111"), c("011001100"), c("011001101"), c("011010010"), c("011010011"), c("011010100"), c("011010101"),
	c("011010110"), c("011010111"), c("011011000"), c("011011001"), c("011011010"), c("011011011"), c("010011000"), c("010011001"),
	c("010011010"), c("011000"), c("010011011"),
	c("00000001000"), c("00000001100"), c("00000001101"), c("000000010010"), c("000000010011"), c("000000010100"), c("000000010101"),
	c("000000010110"), c("000000010111"), c("000000011100"), c("000000011101"), c("000000011110"), c("000000011111"),
}

var blackMakeup = [41]code{
	{},
	c("0000001111"), c("000011001000"), c("000011001001"), c("000001011011"), c("000000110011"), c("000000110100"), c("000000110101"), c("0000001101100"),
	c("0000001101101"), c("0000001001010"), c("0000001001011"), c("0000001001100"), c("0000001001101"), c("0000001110010"), c("0000001110011"), c("0000001110100"),
	c("0000001110101"), c("0000001110110"), c("0000001110111"), c("0000001010010"), c("0000001010011"), c("0000001010100"), c("0000001010101"), c("0000001011010"),
	c("0000001011011"), c("0000001100100"), c("0000001100101"),
	c("00000001000"), c("00000001100"), c("00000001101"), c("000000010010"), c("000000010011"), c("000000010100"), c("000000010101"),
	c("000000010110"), c("000000010111"), c("000000011100"), c("000000011101"), c("000000011110"), c("000000011111"),
}

// 2-D mode codes.
var (
	codePass  = c("0001")
	codeHoriz = c("001")
	// codeVert[d+3] is the vertical mode code for a1 - b1 = d.
	codeVert = [7]code{c("0000010"), c("000010"), c("010"), c("1"), c("011"), c("000011"), c("0000011")}
)

const (
	eolCode = 0x001 // 000000000001
	eolLen  = 12
)

// Decoding: runTable[color][13-bit prefix] gives the run length a code
// stands for (make-up codes as multiples of 64) and the code's length; a
// length of 0 marks an invalid prefix.
type runEntry struct {
	run int16
	n   uint8
}

const runBits = 13

var runTable [2][1 << runBits]runEntry

// modeTable[7-bit prefix] gives the 2-D mode and its length.
type modeEntry struct {
	mode int8 // modePass, modeHoriz, or modeV0+d
	n    uint8
}

const (
	modeInvalid = iota
	modePass
	modeHoriz
	modeVL3 // modeVL3+3 = V0
	modeVL2
	modeVL1
	modeV0
	modeVR1
	modeVR2
	modeVR3
)

const modeBits = 7

var modeTable [1 << modeBits]modeEntry

func fillRun(t *[1 << runBits]runEntry, cd code, run int) {
	shift := runBits - int(cd.n)
	base := int(cd.bits) << shift
	for i := 0; i < 1<<shift; i++ {
		t[base+i] = runEntry{int16(run), cd.n}
	}
}

func init() {
	for color, tabs := range [2]struct{ term, makeup []code }{
		{whiteTerm[:], whiteMakeup[:]}, {blackTerm[:], blackMakeup[:]},
	} {
		for r, cd := range tabs.term {
			fillRun(&runTable[color], cd, r)
		}
		for i := 1; i < len(tabs.makeup); i++ {
			fillRun(&runTable[color], tabs.makeup[i], 64*i)
		}
	}
	put := func(cd code, m int8) {
		shift := modeBits - int(cd.n)
		base := int(cd.bits) << shift
		for i := 0; i < 1<<shift; i++ {
			modeTable[base+i] = modeEntry{m, cd.n}
		}
	}
	put(codePass, modePass)
	put(codeHoriz, modeHoriz)
	for i, cd := range codeVert {
		put(cd, int8(modeVL3+i))
	}
}
