package token

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
	"gohsm/token/profile"
	"gohsm/token/store"
)

// profileToken opens a module whose slot 3 has profile prof, with the
// token set up as the CLI does it (Slot.InitToken, then CreateUser as the
// officer): officer "admin", crypto user "alice". It returns the module
// and an officer's session.
func profileToken(t *testing.T, prof string) (*Module, ck.ULong) {
	t.Helper()
	m := profileModule(t, t.TempDir(), prof)
	return m, profileSetUp(t, m, "admin:officer-pw", "alice", "alice-pw-1")
}

func profileModule(t testing.TB, dir, prof string) *Module {
	t.Helper()
	return profileModuleLines(t, dir, "profile = "+prof)
}

// profileModuleLines opens a module with a cheap KDF whose slot 3 (label
// "t") has the given configuration lines (e.g. "profile = cloudhsm\nfips
// = false").
func profileModuleLines(t testing.TB, dir, slotLines string) *Module {
	t.Helper()
	slotLines = testStoreLine(t, dir) + slotLines
	cfg, err := ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_level = error\n[slot 3]\nlabel = t\n%s\n", dir, slotLines), "test")
	require.NoError(t, err)
	m, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// profileSetUp initialises slot 3's token as the CLI does, in every
// profile (Slot.InitToken with officer coPIN, then CreateUser as that
// officer: crypto user cu), and returns a R/W session logged in as the
// officer.
func profileSetUp(t testing.TB, m *Module, coPIN, cu, cuPassword string) ck.ULong {
	t.Helper()
	s, err := m.Slot(3)
	require.NoError(t, err)
	require.NoError(t, s.InitToken([]byte(coPIN), "t"))
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(coPIN)))
	require.NoError(t, m.CreateUser(h, cu, store.RoleCU, []byte(cuPassword)))
	return h
}

// TestCloudHSMPINNeedsName: in cloudhsm a PIN is name:password (UG
// pkcs11-pin); a bare password is CKR_PIN_INCORRECT, for C_Login and for
// C_LoginUser without a name, and counts towards nobody's lockout. In
// standard a bare password is the default user's.
func TestCloudHSMPINNeedsName(t *testing.T) {
	for _, prof := range []string{"cloudhsm", "standard"} {
		t.Run(prof, func(t *testing.T) {
			m, ho := profileToken(t, prof)
			require.NoError(t, m.Logout(ho))
			h := openRW(t, m)
			err := m.Login(h, ck.CKU_SO, []byte("officer-pw"))
			if prof == "cloudhsm" {
				require.ErrorIs(t, err, ck.CKR_PIN_INCORRECT)
				u, err := m.Slot(3)
				require.NoError(t, err)
				rec, err := u.Store().User("admin")
				require.NoError(t, err)
				assert.Zero(t, rec.FailedLogins, "no user was named")
			} else {
				require.NoError(t, err, "the default officer")
				require.NoError(t, m.Logout(h))
			}
			require.NoError(t, m.Login(h, ck.CKU_USER, []byte("alice:alice-pw-1")))
			require.NoError(t, m.Logout(h))
			require.NoError(t, m.LoginUser(h, ck.CKU_USER, []byte("alice-pw-1"), "Alice"), "C_LoginUser names the user apart")
			require.NoError(t, m.Logout(h))
		})
	}
}

// TestCloudHSMLoginBeforeAnyUser: a cloudhsm token answers an unknown user
// with CKR_PIN_INCORRECT also before any crypto user exists (standard:
// CKR_USER_PIN_NOT_INITIALIZED, the spec's answer before C_InitPIN).
func TestCloudHSMLoginBeforeAnyUser(t *testing.T) {
	for prof, want := range map[string]ck.RV{"cloudhsm": ck.CKR_PIN_INCORRECT, "standard": ck.CKR_USER_PIN_NOT_INITIALIZED} {
		m := profileModule(t, t.TempDir(), prof)
		s, _ := m.Slot(3)
		require.NoError(t, s.InitToken([]byte("admin:officer-pw"), "t"))
		h := openRW(t, m)
		require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("bob:bob-pw-12")), want, prof)
	}
}

// TestCloudHSMUserNameAndPasswordRules: user names as CloudHSM's (at most
// 31 letters, digits or underscores, case-insensitive, kept lowercase) in
// both profiles; password lengths from the profile (cloudhsm 8-32,
// standard 4-64), for user create and password changes alike.
func TestCloudHSMUserNameAndPasswordRules(t *testing.T) {
	for _, prof := range []string{"cloudhsm", "standard"} {
		t.Run(prof, func(t *testing.T) {
			m, h := profileToken(t, prof)
			for _, bad := range []string{strings.Repeat("a", 32), "bob-1", "bob.x", "bob smith", "", "b\u00f6b"} {
				require.ErrorIs(t, m.CreateUser(h, bad, store.RoleCU, []byte("bob-pw-12")), ck.CKR_ARGUMENTS_BAD, "name %q", bad)
			}
			require.NoError(t, m.CreateUser(h, strings.Repeat("B", 31), store.RoleCU, []byte("bob-pw-12")))
			require.NoError(t, m.CreateUser(h, "Crypto_User2", store.RoleCU, []byte("bob-pw-12")))
			us, err := m.Users(h)
			require.NoError(t, err)
			var names []string
			for _, u := range us {
				names = append(names, u.Name)
			}
			assert.Contains(t, names, "crypto_user2", "shown lowercase")
			assert.Contains(t, names, strings.Repeat("b", 31))
			require.ErrorIs(t, m.CreateUser(h, "CRYPTO_USER2", store.RoleCU, []byte("bob-pw-12")), ck.CKR_ACTION_PROHIBITED, "names are case-insensitive")

			short, long := "1234567", strings.Repeat("p", 33) // 7 and 33
			if prof == "cloudhsm" {
				require.ErrorIs(t, m.CreateUser(h, "carol", store.RoleCU, []byte(short)), ck.CKR_PIN_LEN_RANGE)
				require.ErrorIs(t, m.CreateUser(h, "carol", store.RoleCU, []byte(long)), ck.CKR_PIN_LEN_RANGE)
				require.ErrorIs(t, m.ChangePassword(h, "alice", []byte(short)), ck.CKR_PIN_LEN_RANGE)
				require.NoError(t, m.CreateUser(h, "carol", store.RoleCU, []byte("12345678")))
				require.NoError(t, m.ChangePassword(h, "carol", []byte(strings.Repeat("p", 32))))
			} else {
				require.NoError(t, m.CreateUser(h, "carol", store.RoleCU, []byte(short)))
				require.NoError(t, m.ChangePassword(h, "carol", []byte(long)))
				require.ErrorIs(t, m.CreateUser(h, "dave", store.RoleCU, []byte("123")), ck.CKR_PIN_LEN_RANGE)
			}
		})
	}
}

// TestCloudHSMPasswordOfLoggedInUser: in cloudhsm nobody changes the
// password of a user logged in elsewhere (another opening of the token:
// another process for the registry); a user changes its own while logged
// in. Standard lets the officer reset it.
func TestCloudHSMPasswordOfLoggedInUser(t *testing.T) {
	for _, prof := range []string{"cloudhsm", "standard"} {
		t.Run(prof, func(t *testing.T) {
			dir := t.TempDir()
			cli := profileModule(t, dir, prof)
			s, _ := cli.Slot(3)
			require.NoError(t, s.InitToken([]byte("admin:officer-pw"), "t"))
			hc := openRW(t, cli)
			require.NoError(t, cli.Login(hc, ck.CKU_SO, []byte("admin:officer-pw")))
			require.NoError(t, cli.CreateUser(hc, "alice", store.RoleCU, []byte("alice-pw-1")))

			app := profileModule(t, dir, prof)
			ha := openRW(t, app)
			require.NoError(t, app.Login(ha, ck.CKU_USER, []byte("alice:alice-pw-1")))
			err := cli.ChangePassword(hc, "alice", []byte("alice-pw-2"))
			if prof == "cloudhsm" {
				require.ErrorIs(t, err, ck.CKR_USER_ALREADY_LOGGED_IN)
				require.Contains(t, err.Error(), "logged in in process")
			} else {
				require.NoError(t, err)
			}
			require.NoError(t, app.ChangePassword(ha, "alice", []byte("alice-pw-3")), "one's own password")
			require.ErrorIs(t, app.ChangePassword(ha, "admin", []byte("admin-pw-3")), ck.CKR_USER_NOT_LOGGED_IN, "a crypto user changes only its own")
			require.NoError(t, app.CloseSession(ha), "the last session: logged out")
			require.NoError(t, cli.ChangePassword(hc, "alice", []byte("alice-pw-4")))
		})
	}
}

// TestCloudHSMNoReadOnlySessions: C_OpenSession without CKF_RW_SESSION is
// CKR_FUNCTION_FAILED in cloudhsm (UG ki-pkcs11-sdk #13).
func TestCloudHSMNoReadOnlySessions(t *testing.T) {
	for prof, want := range map[string]ck.RV{"cloudhsm": ck.CKR_FUNCTION_FAILED, "standard": 0} {
		m, h := profileToken(t, prof)
		require.NoError(t, m.Logout(h))
		_, err := m.OpenSession(3, ck.CKF_SERIAL_SESSION)
		if want == 0 {
			require.NoError(t, err, prof)
		} else {
			require.ErrorIs(t, err, want, prof)
		}
	}
}

// TestCloudHSMPermissionTable: CloudHSM's unauthenticated sessions do no
// key management and no crypto, and create no objects; officers neither
// (cloudhsm-facts §1.1). Standard lets a public session make and use
// public objects (PKCS#11 4.4).
func TestCloudHSMPermissionTable(t *testing.T) {
	for _, prof := range []string{"cloudhsm", "standard"} {
		t.Run(prof, func(t *testing.T) {
			m, ho := profileToken(t, prof)
			require.NoError(t, m.Logout(ho))
			hu := openRW(t, m)
			require.NoError(t, m.Login(hu, ck.CKU_USER, []byte("alice:alice-pw-1")))
			pub, _ := ecKeyPair(t, m, hu, "perm")
			require.NoError(t, m.Logout(hu))

			h := openRW(t, m)
			gen := func() error {
				tmpl := aesTemplate("k", false)
				tmpl[ck.CKA_PRIVATE] = attrs.Bool(false)
				_, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmpl)
				return err
			}
			data := func() error {
				_, err := m.CreateObject(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA)), ck.CKA_TOKEN: attrs.Bool(false), ck.CKA_PRIVATE: attrs.Bool(false)})
				return err
			}
			use := func() error { return m.VerifyInit(h, Mechanism{Type: ck.CKM_ECDSA}, pub) }
			for name, call := range map[string]func() error{"generate": gen, "create": data, "verify": use} {
				err := call()
				if prof == "cloudhsm" {
					require.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN, name)
				} else {
					require.NoError(t, err, name)
				}
			}
			m.Abort(h, OpVerify)
			require.NoError(t, m.Login(h, ck.CKU_SO, []byte("admin:officer-pw")))
			require.ErrorIs(t, gen(), ck.CKR_USER_NOT_LOGGED_IN, "officers make no keys")
			require.ErrorIs(t, use(), ck.CKR_USER_NOT_LOGGED_IN, "officers use no keys")
		})
	}
}

// TestCloudHSMUnsupportedFunctions: the functions SDK 5 lacks are refused
// in cloudhsm, before anything else but the session handle; standard
// refuses none. C_SetAttributeValue only on keys.
func TestCloudHSMUnsupportedFunctions(t *testing.T) {
	for _, prof := range []string{"cloudhsm", "standard"} {
		t.Run(prof, func(t *testing.T) {
			m, h := profileToken(t, prof)
			for f := profile.Function(0); f < profile.NumFunctions; f++ {
				err := m.Unsupported(h, f)
				if prof == "cloudhsm" {
					require.ErrorIs(t, err, ck.CKR_FUNCTION_NOT_SUPPORTED, "%v", f)
				} else {
					require.NoError(t, err, "%v", f)
				}
			}
			require.ErrorIs(t, m.Unsupported(999, profile.FnCopyObject), ck.CKR_SESSION_HANDLE_INVALID)
			err := m.UnsupportedOnSlot(3, profile.FnInitToken)
			if prof == "cloudhsm" {
				require.ErrorIs(t, err, ck.CKR_FUNCTION_NOT_SUPPORTED)
			} else {
				require.NoError(t, err)
			}
			require.ErrorIs(t, m.UnsupportedOnSlot(9, profile.FnInitToken), ck.CKR_SLOT_ID_INVALID)

			require.NoError(t, m.Logout(h))
			require.NoError(t, m.Login(h, ck.CKU_USER, []byte("alice:alice-pw-1")))
			_, priv := ecKeyPair(t, m, h, "k")
			dobj, err := m.CreateObject(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA)), ck.CKA_TOKEN: attrs.Bool(false), ck.CKA_PRIVATE: attrs.Bool(false)})
			require.NoError(t, err)
			err = m.UnsupportedForKey(h, priv, profile.FnSetAttributeValueKey)
			if prof == "cloudhsm" {
				require.ErrorIs(t, err, ck.CKR_FUNCTION_NOT_SUPPORTED)
			} else {
				require.NoError(t, err)
			}
			require.NoError(t, m.UnsupportedForKey(h, dobj, profile.FnSetAttributeValueKey), "not a key")
			require.NoError(t, m.UnsupportedForKey(h, 0x7fff, profile.FnSetAttributeValueKey), "no such object: the call answers")
		})
	}
}

// TestCloudHSMTokenInfo: a cloudhsm token is initialised from the
// application's view even before its officer exists (sessions open,
// logins fail as for an unknown user), with a crypto user PIN (libp11
// skips slots without one), CloudHSM's session limit and its own slot and
// token text; standard reports an empty store as uninitialised and
// refuses sessions on it.
func TestCloudHSMTokenInfo(t *testing.T) {
	m := profileModule(t, t.TempDir(), "cloudhsm")
	s, err := m.Slot(3)
	require.NoError(t, err)
	ti, err := s.TokenInfo()
	require.NoError(t, err)
	want := ck.ULong(ck.CKF_TOKEN_INITIALIZED | ck.CKF_LOGIN_REQUIRED | ck.CKF_USER_PIN_INITIALIZED | ck.CKF_RNG)
	assert.Equal(t, want, ti.Flags&want)
	assert.False(t, ti.Initialized, "the store holds no token yet")
	assert.Equal(t, ck.ULong(1024), ti.MaxSessionCount)
	assert.Equal(t, ck.ULong(1024), ti.MaxRwSessionCount)
	assert.Equal(t, ck.ULong(8), ti.MinPinLen)
	assert.Equal(t, ck.ULong(32), ti.MaxPinLen)
	assert.Equal(t, "hsm2m.medium", ti.Model)
	assert.Contains(t, ti.Manufacturer, "CloudHSM")
	assert.LessOrEqual(t, len(ti.Model), 16)
	assert.LessOrEqual(t, len(ti.Manufacturer), 32)
	si := s.SlotInfo()
	assert.Contains(t, si.Description, "CloudHSM")
	h := openRW(t, m)
	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("alice:alice-pw-1")), ck.CKR_PIN_INCORRECT)
	require.ErrorIs(t, m.Login(h, ck.CKU_SO, []byte("admin:officer-pw")), ck.CKR_PIN_INCORRECT)
	require.NoError(t, m.CloseSession(h))
	require.NoError(t, s.InitToken([]byte("admin:officer-pw"), "cluster"), "the CLI sets the officer up")
	ti, err = s.TokenInfo()
	require.NoError(t, err)
	assert.True(t, ti.Initialized)
	assert.Equal(t, "cluster", ti.Label)

	st := profileModule(t, t.TempDir(), "standard")
	ss, _ := st.Slot(3)
	ti, err = ss.TokenInfo()
	require.NoError(t, err)
	assert.Zero(t, ti.Flags&ck.CKF_TOKEN_INITIALIZED)
	assert.Equal(t, ck.ULong(ck.CK_EFFECTIVELY_INFINITE), ti.MaxSessionCount)
	_, err = st.OpenSession(3, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.ErrorIs(t, err, ck.CKR_TOKEN_NOT_RECOGNIZED)
}

// TestCloudHSMSessionQuota: 1024 sessions per application; the 1025th is
// CKR_SESSION_COUNT, and closing one makes room. Standard has no limit.
func TestCloudHSMSessionQuota(t *testing.T) {
	for _, prof := range []string{"cloudhsm", "standard"} {
		m, h := profileToken(t, prof) // one session open
		for i := 1; i < 1024; i++ {
			_, err := m.OpenSession(3, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
			require.NoError(t, err, "%s: session %d", prof, i+1)
		}
		h2, err := m.OpenSession(3, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		if prof == "standard" {
			require.NoError(t, err)
			continue
		}
		require.ErrorIs(t, err, ck.CKR_SESSION_COUNT)
		s, _ := m.Slot(3)
		ti, err := s.TokenInfo()
		require.NoError(t, err)
		assert.Equal(t, ck.ULong(1024), ti.SessionCount)
		require.NoError(t, m.CloseSession(h))
		h2, err = m.OpenSession(3, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		require.NoError(t, err)
		_ = h2
	}
}

// TestCloudHSMUserQuota: the 1,025th user is CKR_DEVICE_MEMORY (1,022
// users written straight into the store beside admin and alice; standard
// takes it), then with the limit lowered to 3, deleting a user makes room.
func TestCloudHSMUserQuota(t *testing.T) {
	for _, prof := range []string{"cloudhsm", "standard"} {
		m, h := profileToken(t, prof) // admin, alice
		s, _ := m.Slot(3)
		alice, err := s.Store().User("alice")
		require.NoError(t, err)
		for i := 0; i < 1022; i++ {
			u := *alice
			u.Name = fmt.Sprintf("u%d", i)
			require.NoError(t, s.Store().CreateUser(u))
		}
		err = m.CreateUser(h, "one_too_many", store.RoleCU, []byte("many-pw-12"))
		if prof == "cloudhsm" {
			require.ErrorIs(t, err, ck.CKR_DEVICE_MEMORY)
		} else {
			require.NoError(t, err)
		}
	}

	m, h := profileToken(t, "cloudhsm") // admin, alice
	s, _ := m.Slot(3)
	s.prof.Identity.MaxUsers = 3
	require.NoError(t, m.CreateUser(h, "bob", store.RoleCU, []byte("bob-pw-12")))
	require.ErrorIs(t, m.CreateUser(h, "carol", store.RoleCU, []byte("carol-pw-1")), ck.CKR_DEVICE_MEMORY)
	require.NoError(t, m.DeleteUser(h, "bob"))
	require.NoError(t, m.CreateUser(h, "carol", store.RoleCU, []byte("carol-pw-1")))
}
