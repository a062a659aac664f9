package attrs

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"

	"gohsm/internal/ck"
)

// ClassAndKeyType reads the identity of the object a C_CreateObject or
// C_UnwrapKey template describes. CKA_CLASS is required (footnote 1), as is
// CKA_KEY_TYPE for keys and CKA_CERTIFICATE_TYPE for certificates: missing ->
// CKR_TEMPLATE_INCOMPLETE. A class, key type or certificate type gohsm does
// not store is CKR_ATTRIBUTE_VALUE_INVALID; a key type we support, but not
// for this class (an AES public key), is CKR_TEMPLATE_INCONSISTENT.
func ClassAndKeyType(t Reader) (ck.ObjectClass, ck.KeyType, error) {
	c, err := identity(t, ck.CKA_CLASS)
	if err != nil {
		return 0, 0, err
	}
	class := ck.ObjectClass(c)
	switch {
	case class == ck.CKO_DATA:
		return class, NoKeyType, nil
	case class == ck.CKO_CERTIFICATE:
		ct, err := identity(t, ck.CKA_CERTIFICATE_TYPE)
		if err != nil {
			return 0, 0, err
		}
		if ck.CertificateType(ct) != ck.CKC_X_509 {
			return 0, 0, fmt.Errorf("attrs: %s: only CKC_X_509 is supported: %w", ck.CertificateType(ct), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		return class, NoKeyType, nil
	case isKeyClass(class):
		kt, err := identity(t, ck.CKA_KEY_TYPE)
		if err != nil {
			return 0, 0, err
		}
		keyType := ck.KeyType(kt)
		if _, err := lookup(class, keyType); err != nil {
			return 0, 0, err
		}
		return class, keyType, nil
	}
	return 0, 0, fmt.Errorf("attrs: CKA_CLASS %s not supported: %w", class, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}

func identity(t Reader, a ck.AttributeType) (ck.ULong, error) {
	if _, ok := t.Get(a); !ok {
		return 0, fmt.Errorf("attrs: %s missing: %w", a, ck.CKR_TEMPLATE_INCOMPLETE)
	}
	v, ok := t.ULong(a)
	if !ok {
		return 0, fmt.Errorf("attrs: %s: not a CK_ULONG: %w", a, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return v, nil
}

// lookup is Lookup with the spec's error for a miss.
func lookup(class ck.ObjectClass, keyType ck.KeyType) (*Schema, error) {
	if s, ok := Lookup(class, keyType); ok {
		return s, nil
	}
	if isKeyClass(class) {
		for k := range schemas() {
			if k.keyType == keyType {
				return nil, fmt.Errorf("attrs: %s is not a key type of %s: %w", keyType, class, ck.CKR_TEMPLATE_INCONSISTENT)
			}
		}
		return nil, fmt.Errorf("attrs: %s %s not supported: %w", class, keyType, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return nil, fmt.Errorf("attrs: %s not supported: %w", class, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}

// opRules says which footnotes apply to a creating operation.
type opRules struct {
	must, not Flag
	creates   bool // the operation creates an object
}

// creating is the rules by operation (an array: read for every object
// made).
var creating = [...]opRules{
	OpCreate:         {must: MustCreate, not: NotCreate, creates: true},
	OpGenerate:       {must: MustGenerate, not: NotGenerate, creates: true},
	OpGeneratePublic: {must: MustGenerate, not: NotGenerate, creates: true},
	OpUnwrap:         {must: MustUnwrap, not: NotUnwrap, creates: true},
	// The footnotes say nothing of C_DeriveKey; like generation, the
	// mechanism supplies the key material, and the template may give
	// CKA_VALUE_LEN (required by some mechanisms: that is theirs to check).
	OpDerive: {not: NotGenerate, creates: true},
}

// rulesOf returns op's rules; ok is false when op creates no object.
func rulesOf(op Op) (_ opRules, ok bool) {
	if op < 0 || int(op) >= len(creating) {
		return opRules{}, false
	}
	return creating[op], creating[op].creates
}

// classOps is which creating operations make objects of each class.
var classOps = [...][]Op{
	ck.CKO_DATA:        {OpCreate},
	ck.CKO_CERTIFICATE: {OpCreate},
	ck.CKO_PUBLIC_KEY:  {OpCreate, OpGeneratePublic, OpUnwrap, OpDerive},
	ck.CKO_PRIVATE_KEY: {OpCreate, OpGenerate, OpUnwrap, OpDerive},
	ck.CKO_SECRET_KEY:  {OpCreate, OpGenerate, OpUnwrap, OpDerive},
}

// BuildAttrs validates template t for a creating operation on an object of
// (class, keyType) and returns the object's full attribute set, an Attrs over the schema's
// prototype under p (nil: the tables' rules), shared, holding only the
// values that differ from it: t plus
// defaults, CKA_CLASS / CKA_KEY_TYPE / CKA_CERTIFICATE_TYPE, and the
// attributes the operation decides (§4.7, §4.9, §4.10):
//
//	CKA_LOCAL              CK_TRUE when generated, else CK_FALSE
//	CKA_KEY_GEN_MECHANISM  mech when generated, else CK_UNAVAILABLE_INFORMATION
//	CKA_ALWAYS_SENSITIVE   CKA_SENSITIVE when generated or derived, else CK_FALSE
//	CKA_NEVER_EXTRACTABLE  !CKA_EXTRACTABLE when generated or derived, else CK_FALSE
//
// For C_DeriveKey the last two must also be combined with the base key's
// (SetDeriveBaseOf). On OpCreate the key material in t is validated and the
// attributes computed from it (CKA_CHECK_VALUE, CKA_VALUE_LEN,
// CKA_MODULUS_BITS, RSA CRT values, CKA_EC_POINT of a private key) are added;
// for the other operations the token merges the material later with
// AddMaterialTo or AddValueTo. CKA_UNIQUE_ID is left to the token.
//
// Errors: an attribute foreign to the class -> CKR_ATTRIBUTE_TYPE_INVALID; a
// malformed value -> CKR_ATTRIBUTE_VALUE_INVALID; an attribute only the token
// sets (footnotes 2,4,6 together), or CK_TRUE for an SO-only attribute
// (footnote 10) -> CKR_ATTRIBUTE_READ_ONLY; an attribute forbidden for this
// operation only (CKA_VALUE on generate) or an identity that contradicts
// (class, keyType) -> CKR_TEMPLATE_INCONSISTENT; a required attribute missing
// -> CKR_TEMPLATE_INCOMPLETE.
func BuildAttrs(p *Policy, op Op, class ck.ObjectClass, keyType ck.KeyType, mech ck.MechanismType, t Template) (Attrs, error) {
	// t's attributes, sorted, in a buffer on the stack: a caller's
	// template is small.
	var buf [16]given
	gs := buf[:0]
	for a, v := range t {
		gs = append(gs, given{Value: Value{a, v}})
	}
	sortGiven(gs)
	return buildGiven(p, op, class, keyType, mech, gs)
}

// BuildAttrsList is BuildAttrs of l's Template (l.Template()), without
// making the map: the same checks, the same first bad attribute reported
// (a type given twice counts with its last value only, as in the map).
func BuildAttrsList(p *Policy, op Op, class ck.ObjectClass, keyType ck.KeyType, mech ck.MechanismType, l List) (Attrs, error) {
	var buf [16]given
	gs := buf[:0]
	for _, v := range l {
		gs = append(gs, given{Value: v})
	}
	sortGiven(gs) // stable: of a type given twice, the last value comes last
	gs = lastOfEach(gs)
	return buildGiven(p, op, class, keyType, mech, gs)
}

// lastOfEach drops, of a sorted gs's attributes of one type, all but the
// last.
func lastOfEach(gs []given) []given {
	n := 0
	for i := range gs {
		if i+1 < len(gs) && gs[i+1].Type == gs[i].Type {
			continue
		}
		gs[n] = gs[i]
		n++
	}
	return gs[:n]
}

// buildGiven is BuildAttrs of a template's attributes gs, sorted by type,
// a type once.
func buildGiven(p *Policy, op Op, class ck.ObjectClass, keyType ck.KeyType, mech ck.MechanismType, gs []given) (Attrs, error) {
	s, err := checkBuild(p, op, class, keyType, gs)
	if err != nil {
		return Attrs{}, err
	}
	// Room for the template's values that differ from the prototype's
	// (the identities and the defaults given again are the prototype's)
	// and the seven a secret key's operation and material add
	// (CKA_LOCAL, CKA_KEY_GEN_MECHANISM, CKA_ALWAYS_SENSITIVE,
	// CKA_NEVER_EXTRACTABLE, CKA_VALUE, CKA_VALUE_LEN, CKA_UNIQUE_ID; its
	// CKA_CHECK_VALUE is computed when read): one allocation.
	pr := s.prototypeFor(p)
	n := 0
	for i := range gs {
		g := &gs[i]
		d, ok := pr.get(g.Type)
		g.keep = !g.row.Has(Identity) && !(ok && len(g.V) > 0 && bytes.Equal(d, g.V))
		if g.keep {
			n++
		}
	}
	x := Attrs{base: pr.t, pr: pr, own: make([]Value, 0, n+7)}
	if err := fill(s, op, keyType, mech, gs, &x); err != nil {
		return Attrs{}, err
	}
	return x, nil
}

// given is one attribute of a creating template, with its row in the
// schema.
type given struct {
	Value
	row  *Attr
	keep bool // the object keeps its own copy (fill)
}

// checkBuild applies the rules of a creating operation to a template's
// attributes gs, in ascending type order (so that a bad template's first
// bad attribute is the same every time), and gives each its row.
func checkBuild(p *Policy, op Op, class ck.ObjectClass, keyType ck.KeyType, gs []given) (*Schema, error) {
	rules, ok := rulesOf(op)
	if !ok {
		return nil, fmt.Errorf("attrs: build: %s does not create an object: %w", op, ck.CKR_GENERAL_ERROR)
	}
	s, err := lookup(class, keyType)
	if err != nil {
		return nil, err
	}
	if class >= ck.ObjectClass(len(classOps)) || !slices.Contains(classOps[class], op) {
		return nil, fmt.Errorf("attrs: %s: cannot %s one: %w", class, op, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	applies := p.applies(s.Class)
	var fixed map[ck.AttributeType]bool
	if applies {
		fixed = p.Fixed[s.Class]
	}
	for i := range gs {
		a, v := gs[i].Type, gs[i].V
		row, ok := p.has(s, a)
		if !ok {
			return nil, p.foreign(s, a)
		}
		gs[i].row = row
		if err := checkEncoding(*row, v); err != nil {
			return nil, err
		}
		if applies && !row.Has(Identity) && !row.readOnly() {
			if err := p.checkGivenFixed(fixed, s, a, v, true); err != nil {
				return nil, err
			}
		}
		switch {
		case row.Has(Identity):
			if !s.isIdentity(a, v) {
				return nil, fmt.Errorf("attrs: %s contradicts %s: %w", a, s, ck.CKR_TEMPLATE_INCONSISTENT)
			}
		case row.readOnly():
			return nil, fmt.Errorf("attrs: %s is read-only: %w", a, ck.CKR_ATTRIBUTE_READ_ONLY)
		case row.Flags&rules.not != 0:
			return nil, fmt.Errorf("attrs: %s must not be given to %s %s: %w", a, op, s, ck.CKR_TEMPLATE_INCONSISTENT)
		case row.Has(SOOnly) && v[0] == 1:
			return nil, fmt.Errorf("attrs: %s can only be set to CK_TRUE by the SO: %w", a, ck.CKR_ATTRIBUTE_READ_ONLY)
		}
	}
	if rules.must != 0 {
		for _, row := range s.table() {
			if row.Has(rules.must) && !row.Has(Identity) {
				if !hasGiven(gs, row.Type) {
					return nil, fmt.Errorf("attrs: %s required to %s %s: %w", row.Type, op, s, ck.CKR_TEMPLATE_INCOMPLETE)
				}
			}
		}
	}
	for _, a := range p.required(s, op) {
		if !hasGiven(gs, a) {
			return nil, fmt.Errorf("attrs: %s required to %s %s: %w", a, op, s, ck.CKR_TEMPLATE_INCOMPLETE)
		}
	}
	return s, nil
}

// hasGiven reports whether gs, sorted by type, has attribute a.
func hasGiven(gs []given, a ck.AttributeType) bool {
	lo, hi := 0, len(gs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if gs[m].Type < a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(gs) && gs[lo].Type == a
}

// sortGiven sorts gs by attribute type, stably (of two attributes of one
// type, the earlier stays first): by insertion when short (a caller's
// template: slices.SortFunc calls its comparison through a func value, and
// cost more than the rest of the check), else slices.SortStableFunc.
func sortGiven(gs []given) {
	if len(gs) > 12 {
		slices.SortStableFunc(gs, func(x, y given) int { return cmp.Compare(x.Type, y.Type) })
		return
	}
	for i := 1; i < len(gs); i++ {
		for j := i; j > 0 && gs[j].Type < gs[j-1].Type; j-- {
			gs[j], gs[j-1] = gs[j-1], gs[j]
		}
	}
}

// fill puts the template's values gs that differ from the prototype's
// (keep; copied) and the attributes op decides into out, an Attrs over
// s's prototype, and completes it when op is OpCreate. A value the
// template gives again as the prototype has it is read from the
// prototype's shared copy: the same bytes.
func fill(s *Schema, op Op, keyType ck.KeyType, mech ck.MechanismType, gs []given, out *Attrs) error {
	for _, g := range gs {
		if g.keep {
			out.set(g.Type, bytes.Clone(g.V))
		}
	}
	generated := op == OpGenerate || op == OpGeneratePublic
	if s.has(ck.CKA_LOCAL) {
		out.set(ck.CKA_LOCAL, sharedBool(generated))
		if generated {
			out.set(ck.CKA_KEY_GEN_MECHANISM, ULong(ck.ULong(mech)))
		} else {
			out.set(ck.CKA_KEY_GEN_MECHANISM, unavailable)
		}
	}
	if s.has(ck.CKA_ALWAYS_SENSITIVE) {
		sensitive, _ := out.Bool(ck.CKA_SENSITIVE)
		extractable, _ := out.Bool(ck.CKA_EXTRACTABLE)
		fromMechanism := generated || op == OpDerive
		out.set(ck.CKA_ALWAYS_SENSITIVE, sharedBool(fromMechanism && sensitive))
		out.set(ck.CKA_NEVER_EXTRACTABLE, sharedBool(fromMechanism && !extractable))
	}
	if n, ok := out.ULong(ck.CKA_VALUE_LEN); ok {
		if err := checkSecretLength(keyType, int(min(n, 1<<31))); err != nil {
			return err
		}
	}
	if err := checkAlwaysAuthenticate(out); err != nil {
		return err
	}
	if op == OpCreate {
		return complete(s, out)
	}
	return nil
}

// Values a built template shares with other objects' templates: the
// prototypes' defaults and identities, and these. No code writes into an
// attribute's value (a change replaces the slice), and each is capped at
// its length, so an append copies it.
var (
	trueValue   = []byte{byte(ck.CK_TRUE)}[:1:1]
	falseValue  = []byte{byte(ck.CK_FALSE)}[:1:1]
	unavailable = capped(ULong(ck.CK_UNAVAILABLE_INFORMATION))
)

func sharedBool(b bool) []byte {
	if b {
		return trueValue
	}
	return falseValue
}

// lengthValue is n as a CK_ULONG, shared by every key of n bytes up to
// 64 (CKA_VALUE_LEN of a secret key: one allocation less per key).
func lengthValue(n int) []byte {
	if n < 0 || n >= len(lengths()) {
		return ULong(ck.ULong(n))
	}
	return lengths()[n]
}

var lengths = sync.OnceValue(func() [][]byte {
	enc := make([]byte, 0, 65*8)
	out := make([][]byte, 65)
	for n := range out {
		enc = binary.LittleEndian.AppendUint64(enc, uint64(n))
		out[n] = capped(enc[n*8:])
	}
	return out
})

func capped(v []byte) []byte { return v[:len(v):len(v)] }

// prototype is a template of a schema's identities and defaults under a
// policy, never written once made: the base of every Attrs BuildAttrs
// makes for the schema (and under the policy). The map is sized for
// every row of the schema, so that a clone (Attrs.Template) takes the
// object's own values without growing; vals holds the same values by
// column, for reads.
type prototype struct {
	t    Template
	s    *Schema
	cols *columns
	// vals has, by column, the value of the column's attribute, nil
	// when the prototype lacks it (no value in t is nil).
	vals [][]byte
}

// get returns attribute a of the prototype.
func (pr *prototype) get(a ck.AttributeType) ([]byte, bool) {
	v := pr.vals[pr.cols.of(a)]
	return v, v != nil
}

func newPrototype(s *Schema, p *Policy) *prototype {
	ri := s.index()
	pr := &prototype{t: make(Template, len(ri.rows)), s: s, cols: ri.cols, vals: make([][]byte, ri.cols.n+1)}
	for i := range ri.rows {
		row := &ri.rows[i]
		var v []byte
		if row.Has(Identity) {
			v = capped(s.identity(row.Type))
		} else if d := p.defaultOf(s, *row); d != nil {
			v = capped(bytes.Clone(d))
		} else {
			continue
		}
		pr.t[row.Type] = v
		pr.vals[ri.cols.of(row.Type)] = v
	}
	return pr
}

// Prototypes keeps one Policy's prototypes, by schema: a profile's
// policy has its own (NewPrototypes), so that nothing outlives the
// profile. A policy's Defaults must not change once it has built a
// template.
type Prototypes struct{ m sync.Map }

// NewPrototypes makes an empty Prototypes for a Policy.
func NewPrototypes() *Prototypes { return &Prototypes{} }

// prototypeFor is s's prototype of identities and defaults under p: the
// schema's kept one when the defaults are the tables', p's kept one when p
// has Prototypes, else one made afresh (nobody else holds it).
func (s *Schema) prototypeFor(p *Policy) *prototype {
	if !p.applies(s.Class) || len(p.Defaults[s.Class]) == 0 {
		pr := s.proto.Load()
		if pr == nil {
			s.proto.CompareAndSwap(nil, newPrototype(s, nil))
			pr = s.proto.Load()
		}
		return pr
	}
	if p.Prototypes == nil {
		return newPrototype(s, p)
	}
	if v, ok := p.Prototypes.m.Load(s); ok {
		return v.(*prototype)
	}
	v, _ := p.Prototypes.m.LoadOrStore(s, newPrototype(s, p))
	return v.(*prototype)
}

// checkAlwaysAuthenticate: CKA_ALWAYS_AUTHENTICATE "may only be set to
// CK_TRUE when CKA_PRIVATE is also CK_TRUE" (v2.20 §10.9): the
// context-specific login that authorises each use needs a logged-in user,
// and a public key object needs none.
func checkAlwaysAuthenticate(obj *Attrs) error {
	if a, _ := obj.Bool(ck.CKA_ALWAYS_AUTHENTICATE); !a {
		return nil
	}
	if p, _ := obj.Bool(ck.CKA_PRIVATE); !p {
		return fmt.Errorf("attrs: CKA_ALWAYS_AUTHENTICATE without CKA_PRIVATE: %w", ck.CKR_TEMPLATE_INCONSISTENT)
	}
	return nil
}

// identity is the encoded value of an Identity attribute of s.
func (s *Schema) identity(a ck.AttributeType) []byte {
	v, ok := s.identityValue(a)
	if !ok {
		return nil
	}
	return ULong(v)
}

// identityValue is the value of an Identity attribute of s.
func (s *Schema) identityValue(a ck.AttributeType) (ck.ULong, bool) {
	switch a {
	case ck.CKA_CLASS:
		return ck.ULong(s.Class), true
	case ck.CKA_KEY_TYPE:
		return ck.ULong(s.KeyType), true
	case ck.CKA_CERTIFICATE_TYPE:
		return ck.ULong(ck.CKC_X_509), true
	}
	return 0, false
}

// isIdentity reports whether v is the encoding of s's Identity attribute
// a (bytes.Equal(v, s.identity(a)), without encoding it).
func (s *Schema) isIdentity(a ck.AttributeType, v []byte) bool {
	want, ok := s.identityValue(a)
	if !ok {
		return len(v) == 0
	}
	return len(v) == 8 && binary.LittleEndian.Uint64(v) == uint64(want)
}

func (s *Schema) String() string {
	if s.KeyType == NoKeyType {
		return s.Class.String()
	}
	return s.Class.String() + "/" + s.KeyType.String()
}

// checkEncoding checks v against the C type of its attribute.
func checkEncoding(row Attr, v []byte) error {
	bad := func(why string) error {
		return fmt.Errorf("attrs: %s: %s: %w", row.Type, why, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	switch row.Kind {
	case KindBool:
		if len(v) != 1 || v[0] > 1 {
			return bad("not a CK_BBOOL")
		}
	case KindULong:
		if len(v) != 8 {
			return bad("not a CK_ULONG")
		}
	case KindBigInt:
		if len(v) == 0 {
			return bad("empty big integer")
		}
	case KindDate:
		if len(v) == 0 {
			return nil
		}
		if len(v) != 8 {
			return bad("not a CK_DATE")
		}
		for _, c := range v {
			if c < '0' || c > '9' {
				return bad("not a CK_DATE")
			}
		}
	case KindMechanisms:
		if len(v)%8 != 0 {
			return bad("not a CK_MECHANISM_TYPE array")
		}
	case KindTemplate:
		if _, err := DecodeTemplate(v); err != nil {
			return err
		}
	}
	return nil
}

// secretLengths are the CKA_VALUE lengths in bytes the secret key types
// with fixed sizes accept (AES: FIPS 197; DES3: three 8-byte keys); the
// others (generic secrets, HMAC and HKDF keys) take any non-zero length.
// A slice, not a map: it is read for every secret key made.
var secretLengths = []struct {
	keyType ck.KeyType
	lens    []int
}{
	{ck.CKK_AES, []int{16, 24, 32}},
	{ck.CKK_DES3, []int{24}},
}

// checkSecretLength applies secretLengths (CKR_ATTRIBUTE_VALUE_INVALID: the
// attribute's value, not a mechanism's key size, is at fault).
func checkSecretLength(keyType ck.KeyType, n int) error {
	if n <= 0 {
		return fmt.Errorf("attrs: %s key of %d bytes: %w", keyType, n, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	for _, kl := range secretLengths {
		if kl.keyType != keyType {
			continue
		}
		if slices.Contains(kl.lens, n) {
			return nil
		}
		return fmt.Errorf("attrs: %s key of %d bytes (want %v): %w", keyType, n, kl.lens, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return nil
}

// AddMaterialTo merges key material (TemplateFromKey's output, after
// generation, unwrapping or derivation) into obj, an Attrs BuildAttrs made
// for a new key and not yet given to an object, and adds the attributes
// computed from it. A derived attribute obj already has (CKA_VALUE_LEN,
// CKA_MODULUS_BITS, CKA_CHECK_VALUE from the template) must agree with the
// material.
func AddMaterialTo(obj *Attrs, material Template) error {
	return withMaterial(obj, material)
}

// AddValueTo is AddMaterialTo with the material Template{CKA_VALUE:
// value} (a secret key's: C_GenerateKey's, C_EncapsulateKey's), without
// making that map.
func AddValueTo(obj *Attrs, value []byte) error {
	s, err := obj.schema()
	if err != nil {
		return err
	}
	mergeMaterial(s, obj, ck.CKA_VALUE, value)
	return complete(s, obj)
}

func withMaterial(out *Attrs, material Template) error {
	s, err := out.schema()
	if err != nil {
		return err
	}
	for a, v := range material {
		mergeMaterial(s, out, a, v)
	}
	return complete(s, out)
}

// mergeMaterial puts a copy of v, attribute a of a key's material, into
// out when s has the attribute and out does not give it already as a
// Derived one (which complete compares with the material).
func mergeMaterial(s *Schema, out *Attrs, a ck.AttributeType, v []byte) {
	row, ok := s.row(a)
	if !ok {
		return
	}
	if _, given := out.Get(a); given && row.Has(Derived) {
		return
	}
	out.set(a, bytes.Clone(v))
}

// schema finds the schema of the object x holds: its prototype's when x
// was built over one and has not replaced an identity, else by its
// CKA_CLASS and CKA_KEY_TYPE (ClassAndKeyType).
func (x *Attrs) schema() (*Schema, error) {
	if x.pr != nil && x.pr.s != nil && x.mask&(1<<(ck.CKA_CLASS%64)|1<<(ck.CKA_KEY_TYPE%64)) == 0 {
		return x.pr.s, nil
	}
	r := *x // a copy for the Reader: x itself stays where its caller has it
	class, keyType, err := ClassAndKeyType(&r)
	if err != nil {
		return nil, err
	}
	return lookup(class, keyType)
}

// complete validates the material in obj and adds what is computed from it.
func complete(s *Schema, obj *Attrs) error {
	switch s.Class {
	case ck.CKO_DATA:
		return nil
	case ck.CKO_CERTIFICATE:
		return setDerived(s, obj, ck.CKA_CHECK_VALUE, CheckValue(NoKeyType, obj.Bytes(ck.CKA_VALUE)))
	}
	if s.Class == ck.CKO_SECRET_KEY {
		return completeSecret(s, obj)
	}
	r := *obj // a copy for the Reader: obj itself stays where its caller has it
	key, err := KeyFromTemplate(s.Class, s.KeyType, &r)
	if err != nil {
		return err
	}
	m, err := TemplateFromKey(key)
	if err != nil {
		return err
	}
	for _, a := range m.Types() {
		if !s.has(a) {
			continue // e.g. CKA_MODULUS_BITS is a public-key attribute only
		}
		if err := setDerived(s, obj, a, m[a]); err != nil {
			return err
		}
	}
	return nil
}

// completeSecret is complete for a secret key, whose key is its
// CKA_VALUE: what KeyFromTemplate and TemplateFromKey would compute, in
// the same order (CKA_CHECK_VALUE, then CKA_VALUE_LEN, each when the
// schema has it), without two more copies of the secret. The check value
// is computed on its first read unless the template gave one, which must
// match now.
func completeSecret(s *Schema, obj *Attrs) error {
	if s.index().conv == nil {
		return fmt.Errorf("attrs: no key conversion for %s %s: %w", s.Class, s.KeyType, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	v := obj.Bytes(ck.CKA_VALUE)
	if len(v) == 0 {
		return fmt.Errorf("attrs: %s %s: %s missing: %w", s.Class, s.KeyType, ck.CKA_VALUE, ck.CKR_TEMPLATE_INCOMPLETE)
	}
	if err := checkSecretLength(s.KeyType, len(v)); err != nil {
		return fmt.Errorf("attrs: %s %s: %w", s.Class, s.KeyType, rvWrap(err))
	}
	if s.has(ck.CKA_CHECK_VALUE) {
		if !obj.Has(ck.CKA_CHECK_VALUE) {
			obj.setLazyCheck(s.KeyType, v)
		} else if err := setDerived(s, obj, ck.CKA_CHECK_VALUE, CheckValue(s.KeyType, v)); err != nil {
			return err
		}
	}
	if s.has(ck.CKA_VALUE_LEN) {
		if err := setDerived(s, obj, ck.CKA_VALUE_LEN, lengthValue(len(v))); err != nil {
			return err
		}
	}
	return nil
}

// setDerived stores v as attribute a unless the object has it; a given
// Derived attribute must equal v.
func setDerived(s *Schema, obj *Attrs, a ck.AttributeType, v []byte) error {
	got, ok := obj.Get(a)
	if !ok {
		obj.set(a, v)
		return nil
	}
	row, _ := s.row(a)
	if row == nil || !row.Has(Derived) {
		return nil
	}
	equal := bytes.Equal(got, v)
	if row.Kind == KindBigInt {
		equal = new(big.Int).SetBytes(got).Cmp(new(big.Int).SetBytes(v)) == 0
	}
	if equal {
		return nil
	}
	if row.Kind == KindULong {
		// CKA_VALUE_LEN / CKA_MODULUS_BITS asked for one size, the material
		// has another.
		return fmt.Errorf("attrs: %s does not match the key: %w", a, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	return fmt.Errorf("attrs: %s does not match the key: %w", a, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}

// InheritProtection applies to t, the template of a key being derived, the
// rule of the derivation mechanisms whose value holds the base key's bytes
// (PKCS#11 v3.0 Current Mechanisms, "Miscellaneous simple key derivation
// mechanisms"; for concatenation with data, XOR and extraction: "If the base
// key has its CKA_SENSITIVE attribute set to CK_TRUE, so does the derived
// key. If not, then the derived key's CKA_SENSITIVE attribute is set either
// from the supplied template or from the default value. Similarly, if the
// base key has its CKA_EXTRACTABLE attribute set to CK_FALSE, so does the
// derived key"; for CKM_CONCATENATE_BASE_AND_KEY the same of "either of the
// two original keys"). Every key in keys whose value goes into the derived
// one counts. A template that asks for less protection than inherited is
// CKR_TEMPLATE_INCONSISTENT rather than silently overruled: the caller
// must not believe it holds a key it can read.
func InheritProtection(t Template, keys ...Reader) (Template, error) {
	out := t.Clone()
	if out == nil {
		out = Template{}
	}
	for _, k := range keys {
		if s, _ := k.Bool(ck.CKA_SENSITIVE); s {
			if v, ok := out.Bool(ck.CKA_SENSITIVE); ok && !v {
				return nil, fmt.Errorf("attrs: derive: CKA_SENSITIVE CK_FALSE from a sensitive key: %w", ck.CKR_TEMPLATE_INCONSISTENT)
			}
			if _, ok := out[ck.CKA_SENSITIVE]; !ok {
				out[ck.CKA_SENSITIVE] = Bool(true)
			}
		}
		if x, ok := k.Bool(ck.CKA_EXTRACTABLE); ok && !x {
			if v, ok := out.Bool(ck.CKA_EXTRACTABLE); ok && v {
				return nil, fmt.Errorf("attrs: derive: CKA_EXTRACTABLE CK_TRUE from an unextractable key: %w", ck.CKR_TEMPLATE_INCONSISTENT)
			}
			if _, ok := out[ck.CKA_EXTRACTABLE]; !ok {
				out[ck.CKA_EXTRACTABLE] = Bool(false)
			}
		}
	}
	return out, nil
}

// SetDeriveBaseOf sets CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE of
// out, an Attrs BuildAttrs made for a key derived from keys (the base key,
// and a second key whose value a mechanism takes,
// CKM_CONCATENATE_BASE_AND_KEY's) and not yet given to an object: CK_FALSE
// when any key's is CK_FALSE, otherwise as BuildAttrs set them from the new
// key's CKA_SENSITIVE and CKA_EXTRACTABLE (every derive mechanism's section: "If the base key
// has its CKA_ALWAYS_SENSITIVE attribute set to CK_FALSE, then the derived
// key will as well ...").
func SetDeriveBaseOf(out *Attrs, keys ...Reader) {
	for _, a := range deriveBaseAttrs {
		if _, ok := out.Get(a); ok && anyFalse(keys, a) {
			out.set(a, falseValue)
		}
	}
}

// deriveBaseAttrs are the attributes a derived key takes from its base
// keys when theirs are CK_FALSE.
var deriveBaseAttrs = [...]ck.AttributeType{ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE}

// anyFalse reports whether attribute a of any of keys is not CK_TRUE.
func anyFalse(keys []Reader, a ck.AttributeType) bool {
	for _, k := range keys {
		if b, _ := k.Bool(a); !b {
			return true
		}
	}
	return false
}

// rvOf returns the ck.RV err wraps, or def.
func rvOf(err error, def ck.RV) ck.RV {
	var rv ck.RV
	if errors.As(err, &rv) {
		return rv
	}
	return def
}
