package cluster

import (
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"
)

// TestKeyAvailabilityReplicationDelay: with replication_delay = 1s, a new
// token key is on its HSM at once and on the other a second later; until
// then it does not meet the key availability quorum (2 HSMs,
// UG:troubleshoot-key-availability-check) and C_SignInit fails with
// CKR_FUNCTION_FAILED, the module logging the SDK's message. Polled every
// 50 ms: the first try fails, a later one succeeds, no earlier than the
// delay after the key was made (measured from before C_GenerateKeyPair,
// so never later than the key's own time: 50 ms of tolerance covers the
// clocks) and within 3 s of it.
func TestKeyAvailabilityReplicationDelay(t *testing.T) {
	const delay = time.Second
	tk := newCluster(t, "hsms = 2", "replication_delay = 1s")
	s := tk.login()
	start := time.Now()
	k := tk.genEC(s, true, "fresh")

	var fails int
	var usable time.Duration
	for {
		err := tk.p.SignInit(s, mech(pkcs11.CKM_ECDSA, nil), k)
		if err == nil {
			usable = time.Since(start)
			_, err = tk.p.Sign(s, digest)
			require.NoError(t, err, "C_Sign once the key is available")
			break
		}
		requireRV(t, err, pkcs11.CKR_FUNCTION_FAILED, "C_SignInit before the key reached the second HSM")
		fails++
		if time.Since(start) > delay+3*time.Second {
			t.Fatalf("the key is still unusable %v after it was made (%d tries)", time.Since(start), fails)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("usable after %v, %d failed tries", usable, fails)
	require.Positive(t, fails, "the first C_SignInit on the new key fails")
	require.GreaterOrEqual(t, usable, delay-50*time.Millisecond, "the key was usable before the replication delay")
	require.Contains(t, tk.logText(), availabilityMessage, "the module logs the SDK's message")

	// Once verified, the key stays usable in this process.
	for i := 0; i < 3; i++ {
		require.NoError(t, tk.sign(s, k))
	}
	// A key made before stays usable for a new SDK instance too: it is on
	// both HSMs by now.
	tk.reconfigure(tk.slotLines...)
	s = tk.login()
	require.NoError(t, tk.sign(s, tk.privateKey(s, "fresh")), "a replicated key after C_Finalize/C_Initialize")
}

// TestKeyAvailabilityOneHSM: a cluster of one HSM with the check on (the
// cloudhsm default): no token key can be made, by generation or by
// C_CreateObject, and nothing is stored; a token key made with the check
// off cannot be used once it is on again; session keys are never checked.
// key_availability_check = false (the SDK's
// --disable-key-availability-check, UG:pkcs11-library-install) removes
// the failure.
func TestKeyAvailabilityOneHSM(t *testing.T) {
	tk := newCluster(t, "hsms = 1")
	s := tk.login()

	_, _, err := tk.tryEC(s, true, "refused-ec")
	requireRV(t, err, pkcs11.CKR_FUNCTION_FAILED, "C_GenerateKeyPair of a token key, one HSM")
	_, err = tk.tryAES(s, true, "refused-aes")
	requireRV(t, err, pkcs11.CKR_FUNCTION_FAILED, "C_GenerateKey of a token key, one HSM")
	_, err = tk.p.CreateObject(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, make([]byte, 32)),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "refused-created"),
	})
	requireRV(t, err, pkcs11.CKR_FUNCTION_FAILED, "C_CreateObject of a token key, one HSM")
	for _, l := range []string{"refused-ec", "refused-aes", "refused-created"} {
		require.Empty(t, tk.findLabel(s, l), "a refused token key %q was stored", l)
	}
	require.Contains(t, tk.logText(), availabilityMessage, "the module logs the SDK's message")

	// Session keys: made and used on the one HSM.
	require.NoError(t, tk.sign(s, tk.genEC(s, false, "session-ec")), "a session EC key, one HSM")
	require.NoError(t, tk.encrypt(s, tk.genAES(s, false, "session-aes")), "a session AES key, one HSM")

	// The check off: token keys work with one HSM.
	tk.reconfigure("hsms = 1", "key_availability_check = false")
	s = tk.login()
	k := tk.genEC(s, true, "unchecked")
	require.NoError(t, tk.sign(s, k), "a token key, one HSM, check off")
	require.NoError(t, tk.encrypt(s, tk.genAES(s, true, "unchecked-aes")))

	// The check on again: the key exists but is on one HSM only.
	tk.reconfigure("hsms = 1")
	s = tk.login()
	k = tk.privateKey(s, "unchecked")
	requireRV(t, tk.p.SignInit(s, mech(pkcs11.CKM_ECDSA, nil), k), pkcs11.CKR_FUNCTION_FAILED, "C_SignInit of a token key, one HSM, check on")
}
