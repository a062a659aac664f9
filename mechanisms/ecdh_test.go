package mechanisms

import (
	"crypto"
	"crypto/ecdh"
	"crypto/elliptic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// ANSI X9.63 KDF known answers from NIST CAVP's "ansx963_2001.rsp"
// (SP 800-135 component tests), COUNT = 0 of the groups with an empty
// SharedInfo and 128-bit key data.
func TestX963KDF(t *testing.T) {
	for _, c := range []struct {
		h         crypto.Hash
		z, shared string
		want      string
	}{
		{crypto.SHA1, "1c7d7b5f0597b03d06a018466ed1a93e30ed4b04dc64ccdd", "", "bf71dffd8f4d99223936beb46fee8ccc"},
		{crypto.SHA256, "96c05619d56c328ab95fe84b18264b08725b85e33fd34f08", "", "443024c3dae66b95e6f5670601558f71"},
	} {
		assert.Equal(t, unhex(c.want), x963KDF(c.h, unhex(c.z), unhex(c.shared), 16), "%v", c.h)
	}
	// Longer outputs are the counter blocks concatenated: a prefix of a
	// longer output is the shorter one.
	long := x963KDF(crypto.SHA256, []byte("z"), []byte("s"), 100)
	assert.Equal(t, long[:40], x963KDF(crypto.SHA256, []byte("z"), []byte("s"), 40))
}

// CKD_NULL keeps the last CKA_VALUE_LEN bytes of Z; DES3 without a length
// gets 24 bytes.
func TestECDHLengths(t *testing.T) {
	m := row(t, ck.CKM_ECDH1_DERIVE)
	a, b := genEC(t, elliptic.P256()), genEC(t, elliptic.P256())
	peer := must(pointBytes(&b.PublicKey))
	z, err := m.Derive(a, &ECDH1Params{KDF: ck.CKD_NULL, PublicData: peer}, DeriveTarget{})
	require.NoError(t, err)
	require.Len(t, z, 32)
	for _, n := range []int{1, 16, 24, 32} {
		k, err := m.Derive(a, &ECDH1Params{KDF: ck.CKD_NULL, PublicData: peer}, DeriveTarget{KeyType: ck.CKK_AES, ValueLen: n})
		require.NoError(t, err)
		assert.Equal(t, z[32-n:], k)
	}
	_, err = m.Derive(a, &ECDH1Params{KDF: ck.CKD_NULL, PublicData: peer}, DeriveTarget{ValueLen: 33})
	assert.ErrorIs(t, err, ck.CKR_KEY_SIZE_RANGE)
	k, err := m.Derive(a, &ECDH1Params{KDF: ck.CKD_SHA1_KDF, PublicData: peer}, DeriveTarget{KeyType: ck.CKK_DES3})
	require.NoError(t, err)
	assert.Equal(t, x963KDF(crypto.SHA1, z, nil, 24), k)
	k, err = m.Derive(a, &ECDH1Params{KDF: ck.CKD_NULL, PublicData: peer}, DeriveTarget{KeyType: ck.CKK_DES3})
	require.NoError(t, err)
	assert.Equal(t, z[8:], k)
	_, err = m.Derive(a, &ECDH1Params{KDF: ck.CKD_SHA256_KDF, PublicData: peer}, DeriveTarget{ValueLen: -1})
	assert.ErrorIs(t, err, ck.CKR_KEY_SIZE_RANGE)

	// The cofactor row takes no X25519 key (CKM_ECDH1_DERIVE does).
	x, err := ecdh.X25519().GenerateKey(nil)
	require.NoError(t, err)
	_, err = row(t, ck.CKM_ECDH1_COFACTOR_DERIVE).Derive(x, &ECDH1Params{KDF: ck.CKD_NULL, PublicData: x.PublicKey().Bytes()}, DeriveTarget{})
	assert.ErrorIs(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
	// X25519 with the all-zero (small-order) point.
	_, err = m.Derive(x, &ECDH1Params{KDF: ck.CKD_NULL, PublicData: make([]byte, 32)}, DeriveTarget{})
	assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
}
