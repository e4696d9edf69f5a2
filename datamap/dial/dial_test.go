package dial

import (
	"errors"
	"strings"
	"testing"
)

var nanp = Rules{CountryCode: "1", AreaCode: "555", OutsideLine: "9", InternationalPrefix: "011", NationalPrefix: "1", LocalDigits: 7, DialLocalWithoutArea: true}
var uk = Rules{CountryCode: "44", AreaCode: "20", InternationalPrefix: "00", NationalPrefix: "0", LocalDigits: 8}

func TestNormalize(t *testing.T) {
	tests := []struct {
		rules       Rules
		in          string
		canon, dial string
	}{
		{nanp, "+1 (555) 123-4567", "+15551234567", "91234567"},
		{nanp, "+15551234567", "+15551234567", "91234567"},
		{nanp, "1-212-555-0100", "+12125550100", "912125550100"},
		{nanp, "212.555.0100", "+12125550100", "912125550100"},
		{nanp, "555-0100", "+15555550100", "95550100"},
		{nanp, "+44 20 7946 0018", "+442079460018", "9011442079460018"},
		{nanp, "011 44 20 7946 0018", "+442079460018", "9011442079460018"},
		{uk, "+44 20 7946 0018", "+442079460018", "02079460018"},
		{uk, "020 7946 0018", "+442079460018", "02079460018"},
		{uk, "7946 0018", "+442079460018", "02079460018"},
		{uk, "+1 555 123 4567", "+15551234567", "0015551234567"},
		{Rules{}, "+49 (30) 1234-567", "+49301234567", "49301234567"},
		{Rules{OutsideLine: "0", InternationalPrefix: "00"}, "+49 30 1234567", "+49301234567", "00049301234567"},
		{Rules{}, "tel:030/1234567", "0301234567", "0301234567"},
	}
	for _, tt := range tests {
		got, err := tt.rules.Normalize(tt.in)
		if err != nil {
			t.Errorf("Normalize(%q): %v", tt.in, err)
			continue
		}
		if got.Canonical != tt.canon || got.Dial != tt.dial {
			t.Errorf("Normalize(%q) = %+v, want canonical %s dial %s", tt.in, got, tt.canon, tt.dial)
		}
	}
}

func TestNormalizeInvalid(t *testing.T) {
	for _, in := range []string{"", "12", "call me", "+1 555 CALL NOW", "1+2345", "++15551234", "123456789012345678901234", "555-1234 x12"} {
		if n, err := nanp.Normalize(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("Normalize(%q) = %+v, %v; want ErrInvalid", in, n, err)
		}
	}
	if _, err := (Rules{CountryCode: "1"}).Normalize("+44 20 7946 0018"); !errors.Is(err, ErrInvalid) {
		t.Errorf("international number without international_prefix: err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	if err := nanp.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Rules{CountryCode: "+1", AreaCode: "5x5", LocalDigits: 99}
	err := bad.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"country_code", "area_code", "local_digits"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if err := (Rules{AreaCode: "555"}).Validate(); err == nil {
		t.Error("area code without country code accepted")
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+1 (555) 123-4567", "011 44 20", "555-0100", "", "++", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range []Rules{nanp, uk, {}} {
			n, err := r.Normalize(s)
			if err != nil {
				continue
			}
			if !allDigits(n.Dial) || n.Dial == "" {
				t.Fatalf("Normalize(%q) dial %q not digits", s, n.Dial)
			}
		}
	})
}
