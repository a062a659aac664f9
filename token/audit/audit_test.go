package audit

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/token/store"
)

// TestText: an event renders as CloudHSM's audit log shows one
// (UG-2023:interpreting-audit-logs.md: the CN_GEN_PSWD_ENC_KEY example's
// first lines, and the user and key blocks).
func TestText(t *testing.T) {
	r := Record{Seq: 1, Event: Event{TimeUS: 1513717277140812, Reboot: 0xe8, Opcode: CN_GEN_PSWD_ENC_KEY, Session: 0x1004001,
		LogType: MINIMAL_LOG_ENTRY}}
	r.Event.Respond(RespSuccess)
	assert.Equal(t, `Time: 12/19/17 21:01:17.140812, usecs:1513717277140812
Sequence No : 0x1
Reboot counter : 0xe8
Command Type(hex) : CN_MGMT_CMD (0x0)
Opcode : CN_GEN_PSWD_ENC_KEY (0x1d)
Session Handle : 0x1004001
Response : 0:HSM Return: SUCCESS
Log type : MINIMAL_LOG_ENTRY (0)
`, r.Text())

	r.Event = Event{TimeUS: 1513717277140812, Opcode: CN_LOGIN, LogType: MGMT_USER_DETAILS_LOG, User: "alice", UserType: CN_CRYPTO_USER}
	r.Event.Respond(RespLoginFailure)
	assert.Contains(t, r.Text(), "Opcode : CN_LOGIN (0xd)\n")
	assert.Contains(t, r.Text(), "Response : 163:HSM Error: RET_USER_LOGIN_FAILURE\n")
	assert.Contains(t, r.Text(), "Log type : MGMT_USER_DETAILS_LOG (2)\nUser Name : alice\nUser Type : CN_CRYPTO_USER (1)\n")

	r.Event = Event{Opcode: CN_GENERATE_KEY_PAIR, LogType: MGMT_KEY_DETAILS_LOG, Key: 262150, PublicKey: 262152}
	assert.Contains(t, r.Text(), "Opcode : CN_GENERATE_KEY_PAIR (0x19)\n")
	assert.Contains(t, r.Text(), "Log type : MGMT_KEY_DETAILS_LOG (1)\nPriv/Secret Key Handle : 262150\nPublic Key Handle : 262152\n")
}

func TestParseOpcode(t *testing.T) {
	for _, s := range []string{"CN_LOGIN", "cn_login", "login", "0xd"} {
		o, err := ParseOpcode(s)
		require.NoError(t, err, s)
		assert.Equal(t, CN_LOGIN, o)
	}
	_, err := ParseOpcode("CN_NOPE")
	assert.Error(t, err)
	for _, o := range Opcodes() {
		p, err := ParseOpcode(o.String())
		require.NoError(t, err)
		assert.Equal(t, o, p)
	}
}

// logStore makes a token store with n audit records (CN_LOGIN events of
// users u0, u1, ...) and returns it with its file.
func logStore(t *testing.T, n int) (store.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	appendN(t, st, 0, n)
	return st, filepath.Join(dir, store.DBName)
}

func appendN(t *testing.T, st store.Store, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		e := Event{TimeUS: int64(1e15 + i), Opcode: CN_LOGIN, LogType: MGMT_USER_DETAILS_LOG, User: "u" + string(rune('a'+i%26)), UserType: CN_CRYPTO_USER}
		e.Respond(RespSuccess)
		b, err := e.Encode()
		require.NoError(t, err)
		require.NoError(t, st.Audit(store.AuditEvent{Record: b}))
	}
}

func verifyStore(t *testing.T, st store.Store, anchors ...store.AuditMark) (Report, error) {
	t.Helper()
	c, err := Load(st, store.DefaultStream)
	require.NoError(t, err)
	c.Anchors = anchors
	return Verify(c)
}

// badAt asserts err names record seq.
func badAt(t *testing.T, err error, seq uint64, reason string) {
	t.Helper()
	var ve *VerifyError
	require.True(t, errors.As(err, &ve), "want a VerifyError, got %v", err)
	assert.Equal(t, seq, ve.Seq, "%v", err)
	assert.Contains(t, ve.Reason, reason)
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	_, err := db.Exec(q, args...)
	require.NoError(t, err, q)
}

// TestVerifyDetectsTampering: each edit made with sqlite directly on the
// token file is found, and verify names the first bad record: an edited
// record, a deleted one, two swapped, a truncated tail (and a record
// appended after the truncation, which leaves a gap rather than closing
// it).
func TestVerifyDetectsTampering(t *testing.T) {
	st, _ := logStore(t, 10)
	rep, err := verifyStore(t, st)
	require.NoError(t, err)
	assert.Equal(t, Report{Stream: store.DefaultStream, First: 0, Last: 9, Count: 10}, rep)

	cases := []struct {
		name   string
		edit   func(t *testing.T, db *sql.DB)
		seq    uint64
		reason string
	}{
		{"edit", func(t *testing.T, db *sql.DB) {
			exec(t, db, `UPDATE audit SET record = CAST(replace(CAST(record AS TEXT), '"ud"', '"ux"') AS BLOB) WHERE seq = 3`)
		}, 3, "MAC does not match"},
		{"delete", func(t *testing.T, db *sql.DB) { exec(t, db, `DELETE FROM audit WHERE seq = 4`) }, 4, "missing"},
		{"swap", func(t *testing.T, db *sql.DB) {
			exec(t, db, `UPDATE audit SET seq = 100 WHERE seq = 5`)
			exec(t, db, `UPDATE audit SET seq = 5 WHERE seq = 6`)
			exec(t, db, `UPDATE audit SET seq = 6 WHERE seq = 100`)
		}, 5, "MAC does not match"},
		{"truncate", func(t *testing.T, db *sql.DB) { exec(t, db, `DELETE FROM audit WHERE seq >= 7`) }, 7, "truncated"},
		{"head deleted", func(t *testing.T, db *sql.DB) { exec(t, db, `DELETE FROM meta WHERE key LIKE 'audit_head/%'`) }, 9, "no head"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, path := logStore(t, 10)
			c.edit(t, rawDB(t, path))
			_, err := verifyStore(t, st)
			badAt(t, err, c.seq, c.reason)
		})
	}

	t.Run("truncate then append", func(t *testing.T) {
		st, path := logStore(t, 10)
		exec(t, rawDB(t, path), `DELETE FROM audit WHERE seq >= 7`)
		appendN(t, st, 10, 1)
		_, err := verifyStore(t, st)
		badAt(t, err, 7, "missing")
	})
}

// TestVerifyAnchor: someone holding the token's key (anyone who can read
// the file) can rewrite the chain from a record on, head included, and
// verify alone passes; an anchor noted before (`gohsm audit head`) at or
// after the first rewritten record shows it. A tail truncated together
// with its head shows against an anchor past the new end.
func TestVerifyAnchor(t *testing.T) {
	st, path := logStore(t, 10)
	c, err := Load(st, store.DefaultStream)
	require.NoError(t, err)
	anchor5 := store.AuditMark{Seq: 5, MAC: c.Records[5].MAC}
	anchor2 := store.AuditMark{Seq: 2, MAC: c.Records[2].MAC}
	head := *c.Head
	_, err = verifyStore(t, st, anchor5, anchor2, head)
	require.NoError(t, err)

	// Rewrite records 3.. with the key, as an attacker holding it would.
	db := rawDB(t, path)
	var key []byte
	require.NoError(t, db.QueryRow(`SELECT value FROM meta WHERE key = 'audit_key'`).Scan(&key))
	prev := c.Records[2].MAC
	for _, r := range c.Records[3:] {
		rec := r.Raw
		if r.Seq == 3 {
			rec = bytes.Replace(rec, []byte(`"ud"`), []byte(`"ux"`), 1)
		}
		mac := store.ChainMAC(key, store.DefaultStream, r.Seq, prev, rec)
		exec(t, db, `UPDATE audit SET record = ?, mac = ? WHERE seq = ?`, rec, mac, r.Seq)
		prev = mac
	}
	exec(t, db, `UPDATE meta SET value = ? WHERE key = ?`, append(binary.BigEndian.AppendUint64(nil, 9), prev...), "audit_head/"+store.DefaultStream)
	_, err = verifyStore(t, st)
	require.NoError(t, err, "a key holder's rewrite passes verify alone")
	_, err = verifyStore(t, st, anchor2)
	require.NoError(t, err, "the records before the rewrite still match their anchor")
	_, err = verifyStore(t, st, anchor5)
	badAt(t, err, 5, "rewritten")

	// Truncated, head moved back to the new end: only an anchor shows it.
	st2, path2 := logStore(t, 10)
	c2, err := Load(st2, store.DefaultStream)
	require.NoError(t, err)
	db2 := rawDB(t, path2)
	exec(t, db2, `DELETE FROM audit WHERE seq >= 7`)
	exec(t, db2, `UPDATE meta SET value = ? WHERE key = ?`, append(binary.BigEndian.AppendUint64(nil, 6), c2.Records[6].MAC...), "audit_head/"+store.DefaultStream)
	_, err = verifyStore(t, st2)
	require.NoError(t, err)
	_, err = verifyStore(t, st2, *c2.Head)
	badAt(t, err, 9, "not in the log")
}

// TestRotation: records rotated out into an archive leave a base the
// chain goes on from; verify passes with the archive (the whole chain)
// and without it (the token's part, saying so); an edited archive, a
// missing one, or an anchor in the rotated part without the archive fail.
func TestRotation(t *testing.T) {
	st, _ := logStore(t, 10)
	c, err := Load(st, store.DefaultStream)
	require.NoError(t, err)
	anchor3 := store.AuditMark{Seq: 3, MAC: c.Records[3].MAC}
	var archive bytes.Buffer
	require.NoError(t, WriteLines(&archive, c.Records[:6]))
	n, err := st.RotateAudit(store.DefaultStream, 5, c.Records[5].MAC)
	require.NoError(t, err)
	assert.Equal(t, 6, n)
	appendN(t, st, 10, 3) // the chain goes on after a rotation

	rep, err := verifyStore(t, st)
	require.NoError(t, err)
	assert.True(t, rep.Unchecked)
	assert.Equal(t, uint64(6), rep.First)
	assert.Equal(t, uint64(12), rep.Last)

	arch, err := ReadLines(bytes.NewReader(archive.Bytes()))
	require.NoError(t, err)
	c, err = Load(st, store.DefaultStream)
	require.NoError(t, err)
	c.Archive = arch
	c.Anchors = []store.AuditMark{anchor3}
	rep, err = Verify(c)
	require.NoError(t, err)
	assert.Equal(t, Report{Stream: store.DefaultStream, First: 0, Last: 12, Count: 13, Archived: 6, Anchors: 1}, rep)

	// The same archive twice, or overlapping archives: each record once.
	c.Archive = append(append([]Record(nil), arch...), arch[3:]...)
	_, err = Verify(c)
	require.NoError(t, err)
	// Two different records with one number.
	c.Archive = append([]Record(nil), arch...)
	forged := arch[4]
	forged.Raw = []byte(`{}`)
	c.Archive = append(c.Archive, forged)
	_, err = Verify(c)
	badAt(t, err, 4, "")

	// An edited archive record.
	c.Archive = append([]Record(nil), arch...)
	c.Archive[2].Raw = bytes.Replace(c.Archive[2].Raw, []byte(`"uc"`), []byte(`"ux"`), 1)
	_, err = Verify(c)
	badAt(t, err, 2, "MAC does not match")
	// An archive missing its first records.
	c.Archive = arch[2:]
	_, err = Verify(c)
	badAt(t, err, 0, "missing")
	// An anchor in the rotated part, no archive.
	c.Archive = nil
	_, err = Verify(c)
	badAt(t, err, 3, "rotated out")

	// A rotation whose record changed since it was archived is refused.
	_, err = st.RotateAudit(store.DefaultStream, 8, []byte("not the mac"))
	assert.ErrorIs(t, err, store.ErrConflict)
}

// TestOpcodeValues pins the values docs/audit.md's table gives: the
// published ones as CloudHSM shows them, gohsm's from 0x1000.
func TestOpcodeValues(t *testing.T) {
	for o, v := range map[Opcode]uint16{CN_INIT_TOKEN: 0x1, CN_CREATE_USER: 0x3, CN_CREATE_CO: 0x4, CN_CHANGE_PSWD: 0x9,
		CN_LOGIN: 0xd, CN_LOGOUT: 0xe, CN_DESTROY_OBJECT: 0x11, CN_SHARE_OBJECT: 0x12, CN_GENERATE_KEY: 0x17,
		CN_GENERATE_KEY_PAIR: 0x19, CN_WRAP_KEY: 0x1a, CN_UNWRAP_KEY: 0x1b, CN_DELETE_USER: 0xa1,
		CN_CREATE_OBJECT: 0x1000, CN_MODIFY_OBJECT: 0x1001, CN_TOMBSTONE_OBJECT: 0x1002, CN_DERIVE_KEY: 0x1003,
		CN_SET_M_VALUE: 0x1004, CN_RESTORE_END: 0x100c, CN_APP_FINALIZE: 0x100d, CN_CLOSE_SESSION: 0x100e,
		CN_QUOTA_EXCEEDED: 0x1010, CN_EXTRACT_MASKED_OBJECT_USER: 0xf0, CN_INSERT_MASKED_OBJECT_USER: 0xf1,
		GOHSM_HSM_STATE: 0x1011, GOHSM_FAULT_INJECTED: 0x1012, GOHSM_FAULT_PLAN: 0x1013, GOHSM_STORE_FAULT: 0x1014} {
		assert.Equal(t, v, uint16(o), o.String())
		assert.Equal(t, v < 0x1000, o.Published(), o.String())
	}
}

// racingStore is another process appending an audit record while Load
// reads: between its reads of a stream's head and of its records.
type racingStore struct {
	store.Store
	t *testing.T
}

func (r racingStore) AuditState(stream string) (store.AuditState, error) {
	st, err := r.Store.AuditState(stream)
	appendN(r.t, r.Store, 100, 1)
	return st, err
}

// TestLoadIsOneSnapshot: a record appended while Load reads is not an
// alarm; Load reads key, base, head and records in one snapshot (three
// reads took the head before the record and reported it "appended
// behind the token's back").
func TestLoadIsOneSnapshot(t *testing.T) {
	st, _ := logStore(t, 3)
	_, err := verifyStore(t, racingStore{st, t})
	require.NoError(t, err)
}
