package config

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	yamlNodeType    = reflect.TypeFor[yaml.Node]()
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
)

// unknownKeys walks a YAML tree beside the Go type it decodes into and
// reports every key the type has no field for, at the key's own line, with
// the keys that are valid there. Values kept as a yaml.Node (a plugin's
// config, a driver's options) are checked by their owners.
func unknownKeys(n *yaml.Node, t reflect.Type, path, file string, e *Error) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == yamlNodeType || reflect.PointerTo(t).Implements(yamlUnmarshaler) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // a type error, for the decoder to report
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" { // a merge key: its mapping holds the keys
				unknownKeys(v, t, path, file, e)
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				where := path
				if where == "" {
					where = "top level"
				}
				e.add("%s:%d: %s: unknown key %q (valid keys: %s)", file, k.Line, where, k.Value, strings.Join(sortedKeys(fields), ", "))
				continue
			}
			unknownKeys(v, ft, join(path, k.Value), file, e)
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				unknownKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), file, e)
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				unknownKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), file, e)
			}
		}
	}
}

// yamlFields maps the YAML keys of a struct's fields to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		tag := f.Tag.Get("yaml")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
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
