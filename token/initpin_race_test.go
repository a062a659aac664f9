package token

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// racingUsers is a slot's store whose first User read of a name runs
// hook before it answers: another process changing the user between this
// process's read and its write.
type racingUsers struct {
	store.Store
	name string
	hook func()
}

func (r *racingUsers) User(name string) (*store.UserRecord, error) {
	u, err := r.Store.User(name)
	if name == r.name && r.hook != nil {
		h := r.hook
		r.hook = nil
		h()
	}
	return u, err
}

// TestInitPINUserRace: C_InitPIN (and the CLI's change-password, which
// shares its path) read the user, then write it; a second process that
// creates or deletes the user in between made the write fail with the
// store's conflict, which the token answered CKR_DEVICE_ERROR. Now
// C_InitPIN ends as if it came second (it sets the password of the user
// just made; it makes the user just deleted), and a password change of a
// user deleted meanwhile is the mistake no_such_user. Both profiles.
func TestInitPINUserRace(t *testing.T) {
	attrsBothProfiles(t, func(t *testing.T, cloudhsm bool) {
		m1, h1 := profileToken(t, map[bool]string{false: "standard", true: "cloudhsm"}[cloudhsm])
		s1, err := m1.Slot(3)
		require.NoError(t, err)
		cfg := *m1.cfg
		m2, err := Open(&cfg)
		require.NoError(t, err)
		defer m2.Close()
		h2 := openRW(t, m2)
		require.NoError(t, m2.Login(h2, ck.CKU_SO, []byte("admin:officer-pw")))
		race := func(name string, hook func()) {
			s1.mu.Lock()
			s1.st = &racingUsers{Store: s1.st, name: name, hook: hook}
			s1.mu.Unlock()
		}
		m3, err := Open(&cfg) // a third process, to log in
		require.NoError(t, err)
		defer m3.Close()
		h3 := openRW(t, m3)
		login := func(pin string) error {
			err := m3.Login(h3, ck.CKU_USER, []byte(pin))
			if err == nil {
				require.NoError(t, m3.Logout(h3))
			}
			return err
		}

		// Made by the other process after the read: the password is set.
		race("carol", func() { require.NoError(t, m2.CreateUser(h2, "carol", store.RoleCU, []byte("carol-pw-2"))) })
		require.NoError(t, m1.InitPIN(h1, []byte("carol:carol-pw-1")))
		require.NoError(t, login("carol:carol-pw-1"))
		require.ErrorIs(t, login("carol:carol-pw-2"), ck.CKR_PIN_INCORRECT)

		// Deleted by the other process after the read: made again.
		race("carol", func() { require.NoError(t, m2.DeleteUser(h2, "carol")) })
		require.NoError(t, m1.InitPIN(h1, []byte("carol:carol-pw-3")))
		require.NoError(t, login("carol:carol-pw-3"))

		// A password change of a user deleted meanwhile.
		race("carol", func() { require.NoError(t, m2.DeleteUser(h2, "carol")) })
		err = m1.ChangePassword(h1, "carol", []byte("carol-pw-4"))
		require.ErrorIs(t, err, ck.CKR_ACTION_PROHIBITED)
		require.Equal(t, CodeNoSuchUser, MistakeCode(err), "%v", err)
		require.False(t, errors.Is(err, ck.CKR_DEVICE_ERROR))
	})
}
