package faxmodem

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/mediagw/mediagw/phone"
)

// DialPlan is the one place where a number becomes a dial string, and where
// the gateway decides whether it may dial it at all. An email-to-fax gateway
// is a toll-fraud target: by default premium-rate, shared-cost and
// international numbers are refused.
//
// Numbers arrive as E.164 (the data map makes them so); a number written
// otherwise is read as a number of Region. The dial string is the outside
// line, then the number as dialled from Region (national dialling for a
// number in the same country, the region's international prefix and the
// country code otherwise), after the device's dial_modifiers.
type DialPlan struct {
	// Region is the ISO 3166 code of the country the line is in ("US",
	// "GB", "DE"). Required.
	Region string `json:"region"`
	// OutsideLine is dialled first to get an outside line from a PBX, with
	// a pause if the PBX needs one ("9", "9,", "0W").
	OutsideLine string `json:"outside_line,omitempty"`
	// InternationalPrefix overrides the region's international prefix, for
	// the few regions that have several and no preferred one.
	InternationalPrefix string `json:"international_prefix,omitempty"`
	// Allow: when not empty, only numbers matching one of these may be
	// dialled; a match also lifts the denial of international numbers
	// (never that of a number type). Patterns are E.164: "+" and digits,
	// 'X' for any one digit, '*' at the end for anything after
	// ("+44*", "+1201555XXXX").
	Allow []string `json:"allow,omitempty"`
	// Deny: numbers matching any of these are refused, whatever else says.
	Deny []string `json:"deny,omitempty"`
	// DenyTypes are the number types refused (default premium_rate,
	// shared_cost, international); see phone.Types. "international" is any
	// number of another region than Region. An empty list refuses none.
	DenyTypes []string `json:"deny_types,omitempty"`
}

// DefaultDenyTypes are refused when deny_types is not given.
var DefaultDenyTypes = []string{string(phone.PremiumRate), string(phone.SharedCost), International}

// International is the deny_types entry for numbers of another region.
const International = "international"

// ErrDenied is returned for a number the dial plan refuses.
var ErrDenied = errors.New("faxmodem: number refused by the dial policy")

// removed are keys of earlier versions, with what replaced them.
var removedDialKeys = map[string]string{
	"international_prefixes": "numbers are E.164 now and dial.region says which are international; deny_types: [international] (the default) refuses them, allow patterns such as \"+44*\" let some through",
	"premium":                "number types come from the numbering plan now; deny_types (default premium_rate, shared_cost, international) refuses premium-rate numbers",
}

// UnmarshalJSON decodes strictly and names the replacement of a removed key.
func (p *DialPlan) UnmarshalJSON(b []byte) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	var errs []error
	for k, why := range removedDialKeys {
		if _, ok := keys[k]; ok {
			errs = append(errs, fmt.Errorf("dial.%s was removed: %s", k, why))
		}
	}
	if v, ok := keys["outside_line"]; ok && bytes.HasPrefix(bytes.TrimSpace(v), []byte("[")) {
		errs = append(errs, errors.New(`dial.outside_line is one code now, not a list (outside_line: "9"); it is dialled by the driver, so take it out of the data map's numbers`))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	type plain DialPlan
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode((*plain)(p)); err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	return nil
}

// validate checks the plan and writes its patterns in canonical form.
func (p *DialPlan) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("dial."+format, args...)) }
	switch {
	case p.Region == "":
		bad("region is required: the ISO 3166 code of the country the line is in (US, GB, DE, …)")
	case !phone.ValidRegion(p.Region):
		bad("region %q is not an ISO 3166 country code (US, GB, DE, …)", p.Region)
	}
	if strings.Trim(strings.ToUpper(p.OutsideLine), "0123456789*#,W") != "" {
		bad("outside_line %q: digits, * and #, and the pauses ',' and 'W' only", p.OutsideLine)
	}
	p.OutsideLine = strings.ToUpper(p.OutsideLine)
	if strings.Trim(p.InternationalPrefix, "0123456789") != "" {
		bad("international_prefix %q: digits only", p.InternationalPrefix)
	}
	if p.Region != "" && phone.ValidRegion(p.Region) && p.InternationalPrefix == "" {
		if f := phonenumbers.FormatOutOfCountryCallingNumber(phonenumbers.GetExampleNumber(foreignOf(p.Region)), p.Region); strings.HasPrefix(f, "+") {
			bad("international_prefix: %s has more than one international prefix; name the one this line dials", p.Region)
		}
	}
	for name, list := range map[string][]string{"allow": p.Allow, "deny": p.Deny} {
		for i, pat := range list {
			c, err := pattern(pat)
			if err != nil {
				bad("%s[%d]: %v", name, i, err)
				continue
			}
			list[i] = c
		}
	}
	for i, t := range p.DenyTypes {
		if t != International && !slices.Contains(phone.Types, phone.Type(t)) {
			names := []string{International}
			for _, t := range phone.Types {
				names = append(names, string(t))
			}
			bad("deny_types[%d]: %q is not a number type (%s)", i, t, strings.Join(names, ", "))
		}
	}
	return errors.Join(errs...)
}

func foreignOf(region string) string {
	if region == "DE" {
		return "FR"
	}
	return "DE"
}

// pattern checks an allow or deny pattern and drops the spaces and
// punctuation people write in numbers.
func pattern(p string) (string, error) {
	var b strings.Builder
	for i, c := range strings.TrimSpace(p) {
		switch {
		case c == '+' && b.Len() == 0, c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == 'X' || c == 'x':
			b.WriteByte('X')
		case c == '*' && i == len(strings.TrimSpace(p))-1:
			b.WriteRune(c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", fmt.Errorf("%q: patterns are E.164 numbers: '+' and digits, 'X' for one digit, '*' at the end", p)
		}
	}
	s := b.String()
	if !strings.HasPrefix(s, "+") {
		return "", fmt.Errorf("%q is not an E.164 pattern: numbers are E.164 now, so start with + and the country code (\"+44*\", \"+1900*\")", p)
	}
	return s, nil
}

// match reports whether an E.164 number matches a canonical pattern.
func match(pat, number string) bool {
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		if c == '*' {
			return true
		}
		if i >= len(number) {
			return false
		}
		if c == 'X' {
			if number[i] < '0' || number[i] > '9' {
				return false
			}
			continue
		}
		if c != number[i] {
			return false
		}
	}
	return len(pat) == len(number)
}

func matchAny(patterns []string, number string) (string, bool) {
	for _, p := range patterns {
		if c, err := pattern(p); err == nil && match(c, number) {
			return p, true
		}
	}
	return "", false
}

// Call is a number the plan lets through and the digits that dial it.
type Call struct {
	Number phone.Number
	// Dial is the outside line and the number as dialled from the region,
	// without the device's dial modifiers.
	Dial string
}

// Check reads a number (E.164, or as written in Region), applies the policy
// and makes the dial string. A refusal wraps ErrDenied; a number that cannot
// be read wraps phone.ErrInvalid.
func (p DialPlan) Check(number string) (Call, error) {
	if p.Region == "" {
		return Call{}, errors.New("faxmodem: dial.region is not set")
	}
	n, err := phone.Parse(number, p.Region)
	if err != nil {
		return Call{}, fmt.Errorf("faxmodem: fax number %w", err)
	}
	if pat, ok := matchAny(p.Deny, n.E164); ok {
		return Call{}, fmt.Errorf("%w: %s matches the denied pattern %q", ErrDenied, n.E164, pat)
	}
	_, allowed := matchAny(p.Allow, n.E164)
	if len(p.Allow) > 0 && !allowed {
		return Call{}, fmt.Errorf("%w: %s matches no allowed pattern", ErrDenied, n.E164)
	}
	deny := p.DenyTypes
	if deny == nil {
		deny = DefaultDenyTypes
	}
	if slices.Contains(deny, string(n.Type)) {
		return Call{}, fmt.Errorf("%w: %s is %s (%s in dial.deny_types)", ErrDenied, n.E164, n.Type.Describe(), n.Type)
	}
	if n.Region != p.Region && !allowed && slices.Contains(deny, International) {
		return Call{}, fmt.Errorf("%w: %s is international (%s; the line is in %s)", ErrDenied, n.E164, regionName(n.Region), p.Region)
	}
	digits, err := p.dial(n)
	if err != nil {
		return Call{}, err
	}
	return Call{Number: n, Dial: p.OutsideLine + digits}, nil
}

func regionName(r string) string {
	if r == "001" || r == "" {
		return "a non-geographic number"
	}
	return r
}

// dial is the number as dialled from the region: national dialling for a
// number of the same country, else the international prefix and the
// country code (phonenumbers' out-of-country format).
func (p DialPlan) dial(n phone.Number) (string, error) {
	pn := n.PhoneNumber()
	var s string
	if p.InternationalPrefix != "" && n.CountryCode() != phonenumbers.GetCountryCodeForRegion(p.Region) &&
		!(n.CountryCode() == 1 && phonenumbers.IsNANPACountry(p.Region)) {
		s = p.InternationalPrefix + strconv.Itoa(n.CountryCode()) + phonenumbers.GetNationalSignificantNumber(pn)
	} else {
		s = phonenumbers.FormatOutOfCountryCallingNumber(pn, p.Region)
		if strings.HasPrefix(s, "+") {
			return "", fmt.Errorf("faxmodem: %s: %s has no single international prefix; set dial.international_prefix", n.E164, p.Region)
		}
	}
	var b strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String(), nil
}
