package mechanisms

import (
	"bytes"
	"crypto/mlkem"
	"crypto/rand"
	"testing"

	"github.com/cloudflare/circl/kem/mlkem/mlkem512"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

func init() {
	fixtureSizes[ck.CKK_ML_KEM] = []int{512, 768, 1024}
	type bad = struct {
		p    KeyGenParams
		want ck.RV
	}
	keyGenCases[ck.CKK_ML_KEM] = struct {
		good []KeyGenParams
		bad  []bad
	}{
		good: []KeyGenParams{{ParameterSet: ck.CKP_ML_KEM_512}, {ParameterSet: ck.CKP_ML_KEM_768}, {ParameterSet: ck.CKP_ML_KEM_1024}},
		bad: []bad{
			{KeyGenParams{}, ck.CKR_TEMPLATE_INCOMPLETE},
			{KeyGenParams{ParameterSet: 4}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		},
	}
}

// TestMLKEMRows: the rows' flags and sizes as C_GetMechanismInfo reports
// them, generation per parameter set, encapsulation and decapsulation
// against crypto/mlkem (768, 1024) and circl (512) called directly, the
// expanded key's size, implicit rejection and the size checks.
func TestMLKEMRows(t *testing.T) {
	gen, ok := Lookup(ck.CKM_ML_KEM_KEY_PAIR_GEN)
	require.True(t, ok)
	kem, ok := Lookup(ck.CKM_ML_KEM)
	require.True(t, ok)
	assert.Equal(t, ck.CKF_HW|ck.CKF_GENERATE_KEY_PAIR, gen.Flags())
	assert.Equal(t, ck.CKF_HW|ck.CKF_ENCAPSULATE|ck.CKF_DECAPSULATE, kem.Flags())
	assert.Equal(t, []uint{512, 1024}, []uint{kem.MinKeySize, kem.MaxKeySize})

	_, _, err := gen.GenerateKeyPair(rand.Reader, KeyGenParams{})
	require.ErrorIs(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
	_, _, err = gen.GenerateKeyPair(rand.Reader, KeyGenParams{ParameterSet: 9})
	require.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)

	dkSize := map[ck.ULong]int{ck.CKP_ML_KEM_512: 1632, ck.CKP_ML_KEM_768: 2400, ck.CKP_ML_KEM_1024: 3168}
	for _, set := range []ck.ULong{ck.CKP_ML_KEM_512, ck.CKP_ML_KEM_768, ck.CKP_ML_KEM_1024} {
		pub, priv, err := gen.GenerateKeyPair(rand.Reader, KeyGenParams{ParameterSet: set})
		require.NoError(t, err)
		s1, ek, seed, ok := MLKEMKeyMaterial(priv)
		require.True(t, ok)
		s2, ek2, _, _ := MLKEMKeyMaterial(pub)
		assert.Equal(t, set, s1)
		assert.Equal(t, set, s2)
		assert.Equal(t, ek, ek2)
		// The stored forms make the same keys again.
		priv2, err := MLKEMPrivateKey(set, seed)
		require.NoError(t, err)
		pub2, err := MLKEMPublicKey(set, ek)
		require.NoError(t, err)

		secret, ct, err := kem.Encapsulate(pub2, nil)
		require.NoError(t, err)
		assert.Len(t, ct, kem.CiphertextSize(pub))
		got, err := kem.Decapsulate(priv2, nil, ct)
		require.NoError(t, err)
		assert.Equal(t, secret, got)
		assert.Len(t, MLKEMExpandedKey(priv), dkSize[set])
		assert.Equal(t, MLKEMExpandedKey(priv), MLKEMExpandedKey(priv2))
		assert.Nil(t, MLKEMExpandedKey(pub))
		// crypto/mlkem (circl for 512) directly.
		var direct []byte
		switch set {
		case ck.CKP_ML_KEM_512:
			_, dk := mlkem512.NewKeyFromSeed(seed)
			direct = make([]byte, mlkem512.SharedKeySize)
			dk.DecapsulateTo(direct, ct)
		case ck.CKP_ML_KEM_768:
			dk, _ := mlkem.NewDecapsulationKey768(seed)
			direct, err = dk.Decapsulate(ct)
		default:
			dk, _ := mlkem.NewDecapsulationKey1024(seed)
			direct, err = dk.Decapsulate(ct)
		}
		require.NoError(t, err)
		assert.Equal(t, secret, direct)

		bad := bytes.Clone(ct)
		bad[len(bad)-1] ^= 0x80
		rej, err := kem.Decapsulate(priv, nil, bad)
		require.NoError(t, err, "implicit rejection is no error")
		assert.NotEqual(t, secret, rej)
		_, err = kem.Decapsulate(priv, nil, ct[:len(ct)-1])
		require.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
		_, err = kem.Decapsulate(priv, nil, append(bytes.Clone(ct), 0))
		require.ErrorIs(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
		_, _, err = kem.Encapsulate(priv, nil)
		require.ErrorIs(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
		_, err = kem.Decapsulate(pub, nil, ct)
		require.ErrorIs(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
		_, _, err = kem.Encapsulate(pub, []byte{1})
		require.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	_, err = MLKEMPrivateKey(ck.CKP_ML_KEM_768, make([]byte, 63))
	require.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, err = MLKEMPublicKey(ck.CKP_ML_KEM_768, make([]byte, mlkem.EncapsulationKeySize1024))
	require.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, err = MLKEMPrivateKey(ck.CKP_ML_KEM_512, make([]byte, 65))
	require.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, err = MLKEMPublicKey(ck.CKP_ML_KEM_512, make([]byte, mlkem512.PublicKeySize-1))
	require.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}
