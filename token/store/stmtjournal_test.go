package store

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
)

// keyLikeObject is an object with 32 plain attributes, as many as a
// generated AES key has (flags, class, key type, label, IDs, check value):
// on a token of many such objects, each of its attrs_type_value entries
// lands in a leaf of its own.
func keyLikeObject(uid string, i int) ObjectRecord {
	o := obj(uid, "alice", true, "key")
	for t := ck.AttributeType(0x100); len(o.Attrs) < 32; t++ {
		if t%3 == 0 {
			o.Attrs[t] = binary.BigEndian.AppendUint64(nil, uint64(i)*2654435761) // scattered
		} else {
			o.Attrs[t] = []byte{1}
		}
	}
	o.Attrs[ck.CKA_UNIQUE_ID] = []byte(uid)
	return o
}

// procWritten is what this process has written through write(2) and
// pwrite(2) so far (/proc/self/io wchar).
func procWritten(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "wchar:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Skip("no wchar in /proc/self/io")
	return 0
}

// bigTokenWrite fills a token with n key-like objects (their IDs given
// to op in order), checkpoints it, runs op, and requires op to have written its
// WAL frames and nothing else (a WAL-index page may be extended with a
// write): no statement journal spilled to a temporary file. The test can
// fail only if op changed more pages than a statement journal holds in
// memory (16), which it checks. Bytes are counted, not timed.
func bigTokenWrite(t *testing.T, op func(s Store, ids []int64)) {
	if testenv.Race {
		// One goroutine counting bytes written; filling 3,000 objects takes
		// 17-19 s a test under the race detector, against 1-2 s without.
		t.Skip("single goroutine; 17-19 s a test under the race detector; runs in the CGO-free pass")
	}
	dir := t.TempDir()
	s := openTest(t, dir)
	require.NoError(t, s.InitToken(TokenRecord{Label: "t"}, user("admin", RoleCO)))
	require.NoError(t, s.CreateUser(user("alice", RoleCU)))
	ss := s.(*sqliteStore)
	const n = 3000
	ids := make([]int64, 0, n)
	require.NoError(t, ss.write(func(tx *txn) error {
		for i := range n {
			id, err := createObjectTx(tx, keyLikeObject(fmt.Sprint("fill-", i), i))
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	}))
	_, err := ss.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	require.NoError(t, err)
	wal := filepath.Join(dir, DBName+"-wal")
	walSize := func() int64 {
		fi, err := os.Stat(wal)
		require.NoError(t, err)
		return fi.Size()
	}
	require.Zero(t, walSize(), "the checkpoint emptied the WAL")

	w0 := procWritten(t)
	op(s, ids)
	wrote := procWritten(t) - w0
	grew := walSize()

	const frame = 24 + 4096
	require.Greater(t, (grew-32)/frame, int64(32), "the commit changed fewer pages than an object has attributes")
	assert.LessOrEqual(t, wrote, grew+4096, "wrote %d bytes, of which the WAL grew by %d", wrote, grew)
}

// TestCreateObjectWritesOnlyTheWAL: storing an object on a token big
// enough that the object's 32 index entries change 32 leaves writes its
// WAL frames and nothing else. Before, its attribute rows went in one
// INSERT whose statement journal outgrew SQLite's 64 KiB in-memory limit
// and was written to a temporary file on every object created
// (attrRowsPerInsert).
func TestCreateObjectWritesOnlyTheWAL(t *testing.T) {
	bigTokenWrite(t, func(s Store, _ []int64) {
		_, err := s.CreateObject(keyLikeObject("new", 3000))
		require.NoError(t, err)
	})
}

// TestDeleteObjectWritesOnlyTheWAL: the same for deleting one
// (C_DestroyObject): before, the ON DELETE CASCADE removed its 32 rows in
// one statement, which spilled its journal the same way (deleteAttrs).
func TestDeleteObjectWritesOnlyTheWAL(t *testing.T) {
	bigTokenWrite(t, func(s Store, ids []int64) {
		_, err := s.DeleteObject(ids[1234])
		require.NoError(t, err)
		_, err = s.Object(ids[1234])
		require.ErrorIs(t, err, ErrNotFound)
	})
}

// TestUpdateObjectWritesOnlyTheWAL: the same for rewriting one's
// attributes (C_SetAttributeValue), which deleted them in one statement.
func TestUpdateObjectWritesOnlyTheWAL(t *testing.T) {
	bigTokenWrite(t, func(s Store, ids []int64) {
		cur, err := s.Object(ids[2345])
		require.NoError(t, err)
		o := *cur
		o.Attrs[ck.CKA_LABEL] = []byte("relabelled")
		_, _, err = s.UpdateObject(o)
		require.NoError(t, err)
		got, err := s.Object(o.ID)
		require.NoError(t, err)
		require.Equal(t, []byte("relabelled"), got.Attrs[ck.CKA_LABEL])
		require.Len(t, got.Attrs, len(o.Attrs))
	})
}
