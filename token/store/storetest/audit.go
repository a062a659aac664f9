package storetest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// testAuditFill: an event's Fill runs in the transaction with the IDs the
// objects got there; a write that fails appends nothing.
func testAuditFill(t *testing.T, b Backend) {
	s := b.Open(t)
	var got []int64
	ev := store.AuditEvent{Fill: func(created []int64) ([]byte, error) {
		got = append([]int64(nil), created...)
		return []byte(fmt.Sprint(created)), nil
	}}
	out, _, err := s.Audited(ev).CreateObjects([]store.ObjectRecord{obj("a", "", false, "x"), obj("b", "", false, "y")})
	require.NoError(t, err)
	assert.Equal(t, []int64{out[0].ID, out[1].ID}, got)
	recs, err := s.AuditRecords(store.DefaultStream, 0, 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, fmt.Sprint(got), string(recs[0].Record))

	// A failing write (a unique ID stored already) appends no event.
	_, _, err = s.Audited(store.AuditEvent{Record: []byte("no")}).CreateObjects([]store.ObjectRecord{obj("a", "", false, "x")})
	require.Error(t, err)
	// A failing Fill stores no object.
	_, _, err = s.Audited(store.AuditEvent{Fill: func([]int64) ([]byte, error) { return nil, fmt.Errorf("no") }}).
		CreateObjects([]store.ObjectRecord{obj("c", "", false, "x")})
	require.Error(t, err)
	ids, err := s.Find(store.Query{})
	require.NoError(t, err)
	assert.Len(t, ids, 2, "a Fill's error rolls the objects back")
	recs, err = s.AuditRecords(store.DefaultStream, 0, 0)
	require.NoError(t, err)
	assert.Len(t, recs, 1)
	st, err := s.AuditState(store.DefaultStream)
	require.NoError(t, err)
	require.NotNil(t, st.Head)
	assert.Equal(t, store.AuditMark{Seq: 0, MAC: recs[0].MAC}, *st.Head)
	assert.Nil(t, st.Base)
}

// testAuditChain: appends from two openings take gap-free sequence
// numbers per stream, each record chained to the one before with
// ChainMAC under the token's audit key; rotation keeps the chain going
// from its base.
func testAuditChain(t *testing.T, b Backend) {
	a := initialized(t, b)
	o := b.Reopen(t, a)
	for i := range 6 {
		s := a
		if i%2 == 1 {
			s = o
		}
		require.NoError(t, s.Audit(store.AuditEvent{Record: []byte(fmt.Sprint("ev", i))}))
		_, err := s.Audited(store.AuditEvent{Stream: "hsm-1", Record: []byte(fmt.Sprint("key", i))}).
			CreateObject(obj(fmt.Sprint("k", i), "", false, "k"))
		require.NoError(t, err)
	}
	key, err := o.AuditKey()
	require.NoError(t, err)
	require.NotEmpty(t, key)
	key2, err := a.AuditKey()
	require.NoError(t, err)
	assert.Equal(t, key, key2, "one key for the token")

	verify := func(stream string, base *store.AuditMark, recs []store.AuditRecord) {
		t.Helper()
		seq, prev := uint64(0), []byte(nil)
		if base != nil {
			seq, prev = base.Seq+1, base.MAC
		}
		for _, r := range recs {
			require.Equal(t, stream, r.Stream)
			require.Equal(t, seq, r.Seq, "gap-free sequence")
			require.Equal(t, store.ChainMAC(key, stream, r.Seq, prev, r.Record), r.MAC, "record %d chains", r.Seq)
			seq, prev = seq+1, r.MAC
		}
	}
	for _, stream := range []string{store.DefaultStream, "hsm-1"} {
		c, err := a.AuditChain(stream)
		require.NoError(t, err)
		assert.Equal(t, key, c.Key)
		require.Len(t, c.Records, 6)
		verify(stream, nil, c.Records)
		assert.Nil(t, c.State.Base)
		require.NotNil(t, c.State.Head)
		assert.Equal(t, store.AuditMark{Seq: 5, MAC: c.Records[5].MAC}, *c.State.Head)
	}
	recs, err := o.AuditRecords("hsm-1", 0, 0)
	require.NoError(t, err)
	assert.Equal(t, "key3", string(recs[3].Record))

	// Rotation: a record changed since it was archived is not deleted.
	_, err = a.RotateAudit("hsm-1", 2, []byte("another mac"))
	assert.ErrorIs(t, err, store.ErrConflict)
	_, err = a.RotateAudit("hsm-1", 99, recs[2].MAC)
	assert.ErrorIs(t, err, store.ErrNotFound)
	n, err := a.RotateAudit("hsm-1", 2, recs[2].MAC)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	require.NoError(t, o.Audit(store.AuditEvent{Stream: "hsm-1", Record: []byte("after rotation")}))
	c, err := a.AuditChain("hsm-1")
	require.NoError(t, err)
	require.NotNil(t, c.State.Base)
	assert.Equal(t, store.AuditMark{Seq: 2, MAC: recs[2].MAC}, *c.State.Base)
	require.Len(t, c.Records, 4)
	verify("hsm-1", c.State.Base, c.Records)
	assert.Equal(t, uint64(6), c.State.Head.Seq)
	c0, err := a.AuditChain(store.DefaultStream)
	require.NoError(t, err)
	assert.Len(t, c0.Records, 6, "another stream is not rotated")

	n1, err := a.AuditBoot()
	require.NoError(t, err)
	assert.NotZero(t, n1)
	n2, err := o.AuditBoot()
	require.NoError(t, err)
	assert.Equal(t, n1, n2, "one boot for both openings")
}

// testAuditStreamsAndRange: streams are listed by name, records read by
// range.
func testAuditStreamsAndRange(t *testing.T, b Backend) {
	s := b.Open(t)
	for i := 0; i < 5; i++ {
		require.NoError(t, s.Audit(store.AuditEvent{Record: []byte{byte(i)}}, store.AuditEvent{Stream: "hsm-1", Record: []byte{byte(i)}}))
	}
	streams, err := s.AuditStreams()
	require.NoError(t, err)
	assert.Equal(t, []string{"hsm-0", "hsm-1"}, streams)
	recs, err := s.AuditRecords("hsm-1", 2, 2)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Equal(t, uint64(2), recs[0].Seq)
	assert.Equal(t, uint64(3), recs[1].Seq)
	assert.Equal(t, []byte{2}, recs[0].Record)
}

// testAuditedWrites: a write through Audited appends its events when it
// commits and only then.
func testAuditedWrites(t *testing.T, b Backend) {
	s := initialized(t, b)
	ev := func(r string) store.AuditEvent { return store.AuditEvent{Record: []byte(r)} }
	o, err := s.Audited(ev("create")).CreateObject(obj("a", "alice", true, "a"))
	require.NoError(t, err)
	upd := o
	upd.Attrs = map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte("b")}
	_, _, err = s.Audited(ev("update")).UpdateObject(upd)
	require.NoError(t, err)
	_, _, err = s.Audited(ev("stale update")).UpdateObject(upd)
	require.ErrorIs(t, err, store.ErrConflict)
	require.NoError(t, s.Audited(ev("user")).CreateUser(user("carol", store.RoleCU)))
	require.ErrorIs(t, s.Audited(ev("dup user")).CreateUser(user("carol", store.RoleCU)), store.ErrExists)
	require.ErrorIs(t, s.Audited(ev("in use")).DeleteUser("alice"), store.ErrInUse)
	_, err = s.Audited(ev("delete")).DeleteObject(o.ID)
	require.NoError(t, err)
	_, err = s.Audited(ev("delete again")).DeleteObject(o.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	recs, err := b.Reopen(t, s).AuditRecords(store.DefaultStream, 0, 0)
	require.NoError(t, err)
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Record))
	}
	assert.Equal(t, []string{"create", "update", "user", "delete"}, got)
}

// testAuditLater: queued events are appended by the opening's next write,
// before its own events; a write that fails keeps them queued (nothing
// of it is written); FlushAudit writes them alone, in one transaction,
// and a batch that cannot be written is dropped whole, with an error
// naming how many events were lost.
func testAuditLater(t *testing.T, b Backend) {
	s := initialized(t, b)
	ev := func(r string) store.AuditEvent { return store.AuditEvent{Record: []byte(r)} }
	records := func() []string {
		t.Helper()
		recs, err := s.AuditRecords(store.DefaultStream, 0, 0)
		require.NoError(t, err)
		var got []string
		for _, r := range recs {
			got = append(got, string(r.Record))
		}
		return got
	}
	require.NoError(t, s.FlushAudit(), "an empty queue")
	s.AuditLater(ev("session key 1"))
	s.AuditLater(ev("session key 2"))
	assert.Empty(t, records(), "queued, not written")
	_, err := s.Audited(ev("create")).CreateObject(obj("a", "alice", true, "a"))
	require.NoError(t, err)
	assert.Equal(t, []string{"session key 1", "session key 2", "create"}, records())

	s.AuditLater(ev("session key 3"))
	require.ErrorIs(t, s.Audited(ev("dup user")).CreateUser(user("alice", store.RoleCU)), store.ErrExists)
	assert.Len(t, records(), 3, "a failed write writes nothing")
	require.NoError(t, s.FlushAudit())
	require.NoError(t, s.FlushAudit(), "nothing left")
	assert.Equal(t, []string{"session key 1", "session key 2", "create", "session key 3"}, records())

	s.AuditLater(ev("lost 1"))
	s.AuditLater(store.AuditEvent{Fill: func([]int64) ([]byte, error) { return nil, fmt.Errorf("no") }})
	err = s.FlushAudit()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "2 queued events not recorded")
	require.NoError(t, s.FlushAudit(), "the failed batch is gone")
	assert.Len(t, records(), 4, "nothing of the failed batch")

	// A batch longer than one multi-row insert, in two streams.
	var want []string
	for i := range 37 {
		r := fmt.Sprint("batch ", i)
		s.AuditLater(ev(r))
		s.AuditLater(store.AuditEvent{Stream: "hsm-1", Record: []byte(r)})
		want = append(want, r)
	}
	require.NoError(t, s.FlushAudit())
	got := records()
	require.Len(t, got, 4+37)
	assert.Equal(t, want, got[4:])

	// Long runs of one stream (statements of many rows), an empty record
	// among them, and a run of the other stream between.
	var runs []store.AuditEvent
	for i := range 300 {
		runs = append(runs, ev(fmt.Sprint("run a ", i)))
	}
	runs[150].Record = nil
	for i := range 21 {
		runs = append(runs, store.AuditEvent{Stream: "hsm-1", Record: []byte(fmt.Sprint("run b ", i))})
	}
	for i := range 70 {
		runs = append(runs, ev(fmt.Sprint("run c ", i)))
	}
	for _, r := range runs {
		s.AuditLater(r)
	}
	require.NoError(t, s.FlushAudit())
	got = records()
	require.Len(t, got, 4+37+370)
	assert.Equal(t, "run a 0", got[4+37])
	assert.Equal(t, "", got[4+37+150], "an empty record")
	assert.Equal(t, "run c 69", got[len(got)-1])
	other, err := s.AuditRecords("hsm-1", 37, 0)
	require.NoError(t, err)
	require.Len(t, other, 21)
	assert.Equal(t, "run b 20", string(other[20].Record))

	for _, stream := range []string{store.DefaultStream, "hsm-1"} {
		RequireChained(t, s, stream)
	}
}

// RequireChained checks stream's whole chain in s as an auditor would:
// sequence numbers from 0 without a gap, each record chained with
// ChainMAC under the store's audit key to the one before it, and the
// stream's head the last record. It returns the records.
func RequireChained(t testing.TB, s store.Store, stream string) []store.AuditRecord {
	t.Helper()
	key, err := s.AuditKey()
	require.NoError(t, err)
	c, err := s.AuditChain(stream)
	require.NoError(t, err)
	var prev []byte
	for i, r := range c.Records {
		require.Equal(t, uint64(i), r.Seq, "%s: gap-free", stream)
		require.Equal(t, store.ChainMAC(key, stream, r.Seq, prev, r.Record), r.MAC, "%s: record %d chained", stream, i)
		prev = r.MAC
	}
	require.NotNil(t, c.State.Head, "%s: head", stream)
	require.Equal(t, store.AuditMark{Seq: uint64(len(c.Records) - 1), MAC: prev}, *c.State.Head, "%s: head", stream)
	return c.Records
}
