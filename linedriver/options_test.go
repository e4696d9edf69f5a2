package linedriver

import (
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

type testBase struct {
	Header string `json:"header"`
}

type testOptions struct {
	testBase
	Devices []testDevice          `json:"devices"`
	Retry   struct{ Max int }     `json:"retry"`
	Labels  map[string]testDevice `json:"labels"`
	Wait    testDuration          `json:"wait"`
	Hook    func()                `json:"-"`
}

func TestDecodeOptions(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		key       string   // of the *OptionError; "-" for no error
		valid     []string // for an unknown key
		unknown   bool
	}{
		{"empty", ``, "-", nil, false},
		{"all known", `{"header":"h","devices":[{"device":"/dev/x","class":"1"}],"retry":{"Max":3},"labels":{"a":{"device":"d"}},"wait":"3s"}`, "-", nil, false},
		{"keys match without regard to case, as encoding/json does", `{"Header":"h","retry":{"max":1}}`, "-", nil, false},
		{"unknown top-level key", `{"header":"h","dail":{}}`, "dail", []string{"devices", "header", "labels", "retry", "wait"}, true},
		{"unknown key in a list item", `{"devices":[{"device":"a"},{"device":"b","clas":"2"}]}`, "devices.1.clas", []string{"class", "device"}, true},
		{"unknown key in a map value", `{"labels":{"x":{"dev":"d"}}}`, "labels.x.dev", []string{"class", "device"}, true},
		{"a type that decodes itself is not walked", `{"wait":"5s"}`, "-", nil, false},
		{"the hidden field is no key", `{"Hook":1}`, "Hook", []string{"devices", "header", "labels", "retry", "wait"}, true},
		{"wrong type", `{"devices":[{"device":7}]}`, "devices.device", nil, false},
		{"not JSON", `{`, "", nil, false},
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
			if errors.Is(err, ErrUnknownOption) != tc.unknown {
				t.Errorf("errors.Is(err, ErrUnknownOption) = %v, want %v (%v)", !tc.unknown, tc.unknown, err)
			}
		})
	}
}
