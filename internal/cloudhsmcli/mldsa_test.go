package cloudhsmcli

import (
	"crypto/mldsa"
	"crypto/sha3"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token"
	"gohsm/token/attrs"
)

// mldsaGen generates an ML-DSA pair through the CLI and returns the
// command's output.
func mldsaGen(e *cryptoEnv, alg, label string) string {
	e.t.Helper()
	code, out := e.run(cryptoAlicePIN, "key", "generate-asymmetric-pair", "ml-dsa", "--mldsa-algorithm", alg,
		"--public-label", label+"-pub", "--private-label", label, "--public-attributes", "verify=true",
		"--private-attributes", "sign=true")
	require.Equal(e.t, 0, code, out)
	return out
}

// TestMLDSAGenerateSignVerify: on the cloudhsm profile (hsm2m, the
// default) and the standard one, key generate-asymmetric-pair ml-dsa
// prints the pair as the golden file says (key-type ml-dsa,
// mldsa-algorithm); crypto sign ml-dsa signs, the signature verifies with
// crypto/mldsa against the public key key generate-file exports (SPKI
// PEM), and crypto verify ml-dsa accepts it and refuses a changed message.
func TestMLDSAGenerateSignVerify(t *testing.T) {
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			e := newCryptoEnv(t, profile)
			out := mldsaGen(e, "ML-DSA-65", "pq")
			cryptoGolden(t, "key-generate-asymmetric-pair-ml-dsa-"+profile, out)

			msg := []byte("post-quantum golden")
			data := base64.StdEncoding.EncodeToString(msg)
			signed := e.ok(cryptoAlicePIN, "crypto", "sign", "ml-dsa", "--key-filter", "attr.label=pq", "--data", data)
			var sig struct {
				Ref string `json:"key-reference"`
				Sig string `json:"signature"`
			}
			require.NoError(t, json.Unmarshal(signed, &sig))
			raw, err := base64.StdEncoding.DecodeString(sig.Sig)
			require.NoError(t, err)
			require.Len(t, raw, mldsa.MLDSA65().SignatureSize())

			path := filepath.Join(e.dir, "pq.pem")
			e.ok(cryptoAlicePIN, "key", "generate-file", "--encoding", "pem", "--path", path, "--filter", "attr.label=pq-pub")
			text, err := os.ReadFile(path)
			require.NoError(t, err)
			b, _ := pem.Decode(text)
			require.NotNil(t, b)
			require.Equal(t, "PUBLIC KEY", b.Type)
			k, err := x509.ParsePKIXPublicKey(b.Bytes)
			require.NoError(t, err)
			pk, ok := k.(*mldsa.PublicKey)
			require.True(t, ok, "%T", k)
			require.Equal(t, mldsa.MLDSA65(), pk.Parameters())
			require.NoError(t, mldsa.Verify(pk, msg, raw, nil), "pure ML-DSA, empty context")
			require.Error(t, mldsa.Verify(pk, msg, raw, &mldsa.Options{Context: "x"}))

			code, out := e.run(cryptoAlicePIN, "crypto", "verify", "ml-dsa", "--key-filter", "attr.label=pq-pub",
				"--data", data, "--signature", sig.Sig)
			require.Equal(t, 0, code, out)
			cryptoGolden(t, "crypto-verify", out)
			e.fails(cryptoAlicePIN, ErrSignatureInvalid.Error(), "crypto", "verify", "ml-dsa", "--key-filter", "attr.label=pq-pub",
				"--data", base64.StdEncoding.EncodeToString([]byte("other")), "--signature", sig.Sig)

			// The private key exports no file.
			e.fails(cryptoAlicePIN, "public key of an ML-DSA pair", "key", "generate-file", "--encoding", "pem",
				"--path", path, "--filter", "attr.label=pq")
			e.fails(cryptoAlicePIN, "--mldsa-algorithm", "key", "generate-asymmetric-pair", "ml-dsa", "--mldsa-algorithm", "ML-DSA-99",
				"--public-label", "a", "--private-label", "b")

			// key list shows the pair's set.
			list := e.ok(cryptoAlicePIN, "key", "list", "--filter", "attr.mldsa-algorithm=ML-DSA-65", "--verbose")
			var listed struct {
				Total int `json:"total_key_count"`
			}
			require.NoError(t, json.Unmarshal(list, &listed))
			require.Equal(t, 2, listed.Total)
		})
	}
}

// pureMu is μ for pure ML-DSA with the empty context over msg, computed
// here from FIPS 204 (Algorithm 2 line 10, Algorithm 7 lines 6-7):
// SHAKE256(SHAKE256(pk, 64) || 0 || 0 || msg, 64).
func pureMu(pk, msg []byte) []byte {
	tr := sha3.SumSHAKE256(pk, 64)
	h := sha3.NewSHAKE256()
	h.Write(tr)
	h.Write([]byte{0, 0})
	h.Write(msg)
	mu := make([]byte, 64)
	h.Read(mu)
	return mu
}

// TestMLDSAExternalMu: crypto sign ml-dsa --data-type external-mu signs
// the 64-byte μ it is given, so a μ computed from a message signs what
// crypto/mldsa verifies as a pure ML-DSA signature of that message; crypto
// verify ml-dsa --data-type external-mu accepts the signature of the raw
// message for that μ and refuses a μ with one bit changed; a μ that is not
// 64 bytes is a usage error. Both profiles (the cloudhsm one on hsm2m);
// neither offers it through PKCS#11.
func TestMLDSAExternalMu(t *testing.T) {
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			e := newCryptoEnv(t, profile)
			mldsaGen(e, "ML-DSA-65", "mu")
			var pk *mldsa.PublicKey
			e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
				res, err := m.GetAttributeValue(h, findByLabel(t, m, h, "mu-pub"), []ck.AttributeType{ck.CKA_VALUE})
				require.NoError(t, err)
				pk, err = mldsa.NewPublicKey(mldsa.MLDSA65(), res[0].Value)
				require.NoError(t, err)
				// Not through PKCS#11, on either profile.
				muMech := token.Mechanism{Type: mechanisms.MLDSAExternalMu}
				require.ErrorIs(t, m.SignInit(h, muMech, findByLabel(t, m, h, "mu")), ck.CKR_MECHANISM_INVALID)
				_, _, _, err = m.MechanismInfo(0, mechanisms.MLDSAExternalMu)
				require.ErrorIs(t, err, ck.CKR_MECHANISM_INVALID)
			})
			msg := []byte("signed by its mu")
			mu := pureMu(pk.Bytes(), msg)
			b64 := base64.StdEncoding.EncodeToString
			sigOf := func(out []byte) []byte {
				var sig struct {
					Sig string `json:"signature"`
				}
				require.NoError(t, json.Unmarshal(out, &sig))
				raw, err := base64.StdEncoding.DecodeString(sig.Sig)
				require.NoError(t, err)
				return raw
			}

			byMu := sigOf(e.ok(cryptoAlicePIN, "crypto", "sign", "ml-dsa", "--key-filter", "attr.label=mu",
				"--data-type", "external-mu", "--data", b64(mu)))
			require.NoError(t, mldsa.Verify(pk, msg, byMu, nil), "the signature of mu is the message's")
			require.Error(t, mldsa.Verify(pk, []byte("another message"), byMu, nil))

			byMsg := sigOf(e.ok(cryptoAlicePIN, "crypto", "sign", "ml-dsa", "--key-filter", "attr.label=mu", "--data", b64(msg)))
			for _, sig := range [][]byte{byMu, byMsg} {
				code, out := e.run(cryptoAlicePIN, "crypto", "verify", "ml-dsa", "--key-filter", "attr.label=mu-pub",
					"--data-type", "external-mu", "--data", b64(mu), "--signature", b64(sig))
				require.Equal(t, 0, code, out)
			}
			bad := append([]byte{}, mu...)
			bad[17] ^= 0x04
			e.fails(cryptoAlicePIN, ErrSignatureInvalid.Error(), "crypto", "verify", "ml-dsa", "--key-filter", "attr.label=mu-pub",
				"--data-type", "external-mu", "--data", b64(bad), "--signature", b64(byMsg))
			for _, n := range []int{0, 32, 63, 65} {
				e.fails(cryptoAlicePIN, "external mu data must be 64 bytes", "crypto", "sign", "ml-dsa", "--key-filter", "attr.label=mu",
					"--data-type", "external-mu", "--data", b64(make([]byte, n)))
			}
			e.fails(cryptoAlicePIN, "external mu data must be 64 bytes", "crypto", "verify", "ml-dsa", "--key-filter", "attr.label=mu-pub",
				"--data-type", "external-mu", "--data", b64(msg), "--signature", b64(byMsg))
		})
	}
}

// TestMLDSAAllSets: every parameter set signs what crypto/mldsa verifies.
func TestMLDSAAllSets(t *testing.T) {
	e := newCryptoEnv(t, "cloudhsm")
	for alg, params := range map[string]mldsa.Parameters{"ML-DSA-44": mldsa.MLDSA44(), "ML-DSA-87": mldsa.MLDSA87()} {
		mldsaGen(e, alg, alg)
		msg := []byte(alg)
		signed := e.ok(cryptoAlicePIN, "crypto", "sign", "ml-dsa", "--key-filter", "attr.label="+alg, "--data", base64.StdEncoding.EncodeToString(msg))
		var sig struct {
			Sig string `json:"signature"`
		}
		require.NoError(t, json.Unmarshal(signed, &sig))
		raw, err := base64.StdEncoding.DecodeString(sig.Sig)
		require.NoError(t, err)
		e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
			objs := findByLabel(t, m, h, alg+"-pub")
			res, err := m.GetAttributeValue(h, objs, []ck.AttributeType{ck.CKA_VALUE})
			require.NoError(t, err)
			pk, err := mldsa.NewPublicKey(params, res[0].Value)
			require.NoError(t, err)
			require.NoError(t, mldsa.Verify(pk, msg, raw, nil), alg)
		})
	}
}

// TestMLDSARefusedOnHSM1: an hsm1.medium token refuses the three ML-DSA
// commands with the CLI's error envelope.
func TestMLDSARefusedOnHSM1(t *testing.T) {
	e := newCryptoEnv(t, "cloudhsm\nhsm_type = hsm1")
	data := e.fails(cryptoAlicePIN, "ML-DSA is available on hsm2m.medium clusters only", "key", "generate-asymmetric-pair", "ml-dsa",
		"--mldsa-algorithm", "ML-DSA-65", "--public-label", "p", "--private-label", "q")
	require.Equal(t, "CKM_ML_DSA_KEY_PAIR_GEN: ML-DSA is available on hsm2m.medium clusters only, this HSM is hsm1.medium (CKR_MECHANISM_INVALID)", data)
	code, out := e.run(cryptoAlicePIN, "key", "generate-asymmetric-pair", "ec", "--curve", "secp256r1",
		"--public-label", "ec-pub", "--private-label", "ec", "--private-attributes", "sign=true")
	require.Equal(t, 0, code, out)
	e.fails(cryptoAlicePIN, "ML-DSA is available on hsm2m.medium clusters only", "crypto", "sign", "ml-dsa",
		"--key-filter", "attr.label=ec", "--data", "AAAA")
	e.fails(cryptoAlicePIN, "ML-DSA is available on hsm2m.medium clusters only", "crypto", "verify", "ml-dsa",
		"--key-filter", "attr.label=ec-pub", "--data", "AAAA", "--signature", "AAAA")
	mu := base64.StdEncoding.EncodeToString(make([]byte, 64))
	e.fails(cryptoAlicePIN, "ML-DSA is available on hsm2m.medium clusters only", "crypto", "sign", "ml-dsa",
		"--key-filter", "attr.label=ec", "--data-type", "external-mu", "--data", mu)
}

// TestMLDSANotForPKCS11: after the CLI made an ML-DSA pair on the
// cloudhsm profile, a PKCS#11 application still sees no ML-DSA: the
// mechanism list lacks it, C_GetMechanismInfo, C_GenerateKeyPair and
// C_SignInit / C_VerifyInit on the CLI's keys are CKR_MECHANISM_INVALID.
func TestMLDSANotForPKCS11(t *testing.T) {
	e := newCryptoEnv(t, "cloudhsm")
	mldsaGen(e, "ML-DSA-44", "cli")
	e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
		list, err := m.Mechanisms(0)
		require.NoError(t, err)
		require.NotContains(t, list, ck.CKM_ML_DSA)
		require.NotContains(t, list, ck.CKM_ML_DSA_KEY_PAIR_GEN)
		_, _, _, err = m.MechanismInfo(0, ck.CKM_ML_DSA)
		require.ErrorIs(t, err, ck.CKR_MECHANISM_INVALID)
		_, _, err = m.GenerateKeyPair(h, token.Mechanism{Type: ck.CKM_ML_DSA_KEY_PAIR_GEN},
			attrs.Template{ck.CKA_PARAMETER_SET: attrs.ULong(ck.CKP_ML_DSA_44)}, attrs.Template{})
		require.ErrorIs(t, err, ck.CKR_MECHANISM_INVALID)
		priv := findByLabel(t, m, h, "cli")
		pub := findByLabel(t, m, h, "cli-pub")
		require.ErrorIs(t, m.SignInit(h, token.Mechanism{Type: ck.CKM_ML_DSA}, priv), ck.CKR_MECHANISM_INVALID)
		require.ErrorIs(t, m.VerifyInit(h, token.Mechanism{Type: ck.CKM_ML_DSA}, pub), ck.CKR_MECHANISM_INVALID)
		// The CLI's entry point reaches it, in the same session.
		require.NoError(t, m.CLISignInit(h, token.Mechanism{Type: ck.CKM_ML_DSA}, priv))
		m.Abort(h, token.OpSign)
		// External mu: the CLI only, whatever the profile.
		mu := token.Mechanism{Type: mechanisms.MLDSAExternalMu}
		require.ErrorIs(t, m.SignInit(h, mu, priv), ck.CKR_MECHANISM_INVALID)
		require.ErrorIs(t, m.VerifyInit(h, mu, pub), ck.CKR_MECHANISM_INVALID)
		require.NotContains(t, list, mechanisms.MLDSAExternalMu)
		require.NoError(t, m.CLISignInit(h, mu, priv))
		m.Abort(h, token.OpSign)
	})
}

func findByLabel(t *testing.T, m *token.Module, h ck.ULong, label string) ck.ULong {
	t.Helper()
	require.NoError(t, m.FindObjectsInit(h, attrs.Template{ck.CKA_LABEL: []byte(label)}))
	objs, err := m.FindObjects(h, 2)
	require.NoError(t, err)
	require.NoError(t, m.FindObjectsFinal(h))
	require.Len(t, objs, 1, label)
	return objs[0]
}

// TestMLDSAUsageDefaults: key generate-asymmetric-pair ml-dsa without
// --public-attributes / --private-attributes follows each profile's
// usage-flag defaults, as the ec and rsa pairs do (docs/cloudhsm.md
// behaviour 12): on cloudhsm every usage flag defaults to false
// (cloudhsm-facts §2.7, the CLI's key attribute table; the ML-DSA page
// gives no other default), so the pair can neither sign nor verify and
// crypto sign ml-dsa is refused; on standard the private key signs and
// the public key verifies.
func TestMLDSAUsageDefaults(t *testing.T) {
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			e := newCryptoEnv(t, profile)
			out := e.ok(cryptoAlicePIN, "key", "generate-asymmetric-pair", "ml-dsa", "--mldsa-algorithm", "ML-DSA-44",
				"--public-label", "bare-pub", "--private-label", "bare")
			var pair struct {
				Pub struct {
					Attrs map[string]any `json:"attributes"`
				} `json:"public_key"`
				Priv struct {
					Attrs map[string]any `json:"attributes"`
				} `json:"private_key"`
			}
			require.NoError(t, json.Unmarshal(out, &pair), string(out))
			usable := profile == "standard"
			require.Equal(t, usable, pair.Priv.Attrs["sign"], string(out))
			require.Equal(t, usable, pair.Pub.Attrs["verify"], string(out))
			args := []string{"crypto", "sign", "ml-dsa", "--key-filter", "attr.label=bare",
				"--data", base64.StdEncoding.EncodeToString([]byte("m"))}
			if usable {
				e.ok(cryptoAlicePIN, args...)
			} else {
				e.fails(cryptoAlicePIN, "CKA_SIGN false (CKR_KEY_FUNCTION_NOT_PERMITTED)", args...)
			}
		})
	}
}
