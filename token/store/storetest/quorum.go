package storetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/token/store"
)

// testQuorumKeysAndValues: keys belong to existing users and go with
// them; values default to none set.
func testQuorumKeysAndValues(t *testing.T, b Backend) {
	s := initialized(t, b)
	require.NoError(t, s.SetQuorumKey("Admin", []byte("der-admin")))
	assert.ErrorIs(t, s.SetQuorumKey("nobody", []byte("x")), store.ErrNotFound)
	require.NoError(t, s.SetQuorumKey("alice", []byte("der-alice")))
	ks, err := b.Reopen(t, s).QuorumKeys()
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
	require.Error(t, s.SetQuorumValue("user", 0), "values below 1 are refused")
	vs, err = s.QuorumValues()
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"user": 2}, vs)
}

// testQuorumTokens: one live token per user and service when unique,
// expired tokens purged, the quota, consuming once only.
func testQuorumTokens(t *testing.T, b Backend) {
	s := initialized(t, b)
	tok := store.QuorumToken{Service: "user", User: "admin", Approval: []byte("a1"), Created: 100, Expires: 700}
	id, err := s.AddQuorumToken(tok, 100, true, 3)
	require.NoError(t, err)
	_, err = b.Reopen(t, s).AddQuorumToken(tok, 200, true, 3)
	assert.ErrorIs(t, err, store.ErrExists, "unique across openings")
	// Once expired it is purged, and another may be made.
	tok.Created, tok.Expires = 700, 1300
	id2, err := s.AddQuorumToken(tok, 700, true, 3)
	require.NoError(t, err)
	assert.NotEqual(t, id, id2)
	assert.ErrorIs(t, s.ConsumeQuorumToken(id), store.ErrNotFound, "purged")

	k := store.QuorumToken{Service: "key-usage", User: "alice", Approval: []byte("k"), Created: 700, Expires: 1300}
	_, err = s.AddQuorumToken(k, 700, false, 3)
	require.NoError(t, err)
	_, err = s.AddQuorumToken(k, 700, false, 3)
	require.NoError(t, err)
	_, err = s.AddQuorumToken(k, 700, false, 3)
	assert.ErrorIs(t, err, store.ErrQuota)

	require.NoError(t, s.ApproveQuorumToken(id2, []string{"admin", "bob"}))
	ts, err := s.QuorumTokens()
	require.NoError(t, err)
	require.Len(t, ts, 3)
	assert.Equal(t, []string{"admin", "bob"}, ts[0].Approvers)
	assert.Equal(t, []byte("a1"), ts[0].Approval)

	require.NoError(t, s.ConsumeQuorumToken(id2))
	assert.ErrorIs(t, b.Reopen(t, s).ConsumeQuorumToken(id2), store.ErrNotFound, "a token is used once")
	n, err := s.DeleteQuorumTokens("ALICE")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	ts, err = s.QuorumTokens()
	require.NoError(t, err)
	assert.Empty(t, ts)
}

// testKeyQuorum: a key's values are read with it and go with it; none
// set reads nil.
func testKeyQuorum(t *testing.T, b Backend) {
	s := initialized(t, b)
	a, err := s.CreateObject(obj("a1", "alice", true, "a"))
	require.NoError(t, err)
	o, err := s.Object(a.ID)
	require.NoError(t, err)
	assert.Nil(t, o.Quorum)
	require.NoError(t, s.SetKeyQuorum(a.ID, 2, 0))
	o, err = b.Reopen(t, s).Object(a.ID)
	require.NoError(t, err)
	assert.Equal(t, &[2]int{2, 0}, o.Quorum, "Object reads the values with the key")
	assert.Error(t, s.SetKeyQuorum(a.ID, 9, 0), "values above 8 are refused")
	assert.ErrorIs(t, s.SetKeyQuorum(999999, 2, 2), store.ErrNotFound)
	require.NoError(t, s.Share(a.ID, "bob", nil))
	ks, err := s.SharedKeyQuorums("BOB")
	require.NoError(t, err)
	assert.Equal(t, []store.KeyQuorumUsers{{ObjectID: a.ID, Use: 2, Manage: 0, Users: 2}}, ks)
	ks, err = s.SharedKeyQuorums("alice")
	require.NoError(t, err)
	assert.Empty(t, ks, "the owner is no sharee")
	_, err = s.DeleteObject(a.ID)
	require.NoError(t, err)
	ks, err = s.SharedKeyQuorums("bob")
	require.NoError(t, err)
	assert.Empty(t, ks, "the values go with the key")
}
