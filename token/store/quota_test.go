package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestCreateObjectsQuota: objects of a quota's classes are counted over
// every owner in the creating transaction; a batch that would pass it
// stores nothing and fails with the quota's error; other classes pass.
func TestCreateObjectsQuota(t *testing.T) {
	s := initTest(t)
	errFull := errors.New("full")
	q := Quota{Classes: []ck.ObjectClass{ck.CKO_SECRET_KEY, ck.CKO_PRIVATE_KEY}, Max: 3, Err: errFull}
	withClass := func(o ObjectRecord, c ck.ObjectClass) ObjectRecord {
		o.Attrs[ck.CKA_CLASS] = ulong(uint64(c))
		return o
	}
	_, _, err := s.CreateObjects([]ObjectRecord{obj("a1", "alice", true, "x"), obj("b1", "bob", true, "x")}, q)
	require.NoError(t, err)
	_, _, err = s.CreateObjects([]ObjectRecord{obj("a2", "alice", true, "x"), withClass(obj("a3", "alice", true, "x"), ck.CKO_PRIVATE_KEY)}, q)
	require.ErrorIs(t, err, errFull)
	ids, err := s.Find(Query{Viewer: "alice"})
	require.NoError(t, err)
	require.Len(t, ids, 1, "the refused batch stored nothing")
	_, _, err = s.CreateObjects([]ObjectRecord{withClass(obj("p1", "", false, "x"), ck.CKO_PUBLIC_KEY)}, q)
	require.NoError(t, err, "a class the quota does not count")
	_, _, err = s.CreateObjects([]ObjectRecord{withClass(obj("a4", "alice", true, "x"), ck.CKO_PRIVATE_KEY)}, q)
	require.NoError(t, err)
	for i := 0; i < 2; i++ {
		_, _, err = s.CreateObjects([]ObjectRecord{obj(fmt.Sprint("z", i), "bob", true, "x")}, q)
		require.ErrorIs(t, err, errFull)
	}
	_, _, err = s.CreateObjects([]ObjectRecord{obj("n1", "bob", true, "x")})
	require.NoError(t, err, "without quotas")
}
