package token

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
)

func certTemplate(i int) attrs.Template {
	return attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_CERTIFICATE)), ck.CKA_CERTIFICATE_TYPE: attrs.ULong(ck.ULong(ck.CKC_X_509)),
		ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SUBJECT: []byte(fmt.Sprint("cn=", i)), ck.CKA_VALUE: []byte(fmt.Sprint("cert ", i))}
}

func tokenAES(n int) attrs.Template {
	return attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
		ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_VALUE: make([]byte, n)}
}

// TestCloudHSMQuotas: behaviours 26 and 34 (hsm2m), with the quotas made
// small by the configuration's test keys: 5 keys, 3 asymmetric, 2
// certificates. The object past a quota is refused with
// CKR_FUNCTION_FAILED by every creating call, a key pair as a whole;
// session keys do not count. Standard has no quotas (the test keys
// replace only quotas a profile has).
func TestCloudHSMQuotas(t *testing.T) {
	attrsBothProfiles(t, func(t *testing.T, cloudhsm bool) {
		m, h := attrsTestToken(t, map[bool]string{false: "standard", true: "cloudhsm"}[cloudhsm],
			"test_max_keys = 5", "test_max_asymmetric_keys = 3", "test_max_certificates = 2")
		pair := func() error {
			_, _, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
				attrs.Template{ck.CKA_EC_PARAMS: p256, ck.CKA_TOKEN: attrs.Bool(true)}, attrs.Template{ck.CKA_TOKEN: attrs.Bool(true)})
			return err
		}
		require.NoError(t, pair()) // 2 keys, 2 asymmetric
		// A session key pair to derive with (session keys do not count).
		_, ecPriv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, attrs.Template{ck.CKA_EC_PARAMS: p256},
			attrs.Template{ck.CKA_DERIVE: attrs.Bool(true)})
		require.NoError(t, err)
		r, err := m.GetAttributeValue(h, ecPriv, []ck.AttributeType{ck.CKA_EC_POINT})
		require.NoError(t, err)
		point := r[0].Value
		attrsWant(t, cloudhsm, pair(), ck.CKR_FUNCTION_FAILED)
		// The refused pair left neither half behind.
		require.NoError(t, m.FindObjectsInit(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY)), ck.CKA_TOKEN: attrs.Bool(true)}))
		found, err := m.FindObjects(h, 10)
		require.NoError(t, err)
		require.NoError(t, m.FindObjectsFinal(h))
		if cloudhsm {
			require.Len(t, found, 1)
		}
		kek, err := m.CreateObject(h, attrsMerge(tokenAES(32), attrs.Template{ck.CKA_WRAP: attrs.Bool(true), ck.CKA_UNWRAP: attrs.Bool(true),
			ck.CKA_DERIVE: attrs.Bool(true)})) // 3 (standard: 5)
		require.NoError(t, err)
		_, err = m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, attrs.Template{ck.CKA_VALUE_LEN: attrs.ULong(16), ck.CKA_TOKEN: attrs.Bool(true),
			ck.CKA_EXTRACTABLE: attrs.Bool(true)})
		require.NoError(t, err) // 4
		sess, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, attrs.Template{ck.CKA_VALUE_LEN: attrs.ULong(16)})
		require.NoError(t, err) // a session key: not counted
		_, err = m.CreateObject(h, tokenAES(16))
		require.NoError(t, err) // 5
		// Every creating call is refused now.
		_, err = m.CreateObject(h, tokenAES(16))
		attrsWant(t, cloudhsm, err, ck.CKR_FUNCTION_FAILED)
		_, err = m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, attrs.Template{ck.CKA_VALUE_LEN: attrs.ULong(16), ck.CKA_TOKEN: attrs.Bool(true)})
		attrsWant(t, cloudhsm, err, ck.CKR_FUNCTION_FAILED)
		_, err = m.DeriveKey(h, Mechanism{Type: ck.CKM_ECDH1_DERIVE, Param: &mechanisms.ECDH1Params{KDF: ck.CKD_NULL, PublicData: point}}, ecPriv,
			attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)),
				ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)), ck.CKA_VALUE_LEN: attrs.ULong(16)})
		attrsWant(t, cloudhsm, err, ck.CKR_FUNCTION_FAILED)
		wrapped := gcmWrap(t, make([]byte, 32), make([]byte, 16))
		_, err = m.UnwrapKey(h, Mechanism{Type: ck.CKM_AES_GCM, Param: &mechanisms.GCMParams{IV: make([]byte, 12), TagBits: 128}}, kek, wrapped,
			attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
				ck.CKA_TOKEN: attrs.Bool(true)})
		attrsWant(t, cloudhsm, err, ck.CKR_FUNCTION_FAILED)
		_, err = m.CopyObject(h, sess, attrs.Template{ck.CKA_TOKEN: attrs.Bool(true)})
		attrsWant(t, cloudhsm, err, ck.CKR_FUNCTION_FAILED)
		if cloudhsm {
			_, err = m.SetKeyAttributes(h, sess, attrs.Template{ck.CKA_TOKEN: attrs.Bool(true)})
			attrsRV(t, err, ck.CKR_FUNCTION_FAILED)
			// The refused session key is still there, still a session key.
			require.False(t, attrsBool(t, m, h, sess, ck.CKA_TOKEN))
		}
		// Session keys are still fine.
		_, err = m.CreateObject(h, attrsMerge(tokenAES(16), attrs.Template{ck.CKA_TOKEN: attrs.Bool(false)}))
		require.NoError(t, err)
		// Certificates: 2, then CKR_FUNCTION_FAILED (hsm2m's 60).
		for i := 0; i < 2; i++ {
			_, err = m.CreateObject(h, certTemplate(i))
			require.NoError(t, err)
		}
		_, err = m.CreateObject(h, certTemplate(2))
		attrsWant(t, cloudhsm, err, ck.CKR_FUNCTION_FAILED)
		// Destroying a key makes room.
		if cloudhsm {
			require.NoError(t, m.DestroyObject(h, kek))
			_, err = m.CreateObject(h, tokenAES(16))
			require.NoError(t, err)
		}
	})
}

// TestCloudHSMQuotaAcrossModules: two modules on one token (two
// processes, as far as the store can tell) filling the key quota at once
// never pass it together: the count is taken in the creating
// transaction.
func TestCloudHSMQuotaAcrossModules(t *testing.T) {
	m1, h1 := attrsTestToken(t, "cloudhsm", "test_max_keys = 40")
	s1, err := m1.Slot(3)
	require.NoError(t, err)
	cfg := *m1.cfg
	m2, err := Open(&cfg)
	require.NoError(t, err)
	defer m2.Close()
	_ = s1
	h2 := openRW(t, m2)
	require.NoError(t, m2.Login(h2, ck.CKU_USER, []byte(userPIN)))
	made := make(chan int, 2)
	for _, mh := range []struct {
		m *Module
		h ck.ULong
	}{{m1, h1}, {m2, h2}} {
		go func() {
			n := 0
			for {
				if _, err := mh.m.CreateObject(mh.h, tokenAES(16)); err != nil {
					made <- n
					return
				}
				n++
			}
		}()
	}
	total := 0
	for i := 0; i < 2; i++ {
		select {
		case n := <-made:
			total += n
		case <-time.After(30 * time.Second):
			t.Fatal("no end")
		}
	}
	require.Equal(t, 40, total)
}

// TestCloudHSMQuotaAtTheRealHSM1Limit: hsm1's own quota, 3,300 token keys
// (no test key): the 3,301st is refused.
func TestCloudHSMQuotaAtTheRealHSM1Limit(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 3,300 keys")
	}
	if testenv.Race {
		// 60 s under the race detector against 5 s; the quota's
		// concurrency is TestCloudHSMQuotaAcrossModules's, which runs.
		t.Skip("creates 3,300 keys: too slow under the race detector")
	}
	m, h := attrsTestToken(t, "cloudhsm", "hsm_type = hsm1")
	start := time.Now()
	for i := 0; i < 3300; i++ {
		_, err := m.CreateObject(h, tokenAES(16))
		require.NoError(t, err, "key %d", i+1)
	}
	t.Logf("3,300 token keys in %v", time.Since(start))
	_, err := m.CreateObject(h, tokenAES(16))
	attrsRV(t, err, ck.CKR_FUNCTION_FAILED)
	// hsm1 has no asymmetric or certificate quota of its own.
	_, err = m.CreateObject(h, certTemplate(0))
	require.NoError(t, err)
}

// attrsMerge returns a new template with the attributes of ts, later ones
// winning.
func attrsMerge(ts ...attrs.Template) attrs.Template {
	out := attrs.Template{}
	for _, t := range ts {
		for a, v := range t {
			out[a] = v
		}
	}
	return out
}

// gcmWrap is AES-GCM with a zero 12-byte IV under kek, as CKM_AES_GCM
// unwraps it.
func gcmWrap(t *testing.T, kek, material []byte) []byte {
	blk, err := aes.NewCipher(kek)
	require.NoError(t, err)
	gcm, err := cipher.NewGCM(blk)
	require.NoError(t, err)
	return gcm.Seal(nil, make([]byte, 12), material, nil)
}
