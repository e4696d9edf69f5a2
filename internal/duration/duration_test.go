package duration

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, json, yaml string
		want             time.Duration
		bad              bool
	}{
		{name: "string", json: `"90s"`, yaml: `90s`, want: 90 * time.Second},
		{name: "hours", json: `"72h"`, yaml: `72h`, want: 72 * time.Hour},
		{name: "seconds", json: `30`, yaml: `30`, want: 30 * time.Second},
		{name: "fraction", json: `1.5`, yaml: `1.5`, want: 1500 * time.Millisecond},
		{name: "words", json: `"two weeks"`, yaml: `two weeks`, bad: true},
		{name: "list", json: `[1]`, yaml: `[1]`, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var j struct{ D Duration }
			err := json.Unmarshal([]byte(`{"D":`+tc.json+`}`), &j)
			check(t, "json", err, time.Duration(j.D), tc.want, tc.bad)
			var y struct{ D Duration }
			err = yaml.Unmarshal([]byte("d: "+tc.yaml+"\n"), &y)
			check(t, "yaml", err, time.Duration(y.D), tc.want, tc.bad)
			if tc.bad && err != nil && !strings.Contains(err.Error(), "line 1") {
				t.Errorf("yaml error %q does not name the line", err)
			}
		})
	}
}

func check(t *testing.T, format string, err error, got, want time.Duration, bad bool) {
	t.Helper()
	switch {
	case bad && !errors.Is(err, ErrSyntax):
		t.Errorf("%s: err %v, want ErrSyntax", format, err)
	case !bad && err != nil:
		t.Errorf("%s: %v", format, err)
	case !bad && got != want:
		t.Errorf("%s: got %v, want %v", format, got, want)
	}
}

func TestEncode(t *testing.T) {
	d := Duration(90 * time.Second)
	b, err := json.Marshal(d)
	if err != nil || string(b) != `"1m30s"` {
		t.Fatalf("json: %s, %v", b, err)
	}
	y, err := yaml.Marshal(struct{ D Duration }{d})
	if err != nil || string(y) != "d: 1m30s\n" {
		t.Fatalf("yaml: %q, %v", y, err)
	}
}
