// Package dial turns a phone or fax number as people write it
// ("+1 (555) 123-4567", "0044 20 7946 0018", "555-1234") into the digit
// string a modem dials, the way fax servers apply dial rules: the number is
// first made canonical (country code + national number), then dialled as a
// local, national or international call from the gateway's own location, with
// an optional outside-line prefix.
package dial

import (
	"errors"
	"fmt"
	"strings"
)

// Rules describe where the gateway's line is. All fields are optional; with
// zero Rules a number is only cleaned ("+" kept out, punctuation stripped).
type Rules struct {
	// CountryCode of the line, without "+" (e.g. "1", "44").
	CountryCode string `yaml:"country_code,omitempty"`
	// AreaCode of the line (e.g. "555"); numbers in it may be dialled locally.
	AreaCode string `yaml:"area_code,omitempty"`
	// OutsideLine is dialled first to get an outside line from a PBX (e.g. "9").
	OutsideLine string `yaml:"outside_line,omitempty"`
	// InternationalPrefix is dialled before a foreign country code ("011" in
	// North America, "00" in most other places).
	InternationalPrefix string `yaml:"international_prefix,omitempty"`
	// NationalPrefix (trunk prefix) is dialled before an area code for a
	// call within the country ("1" in North America, "0" in much of Europe).
	NationalPrefix string `yaml:"national_prefix,omitempty"`
	// LocalDigits is the length of a subscriber number without area code
	// (7 in North America); a number of exactly this length is local.
	LocalDigits int `yaml:"local_digits,omitempty"`
	// DialLocalWithoutArea dials numbers in AreaCode without the national
	// prefix and area code. When false, calls in the same area are dialled
	// as national calls (10-digit dialling).
	DialLocalWithoutArea bool `yaml:"dial_local_without_area,omitempty"`
}

// Number is the outcome of applying the rules.
type Number struct {
	// Canonical is the international form, "+" country code and number,
	// when the country is known; otherwise the cleaned digits.
	Canonical string
	// Dial is the digit string to send to the modem (ATD...).
	Dial string
}

// ErrInvalid is wrapped by every error Normalize returns.
var ErrInvalid = errors.New("invalid phone number")

// MinDigits and MaxDigits bound a plausible number (E.164 allows 15 digits;
// prefixes may add a few).
const (
	MinDigits = 3
	MaxDigits = 20
)

// Validate checks the rules themselves.
func (r Rules) Validate() error {
	var errs []error
	for name, v := range map[string]string{
		"country_code": r.CountryCode, "area_code": r.AreaCode, "outside_line": r.OutsideLine,
		"international_prefix": r.InternationalPrefix, "national_prefix": r.NationalPrefix,
	} {
		if !allDigits(v) {
			errs = append(errs, fmt.Errorf("%s: %q must be digits only", name, v))
		}
	}
	if r.LocalDigits < 0 || r.LocalDigits > 15 {
		errs = append(errs, fmt.Errorf("local_digits: %d out of range 0..15", r.LocalDigits))
	}
	if r.AreaCode != "" && r.CountryCode == "" {
		errs = append(errs, errors.New("area_code: needs country_code"))
	}
	return errors.Join(errs...)
}

// Clean strips the punctuation people write in numbers (+ ( ) - . / space)
// and reports whether the number was written in international form. A
// letter or other character is an error; so is an extension marker.
func Clean(s string) (digits string, international bool, err error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "tel:"), "fax:")
	var b strings.Builder
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == '+':
			if b.Len() > 0 || international {
				return "", false, fmt.Errorf("%w: %q: '+' only at the start", ErrInvalid, s)
			}
			international = true
		case c == '(' || c == ')' || c == '-' || c == '.' || c == ' ' || c == '/' || c == '\u00a0' || c == '\t':
		default:
			return "", false, fmt.Errorf("%w: %q: unexpected %q at %d", ErrInvalid, s, c, i)
		}
	}
	digits = b.String()
	if len(digits) < MinDigits || len(digits) > MaxDigits {
		return "", false, fmt.Errorf("%w: %q: %d digits, want %d..%d", ErrInvalid, s, len(digits), MinDigits, MaxDigits)
	}
	return digits, international, nil
}

// Normalize applies the rules to a written number.
func (r Rules) Normalize(s string) (Number, error) {
	digits, intl, err := Clean(s)
	if err != nil {
		return Number{}, err
	}
	if r.CountryCode == "" {
		// No location: dial what was written, with "+" turned into the
		// international prefix if one is known.
		d := digits
		if intl {
			d = r.InternationalPrefix + digits
		}
		canon := digits
		if intl {
			canon = "+" + digits
		}
		return Number{Canonical: canon, Dial: r.OutsideLine + d}, nil
	}
	// Make it canonical: country code + national number.
	var canon string
	switch {
	case intl:
		canon = digits
	case r.InternationalPrefix != "" && strings.HasPrefix(digits, r.InternationalPrefix) && len(digits) > len(r.InternationalPrefix)+MinDigits:
		canon = digits[len(r.InternationalPrefix):]
	case r.NationalPrefix != "" && strings.HasPrefix(digits, r.NationalPrefix) && len(digits)-len(r.NationalPrefix) > r.LocalDigits:
		canon = r.CountryCode + digits[len(r.NationalPrefix):]
	case r.LocalDigits > 0 && len(digits) == r.LocalDigits && r.AreaCode != "":
		canon = r.CountryCode + r.AreaCode + digits
	default:
		canon = r.CountryCode + digits
	}
	n := Number{Canonical: "+" + canon}
	var d string
	if national, ok := strings.CutPrefix(canon, r.CountryCode); ok {
		if local, inArea := strings.CutPrefix(national, r.AreaCode); r.AreaCode != "" && inArea && r.DialLocalWithoutArea && local != "" {
			d = local
		} else {
			d = r.NationalPrefix + national
		}
	} else {
		if r.InternationalPrefix == "" {
			return Number{}, fmt.Errorf("%w: %q: international number but no international_prefix in the dial rules", ErrInvalid, s)
		}
		d = r.InternationalPrefix + canon
	}
	n.Dial = r.OutsideLine + d
	if len(n.Dial) > MaxDigits+len(r.OutsideLine)+len(r.InternationalPrefix) {
		return Number{}, fmt.Errorf("%w: %q: too long to dial", ErrInvalid, s)
	}
	return n, nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
