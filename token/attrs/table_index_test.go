package attrs

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// rowsByMap is a schema's rows as the tables compose them (a later part's
// row replaces an earlier one's), in a map: what the schema's table was
// before it was indexed by column, and what the index must agree with.
func rowsByMap(s *Schema) map[ck.AttributeType]Attr {
	m := map[ck.AttributeType]Attr{}
	for _, p := range s.parts {
		for _, r := range p {
			m[r.Type] = r
		}
	}
	return m
}

// probeTypes are attribute types to look up: every type of every schema,
// every standard number below 0x700 and the same with
// CKF_ARRAY_ATTRIBUTE, the ends of the column index's dense part (its
// last entry and the one just past it), vendor-defined ones and the
// largest.
func probeTypes(t *testing.T) []ck.AttributeType {
	t.Helper()
	seen := map[ck.AttributeType]bool{}
	for _, s := range schemas() {
		for a := range rowsByMap(s) {
			seen[a] = true
		}
	}
	for a := ck.AttributeType(0); a < 0x700; a++ {
		seen[a] = true
		seen[a|ck.AttributeType(ck.CKF_ARRAY_ATTRIBUTE)] = true
	}
	c := allColumns()
	require.NotEmpty(t, c.low)
	end := ck.AttributeType(len(c.low))
	for _, a := range []ck.AttributeType{end - 1, end, end + 1, lowLimit - 1, lowLimit,
		ck.CKA_VENDOR_DEFINED, ck.CKA_VENDOR_DEFINED + 1, ck.CKA_VENDOR_DEFINED | 0x1f, ^ck.AttributeType(0)} {
		seen[a] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// TestSchemaIndexAgreesWithTables: for every schema and every probed
// attribute type, the row the column index finds (or its absence) is the
// row the composed tables give it; the rows are in ascending order.
func TestSchemaIndexAgreesWithTables(t *testing.T) {
	probes := probeTypes(t)
	c := allColumns()
	require.Less(t, c.n, 256)
	for _, s := range schemas() {
		want := rowsByMap(s)
		for _, a := range probes {
			got, ok := s.Attr(a)
			w, wok := want[a]
			if !assert.Equal(t, wok, ok, "%s %s", s, a) {
				continue
			}
			assert.Equal(t, w, got, "%s %s", s, a)
		}
		rows := s.table()
		assert.Len(t, rows, len(want), s.String())
		for i := 1; i < len(rows); i++ {
			assert.Less(t, rows[i-1].Type, rows[i].Type, s.String())
		}
	}
	// The high attributes the schemas have are found through the map.
	sec, ok := Lookup(ck.CKO_SECRET_KEY, ck.CKK_AES)
	require.True(t, ok)
	for _, a := range []ck.AttributeType{ck.CKA_WRAP_TEMPLATE, ck.CKA_UNWRAP_TEMPLATE, ck.CKA_ALLOWED_MECHANISMS} {
		require.GreaterOrEqual(t, a, ck.AttributeType(len(c.low)), "%s is in the dense part", a)
		_, ok := sec.Attr(a)
		assert.True(t, ok, "%s", a)
	}
	_, ok = sec.Attr(ck.CKA_DERIVE_TEMPLATE)
	assert.False(t, ok, "a secret key has no CKA_DERIVE_TEMPLATE")
}

// TestColumns: the column numbers follow the attribute types' order,
// dense ones and the others (vendor-defined, CKF_ARRAY_ATTRIBUTE) alike;
// a type not numbered, one just past the dense part's end and the largest
// have none.
func TestColumns(t *testing.T) {
	vendor := ck.CKA_VENDOR_DEFINED | 0x1234
	types := []ck.AttributeType{vendor, ck.CKA_SEED, ck.CKA_WRAP_TEMPLATE, ck.CKA_CLASS, ck.CKA_VALUE, lowLimit - 1, lowLimit}
	c := newColumns(types)
	assert.Equal(t, len(types), c.n)
	assert.Len(t, c.low, int(lowLimit))
	prev := 0
	for _, a := range slices.Sorted(slices.Values(types)) {
		col := c.of(a)
		assert.Greater(t, col, prev, "%s", a)
		prev = col
	}
	assert.Equal(t, len(types), c.of(vendor), "the largest type has the last column")
	for _, a := range []ck.AttributeType{ck.CKA_TOKEN, lowLimit + 1, vendor + 1, ck.CKA_VENDOR_DEFINED, ^ck.AttributeType(0)} {
		assert.Zero(t, c.of(a), "%s", a)
	}
	// Without a type at the dense part's limit, the dense part ends at
	// the largest small type: the next one goes to the map, and misses.
	c = newColumns([]ck.AttributeType{ck.CKA_CLASS, ck.CKA_SEED, vendor})
	require.Len(t, c.low, int(ck.CKA_SEED)+1)
	assert.Equal(t, 2, c.of(ck.CKA_SEED))
	assert.Zero(t, c.of(ck.CKA_SEED+1))
	assert.Equal(t, 3, c.of(vendor))
	assert.Panics(t, func() {
		many := make([]ck.AttributeType, 256)
		for i := range many {
			many[i] = ck.AttributeType(i)
		}
		newColumns(many)
	}, "more types than a uint8 numbers")
}

// TestPrototypeIndexAgreesWithMap: a prototype's values by column are its
// map's, for every schema under the tables' defaults and under a policy
// with defaults of its own; so are the reads of an Attrs built over it.
func TestPrototypeIndexAgreesWithMap(t *testing.T) {
	probes := probeTypes(t)
	policy := &Policy{
		Defaults: map[ck.ObjectClass]map[ck.AttributeType]bool{
			ck.CKO_SECRET_KEY:  {ck.CKA_ENCRYPT: false, ck.CKA_SIGN: false},
			ck.CKO_PUBLIC_KEY:  {ck.CKA_PRIVATE: true},
			ck.CKO_PRIVATE_KEY: {ck.CKA_SIGN: false},
		},
		Prototypes: NewPrototypes(),
	}
	for _, p := range []*Policy{nil, policy} {
		for _, s := range schemas() {
			pr := s.prototypeFor(p)
			for _, a := range probes {
				got, ok := pr.get(a)
				want, wok := pr.t[a]
				assert.Equal(t, wok, ok, "%s %s", s, a)
				assert.Equal(t, want, got, "%s %s", s, a)
				if wok {
					assert.NotNil(t, got, "%s %s: a present value is not nil", s, a)
				}
			}
		}
	}
	x, err := BuildAttrs(policy, OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN,
		Template{ck.CKA_VALUE_LEN: ULong(32), ck.CKA_LABEL: []byte("k"), ck.CKA_DECRYPT: Bool(false)})
	require.NoError(t, err)
	tm := x.Template()
	for _, a := range probes {
		got, ok := x.Get(a)
		want, wok := tm[a]
		assert.Equal(t, wok, ok, "%s", a)
		assert.Equal(t, want, got, "%s", a)
	}
	assert.Equal(t, Bool(false), tm[ck.CKA_ENCRYPT], "the policy's default")
	assert.Equal(t, Bool(true), tm[ck.CKA_WRAP], "the table's default")
}

// TestLookupIndex: Lookup finds by its arrays what the schema map holds,
// for every schema and for classes and key types it lacks: a key class
// with NoKeyType, vendor-defined classes and key types, key types past
// the arrays.
func TestLookupIndex(t *testing.T) {
	for k, s := range schemas() {
		got, ok := Lookup(k.class, k.keyType)
		assert.True(t, ok, "%s", s)
		assert.Same(t, s, got, "%s", s)
	}
	classes := []ck.ObjectClass{ck.CKO_DATA, ck.CKO_CERTIFICATE, ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY,
		ck.CKO_SECRET_KEY, ck.CKO_SECRET_KEY + 1, ck.CKO_VENDOR_DEFINED, ck.CKO_VENDOR_DEFINED | 3}
	var types []ck.KeyType
	for kt := ck.KeyType(0); kt < 0x60; kt++ {
		types = append(types, kt)
	}
	types = append(types, keyTypeLimit-1, keyTypeLimit, NoKeyType, ck.CKK_VENDOR_DEFINED, ck.CKK_VENDOR_DEFINED|1)
	for _, c := range classes {
		for _, kt := range types {
			key := schemaKey{c, kt}
			if !isKeyClass(c) {
				key.keyType = NoKeyType
			}
			want, wok := schemas()[key]
			got, ok := Lookup(c, kt)
			assert.Equal(t, wok, ok, "%s %s", c, kt)
			assert.Same(t, want, got, "%s %s", c, kt)
		}
	}
}

// TestBuildFirstBadAttribute: of several bad attributes, the one reported
// is the first in ascending type order whatever the map's order, for a
// short template (sorted by insertion) and a long one (slices.SortFunc).
func TestBuildFirstBadAttribute(t *testing.T) {
	short := Template{
		ck.CKA_VENDOR_DEFINED | 5: {1},       // foreign: CKR_ATTRIBUTE_TYPE_INVALID
		ck.CKA_MODULUS:            {1},       // foreign to AES
		ck.CKA_VALUE:              {1, 2, 3}, // not on generate: CKR_TEMPLATE_INCONSISTENT
		ck.CKA_VALUE_LEN:          ULong(32),
	}
	long := Template{
		ck.CKA_LABEL: []byte("x"), ck.CKA_ID: []byte("i"), ck.CKA_TOKEN: Bool(false),
		ck.CKA_PRIVATE: Bool(true), ck.CKA_ENCRYPT: Bool(true), ck.CKA_DECRYPT: Bool(true),
		ck.CKA_SIGN: Bool(true), ck.CKA_VERIFY: Bool(true), ck.CKA_WRAP: Bool(true),
		ck.CKA_UNWRAP: Bool(true), ck.CKA_DERIVE: Bool(false), ck.CKA_VALUE_LEN: ULong(32),
		ck.CKA_START_DATE: []byte("2026"), // not a CK_DATE: CKR_ATTRIBUTE_VALUE_INVALID
		ck.CKA_END_DATE:   []byte("x"),
		ck.CKA_LOCAL:      Bool(true), // read-only
		ck.CKA_MODULUS:    {1},
	}
	require.Greater(t, len(long), 12)
	cases := []struct {
		name  string
		t     Template
		first ck.AttributeType
		rv    ck.RV
	}{
		{"short", short, ck.CKA_VALUE, ck.CKR_TEMPLATE_INCONSISTENT},
		{"long", long, ck.CKA_START_DATE, ck.CKR_ATTRIBUTE_VALUE_INVALID},
	}
	for _, c := range cases {
		for range 50 {
			_, err := BuildAttrs(nil, OpGenerate, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_AES_KEY_GEN, c.t)
			require.Error(t, err, c.name)
			requireRV(t, err, c.rv)
			require.Contains(t, err.Error(), c.first.String(), c.name)
		}
	}
}

// TestAddValueTo: AddValueTo makes the attributes AddMaterialTo makes of
// the material Template{CKA_VALUE: value}, every one and the check value
// computed when read, for the secret key types, with and without a
// CKA_VALUE_LEN or CKA_CHECK_VALUE in the template; and the same errors.
func TestAddValueTo(t *testing.T) {
	aes := bytes.Repeat([]byte{0x42}, 32)
	cases := []struct {
		kt    ck.KeyType
		tmpl  Template
		value []byte
	}{
		{ck.CKK_AES, Template{}, aes},
		{ck.CKK_AES, Template{ck.CKA_VALUE_LEN: ULong(32)}, aes},
		{ck.CKK_AES, Template{ck.CKA_VALUE_LEN: ULong(16)}, aes},
		{ck.CKK_AES, Template{ck.CKA_CHECK_VALUE: CheckValue(ck.CKK_AES, aes)}, aes},
		{ck.CKK_AES, Template{ck.CKA_CHECK_VALUE: {1, 2, 3}}, aes},
		{ck.CKK_AES, Template{}, aes[:15]},
		{ck.CKK_DES3, Template{}, bytes.Repeat([]byte{0x13}, 24)},
		{ck.CKK_GENERIC_SECRET, Template{ck.CKA_SIGN: Bool(false)}, []byte{1, 2, 3}},
		{ck.CKK_SHA256_HMAC, Template{}, bytes.Repeat([]byte{9}, 100)},
		{ck.CKK_GENERIC_SECRET, Template{}, nil},
	}
	for _, c := range cases {
		mk := func() Attrs {
			x, err := BuildAttrs(nil, OpDerive, ck.CKO_SECRET_KEY, c.kt, ck.CKM_ML_KEM, c.tmpl)
			require.NoError(t, err)
			return x
		}
		a, b := mk(), mk()
		errA := AddMaterialTo(&a, Template{ck.CKA_VALUE: c.value})
		errB := AddValueTo(&b, c.value)
		require.Equal(t, errA == nil, errB == nil, "%s %v: %v / %v", c.kt, c.tmpl, errA, errB)
		if errA != nil {
			var rvA, rvB ck.RV
			require.True(t, errors.As(errA, &rvA) && errors.As(errB, &rvB))
			assert.Equal(t, rvA, rvB, "%s %v", c.kt, c.tmpl)
			continue
		}
		assert.Equal(t, a.Template(), b.Template(), "%s %v", c.kt, c.tmpl)
	}
}

// TestBuildKeyAllocs: building a C_EncapsulateKey key's attributes over
// its prototype and completing them with the value allocates the own
// values, the value's copy and the lazy check value, nothing else: the
// Attrs stays on the caller's stack (no interface between them), the
// schema and prototype are read by column, the length's encoding is
// shared.
func TestBuildKeyAllocs(t *testing.T) {
	tmpl := Template{ck.CKA_CLASS: ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: ULong(ck.ULong(ck.CKK_AES)),
		ck.CKA_TOKEN: Bool(false), ck.CKA_SENSITIVE: Bool(true), ck.CKA_ENCRYPT: Bool(true), ck.CKA_DECRYPT: Bool(true)}
	mat := Template{ck.CKA_VALUE: bytes.Repeat([]byte{7}, 32)}
	var p Policy // the standard profile's
	n := testing.AllocsPerRun(200, func() {
		x, err := BuildAttrs(&p, OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_ML_KEM, tmpl)
		if err != nil {
			panic(err)
		}
		if err := AddMaterialTo(&x, mat); err != nil {
			panic(err)
		}
		if _, ok := x.Get(ck.CKA_VALUE_LEN); !ok {
			panic("no CKA_VALUE_LEN")
		}
	})
	assert.LessOrEqual(t, n, 3.0, "allocations per key")
}

// TestBuildAttrsListLastValue: of a type a List gives twice, the last
// value counts, as in the map the C boundary made before: a bad earlier
// value is not reported, a bad later one is.
func TestBuildAttrsListLastValue(t *testing.T) {
	aes := Value{ck.CKA_KEY_TYPE, ULong(ck.ULong(ck.CKK_AES))}
	bad, good := Value{ck.CKA_SENSITIVE, []byte{2}}, Value{ck.CKA_SENSITIVE, []byte{0}}
	x, err := BuildAttrsList(nil, OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_ML_KEM, List{aes, bad, good})
	require.NoError(t, err)
	v, _ := x.Bool(ck.CKA_SENSITIVE)
	assert.False(t, v)
	_, err = BuildAttrsList(nil, OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_ML_KEM, List{good, aes, bad})
	require.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, werr := BuildAttrs(nil, OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_ML_KEM, List{good, aes, bad}.Template())
	assert.Equal(t, werr.Error(), err.Error())
	// The first bad attribute in type order, as BuildAttrs reports it.
	l := List{{ck.CKA_LABEL, []byte("x")}, {ck.CKA_VALUE_LEN, []byte{1}}, aes, {ck.CKA_ENCRYPT, []byte{7}}}
	_, err = BuildAttrsList(nil, OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_ML_KEM, l)
	_, werr = BuildAttrs(nil, OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_ML_KEM, l.Template())
	require.Error(t, err)
	assert.Equal(t, werr.Error(), err.Error())
	assert.Contains(t, err.Error(), "CKA_ENCRYPT")
}

// TestBuildKeyListAllocs: TestBuildKeyAllocs with the template as the
// KEM calls give it (a List, p11bench's 6 attributes): no more
// allocations than from the map.
func TestBuildKeyListAllocs(t *testing.T) {
	l := List{{ck.CKA_CLASS, ULong(ck.ULong(ck.CKO_SECRET_KEY))}, {ck.CKA_KEY_TYPE, ULong(ck.ULong(ck.CKK_AES))},
		{ck.CKA_TOKEN, Bool(false)}, {ck.CKA_SENSITIVE, Bool(true)}, {ck.CKA_ENCRYPT, Bool(true)}, {ck.CKA_DECRYPT, Bool(true)}}
	value := bytes.Repeat([]byte{7}, 32)
	var p Policy
	n := testing.AllocsPerRun(200, func() {
		x, err := BuildAttrsList(&p, OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_ML_KEM, l)
		if err != nil {
			panic(err)
		}
		if err := AddValueTo(&x, value); err != nil {
			panic(err)
		}
	})
	assert.LessOrEqual(t, n, 3.0, "allocations per key")
}
