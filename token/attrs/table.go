package attrs

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"gohsm/internal/ck"
)

// Kind is the C type of an attribute's value, which decides how its encoding
// is checked.
type Kind uint8

const (
	KindBytes      Kind = iota // byte array or RFC 2279 string, any length
	KindBool                   // CK_BBOOL: exactly 1 byte, 0 or 1
	KindULong                  // CK_ULONG and the types built on it: exactly 8 bytes
	KindBigInt                 // Big integer: big-endian bytes, not empty
	KindDate                   // CK_DATE: empty, or 8 ASCII digits YYYYMMDD
	KindMechanisms             // CK_MECHANISM_TYPE array: a multiple of 8 bytes
	KindTemplate               // CK_ATTRIBUTE array, as EncodeTemplate
)

// Flag is a rule from the footnotes of the PKCS#11 v3.0 base spec's
// attribute tables (§4.2 "Common footnotes for object attribute tables"),
// plus three of ours that the spec states in prose.
type Flag uint16

const (
	MustCreate   Flag = 1 << iota // footnote 1: MUST be specified when created with C_CreateObject
	NotCreate                     // footnote 2: MUST NOT be specified when created with C_CreateObject
	MustGenerate                  // footnote 3: MUST be specified when generated with C_GenerateKey(Pair)
	NotGenerate                   // footnote 4: MUST NOT be specified when generated
	MustUnwrap                    // footnote 5: MUST be specified when unwrapped with C_UnwrapKey
	NotUnwrap                     // footnote 6: MUST NOT be specified when unwrapped
	Sensitive                     // footnote 7: not revealed if CKA_SENSITIVE or !CKA_EXTRACTABLE; stored encrypted
	Modifiable                    // footnote 8: may change with C_SetAttributeValue and C_CopyObject
	SOOnly                        // footnote 10: only the SO may set it to CK_TRUE
	OnceTrue                      // footnote 11: read-only once CK_TRUE
	OnceFalse                     // footnote 12: read-only once CK_FALSE

	// CopyOnly: may change in C_CopyObject but not C_SetAttributeValue
	// (§4.4 storage objects: "CKA_TOKEN, CKA_PRIVATE and CKA_MODIFIABLE
	// attributes can be changed in the process of copying an object").
	CopyOnly
	// Identity: CKA_CLASS, CKA_KEY_TYPE, CKA_CERTIFICATE_TYPE. The validator
	// checks them against the class and key type it was given rather than
	// by footnote.
	Identity
	// Derived: computed by the token from the key material (check value,
	// value length, modulus bits, the public point of a private key). When
	// the template gives one, it must agree with the material.
	Derived

	// ReadOnly: footnotes 2, 4 and 6 together, an attribute only the token
	// assigns (CKA_LOCAL, CKA_UNIQUE_ID, ...). Giving one is
	// CKR_ATTRIBUTE_READ_ONLY rather than CKR_TEMPLATE_INCONSISTENT.
	ReadOnly = NotCreate | NotGenerate | NotUnwrap
)

// Attr is one row of an attribute table.
type Attr struct {
	Type  ck.AttributeType
	Kind  Kind
	Flags Flag
	// Default is the value given to the attribute when the template omits
	// it; nil means no default (the attribute is required, or is supplied
	// by the token or the key material).
	Default []byte
}

// Has reports whether all of f are set on a.
func (a Attr) Has(f Flag) bool { return a.Flags&f == f }

func (a Attr) readOnly() bool { return a.Has(ReadOnly) }

// row constructors: one line per attribute in the tables below.
func boolean(t ck.AttributeType, f Flag, def bool) Attr {
	return Attr{Type: t, Kind: KindBool, Flags: f, Default: Bool(def)}
}

func ulong(t ck.AttributeType, f Flag, def *ck.ULong) Attr {
	a := Attr{Type: t, Kind: KindULong, Flags: f}
	if def != nil {
		a.Default = ULong(*def)
	}
	return a
}

func ulongDef(v ck.ULong) *ck.ULong { return &v }

// empty is an attribute with an empty default ("default empty" in the spec tables).
func empty(t ck.AttributeType, k Kind, f Flag) Attr {
	return Attr{Type: t, Kind: k, Flags: f, Default: []byte{}}
}

// value is an attribute with no default.
func value(t ck.AttributeType, k Kind, f Flag) Attr { return Attr{Type: t, Kind: k, Flags: f} }

type table []Attr

// The tables follow the spec's class hierarchy (PKCS#11 v3.0 base spec §4):
// object -> storage -> {data, certificate -> X.509, key -> {public, private,
// secret} -> key type}. A later table may restate an attribute of an earlier
// one to change its flags or default for that class; compose keeps the last.

// §4.3 Common attributes.
var objectTable = table{
	value(ck.CKA_CLASS, KindULong, Identity|MustCreate|MustUnwrap),
}

// §4.4 Storage objects. CKA_PRIVATE's default is token-specific: ours is
// CK_FALSE for data objects, certificates and public keys, CK_TRUE for
// private and secret keys (restated in their tables).
var storageTable = table{
	boolean(ck.CKA_TOKEN, CopyOnly, false),
	boolean(ck.CKA_PRIVATE, CopyOnly, false),
	boolean(ck.CKA_MODIFIABLE, CopyOnly, true),
	empty(ck.CKA_LABEL, KindBytes, Modifiable),
	// "CK_TRUE if object can be copied using C_CopyObject. Defaults to
	// CK_TRUE. Can't be set to TRUE once it is set to FALSE."
	boolean(ck.CKA_COPYABLE, Modifiable|OnceFalse, true),
	boolean(ck.CKA_DESTROYABLE, 0, true),
	// Footnotes 2,4,6: assigned by the token, never by the application.
	value(ck.CKA_UNIQUE_ID, KindBytes, ReadOnly),
}

// §4.5 Data objects: no footnotes, so nothing changes after creation.
var dataTable = table{
	empty(ck.CKA_APPLICATION, KindBytes, 0),
	empty(ck.CKA_OBJECT_ID, KindBytes, 0),
	empty(ck.CKA_VALUE, KindBytes, 0),
}

// §4.6 Certificate objects: common certificate attributes.
var certificateTable = table{
	value(ck.CKA_CERTIFICATE_TYPE, KindULong, Identity|MustCreate),
	boolean(ck.CKA_TRUSTED, SOOnly, false),
	ulong(ck.CKA_CERTIFICATE_CATEGORY, 0, ulongDef(ck.CK_CERTIFICATE_CATEGORY_UNSPECIFIED)),
	// "derived from the certificate by taking the first three bytes of the
	// SHA-1 hash of the certificate object's CKA_VALUE attribute".
	value(ck.CKA_CHECK_VALUE, KindBytes, Derived),
	empty(ck.CKA_START_DATE, KindDate, 0),
	empty(ck.CKA_END_DATE, KindDate, 0),
	empty(ck.CKA_PUBLIC_KEY_INFO, KindBytes, 0),
}

// §4.6 X.509 public key certificate objects. The table's own
// footnotes: CKA_SUBJECT must be specified; CKA_VALUE must be specified
// (non-empty unless CKA_URL is); we store certificates, so CKA_VALUE is
// required.
var x509Table = table{
	value(ck.CKA_SUBJECT, KindBytes, MustCreate),
	empty(ck.CKA_ID, KindBytes, 0),
	empty(ck.CKA_ISSUER, KindBytes, 0),
	empty(ck.CKA_SERIAL_NUMBER, KindBytes, 0),
	value(ck.CKA_VALUE, KindBytes, MustCreate),
	empty(ck.CKA_URL, KindBytes, 0),
	empty(ck.CKA_HASH_OF_SUBJECT_PUBLIC_KEY, KindBytes, 0),
	empty(ck.CKA_HASH_OF_ISSUER_PUBLIC_KEY, KindBytes, 0),
	ulong(ck.CKA_JAVA_MIDP_SECURITY_DOMAIN, 0, ulongDef(ck.CK_SECURITY_DOMAIN_UNSPECIFIED)),
	// "Default CKM_SHA_1".
	ulong(ck.CKA_NAME_HASH_ALGORITHM, 0, ulongDef(ck.ULong(ck.CKM_SHA_1))),
}

// §4.7 Key objects: common key attributes. CKA_LOCAL and
// CKA_KEY_GEN_MECHANISM are set by Build from the operation.
var keyTable = table{
	value(ck.CKA_KEY_TYPE, KindULong, Identity|MustCreate|MustUnwrap),
	empty(ck.CKA_ID, KindBytes, Modifiable),
	empty(ck.CKA_START_DATE, KindDate, Modifiable),
	empty(ck.CKA_END_DATE, KindDate, Modifiable),
	boolean(ck.CKA_DERIVE, Modifiable, false),
	value(ck.CKA_LOCAL, KindBool, ReadOnly),
	value(ck.CKA_KEY_GEN_MECHANISM, KindULong, ReadOnly),
	empty(ck.CKA_ALLOWED_MECHANISMS, KindMechanisms, 0),
}

// §4.8 Public key objects. Usage defaults are token-specific
// (footnote 9); the key-type tables choose them.
var publicTable = table{
	boolean(ck.CKA_PRIVATE, CopyOnly, false),
	empty(ck.CKA_SUBJECT, KindBytes, Modifiable),
	boolean(ck.CKA_ENCRYPT, Modifiable, false),
	boolean(ck.CKA_VERIFY, Modifiable, false),
	boolean(ck.CKA_VERIFY_RECOVER, Modifiable, false),
	boolean(ck.CKA_WRAP, Modifiable, false),
	boolean(ck.CKA_TRUSTED, SOOnly, false),
	empty(ck.CKA_WRAP_TEMPLATE, KindTemplate, 0),
	empty(ck.CKA_PUBLIC_KEY_INFO, KindBytes, 0),
}

// §4.9 Private key objects. CKA_SENSITIVE and CKA_EXTRACTABLE
// default to CK_TRUE as on AWS CloudHSM (footnote 9 leaves it to the token).
var privateTable = table{
	boolean(ck.CKA_PRIVATE, CopyOnly, true),
	empty(ck.CKA_SUBJECT, KindBytes, Modifiable),
	boolean(ck.CKA_SENSITIVE, Modifiable|OnceTrue, true),
	boolean(ck.CKA_DECRYPT, Modifiable, false),
	boolean(ck.CKA_SIGN, Modifiable, false),
	boolean(ck.CKA_SIGN_RECOVER, Modifiable, false),
	boolean(ck.CKA_UNWRAP, Modifiable, false),
	boolean(ck.CKA_EXTRACTABLE, Modifiable|OnceFalse, true),
	value(ck.CKA_ALWAYS_SENSITIVE, KindBool, ReadOnly),
	value(ck.CKA_NEVER_EXTRACTABLE, KindBool, ReadOnly),
	boolean(ck.CKA_WRAP_WITH_TRUSTED, OnceTrue, false),
	empty(ck.CKA_UNWRAP_TEMPLATE, KindTemplate, 0),
	boolean(ck.CKA_ALWAYS_AUTHENTICATE, 0, false),
	empty(ck.CKA_PUBLIC_KEY_INFO, KindBytes, Modifiable),
}

// §4.10 Secret key objects; defaults as for private keys.
var secretTable = table{
	boolean(ck.CKA_PRIVATE, CopyOnly, true),
	boolean(ck.CKA_SENSITIVE, Modifiable|OnceTrue, true),
	boolean(ck.CKA_ENCRYPT, Modifiable, false),
	boolean(ck.CKA_DECRYPT, Modifiable, false),
	boolean(ck.CKA_SIGN, Modifiable, false),
	boolean(ck.CKA_VERIFY, Modifiable, false),
	boolean(ck.CKA_WRAP, Modifiable, false),
	boolean(ck.CKA_UNWRAP, Modifiable, false),
	boolean(ck.CKA_EXTRACTABLE, Modifiable|OnceFalse, true),
	value(ck.CKA_ALWAYS_SENSITIVE, KindBool, ReadOnly),
	value(ck.CKA_NEVER_EXTRACTABLE, KindBool, ReadOnly),
	// Key checksum: computed by the token; checked when given (mechanisms
	// spec: "the first three bytes of the ECB encryption of a single block
	// of null (0x00) bytes").
	value(ck.CKA_CHECK_VALUE, KindBytes, Derived),
	boolean(ck.CKA_WRAP_WITH_TRUSTED, OnceTrue, false),
	boolean(ck.CKA_TRUSTED, SOOnly, false),
	empty(ck.CKA_WRAP_TEMPLATE, KindTemplate, 0),
	empty(ck.CKA_UNWRAP_TEMPLATE, KindTemplate, 0),
}

// Usage defaults (footnote 9, token-specific): CK_TRUE for the operations the
// key type can perform, so a key generated without usage flags (pkcs11-tool
// --keypairgen, then --sign) is usable; CK_FALSE for the others.
func usage(types ...ck.AttributeType) table {
	t := make(table, 0, len(types))
	for _, a := range types {
		t = append(t, boolean(a, Modifiable, true))
	}
	return t
}

// PKCS#11 v3.0 mechanisms spec, "RSA public key objects" and "RSA private
// key objects".
var rsaPublicTable = table{
	value(ck.CKA_MODULUS, KindBigInt, MustCreate|NotGenerate),
	value(ck.CKA_MODULUS_BITS, KindULong, NotCreate|MustGenerate|Derived),
	value(ck.CKA_PUBLIC_EXPONENT, KindBigInt, MustCreate),
}

// The spec makes only CKA_MODULUS and CKA_PRIVATE_EXPONENT mandatory on
// create; we also need the public exponent and the primes to hold the key in
// CRT form (every importing client we target sends them), and compute the
// CRT exponents and coefficient when they are absent.
var rsaPrivateTable = table{
	value(ck.CKA_MODULUS, KindBigInt, MustCreate|NotGenerate|NotUnwrap),
	value(ck.CKA_PUBLIC_EXPONENT, KindBigInt, MustCreate|NotGenerate|NotUnwrap),
	value(ck.CKA_PRIVATE_EXPONENT, KindBigInt, MustCreate|NotGenerate|NotUnwrap|Sensitive),
	value(ck.CKA_PRIME_1, KindBigInt, MustCreate|NotGenerate|NotUnwrap|Sensitive),
	value(ck.CKA_PRIME_2, KindBigInt, MustCreate|NotGenerate|NotUnwrap|Sensitive),
	value(ck.CKA_EXPONENT_1, KindBigInt, NotGenerate|NotUnwrap|Sensitive|Derived),
	value(ck.CKA_EXPONENT_2, KindBigInt, NotGenerate|NotUnwrap|Sensitive|Derived),
	value(ck.CKA_COEFFICIENT, KindBigInt, NotGenerate|NotUnwrap|Sensitive|Derived),
}

// Mechanisms spec, "Elliptic curve public/private key objects" and (new in
// v3.0) "Edwards Elliptic curve public/private key objects", which have the
// same attributes.
var ecPublicTable = table{
	value(ck.CKA_EC_PARAMS, KindBytes, MustCreate|MustGenerate),
	value(ck.CKA_EC_POINT, KindBytes, MustCreate|NotGenerate),
}

// CKA_EC_POINT on a private key is our extension (clients such as
// pkcs11-tool and libp11 read it to find the public half): read-only,
// computed from CKA_VALUE.
var ecPrivateTable = table{
	value(ck.CKA_EC_PARAMS, KindBytes, MustCreate|NotGenerate|NotUnwrap),
	value(ck.CKA_VALUE, KindBytes, MustCreate|NotGenerate|NotUnwrap|Sensitive),
	value(ck.CKA_EC_POINT, KindBytes, ReadOnly|Derived),
}

// Mechanisms spec, "AES secret key objects", "Generic secret key objects"
// and "DES3 secret key objects":
// CKA_VALUE 1,4,6,7; CKA_VALUE_LEN 2,3 (the tables also mark it 6, but the
// unwrap mechanisms truncate "according to ... the CKA_VALUE_LEN attribute
// of the template", so we accept it on unwrap). DES3 has no CKA_VALUE_LEN.
var secretValueTable = table{
	value(ck.CKA_VALUE, KindBytes, MustCreate|NotGenerate|NotUnwrap|Sensitive),
}

var valueLenTable = table{
	value(ck.CKA_VALUE_LEN, KindULong, NotCreate|MustGenerate|Derived),
}

// PKCS #11 3.2, "ML-KEM public key objects" and "ML-KEM private key
// objects". CKA_PARAMETER_SET: MUST on create, MUST on generate for the
// public key (the private key takes the pair's). The public CKA_VALUE is
// FIPS 203's encapsulation key. The private key has CKA_SEED (d || z, 64
// bytes) and CKA_VALUE, the expanded decapsulation key, both sensitive. The
// spec asks for at least one of them on C_CreateObject and lets a token
// refuse one alone: gohsm needs the seed (crypto/mlkem decapsulates from it
// and cannot load an expanded key), so CKA_SEED is required; CKA_VALUE is
// computed from it and, when given too, must match it (Derived:
// CKR_ATTRIBUTE_VALUE_INVALID otherwise). docs/design.md, "ML-KEM".
var mlkemPublicTable = table{
	value(ck.CKA_PARAMETER_SET, KindULong, MustCreate|MustGenerate),
	value(ck.CKA_VALUE, KindBytes, MustCreate|NotGenerate),
	empty(ck.CKA_ENCAPSULATE_TEMPLATE, KindTemplate, 0),
}

var mlkemPrivateTable = table{
	value(ck.CKA_PARAMETER_SET, KindULong, MustCreate|Derived),
	value(ck.CKA_SEED, KindBytes, MustCreate|NotGenerate|NotUnwrap|Sensitive),
	value(ck.CKA_VALUE, KindBytes, NotGenerate|NotUnwrap|Sensitive|Derived),
	empty(ck.CKA_DECAPSULATE_TEMPLATE, KindTemplate, 0),
}

// schemaKey names one concrete kind of object.
type schemaKey struct {
	class   ck.ObjectClass
	keyType ck.KeyType
}

// Schema is the composed attribute table of one (class, key type).
type Schema struct {
	Class   ck.ObjectClass
	KeyType ck.KeyType // NoKeyType for data objects and certificates
	// parts are the tables the schema is composed of; attrs, their rows
	// indexed by attribute, is built from them on first use (table), not
	// at package init: a process that makes or reads no object does not
	// need the schemas (docs/bench.md, "Start-up").
	parts []table
	attrs atomic.Pointer[rowIndex]
	mu    sync.Mutex // serialises the build
	// proto is the template BuildAttrs starts from under the tables'
	// defaults (prototype), made at its first use.
	proto atomic.Pointer[prototype]
}

// rowIndex is a schema's rows, in ascending attribute order, and where
// each attribute's row is by column (columns): reading an attribute's
// rule is two array reads rather than a map lookup, which the building
// of a key does about 30 times (docs/bench.md, "ML-KEM-768: the
// attribute table").
type rowIndex struct {
	cols *columns
	rows []Attr
	// at holds, by column, 1 + the index in rows of the column's
	// attribute; 0 when the schema lacks it.
	at []uint8
	// conv is the schema's key conversion (converters), nil for data
	// objects and certificates.
	conv *converter
}

// row is the row of attribute a, if the schema has it.
func (ri *rowIndex) row(a ck.AttributeType) (*Attr, bool) {
	if c := ri.cols.of(a); c != 0 {
		if i := ri.at[c]; i != 0 {
			return &ri.rows[i-1], true
		}
	}
	return nil, false
}

// columns numbers every attribute type some schema has, from 1 (0: no
// schema has it). The standard attribute types the schemas use are
// small (below 0x640), so most are found by index in low; the others
// (CKF_ARRAY_ATTRIBUTE ones such as CKA_WRAP_TEMPLATE, and any
// vendor-defined one a schema gains) in high.
type columns struct {
	low  []uint8 // by attribute type, up to the largest low one a schema has
	high map[ck.AttributeType]uint8
	n    int // the number of columns, 1..n
}

// lowLimit bounds the attribute types columns keeps in low: the
// standard, non-array ones (PKCS #11 3.2's largest is below 0x700).
const lowLimit = 0x1000

// of is attribute a's column, 0 when no schema has a.
func (c *columns) of(a ck.AttributeType) int {
	if a < ck.AttributeType(len(c.low)) {
		return int(c.low[a])
	}
	return int(c.high[a])
}

// allColumns numbers the attributes of every schema (schemas).
var allColumns = sync.OnceValue(func() *columns {
	seen := map[ck.AttributeType]bool{}
	for _, s := range schemas() {
		for _, p := range s.parts {
			for _, r := range p {
				seen[r.Type] = true
			}
		}
	}
	return newColumns(slices.Collect(maps.Keys(seen)))
})

// newColumns numbers types (distinct) in ascending order, so that the
// numbering does not depend on a map's order and a column's number orders
// its attribute among the others. There may be at most 255 (a uint8
// each).
func newColumns(types []ck.AttributeType) *columns {
	types = slices.Sorted(slices.Values(types))
	if len(types) > 255 {
		panic(fmt.Sprintf("attrs: %d attribute types in the schemas, more than a column index holds", len(types)))
	}
	c := &columns{high: map[ck.AttributeType]uint8{}, n: len(types)}
	maxLow := -1
	for _, a := range types {
		if a < lowLimit {
			maxLow = int(a)
		}
	}
	c.low = make([]uint8, maxLow+1)
	for i, a := range types {
		if a < lowLimit {
			c.low[a] = uint8(i + 1)
		} else {
			c.high[a] = uint8(i + 1)
		}
	}
	return c
}

// index returns the schema's row index, building it on the first call;
// after that, one atomic load (a plain load on amd64 and arm64) and a
// branch.
func (s *Schema) index() *rowIndex {
	if ri := s.attrs.Load(); ri != nil {
		return ri
	}
	return s.build()
}

func (s *Schema) build() *rowIndex {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ri := s.attrs.Load(); ri != nil {
		return ri
	}
	m := map[ck.AttributeType]Attr{}
	for _, p := range s.parts {
		for _, a := range p {
			m[a.Type] = a
		}
	}
	ri := &rowIndex{cols: allColumns(), rows: make([]Attr, 0, len(m))}
	for _, a := range slices.Sorted(maps.Keys(m)) {
		ri.rows = append(ri.rows, m[a])
	}
	ri.at = make([]uint8, ri.cols.n+1)
	for i, r := range ri.rows {
		c := ri.cols.of(r.Type)
		if c == 0 {
			// A schema composed outside schemas() with an attribute no
			// schema of schemas() has: a programming error.
			panic(fmt.Sprintf("attrs: %s: %s has no column", s, r.Type))
		}
		ri.at[c] = uint8(i + 1)
	}
	if conv, ok := converters()[schemaKey{s.Class, s.KeyType}]; ok {
		ri.conv = &conv
	}
	s.attrs.Store(ri)
	return ri
}

// table returns the schema's rows in ascending attribute order
// (deterministic errors); callers do not modify it.
func (s *Schema) table() []Attr { return s.index().rows }

// row returns the row for a, if a belongs to the schema; callers do not
// modify it.
func (s *Schema) row(a ck.AttributeType) (*Attr, bool) { return s.index().row(a) }

// has reports whether a belongs to the schema.
func (s *Schema) has(a ck.AttributeType) bool {
	_, ok := s.index().row(a)
	return ok
}

// Attr returns the row for a, if a belongs to the schema.
func (s *Schema) Attr(a ck.AttributeType) (Attr, bool) {
	if r, ok := s.row(a); ok {
		return *r, true
	}
	return Attr{}, false
}

// Attrs returns every row of the schema (a copy, in ascending attribute
// order).
func (s *Schema) Attrs() []Attr { return slices.Clone(s.table()) }

func compose(class ck.ObjectClass, keyType ck.KeyType, parts ...table) *Schema {
	return &Schema{Class: class, KeyType: keyType, parts: parts}
}

// schemas is every (class, key type) gohsm stores. The map is made on
// first use, not at package initialisation, like each schema's table
// (docs/bench.md, "One-shot processes, third pass").
var schemas = sync.OnceValue(func() map[schemaKey]*Schema {
	schemasMade.Store(true)
	m := map[schemaKey]*Schema{}
	add := func(class ck.ObjectClass, kt ck.KeyType, parts ...table) {
		m[schemaKey{class, kt}] = compose(class, kt, parts...)
	}
	storage := []table{objectTable, storageTable}
	cat := func(a []table, b ...table) []table { return append(append([]table{}, a...), b...) }
	pub := cat(storage, keyTable, publicTable)
	priv := cat(storage, keyTable, privateTable)
	sec := cat(storage, keyTable, secretTable)

	add(ck.CKO_DATA, NoKeyType, cat(storage, dataTable)...)
	add(ck.CKO_CERTIFICATE, NoKeyType, cat(storage, certificateTable, x509Table)...)

	add(ck.CKO_PUBLIC_KEY, ck.CKK_RSA, cat(pub, rsaPublicTable, usage(ck.CKA_ENCRYPT, ck.CKA_VERIFY, ck.CKA_WRAP))...)
	add(ck.CKO_PRIVATE_KEY, ck.CKK_RSA, cat(priv, rsaPrivateTable, usage(ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_UNWRAP))...)
	add(ck.CKO_PUBLIC_KEY, ck.CKK_EC, cat(pub, ecPublicTable, usage(ck.CKA_VERIFY))...)
	add(ck.CKO_PRIVATE_KEY, ck.CKK_EC, cat(priv, ecPrivateTable, usage(ck.CKA_SIGN))...)
	add(ck.CKO_PUBLIC_KEY, ck.CKK_EC_EDWARDS, cat(pub, ecPublicTable, usage(ck.CKA_VERIFY))...)
	add(ck.CKO_PRIVATE_KEY, ck.CKK_EC_EDWARDS, cat(priv, ecPrivateTable, usage(ck.CKA_SIGN))...)
	// Mechanisms spec, "Montgomery Elliptic curve public/private key
	// objects": the same attributes; X25519 keys only agree keys, so the
	// private key derives by default and the public key does nothing.
	add(ck.CKO_PUBLIC_KEY, ck.CKK_EC_MONTGOMERY, cat(pub, ecPublicTable)...)
	add(ck.CKO_PRIVATE_KEY, ck.CKK_EC_MONTGOMERY, cat(priv, ecPrivateTable, usage(ck.CKA_DERIVE))...)

	add(ck.CKO_PUBLIC_KEY, ck.CKK_ML_DSA, cat(pub, mldsaPublicTable, usage(ck.CKA_VERIFY))...)
	add(ck.CKO_PRIVATE_KEY, ck.CKK_ML_DSA, cat(priv, mldsaPrivateTable, usage(ck.CKA_SIGN))...)
	// ML-KEM keys encapsulate and decapsulate by default, and nothing else.
	add(ck.CKO_PUBLIC_KEY, ck.CKK_ML_KEM, cat(pub, mlkemPublicTable, usage(ck.CKA_ENCAPSULATE))...)
	add(ck.CKO_PRIVATE_KEY, ck.CKK_ML_KEM, cat(priv, mlkemPrivateTable, usage(ck.CKA_DECAPSULATE))...)

	add(ck.CKO_SECRET_KEY, ck.CKK_AES, cat(sec, secretValueTable, valueLenTable,
		usage(ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_VERIFY, ck.CKA_WRAP, ck.CKA_UNWRAP))...)
	add(ck.CKO_SECRET_KEY, ck.CKK_GENERIC_SECRET, cat(sec, secretValueTable, valueLenTable,
		usage(ck.CKA_SIGN, ck.CKA_VERIFY))...)
	add(ck.CKO_SECRET_KEY, ck.CKK_DES3, cat(sec, secretValueTable,
		usage(ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_WRAP, ck.CKA_UNWRAP))...)
	addHMACSchemas(m)
	return m
})

// schemasMade records that schemas ran (TestSchemasLazy).
var schemasMade atomic.Bool

// Lookup returns the schema of (class, keyType); keyType is ignored for
// classes that are not keys.
func Lookup(class ck.ObjectClass, keyType ck.KeyType) (*Schema, bool) {
	i := keyType
	if !isKeyClass(class) {
		keyType, i = NoKeyType, 0
	}
	if ix := schemaIndex(); class < ck.ObjectClass(len(ix.byClass)) && i < ck.KeyType(len(ix.byClass[class])) {
		if s := ix.byClass[class][i]; s != nil {
			return s, true
		}
	}
	s, ok := schemas()[schemaKey{class, keyType}]
	return s, ok
}

// schemasByClass is schemas as arrays: by class, then by key type (at 0
// for the classes that are not keys), for the standard classes and key
// types (small numbers); Lookup finds the others in the map. A key is
// made after two or three lookups.
type schemasByClass struct {
	byClass [ck.CKO_SECRET_KEY + 1][]*Schema
}

// keyTypeLimit bounds the key types schemasByClass holds by index.
const keyTypeLimit = 0x100

var schemaIndex = sync.OnceValue(func() *schemasByClass {
	ix := &schemasByClass{}
	for k, s := range schemas() {
		i := k.keyType
		if !isKeyClass(k.class) {
			i = 0
		}
		if k.class >= ck.ObjectClass(len(ix.byClass)) || i >= keyTypeLimit {
			continue
		}
		byType := ix.byClass[k.class]
		if int(i) >= len(byType) {
			byType = append(byType, make([]*Schema, int(i)+1-len(byType))...)
		}
		byType[i] = s
		ix.byClass[k.class] = byType
	}
	return ix
})

func isKeyClass(c ck.ObjectClass) bool {
	return c == ck.CKO_PUBLIC_KEY || c == ck.CKO_PRIVATE_KEY || c == ck.CKO_SECRET_KEY
}
