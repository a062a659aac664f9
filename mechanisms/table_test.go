package mechanisms

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
)

func TestTableInvariants(t *testing.T) {
	all := All()
	require.Len(t, all, len(rows()), "duplicate mechanism types in table")
	require.True(t, slices.IsSortedFunc(all, func(a, b *Mechanism) int { return int(a.Type) - int(b.Type) }), "All is not sorted")

	generated := map[ck.KeyType]bool{}
	for _, m := range all {
		if m.GenerateKey != nil || m.GenerateKeyPair != nil {
			for _, kt := range m.KeyTypes {
				generated[kt] = true
			}
		}
	}

	for _, m := range all {
		t.Run(m.Type.String(), func(t *testing.T) {
			got, ok := Lookup(m.Type)
			require.True(t, ok)
			require.Same(t, m, got)

			ops := m.Encrypt != nil || m.Decrypt != nil || m.Sign != nil || m.Verify != nil
			keygen := m.GenerateKey != nil || m.GenerateKeyPair != nil
			keyOps := m.Derive != nil || m.Wrap != nil || m.Unwrap != nil || m.SignRecover != nil ||
				m.VerifyRecover != nil || m.MessageEncrypt != nil || m.MessageDecrypt != nil ||
				m.Encapsulate != nil || m.Decapsulate != nil
			require.True(t, ops || keygen || keyOps || m.Digest != nil, "row has no constructor")
			assert.Equal(t, m.Encrypt != nil, m.Decrypt != nil, "encrypt without decrypt or back")
			assert.Equal(t, m.Sign != nil, m.Verify != nil, "sign without verify or back")
			assert.Equal(t, m.Wrap != nil, m.Unwrap != nil, "wrap without unwrap or back")
			assert.Equal(t, m.SignRecover != nil, m.VerifyRecover != nil, "sign-recover without verify-recover or back")
			assert.Equal(t, m.MessageEncrypt != nil, m.MessageDecrypt != nil, "message encrypt without decrypt or back")
			assert.Equal(t, m.Encapsulate != nil, m.Decapsulate != nil, "encapsulate without decapsulate or back")
			assert.Equal(t, m.Encapsulate != nil, m.CiphertextSize != nil, "encapsulate without a ciphertext size")
			assert.False(t, keygen && keyOps, "key generation rows do nothing else")
			assert.False(t, m.Digest != nil && keyOps, "digest rows do nothing else")
			assert.False(t, m.GenerateKey != nil && m.GenerateKeyPair != nil)
			assert.False(t, m.Digest != nil && (ops || keygen), "digest rows do nothing else")
			assert.False(t, keygen && ops, "key generation rows do nothing else")

			// Single-part is about C_*Update, which only the four
			// operations have (and digests, which are never single-part here).
			if m.SinglePart {
				assert.True(t, ops, "SinglePart on a row without encrypt/decrypt/sign/verify")
			}
			if m.DeriveHidesBase {
				assert.NotNil(t, m.Derive, "DeriveHidesBase on a row that does not derive")
			}
			if (keygen && m.Type != ck.CKM_PKCS5_PBKD2) || m.Digest != nil {
				assert.Equal(t, ParamNone, m.Param, "key generation (but PBKDF2's) and digests take no parameter")
			}

			// Key types and sizes, in the spec's units.
			if m.Digest != nil {
				assert.Empty(t, m.KeyTypes)
				assert.Zero(t, m.MinKeySize)
				assert.Zero(t, m.MaxKeySize)
			} else {
				require.NotEmpty(t, m.KeyTypes)
				assert.Positive(t, m.MinKeySize)
				assert.LessOrEqual(t, m.MinKeySize, m.MaxKeySize)
				for _, kt := range m.KeyTypes {
					class, known := keyClasses[kt]
					require.True(t, known, "key type %v has no Go representation", kt)
					switch class {
					case classRSA, classEC: // bits
						assert.GreaterOrEqual(t, m.MinKeySize, uint(160), "RSA/EC sizes are bits")
					case classSecret: // bytes
						assert.LessOrEqual(t, m.MaxKeySize, uint(1024), "secret key sizes are bytes")
					}
					assert.True(t, generated[kt], "no row generates %v keys", kt)
				}
				if m.GenerateKey != nil {
					assert.Equal(t, classSecret, keyClasses[m.KeyTypes[0]], "GenerateKey makes secret keys")
				}
				if m.GenerateKeyPair != nil {
					assert.NotEqual(t, classSecret, keyClasses[m.KeyTypes[0]], "GenerateKeyPair makes key pairs")
				}
			}

			// Flags: exactly the constructors, CKF_HW, and the EC capabilities.
			f := m.Flags()
			for _, c := range []struct {
				set  bool
				flag ck.ULong
			}{
				{m.Encrypt != nil, ck.CKF_ENCRYPT},
				{m.Decrypt != nil, ck.CKF_DECRYPT},
				{m.Sign != nil, ck.CKF_SIGN},
				{m.Verify != nil, ck.CKF_VERIFY},
				{m.Digest != nil, ck.CKF_DIGEST},
				{m.GenerateKey != nil, ck.CKF_GENERATE},
				{m.GenerateKeyPair != nil, ck.CKF_GENERATE_KEY_PAIR},
				{m.Derive != nil, ck.CKF_DERIVE},
				{m.Wrap != nil, ck.CKF_WRAP},
				{m.Unwrap != nil, ck.CKF_UNWRAP},
				{m.SignRecover != nil, ck.CKF_SIGN_RECOVER},
				{m.VerifyRecover != nil, ck.CKF_VERIFY_RECOVER},
				{m.MessageEncrypt != nil, ck.CKF_MESSAGE_ENCRYPT},
				{m.MessageDecrypt != nil, ck.CKF_MESSAGE_DECRYPT},
				{m.Encapsulate != nil, ck.CKF_ENCAPSULATE},
				{m.Decapsulate != nil, ck.CKF_DECAPSULATE},
				{true, ck.CKF_HW},
				{slices.Contains(m.KeyTypes, ck.CKK_EC), ck.CKF_EC_F_P},
				{slices.Contains(m.KeyTypes, ck.CKK_EC), ck.CKF_EC_NAMEDCURVE},
				{slices.Contains(m.KeyTypes, ck.CKK_EC), ck.CKF_EC_UNCOMPRESS},
			} {
				assert.Equal(t, c.set, f&c.flag != 0, "flag 0x%x", c.flag)
				f &^= c.flag
			}
			assert.Zero(t, f, "unexpected flags")
		})
	}

	_, ok := Lookup(ck.CKM_VENDOR_DEFINED)
	assert.False(t, ok)
}

// Pinned flags of a few rows, written out from the spec rather than
// derived, so a change in Flags itself is noticed.
func TestFlagsPinned(t *testing.T) {
	ec := ck.CKF_EC_F_P | ck.CKF_EC_NAMEDCURVE | ck.CKF_EC_UNCOMPRESS
	for mech, want := range map[ck.MechanismType]ck.ULong{
		ck.CKM_AES_GCM: ck.CKF_HW | ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_WRAP | ck.CKF_UNWRAP |
			ck.CKF_MESSAGE_ENCRYPT | ck.CKF_MESSAGE_DECRYPT,
		ck.CKM_AES_KEY_WRAP:         ck.CKF_HW | ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_WRAP | ck.CKF_UNWRAP,
		ck.CKM_AES_ECB_ENCRYPT_DATA: ck.CKF_HW | ck.CKF_DERIVE,
		ck.CKM_AES_KEY_GEN:          ck.CKF_HW | ck.CKF_GENERATE,
		ck.CKM_EC_KEY_PAIR_GEN:      ck.CKF_HW | ck.CKF_GENERATE_KEY_PAIR | ec,
		ck.CKM_ECDSA:                ck.CKF_HW | ck.CKF_SIGN | ck.CKF_VERIFY | ec,
		// PKCS#11 v3.0 Current Mechanisms, table "Mechanisms vs. Functions": CKM_RSA_PKCS
		// does encrypt/decrypt, sign/verify, sign/verify-recover and wrap/unwrap.
		ck.CKM_RSA_PKCS: ck.CKF_HW | ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_SIGN | ck.CKF_VERIFY |
			ck.CKF_SIGN_RECOVER | ck.CKF_VERIFY_RECOVER | ck.CKF_WRAP | ck.CKF_UNWRAP,
		ck.CKM_RSA_PKCS_KEY_PAIR_GEN: ck.CKF_HW | ck.CKF_GENERATE_KEY_PAIR,
		ck.CKM_SHA256:                ck.CKF_HW | ck.CKF_DIGEST,
	} {
		m, ok := Lookup(mech)
		require.True(t, ok, mech)
		assert.Equal(t, want, m.Flags(), mech)
	}
}

func TestLookupAllocs(t *testing.T) {
	testenv.NoAllocCount(t)
	allocs := testing.AllocsPerRun(100, func() { _, _ = Lookup(ck.CKM_AES_GCM) })
	assert.Zero(t, allocs)
}

// TestLookupMatchesTable: Lookup finds every row, and nothing else, for
// every type below 1<<16 and for types above it (vendor-defined).
func TestLookupMatchesTable(t *testing.T) {
	for _, r := range loaded().sorted {
		got, ok := Lookup(r.Type)
		require.True(t, ok, "%v", r.Type)
		require.Same(t, r, got, "%v", r.Type)
	}
	found := 0
	for v := ck.MechanismType(0); v < 1<<16; v++ {
		got, ok := Lookup(v)
		want, wantOK := loaded().byType[v]
		require.Equal(t, wantOK, ok, "%#x", uint64(v))
		require.Same(t, want, got, "%#x", uint64(v))
		if ok {
			found++
		}
	}
	for _, v := range []ck.MechanismType{1 << 16, ck.CKM_VENDOR_DEFINED, ck.CKM_VENDOR_DEFINED | 0x1088, 1<<32 | 0x1087} {
		_, ok := Lookup(v)
		assert.False(t, ok, "%#x", uint64(v))
	}
	vendor := 0
	for _, r := range loaded().sorted {
		if r.Type >= 1<<16 {
			vendor++
		}
	}
	assert.Equal(t, len(loaded().sorted)-vendor, found, "every row below 1<<16 is found, and nothing else")
}

// BenchmarkLookup is the row lookup every C_*Init makes (twice: the C
// boundary for the parameter's shape, the token for the operation).
func BenchmarkLookup(b *testing.B) {
	types := []ck.MechanismType{ck.CKM_SHA256_HMAC, ck.CKM_ECDSA, ck.CKM_AES_GCM, ck.CKM_SHA256_RSA_PKCS}
	n := 0
	for i := 0; b.Loop(); i++ {
		if _, ok := Lookup(types[i&3]); ok {
			n++
		}
	}
	if n == 0 {
		b.Fatal("no row found")
	}
}
