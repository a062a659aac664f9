package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// testGeneration: a commit by this opening or another changes the
// generation the next check reads; no commit (a read, a failed write)
// changes nothing.
func testGeneration(t *testing.T, b Backend) {
	a := b.Open(t)
	o := b.Reopen(t, a)

	g0 := generation(t, a)
	_, err := a.Token()
	assert.ErrorIs(t, err, store.ErrNotInitialized)
	assert.Equal(t, g0, generation(t, a), "no commit, no change")

	require.NoError(t, o.InitToken(store.TokenRecord{Label: "x"}, user("admin", store.RoleCO)))
	g1 := generationOtherThan(t, b, a, g0)
	assert.NotEqual(t, g0, g1, "commit by another opening")

	require.NoError(t, a.SetTokenLabel("y"))
	assert.NotEqual(t, g1, generation(t, a), "own commit")

	// Many commits by the other side, each noticed.
	for i := range 20 {
		prev := generation(t, a)
		_, err := o.CreateObject(obj(fmt.Sprint("g", i), "", false, "l"))
		require.NoError(t, err)
		require.NotEqual(t, prev, generationOtherThan(t, b, a, prev), "commit %d", i)
	}

	// A failed write is not a commit.
	gb := generation(t, a)
	_, err = o.CreateObject(obj("g0", "", false, "dup"))
	require.ErrorIs(t, err, store.ErrExists)
	_, err = o.Find(store.Query{})
	require.NoError(t, err)
	time.Sleep(generationLag(b)) // what would have come has come
	assert.Equal(t, gb, generation(t, a))
}

// testCommitAlone: a write reports the generations around its commit.
// Alone may be false whenever the store cannot show it, but when true
// the commit must have been the only change since Before: a cache current
// at the generation it last read, seeing Before equal to it and Alone,
// keeps itself; that must never happen when another opening wrote in
// between.
func testCommitAlone(t *testing.T, b Backend) {
	a := b.Open(t)
	require.NoError(t, a.InitToken(store.TokenRecord{Label: "t"}, user("admin", store.RoleCO)))
	o := b.Reopen(t, a)

	g := generation(t, a)
	for i := range 5 {
		out, c, err := a.CreateObjects([]store.ObjectRecord{obj(fmt.Sprint("own", i), "", false, "x")})
		require.NoError(t, err)
		assert.NotEqual(t, c.Before, c.After, "write %d", i)
		if c.Alone {
			assert.Equal(t, g, c.Before, "write %d: alone, it starts where the last ended", i)
		}
		now := generation(t, a)
		assert.Equal(t, c.After, now, "write %d: After is the generation after it", i)
		g = now
		if i%2 == 1 {
			c, err = a.DeleteObject(out[0].ID)
			require.NoError(t, err)
			if c.Alone {
				assert.Equal(t, g, c.Before)
			}
			assert.Equal(t, c.After, generation(t, a))
			g = c.After
		}
	}

	// Another opening's write before ours: a cache at g must not keep
	// itself across our write.
	_, err := o.CreateObject(obj("other-before", "", false, "x"))
	require.NoError(t, err)
	_, c, err := a.CreateObjects([]store.ObjectRecord{obj("after-other", "", false, "x")})
	require.NoError(t, err)
	assert.False(t, c.Alone && c.Before == g, "another opening's commit shows before ours")

	// Updates report too; a failed write reports nothing.
	got, err := a.CreateObject(obj("upd", "", false, "x"))
	require.NoError(t, err)
	got.Attrs[ck.CKA_LABEL] = []byte("new label")
	v, c, err := a.UpdateObject(got)
	require.NoError(t, err)
	assert.Equal(t, int64(2), v)
	assert.Equal(t, c.After, generation(t, a))
	_, c, err = a.UpdateObject(got) // stale version
	assert.ErrorIs(t, err, store.ErrConflict)
	assert.Equal(t, store.Commit{}, c)
}

// testQuota: objects of a quota's classes are counted over every owner in
// the creating transaction; a batch that would pass it stores nothing and
// fails with the quota's error; other classes pass.
func testQuota(t *testing.T, b Backend) {
	s := initialized(t, b)
	errFull := errors.New("full")
	q := store.Quota{Classes: []ck.ObjectClass{ck.CKO_SECRET_KEY, ck.CKO_PRIVATE_KEY}, Max: 3, Err: errFull}
	withClass := func(o store.ObjectRecord, c ck.ObjectClass) store.ObjectRecord {
		o.Attrs[ck.CKA_CLASS] = ulong(uint64(c))
		return o
	}
	_, _, err := s.CreateObjects([]store.ObjectRecord{obj("a1", "alice", true, "x"), obj("b1", "bob", true, "x")}, q)
	require.NoError(t, err)
	_, _, err = s.CreateObjects([]store.ObjectRecord{obj("a2", "alice", true, "x"), withClass(obj("a3", "alice", true, "x"), ck.CKO_PRIVATE_KEY)}, q)
	require.ErrorIs(t, err, errFull)
	ids, err := s.Find(store.Query{Viewer: "alice"})
	require.NoError(t, err)
	require.Len(t, ids, 1, "the refused batch stored nothing")
	_, _, err = s.CreateObjects([]store.ObjectRecord{withClass(obj("p1", "", false, "x"), ck.CKO_PUBLIC_KEY)}, q)
	require.NoError(t, err, "a class the quota does not count")
	// The last place, taken by another opening.
	_, _, err = b.Reopen(t, s).CreateObjects([]store.ObjectRecord{withClass(obj("a4", "alice", true, "x"), ck.CKO_PRIVATE_KEY)}, q)
	require.NoError(t, err)
	for i := 0; i < 2; i++ {
		_, _, err = s.CreateObjects([]store.ObjectRecord{obj(fmt.Sprint("z", i), "bob", true, "x")}, q)
		require.ErrorIs(t, err, errFull)
	}
	_, _, err = s.CreateObjects([]store.ObjectRecord{obj("n1", "bob", true, "x")})
	require.NoError(t, err, "without quotas")
}
