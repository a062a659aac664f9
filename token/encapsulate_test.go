package token

import (
	"crypto/mlkem"
	"errors"
	"testing"

	"github.com/cloudflare/circl/kem/mlkem/mlkem512"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
	"gohsm/token/attrs"
)

func mlkemPair(t *testing.T, m *Module, h ck.ULong, set ck.ULong, pub, priv attrs.Template) (ck.ULong, ck.ULong, error) {
	t.Helper()
	if pub == nil {
		pub = attrs.Template{}
	}
	if priv == nil {
		priv = attrs.Template{}
	}
	pub[ck.CKA_PARAMETER_SET] = attrs.ULong(set)
	return m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_ML_KEM_KEY_PAIR_GEN}, pub, priv)
}

func attrBytes(t *testing.T, m *Module, h, o ck.ULong, a ck.AttributeType) []byte {
	t.Helper()
	res, err := m.GetAttributeValue(h, o, []ck.AttributeType{a})
	require.NoError(t, err)
	require.NoError(t, res[0].Err, "%v", a)
	return res[0].Value
}

func requireRV(t *testing.T, err error, want ck.RV) {
	t.Helper()
	var rv ck.RV
	require.True(t, errors.As(err, &rv), "error %v carries no CK_RV", err)
	require.Equal(t, want, rv, "%v", err)
}

// TestMLKEMRoundTrip: keys of the three parameter sets, encapsulation to a
// new AES key and decapsulation to one with the same value, checked against
// crypto/mlkem (circl for 512) with the stored seed; the private CKA_VALUE
// is the expanded key of that seed.
func TestMLKEMRoundTrip(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	for _, tc := range []struct {
		set    ck.ULong
		ekLen  int
		ctLen  int
		dkLen  int
		decaps func(seed, ct []byte) ([]byte, error)
	}{
		{ck.CKP_ML_KEM_512, mlkem512.PublicKeySize, mlkem512.CiphertextSize, mlkem512.PrivateKeySize, func(seed, ct []byte) ([]byte, error) {
			_, dk := mlkem512.NewKeyFromSeed(seed)
			ss := make([]byte, mlkem512.SharedKeySize)
			dk.DecapsulateTo(ss, ct)
			return ss, nil
		}},
		{ck.CKP_ML_KEM_768, mlkem.EncapsulationKeySize768, mlkem.CiphertextSize768, 2400, func(seed, ct []byte) ([]byte, error) {
			dk, err := mlkem.NewDecapsulationKey768(seed)
			if err != nil {
				return nil, err
			}
			return dk.Decapsulate(ct)
		}},
		{ck.CKP_ML_KEM_1024, mlkem.EncapsulationKeySize1024, mlkem.CiphertextSize1024, 3168, func(seed, ct []byte) ([]byte, error) {
			dk, err := mlkem.NewDecapsulationKey1024(seed)
			if err != nil {
				return nil, err
			}
			return dk.Decapsulate(ct)
		}},
	} {
		pub, priv, err := mlkemPair(t, m, h, tc.set, nil, attrs.Template{ck.CKA_SENSITIVE: attrs.Bool(false)})
		require.NoError(t, err)
		assert.Len(t, attrBytes(t, m, h, pub, ck.CKA_VALUE), tc.ekLen)
		assert.Equal(t, attrs.ULong(tc.set), attrBytes(t, m, h, priv, ck.CKA_PARAMETER_SET))
		seed := attrBytes(t, m, h, priv, ck.CKA_SEED)
		require.Len(t, seed, 64)
		expanded := attrBytes(t, m, h, priv, ck.CKA_VALUE)
		require.Len(t, expanded, tc.dkLen)
		// FIPS 203 dk = dk_PKE || ek || H(ek) || z: the public key and the
		// seed's z are in it.
		assert.Equal(t, attrBytes(t, m, h, pub, ck.CKA_VALUE), expanded[tc.dkLen-64-tc.ekLen:tc.dkLen-64])
		assert.Equal(t, seed[32:], expanded[tc.dkLen-32:])
		assert.Equal(t, []bool{true, true}, boolAttrs(t, m, h, pub, ck.CKA_ENCAPSULATE, ck.CKA_LOCAL))
		assert.Equal(t, []bool{true}, boolAttrs(t, m, h, priv, ck.CKA_DECAPSULATE))

		mech := Mechanism{Type: ck.CKM_ML_KEM}
		secretTmpl := func() attrs.Template {
			return attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)),
				ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)), ck.CKA_SENSITIVE: attrs.Bool(false),
				ck.CKA_EXTRACTABLE: attrs.Bool(true), ck.CKA_ENCRYPT: attrs.Bool(true)}
		}
		// Length query and short buffer: the length, no key.
		n, k, err := m.EncapsulateKey(h, mech, pub, attrs.ListOf(secretTmpl()), Out{Query: true})
		require.NoError(t, err)
		assert.Equal(t, tc.ctLen, n)
		assert.Zero(t, k)
		n, k, err = m.EncapsulateKey(h, mech, pub, attrs.ListOf(secretTmpl()), Out{Buf: make([]byte, tc.ctLen-1)})
		requireRV(t, err, ck.CKR_BUFFER_TOO_SMALL)
		assert.Equal(t, tc.ctLen, n)
		assert.Zero(t, k)

		ct := make([]byte, tc.ctLen)
		n, ek, err := m.EncapsulateKey(h, mech, pub, attrs.ListOf(secretTmpl()), Out{Buf: ct})
		require.NoError(t, err)
		require.Equal(t, tc.ctLen, n)
		dk, err := m.DecapsulateKey(h, mech, priv, attrs.ListOf(secretTmpl()), ct)
		require.NoError(t, err)
		v1 := attrBytes(t, m, h, ek, ck.CKA_VALUE)
		v2 := attrBytes(t, m, h, dk, ck.CKA_VALUE)
		require.Len(t, v1, 32)
		assert.Equal(t, v1, v2, "decapsulated key equals the encapsulated one")
		want, err := tc.decaps(seed, ct)
		require.NoError(t, err)
		assert.Equal(t, want, v1, "crypto/mlkem agrees with the stored seed")
		// A derived key's rules: not local.
		assert.Equal(t, []bool{false}, boolAttrs(t, m, h, ek, ck.CKA_LOCAL))
		assert.Equal(t, []bool{false}, boolAttrs(t, m, h, dk, ck.CKA_LOCAL))
		// The private key was not sensitive: the decapsulated key is never
		// "always sensitive"; the encapsulated one (from a public key) is
		// as sensitive as made.
		assert.Equal(t, []bool{false, false}, boolAttrs(t, m, h, dk, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE))

		// Implicit rejection: a tampered ciphertext gives another key.
		ct[0] ^= 1
		bad, err := m.DecapsulateKey(h, mech, priv, attrs.ListOf(secretTmpl()), ct)
		require.NoError(t, err)
		assert.NotEqual(t, v1, attrBytes(t, m, h, bad, ck.CKA_VALUE))
		// Wrong size.
		_, err = m.DecapsulateKey(h, mech, priv, attrs.ListOf(secretTmpl()), ct[1:])
		requireRV(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
		// CKA_VALUE_LEN other than 32.
		tmpl := secretTmpl()
		tmpl[ck.CKA_VALUE_LEN] = attrs.ULong(16)
		_, err = m.DecapsulateKey(h, mech, priv, attrs.ListOf(tmpl), ct)
		requireRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
		// The wrong half of the pair.
		_, _, err = m.EncapsulateKey(h, mech, priv, attrs.ListOf(secretTmpl()), Out{Buf: make([]byte, tc.ctLen)})
		requireRV(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
		_, err = m.DecapsulateKey(h, mech, pub, attrs.ListOf(secretTmpl()), ct)
		requireRV(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	}
}

// TestMLKEMUsageAndDefaults: CKA_ENCAPSULATE / CKA_DECAPSULATE false refuse
// the operation; without a template the new key is a sensitive
// generic secret; a sensitive private key makes always-sensitive keys and
// reveals neither its seed nor its expanded key.
func TestMLKEMUsageAndDefaults(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	mech := Mechanism{Type: ck.CKM_ML_KEM}

	_, _, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_ML_KEM_KEY_PAIR_GEN}, attrs.Template{}, attrs.Template{})
	require.Error(t, err, "no CKA_PARAMETER_SET")

	pub, priv, err := mlkemPair(t, m, h, ck.CKP_ML_KEM_768,
		attrs.Template{ck.CKA_ENCAPSULATE: attrs.Bool(false)}, attrs.Template{ck.CKA_DECAPSULATE: attrs.Bool(false)})
	require.NoError(t, err)
	_, _, err = m.EncapsulateKey(h, mech, pub, nil, Out{Buf: make([]byte, 2000)})
	requireRV(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	_, err = m.DecapsulateKey(h, mech, priv, nil, make([]byte, mlkem.CiphertextSize768))
	requireRV(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)

	pub, priv, err = mlkemPair(t, m, h, ck.CKP_ML_KEM_768, nil, nil)
	require.NoError(t, err)
	ct := make([]byte, mlkem.CiphertextSize768)
	_, ek, err := m.EncapsulateKey(h, mech, pub, nil, Out{Buf: ct})
	require.NoError(t, err)
	dk, err := m.DecapsulateKey(h, mech, priv, nil, ct)
	require.NoError(t, err)
	for _, k := range []ck.ULong{ek, dk} {
		assert.Equal(t, attrs.ULong(ck.ULong(ck.CKK_GENERIC_SECRET)), attrBytes(t, m, h, k, ck.CKA_KEY_TYPE))
		assert.Equal(t, []bool{true, true, true}, boolAttrs(t, m, h, k, ck.CKA_SENSITIVE, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_EXTRACTABLE))
	}
	// The seed and expanded key of a sensitive private key are not revealed.
	res, err := m.GetAttributeValue(h, priv, []ck.AttributeType{ck.CKA_SEED, ck.CKA_VALUE})
	require.NoError(t, err)
	requireRV(t, res[0].Err, ck.CKR_ATTRIBUTE_SENSITIVE)
	requireRV(t, res[1].Err, ck.CKR_ATTRIBUTE_SENSITIVE)
}

// TestMLKEMImport: C_CreateObject takes an ML-KEM private key as its seed,
// alone or with its expanded key (CKA_VALUE, which must be the seed's), and
// a public key as its encapsulation key; an expanded key alone is
// CKR_TEMPLATE_INCOMPLETE (docs/design.md, "ML-KEM").
func TestMLKEMImport(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	dk, err := mlkem.GenerateKey768()
	require.NoError(t, err)
	privTmpl := func(set ck.ULong, a attrs.Template) attrs.Template {
		t := attrs.Template{
			ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_ML_KEM)),
			ck.CKA_PARAMETER_SET: attrs.ULong(set), ck.CKA_DECAPSULATE: attrs.Bool(true), ck.CKA_SENSITIVE: attrs.Bool(false),
		}
		for k, v := range a {
			t[k] = v
		}
		return t
	}
	priv, err := m.CreateObject(h, privTmpl(ck.CKP_ML_KEM_768, attrs.Template{ck.CKA_SEED: dk.Bytes()}))
	require.NoError(t, err)
	pub, err := m.CreateObject(h, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PUBLIC_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_ML_KEM)),
		ck.CKA_PARAMETER_SET: attrs.ULong(ck.CKP_ML_KEM_768), ck.CKA_VALUE: dk.EncapsulationKey().Bytes(),
	})
	require.NoError(t, err)
	ct := make([]byte, mlkem.CiphertextSize768)
	_, ek, err := m.EncapsulateKey(h, Mechanism{Type: ck.CKM_ML_KEM}, pub, attrs.ListOf(attrs.Template{ck.CKA_SENSITIVE: attrs.Bool(false)}), Out{Buf: ct})
	require.NoError(t, err)
	want, err := dk.Decapsulate(ct)
	require.NoError(t, err)
	assert.Equal(t, want, attrBytes(t, m, h, ek, ck.CKA_VALUE))
	_, err = m.DecapsulateKey(h, Mechanism{Type: ck.CKM_ML_KEM}, priv, nil, ct)
	require.NoError(t, err)

	// The expanded key computed from the seed; given with it, it must match.
	expanded := attrBytes(t, m, h, priv, ck.CKA_VALUE)
	require.Len(t, expanded, 2400)
	_, err = m.CreateObject(h, privTmpl(ck.CKP_ML_KEM_768, attrs.Template{ck.CKA_SEED: dk.Bytes(), ck.CKA_VALUE: expanded}))
	require.NoError(t, err)
	for _, i := range []int{0, 1152 + 1184, 2400 - 1} { // dk_PKE, H(ek), z
		bad := append([]byte(nil), expanded...)
		bad[i] ^= 1
		_, err = m.CreateObject(h, privTmpl(ck.CKP_ML_KEM_768, attrs.Template{ck.CKA_SEED: dk.Bytes(), ck.CKA_VALUE: bad}))
		requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	_, err = m.CreateObject(h, privTmpl(ck.CKP_ML_KEM_768, attrs.Template{ck.CKA_SEED: dk.Bytes(), ck.CKA_VALUE: expanded[:2399]}))
	requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	// The expanded key alone: refused, for every set.
	_, err = m.CreateObject(h, privTmpl(ck.CKP_ML_KEM_768, attrs.Template{ck.CKA_VALUE: expanded}))
	requireRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)

	// ML-KEM-512 (circl): seed alone, seed and expanded key, expanded alone.
	seed := make([]byte, mlkem512.KeySeedSize)
	seed[0] = 5
	pk512, sk512 := mlkem512.NewKeyFromSeed(seed)
	dk512 := make([]byte, mlkem512.PrivateKeySize)
	sk512.Pack(dk512)
	p512, err := m.CreateObject(h, privTmpl(ck.CKP_ML_KEM_512, attrs.Template{ck.CKA_SEED: seed}))
	require.NoError(t, err)
	assert.Equal(t, dk512, attrBytes(t, m, h, p512, ck.CKA_VALUE))
	_, err = m.CreateObject(h, privTmpl(ck.CKP_ML_KEM_512, attrs.Template{ck.CKA_SEED: seed, ck.CKA_VALUE: dk512}))
	require.NoError(t, err)
	_, err = m.CreateObject(h, privTmpl(ck.CKP_ML_KEM_512, attrs.Template{ck.CKA_SEED: make([]byte, 64), ck.CKA_VALUE: dk512}))
	requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, err = m.CreateObject(h, privTmpl(ck.CKP_ML_KEM_512, attrs.Template{ck.CKA_VALUE: dk512}))
	requireRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
	ek512 := make([]byte, mlkem512.PublicKeySize)
	pk512.Pack(ek512)
	pub512, err := m.CreateObject(h, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PUBLIC_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_ML_KEM)),
		ck.CKA_PARAMETER_SET: attrs.ULong(ck.CKP_ML_KEM_512), ck.CKA_VALUE: ek512,
	})
	require.NoError(t, err)
	ct512 := make([]byte, mlkem512.CiphertextSize)
	_, ek2, err := m.EncapsulateKey(h, Mechanism{Type: ck.CKM_ML_KEM}, pub512, attrs.ListOf(attrs.Template{ck.CKA_SENSITIVE: attrs.Bool(false)}), Out{Buf: ct512})
	require.NoError(t, err)
	ss := make([]byte, mlkem512.SharedKeySize)
	sk512.DecapsulateTo(ss, ct512)
	assert.Equal(t, ss, attrBytes(t, m, h, ek2, ck.CKA_VALUE))

	_, err = m.CreateObject(h, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PUBLIC_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_ML_KEM)),
		ck.CKA_PARAMETER_SET: attrs.ULong(ck.CKP_ML_KEM_1024), ck.CKA_VALUE: dk.EncapsulationKey().Bytes(),
	})
	requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}

// TestKEMKeepsNoTemplate: EncapsulateKey and DecapsulateKey keep no
// reference to the caller's template map or its values once they return
// (the boundary reuses the map for the next call: pkcs11/kem.go): the
// new keys' attributes stay as made when the map and its values are
// overwritten, and its entries deleted, afterwards.
func TestKEMKeepsNoTemplate(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	pub, priv, err := mlkemPair(t, m, h, ck.CKP_ML_KEM_768, nil, nil)
	require.NoError(t, err)
	types := []ck.AttributeType{ck.CKA_LABEL, ck.CKA_ENCRYPT, ck.CKA_SENSITIVE, ck.CKA_KEY_TYPE, ck.CKA_CHECK_VALUE, ck.CKA_VALUE_LEN}
	newTmpl := func() attrs.Template {
		return attrs.Template{ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)), ck.CKA_ENCRYPT: attrs.Bool(true),
			ck.CKA_SENSITIVE: attrs.Bool(true), ck.CKA_LABEL: []byte("kem key")}
	}
	scribble := func(tm attrs.Template) {
		for a, v := range tm {
			for i := range v {
				v[i] ^= 0xff
			}
			tm[a] = []byte("scribbled")
		}
		tm[ck.CKA_DECRYPT] = attrs.Bool(true)
		delete(tm, ck.CKA_LABEL)
	}
	read := func(k ck.ULong) [][]byte {
		res, err := m.GetAttributeValue(h, k, types)
		require.NoError(t, err)
		out := make([][]byte, len(res))
		for i, r := range res {
			out[i] = append([]byte(nil), r.Value...)
		}
		return out
	}
	ct := make([]byte, 2048)
	te := newTmpl()
	n, ek, err := m.EncapsulateKey(h, Mechanism{Type: ck.CKM_ML_KEM}, pub, attrs.ListOf(te), Out{Buf: ct})
	require.NoError(t, err)
	td := newTmpl()
	dk, err := m.DecapsulateKey(h, Mechanism{Type: ck.CKM_ML_KEM}, priv, attrs.ListOf(td), ct[:n])
	require.NoError(t, err)
	before := [][][]byte{read(ek), read(dk)}
	require.Equal(t, []byte("kem key"), before[0][0])
	require.Equal(t, before[0][4], before[1][4], "the two keys' check values")
	scribble(te)
	scribble(td)
	require.Equal(t, before, [][][]byte{read(ek), read(dk)})
}

// TestKEMKeyTemplateAttribute: the KEM key's CKA_ENCAPSULATE_TEMPLATE /
// CKA_DECAPSULATE_TEMPLATE completes the caller's template (a List), and
// a caller's attribute that contradicts it is CKR_TEMPLATE_INCONSISTENT,
// as for C_DeriveKey's and C_UnwrapKey's template attributes.
func TestKEMKeyTemplateAttribute(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	mech := Mechanism{Type: ck.CKM_ML_KEM}
	forced := func(label string) []byte {
		return attrs.EncodeTemplate(attrs.Template{ck.CKA_LABEL: []byte(label), ck.CKA_EXTRACTABLE: attrs.Bool(false)})
	}
	pub, priv, err := mlkemPair(t, m, h, ck.CKP_ML_KEM_768,
		attrs.Template{ck.CKA_ENCAPSULATE_TEMPLATE: forced("enc")}, attrs.Template{ck.CKA_DECAPSULATE_TEMPLATE: forced("dec")})
	require.NoError(t, err)
	aes := attrs.List{{Type: ck.CKA_KEY_TYPE, V: attrs.ULong(ck.ULong(ck.CKK_AES))}}
	ct := make([]byte, mlkem.CiphertextSize768)
	_, ek, err := m.EncapsulateKey(h, mech, pub, aes, Out{Buf: ct})
	require.NoError(t, err)
	dk, err := m.DecapsulateKey(h, mech, priv, aes, ct)
	require.NoError(t, err)
	for k, label := range map[ck.ULong]string{ek: "enc", dk: "dec"} {
		assert.Equal(t, []byte(label), attrBytes(t, m, h, k, ck.CKA_LABEL))
		assert.Equal(t, attrs.ULong(ck.ULong(ck.CKK_AES)), attrBytes(t, m, h, k, ck.CKA_KEY_TYPE))
		assert.Equal(t, []bool{false}, boolAttrs(t, m, h, k, ck.CKA_EXTRACTABLE))
	}
	// Given again with the same value: accepted; with another: refused,
	// also when an earlier value of the List agreed.
	same := append(aes, attrs.Value{Type: ck.CKA_LABEL, V: []byte("enc")})
	_, _, err = m.EncapsulateKey(h, mech, pub, same, Out{Buf: ct})
	require.NoError(t, err)
	other := append(same[:2:2], attrs.Value{Type: ck.CKA_LABEL, V: []byte("other")})
	_, _, err = m.EncapsulateKey(h, mech, pub, other, Out{Buf: ct})
	requireRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = m.DecapsulateKey(h, mech, priv, attrs.List{{Type: ck.CKA_EXTRACTABLE, V: attrs.Bool(true)}}, ct)
	requireRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
}

// TestKEMCallerAllocs: C_EncapsulateKey and C_DecapsulateKey with
// p11bench's template (a List), the audit flush held, allocate on the
// caller's path crypto/mlkem's 2, the key's own values, its value, its
// lazy check value, its unique ID, the object and the queued record: 8.
// The slice of new objects (one) is on the stack, where it was one
// allocation more (9).
func TestKEMCallerAllocs(t *testing.T) {
	if testenv.Race {
		t.Skip("the race detector's instrumentation allocates, and not the same each run")
	}
	holdAuditFlush(t)
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	pub, priv, err := mlkemPair(t, m, h, ck.CKP_ML_KEM_768, nil, nil)
	require.NoError(t, err)
	l := attrs.List{{Type: ck.CKA_CLASS, V: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY))}, {Type: ck.CKA_KEY_TYPE, V: attrs.ULong(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_TOKEN, V: attrs.Bool(false)}, {Type: ck.CKA_SENSITIVE, V: attrs.Bool(true)},
		{Type: ck.CKA_ENCRYPT, V: attrs.Bool(true)}, {Type: ck.CKA_DECRYPT, V: attrs.Bool(true)}}
	mech := Mechanism{Type: ck.CKM_ML_KEM}
	ct := make([]byte, mlkem.CiphertextSize768)
	encaps := testing.AllocsPerRun(100, func() {
		if _, _, err := m.EncapsulateKey(h, mech, pub, l, Out{Buf: ct}); err != nil {
			t.Fatal(err)
		}
	})
	decaps := testing.AllocsPerRun(100, func() {
		if _, err := m.DecapsulateKey(h, mech, priv, l, ct); err != nil {
			t.Fatal(err)
		}
	})
	assert.LessOrEqual(t, encaps, 8.0, "allocations per encapsulation")
	assert.LessOrEqual(t, decaps, 8.0, "allocations per decapsulation")
}
