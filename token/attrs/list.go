package attrs

import (
	"cmp"
	"encoding/binary"
	"slices"

	"gohsm/internal/ck"
)

// List is a template in the form a caller gave it, an attribute a value in
// the caller's order (C_EncapsulateKey's and C_DecapsulateKey's, decoded
// at the C boundary without making a map): a type given twice means its
// last value, as in the Template made from the same array (Template).
type List []Value

// ListOf returns t's attributes as a List, in ascending type order.
func ListOf(t Template) List {
	l := make(List, 0, len(t))
	for a, v := range t {
		l = append(l, Value{a, v})
	}
	slices.SortFunc(l, func(x, y Value) int { return cmp.Compare(x.Type, y.Type) })
	return l
}

// Get returns attribute a, its last value when given more than once.
func (l List) Get(a ck.AttributeType) ([]byte, bool) {
	for i := len(l) - 1; i >= 0; i-- {
		if l[i].Type == a {
			return l[i].V, true
		}
	}
	return nil, false
}

// Bool decodes attribute a as a CK_BBOOL, as Template.Bool.
func (l List) Bool(a ck.AttributeType) (v, ok bool) {
	b, present := l.Get(a)
	if !present || len(b) != 1 || b[0] > 1 {
		return false, false
	}
	return b[0] == 1, true
}

// ULong decodes attribute a as a CK_ULONG, as Template.ULong.
func (l List) ULong(a ck.AttributeType) (ck.ULong, bool) {
	b, present := l.Get(a)
	if !present || len(b) != 8 {
		return 0, false
	}
	return ck.ULong(binary.LittleEndian.Uint64(b)), true
}

// Template returns l as a map, its values shared with l.
func (l List) Template() Template {
	t := make(Template, len(l))
	for _, v := range l {
		t[v.Type] = v.V
	}
	return t
}
