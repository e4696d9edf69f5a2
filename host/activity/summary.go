package activity

import (
	"slices"
	"sort"
	"strings"
	"unicode"
)

// Caps of what a mapped mail's summary shows: each value, and the whole.
const (
	maxValue   = 60
	maxSummary = 240
)

// first are shown before the other fields, in this order.
var first = []string{"fax_number_as_written", "fax_number", "recipient", "to", "sender", "from", "subject"}

// Summary is a one-line view of a record's fields for the activity log and
// the console's feed: `fax_number=+12015550142 recipient="London office"`,
// the fields an operator looks for first, each value at most 60 characters
// and the whole at most 240. A field whose name says it holds a secret
// (password, token, pin, …) is left out.
func Summary(fields map[string]string) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		if fields[k] != "" && !secretName(k) {
			names = append(names, k)
		}
	}
	rank := func(k string) int {
		if i := slices.Index(first, k); i >= 0 {
			return i
		}
		return len(first)
	}
	sort.Slice(names, func(i, j int) bool {
		if ri, rj := rank(names[i]), rank(names[j]); ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	var b strings.Builder
	for _, k := range names {
		part := k + "=" + quote(clip(fields[k], maxValue))
		if b.Len() > 0 && b.Len()+1+len(part) > maxSummary {
			b.WriteString(" …")
			break
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(part)
	}
	return b.String()
}

// secretName reports whether a field's name says it holds a secret.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"pass", "secret", "token", "credential", "apikey", "api_key", "private"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	for _, part := range strings.FieldsFunc(n, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		switch part {
		case "pin", "pwd", "otp", "key", "auth", "code", "cvv":
			return true
		}
	}
	return false
}

// Clip makes a value one line of at most 60 characters, as Summary shows it.
func Clip(v string) string { return clip(v, maxValue) }

// clip makes v one line of at most n characters.
func clip(v string, n int) string {
	v = strings.Join(strings.FieldsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if r := []rune(v); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return v
}

func quote(v string) string {
	if v == "" || strings.ContainsAny(v, " \"=") {
		return `"` + strings.ReplaceAll(v, `"`, `'`) + `"`
	}
	return v
}
