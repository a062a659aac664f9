// Package attrs holds the Cryptoki attribute rules: per object class and key
// type, which attributes exist, their defaults, which are required, read-only,
// sensitive or secret, and how they may change. One validator interprets the
// tables for create, generate, unwrap, derive, copy and set.
package attrs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"gohsm/internal/ck"
)

// Template is a set of attributes in their Cryptoki encoding: CK_BBOOL is one
// byte, CK_ULONG (and every CK_ULONG-based type) 8 bytes little-endian,
// CK_DATE 8 ASCII digits, byte strings as is, CKA_ALLOWED_MECHANISMS an array
// of CK_ULONG, CKA_WRAP_TEMPLATE / CKA_UNWRAP_TEMPLATE as EncodeTemplate.
type Template map[ck.AttributeType][]byte

// Op is the operation a template is validated for; the spec's rules differ
// (e.g. CKA_LOCAL may never be given, CKA_VALUE is required on create but
// forbidden on generate).
type Op int

const (
	OpCreate         Op = iota + 1 // C_CreateObject
	OpGenerate                     // C_GenerateKey, and the private half of C_GenerateKeyPair
	OpGeneratePublic               // the public half of C_GenerateKeyPair
	OpUnwrap                       // C_UnwrapKey
	OpDerive                       // C_DeriveKey
	OpCopy                         // C_CopyObject: the template changes a copy
	OpSet                          // C_SetAttributeValue
)

func (op Op) String() string {
	switch op {
	case OpCreate:
		return "create"
	case OpGenerate:
		return "generate"
	case OpGeneratePublic:
		return "generate-public"
	case OpUnwrap:
		return "unwrap"
	case OpDerive:
		return "derive"
	case OpCopy:
		return "copy"
	case OpSet:
		return "set"
	}
	return fmt.Sprintf("op(%d)", int(op))
}

// NoKeyType is the key type ClassAndKeyType reports for classes that are not
// keys (data objects, certificates).
const NoKeyType = ck.KeyType(ck.CK_UNAVAILABLE_INFORMATION)

// Bool encodes a CK_BBOOL.
func Bool(b bool) []byte {
	if b {
		return []byte{byte(ck.CK_TRUE)}
	}
	return []byte{byte(ck.CK_FALSE)}
}

// ULong encodes a CK_ULONG (8 bytes, little-endian: the LP64 platforms we
// build for).
func ULong(v ck.ULong) []byte {
	return binary.LittleEndian.AppendUint64(nil, uint64(v))
}

// Bool decodes attribute a as a CK_BBOOL; ok is false when a is absent or not
// a valid CK_BBOOL encoding.
func (t Template) Bool(a ck.AttributeType) (v, ok bool) {
	b, present := t[a]
	if !present || len(b) != 1 || b[0] > 1 {
		return false, false
	}
	return b[0] == 1, true
}

// ULong decodes attribute a as a CK_ULONG; ok is false when a is absent or
// not 8 bytes long.
func (t Template) ULong(a ck.AttributeType) (ck.ULong, bool) {
	b, present := t[a]
	if !present || len(b) != 8 {
		return 0, false
	}
	return ck.ULong(binary.LittleEndian.Uint64(b)), true
}

// Clone returns a deep copy of t.
func (t Template) Clone() Template {
	if t == nil {
		return nil
	}
	c := make(Template, len(t))
	for a, v := range t {
		c[a] = bytes.Clone(v)
	}
	return c
}

// Types returns the attribute types of t in ascending order, so that the
// validator reports the same error for the same template every time.
func (t Template) Types() []ck.AttributeType {
	return t.appendTypes(make([]ck.AttributeType, 0, len(t)))
}

// appendTypes appends t's attribute types to dst and sorts what it
// appended: Types into a caller's buffer.
func (t Template) appendTypes(dst []ck.AttributeType) []ck.AttributeType {
	n := len(dst)
	for a := range t {
		dst = append(dst, a)
	}
	slices.Sort(dst[n:])
	return dst
}

// EncodeTemplate serialises a nested template (the value of
// CKA_WRAP_TEMPLATE / CKA_UNWRAP_TEMPLATE, a CK_ATTRIBUTE array in C) as a
// sequence of (type, length, value) with type and length as 8-byte
// little-endian integers, in ascending type order. The C boundary converts
// between this and CK_ATTRIBUTE arrays.
func EncodeTemplate(t Template) []byte {
	var out []byte
	for _, a := range t.Types() {
		out = binary.LittleEndian.AppendUint64(out, uint64(a))
		out = binary.LittleEndian.AppendUint64(out, uint64(len(t[a])))
		out = append(out, t[a]...)
	}
	return out
}

// DecodeTemplate parses EncodeTemplate's output; malformed input or a
// repeated attribute is CKR_ATTRIBUTE_VALUE_INVALID.
func DecodeTemplate(b []byte) (Template, error) {
	t := Template{}
	for len(b) > 0 {
		if len(b) < 16 {
			return nil, fmt.Errorf("attrs: nested template: truncated header: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		a := ck.AttributeType(binary.LittleEndian.Uint64(b))
		n := binary.LittleEndian.Uint64(b[8:])
		b = b[16:]
		if n > uint64(len(b)) {
			return nil, fmt.Errorf("attrs: nested template: %s: truncated value: %w", a, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		if _, dup := t[a]; dup {
			return nil, fmt.Errorf("attrs: nested template: %s repeated: %w", a, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		t[a] = bytes.Clone(b[:n])
		b = b[n:]
	}
	return t, nil
}
