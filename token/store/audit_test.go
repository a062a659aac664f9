package store

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAuditBootCounts: the reboot counter counts the host's boots the
// token recorded events in: every opening in one boot reads the same
// value, and writes nothing once it is set; a token last used in another
// boot counts one more.
func TestAuditBootCounts(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	n, err := s.AuditBoot()
	require.NoError(t, err)
	assert.Equal(t, uint32(1), n)
	s2 := openTest(t, dir)
	g, err := s2.Generation()
	require.NoError(t, err)
	n, err = s2.AuditBoot()
	require.NoError(t, err)
	assert.Equal(t, uint32(1), n, "the same boot")
	g2, err := s2.Generation()
	require.NoError(t, err)
	assert.Equal(t, g, g2, "no write")

	raw, err := sql.Open("sqlite", filepath.Join(dir, DBName))
	require.NoError(t, err)
	defer raw.Close()
	_, err = raw.Exec(`UPDATE meta SET value = 'a boot before' WHERE key = 'audit_boot_id'`)
	require.NoError(t, err)
	n, err = s2.AuditBoot()
	require.NoError(t, err)
	assert.Equal(t, uint32(2), n, "after a reboot")
}

// TestAuditHeadUpdatedInPlace: appending to a stream rewrites its head
// row in meta in place (same rowid), so an audited write does not also
// change meta's key index (a page more in every commit's WAL frames).
func TestAuditHeadUpdatedInPlace(t *testing.T) {
	s := openTest(t, t.TempDir())
	ss := s.(*sqliteStore)
	rowid := func() int64 {
		var id int64
		require.NoError(t, ss.db.QueryRow(`SELECT rowid FROM meta WHERE key = ?`, "audit_head/"+DefaultStream).Scan(&id))
		return id
	}
	require.NoError(t, s.Audit(AuditEvent{Record: []byte("one")}))
	first := rowid()
	require.NoError(t, s.Audit(AuditEvent{Record: []byte("two")}))
	assert.Equal(t, first, rowid())
	var n int
	require.NoError(t, ss.db.QueryRow(`SELECT count(*) FROM audit WHERE stream = ?`, DefaultStream).Scan(&n))
	assert.Equal(t, 2, n)
}
