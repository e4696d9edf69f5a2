// Package secret holds configuration values that must never reach a log: client
// secrets, passwords, tokens. A Secret prints as [redacted] in every format, and
// its value may be given inline or as a reference: "env:NAME" reads an
// environment variable, "file:PATH" reads a file (trailing newline trimmed).
package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Redacted is what a Secret prints as.
const Redacted = "[redacted]"

// Secret is a sensitive string. The zero value is empty.
type Secret struct {
	value string
	ref   string // "env:NAME" or "file:PATH" when given by reference
}

// New returns a Secret holding value as it is.
func New(value string) Secret { return Secret{value: value} }

// Resolve turns a config string into a Secret: "env:NAME" and "file:PATH" are
// read now; anything else is taken literally.
func Resolve(s string) (Secret, error) {
	switch {
	case strings.HasPrefix(s, "env:"):
		name := strings.TrimPrefix(s, "env:")
		v, ok := os.LookupEnv(name)
		if !ok {
			return Secret{}, fmt.Errorf("secret: environment variable %s is not set", name)
		}
		return Secret{value: v, ref: s}, nil
	case strings.HasPrefix(s, "file:"):
		path := strings.TrimPrefix(s, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			// The error names the file, never its content.
			return Secret{}, fmt.Errorf("secret: read %s: %w", path, unwrapPathErr(err))
		}
		return Secret{value: strings.TrimRight(string(b), "\r\n"), ref: s}, nil
	default:
		return Secret{value: s}, nil
	}
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// Reveal returns the secret value. Call it only where the value is used.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.value == "" }

// Ref returns the reference the secret was given by ("env:NAME", "file:PATH"),
// or "" for an inline value. References are safe to log.
func (s Secret) Ref() string { return s.ref }

func (s Secret) String() string   { return Redacted }
func (s Secret) GoString() string { return Redacted }

// Format makes every fmt verb print [redacted], %x and %q included.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue keeps the value out of log/slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON writes [redacted]; use Reveal to send the value on purpose.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }

// MarshalText writes [redacted].
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// UnmarshalJSON reads a string and resolves env:/file: references.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var raw string
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("secret: want a string")
	}
	v, err := Resolve(raw)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// UnmarshalYAML reads a scalar and resolves env:/file: references.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: secret must be a string", n.Line)
	}
	v, err := Resolve(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = v
	return nil
}
