package mechanisms

import (
	"bytes"
	"crypto/rand"
	"math/bits"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// ourDerive are this family's derive rows; the extra conformance check
// below applies to them only.
var ourDerive = map[ck.MechanismType]bool{
	ck.CKM_HKDF_DERIVE:               true,
	ck.CKM_HKDF_DATA:                 true,
	ck.CKM_SP800_108_COUNTER_KDF:     true,
	ck.CKM_CONCATENATE_BASE_AND_KEY:  true,
	ck.CKM_CONCATENATE_BASE_AND_DATA: true,
	ck.CKM_CONCATENATE_DATA_AND_BASE: true,
	ck.CKM_XOR_BASE_AND_DATA:         true,
	ck.CKM_EXTRACT_KEY_FROM_KEY:      true,
}

func init() {
	paramCases[ParamHKDF] = func(*testing.T, *Mechanism, *fixture) (any, []any) {
		p := HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_DATA, Salt: []byte("salt"), Info: []byte("info")}
		v := func(f func(*HKDFParams)) any { q := p; f(&q); return &q }
		return &p, []any{
			v(func(q *HKDFParams) { q.Info = []byte("inf0") }),
			v(func(q *HKDFParams) { q.Salt = []byte("sal7") }),
			v(func(q *HKDFParams) { q.SaltType, q.Salt = ck.CKF_HKDF_SALT_NULL, nil }),
			v(func(q *HKDFParams) { q.PRF = ck.CKM_SHA3_256 }),
			v(func(q *HKDFParams) { q.Extract = false }),
		}
	}
	paramCases[ParamSP800108] = func(*testing.T, *Mechanism, *fixture) (any, []any) {
		mk := func(prf ck.MechanismType, ctrBits int, little bool, label string, dkmBits int) any {
			return &SP800108Params{PRF: prf, Data: []PRFData{
				{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: ctrBits, LittleEndian: little},
				{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: []byte(label)},
				{Type: ck.CK_SP800_108_DKM_LENGTH, WidthBits: dkmBits, DKMMethod: ck.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS},
			}}
		}
		return mk(ck.CKM_SHA256_HMAC, 32, false, "label", 32), []any{
			mk(ck.CKM_SHA256_HMAC, 32, false, "labe1", 32),
			mk(ck.CKM_SHA256_HMAC, 16, false, "label", 32),
			mk(ck.CKM_SHA256_HMAC, 32, true, "label", 32),
			mk(ck.CKM_SHA256_HMAC, 32, false, "label", 16),
			mk(ck.CKM_SHA3_256_HMAC, 32, false, "label", 32),
		}
	}
	paramCases[ParamKeyHandle] = func(*testing.T, *Mechanism, *fixture) (any, []any) {
		return &KeyMaterial{Key: bytes.Repeat([]byte{0x42}, 24)}, []any{&KeyMaterial{Key: bytes.Repeat([]byte{0x43}, 24)}}
	}
	prevBytes := paramCases[ParamBytes]
	paramCases[ParamBytes] = func(t *testing.T, m *Mechanism, f *fixture) (any, []any) {
		if !ourDerive[m.Type] {
			if prevBytes == nil {
				t.Fatalf("no ParamBytes case for %v", m.Type)
			}
			return prevBytes(t, m, f)
		}
		// Variants change early bytes: XOR uses only as many as the key has.
		d := []byte("derivation data, 32 bytes long!!")
		d2 := slices.Clone(d)
		d2[7] ^= 0x80
		return d, []any{append([]byte{1}, d[1:]...), d2}
	}
	extraConformance = append(extraConformance, testDerive)
}

// kdfRow finds a KDF row: in the table once table.go lists kdfRows, until
// then in a guarded copy of kdfRows.
func kdfRow(t *testing.T, mech ck.MechanismType) *Mechanism {
	t.Helper()
	if m, ok := Lookup(mech); ok {
		return m
	}
	m, ok := kdfBuilt[mech]
	require.True(t, ok, "no row %v", mech)
	return m
}

var kdfBuilt, kdfSorted = build(kdfRows())

// TestKDFRows runs the suite's checks over kdfRows while table.go does not
// list them (TestConformance covers them once it does).
func TestKDFRows(t *testing.T) {
	for _, m := range kdfSorted {
		t.Run(m.Type.String(), func(t *testing.T) {
			if _, ok := Lookup(m.Type); ok {
				t.Logf("%v is in the table: TestConformance covers it", m.Type)
				return
			}
			if m.GenerateKey != nil {
				testKeyGen(t, m)
			}
			testDerive(t, m)
		})
	}
}

// testDerive: determinism, the length asked honoured, a different base key
// or parameter gives a different result, target key types, wrong keys and
// parameters refused.
func testDerive(t *testing.T, m *Mechanism) {
	if m.Derive == nil || !ourDerive[m.Type] {
		return
	}
	generic := func(n int) DeriveTarget { return DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: n} }
	// The rows without a natural length (extraction) get 16 bytes.
	cmpLen := 0
	if m.Type == ck.CKM_EXTRACT_KEY_FROM_KEY {
		cmpLen = 16
	}
	for _, f := range keyFixtures(t, ck.CKK_GENERIC_SECRET) {
		param, variants := testParamFor(t, m, &f)
		derive := func(key, p any, tg DeriveTarget) []byte {
			t.Helper()
			out, err := m.Derive(key, p, tg)
			require.NoError(t, err, "%v %d-byte key %+v", m.Type, f.size, tg)
			return out
		}
		for _, n := range []int{1, 8, 16} {
			a := derive(f.priv, param, generic(n))
			require.Len(t, a, n)
			assert.Equal(t, a, derive(f.priv, param, generic(n)), "deterministic")
		}
		ref := derive(f.priv, param, generic(cmpLen))
		require.NotEmpty(t, ref)
		assert.NotEqual(t, ref, derive(f.priv2, param, generic(cmpLen)), "another base key")
		for i, v := range variants {
			assert.NotEqual(t, ref, derive(f.priv, v, generic(cmpLen)), "variant %d", i)
		}

		_, err := m.Derive(f.priv, param, DeriveTarget{KeyType: ck.CKK_AES})
		assert.ErrorIs(t, err, ck.CKR_TEMPLATE_INCOMPLETE, "AES without CKA_VALUE_LEN")
		_, err = m.Derive(f.priv, param, DeriveTarget{KeyType: ck.CKK_AES, ValueLen: 20})
		assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, "AES of 20 bytes")
		_, err = m.Derive(f.priv, param, generic(maxDerivedBytes+1))
		assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		_, err = m.Derive(f.priv, param, generic(-1))
		assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		if out, err := m.Derive(f.priv, param, DeriveTarget{KeyType: ck.CKK_DES3}); err == nil {
			require.Len(t, out, 24)
			for _, c := range out {
				assert.Equal(t, 1, bits.OnesCount8(c)%2, "DES parity")
			}
		} else {
			assert.ErrorIs(t, err, ck.CKR_TEMPLATE_INCONSISTENT, "DES3 longer than the output")
		}

		for _, p := range []any{nil, &GCMParams{}, struct{}{}} {
			_, err := m.Derive(f.priv, p, generic(16))
			assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "%T", p)
		}
	}
	for _, k := range []any{"not a key", nil, keyFixtures(t, ck.CKK_EC)[0].priv} {
		_, err := m.Derive(k, nil, generic(16))
		assert.ErrorIs(t, err, ck.CKR_KEY_TYPE_INCONSISTENT, "%T", k)
	}
	param, _ := testParam(t, m)
	for _, k := range [][]byte{{}, make([]byte, m.MaxKeySize+1)} {
		_, err := m.Derive(k, param, generic(16))
		assert.ErrorIs(t, err, ck.CKR_KEY_SIZE_RANGE, "%d-byte key", len(k))
	}
}

func TestDeriveLen(t *testing.T) {
	g := ck.CKK_GENERIC_SECRET
	for _, c := range []struct {
		t            DeriveTarget
		natural, max int
		want         int
		err          ck.RV
	}{
		{DeriveTarget{g, 0}, 32, 64, 32, 0},
		{DeriveTarget{g, 10}, 32, 64, 10, 0},
		{DeriveTarget{g, 64}, 32, 64, 64, 0},
		{DeriveTarget{g, 65}, 32, 64, 0, ck.CKR_TEMPLATE_INCONSISTENT},
		{DeriveTarget{g, 0}, 0, 64, 0, ck.CKR_TEMPLATE_INCOMPLETE},
		{DeriveTarget{g, -1}, 32, 64, 0, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{DeriveTarget{ck.CKK_AES, 0}, 32, 64, 0, ck.CKR_TEMPLATE_INCOMPLETE},
		{DeriveTarget{ck.CKK_AES, 24}, 32, 64, 24, 0},
		{DeriveTarget{ck.CKK_AES, 33}, 32, 64, 0, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{DeriveTarget{ck.CKK_DES3, 0}, 0, 64, 24, 0},
		{DeriveTarget{ck.CKK_DES3, 0}, 32, 20, 0, ck.CKR_TEMPLATE_INCONSISTENT},
		{DeriveTarget{ck.CKK_DES3, 16}, 32, 64, 0, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{DeriveTarget{ck.CKK_DES2, 0}, 32, 64, 16, 0},
		{DeriveTarget{ck.CKK_SHA256_HMAC, 0}, 32, 64, 32, 0},
	} {
		n, err := deriveLen("test", c.t, c.natural, c.max)
		if c.err != 0 {
			assert.ErrorIs(t, err, c.err, "%+v", c)
			continue
		}
		require.NoError(t, err, "%+v", c)
		assert.Equal(t, c.want, n, "%+v", c)
	}
}

// The concatenation and XOR mechanisms, computed by hand.
func TestSimpleDerivations(t *testing.T) {
	base := []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}
	data := []byte{0xf0, 0xf1, 0xf2, 0xf3, 0xf4}
	g := func(n int) DeriveTarget { return DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: n} }
	for _, c := range []struct {
		mech  ck.MechanismType
		param any
		t     DeriveTarget
		want  string
		err   ck.RV
	}{
		{ck.CKM_CONCATENATE_BASE_AND_DATA, data, g(0), "0102030405060708f0f1f2f3f4", 0},
		{ck.CKM_CONCATENATE_BASE_AND_DATA, data, g(10), "0102030405060708f0f1", 0},
		{ck.CKM_CONCATENATE_BASE_AND_DATA, data, g(14), "", ck.CKR_TEMPLATE_INCONSISTENT},
		{ck.CKM_CONCATENATE_BASE_AND_DATA, []byte{}, g(0), "0102030405060708", 0},
		{ck.CKM_CONCATENATE_DATA_AND_BASE, data, g(0), "f0f1f2f3f40102030405060708", 0},
		{ck.CKM_CONCATENATE_DATA_AND_BASE, data, g(6), "f0f1f2f3f401", 0},
		{ck.CKM_CONCATENATE_BASE_AND_KEY, &KeyMaterial{Key: data}, g(0), "0102030405060708f0f1f2f3f4", 0},
		{ck.CKM_CONCATENATE_BASE_AND_KEY, &KeyMaterial{Key: "rsa"}, g(0), "", ck.CKR_KEY_TYPE_INCONSISTENT},
		{ck.CKM_CONCATENATE_BASE_AND_KEY, KeyHandle(7), g(0), "", ck.CKR_MECHANISM_PARAM_INVALID},
		{ck.CKM_XOR_BASE_AND_DATA, data, g(0), "f1f3f1f7f1", 0},
		{ck.CKM_XOR_BASE_AND_DATA, data, g(2), "f1f3", 0},
		{ck.CKM_XOR_BASE_AND_DATA, data, g(6), "", ck.CKR_TEMPLATE_INCONSISTENT},
		{ck.CKM_XOR_BASE_AND_DATA, append(slices.Clone(data), data...), g(0), "f1f3f1f7f1f6f6fa", 0},
		// DES keys get odd parity: 0x01..0x08 and f0 f1 ... adjusted.
		{ck.CKM_CONCATENATE_BASE_AND_DATA, bytes.Repeat([]byte{0}, 16), DeriveTarget{KeyType: ck.CKK_DES3},
			"0102020404070708" + "0101010101010101" + "0101010101010101", 0},
	} {
		m := kdfRow(t, c.mech)
		out, err := m.Derive(base, c.param, c.t)
		if c.err != 0 {
			assert.ErrorIs(t, err, c.err, "%v %+v", c.mech, c.t)
			continue
		}
		require.NoError(t, err, "%v %+v", c.mech, c.t)
		assert.Equal(t, c.want, hexs(out), "%v %+v", c.mech, c.t)
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}

// PKCS#11's example for CKM_EXTRACT_KEY_FROM_KEY ("Extraction of one key
// from another key"): from the base key 0x329F84A9, a 16-bit key starting at
// bit 21 wraps around to the key's first bits: 1001 0101 0010 0110 = 0x9526.
func TestExtractKeyFromKey(t *testing.T) {
	m := kdfRow(t, ck.CKM_EXTRACT_KEY_FROM_KEY)
	base := unhex("329f84a9")
	g := func(n int) DeriveTarget { return DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: n} }
	out, err := m.Derive(base, ck.ULong(21), g(2))
	require.NoError(t, err)
	assert.Equal(t, "9526", hexs(out))
	out, err = m.Derive(base, ck.ULong(0), g(4))
	require.NoError(t, err)
	assert.Equal(t, base, out)
	out, err = m.Derive(base, ck.ULong(8), g(4))
	require.NoError(t, err)
	assert.Equal(t, "9f84a932", hexs(out), "whole-byte rotation")

	_, err = m.Derive(base, ck.ULong(32), g(2))
	assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	_, err = m.Derive(base, ck.ULong(0), g(5))
	assert.ErrorIs(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = m.Derive(base, ck.ULong(0), g(0))
	assert.ErrorIs(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
}

// A derived AES key from a random base has the length asked.
func TestDeriveAESTarget(t *testing.T) {
	base := make([]byte, 32)
	_, _ = rand.Read(base)
	for _, mech := range []ck.MechanismType{ck.CKM_HKDF_DERIVE, ck.CKM_SP800_108_COUNTER_KDF, ck.CKM_CONCATENATE_BASE_AND_DATA} {
		m := kdfRow(t, mech)
		param, _ := testParam(t, m)
		for _, n := range []int{16, 24, 32} {
			out, err := m.Derive(base, param, DeriveTarget{KeyType: ck.CKK_AES, ValueLen: n})
			require.NoError(t, err, mech)
			assert.Len(t, out, n)
		}
	}
}
