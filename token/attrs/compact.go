package attrs

import (
	"bytes"
	"encoding/binary"
	"iter"
	"maps"
	"reflect"
	"slices"
	"sync"

	"gohsm/internal/ck"
)

// Reader is what the rules read of an object's attributes: a Template or
// an Attrs.
type Reader interface {
	Get(a ck.AttributeType) ([]byte, bool)
	Bool(a ck.AttributeType) (v, ok bool)
	ULong(a ck.AttributeType) (ck.ULong, bool)
}

// Get returns attribute a of t.
func (t Template) Get(a ck.AttributeType) ([]byte, bool) {
	v, ok := t[a]
	return v, ok
}

// attrOf is attribute a of r, nil when absent.
func attrOf(r Reader, a ck.AttributeType) []byte {
	v, _ := r.Get(a)
	return v
}

// Value is one attribute of an Attrs' own values.
type Value struct {
	Type ck.AttributeType
	V    []byte
}

// Attrs is an object's attributes held compactly: base, a template shared
// with other objects and never written once an Attrs holds it (a schema's
// prototype of identities and defaults, or a template the Attrs was made
// from and owns), and own, the attributes that differ from base, sorted by
// type, which take precedence over base's. A key made from a prototype
// keeps only what its caller, its mechanism and the token gave it (a
// C_EncapsulateKey AES key: 6-8 values in one slice) instead of a map of
// every attribute of its schema (33 for an AES key: a 64-slot table of
// 2.1 KB).
//
// An Attrs is written only while it is built (BuildAttrs, AddMaterialTo,
// SetDeriveBaseOf): a change to a made object makes a new Attrs
// (Template, then FromTemplate). Readers never write into a value; those
// of base are shared by every object made from it.
type Attrs struct {
	base Template
	// pr is base's prototype when base is a schema's prototype (an Attrs
	// BuildAttrs made): a read of base goes to its values by column
	// (columns) rather than to the map.
	pr  *prototype
	own []Value
	// mask has bit a%64 set for each attribute a in own, and for
	// CKA_CHECK_VALUE when check is set: a read of an attribute own lacks
	// (most reads: the defaults) goes straight to base, without scanning
	// own.
	mask uint64
	// check, when set, is the secret key's CKA_CHECK_VALUE, computed on
	// its first read (neither own nor base has the attribute then).
	check *lazyCheck
}

// lazyCheck is a secret key's CKA_CHECK_VALUE, computed from its
// CKA_VALUE on the first read of any reader (Get, All, Template: the
// attribute reads, find by template, copy, the store's record of a token
// object) and the same bytes for every read after. An AES key's check
// value takes a key schedule (a 512-byte allocation) and one block: most
// session keys (C_EncapsulateKey's, C_GenerateKey's) are used and
// destroyed without anyone reading it (docs/bench.md "ML-KEM-768: the
// caller's path, second pass").
type lazyCheck struct {
	once    sync.Once
	keyType ck.KeyType
	value   []byte // the key's CKA_VALUE, the Attrs' own: never written
	v       []byte
}

func (c *lazyCheck) get() []byte {
	c.once.Do(func() { c.v = CheckValue(c.keyType, c.value) })
	return c.v
}

// setLazyCheck makes the Attrs' CKA_CHECK_VALUE the check value of key
// type keyType of value (the Attrs' own CKA_VALUE), computed when first
// read. The Attrs must have no CKA_CHECK_VALUE.
func (x *Attrs) setLazyCheck(keyType ck.KeyType, value []byte) {
	x.check = &lazyCheck{keyType: keyType, value: value}
	x.mask |= 1 << (ck.CKA_CHECK_VALUE % 64)
}

// materializeCheck turns a lazy CKA_CHECK_VALUE into an own value (before
// CKA_VALUE or CKA_CHECK_VALUE is replaced while the Attrs is built: the
// check value is the one of the value it was completed with, as when it
// was computed at once).
func (x *Attrs) materializeCheck() {
	if c := x.check; c != nil {
		x.check = nil
		x.set(ck.CKA_CHECK_VALUE, c.get())
	}
}

// FromTemplate makes an Attrs of t, which the caller gives up: nothing may
// write into t after this.
func FromTemplate(t Template) Attrs { return Attrs{base: t} }

// Get returns attribute a.
func (x *Attrs) Get(a ck.AttributeType) ([]byte, bool) {
	if x.mask&(1<<(a%64)) != 0 {
		if a == ck.CKA_CHECK_VALUE && x.check != nil {
			return x.check.get(), true
		}
		if i, ok := x.ownIndex(a); ok {
			return x.own[i].V, true
		}
	}
	return x.baseGet(a)
}

// baseGet returns attribute a of base.
func (x *Attrs) baseGet(a ck.AttributeType) ([]byte, bool) {
	if x.pr != nil {
		return x.pr.get(a)
	}
	v, ok := x.base[a]
	return v, ok
}

// Has reports whether the object has attribute a. A lazy
// CKA_CHECK_VALUE is there without being computed.
func (x *Attrs) Has(a ck.AttributeType) bool {
	if a == ck.CKA_CHECK_VALUE && x.check != nil {
		return true
	}
	_, ok := x.Get(a)
	return ok
}

// Bool decodes attribute a as a CK_BBOOL, as Template.Bool.
func (x *Attrs) Bool(a ck.AttributeType) (v, ok bool) {
	b, present := x.Get(a)
	if !present || len(b) != 1 || b[0] > 1 {
		return false, false
	}
	return b[0] == 1, true
}

// ULong decodes attribute a as a CK_ULONG, as Template.ULong.
func (x *Attrs) ULong(a ck.AttributeType) (ck.ULong, bool) {
	b, present := x.Get(a)
	if !present || len(b) != 8 {
		return 0, false
	}
	return ck.ULong(binary.LittleEndian.Uint64(b)), true
}

// ownIndex is where attribute a is or would go in x.own.
func (x *Attrs) ownIndex(a ck.AttributeType) (int, bool) {
	// A binary search written out: slices.BinarySearchFunc calls its
	// comparison through a func value each step.
	lo, hi := 0, len(x.own)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.own[m].Type < a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(x.own) && x.own[lo].Type == a
}

// set stores v as attribute a, in own: base is never written. A value
// equal to base's is not kept: the object reads base's copy of the same
// bytes (values are never written into, so the two cannot come apart).
func (x *Attrs) set(a ck.AttributeType, v []byte) {
	if x.check != nil && (a == ck.CKA_VALUE || a == ck.CKA_CHECK_VALUE) {
		x.materializeCheck()
	}
	i, found := x.ownIndex(a)
	d, inBase := x.baseGet(a)
	same := inBase && bytes.Equal(d, v) && (d == nil) == (v == nil)
	switch {
	case found && same:
		x.own = slices.Delete(x.own, i, i+1)
		x.mask = 0
		for _, o := range x.own {
			x.mask |= 1 << (o.Type % 64)
		}
		if x.check != nil {
			x.mask |= 1 << (ck.CKA_CHECK_VALUE % 64)
		}
	case found:
		x.own[i].V = v
	case !same:
		x.insert(i, Value{a, v})
		x.mask |= 1 << (a % 64)
	}
}

// insert puts v at index i of own: slices.Insert written out (it was
// about 1,100 instructions per key made; docs/bench.md "ML-KEM-768: the
// attribute table"). A key's values mostly come in ascending order, so
// most go at the end, and own has room for them.
func (x *Attrs) insert(i int, v Value) {
	if i == len(x.own) {
		x.own = append(x.own, v)
		return
	}
	x.own = append(x.own, Value{})
	copy(x.own[i+1:], x.own[i:])
	x.own[i] = v
}

// Len is the number of attributes.
func (x *Attrs) Len() int {
	n := len(x.base)
	for _, v := range x.own {
		if _, ok := x.baseGet(v.Type); !ok {
			n++
		}
	}
	if x.check != nil {
		n++ // neither base nor own has it
	}
	return n
}

// All yields every attribute once, base's that own does not replace and
// then own's, in no particular order (as a map's range).
func (x *Attrs) All() iter.Seq2[ck.AttributeType, []byte] {
	return func(yield func(ck.AttributeType, []byte) bool) {
		for a, v := range x.base {
			if _, over := x.ownIndex(a); over {
				continue
			}
			if !yield(a, v) {
				return
			}
		}
		for _, v := range x.own {
			if !yield(v.Type, v.V) {
				return
			}
		}
		if x.check != nil {
			yield(ck.CKA_CHECK_VALUE, x.check.get())
		}
	}
}

// Template returns the attributes as a new map, its values shared with x
// (a reader's view, or the start of a changed object's attributes: a
// change replaces a value, never writes into one).
func (x *Attrs) Template() Template {
	// A clone copies the map's groups without hashing (a prototype's map
	// is made with room for every attribute of its schema); the own
	// values go over it.
	t := maps.Clone(x.base)
	if len(x.own) == 0 && x.check == nil {
		return t
	}
	if t == nil {
		t = make(Template, len(x.own)+1)
	}
	for _, v := range x.own {
		t[v.Type] = v.V
	}
	if x.check != nil {
		t[ck.CKA_CHECK_VALUE] = x.check.get()
	}
	return t
}

// Types returns the attribute types in ascending order.
func (x *Attrs) Types() []ck.AttributeType {
	out := make([]ck.AttributeType, 0, x.Len())
	for a := range x.All() {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// SharesBase reports whether x and y are made from the same base template
// (tests: objects from one prototype share it).
func (x *Attrs) SharesBase(y *Attrs) bool {
	return x.base != nil && y.base != nil &&
		reflect.ValueOf(x.base).UnsafePointer() == reflect.ValueOf(y.base).UnsafePointer()
}

// OwnLen is the number of x's own values (tests, measures).
func (x *Attrs) OwnLen() int { return len(x.own) }

// Bytes returns attribute a, nil when absent.
func (x *Attrs) Bytes(a ck.AttributeType) []byte {
	v, _ := x.Get(a)
	return v
}

// Put stores v as attribute a of an Attrs being built (the token's
// CKA_UNIQUE_ID), before it is given to an object; v is the Attrs' from
// then on.
func (x *Attrs) Put(a ck.AttributeType, v []byte) { x.set(a, v) }

// Identity returns the class and key type of the schema x was built over
// (BuildAttrs), without reading them, when x has replaced neither; ok is
// false otherwise (read CKA_CLASS and CKA_KEY_TYPE). The key type of a
// schema without one is NoKeyType.
func (x *Attrs) Identity() (class ck.ObjectClass, keyType ck.KeyType, ok bool) {
	if x.pr == nil || x.pr.s == nil || x.mask&(1<<(ck.CKA_CLASS%64)|1<<(ck.CKA_KEY_TYPE%64)) != 0 {
		return 0, 0, false
	}
	return x.pr.s.Class, x.pr.s.KeyType, true
}
