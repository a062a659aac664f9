package token

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// TestUserNamesFoldASCIIOnly: a user name spelled with a letter that
// Unicode case folding maps to ASCII (U+212A KELVIN SIGN -> 'k', U+0130 ->
// 'i') names no user: C_Login, C_LoginUser, C_InitPIN and the vendor user
// calls refuse it instead of reaching user "key" or "i".
func TestUserNamesFoldASCIIOnly(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(soPIN)))
	require.NoError(t, m.InitPIN(h, []byte("key:key-pw-1")))
	require.Error(t, m.InitPIN(h, []byte("\u212aey:other-pw")), "C_InitPIN of a Kelvin-sign name")
	require.Error(t, m.CreateUser(h, "\u0130", store.RoleCU, []byte("i-pw-123")), "CreateUser of U+0130")
	require.Error(t, m.ChangePassword(h, "\u212aey", []byte("new-pw-12")), "ChangePassword of a Kelvin-sign name")
	require.Error(t, m.DeleteUser(h, "\u212aey"), "DeleteUser of a Kelvin-sign name")
	require.NoError(t, m.Logout(h))

	require.ErrorIs(t, m.Login(h, ck.CKU_USER, []byte("\u212aey:key-pw-1")), ck.CKR_PIN_INCORRECT, "C_Login as \\u212aey")
	require.ErrorIs(t, m.LoginUser(h, ck.CKU_USER, []byte("key-pw-1"), "\u212aEY"), ck.CKR_PIN_INCORRECT, "C_LoginUser as \\u212aEY")
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("KEY:key-pw-1")), "ASCII case still folds")
}
