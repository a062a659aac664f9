package admin

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token"
)

func TestUsers(t *testing.T) {
	k := newTok(t, "")
	m, h := k.login(coPIN)
	u, err := CreateUser(m, h, "Carol", "cu", []byte("carol-pw"))
	require.NoError(t, err)
	assert.Equal(t, token.User{Name: "carol", Role: RoleCU, HasPIN: true}, u)
	u, err = User(m, h, "ADMIN")
	require.NoError(t, err)
	assert.Equal(t, RoleCO, u.Role)

	codeOf := func(err error) string { _, c := ErrorCode(err); return c }
	_, err = User(m, h, "nobody")
	assert.Equal(t, token.CodeNoSuchUser, codeOf(err))
	_, err = CreateUser(m, h, "carol", "cu", []byte("carol-pw"))
	assert.Equal(t, token.CodeUserExists, codeOf(err))
	_, err = CreateUser(m, h, "dave", "boss", []byte("dave-pw1"))
	assert.Equal(t, token.CodeBadRole, codeOf(err))

	// A crypto user may not create users: the token says so.
	am, ah := k.login(alicePIN)
	_, err = CreateUser(am, ah, "eve", "cu", []byte("eve-pw-1"))
	require.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN)
}
