package token

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
	"gohsm/token/audit"
	"gohsm/token/cluster"
	"gohsm/token/quorum"
	"gohsm/token/store"
)

// Object is a loaded object. Its fields never change after loading: an
// update produces a new Object, so a pointer can be used without the slot
// lock.
type Object struct {
	h       ck.ULong
	token   bool
	private bool
	// alwaysAuth: a private key with CKA_ALWAYS_AUTHENTICATE CK_TRUE, read
	// once here so that starting an operation checks one bool.
	alwaysAuth bool
	// epoch: the epoch of the emulated HSM a session object was made on
	// (hsm, below) when it was made (cluster.go): it is lost when the HSM
	// goes down. With the three bools, in one word: the struct is 208
	// bytes, a size class (docs/bench.md, "ML-KEM-768: the attribute
	// table").
	epoch   uint32
	owner   string
	shared  []string
	class   ck.ObjectClass
	keyType ck.KeyType
	// attrs is every attribute, including secret ones once opened.
	attrs attrs.Attrs
	// sealed lists secret attributes that exist but could not be opened
	// (nobody is logged in, or the login holds no copy of the object's data
	// key: an officer, a crypto user the object is not shared with); raw
	// keeps their sealed values, so an update can keep them as they are.
	sealed []ck.AttributeType
	raw    map[ck.AttributeType][]byte
	// key is the token object's data key when the login opened it.
	key     *objKey
	version int64
	session ck.ULong // creating session, for session objects
	// useQuorum and manageQuorum are a token key's quorum values (0: none;
	// quorum.go), read when the object is loaded.
	useQuorum, manageQuorum int
	// hsm: the emulated HSM a session object was made on (and epoch,
	// above, that HSM's epoch then).
	hsm int
}

// needsContextLogin reads CKA_ALWAYS_AUTHENTICATE for Object.alwaysAuth.
func needsContextLogin(class ck.ObjectClass, a attrs.Reader) bool {
	v, _ := a.Bool(ck.CKA_ALWAYS_AUTHENTICATE)
	return v && class == ck.CKO_PRIVATE_KEY
}

// Handle is the object's handle.
func (o *Object) Handle() ck.ULong { return o.h }

// Attrs returns the object's attributes, a new map whose values are the
// object's (do not modify them).
func (o *Object) Attrs() attrs.Template { return o.attrs.Template() }

// Owner is the owning crypto user ("" when none).
func (o *Object) Owner() string { return o.owner }

// SharedWith lists the crypto users the object is shared with.
func (o *Object) SharedWith() []string { return o.shared }

func isKeyClass(c ck.ObjectClass) bool {
	return c == ck.CKO_SECRET_KEY || c == ck.CKO_PRIVATE_KEY || c == ck.CKO_PUBLIC_KEY
}

// refreshLocked drops the object cache when any process changed the store.
func (s *Slot) refreshLocked() error {
	g, err := s.st.Generation()
	if err != nil {
		return storeErr(err)
	}
	if g != s.gen {
		if s.cl != nil && s.cl.StoreDown() != nil {
			// While a plan has dropped the store nothing is written to it
			// but the cluster's own audit records (token/cluster.go): the
			// cache stays, and is checked again once the store is back.
			return nil
		}
		s.gen = g
		clear(s.objs)
	}
	return nil
}

// objectLocked loads an object by handle whether or not it is visible.
func (s *Slot) objectLocked(h ck.ULong) (*Object, error) {
	if h >= sessionObjectBase {
		if o, ok := s.sessObjs[h]; ok {
			return o, nil
		}
		return nil, fmt.Errorf("token: object %d: %w", h, ck.CKR_OBJECT_HANDLE_INVALID)
	}
	if err := s.refreshLocked(); err != nil {
		return nil, err
	}
	if o, ok := s.objs[h]; ok {
		return o, nil
	}
	rec, err := s.st.Object(int64(h))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("token: object %d: %w", h, ck.CKR_OBJECT_HANDLE_INVALID)
	}
	if err != nil {
		return nil, storeErr(err)
	}
	o, err := s.objectFromRecord(rec)
	if err != nil {
		return nil, err
	}
	s.objs[h] = o
	return o, nil
}

func (s *Slot) objectFromRecord(rec *store.ObjectRecord) (*Object, error) {
	o := &Object{
		h: ck.ULong(rec.ID), token: true, private: rec.Private, owner: rec.Owner,
		version: rec.Version,
	}
	// A loaded object's attributes are a map of its own, the Attrs' base
	// (no prototype: what the store holds is every attribute).
	at := make(attrs.Template, len(rec.Attrs)+len(rec.Sealed))
	for t, v := range rec.Attrs {
		at[t] = v
	}
	if c, ok := at.ULong(ck.CKA_CLASS); ok {
		o.class = ck.ObjectClass(c)
	}
	if k, ok := at.ULong(ck.CKA_KEY_TYPE); ok {
		o.keyType = ck.KeyType(k)
	}
	o.alwaysAuth = needsContextLogin(o.class, at)
	if len(rec.Sealed) > 0 {
		k, err := s.objKeyLocked(rec)
		if err != nil {
			return nil, err
		}
		o.key = k
	}
	for t, v := range rec.Sealed {
		if o.key == nil {
			o.sealed = append(o.sealed, t)
			if o.raw == nil {
				o.raw = map[ck.AttributeType][]byte{}
			}
			o.raw[t] = v
			continue
		}
		p, err := o.key.sealer.Open(rec.UniqueID, t, v)
		if err != nil {
			return nil, fmt.Errorf("token: object %d: opening %v: %v: %w", rec.ID, t, err, ck.CKR_DEVICE_ERROR)
		}
		at[t] = p
	}
	o.attrs = attrs.FromTemplate(at)
	if rec.Private {
		sh, err := s.st.SharedWith(rec.ID)
		if err != nil {
			return nil, storeErr(err)
		}
		o.shared = sh
	}
	if q := rec.Quorum; q != nil && (o.class == ck.CKO_PRIVATE_KEY || o.class == ck.CKO_SECRET_KEY) {
		// Read with the object (store.ObjectRecord.Quorum): a key's quorum
		// values cost no query of their own when it loads.
		o.useQuorum, o.manageQuorum = q[0], q[1]
	}
	return o, nil
}

// visibleLocked: crypto users see their own objects, objects shared with
// them and public (CKA_PRIVATE false) objects, and in a profile that says
// so every public key (so does an officer there: CloudHSM's admin lists
// "all public keys in the cluster"); everyone else only public objects.
func (s *Slot) visibleLocked(o *Object) bool {
	if !o.private {
		return true
	}
	l := s.login
	if l != nil && l.role == store.RoleCO {
		return o.class == ck.CKO_PUBLIC_KEY && s.prof.Identity.PublicKeysSeenByAll
	}
	if l == nil || l.role != store.RoleCU {
		return false
	}
	return o.owner == l.user || slices.Contains(o.shared, l.user) ||
		o.class == ck.CKO_PUBLIC_KEY && s.prof.Identity.PublicKeysSeenByAll
}

// ownsLocked: only an object's owner may modify, destroy, copy or share it
// (CloudHSM: a user a key is shared with may only use it). Objects without
// an owner (made in a public session) belong to whoever may write them:
// as the spec has it, any session that sees them and whose state allows
// the write (R/W public, R/W user of any user; not the crypto officer, who
// writes no objects).
func (s *Slot) ownsLocked(o *Object) bool {
	if o.owner == "" {
		return true
	}
	return s.login != nil && s.login.user == o.owner
}

// mayExportLocked is the one rule for letting a key's value (or a function
// of it) out to the session's user: reading a secret attribute
// (C_GetAttributeValue), wrapping (C_WrapKey), copying (C_CopyObject),
// digesting (C_DigestKey), and deriving from it (C_DeriveKey, the base key
// and any key in the parameter). Only the owner may: a user a key is shared
// with may use it, not take it away (CloudHSM's rule for shared keys). The
// key's own CKA_SENSITIVE and CKA_EXTRACTABLE apply on top, to the owner too.
func (s *Slot) mayExportLocked(o *Object) bool {
	return s.ownsLocked(o)
}

// visibleObjectLocked loads a visible object; invisible ones do not exist.
func (s *Slot) visibleObjectLocked(h ck.ULong, invalid ck.RV) (*Object, error) {
	o, err := s.objectLocked(h)
	if err != nil {
		if errors.Is(err, ck.CKR_OBJECT_HANDLE_INVALID) {
			return nil, fmt.Errorf("token: handle %d: %w", h, invalid)
		}
		return nil, err
	}
	if !s.visibleLocked(o) {
		return nil, fmt.Errorf("token: handle %d not visible: %w", h, invalid)
	}
	return o, nil
}

// uniqueIDs makes this process's CKA_UNIQUE_IDs. It starts at the first
// object the process makes, not at package initialisation: most one-shot
// processes (pkcs11-tool -L, a signature) make none, and the start reads
// the random source (docs/bench.md, "One-shot processes, third pass").
var uniqueIDs = sync.OnceValue(func() *uniqueIDGen {
	uniqueIDsStarted.Store(true)
	return newUniqueIDGen()
})

// uniqueIDsStarted records that uniqueIDs ran (TestUniqueIDsLazy).
var uniqueIDsStarted atomic.Bool

func newUniqueID() []byte { return uniqueIDs().next() }

// uniqueIDGen makes CKA_UNIQUE_IDs: 16 bytes in hex, a sequence number
// (8 bytes, big-endian) from a random start, then 8 random bytes. Two IDs
// are equal only if both halves are, so they stay unique across processes
// and tokens (a copy or replica keeps its ID: docs/backup.md) as random
// ones were. The sequence makes one process's IDs ascend: each new object's
// entries in the two indexes of unique IDs (objects.unique_id and
// attrs_type_value) go next to the previous object's, in a leaf the page
// cache holds, where random IDs read and dirtied a random leaf of each,
// most of the misses of a key generation on a 10^6-object token
// (docs/store.md "Big tokens"). What it tells a reader of the attribute:
// which objects one process made, and in what order.
type uniqueIDGen struct {
	seq atomic.Uint64
}

func newUniqueIDGen() *uniqueIDGen {
	var b [8]byte
	rand.Read(b[:])
	g := &uniqueIDGen{}
	// Below 2^63, so that no process lives to see the sequence wrap.
	g.seq.Store(binary.BigEndian.Uint64(b[:]) >> 1)
	return g
}

// next returns a new ID as the attribute's value: its 32 hex digits, in
// the one allocation the object keeps (the 16 bytes stay on the stack).
func (g *uniqueIDGen) next() []byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], g.seq.Add(1))
	rand.Read(b[8:])
	// Into a buffer of the right size: hex.AppendEncode's growing of an
	// empty one was a third of the ID's cost.
	out := make([]byte, hex.EncodedLen(len(b)))
	hex.Encode(out, b[:])
	return out
}

// addObjectLocked stores a validated, complete attribute set as a new
// object of the session's user, recording op in the audit log; origin is
// the emulated HSM that made it (-1: the slot has no cluster).
func (s *Slot) addObjectLocked(se *Session, op audit.Opcode, origin int, full attrs.Attrs) (*Object, error) {
	var one [1]*Object // on the stack: a new key's path makes no slice
	objs, err := s.addObjectsOpt(one[:], se, op, origin, false, full)
	if err != nil {
		return nil, err
	}
	return objs[0], nil
}

// addObjectsLocked stores new objects together (a key pair): the token
// objects among them in one store transaction, with op's audit record,
// and the session objects only after it, so that a failure leaves none of
// them behind. Session objects, which the store never sees, have their
// record queued for the next write (auditLaterLocked). In a cluster, a new token key needs the key
// availability quorum before anything is stored, and the cluster learns
// of it once stored; session objects stay on origin.
func (s *Slot) addObjectsLocked(se *Session, op audit.Opcode, origin int, fulls ...attrs.Attrs) ([]*Object, error) {
	return s.addObjectsOpt(nil, se, op, origin, false, fulls...)
}

// addGeneratedLocked is addObjectsLocked for C_GenerateKey and
// C_GenerateKeyPair: when every object is a token object and the slot has
// no cluster, the store write runs with s.mu released (held again when it
// returns), so that other sessions go on meanwhile and their key writes
// reach the store's group commit (docs/store.md "Group commit") instead of
// queueing on s.mu. A logout waits for such writes (s.writes): a key is
// never stored after the logout of the login that made it.
func (s *Slot) addGeneratedLocked(dst []*Object, se *Session, op audit.Opcode, origin int, fulls ...attrs.Attrs) ([]*Object, error) {
	return s.addObjectsOpt(dst, se, op, origin, true, fulls...)
}

// addObjectsOpt makes the objects in dst when it has room for them (a
// caller's array on its stack), else in a new slice.
func (s *Slot) addObjectsOpt(dst []*Object, se *Session, op audit.Opcode, origin int, unlocked bool, fulls ...attrs.Attrs) ([]*Object, error) {
	var objs []*Object
	if cap(dst) >= len(fulls) {
		objs = dst[:len(fulls)]
	} else {
		objs = make([]*Object, len(fulls))
	}
	var recs []store.ObjectRecord
	for i, full := range fulls {
		o, rec, err := s.newObjectLocked(se, full)
		if err != nil {
			return nil, err
		}
		objs[i] = o
		if o.token {
			recs = append(recs, rec)
		}
	}
	// Session objects' handles are taken first, so that the record made
	// in the store's transaction can name them (a number skipped by a
	// write that fails is never seen).
	next := s.nextSess
	for _, o := range objs {
		if !o.token {
			o.h = next
			next++
		}
	}
	if len(recs) > 0 {
		// A copy for the store's write and its audit records, which keep
		// it: objs may be the caller's array.
		tobjs := slices.Clone(objs)
		if s.cl != nil {
			if err := s.canCreateKeyLocked(tobjs); err != nil {
				return nil, err
			}
		}
		// Current before the write, so that the write can keep it current.
		if err := s.refreshLocked(); err != nil {
			return nil, err
		}
		if unlocked && s.cl == nil && len(recs) == len(tobjs) {
			return s.writeUnlocked(se, op, origin, tobjs, recs)
		}
		out, c, err := s.st.Audited(s.objectsEvents(se, op, tobjs, origin)...).CreateObjects(recs, s.quotas...)
		if err != nil {
			return nil, s.createErrLocked(se, op, origin, err)
		}
		i := 0
		for _, o := range tobjs {
			if o.token {
				o.h, o.version = ck.ULong(out[i].ID), out[i].Version
				if o.key != nil {
					o.key.version = o.version
					s.login.dataKeys[out[i].ID] = o.key
				}
				s.objs[o.h] = o
				i++
			}
		}
		s.wroteLocked(c)
		if s.cl != nil {
			s.createdLocked(tobjs, origin)
		}
	} else {
		// Session keys: on the HSM that made them only.
		e := keyEvent(op, 0, 0, audit.RespSuccess)
		hs := make([]uint64, len(objs))
		for j, o := range objs {
			hs[j] = uint64(o.h)
		}
		setKeyHandles(&e, objs, hs)
		s.auditLaterLocked(origin, se, e)
	}
	s.placeSessionObjects(objs, origin)
	s.nextSess = next
	for _, o := range objs {
		if !o.token {
			s.addSessObjLocked(o)
		}
	}
	return objs, nil
}

// writeUnlocked stores token objects (no session object among them, no
// cluster) with s.mu released during the store write (addGeneratedLocked).
// The objects enter the cache only when the cache still reflects the store
// as of just before or just after that commit; their data keys only while
// the login that made them lasts (else they are cleared).
func (s *Slot) writeUnlocked(se *Session, op audit.Opcode, origin int, objs []*Object, recs []store.ObjectRecord) ([]*Object, error) {
	st := s.st.Audited(s.objectsEvents(se, op, objs, origin)...)
	quotas := s.quotas
	login := s.login
	var out []store.ObjectRecord
	var c store.Commit
	var err error
	s.unlockedWrite(func() { out, c, err = st.CreateObjects(recs, quotas...) })
	if err != nil {
		return nil, s.createErrLocked(se, op, origin, err)
	}
	cache := s.gen == c.Before || s.gen == c.After
	for i, o := range objs {
		o.h, o.version = ck.ULong(out[i].ID), out[i].Version
		if o.key != nil {
			o.key.version = o.version
			if s.login == login {
				s.login.dataKeys[out[i].ID] = o.key
			} else {
				clear(o.key.dk)
			}
		}
		if cache {
			s.objs[o.h] = o
		}
	}
	s.wroteLocked(c)
	return objs, nil
}

// createErrLocked is a failed CreateObjects's error for the caller; a
// quota's refusal is audited first.
func (s *Slot) createErrLocked(se *Session, op audit.Opcode, origin int, err error) error {
	if s.quotaErr(err) {
		e := keyEvent(op, 0, 0, audit.RespQuota)
		e.Detail = err.Error()
		s.auditOnAloneLocked(origin, se, e)
	}
	return storeErr(err)
}

// unlockedWrite runs write, a store write, with s.mu (held by the caller)
// released and taken again after it; a logout waits for it (s.writes).
func (s *Slot) unlockedWrite(write func()) {
	s.writes.RLock()
	s.mu.Unlock()
	defer s.mu.Lock()
	defer s.writes.RUnlock()
	write()
}

// quotaErr reports whether err is one of the slot's quotas' refusals.
func (s *Slot) quotaErr(err error) bool {
	for _, q := range s.quotas {
		if q.Err != nil && errors.Is(err, q.Err) {
			return true
		}
	}
	return false
}

// wroteLocked follows a write of this slot's own, whose effect the caller
// has applied to the cache: when the write's commit was the store's only
// change since the cache was last current, the cache stays, current as of
// the commit. Otherwise the next refreshLocked finds the store changed and
// drops it.
func (s *Slot) wroteLocked(c store.Commit) {
	if c.Alone && s.gen == c.Before {
		s.gen = c.After
	}
}

// newObjectLocked makes the object for a validated, complete attribute set
// (no handle yet) and, for a token object, its store record.
func (s *Slot) newObjectLocked(se *Session, full attrs.Attrs) (*Object, store.ObjectRecord, error) {
	class, keyType, ok := full.Identity()
	if !ok || keyType == attrs.NoKeyType {
		class, keyType = ck.ObjectClass(0), ck.KeyType(0)
		if c, ok := full.ULong(ck.CKA_CLASS); ok {
			class = ck.ObjectClass(c)
		}
		if k, ok := full.ULong(ck.CKA_KEY_TYPE); ok {
			keyType = ck.KeyType(k)
		}
	}
	tok, _ := full.Bool(ck.CKA_TOKEN)
	priv, _ := full.Bool(ck.CKA_PRIVATE)
	if tok {
		if err := se.allowLocked(actWriteToken); err != nil {
			return nil, store.ObjectRecord{}, err
		}
	}
	if priv && (s.login == nil || s.login.role != store.RoleCU) {
		return nil, store.ObjectRecord{}, fmt.Errorf("token: private object without a crypto user login: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	owner := ""
	if s.login != nil && s.login.role == store.RoleCU {
		owner = s.login.user
	}
	uidv := newUniqueID()
	full.Put(ck.CKA_UNIQUE_ID, uidv)
	o := &Object{token: tok, private: priv, owner: owner, class: class, keyType: keyType, attrs: full,
		alwaysAuth: class == ck.CKO_PRIVATE_KEY && needsContextLogin(class, &full)}
	if !tok {
		o.session = se.h
		return o, store.ObjectRecord{}, nil
	}
	uid := string(uidv)
	rec := store.ObjectRecord{UniqueID: uid, Owner: owner, Private: priv, Attrs: map[ck.AttributeType][]byte{}, Sealed: map[ck.AttributeType][]byte{}}
	for t, v := range o.attrs.All() {
		if !attrs.IsSecret(class, keyType, t) {
			rec.Attrs[t] = v
			continue
		}
		if owner == "" {
			// Only a crypto user holds keys: a secret with no owner would
			// need a key anyone could open (docs/store.md).
			return nil, store.ObjectRecord{}, fmt.Errorf("token: secret attribute without a crypto user login: %w", ck.CKR_USER_NOT_LOGGED_IN)
		}
		if o.key == nil {
			k, err := newObjKey(store.NewDataKey(), 1)
			if err != nil {
				return nil, store.ObjectRecord{}, err
			}
			o.key = k
			rec.Keys = map[string][]byte{owner: s.login.keys.WrapOwnDataKey(k.dk, uid, owner)}
		}
		rec.Sealed[t] = o.key.sealer.Seal(uid, t, v)
	}
	return o, rec, nil
}

// CreateObject answers C_CreateObject.
func (m *Module) CreateObject(h ck.ULong, tmpl attrs.Template) (_ ck.ULong, err error) {
	if s, t0 := m.begin(h); s != nil {
		c, _ := tmpl.ULong(ck.CKA_CLASS)
		defer s.record(objectClass(ck.ObjectClass(c)), t0, &err)
	}
	se, err := m.session(h)
	if err != nil {
		return 0, err
	}
	s := se.slot
	if err := s.fault(cluster.FuncCreateObject); err != nil {
		return 0, err
	}
	class, keyType, err := attrs.ClassAndKeyType(tmpl)
	if err != nil {
		return 0, err
	}
	act := actCreatePublic
	if isKeyClass(class) {
		act = actCreateKey
	}
	s.mu.RLock()
	err = se.allowLocked(act)
	s.mu.RUnlock()
	if err != nil {
		return 0, err
	}
	// Validation runs without the slot's lock: parsing a large RSA key
	// (its precomputation and checks) took seconds, and every other
	// session of the slot waited for it. Build validates the material and
	// computes what follows from it (check value, modulus bits, the
	// private key's EC point); parsing it rejects keys that are
	// well-formed bytes but not a usable key.
	full, err := attrs.BuildAttrs(s.attrPolicy(), attrs.OpCreate, class, keyType, 0, tmpl)
	if err != nil {
		return 0, err
	}
	if err := s.checkKeyLimits(class, keyType, &full); err != nil {
		return 0, err
	}
	var parsed any
	if isKeyClass(class) {
		if parsed, err = attrs.KeyFromTemplate(class, keyType, &full); err != nil {
			return 0, err
		}
	}
	testOnlyCreateValidated()
	origin, err := s.admitAny(objectClass(class))
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The session's state may have changed meanwhile (a logout).
	if err := se.allowLocked(act); err != nil {
		return 0, err
	}
	o, err := s.addObjectLocked(se, audit.CN_CREATE_OBJECT, origin, full)
	if err != nil {
		return 0, err
	}
	if parsed != nil {
		// Kept, so that the key's first use does not parse it again
		// under the lock (keyLocked).
		s.keys[o.h] = cachedKey{version: o.version, key: parsed}
	}
	return o.h, nil
}

// testOnlyCreateValidated runs in CreateObject after the template was
// validated, before the object is added (tests block there).
var testOnlyCreateValidated = func() {}

// DestroyObject answers C_DestroyObject.
func (m *Module) DestroyObject(h, obj ck.ULong) (err error) {
	if s, t0 := m.begin(h); s != nil {
		defer s.record(cluster.ClassManage, t0, &err)
	}
	se, err := m.session(h)
	if err != nil {
		return err
	}
	s := se.slot
	if s.cl != nil {
		if err := s.cl.Fault(cluster.FuncDestroyObject); err != nil {
			return err
		}
		if err := s.admitObject(obj); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.visibleObjectLocked(obj, ck.CKR_OBJECT_HANDLE_INVALID)
	if err != nil {
		if errors.Is(err, ck.CKR_OBJECT_HANDLE_INVALID) {
			// key_mgmt_util's deleteKey answers 0xa8 for a handle it does
			// not know (UG:key_mgmt_util-deleteKey).
			op := audit.CN_TOMBSTONE_OBJECT
			if obj >= sessionObjectBase {
				op = audit.CN_DESTROY_OBJECT
			}
			s.auditAloneLocked(se, keyEvent(op, uint64(obj), 0, audit.RespInvalidHandle))
		}
		return err
	}
	op := audit.CN_TOMBSTONE_OBJECT
	if !o.token {
		op = audit.CN_DESTROY_OBJECT
	}
	if err := s.checkWritableLocked(se, o); err != nil {
		if errors.Is(err, ck.CKR_ACTION_PROHIBITED) {
			s.auditAloneLocked(se, keyEvent(op, uint64(obj), 0, audit.RespKeyDenied))
		}
		return err
	}
	if d, ok := o.attrs.Bool(ck.CKA_DESTROYABLE); ok && !d {
		s.auditAloneLocked(se, keyEvent(op, uint64(obj), 0, audit.RespKeyDenied))
		return fmt.Errorf("token: object %d is not destroyable: %w", obj, ck.CKR_ACTION_PROHIBITED)
	}
	if !o.token {
		s.removeSessObjLocked(obj)
		s.auditSessionLocked(se, o, keyEvent(op, uint64(obj), 0, audit.RespSuccess))
		return nil
	}
	st := s.st.Audited(s.auditAll(se, keyEvent(op, uint64(obj), 0, audit.RespSuccess))...)
	var c store.Commit
	if s.cl == nil {
		// Without s.mu, as a generated key's write (writeUnlocked): other
		// sessions' key writes go on meanwhile, grouped with this one in
		// the store; a logout waits for it.
		s.unlockedWrite(func() { c, err = st.DeleteObject(int64(obj)) })
	} else {
		c, err = st.DeleteObject(int64(obj))
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("token: object %d: %w", obj, ck.CKR_OBJECT_HANDLE_INVALID)
		}
		return storeErr(err)
	}
	delete(s.objs, obj)
	delete(s.keys, obj)
	s.wroteLocked(c)
	return nil
}

// checkWritableLocked: modifying or destroying needs ownership, a crypto
// user for keys, and a R/W session for token objects.
func (s *Slot) checkWritableLocked(se *Session, o *Object) error {
	if isKeyClass(o.class) {
		if err := se.allowLocked(actCreateKey); err != nil {
			return err
		}
	}
	if !s.ownsLocked(o) {
		return fmt.Errorf("token: object %d belongs to %q: %w", o.h, o.owner, ck.CKR_ACTION_PROHIBITED)
	}
	if o.token {
		return se.allowLocked(actWriteToken)
	}
	return nil
}

// AttrResult is one attribute read by GetAttributeValue: a value, or the
// per-attribute error (CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID).
type AttrResult struct {
	Value []byte
	Err   error
}

// GetAttributeValue answers C_GetAttributeValue for each requested type.
func (m *Module) GetAttributeValue(h, obj ck.ULong, types []ck.AttributeType) ([]AttrResult, error) {
	se, err := m.session(h)
	if err != nil {
		return nil, err
	}
	s := se.slot
	if err := s.fault(cluster.FuncGetAttributeValue); err != nil {
		return nil, err
	}
	s.mu.Lock()
	o, err := s.visibleObjectLocked(obj, ck.CKR_OBJECT_HANDLE_INVALID)
	var export bool
	if err == nil {
		export = s.mayExportLocked(o)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if s.cl != nil && o.token && o.class == ck.CKO_CERTIFICATE {
		if err := s.admitCertRead(true); err != nil {
			return nil, err
		}
	}
	res := make([]AttrResult, len(types))
	pol := s.attrPolicy()
	for i, t := range types {
		res[i] = o.attr(pol, t, export)
	}
	return res, nil
}

// attr reads one attribute; export is mayExportLocked's answer for the
// reader: without it, key material is CKR_ATTRIBUTE_SENSITIVE whatever the
// key's CKA_SENSITIVE says.
func (o *Object) attr(pol *attrs.Policy, t ck.AttributeType, export bool) AttrResult {
	if v, ok := vendorAttr(o, t); ok {
		return AttrResult{Value: v}
	}
	if err := attrs.ReadableWith(pol, &o.attrs, t); err != nil {
		return AttrResult{Err: err}
	}
	if !export && attrs.IsSecret(o.class, o.keyType, t) {
		return AttrResult{Err: fmt.Errorf("token: %v of a key owned by %q: %w", t, o.owner, ck.CKR_ATTRIBUTE_SENSITIVE)}
	}
	v, ok := o.attrs.Get(t)
	if !ok {
		if slices.Contains(o.sealed, t) {
			return AttrResult{Err: fmt.Errorf("token: %v sealed without login: %w", t, ck.CKR_ATTRIBUTE_SENSITIVE)}
		}
		return AttrResult{Err: fmt.Errorf("token: %v: %w", t, ck.CKR_ATTRIBUTE_TYPE_INVALID)}
	}
	return AttrResult{Value: v}
}

// GetObjectSize answers C_GetObjectSize: the bytes the object's attributes
// take (an approximation, as the spec allows).
func (m *Module) GetObjectSize(h, obj ck.ULong) (ck.ULong, error) {
	se, err := m.session(h)
	if err != nil {
		return 0, err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.visibleObjectLocked(obj, ck.CKR_OBJECT_HANDLE_INVALID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range o.attrs.All() {
		n += 16 + len(v)
	}
	return ck.ULong(n), nil
}

// SetAttributeValue answers C_SetAttributeValue.
func (m *Module) SetAttributeValue(h, obj ck.ULong, changes attrs.Template) error {
	_, err := m.setAttributes(h, obj, changes)
	return err
}

// SetKeyAttributes changes attributes of an object under the slot's
// profile's rules, for management tools (CloudHSM's `key set-attribute`,
// which a cloudhsm application uses instead of C_SetAttributeValue): the
// same checks as C_SetAttributeValue, and where the profile lets CKA_TOKEN
// go from CK_FALSE to CK_TRUE (cloudhsm), a session object becomes a
// token object. It returns the object's handle afterwards, which is a new
// one for an object that became a token object (session and token
// objects have handles of their own ranges).
func (m *Module) SetKeyAttributes(h, obj ck.ULong, changes attrs.Template) (ck.ULong, error) {
	return m.setAttributes(h, obj, changes)
}

func (m *Module) setAttributes(h, obj ck.ULong, changes attrs.Template) (_ ck.ULong, err error) {
	if s, t0 := m.begin(h); s != nil {
		defer s.record(cluster.ClassManage, t0, &err)
	}
	se, err := m.session(h)
	if err != nil {
		return 0, err
	}
	s := se.slot
	if s.cl != nil {
		if err := s.cl.Fault(cluster.FuncSetAttributeValue); err != nil {
			return 0, err
		}
		if err := s.admitObject(obj); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.visibleObjectLocked(obj, ck.CKR_OBJECT_HANDLE_INVALID)
	if err != nil {
		return 0, err
	}
	if s.lost(o) != nil {
		return 0, fmt.Errorf("token: object %d: lost with its HSM: %w", obj, ck.CKR_OBJECT_HANDLE_INVALID)
	}
	if err := s.checkWritableLocked(se, o); err != nil {
		return 0, err
	}
	// The rules read, and the change starts from, a map of the object's
	// attributes; the changed object has a map of its own (ApplySet
	// copies every value), so nothing o shares is written.
	cur := o.attrs.Template()
	if err := attrs.CheckSetWith(s.attrPolicy(), cur, changes); err != nil {
		return 0, err
	}
	if err := s.keyGateLocked(o, quorum.KeyManagement, o.manageQuorum); err != nil {
		return 0, err
	}
	full := attrs.ApplySet(cur, changes)
	if tk, _ := full.Bool(ck.CKA_TOKEN); tk && !o.token {
		// Only a profile's RaiseOnly rule lets CheckSetWith pass this.
		return s.promoteLocked(se, o, full)
	}
	n := *o
	n.attrs = attrs.FromTemplate(full)
	if !o.token {
		s.sessObjs[obj] = &n
		s.auditSessionLocked(se, o, modifyEvent(obj, changes))
		return obj, nil
	}
	return obj, s.storeUpdateLocked(se, o, &n, modifyEvent(obj, changes))
}

// promoteLocked makes session object o a token object with attributes
// full: stored as a new object of o's owner (sealed like any new token
// object, with a new unique ID), then the session object is gone.
func (s *Slot) promoteLocked(se *Session, o *Object, full attrs.Template) (ck.ULong, error) {
	if o.owner != "" && (s.login == nil || s.login.user != o.owner) {
		return 0, fmt.Errorf("token: object %d belongs to %q: %w", o.h, o.owner, ck.CKR_ACTION_PROHIBITED)
	}
	uid := full[ck.CKA_UNIQUE_ID]
	delete(full, ck.CKA_UNIQUE_ID)
	n, err := s.addObjectLocked(se, audit.CN_MODIFY_OBJECT, s.originOf(o), attrs.FromTemplate(full))
	if err != nil {
		full[ck.CKA_UNIQUE_ID] = uid
		return 0, err
	}
	s.removeSessObjLocked(o.h)
	return n.h, nil
}

// modifyEvent records an attribute change (CN_MODIFY_OBJECT), naming the
// attributes changed.
func modifyEvent(obj ck.ULong, changes attrs.Template) audit.Event {
	e := keyEvent(audit.CN_MODIFY_OBJECT, uint64(obj), 0, audit.RespSuccess)
	names := make([]string, 0, len(changes))
	for t := range changes {
		names = append(names, t.String())
	}
	sort.Strings(names)
	e.Detail = strings.Join(names, ",")
	return e
}

// storeUpdateLocked writes an updated token object, with its audit record.
func (s *Slot) storeUpdateLocked(se *Session, old, n *Object, ev audit.Event) error {
	uid := string(old.attrs.Bytes(ck.CKA_UNIQUE_ID))
	rec := store.ObjectRecord{ID: int64(old.h), UniqueID: uid, Owner: old.owner, Private: n.private, Version: old.version,
		Attrs: map[ck.AttributeType][]byte{}, Sealed: map[ck.AttributeType][]byte{}}
	// Secrets the login cannot open (an officer setting CKA_TRUSTED) are
	// kept as sealed; an update never changes them.
	for t, v := range old.raw {
		rec.Sealed[t] = v
	}
	for t, v := range n.attrs.All() {
		if !attrs.IsSecret(n.class, n.keyType, t) {
			rec.Attrs[t] = v
			continue
		}
		if old.key == nil {
			// Public sessions write ownerless objects; none has a secret.
			return fmt.Errorf("token: object %d: a secret without its data key: %w", old.h, ck.CKR_USER_NOT_LOGGED_IN)
		}
		rec.Sealed[t] = old.key.sealer.Seal(uid, t, v)
	}
	v, c, err := s.st.Audited(s.auditAll(se, ev)...).UpdateObject(rec)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("token: object %d: %w", old.h, ck.CKR_OBJECT_HANDLE_INVALID)
		}
		return storeErr(err)
	}
	n.version = v
	if old.key != nil && s.login != nil {
		// Same data key, new version.
		k := *old.key
		k.version = v
		n.key = &k
		s.login.dataKeys[int64(old.h)] = &k
	}
	s.objs[old.h] = n
	s.wroteLocked(c)
	return nil
}

// CopyObject answers C_CopyObject: the copy belongs to the caller; a key
// shared with the caller cannot be copied (that would export it).
func (m *Module) CopyObject(h, obj ck.ULong, tmpl attrs.Template) (_ ck.ULong, err error) {
	if s, t0 := m.begin(h); s != nil {
		defer s.record(cluster.ClassManage, t0, &err)
	}
	se, err := m.session(h)
	if err != nil {
		return 0, err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.visibleObjectLocked(obj, ck.CKR_OBJECT_HANDLE_INVALID)
	if err != nil {
		return 0, err
	}
	if len(o.sealed) > 0 {
		return 0, fmt.Errorf("token: copy: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	if s.lost(o) != nil {
		return 0, fmt.Errorf("token: copy of object %d: lost with its HSM: %w", obj, ck.CKR_OBJECT_HANDLE_INVALID)
	}
	if isKeyClass(o.class) {
		if err := se.allowLocked(actCreateKey); err != nil {
			return 0, err
		}
		if !s.mayExportLocked(o) {
			return 0, fmt.Errorf("token: copy of a key owned by %q: %w", o.owner, ck.CKR_ACTION_PROHIBITED)
		}
		if o.useQuorum > 1 || o.manageQuorum > 1 {
			// A copy would carry none of its values (quorum.go).
			return 0, fmt.Errorf("token: key %d has quorum values: it cannot be copied: %w", obj, ck.CKR_ACTION_PROHIBITED)
		}
	}
	full, err := attrs.CheckCopy(o.attrs.Template(), tmpl)
	if err != nil {
		return 0, err
	}
	n, err := s.addObjectLocked(se, audit.CN_CREATE_OBJECT, s.originOf(o), attrs.FromTemplate(full))
	if err != nil {
		return 0, err
	}
	return n.h, nil
}

// FindObjectsInit answers C_FindObjectsInit: the matching visible objects
// are collected now; FindObjects pages through them.
func (m *Module) FindObjectsInit(h ck.ULong, tmpl attrs.Template) (err error) {
	if s, t0 := m.begin(h); s != nil {
		defer s.record(cluster.ClassManage, t0, &err)
	}
	se, err := m.session(h)
	if err != nil {
		return err
	}
	if s := se.slot; s.cl != nil {
		if err := s.cl.Fault(cluster.FuncFindObjectsInit); err != nil {
			return err
		}
		if mayFindCertificates(tmpl) {
			if err := s.admitCertRead(false); err != nil {
				return err
			}
		}
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.ops[opFind] != nil {
		return fmt.Errorf("token: find: %w", ck.CKR_OPERATION_ACTIVE)
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []ck.ULong
	if tk, ok := tmpl.Bool(ck.CKA_TOKEN); !ok || tk {
		viewer := ""
		if s.login != nil && s.login.role == store.RoleCU {
			viewer = s.login.user
		}
		q := store.Query{Match: tmpl, Viewer: viewer}
		if s.login != nil && s.prof.Identity.PublicKeysSeenByAll {
			q.ViewerClass = attrs.ULong(ck.ULong(ck.CKO_PUBLIC_KEY))
		}
		ids, err := s.st.Find(q)
		if err != nil {
			return storeErr(err)
		}
		for _, id := range ids {
			found = append(found, ck.ULong(id))
		}
	}
	if tk, ok := tmpl.Bool(ck.CKA_TOKEN); !ok || !tk {
		var hs []ck.ULong
		for oh, o := range s.sessObjs {
			if s.visibleLocked(o) && o.matches(tmpl) {
				hs = append(hs, oh)
			}
		}
		slices.Sort(hs)
		found = append(found, hs...)
	}
	se.ops[opFind] = &operation{found: found}
	return nil
}

// matches compares a find template with a session object. A secret
// attribute (attrs.IsSecret: key material) never matches, as for token
// objects, whose sealed values the store never searches: otherwise a find
// would confirm a guessed value of a sensitive key.
func (o *Object) matches(tmpl attrs.Template) bool {
	for t, v := range tmpl {
		have, ok := o.attrs.Get(t)
		if !ok {
			if hv, vok := vendorAttr(o, t); vok {
				have, ok = hv, true
			}
		}
		// The secret check only for a value that would match: most
		// objects fail on a plain attribute first.
		if !ok || !bytes.Equal(have, v) || attrs.IsSecret(o.class, o.keyType, t) {
			return false
		}
	}
	return true
}

// FindObjects answers C_FindObjects.
func (m *Module) FindObjects(h ck.ULong, max int) ([]ck.ULong, error) {
	se, err := m.session(h)
	if err != nil {
		return nil, err
	}
	if err := se.slot.fault(cluster.FuncFindObjects); err != nil {
		return nil, err
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	op := se.ops[opFind]
	if op == nil {
		return nil, fmt.Errorf("token: find: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	n := min(max, len(op.found))
	if n < 0 {
		return nil, fmt.Errorf("token: find: at most %d objects: %w", max, ck.CKR_ARGUMENTS_BAD)
	}
	out := op.found[:n:n]
	op.found = op.found[n:]
	return out, nil
}

// FindObjectsFinal answers C_FindObjectsFinal.
func (m *Module) FindObjectsFinal(h ck.ULong) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.ops[opFind] == nil {
		return fmt.Errorf("token: find: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	se.endOp(opFind)
	return nil
}

// FindAll is C_FindObjectsInit, C_FindObjects until none are left and
// C_FindObjectsFinal: every object session h sees that matches tmpl, in
// handle order. The management tools (gohsm, cloudhsm-cli, the console)
// list with it.
func (m *Module) FindAll(h ck.ULong, tmpl attrs.Template) ([]ck.ULong, error) {
	if err := m.FindObjectsInit(h, tmpl); err != nil {
		return nil, err
	}
	var handles []ck.ULong
	for {
		hs, err := m.FindObjects(h, 256)
		if err != nil {
			m.FindObjectsFinal(h)
			return nil, err
		}
		if len(hs) == 0 {
			break
		}
		handles = append(handles, hs...)
	}
	if err := m.FindObjectsFinal(h); err != nil {
		return nil, err
	}
	slices.Sort(handles)
	return handles, nil
}
