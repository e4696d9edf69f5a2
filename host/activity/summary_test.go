package activity

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestSummary: the feed shows the fields an operator looks for first,
// never a field named like a secret, on one line of bounded length.
func TestSummary(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, tc := range []struct {
		name   string
		fields map[string]string
		want   string
	}{
		{"fax first", map[string]string{"subject": "Order 7", "recipient": "London office", "fax_number": "+442079460018", "fax_number_as_written": "+44 20 7946 0018"},
			`fax_number_as_written="+44 20 7946 0018" fax_number=+442079460018 recipient="London office" subject="Order 7"`},
		{"secrets left out", map[string]string{"fax_number": "+12015550142", "password": "hunter2", "api_token": "t0k", "door_pin": "1234", "client_secret": "s3c", "key": "k"},
			`fax_number=+12015550142`},
		{"one line", map[string]string{"recipient": "Olga\r\nSmith\t(ops)"}, `recipient="Olga Smith (ops)"`},
		{"long value", map[string]string{"note": long}, "note=" + strings.Repeat("x", 59) + "…"},
		{"empty", map[string]string{"fax_number": ""}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summary(tc.fields); got != tc.want {
				t.Errorf("Summary = %s\nwant      %s", got, tc.want)
			}
		})
	}
	many := map[string]string{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		many[k] = long
	}
	if got := Summary(many); utf8.RuneCountInString(got) > maxSummary+2 || !strings.HasSuffix(got, " …") {
		t.Errorf("eight long fields: %d characters: %s", utf8.RuneCountInString(got), got)
	}
}
