package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

func testObjects(t *testing.T, b Backend) {
	s := initialized(t, b)
	in := obj("uid-1", "Alice", true, "key one")
	in.Attrs[ck.CKA_ID] = []byte{} // empty values survive
	in.Keys = map[string][]byte{"alice": []byte("dk-alice")}
	got, err := s.CreateObject(in)
	require.NoError(t, err)
	assert.NotZero(t, got.ID)
	assert.Equal(t, int64(1), got.Version)
	assert.Equal(t, "alice", got.Owner)

	rd, err := s.Object(got.ID)
	require.NoError(t, err)
	assert.Equal(t, got, *rd)
	assert.NotNil(t, rd.Attrs[ck.CKA_ID])
	assert.Equal(t, []byte("dk-alice"), rd.Keys["alice"])

	_, err = s.CreateObject(obj("uid-1", "", false, "dup"))
	assert.ErrorIs(t, err, store.ErrExists)
	_, err = s.CreateObject(obj("uid-2", "nobody", false, "x"))
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.CreateObject(store.ObjectRecord{})
	assert.Error(t, err)
	both := obj("uid-3", "", false, "x")
	both.Attrs[ck.CKA_VALUE] = []byte("plain")
	_, err = s.CreateObject(both)
	assert.Error(t, err, "an attribute cannot be plain and sealed")

	// Update with the current version succeeds and bumps it.
	upd := *rd
	upd.Attrs = map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte("renamed")}
	upd.Sealed = map[ck.AttributeType][]byte{ck.CKA_VALUE: []byte("v2")}
	upd.Private = false
	v, _, err := s.UpdateObject(upd)
	require.NoError(t, err)
	assert.Equal(t, int64(2), v)
	ver, err := s.ObjectVersion(got.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(2), ver)
	rd2, err := s.Object(got.ID)
	require.NoError(t, err)
	assert.Equal(t, upd.Attrs, rd2.Attrs)
	assert.Equal(t, upd.Sealed, rd2.Sealed)
	assert.False(t, rd2.Private)
	assert.Equal(t, "alice", rd2.Owner)

	// A stale version is a conflict and changes nothing.
	_, _, err = s.UpdateObject(upd)
	assert.ErrorIs(t, err, store.ErrConflict)
	rd3, err := s.Object(got.ID)
	require.NoError(t, err)
	assert.Equal(t, rd2, rd3)

	_, _, err = s.UpdateObject(store.ObjectRecord{ID: 999999, Version: 1})
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.ObjectVersion(999999)
	assert.ErrorIs(t, err, store.ErrNotFound)

	_, err = s.DeleteObject(got.ID)
	require.NoError(t, err)
	_, err = s.DeleteObject(got.ID)
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.Object(got.ID)
	assert.ErrorIs(t, err, store.ErrNotFound)

	// The deleted handle is never handed out again, nor its unique ID's
	// old attributes.
	again, err := s.CreateObject(obj("uid-1", "", false, "again"))
	require.NoError(t, err)
	assert.Greater(t, again.ID, got.ID)
	rd4, err := s.Object(again.ID)
	require.NoError(t, err)
	assert.Equal(t, []byte("sealed-uid-1"), rd4.Sealed[ck.CKA_VALUE])
	assert.Nil(t, rd4.Attrs[ck.CKA_ID])
}

// testObjectsAcrossOpenings: a handle means the same object in every
// opening; a change by one is read by the other's next call.
func testObjectsAcrossOpenings(t *testing.T, b Backend) {
	a := initialized(t, b)
	o := b.Reopen(t, a)
	x, err := a.CreateObject(obj("x", "alice", true, "x"))
	require.NoError(t, err)
	rd, err := o.Object(x.ID)
	require.NoError(t, err)
	assert.Equal(t, x, *rd)
	ids, err := o.Find(store.Query{Viewer: "alice"})
	require.NoError(t, err)
	assert.Equal(t, []int64{x.ID}, ids)

	upd := *rd
	upd.Attrs = map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte("by the other")}
	_, _, err = o.UpdateObject(upd)
	require.NoError(t, err)
	rd, err = a.Object(x.ID)
	require.NoError(t, err)
	assert.Equal(t, []byte("by the other"), rd.Attrs[ck.CKA_LABEL])
	_, _, err = a.UpdateObject(x)
	assert.ErrorIs(t, err, store.ErrConflict, "the version the other opening moved on")

	y, err := o.CreateObject(obj("y", "", false, "y"))
	require.NoError(t, err)
	assert.NotEqual(t, x.ID, y.ID)
	_, err = o.DeleteObject(x.ID)
	require.NoError(t, err)
	_, err = a.Object(x.ID)
	assert.ErrorIs(t, err, store.ErrNotFound)
	z, err := a.CreateObject(obj("z", "", false, "z"))
	require.NoError(t, err)
	assert.Greater(t, z.ID, y.ID, "handles grow across openings")
}

// testCreateObjectsAllOrNone: objects stored together are stored in one
// transaction; one that fails leaves none of the others.
func testCreateObjectsAllOrNone(t *testing.T, b Backend) {
	s := initialized(t, b)
	out, _, err := s.CreateObjects([]store.ObjectRecord{obj("p1", "alice", false, "pair"), obj("p2", "alice", true, "pair")})
	require.NoError(t, err)
	require.Len(t, out, 2)
	assert.Less(t, out[0].ID, out[1].ID)
	for i, uid := range []string{"p1", "p2"} {
		assert.Equal(t, int64(1), out[i].Version)
		rd, err := s.Object(out[i].ID)
		require.NoError(t, err)
		assert.Equal(t, uid, rd.UniqueID)
		assert.Equal(t, out[i], *rd)
	}

	before, err := s.Find(store.Query{Viewer: "alice"})
	require.NoError(t, err)
	_, _, err = s.CreateObjects([]store.ObjectRecord{obj("q1", "", false, "x"), obj("p1", "", false, "dup")})
	assert.ErrorIs(t, err, store.ErrExists)
	_, _, err = s.CreateObjects([]store.ObjectRecord{obj("q2", "", false, "x"), obj("q3", "nobody", false, "x")})
	assert.ErrorIs(t, err, store.ErrNotFound)
	after, err := s.Find(store.Query{Viewer: "alice"})
	require.NoError(t, err)
	assert.Equal(t, before, after, "a failed CreateObjects stores nothing")
}

// testConcurrentCreates: goroutines of two openings create at once; every
// object is stored once, under a handle of its own.
func testConcurrentCreates(t *testing.T, b Backend) {
	a := initialized(t, b)
	openings := []store.Store{a, b.Reopen(t, a)}
	const workers, each = 6, 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int64]string{}
	errs := make(chan error, 2*workers)
	for oi, s := range openings {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					uid := fmt.Sprintf("o%d-w%d-%d", oi, w, i)
					o, err := s.CreateObject(obj(uid, "alice", i%2 == 0, "c"))
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					if prev, dup := seen[o.ID]; dup {
						mu.Unlock()
						errs <- fmt.Errorf("handle %d given to %s and %s", o.ID, prev, uid)
						return
					}
					seen[o.ID] = uid
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, s := range openings {
		ids, err := s.Find(store.Query{Viewer: "alice"})
		require.NoError(t, err)
		assert.Len(t, ids, 2*workers*each)
	}
	for id, uid := range seen {
		rd, err := a.Object(id)
		require.NoError(t, err)
		require.Equal(t, uid, rd.UniqueID)
	}
}

func testOwnershipAndDeleteUser(t *testing.T, b Backend) {
	s := initialized(t, b)
	a, err := s.CreateObject(obj("a1", "alice", true, "a"))
	require.NoError(t, err)
	_, err = s.CreateObject(obj("a2", "alice", false, "a"))
	require.NoError(t, err)
	n, err := s.CountOwned("ALICE")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	n, err = s.CountOwned("bob")
	require.NoError(t, err)
	assert.Zero(t, n)

	assert.ErrorIs(t, s.DeleteUser("alice"), store.ErrInUse)

	// Deleting bob removes bob's shares.
	require.NoError(t, s.Share(a.ID, "bob", nil))
	require.NoError(t, s.DeleteUser("bob"))
	sh, err := s.SharedWith(a.ID)
	require.NoError(t, err)
	assert.Empty(t, sh)
}

func testShares(t *testing.T, b Backend) {
	s := initialized(t, b)
	require.NoError(t, s.CreateUser(user("carol", store.RoleCU)))
	a, err := s.CreateObject(obj("a1", "alice", true, "a"))
	require.NoError(t, err)

	require.NoError(t, s.Share(a.ID, "Carol", []byte("dk-carol")))
	require.NoError(t, s.Share(a.ID, "bob", nil))
	assert.ErrorIs(t, s.Share(a.ID, "bob", nil), store.ErrExists)
	assert.ErrorIs(t, s.Share(a.ID, "nobody", nil), store.ErrNotFound)
	assert.ErrorIs(t, s.Share(999999, "bob", nil), store.ErrNotFound)
	sh, err := s.SharedWith(a.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"bob", "carol"}, sh)
	rd, err := b.Reopen(t, s).Object(a.ID)
	require.NoError(t, err)
	assert.Equal(t, []byte("dk-carol"), rd.Keys["carol"], "the sharee's copy of the data key")

	require.NoError(t, s.Unshare(a.ID, "BOB"))
	assert.ErrorIs(t, s.Unshare(a.ID, "bob"), store.ErrNotFound)
	sh, err = s.SharedWith(a.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"carol"}, sh)
	_, err = s.SharedWith(999999)
	assert.ErrorIs(t, err, store.ErrNotFound)

	_, err = s.DeleteObject(a.ID)
	require.NoError(t, err)
	_, err = s.SharedWith(a.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "shares go with the object")
}

func testFindVisibility(t *testing.T, b Backend) {
	s := initialized(t, b)
	mk := func(uid, owner string, private bool, label string) int64 {
		o, err := s.CreateObject(obj(uid, owner, private, label))
		require.NoError(t, err)
		return o.ID
	}
	pub := mk("pub", "alice", false, "k")
	alicePriv := mk("ap", "alice", true, "k")
	bobPriv := mk("bp", "bob", true, "k")
	mk("np", "", true, "k") // private with no owner: visible to nobody by ownership
	other := mk("o", "", false, "other")
	require.NoError(t, s.Share(bobPriv, "alice", nil))

	find := func(viewer string, match map[ck.AttributeType][]byte) []int64 {
		ids, err := s.Find(store.Query{Match: match, Viewer: viewer})
		require.NoError(t, err)
		return ids
	}
	all := map[ck.AttributeType][]byte(nil)
	assert.Equal(t, []int64{pub, other}, find("", all))
	assert.Equal(t, []int64{pub, alicePriv, bobPriv, other}, find("alice", all))
	assert.Equal(t, []int64{pub, alicePriv, bobPriv, other}, find("ALICE", all))
	assert.Equal(t, []int64{pub, bobPriv, other}, find("bob", all))
	assert.Equal(t, []int64{pub, other}, find("admin", all))

	label := func(l string) map[ck.AttributeType][]byte {
		return map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte(l)}
	}
	assert.Equal(t, []int64{pub, alicePriv, bobPriv}, find("alice", label("k")))
	assert.Equal(t, []int64{other}, find("alice", label("other")))
	assert.Empty(t, find("alice", label("none")))
	assert.Empty(t, find("alice", label("K")), "byte-for-byte")

	// Several attributes intersect.
	m := label("k")
	m[ck.CKA_CLASS] = ulong(uint64(ck.CKO_SECRET_KEY))
	assert.Equal(t, []int64{pub, alicePriv, bobPriv}, find("alice", m))
	m[ck.CKA_CLASS] = ulong(uint64(ck.CKO_PRIVATE_KEY))
	assert.Empty(t, find("alice", m))

	// Sealed attributes are not searchable.
	assert.Empty(t, find("alice", map[ck.AttributeType][]byte{ck.CKA_VALUE: []byte("sealed-pub")}))

	// An empty value matches an empty attribute only.
	e, err := s.CreateObject(obj("e", "", false, ""))
	require.NoError(t, err)
	assert.Equal(t, []int64{e.ID}, find("", label("")))

	// ViewerClass: objects of that class are visible whoever owns them.
	cls := ulong(uint64(ck.CKO_SECRET_KEY))
	ids, err := s.Find(store.Query{Match: label("k"), Viewer: "bob", ViewerClass: cls})
	require.NoError(t, err)
	assert.Equal(t, []int64{pub, alicePriv, bobPriv, mustID(t, s, "np")}, ids)
}

// mustID is the handle of the object with unique ID uid, as an officer
// with ViewerClass of every class sees it.
func mustID(t *testing.T, s store.Store, uid string) int64 {
	t.Helper()
	ids, err := s.Find(store.Query{Match: map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte("k")}, Viewer: "", ViewerClass: ulong(uint64(ck.CKO_SECRET_KEY))})
	require.NoError(t, err)
	for _, id := range ids {
		o, err := s.Object(id)
		require.NoError(t, err)
		if o.UniqueID == uid {
			return id
		}
	}
	t.Fatalf("no object %q", uid)
	return 0
}
