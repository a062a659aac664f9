package storetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// testReplica: ReplicaOf reads a key with its shares and key quorum
// values; CreateReplica stores it in another token in one transaction,
// all or nothing.
func testReplica(t *testing.T, b Backend) {
	src := initialized(t, b)
	in := obj("k1", "alice", true, "k")
	in.Keys = map[string][]byte{"alice": []byte("dk-alice"), "bob": []byte("dk-bob")}
	k, err := src.CreateObject(in)
	require.NoError(t, err)
	require.NoError(t, src.Share(k.ID, "bob", []byte("dk-bob")))
	require.NoError(t, src.SetKeyQuorum(k.ID, 2, 1))
	r, err := src.ReplicaOf(k.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"bob"}, r.Sharees)
	assert.Equal(t, &[2]int{2, 1}, r.Object.Quorum)
	_, err = src.ReplicaOf(999999)
	assert.ErrorIs(t, err, store.ErrNotFound)

	dst := initialized(t, b)
	_, err = dst.CreateObject(obj("filler", "", false, "f")) // the handle differs from the source's
	require.NoError(t, err)
	got, _, err := dst.CreateReplica(r)
	require.NoError(t, err)
	assert.Equal(t, int64(1), got.Version)
	rd, err := b.Reopen(t, dst).Object(got.ID)
	require.NoError(t, err)
	assert.Equal(t, "k1", rd.UniqueID)
	assert.Equal(t, in.Sealed, rd.Sealed)
	assert.Equal(t, in.Keys, rd.Keys)
	assert.Equal(t, []byte("k"), rd.Attrs[ck.CKA_LABEL])
	assert.Equal(t, &[2]int{2, 1}, rd.Quorum)
	sh, err := dst.SharedWith(got.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"bob"}, sh)

	_, _, err = dst.CreateReplica(r)
	assert.ErrorIs(t, err, store.ErrExists, "the unique ID is there already")
	r.Object.UniqueID, r.Sharees = "k2", []string{"bob", "nobody"}
	_, _, err = dst.CreateReplica(r)
	assert.ErrorIs(t, err, store.ErrNotFound, "a sharee missing")
	ids, err := dst.Find(store.Query{Match: map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte("k")}, Viewer: "alice"})
	require.NoError(t, err)
	assert.Equal(t, []int64{got.ID}, ids, "the failed replica stored nothing")
}

// testUpgradeKeys: the move of a format-1 token to per-user keys is one
// transaction that happens once; an object changed meanwhile fails it
// whole.
func testUpgradeKeys(t *testing.T, b Backend) {
	s := initialized(t, b) // no escrow key: as a token upgraded from format 1
	o, err := s.CreateObject(obj("o1", "alice", true, "o"))
	require.NoError(t, err)
	alice := user("alice", store.RoleCU)
	alice.PublicKey, alice.Escrow, alice.Legacy = []byte("pub"), []byte("escrow"), []byte("legacy")
	up := o
	up.Sealed = map[ck.AttributeType][]byte{ck.CKA_VALUE: []byte("resealed")}
	up.Keys = map[string][]byte{"alice": []byte("dk")}

	stale := up
	stale.Version = o.Version + 5
	assert.ErrorIs(t, s.UpgradeKeys([]byte("escrow-pub"), []store.UserRecord{alice}, []store.ObjectRecord{stale}), store.ErrConflict)
	tr, err := s.Token()
	require.NoError(t, err)
	assert.Empty(t, tr.EscrowPublic, "the failed upgrade changed nothing")
	u, err := s.User("alice")
	require.NoError(t, err)
	assert.Empty(t, u.PublicKey)

	require.NoError(t, s.UpgradeKeys([]byte("escrow-pub"), []store.UserRecord{alice}, []store.ObjectRecord{up}))
	o2 := b.Reopen(t, s)
	tr, err = o2.Token()
	require.NoError(t, err)
	assert.Equal(t, []byte("escrow-pub"), tr.EscrowPublic)
	u, err = o2.User("alice")
	require.NoError(t, err)
	assert.Equal(t, alice, *u)
	rd, err := o2.Object(o.ID)
	require.NoError(t, err)
	assert.Equal(t, up.Sealed, rd.Sealed)
	assert.Equal(t, up.Keys, rd.Keys)
	assert.Greater(t, rd.Version, o.Version)
	assert.ErrorIs(t, o2.UpgradeKeys([]byte("again"), nil, nil), store.ErrConflict, "once only")
}
