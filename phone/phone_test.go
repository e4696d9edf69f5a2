package phone

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	tests := []struct {
		region, written string
		e164            string
		typ             Type
		numRegion       string
		access          string
	}{
		// United States, as senders write numbers there
		{"US", "+1 201 555 0123", "+12015550123", FixedLineOrMobile, "US", ""},
		{"US", "(201) 555-0123", "+12015550123", FixedLineOrMobile, "US", ""},
		{"US", "201.555.0123", "+12015550123", FixedLineOrMobile, "US", ""},
		{"US", "1-201-555-0123", "+12015550123", FixedLineOrMobile, "US", ""},
		{"US", "tel:+1-201-555-0123", "+12015550123", FixedLineOrMobile, "US", ""},
		{"US", "1-800-555-0199", "+18005550199", TollFree, "US", ""},
		{"US", "1-900-555-0199", "+19005550199", PremiumRate, "US", ""},
		{"US", "+1 876 555 0123", "+18765550123", Mobile, "JM", ""}, // Jamaica: +1, but abroad
		{"US", "011 44 20 7946 0018", "+442079460018", FixedLine, "GB", ""},
		{"US", "0049 30 1234567", "+49301234567", FixedLine, "DE", ""}, // "00" as senders abroad write it
		// United Kingdom
		{"GB", "020 7946 0018", "+442079460018", FixedLine, "GB", ""},
		{"GB", "+44 (0)20 7946 0018", "+442079460018", FixedLine, "GB", ""},
		{"GB", "0800 123 4567", "+448001234567", TollFree, "GB", ""},
		{"GB", "09065 123456", "+449065123456", PremiumRate, "GB", ""},
		{"GB", "00 1 201 555 0123", "+12015550123", FixedLineOrMobile, "US", ""},
		// Germany
		{"DE", "030 1234567", "+49301234567", FixedLine, "DE", ""},
		{"DE", "030/123 45 67", "+49301234567", FixedLine, "DE", ""},
		{"DE", "+49 (30) 1234-567", "+49301234567", FixedLine, "DE", ""},
		{"DE", "0900 1 234567", "+499001234567", PremiumRate, "DE", ""},
		{"DE", "0180 1 234567", "+491801234567", SharedCost, "DE", ""},
		// France
		{"FR", "01 40 00 00 00", "+33140000000", FixedLine, "FR", ""},
		{"FR", "01.40.00.00.00", "+33140000000", FixedLine, "FR", ""},
		{"FR", "08 99 12 34 56", "+33899123456", PremiumRate, "FR", ""},
		{"FR", "0810 12 34 56", "+33810123456", SharedCost, "FR", ""},
		// behind a PBX: the outside-line code before a pause is dropped
		{"US", "9,201-555-0123", "+12015550123", FixedLineOrMobile, "US", "9"},
		{"US", "9, 1 900 555 0199", "+19005550199", PremiumRate, "US", "9"},
		{"US", "9W 011 44 20 7946 0018", "+442079460018", FixedLine, "GB", "9"},
		{"DE", "0,,030 1234567", "+49301234567", FixedLine, "DE", "0"},
		{"GB", "9p020 7946 0018", "+442079460018", FixedLine, "GB", "9"},
		{"US", "9, +44 20 7946 0018", "+442079460018", FixedLine, "GB", "9"},
		{"US", "201 555 0123,", "+12015550123", FixedLineOrMobile, "US", ""}, // a pause at the end dials nothing
		// no default region: a country code is needed
		{"", "+44 20 7946 0018", "+442079460018", FixedLine, "GB", ""},
		{"", "0044 20 7946 0018", "+442079460018", FixedLine, "GB", ""},
	}
	for _, tt := range tests {
		n, err := Parse(tt.written, tt.region)
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", tt.written, tt.region, err)
			continue
		}
		if n.E164 != tt.e164 || n.Type != tt.typ || n.Region != tt.numRegion || n.AccessCode != tt.access || n.Written != tt.written {
			t.Errorf("Parse(%q, %q) = %s %s %s access %q, want %s %s %s access %q", tt.written, tt.region,
				n.E164, n.Type, n.Region, n.AccessCode, tt.e164, tt.typ, tt.numRegion, tt.access)
		}
	}
}

func TestParseRefused(t *testing.T) {
	tests := []struct {
		region, written string
		says            string // part of the reason
	}{
		{"US", "", "is empty"},
		{"US", "   ", "is empty"},
		{"US", "555-0100", "not a valid number in US"}, // no area code
		{"US", "(555) 010-0142", "not a valid number in US"},
		{"US", "12", "not a valid number"},
		{"US", "*67 201 555 0123", "feature code"},
		{"US", "201 555 0123#", "feature code"},
		{"GB", "#31#020 7946 0018", "feature code"},
		{"US", "+1 555 CALL NOW", `holds 'C'`},
		{"US", "201-555-0123 x12", `holds 'x'`},
		{"US", "201-555-0123 ext. 12", `holds 'e'`},
		{"US", "201-555-0123, 1234", "after a pause"},      // tones after the call connects
		{"US", "201 555 0123, 011 44 20", "after a pause"}, // calling card
		{"US", "9, 201 555 0123, 12", "after a pause"},     // two pauses
		{"US", "1+201 555 0123", "'+' that is not at the start"},
		{"US", "++1 201 555 0123", "'+' that is not at the start"},
		{"US", "9, 1 +201 555 0123", "'+' that is not at the start"},
		{"US", ",201 555 0123", "after a pause"},
		{"US", "+999 1234567", "unknown country code"},
		{"", "020 7946 0018", "no country code"},
		{"US", "012345678901234567890123", "too long"},
		{"US", strings.Repeat("1", 100), "longer than"},
		{"US", "201 555 0123; ATH", `holds ';'`}, // a modem command smuggled in
	}
	for _, tt := range tests {
		n, err := Parse(tt.written, tt.region)
		var pe *Error
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &pe) {
			t.Errorf("Parse(%q, %q) = %+v, %v; want a *phone.Error", tt.written, tt.region, n, err)
			continue
		}
		if !strings.Contains(pe.Reason, tt.says) {
			t.Errorf("Parse(%q, %q): reason %q does not say %q", tt.written, tt.region, pe.Reason, tt.says)
		}
		// The message a sender reads: what they wrote and the forms accepted.
		msg := err.Error()
		if !strings.Contains(msg, `"`+tt.written+`"`) && !strings.Contains(msg, "longer than") {
			t.Errorf("Parse(%q): message %q does not quote what was written", tt.written, msg)
		}
		if !strings.Contains(msg, "write it as") {
			t.Errorf("Parse(%q): message %q lists no accepted forms", tt.written, msg)
		}
	}
	if _, err := Parse("+1 201 555 0123", "XX"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown region accepted: %v", err)
	}
}

func TestAccepted(t *testing.T) {
	for region, want := range map[string]string{
		"US": `"+1 201-555-0123", "(201) 555-0123" (a number in US) or "0049 30 123456"`,
		"GB": `"+44 121 234 5678", "0121 234 5678" (a number in GB) or "0049 30 123456"`,
		"DE": `"+49 30 123456", "030 123456" (a number in DE) or "0033 1 23 45 67 89"`,
		"":   `"+49 30 123456" or "0049 30 123456" (with the country code)`,
	} {
		if got := Accepted(region); got != want {
			t.Errorf("Accepted(%q) = %s, want %s", region, got, want)
		}
		// every form named is itself accepted
		for _, form := range strings.Split(want, `"`)[1:] {
			if strings.ContainsAny(form, "0123456789") && !strings.Contains(form, "(a number") {
				if _, err := Parse(form, region); err != nil {
					t.Errorf("Accepted(%q) names %q, which Parse refuses: %v", region, form, err)
				}
			}
		}
	}
}

func TestInternational(t *testing.T) {
	n, err := Parse("020 7946 0018", "GB")
	if err != nil {
		t.Fatal(err)
	}
	if got := n.International(); got != "+44 20 7946 0018" {
		t.Errorf("International() = %q", got)
	}
	if n.CountryCode() != 44 {
		t.Errorf("CountryCode() = %d", n.CountryCode())
	}
}

// FuzzParse: whatever is written, Parse returns an E.164 number that parses
// to itself, or a *phone.Error; it never panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"+1 (201) 555-0123", "9,201 555 0123", "0049 30 1234567", "*67 555", "", "++", "0", "tel:+44", "1-900-555-0199"} {
		f.Add(s, "US")
	}
	f.Add("020 7946 0018", "GB")
	f.Add("030 1234567", "DE")
	f.Add("01 40 00 00 00", "FR")
	f.Fuzz(func(t *testing.T, s, region string) {
		if region != "" && !ValidRegion(region) {
			region = "US"
		}
		n, err := Parse(s, region)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || !utf8.ValidString(err.Error()) && utf8.ValidString(s) {
				t.Fatalf("Parse(%q, %q): %v", s, region, err)
			}
			return
		}
		if !strings.HasPrefix(n.E164, "+") || strings.Trim(n.E164[1:], "0123456789") != "" || len(n.E164) > 16 {
			t.Fatalf("Parse(%q, %q) = %q, not E.164", s, region, n.E164)
		}
		again, err := Parse(n.E164, "")
		if err != nil || again.E164 != n.E164 || again.Type != n.Type {
			t.Fatalf("Parse(%q) = %q, which parses to %+v, %v", s, n.E164, again, err)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := Parse("(201) 555-0123", "US"); err != nil {
			b.Fatal(err)
		}
	}
}
