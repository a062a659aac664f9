package store

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestFindWideTemplate: a find template of hundreds of attributes (C_FindObjectsInit
// takes up to 4096) is answered, not refused by SQLite's expression depth limit
// (1000), which a chain of 500 ANDed terms exceeded: the find failed with
// "Expression tree is too large" and the token answered CKR_DEVICE_ERROR.
func TestFindWideTemplate(t *testing.T) {
	s := initTest(t)
	const n = 1500
	o := obj("wide", "alice", false, "wide")
	for i := range n {
		o.Attrs[ck.AttributeType(0x80000000+i)] = []byte(fmt.Sprint(i))
	}
	rec, err := s.CreateObject(o)
	require.NoError(t, err)
	_, err = s.CreateObject(obj("other", "alice", false, "other"))
	require.NoError(t, err)

	for _, k := range []int{500, 1000, n} {
		match := map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte("wide")}
		for i := range k - 1 {
			match[ck.AttributeType(0x80000000+i)] = []byte(fmt.Sprint(i))
		}
		ids, err := s.Find(Query{Match: match})
		require.NoError(t, err, "%d attributes", k)
		require.Equal(t, []int64{rec.ID}, ids, "%d attributes", k)

		match[ck.AttributeType(0x80000000+k/2)] = []byte("no")
		ids, err = s.Find(Query{Match: match, Viewer: "alice"})
		require.NoError(t, err, "%d attributes, one differing", k)
		require.Empty(t, ids, "%d attributes, one differing", k)
	}
}
