package t30

import (
	"bytes"
	"testing"
)

func TestFCSKnownValue(t *testing.T) {
	// CRC-16/X.25 check value of "123456789" is 0x906E.
	if got := FCS([]byte("123456789")); got != 0x906E {
		t.Fatalf("FCS = %04X, want 906E", got)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	frames := []Frame{
		{Final: true, FCF: DIS, Info: []byte{0x00, 0xEE, 0x78}},
		{FCF: TSI | XBit, Info: EncodeID("+1 555 0001")},
		{Final: true, FCF: MCF},
	}
	for _, f := range frames {
		for _, b := range [][]byte{f.Marshal(), f.MarshalFCS()} {
			g, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if g.Final != f.Final || g.FCF != f.FCF || !bytes.Equal(g.Info, f.Info) {
				t.Errorf("Parse(% X) = %+v, want %+v", b, g, f)
			}
		}
	}
	if _, err := Parse([]byte{0x12, 0x03, 0x80}); err == nil {
		t.Error("bad address accepted")
	}
}

func TestIDs(t *testing.T) {
	b := EncodeID("AB")
	if len(b) != 20 || b[19] != 'A' || b[18] != 'B' || b[0] != ' ' {
		t.Fatalf("EncodeID = %q", b)
	}
	if got := DecodeID(b); got != "AB" {
		t.Fatalf("DecodeID = %q", got)
	}
}

func TestNames(t *testing.T) {
	tests := map[byte]string{DIS: "DIS", DTC: "DTC", DCS | XBit: "DCS", MCF: "MCF", EOP | XBit: "EOP", 0x02: "FCF(0x02)"}
	for fcf, want := range tests {
		if got := Name(fcf); got != want {
			t.Errorf("Name(%02X) = %s, want %s", fcf, got, want)
		}
	}
}

func TestDISParse(t *testing.T) {
	tests := []struct {
		name string
		fif  []byte
		want Caps
	}{
		// a V.17 receiver: bits 10, 11, 12, 14, 15, 16; 215 mm, unlimited length, 0 ms
		{"v17 fine MR", []byte{0x00, 0xEE, 0x78}, Caps{CanReceive: true, V17: true, V29: true, V27ter: true, Fine: true, MR: true, Length: 2, MinScan: 0, MinScanFine: 0}},
		{"v29 v27 standard 20ms", []byte{0x00, 0x0E, 0x00}, Caps{CanReceive: true, V29: true, V27ter: true, MinScan: 20, MinScanFine: 20}},
		{"v27 only, 40/20", []byte{0x00, 0x0A, 0x50}, Caps{CanReceive: true, V27ter: true, MinScan: 40, MinScanFine: 20}},
		{"ECM MMR", []byte{0x00, 0x2E, 0x80, 0x44}, Caps{CanReceive: true, V17: true, V29: true, V27ter: true, ECM: true, MMR: true, MinScan: 20, MinScanFine: 20}},
	}
	for _, tt := range tests {
		got := ParseDIS(tt.fif)
		if got != tt.want {
			t.Errorf("%s: ParseDIS = %+v, want %+v", tt.name, got, tt.want)
		}
		if back := ParseDIS(got.Bytes()); back != got {
			t.Errorf("%s: Bytes round trip = %+v", tt.name, back)
		}
	}
}

func TestDCSRoundTrip(t *testing.T) {
	for _, s := range Speeds {
		for _, fine := range []bool{false, true} {
			for _, ms := range []int{0, 5, 10, 20, 40} {
				p := Params{Speed: s, Fine: fine, MR: fine, MinScan: ms}
				got, err := ParseDCS(p.DCSBytes())
				if err != nil || got != p {
					t.Errorf("ParseDCS(%v) = %v, %v", p, got, err)
				}
			}
		}
	}
}

func TestChooseFallbackOrder(t *testing.T) {
	c := ParseDIS([]byte{0x00, 0xEE, 0x78})
	var got []string
	for _, p := range Choose(c, []byte{0x00, 0xEE, 0x78}, true, true, nil) {
		got = append(got, p.Speed.String())
	}
	want := "[V.17 14400 V.17 12000 V.17 9600 V.29 9600 V.17 7200 V.29 7200 V.27ter 4800 V.27ter 2400]"
	if s := fmtList(got); s != want {
		t.Errorf("order %s, want %s", s, want)
	}
	v29 := []byte{0x00, 0x06, 0x00} // V.29 only (no 4800 bit)
	var names []string
	for _, p := range Choose(ParseDIS(v29), v29, false, false, nil) {
		names = append(names, p.Speed.String())
	}
	if s := fmtList(names); s != "[V.29 9600 V.29 7200 V.27ter 2400]" {
		t.Errorf("v29 order %s", s)
	}
}

func fmtList(s []string) string {
	var b bytes.Buffer
	b.WriteString("[")
	for i, x := range s {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(x)
	}
	b.WriteString("]")
	return b.String()
}

func FuzzParse(f *testing.F) {
	f.Add(Frame{Final: true, FCF: DIS, Info: []byte{0, 0xEE, 0x78}}.MarshalFCS())
	f.Add([]byte{0xff, 0x13, 0x8c})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Parse(b)
		if err != nil {
			return
		}
		g, err := Parse(fr.Marshal())
		if err != nil || g.FCF != fr.FCF || g.Final != fr.Final {
			t.Fatalf("re-parse: %v", err)
		}
		_ = fr.String()
		ParseDIS(fr.Info)
		ParseDCS(fr.Info) //nolint:errcheck
	})
}
