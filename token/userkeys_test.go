package token

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
	"gohsm/token/store"
)

// offlineOpen is an attacker with a copy of every token file and one
// user's password, and no module: it tries every route the token formats
// offer (a format-1 token key, a format-2 user secret, what an upgrade
// left sealed under a token key, the escrow) to open the sealed values of
// every object in the store's records. It returns the labels of the
// objects whose every sealed value it opened.
func offlineOpen(t *testing.T, st store.Store, name, password string) []string {
	t.Helper()
	u, err := st.User(name)
	require.NoError(t, err)
	kek := store.DeriveKEK([]byte(password), u.Salt, u.KDF)
	var tokenKeys [][]byte
	rings := map[string]*store.Keyring{} // user name -> keyring opened for them
	escrow := false
	addSecret := func(sec []byte) {
		kr, err := store.NewKeyring(sec)
		require.NoError(t, err)
		if u.Role == store.RoleCO {
			escrow = true
			rings["\x00escrow"] = kr
		} else {
			rings[name] = kr
		}
	}
	if tk, err := store.UnwrapTokenKey(kek, u.WrappedKey, name); err == nil {
		tokenKeys = append(tokenKeys, tk)
	}
	if sec, err := store.UnwrapUserSecret(kek, u.WrappedKey, name); err == nil {
		addSecret(sec)
	}
	users, err := st.Users()
	require.NoError(t, err)
	for _, tk := range tokenKeys { // an upgrade's leftovers, for any user
		for _, o := range users {
			if sec, err := store.OpenLegacy(tk, o.Legacy, o.Name); err == nil {
				kr, err := store.NewKeyring(sec)
				require.NoError(t, err)
				if o.Role == store.RoleCO {
					escrow = true
					rings["\x00escrow"] = kr
				} else {
					rings[o.Name] = kr
				}
			}
		}
	}
	if escrow {
		for _, o := range users {
			if sec, err := rings["\x00escrow"].OpenEscrow(o.Escrow, o.Name); err == nil {
				kr, err := store.NewKeyring(sec)
				require.NoError(t, err)
				rings[o.Name] = kr
			}
		}
	}
	var opened []string
	for _, id := range allObjectIDs(t, st) {
		rec, err := st.Object(id)
		require.NoError(t, err)
		if len(rec.Sealed) == 0 {
			continue
		}
		var sealers []*store.Sealer
		for _, tk := range tokenKeys {
			sl, err := store.NewSealer(tk)
			require.NoError(t, err)
			sealers = append(sealers, sl)
		}
		for holder, w := range rec.Keys {
			for rn, kr := range rings {
				for _, owner := range []bool{true, false} {
					if dk, err := kr.OpenDataKey(w, rec.UniqueID, holder, owner); err == nil {
						sl, err := store.NewSealer(dk)
						require.NoError(t, err)
						sealers = append(sealers, sl)
						_ = rn
					}
				}
			}
		}
		all := true
		for at, v := range rec.Sealed {
			ok := false
			for _, sl := range sealers {
				if _, err := sl.Open(rec.UniqueID, at, v); err == nil {
					ok = true
				}
			}
			all = all && ok
		}
		if all {
			opened = append(opened, string(rec.Attrs[ck.CKA_LABEL]))
		}
	}
	slices.Sort(opened)
	return opened
}

// allObjectIDs lists every object: the public ones and each user's view.
func allObjectIDs(t *testing.T, st store.Store) []int64 {
	users, err := st.Users()
	require.NoError(t, err)
	var ids []int64
	for _, v := range append([]store.UserRecord{{}}, users...) {
		found, err := st.Find(store.Query{Viewer: v.Name})
		require.NoError(t, err)
		for _, id := range found {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

func logIn(t *testing.T, m *Module, h ck.ULong, ut ck.UserType, pin string) {
	t.Helper()
	require.NoError(t, m.Login(h, ut, []byte(pin)))
}

func genAES(t *testing.T, m *Module, h ck.ULong, label string, private bool) ck.ULong {
	t.Helper()
	tmpl := aesTemplate(label, true)
	tmpl[ck.CKA_PRIVATE] = attrs.Bool(private)
	k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmpl)
	require.NoError(t, err)
	return k
}

// encryptZero encrypts 16 zero bytes under a key with AES-GCM and a fixed
// IV: the same output shows the same key value.
func encryptZero(t *testing.T, m *Module, h, key ck.ULong) ([]byte, error) {
	t.Helper()
	if err := m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_GCM, Param: gcmParams()}, key); err != nil {
		return nil, err
	}
	out := make([]byte, 64)
	n, err := m.Encrypt(h, make([]byte, 16), Out{Buf: out})
	return out[:n], err
}

// keysFixture: officers admin and admin2; crypto users alice, bob, carol.
// alice owns "a-shared" (shared with bob), "a-own", "a-public"
// (CKA_PRIVATE false) and an EC pair "a-ec"; bob owns "b-own".
func keysFixture(t *testing.T) (*Module, string, map[string]ck.ULong) {
	m, dir := newToken(t)
	h := openRW(t, m)
	logIn(t, m, h, ck.CKU_SO, soPIN)
	require.NoError(t, m.CreateUser(h, "admin2", store.RoleCO, []byte("admin2-pw")))
	for _, n := range []string{"alice", "bob", "carol"} {
		require.NoError(t, m.CreateUser(h, n, store.RoleCU, []byte(n+"-pw")))
	}
	require.NoError(t, m.Logout(h))
	keys := map[string]ck.ULong{}
	logIn(t, m, h, ck.CKU_USER, "alice:alice-pw")
	keys["a-shared"] = genAES(t, m, h, "a-shared", true)
	keys["a-own"] = genAES(t, m, h, "a-own", true)
	keys["a-public"] = genAES(t, m, h, "a-public", false)
	_, keys["a-ec"] = ecKeyPair(t, m, h, "a-ec")
	require.NoError(t, m.Share(h, keys["a-shared"], "bob", true))
	require.NoError(t, m.Logout(h))
	logIn(t, m, h, ck.CKU_USER, "bob:bob-pw")
	keys["b-own"] = genAES(t, m, h, "b-own", true)
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.CloseSession(h))
	return m, dir, keys
}

// TestOfflineDecryption: with the token files and one password, a crypto
// user's password opens exactly that user's objects and those shared with
// it; an officer's password opens every crypto user's objects, through
// the escrow (docs/store.md: the price of password resets that keep keys).
func TestOfflineDecryption(t *testing.T) {
	m, _, _ := keysFixture(t)
	s, err := m.Slot(3)
	require.NoError(t, err)
	tok, err := s.Store().Token()
	require.NoError(t, err)
	require.NotEmpty(t, tok.EscrowPublic, "C_InitToken makes the escrow")
	all := []string{"a-ec", "a-own", "a-public", "a-shared", "b-own"}
	want := map[string][]string{
		"admin":  all,
		"admin2": all,
		"alice":  {"a-ec", "a-own", "a-public", "a-shared"},
		"bob":    {"a-shared", "b-own"},
		"carol":  nil,
		"user":   nil,
	}
	passwords := map[string]string{"admin": "officer-pw", "admin2": "admin2-pw", "alice": "alice-pw",
		"bob": "bob-pw", "carol": "carol-pw", "user": "user-pw-1"}
	for name, w := range want {
		assert.Equal(t, w, offlineOpen(t, s.Store(), name, passwords[name]), "password of %s", name)
		assert.Empty(t, offlineOpen(t, s.Store(), name, "wrong-password"), "a wrong password for %s", name)
	}
}

// TestShareUnshareKeys: sharing gives bob a copy of the key's data key;
// unsharing removes it and re-keys the object, so the data key bob once
// opened no longer opens what is stored; alice keeps using the key.
func TestShareUnshareKeys(t *testing.T) {
	m, _, keys := keysFixture(t)
	s, _ := m.Slot(3)
	st := s.Store()
	h := openRW(t, m)
	k := keys["a-shared"]

	logIn(t, m, h, ck.CKU_USER, "alice:alice-pw")
	before, err := encryptZero(t, m, h, k)
	require.NoError(t, err)
	require.NoError(t, m.Logout(h))
	logIn(t, m, h, ck.CKU_USER, "bob:bob-pw")
	got, err := encryptZero(t, m, h, k)
	require.NoError(t, err)
	assert.Equal(t, before, got, "bob uses alice's shared key")
	require.NoError(t, m.Logout(h))

	// What bob could keep: his copy of the data key, opened.
	bob, err := st.User("bob")
	require.NoError(t, err)
	sec, err := store.UnwrapUserSecret(store.DeriveKEK([]byte("bob-pw"), bob.Salt, bob.KDF), bob.WrappedKey, "bob")
	require.NoError(t, err)
	bobKeys, err := store.NewKeyring(sec)
	require.NoError(t, err)
	rec, err := st.Object(int64(k))
	require.NoError(t, err)
	require.Contains(t, rec.Keys, "bob")
	bobDK, err := bobKeys.OpenDataKey(rec.Keys["bob"], rec.UniqueID, "bob", false)
	require.NoError(t, err)
	bobSealer, err := store.NewSealer(bobDK)
	require.NoError(t, err)
	_, err = bobSealer.Open(rec.UniqueID, ck.CKA_VALUE, rec.Sealed[ck.CKA_VALUE])
	require.NoError(t, err)

	logIn(t, m, h, ck.CKU_USER, "alice:alice-pw")
	require.NoError(t, m.Share(h, k, "bob", false))
	got, err = encryptZero(t, m, h, k)
	require.NoError(t, err)
	assert.Equal(t, before, got, "alice keeps her key")
	require.NoError(t, m.Logout(h))

	rec2, err := st.Object(int64(k))
	require.NoError(t, err)
	assert.NotContains(t, rec2.Keys, "bob")
	assert.Contains(t, rec2.Keys, "alice")
	_, err = bobSealer.Open(rec2.UniqueID, ck.CKA_VALUE, rec2.Sealed[ck.CKA_VALUE])
	assert.ErrorIs(t, err, store.ErrSealed, "re-keyed: bob's old data key opens nothing stored")
	assert.Equal(t, []string{"b-own"}, offlineOpen(t, st, "bob", "bob-pw"))

	logIn(t, m, h, ck.CKU_USER, "bob:bob-pw")
	_, err = encryptZero(t, m, h, k)
	assert.ErrorIs(t, err, ck.CKR_KEY_HANDLE_INVALID)
	require.NoError(t, m.Logout(h))

	// Shared again: bob gets a copy of the new data key.
	logIn(t, m, h, ck.CKU_USER, "alice:alice-pw")
	require.NoError(t, m.Share(h, k, "bob", true))
	require.NoError(t, m.Logout(h))
	logIn(t, m, h, ck.CKU_USER, "bob:bob-pw")
	got, err = encryptZero(t, m, h, k)
	require.NoError(t, err)
	assert.Equal(t, before, got)
}

// TestPasswordChangesKeepKeys: a user's own change (C_SetPIN) and an
// officer's reset (C_InitPIN, ChangePassword) keep the user's keys, and
// the old password opens nothing any more.
func TestPasswordChangesKeepKeys(t *testing.T) {
	m, _, keys := keysFixture(t)
	s, _ := m.Slot(3)
	st := s.Store()
	h := openRW(t, m)
	k := keys["a-own"]
	logIn(t, m, h, ck.CKU_USER, "alice:alice-pw")
	want, err := encryptZero(t, m, h, k)
	require.NoError(t, err)
	require.NoError(t, m.SetPIN(h, []byte("alice:alice-pw"), []byte("alice:alice-pw2")))
	require.NoError(t, m.Logout(h))
	assert.Empty(t, offlineOpen(t, st, "alice", "alice-pw"), "old password")
	mine := []string{"a-ec", "a-own", "a-public", "a-shared"}
	assert.Equal(t, mine, offlineOpen(t, st, "alice", "alice-pw2"))

	logIn(t, m, h, ck.CKU_USER, "alice:alice-pw2")
	got, err := encryptZero(t, m, h, k)
	require.NoError(t, err)
	assert.Equal(t, want, got, "after the user's own change")
	require.NoError(t, m.Logout(h))

	// Locked out, then reset by an officer who never knew the password.
	for range 5 {
		require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("alice:nope-nope")), ck.CKR_PIN_INCORRECT)
	}
	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("alice:alice-pw2")), ck.CKR_PIN_LOCKED)
	logIn(t, m, h, ck.CKU_SO, "admin2:admin2-pw")
	require.NoError(t, m.InitPIN(h, []byte("alice:alice-pw3")))
	require.NoError(t, m.Logout(h))
	assert.Empty(t, offlineOpen(t, st, "alice", "alice-pw2"))
	assert.Equal(t, mine, offlineOpen(t, st, "alice", "alice-pw3"))
	logIn(t, m, h, ck.CKU_USER, "alice:alice-pw3")
	got, err = encryptZero(t, m, h, k)
	require.NoError(t, err)
	assert.Equal(t, want, got, "after an officer's reset")
	require.NoError(t, m.Logout(h))

	logIn(t, m, h, ck.CKU_SO, soPIN)
	require.NoError(t, m.ChangePassword(h, "alice", []byte("alice-pw4")))
	// An officer's own change keeps the escrow: admin2 can still reset.
	require.NoError(t, m.ChangePassword(h, "admin2", []byte("admin2-pw2")))
	require.NoError(t, m.Logout(h))
	logIn(t, m, h, ck.CKU_SO, "admin2:admin2-pw2")
	require.NoError(t, m.ChangePassword(h, "bob", []byte("bob-pw2")))
	require.NoError(t, m.Logout(h))
	assert.Equal(t, []string{"a-shared", "b-own"}, offlineOpen(t, st, "bob", "bob-pw2"))
	logIn(t, m, h, ck.CKU_USER, "alice:alice-pw4")
	got, err = encryptZero(t, m, h, k)
	require.NoError(t, err)
	assert.Equal(t, want, got, "after an officer's change")
}

// TestDeleteUserDropsKeyCopies: a deleted sharee's copies of data keys go
// with it; the owner keeps the key.
func TestDeleteUserDropsKeyCopies(t *testing.T) {
	m, _, keys := keysFixture(t)
	s, _ := m.Slot(3)
	st := s.Store()
	h := openRW(t, m)
	logIn(t, m, h, ck.CKU_USER, "alice:alice-pw")
	require.NoError(t, m.Share(h, keys["a-own"], "carol", true))
	require.NoError(t, m.Logout(h))
	assert.Equal(t, []string{"a-own"}, offlineOpen(t, st, "carol", "carol-pw"))

	logIn(t, m, h, ck.CKU_SO, soPIN)
	require.ErrorIs(t, m.DeleteUser(h, "bob"), ck.CKR_ACTION_PROHIBITED, "bob owns b-own")
	require.NoError(t, m.DeleteUser(h, "carol"))
	require.NoError(t, m.Logout(h))
	rec, err := st.Object(int64(keys["a-own"]))
	require.NoError(t, err)
	assert.Equal(t, []string{"alice"}, keysOf(rec.Keys))
	logIn(t, m, h, ck.CKU_USER, "alice:alice-pw")
	_, err = encryptZero(t, m, h, keys["a-own"])
	require.NoError(t, err)
}

// goldenV1 opens a module on a copy of the format-1 golden token
// (token/store/testdata/token-v1.db: officer admin, crypto users alice and
// bob (locked), alice's secret key "aes" shared with bob, all sealed
// under the token key 0x5a...).
func goldenV1(t *testing.T) (*Module, store.Store) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "slot-3"), 0o700))
	b, err := os.ReadFile("store/testdata/token-v1.db")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "slot-3", store.DBName), b, 0o600))
	m, err := Open(testConfig(t, dir))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	s, err := m.Slot(3)
	require.NoError(t, err)
	return m, s.Store()
}

// sealedValue is an object's opened secret as the slot loaded it.
func sealedValue(t *testing.T, m *Module, h ck.ULong, id ck.ULong, at ck.AttributeType) []byte {
	t.Helper()
	se, err := m.session(h)
	require.NoError(t, err)
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.visibleObjectLocked(id, ck.CKR_OBJECT_HANDLE_INVALID)
	require.NoError(t, err)
	require.Empty(t, o.sealed, "object %d has sealed values the login cannot open", id)
	return o.attrs.Bytes(at)
}

// TestUpgradeFromV1: the first login on a format-1 token upgrades it; each
// user keeps its password and keys, including bob, who never logs in
// before an officer resets him; once everyone has logged in no user holds
// the old token key, nothing is sealed under it, and the offline attacker
// gets exactly what the format-2 threat model says.
func TestUpgradeFromV1(t *testing.T) {
	skipOnPostgres(t, "it upgrades a SQLite token of format 1")
	goldenTK := bytes.Repeat([]byte{0x5a}, store.TokenKeySize)
	aesValue := []byte("0123456789abcdef")
	m, st := goldenV1(t)
	// Before any login, the format-1 exposure: every password opens "aes".
	assert.Equal(t, []string{"aes"}, offlineOpen(t, st, "alice", "alice-password"))

	h := openRW(t, m)
	logIn(t, m, h, ck.CKU_USER, "alice:alice-password")
	assert.Equal(t, aesValue, sealedValue(t, m, h, 2, ck.CKA_VALUE))
	// Objects 1 and 2 of the golden file lack CKA_KEY_TYPE, so
	// C_GetAttributeValue refuses them (before the upgrade too): read
	// what the slot loaded.
	for id, label := range map[ck.ULong]string{1: "pub", 2: "aes", 4: "data"} {
		assert.Equal(t, label, string(sealedValue(t, m, h, id, ck.CKA_LABEL)), "object %d", id)
	}
	res, err := m.GetAttributeValue(h, 4, []ck.AttributeType{ck.CKA_VALUE})
	require.NoError(t, err)
	assert.Equal(t, "not secret", string(res[0].Value))
	require.NoError(t, m.Logout(h))
	tok, err := st.Token()
	require.NoError(t, err)
	assert.NotEmpty(t, tok.EscrowPublic)
	alice, err := st.User("alice")
	require.NoError(t, err)
	assert.Equal(t, store.KeyV2, alice.KeyVersion)
	assert.Empty(t, alice.Legacy)
	rec, err := st.Object(2)
	require.NoError(t, err)
	_, err = store.OpenAttr(goldenTK, rec.UniqueID, ck.CKA_VALUE, rec.Sealed[ck.CKA_VALUE])
	assert.ErrorIs(t, err, store.ErrSealed, "re-sealed under a data key")
	assert.ElementsMatch(t, []string{"alice", "bob"}, keysOf(rec.Keys))

	// bob is locked in the golden token; the officer (still format 1)
	// logs in, collects the escrow and resets him.
	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("bob:bob-password")), ck.CKR_PIN_LOCKED)
	logIn(t, m, h, ck.CKU_SO, "admin:admin-password")
	require.NoError(t, m.InitPIN(h, []byte("bob:bob-new-password")))
	require.NoError(t, m.Logout(h))
	logIn(t, m, h, ck.CKU_USER, "bob:bob-new-password")
	assert.Equal(t, aesValue, sealedValue(t, m, h, 2, ck.CKA_VALUE), "shared with bob")
	require.NoError(t, m.Logout(h))

	users, err := st.Users()
	require.NoError(t, err)
	for _, u := range users {
		assert.Equal(t, store.KeyV2, u.KeyVersion, u.Name)
		assert.Empty(t, u.Legacy, u.Name)
		_, err := store.UnwrapTokenKey(store.DeriveKEK([]byte(u.Name+"-password"), u.Salt, u.KDF), u.WrappedKey, u.Name)
		assert.Error(t, err, "%s holds no token key", u.Name)
	}
	assert.Equal(t, []string{"aes"}, offlineOpen(t, st, "alice", "alice-password"))
	assert.Equal(t, []string{"aes"}, offlineOpen(t, st, "bob", "bob-new-password"))
	assert.Equal(t, []string{"aes"}, offlineOpen(t, st, "admin", "admin-password"), "escrow")
	assert.Empty(t, offlineOpen(t, st, "bob", "bob-password"))

	// Objects made after the upgrade, and a second module (another
	// process) on the same token.
	logIn(t, m, h, ck.CKU_USER, "alice:alice-password")
	k := genAES(t, m, h, "new", true)
	want, err := encryptZero(t, m, h, k)
	require.NoError(t, err)
	require.NoError(t, m.Logout(h))
	m2, err := Open(m.cfg)
	require.NoError(t, err)
	t.Cleanup(func() { m2.Close() })
	h2 := openRW(t, m2)
	logIn(t, m2, h2, ck.CKU_USER, "alice:alice-password")
	got, err := encryptZero(t, m2, h2, k)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, []string{"aes"}, offlineOpen(t, st, "bob", "bob-new-password"))
	assert.Equal(t, []string{"aes", "new"}, offlineOpen(t, st, "alice", "alice-password"))
}

// TestUpgradeRace: two modules (two processes' worth of state) log in on
// one format-1 token at once; the token is upgraded once and both work.
func TestUpgradeRace(t *testing.T) {
	skipOnPostgres(t, "it upgrades a SQLite token of format 1")
	m1, st := goldenV1(t)
	m2, err := Open(m1.cfg)
	require.NoError(t, err)
	t.Cleanup(func() { m2.Close() })
	h1, h2 := openRW(t, m1), openRW(t, m2)
	errs := make(chan error, 2)
	go func() { errs <- m1.Login(h1, ck.CKU_USER, []byte("alice:alice-password")) }()
	go func() { errs <- m2.Login(h2, ck.CKU_SO, []byte("admin:admin-password")) }()
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	assert.Equal(t, []byte("0123456789abcdef"), sealedValue(t, m1, h1, 2, ck.CKA_VALUE))
	require.NoError(t, m2.InitPIN(h2, []byte("bob:bob-new-password")))
	assert.Equal(t, []string{"aes"}, offlineOpen(t, st, "bob", "bob-new-password"))
}

// TestNoKeyMaterialAtRest: no user secret, escrow secret or data key
// appears in clear in any file of the token, open or closed.
func TestNoKeyMaterialAtRest(t *testing.T) {
	skipOnPostgres(t, "it scans the SQLite token file")
	m, dir, _ := keysFixture(t)
	s, _ := m.Slot(3)
	st := s.Store()
	passwords := map[string]string{"admin": "officer-pw", "alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}
	var secrets [][]byte
	rings := map[string]*store.Keyring{}
	for name, pw := range passwords {
		u, err := st.User(name)
		require.NoError(t, err)
		sec, err := store.UnwrapUserSecret(store.DeriveKEK([]byte(pw), u.Salt, u.KDF), u.WrappedKey, name)
		require.NoError(t, err)
		secrets = append(secrets, sec)
		rings[name], err = store.NewKeyring(sec)
		require.NoError(t, err)
	}
	for _, id := range allObjectIDs(t, st) {
		rec, err := st.Object(id)
		require.NoError(t, err)
		for holder, w := range rec.Keys {
			dk, err := rings[holder].OpenDataKey(w, rec.UniqueID, holder, holder == rec.Owner)
			require.NoError(t, err)
			secrets = append(secrets, dk)
		}
	}
	require.Greater(t, len(secrets), len(passwords)+4)
	check := func(when string) {
		for _, sec := range secrets {
			found, marker := scanDir(t, dir, sec, []byte("a-shared"))
			require.True(t, marker, "%s: the scan reads the data", when)
			require.False(t, found, "%s: key material in clear", when)
		}
	}
	check("open")
	require.NoError(t, m.Close())
	check("closed")
}

// TestNonPrivateKeyOfAnotherUser: alice's key with CKA_PRIVATE false is
// visible to bob, who holds no copy of its data key: he reads its public
// attributes, and neither its value nor a use of it gets through.
func TestNonPrivateKeyOfAnotherUser(t *testing.T) {
	m, _, keys := keysFixture(t)
	h := openRW(t, m)
	k := keys["a-public"]
	logIn(t, m, h, ck.CKU_USER, "bob:bob-pw")
	res, err := m.GetAttributeValue(h, k, []ck.AttributeType{ck.CKA_LABEL, ck.CKA_VALUE})
	require.NoError(t, err)
	assert.Equal(t, "a-public", string(res[0].Value))
	assert.ErrorIs(t, res[1].Err, ck.CKR_ATTRIBUTE_SENSITIVE)
	_, err = encryptZero(t, m, h, k)
	assert.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN)
	require.NoError(t, m.Logout(h))
	logIn(t, m, h, ck.CKU_USER, "alice:alice-pw")
	_, err = encryptZero(t, m, h, k)
	assert.NoError(t, err)
}

// TestDataKeyCachedPerVersion: after another process's commit drops the
// slot's objects, reloading a key reuses its opened data key (no unwrap);
// a new version of the object (another process re-keyed it) opens anew.
func TestDataKeyCachedPerVersion(t *testing.T) {
	m, _, keys := keysFixture(t)
	m2, err := Open(m.cfg)
	require.NoError(t, err)
	t.Cleanup(func() { m2.Close() })
	h, h2 := openRW(t, m), openRW(t, m2)
	logIn(t, m, h, ck.CKU_USER, "bob:bob-pw")
	logIn(t, m2, h2, ck.CKU_USER, "alice:alice-pw")
	k := keys["a-shared"]
	s, _ := m.Slot(3)
	cached := func() *objKey {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.login.dataKeys[int64(k)]
	}
	want, err := encryptZero(t, m, h, k)
	require.NoError(t, err)
	first := cached()
	require.NotNil(t, first)

	genAES(t, m2, h2, "other", true) // another process commits
	got, err := encryptZero(t, m, h, k)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Same(t, first, cached(), "reloaded without an unwrap")

	require.NoError(t, m2.Share(h2, k, "carol", true))
	require.NoError(t, m2.Share(h2, k, "carol", false)) // re-keys: a new version
	got, err = encryptZero(t, m, h, k)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.NotSame(t, first, cached())
	assert.NotEqual(t, first.dk, cached().dk)
}

// TestUpgradeLeavesDamagedObject: a format-1 object whose sealed value no
// longer opens with the token key does not stop the upgrade nor the login
// (every login would fail otherwise); it is left as stored, its secret
// unavailable, and the other objects are upgraded.
func TestUpgradeLeavesDamagedObject(t *testing.T) {
	skipOnPostgres(t, "it upgrades a SQLite token of format 1")
	m, st := goldenV1(t)
	rec, err := st.Object(2)
	require.NoError(t, err)
	bad := bytes.Clone(rec.Sealed[ck.CKA_VALUE])
	bad[len(bad)-1] ^= 1
	rec.Sealed[ck.CKA_VALUE] = bad
	_, _, err = st.UpdateObject(*rec)
	require.NoError(t, err)

	h := openRW(t, m)
	logIn(t, m, h, ck.CKU_USER, "alice:alice-password")
	tok, err := st.Token()
	require.NoError(t, err)
	assert.NotEmpty(t, tok.EscrowPublic, "upgraded")
	got, err := st.Object(2)
	require.NoError(t, err)
	assert.Equal(t, bad, got.Sealed[ck.CKA_VALUE], "left as stored")
	assert.Empty(t, got.Keys)
	_, err = m.GetAttributeValue(h, 4, []ck.AttributeType{ck.CKA_VALUE})
	require.NoError(t, err)
}

// TestUpgradeFailureIsNoWrongPassword: a right password whose format-1
// keys cannot be upgraded (the legacy copy of the new secret is damaged)
// answers CKR_DEVICE_ERROR and does not count towards the lockout: the
// attempt reserved before deriving ends as no failure.
func TestUpgradeFailureIsNoWrongPassword(t *testing.T) {
	skipOnPostgres(t, "it upgrades a SQLite token of format 1")
	m, st := goldenV1(t)
	h := openRW(t, m)
	logIn(t, m, h, ck.CKU_USER, "alice:alice-password") // upgrades the token
	require.NoError(t, m.Logout(h))
	admin, err := st.User("admin")
	require.NoError(t, err)
	require.Equal(t, store.KeyV1, admin.KeyVersion)
	admin.Legacy[len(admin.Legacy)-1] ^= 1
	require.NoError(t, st.UpdateUser(*admin))

	for range 6 {
		require.ErrorIs(t, m.Login(h, ck.CKU_SO, []byte("admin:admin-password")), ck.CKR_DEVICE_ERROR)
	}
	admin, err = st.User("admin")
	require.NoError(t, err)
	assert.Zero(t, admin.FailedLogins)
	assert.False(t, admin.Locked)
}
