// Package duration is the one Duration type of configuration files and
// options: a Go duration string ("30s", "5m", "72h") or a number of seconds,
// in YAML and in JSON alike.
package duration

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration that reads "90s", "5m" or a number of seconds
// and writes itself as a duration string.
type Duration time.Duration

// ErrSyntax is what every unreadable duration wraps.
var ErrSyntax = errors.New(`not a duration (write e.g. 30s, 5m, 72h, or a number of seconds)`)

// Parse reads a Go duration string or a number of seconds.
func Parse(s string) (Duration, error) {
	if v, err := time.ParseDuration(s); err == nil {
		return Duration(v), nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return Duration(n * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("%q is %w", s, ErrSyntax)
}

// String is the Go duration string.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalJSON accepts a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("%s is %w", b, ErrSyntax)
		}
		*d = Duration(n * float64(time.Second))
		return nil
	}
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalYAML accepts a duration string or a number of seconds; a problem
// names the node's line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %w", n.Line, ErrSyntax)
	}
	v, err := Parse(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
