package token

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestDeleteUserLoggedInElsewhere: a crypto user logged in through one
// module (another process as far as the store can tell: the registry
// tells openings apart) cannot be deleted by an officer through another
// one, in either profile. Before the login registry the delete succeeded
// and the deleted user's session went on signing with a key it had
// opened. Once the user logged out the delete goes through.
func TestDeleteUserLoggedInElsewhere(t *testing.T) {
	for _, prof := range []string{"standard", "cloudhsm"} {
		t.Run(prof, func(t *testing.T) {
			dir := t.TempDir()
			cfg, err := ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_level = error\n[slot 3]\nlabel = t\nprofile = %s\n", dir, prof), "test")
			require.NoError(t, err)
			app, err := Open(cfg)
			require.NoError(t, err)
			defer app.Close()
			s, err := app.Slot(3)
			require.NoError(t, err)
			require.NoError(t, s.InitToken([]byte("admin:officer-pw"), "t"))

			cli, err := Open(cfg) // the management CLI
			require.NoError(t, err)
			defer cli.Close()
			hc, err := cli.OpenSession(3, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
			require.NoError(t, err)
			require.NoError(t, cli.Login(hc, ck.CKU_SO, []byte("admin:officer-pw")))
			require.NoError(t, cli.CreateUser(hc, "alice", 2, []byte("alice-pw-1")))

			ha, err := app.OpenSession(3, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
			require.NoError(t, err)
			require.NoError(t, app.Login(ha, ck.CKU_USER, []byte("alice:alice-pw-1")))
			k, err := app.GenerateKey(ha, Mechanism{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, map[ck.AttributeType][]byte{
				ck.CKA_VALUE_LEN: {32, 0, 0, 0, 0, 0, 0, 0}, ck.CKA_SIGN: {1}, ck.CKA_TOKEN: {0}})
			require.NoError(t, err)

			err = cli.DeleteUser(hc, "alice")
			require.ErrorIs(t, err, ck.CKR_USER_ALREADY_LOGGED_IN, "alice is logged in in the application")
			require.NoError(t, app.SignInit(ha, Mechanism{Type: ck.CKM_SHA256_HMAC}, k))
			_, err = app.Sign(ha, []byte("x"), Out{Buf: make([]byte, 32)})
			require.NoError(t, err, "alice's session works on")

			require.NoError(t, app.Logout(ha))
			require.NoError(t, cli.DeleteUser(hc, "alice"))
			require.Error(t, app.Login(ha, ck.CKU_USER, []byte("alice:alice-pw-1")), "alice is gone")
		})
	}
}
