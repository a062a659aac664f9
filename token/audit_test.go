package token

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
	"gohsm/token/audit"
	"gohsm/token/store"
)

// auditLog reads slot 3's audit log, checking that its chain verifies.
func auditLog(t *testing.T, m *Module) []audit.Record {
	t.Helper()
	s, err := m.Slot(3)
	require.NoError(t, err)
	return verifiedLog(t, s.Store())
}

// auditMark is how many records the log has: what a test step adds comes
// after it (auditSince).
func auditMark(t *testing.T, m *Module) int { return len(auditLog(t, m)) }

func auditSince(t *testing.T, m *Module, from int) []audit.Event {
	t.Helper()
	var out []audit.Event
	for _, r := range auditLog(t, m)[from:] {
		out = append(out, r.Event)
	}
	return out
}

func opcodes(evs []audit.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Opcode.String())
	}
	return out
}

// oneEvent runs step and returns the one event it recorded.
func oneEvent(t *testing.T, m *Module, step func()) audit.Event {
	t.Helper()
	n := auditMark(t, m)
	step()
	evs := auditSince(t, m, n)
	require.Len(t, evs, 1, "events %v", opcodes(evs))
	return evs[0]
}

// TestAuditTokenInit: a new token's log starts at sequence 0 with
// CN_INIT_TOKEN and the officer's CN_CREATE_CO (as CloudHSM's first HSM
// does), then the officer's login, the crypto user's creation, and the
// session close that ended the login.
func TestAuditTokenInit(t *testing.T) {
	m, _ := newToken(t)
	recs := auditLog(t, m)
	var ops []string
	for _, r := range recs {
		ops = append(ops, r.Event.Opcode.String())
	}
	require.Equal(t, []string{"CN_INIT_TOKEN", "CN_CREATE_CO", "CN_LOGIN", "CN_CREATE_USER", "CN_CLOSE_SESSION"}, ops)
	init := recs[0].Event
	assert.Equal(t, "admin", init.User)
	assert.Equal(t, audit.CN_CRYPTO_OFFICER, init.UserType)
	assert.Equal(t, audit.MGMT_USER_DETAILS_LOG, init.LogType)
	assert.Equal(t, "HSM Return: SUCCESS", init.Response)
	assert.NotZero(t, init.TimeUS)
	assert.Equal(t, uint32(1), init.Reboot, "the token's first boot")
	for _, r := range recs {
		assert.Equal(t, init.Reboot, r.Event.Reboot, "one boot, one reboot counter")
	}
	cu := recs[3].Event
	assert.Equal(t, "user", cu.User)
	assert.Equal(t, audit.CN_CRYPTO_USER, cu.UserType)
	assert.Equal(t, "admin", cu.Actor)
	assert.NotZero(t, cu.Session)

	// A second opening in the same boot of the host: the same counter.
	m.Close()
	m2, err := Open(m.cfg)
	require.NoError(t, err)
	defer m2.Close()
	h := openRW(t, m2)
	e := oneEvent(t, m2, func() { require.NoError(t, m2.Login(h, ck.CKU_USER, []byte(userPIN))) })
	assert.Equal(t, init.Reboot, e.Reboot)
}

// TestAuditLogins: behaviour 28's responses: a wrong password is 163, an
// unknown user 157, the fifth failure locks (a lockout record), a locked
// user's attempt is refused and recorded; success, logout, and the end
// of the application (C_Finalize) without a logout.
func TestAuditLogins(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	e := oneEvent(t, m, func() {
		require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("user:wrong-pw-1")), ck.CKR_PIN_INCORRECT)
	})
	assert.Equal(t, audit.CN_LOGIN, e.Opcode)
	assert.Equal(t, 163, e.Code)
	assert.Equal(t, "HSM Error: RET_USER_LOGIN_FAILURE", e.Response)
	assert.Equal(t, "user", e.User)
	assert.Equal(t, audit.CN_CRYPTO_USER, e.UserType)
	assert.Equal(t, uint64(h), e.Session)

	e = oneEvent(t, m, func() {
		require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("nobody:wrong-pw-1")), ck.CKR_PIN_INCORRECT)
	})
	assert.Equal(t, 157, e.Code)
	assert.Equal(t, "HSM Error: user isn't initialized or user with this name doesn't exist", e.Response)
	assert.Equal(t, "nobody", e.User)

	e = oneEvent(t, m, func() { require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN))) })
	assert.Equal(t, audit.CN_LOGIN, e.Opcode)
	assert.Equal(t, 0, e.Code)
	e = oneEvent(t, m, func() { require.NoError(t, m.Logout(h)) })
	assert.Equal(t, audit.CN_LOGOUT, e.Opcode)
	assert.Equal(t, "user", e.User)

	// Lockout: five wrong passwords, the fifth also records the lockout.
	n := auditMark(t, m)
	for i := 0; i < 5; i++ {
		require.Error(t, m.Login(h, ck.CKU_USER, []byte("user:wrong-pw-1")))
	}
	evs := auditSince(t, m, n)
	require.Equal(t, []string{"CN_LOGIN", "CN_LOGIN", "CN_LOGIN", "CN_LOGIN", "CN_LOGIN", "CN_LOGIN"}, opcodes(evs))
	for _, e := range evs[:5] {
		assert.Equal(t, 163, e.Code)
	}
	assert.Equal(t, audit.RespUserLocked, evs[5].Code)
	assert.Contains(t, evs[5].Detail, "locked after 5")
	e = oneEvent(t, m, func() { require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte(userPIN)), ck.CKR_PIN_LOCKED) })
	assert.Equal(t, audit.RespUserLocked, e.Code)

	// The officer's login, then C_Finalize without a logout.
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	n = auditMark(t, m)
	require.NoError(t, m.Close())
	m2, err := Open(m.cfg)
	require.NoError(t, err)
	defer m2.Close()
	evs = auditSince(t, m2, n)
	require.Equal(t, []string{"CN_APP_FINALIZE"}, opcodes(evs))
	assert.Equal(t, "admin", evs[0].User)
}

// TestAuditUsers: user creation (crypto user CN_CREATE_USER, officer
// CN_CREATE_CO), password changes, deletion, and the refusals: an
// existing name, deleting a key owner, oneself, an unknown user, changing
// the password of a user logged in elsewhere (cloudhsm).
func TestAuditUsers(t *testing.T) {
	for _, prof := range []string{"standard", "cloudhsm"} {
		t.Run(prof, func(t *testing.T) {
			m, h := profileToken(t, prof)
			e := oneEvent(t, m, func() { require.NoError(t, m.CreateUser(h, "bob", store.RoleCU, []byte("bob-pw-12"))) })
			assert.Equal(t, audit.CN_CREATE_USER, e.Opcode)
			assert.Equal(t, "bob", e.User)
			assert.Equal(t, "admin", e.Actor)
			e = oneEvent(t, m, func() { require.NoError(t, m.CreateUser(h, "officer2", store.RoleCO, []byte("officer-pw-2"))) })
			assert.Equal(t, audit.CN_CREATE_CO, e.Opcode)
			assert.Equal(t, audit.CN_CRYPTO_OFFICER, e.UserType)
			e = oneEvent(t, m, func() { require.Error(t, m.CreateUser(h, "bob", store.RoleCU, []byte("bob-pw-12"))) })
			assert.Equal(t, audit.CN_CREATE_USER, e.Opcode)
			assert.NotEqual(t, 0, e.Code)

			e = oneEvent(t, m, func() { require.NoError(t, m.ChangePassword(h, "bob", []byte("bob-pw-34"))) })
			assert.Equal(t, audit.CN_CHANGE_PSWD, e.Opcode)
			assert.Equal(t, "bob", e.User)
			assert.Equal(t, 0, e.Code)

			e = oneEvent(t, m, func() { require.Error(t, m.DeleteUser(h, "admin")) })
			assert.Equal(t, audit.CN_DELETE_USER, e.Opcode)
			assert.Equal(t, audit.RespUserInUse, e.Code)
			e = oneEvent(t, m, func() { require.Error(t, m.DeleteUser(h, "ghost")) })
			assert.Equal(t, audit.RespNoUser, e.Code)

			// alice owns a key: her deletion is refused and recorded.
			m2 := profileModule(t, m.cfg.TokenDir, prof)
			h2 := openRW(t, m2)
			require.NoError(t, m2.Login(h2, ck.CKU_USER, []byte("alice:alice-pw-1")))
			_, err := m2.GenerateKey(h2, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("k", true))
			require.NoError(t, err)
			if prof == "cloudhsm" {
				// Logged in elsewhere: her password cannot change.
				e = oneEvent(t, m, func() { require.Error(t, m.ChangePassword(h, "alice", []byte("alice-pw-2"))) })
				assert.Equal(t, audit.CN_CHANGE_PSWD, e.Opcode)
				assert.Equal(t, audit.RespUserInUse, e.Code)
			}
			require.NoError(t, m2.Close())
			e = oneEvent(t, m, func() { require.Error(t, m.DeleteUser(h, "alice")) })
			assert.Equal(t, audit.CN_DELETE_USER, e.Opcode)
			assert.Equal(t, audit.RespUserInUse, e.Code)
			assert.Contains(t, e.Detail, "owns objects")

			e = oneEvent(t, m, func() { require.NoError(t, m.DeleteUser(h, "bob")) })
			assert.Equal(t, audit.CN_DELETE_USER, e.Opcode)
			assert.Equal(t, 0, e.Code)
			assert.Equal(t, "bob", e.User)
		})
	}
}

// TestAuditKeys: every key management call records its event with the
// key handles: generate (token and session key), generate a pair (both
// handles), create, modify, wrap (once, though the caller asks for the
// length first), unwrap, derive, share and unshare, destroy (token key
// CN_TOMBSTONE_OBJECT, session key CN_DESTROY_OBJECT), an officer's
// CKA_TRUSTED, and the refusal of a delete by a user who does not own the
// key.
func TestAuditKeys(t *testing.T) {
	m, so := profileToken(t, "standard")
	require.NoError(t, m.CreateUser(so, "bob", store.RoleCU, []byte("bob-pw-12")))
	require.NoError(t, m.Logout(so))
	h := so
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("alice:alice-pw-1")))

	var tok, sess ck.ULong
	e := oneEvent(t, m, func() {
		var err error
		tmpl := aesTemplate("kek", true)
		tmpl[ck.CKA_EXTRACTABLE] = attrs.Bool(true)
		tok, err = m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmpl)
		require.NoError(t, err)
	})
	assert.Equal(t, audit.CN_GENERATE_KEY, e.Opcode)
	assert.Equal(t, audit.MGMT_KEY_DETAILS_LOG, e.LogType)
	assert.Equal(t, uint64(tok), e.Key)
	assert.Equal(t, "alice", e.Actor)
	e = oneEvent(t, m, func() {
		var err error
		sess, err = m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, extractableAES("target"))
		require.NoError(t, err)
	})
	assert.Equal(t, audit.CN_GENERATE_KEY, e.Opcode)
	assert.Equal(t, uint64(sess), e.Key, "a session key's handle")

	var pub, priv ck.ULong
	e = oneEvent(t, m, func() { pub, priv = ecKeyPair(t, m, h, "pair") })
	assert.Equal(t, audit.CN_GENERATE_KEY_PAIR, e.Opcode)
	assert.Equal(t, uint64(priv), e.Key)
	assert.Equal(t, uint64(pub), e.PublicKey)

	// A pair whose halves differ in CKA_TOKEN: the token half's handle is
	// made in the store's transaction, the session half's before it.
	e = oneEvent(t, m, func() {
		var err error
		pub, priv, err = m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
			attrs.Template{ck.CKA_EC_PARAMS: p256, ck.CKA_TOKEN: attrs.Bool(false)}, attrs.Template{ck.CKA_TOKEN: attrs.Bool(true)})
		require.NoError(t, err)
	})
	assert.Equal(t, uint64(priv), e.Key)
	assert.Equal(t, uint64(pub), e.PublicKey)
	assert.GreaterOrEqual(t, e.PublicKey, uint64(sessionObjectBase))
	assert.Less(t, e.Key, uint64(sessionObjectBase))

	var created ck.ULong
	e = oneEvent(t, m, func() {
		var err error
		created, err = m.CreateObject(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)),
			ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)), ck.CKA_VALUE: make([]byte, 16), ck.CKA_TOKEN: attrs.Bool(true)})
		require.NoError(t, err)
	})
	assert.Equal(t, audit.CN_CREATE_OBJECT, e.Opcode)
	assert.Equal(t, uint64(created), e.Key)

	e = oneEvent(t, m, func() {
		require.NoError(t, m.SetAttributeValue(h, tok, attrs.Template{ck.CKA_LABEL: []byte("renamed")}))
	})
	assert.Equal(t, audit.CN_MODIFY_OBJECT, e.Opcode)
	assert.Equal(t, uint64(tok), e.Key)
	assert.Equal(t, "CKA_LABEL", e.Detail)

	kw := Mechanism{Type: ck.CKM_AES_KEY_WRAP}
	wrapped := make([]byte, 40)
	e = oneEvent(t, m, func() {
		_, err := m.WrapKey(h, kw, tok, sess, Out{Query: true})
		require.NoError(t, err)
		_, err = m.WrapKey(h, kw, tok, sess, Out{Buf: wrapped})
		require.NoError(t, err)
	})
	assert.Equal(t, audit.CN_WRAP_KEY, e.Opcode)
	assert.Equal(t, uint64(sess), e.Key)
	var un ck.ULong
	e = oneEvent(t, m, func() {
		var err error
		un, err = m.UnwrapKey(h, kw, tok, wrapped, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)),
			ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)), ck.CKA_TOKEN: attrs.Bool(true)})
		require.NoError(t, err)
	})
	assert.Equal(t, audit.CN_UNWRAP_KEY, e.Opcode)
	assert.Equal(t, uint64(un), e.Key)

	_, ecPriv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, attrs.Template{ck.CKA_EC_PARAMS: p256},
		attrs.Template{ck.CKA_DERIVE: attrs.Bool(true)})
	require.NoError(t, err)
	r, err := m.GetAttributeValue(h, ecPriv, []ck.AttributeType{ck.CKA_EC_POINT})
	require.NoError(t, err)
	var derived ck.ULong
	e = oneEvent(t, m, func() {
		derived, err = m.DeriveKey(h, Mechanism{Type: ck.CKM_ECDH1_DERIVE, Param: &mechanisms.ECDH1Params{KDF: ck.CKD_NULL, PublicData: r[0].Value}}, ecPriv,
			attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)), ck.CKA_VALUE_LEN: attrs.ULong(16)})
		require.NoError(t, err)
	})
	assert.Equal(t, audit.CN_DERIVE_KEY, e.Opcode)
	assert.Equal(t, uint64(derived), e.Key)

	e = oneEvent(t, m, func() { require.NoError(t, m.Share(h, tok, "bob", true)) })
	assert.Equal(t, audit.CN_SHARE_OBJECT, e.Opcode)
	assert.Equal(t, uint64(tok), e.Key)
	assert.Equal(t, "shared with bob", e.Detail)
	e = oneEvent(t, m, func() { require.NoError(t, m.Share(h, tok, "bob", false)) })
	assert.Equal(t, audit.CN_SHARE_OBJECT, e.Opcode)
	assert.Equal(t, "unshared from bob", e.Detail)
	require.NoError(t, m.Share(h, tok, "bob", true))

	e = oneEvent(t, m, func() { require.NoError(t, m.DestroyObject(h, sess)) })
	assert.Equal(t, audit.CN_DESTROY_OBJECT, e.Opcode)
	assert.Equal(t, uint64(sess), e.Key)
	e = oneEvent(t, m, func() { require.NoError(t, m.DestroyObject(h, created)) })
	assert.Equal(t, audit.CN_TOMBSTONE_OBJECT, e.Opcode)
	assert.Equal(t, uint64(created), e.Key)
	e = oneEvent(t, m, func() { require.ErrorIs(t, m.DestroyObject(h, created), ck.CKR_OBJECT_HANDLE_INVALID) })
	assert.Equal(t, audit.CN_TOMBSTONE_OBJECT, e.Opcode)
	assert.Equal(t, 0xa8, e.Code)
	assert.Equal(t, "HSM Error: Invalid object handle is passed to this operation", e.Response)

	// bob, a sharee, may not delete alice's key: refused, recorded.
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("bob:bob-pw-12")))
	e = oneEvent(t, m, func() { require.ErrorIs(t, m.DestroyObject(h, tok), ck.CKR_ACTION_PROHIBITED) })
	assert.Equal(t, audit.CN_TOMBSTONE_OBJECT, e.Opcode)
	assert.Equal(t, 0xc6, e.Code)
	assert.Equal(t, "HSM Error: Key Access is denied.", e.Response)
	assert.Equal(t, "bob", e.Actor)

	// The officer marks a key trusted.
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte("admin:officer-pw")))
	e = oneEvent(t, m, func() { require.NoError(t, m.SetTrusted(h, tok, true)) })
	assert.Equal(t, audit.CN_MODIFY_OBJECT, e.Opcode)
	assert.Equal(t, "CKA_TRUSTED", e.Detail)
	assert.Equal(t, "admin", e.Actor)
}

// TestAuditNoCryptoEvents: encrypt, decrypt, sign, verify, digest, HMAC,
// random and object reads record nothing (CloudHSM logs management
// commands only, behaviour 28).
func TestAuditNoCryptoEvents(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	aes, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("aes", true))
	require.NoError(t, err)
	_, priv := ecKeyPair(t, m, h, "ec")
	n := auditMark(t, m)

	gcm := Mechanism{Type: ck.CKM_AES_GCM, Param: gcmParamsValue()}
	require.NoError(t, m.EncryptInit(h, gcm, aes))
	ct := make([]byte, 64)
	k, err := m.Encrypt(h, []byte("hello"), Out{Buf: ct})
	require.NoError(t, err)
	require.NoError(t, m.DecryptInit(h, gcm, aes))
	_, err = m.Decrypt(h, ct[:k], Out{Buf: make([]byte, 64)})
	require.NoError(t, err)
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA}, priv))
	sig := make([]byte, 64)
	_, err = m.Sign(h, make([]byte, 32), Out{Buf: sig})
	require.NoError(t, err)
	require.NoError(t, m.DigestInit(h, Mechanism{Type: ck.CKM_SHA256}))
	_, err = m.Digest(h, []byte("x"), Out{Buf: make([]byte, 32)})
	require.NoError(t, err)
	require.NoError(t, m.GenerateRandom(h, make([]byte, 16)))
	_, err = m.GetAttributeValue(h, aes, []ck.AttributeType{ck.CKA_LABEL})
	require.NoError(t, err)
	require.NoError(t, m.FindObjectsInit(h, nil))
	_, err = m.FindObjects(h, 10)
	require.NoError(t, err)
	require.NoError(t, m.FindObjectsFinal(h))
	h2 := openRW(t, m)
	require.NoError(t, m.CloseSession(h2))

	assert.Empty(t, opcodes(auditSince(t, m, n)), "crypto operations, reads and sessions record nothing")
}

// TestAuditQuotaRefusal: a key the profile's quota refuses is recorded
// with the refusal.
func TestAuditQuotaRefusal(t *testing.T) {
	m, h := attrsTestToken(t, "cloudhsm", "test_max_keys = 1")
	_, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("one", true))
	require.NoError(t, err)
	e := oneEvent(t, m, func() {
		_, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("two", true))
		require.ErrorIs(t, err, ck.CKR_FUNCTION_FAILED)
	})
	assert.Equal(t, audit.CN_GENERATE_KEY, e.Opcode)
	assert.Equal(t, audit.RespQuota, e.Code)
	assert.NotEmpty(t, e.Detail)
}

// TestAuditSetPINAndReset: C_SetPIN checks the old password (a login
// attempt, which counts towards the lockout and is recorded as one) and
// changes the password; a token deleted and made again starts a new log from
// sequence 0 with a reboot counter of its own (the log goes with the
// token's file: deleting a token deletes its audit log).
func TestAuditSetPINAndReset(t *testing.T) {
	skipOnPostgres(t, "it edits the SQLite token file")
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	n := auditMark(t, m)
	require.NoError(t, m.SetPIN(h, []byte("user-pw-1"), []byte("user-pw-2")))
	evs := auditSince(t, m, n)
	require.Equal(t, []string{"CN_LOGIN", "CN_CHANGE_PSWD"}, opcodes(evs))
	assert.Equal(t, "user", evs[1].User)
	require.NoError(t, m.Close())

	// As if the host rebooted since: the next opening counts 2. It deletes
	// the token and makes it again: the new token's counter starts at 1.
	raw, err := sql.Open("sqlite", filepath.Join(m.cfg.Slots[0].Dir, store.DBName))
	require.NoError(t, err)
	_, err = raw.Exec(`UPDATE meta SET value = 'a boot before' WHERE key = 'audit_boot_id'`)
	require.NoError(t, err)
	require.NoError(t, raw.Close())
	m2, err := Open(m.cfg)
	require.NoError(t, err)
	defer m2.Close()
	h2 := openRW(t, m2)
	e := oneEvent(t, m2, func() { require.NoError(t, m2.Login(h2, ck.CKU_USER, []byte("user:user-pw-2"))) })
	require.Equal(t, uint32(2), e.Reboot)
	require.NoError(t, m2.CloseSession(h2))
	s, err := m2.Slot(3)
	require.NoError(t, err)
	require.NoError(t, s.DeleteToken([]byte(soPIN)))
	require.NoError(t, s.InitToken([]byte(soPIN), "again"))
	recs := auditLog(t, m2)
	require.Len(t, recs, 2)
	assert.Equal(t, audit.CN_INIT_TOKEN, recs[0].Event.Opcode)
	assert.Equal(t, uint32(1), recs[0].Event.Reboot)
}

// TestAuditKeysCloudHSM: the key events in the cloudhsm profile, as its
// tools make them (key set-attribute is SetKeyAttributes), and no event
// for its crypto calls.
func TestAuditKeysCloudHSM(t *testing.T) {
	m, so := profileToken(t, "cloudhsm")
	require.NoError(t, m.CreateUser(so, "bob", store.RoleCU, []byte("bob-pw-12")))
	require.NoError(t, m.Logout(so))
	h := so
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("alice:alice-pw-1")))
	n0, n1 := len(streamLog(t, m, "hsm-0")), len(streamLog(t, m, "hsm-1"))
	tmpl := aesTemplate("k", true)
	tmpl[ck.CKA_ENCRYPT] = attrs.Bool(true)
	k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmpl)
	require.NoError(t, err)
	pub, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_EC_PARAMS: p256, ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_VERIFY: attrs.Bool(true)},
		attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true)})
	require.NoError(t, err)
	_, err = m.SetKeyAttributes(h, k, attrs.Template{ck.CKA_LABEL: []byte("k2")})
	require.NoError(t, err)
	require.NoError(t, m.Share(h, k, "bob", true))
	require.NoError(t, m.Share(h, k, "bob", false))

	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA}, priv))
	_, err = m.Sign(h, make([]byte, 32), Out{Buf: make([]byte, 64)})
	require.NoError(t, err)
	gcm := Mechanism{Type: ck.CKM_AES_GCM, Param: &mechanisms.GCMParams{IV: make([]byte, 12), TagBits: 128}}
	require.NoError(t, m.EncryptInit(h, gcm, k))
	_, err = m.Encrypt(h, []byte("x"), Out{Buf: make([]byte, 64)})
	require.NoError(t, err)

	require.NoError(t, m.DestroyObject(h, pub))
	// The cloudhsm profile's cluster has 2 HSMs: each new token key is
	// made on one (the creating opcode, then CN_EXTRACT_MASKED_OBJECT_USER)
	// and inserted into the other; changes to token keys are in both.
	streams := [][]audit.Event{streamLog(t, m, "hsm-0")[n0:], streamLog(t, m, "hsm-1")[n1:]}
	made := map[string][]audit.Event{}
	for i, evs := range streams {
		var mgmt []audit.Event
		for j := 0; j < len(evs); j++ {
			switch e := evs[j]; e.Opcode {
			case audit.CN_GENERATE_KEY, audit.CN_GENERATE_KEY_PAIR:
				require.Less(t, j+1, len(evs), "stream %d", i)
				assert.Equal(t, audit.CN_EXTRACT_MASKED_OBJECT_USER, evs[j+1].Opcode, "stream %d", i)
				assert.Equal(t, [2]uint64{e.Key, e.PublicKey}, [2]uint64{evs[j+1].Key, evs[j+1].PublicKey})
				made[e.Opcode.String()] = append(made[e.Opcode.String()], e)
				j++
			case audit.CN_INSERT_MASKED_OBJECT_USER:
				made["insert"] = append(made["insert"], e)
			default:
				mgmt = append(mgmt, e)
			}
		}
		require.Equal(t, []string{"CN_MODIFY_OBJECT", "CN_SHARE_OBJECT", "CN_SHARE_OBJECT", "CN_TOMBSTONE_OBJECT"}, opcodes(mgmt), "stream %d", i)
		assert.Equal(t, uint64(pub), mgmt[3].Key)
	}
	require.Len(t, made["CN_GENERATE_KEY"], 1)
	require.Len(t, made["CN_GENERATE_KEY_PAIR"], 1)
	require.Len(t, made["insert"], 2, "each new key inserted into the other HSM")
	assert.Equal(t, uint64(k), made["CN_GENERATE_KEY"][0].Key)
	assert.Equal(t, uint64(priv), made["CN_GENERATE_KEY_PAIR"][0].Key)
	assert.Equal(t, uint64(pub), made["CN_GENERATE_KEY_PAIR"][0].PublicKey)
	inserted := map[[2]uint64]bool{}
	for _, e := range made["insert"] {
		inserted[[2]uint64{e.Key, e.PublicKey}] = true
	}
	assert.Equal(t, map[[2]uint64]bool{{uint64(k), 0}: true, {uint64(priv), uint64(pub)}: true}, inserted)
}

// streamLog is one audit stream of slot 3, verified, gap-free from 0.
func streamLog(t *testing.T, m *Module, stream string) []audit.Event {
	t.Helper()
	s, err := m.Slot(3)
	require.NoError(t, err)
	c, err := audit.Load(s.Store(), stream)
	require.NoError(t, err)
	_, err = audit.Verify(c)
	require.NoError(t, err)
	out := make([]audit.Event, len(c.Records))
	for i, r := range c.Records {
		require.Equal(t, uint64(i), r.Seq, "gap-free from 0")
		out[i] = r.Event
	}
	return out
}
