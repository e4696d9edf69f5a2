package t30

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestHDLCRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name   string
		frames [][]byte
	}{
		{"control frame", [][]byte{{0xFF, 0x13, PPS, 0x00, 0, 0, 3}}},
		{"all ones", [][]byte{{0xFF, 0x03, FCD, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x7E, 0x7E}}},
		{"many", nil},
	}
	for i := range 40 {
		d := make([]byte, 3+256)
		d[0], d[1], d[2], d[3] = 0xFF, 0x03, FCD, byte(i)
		for j := 4; j < len(d); j++ {
			d[j] = byte(r.IntN(256))
		}
		tests[2].frames = append(tests[2].frames, d)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HDLCDecode(HDLCEncode(tt.frames, 3))
			if len(got) != len(tt.frames) {
				t.Fatalf("%d frames back, want %d", len(got), len(tt.frames))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.frames[i]) {
					t.Errorf("frame %d differs", i)
				}
			}
		})
	}
	// a flipped bit loses that frame only
	frames := tests[2].frames
	enc := HDLCEncode(frames, 3)
	enc[len(enc)/2] ^= 0x10
	if got := HDLCDecode(enc); len(got) != len(frames)-1 && len(got) != len(frames)-2 {
		t.Errorf("a corrupted stream gave %d of %d frames", len(got), len(frames))
	}
}
