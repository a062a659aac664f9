package store

import (
	"database/sql"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQuorumKeysAndValues: keys belong to existing users and go with them;
// values default to none set.
func TestQuorumKeysAndValues(t *testing.T) {
	s := initTest(t)
	require.NoError(t, s.SetQuorumKey("Admin", []byte("der-admin")))
	assert.ErrorIs(t, s.SetQuorumKey("nobody", []byte("x")), ErrNotFound)
	require.NoError(t, s.SetQuorumKey("alice", []byte("der-alice")))
	ks, err := s.QuorumKeys()
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"admin": []byte("der-admin"), "alice": []byte("der-alice")}, ks)
	require.NoError(t, s.DeleteUser("alice"))
	ks, err = s.QuorumKeys()
	require.NoError(t, err)
	assert.Len(t, ks, 1, "a deleted user's key goes with it")

	vs, err := s.QuorumValues()
	require.NoError(t, err)
	assert.Empty(t, vs)
	require.NoError(t, s.SetQuorumValue("user", 2))
	require.Error(t, s.SetQuorumValue("user", 0), "the table refuses values below 1")
	vs, err = s.QuorumValues()
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"user": 2}, vs)
}

// TestQuorumTokens: one live token per user and service when unique,
// expired tokens purged, the quota, consuming once only.
func TestQuorumTokens(t *testing.T) {
	s := initTest(t)
	tok := QuorumToken{Service: "user", User: "admin", Approval: []byte("a1"), Created: 100, Expires: 700}
	id, err := s.AddQuorumToken(tok, 100, true, 3)
	require.NoError(t, err)
	_, err = s.AddQuorumToken(tok, 200, true, 3)
	assert.ErrorIs(t, err, ErrExists)
	// Once expired it is purged, and another may be made.
	tok.Created, tok.Expires = 700, 1300
	id2, err := s.AddQuorumToken(tok, 700, true, 3)
	require.NoError(t, err)
	assert.NotEqual(t, id, id2)
	assert.ErrorIs(t, s.ConsumeQuorumToken(id), ErrNotFound, "purged")

	k := QuorumToken{Service: "key-usage", User: "alice", Approval: []byte("k"), Created: 700, Expires: 1300}
	_, err = s.AddQuorumToken(k, 700, false, 3)
	require.NoError(t, err)
	_, err = s.AddQuorumToken(k, 700, false, 3)
	require.NoError(t, err)
	_, err = s.AddQuorumToken(k, 700, false, 3)
	assert.ErrorIs(t, err, ErrQuota)

	require.NoError(t, s.ApproveQuorumToken(id2, []string{"admin", "bob"}))
	ts, err := s.QuorumTokens()
	require.NoError(t, err)
	require.Len(t, ts, 3)
	assert.Equal(t, []string{"admin", "bob"}, ts[0].Approvers)
	assert.Equal(t, []byte("a1"), ts[0].Approval)

	require.NoError(t, s.ConsumeQuorumToken(id2))
	assert.ErrorIs(t, s.ConsumeQuorumToken(id2), ErrNotFound, "a token is used once")
	n, err := s.DeleteQuorumTokens("ALICE")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	ts, err = s.QuorumTokens()
	require.NoError(t, err)
	assert.Empty(t, ts)
}

// keyQuorum reads a key's key_quorum row as it is stored (0, 0 when it
// has none, e.g. once the key is deleted).
func keyQuorum(s Store, id int64) (use, manage int, err error) {
	err = s.(*sqliteStore).db.QueryRow(`SELECT use_value, manage_value FROM key_quorum WHERE object_id = ?`, id).Scan(&use, &manage)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	return use, manage, err
}

// TestKeyQuorum: values go with the key; none set reads 0, 0.
func TestKeyQuorum(t *testing.T) {
	s := initTest(t)
	a, err := s.CreateObject(obj("a1", "alice", true, "a"))
	require.NoError(t, err)
	u, m, err := keyQuorum(s, a.ID)
	require.NoError(t, err)
	assert.Equal(t, [2]int{0, 0}, [2]int{u, m})
	require.NoError(t, s.SetKeyQuorum(a.ID, 2, 0))
	u, m, err = keyQuorum(s, a.ID)
	require.NoError(t, err)
	assert.Equal(t, [2]int{2, 0}, [2]int{u, m})
	o, err := s.Object(a.ID)
	require.NoError(t, err)
	assert.Equal(t, &[2]int{2, 0}, o.Quorum, "Object reads the values with the key")
	assert.Error(t, s.SetKeyQuorum(a.ID, 9, 0), "the table refuses values above 8")
	assert.ErrorIs(t, s.SetKeyQuorum(999999, 2, 2), ErrNotFound)
	require.NoError(t, s.Share(a.ID, "bob", nil))
	ks, err := s.SharedKeyQuorums("BOB")
	require.NoError(t, err)
	assert.Equal(t, []KeyQuorumUsers{{ObjectID: a.ID, Use: 2, Manage: 0, Users: 2}}, ks)
	ks, err = s.SharedKeyQuorums("alice")
	require.NoError(t, err)
	assert.Empty(t, ks, "the owner is no sharee")
	_, err = s.DeleteObject(a.ID)
	require.NoError(t, err)
	u, _, err = keyQuorum(s, a.ID)
	require.NoError(t, err)
	assert.Zero(t, u)
}
