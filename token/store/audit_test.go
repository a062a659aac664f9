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
