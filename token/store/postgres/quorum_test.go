//go:build !nopostgres

package postgres

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv/pgtest"
	"gohsm/token/store"
)

// twoHosts is a token with users admin and alice, opened twice on one
// database (two hosts).
func twoHosts(t *testing.T) []store.Store {
	t.Helper()
	dsn := newDB(t)
	a := openPG(t, dsn)
	kdf := store.KDFParams{Time: 1, Memory: 64, Threads: 1}
	snap := &store.Snapshot{
		Token: &store.TokenRecord{Label: "q", SerialNumber: "0000000000000001", Created: 1},
		Users: []store.UserRecord{
			{Name: "admin", Role: store.RoleCO, KDF: kdf, Salt: []byte("s"), WrappedKey: []byte("w"), KeyVersion: store.KeyV2},
			{Name: "alice", Role: store.RoleCU, KDF: kdf, Salt: []byte("s"), WrappedKey: []byte("w"), KeyVersion: store.KeyV2},
		},
	}
	require.NoError(t, a.(store.Mover).Import(snap, false))
	return []store.Store{a, openPG(t, dsn)}
}

// runHosts runs fn from 4 goroutines on each of the two stores at once
// and counts the calls that succeeded and those that failed with want.
func runHosts(t *testing.T, hosts []store.Store, want error, fn func(s store.Store) error) (ok, refused int) {
	t.Helper()
	var okN, refN atomic.Int32
	var wg sync.WaitGroup
	var mu sync.Mutex
	var other []error
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch err := fn(hosts[i%2]); {
			case err == nil:
				okN.Add(1)
			case errors.Is(err, want):
				refN.Add(1)
			default:
				mu.Lock()
				other = append(other, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Empty(t, other)
	return int(okN.Load()), int(refN.Load())
}

// TestQuorumAcrossHosts: what quorum authentication counts holds under
// two hosts acting at once: one live token per user and service when
// unique, the quota never passed, a token consumed once.
func TestQuorumAcrossHosts(t *testing.T) {
	hosts := twoHosts(t)
	tok := store.QuorumToken{Service: "user", User: "admin", Approval: []byte("a"), Created: 100, Expires: 1000}
	ok, refused := runHosts(t, hosts, store.ErrExists, func(s store.Store) error {
		_, err := s.AddQuorumToken(tok, 100, true, 100)
		return err
	})
	assert.Equal(t, 1, ok, "one unique token")
	assert.Equal(t, 7, refused)

	k := store.QuorumToken{Service: "key-usage", User: "alice", Approval: []byte("k"), Created: 100, Expires: 1000}
	ok, refused = runHosts(t, hosts, store.ErrQuota, func(s store.Store) error {
		_, err := s.AddQuorumToken(k, 100, false, 5)
		return err
	})
	assert.Equal(t, 4, ok, "up to the quota of 5 with the first")
	assert.Equal(t, 4, refused)
	toks, err := hosts[1].QuorumTokens()
	require.NoError(t, err)
	require.Len(t, toks, 5)

	id := toks[0].ID
	require.NoError(t, hosts[0].ApproveQuorumToken(id, []string{"admin"}))
	toks, err = hosts[1].QuorumTokens()
	require.NoError(t, err)
	assert.Equal(t, []string{"admin"}, toks[0].Approvers)
	ok, refused = runHosts(t, hosts, store.ErrNotFound, func(s store.Store) error { return s.ConsumeQuorumToken(id) })
	assert.Equal(t, 1, ok, "consumed once")
	assert.Equal(t, 7, refused)
	assert.ErrorIs(t, hosts[0].ApproveQuorumToken(id, nil), store.ErrNotFound)

	// Expired tokens are purged by the next add; unique then allows one.
	tok.Created, tok.Expires = 1000, 2000
	_, err = hosts[1].AddQuorumToken(tok, 1000, true, 5)
	require.NoError(t, err, "the expired ones made room")
	n, err := hosts[0].DeleteQuorumTokens("ADMIN")
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	// Keys and values.
	assert.ErrorIs(t, hosts[0].SetQuorumKey("nobody", []byte("x")), store.ErrNotFound)
	require.NoError(t, hosts[0].SetQuorumKey("Alice", []byte("k1")))
	require.NoError(t, hosts[1].SetQuorumKey("alice", []byte("k2")))
	keys, err := hosts[0].QuorumKeys()
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"alice": []byte("k2")}, keys)
	require.NoError(t, hosts[0].SetQuorumValue("user", 2))
	require.NoError(t, hosts[1].SetQuorumValue("user", 3))
	require.Error(t, hosts[1].SetQuorumValue("user", 0))
	vals, err := hosts[0].QuorumValues()
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"user": 3}, vals)
	assert.ErrorIs(t, hosts[0].SetKeyQuorum(12345, 2, 2), store.ErrNotFound)
}

// TestAuditRotateAcrossHosts: a rotation on one host, appends on the
// other: the chain goes on from the base, and a stale MAC is refused.
func TestAuditRotateAcrossHosts(t *testing.T) {
	hosts := twoHosts(t)
	for i := range 6 {
		require.NoError(t, hosts[i%2].Audit(store.AuditEvent{Stream: "hsm-2", Record: []byte{byte(i)}}))
	}
	recs, err := hosts[1].AuditRecords("hsm-2", 2, 2)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Equal(t, uint64(2), recs[0].Seq)
	_, err = hosts[0].RotateAudit("hsm-2", 3, []byte("stale"))
	assert.ErrorIs(t, err, store.ErrConflict)
	_, err = hosts[0].RotateAudit("hsm-2", 99, recs[1].MAC)
	assert.ErrorIs(t, err, store.ErrNotFound)
	n, err := hosts[0].RotateAudit("hsm-2", 3, recs[1].MAC)
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	require.NoError(t, hosts[1].Audit(store.AuditEvent{Stream: "hsm-2", Record: []byte("after")}))
	c, err := hosts[1].AuditChain("hsm-2")
	require.NoError(t, err)
	require.NotNil(t, c.State.Base)
	assert.Equal(t, store.AuditMark{Seq: 3, MAC: recs[1].MAC}, *c.State.Base)
	require.Len(t, c.Records, 3)
	prev := c.State.Base.MAC
	for i, r := range c.Records {
		assert.Equal(t, uint64(4+i), r.Seq)
		assert.Equal(t, store.ChainMAC(c.Key, "hsm-2", r.Seq, prev, r.Record), r.MAC)
		prev = r.MAC
	}
	assert.Equal(t, store.AuditMark{Seq: 6, MAC: prev}, *c.State.Head)
	streams, err := hosts[0].AuditStreams()
	require.NoError(t, err)
	assert.Equal(t, []string{"hsm-2"}, streams)

}

// TestAuditBootAcrossHosts: each boot of each host gets its ordinal once,
// however the hosts take turns; a host's next boot gets the next one; a
// token moved from SQLite keeps its boot's ordinal.
func TestAuditBootAcrossHosts(t *testing.T) {
	hosts := twoHosts(t)
	boot := "boot-a"
	testOnlyBootID = func() string { return boot }
	defer func() { testOnlyBootID = nil }()
	ask := func(s store.Store, b string) uint32 {
		t.Helper()
		boot = b
		n, err := s.AuditBoot()
		require.NoError(t, err)
		return n
	}
	assert.Equal(t, uint32(1), ask(hosts[0], "boot-a"))
	assert.Equal(t, uint32(2), ask(hosts[1], "boot-b"))
	assert.Equal(t, uint32(1), ask(hosts[1], "boot-a"), "host a's boot, asked again")
	assert.Equal(t, uint32(2), ask(hosts[0], "boot-b"))
	assert.Equal(t, uint32(3), ask(hosts[0], "boot-a2"), "host a rebooted")
	snap := exportOf(t, hosts[0])
	assert.Equal(t, int64(3), snap.AuditBoot)
	assert.Equal(t, "boot-a2", snap.AuditBootID)

	// Moved (here over itself): the last boot keeps its ordinal, the
	// others count anew.
	require.NoError(t, hosts[0].(store.Mover).Import(snap, true))
	assert.Equal(t, uint32(3), ask(hosts[1], "boot-a2"))
	assert.Equal(t, uint32(4), ask(hosts[0], "boot-b"), "replace forgets the replaced token's boots")
}

// BenchmarkAudit is one Audit call (one event, its own write
// transaction) on PostgreSQL.
func BenchmarkAudit(b *testing.B) {
	s, err := Open(pgtest.Shared(b).NewDatabase(b, "bench"), Options{})
	require.NoError(b, err)
	defer s.Close()
	ev := store.AuditEvent{Record: make([]byte, 200)}
	b.ResetTimer()
	for range b.N {
		if err := s.Audit(ev); err != nil {
			b.Fatal(err)
		}
	}
}
