package token

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// infoReads counts the store reads C_GetTokenInfo makes.
type infoReads struct {
	store.Store
	n atomic.Int64
}

func (c *infoReads) Token() (*store.TokenRecord, error) {
	c.n.Add(1)
	return c.Store.Token()
}

func (c *infoReads) User(name string) (*store.UserRecord, error) {
	c.n.Add(1)
	return c.Store.User(name)
}

func (c *infoReads) Users() ([]store.UserRecord, error) {
	c.n.Add(1)
	return c.Store.Users()
}

// TestTokenInfoReadsOncePerGeneration: C_GetTokenInfo reads the token
// record and the users' flags once per store generation; a commit by
// another process (here: a wrong login, which counts a failure) makes the
// next call read again and show it.
func TestTokenInfoReadsOncePerGeneration(t *testing.T) {
	m, dir := newToken(t)
	s, err := m.Slot(3)
	require.NoError(t, err)
	c := &infoReads{Store: s.st}
	s.mu.Lock()
	s.st = c
	s.mu.Unlock()

	first, err := s.TokenInfo()
	require.NoError(t, err)
	require.Positive(t, c.n.Load(), "the first call reads the store")
	read := c.n.Load()
	again, err := s.TokenInfo()
	require.NoError(t, err)
	assert.Equal(t, read, c.n.Load(), "nothing changed: nothing read")
	assert.Equal(t, first.Label, again.Label)
	assert.Equal(t, first.Flags, again.Flags)
	assert.Zero(t, first.Flags&ck.CKF_USER_PIN_COUNT_LOW)

	other, err := Open(testConfig(t, dir))
	require.NoError(t, err)
	defer other.Close()
	h, err := other.OpenSession(3, ck.CKF_SERIAL_SESSION)
	require.NoError(t, err)
	require.ErrorIs(t, other.Login(h, ck.CKU_USER, []byte("user:wrong")), ck.CKR_PIN_INCORRECT)

	after, err := s.TokenInfo()
	require.NoError(t, err)
	assert.Greater(t, c.n.Load(), read, "another process's commit: read again")
	assert.NotZero(t, after.Flags&ck.CKF_USER_PIN_COUNT_LOW, "its failed login shows")
}
