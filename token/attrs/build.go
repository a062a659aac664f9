package attrs

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
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
}

var creating = map[Op]opRules{
	OpCreate:         {must: MustCreate, not: NotCreate},
	OpGenerate:       {must: MustGenerate, not: NotGenerate},
	OpGeneratePublic: {must: MustGenerate, not: NotGenerate},
	OpUnwrap:         {must: MustUnwrap, not: NotUnwrap},
	// The footnotes say nothing of C_DeriveKey; like generation, the
	// mechanism supplies the key material, and the template may give
	// CKA_VALUE_LEN (required by some mechanisms: that is theirs to check).
	OpDerive: {not: NotGenerate},
}

// classOps is which creating operations make objects of each class.
var classOps = map[ck.ObjectClass][]Op{
	ck.CKO_DATA:        {OpCreate},
	ck.CKO_CERTIFICATE: {OpCreate},
	ck.CKO_PUBLIC_KEY:  {OpCreate, OpGeneratePublic, OpUnwrap, OpDerive},
	ck.CKO_PRIVATE_KEY: {OpCreate, OpGenerate, OpUnwrap, OpDerive},
	ck.CKO_SECRET_KEY:  {OpCreate, OpGenerate, OpUnwrap, OpDerive},
}

// Build validates template t for a creating operation on an object of
// (class, keyType) and returns the object's full attribute set: t plus
// defaults, CKA_CLASS / CKA_KEY_TYPE / CKA_CERTIFICATE_TYPE, and the
// attributes the operation decides (§4.7, §4.9, §4.10):
//
//	CKA_LOCAL              CK_TRUE when generated, else CK_FALSE
//	CKA_KEY_GEN_MECHANISM  mech when generated, else CK_UNAVAILABLE_INFORMATION
//	CKA_ALWAYS_SENSITIVE   CKA_SENSITIVE when generated or derived, else CK_FALSE
//	CKA_NEVER_EXTRACTABLE  !CKA_EXTRACTABLE when generated or derived, else CK_FALSE
//
// For C_DeriveKey the last two must also be combined with the base key's
// (ApplyDeriveBase). On OpCreate the key material in t is validated and the
// attributes computed from it (CKA_CHECK_VALUE, CKA_VALUE_LEN,
// CKA_MODULUS_BITS, RSA CRT values, CKA_EC_POINT of a private key) are added;
// for the other operations the token merges the material later with
// WithMaterial. CKA_UNIQUE_ID is left to the token.
//
// Errors: an attribute foreign to the class -> CKR_ATTRIBUTE_TYPE_INVALID; a
// malformed value -> CKR_ATTRIBUTE_VALUE_INVALID; an attribute only the token
// sets (footnotes 2,4,6 together), or CK_TRUE for an SO-only attribute
// (footnote 10) -> CKR_ATTRIBUTE_READ_ONLY; an attribute forbidden for this
// operation only (CKA_VALUE on generate) or an identity that contradicts
// (class, keyType) -> CKR_TEMPLATE_INCONSISTENT; a required attribute missing
// -> CKR_TEMPLATE_INCOMPLETE.
func Build(op Op, class ck.ObjectClass, keyType ck.KeyType, mech ck.MechanismType, t Template) (Template, error) {
	return BuildWith(nil, op, class, keyType, mech, t)
}

// BuildWith is Build under a profile's Policy (nil: the tables' rules).
func BuildWith(p *Policy, op Op, class ck.ObjectClass, keyType ck.KeyType, mech ck.MechanismType, t Template) (Template, error) {
	s, _, err := checkBuild(p, op, class, keyType, t)
	if err != nil {
		return nil, err
	}
	// The defaults and identities come from the schema's prototype under
	// p, cloned whole (a copy of the map's groups, no hashing); the
	// template's values, copied, go over it.
	out := s.newTemplate(p)
	if err := fill(p, s, op, keyType, mech, t, out); err != nil {
		return nil, err
	}
	return out, nil
}

// BuildAttrs is BuildWith making an Attrs: the schema's prototype under p,
// shared, and over it only the values that differ from it.
func BuildAttrs(p *Policy, op Op, class ck.ObjectClass, keyType ck.KeyType, mech ck.MechanismType, t Template) (Attrs, error) {
	s, given, err := checkBuild(p, op, class, keyType, t)
	if err != nil {
		return Attrs{}, err
	}
	// Room for the template's values other than the identities (which the
	// prototype holds) and the seven a secret key's operation and material
	// add (CKA_LOCAL, CKA_KEY_GEN_MECHANISM, CKA_ALWAYS_SENSITIVE,
	// CKA_NEVER_EXTRACTABLE, CKA_VALUE, CKA_VALUE_LEN, CKA_UNIQUE_ID; its
	// CKA_CHECK_VALUE is computed when read): one allocation.
	x := &Attrs{base: s.prototypeOf(p), own: make([]Value, 0, given+7)}
	if err := fill(p, s, op, keyType, mech, t, x); err != nil {
		return Attrs{}, err
	}
	return *x, nil
}

// checkBuild applies the rules of a creating operation to template t, and
// counts t's attributes that are not identities of the schema (those
// fill may keep).
func checkBuild(p *Policy, op Op, class ck.ObjectClass, keyType ck.KeyType, t Template) (_ *Schema, given int, _ error) {
	rules, ok := creating[op]
	if !ok {
		return nil, 0, fmt.Errorf("attrs: build: %s does not create an object: %w", op, ck.CKR_GENERAL_ERROR)
	}
	s, err := lookup(class, keyType)
	if err != nil {
		return nil, 0, err
	}
	if !slices.Contains(classOps[class], op) {
		return nil, 0, fmt.Errorf("attrs: %s: cannot %s one: %w", class, op, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	// Sorted in a buffer on the stack: a caller's template is small.
	var buf [16]ck.AttributeType
	for _, a := range t.appendTypes(buf[:0]) {
		row, ok := p.has(s, a)
		if !ok {
			return nil, 0, p.foreign(s, a)
		}
		v := t[a]
		if err := checkEncoding(row, v); err != nil {
			return nil, 0, err
		}
		if !row.Has(Identity) && !row.readOnly() {
			if err := p.checkGiven(s, a, v, true); err != nil {
				return nil, 0, err
			}
		}
		if !row.Has(Identity) {
			given++
		}
		switch {
		case row.Has(Identity):
			if want := s.identity(a); !bytes.Equal(v, want) {
				return nil, 0, fmt.Errorf("attrs: %s contradicts %s: %w", a, s, ck.CKR_TEMPLATE_INCONSISTENT)
			}
		case row.readOnly():
			return nil, 0, fmt.Errorf("attrs: %s is read-only: %w", a, ck.CKR_ATTRIBUTE_READ_ONLY)
		case row.Flags&rules.not != 0:
			return nil, 0, fmt.Errorf("attrs: %s must not be given to %s %s: %w", a, op, s, ck.CKR_TEMPLATE_INCONSISTENT)
		case row.Has(SOOnly) && v[0] == 1:
			return nil, 0, fmt.Errorf("attrs: %s can only be set to CK_TRUE by the SO: %w", a, ck.CKR_ATTRIBUTE_READ_ONLY)
		}
	}
	if rules.must != 0 {
		for _, row := range s.sorted() {
			if row.Has(rules.must) && !row.Has(Identity) {
				if _, ok := t[row.Type]; !ok {
					return nil, 0, fmt.Errorf("attrs: %s required to %s %s: %w", row.Type, op, s, ck.CKR_TEMPLATE_INCOMPLETE)
				}
			}
		}
	}
	for _, a := range p.required(s, op) {
		if _, ok := t[a]; !ok {
			return nil, 0, fmt.Errorf("attrs: %s required to %s %s: %w", a, op, s, ck.CKR_TEMPLATE_INCOMPLETE)
		}
	}
	return s, given, nil
}

// builder is what a new object's attributes are built in: a Template (a
// clone of the prototype) or an Attrs over the prototype.
type builder interface {
	Reader
	set(a ck.AttributeType, v []byte)
}

// fill puts template t's values (copied) and the attributes op decides
// into out, which holds s's identities and defaults, and completes it
// when op is OpCreate.
func fill(p *Policy, s *Schema, op Op, keyType ck.KeyType, mech ck.MechanismType, t Template, out builder) error {
	for a, v := range t {
		if row := s.table()[a]; row.Has(Identity) {
			continue
		}
		if d, ok := out.Get(a); ok && len(v) > 0 && bytes.Equal(d, v) {
			continue // the default's shared copy: the same bytes
		}
		out.set(a, bytes.Clone(v))
	}
	generated := op == OpGenerate || op == OpGeneratePublic
	if _, ok := s.table()[ck.CKA_LOCAL]; ok {
		out.set(ck.CKA_LOCAL, sharedBool(generated))
		if generated {
			out.set(ck.CKA_KEY_GEN_MECHANISM, ULong(ck.ULong(mech)))
		} else {
			out.set(ck.CKA_KEY_GEN_MECHANISM, unavailable)
		}
	}
	if _, ok := s.table()[ck.CKA_ALWAYS_SENSITIVE]; ok {
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

func capped(v []byte) []byte { return v[:len(v):len(v)] }

// prototype is a template of a schema's identities and defaults under a
// policy, never written once made: BuildWith clones it. The map is sized
// for every row of the schema, so that a clone takes the template's
// attributes and those the token adds without growing.
type prototype struct{ t Template }

func (pr *prototype) clone() Template { return maps.Clone(pr.t) }

func newPrototype(s *Schema, p *Policy) *prototype {
	t := make(Template, len(s.table()))
	for _, row := range s.table() {
		if row.Has(Identity) {
			t[row.Type] = capped(s.identity(row.Type))
		} else if d := p.defaultOf(s, row); d != nil {
			t[row.Type] = capped(bytes.Clone(d))
		}
	}
	return &prototype{t}
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
// has Prototypes, else one made afresh (kept false: nobody else holds it).
func (s *Schema) prototypeFor(p *Policy) (pr *prototype, kept bool) {
	if !p.applies(s.Class) || len(p.Defaults[s.Class]) == 0 {
		pr := s.proto.Load()
		if pr == nil {
			s.proto.CompareAndSwap(nil, newPrototype(s, nil))
			pr = s.proto.Load()
		}
		return pr, true
	}
	if p.Prototypes == nil {
		return newPrototype(s, p), false
	}
	if v, ok := p.Prototypes.m.Load(s); ok {
		return v.(*prototype), true
	}
	v, _ := p.Prototypes.m.LoadOrStore(s, newPrototype(s, p))
	return v.(*prototype), true
}

// newTemplate is a new template of s's identities and defaults under p:
// the clone of a kept prototype, or a fresh one's own map.
func (s *Schema) newTemplate(p *Policy) Template {
	pr, kept := s.prototypeFor(p)
	if !kept {
		return pr.t
	}
	return pr.clone()
}

// prototypeOf is the template of s's identities and defaults under p,
// shared: the kept prototype's own map (never written), or one made
// afresh when p has defaults of its own and no Prototypes.
func (s *Schema) prototypeOf(p *Policy) Template {
	pr, _ := s.prototypeFor(p)
	return pr.t
}

// checkAlwaysAuthenticate: CKA_ALWAYS_AUTHENTICATE "may only be set to
// CK_TRUE when CKA_PRIVATE is also CK_TRUE" (v2.20 §10.9): the
// context-specific login that authorises each use needs a logged-in user,
// and a public key object needs none.
func checkAlwaysAuthenticate(obj Reader) error {
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
	switch a {
	case ck.CKA_CLASS:
		return ULong(ck.ULong(s.Class))
	case ck.CKA_KEY_TYPE:
		return ULong(ck.ULong(s.KeyType))
	case ck.CKA_CERTIFICATE_TYPE:
		return ULong(ck.ULong(ck.CKC_X_509))
	}
	return nil
}

func (s *Schema) String() string {
	if s.KeyType == NoKeyType {
		return s.Class.String()
	}
	return s.Class.String() + "/" + s.KeyType.String()
}

// sorted returns the rows in ascending attribute order (deterministic
// errors), made once per schema; callers do not modify it.
func (s *Schema) sorted() []Attr {
	if p := s.rows.Load(); p != nil {
		return *p
	}
	t := make(Template, len(s.table()))
	for a := range s.table() {
		t[a] = nil
	}
	out := make([]Attr, 0, len(s.table()))
	for _, a := range t.Types() {
		out = append(out, s.table()[a])
	}
	s.rows.Store(&out)
	return out
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

// checkSecretLength applies secretLengths (CKR_ATTRIBUTE_VALUE_INVALID: the
// attribute's value, not a mechanism's key size, is at fault).
func checkSecretLength(keyType ck.KeyType, n int) error {
	if n <= 0 {
		return fmt.Errorf("attrs: %s key of %d bytes: %w", keyType, n, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	lens, ok := secretLengths[keyType]
	if !ok {
		return nil
	}
	for _, l := range lens {
		if n == l {
			return nil
		}
	}
	return fmt.Errorf("attrs: %s key of %d bytes (want %v): %w", keyType, n, lens, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}

// WithMaterial merges key material (TemplateFromKey's output, after
// generation, unwrapping or derivation) into obj, an object Build made, and
// adds the attributes computed from it. A derived attribute obj already has
// (CKA_VALUE_LEN, CKA_MODULUS_BITS, CKA_CHECK_VALUE from the template) must
// agree with the material.
func WithMaterial(obj, material Template) (Template, error) {
	return AddMaterial(obj.Clone(), material)
}

// AddMaterial is WithMaterial completing obj itself, which the caller gives
// up (a template it built for a new key and uses no more), rather than a
// copy of it: the copy was most of WithMaterial's cost for a derived key.
func AddMaterial(obj, material Template) (Template, error) {
	if err := withMaterial(obj, material); err != nil {
		return nil, err
	}
	return obj, nil
}

// AddMaterialTo is AddMaterial completing obj, an Attrs BuildAttrs made
// for a new key and not yet given to an object.
func AddMaterialTo(obj *Attrs, material Template) error {
	return withMaterial(obj, material)
}

func withMaterial(out builder, material Template) error {
	class, keyType, err := ClassAndKeyType(out)
	if err != nil {
		return err
	}
	s, err := lookup(class, keyType)
	if err != nil {
		return err
	}
	for a, v := range material {
		row, ok := s.table()[a]
		if !ok {
			continue
		}
		if _, given := out.Get(a); given && row.Has(Derived) {
			continue // compared by complete
		}
		out.set(a, bytes.Clone(v))
	}
	return complete(s, out)
}

// complete validates the material in obj and adds what is computed from it.
func complete(s *Schema, obj builder) error {
	switch s.Class {
	case ck.CKO_DATA:
		return nil
	case ck.CKO_CERTIFICATE:
		return setDerived(s, obj, ck.CKA_CHECK_VALUE, CheckValue(NoKeyType, attrOf(obj, ck.CKA_VALUE)))
	}
	if s.Class == ck.CKO_SECRET_KEY {
		return completeSecret(s, obj)
	}
	key, err := KeyFromTemplate(s.Class, s.KeyType, obj)
	if err != nil {
		return err
	}
	m, err := TemplateFromKey(key)
	if err != nil {
		return err
	}
	for _, a := range m.Types() {
		if _, ok := s.table()[a]; !ok {
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
// schema has it), without two more copies of the secret.
func completeSecret(s *Schema, obj builder) error {
	if _, ok := converters()[schemaKey{s.Class, s.KeyType}]; !ok {
		return fmt.Errorf("attrs: no key conversion for %s %s: %w", s.Class, s.KeyType, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	v := attrOf(obj, ck.CKA_VALUE)
	if len(v) == 0 {
		return fmt.Errorf("attrs: %s %s: %s missing: %w", s.Class, s.KeyType, ck.CKA_VALUE, ck.CKR_TEMPLATE_INCOMPLETE)
	}
	if err := checkSecretLength(s.KeyType, len(v)); err != nil {
		return fmt.Errorf("attrs: %s %s: %w", s.Class, s.KeyType, rvWrap(err))
	}
	if _, ok := s.table()[ck.CKA_CHECK_VALUE]; ok {
		// An Attrs being built computes it on its first read unless the
		// template gave one, which must match now.
		if x, ok := obj.(*Attrs); ok && !x.Has(ck.CKA_CHECK_VALUE) {
			x.setLazyCheck(s.KeyType, v)
		} else if err := setDerived(s, obj, ck.CKA_CHECK_VALUE, CheckValue(s.KeyType, v)); err != nil {
			return err
		}
	}
	if _, ok := s.table()[ck.CKA_VALUE_LEN]; ok {
		if err := setDerived(s, obj, ck.CKA_VALUE_LEN, ULong(ck.ULong(len(v)))); err != nil {
			return err
		}
	}
	return nil
}

// setDerived stores v as attribute a unless the object has it; a given
// Derived attribute must equal v.
func setDerived(s *Schema, obj builder, a ck.AttributeType, v []byte) error {
	got, ok := obj.Get(a)
	if !ok {
		obj.set(a, v)
		return nil
	}
	row := s.table()[a]
	if !row.Has(Derived) {
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

// ApplyDeriveBase sets CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE of a
// key derived from keys (the base key, and a second key whose value a
// mechanism takes, CKM_CONCATENATE_BASE_AND_KEY's): CK_FALSE when any key's
// is CK_FALSE, otherwise as Build set them from the new key's CKA_SENSITIVE
// and CKA_EXTRACTABLE (every derive mechanism's section: "If the base key
// has its CKA_ALWAYS_SENSITIVE attribute set to CK_FALSE, then the derived
// key will as well ...").
func ApplyDeriveBase(derived Template, keys ...Reader) Template {
	return SetDeriveBase(derived.Clone(), keys...)
}

// SetDeriveBase is ApplyDeriveBase on derived itself, which the caller
// owns (C_DecapsulateKey's new key), rather than on a copy; it returns it.
func SetDeriveBase(out Template, keys ...Reader) Template {
	setDeriveBase(out, keys)
	return out
}

// SetDeriveBaseOf is SetDeriveBase on an Attrs BuildAttrs made for a new
// key and not yet given to an object.
func SetDeriveBaseOf(out *Attrs, keys ...Reader) {
	setDeriveBase(out, keys)
}

func setDeriveBase(out builder, keys []Reader) {
	for _, a := range []ck.AttributeType{ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE} {
		if _, ok := out.Get(a); !ok {
			continue
		}
		for _, k := range keys {
			if b, _ := k.Bool(a); !b {
				out.set(a, falseValue)
			}
		}
	}
}

// rvOf returns the ck.RV err wraps, or def.
func rvOf(err error, def ck.RV) ck.RV {
	var rv ck.RV
	if errors.As(err, &rv) {
		return rv
	}
	return def
}
