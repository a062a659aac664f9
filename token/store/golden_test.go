package store

import (
	"bytes"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// go test ./token/store -run Golden -update rewrites the golden files of
// the current format (schema-v2.sql). Do it only for a deliberate format
// change, together with formatVersion and a migration; an accidental change
// of the format breaks these tests. The format-1 files were written by the
// format-1 build (writeGolden below, with the store of that build) and are
// never rewritten: they are what tokens in the field hold.
var update = flag.Bool("update", false, "rewrite testdata golden files")

const (
	goldenDB       = "testdata/token-v1.db"
	goldenSchemaV1 = "testdata/schema-v1.sql"
	goldenSchema   = "testdata/schema-v3.sql"
	goldenDBV2     = "testdata/token-v2.db"
)

// The golden token: what -update writes and what the test expects to read.
var (
	goldenTokenKey = bytes.Repeat([]byte{0x5a}, TokenKeySize)
	goldenToken    = TokenRecord{Label: "golden token", SerialNumber: "00000000000000g1", Created: 1735689600}
	goldenUsers    = []struct {
		name, password string
		role           Role
		failed         int
		locked         bool
	}{
		{"admin", "admin-password", RoleCO, 0, false},
		{"alice", "alice-password", RoleCU, 2, false},
		{"bob", "bob-password", RoleCU, 5, true},
	}
	// goldenObjects: the third ("deleted") is created then deleted, so the
	// golden file also pins that handles are never reused.
	goldenObjects = []struct {
		rec    ObjectRecord
		secret map[ck.AttributeType][]byte // sealed under goldenTokenKey
		shares []string
	}{
		{ObjectRecord{UniqueID: "1", Owner: "alice", Private: false, Attrs: map[ck.AttributeType][]byte{
			ck.CKA_CLASS: ulong(uint64(ck.CKO_PUBLIC_KEY)), ck.CKA_LABEL: []byte("pub"), ck.CKA_TOKEN: {1}, ck.CKA_ID: {}}},
			nil, nil},
		{ObjectRecord{UniqueID: "2", Owner: "alice", Private: true, Attrs: map[ck.AttributeType][]byte{
			ck.CKA_CLASS: ulong(uint64(ck.CKO_SECRET_KEY)), ck.CKA_LABEL: []byte("aes"), ck.CKA_SENSITIVE: {1}}},
			map[ck.AttributeType][]byte{ck.CKA_VALUE: []byte("0123456789abcdef")}, []string{"bob"}},
		{ObjectRecord{UniqueID: "deleted", Attrs: map[ck.AttributeType][]byte{}}, nil, nil},
		{ObjectRecord{UniqueID: "4", Owner: "", Private: false, Attrs: map[ck.AttributeType][]byte{
			ck.CKA_CLASS: ulong(uint64(ck.CKO_DATA)), ck.CKA_LABEL: []byte("data"), ck.CKA_VALUE: []byte("not secret")}},
			nil, nil},
	}
	goldenIDs = []int64{1, 2, 4}
)

// writeGolden is how testdata/token-v1.db was written by the format-1 build
// (whose Share took no key); kept to document the file's contents.
var _ = writeGolden

func writeGolden(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	users := make([]UserRecord, len(goldenUsers))
	for i, gu := range goldenUsers {
		salt := []byte("golden salt " + gu.name)
		wk, err := WrapTokenKey(DeriveKEK([]byte(gu.password), salt, testKDF), goldenTokenKey, gu.name)
		require.NoError(t, err)
		users[i] = UserRecord{Name: gu.name, Role: gu.role, KDF: testKDF, Salt: salt, WrappedKey: wk,
			FailedLogins: gu.failed, Locked: gu.locked}
	}
	require.NoError(t, s.InitToken(goldenToken, users[0]))
	for _, u := range users[1:] {
		require.NoError(t, s.CreateUser(u))
	}
	for _, g := range goldenObjects {
		o := g.rec
		o.Sealed = map[ck.AttributeType][]byte{}
		for at, v := range g.secret {
			o.Sealed[at], err = SealAttr(goldenTokenKey, o.UniqueID, at, v)
			require.NoError(t, err)
		}
		o, err = s.CreateObject(o)
		require.NoError(t, err)
		for _, u := range g.shares {
			require.NoError(t, s.Share(o.ID, u, nil))
		}
		if o.UniqueID == "deleted" {
			_, err = s.DeleteObject(o.ID)
			require.NoError(t, err)
		}
	}
	require.NoError(t, s.Close())
	_, err = os.Stat(filepath.Join(dir, DBName+"-wal"))
	require.ErrorIs(t, err, os.ErrNotExist, "closing the last connection checkpoints the WAL into the file")
	require.NoError(t, os.MkdirAll("testdata", 0o755))
	copyFile(t, filepath.Join(dir, DBName), goldenDB)
}

func copyFile(t *testing.T, from, to string) {
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// TestGoldenTokenV1 opens a copy of the format-1 golden token: Open
// upgrades the schema to format 2 and every field reads back as written;
// the users still hold the format-1 token key (KeyV1) until they log in.
func TestGoldenTokenV1(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, goldenDB, filepath.Join(dir, DBName))
	s := openTest(t, dir)

	tok, err := s.Token()
	require.NoError(t, err)
	assert.Equal(t, goldenToken, *tok, "no escrow key before the upgrade of the keys")

	users, err := s.Users()
	require.NoError(t, err)
	require.Len(t, users, len(goldenUsers))
	for i, gu := range goldenUsers {
		u := users[i]
		assert.Equal(t, gu.name, u.Name)
		assert.Equal(t, gu.role, u.Role)
		assert.Equal(t, testKDF, u.KDF)
		assert.Equal(t, []byte("golden salt "+gu.name), u.Salt)
		assert.Equal(t, gu.failed, u.FailedLogins)
		assert.Equal(t, gu.locked, u.Locked)
		assert.Equal(t, KeyV1, u.KeyVersion)
		assert.Empty(t, u.PublicKey)
		assert.Empty(t, u.Escrow)
		assert.Empty(t, u.Legacy)
		tk, err := UnwrapTokenKey(DeriveKEK([]byte(gu.password), u.Salt, u.KDF), u.WrappedKey, u.Name)
		require.NoError(t, err, "user %s", gu.name)
		assert.Equal(t, goldenTokenKey, tk)
	}

	ids, err := s.Find(Query{Viewer: "alice"})
	require.NoError(t, err)
	assert.Equal(t, goldenIDs, ids)
	live := []int{0, 1, 3}
	for i, id := range goldenIDs {
		g := goldenObjects[live[i]]
		o, err := s.Object(id)
		require.NoError(t, err)
		assert.Equal(t, g.rec.UniqueID, o.UniqueID)
		assert.Equal(t, g.rec.Owner, o.Owner)
		assert.Equal(t, g.rec.Private, o.Private)
		assert.Equal(t, int64(1), o.Version)
		assert.Equal(t, g.rec.Attrs, o.Attrs)
		assert.Empty(t, o.Keys)
		require.Len(t, o.Sealed, len(g.secret))
		for at, want := range g.secret {
			got, err := OpenAttr(goldenTokenKey, o.UniqueID, at, o.Sealed[at])
			require.NoError(t, err)
			assert.Equal(t, want, got)
		}
		sh, err := s.SharedWith(id)
		require.NoError(t, err)
		assert.Equal(t, append([]string{}, g.shares...), sh)
	}
	ids, err = s.Find(Query{Viewer: "bob"})
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 2, 4}, ids, "object 2 is shared with bob")
	ids, err = s.Find(Query{})
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 4}, ids)

	// The deleted handle 3 stays retired in an existing token.
	o, err := s.CreateObject(ObjectRecord{UniqueID: "new"})
	require.NoError(t, err)
	assert.Equal(t, int64(5), o.ID)
}

// schemaDump is the schema as SQLite records it, plus the header fields
// that are part of the format.
func schemaDump(t *testing.T, db *sql.DB) string {
	var b strings.Builder
	var appID, version int64
	require.NoError(t, db.QueryRow(`PRAGMA application_id`).Scan(&appID))
	require.NoError(t, db.QueryRow(`SELECT value FROM meta WHERE key = 'format_version'`).Scan(&version))
	fmt.Fprintf(&b, "-- application_id %#x, format_version %d\n", appID, version)
	rows, err := db.Query(`SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var typ, name, tbl, text string
		require.NoError(t, rows.Scan(&typ, &name, &tbl, &text))
		fmt.Fprintf(&b, "\n-- %s %s on %s\n", typ, name, tbl)
		if text != "" {
			fmt.Fprintf(&b, "%s;\n", text)
		}
	}
	require.NoError(t, rows.Err())
	return b.String()
}

// TestGoldenSchema: a new token has the format-2 schema, and so has the
// format-1 golden token once opened (the migration makes the same schema);
// the golden file itself, read without Open, still has the format-1 one.
func TestGoldenSchema(t *testing.T) {
	s := openTest(t, t.TempDir())
	live := schemaDump(t, s.(*sqliteStore).db)
	if *update {
		require.NoError(t, os.WriteFile(goldenSchema, []byte(live), 0o644))
	}
	want, err := os.ReadFile(goldenSchema)
	require.NoError(t, err)
	assert.Equal(t, string(want), live, "schema of a new token")

	dir := t.TempDir()
	copyFile(t, goldenDB, filepath.Join(dir, DBName))
	raw, err := sql.Open("sqlite", filepath.Join(dir, DBName))
	require.NoError(t, err)
	wantV1, err := os.ReadFile(goldenSchemaV1)
	require.NoError(t, err)
	assert.Equal(t, string(wantV1), schemaDump(t, raw), "schema of the golden file as stored")
	require.NoError(t, raw.Close())

	g := openTest(t, dir)
	assert.Equal(t, string(want), schemaDump(t, g.(*sqliteStore).db), "schema of the golden token once opened")

	// testdata/schema-v2.sql stays as the record of format 2 (with the
	// login registry that format-2 builds add at Open).
	dir = t.TempDir()
	copyFile(t, goldenDBV2, filepath.Join(dir, DBName))
	g = openTest(t, dir)
	assert.Equal(t, string(want), schemaDump(t, g.(*sqliteStore).db), "schema of the format-2 golden token once opened")
}

// writeGoldenV2 writes the format-2 golden token: the same users and
// objects as format 1, with per-user keys (docs/store.md): an escrow held
// by admin, key pairs for alice and bob, and object 2's data key wrapped
// for alice (owner) and bob (sharee). Its keys are random; the test opens
// them from the passwords.
func writeGoldenV2(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	escrowSec, escrowPub, err := NewUserSecret()
	require.NoError(t, err)
	secrets := map[string][]byte{}
	users := make([]UserRecord, len(goldenUsers))
	for i, gu := range goldenUsers {
		salt := []byte("golden salt " + gu.name)
		u := UserRecord{Name: gu.name, Role: gu.role, KDF: testKDF, Salt: salt, KeyVersion: KeyV2,
			FailedLogins: gu.failed, Locked: gu.locked}
		sec := escrowSec
		if gu.role == RoleCU {
			sec, u.PublicKey, err = NewUserSecret()
			require.NoError(t, err)
			u.Escrow, err = SealEscrow(escrowPub, sec, gu.name)
			require.NoError(t, err)
		}
		secrets[gu.name] = sec
		u.WrappedKey, err = WrapUserSecret(DeriveKEK([]byte(gu.password), salt, testKDF), sec, gu.name)
		require.NoError(t, err)
		users[i] = u
	}
	tok := goldenToken
	tok.EscrowPublic = escrowPub
	require.NoError(t, s.InitToken(tok, users[0]))
	for _, u := range users[1:] {
		require.NoError(t, s.CreateUser(u))
	}
	for _, g := range goldenObjects {
		o := g.rec
		o.Sealed = map[ck.AttributeType][]byte{}
		var dk []byte
		if len(g.secret) > 0 {
			dk = NewDataKey()
			sl, err := NewSealer(dk)
			require.NoError(t, err)
			for at, v := range g.secret {
				o.Sealed[at] = sl.Seal(o.UniqueID, at, v)
			}
			kr, err := NewKeyring(secrets[o.Owner])
			require.NoError(t, err)
			o.Keys = map[string][]byte{o.Owner: kr.WrapOwnDataKey(dk, o.UniqueID, o.Owner)}
		}
		o, err = s.CreateObject(o)
		require.NoError(t, err)
		for _, u := range g.shares {
			var w []byte
			if dk != nil {
				pub := users[slices.IndexFunc(users, func(r UserRecord) bool { return r.Name == u })].PublicKey
				w, err = SealDataKey(pub, dk, o.UniqueID, u)
				require.NoError(t, err)
			}
			require.NoError(t, s.Share(o.ID, u, w))
		}
		if o.UniqueID == "deleted" {
			_, err = s.DeleteObject(o.ID)
			require.NoError(t, err)
		}
	}
	require.NoError(t, s.Close())
	copyFile(t, filepath.Join(dir, DBName), goldenDBV2)
}

// TestGoldenTokenV2 opens a copy of the format-2 golden token and checks
// every field and every key path: each password opens its secret (the
// escrow's for admin), the escrow opens each crypto user's secret, alice's
// and bob's copies of object 2's data key open its sealed value.
func TestGoldenTokenV2(t *testing.T) {
	if *update {
		writeGoldenV2(t)
	}
	dir := t.TempDir()
	copyFile(t, goldenDBV2, filepath.Join(dir, DBName))
	s := openTest(t, dir)

	tok, err := s.Token()
	require.NoError(t, err)
	require.NotEmpty(t, tok.EscrowPublic)
	want := goldenToken
	want.EscrowPublic = tok.EscrowPublic
	assert.Equal(t, want, *tok)

	rings := map[string]*Keyring{}
	for _, gu := range goldenUsers {
		u, err := s.User(gu.name)
		require.NoError(t, err)
		assert.Equal(t, gu.role, u.Role)
		assert.Equal(t, []byte("golden salt "+gu.name), u.Salt)
		assert.Equal(t, gu.failed, u.FailedLogins)
		assert.Equal(t, gu.locked, u.Locked)
		assert.Equal(t, KeyV2, u.KeyVersion)
		assert.Empty(t, u.Legacy)
		sec, err := UnwrapUserSecret(DeriveKEK([]byte(gu.password), u.Salt, u.KDF), u.WrappedKey, u.Name)
		require.NoError(t, err, gu.name)
		rings[gu.name], err = NewKeyring(sec)
		require.NoError(t, err)
		if gu.role == RoleCO {
			assert.Equal(t, tok.EscrowPublic, rings[gu.name].Public(), "an officer holds the escrow")
			assert.Empty(t, u.PublicKey)
			continue
		}
		assert.Equal(t, u.PublicKey, rings[gu.name].Public())
		esc, err := rings["admin"].OpenEscrow(u.Escrow, u.Name)
		require.NoError(t, err)
		assert.Equal(t, sec, esc)
	}

	live := []int{0, 1, 3}
	for i, id := range goldenIDs {
		g := goldenObjects[live[i]]
		o, err := s.Object(id)
		require.NoError(t, err)
		assert.Equal(t, g.rec.UniqueID, o.UniqueID)
		assert.Equal(t, g.rec.Owner, o.Owner)
		assert.Equal(t, g.rec.Attrs, o.Attrs)
		require.Len(t, o.Sealed, len(g.secret))
		if len(g.secret) == 0 {
			assert.Empty(t, o.Keys)
			continue
		}
		holders := append([]string{o.Owner}, g.shares...)
		assert.ElementsMatch(t, holders, slices.Collect(maps.Keys(o.Keys)))
		for _, hname := range holders {
			dk, err := rings[hname].OpenDataKey(o.Keys[hname], o.UniqueID, hname, hname == o.Owner)
			require.NoError(t, err, hname)
			for at, v := range g.secret {
				got, err := OpenAttr(dk, o.UniqueID, at, o.Sealed[at])
				require.NoError(t, err)
				assert.Equal(t, v, got)
			}
		}
		sh, err := s.SharedWith(id)
		require.NoError(t, err)
		assert.Equal(t, g.shares, sh)
	}
	o, err := s.CreateObject(ObjectRecord{UniqueID: "new"})
	require.NoError(t, err)
	assert.Equal(t, int64(5), o.ID)
}

const goldenDBV3 = "testdata/token-v3.db"

// goldenAudit is the audit log of the format-3 golden token, as
// token/audit encodes events: the first two records were rotated out
// (the base is record 1), record 4 was appended with a user's creation
// in the same transaction, and stream hsm-1 has one record.
var goldenAudit = []string{
	`{"time_us":1735689600000000,"reboot_counter":1,"opcode":1,"session_handle":0,"response_code":0,"response":"HSM Return: SUCCESS","log_type":2,"user_name":"admin","user_type":2}`,
	`{"time_us":1735689600000001,"reboot_counter":1,"opcode":4,"session_handle":0,"response_code":0,"response":"HSM Return: SUCCESS","log_type":2,"user_name":"admin","user_type":2}`,
	`{"time_us":1735689600000002,"reboot_counter":1,"opcode":13,"session_handle":1,"response_code":163,"response":"HSM Error: RET_USER_LOGIN_FAILURE","log_type":2,"user_name":"bob","user_type":1}`,
	`{"time_us":1735689600000003,"reboot_counter":1,"opcode":13,"session_handle":1,"response_code":0,"response":"HSM Return: SUCCESS","log_type":2,"user_name":"admin","user_type":2}`,
	`{"time_us":1735689600000004,"reboot_counter":1,"opcode":3,"session_handle":1,"response_code":0,"response":"HSM Return: SUCCESS","log_type":2,"user_name":"carol","user_type":1,"actor":"admin"}`,
}

// writeGoldenV3 writes the format-3 golden token: the format-2 golden
// token opened by this build (migrated to format 3, with its audit key),
// user carol created with her audit record in the same transaction, the
// other records appended alone, the first two rotated out.
func writeGoldenV3(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, goldenDBV2, filepath.Join(dir, DBName))
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	for i, r := range goldenAudit {
		if i == 4 {
			carol := UserRecord{Name: "carol", Role: RoleCU, KDF: testKDF, Salt: []byte("golden salt carol")}
			require.NoError(t, s.Audited(AuditEvent{Record: []byte(r)}).CreateUser(carol))
			continue
		}
		require.NoError(t, s.Audit(AuditEvent{Record: []byte(r)}))
	}
	require.NoError(t, s.Audit(AuditEvent{Stream: "hsm-1", Record: []byte(goldenAudit[3])}))
	recs, err := s.AuditRecords(DefaultStream, 0, 2)
	require.NoError(t, err)
	_, err = s.RotateAudit(DefaultStream, 1, recs[1].MAC)
	require.NoError(t, err)
	// A reboot counter of 1 from a boot of no host: every machine that
	// opens the file is in another boot.
	require.NoError(t, s.(*sqliteStore).write(func(tx *txn) error {
		_, err := tx.Exec(`INSERT INTO meta (key, value) VALUES ('audit_boot', 1)`)
		return err
	}))
	require.NoError(t, s.Close())
	copyFile(t, filepath.Join(dir, DBName), goldenDBV3)
}

// TestGoldenTokenV3 opens a copy of the format-3 golden token: its audit
// records read back as written, their chain verifies from the rotation
// base to the head under the token's key, and the chain goes on from the
// head. (go test ./token/store -run 'GoldenTokenV3$' -update rewrites it.)
func TestGoldenTokenV3(t *testing.T) {
	if *update {
		writeGoldenV3(t)
	}
	dir := t.TempDir()
	copyFile(t, goldenDBV3, filepath.Join(dir, DBName))
	s := openTest(t, dir)
	_, err := s.User("carol")
	require.NoError(t, err, "the user created with its record")

	key, err := s.AuditKey()
	require.NoError(t, err)
	require.Len(t, key, 32)
	streams, err := s.AuditStreams()
	require.NoError(t, err)
	assert.Equal(t, []string{"hsm-0", "hsm-1"}, streams)

	st, err := s.AuditState(DefaultStream)
	require.NoError(t, err)
	require.NotNil(t, st.Base)
	require.NotNil(t, st.Head)
	assert.Equal(t, uint64(1), st.Base.Seq)
	assert.Equal(t, uint64(4), st.Head.Seq)
	recs, err := s.AuditRecords(DefaultStream, 0, 0)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	prev := st.Base.MAC
	for i, r := range recs {
		assert.Equal(t, uint64(i+2), r.Seq)
		assert.Equal(t, goldenAudit[i+2], string(r.Record))
		assert.Equal(t, ChainMAC(key, DefaultStream, r.Seq, prev, r.Record), r.MAC, "record %d", r.Seq)
		prev = r.MAC
	}
	assert.Equal(t, st.Head.MAC, prev)
	other, err := s.AuditRecords("hsm-1", 0, 0)
	require.NoError(t, err)
	require.Len(t, other, 1)
	assert.Equal(t, ChainMAC(key, "hsm-1", 0, nil, other[0].Record), other[0].MAC)

	require.NoError(t, s.Audit(AuditEvent{Record: []byte("next")}))
	next, err := s.AuditRecords(DefaultStream, 5, 0)
	require.NoError(t, err)
	require.Len(t, next, 1)
	assert.Equal(t, ChainMAC(key, DefaultStream, 5, prev, []byte("next")), next[0].MAC)
	n, err := s.AuditBoot()
	require.NoError(t, err)
	assert.Equal(t, uint32(2), n, "this host's boot is not the golden file's")
}
