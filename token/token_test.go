package token

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv/pgtest"
	"gohsm/token/attrs"
	"gohsm/token/store"
)

const (
	soPIN   = "admin:officer-pw"
	userPIN = "user:user-pw-1"
)

func testConfig(t testing.TB, dir string) *Config { return testConfigLines(t, dir, "", "") }

// testConfigLines is testConfig with top-level lines and lines of the
// slot's section.
func testConfigLines(t testing.TB, dir, top, slot string) *Config {
	t.Helper()
	slot = testStoreLine(t, dir) + slot
	cfg, err := ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_level = error\n%s\n[slot 3]\nlabel = t\n%s\n", dir, top, slot), "test")
	require.NoError(t, err)
	return cfg
}

// newToken opens a module on a fresh token with a crypto officer and the
// default crypto user.
func newToken(t testing.TB) (*Module, string) {
	t.Helper()
	dir := t.TempDir()
	m, err := Open(testConfig(t, dir))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	require.NoError(t, m.CloseSession(initTestToken(t, m)))
	return m, dir
}

// initTestToken initialises slot 3's token with the crypto officer and
// sets the default crypto user's password, returning the R/W session on
// which the officer is still logged in.
func initTestToken(t testing.TB, m *Module) ck.ULong {
	t.Helper()
	s, err := m.Slot(3)
	require.NoError(t, err)
	require.NoError(t, s.InitToken([]byte(soPIN), "t"))
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.InitPIN(h, []byte(userPIN)))
	return h
}

func openRW(t testing.TB, m *Module) ck.ULong {
	t.Helper()
	h, err := m.OpenSession(3, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	return h
}

func aesTemplate(label string, token bool) attrs.Template {
	return attrs.Template{
		ck.CKA_VALUE_LEN: attrs.ULong(32),
		ck.CKA_LABEL:     []byte(label),
		ck.CKA_TOKEN:     attrs.Bool(token),
	}
}

var p256 = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

func ecKeyPair(t *testing.T, m *Module, h ck.ULong, label string) (pub, priv ck.ULong) {
	t.Helper()
	pub, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_EC_PARAMS: p256, ck.CKA_LABEL: []byte(label), ck.CKA_TOKEN: attrs.Bool(true)},
		attrs.Template{ck.CKA_LABEL: []byte(label), ck.CKA_TOKEN: attrs.Bool(true)})
	require.NoError(t, err)
	return pub, priv
}

// TestPermissionTableByState drives a real session into each of the five
// Cryptoki session states and makes each kind of call. The expected answers
// are written here from the spec's session-state rules (PKCS#11 v3.0 5.5,
// and C_InitPIN's "only in the R/W SO Functions state"), with CloudHSM's
// crypto officer who makes and uses no objects; they are deliberately not
// read from the permission table under test. tests/e2e's
// TestSessionStatesThroughTheABI asks the same of the built library.
func TestPermissionTableByState(t *testing.T) {
	m, _ := newToken(t)
	// A key made by the user beforehand, to be used in each state.
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	pubKey, _ := ecKeyPair(t, m, h, "perm")
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.CloseSession(h))

	dataObj := func(token bool) attrs.Template {
		return attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA)), ck.CKA_TOKEN: attrs.Bool(token), ck.CKA_PRIVATE: attrs.Bool(false)}
	}
	genKey := func(token, private bool) func(h ck.ULong) error {
		return func(h ck.ULong) error {
			tmpl := aesTemplate("k", token)
			tmpl[ck.CKA_PRIVATE] = attrs.Bool(private)
			_, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmpl)
			return err
		}
	}
	calls := []struct {
		name string
		call func(h ck.ULong) error
	}{
		{"use a public key", func(h ck.ULong) error {
			if err := m.VerifyInit(h, Mechanism{Type: ck.CKM_ECDSA}, pubKey); err != nil {
				return err
			}
			m.Abort(h, OpVerify)
			return nil
		}},
		{"generate a public session key", genKey(false, false)},
		{"generate a private session key", genKey(false, true)},
		{"generate a private token key", genKey(true, true)},
		{"create a public token object", func(h ck.ULong) error { _, err := m.CreateObject(h, dataObj(true)); return err }},
		{"create a public session object", func(h ck.ULong) error { _, err := m.CreateObject(h, dataObj(false)); return err }},
		{"C_InitPIN", func(h ck.ULong) error { return m.InitPIN(h, []byte("carol:carol-pw")) }},
	}
	const (
		ok  = ck.RV(0)
		nli = ck.CKR_USER_NOT_LOGGED_IN
		ro  = ck.CKR_SESSION_READ_ONLY
	)
	states := []struct {
		state ck.State
		rw    bool
		login ck.UserType // meaningful only with pin
		pin   string
		want  []ck.RV // per call, in calls' order
	}{
		// A private token key in a R/O public session breaks two rules;
		// the write is checked first.
		{ck.CKS_RO_PUBLIC_SESSION, false, 0, "", []ck.RV{ok, ok, nli, ro, ro, ok, nli}},
		{ck.CKS_RW_PUBLIC_SESSION, true, 0, "", []ck.RV{ok, ok, nli, nli, ok, ok, nli}},
		{ck.CKS_RO_USER_FUNCTIONS, false, ck.CKU_USER, userPIN, []ck.RV{ok, ok, ok, ro, ro, ok, nli}},
		{ck.CKS_RW_USER_FUNCTIONS, true, ck.CKU_USER, userPIN, []ck.RV{ok, ok, ok, ok, ok, ok, nli}},
		{ck.CKS_RW_SO_FUNCTIONS, true, ck.CKU_SO, soPIN, []ck.RV{nli, nli, nli, nli, nli, nli, ok}},
	}
	for _, st := range states {
		require.Len(t, st.want, len(calls))
		for i, c := range calls {
			t.Run(fmt.Sprintf("%v/%s", st.state, c.name), func(t *testing.T) {
				flags := ck.ULong(ck.CKF_SERIAL_SESSION)
				if st.rw {
					flags |= ck.CKF_RW_SESSION
				}
				h, err := m.OpenSession(3, flags)
				require.NoError(t, err)
				defer m.CloseSession(h)
				if st.pin != "" {
					require.NoError(t, m.Login(h, st.login, []byte(st.pin)))
					defer m.Logout(h)
				}
				info, err := m.SessionInfo(h)
				require.NoError(t, err)
				require.Equal(t, st.state, info.State)
				err = c.call(h)
				if want := st.want[i]; want == ok {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, want)
				}
			})
		}
	}
}

// TestEveryProfileHasRules: each profile the configuration accepts has its
// rules, and every state of each has a row.
func TestEveryProfileHasRules(t *testing.T) {
	for name, r := range profileTable {
		_, err := ParseConfig("token_dir = /nonexistent\n[slot 0]\nprofile = "+name+"\n", "test")
		require.NoError(t, err, "profile %s", name)
		require.Len(t, r.permissions, 5, "profile %s: a row per session state", name)
	}
	_, err := ParseConfig("token_dir = /nonexistent\n[slot 0]\nprofile = nosuch\n", "test")
	require.Error(t, err)
}

// TestDeliverRetryReturnsSameBytes: a short buffer keeps the computed output
// and the retry returns exactly it, without computing again.
func TestDeliverRetryReturnsSameBytes(t *testing.T) {
	op := &operation{}
	calls := 0
	compute := func(dst []byte) ([]byte, error) {
		calls++
		b := make([]byte, 64)
		rand.Read(b)
		return append(dst, b...), nil
	}
	n, err := deliver(op, Out{Query: true}, 64, compute)
	require.NoError(t, err)
	require.Equal(t, 64, n)
	require.Equal(t, 0, calls, "a length query does not compute")

	short := make([]byte, 10)
	n, err = deliver(op, Out{Buf: short}, 64, compute)
	require.ErrorIs(t, err, ck.CKR_BUFFER_TOO_SMALL)
	require.Equal(t, 64, n)
	first := append([]byte(nil), op.pending...)

	n, err = deliver(op, Out{Query: true}, 64, compute)
	require.NoError(t, err)
	require.Equal(t, 64, n)
	n, err = deliver(op, Out{Buf: make([]byte, 63)}, 64, compute)
	require.ErrorIs(t, err, ck.CKR_BUFFER_TOO_SMALL)
	require.Equal(t, 64, n)

	full := make([]byte, 64)
	n, err = deliver(op, Out{Buf: full}, 64, compute)
	require.NoError(t, err)
	require.Equal(t, 64, n)
	require.Equal(t, first, full)
	require.Equal(t, 1, calls)
	require.False(t, op.hasPending)
}

// TestSignShortBufferKeepsOperation: through the token API, a short buffer
// keeps the operation and the retry yields a valid signature.
func TestSignShortBufferKeepsOperation(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	pub, priv := ecKeyPair(t, m, h, "sig")
	msg := []byte("message")
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv))
	n, err := m.Sign(h, msg, Out{Buf: make([]byte, 5)})
	require.ErrorIs(t, err, ck.CKR_BUFFER_TOO_SMALL)
	require.Equal(t, 64, n)
	sig := make([]byte, 64)
	n, err = m.Sign(h, msg, Out{Buf: sig})
	require.NoError(t, err)
	require.Equal(t, 64, n)
	_, err = m.Sign(h, msg, Out{Buf: sig})
	require.ErrorIs(t, err, ck.CKR_OPERATION_NOT_INITIALIZED, "success ends the operation")
	require.NoError(t, m.VerifyInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, pub))
	require.NoError(t, m.Verify(h, msg, sig))
	// Any other error ends the operation too.
	require.NoError(t, m.VerifyInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, pub))
	require.ErrorIs(t, m.Verify(h, msg, sig[:10]), ck.CKR_SIGNATURE_LEN_RANGE)
	require.ErrorIs(t, m.Verify(h, msg, sig), ck.CKR_OPERATION_NOT_INITIALIZED)
}

// TestTwoModulesShareTheStore: two modules on one token directory behave
// like two processes: a key made by one is found and used by the other
// without reopening, and a destroyed one disappears.
func TestTwoModulesShareTheStore(t *testing.T) {
	m1, dir := newToken(t)
	m2, err := Open(testConfig(t, dir))
	require.NoError(t, err)
	defer m2.Close()
	h1, h2 := openRW(t, m1), openRW(t, m2)
	require.NoError(t, m1.Login(h1, ck.CKU_USER, []byte(userPIN)))
	require.NoError(t, m2.Login(h2, ck.CKU_USER, []byte(userPIN)))

	find := func(m *Module, h ck.ULong, label string) []ck.ULong {
		require.NoError(t, m.FindObjectsInit(h, attrs.Template{ck.CKA_LABEL: []byte(label), ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY))}))
		hs, err := m.FindObjects(h, 10)
		require.NoError(t, err)
		require.NoError(t, m.FindObjectsFinal(h))
		return hs
	}
	require.Empty(t, find(m2, h2, "shared"))
	_, priv := ecKeyPair(t, m1, h1, "shared")
	got := find(m2, h2, "shared")
	require.Equal(t, []ck.ULong{priv}, got, "handles are store IDs, the same in every process")
	require.NoError(t, m2.SignInit(h2, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv))
	_, err = m2.Sign(h2, []byte("x"), Out{Buf: make([]byte, 64)})
	require.NoError(t, err)
	require.NoError(t, m1.DestroyObject(h1, priv))
	require.Empty(t, find(m2, h2, "shared"))
	if pgtest.OnPostgres(t) {
		// m2 learns of the delete by notification (docs/store-postgres.md:
		// the notification latency, milliseconds); SQLite's generation
		// check sees it at once.
		deadline := time.Now().Add(2 * time.Second)
		for m2.SignInit(h2, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv) == nil && time.Now().Before(deadline) {
			_, err := m2.Sign(h2, []byte("x"), Out{Buf: make([]byte, 64)}) // ends the operation
			require.NoError(t, err)
			time.Sleep(5 * time.Millisecond)
		}
	}
	require.ErrorIs(t, m2.SignInit(h2, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv), ck.CKR_KEY_HANDLE_INVALID)
}

// TestRolesAndSharing: a crypto officer cannot create or use keys; a crypto
// user sees only its own, shared and public objects; a sharee can use but
// not destroy or modify.
func TestRolesAndSharing(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.CreateUser(h, "alice", 2, []byte("alice-pw")))
	require.NoError(t, m.CreateUser(h, "bob", 2, []byte("bob-pw")))
	_, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("x", true))
	require.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN)
	require.NoError(t, m.Logout(h))

	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("alice:alice-pw")))
	key, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("alice-key", true))
	require.NoError(t, err)
	require.NoError(t, m.Logout(h))

	gcm := Mechanism{Type: ck.CKM_AES_GCM, Param: gcmParams()}
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("bob:bob-pw")))
	require.ErrorIs(t, m.EncryptInit(h, gcm, key), ck.CKR_KEY_HANDLE_INVALID, "bob cannot see alice's key")
	require.NoError(t, m.Logout(h))

	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("alice:alice-pw")))
	require.NoError(t, m.Share(h, key, "bob", true))
	require.NoError(t, m.Logout(h))

	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("bob:bob-pw")))
	require.NoError(t, m.EncryptInit(h, gcm, key), "shared with bob")
	m.Abort(h, OpEncrypt)
	require.ErrorIs(t, m.DestroyObject(h, key), ck.CKR_ACTION_PROHIBITED)
	require.ErrorIs(t, m.SetAttributeValue(h, key, attrs.Template{ck.CKA_LABEL: []byte("mine")}), ck.CKR_ACTION_PROHIBITED)
	require.ErrorIs(t, m.Share(h, key, "alice", false), ck.CKR_ACTION_PROHIBITED)
	res, err := m.GetAttributeValue(h, key, []ck.AttributeType{ck.CKA_GOHSM_OWNER, ck.CKA_GOHSM_SHARED_USERS})
	require.NoError(t, err)
	require.Equal(t, "alice", string(res[0].Value))
	require.Equal(t, "bob", string(res[1].Value))
	require.NoError(t, m.Logout(h))
}

func gcmParams() any {
	return gcmParamsValue()
}

// TestLockout: consecutive wrong passwords lock the user; the token flags
// warn on the way; only a crypto officer's reset unlocks.
func TestLockout(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	s, _ := m.Slot(3)
	for i := 1; i <= 5; i++ {
		err := m.Login(h, ck.CKU_USER, []byte("user:wrong"))
		require.ErrorIs(t, err, ck.CKR_PIN_INCORRECT, "attempt %d", i)
		ti, err := s.TokenInfo()
		require.NoError(t, err)
		switch i {
		case 4:
			require.NotZero(t, ti.Flags&ck.CKF_USER_PIN_FINAL_TRY, "one try left")
			require.NotZero(t, ti.Flags&ck.CKF_USER_PIN_COUNT_LOW)
		case 5:
			require.NotZero(t, ti.Flags&ck.CKF_USER_PIN_LOCKED)
		default:
			require.NotZero(t, ti.Flags&ck.CKF_USER_PIN_COUNT_LOW)
			require.Zero(t, ti.Flags&ck.CKF_USER_PIN_FINAL_TRY)
		}
	}
	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte(userPIN)), ck.CKR_PIN_LOCKED, "locked even with the right password")
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.InitPIN(h, []byte("user:user-pw-2")))
	require.NoError(t, m.Logout(h))
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("user:user-pw-2")))
	ti, err := s.TokenInfo()
	require.NoError(t, err)
	require.Zero(t, ti.Flags&(ck.CKF_USER_PIN_LOCKED|ck.CKF_USER_PIN_COUNT_LOW|ck.CKF_USER_PIN_FINAL_TRY))
}

// TestNoPlaintextSecretsInTokenDir: secret values never reach the disk.
func TestNoPlaintextSecretsInTokenDir(t *testing.T) {
	skipOnPostgres(t, "it scans the SQLite token files (tests/hosts scans a pg_dump)")
	m, dir := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	tmpl := aesTemplate("visible", true)
	tmpl[ck.CKA_SENSITIVE] = attrs.Bool(false)
	key, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmpl)
	require.NoError(t, err)
	res, err := m.GetAttributeValue(h, key, []ck.AttributeType{ck.CKA_VALUE})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	secret := res[0].Value
	require.Len(t, secret, 32)
	require.NoError(t, m.Close())
	found, label := scanDir(t, dir, secret, []byte("visible"))
	require.False(t, found, "the key value is on disk in plaintext")
	require.True(t, label, "the scan saw the token's files (the public label is there)")
}

func TestConfigErrors(t *testing.T) {
	for _, text := range []string{
		"bogus = 1",
		"lockout_threshold = 0",
		"[slot x]",
		"[slot 1]\nprofile = nope",
		"[slot 1]\n[slot 1]",
		"log_level = loud",
		"min_pin_len = 10\nmax_pin_len = 5",
		"no equals sign",
		"kdf_time = 17",
		"kdf_memory = 1048577",
		"kdf_memory = 4294967295",
		"kdf_threads = 65",
		"kdf_memory = 8\nkdf_threads = 2",
		"kdf_time = 2\nkdf_memory = 1048576",
		// Issue 15: a quoted token_dir made a directory named '"'; a
		// relative path depended on each program's working directory.
		`token_dir = "/tmp/x`,
		`token_dir = /tmp/"x"`,
		`token_dir = "/tmp/"x"`,
		"token_dir = tokens",
		"token_dir = ./tokens",
		"[slot 1]\ndir = slot-1",
		"log_file = gohsm.log",
	} {
		_, err := ParseConfig(text, "t")
		require.Error(t, err, text)
		require.True(t, errors.Is(err, errConfig), text)
	}
	// Quotes around a whole value are taken off; the same key in two
	// sections is two settings.
	c, err := ParseConfig("token_dir = \"/my tokens\"\n[slot 1]\nlabel = ' padded '\n[slot 2]\nlabel = ' padded '\n", "t")
	require.NoError(t, err)
	require.Equal(t, "/my tokens", c.TokenDir)
	require.Equal(t, " padded ", c.Slots[0].Label)
	// A key set twice takes its last value (appending overrides).
	c, err = ParseConfig("token_dir = /x\nlog_level = warn\nlog_level = debug\n[slot 1]\nlabel = a\nlabel = b\n", "t")
	require.NoError(t, err)
	require.Equal(t, "debug", c.LogLevel)
	require.Equal(t, "b", c.Slots[0].Label)
	c, err = ParseConfig("token_dir = /x\n[slot 7]\nlabel = a\n[slot 2]\n", "t")
	require.NoError(t, err)
	require.Equal(t, store.DefaultKDF, c.KDF, "the documented default (docs/store.md)")
	require.Equal(t, "/x/slot-7", c.Slots[0].Dir)
	require.Equal(t, ck.ULong(2), c.Slots[1].ID)
	require.True(t, bytes.Equal([]byte(c.Slots[0].Label), []byte("a")))
}

// TestSinglePartRejectsUpdate: raw ECDSA has no multi-part form; the
// update fails with CKR_FUNCTION_NOT_SUPPORTED and ends the operation.
func TestSinglePartRejectsUpdate(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	_, priv := ecKeyPair(t, m, h, "raw")
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA}, priv))
	require.ErrorIs(t, m.SignUpdate(h, []byte("x")), ck.CKR_FUNCTION_NOT_SUPPORTED)
	_, err := m.Sign(h, make([]byte, 32), Out{Buf: make([]byte, 64)})
	require.ErrorIs(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	// The multi-part form works for the hashing mechanism.
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv))
	require.NoError(t, m.SignUpdate(h, []byte("x")))
	n, err := m.SignFinal(h, Out{Buf: make([]byte, 64)})
	require.NoError(t, err)
	require.Equal(t, 64, n)
}

// TestTokenGroup: token_group shares the token directory and files with a
// group (directory 0770, files 0660).
func TestTokenGroup(t *testing.T) {
	dir := t.TempDir()
	gid := os.Getegid()
	cfg, err := ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\ntoken_group = %d\n", dir, gid), "test")
	require.NoError(t, err)
	m, err := Open(cfg)
	require.NoError(t, err)
	s, _ := m.Slot(0)
	require.NoError(t, s.InitToken([]byte(soPIN), "g"))
	require.NoError(t, m.Close())
	slotDir := filepath.Join(dir, "slot-0")
	st, err := os.Stat(slotDir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o770), st.Mode().Perm())
	st, err = os.Stat(filepath.Join(slotDir, "token.db"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o660), st.Mode().Perm())
	require.Equal(t, uint32(gid), st.Sys().(*syscall.Stat_t).Gid)

	_, err = ParseConfig("token_group = no-such-group-xyz\n", "test")
	require.Error(t, err)
}
