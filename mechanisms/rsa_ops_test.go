package mechanisms

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// Registrations of the RSA family with the conformance suite.
func init() {
	// ParamPSS: conformance_test.go's map literal holds a SHA-256-only
	// case; package-level variables are initialised before any init()
	// runs, so this assignment replaces it whatever the file order. The
	// case follows the row: its hash and MGF1, a salt of the hash's
	// length (SHA-256 for CKM_RSA_PKCS_PSS, whose 32-byte test input is
	// the hash), and a salt one byte shorter as the failing variant.
	paramCases[ParamPSS] = func(_ *testing.T, m *Mechanism, _ *fixture) (any, []any) {
		h := rsaRowHash(m.Type)
		if h == 0 {
			h = crypto.SHA256
		}
		mech, mgf := hashMechOf(h)
		return &PSSParams{Hash: mech, MGF: mgf, SaltLen: h.Size()},
			[]any{&PSSParams{Hash: mech, MGF: mgf, SaltLen: h.Size() - 1}}
	}
	paramCases[ParamOAEP] = func(*testing.T, *Mechanism, *fixture) (any, []any) {
		return testOAEP(), []any{
			&OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, Source: ck.CKZ_DATA_SPECIFIED, Label: []byte("Label")},
			&OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256},
			&OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA1, Source: ck.CKZ_DATA_SPECIFIED, Label: []byte("label")},
			&OAEPParams{Hash: ck.CKM_SHA_1, MGF: ck.CKG_MGF1_SHA1, Source: ck.CKZ_DATA_SPECIFIED, Label: []byte("label")},
		}
	}
	paramCases[ParamRSAAESKeyWrap] = func(*testing.T, *Mechanism, *fixture) (any, []any) {
		return &RSAAESKeyWrapParams{AESKeyBits: 256, OAEP: testOAEP()}, []any{
			&RSAAESKeyWrapParams{AESKeyBits: 128, OAEP: testOAEP()},
			&RSAAESKeyWrapParams{AESKeyBits: 256, OAEP: &OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256}},
		}
	}
	// CKM_RSA_X_509 decrypts to the whole k-byte block, so the suite's
	// round trip of short random messages cannot hold, and k-byte random
	// messages are above the modulus about a third of the time: the core
	// cipher and signature loops are turned off for it (empty lengths) and
	// rsaRawConformance below drives every operation instead.
	inputLengths[ck.CKM_RSA_X_509] = []int{}
	extraConformance = append(extraConformance, rsaWrapConformance, rsaRecoverConformance, rsaRawConformance)
}

func testOAEP() *OAEPParams {
	return &OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, Source: ck.CKZ_DATA_SPECIFIED, Label: []byte("label")}
}

// hashMechOf is the (hash mechanism, MGF1) pair of a Go hash.
func hashMechOf(h crypto.Hash) (ck.MechanismType, ck.ULong) {
	for _, x := range hashes {
		if x.hash == h {
			return x.mech, x.mgf
		}
	}
	for _, x := range sha3Hashes {
		if x.hash == h {
			return x.mech, x.mgf
		}
	}
	panic("no hash mechanism for " + h.String())
}

func isRSARow(m *Mechanism) bool { return slices.Contains(m.KeyTypes, ck.CKK_RSA) }

// rsaWrapConformance: C_WrapKey / C_UnwrapKey of RSA rows round-trip,
// are randomised, and refuse tampering, wrong keys, wrong parameters, wrong
// key types and sizes, and keys too long for the row.
func rsaWrapConformance(t *testing.T, m *Mechanism) {
	if m.Wrap == nil || !isRSARow(m) {
		return
	}
	require.NotNil(t, m.Unwrap)
	for _, f := range keyFixtures(t, ck.CKK_RSA) {
		param, variants := testParamFor(t, m, &f)
		pub, priv := f.pub.(*rsa.PublicKey), f.priv.(*rsa.PrivateKey)
		k := pub.Size()
		sizes := []int{16, 24, 32}
		if m.Type == ck.CKM_RSA_AES_KEY_WRAP {
			sizes = append(sizes, 1, 7, 8, 9, 1217) // RFC 5649 edge lengths, a PKCS#8 RSA key's size
		}
		for _, n := range sizes {
			mat := make([]byte, n)
			_, _ = rand.Read(mat)
			w, err := m.Wrap(pub, param, mat)
			require.NoError(t, err, "%d bytes", n)
			got, err := m.Unwrap(priv, param, w)
			require.NoError(t, err, "%d bytes", n)
			equalBytes(t, mat, got)
			w2, err := m.Wrap(pub, param, mat)
			require.NoError(t, err)
			assert.NotEqual(t, w, w2, "wrapping is randomised")

			bad := func(what string, key, p any, wrapped []byte, rvs ...ck.RV) {
				t.Helper()
				_, err := m.Unwrap(key, p, wrapped)
				assert.True(t, errorsIsAny(err, rvs...), "%s: %v", what, err)
			}
			bad("tampered", priv, param, flipLast(w), ck.CKR_WRAPPED_KEY_INVALID)
			tampered := slices.Clone(w)
			tampered[k-1] ^= 1 // the RSA block, where there is more after it
			bad("tampered rsa block", priv, param, tampered, ck.CKR_WRAPPED_KEY_INVALID)
			bad("truncated", priv, param, w[:len(w)-1], ck.CKR_WRAPPED_KEY_LEN_RANGE, ck.CKR_WRAPPED_KEY_INVALID)
			bad("extended", priv, param, append(slices.Clone(w), 0), ck.CKR_WRAPPED_KEY_LEN_RANGE, ck.CKR_WRAPPED_KEY_INVALID)
			bad("wrong key", f.priv2, param, w, ck.CKR_WRAPPED_KEY_INVALID)
			for _, v := range variants {
				bad("wrong parameter", priv, v, w, ck.CKR_WRAPPED_KEY_INVALID)
			}
		}

		// Keys, parameters and sizes.
		_, err := m.Wrap(priv, param, make([]byte, 16))
		assert.ErrorIs(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
		_, err = m.Unwrap(pub, param, make([]byte, k))
		assert.ErrorIs(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
		_, err = m.Wrap(make([]byte, 16), param, make([]byte, 16))
		assert.ErrorIs(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
		_, err = m.Wrap(&testSmallRSA().PublicKey, param, make([]byte, 16))
		assert.ErrorIs(t, err, ck.CKR_KEY_SIZE_RANGE)
		_, err = m.Unwrap(testSmallRSA(), param, make([]byte, 64))
		assert.ErrorIs(t, err, ck.CKR_KEY_SIZE_RANGE)
		if m.Param == ParamNone {
			_, err = m.Wrap(pub, []byte{1}, make([]byte, 16))
		} else {
			_, err = m.Wrap(pub, nil, make([]byte, 16))
		}
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)

		var max int
		switch m.Type {
		case ck.CKM_RSA_PKCS:
			max = k - 11
		case ck.CKM_RSA_PKCS_OAEP:
			max = k - 2*sha256.Size - 2
		default:
			continue
		}
		_, err = m.Wrap(pub, param, make([]byte, max))
		assert.NoError(t, err)
		_, err = m.Wrap(pub, param, make([]byte, max+1))
		assert.ErrorIs(t, err, ck.CKR_KEY_SIZE_RANGE)
	}
}

// rsaRecoverConformance: C_SignRecover / C_VerifyRecover round-trip and
// agree with C_Sign.
func rsaRecoverConformance(t *testing.T, m *Mechanism) {
	if m.SignRecover == nil || !isRSARow(m) {
		return
	}
	require.NotNil(t, m.VerifyRecover)
	raw := m.Type == ck.CKM_RSA_X_509
	f := keyFixtures(t, ck.CKK_RSA)[0]
	pub, priv := f.pub.(*rsa.PublicKey), f.priv.(*rsa.PrivateKey)
	k := pub.Size()
	for _, n := range []int{0, 1, 32, k - 11} {
		data := make([]byte, n)
		_, _ = rand.Read(data)
		if n > 0 {
			data[0] |= 0x80 // for raw RSA, not 0 or 1, which every key maps to themselves
		}
		want := data
		if raw {
			want = append(make([]byte, k-n), data...)
		}
		sig, err := m.SignRecover(priv, nil, data)
		require.NoError(t, err, "%d bytes", n)
		require.Len(t, sig, k)
		got, err := m.VerifyRecover(pub, nil, sig)
		require.NoError(t, err)
		equalBytes(t, want, got)
		viaSign, err := signOnce(t, m, priv, nil, data)
		require.NoError(t, err)
		assert.Equal(t, sig, viaSign, "C_Sign and C_SignRecover agree")

		// Raw RSA has no redundancy: a bad signature opens to other data.
		refused := func(what string, key any, s []byte) {
			got, err := m.VerifyRecover(key, nil, s)
			if raw && err == nil {
				assert.NotEqual(t, want, got, what)
				return
			}
			assert.ErrorIs(t, err, ck.CKR_SIGNATURE_INVALID, what)
		}
		refused("tampered", pub, flipLast(sig))
		if !raw || n > 0 {
			refused("wrong key", f.pub2, sig)
		}
		_, err = m.VerifyRecover(pub, nil, sig[1:])
		assert.ErrorIs(t, err, ck.CKR_SIGNATURE_LEN_RANGE)
	}
	tooLong := k - 10
	if raw {
		tooLong = k + 1
	}
	_, err := m.SignRecover(priv, nil, make([]byte, tooLong))
	assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
	_, err = m.SignRecover(pub, nil, make([]byte, 1))
	assert.ErrorIs(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
	_, err = m.VerifyRecover(priv, nil, make([]byte, k))
	assert.ErrorIs(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
	_, err = m.SignRecover(testSmallRSA(), nil, make([]byte, 1))
	assert.ErrorIs(t, err, ck.CKR_KEY_SIZE_RANGE)
	_, err = m.SignRecover(priv, []byte{1}, make([]byte, 1))
	assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	// A signature not below the modulus.
	_, err = m.VerifyRecover(pub, nil, pub.N.FillBytes(make([]byte, k)))
	assert.ErrorIs(t, err, ck.CKR_SIGNATURE_INVALID)
}

// rsaRawConformance drives CKM_RSA_X_509's encryption and signature (the
// core loops are off for it, see init).
func rsaRawConformance(t *testing.T, m *Mechanism) {
	if m.Type != ck.CKM_RSA_X_509 {
		return
	}
	for _, f := range keyFixtures(t, ck.CKK_RSA) {
		pub, priv := f.pub.(*rsa.PublicKey), f.priv.(*rsa.PrivateKey)
		key := prepared(t, m, priv) // as the token passes it
		k := pub.Size()
		for _, n := range []int{0, 1, 32, k - 1, k} {
			msg := make([]byte, n)
			_, _ = rand.Read(msg)
			if n > 0 {
				msg[0] |= 0x80 // not 0 or 1, which every key maps to themselves
			}
			if n == k {
				// N-2: a full block just below the modulus (and, being odd,
				// still below it with its last bit flipped).
				msg = new(big.Int).Sub(pub.N, big.NewInt(2)).FillBytes(msg)
			}
			block := append(make([]byte, k-n), msg...)

			enc, err := m.Encrypt(pub, nil)
			require.NoError(t, err)
			ct, err := enc.Once([]byte("prefix"), msg)
			require.NoError(t, err)
			require.Equal(t, []byte("prefix"), ct[:6])
			ct = ct[6:]
			require.Len(t, ct, k)
			require.LessOrEqual(t, k, enc.MaxOutput(n, true))
			ct2, err := enc.Once(nil, block)
			require.NoError(t, err)
			assert.Equal(t, ct, ct2, "input is left-padded with zeros")

			dec, err := m.Decrypt(key, nil)
			require.NoError(t, err)
			pt, err := dec.Once(nil, ct)
			require.NoError(t, err)
			equalBytes(t, block, pt)
			// Buffered parts give the same (the token refuses Update for
			// single-part rows; the cipher still behaves).
			for _, part := range chunks(ct) {
				_, err = dec.Update(nil, part)
				require.NoError(t, err)
			}
			pt, err = dec.Final(nil)
			require.NoError(t, err)
			equalBytes(t, block, pt)

			fixedPoint := n == 0 // 0^e = 0 under every key
			dec2, err := m.Decrypt(f.priv2, nil)
			require.NoError(t, err)
			if pt, err = dec2.Once(nil, ct); fixedPoint {
				assert.NoError(t, err)
			} else if err == nil {
				assert.NotEqual(t, block, pt, "wrong key")
			} else {
				assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
			}
			_, err = dec.Once(nil, ct[1:])
			assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)

			sig, err := signOnce(t, m, key, nil, msg)
			require.NoError(t, err)
			assert.NoError(t, verifyOnce(t, m, pub, nil, msg, sig))
			assert.NoError(t, verifyOnce(t, m, pub, nil, block, sig))
			if n > 0 {
				assert.ErrorIs(t, verifyOnce(t, m, pub, nil, flipLast(msg), sig), ck.CKR_SIGNATURE_INVALID)
			}
			assert.ErrorIs(t, verifyOnce(t, m, pub, nil, msg, flipLast(sig)), ck.CKR_SIGNATURE_INVALID)
			if !fixedPoint {
				// (A k-byte block may be above the other key's modulus.)
				err := verifyOnce(t, m, f.pub2, nil, msg, sig)
				assert.True(t, errorsIsAny(err, ck.CKR_SIGNATURE_INVALID, ck.CKR_DATA_LEN_RANGE), "wrong key: %v", err)
			}
			assert.ErrorIs(t, verifyOnce(t, m, pub, nil, msg, sig[1:]), ck.CKR_SIGNATURE_LEN_RANGE)
			assert.ErrorIs(t, verifyOnce(t, m, pub, nil, msg, append(slices.Clone(sig), 0)), ck.CKR_SIGNATURE_LEN_RANGE)
			// Raw RSA: the signature is the decryption of the block.
			assert.Equal(t, block, must(rsaPublicOpBytes(pub, sig)))
		}

		// Inputs not below the modulus, or too long.
		nBytes := pub.N.FillBytes(make([]byte, k))
		enc, _ := m.Encrypt(pub, nil)
		for _, in := range [][]byte{nBytes, bytes.Repeat([]byte{0xff}, k), make([]byte, k+1)} {
			_, err := enc.Once(nil, in)
			assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
			_, err = signOnce(t, m, key, nil, in)
			assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
			_, err = m.SignRecover(key, nil, in)
			assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
			assert.ErrorIs(t, verifyOnce(t, m, pub, nil, in, make([]byte, k)), ck.CKR_DATA_LEN_RANGE)
		}
		dec, _ := m.Decrypt(key, nil)
		_, err := dec.Once(nil, nBytes)
		assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
		assert.ErrorIs(t, verifyOnce(t, m, pub, nil, []byte{1}, nBytes), ck.CKR_SIGNATURE_INVALID)
	}
}

func rsaPublicOpBytes(pub *rsa.PublicKey, x []byte) ([]byte, error) {
	return rsaPublicOp(pub, new(big.Int).SetBytes(x)), nil
}

// The raw private operation against crypto/rsa: raw decryption of a PKCS#1
// v1.5 ciphertext is its type 2 block, raw signature of a type 1 block is
// SignPKCS1v15; and a key without CRT values (D only) gives the same.
func TestRSARawPrivateMatchesStdlib(t *testing.T) {
	f := rsaFixture(t)
	priv := f.priv.(*rsa.PrivateKey)
	m := row(t, ck.CKM_RSA_X_509)
	k := priv.Size()
	msg := []byte("raw")
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, msg)
	require.NoError(t, err)
	dec, err := m.Decrypt(priv, nil)
	require.NoError(t, err)
	em, err := dec.Once(nil, ct)
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 2}, em[:2])
	assert.Equal(t, append([]byte{0}, msg...), em[k-len(msg)-1:])
	assert.NotContains(t, em[2:k-len(msg)-1], byte(0))

	h := sha256.Sum256(msg)
	want, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, h[:])
	require.NoError(t, err)
	di := append(slices.Clone(sha256DigestInfo), h[:]...)
	block := append(append([]byte{0, 1}, bytes.Repeat([]byte{0xff}, k-len(di)-3)...), 0)
	block = append(block, di...)
	sig, err := m.SignRecover(priv, nil, block)
	require.NoError(t, err)
	assert.Equal(t, want, sig)

	noCRT := &rsa.PrivateKey{PublicKey: priv.PublicKey, D: priv.D}
	sig, err = m.SignRecover(noCRT, nil, block)
	require.NoError(t, err)
	assert.Equal(t, want, sig)

	// A faulty key is caught by the public-exponent check.
	bad := &rsa.PrivateKey{PublicKey: priv.PublicKey, D: new(big.Int).Add(priv.D, big.NewInt(2))}
	_, err = m.SignRecover(bad, nil, block)
	assert.ErrorIs(t, err, ck.CKR_FUNCTION_FAILED)
}

func TestRSAPKCSRecoverMatchesStdlib(t *testing.T) {
	f := rsaFixture(t)
	priv, pub := f.priv.(*rsa.PrivateKey), f.pub.(*rsa.PublicKey)
	m := row(t, ck.CKM_RSA_PKCS)
	h := sha256.Sum256([]byte("recover"))
	di := append(slices.Clone(sha256DigestInfo), h[:]...)
	sig, err := m.SignRecover(priv, nil, di)
	require.NoError(t, err)
	require.NoError(t, rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig))
	got, err := m.VerifyRecover(pub, nil, sig)
	require.NoError(t, err)
	assert.Equal(t, di, got)

	// Blocks that are not type 1: a type 2 block, and type 1 with fewer
	// than eight FF bytes, opened from raw signatures.
	k := priv.Size()
	raw := row(t, ck.CKM_RSA_X_509)
	for name, block := range map[string][]byte{
		"type 2":    append(append([]byte{0, 2}, bytes.Repeat([]byte{0xff}, k-4)...), 0, 1),
		"short ps":  append(append([]byte{0, 1}, bytes.Repeat([]byte{0xff}, 7)...), append([]byte{0}, make([]byte, k-10)...)...),
		"no zero":   append([]byte{0, 1}, bytes.Repeat([]byte{0xff}, k-2)...),
		"bad ps":    append(append([]byte{0, 1, 0xff, 0xfe}, bytes.Repeat([]byte{0xff}, k-6)...), 0, 1),
		"leading 1": append(append([]byte{1, 1}, bytes.Repeat([]byte{0xff}, k-4)...), 0, 1),
	} {
		require.Len(t, block, k, name)
		s, err := raw.SignRecover(priv, nil, block)
		if name == "leading 1" {
			// Above the modulus for some keys; skip only then.
			if err != nil {
				require.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
				continue
			}
		}
		require.NoError(t, err, name)
		_, err = m.VerifyRecover(pub, nil, s)
		assert.ErrorIs(t, err, ck.CKR_SIGNATURE_INVALID, name)
	}
}

// Every hash-and-sign row against crypto/rsa: PKCS#1 v1.5 is
// deterministic, PSS verifies both ways.
func TestRSAHashedRows(t *testing.T) {
	f := rsaFixture(t)
	priv, pub := f.priv.(*rsa.PrivateKey), f.pub.(*rsa.PublicKey)
	msg := []byte("hashed rows")
	for _, r := range rsaHashed {
		hh := r.hash.New()
		hh.Write(msg)
		digest := hh.Sum(nil)
		assert.Equal(t, r.hash, rsaRowHash(r.pkcs))
		assert.Equal(t, r.hash, rsaRowHash(r.pss))

		sig, err := signOnce(t, row(t, r.pkcs), priv, nil, msg)
		require.NoError(t, err, r.pkcs)
		want, err := rsa.SignPKCS1v15(nil, priv, r.hash, digest)
		require.NoError(t, err)
		assert.Equal(t, want, sig, r.pkcs)

		mech, mgf := hashMechOf(r.hash)
		p := &PSSParams{Hash: mech, MGF: mgf, SaltLen: r.hash.Size()}
		sig, err = signOnce(t, row(t, r.pss), priv, p, msg)
		require.NoError(t, err, r.pss)
		require.NoError(t, rsa.VerifyPSS(pub, r.hash, digest, sig, &rsa.PSSOptions{SaltLength: r.hash.Size()}), r.pss)
		std, err := rsa.SignPSS(rand.Reader, priv, r.hash, digest, &rsa.PSSOptions{SaltLength: r.hash.Size()})
		require.NoError(t, err)
		assert.NoError(t, verifyOnce(t, row(t, r.pss), pub, p, msg, std), r.pss)
		assert.NoError(t, verifyOnce(t, row(t, ck.CKM_RSA_PKCS_PSS), pub, p, digest, std), r.pss)

		// The parameter must name the row's hash, with its own MGF1.
		other := crypto.SHA256
		if r.hash == crypto.SHA256 {
			other = crypto.SHA384
		}
		om, omgf := hashMechOf(other)
		for _, bad := range []*PSSParams{
			{Hash: om, MGF: omgf, SaltLen: 20},
			{Hash: mech, MGF: omgf, SaltLen: 20},
		} {
			_, err = row(t, r.pss).Sign(priv, bad)
			assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, r.pss)
		}
	}
}

func TestRSAOAEP(t *testing.T) {
	f := rsaFixture(t)
	priv, pub := f.priv.(*rsa.PrivateKey), f.pub.(*rsa.PublicKey)
	m := row(t, ck.CKM_RSA_PKCS_OAEP)
	k := pub.Size()
	msg := []byte("oaep")
	for _, c := range []struct {
		p    *OAEPParams
		opts rsa.OAEPOptions
	}{
		{&OAEPParams{Hash: ck.CKM_SHA_1, MGF: ck.CKG_MGF1_SHA1}, rsa.OAEPOptions{Hash: crypto.SHA1}},
		{&OAEPParams{Hash: ck.CKM_SHA224, MGF: ck.CKG_MGF1_SHA224, Source: ck.CKZ_DATA_SPECIFIED}, rsa.OAEPOptions{Hash: crypto.SHA224}},
		{testOAEP(), rsa.OAEPOptions{Hash: crypto.SHA256, Label: []byte("label")}},
		{&OAEPParams{Hash: ck.CKM_SHA384, MGF: ck.CKG_MGF1_SHA384, Source: ck.CKZ_DATA_SPECIFIED, Label: []byte("x")}, rsa.OAEPOptions{Hash: crypto.SHA384, Label: []byte("x")}},
		{&OAEPParams{Hash: ck.CKM_SHA512, MGF: ck.CKG_MGF1_SHA512}, rsa.OAEPOptions{Hash: crypto.SHA512}},
		{&OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA1}, rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA1}},
		{&OAEPParams{Hash: ck.CKM_SHA3_256, MGF: ck.CKG_MGF1_SHA3_256}, rsa.OAEPOptions{Hash: crypto.SHA3_256}},
	} {
		// Ours -> crypto/rsa and back.
		enc, err := m.Encrypt(pub, c.p)
		require.NoError(t, err)
		ct, err := enc.Once(nil, msg)
		require.NoError(t, err)
		pt, err := priv.Decrypt(nil, ct, &c.opts)
		require.NoError(t, err, c.p)
		assert.Equal(t, msg, pt)
		std, err := rsa.EncryptOAEPWithOptions(rand.Reader, pub, msg, &c.opts)
		require.NoError(t, err)
		dec, err := m.Decrypt(priv, c.p)
		require.NoError(t, err)
		pt, err = dec.Once(nil, std)
		require.NoError(t, err)
		assert.Equal(t, msg, pt)

		// Length limit k - 2hLen - 2.
		max := k - 2*c.opts.Hash.Size() - 2
		_, err = enc.Once(nil, make([]byte, max))
		assert.NoError(t, err)
		_, err = enc.Once(nil, make([]byte, max+1))
		assert.ErrorIs(t, err, ck.CKR_DATA_LEN_RANGE)
	}

	for name, p := range map[string]any{
		"unknown hash":         &OAEPParams{Hash: ck.CKM_AES_GCM, MGF: ck.CKG_MGF1_SHA256},
		"unknown mgf":          &OAEPParams{Hash: ck.CKM_SHA256, MGF: 0x77},
		"label without source": &OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, Label: []byte("l")},
		"unknown source":       &OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, Source: 2},
		"nil":                  (*OAEPParams)(nil),
		"wrong type":           &PSSParams{Hash: ck.CKM_SHA256},
	} {
		_, err := m.Encrypt(pub, p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, name)
		_, err = m.Decrypt(priv, p)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, name)
		_, err = m.Wrap(pub, p, []byte("k"))
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, name)
	}
}

func TestRSAAESKeyWrap(t *testing.T) {
	f := rsaFixture(t)
	priv, pub := f.priv.(*rsa.PrivateKey), f.pub.(*rsa.PublicKey)
	m := row(t, ck.CKM_RSA_AES_KEY_WRAP)
	k := pub.Size()
	target := bytes.Repeat([]byte("0123456789abcdef"), 5)[:75]

	// Layout: RSA-OAEP(kek) || KWP(kek, target). Opening the first part
	// with crypto/rsa and the second with CKM_AES_KEY_WRAP_KWP's code gives
	// the key back, and a blob built the same way unwraps.
	for _, bits := range []int{128, 192, 256} {
		p := &RSAAESKeyWrapParams{AESKeyBits: bits, OAEP: testOAEP()}
		w, err := m.Wrap(pub, p, target)
		require.NoError(t, err)
		require.Len(t, w, k+8+(len(target)+7)/8*8)
		kek, err := priv.Decrypt(nil, w[:k], &rsa.OAEPOptions{Hash: crypto.SHA256, Label: []byte("label")})
		require.NoError(t, err)
		require.Len(t, kek, bits/8)
		got, err := kwUnwrapKey(true)(kek, nil, w[k:])
		require.NoError(t, err)
		assert.Equal(t, target, got)

		// And a blob built by hand unwraps.
		kek2 := bytes.Repeat([]byte{7}, bits/8)
		ct, err := rsa.EncryptOAEPWithOptions(rand.Reader, pub, kek2, &rsa.OAEPOptions{Hash: crypto.SHA256, Label: []byte("label")})
		require.NoError(t, err)
		kwp, err := kwWrapKey(true)(kek2, nil, target)
		require.NoError(t, err)
		blob := append(ct, kwp...)
		got, err = m.Unwrap(priv, p, blob)
		require.NoError(t, err)
		assert.Equal(t, target, got)
	}

	for name, p := range map[string]any{
		"aes bits 0":   &RSAAESKeyWrapParams{AESKeyBits: 0, OAEP: testOAEP()},
		"aes bits 512": &RSAAESKeyWrapParams{AESKeyBits: 512, OAEP: testOAEP()},
		"aes bytes":    &RSAAESKeyWrapParams{AESKeyBits: 32, OAEP: testOAEP()},
		"no oaep":      &RSAAESKeyWrapParams{AESKeyBits: 256},
		"bad oaep":     &RSAAESKeyWrapParams{AESKeyBits: 256, OAEP: &OAEPParams{Hash: ck.CKM_SHA256, MGF: 0x77}},
		"nil":          (*RSAAESKeyWrapParams)(nil),
		"oaep params":  testOAEP(),
	} {
		_, err := m.Wrap(pub, p, target)
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, name)
		_, err = m.Unwrap(priv, p, make([]byte, k+24))
		assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID, name)
	}
	p := &RSAAESKeyWrapParams{AESKeyBits: 256, OAEP: testOAEP()}
	_, err := m.Wrap(pub, p, nil)
	assert.ErrorIs(t, err, ck.CKR_KEY_SIZE_RANGE)
	for _, n := range []int{0, k, k + 8, k + 20} {
		_, err = m.Unwrap(priv, p, make([]byte, n))
		assert.ErrorIs(t, err, ck.CKR_WRAPPED_KEY_LEN_RANGE, n)
	}
}

func TestRSAX931KeyGen(t *testing.T) {
	m := row(t, ck.CKM_RSA_X9_31_KEY_PAIR_GEN)
	pub, priv, err := m.GenerateKeyPair(rand.Reader, KeyGenParams{ModulusBits: 1280})
	require.NoError(t, err)
	k := priv.(*rsa.PrivateKey)
	require.NoError(t, k.Validate())
	assert.Equal(t, 1280, k.N.BitLen())
	assert.True(t, k.PublicKey.Equal(pub))
	// FIPS 186-5 A.1.3 / 186-4 B.3.3: |p - q| > 2^(nlen/2 - 100), both
	// of nlen/2 bits, d > 2^(nlen/2).
	p, q := k.Primes[0], k.Primes[1]
	assert.Equal(t, 640, p.BitLen())
	assert.Equal(t, 640, q.BitLen())
	diff := new(big.Int).Sub(p, q)
	assert.Greater(t, diff.Abs(diff).BitLen(), 640-100)
	assert.Greater(t, k.D.BitLen(), 640)

	for _, bits := range []int{1100, 2000, 2047} {
		_, _, err := m.GenerateKeyPair(rand.Reader, KeyGenParams{ModulusBits: bits})
		assert.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, bits)
	}
}
