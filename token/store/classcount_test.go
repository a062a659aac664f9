package store

import (
	"database/sql"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// classCounts reads class_counts (rows of 0 left out) and what counting
// attrs gives, for comparison.
func classCounts(t *testing.T, db *sql.DB) (kept, counted map[string]int) {
	t.Helper()
	read := func(q string) map[string]int {
		rows, err := db.Query(q)
		require.NoError(t, err)
		defer rows.Close()
		m := map[string]int{}
		for rows.Next() {
			var v []byte
			var n int
			require.NoError(t, rows.Scan(&v, &n))
			if n != 0 {
				m[fmt.Sprintf("%x", v)] = n
			}
		}
		require.NoError(t, rows.Err())
		return m
	}
	return read(`SELECT value, n FROM class_counts`), read(`SELECT value, count(*) FROM attrs WHERE type = 0 GROUP BY value`)
}

func classObj(uid string, class ck.ObjectClass) ObjectRecord {
	o := obj(uid, "alice", true, "l-"+uid)
	o.Attrs[ck.CKA_CLASS] = ulong(uint64(class))
	return o
}

// TestClassCountsExact: the counts the quota reads match a count of the
// attrs rows after every kind of write: single and batch creates, an
// update that changes the class row, deletes (the attrs rows go by ON
// DELETE CASCADE), a batch refused whole by a quota, and an object made
// and removed by raw SQL, as another build would.
func TestClassCountsExact(t *testing.T) {
	s := initTest(t)
	db := s.(*sqliteStore).db
	check := func(step string, want map[ck.ObjectClass]int) {
		t.Helper()
		kept, counted := classCounts(t, db)
		assert.Equal(t, counted, kept, step)
		w := map[string]int{}
		for c, n := range want {
			if n != 0 {
				w[fmt.Sprintf("%x", ulong(uint64(c)))] = n
			}
		}
		assert.Equal(t, w, kept, step)
	}
	check("empty", nil)
	a, err := s.CreateObject(classObj("a", ck.CKO_SECRET_KEY))
	require.NoError(t, err)
	recs, _, err := s.CreateObjects([]ObjectRecord{classObj("b", ck.CKO_PUBLIC_KEY), classObj("c", ck.CKO_PRIVATE_KEY), classObj("d", ck.CKO_DATA)})
	require.NoError(t, err)
	check("created", map[ck.ObjectClass]int{ck.CKO_SECRET_KEY: 1, ck.CKO_PUBLIC_KEY: 1, ck.CKO_PRIVATE_KEY: 1, ck.CKO_DATA: 1})

	q := Quota{Classes: []ck.ObjectClass{ck.CKO_SECRET_KEY, ck.CKO_PRIVATE_KEY}, Max: 3, Err: ErrQuota}
	_, _, err = s.CreateObjects([]ObjectRecord{classObj("e", ck.CKO_SECRET_KEY), classObj("f", ck.CKO_SECRET_KEY)}, q)
	assert.ErrorIs(t, err, ErrQuota, "2 keys held, 2 more pass 3")
	check("refused batch", map[ck.ObjectClass]int{ck.CKO_SECRET_KEY: 1, ck.CKO_PUBLIC_KEY: 1, ck.CKO_PRIVATE_KEY: 1, ck.CKO_DATA: 1})
	_, _, err = s.CreateObjects([]ObjectRecord{classObj("e", ck.CKO_SECRET_KEY)}, q)
	require.NoError(t, err)

	d, err := s.Object(recs[2].ID)
	require.NoError(t, err)
	d.Attrs[ck.CKA_CLASS] = ulong(uint64(ck.CKO_CERTIFICATE))
	d.Attrs[ck.CKA_APPLICATION] = []byte("x")
	_, _, err = s.UpdateObject(*d)
	require.NoError(t, err)
	check("updated", map[ck.ObjectClass]int{ck.CKO_SECRET_KEY: 2, ck.CKO_PUBLIC_KEY: 1, ck.CKO_PRIVATE_KEY: 1, ck.CKO_CERTIFICATE: 1})

	_, err = s.DeleteObject(a.ID)
	require.NoError(t, err)
	_, err = s.DeleteObject(recs[0].ID)
	require.NoError(t, err)
	check("deleted", map[ck.ObjectClass]int{ck.CKO_SECRET_KEY: 1, ck.CKO_PRIVATE_KEY: 1, ck.CKO_CERTIFICATE: 1})

	// Another writer's plain SQL: the triggers still count.
	_, err = db.Exec(`INSERT INTO objects (unique_id, owner, private, version) VALUES ('raw', NULL, 0, 1)`)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO attrs (object_id, type, value) SELECT id, 0, ? FROM objects WHERE unique_id = 'raw'`, ulong(uint64(ck.CKO_SECRET_KEY)))
	require.NoError(t, err)
	check("raw insert", map[ck.ObjectClass]int{ck.CKO_SECRET_KEY: 2, ck.CKO_PRIVATE_KEY: 1, ck.CKO_CERTIFICATE: 1})
	_, err = db.Exec(`UPDATE attrs SET type = 1 WHERE type = 0 AND object_id = (SELECT id FROM objects WHERE unique_id = 'raw')`)
	require.NoError(t, err)
	check("raw update of the type", map[ck.ObjectClass]int{ck.CKO_SECRET_KEY: 1, ck.CKO_PRIVATE_KEY: 1, ck.CKO_CERTIFICATE: 1})
	_, err = db.Exec(`DELETE FROM objects WHERE unique_id = 'raw'`)
	require.NoError(t, err)
	check("raw delete", map[ck.ObjectClass]int{ck.CKO_SECRET_KEY: 1, ck.CKO_PRIVATE_KEY: 1, ck.CKO_CERTIFICATE: 1})
}

// TestQuotaReadsClassCounts: the quota is decided by class_counts, not by
// counting attrs (which grows with the objects held): counts made wrong on
// purpose change the verdict. Before class_counts, this batch passed.
func TestQuotaReadsClassCounts(t *testing.T) {
	s := initTest(t)
	db := s.(*sqliteStore).db
	q := Quota{Classes: []ck.ObjectClass{ck.CKO_SECRET_KEY}, Max: 5, Err: ErrQuota}
	_, _, err := s.CreateObjects([]ObjectRecord{classObj("a", ck.CKO_SECRET_KEY)}, q)
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE class_counts SET n = 5 WHERE value = ?`, ulong(uint64(ck.CKO_SECRET_KEY)))
	require.NoError(t, err)
	_, _, err = s.CreateObjects([]ObjectRecord{classObj("b", ck.CKO_SECRET_KEY)}, q)
	assert.ErrorIs(t, err, ErrQuota)

	// The statement the check runs reads class_counts by its key.
	rows, err := db.Query(`EXPLAIN QUERY PLAN SELECT value, n FROM class_counts WHERE value IN (?, ?)`, ulong(3), ulong(4))
	require.NoError(t, err)
	defer rows.Close()
	var plan string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan += detail + "\n"
	}
	assert.Contains(t, plan, "SEARCH class_counts USING PRIMARY KEY (value=?)")
	assert.NotContains(t, plan, "attrs")
}

// TestClassCountsMadeAtOpen: a token without class_counts (made before
// it, or restored from such a backup) gets the table, its triggers and
// the counts of what it holds at the next Open; until then the quota
// counts the old way.
func TestClassCountsMadeAtOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	require.NoError(t, s.InitToken(TokenRecord{Label: "t"}, user("admin", RoleCO)))
	require.NoError(t, s.CreateUser(user("alice", RoleCU)))
	for i := range 7 {
		c := ck.CKO_SECRET_KEY
		if i%3 == 0 {
			c = ck.CKO_DATA
		}
		_, err := s.CreateObject(classObj(fmt.Sprint("o", i), c))
		require.NoError(t, err)
	}
	db := s.(*sqliteStore).db
	for _, n := range []string{"class_counts_insert", "class_counts_delete", "class_counts_update"} {
		_, err := db.Exec(`DROP TRIGGER ` + n)
		require.NoError(t, err)
	}
	_, err = db.Exec(`DROP TABLE class_counts`)
	require.NoError(t, err)
	q := Quota{Classes: []ck.ObjectClass{ck.CKO_SECRET_KEY}, Max: 4, Err: ErrQuota}
	_, _, err = s.CreateObjects([]ObjectRecord{classObj("x", ck.CKO_SECRET_KEY)}, q)
	assert.ErrorIs(t, err, ErrQuota, "4 keys held without class_counts: counted from attrs")
	_, _, err = s.CreateObjects([]ObjectRecord{classObj("y", ck.CKO_DATA)}, q)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s2 := openTest(t, dir)
	kept, counted := classCounts(t, s2.(*sqliteStore).db)
	assert.Equal(t, counted, kept)
	assert.Equal(t, map[string]int{fmt.Sprintf("%x", ulong(uint64(ck.CKO_SECRET_KEY))): 4, fmt.Sprintf("%x", ulong(uint64(ck.CKO_DATA))): 4}, kept)
	q.Max = 5
	_, _, err = s2.CreateObjects([]ObjectRecord{classObj("z", ck.CKO_SECRET_KEY)}, q)
	require.NoError(t, err)
	_, _, err = s2.CreateObjects([]ObjectRecord{classObj("w", ck.CKO_SECRET_KEY)}, q)
	assert.ErrorIs(t, err, ErrQuota)
}
