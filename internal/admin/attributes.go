package admin

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/attrs"
)

// textAttrs are byte-array attributes that hold text (RFC 2279 strings),
// shown as strings rather than hex.
var textAttrs = map[ck.AttributeType]bool{
	ck.CKA_LABEL: true, ck.CKA_APPLICATION: true,
	ck.CKA_GOHSM_OWNER: true, ck.CKA_GOHSM_SHARED_USERS: true,
}

// vendorAttrs are gohsm's attributes, which no PKCS#11 schema lists.
var vendorAttrs = []ck.AttributeType{ck.CKA_GOHSM_OWNER, ck.CKA_GOHSM_SHARED_USERS}

// Attributes returns key obj as Key, and its readable attributes by name
// ("CKA_LABEL"): CK_BBOOLs as bools, classes, key types and mechanisms as
// their names (CKO_SECRET_KEY), other CK_ULONGs as numbers, text as
// strings, dates as "YYYYMMDD", other byte arrays (big integers, IDs,
// points, check values) as hex, nested templates as maps of the same
// shape. Attributes the token will not reveal (sensitive, unextractable)
// or that the key does not have are left out. An object that is not a key
// is CKR_OBJECT_HANDLE_INVALID.
func Attributes(m *token.Module, h, obj ck.ULong) (Key, map[string]any, error) {
	k, ok, err := KeyInfo(m, h, obj)
	if err != nil {
		return Key{}, nil, err
	}
	if !ok {
		return Key{}, nil, fmt.Errorf("object %d is not a key: %w", obj, ck.CKR_OBJECT_HANDLE_INVALID)
	}
	t, err := readAttrs(m, h, obj, []ck.AttributeType{ck.CKA_CLASS, ck.CKA_KEY_TYPE})
	if err != nil {
		return Key{}, nil, err
	}
	class, _ := t.ULong(ck.CKA_CLASS)
	kt, _ := t.ULong(ck.CKA_KEY_TYPE)
	schema, _ := attrs.Lookup(ck.ObjectClass(class), ck.KeyType(kt))
	types := slices.Clone(vendorAttrs)
	if schema != nil {
		for _, a := range schema.Attrs() {
			types = append(types, a.Type)
		}
	}
	slices.Sort(types)
	t, err = readAttrs(m, h, obj, types)
	if err != nil {
		return Key{}, nil, err
	}
	return k, render(schema, t), nil
}

// readAttrs reads types of obj, leaving out those that come back with an
// error (sensitive, not the object's).
func readAttrs(m *token.Module, h, obj ck.ULong, types []ck.AttributeType) (attrs.Template, error) {
	res, err := m.GetAttributeValue(h, obj, types)
	if err != nil {
		return nil, err
	}
	t := attrs.Template{}
	for i, r := range res {
		if r.Err == nil && r.Value != nil {
			t[types[i]] = r.Value
		}
	}
	return t, nil
}

// render names a template's attributes and shapes their values by the
// schema's kinds (hex for attributes it does not know).
func render(schema *attrs.Schema, t attrs.Template) map[string]any {
	out := map[string]any{}
	for _, typ := range t.Types() {
		v := t[typ]
		kind := attrs.KindBytes
		if schema != nil {
			if a, ok := schema.Attr(typ); ok {
				kind = a.Kind
			}
		}
		out[typ.String()] = value(schema, typ, kind, v)
	}
	return out
}

func value(schema *attrs.Schema, typ ck.AttributeType, kind attrs.Kind, v []byte) any {
	switch kind {
	case attrs.KindBool:
		if len(v) == 1 {
			return v[0] != 0
		}
	case attrs.KindULong:
		if len(v) == 8 {
			n := ck.ULong(binary.LittleEndian.Uint64(v))
			switch {
			case n == ck.CK_UNAVAILABLE_INFORMATION:
				return "CK_UNAVAILABLE_INFORMATION"
			case typ == ck.CKA_CLASS:
				return ck.ObjectClass(n).String()
			case typ == ck.CKA_KEY_TYPE:
				return ck.KeyType(n).String()
			case typ == ck.CKA_KEY_GEN_MECHANISM:
				return ck.MechanismType(n).String()
			case typ == ck.CKA_CERTIFICATE_TYPE:
				return ck.CertificateType(n).String()
			}
			return uint64(n)
		}
	case attrs.KindDate:
		return string(v)
	case attrs.KindMechanisms:
		if len(v)%8 == 0 {
			names := []string{}
			for i := 0; i < len(v); i += 8 {
				names = append(names, ck.MechanismType(binary.LittleEndian.Uint64(v[i:])).String())
			}
			return names
		}
	case attrs.KindTemplate:
		if nested, err := attrs.DecodeTemplate(v); err == nil {
			return render(schema, nested)
		}
	default:
		if textAttrs[typ] {
			return string(v)
		}
	}
	return hex.EncodeToString(v)
}
