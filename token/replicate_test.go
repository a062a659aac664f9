package token

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
	"gohsm/token/audit"
	"gohsm/token/store"
)

// twoTokens opens a module with slots 3 and 4, each an initialised token
// with officer "admin", crypto user "user" (userPIN), and the given crypto
// users (password name+"-pw-12").
func twoTokens(t *testing.T, prof string, users3, users4 []string) *Module {
	t.Helper()
	dir := t.TempDir()
	cfg, err := ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_level = error\n[slot 3]\nlabel = a\nprofile = %s\n[slot 4]\nlabel = b\nprofile = %s\n", dir, prof, prof), "test")
	require.NoError(t, err)
	m, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	for slot, users := range map[ck.ULong][]string{3: users3, 4: users4} {
		s, err := m.Slot(slot)
		require.NoError(t, err)
		require.NoError(t, s.InitToken([]byte(soPIN), fmt.Sprint("tok", slot)))
		h, err := m.OpenSession(slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		require.NoError(t, err)
		require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
		require.NoError(t, m.CreateUser(h, "user", store.RoleCU, []byte("user-pw-1")))
		for _, u := range users {
			require.NoError(t, m.CreateUser(h, u, store.RoleCU, []byte(u+"-pw-12")))
		}
		require.NoError(t, m.CloseSession(h))
	}
	return m
}

func session(t *testing.T, m *Module, slot ck.ULong, ut ck.UserType, pin string) ck.ULong {
	t.Helper()
	h, err := m.OpenSession(slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ut, []byte(pin)))
	return h
}

// TestReplicateKey: a key replicated to another token keeps its
// attributes, owner and shares, and works there: a signature made with
// the source's private key verifies with the replicated public key, and
// a sharee signs with the replicated private key (CloudHSM key replicate,
// behaviour 33).
func TestReplicateKey(t *testing.T) {
	for _, prof := range []string{"standard", "cloudhsm"} {
		t.Run(prof, func(t *testing.T) { testReplicateKey(t, prof) })
	}
}

func testReplicateKey(t *testing.T, prof string) {
	m := twoTokens(t, prof, []string{"bob"}, []string{"bob"})
	src := session(t, m, 3, ck.CKU_USER, userPIN)
	dst := session(t, m, 4, ck.CKU_USER, userPIN)
	pub, priv := signingPair(t, m, src, "rep")
	require.NoError(t, m.Share(src, priv, "bob", true))
	secret, err := m.CreateObject(src, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
		ck.CKA_VALUE: []byte("0123456789abcdef0123456789abcdef"), ck.CKA_TOKEN: attrs.Bool(true),
		ck.CKA_LABEL: []byte("aes-rep"), ck.CKA_SENSITIVE: attrs.Bool(false), ck.CKA_EXTRACTABLE: attrs.Bool(true)})
	require.NoError(t, err)

	// A key quorum on the private key, as engineer B's table keeps it
	// (use 1: the replica is still used below without approvals).
	s3, _ := m.Slot(3)
	s4, _ := m.Slot(4)
	execSQL(t, s3.Config().Dir, fmt.Sprintf(`INSERT INTO key_quorum (object_id, use_value, manage_value) VALUES (%d, 1, 3)`, priv))

	rp, err := m.ReplicateKey(src, priv, dst)
	require.NoError(t, err)
	assert.Equal(t, 1, rp.UseQuorum)
	assert.Equal(t, 3, rp.ManageQuorum)
	rpriv := rp.Handle
	rq, err := m.ReplicateKey(src, pub, dst)
	require.NoError(t, err)
	assert.Zero(t, rq.UseQuorum, "no key quorum")
	rpub := rq.Handle
	rs, err := m.ReplicateKey(src, secret, dst)
	require.NoError(t, err)
	rsec := rs.Handle
	assert.Equal(t, []string{fmt.Sprintf("%x", fmt.Sprint(rpriv, 1, 3))},
		rows(t, s4.Config().Dir, `SELECT object_id, use_value, manage_value FROM key_quorum`), "the key quorum row is copied")

	for from, to := range map[ck.ULong]ck.ULong{priv: rpriv, pub: rpub, secret: rsec} {
		a, err := s3.Store().Object(int64(from))
		require.NoError(t, err)
		b, err := s4.Store().Object(int64(to))
		require.NoError(t, err)
		assert.Equal(t, a.Attrs, b.Attrs, "attributes")
		assert.Equal(t, a.Sealed, b.Sealed, "sealed values, as they are")
		assert.Equal(t, a.UniqueID, b.UniqueID)
		assert.Equal(t, "user", b.Owner)
		shA, _ := s3.Store().SharedWith(int64(from))
		shB, _ := s4.Store().SharedWith(int64(to))
		assert.Equal(t, shA, shB, "shares")
	}
	assert.Equal(t, []byte("0123456789abcdef0123456789abcdef"), value(t, m, dst, rsec), "the owner reads the value on the destination")

	msg := []byte("replicated")
	require.NoError(t, m.SignInit(src, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv))
	sig := make([]byte, 64)
	n, err := m.Sign(src, msg, Out{Buf: sig})
	require.NoError(t, err)
	require.NoError(t, m.VerifyInit(dst, Mechanism{Type: ck.CKM_ECDSA_SHA256}, rpub))
	require.NoError(t, m.Verify(dst, msg, sig[:n]))
	require.NoError(t, m.Logout(dst))
	require.NoError(t, m.Login(dst, ck.CKU_USER, []byte("bob:bob-pw-12")))
	require.NoError(t, m.SignInit(dst, Mechanism{Type: ck.CKM_ECDSA_SHA256}, rpriv))
	n, err = m.Sign(dst, msg, Out{Buf: sig})
	require.NoError(t, err)
	require.NoError(t, m.VerifyInit(src, Mechanism{Type: ck.CKM_ECDSA_SHA256}, pub))
	require.NoError(t, m.Verify(src, msg, sig[:n]), "the sharee's signature with the replica verifies with the original")

	// Again: the destination holds the key already.
	require.NoError(t, m.Logout(dst))
	require.NoError(t, m.Login(dst, ck.CKU_USER, []byte(userPIN)))
	_, err = m.ReplicateKey(src, priv, dst)
	require.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD)
	assert.Contains(t, err.Error(), "holds this key already")

	// Audited on both sides, with each side's handle of the key.
	keysOf := func(s *Slot, op audit.Opcode) []ck.ULong {
		var out []ck.ULong
		for _, ev := range auditRecords(t, s.Store()) {
			// In a cluster a new token key is extracted and inserted too
			// (generate + extract on one HSM): only the replication's.
			if ev.Opcode == op && strings.HasPrefix(ev.Detail, "key replicate") {
				out = append(out, ck.ULong(ev.Key))
			}
		}
		return out
	}
	assert.Equal(t, []ck.ULong{priv, pub, secret}, keysOf(s3, audit.CN_EXTRACT_MASKED_OBJECT_USER))
	assert.Equal(t, []ck.ULong{rpriv, rpub, rsec}, keysOf(s4, audit.CN_INSERT_MASKED_OBJECT_USER))
}

// TestReplicateKeyMissingUsers: the owner and every sharee must exist on
// the destination, else nothing is copied; a crypto user must own the key;
// an officer may replicate any crypto user's key.
func TestReplicateKeyMissingUsers(t *testing.T) {
	for _, prof := range []string{"standard", "cloudhsm"} {
		t.Run(prof, func(t *testing.T) { testReplicateKeyMissingUsers(t, prof) })
	}
}

func testReplicateKeyMissingUsers(t *testing.T, prof string) {
	m := twoTokens(t, prof, []string{"bob", "carol"}, []string{"bob"})
	src := session(t, m, 3, ck.CKU_USER, userPIN)
	_, priv := signingPair(t, m, src, "rep")
	_, lonely := signingPair(t, m, src, "lonely")
	require.NoError(t, m.Share(src, priv, "bob", true))
	require.NoError(t, m.Share(src, priv, "carol", true))
	s4, _ := m.Slot(4)
	count := func() int { return len(objectIDs(t, s4.Config().Dir)) }

	dst := session(t, m, 4, ck.CKU_USER, userPIN)
	_, err := m.ReplicateKey(src, priv, dst)
	require.ErrorIs(t, err, ErrReplicaUser)
	require.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD)
	assert.Contains(t, err.Error(), `A user the key is shared with, "carol", must exist on the destination cluster`)
	assert.Equal(t, 0, count(), "nothing copied")

	// The owner missing: a key of bob's, replicated by an officer, to a
	// token without bob.
	m2 := twoTokens(t, prof, []string{"bob"}, nil)
	bob := session(t, m2, 3, ck.CKU_USER, "bob:bob-pw-12")
	_, bobKey := signingPair(t, m2, bob, "bobs")
	require.NoError(t, m2.Logout(bob))
	co := session(t, m2, 3, ck.CKU_SO, soPIN)
	dst2 := session(t, m2, 4, ck.CKU_SO, soPIN)
	_, err = m2.ReplicateKey(co, bobKey, dst2)
	require.ErrorIs(t, err, ErrReplicaUser)
	assert.Contains(t, err.Error(), `The owner of the key, "bob", must exist on the destination cluster`)

	// A crypto user may replicate only what it owns.
	require.NoError(t, m.Logout(src))
	require.NoError(t, m.Login(src, ck.CKU_USER, []byte("bob:bob-pw-12")))
	_, err = m.ReplicateKey(src, priv, dst)
	require.ErrorIs(t, err, ck.CKR_ACTION_PROHIBITED)
	require.NoError(t, m.Logout(src))

	// An officer on both sides replicates user's key (through the escrow).
	require.NoError(t, m.Login(src, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.Logout(dst))
	require.NoError(t, m.Login(dst, ck.CKU_SO, []byte(soPIN)))
	r, err := m.ReplicateKey(src, lonely, dst)
	require.NoError(t, err)
	h := r.Handle
	require.NoError(t, m.Logout(dst))
	require.NoError(t, m.Login(dst, ck.CKU_USER, []byte(userPIN)))
	require.NoError(t, m.SignInit(dst, Mechanism{Type: ck.CKM_ECDSA_SHA256}, h))
	_, err = m.Sign(dst, []byte("x"), Out{Buf: make([]byte, 64)})
	require.NoError(t, err, "the owner uses the key an officer replicated")

	// Only token keys: not a session key, not a data object.
	require.NoError(t, m.Logout(src))
	require.NoError(t, m.Login(src, ck.CKU_USER, []byte(userPIN)))
	require.NoError(t, m.Logout(dst))
	require.NoError(t, m.Login(dst, ck.CKU_USER, []byte(userPIN)))
	sess, err := m.GenerateKey(src, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("session", false))
	require.NoError(t, err)
	_, err = m.ReplicateKey(src, sess, dst)
	require.ErrorIs(t, err, ck.CKR_KEY_HANDLE_INVALID)
	data, err := m.CreateObject(src, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA)), ck.CKA_TOKEN: attrs.Bool(true)})
	require.NoError(t, err)
	_, err = m.ReplicateKey(src, data, dst)
	require.ErrorIs(t, err, ck.CKR_KEY_HANDLE_INVALID)
	_, err = m.ReplicateKey(src, 4242, dst)
	require.ErrorIs(t, err, ck.CKR_KEY_HANDLE_INVALID)
	_, err = m.ReplicateKey(src, lonely, src)
	require.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD, "the same token")

	// Not logged in on the destination.
	require.NoError(t, m.Logout(dst))
	_, err = m.ReplicateKey(src, lonely, dst)
	require.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN)
}

// TestReplicateMLDSAToHSM1: ML-DSA keys exist on hsm2m.medium clusters only
// (CloudHSM: "ML-DSA is available in FIPS mode for hsm2m.medium
// clusters"; cloudhsm-facts §1.7), so key replicate of an ML-DSA key made
// by CloudHSM CLI on an hsm2m token to a destination whose hsm_type is
// hsm1 is refused with the reason, and nothing is stored there; to an
// hsm2m destination the same keys replicate.
func TestReplicateMLDSAToHSM1(t *testing.T) {
	dir := t.TempDir()
	cfg, err := ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_level = error\n"+
		"[slot 3]\nlabel = a\nprofile = cloudhsm\n"+
		"[slot 4]\nlabel = b\nprofile = cloudhsm\nhsm_type = hsm1\n"+
		"[slot 5]\nlabel = c\nprofile = cloudhsm\nhsm_type = hsm2m\n", dir), "test")
	require.NoError(t, err)
	m, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	for _, slot := range []ck.ULong{3, 4, 5} {
		s, err := m.Slot(slot)
		require.NoError(t, err)
		require.NoError(t, s.InitToken([]byte(soPIN), fmt.Sprint("tok", slot)))
		h, err := m.OpenSession(slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		require.NoError(t, err)
		require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
		require.NoError(t, m.CreateUser(h, "user", store.RoleCU, []byte("user-pw-1")))
		require.NoError(t, m.CloseSession(h))
	}
	src := session(t, m, 3, ck.CKU_USER, userPIN)
	pub, priv, err := m.CLIGenerateKeyPair(src, Mechanism{Type: ck.CKM_ML_DSA_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_VERIFY: attrs.Bool(true),
			ck.CKA_PARAMETER_SET: attrs.ULong(ck.CKP_ML_DSA_65), ck.CKA_LABEL: []byte("pq-pub")},
		attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true), ck.CKA_LABEL: []byte("pq")})
	require.NoError(t, err)

	hsm1 := session(t, m, 4, ck.CKU_USER, userPIN)
	s4, _ := m.Slot(4)
	for _, key := range []ck.ULong{priv, pub} {
		_, err := m.ReplicateKey(src, key, hsm1)
		require.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, "key %d to hsm1", key)
		assert.Contains(t, err.Error(), "the destination cannot hold the key: profile: ML-DSA keys are available on hsm2m.medium clusters only, this HSM is hsm1.medium")
	}
	n, err := s4.Store().CountOwned("user")
	require.NoError(t, err)
	assert.Zero(t, n, "nothing stored on the hsm1 destination")

	hsm2m := session(t, m, 5, ck.CKU_USER, userPIN)
	for _, key := range []ck.ULong{priv, pub} {
		_, err := m.ReplicateKey(src, key, hsm2m)
		require.NoError(t, err, "key %d to hsm2m", key)
	}
}
