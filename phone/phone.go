// Package phone reads telephone and fax numbers as people write them
// ("+1 201 555 0123", "(201) 555-0123", "0049 30 123456", "9, 020 7946 0018")
// into E.164 ("+12015550123"), with the number's type (premium rate, toll
// free, …) from the numbering plan. It uses github.com/nyaruka/phonenumbers
// (a port of Google's libphonenumber) for the plans of every country.
//
// A number is parsed with a default region, the ISO 3166 code of the country
// a number without a country code belongs to. Only numbers that are valid in
// the numbering plan are accepted. Feature codes (* and #), letters,
// extensions and digits after a pause are refused: a gateway dials a number,
// not a sequence of services.
package phone

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
	"google.golang.org/protobuf/proto"
)

// ErrInvalid is matched (errors.Is) by every error Parse returns.
var ErrInvalid = errors.New("not a phone number")

// Error says why a written number was not accepted and which forms are.
type Error struct {
	Written string // what was written
	Region  string // the default region it was read with ("" for none)
	Reason  string // why it was refused
}

func (e *Error) Error() string {
	return fmt.Sprintf("%q %s; write it as %s", e.Written, e.Reason, Accepted(e.Region))
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *Error) Unwrap() error { return ErrInvalid }

// Type is the kind of a number in its country's numbering plan.
type Type string

// The number types, named as in configuration files.
const (
	FixedLine         Type = "fixed_line"
	Mobile            Type = "mobile"
	FixedLineOrMobile Type = "fixed_line_or_mobile" // e.g. every geographic number of North America
	TollFree          Type = "toll_free"
	PremiumRate       Type = "premium_rate"
	SharedCost        Type = "shared_cost"
	VoIP              Type = "voip"
	Personal          Type = "personal"
	Pager             Type = "pager"
	UAN               Type = "uan" // universal access numbers (company numbers)
	Voicemail         Type = "voicemail"
	Unknown           Type = "unknown"
)

// Types lists every Type, in the order of the numbering-plan data.
var Types = []Type{FixedLine, Mobile, FixedLineOrMobile, TollFree, PremiumRate, SharedCost, VoIP, Personal, Pager, UAN, Voicemail, Unknown}

var typeOf = map[phonenumbers.PhoneNumberType]Type{
	phonenumbers.FIXED_LINE: FixedLine, phonenumbers.MOBILE: Mobile, phonenumbers.FIXED_LINE_OR_MOBILE: FixedLineOrMobile,
	phonenumbers.TOLL_FREE: TollFree, phonenumbers.PREMIUM_RATE: PremiumRate, phonenumbers.SHARED_COST: SharedCost,
	phonenumbers.VOIP: VoIP, phonenumbers.PERSONAL_NUMBER: Personal, phonenumbers.PAGER: Pager, phonenumbers.UAN: UAN,
	phonenumbers.VOICEMAIL: Voicemail, phonenumbers.UNKNOWN: Unknown,
}

// Describe is the type in words, for messages ("a premium-rate number").
func (t Type) Describe() string {
	switch t {
	case FixedLine:
		return "a fixed-line number"
	case Mobile:
		return "a mobile number"
	case FixedLineOrMobile:
		return "a fixed-line or mobile number"
	case TollFree:
		return "a toll-free number"
	case PremiumRate:
		return "a premium-rate number"
	case SharedCost:
		return "a shared-cost number"
	case VoIP:
		return "a VoIP number"
	case Personal:
		return "a personal number"
	case Pager:
		return "a pager number"
	case UAN:
		return "a universal access number"
	case Voicemail:
		return "a voicemail number"
	}
	return "a number of unknown type"
}

// ValidRegion reports whether r is a region the numbering-plan data knows
// (ISO 3166 alpha-2, upper case: "US", "GB", "DE").
func ValidRegion(r string) bool { return phonenumbers.GetSupportedRegions()[r] }

// RegionOf is the main region of a country calling code (1 → "US",
// 44 → "GB"), or "" for none.
func RegionOf(countryCode int) string {
	if r := phonenumbers.GetRegionCodeForCountryCode(countryCode); ValidRegion(r) {
		return r
	}
	return ""
}

// Number is a parsed number.
type Number struct {
	E164       string // "+12015550123"
	Written    string // what was written
	Region     string // the number's own region ("US", "JM", "GB"; "001" for non-geographic)
	Type       Type
	AccessCode string // an outside-line code written before a pause ("9," …) and dropped
	pn         *phonenumbers.PhoneNumber
}

// International is the number for people to read: "+1 201-555-0123".
func (n Number) International() string {
	if n.pn == nil {
		return n.E164
	}
	return phonenumbers.Format(n.pn, phonenumbers.INTERNATIONAL)
}

// CountryCode is the number's country calling code (1, 44, 49).
func (n Number) CountryCode() int {
	if n.pn == nil {
		return 0
	}
	return int(n.pn.GetCountryCode())
}

// PhoneNumber is the parsed form for phonenumbers' formatting functions.
func (n Number) PhoneNumber() *phonenumbers.PhoneNumber {
	if n.pn == nil {
		return nil
	}
	return proto.Clone(n.pn).(*phonenumbers.PhoneNumber)
}

// maxWritten bounds what Parse looks at; no written number is longer.
const maxWritten = 64

// Parse reads a written number with a default region ("" for none: then
// only numbers with a country code are accepted). The result is valid in its
// country's numbering plan.
func Parse(written, region string) (Number, error) {
	fail := func(reason string) (Number, error) {
		return Number{}, &Error{Written: written, Region: region, Reason: reason}
	}
	if region != "" && !ValidRegion(region) {
		return Number{}, fmt.Errorf("phone: region %q is not an ISO 3166 country code the numbering plans know: %w", region, ErrInvalid)
	}
	s := strings.TrimSpace(written)
	if len(s) > maxWritten {
		return fail(fmt.Sprintf("is longer than %d characters", maxWritten))
	}
	for _, p := range []string{"tel:", "fax:"} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			s = strings.TrimSpace(s[len(p):])
		}
	}
	if s == "" {
		return fail("is empty")
	}
	// The characters people write in numbers; a pause (",", "w", "p") may
	// follow an outside-line code. Anything else is refused here, before
	// phonenumbers could read letters as a vanity number or an extension.
	var parts []string // split at pauses
	var cur strings.Builder
	pause := false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			cur.WriteRune(c)
		case c == '+':
			if strings.TrimSpace(cur.String()) != "" { // only at the start (of the number after an outside-line code)
				return fail("has a '+' that is not at the start")
			}
			cur.WriteRune(c)
		case c == ' ' || c == '\t' || c == '\u00a0' || c == '(' || c == ')' || c == '-' || c == '.' || c == '/':
			cur.WriteRune(' ')
		case c == ',' || c == 'w' || c == 'W' || c == 'p' || c == 'P':
			if !pause {
				parts = append(parts, cur.String())
				cur.Reset()
			}
			pause = true
			continue
		case c == '*' || c == '#':
			return fail("holds a feature code (* or #); feature codes are not dialled from a message")
		default:
			return fail(fmt.Sprintf("holds %q; only digits, spaces, + ( ) - . / and a pause after an outside-line code are read", c))
		}
		pause = false
	}
	parts = append(parts, cur.String())
	if len(parts) > 1 && strings.TrimSpace(parts[len(parts)-1]) == "" {
		parts = parts[:len(parts)-1] // a pause at the end dials nothing more
	}
	var access string
	switch {
	case len(parts) == 1:
	case len(parts) == 2 && isAccessCode(parts[0]):
		access = strings.TrimSpace(parts[0])
	default:
		return fail("has digits after a pause (an extension, a calling card, tones); only an outside-line code may come before one")
	}
	num := strings.TrimSpace(parts[len(parts)-1])
	pn, err := parse(num, region)
	if err != nil {
		return fail(err.Error())
	}
	return Number{
		E164:       phonenumbers.Format(pn, phonenumbers.E164),
		Written:    written,
		Region:     phonenumbers.GetRegionCodeForNumber(pn),
		Type:       typeOf[phonenumbers.GetNumberType(pn)],
		AccessCode: access,
		pn:         pn,
	}, nil
}

// isAccessCode: one or two digits, as a PBX's outside-line code.
func isAccessCode(s string) bool {
	s = strings.TrimSpace(s)
	if len(s) == 0 || len(s) > 2 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parse reads a number of digits and spaces, with a leading "+" or "00"
// for a country code. "00" is read as the international prefix in every
// region (phonenumbers reads only the region's own, "011" in North
// America), because senders abroad write it so.
func parse(num, region string) (*phonenumbers.PhoneNumber, error) {
	digits := strings.ReplaceAll(num, " ", "")
	pn, err := phonenumbers.Parse(num, orUnknown(region))
	if (err != nil || !phonenumbers.IsValidNumber(pn)) && strings.HasPrefix(digits, "00") {
		if alt, aerr := phonenumbers.Parse("+"+digits[2:], "ZZ"); aerr == nil && phonenumbers.IsValidNumber(alt) {
			return alt, nil
		}
	}
	switch {
	case errors.Is(err, phonenumbers.ErrInvalidCountryCode) && region == "":
		return nil, errors.New("has no country code")
	case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
		return nil, errors.New("has an unknown country code")
	case errors.Is(err, phonenumbers.ErrTooShortNSN), errors.Is(err, phonenumbers.ErrTooShortAfterIDD), errors.Is(err, phonenumbers.ErrNotANumber):
		return nil, errors.New("is too short to be a phone number")
	case errors.Is(err, phonenumbers.ErrNumTooLong):
		return nil, errors.New("is too long to be a phone number")
	case err != nil:
		return nil, errors.New("is not a phone number")
	}
	if !phonenumbers.IsValidNumber(pn) {
		if region != "" && !strings.HasPrefix(digits, "+") && !strings.HasPrefix(digits, "00") {
			return nil, fmt.Errorf("is not a valid number in %s (nor one with a country code)", region)
		}
		return nil, fmt.Errorf("is not a valid number in +%d", pn.GetCountryCode())
	}
	return pn, nil
}

func orUnknown(region string) string {
	if region == "" {
		return "ZZ"
	}
	return region
}

// Accepted is the forms a number may be written in with a default region,
// for messages: `"+1 201-555-0123", "(201) 555-0123" (a number in US) or
// "0049 30 123456"`.
func Accepted(region string) string {
	foreign := "DE"
	if region == "DE" {
		foreign = "FR"
	}
	fx := phonenumbers.GetExampleNumber(foreign)
	ooc := fmt.Sprintf("%q", "00"+strings.TrimPrefix(phonenumbers.Format(fx, phonenumbers.INTERNATIONAL), "+"))
	if region == "" || !ValidRegion(region) {
		return fmt.Sprintf("%q or %s (with the country code)", phonenumbers.Format(fx, phonenumbers.INTERNATIONAL), ooc)
	}
	ex := phonenumbers.GetExampleNumber(region)
	if ex == nil {
		return fmt.Sprintf("%q or %s (with the country code)", phonenumbers.Format(fx, phonenumbers.INTERNATIONAL), ooc)
	}
	return fmt.Sprintf("%q, %q (a number in %s) or %s", phonenumbers.Format(ex, phonenumbers.INTERNATIONAL),
		phonenumbers.Format(ex, phonenumbers.NATIONAL), region, ooc)
}
