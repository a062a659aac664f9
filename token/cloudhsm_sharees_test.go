package token

import (
	"crypto/rsa"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/profile"
	"gohsm/token/quorum"
	"gohsm/token/store"
)

// TestCloudHSMShareLimit: "You can share a key with up to seven CUs in
// addition to the key owner" (UG:cloudhsm_cli-key-share). In cloudhsm the
// eighth sharee is refused with a Mistake (share_limit,
// CKR_ACTION_PROHIBITED) and the key keeps its seven; sharing again with
// one of them still says already shared, and after an unshare there is
// room for one more. Standard has no limit.
func TestCloudHSMShareLimit(t *testing.T) {
	attrsBothProfiles(t, func(t *testing.T, cloudhsm bool) {
		m, h := profileToken(t, map[bool]string{false: "standard", true: "cloudhsm"}[cloudhsm])
		n := profile.MaxSharees + 2
		for i := range n {
			require.NoError(t, m.CreateUser(h, fmt.Sprintf("cu%d", i), store.RoleCU, []byte("cu-pw-1234")))
		}
		require.NoError(t, m.Logout(h))
		require.NoError(t, m.Login(h, ck.CKU_USER, []byte("alice:alice-pw-1")))
		k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("k", true))
		require.NoError(t, err)
		for i := range profile.MaxSharees {
			require.NoError(t, m.Share(h, k, fmt.Sprintf("cu%d", i), true))
		}
		eighth := fmt.Sprintf("cu%d", profile.MaxSharees)
		err = m.Share(h, k, eighth, true)
		shared := func() []string {
			s, err := m.Slot(3)
			require.NoError(t, err)
			got, err := s.Store().SharedWith(int64(k))
			require.NoError(t, err)
			return got
		}
		if !cloudhsm {
			require.NoError(t, err)
			require.NoError(t, m.Share(h, k, fmt.Sprintf("cu%d", n-1), true))
			require.Len(t, shared(), n)
			return
		}
		require.ErrorIs(t, err, ck.CKR_ACTION_PROHIBITED)
		require.Equal(t, CodeShareLimit, MistakeCode(err), "%v", err)
		require.Len(t, shared(), profile.MaxSharees)
		require.Equal(t, CodeAlreadyShared, MistakeCode(m.Share(h, k, "cu0", true)), "a sharee is not a new one")
		require.NoError(t, m.Share(h, k, "cu0", false))
		require.NoError(t, m.Share(h, k, eighth, true), "an unshare makes room")
		require.Len(t, shared(), profile.MaxSharees)
	})
}

// TestCloudHSMShareLimitKeepsApproval: a share the limit refuses is
// refused before the key's management quorum gate, so it does not use up
// the approved token: the next management operation still has it.
func TestCloudHSMShareLimitKeepsApproval(t *testing.T) {
	m := profileModuleLines(t, t.TempDir(), "profile = cloudhsm")
	h := profileSetUp(t, m, soPIN, "user", "user-pw-1")
	e := &quorumEnv{t: t, m: m, h: h,
		keys: map[string]*rsa.PrivateKey{"admin": approverKey(t, 0), "user": approverKey(t, 3), "bob": approverKey(t, 4)},
		pins: map[string]string{"admin": soPIN, "user": userPIN, "bob": "bob:bob-pw-123"}}
	require.NoError(t, m.CreateUser(h, "bob", store.RoleCU, []byte("bob-pw-123")))
	sharees := []string{"bob"}
	for i := 1; i <= profile.MaxSharees; i++ {
		u := fmt.Sprintf("cu%d", i)
		require.NoError(t, m.CreateUser(h, u, store.RoleCU, []byte("cu-pw-1234")))
		sharees = append(sharees, u)
	}
	for _, u := range []string{"user", "bob"} {
		e.login(u)
		e.register(u)
	}
	e.login("user")
	k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("k", true))
	require.NoError(t, err)
	for _, u := range sharees[:profile.MaxSharees] {
		require.NoError(t, m.Share(h, k, u, true))
	}
	require.NoError(t, m.SetKeyQuorumValues(h, k, 0, 2))
	require.NoError(t, m.ApproveQuorumToken(h, e.token(quorum.KeyManagement, "user", "bob")))
	err = m.Share(h, k, sharees[profile.MaxSharees], true)
	require.Equal(t, CodeShareLimit, MistakeCode(err), "%v", err)
	require.NoError(t, m.Share(h, k, "cu1", false), "the approval is still there")
	require.ErrorIs(t, m.Share(h, k, "cu2", false), quorum.ErrQuorumFailed, "and was used once")
}
