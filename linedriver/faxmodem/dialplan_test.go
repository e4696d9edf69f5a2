package faxmodem

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/linedriver"
	"github.com/mediagw/mediagw/linedriver/faxmodem/modemsim"
	"github.com/mediagw/mediagw/phone"
)

// plan decodes and validates a dial section as ParseOptions does.
func plan(t *testing.T, raw string) DialPlan {
	t.Helper()
	var p DialPlan
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatalf("dial %s: %v", raw, err)
	}
	if err := p.validate(); err != nil {
		t.Fatalf("dial %s: %v", raw, err)
	}
	return p
}

// The dial string per region: national dialling for a number of the
// line's country, the region's international prefix for others, after the
// outside line.
func TestDialString(t *testing.T) {
	tests := []struct {
		dial, number, want string
	}{
		// North America: 1 + area code at home, 011 abroad
		{`{"region": "US"}`, "+12015550123", "12015550123"},
		{`{"region": "US"}`, "(201) 555-0123", "12015550123"},
		{`{"region": "US", "outside_line": "9"}`, "+12015550123", "912015550123"},
		{`{"region": "US", "outside_line": "9,", "deny_types": []}`, "+442079460018", "9,011442079460018"},
		{`{"region": "US", "deny_types": []}`, "+16135550123", "16135550123"}, // Canada: 1 +, not 011
		{`{"region": "CA", "deny_types": []}`, "+12015550123", "12015550123"},
		// United Kingdom: 0 + area code at home, 00 abroad
		{`{"region": "GB"}`, "+442079460018", "02079460018"},
		{`{"region": "GB", "deny_types": []}`, "+12015550123", "0012015550123"},
		{`{"region": "GB", "deny_types": []}`, "+49301234567", "0049301234567"},
		// Germany, behind a PBX that takes 0 for an outside line
		{`{"region": "DE", "outside_line": "0"}`, "+49301234567", "00301234567"},
		{`{"region": "DE", "outside_line": "0W", "deny_types": []}`, "+33140000000", "0W0033140000000"},
		// France
		{`{"region": "FR"}`, "+33140000000", "0140000000"},
		{`{"region": "FR", "deny_types": []}`, "+442079460018", "00442079460018"},
		// Italy keeps the leading 0 after the country code
		{`{"region": "GB", "deny_types": []}`, "+390612345678", "00390612345678"},
		// a region's prefix named by hand
		{`{"region": "US", "international_prefix": "01015", "deny_types": []}`, "+442079460018", "01015442079460018"},
		{`{"region": "US", "international_prefix": "01015"}`, "+12015550123", "12015550123"},
		// toll free is dialled like any number of the country
		{`{"region": "US"}`, "1-800-555-0199", "18005550199"},
		{`{"region": "GB"}`, "0800 123 4567", "08001234567"},
	}
	for _, tt := range tests {
		p := plan(t, tt.dial)
		c, err := p.Check(tt.number)
		if err != nil {
			t.Errorf("dial %s: Check(%q): %v", tt.dial, tt.number, err)
			continue
		}
		if c.Dial != tt.want {
			t.Errorf("dial %s: Check(%q) dials %q, want %q", tt.dial, tt.number, c.Dial, tt.want)
		}
	}
}

// The policy: number types from the numbering plan, international by
// region, allow and deny patterns.
func TestDialPolicy(t *testing.T) {
	us := `{"region": "US"}`
	tests := []struct {
		dial, number string
		ok           bool
		says         string
	}{
		// premium-rate numbers of three countries, refused by default
		{us, "+1 900 555 0199", false, "is a premium-rate number"},
		{us, "1-900-555-0199", false, "is a premium-rate number"},
		{`{"region": "GB"}`, "09065 123456", false, "is a premium-rate number"},
		{`{"region": "GB"}`, "0909 879 0000", false, "is a premium-rate number"},
		{`{"region": "DE"}`, "0900 1 234567", false, "is a premium-rate number"},
		{`{"region": "FR"}`, "08 99 12 34 56", false, "is a premium-rate number"},
		// shared cost, refused by default
		{`{"region": "DE"}`, "0180 1 234567", false, "is a shared-cost number"},
		{`{"region": "FR"}`, "0810 12 34 56", false, "is a shared-cost number"},
		// toll free: allowed by default (the caller pays nothing)
		{us, "1-800-555-0199", true, ""},
		{`{"region": "GB"}`, "0800 123 4567", true, ""},
		// international, refused by default; Jamaica shares +1 and is abroad
		{us, "+44 20 7946 0018", false, "is international (GB; the line is in US)"},
		{us, "+1 876 555 0123", false, "is international (JM"},
		{`{"region": "GB"}`, "+49 30 1234567", false, "is international"},
		{us, "+882 34 2 1234", false, "is international (a non-geographic number"},
		// an allow pattern lets an international number through, never a type
		{`{"region": "US", "allow": ["+44 20*"]}`, "+44 20 7946 0018", true, ""},
		{`{"region": "US", "allow": ["+44*"]}`, "+44 909 879 0000", false, "is a premium-rate number"},
		{`{"region": "US", "allow": ["+44 20*"]}`, "+1 201 555 0123", false, "matches no allowed pattern"},
		{`{"region": "US", "allow": ["+1201555XXXX"]}`, "+1 201 555 0123", true, ""},
		{`{"region": "US", "allow": ["+1201555XXXX"]}`, "+1 201 555 01234", false, ""}, // not a valid number
		// deny wins over everything
		{`{"region": "US", "deny": ["+1 201 555 0199"]}`, "(201) 555-0199", false, `matches the denied pattern "+12015550199"`},
		{`{"region": "US", "allow": ["+1*"], "deny": ["+1201*"]}`, "+1 201 555 0123", false, "denied pattern"},
		// the types refused are configurable: none, or more
		{`{"region": "US", "deny_types": []}`, "+1 900 555 0199", true, ""},
		{`{"region": "US", "deny_types": []}`, "+44 20 7946 0018", true, ""},
		{`{"region": "US", "deny_types": ["toll_free"]}`, "1-800-555-0199", false, "is a toll-free number (toll_free in dial.deny_types)"},
		{`{"region": "GB", "deny_types": ["mobile"]}`, "07400 123456", false, "is a mobile number"},
		// what the map would have refused is refused here too
		{us, "*67 201 555 0123", false, "feature code"},
		{us, "201 555 0123, 011 44 20 7946 0018", false, "after a pause"},
		{us, "201-555-0123; ATH", false, "holds ';'"},
		// an outside-line code written in front is dropped (the plan dials its own) and the checks still see the number
		{us, "9, 1 900 555 0199", false, "is a premium-rate number"},
		{us, "9,201 555 0123", true, ""},
	}
	for _, tt := range tests {
		p := plan(t, tt.dial)
		c, err := p.Check(tt.number)
		if tt.ok {
			if err != nil {
				t.Errorf("dial %s: Check(%q): %v", tt.dial, tt.number, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("dial %s: Check(%q) = %+v, want a refusal", tt.dial, tt.number, c)
			continue
		}
		if !errors.Is(err, ErrDenied) && !errors.Is(err, phone.ErrInvalid) {
			t.Errorf("dial %s: Check(%q) = %v, want ErrDenied or phone.ErrInvalid", tt.dial, tt.number, err)
		}
		if !strings.Contains(err.Error(), tt.says) {
			t.Errorf("dial %s: Check(%q) = %v, want it to say %q", tt.dial, tt.number, err, tt.says)
		}
	}
}

// Options of earlier versions fail with the name of what replaced them;
// bad settings name their key.
func TestDialOptions(t *testing.T) {
	tests := []struct {
		options, says string
	}{
		{`"dial": {}`, "dial.region is required"},
		{`"dial": {"region": "USA"}`, `dial.region "USA" is not an ISO 3166`},
		{`"dial": {"region": "US", "premium": ["900*"]}`, "dial.premium was removed: number types come from the numbering plan now; deny_types"},
		{`"dial": {"region": "US", "international_prefixes": ["011"]}`, "dial.international_prefixes was removed"},
		{`"dial": {"region": "US", "outside_line": ["9"]}`, `dial.outside_line is one code now, not a list (outside_line: "9")`},
		{`"dial": {"region": "US", "allow": ["011*"]}`, `dial.allow[0]: "011*" is not an E.164 pattern`},
		{`"dial": {"region": "US", "deny": ["+1 (900) *"]}`, ""}, // fine: punctuation dropped
		{`"dial": {"region": "US", "deny": ["+1*9"]}`, `dial.deny[0]: "+1*9"`},
		{`"dial": {"region": "US", "deny_types": ["premium"]}`, `dial.deny_types[0]: "premium" is not a number type (international, fixed_line`},
		{`"dial": {"region": "US", "outside_line": "9;H"}`, `dial.outside_line "9;H"`},
		{`"dial": {"region": "US", "international_prefix": "+"}`, `dial.international_prefix "+"`},
		{`"dial": {"region": "US", "ougside_line": "9"}`, `unknown field "ougside_line"`},
		{`"dial": {"region": "US"}, "devices": [{"device": "/dev/ttyS0", "dial_prefix": "T9,"}]`, "dial_prefix was removed: the outside-line code goes in the driver's dial.outside_line, the modem's dial modifiers (T, P, W, ',') in dial_modifiers"},
		{`"dial": {"region": "US"}, "devices": [{"device": "/dev/ttyS0", "dial_modifiers": "T9"}]`, "dial_modifiers \"T9\""},
	}
	for _, tt := range tests {
		raw := `{"devices": [{"device": "/dev/ttyS0"}], ` + tt.options + `}`
		if strings.Contains(tt.options, `"devices"`) {
			raw = `{` + tt.options + `}`
		}
		_, err := ParseOptions(json.RawMessage(raw))
		switch {
		case tt.says == "" && err != nil:
			t.Errorf("%s: %v", tt.options, err)
		case tt.says != "" && (err == nil || !strings.Contains(err.Error(), tt.says)):
			t.Errorf("%s: err = %v, want it to say %q", tt.options, err, tt.says)
		}
	}
}

// The modem dials its own modifiers, then the plan's outside line and
// number; the header line shows the number for people to read.
func TestDialledByModem(t *testing.T) {
	d, l := newLab(t, map[string][]modemsim.Remote{"ttyS0": {{}}}, `, "dial": {"region": "US", "outside_line": "9,"}`)
	d.opts.Devices[0].DialModifiers = "T"
	d.pool = NewPool(d.opts.Devices, d.pool.reprobe)
	job := textJob(3)
	job.Record.Fields["fax_number"] = "+1 (201) 555-0100"
	out := d.Deliver(l.ctx, job, nil)
	if out.Result != linedriver.Delivered {
		t.Fatalf("deliver: %+v", out)
	}
	if cmds := strings.Join(l.sims[0].Commands(), " "); !strings.Contains(cmds+" ", " ATDT9,12015550100 ") {
		t.Fatalf("commands %s, want ATDT9,12015550100", cmds)
	}
	if out.Details["number"] != "+12015550100" || out.Details["dialled"] != "T9,12015550100" {
		t.Errorf("details %v", out.Details)
	}
	for _, rec := range []map[string]string{{"fax_number": "+19005550199"}, {"fax_number": "555-0100"}, {}} {
		job.Record.Fields = rec
		if o := d.Deliver(l.ctx, job, nil); o.Result != linedriver.Permanent || o.Category != "dial_policy" {
			t.Errorf("fax_number %q: %+v, want a permanent dial_policy failure", rec["fax_number"], o)
		}
		if err := d.Check(&job.Record); err == nil {
			t.Errorf("Check accepted fax_number %q", rec["fax_number"])
		}
	}
	if err := d.Check(&linedriver.Record{Fields: map[string]string{"fax_number": "+12015550100"}}); err == nil {
		t.Error("record without documents accepted")
	}
}

// FuzzCheck: whatever number a mail brings, the plan refuses it or dials
// its outside line and digits only: nothing a modem would read as a
// command or a feature code.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"+1 (201) 555-0100", "T9,W5550100", "9,1 900 555 0199", "*67 201 555 0100", "0044 20 7946 0018", "201 555 0100;H"} {
		f.Add(s)
	}
	plans := []DialPlan{{Region: "US", OutsideLine: "9,"}, {Region: "GB", DenyTypes: []string{}}, {Region: "DE", OutsideLine: "0"}}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range plans {
			c, err := p.Check(s)
			if err != nil {
				if !errors.Is(err, ErrDenied) && !errors.Is(err, phone.ErrInvalid) {
					t.Fatalf("%+v: Check(%q): untyped error %v", p, s, err)
				}
				continue
			}
			rest, ok := strings.CutPrefix(c.Dial, p.OutsideLine)
			if !ok || rest == "" || strings.Trim(rest, "0123456789") != "" {
				t.Fatalf("%+v: Check(%q) dials %q", p, s, c.Dial)
			}
			if c.Number.Type == phone.PremiumRate && p.DenyTypes == nil {
				t.Fatalf("%+v: Check(%q) lets a premium-rate number through", p, s)
			}
		}
	})
}
