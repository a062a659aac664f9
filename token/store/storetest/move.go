package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// Populate fills s with one of every kind of record a Snapshot holds, so
// that moving it shows what a move loses: a token with an escrow key,
// officers and users (one locked, one with failed logins, one with legacy
// material), objects private and public with attributes, sealed values,
// keys for their owner and sharees, an empty attribute value, an 8 kB
// attribute, key quorum values, a deleted object (the sequence passes the
// highest ID), shares, audit records on two streams with a rotation and
// the boot counter, quorum keys, values and tokens with approvals.
func Populate(t *testing.T, s store.Store) {
	t.Helper()
	tr := store.TokenRecord{Label: "moved", SerialNumber: "fedcba9876543210", Created: 1700000001, EscrowPublic: []byte("escrow-pub")}
	ev := func(stream, rec string) store.AuditEvent {
		return store.AuditEvent{Stream: stream, Record: []byte(rec)}
	}
	require.NoError(t, s.Audited(ev("", "init")).InitToken(tr, user("admin", store.RoleCO)))
	a := s.Audited(ev("", "users"), ev("hsm-1", "users"))
	require.NoError(t, a.CreateUser(user("alice", store.RoleCU)))
	bob := user("bob", store.RoleCU)
	bob.PublicKey, bob.Escrow, bob.Legacy, bob.KeyVersion = []byte("bob-pub"), []byte("bob-escrow"), []byte("bob-legacy"), store.KeyV1
	require.NoError(t, s.CreateUser(bob))
	carol := user("carol", store.RoleCU)
	carol.FailedLogins, carol.Locked = 5, true
	require.NoError(t, s.CreateUser(carol))
	dave := user("dave", store.RoleCU)
	dave.FailedLogins = 2
	require.NoError(t, s.CreateUser(dave))
	require.NoError(t, s.CreateUser(user("officer2", store.RoleCO)))

	var ids []int64
	for i := range 6 {
		owner := []string{"alice", "bob", ""}[i%3]
		o := obj(fmt.Sprintf("uid-%d", i), owner, owner != "", fmt.Sprintf("key %d", i))
		o.Attrs[ck.CKA_ID] = []byte{}
		if owner != "" {
			o.Keys = map[string][]byte{owner: []byte("dk-" + owner + fmt.Sprint(i))}
		}
		if i == 2 {
			big := make([]byte, 8192)
			for j := range big {
				big[j] = byte(j * 7)
			}
			o.Attrs[ck.CKA_VALUE] = big
			o.Sealed = nil
		}
		got, _, err := s.Audited(ev("hsm-1", fmt.Sprint("create ", i))).CreateObjects([]store.ObjectRecord{o})
		require.NoError(t, err)
		ids = append(ids, got[0].ID)
	}
	require.NoError(t, s.Share(ids[0], "bob", []byte("dk-bob0")))
	require.NoError(t, s.Share(ids[0], "dave", []byte("dk-dave0")))
	require.NoError(t, s.Share(ids[1], "alice", nil))
	require.NoError(t, s.SetKeyQuorum(ids[0], 2, 3))
	require.NoError(t, s.SetKeyQuorum(ids[3], 1, 2))
	o, err := s.Object(ids[3])
	require.NoError(t, err)
	o.Attrs[ck.CKA_LABEL] = []byte("renamed")
	_, _, err = s.UpdateObject(*o)
	require.NoError(t, err)
	// The last object goes: its ID stays handed out.
	_, err = s.Audited(ev("", "delete")).DeleteObject(ids[5])
	require.NoError(t, err)

	for i := range 4 {
		require.NoError(t, s.Audit(ev("hsm-1", fmt.Sprint("event ", i))))
	}
	recs, err := s.AuditRecords("hsm-1", 0, 3)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	_, err = s.RotateAudit("hsm-1", recs[2].Seq, recs[2].MAC)
	require.NoError(t, err)
	_, err = s.AuditBoot()
	require.NoError(t, err)

	require.NoError(t, s.SetQuorumKey("admin", []byte("der-admin")))
	require.NoError(t, s.SetQuorumKey("alice", []byte("der-alice")))
	require.NoError(t, s.SetQuorumValue("user", 2))
	require.NoError(t, s.SetQuorumValue("quorum", 3))
	q1, err := s.AddQuorumToken(store.QuorumToken{Service: "user", User: "admin", Approval: []byte("ap1"), Created: 100, Expires: 1 << 40}, 100, true, 10)
	require.NoError(t, err)
	require.NoError(t, s.ApproveQuorumToken(q1, []string{"admin", "officer2"}))
	q2, err := s.AddQuorumToken(store.QuorumToken{Service: "key-usage", User: "alice", Approval: []byte("ap2"), Created: 100, Expires: 1 << 40}, 100, false, 10)
	require.NoError(t, err)
	_, err = s.AddQuorumToken(store.QuorumToken{Service: "user", User: "bob", Approval: []byte("ap3"), Created: 100, Expires: 1 << 40}, 100, false, 10)
	require.NoError(t, err)
	require.NoError(t, s.ConsumeQuorumToken(q2))
}

// VerifyAuditChains checks every stream of snap as an auditor would: each
// record chained with ChainMAC under the snapshot's key to the one before
// it (or to the stream's base), sequences without gaps, and the head the
// last record.
func VerifyAuditChains(t *testing.T, snap *store.Snapshot) {
	t.Helper()
	require.NotEmpty(t, snap.AuditKey)
	byStream := map[string][]store.AuditRecord{}
	for _, r := range snap.Audit {
		byStream[r.Stream] = append(byStream[r.Stream], r)
	}
	for stream, head := range snap.AuditHeads {
		seq, prev := uint64(0), []byte(nil)
		if b, ok := snap.AuditBases[stream]; ok {
			seq, prev = b.Seq+1, b.MAC
		}
		for _, r := range byStream[stream] {
			require.Equal(t, seq, r.Seq, "stream %s: no gap", stream)
			require.Equal(t, store.ChainMAC(snap.AuditKey, stream, r.Seq, prev, r.Record), r.MAC, "stream %s record %d chains", stream, r.Seq)
			seq, prev = r.Seq+1, r.MAC
		}
		require.Equal(t, head, store.AuditMark{Seq: seq - 1, MAC: prev}, "stream %s: head", stream)
	}
	assert.Len(t, snap.AuditHeads, len(byStream), "a head for every stream")
}

func export(t *testing.T, s store.Store) *store.Snapshot {
	t.Helper()
	m, ok := s.(store.Mover)
	require.True(t, ok, "%T is a store.Mover", s)
	snap, err := m.Export()
	require.NoError(t, err)
	return snap
}

// testMoveRoundTrip: Export then Import into an empty token of the same
// backend gives the same records (IDs and versions too), the audit chains
// verify, the token works on (new IDs above every ID handed out), and
// the target is seen to change across openings.
func testMoveRoundTrip(t *testing.T, b Backend) {
	src := b.Open(t)
	Populate(t, src)
	snap := export(t, src)
	require.NotNil(t, snap.Token)
	assert.Len(t, snap.Users, 6)
	assert.Len(t, snap.Objects, 5)
	assert.Len(t, snap.Shares, 3)
	assert.Len(t, snap.QuorumTokens, 2)
	assert.Contains(t, snap.AuditBases, "hsm-1")
	assert.NotZero(t, snap.AuditBoot)
	assert.GreaterOrEqual(t, snap.ObjectSeq, snap.Objects[len(snap.Objects)-1].ID+1, "the deleted object's ID counts")
	VerifyAuditChains(t, snap)

	dst := b.Open(t)
	other := b.Reopen(t, dst)
	g := generation(t, other)
	require.NoError(t, dst.(store.Mover).Import(snap, false))
	assert.Equal(t, snap, export(t, dst), "the same records")
	assert.Equal(t, snap, export(t, other), "seen by another opening")
	moveWaitGeneration(t, b, other, g)

	// The imported token works: logins count, objects read and update,
	// new objects and quorum tokens get IDs never handed out before, the
	// audit chain goes on.
	o, err := other.Object(snap.Objects[0].ID)
	require.NoError(t, err)
	assert.Equal(t, snap.Objects[0].Sealed, o.Sealed)
	_, _, err = other.UpdateObject(*o)
	require.NoError(t, err)
	n, err := other.CreateObject(obj("after", "alice", true, "after"))
	require.NoError(t, err)
	assert.Greater(t, n.ID, snap.ObjectSeq)
	q, err := other.AddQuorumToken(store.QuorumToken{Service: "user", User: "alice", Approval: []byte("x"), Created: 1, Expires: 1 << 40}, 1, false, 10)
	require.NoError(t, err)
	assert.Greater(t, q, snap.QuorumTokenSeq)
	require.NoError(t, other.Audit(store.AuditEvent{Stream: "hsm-1", Record: []byte("after the move")}))
	after := export(t, dst)
	VerifyAuditChains(t, after)
	_, locked, err := func() (int, bool, error) {
		require.NoError(t, other.BeginLogin("dave", 5))
		return other.LoginFailed("dave", 5)
	}()
	require.NoError(t, err)
	assert.False(t, locked, "dave had 2 failures, now 3")
	u, err := dst.User("dave")
	require.NoError(t, err)
	assert.Equal(t, 3, u.FailedLogins)
	assert.ErrorIs(t, other.BeginLogin("carol", 5), store.ErrLocked, "carol stays locked")
}

// testMoveRefusesNonEmpty: Import without replace into a token that holds
// anything fails with ErrExists and changes nothing; with replace, the
// token holds the snapshot's records and nothing of its own, and an
// Audited view's events follow the imported chain.
func testMoveRefusesNonEmpty(t *testing.T, b Backend) {
	src := b.Open(t)
	Populate(t, src)
	snap := export(t, src)

	// One target, reset (an empty snapshot, replaced) before each case,
	// so that each case alone is what refuses the import.
	dst := b.Open(t)
	for name, fill := range map[string]func(s store.Store){
		"initialised": func(s store.Store) {
			require.NoError(t, s.InitToken(store.TokenRecord{Label: "other", SerialNumber: "1111111111111111"}, user("root", store.RoleCO)))
		},
		"audited": func(s store.Store) { require.NoError(t, s.Audit(store.AuditEvent{Record: []byte("lone")})) },
		"quorum":  func(s store.Store) { require.NoError(t, s.SetQuorumValue("user", 2)) },
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, dst.(store.Mover).Import(&store.Snapshot{}, true))
			fill(dst)
			before := export(t, dst)
			g := generation(t, dst)
			err := dst.(store.Mover).Import(snap, false)
			require.ErrorIs(t, err, store.ErrExists)
			assert.Equal(t, before, export(t, dst), "nothing changed")
			assert.Equal(t, g, generation(t, dst), "nothing committed")
		})
	}

	require.NoError(t, dst.(store.Mover).Import(&store.Snapshot{}, true))
	require.NoError(t, dst.InitToken(store.TokenRecord{Label: "other", SerialNumber: "1111111111111111"}, user("root", store.RoleCO)))
	_, err := dst.CreateObject(obj("mine", "", false, "mine"))
	require.NoError(t, err)
	require.NoError(t, dst.Audit(store.AuditEvent{Stream: "hsm-9", Record: []byte("mine")}))
	l := store.ThisProcess()
	l.User, l.Instance = "root", 42
	require.NoError(t, dst.AddLogin(l))
	logins, err := dst.Logins("")
	require.NoError(t, err)
	require.Len(t, logins, 1)
	restored := store.AuditEvent{Stream: "hsm-1", Record: []byte("restored")}
	require.NoError(t, dst.Audited(restored).(store.Mover).Import(snap, true))
	got := export(t, dst)
	VerifyAuditChains(t, got)
	require.Len(t, got.Audit, len(snap.Audit)+1, "the view's event follows the imported records")
	last := got.Audit[len(got.Audit)-1]
	assert.Equal(t, "restored", string(last.Record))
	got.Audit = got.Audit[:len(got.Audit)-1]
	got.AuditHeads["hsm-1"] = snap.AuditHeads["hsm-1"]
	assert.GreaterOrEqual(t, got.ObjectSeq, snap.ObjectSeq)
	got.ObjectSeq = snap.ObjectSeq
	assert.Equal(t, snap, got, "the snapshot's records and nothing else")
	logins, err = dst.Logins("")
	require.NoError(t, err)
	assert.Empty(t, logins, "the replaced token's logins are gone")
}

// testMoveEmptySnapshot: importing an empty snapshot with replace resets
// the token: nothing of it stays, and it works on with a new audit key.
func testMoveEmptySnapshot(t *testing.T, b Backend) {
	s := b.Open(t)
	Populate(t, s)
	old := export(t, s)
	require.NoError(t, s.(store.Mover).Import(&store.Snapshot{}, true))
	_, err := s.Token()
	assert.ErrorIs(t, err, store.ErrNotInitialized)
	got := export(t, s)
	assert.NotEmpty(t, got.AuditKey)
	assert.NotEqual(t, old.AuditKey, got.AuditKey, "a new key")
	got.AuditKey = nil
	assert.Equal(t, &store.Snapshot{ObjectSeq: got.ObjectSeq, QuorumTokenSeq: got.QuorumTokenSeq}, got)
	assert.GreaterOrEqual(t, got.ObjectSeq, old.ObjectSeq, "IDs are not handed out again")
	require.NoError(t, s.Audit(store.AuditEvent{Record: []byte("after reset")}))
	VerifyAuditChains(t, export(t, s))
}

// testMoveBadSnapshot: a snapshot no token could hold is refused before
// anything is written.
func testMoveBadSnapshot(t *testing.T, b Backend) {
	dst := b.Open(t)
	m := dst.(store.Mover)
	bad := &store.Snapshot{Users: []store.UserRecord{user("x", store.RoleCO)}}
	assert.ErrorIs(t, m.Import(bad, false), store.ErrDamaged)
	bad = &store.Snapshot{Token: &store.TokenRecord{Label: "t", SerialNumber: "s"},
		Objects: []store.ObjectRecord{obj("", "", false, "x")}}
	assert.ErrorIs(t, m.Import(bad, false), store.ErrDamaged)
	// An object owned by a user the snapshot lacks: the whole import rolls
	// back.
	bad = &store.Snapshot{Token: &store.TokenRecord{Label: "t", SerialNumber: "s"},
		Users: []store.UserRecord{user("x", store.RoleCO)}, Objects: []store.ObjectRecord{obj("u", "ghost", true, "x")}}
	bad.Objects[0].ID = 1
	require.Error(t, m.Import(bad, false))
	_, err := dst.Token()
	assert.ErrorIs(t, err, store.ErrNotInitialized, "nothing of it stayed")
}

// moveWaitGeneration waits until s's Generation moves from before: at
// once, or within the backend's GenerationLag when it has one (a
// PostgreSQL store hears of another opening's commits by notification).
func moveWaitGeneration(t *testing.T, b Backend, s store.Store, before uint64) {
	t.Helper()
	var lag time.Duration
	if l, ok := b.(interface{ GenerationLag() time.Duration }); ok {
		lag = l.GenerationLag()
	}
	deadline := time.Now().Add(lag)
	for generation(t, s) == before {
		if time.Now().After(deadline) {
			t.Fatalf("Generation still %d %v after another opening's import", before, lag)
		}
		time.Sleep(time.Millisecond)
	}
}
