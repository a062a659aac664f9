package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Vendor attributes (include/gohsm.h).
const (
	ckaGohsmOwner       = pkcs11.CKA_VENDOR_DEFINED | 0x47480001
	ckaGohsmSharedUsers = pkcs11.CKA_VENDOR_DEFINED | 0x47480002
)

const bobPIN = "bob:bobpassword"

func (tk *tok) tokenFlags() uint {
	tk.t.Helper()
	ti, err := tk.p.GetTokenInfo(tk.slot)
	require.NoError(tk.t, err, "C_GetTokenInfo")
	return ti.Flags
}

func (tk *tok) state(s pkcs11.SessionHandle) uint {
	tk.t.Helper()
	si, err := tk.p.GetSessionInfo(s)
	require.NoError(tk.t, err, "C_GetSessionInfo")
	return si.State
}

func TestRoles(t *testing.T) {
	tk := newToken(t)
	tk.initToken() // CO admin, CU alice
	tk.initPIN(bobPIN)
	p := tk.p
	s := tk.session()
	aesTmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
	}

	// Alice's key pair; her public key is a public object.
	require.NoError(t, p.Login(s, pkcs11.CKU_USER, userPIN))
	pub, priv := tk.genEC(s, oidP256, "alice-key", true)
	key := tk.ecPublic(s, pub, elliptic.P256())
	assert.Equal(t, "alice", string(tk.attr(s, priv, ckaGohsmOwner)))
	require.NoError(t, p.Logout(s))

	t.Run("CryptoOfficerHasNoKeys", func(t *testing.T) {
		require.NoError(t, p.Login(s, pkcs11.CKU_SO, soPIN))
		defer func() { require.NoError(t, p.Logout(s)) }()
		assert.Equal(t, uint(pkcs11.CKS_RW_SO_FUNCTIONS), tk.state(s))
		_, err := p.GenerateKey(s, mech(pkcs11.CKM_AES_KEY_GEN, nil), aesTmpl)
		requireRV(t, err, pkcs11.CKR_USER_NOT_LOGGED_IN)
		_, _, err = p.GenerateKeyPair(s, mech(pkcs11.CKM_EC_KEY_PAIR_GEN, nil),
			[]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, oidP256)}, nil)
		requireRV(t, err, pkcs11.CKR_USER_NOT_LOGGED_IN)
		_, err = p.CreateObject(s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, make([]byte, 32)),
		})
		requireRV(t, err, pkcs11.CKR_USER_NOT_LOGGED_IN)
		// The CO sees alice's public key but can use no key at all.
		assert.Equal(t, []pkcs11.ObjectHandle{pub}, tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_LABEL, "alice-key")), "CO finds only the public key")
		requireRV(t, p.SignInit(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), priv), pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_KEY_HANDLE_INVALID)
		requireRV(t, p.VerifyInit(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), pub), pkcs11.CKR_USER_NOT_LOGGED_IN)
		requireRV(t, p.DestroyObject(s, pub), pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_ACTION_PROHIBITED)
	})

	t.Run("Sharing", func(t *testing.T) {
		require.NoError(t, p.Login(s, pkcs11.CKU_USER, bobPIN))
		defer func() { require.NoError(t, p.Logout(s)) }()
		label := pkcs11.NewAttribute(pkcs11.CKA_LABEL, "alice-key")
		privClass := pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)
		assert.Empty(t, tk.find(s, label, privClass), "bob finds alice's unshared private key")
		requireRV(t, p.SignInit(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), priv), pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_OBJECT_HANDLE_INVALID)
		_, err := p.GetAttributeValue(s, priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
		requireRV(t, err, pkcs11.CKR_OBJECT_HANDLE_INVALID)
		requireRV(t, p.DestroyObject(s, priv), pkcs11.CKR_OBJECT_HANDLE_INVALID)

		// Alice shares it from another process while bob stays logged in.
		out := tk.run("share", userPIN, userPIN, "alice-key", "bob")
		require.Equal(t, []string{fmt.Sprintf("SHARED %d", priv)}, out)

		require.Equal(t, []pkcs11.ObjectHandle{priv}, tk.find(s, label, privClass), "bob finds the key shared with him")
		assert.Equal(t, "alice", string(tk.attr(s, priv, ckaGohsmOwner)))
		assert.Equal(t, "bob", string(tk.attr(s, priv, ckaGohsmSharedUsers)))
		msg := []byte("signed by bob with alice's key")
		sig := tk.sign(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), priv, msg)
		h := sha256.Sum256(msg)
		r, ss := ecdsaRS(t, sig, 32)
		assert.True(t, ecdsa.Verify(key, h[:], r, ss), "bob's signature with the shared key")
		// Using is all bob may do.
		requireRV(t, p.DestroyObject(s, priv), pkcs11.CKR_ACTION_PROHIBITED)
		requireRV(t, p.SetAttributeValue(s, priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, "bob's now")}), pkcs11.CKR_ACTION_PROHIBITED)
		_, err = p.CopyObject(s, priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, "bob's copy")})
		requireRV(t, err, pkcs11.CKR_ACTION_PROHIBITED)
		assert.Equal(t, "alice-key", string(tk.attr(s, priv, pkcs11.CKA_LABEL)))
	})

	t.Run("Lockout", func(t *testing.T) {
		// token/slot.go TokenInfo: the CU PIN flags describe the crypto
		// user named by this process's last CU login attempt; the
		// threshold is lockout_threshold (default 5).
		const pinFlags = pkcs11.CKF_USER_PIN_COUNT_LOW | pkcs11.CKF_USER_PIN_FINAL_TRY | pkcs11.CKF_USER_PIN_LOCKED
		for i := 1; i <= 5; i++ {
			requireRV(t, p.Login(s, pkcs11.CKU_USER, fmt.Sprintf("bob:wrong%d", i)), pkcs11.CKR_PIN_INCORRECT)
			f := tk.tokenFlags() & pinFlags
			switch {
			case i < 4:
				assert.Equal(t, uint(pkcs11.CKF_USER_PIN_COUNT_LOW), f, "after %d wrong passwords", i)
			case i == 4:
				assert.Equal(t, uint(pkcs11.CKF_USER_PIN_COUNT_LOW|pkcs11.CKF_USER_PIN_FINAL_TRY), f, "after %d wrong passwords", i)
			default:
				assert.Equal(t, uint(pkcs11.CKF_USER_PIN_LOCKED), f, "after %d wrong passwords", i)
			}
		}
		requireRV(t, p.Login(s, pkcs11.CKU_USER, bobPIN), pkcs11.CKR_PIN_LOCKED)
		requireRV(t, p.Login(s, pkcs11.CKU_USER, "bob:wrong6"), pkcs11.CKR_PIN_LOCKED)
		assert.Equal(t, uint(pkcs11.CKF_USER_PIN_LOCKED), tk.tokenFlags()&pinFlags)

		// Other users are not affected, and the flags follow the last user.
		require.NoError(t, p.Login(s, pkcs11.CKU_USER, userPIN), "alice is not locked")
		assert.Zero(t, tk.tokenFlags()&pinFlags, "flags after alice's login")
		require.NoError(t, p.Logout(s))

		// The CO unlocks bob by setting his password.
		require.NoError(t, p.Login(s, pkcs11.CKU_SO, soPIN))
		require.NoError(t, p.InitPIN(s, "bob:newpassword"), "C_InitPIN unlocks bob")
		require.NoError(t, p.Logout(s))
		requireRV(t, p.Login(s, pkcs11.CKU_USER, bobPIN), pkcs11.CKR_PIN_INCORRECT)
		require.NoError(t, p.Login(s, pkcs11.CKU_USER, "bob:newpassword"), "bob after C_InitPIN")
		assert.Zero(t, tk.tokenFlags()&pinFlags, "flags after bob's successful login")
		require.NoError(t, p.Logout(s))
	})

	t.Run("LoginIsSlotWide", func(t *testing.T) {
		s2 := tk.session()
		defer p.CloseSession(s2)
		require.NoError(t, p.Login(s, pkcs11.CKU_USER, userPIN))
		assert.Equal(t, uint(pkcs11.CKS_RW_USER_FUNCTIONS), tk.state(s))
		assert.Equal(t, uint(pkcs11.CKS_RW_USER_FUNCTIONS), tk.state(s2), "the other session is logged in too")
		ro, err := p.OpenSession(tk.slot, pkcs11.CKF_SERIAL_SESSION)
		require.NoError(t, err)
		assert.Equal(t, uint(pkcs11.CKS_RO_USER_FUNCTIONS), tk.state(ro), "a new R/O session is logged in")
		require.NoError(t, p.CloseSession(ro))
		requireRV(t, p.Login(s2, pkcs11.CKU_USER, userPIN), pkcs11.CKR_USER_ALREADY_LOGGED_IN)
		requireRV(t, p.Login(s2, pkcs11.CKU_SO, soPIN), pkcs11.CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
		require.NoError(t, p.Logout(s2), "C_Logout on the other session")
		assert.Equal(t, uint(pkcs11.CKS_RW_PUBLIC_SESSION), tk.state(s), "logout on session 2 logs session 1 out")
		assert.Equal(t, uint(pkcs11.CKS_RW_PUBLIC_SESSION), tk.state(s2))
		requireRV(t, p.Logout(s), pkcs11.CKR_USER_NOT_LOGGED_IN)
		assert.Empty(t, tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)), "private keys visible after logout")
	})
}
