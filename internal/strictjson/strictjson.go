// Package strictjson decodes JSON as a careful API must: one value, no
// member its Go type does not declare, and every member's name exactly as
// declared. encoding/json alone takes "USERNAME" for "username" and
// "Steps" for "steps"; the console's bodies and the cluster's fault plans
// (loaded by the CLI and the console alike) are read through Decode.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// ErrTrailing is Decode's error for data holding more than one value.
var ErrTrailing = errors.New("more than one JSON value")

// NameError is a member whose name differs from every declared one (in
// case only: a name unknown in any case is encoding/json's own error).
type NameError struct {
	Name string // the member's name as written
	Path string // where: "" at the top, "steps[0]" inside
}

func (e *NameError) Error() string {
	where := ""
	if e.Path != "" {
		where = " in " + e.Path
	}
	return fmt.Sprintf("unknown field %q%s (names are matched exactly)", e.Name, where)
}

// Decode decodes data, one JSON value, into v (a pointer). Errors:
// encoding/json's (syntax, types, an unknown field), ErrTrailing, or a
// *NameError.
func Decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return err
		}
		return ErrTrailing
	}
	return exactNames(data, reflect.TypeOf(v), "")
}

// exactNames refuses a member of a JSON object in data whose name is not
// exactly the name of a field of t (a struct, or a pointer, slice or map
// of them), at any depth; path says where it is, for the message. data
// has been decoded into t already, so it is valid JSON of t's shape.
func exactNames(data []byte, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		var members map[string]json.RawMessage
		if json.Unmarshal(data, &members) != nil {
			return nil // not an object: a type with its own UnmarshalJSON
		}
		fields := jsonFields(t)
		for name, raw := range members {
			ft, ok := fields[name]
			if !ok {
				return &NameError{Name: name, Path: strings.TrimPrefix(path, ".")}
			}
			if err := exactNames(raw, ft, path+"."+name); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if json.Unmarshal(data, &items) != nil {
			return nil
		}
		for i, raw := range items {
			if err := exactNames(raw, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		var members map[string]json.RawMessage
		if json.Unmarshal(data, &members) != nil {
			return nil
		}
		for name, raw := range members {
			if err := exactNames(raw, t.Elem(), path+"."+name); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFields maps the JSON names of struct t's fields (as encoding/json
// names them: the tag's name, else the Go name; embedded structs'
// fields promoted) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for n, typ := range jsonFields(ft) {
					if _, ok := out[n]; !ok {
						out[n] = typ
					}
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
