package token

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
	"gohsm/token/audit"
	"gohsm/token/cluster"
	"gohsm/token/store"
)

// The slot's emulated cluster (token/cluster, docs/cluster.md), wired into
// the token: the cluster decides (routing, budgets, faults, key
// availability), the token asks at the few points where a call reaches an
// HSM and records what the cluster reports in the audit streams.
//
// A slot without a cluster (s.cl nil) pays one nil comparison per call:
// op.cl on the operation paths, s.cl elsewhere.

// Cluster is the slot's emulated cluster, nil when its configuration has
// none (for the CLI).
func (s *Slot) Cluster() *cluster.Cluster { return s.cl }

// clusterStateFile is the shared state's file in the slot's directory
// (decision 2 of the cluster design).
const clusterStateFile = "cluster.state"

// openCluster opens the slot's cluster when its configuration has one:
// the shared state next to the token, with the token files' permissions;
// its events go to the audit streams, its log lines to the module's log.
// The slot's store is then seen through the cluster (clusterStore), so
// that a plan's store fault reaches every store access.
func (m *Module) openCluster(s *Slot) error {
	cfg := s.cfg.Cluster
	if !cfg.On {
		return nil
	}
	s.setAuditStore(s.st)
	cfg.Notify = s.clusterEvent
	cfg.Log = func(msg string, args ...any) {
		m.log.Warn(msg, append([]any{"slot", s.cfg.ID}, args...)...)
	}
	perm := uint32(0o600)
	if m.storeOpts.Group != nil {
		perm = 0o660
	}
	cl, err := cluster.Open(s.cfg.Dir, cfg, perm)
	if err != nil {
		return err
	}
	if g := m.storeOpts.Group; g != nil {
		// As the store's own files: the group's workers map it too
		// (cluster.Open gave it the mode).
		if err := os.Chown(filepath.Join(s.cfg.Dir, clusterStateFile), -1, *g); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("gohsm: cluster state: cannot give it to token_group", "slot", s.cfg.ID, "err", err)
		}
	}
	s.cl = cl
	s.st = clusterStore{Store: s.st, cl: cl}
	return nil
}

// setStore puts a newly opened store in place (s.mu held, or the slot not
// yet shared).
func (s *Slot) setStore(st store.Store) {
	s.setAuditStore(st)
	if s.cl != nil {
		st = clusterStore{Store: st, cl: s.cl}
	}
	s.st = st
}

// setAuditStore keeps the store the cluster's events are written to: the
// store itself, not the cluster's view of it (a store fault is recorded
// while the store is down), read without the slot's lock.
func (s *Slot) setAuditStore(st store.Store) {
	if c, ok := st.(clusterStore); ok {
		st = c.Store
	}
	s.auditSt.Store(&st)
}

// closeCluster ends this process's use of the cluster (C_Finalize):
// what it verified is forgotten (a new SDK instance checks keys again).
func (s *Slot) closeCluster() error {
	if s.cl == nil {
		return nil
	}
	s.cl.Forget()
	return s.cl.Close()
}

// clusterEvent records an event of the cluster (Config.Notify) in the
// audit streams it belongs to (decision 6): an HSM's state in that HSM's
// stream, an injected fault in the stream of the HSM the call went to, a
// plan or a store fault in every stream. It may be called with the slot's
// lock held by the same goroutine (a store access that finds the store
// dropped), so it takes no lock of the slot.
func (s *Slot) clusterEvent(ev cluster.Event) {
	p := s.auditSt.Load()
	if p == nil {
		return
	}
	st := *p
	e := audit.Event{TimeUS: time.Now().UnixMicro(), LogType: audit.MINIMAL_LOG_ENTRY, Detail: clusterDetail(ev)}
	switch ev.Kind {
	case cluster.StateChanged:
		e.Opcode = audit.GOHSM_HSM_STATE
	case cluster.FaultInjected:
		e.Opcode = audit.GOHSM_FAULT_INJECTED
	case cluster.PlanLoaded, cluster.PlanCleared:
		e.Opcode = audit.GOHSM_FAULT_PLAN
	case cluster.StoreDropped, cluster.StoreRestored:
		e.Opcode = audit.GOHSM_STORE_FAULT
	default:
		return
	}
	if n, err := st.AuditBoot(); err == nil {
		e.Reboot = n
	}
	e.Respond(audit.RespSuccess)
	rec := encodeEvent(s, e)
	var evs []store.AuditEvent
	switch {
	case ev.HSM >= 0:
		evs = []store.AuditEvent{{Stream: cluster.StreamName(ev.HSM), Record: rec}}
	case ev.Kind == cluster.FaultInjected:
		// A call that had no HSM yet (C_SignInit, a login).
		evs = []store.AuditEvent{{Stream: cluster.StreamName(0), Record: rec}}
	default:
		for i := range s.cfg.Cluster.HSMs {
			evs = append(evs, store.AuditEvent{Stream: cluster.StreamName(i), Record: rec})
		}
	}
	if err := st.Audit(evs...); err != nil {
		s.m.log.Error("gohsm: audit: cluster event not recorded", "slot", s.cfg.ID, "opcode", e.Opcode.String(), "detail", e.Detail, "err", err)
	}
}

// clusterDetail is an event's Detail line: the cluster's words when it
// gave some, else words made from the event.
func clusterDetail(ev cluster.Event) string {
	if ev.Detail != "" {
		return ev.Detail
	}
	cause := "by the CLI"
	if ev.Step >= 0 {
		cause = fmt.Sprintf("plan step %d", ev.Step)
	}
	switch ev.Kind {
	case cluster.StateChanged:
		return fmt.Sprintf("HSM %d %s (%s)", ev.HSM, ev.State, cause)
	case cluster.FaultInjected:
		return fmt.Sprintf("%s failed with %v (%s)", cluster.FuncNames[ev.Func], ev.RV, cause)
	case cluster.PlanLoaded:
		return "fault plan loaded"
	case cluster.PlanCleared:
		return "fault plan cleared"
	case cluster.StoreDropped:
		return fmt.Sprintf("store down (%s)", cause)
	case cluster.StoreRestored:
		return fmt.Sprintf("store back (%s)", cause)
	}
	return ""
}

// keyFamily groups key types by how the cluster counts their use.
type keyFamily uint8

const (
	famSecret keyFamily = iota // HMAC and generic secrets
	famRSA
	famEC
	famCipher // block and stream ciphers: AES, DES, ...
)

func familyOf(kt ck.KeyType) keyFamily {
	switch kt {
	case ck.CKK_RSA:
		return famRSA
	case ck.CKK_EC, ck.CKK_EC_EDWARDS, ck.CKK_EC_MONTGOMERY:
		return famEC
	case ck.CKK_AES, ck.CKK_DES, ck.CKK_DES2, ck.CKK_DES3, ck.CKK_CHACHA20:
		return famCipher
	}
	return famSecret
}

// opClasses is the class of an operation's calls, by key family and
// operation kind: RSA's private-key operations (sign, decrypt) against its
// public ones, ECDSA sign and verify, ciphers, MACs (CMAC included).
var opClasses = [famCipher + 1][numOpKinds]cluster.Class{
	famRSA: {opEncrypt: cluster.ClassRSAVerify, opDecrypt: cluster.ClassRSASign, opSign: cluster.ClassRSASign,
		opVerify: cluster.ClassRSAVerify, opSignRecover: cluster.ClassRSASign, opVerifyRecover: cluster.ClassRSAVerify},
	famEC: {opEncrypt: cluster.ClassECVerify, opDecrypt: cluster.ClassECSign, opSign: cluster.ClassECSign,
		opVerify: cluster.ClassECVerify},
	famCipher: {opEncrypt: cluster.ClassSymmetric, opDecrypt: cluster.ClassSymmetric, opSign: cluster.ClassHMAC,
		opVerify: cluster.ClassHMAC, opMessageEncrypt: cluster.ClassSymmetric, opMessageDecrypt: cluster.ClassSymmetric},
	famSecret: {opEncrypt: cluster.ClassSymmetric, opDecrypt: cluster.ClassSymmetric, opSign: cluster.ClassHMAC,
		opVerify: cluster.ClassHMAC, opMessageEncrypt: cluster.ClassSymmetric, opMessageDecrypt: cluster.ClassSymmetric},
}

// opClass is the class of an operation's single-part calls and Finals,
// and of its Updates: an RSA or EC signature's Updates are hashed by the
// client (SDK 5 hashes locally) and reach no HSM; a cipher's or MAC's do.
func opClass(kind opKind, mm *mechanisms.Mechanism) (whole, update cluster.Class) {
	if kind == opDigest || len(mm.KeyTypes) == 0 {
		return cluster.ClassNone, cluster.ClassNone
	}
	f := familyOf(mm.KeyTypes[0])
	whole = opClasses[f][kind]
	update = whole
	if (f == famRSA || f == famEC) && (kind == opSign || kind == opVerify) {
		update = cluster.ClassNone
	}
	return whole, update
}

// useClass is the class of a one-call use of a key of type kt as an
// operation of a kind would use it (wrap as encrypt, unwrap as decrypt,
// derive as sign).
func useClass(kind opKind, kt ck.KeyType) cluster.Class {
	return opClasses[familyOf(kt)][kind]
}

// Functions a fault plan can fail, per operation kind.
var (
	initFuncs   = [numOpKinds]cluster.Func{opEncrypt: cluster.FuncEncryptInit, opDecrypt: cluster.FuncDecryptInit, opDigest: cluster.FuncDigestInit, opSign: cluster.FuncSignInit, opVerify: cluster.FuncVerifyInit}
	onceFuncs   = [numOpKinds]cluster.Func{opEncrypt: cluster.FuncEncrypt, opDecrypt: cluster.FuncDecrypt, opDigest: cluster.FuncDigest, opSign: cluster.FuncSign, opVerify: cluster.FuncVerify}
	updateFuncs = [numOpKinds]cluster.Func{opEncrypt: cluster.FuncEncryptUpdate, opDecrypt: cluster.FuncDecryptUpdate, opSign: cluster.FuncSignUpdate, opVerify: cluster.FuncVerifyUpdate}
	finalFuncs  = [numOpKinds]cluster.Func{opEncrypt: cluster.FuncEncryptFinal, opDecrypt: cluster.FuncDecryptFinal, opSign: cluster.FuncSignFinal, opVerify: cluster.FuncVerifyFinal}
)

// clusterCall is what the cluster says about one call of an operation (op.cl
// set): a fault the plan injects into fn (counted on, and recorded in the
// stream of, the operation's HSM), then the call admitted on the
// operation's route when it reaches an HSM (class none: it does not).
func (op *operation) clusterCall(fn cluster.Func, cls cluster.Class) error {
	if cls == cluster.ClassNone {
		if fn == cluster.FuncNone {
			return nil
		}
		return op.cl.Fault(fn) // a digest: no HSM
	}
	if fn != cluster.FuncNone {
		if err := op.cl.FaultAt(fn, &op.route, cls); err != nil {
			return err
		}
	}
	return op.cl.Admit(&op.route, cls)
}

// clustered wraps a computation of deliver with clusterCall, so that a
// length query and the retry of a short buffer reach no HSM.
func (op *operation) clustered(fn cluster.Func, cls cluster.Class, compute func([]byte) ([]byte, error)) func([]byte) ([]byte, error) {
	return func(dst []byte) ([]byte, error) {
		if err := op.clusterCall(fn, cls); err != nil {
			return nil, err
		}
		return compute(dst)
	}
}

// clusterInit routes an operation being started with key keyH (s.cl
// set): a token key runs round robin on the HSMs it has reached, once it
// meets the key availability quorum; a session key on its one HSM.
func (s *Slot) clusterInit(op *operation, kind opKind, keyH ck.ULong) error {
	op.cl = s.cl // op.cls and op.updCls: set by initOp (metrics count by them too)
	if kind == opDigest {
		return nil
	}
	r, err := s.routeKey(keyH)
	if err != nil {
		op.cl = nil
		return err
	}
	op.route = r
	return nil
}

// routeKey is the route of a call using key h (s.cl set; s.mu not held).
func (s *Slot) routeKey(h ck.ULong) (cluster.Route, error) {
	if h < sessionObjectBase {
		if err := s.cl.KeyAvailable(int64(h)); err != nil {
			return cluster.Route{}, err
		}
		return s.cl.Route(int64(h))
	}
	s.mu.RLock()
	o := s.sessObjs[h]
	s.mu.RUnlock()
	if o == nil {
		return cluster.Route{}, fmt.Errorf("token: key %d: %w", h, ck.CKR_KEY_HANDLE_INVALID)
	}
	if s.cl.Epoch(o.hsm) != o.epoch {
		// Its HSM went down since the key was made (and may be back,
		// rebooted): the key is gone (C_*Init answers as for a
		// destroyed key; a call admitted later, as Admit does).
		return cluster.Route{}, cluster.ErrKeyLost
	}
	return cluster.Pin(o.hsm, o.epoch), nil
}

// fault is the fault a plan injects into fn on this slot, or nil.
func (s *Slot) fault(fn cluster.Func) error {
	if s.cl == nil {
		return nil
	}
	return s.cl.Fault(fn)
}

// admitAny admits one call of class cls that uses no key (management,
// random, key generation) on the next reachable HSM, and returns that HSM
// (-1 without a cluster). s.mu must not be held: admission may wait.
func (s *Slot) admitAny(cls cluster.Class) (int, error) {
	if s.cl == nil {
		return -1, nil
	}
	r, err := s.cl.Route(0)
	if err != nil {
		return -1, err
	}
	if err := s.cl.Admit(&r, cls); err != nil {
		return -1, err
	}
	return r.HSM, nil
}

// admitKey admits one call of class cls using key h (wrap, unwrap,
// derive) and returns the HSM it ran on (-1 without a cluster). s.mu must
// not be held.
func (s *Slot) admitKey(h ck.ULong, cls cluster.Class) (int, error) {
	if s.cl == nil {
		return -1, nil
	}
	r, err := s.routeKey(h)
	if err != nil {
		return -1, err
	}
	if cls == cluster.ClassNone {
		cls = cluster.ClassManage
	}
	if err := s.cl.Admit(&r, cls); err != nil {
		return -1, err
	}
	return r.HSM, nil
}

// originOf is where an object lives: a session object's HSM, the next
// reachable HSM for a token object (-1: the slot has no cluster).
func (s *Slot) originOf(o *Object) int {
	if s.cl == nil {
		return -1
	}
	if !o.token {
		return o.hsm
	}
	return s.execHSM()
}

// anyHSM is cluster.ErrNoHSM (CKR_DEVICE_ERROR) when the slot's cluster
// has no reachable HSM, nil otherwise or without a cluster: for work that
// needs an HSM but is not routed (a key replication).
func (s *Slot) anyHSM() error {
	if s.cl != nil && len(s.cl.Reachable()) == 0 {
		return cluster.ErrNoHSM
	}
	return nil
}

// lost is cluster.ErrKeyLost (CKR_KEY_HANDLE_INVALID) when o is a session
// object whose HSM has gone down since it was made (decision 3): it is
// gone with it, for a use that is not routed on it too (the key a wrap
// exports).
func (s *Slot) lost(o *Object) error {
	if s.cl != nil && !o.token && s.cl.Epoch(o.hsm) != o.epoch {
		return cluster.ErrKeyLost
	}
	return nil
}

// auditSessionLocked records e, a change to session object o (destroy,
// set attributes), in the stream of the HSM that holds o. An object lost
// with its HSM (down since it was made, or back rebooted) is recorded
// nowhere: a down HSM writes nothing and no other HSM ran the change
// (decision 6). s.mu held.
func (s *Slot) auditSessionLocked(se *Session, o *Object, e audit.Event) {
	if s.lost(o) != nil {
		return
	}
	s.auditLaterLocked(s.originOf(o), se, e)
}

// objectClass is the class of a write of objects of class c: certificates
// have their own budget (certificate storage, hsm2m), other objects are
// management.
func objectClass(c ck.ObjectClass) cluster.Class {
	if c == ck.CKO_CERTIFICATE {
		return cluster.ClassCertWrite
	}
	return cluster.ClassManage
}

// admitObject admits a write of token object obj (destroy, set
// attributes; s.cl set): a certificate's is a certificate-storage write,
// any other's management. A handle the lookup refuses is left to the
// call, which answers for it.
func (s *Slot) admitObject(obj ck.ULong) error {
	if obj >= sessionObjectBase {
		return nil
	}
	s.mu.Lock()
	o, err := s.visibleObjectLocked(obj, ck.CKR_OBJECT_HANDLE_INVALID)
	s.mu.Unlock()
	if err != nil {
		return nil
	}
	_, err = s.admitAny(objectClass(o.class))
	return err
}

// admitCertRead admits one certificate-storage read (s.cl set): throttled,
// C_GetAttributeValue answers CKR_DEVICE_ERROR and C_FindObjectsInit
// CKR_FUNCTION_FAILED, neither retried by the SDK
// (UG:pkcs11-certificate-storage-limits).
func (s *Slot) admitCertRead(getAttr bool) error {
	_, err := s.admitAny(cluster.ClassCertRead)
	switch {
	case getAttr && errors.Is(err, cluster.ErrThrottled):
		return cluster.ErrCertThrottled
	case !getAttr && errors.Is(err, cluster.ErrCertThrottled):
		return cluster.ErrThrottled
	}
	return err
}

// mayFindCertificates reports whether a find template may match token
// certificates: the search then reads certificate storage.
func mayFindCertificates(tmpl attrs.Template) bool {
	if tk, ok := tmpl.Bool(ck.CKA_TOKEN); ok && !tk {
		return false
	}
	c, ok := tmpl.ULong(ck.CKA_CLASS)
	return !ok || ck.ObjectClass(c) == ck.CKO_CERTIFICATE
}

// canCreateKeyLocked refuses new token keys, before anything is stored,
// when the key availability quorum could not be met (s.cl set).
func (s *Slot) canCreateKeyLocked(objs []*Object) error {
	for _, o := range objs {
		if o.token && isKeyClass(o.class) {
			return s.cl.CanCreateKey()
		}
	}
	return nil
}

// createdLocked tells the cluster of new token keys, made on HSM origin.
func (s *Slot) createdLocked(objs []*Object, origin int) {
	for _, o := range objs {
		if o.token && isKeyClass(o.class) {
			s.cl.KeyCreated(int64(o.h), origin)
		}
	}
}

// placeSessionObjects puts new session objects on HSM origin, with its
// epoch: a session key lives there alone and is lost when it goes down.
func (s *Slot) placeSessionObjects(objs []*Object, origin int) {
	if s.cl == nil || origin < 0 {
		return
	}
	ep := s.cl.Epoch(origin)
	for _, o := range objs {
		if !o.token {
			o.hsm, o.epoch = origin, ep
		}
	}
}

// clusterStore is the slot's store as the cluster lets it be reached:
// while a fault plan has dropped the store, every access fails with
// cluster.ErrStoreDown (CKR_DEVICE_ERROR), but the generation check
// (the mapped WAL index, local to the host) and the audit log's readers.
// Cached keys and session objects need no access and keep working.
type clusterStore struct {
	store.Store
	cl *cluster.Cluster
}

func (c clusterStore) Audited(events ...store.AuditEvent) store.Store {
	return clusterStore{Store: c.Store.Audited(events...), cl: c.cl}
}

func (c clusterStore) Audit(events ...store.AuditEvent) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.Audit(events...)
}

func (c clusterStore) Backup(path string) (store.BackupInfo, error) {
	if err := c.cl.StoreDown(); err != nil {
		return store.BackupInfo{}, err
	}
	return c.Store.Backup(path)
}

func (c clusterStore) ReplicaOf(id int64) (store.Replica, error) {
	if err := c.cl.StoreDown(); err != nil {
		return store.Replica{}, err
	}
	return c.Store.ReplicaOf(id)
}

func (c clusterStore) CreateReplica(r store.Replica, quotas ...store.Quota) (store.ObjectRecord, store.Commit, error) {
	if err := c.cl.StoreDown(); err != nil {
		return store.ObjectRecord{}, store.Commit{}, err
	}
	return c.Store.CreateReplica(r, quotas...)
}

func (c clusterStore) Token() (*store.TokenRecord, error) {
	if err := c.cl.StoreDown(); err != nil {
		return nil, err
	}
	return c.Store.Token()
}

func (c clusterStore) InitToken(t store.TokenRecord, co store.UserRecord) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.InitToken(t, co)
}

func (c clusterStore) CreateToken(t store.TokenRecord, co store.UserRecord) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.CreateToken(t, co)
}

func (c clusterStore) SetTokenLabel(label string) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.SetTokenLabel(label)
}

func (c clusterStore) User(name string) (*store.UserRecord, error) {
	if err := c.cl.StoreDown(); err != nil {
		return nil, err
	}
	return c.Store.User(name)
}

func (c clusterStore) Users() ([]store.UserRecord, error) {
	if err := c.cl.StoreDown(); err != nil {
		return nil, err
	}
	return c.Store.Users()
}

func (c clusterStore) CreateUser(u store.UserRecord) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.CreateUser(u)
}

func (c clusterStore) CreateUserLimit(u store.UserRecord, max int) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.CreateUserLimit(u, max)
}

func (c clusterStore) UpdateUser(u store.UserRecord) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.UpdateUser(u)
}

func (c clusterStore) DeleteUser(name string) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.DeleteUser(name)
}

func (c clusterStore) AddLogin(l store.Login) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.AddLogin(l)
}

func (c clusterStore) RemoveLogin(instance int64) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.RemoveLogin(instance)
}

func (c clusterStore) Logins(user string) ([]store.Login, error) {
	if err := c.cl.StoreDown(); err != nil {
		return nil, err
	}
	return c.Store.Logins(user)
}

func (c clusterStore) BeginLogin(name string, threshold int) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.BeginLogin(name, threshold)
}

func (c clusterStore) LoginFailed(name string, threshold int) (int, bool, error) {
	if err := c.cl.StoreDown(); err != nil {
		return 0, false, err
	}
	return c.Store.LoginFailed(name, threshold)
}

func (c clusterStore) LoginSucceeded(name string) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.LoginSucceeded(name)
}

func (c clusterStore) CreateObject(o store.ObjectRecord) (store.ObjectRecord, error) {
	if err := c.cl.StoreDown(); err != nil {
		return store.ObjectRecord{}, err
	}
	return c.Store.CreateObject(o)
}

func (c clusterStore) CreateObjects(objs []store.ObjectRecord, quotas ...store.Quota) ([]store.ObjectRecord, store.Commit, error) {
	if err := c.cl.StoreDown(); err != nil {
		return nil, store.Commit{}, err
	}
	return c.Store.CreateObjects(objs, quotas...)
}

func (c clusterStore) Object(id int64) (*store.ObjectRecord, error) {
	if err := c.cl.StoreDown(); err != nil {
		return nil, err
	}
	return c.Store.Object(id)
}

func (c clusterStore) ObjectVersion(id int64) (int64, error) {
	if err := c.cl.StoreDown(); err != nil {
		return 0, err
	}
	return c.Store.ObjectVersion(id)
}

func (c clusterStore) UpdateObject(o store.ObjectRecord) (int64, store.Commit, error) {
	if err := c.cl.StoreDown(); err != nil {
		return 0, store.Commit{}, err
	}
	return c.Store.UpdateObject(o)
}

func (c clusterStore) DeleteObject(id int64) (store.Commit, error) {
	if err := c.cl.StoreDown(); err != nil {
		return store.Commit{}, err
	}
	return c.Store.DeleteObject(id)
}

func (c clusterStore) Find(q store.Query) ([]int64, error) {
	if err := c.cl.StoreDown(); err != nil {
		return nil, err
	}
	return c.Store.Find(q)
}

func (c clusterStore) CountOwned(owner string) (int, error) {
	if err := c.cl.StoreDown(); err != nil {
		return 0, err
	}
	return c.Store.CountOwned(owner)
}

func (c clusterStore) Share(id int64, user string, wrappedKey []byte) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.Share(id, user, wrappedKey)
}

func (c clusterStore) Unshare(id int64, user string) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.Unshare(id, user)
}

func (c clusterStore) SharedWith(id int64) ([]string, error) {
	if err := c.cl.StoreDown(); err != nil {
		return nil, err
	}
	return c.Store.SharedWith(id)
}

func (c clusterStore) UpgradeKeys(escrowPublic []byte, users []store.UserRecord, objs []store.ObjectRecord) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.UpgradeKeys(escrowPublic, users, objs)
}

func (c clusterStore) QuorumKeys() (map[string][]byte, error) {
	if err := c.cl.StoreDown(); err != nil {
		return nil, err
	}
	return c.Store.QuorumKeys()
}

func (c clusterStore) SetQuorumKey(user string, der []byte) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.SetQuorumKey(user, der)
}

func (c clusterStore) QuorumValues() (map[string]int, error) {
	if err := c.cl.StoreDown(); err != nil {
		return nil, err
	}
	return c.Store.QuorumValues()
}

func (c clusterStore) SetQuorumValue(service string, value int) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.SetQuorumValue(service, value)
}

func (c clusterStore) AddQuorumToken(t store.QuorumToken, now int64, unique bool, max int) (int64, error) {
	if err := c.cl.StoreDown(); err != nil {
		return 0, err
	}
	return c.Store.AddQuorumToken(t, now, unique, max)
}

func (c clusterStore) QuorumTokens() ([]store.QuorumToken, error) {
	if err := c.cl.StoreDown(); err != nil {
		return nil, err
	}
	return c.Store.QuorumTokens()
}

func (c clusterStore) ApproveQuorumToken(id int64, approvers []string) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.ApproveQuorumToken(id, approvers)
}

func (c clusterStore) ConsumeQuorumToken(id int64) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.ConsumeQuorumToken(id)
}

func (c clusterStore) DeleteQuorumTokens(user string) (int, error) {
	if err := c.cl.StoreDown(); err != nil {
		return 0, err
	}
	return c.Store.DeleteQuorumTokens(user)
}

func (c clusterStore) SetKeyQuorum(objectID int64, use, manage int) error {
	if err := c.cl.StoreDown(); err != nil {
		return err
	}
	return c.Store.SetKeyQuorum(objectID, use, manage)
}

func (c clusterStore) SharedKeyQuorums(user string) ([]store.KeyQuorumUsers, error) {
	if err := c.cl.StoreDown(); err != nil {
		return nil, err
	}
	return c.Store.SharedKeyQuorums(user)
}
