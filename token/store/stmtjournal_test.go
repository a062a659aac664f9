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

// TestCreateObjectWritesOnlyTheWAL: storing an object writes its WAL
// frames and nothing else, on a token big enough that the object's 32
// index entries change 32 leaves. Before, its attribute rows went in one
// INSERT whose statement journal outgrew SQLite's 64 KiB in-memory limit
// and was written to a temporary file on every object created
// (attrRowsPerInsert). Bytes are counted, not timed.
func TestCreateObjectWritesOnlyTheWAL(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	require.NoError(t, s.InitToken(TokenRecord{Label: "t"}, user("admin", RoleCO)))
	require.NoError(t, s.CreateUser(user("alice", RoleCU)))
	ss := s.(*sqliteStore)
	const n = 3000
	require.NoError(t, ss.write(func(tx *txn) error {
		for i := range n {
			if _, err := createObjectTx(tx, keyLikeObject(fmt.Sprint("fill-", i), i)); err != nil {
				return err
			}
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
	_, err = s.CreateObject(keyLikeObject("new", n))
	require.NoError(t, err)
	wrote := procWritten(t) - w0
	grew := walSize()

	// The test can fail only if the object changed more pages than a
	// statement journal holds in memory (16).
	const frame = 24 + 4096
	require.Greater(t, (grew-32)/frame, int64(32), "the object's commit changed fewer pages than it has attributes")
	// A WAL-index page may be extended with a write; nothing else.
	assert.LessOrEqual(t, wrote, grew+4096, "wrote %d bytes, of which the WAL grew by %d", wrote, grew)
}
