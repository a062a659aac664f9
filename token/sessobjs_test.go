package token

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// TestCloseSessionVisitsOnlyItsObjects: closing a session visits its own
// session objects, not every session object of the slot (counted through
// testOnlySessObjVisit, not timed).
func TestCloseSessionVisitsOnlyItsObjects(t *testing.T) {
	m, _ := newToken(t)
	data := func(h ck.ULong) ck.ULong {
		o, err := m.CreateObject(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA)),
			ck.CKA_TOKEN: attrs.Bool(false), ck.CKA_PRIVATE: attrs.Bool(false)})
		require.NoError(t, err)
		return o
	}
	busy, small, other := openRW(t, m), openRW(t, m), openRW(t, m)
	const many = 5_000
	for range many {
		data(busy)
	}
	mine := []ck.ULong{data(small), data(small), data(small)}
	require.NoError(t, m.DestroyObject(small, mine[2]))
	kept := data(other)

	visits := 0
	testOnlySessObjVisit = func() { visits++ }
	t.Cleanup(func() { testOnlySessObjVisit = func() {} })

	require.NoError(t, m.CloseSession(small))
	require.Equal(t, 2, visits, "closing a session with 2 objects among %d", many+3)
	for _, o := range mine {
		_, err := m.GetAttributeValue(other, o, []ck.AttributeType{ck.CKA_CLASS})
		require.ErrorIs(t, err, ck.CKR_OBJECT_HANDLE_INVALID, "object %d of the closed session", o)
	}
	_, err := m.GetAttributeValue(other, kept, []ck.AttributeType{ck.CKA_CLASS})
	require.NoError(t, err, "another session's object stays")

	visits = 0
	require.NoError(t, m.CloseAllSessions(3))
	require.Equal(t, many+1, visits, "C_CloseAllSessions visits each remaining object once")
}
