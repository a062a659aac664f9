package mechanisms

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/mldsa"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// The conformance suite runs over every row of the table, driven by which
// constructors the row has. Adding a row needs at most a fixture size for a
// new key type and a parameter for a new ParamKind below.

// fixtureSizes are the key sizes the suite generates per key type, in the
// row's units.
var fixtureSizes = map[ck.KeyType][]int{
	ck.CKK_RSA: {2048},
	ck.CKK_EC:  {256, 384},
	ck.CKK_AES: {16, 24, 32},
	// ML-DSA: public key bytes of ML-DSA-44 and ML-DSA-87.
	ck.CKK_ML_DSA: {1312, 2592},
}

// keyGenCases are per key type: good parameters for a quick generation
// and bad ones with the error the spec prescribes.
var keyGenCases = map[ck.KeyType]struct {
	good []KeyGenParams
	bad  []struct {
		p    KeyGenParams
		want ck.RV
	}
}{}

func init() {
	type bad = struct {
		p    KeyGenParams
		want ck.RV
	}
	p224, _ := ECParams(elliptic.P224())
	p521, _ := ECParams(elliptic.P521())
	keyGenCases[ck.CKK_RSA] = struct {
		good []KeyGenParams
		bad  []bad
	}{
		good: []KeyGenParams{{ModulusBits: 1024}, {ModulusBits: 1024, PublicExponent: []byte{0, 1, 0, 1}}},
		bad: []bad{
			{KeyGenParams{}, ck.CKR_TEMPLATE_INCOMPLETE},
			{KeyGenParams{ModulusBits: 512}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
			{KeyGenParams{ModulusBits: 8192}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
			{KeyGenParams{ModulusBits: 1024, PublicExponent: []byte{3}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		},
	}
	keyGenCases[ck.CKK_EC] = struct {
		good []KeyGenParams
		bad  []bad
	}{
		good: []KeyGenParams{{ECParams: ecParams(256)}, {ECParams: ecParams(384)}},
		bad: []bad{
			{KeyGenParams{}, ck.CKR_TEMPLATE_INCOMPLETE},
			{KeyGenParams{ECParams: p224}, ck.CKR_CURVE_NOT_SUPPORTED},
			{KeyGenParams{ECParams: p521}, ck.CKR_CURVE_NOT_SUPPORTED},
			{KeyGenParams{ECParams: []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a}}, ck.CKR_CURVE_NOT_SUPPORTED}, // secp256k1
			{KeyGenParams{ECParams: []byte{0xff, 0x00}}, ck.CKR_DOMAIN_PARAMS_INVALID},
		},
	}
	keyGenCases[ck.CKK_AES] = struct {
		good []KeyGenParams
		bad  []bad
	}{
		good: []KeyGenParams{{ValueLen: 16}, {ValueLen: 24}, {ValueLen: 32}},
		bad: []bad{
			{KeyGenParams{}, ck.CKR_TEMPLATE_INCOMPLETE},
			{KeyGenParams{ValueLen: 8}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
			{KeyGenParams{ValueLen: 20}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
			{KeyGenParams{ValueLen: 64}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
			{KeyGenParams{ValueLen: -1}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		},
	}
	keyGenCases[ck.CKK_ML_DSA] = struct {
		good []KeyGenParams
		bad  []bad
	}{
		good: []KeyGenParams{{ParameterSet: ck.CKP_ML_DSA_44}, {ParameterSet: ck.CKP_ML_DSA_65}, {ParameterSet: ck.CKP_ML_DSA_87}},
		bad: []bad{
			{KeyGenParams{}, ck.CKR_TEMPLATE_INCOMPLETE},
			{KeyGenParams{ParameterSet: 4}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
			{KeyGenParams{ParameterSet: ^ck.ULong(0)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		},
	}
}

func ecParams(bits int) []byte {
	for i, c := range namedCurves {
		if c.curve.Params().BitSize == bits {
			return namedCurveDER()[i]
		}
	}
	panic("no curve")
}

func genParams(kt ck.KeyType, size int) KeyGenParams {
	switch keyClasses[kt] {
	case classRSA:
		return KeyGenParams{ModulusBits: size}
	case classEC:
		return KeyGenParams{ECParams: ecParams(size)}
	case classEdwards:
		return KeyGenParams{ECParams: must(asn1.Marshal(oidEd25519))}
	case classMontgomery:
		return KeyGenParams{ECParams: X25519Params()}
	case classMLDSA:
		for set, p := range mldsaSets {
			if p.PublicKeySize() == size {
				return KeyGenParams{ParameterSet: set}
			}
		}
	case classMLKEM:
		return KeyGenParams{ParameterSet: map[int]ck.ULong{512: ck.CKP_ML_KEM_512, 768: ck.CKP_ML_KEM_768, 1024: ck.CKP_ML_KEM_1024}[size]}
	}
	return KeyGenParams{ValueLen: size}
}

// fixture is a key of one type and size, and a second, different one.
type fixture struct {
	kt          ck.KeyType
	size        int
	pub, priv   any // the same []byte for secret keys
	pub2, priv2 any
}

var (
	fixturesOnce sync.Once
	fixtures     map[ck.KeyType][]fixture
)

// keyFixtures generates, once, the keys of every type some row generates,
// using the table's own key generation rows.
func keyFixtures(t *testing.T, kt ck.KeyType) []fixture {
	t.Helper()
	fixturesOnce.Do(func() {
		fixtures = map[ck.KeyType][]fixture{}
		for _, m := range All() {
			for _, kt := range m.KeyTypes {
				for _, size := range fixtureSizes[kt] {
					gen := func() (any, any) {
						p := genParams(kt, size)
						if m.GenerateKey != nil {
							k, err := m.GenerateKey(rand.Reader, p)
							require.NoError(t, err)
							return k, k
						}
						pub, priv, err := m.GenerateKeyPair(rand.Reader, p)
						require.NoError(t, err)
						return pub, priv
					}
					if m.GenerateKey == nil && m.GenerateKeyPair == nil || m.Param != ParamNone {
						// Generation with a parameter (PBKDF2) makes keys
						// from a password; its vectors test it.
						continue
					}
					f := fixture{kt: kt, size: size}
					f.pub, f.priv = gen()
					f.pub2, f.priv2 = gen()
					fixtures[kt] = append(fixtures[kt], f)
				}
			}
		}
	})
	fs := fixtures[kt]
	require.NotEmpty(t, fs, "no fixture for key type %v: add it to fixtureSizes", kt)
	return fs
}

// paramCases give, per ParamKind, a valid parameter for a row and variants
// that must make decryption or verification of its output fail. f is the
// key fixture in use (nil where none is), for parameters that depend on the
// key (a peer's public point). Families register their kinds in an init()
// of their own test file.
var paramCases = map[ParamKind]func(t *testing.T, m *Mechanism, f *fixture) (any, []any){
	ParamNone: func(*testing.T, *Mechanism, *fixture) (any, []any) { return nil, nil },
	ParamGCM: func(*testing.T, *Mechanism, *fixture) (any, []any) {
		iv := bytes.Repeat([]byte{0x5a}, 12)
		p := &GCMParams{IV: iv, AAD: []byte("header"), TagBits: 128}
		iv2 := slices.Clone(iv)
		iv2[11] ^= 1
		return p, []any{
			&GCMParams{IV: iv2, AAD: p.AAD, TagBits: 128},
			&GCMParams{IV: iv, AAD: []byte("Header"), TagBits: 128},
			&GCMParams{IV: iv, AAD: p.AAD, TagBits: 96},
		}
	},
	ParamPSS: func(*testing.T, *Mechanism, *fixture) (any, []any) {
		return &PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: 32},
			[]any{&PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: 20}}
	},
}

// inputLengths overrides, per mechanism, the message lengths the cipher
// and signature tests use (block ciphers without padding need whole blocks).
var inputLengths = map[ck.MechanismType][]int{}

// extraConformance are further checks run for every row, registered by
// family test files for operations the core suite does not drive (derive,
// wrap, recover, message AEAD); each decides from the row whether it applies.
var extraConformance []func(t *testing.T, m *Mechanism)

func testParam(t *testing.T, m *Mechanism) (any, []any) {
	return testParamFor(t, m, nil)
}

func testParamFor(t *testing.T, m *Mechanism, f *fixture) (any, []any) {
	pc, ok := paramCases[m.Param]
	if !ok {
		t.Fatalf("no test parameter for ParamKind %d: register one in paramCases", m.Param)
	}
	return pc(t, m, f)
}

func flipLast(b []byte) []byte {
	b = slices.Clone(b)
	b[len(b)-1] ^= 0x01
	return b
}

// chunks splits b into parts of growing sizes, including empty ones.
func chunks(b []byte) [][]byte {
	var out [][]byte
	for n := 0; len(b) > 0; n = n*2 + 1 {
		k := min(n, len(b))
		out = append(out, b[:k])
		b = b[k:]
	}
	return append(out, nil)
}

func TestConformance(t *testing.T) {
	for _, m := range All() {
		t.Run(m.Type.String(), func(t *testing.T) {
			t.Parallel()
			if (m.GenerateKey != nil || m.GenerateKeyPair != nil) && m.Param == ParamNone {
				testKeyGen(t, m)
			}
			if m.Digest != nil {
				testDigest(t, m)
			}
			if m.Encrypt != nil || m.Decrypt != nil || m.Sign != nil || m.Verify != nil {
				testKeyChecks(t, m)
				for _, kt := range m.KeyTypes {
					for _, f := range keyFixtures(t, kt) {
						if m.Encrypt != nil {
							testCipher(t, m, f)
						}
						if m.Sign != nil {
							testSignVerify(t, m, f)
						}
					}
				}
			}
			for _, x := range extraConformance {
				x(t, m)
			}
		})
	}
}

func testKeyGen(t *testing.T, m *Mechanism) {
	for _, kt := range m.KeyTypes {
		cases, ok := keyGenCases[kt]
		require.True(t, ok, "no key generation cases for %v", kt)
		for _, p := range cases.good {
			if m.GenerateKey != nil {
				k, err := m.GenerateKey(rand.Reader, p)
				require.NoError(t, err)
				require.IsType(t, []byte{}, k)
				assert.Len(t, k, p.ValueLen)
				k2, err := m.GenerateKey(rand.Reader, p)
				require.NoError(t, err)
				assert.NotEqual(t, k, k2)
				continue
			}
			pub, priv, err := m.GenerateKeyPair(rand.Reader, p)
			require.NoError(t, err)
			class, size := keyInfo(priv)
			assert.Equal(t, keyClasses[kt], class)
			assert.GreaterOrEqual(t, size, m.MinKeySize)
			assert.LessOrEqual(t, size, m.MaxKeySize)
			switch k := priv.(type) {
			case *rsa.PrivateKey:
				assert.True(t, k.PublicKey.Equal(pub))
				assert.Equal(t, p.ModulusBits, k.N.BitLen())
				assert.Equal(t, 65537, k.E)
				require.NoError(t, k.Validate())
			case *ecdsa.PrivateKey:
				assert.True(t, k.PublicKey.Equal(pub))
				assert.Equal(t, p.ECParams, must(ECParams(k.Curve)))
			case ed25519.PrivateKey:
				assert.True(t, k.Public().(ed25519.PublicKey).Equal(pub))
			case *ecdh.PrivateKey:
				assert.True(t, k.PublicKey().Equal(pub))
			case *mldsa.PrivateKey:
				assert.True(t, k.PublicKey().Equal(pub))
				assert.Equal(t, p.ParameterSet, MLDSAParameterSet(k.PublicKey().Parameters()))
			case *mlkem.DecapsulationKey768, *mlkem.DecapsulationKey1024, *mlkem512Private:
				set, ek, _, _ := MLKEMKeyMaterial(priv)
				pset, pek, _, _ := MLKEMKeyMaterial(pub)
				assert.Equal(t, p.ParameterSet, set)
				assert.Equal(t, []any{set, ek}, []any{pset, pek})
			default:
				t.Fatalf("unexpected private key %T", priv)
			}
		}
		for _, c := range cases.bad {
			var err error
			if m.GenerateKey != nil {
				_, err = m.GenerateKey(rand.Reader, c.p)
			} else {
				_, _, err = m.GenerateKeyPair(rand.Reader, c.p)
			}
			assert.ErrorIs(t, err, c.want, "%+v", c.p)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func testDigest(t *testing.T, m *Mechanism) {
	msg := bytes.Repeat([]byte("0123456789"), 100)
	d, err := m.Digest(nil)
	require.NoError(t, err)
	require.NoError(t, d.Update(msg))
	want := d.Sum(nil)
	require.Len(t, want, d.Size())

	d, err = m.Digest(nil)
	require.NoError(t, err)
	for _, p := range chunks(msg) {
		require.NoError(t, d.Update(p))
	}
	got := d.Sum([]byte("prefix"))
	assert.Equal(t, append([]byte("prefix"), want...), got)

	_, err = m.Digest(&GCMParams{})
	assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
}

// testKeyChecks: wrong key types, wrong key purposes, wrong sizes and
// missing or unexpected parameters are refused by every constructor.
func testKeyChecks(t *testing.T, m *Mechanism) {
	param, _ := testParam(t, m)
	type ctor = func(key, param any) error
	ctors := map[string]ctor{}
	if m.Encrypt != nil {
		ctors["encrypt"] = func(k, p any) error { _, err := m.Encrypt(k, p); return err }
		ctors["decrypt"] = func(k, p any) error { _, err := m.Decrypt(k, p); return err }
	}
	if m.Sign != nil {
		ctors["sign"] = func(k, p any) error { _, err := m.Sign(k, p); return err }
		ctors["verify"] = func(k, p any) error { _, err := m.Verify(k, p); return err }
	}
	private := map[string]bool{"decrypt": true, "sign": true}

	// Keys of every other Go representation.
	foreign := []any{"not a key", nil, (*rsa.PrivateKey)(nil)}
	for kt := range fixtureSizes {
		if slices.ContainsFunc(m.KeyTypes, func(x ck.KeyType) bool { return keyClasses[x] == keyClasses[kt] }) {
			continue
		}
		f := keyFixtures(t, kt)[0]
		foreign = append(foreign, f.pub, f.priv)
	}
	for op, c := range ctors {
		for _, k := range foreign {
			assert.ErrorIs(t, c(k, param), ck.CKR_KEY_TYPE_INCONSISTENT, "%s with %T", op, k)
		}
	}

	// Purpose: a public key cannot sign or decrypt, a private one is not
	// used to verify or encrypt.
	for _, kt := range m.KeyTypes {
		f := keyFixtures(t, kt)[0]
		if keyClasses[kt] == classSecret {
			continue
		}
		for op, c := range ctors {
			wrong := f.priv
			if private[op] {
				wrong = f.pub
			}
			assert.ErrorIs(t, c(wrong, param), ck.CKR_KEY_TYPE_INCONSISTENT, "%s with %T", op, wrong)
		}
	}

	// Sizes just outside the row's range.
	for _, kt := range m.KeyTypes {
		for _, k := range outOfRangeKeys(t, m, kt) {
			for op, c := range ctors {
				_, isPriv := k.(*rsa.PrivateKey)
				_, isECPriv := k.(*ecdsa.PrivateKey)
				if keyClasses[kt] != classSecret && private[op] != (isPriv || isECPriv) {
					continue
				}
				assert.ErrorIs(t, c(k, param), ck.CKR_KEY_SIZE_RANGE, "%s with %T", op, k)
			}
		}
	}

	// Parameters.
	f := keyFixtures(t, m.KeyTypes[0])[0]
	for op, c := range ctors {
		k := f.pub
		if private[op] {
			k = f.priv
		}
		require.NoError(t, c(k, param), op)
		if m.Param == ParamNone {
			assert.ErrorIs(t, c(k, &GCMParams{}), ck.CKR_MECHANISM_PARAM_INVALID, op)
			assert.ErrorIs(t, c(k, []byte{1}), ck.CKR_MECHANISM_PARAM_INVALID, op)
			require.NoError(t, c(k, []byte{}), op)
		} else {
			if m.ParamOptional {
				require.NoError(t, c(k, nil), "%s: optional parameter absent", op)
			} else {
				assert.ErrorIs(t, c(k, nil), ck.CKR_MECHANISM_PARAM_INVALID, op)
			}
			assert.ErrorIs(t, c(k, []byte{1, 2, 3}), ck.CKR_MECHANISM_PARAM_INVALID, op)
		}
	}
}

var (
	smallRSAOnce sync.Once
	smallRSA     *rsa.PrivateKey
)

// outOfRangeKeys are keys of type kt just outside the row's size range.
func outOfRangeKeys(t *testing.T, m *Mechanism, kt ck.KeyType) []any {
	switch keyClasses[kt] {
	case classSecret:
		return []any{make([]byte, m.MinKeySize-1), make([]byte, m.MaxKeySize+1)}
	case classEC:
		var out []any
		for _, c := range namedCurves {
			if bits := uint(c.curve.Params().BitSize); bits < m.MinKeySize || bits > m.MaxKeySize {
				k, err := ecdsa.GenerateKey(c.curve, rand.Reader)
				require.NoError(t, err)
				out = append(out, k, &k.PublicKey)
			}
		}
		// Sizes no supported curve has (secp192r1's, sect571r1's): keys on
		// stand-in curves the guard must refuse before any arithmetic.
		for _, bits := range []int{192, 571} {
			if b := uint(bits); b < m.MinKeySize || b > m.MaxKeySize {
				c := &elliptic.CurveParams{Name: "out-of-range", BitSize: bits, P: big.NewInt(1), N: big.NewInt(1)}
				pub := ecdsa.PublicKey{Curve: c, X: big.NewInt(1), Y: big.NewInt(1)}
				out = append(out, &ecdsa.PrivateKey{PublicKey: pub, D: big.NewInt(1)}, &pub)
			}
		}
		require.NotEmpty(t, out)
		return out
	case classEdwards, classMontgomery:
		return nil // one curve, one size
	case classMLDSA:
		return nil // every parameter set is in range
	case classRSA:
		// A public key of one bit more than the maximum needs no
		// generation; a private key below the minimum does.
		big1 := new(big.Int).Lsh(big.NewInt(1), m.MaxKeySize)
		big1.Add(big1, big.NewInt(1))
		return []any{&rsa.PublicKey{N: big1, E: 65537}, testSmallRSA(), &testSmallRSA().PublicKey}
	}
	t.Fatalf("no out-of-range keys for %v", kt)
	return nil
}

// testSmallRSA is a 512-bit key, below every row's minimum. Go generates
// such keys only under GODEBUG=rsa1024min=0, which parallel tests cannot
// set, so it is assembled from two fixed 256-bit primes.
func testSmallRSA() *rsa.PrivateKey {
	smallRSAOnce.Do(func() {
		p, q := prime256(1), prime256(2)
		n := new(big.Int).Mul(p, q)
		phi := new(big.Int).Mul(new(big.Int).Sub(p, big.NewInt(1)), new(big.Int).Sub(q, big.NewInt(1)))
		d := new(big.Int).ModInverse(big.NewInt(65537), phi)
		smallRSA = &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: 65537}, D: d, Primes: []*big.Int{p, q}}
	})
	return smallRSA
}

// prime256 is the first prime above 2^255 + seed*2^128 (deterministic).
func prime256(seed int64) *big.Int {
	x := new(big.Int).Lsh(big.NewInt(1), 255)
	x.Add(x, new(big.Int).Lsh(big.NewInt(seed), 128))
	x.SetBit(x, 0, 1)
	for !x.ProbablyPrime(20) {
		x.Add(x, big.NewInt(2))
	}
	return x
}

func testCipher(t *testing.T, m *Mechanism, f fixture) {
	param, variants := testParamFor(t, m, &f)
	lengths := []int{0, 1, 17, 32}
	if !m.SinglePart {
		lengths = append(lengths, 16, 1000, 4096)
	}
	if l, ok := inputLengths[m.Type]; ok {
		lengths = l
	}
	for _, n := range lengths {
		msg := make([]byte, n)
		_, _ = rand.Read(msg)

		encrypt := func(key any, p any) []byte {
			c, err := m.Encrypt(key, p)
			require.NoError(t, err)
			max := c.MaxOutput(n, true)
			out, err := c.Once([]byte("prefix"), msg)
			require.NoError(t, err)
			require.Equal(t, []byte("prefix"), out[:6], "Once appends to dst")
			require.LessOrEqual(t, len(out)-6, max)
			return out[6:]
		}
		decrypt := func(key, p any, ct []byte) ([]byte, error) {
			c, err := m.Decrypt(key, p)
			require.NoError(t, err)
			max := c.MaxOutput(len(ct), true)
			out, err := c.Once(nil, ct)
			if err == nil {
				require.LessOrEqual(t, len(out), max)
			}
			return out, err
		}

		ct := encrypt(f.pub, param)
		pt, err := decrypt(f.priv, param, ct)
		require.NoError(t, err, "%v %d-byte key, %d-byte message", m.Type, f.size, n)
		equalBytes(t, msg, pt)
		deterministic := bytes.Equal(ct, encrypt(f.pub, param))

		if !m.SinglePart {
			c, err := m.Encrypt(f.pub, param)
			require.NoError(t, err)
			var multi []byte
			for _, part := range chunks(msg) {
				max := c.MaxOutput(len(part), false)
				before := len(multi)
				multi, err = c.Update(multi, part)
				require.NoError(t, err)
				require.LessOrEqual(t, len(multi)-before, max)
			}
			max := c.MaxOutput(0, false)
			before := len(multi)
			multi, err = c.Final(multi)
			require.NoError(t, err)
			require.LessOrEqual(t, len(multi)-before, max)
			if deterministic {
				equalBytes(t, ct, multi, "multi-part encryption differs from single-part")
			}

			d, err := m.Decrypt(f.priv, param)
			require.NoError(t, err)
			var plain []byte
			for _, part := range chunks(multi) {
				plain, err = d.Update(plain, part)
				require.NoError(t, err)
			}
			plain, err = d.Final(plain)
			require.NoError(t, err)
			equalBytes(t, msg, plain, "multi-part decryption")
		}

		// Tampering, a wrong key or a wrong parameter must not yield the
		// message; an error, if any, is one the spec allows.
		refused := func(what string, pt []byte, err error) {
			if err != nil {
				if !assert.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_INVALID, what) {
					t.Logf("%v", err)
				}
				return
			}
			// A stream mode's output of a few bytes matches by chance (1 in
			// 256 for one byte): only longer messages can tell.
			if len(msg) >= 8 {
				assert.False(t, bytes.Equal(msg, pt), what)
			}
		}
		if len(ct) > 0 {
			pt, err = decrypt(f.priv, param, flipLast(ct))
			refused("tampered ciphertext", pt, err)
			pt, err = decrypt(f.priv, param, ct[:len(ct)-1])
			if err == nil {
				assert.False(t, bytes.Equal(msg, pt), "truncated ciphertext")
			} else {
				assert.True(t, errorsIsAny(err, ck.CKR_ENCRYPTED_DATA_INVALID, ck.CKR_ENCRYPTED_DATA_LEN_RANGE), "truncated: %v", err)
			}
		}
		pt, err = decrypt(f.priv2, param, ct)
		refused("wrong key", pt, err)
		for _, v := range variants {
			pt, err = decrypt(f.priv, v, ct)
			refused("wrong parameter", pt, err)
		}
	}
}

func errorsIsAny(err error, rvs ...ck.RV) bool {
	for _, rv := range rvs {
		if errors.Is(err, rv) {
			return true
		}
	}
	return false
}

// equalBytes compares byte strings with nil and empty alike.
func equalBytes(t *testing.T, want, got []byte, msgAndArgs ...any) {
	t.Helper()
	if !bytes.Equal(want, got) {
		assert.Equal(t, want, got, msgAndArgs...)
		t.FailNow()
	}
}

func testSignVerify(t *testing.T, m *Mechanism, f fixture) {
	param, variants := testParamFor(t, m, &f)
	// Single-part rows sign what the caller hashed: 32 bytes suits raw
	// ECDSA, raw PKCS#1 v1.5 and PSS with SHA-256.
	msgs := [][]byte{make([]byte, 32)}
	if !m.SinglePart {
		msgs = append(msgs, nil, []byte("a"), make([]byte, 5000))
	}
	if l, ok := inputLengths[m.Type]; ok {
		msgs = msgs[:0]
		for _, n := range l {
			msgs = append(msgs, make([]byte, n))
		}
	}
	sign := func(key, p any, parts ...[]byte) []byte {
		s, err := m.Sign(key, p)
		require.NoError(t, err)
		for _, part := range parts {
			require.NoError(t, s.Update(part))
		}
		sig, err := s.Sign([]byte("prefix"))
		require.NoError(t, err)
		require.Equal(t, []byte("prefix"), sig[:6])
		require.Len(t, sig[6:], s.Size())
		return sig[6:]
	}
	verify := func(key, p any, sig []byte, parts ...[]byte) error {
		v, err := m.Verify(key, p)
		require.NoError(t, err)
		for _, part := range parts {
			require.NoError(t, v.Update(part))
		}
		return v.Verify(sig)
	}
	for _, msg := range msgs {
		_, _ = rand.Read(msg)
		// Signing as the token does, with the row's prepared key.
		priv := prepared(t, m, f.priv)
		sig := sign(priv, param, msg)
		require.NoError(t, verify(f.pub, param, sig, msg), "%v size %d", m.Type, f.size)
		deterministic := bytes.Equal(sig, sign(priv, param, msg))

		if !m.SinglePart {
			multi := sign(priv, param, chunks(msg)...)
			require.NoError(t, verify(f.pub, param, multi, msg), "multi-part signature")
			require.NoError(t, verify(f.pub, param, sig, chunks(msg)...), "multi-part verification")
			if deterministic {
				require.Equal(t, sig, multi, "multi-part signature differs from single-part")
			}
		}

		if len(msg) > 0 {
			assert.ErrorIs(t, verify(f.pub, param, sig, flipLast(msg)), ck.CKR_SIGNATURE_INVALID, "tampered data")
		}
		assert.ErrorIs(t, verify(f.pub, param, flipLast(sig), msg), ck.CKR_SIGNATURE_INVALID, "tampered signature")
		assert.ErrorIs(t, verify(f.pub2, param, sig, msg), ck.CKR_SIGNATURE_INVALID, "wrong key")
		assert.ErrorIs(t, verify(f.pub, param, sig[:len(sig)-1], msg), ck.CKR_SIGNATURE_LEN_RANGE, "short signature")
		assert.ErrorIs(t, verify(f.pub, param, append(slices.Clone(sig), 0), msg), ck.CKR_SIGNATURE_LEN_RANGE, "long signature")
		for _, v := range variants {
			assert.ErrorIs(t, verify(f.pub, v, sig, msg), ck.CKR_SIGNATURE_INVALID, "wrong parameter")
		}
	}
}
