package store

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAuditFillNamesCreatedObjects: an event's Fill runs in the
// transaction with the IDs the objects got there; a write that fails
// appends nothing.
func TestAuditFillNamesCreatedObjects(t *testing.T) {
	s := openTest(t, t.TempDir())
	var got []int64
	ev := AuditEvent{Fill: func(created []int64) ([]byte, error) {
		got = append([]int64(nil), created...)
		return []byte(fmt.Sprint(created)), nil
	}}
	out, _, err := s.Audited(ev).CreateObjects([]ObjectRecord{obj("a", "", false, "x"), obj("b", "", false, "y")})
	require.NoError(t, err)
	assert.Equal(t, []int64{out[0].ID, out[1].ID}, got)
	recs, err := s.AuditRecords(DefaultStream, 0, 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, fmt.Sprint(got), string(recs[0].Record))

	// A failing write (a unique ID stored already) appends no event.
	_, _, err = s.Audited(AuditEvent{Record: []byte("no")}).CreateObjects([]ObjectRecord{obj("a", "", false, "x")})
	require.Error(t, err)
	recs, err = s.AuditRecords(DefaultStream, 0, 0)
	require.NoError(t, err)
	assert.Len(t, recs, 1)
	st, err := s.AuditState(DefaultStream)
	require.NoError(t, err)
	require.NotNil(t, st.Head)
	assert.Equal(t, AuditMark{Seq: 0, MAC: recs[0].MAC}, *st.Head)
	assert.Nil(t, st.Base)
}

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

// TestAuditStreamsAndRange: streams are listed by name, records read by
// range.
func TestAuditStreamsAndRange(t *testing.T) {
	s := openTest(t, t.TempDir())
	for i := 0; i < 5; i++ {
		require.NoError(t, s.Audit(AuditEvent{Record: []byte{byte(i)}}, AuditEvent{Stream: "hsm-1", Record: []byte{byte(i)}}))
	}
	streams, err := s.AuditStreams()
	require.NoError(t, err)
	assert.Equal(t, []string{"hsm-0", "hsm-1"}, streams)
	recs, err := s.AuditRecords("hsm-1", 2, 2)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Equal(t, uint64(2), recs[0].Seq)
	assert.Equal(t, uint64(3), recs[1].Seq)
}
