package token

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
	"gohsm/token/audit"
	"gohsm/token/store"
)

// rows reads a query's rows from the token database in dir, each row
// printed, for comparing tables between tokens.
func rows(t *testing.T, dir, query string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.DBName)+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	rs, err := db.Query(query)
	require.NoError(t, err)
	defer rs.Close()
	cols, err := rs.Columns()
	require.NoError(t, err)
	var out []string
	for rs.Next() {
		v := make([]any, len(cols))
		p := make([]any, len(cols))
		for i := range v {
			p[i] = &v[i]
		}
		require.NoError(t, rs.Scan(p...))
		out = append(out, fmt.Sprintf("%x", fmt.Sprint(v...)))
	}
	require.NoError(t, rs.Err())
	return out
}

func objectIDs(t *testing.T, dir string) []int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.DBName)+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	rs, err := db.Query(`SELECT id FROM objects ORDER BY id`)
	require.NoError(t, err)
	defer rs.Close()
	var ids []int64
	for rs.Next() {
		var id int64
		require.NoError(t, rs.Scan(&id))
		ids = append(ids, id)
	}
	return ids
}

func execSQL(t *testing.T, dir string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.DBName)+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	for _, q := range stmts {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
}

// auditRecords are a token's audit records (the default stream), decoded,
// after audit.Verify checked the chain under the token's audit key.
func auditRecords(t *testing.T, st store.Store) []audit.Event {
	t.Helper()
	c, err := audit.Load(st, store.DefaultStream)
	require.NoError(t, err)
	rep, err := audit.Verify(c)
	require.NoError(t, err)
	require.Equal(t, len(c.Records), rep.Count)
	out := make([]audit.Event, len(c.Records))
	for i, r := range c.Records {
		out[i] = r.Event
	}
	return out
}

func loginAs(t *testing.T, m *Module, h ck.ULong, ut ck.UserType, pin string) {
	t.Helper()
	require.NoError(t, m.Login(h, ut, []byte(pin)))
}

// signingPair is an EC P-256 token key pair that signs and verifies in
// every profile (cloudhsm's default CKA_SIGN is false).
func signingPair(t *testing.T, m *Module, h ck.ULong, label string) (pub, priv ck.ULong) {
	t.Helper()
	pub, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_EC_PARAMS: p256, ck.CKA_LABEL: []byte(label), ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_VERIFY: attrs.Bool(true)},
		attrs.Template{ck.CKA_LABEL: []byte(label), ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true)})
	require.NoError(t, err)
	return pub, priv
}

// secondToken opens a module on an empty token directory of its own.
func secondToken(t *testing.T) (*Module, *Slot) {
	t.Helper()
	dir := t.TempDir()
	m, err := Open(testConfig(t, dir))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	s, err := m.Slot(3)
	require.NoError(t, err)
	return m, s
}

// TestBackupRestoreIdentical: a token restored from a backup has the same
// users (names, roles, lock state, key material), keys (attributes, sealed
// values, owners, shares, usable: a signature made with the original
// verifies with the restored key), quorum settings and audit chain, which
// continues with CN_RESTORE_BEGIN/END; the backup file holds no secret in
// plaintext (issue 15 item 4, behaviour 33).
func TestBackupRestoreIdentical(t *testing.T) {
	for _, prof := range []string{"standard", "cloudhsm"} {
		t.Run(prof, func(t *testing.T) { testBackupRestoreIdentical(t, prof) })
	}
}

func testBackupRestoreIdentical(t *testing.T, prof string) {
	skipOnPostgres(t, "it sets quorum values in the SQLite token file (TestPostgresBackupRestore covers the backend)")
	m := profileModule(t, t.TempDir(), prof)
	h := profileSetUp(t, m, soPIN, "user", "user-pw-1")
	s, err := m.Slot(3)
	require.NoError(t, err)
	dir := s.Config().Dir
	require.NoError(t, m.CreateUser(h, "bob", store.RoleCU, []byte("bob-pw-12")))
	require.NoError(t, m.CreateUser(h, "carol", store.RoleCU, []byte("carol-pw-12")))
	require.NoError(t, m.CreateUser(h, "officer2", store.RoleCO, []byte("officer2-pw")))
	require.NoError(t, m.Logout(h))
	for range 20 { // lock carol
		if err := m.Login(h, ck.CKU_USER, []byte("carol:wrong-pw")); errors.Is(err, ck.CKR_PIN_LOCKED) {
			break
		}
	}
	loginAs(t, m, h, ck.CKU_USER, userPIN)
	pub, priv := signingPair(t, m, h, "signer")
	require.NoError(t, m.Share(h, priv, "bob", true))
	secret := []byte("0123456789abcdef-known-plaintext") // 32 bytes
	aes, err := m.CreateObject(h, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
		ck.CKA_VALUE: secret, ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_LABEL: []byte("marker-label-aes"),
		ck.CKA_ENCRYPT: attrs.Bool(true)})
	require.NoError(t, err)
	msg := []byte("signed before the backup")
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv))
	sig := make([]byte, 64)
	n, err := m.Sign(h, msg, Out{Buf: sig})
	require.NoError(t, err)
	sig = sig[:n]
	require.NoError(t, m.CloseSession(h))
	// Quorum settings as engineer B's tables keep them (the key's use
	// value 1, since bob signs with it after the restore).
	execSQL(t, dir, `INSERT INTO quorum_values (service, value) VALUES ('user', 2), ('quorum', 1)`,
		fmt.Sprintf(`INSERT INTO key_quorum (object_id, use_value, manage_value) VALUES (%d, 1, 3)`, priv))

	file := filepath.Join(t.TempDir(), "token.gohsm-backup")
	_, err = s.Backup([]byte(userPIN), file)
	require.ErrorIs(t, err, ck.CKR_PIN_INCORRECT, "a crypto user is no officer")
	info, err := s.Backup([]byte(soPIN), file)
	require.NoError(t, err)
	assert.Equal(t, "t", info.Label)

	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.False(t, bytes.Contains(b, secret), "the backup holds a secret in plaintext")
	assert.True(t, bytes.Contains(b, []byte("marker-label-aes")), "the scan sees the token's data")

	m2 := profileModule(t, t.TempDir(), prof)
	s2, err := m2.Slot(3)
	require.NoError(t, err)
	dir2 := s2.Config().Dir
	got, err := s2.Restore(file, false)
	require.NoError(t, err)
	assert.Equal(t, info.SHA256, got.SHA256)

	// Users, objects, shares, key data keys: identical records.
	us1, err := s.Store().Users()
	require.NoError(t, err)
	us2, err := s2.Store().Users()
	require.NoError(t, err)
	assert.Equal(t, us1, us2)
	locked := 0
	for _, u := range us2 {
		if u.Locked {
			locked++
			assert.Equal(t, "carol", u.Name)
		}
	}
	assert.Equal(t, 1, locked, "carol stays locked")
	ids1, ids2 := objectIDs(t, dir), objectIDs(t, dir2)
	require.Equal(t, ids1, ids2)
	require.Len(t, ids1, 3)
	for _, id := range ids1 {
		o1, err := s.Store().Object(id)
		require.NoError(t, err)
		o2, err := s2.Store().Object(id)
		require.NoError(t, err)
		assert.Equal(t, o1, o2)
		sh1, _ := s.Store().SharedWith(id)
		sh2, _ := s2.Store().SharedWith(id)
		assert.Equal(t, sh1, sh2)
	}
	for _, q := range []string{`SELECT * FROM quorum_values ORDER BY service`, `SELECT * FROM key_quorum ORDER BY object_id`,
		`SELECT * FROM quorum_keys ORDER BY user`, `SELECT * FROM shares ORDER BY object_id, user`, `SELECT value FROM meta WHERE key = 'audit_key'`} {
		assert.Equal(t, rows(t, dir, q), rows(t, dir2, q), q)
	}
	assert.Len(t, rows(t, dir2, `SELECT * FROM key_quorum`), 1)

	// The audit chain: the original's records up to CN_BACKUP_BEGIN, then
	// the restore's two, chained on; audit.Verify passes on both.
	// (Whatever else the token records around them: the officer's login
	// and logout are audited too once every management event is.)
	a1, a2 := auditRecords(t, s.Store()), auditRecords(t, s2.Store())
	begin := slices.IndexFunc(a1, func(e audit.Event) bool { return e.Opcode == audit.CN_BACKUP_BEGIN })
	require.GreaterOrEqual(t, begin, 0, "CN_BACKUP_BEGIN recorded")
	assert.Equal(t, "admin", a1[begin].User)
	assert.True(t, slices.ContainsFunc(a1[begin:], func(e audit.Event) bool { return e.Opcode == audit.CN_BACKUP_END }), "CN_BACKUP_END recorded after it")
	require.Len(t, a2, begin+3)
	assert.Equal(t, a1[:begin+1], a2[:begin+1])
	assert.Equal(t, audit.CN_RESTORE_BEGIN, a2[begin+1].Opcode)
	assert.Equal(t, audit.CN_RESTORE_END, a2[begin+2].Opcode)

	// The keys work: the restored public key verifies the original's
	// signature; bob still uses the shared private key.
	h2 := openRW(t, m2)
	loginAs(t, m2, h2, ck.CKU_USER, userPIN)
	require.NoError(t, m2.VerifyInit(h2, Mechanism{Type: ck.CKM_ECDSA_SHA256}, pub))
	require.NoError(t, m2.Verify(h2, msg, sig))
	require.NoError(t, m2.EncryptInit(h2, Mechanism{Type: ck.CKM_AES_GCM, Param: gcmParams()}, aes))
	m2.Abort(h2, OpEncrypt)
	require.NoError(t, m2.Logout(h2))
	loginAs(t, m2, h2, ck.CKU_USER, "bob:bob-pw-12")
	require.NoError(t, m2.SignInit(h2, Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv))
	_, err = m2.Sign(h2, msg, Out{Buf: make([]byte, 64)})
	require.NoError(t, err)
	require.NoError(t, m2.Logout(h2))
	require.ErrorIs(t, m2.Login(h2, ck.CKU_USER, []byte("carol:carol-pw-12")), ck.CKR_PIN_LOCKED)
}

// TestRestoreRefusalsToken: the token layer's refusals, each leaving the
// slot's token as it was: a session open on the slot, a target holding a
// token (without replace), a file that is not a backup.
func TestRestoreRefusalsToken(t *testing.T) {
	m, _ := newToken(t)
	s, err := m.Slot(3)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "b")
	_, err = s.Backup([]byte(soPIN), file)
	require.NoError(t, err)

	_, s2 := secondToken(t)
	require.NoError(t, s2.InitToken([]byte("admin:other-officer"), "other"))
	_, err = s2.Restore(file, false)
	require.ErrorIs(t, err, ck.CKR_ACTION_PROHIBITED)
	ti, err := s2.TokenInfo()
	require.NoError(t, err)
	assert.Equal(t, "other", trimLabel(ti.Label))

	junk := filepath.Join(t.TempDir(), "junk")
	require.NoError(t, os.WriteFile(junk, []byte("not a backup, not a database, just some text"), 0o600))
	_, err = s2.Restore(junk, true)
	require.ErrorIs(t, err, ck.CKR_DATA_INVALID)
	_, err = s2.Restore(filepath.Join(t.TempDir(), "missing"), true)
	require.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD)
	ti, err = s2.TokenInfo()
	require.NoError(t, err)
	assert.Equal(t, "other", trimLabel(ti.Label), "the token survives refused restores")

	h := openRW(t, m)
	_, err = s.Restore(file, true)
	require.ErrorIs(t, err, ck.CKR_SESSION_EXISTS)
	require.NoError(t, m.CloseSession(h))

	// With replace, the token is the backup's.
	_, err = s2.Restore(file, true)
	require.NoError(t, err)
	ti, err = s2.TokenInfo()
	require.NoError(t, err)
	assert.Equal(t, "t", trimLabel(ti.Label))
}

func trimLabel(l string) string { return string(bytes.TrimRight([]byte(l), " ")) }

// TestRestoreRepairsDamagedSlot: a slot whose token.db cannot be opened
// (the module lists its token as not recognised) is restored from a
// backup with replace, and works again; without replace it is refused.
func TestRestoreRepairsDamagedSlot(t *testing.T) {
	skipOnPostgres(t, "it damages the SQLite token file")
	m, _ := newToken(t)
	s, err := m.Slot(3)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "b")
	_, err = s.Backup([]byte(soPIN), file)
	require.NoError(t, err)

	dir := t.TempDir()
	cfg := testConfig(t, dir)
	require.NoError(t, os.MkdirAll(cfg.Slots[0].Dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(cfg.Slots[0].Dir, store.DBName), bytes.Repeat([]byte("garbage!"), 512), 0o600))
	m2, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { m2.Close() })
	s2, err := m2.Slot(3)
	require.NoError(t, err)
	_, err = s2.TokenInfo()
	require.ErrorIs(t, err, ck.CKR_TOKEN_NOT_RECOGNIZED)

	_, err = s2.Restore(file, false)
	require.ErrorIs(t, err, ck.CKR_ACTION_PROHIBITED)
	assert.Contains(t, err.Error(), "not a usable token")
	_, err = s2.Restore(file, true)
	require.NoError(t, err)
	h := openRW(t, m2)
	require.NoError(t, m2.Login(h, ck.CKU_USER, []byte(userPIN)))
	ti, err := s2.TokenInfo()
	require.NoError(t, err)
	assert.Equal(t, "t", trimLabel(ti.Label))
}

// TestBackupNeedsOfficer: a crypto user's PIN, a wrong password and an
// uninitialised token are refused, and nothing is written.
func TestBackupNeedsOfficer(t *testing.T) {
	m, _ := newToken(t)
	s, err := m.Slot(3)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "b")
	_, err = s.Backup([]byte(userPIN), file)
	require.ErrorIs(t, err, ck.CKR_PIN_INCORRECT)
	_, err = s.Backup([]byte("admin:wrong"), file)
	require.ErrorIs(t, err, ck.CKR_PIN_INCORRECT)
	_, s2 := secondToken(t)
	_, err = s2.Backup([]byte(soPIN), file)
	require.Error(t, err)
	_, err = os.Stat(file)
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestRestoreKeepsTokenGroup: a slot shared with token_group gets a
// restored token.db with the group's mode (0660, the group's gid), as
// Open gives the one it replaces; the restore used to leave it 0600.
func TestRestoreKeepsTokenGroup(t *testing.T) {
	m, _ := newToken(t)
	s, err := m.Slot(3)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "b")
	_, err = s.Backup([]byte(soPIN), file)
	require.NoError(t, err)

	dir := t.TempDir()
	gid := os.Getegid()
	cfg, err := ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_level = error\ntoken_group = %d\n[slot 3]\nlabel = t\n", dir, gid), "test")
	require.NoError(t, err)
	m2, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { m2.Close() })
	s2, err := m2.Slot(3)
	require.NoError(t, err)
	_, err = s2.Restore(file, false)
	require.NoError(t, err)
	st, err := os.Stat(filepath.Join(s2.Config().Dir, store.DBName))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), st.Mode().Perm())
	assert.Equal(t, uint32(gid), st.Sys().(*syscall.Stat_t).Gid)
}

// TestResetKeepsTokenGroup: a token made again after a reset is shared
// with token_group like the one Open made (reopenAfter once opened it
// without the group, so the group's processes lost the token).
func TestResetKeepsTokenGroup(t *testing.T) {
	dir := t.TempDir()
	gid := os.Getegid()
	cfg, err := ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_level = error\ntoken_group = %d\n[slot 3]\nlabel = t\n", dir, gid), "test")
	require.NoError(t, err)
	m, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	s, err := m.Slot(3)
	require.NoError(t, err)
	require.NoError(t, s.InitToken([]byte("admin:"+soPIN), "t"))
	db := filepath.Join(s.Config().Dir, store.DBName)
	require.NoError(t, os.Chmod(db, 0o600)) // so that only the reopen can make it 0660 again
	require.NoError(t, s.ResetToken())
	st, err := os.Stat(db)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), st.Mode().Perm())
	assert.Equal(t, uint32(gid), st.Sys().(*syscall.Stat_t).Gid)
}
