package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token"
)

// TestCloudHSMKeyGenerate: the CLI's key generate works in a cloudhsm
// slot and its keys can do what their type does, although the profile
// defaults every usage flag to CK_FALSE: the CLI asks for them.
func TestCloudHSMKeyGenerate(t *testing.T) {
	t.Setenv("GOHSM_PIN", "")
	c := &cli{t: t, conf: testConfig(t, "[slot 0]\nprofile = cloudhsm\n")}
	c.ok("token", "init", "--label", "cloud", "--pin", coPIN)
	c.ok("user", "create", "--username", "alice", "--role", "crypto-user", "--password", "alice-pw", "--pin", coPIN)
	var aes struct{ Key keyJSON }
	c.data(&aes, "key", "generate", "aes", "--bits", "256", "--label", "k-aes", "--pin", alicePIN)
	var ec, rsa struct {
		Pub  keyJSON `json:"public_key"`
		Priv keyJSON `json:"private_key"`
	}
	c.data(&ec, "key", "generate", "ec", "--curve", "P-256", "--label", "k-ec", "--pin", alicePIN)
	c.data(&rsa, "key", "generate", "rsa", "--bits", "2048", "--label", "k-rsa", "--pin", alicePIN)

	text, err := os.ReadFile(c.conf)
	require.NoError(t, err)
	cfg, err := token.ParseConfig(string(text), c.conf)
	require.NoError(t, err)
	m, err := token.Open(cfg)
	require.NoError(t, err)
	defer m.Close()
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(alicePIN)))
	want := map[uint64][]ck.AttributeType{
		aes.Key.Handle:  {ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_VERIFY, ck.CKA_WRAP, ck.CKA_UNWRAP},
		ec.Pub.Handle:   {ck.CKA_VERIFY},
		ec.Priv.Handle:  {ck.CKA_SIGN},
		rsa.Pub.Handle:  {ck.CKA_ENCRYPT, ck.CKA_VERIFY, ck.CKA_WRAP},
		rsa.Priv.Handle: {ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_UNWRAP},
	}
	for obj, as := range want {
		r, err := m.GetAttributeValue(h, ck.ULong(obj), as)
		require.NoError(t, err)
		for i, a := range as {
			require.NoError(t, r[i].Err)
			require.Equal(t, []byte{1}, r[i].Value, "key %d %v", obj, a)
		}
	}
	// CKA_DERIVE stays at the profile's default.
	r, err := m.GetAttributeValue(h, ck.ULong(aes.Key.Handle), []ck.AttributeType{ck.CKA_DERIVE})
	require.NoError(t, err)
	require.Equal(t, []byte{0}, r[0].Value)
}
