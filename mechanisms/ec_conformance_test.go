package mechanisms

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// The EC family's registrations in the conformance suite. This file sorts
// after conformance_test.go, so its init runs later and its entries win.
func init() {
	type bad = struct {
		p    KeyGenParams
		want ck.RV
	}
	type cases = struct {
		good []KeyGenParams
		bad  []bad
	}
	fixtureSizes[ck.CKK_EC] = []int{224, 256, 384, 521}
	fixtureSizes[ck.CKK_EC_EDWARDS] = []int{curve25519Bits}
	fixtureSizes[ck.CKK_EC_MONTGOMERY] = []int{curve25519Bits}

	printable := func(s string) []byte { return must(asn1.MarshalWithParams(s, "printable")) }
	oid := func(o ...int) []byte { return must(asn1.Marshal(asn1.ObjectIdentifier(o))) }
	ed25519OID, x25519OID := oid(1, 3, 101, 112), oid(1, 3, 101, 110)
	ed448OID, x448OID := oid(1, 3, 101, 113), oid(1, 3, 101, 111)

	// Overrides conformance_test.go's entry, written when only P-256 and
	// P-384 were generated: P-224, P-521 and secp256k1 are now supported.
	keyGenCases[ck.CKK_EC] = cases{
		good: []KeyGenParams{
			{ECParams: ecParams(224)}, {ECParams: ecParams(256)}, {ECParams: ecParams(384)},
			{ECParams: ecParams(521)}, {ECParams: must(ECParams(secp256k1Curve))},
		},
		bad: []bad{
			{KeyGenParams{}, ck.CKR_TEMPLATE_INCOMPLETE},
			{KeyGenParams{ECParams: oid(1, 2, 840, 10045, 3, 1, 1)}, ck.CKR_CURVE_NOT_SUPPORTED},     // secp192r1
			{KeyGenParams{ECParams: oid(1, 3, 36, 3, 3, 2, 8, 1, 1, 7)}, ck.CKR_CURVE_NOT_SUPPORTED}, // brainpoolP256r1
			{KeyGenParams{ECParams: ed25519OID}, ck.CKR_CURVE_NOT_SUPPORTED},
			{KeyGenParams{ECParams: printable("prime256v1")}, ck.CKR_CURVE_NOT_SUPPORTED},
			{KeyGenParams{ECParams: []byte{0x05, 0x00}}, ck.CKR_CURVE_NOT_SUPPORTED},                   // implicitlyCA
			{KeyGenParams{ECParams: []byte{0x30, 0x03, 0x02, 0x01, 0x01}}, ck.CKR_CURVE_NOT_SUPPORTED}, // explicit
			{KeyGenParams{ECParams: []byte{0xff, 0x00}}, ck.CKR_DOMAIN_PARAMS_INVALID},
			{KeyGenParams{ECParams: append(ecParams(256), 0)}, ck.CKR_DOMAIN_PARAMS_INVALID},
		},
	}
	keyGenCases[ck.CKK_EC_EDWARDS] = cases{
		good: []KeyGenParams{{ECParams: ed25519OID}, {ECParams: printable("edwards25519")}},
		bad: []bad{
			{KeyGenParams{}, ck.CKR_TEMPLATE_INCOMPLETE},
			{KeyGenParams{ECParams: ed448OID}, ck.CKR_CURVE_NOT_SUPPORTED},
			{KeyGenParams{ECParams: printable("edwards448")}, ck.CKR_CURVE_NOT_SUPPORTED},
			{KeyGenParams{ECParams: x25519OID}, ck.CKR_CURVE_NOT_SUPPORTED},
			{KeyGenParams{ECParams: ecParams(256)}, ck.CKR_CURVE_NOT_SUPPORTED},
			{KeyGenParams{ECParams: []byte{0x06}}, ck.CKR_DOMAIN_PARAMS_INVALID},
		},
	}
	keyGenCases[ck.CKK_EC_MONTGOMERY] = cases{
		good: []KeyGenParams{{ECParams: x25519OID}, {ECParams: printable("curve25519")}},
		bad: []bad{
			{KeyGenParams{}, ck.CKR_TEMPLATE_INCOMPLETE},
			{KeyGenParams{ECParams: x448OID}, ck.CKR_CURVE_NOT_SUPPORTED},
			{KeyGenParams{ECParams: printable("curve448")}, ck.CKR_CURVE_NOT_SUPPORTED},
			{KeyGenParams{ECParams: ed25519OID}, ck.CKR_CURVE_NOT_SUPPORTED},
			{KeyGenParams{ECParams: []byte{0x13, 0x05, 'c'}}, ck.CKR_DOMAIN_PARAMS_INVALID},
		},
	}

	// CK_EDDSA_PARAMS: a context; other contexts and Ed25519ph must not
	// verify what it signed, nor must plain Ed25519 (no parameter).
	paramCases[ParamEdDSA] = func(*testing.T, *Mechanism, *fixture) (any, []any) {
		ctx := []byte("gohsm")
		return &EdDSAParams{Context: ctx}, []any{
			nil,
			&EdDSAParams{Context: []byte("gohsM")},
			&EdDSAParams{PreHash: true, Context: ctx},
		}
	}
	// CK_ECDH1_DERIVE_PARAMS: the fixture's second public key as the peer,
	// X9.63 with SHA-256 and shared data; the variants derive other values.
	paramCases[ParamECDH1] = func(t *testing.T, _ *Mechanism, f *fixture) (any, []any) {
		require.NotNil(t, f, "ParamECDH1 needs a key fixture")
		peer := publicData(t, f.pub2)
		p := &ECDH1Params{KDF: ck.CKD_SHA256_KDF, SharedData: []byte("shared"), PublicData: peer}
		return p, []any{
			&ECDH1Params{KDF: ck.CKD_SHA384_KDF, SharedData: p.SharedData, PublicData: peer},
			&ECDH1Params{KDF: ck.CKD_SHA256_KDF, SharedData: []byte("Shared"), PublicData: peer},
			&ECDH1Params{KDF: ck.CKD_NULL, PublicData: peer},
			&ECDH1Params{KDF: ck.CKD_SHA256_KDF, SharedData: p.SharedData, PublicData: publicData(t, f.pub)},
		}
	}
	// Raw ECDSA signs a caller's hash, truncated to the order's bit length
	// (FIPS 186-5 §6.4.1): on P-224 the last bytes of a 32-byte input do
	// not count, so the tampering checks use inputs no longer than 28 bytes.
	inputLengths[ck.CKM_ECDSA] = []int{1, 20, 28}
	extraConformance = append(extraConformance, testDeriveAgreement, testSecp256k1Row)
}

// publicData is a public key as CK_ECDH1_DERIVE_PARAMS.pPublicData: the
// bare encoded point (X9.62 uncompressed, or X25519's 32 bytes).
func publicData(t *testing.T, pub any) []byte {
	t.Helper()
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return must(pointBytes(k))
	case *ecdh.PublicKey:
		return k.Bytes()
	}
	t.Fatalf("no public data for %T", pub)
	return nil
}

// testDeriveAgreement: for key agreement rows, A's private key with B's
// public key gives what B's private key with A's public key gives, under
// every KDF and length; the DER form of the peer point is accepted; wrong
// keys, parameters and points are refused with the codes the spec allows.
func testDeriveAgreement(t *testing.T, m *Mechanism) {
	if m.Derive == nil || m.Param != ParamECDH1 {
		return
	}
	for _, kt := range m.KeyTypes {
		for _, f := range keyFixtures(t, kt) {
			param, variants := testParamFor(t, m, &f)
			p := param.(*ECDH1Params)
			a, err := m.Derive(f.priv, p, DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: 32})
			require.NoError(t, err, "%v size %d", kt, f.size)
			require.Len(t, a, 32)
			back := *p
			back.PublicData = publicData(t, f.pub)
			b, err := m.Derive(f.priv2, &back, DeriveTarget{KeyType: ck.CKK_GENERIC_SECRET, ValueLen: 32})
			require.NoError(t, err)
			assert.Equal(t, a, b, "both sides agree")
			// Variants derive other keys (16 bytes: CKD_NULL gives no more
			// than the field size).
			for _, v := range variants {
				o, err := m.Derive(f.priv, v, DeriveTarget{ValueLen: 16})
				require.NoError(t, err)
				assert.NotEqual(t, a[:16], o, "variant %+v", v)
			}

			// Every KDF, with and without CKA_VALUE_LEN, both sides.
			for kdf, h := range ecdhKDFs {
				for _, n := range []int{0, 16, 24, 100} {
					shared := []byte("info")
					if h == 0 {
						shared = nil
					}
					pa := &ECDH1Params{KDF: kdf, SharedData: shared, PublicData: p.PublicData}
					pb := &ECDH1Params{KDF: kdf, SharedData: shared, PublicData: back.PublicData}
					x, errA := m.Derive(f.priv, pa, DeriveTarget{ValueLen: n})
					y, errB := m.Derive(f.priv2, pb, DeriveTarget{ValueLen: n})
					zLen := (f.size + 7) / 8
					if h == 0 && n > zLen {
						assert.ErrorIs(t, errA, ck.CKR_KEY_SIZE_RANGE)
						assert.ErrorIs(t, errB, ck.CKR_KEY_SIZE_RANGE)
						continue
					}
					require.NoError(t, errA, "kdf %#x n %d", kdf, n)
					require.NoError(t, errB)
					assert.Equal(t, x, y, "kdf %#x n %d kt %v size %d", kdf, n, kt, f.size)
					want := n
					if n == 0 {
						want = zLen
						if h != 0 {
							want = h.Size()
						}
					}
					assert.Len(t, x, want, "kdf %#x n %d", kdf, n)
				}
			}

			// The DER OCTET STRING form of the peer point is the same peer.
			der := *p
			der.PublicData = must(asn1.Marshal(p.PublicData))
			d, err := m.Derive(f.priv, &der, DeriveTarget{ValueLen: 32})
			require.NoError(t, err)
			assert.Equal(t, a, d)

			// Keys: public, foreign, nil.
			for _, k := range []any{f.pub, "key", nil, []byte("0123456789abcdef0123456789abcdef")} {
				_, err := m.Derive(k, p, DeriveTarget{ValueLen: 32})
				assert.ErrorIs(t, err, ck.CKR_KEY_TYPE_INCONSISTENT, "%T", k)
			}
			// Parameters.
			for name, bad := range map[string]any{
				"nil":                 nil,
				"bytes":               []byte{1, 2, 3},
				"nil params":          (*ECDH1Params)(nil),
				"unknown kdf":         &ECDH1Params{KDF: 0x7fff, PublicData: p.PublicData},
				"sp800 kdf":           &ECDH1Params{KDF: ck.CKD_SHA256_KDF_SP800, PublicData: p.PublicData},
				"null with shared":    &ECDH1Params{KDF: ck.CKD_NULL, SharedData: []byte{1}, PublicData: p.PublicData},
				"no point":            &ECDH1Params{KDF: ck.CKD_NULL},
				"truncated point":     &ECDH1Params{KDF: ck.CKD_NULL, PublicData: p.PublicData[:len(p.PublicData)-1]},
				"point with trailing": &ECDH1Params{KDF: ck.CKD_NULL, PublicData: append(bytes.Clone(der.PublicData), 0)},
			} {
				_, err := m.Derive(f.priv, bad, DeriveTarget{ValueLen: 16})
				assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, name)
			}
			if pub, ok := f.pub.(*ecdsa.PublicKey); ok {
				// Off the curve, compressed, and a point of another curve.
				off := bytes.Clone(p.PublicData)
				off[len(off)-1] ^= 1
				n := byteLen(pub.Curve)
				comp := append([]byte{2 | p.PublicData[len(p.PublicData)-1]&1}, p.PublicData[1:1+n]...)
				other := elliptic.P384()
				if pub.Curve == other {
					other = elliptic.P256()
				}
				ok, err := ecdsa.GenerateKey(other, rand.Reader)
				require.NoError(t, err)
				for name, pt := range map[string][]byte{"off curve": off, "compressed": comp, "other curve": must(pointBytes(&ok.PublicKey))} {
					_, err := m.Derive(f.priv, &ECDH1Params{KDF: ck.CKD_NULL, PublicData: pt}, DeriveTarget{})
					assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, name)
				}
			}
		}
	}
}

// testSecp256k1Row: the fixtures cannot name secp256k1 (genParams picks
// curves by size, and P-256 comes first), so rows on CKK_EC keys run a
// round trip on a secp256k1 key here: signatures verify (and not on
// tampering or a wrong key), key agreement agrees.
func testSecp256k1Row(t *testing.T, m *Mechanism) {
	if !ecKeyRow(m) {
		return
	}
	gen, ok := Lookup(ck.CKM_EC_KEY_PAIR_GEN)
	require.True(t, ok)
	p := KeyGenParams{ECParams: must(ECParams(secp256k1Curve))}
	pub, priv, err := gen.GenerateKeyPair(rand.Reader, p)
	require.NoError(t, err)
	pub2, priv2, err := gen.GenerateKeyPair(rand.Reader, p)
	require.NoError(t, err)
	if m.Sign != nil {
		msg := make([]byte, 32)
		_, _ = rand.Read(msg)
		s, err := m.Sign(priv, nil)
		require.NoError(t, err)
		require.NoError(t, s.Update(msg))
		sig, err := s.Sign(nil)
		require.NoError(t, err)
		require.Len(t, sig, 64)
		verify := func(key any, sig, msg []byte) error {
			v, err := m.Verify(key, nil)
			require.NoError(t, err)
			require.NoError(t, v.Update(msg))
			return v.Verify(sig)
		}
		assert.NoError(t, verify(pub, sig, msg))
		assert.ErrorIs(t, verify(pub, flipLast(sig), msg), ck.CKR_SIGNATURE_INVALID)
		assert.ErrorIs(t, verify(pub, sig, flipLast(msg)), ck.CKR_SIGNATURE_INVALID)
		assert.ErrorIs(t, verify(pub2, sig, msg), ck.CKR_SIGNATURE_INVALID)
		assert.ErrorIs(t, verify(pub, sig[:63], msg), ck.CKR_SIGNATURE_LEN_RANGE)
	}
	if m.Derive != nil {
		target := DeriveTarget{ValueLen: 32}
		a, err := m.Derive(priv, &ECDH1Params{KDF: ck.CKD_NULL, PublicData: publicData(t, pub2)}, target)
		require.NoError(t, err)
		b, err := m.Derive(priv2, &ECDH1Params{KDF: ck.CKD_NULL, PublicData: publicData(t, pub)}, target)
		require.NoError(t, err)
		assert.Equal(t, a, b)
	}
}

// ecKeyRow reports whether a row operates on CKK_EC keys (other than
// generating them).
func ecKeyRow(m *Mechanism) bool {
	for _, kt := range m.KeyTypes {
		if kt == ck.CKK_EC {
			return m.Sign != nil || m.Derive != nil
		}
	}
	return false
}
