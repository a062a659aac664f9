// Package storetest is the conformance suite of store.Store: the promises
// every token store backend keeps, as the token layer relies on them. A
// backend's package runs it with Run against stores it opens; what only
// one backend has (SQLite's WAL-index, file damage, golden files) is
// tested beside that backend instead.
package storetest

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// Backend opens the stores the suite tests.
type Backend interface {
	// Open returns a new, empty store (no token record, user or object),
	// closed when the test ends.
	Open(t *testing.T) store.Store
	// Reopen returns another opening of the token s is open on, as another
	// process (or host) has: nothing cached in s is shared with it but
	// the token itself. Closed when the test ends.
	Reopen(t *testing.T, s store.Store) store.Store
}

// GenerationLagger is a Backend whose stores see another opening's commit
// in Generation only after a delay (PostgreSQL's notifications travel
// after the commit). GenerationLag bounds that delay: the checks of a
// commit by another opening wait up to it for Generation to move. A
// Backend without it, or with 0, is held to immediate visibility.
type GenerationLagger interface {
	GenerationLag() time.Duration
}

func generationLag(b Backend) time.Duration {
	if l, ok := b.(GenerationLagger); ok {
		return l.GenerationLag()
	}
	return 0
}

// generationOtherThan is s's generation once it differs from prev, or,
// past the backend's lag, whatever it is then.
func generationOtherThan(t *testing.T, b Backend, s store.Store, prev uint64) uint64 {
	t.Helper()
	deadline := time.Now().Add(generationLag(b))
	for {
		g := generation(t, s)
		if g != prev || !time.Now().Before(deadline) {
			return g
		}
		time.Sleep(time.Millisecond)
	}
}

// DeadLoginAdder is a Backend whose logins live by something else than
// the process that made them (PostgreSQL: a lock its Store's connection
// holds). AddDeadLogin records l in s's token as the entry of a login
// whose holder is gone. Without it, the entry is l with a start time that
// is not its process's: the pid, started at another time.
type DeadLoginAdder interface {
	AddDeadLogin(t *testing.T, s store.Store, l store.Login)
}

func addDeadLogin(t *testing.T, b Backend, s store.Store, l store.Login) {
	t.Helper()
	if d, ok := b.(DeadLoginAdder); ok {
		d.AddDeadLogin(t, s, l)
		return
	}
	l.Started++
	require.NoError(t, s.AddLogin(l))
}

// A test of the suite.
type test struct {
	name string
	run  func(t *testing.T, b Backend)
}

// Run runs every test of the suite against b, each as a subtest on
// stores of its own.
func Run(t *testing.T, b Backend) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, b) })
	}
}

var tests = []test{
	{"Token", testToken},
	{"Users", testUsers},
	{"CreateUserLimit", testCreateUserLimit},
	{"LoginCounting", testLoginCounting},
	{"LockoutAcrossOpenings", testLockoutAcrossOpenings},
	{"ConcurrentWrongPasswords", testConcurrentWrongPasswords},
	{"LoginRegistry", testLoginRegistry},
	{"Objects", testObjects},
	{"ObjectsAcrossOpenings", testObjectsAcrossOpenings},
	{"CreateObjectsAllOrNone", testCreateObjectsAllOrNone},
	{"ConcurrentCreates", testConcurrentCreates},
	{"OwnershipAndDeleteUser", testOwnershipAndDeleteUser},
	{"Shares", testShares},
	{"FindVisibility", testFindVisibility},
	{"Generation", testGeneration},
	{"CommitAlone", testCommitAlone},
	{"Quota", testQuota},
	{"AuditFill", testAuditFill},
	{"AuditChain", testAuditChain},
	{"AuditStreamsAndRange", testAuditStreamsAndRange},
	{"AuditedWrites", testAuditedWrites},
	{"AuditLater", testAuditLater},
	{"QuorumKeysAndValues", testQuorumKeysAndValues},
	{"QuorumTokens", testQuorumTokens},
	{"KeyQuorum", testKeyQuorum},
	{"Replica", testReplica},
	{"UpgradeKeys", testUpgradeKeys},
	{"MoveRoundTrip", testMoveRoundTrip},
	{"MoveRefusesNonEmpty", testMoveRefusesNonEmpty},
	{"MoveBadSnapshot", testMoveBadSnapshot},
	{"MoveEmptySnapshot", testMoveEmptySnapshot},
}

// kdf keeps records small; the store never runs the KDF itself.
var kdf = store.KDFParams{Time: 1, Memory: 64, Threads: 1}

func ulong(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func user(name string, role store.Role) store.UserRecord {
	return store.UserRecord{Name: name, Role: role, KDF: kdf, Salt: []byte("salt-" + name), WrappedKey: []byte("wk-" + name), KeyVersion: store.KeyV2}
}

func obj(uid, owner string, private bool, label string) store.ObjectRecord {
	return store.ObjectRecord{
		UniqueID: uid, Owner: owner, Private: private,
		Attrs: map[ck.AttributeType][]byte{
			ck.CKA_CLASS: ulong(uint64(ck.CKO_SECRET_KEY)),
			ck.CKA_LABEL: []byte(label),
			ck.CKA_TOKEN: {1},
		},
		Sealed: map[ck.AttributeType][]byte{ck.CKA_VALUE: []byte("sealed-" + uid)},
	}
}

// initialized returns a new store with a token, CO "admin" and CUs
// "alice" and "bob".
func initialized(t *testing.T, b Backend) store.Store {
	t.Helper()
	s := b.Open(t)
	require.NoError(t, s.InitToken(store.TokenRecord{Label: "test", SerialNumber: "0123456789abcdef", Created: 1700000000}, user("admin", store.RoleCO)))
	require.NoError(t, s.CreateUser(user("alice", store.RoleCU)))
	require.NoError(t, s.CreateUser(user("bob", store.RoleCU)))
	return s
}

func generation(t *testing.T, s store.Store) uint64 {
	t.Helper()
	g, err := s.Generation()
	require.NoError(t, err)
	return g
}
