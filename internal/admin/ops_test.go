package admin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/audit"
	"gohsm/token/store"
)

func (k *tok) slot(m *token.Module) *token.Slot {
	k.t.Helper()
	s, err := m.Slot(m.SlotIDs()[0])
	require.NoError(k.t, err)
	return s
}

func TestQueryAudit(t *testing.T) {
	k := newTok(t, "")
	k.login(alicePIN)
	k.login(bobPIN)
	m, h := k.module()
	_, err := Login(m, h, []byte("alice:wrong"), NeedAny)
	require.ErrorIs(t, err, ck.CKR_PIN_INCORRECT)
	s := k.slot(m)

	all, streams, err := QueryAudit(s, AuditQuery{})
	require.NoError(t, err)
	assert.Equal(t, []string{store.DefaultStream}, streams)
	require.Greater(t, len(all), 5)
	for i := 1; i < len(all); i++ {
		assert.Equal(t, all[i-1].Seq+1, all[i].Seq, "in sequence order")
	}

	logins, _, err := QueryAudit(s, AuditQuery{Opcode: "login", User: "ALICE"})
	require.NoError(t, err)
	require.Len(t, logins, 2, "alice's login and her failed one")
	for _, r := range logins {
		assert.Equal(t, "CN_LOGIN", r.Event.Opcode.String())
		assert.Equal(t, "alice", r.Event.User)
	}
	assert.NotEqual(t, logins[0].Event.Code, logins[1].Event.Code, "one failed")

	last, _, err := QueryAudit(s, AuditQuery{Opcode: "CN_LOGIN", Limit: 1})
	require.NoError(t, err)
	require.Len(t, last, 1)
	assert.Equal(t, logins[1].Seq, last[0].Seq, "the newest")

	since, _, err := QueryAudit(s, AuditQuery{Since: all[3].Seq})
	require.NoError(t, err)
	assert.Len(t, since, len(all)-3)

	none, _, err := QueryAudit(s, AuditQuery{User: "nobody"})
	require.NoError(t, err)
	assert.NotNil(t, none, "no match is an empty list, not null")
	assert.Empty(t, none)
	_, _, err = QueryAudit(s, AuditQuery{Stream: "nope"})
	assert.ErrorContains(t, err, `no audit stream "nope"`)

	lines := Lines(logins)
	assert.Equal(t, "CN_LOGIN", lines[0].Opcode)
	assert.Equal(t, hex.EncodeToString(logins[0].MAC), lines[0].MAC)

	for _, q := range []AuditQuery{{Opcode: "CN_NOPE"}, {Limit: -1}} {
		_, _, err := QueryAudit(s, q)
		var ie *InputError
		require.ErrorAs(t, err, &ie, "%+v", q)
		require.Error(t, q.Check())
	}
	_, _, err = QueryAudit(s, AuditQuery{Opcode: "CN_NOPE"})
	assert.Equal(t, `opcode: audit: unknown opcode "CN_NOPE"`, err.Error())
	assert.Equal(t, `--opcode: audit: unknown opcode "CN_NOPE"`, err.(*InputError).FlagText())
}

func TestVerifyAudit(t *testing.T) {
	k := newTok(t, "")
	k.login(alicePIN)
	m, _ := k.module()
	s := k.slot(m)
	v, err := VerifyAudit(s, VerifyOptions{})
	require.NoError(t, err)
	assert.True(t, v.OK)
	require.NoError(t, v.Err())
	require.Len(t, v.Streams, 1)
	r := v.Streams[0]
	assert.True(t, r.OK)
	assert.Equal(t, store.DefaultStream, r.Stream)
	assert.Equal(t, r.Last, r.HeadSeq)
	assert.Equal(t, int(r.Last-r.First)+1, r.Count)
	assert.Empty(t, r.Reason)

	// An anchor whose MAC is not the record's: the chain does not verify
	// from there, and the report names the record and why.
	v, err = VerifyAudit(s, VerifyOptions{Stream: store.DefaultStream,
		Anchors: []store.AuditMark{{Seq: 2, MAC: bytes.Repeat([]byte{7}, 32)}}})
	require.NoError(t, err)
	assert.False(t, v.OK)
	require.Len(t, v.Streams, 1)
	assert.False(t, v.Streams[0].OK)
	assert.Equal(t, uint64(2), v.Streams[0].BadSeq)
	assert.NotEmpty(t, v.Streams[0].Reason)
	var ve *audit.VerifyError
	require.True(t, errors.As(v.Err(), &ve))
	assert.Equal(t, uint64(2), ve.Seq)
}

// TestVerifyAuditUnknownStream: a stream the token never wrote is an
// error naming the streams it has, not a green verification of nothing.
func TestVerifyAuditUnknownStream(t *testing.T) {
	k := newTok(t, "")
	k.login(alicePIN)
	m, _ := k.module()
	s := k.slot(m)
	v, err := VerifyAudit(s, VerifyOptions{Stream: "hsm-9"})
	require.Error(t, err)
	assert.Empty(t, v.Streams)
	assert.Contains(t, err.Error(), `"hsm-9"`)
	assert.Contains(t, err.Error(), store.DefaultStream, "names the streams that exist")
	_, code := ErrorCode(err)
	assert.Equal(t, CodeNotFound, code)
	// A stream the token has, or one the archives hold, verifies.
	_, err = VerifyAudit(s, VerifyOptions{Stream: store.DefaultStream})
	require.NoError(t, err)
	arch := audit.Record{Stream: "old-hsm"}
	_, err = VerifyAudit(s, VerifyOptions{Stream: "old-hsm", Archive: []audit.Record{arch}})
	assert.NotContains(t, fmt.Sprint(err), "no audit stream", "an archived stream is known")
	// Showing (and so rotating and reading heads, which take the same
	// streams) refuses it too: an empty list would read as a quiet log.
	_, _, err = QueryAudit(s, AuditQuery{Stream: "hsm-9"})
	require.Error(t, err)
	_, code = ErrorCode(err)
	assert.Equal(t, CodeNotFound, code)
	_, _, err = AuditStreams(s, "hsm-9")
	assert.Contains(t, fmt.Sprint(err), `no audit stream "hsm-9"`)
	recs, _, err := QueryAudit(s, AuditQuery{Stream: store.DefaultStream})
	require.NoError(t, err)
	assert.NotEmpty(t, recs)
}

func TestStatus(t *testing.T) {
	k := newTok(t, "lockout_threshold = 2\n")
	m, h := k.module()
	for range 2 {
		_, err := Login(m, h, []byte("bob:wrong"), NeedAny)
		require.Error(t, err)
	}
	st, err := Status(m, m.SlotIDs()[0])
	require.NoError(t, err)
	assert.Equal(t, m.SlotIDs()[0], st.Slot)
	assert.True(t, st.Initialized)
	assert.False(t, st.Damaged)
	assert.Equal(t, "admin-test", st.Label)
	assert.Equal(t, 3, st.Users)
	assert.Equal(t, []string{"bob"}, st.LockedUsers)
	assert.Contains(t, st.Flags, "initialized")
	assert.NotEmpty(t, st.Dir)
	_, err = Status(m, 42)
	require.ErrorIs(t, err, ck.CKR_SLOT_ID_INVALID)
}

func TestBackupToWriter(t *testing.T) {
	k := newTok(t, "")
	um, uh := k.login(alicePIN)
	var buf bytes.Buffer
	_, err := Backup(um, uh, &buf)
	require.ErrorIs(t, err, ck.CKR_USER_NOT_LOGGED_IN, "a crypto user may not")
	assert.Zero(t, buf.Len(), "nothing written")

	om, oh := k.login(coPIN)
	info, err := Backup(om, oh, &buf)
	require.NoError(t, err)
	// The header, then the database the info describes.
	require.Greater(t, int64(buf.Len()), info.Size)
	sum := sha256.Sum256(buf.Bytes()[int64(buf.Len())-info.Size:])
	assert.Equal(t, hex.EncodeToString(sum[:]), info.SHA256)
	assert.Equal(t, "admin-test", info.Label)

	// The backup restores into another slot's directory as a backup file
	// `gohsm token backup` wrote would.
	f := t.TempDir() + "/t.gohsm-backup"
	require.NoError(t, os.WriteFile(f, buf.Bytes(), 0o600))
	k2 := newTok(t, "")
	m2, err := token.OpenTool(k2.conf)
	require.NoError(t, err)
	defer m2.Close()
	got, err := k2.slot(m2).Restore(f, true)
	require.NoError(t, err)
	assert.Equal(t, info.Serial, got.Serial)

	// The audit log names the officer.
	recs, _, err := QueryAudit(k.slot(om), AuditQuery{Opcode: "CN_BACKUP_END"})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "admin", recs[0].Event.User)
}
