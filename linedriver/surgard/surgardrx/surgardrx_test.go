package surgardrx

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind string
		ok   bool
	}{
		{"501001 181234E13001003", "cid", true},
		{"S01001[#1234|Nri1/BA003]", "sia", true},
		{"1011           @    ", "heartbeat", true},
		{"501001 181234X13001003", "", false},
		{"501001 18123E13001003", "", false},
		{"", "", false},
	} {
		l, err := Parse(tc.in)
		if tc.ok != (err == nil) || tc.ok && l.Kind != tc.kind || !tc.ok && !errors.Is(err, ErrLine) {
			t.Errorf("Parse(%q) = %+v, %v", tc.in, l, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("501001 181234E13001003")
	f.Add("S01001[#1234|Nri1/BA003]")
	f.Add("1011           @    ")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := Parse(s)
		if err == nil && l.Raw != s {
			t.Fatalf("Raw %q != %q", l.Raw, s)
		}
	})
}
