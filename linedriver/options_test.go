package linedriver

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

type testDuration time.Duration

func (d *testDuration) UnmarshalJSON(b []byte) error {
	v, err := time.ParseDuration(string(b[1 : len(b)-1]))
	*d = testDuration(v)
	return err
}

type testDevice struct {
	Device string `json:"device"`
	Class  string `json:"class,omitempty"`
}

// testDial decodes itself, strictly, and names what replaced a removed key.
type testDial struct {
	Outside string `json:"outside"`
}

var errRemoved = errors.New("prefix was removed: write outside")

func (d *testDial) UnmarshalJSON(b []byte) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	if _, ok := keys["prefix"]; ok {
		return errRemoved
	}
	type plain testDial
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode((*plain)(d))
}

type testBase struct {
	Header string `json:"header"`
}

type testOptions struct {
	testBase
	Devices []testDevice          `json:"devices"`
	Retry   struct{ Max int }     `json:"retry"`
	Labels  map[string]testDevice `json:"labels"`
	Wait    testDuration          `json:"wait"`
	Dial    testDial              `json:"dial"`
	Hook    func()                `json:"-"`
}

func TestDecodeOptions(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		key       string   // of the *OptionError; "-" for no error
		valid     []string // for an unknown key
		unknown   bool
		cause     error // errors.Is, besides ErrUnknownOption
	}{
		{"empty", ``, "-", nil, false, nil},
		{"all known", `{"header":"h","devices":[{"device":"/dev/x","class":"1"}],"retry":{"Max":3},"labels":{"a":{"device":"d"}},"wait":"3s"}`, "-", nil, false, nil},
		{"keys match without regard to case, as encoding/json does", `{"Header":"h","retry":{"max":1}}`, "-", nil, false, nil},
		{"unknown top-level key", `{"header":"h","dail":{}}`, "dail", []string{"devices", "dial", "header", "labels", "retry", "wait"}, true, nil},
		{"unknown key in a list item", `{"devices":[{"device":"a"},{"device":"b","clas":"2"}]}`, "devices.1.clas", []string{"class", "device"}, true, nil},
		{"unknown key in a map value", `{"labels":{"x":{"dev":"d"}}}`, "labels.x.dev", []string{"class", "device"}, true, nil},
		{"a value that decodes itself (a duration) is not walked", `{"wait":"5s"}`, "-", nil, false, nil},
		{"the hidden field is no key", `{"Hook":1}`, "Hook", []string{"devices", "dial", "header", "labels", "retry", "wait"}, true, nil},
		{"wrong type", `{"devices":[{"device":7}]}`, "devices.device", nil, false, nil},
		{"not JSON", `{`, "", nil, false, nil},
		{"a struct that decodes itself", `{"dial":{"outside":"9"}}`, "-", nil, false, nil},
		{"its unknown key, at its path, in its own words", `{"dial":{"outsid":"9"}}`, "dial.outsid", []string{"outside"}, false, nil},
		{"its removed key, at its path, with its replacement", `{"dial":{"prefix":"9"}}`, "dial.prefix", []string{"outside"}, false, errRemoved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o testOptions
			err := DecodeOptions([]byte(tc.raw), &o)
			if tc.key == "-" {
				if err != nil {
					t.Fatalf("DecodeOptions = %v, want nil", err)
				}
				return
			}
			var oe *OptionError
			if !errors.As(err, &oe) {
				t.Fatalf("DecodeOptions = %v, want an *OptionError", err)
			}
			if oe.Key != tc.key {
				t.Errorf("key %q, want %q (%v)", oe.Key, tc.key, err)
			}
			if !slices.Equal(oe.Valid, tc.valid) {
				t.Errorf("valid keys %v, want %v", oe.Valid, tc.valid)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("errors.Is(err, %v) = false (%v)", tc.cause, err)
			}
			if errors.Is(err, ErrUnknownOption) != tc.unknown {
				t.Errorf("errors.Is(err, ErrUnknownOption) = %v, want %v (%v)", !tc.unknown, tc.unknown, err)
			}
		})
	}
}
