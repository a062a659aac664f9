package token

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
	"gohsm/token/store"
)

// p256Params is CKA_EC_PARAMS for P-256 (the named-curve OID).
var p256Params = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// BenchmarkTokenKeyPairEC is C_GenerateKeyPair of a P-256 pair as token
// objects followed by C_DestroyObject of both: the cost of token writes
// below the C boundary (p11bench's keygen-ec-p256-token times only the
// generation; its destroys run between batches).
func BenchmarkTokenKeyPairEC(b *testing.B) {
	m, _ := newToken(b)
	h := openRW(b, m)
	require.NoError(b, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	pub := attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_EC_PARAMS: p256Params,
		ck.CKA_VERIFY: attrs.Bool(true), ck.CKA_LABEL: []byte("gen")}
	priv := attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_PRIVATE: attrs.Bool(true),
		ck.CKA_SENSITIVE: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true), ck.CKA_LABEL: []byte("gen")}
	b.ReportAllocs()
	for b.Loop() {
		ph, kh, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, pub, priv)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.DestroyObject(h, ph); err != nil {
			b.Fatal(err)
		}
		if err := m.DestroyObject(h, kh); err != nil {
			b.Fatal(err)
		}
	}
}

// countingStore counts the object reads a slot makes; beforeCreate, when
// set, runs just before each CreateObjects.
type countingStore struct {
	store.Store
	reads        atomic.Int64
	beforeCreate func()
	beforeDelete func()
}

// countOn puts a countingStore under slot 3 of m (the test token's).
func countOn(t *testing.T, m *Module) (*Slot, *countingStore) {
	t.Helper()
	s, err := m.Slot(3)
	require.NoError(t, err)
	cs := &countingStore{Store: s.st}
	s.mu.Lock()
	s.st = cs
	s.mu.Unlock()
	return s, cs
}

func (c *countingStore) CreateObjects(objs []store.ObjectRecord, quotas ...store.Quota) ([]store.ObjectRecord, store.Commit, error) {
	if c.beforeCreate != nil {
		c.beforeCreate()
	}
	return c.Store.CreateObjects(objs, quotas...)
}

func (c *countingStore) Object(id int64) (*store.ObjectRecord, error) {
	c.reads.Add(1)
	return c.Store.Object(id)
}

// Audited keeps counting through the views the slot writes with (its
// writes carry their audit records).
func (c *countingStore) Audited(ev ...store.AuditEvent) store.Store {
	return countingView{Store: c.Store.Audited(ev...), c: c}
}

type countingView struct {
	store.Store
	c *countingStore
}

func (v countingView) CreateObjects(objs []store.ObjectRecord, quotas ...store.Quota) ([]store.ObjectRecord, store.Commit, error) {
	if v.c.beforeCreate != nil {
		v.c.beforeCreate()
	}
	return v.Store.CreateObjects(objs, quotas...)
}

func (v countingView) DeleteObject(id int64) (store.Commit, error) {
	if v.c.beforeDelete != nil {
		v.c.beforeDelete()
	}
	return v.Store.DeleteObject(id)
}

func (v countingView) Object(id int64) (*store.ObjectRecord, error) {
	v.c.reads.Add(1)
	return v.Store.Object(id)
}

// TestOwnWritesKeepTheCache: the slot's object cache survives the slot's
// own writes (it applies them itself), so generating, changing and
// destroying objects reads none of them back from the store; a write by
// another module on the token (another process) still drops it, and what
// that module changed is what this one then sees.
func TestOwnWritesKeepTheCache(t *testing.T) {
	m, dir := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	_, cs := countOn(t, m)

	label := func(m *Module, h, obj ck.ULong) (string, error) {
		res, err := m.GetAttributeValue(h, obj, []ck.AttributeType{ck.CKA_LABEL})
		if err != nil {
			return "", err
		}
		return string(res[0].Value), nil
	}
	pub := attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_EC_PARAMS: p256Params, ck.CKA_LABEL: []byte("pub")}
	priv := attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_PRIVATE: attrs.Bool(false), ck.CKA_SIGN: attrs.Bool(true), ck.CKA_LABEL: []byte("priv")}
	for range 3 {
		ph, kh, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, pub, priv)
		require.NoError(t, err)
		require.NoError(t, m.SetAttributeValue(h, ph, attrs.Template{ck.CKA_LABEL: []byte("renamed")}))
		l, err := label(m, h, ph)
		require.NoError(t, err)
		assert.Equal(t, "renamed", l)
		require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA}, kh))
		_, err = m.Sign(h, make([]byte, 32), Out{Buf: make([]byte, 64)})
		require.NoError(t, err)
		require.NoError(t, m.DestroyObject(h, ph))
		require.NoError(t, m.DestroyObject(h, kh))
	}
	assert.Zero(t, cs.reads.Load(), "the slot read back objects it wrote itself")

	// Another module changes and then destroys an object this one cached.
	_, kh, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, pub, priv)
	require.NoError(t, err)
	l, err := label(m, h, kh)
	require.NoError(t, err)
	require.Equal(t, "priv", l)
	m2, err := Open(testConfig(t, dir))
	require.NoError(t, err)
	defer m2.Close()
	h2 := openRW(t, m2)
	require.NoError(t, m2.Login(h2, ck.CKU_USER, []byte(userPIN)))
	require.NoError(t, m2.SetAttributeValue(h2, kh, attrs.Template{ck.CKA_LABEL: []byte("by m2")}))
	l, err = label(m, h, kh)
	require.NoError(t, err)
	assert.Equal(t, "by m2", l, "another module's change is seen")
	assert.NotZero(t, cs.reads.Load())
	// An own write right after another module's: still current afterwards.
	require.NoError(t, m2.SetAttributeValue(h2, kh, attrs.Template{ck.CKA_LABEL: []byte("by m2 again")}))
	_, _, err = m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, pub, priv)
	require.NoError(t, err)
	l, err = label(m, h, kh)
	require.NoError(t, err)
	assert.Equal(t, "by m2 again", l)
	// Another module's write between this slot's last look at the store
	// and its own write: the cache must not pass for current afterwards.
	cs.beforeCreate = func() {
		require.NoError(t, m2.SetAttributeValue(h2, kh, attrs.Template{ck.CKA_LABEL: []byte("in between")}))
	}
	_, _, err = m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, pub, priv)
	cs.beforeCreate = nil
	require.NoError(t, err)
	l, err = label(m, h, kh)
	require.NoError(t, err)
	assert.Equal(t, "in between", l)
	require.NoError(t, m2.DestroyObject(h2, kh))
	assert.ErrorIs(t, m.DestroyObject(h, kh), ck.CKR_OBJECT_HANDLE_INVALID)
}

// TestKeyPairTokenAndSessionHalves: a pair whose halves differ in
// CKA_TOKEN gets both; the token half is in the store, the session half
// is not, and a pair the store refuses leaves no session half behind.
func TestKeyPairTokenAndSessionHalves(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	pub := attrs.Template{ck.CKA_TOKEN: attrs.Bool(false), ck.CKA_EC_PARAMS: p256Params, ck.CKA_VERIFY: attrs.Bool(true)}
	priv := attrs.Template{ck.CKA_TOKEN: attrs.Bool(true), ck.CKA_SIGN: attrs.Bool(true)}
	ph, kh, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, pub, priv)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, uint64(ph), uint64(sessionObjectBase), "session half")
	assert.Less(t, uint64(kh), uint64(sessionObjectBase), "token half")
	s, err := m.Slot(3)
	require.NoError(t, err)
	_, err = s.st.Object(int64(kh))
	require.NoError(t, err, "the token half is stored")
	require.NoError(t, m.SignInit(h, Mechanism{Type: ck.CKM_ECDSA}, kh))
	sig := make([]byte, 64)
	_, err = m.Sign(h, make([]byte, 32), Out{Buf: sig})
	require.NoError(t, err)
	require.NoError(t, m.VerifyInit(h, Mechanism{Type: ck.CKM_ECDSA}, ph))
	require.NoError(t, m.Verify(h, make([]byte, 32), sig))

	// The store refuses the token half: no session half appears.
	s.mu.Lock()
	before := len(s.sessObjs)
	s.st = failingCreates{s.st}
	s.mu.Unlock()
	_, _, err = m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, pub, priv)
	require.Error(t, err)
	s.mu.Lock()
	assert.Equal(t, before, len(s.sessObjs), "no half pair left behind")
	s.mu.Unlock()
}

type failingCreates struct{ store.Store }

func (f failingCreates) Audited(ev ...store.AuditEvent) store.Store {
	return failingCreates{f.Store.Audited(ev...)}
}

func (failingCreates) CreateObjects([]store.ObjectRecord, ...store.Quota) ([]store.ObjectRecord, store.Commit, error) {
	return nil, store.Commit{}, errors.New("store: create object: disk full")
}
