package token

import (
	"fmt"
	"testing"

	"gohsm/internal/ck"
	"gohsm/token/store"

	"github.com/stretchr/testify/require"
)

// TestUserMistakesGetTheirCode: management requests that are a user's
// mistake (a user that exists, a user that does not, a key shared twice,
// unshared when not shared, shared with an officer or its owner, a bad
// role, an officer deleting itself, a user who owns keys) answer a Mistake with a stable code and the nearest CKR, never
// CKR_DEVICE_ERROR (sharing twice and unsharing twice were
// CKR_DEVICE_ERROR, the store's conflict passed on as a broken token) and
// never CKR_ARGUMENTS_BAD (the others were). Both profiles.
func TestUserMistakesGetTheirCode(t *testing.T) {
	for _, prof := range []string{"standard", "cloudhsm"} {
		t.Run(prof, func(t *testing.T) {
			m, h := profileToken(t, prof) // officer admin logged in; crypto user alice
			require.NoError(t, m.CreateUser(h, "bob", store.RoleCU, []byte("bob-pw-123")))
			check := func(what string, err error, code string, rv ck.RV) {
				t.Helper()
				require.Error(t, err, what)
				require.ErrorIs(t, err, rv, what)
				require.Equal(t, code, MistakeCode(err), "%s: %v", what, err)
				require.NotErrorIs(t, err, ck.CKR_DEVICE_ERROR, what)
				require.NotErrorIs(t, err, ck.CKR_ARGUMENTS_BAD, what)
			}
			check("create an existing user", m.CreateUser(h, "ALICE", store.RoleCU, []byte("alice-pw-2")), CodeUserExists, ck.CKR_ACTION_PROHIBITED)
			check("create an existing officer", m.CreateUser(h, "admin", store.RoleCO, []byte("officer-pw-2")), CodeUserExists, ck.CKR_ACTION_PROHIBITED)
			check("delete a missing user", m.DeleteUser(h, "nobody"), CodeNoSuchUser, ck.CKR_ACTION_PROHIBITED)
			check("change a missing user's password", m.ChangePassword(h, "nobody", []byte("nobody-pw-1")), CodeNoSuchUser, ck.CKR_ACTION_PROHIBITED)
			check("delete oneself", m.DeleteUser(h, "admin"), CodeDeleteSelf, ck.CKR_ACTION_PROHIBITED)
			_, err := ParseRole("root")
			check("a bad role", err, CodeBadRole, ck.CKR_USER_TYPE_INVALID)
			require.NoError(t, m.Logout(h))

			require.NoError(t, m.Login(h, ck.CKU_USER, []byte("alice:alice-pw-1")))
			k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("k", true))
			require.NoError(t, err)
			check("unshare a key never shared", m.Share(h, k, "bob", false), CodeNotShared, ck.CKR_ACTION_PROHIBITED)
			require.NoError(t, m.Share(h, k, "bob", true))
			check("share a key again", m.Share(h, k, "BOB", true), CodeAlreadyShared, ck.CKR_ACTION_PROHIBITED)
			check("share with an officer", m.Share(h, k, "admin", true), CodeNotCryptoUser, ck.CKR_USER_TYPE_INVALID)
			check("share with nobody", m.Share(h, k, "nobody", true), CodeNoSuchUser, ck.CKR_ACTION_PROHIBITED)
			check("share with the owner", m.Share(h, k, "alice", true), CodeOwnKey, ck.CKR_ACTION_PROHIBITED)
			require.NoError(t, m.Share(h, k, "bob", false))
			require.NoError(t, m.Logout(h))
			require.NoError(t, m.Login(h, ck.CKU_SO, []byte("admin:officer-pw")))
			check("delete a user who owns keys", m.DeleteUser(h, "alice"), CodeUserOwnsKeys, ck.CKR_ACTION_PROHIBITED)
			require.NoError(t, m.Logout(h))
			require.NoError(t, m.Login(h, ck.CKU_USER, []byte("alice:alice-pw-1")))
			check("unshare a key again", m.Share(h, k, "bob", false), CodeNotShared, ck.CKR_ACTION_PROHIBITED)
			// The message names the mistake; the CKR stays last, as the
			// token's other errors have it.
			require.Equal(t, fmt.Sprintf("token: object %d is not shared with \"bob\": CKR_ACTION_PROHIBITED", k), m.Share(h, k, "bob", false).Error())
		})
	}
}
