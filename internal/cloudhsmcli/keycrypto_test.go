package cloudhsmcli

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
	"gohsm/token"
	"gohsm/token/attrs"
)

var profiles = []string{"standard", "cloudhsm"}

// createAES makes a token AES key with a fixed value (so that wraps are
// reproducible), as the session's user.
func createAES(t *testing.T, m *token.Module, h ck.ULong, label string, value []byte, extra attrs.Template) ck.ULong {
	t.Helper()
	tmpl := attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
		ck.CKA_TOKEN: []byte{1}, ck.CKA_LABEL: []byte(label), ck.CKA_VALUE: value,
		ck.CKA_ENCRYPT: []byte{1}, ck.CKA_DECRYPT: []byte{1}, ck.CKA_WRAP: []byte{1}, ck.CKA_UNWRAP: []byte{1},
		ck.CKA_EXTRACTABLE: []byte{1}}
	for k, v := range extra {
		tmpl[k] = v
	}
	k, err := m.CreateObject(h, tmpl)
	require.NoError(t, err)
	return k
}

// genPair makes a token key pair labelled label-pub / label-priv.
func genPair(t *testing.T, m *token.Module, h ck.ULong, mech ck.MechanismType, label string, pub, priv attrs.Template) {
	t.Helper()
	pub[ck.CKA_TOKEN], pub[ck.CKA_LABEL] = []byte{1}, []byte(label+"-pub")
	priv[ck.CKA_TOKEN], priv[ck.CKA_LABEL] = []byte{1}, []byte(label+"-priv")
	_, _, err := m.GenerateKeyPair(h, token.Mechanism{Type: mech}, pub, priv)
	require.NoError(t, err)
}

func rsaPair(t *testing.T, m *token.Module, h ck.ULong, label string) {
	genPair(t, m, h, ck.CKM_RSA_PKCS_KEY_PAIR_GEN, label,
		attrs.Template{ck.CKA_MODULUS_BITS: attrs.ULong(2048), ck.CKA_PUBLIC_EXPONENT: []byte{1, 0, 1},
			ck.CKA_VERIFY: []byte{1}, ck.CKA_WRAP: []byte{1}, ck.CKA_ENCRYPT: []byte{1}},
		attrs.Template{ck.CKA_SIGN: []byte{1}, ck.CKA_UNWRAP: []byte{1}, ck.CKA_DECRYPT: []byte{1},
			ck.CKA_EXTRACTABLE: []byte{1}})
}

func ecPair(t *testing.T, m *token.Module, h ck.ULong, label string) {
	p256, _ := CurveParams("secp256r1")
	genPair(t, m, h, ck.CKM_EC_KEY_PAIR_GEN, label,
		attrs.Template{ck.CKA_EC_PARAMS: p256, ck.CKA_VERIFY: []byte{1}},
		attrs.Template{ck.CKA_SIGN: []byte{1}, ck.CKA_EXTRACTABLE: []byte{1}})
}

// attr reads one attribute of the key list "attributes" object in a
// command's data ({"key": {...}}).
func keyAttr(t *testing.T, data json.RawMessage, name string) any {
	t.Helper()
	var d struct {
		Key struct {
			Ref   string         `json:"key-reference"`
			Attrs map[string]any `json:"attributes"`
		} `json:"key"`
	}
	require.NoError(t, json.Unmarshal(data, &d))
	return d.Key.Attrs[name]
}

// TestKeyImportPEMAndGenerateFile: public keys come in from PEM files
// with CloudHSM's output (golden), go back out as the same PEM, and the
// refusals say what is wrong.
func TestKeyImportPEMAndGenerateFile(t *testing.T) {
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			e := newCryptoEnv(t, profile)
			for _, k := range []struct{ file, class, label string }{
				{"rsa2048-public.pem", "rsa-public", "rsa-imported"},
				{"ec-p256-public.pem", "ec-public", "ec-imported"},
			} {
				in := filepath.Join("testdata", k.file)
				code, out := e.run(cryptoAlicePIN, "key", "import", "pem", "--path", in, "--label", k.label,
					"--key-type-class", k.class, "--attributes", "verify=true", "id=0x0102")
				require.Equal(t, 0, code, out)
				cryptoGolden(t, "key-import-pem-"+k.class+"-"+profile, out)

				exported := filepath.Join(e.dir, k.label+".pem")
				e.ok(cryptoAlicePIN, "key", "generate-file", "--encoding", "pem", "--path", exported,
					"--filter", "attr.label="+k.label, "attr.class=public-key")
				want, err := os.ReadFile(in)
				require.NoError(t, err)
				got, err := os.ReadFile(exported)
				require.NoError(t, err)
				require.Equal(t, string(want), string(got))
			}
			rsaPEM := filepath.Join("testdata", "rsa2048-public.pem")
			e.fails(cryptoAlicePIN, "the PEM file's key is not a ec-public key",
				"key", "import", "pem", "--path", rsaPEM, "--label", "x", "--key-type-class", "ec-public")
			e.fails(cryptoAlicePIN, "[possible values: ec-public, rsa-public]",
				"key", "import", "pem", "--path", rsaPEM, "--label", "x", "--key-type-class", "rsa-private")
			e.fails(cryptoAlicePIN, "key import pem takes a public key",
				"key", "import", "pem", "--path", filepath.Join("testdata", "ec-p256-private.pem"), "--label", "x", "--key-type-class", "ec-public")
			e.fails(cryptoAlicePIN, "the following required arguments were not provided: --label <LABEL>",
				"key", "import", "pem", "--path", rsaPEM, "--key-type-class", "rsa-public")
			e.fails(cryptoAlicePIN, "attribute 'check-value' cannot be set",
				"key", "import", "pem", "--path", rsaPEM, "--label", "x", "--key-type-class", "rsa-public", "--attributes", "check-value=0x01")
			e.fails("", ErrNotLoggedIn.Error(),
				"key", "import", "pem", "--path", rsaPEM, "--label", "x", "--key-type-class", "rsa-public")
			notPEM := filepath.Join(e.dir, "garbage")
			require.NoError(t, os.WriteFile(notPEM, []byte("not a key"), 0o600))
			e.fails(cryptoAlicePIN, "the file is not in PEM format",
				"key", "import", "pem", "--path", notPEM, "--label", "x", "--key-type-class", "rsa-public")
		})
	}
}

// TestKeyGenerateFileReferencePEM: a private key exports as its public
// key (pem) or as a reference PEM naming it (reference-pem); secret keys
// and reference-pem of a public key are refused.
func TestKeyGenerateFileReferencePEM(t *testing.T) {
	e := newCryptoEnv(t, "cloudhsm")
	e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
		rsaPair(t, m, h, "rsa")
		ecPair(t, m, h, "ec")
		createAES(t, m, h, "aes", bytes.Repeat([]byte{7}, 32), nil)
	})
	alice := e.cuContext(cryptoAlicePIN)
	for _, label := range []string{"rsa", "ec"} {
		priv, err := alice.FindKeyByTerms("filter", []string{"attr.label=" + label + "-priv"})
		require.NoError(t, err)
		pubPath := filepath.Join(e.dir, label+"-pub.pem")
		refPath := filepath.Join(e.dir, label+"-ref.pem")
		e.ok(cryptoAlicePIN, "key", "generate-file", "--encoding", "pem", "--path", pubPath, "--filter", "attr.label="+label+"-priv")
		e.ok(cryptoAlicePIN, "key", "generate-file", "--encoding", "reference-pem", "--path", refPath, "--filter", "attr.label="+label+"-priv")
		pubPEM, err := os.ReadFile(pubPath)
		require.NoError(t, err)
		b, _ := pem.Decode(pubPEM)
		pub, err := x509.ParsePKIXPublicKey(b.Bytes)
		require.NoError(t, err)
		refPEM, err := os.ReadFile(refPath)
		require.NoError(t, err)
		rb, _ := pem.Decode(refPEM)
		require.NotNil(t, rb)
		switch label {
		case "rsa":
			require.Equal(t, "RSA PRIVATE KEY", rb.Type)
			var k struct {
				V                int
				N                *big.Int
				E                int
				D, P, Q, A, B, C *big.Int
			}
			_, err := asn1Unmarshal(rb.Bytes, &k)
			require.NoError(t, err)
			require.Equal(t, 0, pub.(*rsa.PublicKey).N.Cmp(k.N))
			require.Equal(t, uint64(priv), k.D.Uint64())
		case "ec":
			require.Equal(t, "EC PRIVATE KEY", rb.Type)
			_, err := x509.ParseECPrivateKey(rb.Bytes)
			require.NoError(t, err, "the reference PEM is a well-formed SEC 1 structure")
			var k struct {
				V     int
				D     []byte
				Curve asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
				Pub   asn1.BitString        `asn1:"optional,explicit,tag:1"`
			}
			_, err = asn1Unmarshal(rb.Bytes, &k)
			require.NoError(t, err)
			require.Equal(t, uint64(priv), new(big.Int).SetBytes(k.D).Uint64())
			point, err := pub.(*ecdsa.PublicKey).Bytes()
			require.NoError(t, err)
			require.Equal(t, point, k.Pub.Bytes, "it carries the real public key")
		}
	}
	e.fails(cryptoAlicePIN, "takes an asymmetric key", "key", "generate-file", "--encoding", "pem",
		"--path", filepath.Join(e.dir, "x"), "--filter", "attr.label=aes")
	e.fails(cryptoAlicePIN, "reference-pem encoding takes a private key", "key", "generate-file", "--encoding", "reference-pem",
		"--path", filepath.Join(e.dir, "x"), "--filter", "attr.label=rsa-pub")
	e.fails(cryptoAlicePIN, "[possible values: reference-pem, pem]", "key", "generate-file", "--encoding", "der",
		"--path", filepath.Join(e.dir, "x"), "--filter", "attr.label=rsa-pub")
	e.fails(cryptoAlicePIN, "Key selection criteria matched 2 keys", "key", "generate-file", "--encoding", "pem",
		"--path", filepath.Join(e.dir, "x"), "--filter", "attr.key-type=rsa")
	e.fails(cryptoBobPIN, ErrNoKeyMatched.Error(), "key", "generate-file", "--encoding", "pem",
		"--path", filepath.Join(e.dir, "x"), "--filter", "attr.label=rsa-priv")
}

// TestKeyWrapUnwrapRoundTrip: every wrap mechanism the slot offers wraps
// an AES key that unwraps into a key with the same check value; the
// mechanisms it lacks are refused with CKR_MECHANISM_INVALID.
func TestKeyWrapUnwrapRoundTrip(t *testing.T) {
	payload := bytes.Repeat([]byte{0x42}, 32)
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			e := newCryptoEnv(t, profile)
			e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
				createAES(t, m, h, "kek", bytes.Repeat([]byte{0x11}, 32), nil)
				createAES(t, m, h, "payload", payload, nil)
				rsaPair(t, m, h, "rsa")
			})
			listed := e.ok(cryptoAlicePIN, "key", "unwrap", "aes-no-pad", "--filter", "attr.label=kek",
				"--key-type-class", "aes", "--label", "probe", "--session", "--data",
				base64.StdEncoding.EncodeToString(mustWrapRFC3394(t)))
			wantCV := keyAttr(t, listed, "check-value")
			require.NotEmpty(t, wantCV)

			_, s, err := e.cuContext(cryptoAlicePIN).Module()
			require.NoError(t, err)
			for _, c := range []struct {
				mech  string
				wrap  []string // with the payload and wrapping filters
				extra []string // unwrap flags
			}{
				{"aes-no-pad", nil, nil},
				{"aes-pkcs5-pad", nil, nil},
				{"aes-zero-pad", nil, nil},
				{"aes-gcm", []string{"--tag-length-bits", "128", "--aad", "0x0a0b"}, []string{"--tag-length-bits", "128", "--aad", "0a0b"}},
				{"cloudhsm-aes-gcm", []string{"--tag-length-bits", "128"}, []string{"--tag-length-bits", "128"}},
				{"rsa-oaep", []string{"--hash-function", "sha256", "--mgf", "mgf1-sha256"}, []string{"--hash-function", "sha256", "--mgf", "mgf1-sha256"}},
				{"rsa-aes", []string{"--hash-function", "sha256", "--mgf", "mgf1-sha256"}, []string{"--hash-function", "sha256", "--mgf", "mgf1-sha256"}},
				{"rsa-pkcs", nil, nil},
			} {
				wrapping, unwrapping := "attr.label=kek", "attr.label=kek"
				if c.mech[:3] == "rsa" {
					wrapping, unwrapping = "attr.label=rsa-pub", "attr.label=rsa-priv"
				}
				var wm wrapMechanism
				for _, w := range wrapMechanisms {
					if w.name == c.mech {
						wm = w
					}
				}
				offered := false
				for _, t := range wm.mechs {
					if mm, _, ok := s.Profile().Mechanisms.Lookup(t); ok && mm.Wrap != nil {
						offered = true
					}
				}
				args := append([]string{"key", "wrap", c.mech, "--payload-filter", "attr.label=payload", "--wrapping-filter", wrapping}, c.wrap...)
				if !offered {
					e.fails(cryptoAlicePIN, "CKR_MECHANISM_INVALID", args...)
					continue
				}
				var w wrapOutput
				require.NoError(t, json.Unmarshal(e.ok(cryptoAlicePIN, args...), &w), c.mech)
				require.NotEmpty(t, w.Data, c.mech)
				uargs := append([]string{"key", "unwrap", c.mech, "--filter", unwrapping, "--key-type-class", "aes",
					"--label", "unwrapped-" + c.mech, "--data", w.Data, "--attributes", "encrypt=true"}, c.extra...)
				if c.mech == "aes-gcm" {
					require.Regexp(t, "^0x[0-9a-f]{24}$", w.IV)
					uargs = append(uargs, "--iv", w.IV)
				}
				got := e.ok(cryptoAlicePIN, uargs...)
				require.Equal(t, wantCV, keyAttr(t, got, "check-value"), c.mech)
				require.Equal(t, "unwrapped-"+c.mech, keyAttr(t, got, "label"))
				require.Equal(t, true, keyAttr(t, got, "encrypt"))
			}
			// A private key: an EC key wrapped with rsa-aes unwraps into a
			// key that signs what the original public key verifies.
			e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) { ecPair(t, m, h, "ec") })
			var w wrapOutput
			require.NoError(t, json.Unmarshal(e.ok(cryptoAlicePIN, "key", "wrap", "rsa-aes", "--payload-filter", "attr.label=ec-priv",
				"--wrapping-filter", "attr.label=rsa-pub", "--hash-function", "sha256", "--mgf", "mgf1-sha256"), &w))
			e.ok(cryptoAlicePIN, "key", "unwrap", "rsa-aes", "--filter", "attr.label=rsa-priv", "--key-type-class", "ec-private",
				"--label", "ec-copy", "--data", w.Data, "--hash-function", "sha256", "--mgf", "mgf1-sha256", "--attributes", "sign=true")
			var sig struct{ Signature string }
			data := base64.StdEncoding.EncodeToString([]byte("signed by the unwrapped copy"))
			require.NoError(t, json.Unmarshal(e.ok(cryptoAlicePIN, "crypto", "sign", "ecdsa", "--key-filter", "attr.label=ec-copy",
				"--hash-function", "sha256", "--data", data), &sig))
			e.ok(cryptoAlicePIN, "crypto", "verify", "ecdsa", "--key-filter", "attr.label=ec-pub", "--hash-function", "sha256",
				"--data", data, "--signature", sig.Signature)

			// aes-gcm never reuses an IV: the HSM's in the cloudhsm
			// profile, the CLI's random one elsewhere.
			var a, b wrapOutput
			gcm := []string{"key", "wrap", "aes-gcm", "--payload-filter", "attr.label=payload", "--wrapping-filter", "attr.label=kek", "--tag-length-bits", "128"}
			require.NoError(t, json.Unmarshal(e.ok(cryptoAlicePIN, gcm...), &a))
			require.NoError(t, json.Unmarshal(e.ok(cryptoAlicePIN, gcm...), &b))
			require.NotEqual(t, a.IV, b.IV)
			require.NotEqual(t, "0x000000000000000000000000", a.IV)
		})
	}
}

// mustWrapRFC3394 is the payload key (32 × 0x42) wrapped under the KEK
// (32 × 0x11) with RFC 3394 and the default IV, computed here with the
// standard library so the probe key's check value is the payload's.
func mustWrapRFC3394(t *testing.T) []byte {
	t.Helper()
	return rfc3394Wrap(t, bytes.Repeat([]byte{0x11}, 32), bytes.Repeat([]byte{0x42}, 32))
}

// TestKeyWrapGolden: key wrap's output for a reproducible wrap
// (aes-no-pad with fixed keys), and --path writing the bytes that
// --data-path unwraps.
func TestKeyWrapGolden(t *testing.T) {
	e := newCryptoEnv(t, "cloudhsm")
	e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
		createAES(t, m, h, "kek", bytes.Repeat([]byte{0x11}, 32), nil)
		createAES(t, m, h, "payload", bytes.Repeat([]byte{0x42}, 32), nil)
	})
	code, out := e.run(cryptoAlicePIN, "key", "wrap", "aes-no-pad", "--payload-filter", "attr.label=payload", "--wrapping-filter", "attr.label=kek")
	require.Equal(t, 0, code, out)
	cryptoGolden(t, "key-wrap-aes-no-pad", out)

	path := filepath.Join(e.dir, "wrapped.bin")
	var w wrapOutput
	require.NoError(t, json.Unmarshal(e.ok(cryptoAlicePIN, "key", "wrap", "aes-no-pad", "--payload-filter", "attr.label=payload",
		"--wrapping-filter", "attr.label=kek", "--path", path), &w))
	require.Empty(t, w.Data)
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, rfc3394Wrap(t, bytes.Repeat([]byte{0x11}, 32), bytes.Repeat([]byte{0x42}, 32)), raw)
	code, out = e.run(cryptoAlicePIN, "key", "unwrap", "aes-no-pad", "--filter", "attr.label=kek", "--key-type-class", "aes",
		"--label", "back", "--data-path", path)
	require.Equal(t, 0, code, out)
	cryptoGolden(t, "key-unwrap-aes-no-pad", out)
}

// TestKeyWrapRefusals: the token's wrap rules reach the CLI user: a
// non-extractable payload, a shared (not owned) payload, a
// wrap-with-trusted payload under an untrusted key; and the CLI's own
// usage errors.
func TestKeyWrapRefusals(t *testing.T) {
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			e := newCryptoEnv(t, profile)
			e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
				createAES(t, m, h, "kek", bytes.Repeat([]byte{0x11}, 32), nil)
				createAES(t, m, h, "stuck", bytes.Repeat([]byte{0x22}, 32), attrs.Template{ck.CKA_EXTRACTABLE: []byte{0}})
				createAES(t, m, h, "guarded", bytes.Repeat([]byte{0x33}, 32), attrs.Template{ck.CKA_WRAP_WITH_TRUSTED: []byte{1}})
				shared := createAES(t, m, h, "shared", bytes.Repeat([]byte{0x44}, 32), nil)
				require.NoError(t, m.Share(h, shared, "bob", true))
			})
			var trustedKEK ck.ULong
			e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
				trustedKEK = createAES(t, m, h, "trusted-kek", bytes.Repeat([]byte{0x66}, 32), nil)
			})
			e.as(cryptoBobPIN, func(m *token.Module, h ck.ULong) {
				createAES(t, m, h, "bob-kek", bytes.Repeat([]byte{0x55}, 32), nil)
			})
			// An admin marks one wrapping key trusted (CloudHSM: only admins set trusted).
			func() {
				m := e.open()
				defer m.Close()
				h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
				require.NoError(t, err)
				require.NoError(t, m.Login(h, ck.CKU_SO, []byte(cryptoAdminPIN)))
				require.NoError(t, m.SetTrusted(h, trustedKEK, true))
			}()
			wrap := func(pin, payload, wrapping string) []string {
				return []string{"key", "wrap", "aes-no-pad", "--payload-filter", "attr.label=" + payload, "--wrapping-filter", "attr.label=" + wrapping}
			}
			e.fails(cryptoAlicePIN, "CKR_KEY_UNEXTRACTABLE", wrap(cryptoAlicePIN, "stuck", "kek")...)
			e.fails(cryptoAlicePIN, "CKR_KEY_NOT_WRAPPABLE", wrap(cryptoAlicePIN, "guarded", "kek")...)
			require.Contains(t, string(e.ok(cryptoAlicePIN, wrap(cryptoAlicePIN, "guarded", "trusted-kek")...)), "wrapped_key_data",
				"a wrap-with-trusted key wraps under a trusted key")
			// bob sees alice's shared key (he may use it) but may not export it.
			bobShared := e.ok(cryptoBobPIN, "key", "wrap", "aes-no-pad", "--payload-filter", "attr.label=bob-kek", "--wrapping-filter", "attr.label=shared")
			require.Contains(t, string(bobShared), "wrapped_key_data")
			msg := e.fails(cryptoBobPIN, "CKR_", wrap(cryptoBobPIN, "shared", "bob-kek")...)
			require.NotContains(t, msg, "matched", "the key is found: the token refuses the export")

			e.fails(cryptoAlicePIN, "the following required arguments were not provided: --wrapping-filter <WRAPPING_FILTER>",
				"key", "wrap", "aes-no-pad", "--payload-filter", "attr.label=kek")
			e.fails(cryptoAlicePIN, "--tag-length-bits <TAG_LENGTH_BITS>",
				"key", "wrap", "aes-gcm", "--payload-filter", "attr.label=shared", "--wrapping-filter", "attr.label=kek")
			e.fails(cryptoAlicePIN, "invalid value 'md5' for '--hash-function <HASH_FUNCTION>'",
				"key", "wrap", "rsa-oaep", "--payload-filter", "attr.label=shared", "--wrapping-filter", "attr.label=kek", "--hash-function", "md5", "--mgf", "mgf1-sha1")
			e.fails(cryptoAlicePIN, "[possible values: aes, des3, ec-private, generic-secret, rsa-private]",
				"key", "unwrap", "aes-no-pad", "--filter", "attr.label=kek", "--key-type-class", "rsa-public", "--label", "x", "--data", "AAAA")
			e.fails(cryptoAlicePIN, "cannot be used with",
				"key", "unwrap", "aes-no-pad", "--filter", "attr.label=kek", "--key-type-class", "aes", "--label", "x", "--data", "AAAA", "--data-path", "/nonexistent")
			e.fails(cryptoAlicePIN, "expected base64",
				"key", "unwrap", "aes-no-pad", "--filter", "attr.label=kek", "--key-type-class", "aes", "--label", "x", "--data", "!!")
			e.fails(cryptoAlicePIN, "CKR_",
				"key", "unwrap", "aes-no-pad", "--filter", "attr.label=kek", "--key-type-class", "aes", "--label", "x", "--data", base64.StdEncoding.EncodeToString(make([]byte, 40)))
			e.fails(cryptoAlicePIN, "attribute 'key-type' contradicts --key-type-class",
				"key", "unwrap", "aes-no-pad", "--filter", "attr.label=kek", "--key-type-class", "aes", "--label", "x", "--data", "AAAA", "--attributes", "key-type=rsa")
		})
	}
}

// TestCryptoSignVerify: signatures made by crypto sign verify with Go's
// crypto packages on the public key key generate-file exports, and with
// crypto verify; a changed message or signature is refused with
// CloudHSM's text; --data-type digest signs what raw data would.
func TestCryptoSignVerify(t *testing.T) {
	msg := []byte("the operator's side of CloudHSM")
	digest := sha256.Sum256(msg)
	b64 := base64.StdEncoding.EncodeToString
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			e := newCryptoEnv(t, profile)
			e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
				rsaPair(t, m, h, "rsa")
				ecPair(t, m, h, "ec")
			})
			pubOf := func(label string) any {
				path := filepath.Join(e.dir, label+".pem")
				e.ok(cryptoAlicePIN, "key", "generate-file", "--encoding", "pem", "--path", path, "--filter", "attr.label="+label)
				text, err := os.ReadFile(path)
				require.NoError(t, err)
				b, _ := pem.Decode(text)
				k, err := x509.ParsePKIXPublicKey(b.Bytes)
				require.NoError(t, err)
				return k
			}
			sign := func(args ...string) []byte {
				var out struct {
					Ref string `json:"key-reference"`
					Sig string `json:"signature"`
				}
				require.NoError(t, json.Unmarshal(e.ok(cryptoAlicePIN, append([]string{"crypto", "sign"}, args...)...), &out))
				require.Regexp(t, "^0x[0-9a-f]{16}$", out.Ref)
				sig, err := base64.StdEncoding.DecodeString(out.Sig)
				require.NoError(t, err)
				return sig
			}
			verifyOK := func(args ...string) {
				code, out := e.run(cryptoAlicePIN, append([]string{"crypto", "verify"}, args...)...)
				require.Equal(t, 0, code, out)
				cryptoGolden(t, "crypto-verify", out)
			}

			// ECDSA: r||s, verified by crypto/ecdsa.
			ecPub := pubOf("ec-pub").(*ecdsa.PublicKey)
			sig := sign("ecdsa", "--key-filter", "attr.label=ec-priv", "--hash-function", "sha256", "--data", b64(msg))
			require.Len(t, sig, 64)
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			require.True(t, ecdsa.Verify(ecPub, digest[:], r, s))
			verifyOK("ecdsa", "--key-filter", "attr.label=ec-pub", "--hash-function", "sha256", "--data", b64(msg), "--signature", b64(sig))
			sigPath := filepath.Join(e.dir, "sig")
			dataPath := filepath.Join(e.dir, "data")
			require.NoError(t, os.WriteFile(sigPath, sig, 0o600))
			require.NoError(t, os.WriteFile(dataPath, msg, 0o600))
			verifyOK("ecdsa", "--key-filter", "attr.label=ec-pub", "--hash-function", "sha256", "--data-path", dataPath, "--signature-path", sigPath)
			sig = sign("ecdsa", "--key-filter", "attr.label=ec-priv", "--hash-function", "sha256", "--data-type", "digest", "--data", b64(digest[:]))
			require.True(t, ecdsa.Verify(ecPub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])))
			code, out := e.run(cryptoAlicePIN, "crypto", "verify", "ecdsa", "--key-filter", "attr.label=ec-pub", "--hash-function", "sha256",
				"--data", b64([]byte("another message")), "--signature", b64(sig))
			require.Equal(t, 1, code)
			cryptoGolden(t, "crypto-verify-failed", out)

			// RSA PKCS #1 v1.5: deterministic, so raw and digest agree.
			rsaPub := pubOf("rsa-pub").(*rsa.PublicKey)
			sig = sign("rsa-pkcs", "--key-filter", "attr.label=rsa-priv", "--hash-function", "sha256", "--data", b64(msg))
			require.NoError(t, rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, digest[:], sig))
			require.Equal(t, sig, sign("rsa-pkcs", "--key-filter", "attr.label=rsa-priv", "--hash-function", "sha256", "--data-type", "digest", "--data", b64(digest[:])))
			verifyOK("rsa-pkcs", "--key-filter", "attr.label=rsa-pub", "--hash-function", "sha256", "--data", b64(msg), "--signature", b64(sig))
			sig[0] ^= 1
			e.fails(cryptoAlicePIN, "Signature verification failed", "crypto", "verify", "rsa-pkcs", "--key-filter", "attr.label=rsa-pub",
				"--hash-function", "sha256", "--data", b64(msg), "--signature", b64(sig))

			// RSA-PSS.
			sig = sign("rsa-pkcs-pss", "--key-filter", "attr.label=rsa-priv", "--hash-function", "sha256", "--mgf", "mgf1-sha256",
				"--salt-length", "32", "--data", b64(msg))
			require.NoError(t, rsa.VerifyPSS(rsaPub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: 32}))
			verifyOK("rsa-pkcs-pss", "--key-filter", "attr.label=rsa-pub", "--hash-function", "sha256", "--mgf", "mgf1-sha256",
				"--salt-length", "32", "--data", b64(msg), "--signature", b64(sig))

			// Refusals.
			e.fails(cryptoAlicePIN, "the mask generation function mgf1-sha1 does not match the hash function sha256", "crypto", "sign", "rsa-pkcs-pss",
				"--key-filter", "attr.label=rsa-priv", "--hash-function", "sha256", "--mgf", "mgf1-sha1", "--salt-length", "32", "--data", b64(msg))
			e.fails(cryptoAlicePIN, "a sha256 digest is 32 bytes, the data is 31", "crypto", "sign", "ecdsa", "--key-filter", "attr.label=ec-priv",
				"--hash-function", "sha256", "--data-type", "digest", "--data", b64(digest[:31]))
			e.fails(cryptoAlicePIN, "the following required arguments were not provided: --hash-function <HASH_FUNCTION>",
				"crypto", "sign", "ecdsa", "--key-filter", "attr.label=ec-priv", "--data", b64(msg))
			e.fails(cryptoAlicePIN, "<--data-path <DATA_PATH>|--data <DATA>>",
				"crypto", "sign", "ecdsa", "--key-filter", "attr.label=ec-priv", "--hash-function", "sha256")
			e.fails(cryptoAlicePIN, "CKR_KEY_TYPE_INCONSISTENT", "crypto", "sign", "ecdsa", "--key-filter", "attr.label=rsa-priv",
				"--hash-function", "sha256", "--data", b64(msg))
			e.fails(cryptoBobPIN, ErrNoKeyMatched.Error(), "crypto", "sign", "ecdsa", "--key-filter", "attr.label=ec-priv",
				"--hash-function", "sha256", "--data", b64(msg))
			e.fails("", ErrNotLoggedIn.Error(), "crypto", "sign", "ecdsa", "--key-filter", "attr.label=ec-priv",
				"--hash-function", "sha256", "--data", b64(msg))
		})
	}
}

// TestCryptoSignOpenSSL: openssl verifies crypto sign's signatures (ECDSA
// re-encoded from r||s to DER, RSA-PSS as is) on the PEM that key
// generate-file writes.
func TestCryptoSignOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		testenv.Missing(t, "openssl not installed")
	}
	e := newCryptoEnv(t, "cloudhsm")
	e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
		rsaPair(t, m, h, "rsa")
		ecPair(t, m, h, "ec")
	})
	msg := []byte("verified by openssl")
	data := filepath.Join(e.dir, "data")
	require.NoError(t, os.WriteFile(data, msg, 0o600))
	for _, c := range []struct {
		label string
		sign  []string
		pkey  []string
	}{
		{"ec", []string{"ecdsa", "--hash-function", "sha384"}, nil},
		{"rsa", []string{"rsa-pkcs-pss", "--hash-function", "sha384", "--mgf", "mgf1-sha384", "--salt-length", "48"},
			[]string{"-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:48"}},
	} {
		pub := filepath.Join(e.dir, c.label+".pem")
		e.ok(cryptoAlicePIN, "key", "generate-file", "--encoding", "pem", "--path", pub, "--filter", "attr.label="+c.label+"-pub")
		var out struct{ Signature string }
		require.NoError(t, json.Unmarshal(e.ok(cryptoAlicePIN, append(append([]string{"crypto", "sign"}, c.sign...),
			"--key-filter", "attr.label="+c.label+"-priv", "--data-path", data)...), &out))
		sig, err := base64.StdEncoding.DecodeString(out.Signature)
		require.NoError(t, err)
		if c.label == "ec" {
			half := len(sig) / 2
			sig, err = asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:half]), new(big.Int).SetBytes(sig[half:])})
			require.NoError(t, err)
		}
		sigPath := filepath.Join(e.dir, c.label+".sig")
		require.NoError(t, os.WriteFile(sigPath, sig, 0o600))
		args := append([]string{"dgst", "-sha384", "-verify", pub, "-signature", sigPath}, c.pkey...)
		res, err := exec.Command(openssl, append(args, data)...).CombinedOutput()
		require.NoError(t, err, "%s", res)
		require.Contains(t, string(res), "Verified OK")
		// And a changed message is not.
		other := filepath.Join(e.dir, "other")
		require.NoError(t, os.WriteFile(other, []byte("something else"), 0o600))
		res, err = exec.Command(openssl, append(args, other)...).CombinedOutput()
		require.Error(t, err, "%s", res)
	}
}

// TestCryptoSignEd25519: where the profile has Ed25519 (standard) crypto
// sign ed25519 signs and crypto/ed25519 verifies on the exported PEM;
// the cloudhsm profile (SDK 5's PKCS#11 list has no EdDSA) refuses the
// mechanism.
func TestCryptoSignEd25519(t *testing.T) {
	msg := []byte("edwards")
	b64 := base64.StdEncoding.EncodeToString
	ed, _ := CurveParams("ed25519")
	e := newCryptoEnv(t, "standard")
	e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
		genPair(t, m, h, ck.CKM_EC_EDWARDS_KEY_PAIR_GEN, "ed",
			attrs.Template{ck.CKA_EC_PARAMS: ed, ck.CKA_VERIFY: []byte{1}}, attrs.Template{ck.CKA_SIGN: []byte{1}})
	})
	var out struct{ Signature string }
	require.NoError(t, json.Unmarshal(e.ok(cryptoAlicePIN, "crypto", "sign", "ed25519", "--key-filter", "attr.label=ed-priv", "--data", b64(msg)), &out))
	sig, err := base64.StdEncoding.DecodeString(out.Signature)
	require.NoError(t, err)
	path := filepath.Join(e.dir, "ed.pem")
	e.ok(cryptoAlicePIN, "key", "generate-file", "--encoding", "pem", "--path", path, "--filter", "attr.label=ed-pub")
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	b, _ := pem.Decode(text)
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	require.NoError(t, err)
	require.True(t, ed25519.Verify(pub.(ed25519.PublicKey), msg, sig))
	e.ok(cryptoAlicePIN, "crypto", "verify", "ed25519", "--key-filter", "attr.label=ed-pub", "--data", b64(msg), "--signature", b64(sig))
	e.fails(cryptoAlicePIN, "Signature verification failed", "crypto", "verify", "ed25519", "--key-filter", "attr.label=ed-pub",
		"--data", b64([]byte("other")), "--signature", b64(sig))
	listed := e.cuContext(cryptoAlicePIN)
	k, err := listed.FindKeyByTerms("filter", []string{"attr.label=ed-pub"})
	require.NoError(t, err)
	o, err := listed.KeyAttributes(k)
	require.NoError(t, err)
	kt, _ := o.Get("key-type")
	cv, _ := o.Get("curve")
	require.Equal(t, "ec-edwards", kt)
	require.Equal(t, "ed25519", cv)

	c := newCryptoEnv(t, "cloudhsm")
	c.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) { ecPair(t, m, h, "ec") })
	c.fails(cryptoAlicePIN, "CKR_MECHANISM_INVALID", "crypto", "sign", "ed25519", "--key-filter", "attr.label=ec-priv", "--data", b64(msg))
}

// TestKeyUnwrapShare: --share-crypto-users shares the unwrapped key (bob
// can then use it); a share the token refuses removes the new key again.
func TestKeyUnwrapShare(t *testing.T) {
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			e := newCryptoEnv(t, profile)
			e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
				createAES(t, m, h, "kek", bytes.Repeat([]byte{0x11}, 32), nil)
			})
			data := base64.StdEncoding.EncodeToString(mustWrapRFC3394(t))
			unwrap := func(label string, users ...string) []string {
				return append([]string{"key", "unwrap", "aes-no-pad", "--filter", "attr.label=kek", "--key-type-class", "aes",
					"--label", label, "--data", data, "--attributes", "encrypt=true", "--share-crypto-users"}, users...)
			}
			got := e.ok(cryptoAlicePIN, unwrap("for-bob", "bob")...)
			require.Contains(t, string(got), `"username": "bob"`)
			bob := e.cuContext(cryptoBobPIN)
			_, err := bob.FindKeyByTerms("filter", []string{"attr.label=for-bob"})
			require.NoError(t, err, "bob sees the key shared with him")

			e.fails(cryptoAlicePIN, "sharing with carol", unwrap("for-carol", "bob", "carol")...)
			alice := e.cuContext(cryptoAlicePIN)
			_, err = alice.FindKeyByTerms("filter", []string{"attr.label=for-carol"})
			require.ErrorIs(t, err, ErrNoKeyMatched, "the refused command left no key behind")
		})
	}
}

// TestKeyCryptoBadInput: hostile flag values are refused with a message,
// never a crash, and change nothing.
func TestKeyCryptoBadInput(t *testing.T) {
	e := newCryptoEnv(t, "cloudhsm")
	e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
		createAES(t, m, h, "kek", bytes.Repeat([]byte{0x11}, 32), nil)
		createAES(t, m, h, "payload", bytes.Repeat([]byte{0x42}, 32), nil)
		rsaPair(t, m, h, "rsa")
	})
	big := base64.StdEncoding.EncodeToString(make([]byte, 1<<20))
	for _, args := range [][]string{
		{"key", "wrap", "aes-gcm", "--payload-filter", "attr.label=payload", "--wrapping-filter", "attr.label=kek", "--tag-length-bits", "-8"},
		{"key", "wrap", "aes-gcm", "--payload-filter", "attr.label=payload", "--wrapping-filter", "attr.label=kek", "--tag-length-bits", "4096"},
		{"key", "wrap", "aes-gcm", "--payload-filter", "attr.label=payload", "--wrapping-filter", "attr.label=kek", "--tag-length-bits", "128", "--aad", "zz"},
		{"key", "wrap", "aes-no-pad", "--payload-filter", "attr.label=payload", "--wrapping-filter", "attr.label=kek", "--path", "/nonexistent/dir/x"},
		{"key", "wrap", "aes-no-pad", "--payload-filter", "key-reference=0xffffffffffffffff", "--wrapping-filter", "attr.label=kek"},
		{"key", "unwrap", "aes-gcm", "--filter", "attr.label=kek", "--key-type-class", "aes", "--label", "x", "--tag-length-bits", "128", "--iv", "0x00", "--data", "AAAA"},
		{"key", "unwrap", "aes-no-pad", "--filter", "attr.label=kek", "--key-type-class", "aes", "--label", "x", "--data", big},
		{"key", "unwrap", "aes-no-pad", "--filter", "attr.label=kek", "--key-type-class", "aes", "--label", "x", "--data", ""},
		{"crypto", "sign", "rsa-pkcs-pss", "--key-filter", "attr.label=rsa-priv", "--hash-function", "sha256", "--mgf", "mgf1-sha256", "--salt-length", "-1", "--data", "AAAA"},
		{"crypto", "sign", "rsa-pkcs-pss", "--key-filter", "attr.label=rsa-priv", "--hash-function", "sha256", "--mgf", "mgf1-sha256", "--salt-length", "100000", "--data", "AAAA"},
		{"crypto", "sign", "rsa-pkcs", "--key-filter", "attr.label=rsa-priv", "--hash-function", "sha256", "--data-type", "hex", "--data", "AAAA"},
		{"crypto", "verify", "rsa-pkcs", "--key-filter", "attr.label=rsa-pub", "--hash-function", "sha256", "--data", "AAAA", "--signature", big},
		{"crypto", "verify", "rsa-pkcs", "--key-filter", "attr.label=rsa-pub", "--hash-function", "sha256", "--data", "AAAA", "--signature-path", "/nonexistent"},
	} {
		code, out := e.run(cryptoAlicePIN, args...)
		require.Equal(t, 1, code, "%v: %s", args, out)
		require.Contains(t, out, `"error_code": 1`)
	}
	// Nothing was made: alice still has exactly her four keys.
	keys, err := e.cuContext(cryptoAlicePIN).FindKeys(Filter{Tmpl: attrs.Template{}})
	require.NoError(t, err)
	require.Len(t, keys, 4)
}

// TestKeyCryptoCommandsAreCryptoUsers: the key and crypto commands of
// this file are crypto-user commands (CloudHSM's "User type: Crypto users
// (CUs)"): an admin is refused before the token is touched.
func TestKeyCryptoCommandsAreCryptoUsers(t *testing.T) {
	e := newCryptoEnv(t, "cloudhsm")
	t.Setenv("CLOUDHSM_ROLE", "admin")
	t.Setenv("CLOUDHSM_PIN", cryptoAdminPIN)
	for _, args := range [][]string{
		{"key", "import", "pem", "--path", filepath.Join("testdata", "rsa2048-public.pem"), "--label", "x", "--key-type-class", "rsa-public"},
		{"key", "generate-file", "--encoding", "pem", "--path", filepath.Join(e.dir, "x"), "--filter", "attr.label=x"},
		{"key", "wrap", "aes-no-pad", "--payload-filter", "attr.label=x", "--wrapping-filter", "attr.label=y"},
		{"key", "unwrap", "aes-no-pad", "--filter", "attr.label=x", "--key-type-class", "aes", "--label", "x", "--data", "AAAA"},
		{"crypto", "sign", "ecdsa", "--key-filter", "attr.label=x", "--hash-function", "sha256", "--data", "AAAA"},
		{"crypto", "verify", "ed25519", "--key-filter", "attr.label=x", "--data", "AAAA", "--signature", "AAAA"},
	} {
		var out, errb bytes.Buffer
		code := Run(args, bytes.NewReader(nil), &out, &errb, Options{Config: e.conf})
		require.Equal(t, 1, code, "%v: %s", args, out.String())
		require.Contains(t, out.String(), ErrWrongRole.Error(), args)
	}
}

// TestCryptoSignGolden: crypto sign rsa-pkcs (deterministic) with a fixed
// test key gives the golden output, and the signature is the one Go's
// crypto/rsa makes with the same key.
func TestCryptoSignGolden(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("testdata", "rsa2048-private.pem"))
	require.NoError(t, err)
	b, _ := pem.Decode(text)
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	require.NoError(t, err)
	priv := k.(*rsa.PrivateKey)
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			e := newCryptoEnv(t, profile)
			e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
				_, err := m.CreateObject(h, attrs.Template{
					ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_RSA)),
					ck.CKA_TOKEN: []byte{1}, ck.CKA_LABEL: []byte("fixed"), ck.CKA_SIGN: []byte{1},
					ck.CKA_MODULUS: priv.N.Bytes(), ck.CKA_PUBLIC_EXPONENT: big.NewInt(int64(priv.E)).Bytes(),
					ck.CKA_PRIVATE_EXPONENT: priv.D.Bytes(), ck.CKA_PRIME_1: priv.Primes[0].Bytes(), ck.CKA_PRIME_2: priv.Primes[1].Bytes(),
					ck.CKA_EXPONENT_1: priv.Precomputed.Dp.Bytes(), ck.CKA_EXPONENT_2: priv.Precomputed.Dq.Bytes(),
					ck.CKA_COEFFICIENT: priv.Precomputed.Qinv.Bytes(),
				})
				require.NoError(t, err)
			})
			msg := []byte("golden")
			code, out := e.run(cryptoAlicePIN, "crypto", "sign", "rsa-pkcs", "--key-filter", "attr.label=fixed",
				"--hash-function", "sha256", "--data", base64.StdEncoding.EncodeToString(msg))
			require.Equal(t, 0, code, out)
			cryptoGolden(t, "crypto-sign-rsa-pkcs", out)
			digest := sha256.Sum256(msg)
			want, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, digest[:])
			require.NoError(t, err)
			require.Contains(t, out, base64.StdEncoding.EncodeToString(want))
		})
	}
}
