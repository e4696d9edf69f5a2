package linedriver

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// ErrUnknownOption is the cause of an OptionError for a key the driver does
// not know.
var ErrUnknownOption = errors.New("unknown key")

// OptionError is a problem with one key of a driver's options, so that the
// host can point at that key's line in the config file.
type OptionError struct {
	// Key is the dotted path of the key ("devices.0.class"); "" when the
	// problem is with the options as a whole.
	Key string
	// Valid lists the keys allowed beside Key, for an unknown key.
	Valid []string
	Err   error
}

func (e *OptionError) Error() string {
	var b strings.Builder
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Err.Error())
	if len(e.Valid) > 0 {
		b.WriteString(" (valid keys: " + strings.Join(e.Valid, ", ") + ")")
	}
	return b.String()
}

func (e *OptionError) Unwrap() error { return e.Err }

// DecodeOptions decodes a driver's JSON options strictly into v, a pointer
// to a struct with json tags. An unknown key or a value of the wrong type is
// an *OptionError naming the key; an unknown key also lists the valid ones.
//
// A struct type that decodes itself (UnmarshalJSON) has the last word on
// its keys: a key it does not know is reported with the type's own error
// (e.g. one naming what replaced a removed key), at that key's path.
func DecodeOptions(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return &OptionError{Err: err}
	}
	unknown := unknownKey(tree, reflect.TypeOf(v), "", false)
	if unknown != nil && !unknown.selfDecoded {
		return &OptionError{Key: unknown.key, Valid: unknown.valid, Err: ErrUnknownOption}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			return &OptionError{Key: te.Field, Err: fmt.Errorf("got a %s, want %s", te.Value, kindName(te.Type))}
		case unknown != nil:
			return &OptionError{Key: unknown.key, Valid: unknown.valid, Err: err}
		}
		return &OptionError{Err: err}
	}
	return nil
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// unknownOption is a key a struct has no field for.
type unknownOption struct {
	key   string
	valid []string
	// selfDecoded: the key is inside a struct that decodes itself.
	selfDecoded bool
}

// unknownKey walks a decoded JSON value beside the Go type it is meant for
// and returns the first key the type has no field for.
func unknownKey(v any, t reflect.Type, path string, selfDecoded bool) *unknownOption {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		if t.Kind() != reflect.Struct {
			return nil // a value that decodes itself (a duration, …)
		}
		selfDecoded = true
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil // a type error, for the decoder to report
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(obj) {
			ft, ok := fields[k]
			if !ok {
				// encoding/json also matches keys case-insensitively.
				for name, f := range fields {
					if strings.EqualFold(name, k) {
						ft, ok = f, true
						break
					}
				}
			}
			if !ok {
				valid := make([]string, 0, len(fields))
				for name := range fields {
					valid = append(valid, name)
				}
				sort.Strings(valid)
				return &unknownOption{key: join(path, k), valid: valid, selfDecoded: selfDecoded}
			}
			if u := unknownKey(obj[k], ft, join(path, k), selfDecoded); u != nil {
				return u
			}
		}
	case reflect.Map:
		if obj, ok := v.(map[string]any); ok {
			for _, k := range sortedKeys(obj) {
				if u := unknownKey(obj[k], t.Elem(), join(path, k), selfDecoded); u != nil {
					return u
				}
			}
		}
	case reflect.Slice, reflect.Array:
		if arr, ok := v.([]any); ok {
			for i, x := range arr {
				if u := unknownKey(x, t.Elem(), join(path, strconv.Itoa(i)), selfDecoded); u != nil {
					return u
				}
			}
		}
	}
	return nil
}

// jsonFields maps the JSON names of a struct's fields (embedded structs
// flattened, `json:"-"` left out) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					out[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping of keys"
	}
	return t.String()
}
