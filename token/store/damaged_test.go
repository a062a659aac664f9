package store

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// damagedTestDB opens a token's database behind the store's back.
func damagedTestDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, DBName)+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestTokenDamaged: a store without a token record is uninitialised only
// when it holds no user and no object; with them, or with a record of the
// wrong types or sizes, it is damaged. Before, a lost record with users and
// objects present read as "not initialised", and C_InitToken with any PIN
// wiped the users and objects.
func TestTokenDamaged(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	_, err := s.Token()
	assert.ErrorIs(t, err, ErrNotInitialized)
	require.NoError(t, s.InitToken(TokenRecord{Label: "test", SerialNumber: "0123456789abcdef", Created: 1700000000}, user("admin", RoleCO)))
	_, err = s.CreateObject(obj("uid-1", "admin", true, "k"))
	require.NoError(t, err)
	db := damagedTestDB(t, dir)

	for _, c := range []struct{ name, sql string }{
		{"record deleted", `DELETE FROM token`},
		{"created not a number", `UPDATE token SET created = 'yesterday'`},
		{"label a blob", `UPDATE token SET label = x'00ff'`},
		{"label too long", `UPDATE token SET label = printf('%.40c', 'x')`},
		{"serial a blob", `UPDATE token SET serial = zeroblob(4)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := db.Exec(`DELETE FROM token`)
			require.NoError(t, err)
			_, err = db.Exec(`INSERT INTO token (id, label, serial, created) VALUES (1, 'test', '0123456789abcdef', 1700000000)`)
			require.NoError(t, err)
			_, err = db.Exec(c.sql)
			require.NoError(t, err)
			_, err = s.Token()
			assert.ErrorIs(t, err, ErrDamaged)
			assert.NotErrorIs(t, err, ErrNotInitialized)
			assert.ErrorIs(t, s.CreateToken(TokenRecord{Label: "new"}, user("mallory", RoleCO)), ErrExists)
			_, err = s.Object(1)
			assert.NoError(t, err, "the object is still there")
		})
	}

	// Objects alone (their owner deleted behind our back) count too.
	_, err = db.Exec(`PRAGMA foreign_keys = OFF; DELETE FROM users; DELETE FROM token`)
	require.NoError(t, err)
	_, err = s.Token()
	assert.ErrorIs(t, err, ErrDamaged)

	// An empty store is created once; the second creator finds it taken.
	s2 := openTest(t, t.TempDir())
	require.NoError(t, s2.CreateToken(TokenRecord{Label: "a", SerialNumber: "1"}, user("admin", RoleCO)))
	assert.ErrorIs(t, s2.CreateToken(TokenRecord{Label: "b", SerialNumber: "2"}, user("other", RoleCO)), ErrExists)
	tr, err := s2.Token()
	require.NoError(t, err)
	assert.Equal(t, "a", tr.Label)
}

// TestTokenInitialisedMeanwhileIsNotDamaged: a token another process
// initialises between Token's read of the token table and its look at the
// users and objects is not reported as damaged. Without one snapshot for
// the second look, the new officer was there and the record was not.
func TestTokenInitialisedMeanwhileIsNotDamaged(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	other := openTest(t, dir)
	testOnlyNoTokenRow = func() {
		testOnlyNoTokenRow = nil
		require.NoError(t, other.CreateToken(TokenRecord{Label: "meanwhile", SerialNumber: "1"}, user("admin", RoleCO)))
	}
	defer func() { testOnlyNoTokenRow = nil }()
	tr, err := s.Token()
	require.NoError(t, err)
	assert.Equal(t, "meanwhile", tr.Label)
}
