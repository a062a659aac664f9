package token

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
	"gohsm/token/audit"
	"gohsm/token/cluster"
	"gohsm/token/profile"
	"gohsm/token/quorum"
)

// Mechanism is a CK_MECHANISM whose parameter the C boundary has decoded
// into the Go type the mechanism's ParamKind names.
type Mechanism struct {
	Type  ck.MechanismType
	Param any
}

// Mechanisms answers C_GetMechanismList.
func (m *Module) Mechanisms(slotID ck.ULong) ([]ck.MechanismType, error) {
	s, err := m.Slot(slotID)
	if err != nil {
		return nil, err
	}
	return s.prof.Mechanisms.List(), nil
}

// Offers reports whether the slot of session h offers a mechanism (true
// for a session that does not exist: the caller's session check answers
// for it).
func (m *Module) Offers(h ck.ULong, t ck.MechanismType) bool {
	se, err := m.session(h)
	if err != nil {
		return true
	}
	_, _, ok := se.slot.prof.Mechanisms.Lookup(t)
	return ok
}

// MechanismInfo answers C_GetMechanismInfo.
func (m *Module) MechanismInfo(slotID ck.ULong, t ck.MechanismType) (min, max, flags ck.ULong, err error) {
	s, err := m.Slot(slotID)
	if err != nil {
		return 0, 0, 0, err
	}
	mm, _, ok := s.prof.Mechanisms.Lookup(t)
	if !ok {
		return 0, 0, 0, fmt.Errorf("token: %v: %w", t, ck.CKR_MECHANISM_INVALID)
	}
	min, max = ck.ULong(mm.MinKeySize), ck.ULong(mm.MaxKeySize)
	// The key sizes the slot's profile holds (cloudhsm: RSA 2048-4096).
	lo, hi, _ := s.prof.Limits.MechanismKeySize(mm)
	min, max = ck.ULong(lo), ck.ULong(hi)
	if mm.InfoBits {
		min, max = 8*min, 8*max
	}
	return min, max, mm.Flags(), nil
}

// usage is the key attribute an operation needs.
var usage = [numOpKinds]ck.AttributeType{
	opEncrypt: ck.CKA_ENCRYPT, opDecrypt: ck.CKA_DECRYPT, opSign: ck.CKA_SIGN, opVerify: ck.CKA_VERIFY,
	opSignRecover: ck.CKA_SIGN_RECOVER, opVerifyRecover: ck.CKA_VERIFY_RECOVER,
	opMessageEncrypt: ck.CKA_ENCRYPT, opMessageDecrypt: ck.CKA_DECRYPT,
}

var opNames = [numOpKinds]string{"find", "encrypt", "decrypt", "digest", "sign", "verify",
	"sign-recover", "verify-recover", "message-encrypt", "message-decrypt"}

// keyLocked returns the parsed key material of an object, cached by version.
func (s *Slot) keyLocked(o *Object) (any, error) {
	if c, ok := s.keys[o.h]; ok && c.version == o.version {
		return c.key, nil
	}
	if len(o.sealed) > 0 {
		return nil, fmt.Errorf("token: key %d sealed without login: %w", o.h, ck.CKR_USER_NOT_LOGGED_IN)
	}
	k, err := parseKey(o)
	if err != nil {
		return nil, err
	}
	s.keys[o.h] = cachedKey{version: o.version, key: k}
	return k, nil
}

// parseKey parses an object's key material. An object's attributes are
// never changed in place (an update makes a new Object), so this needs no
// lock.
func parseKey(o *Object) (k any, err error) {
	// Callers run this without the slot's lock, which they retake: a
	// panic must come back as an error, not unwind through their
	// deferred unlock of a lock they do not hold.
	defer func() {
		if p := recover(); p != nil {
			k, err = nil, fmt.Errorf("token: key %d: parsing panicked: %v: %w", o.h, p, ck.CKR_GENERAL_ERROR)
		}
	}()
	testOnlyKeyParse()
	k, err = attrs.KeyFromTemplate(o.class, o.keyType, &o.attrs)
	if err != nil {
		// Every key object's material was parsed when it was made, so a
		// stored one that no longer parses was corrupted under us: a
		// device error, not the template codes KeyFromTemplate speaks
		// (CKR_TEMPLATE_INCOMPLETE for missing material), which would
		// blame a template the caller never passed.
		return nil, fmt.Errorf("token: key %d: stored material unusable: %v: %w", o.h, err, ck.CKR_DEVICE_ERROR)
	}
	return k, nil
}

// testOnlyKeyParse runs before a key's material is parsed (tests block
// there).
var testOnlyKeyParse = func() {}

// initOp starts an operation of a kind with a mechanism and (except for
// digests) a key.
func (m *Module) initOp(h ck.ULong, kind opKind, mech Mechanism, keyH ck.ULong) error {
	return m.initOpVia(h, kind, mech, keyH, nil)
}

// initOpVia is initOp with the mechanism looked up by via (cliops.go's
// CLI entry points) instead of the profile's PKCS#11 list (nil).
func (m *Module) initOpVia(h ck.ULong, kind opKind, mech Mechanism, keyH ck.ULong, via offer) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	if cl := se.slot.cl; cl != nil && initFuncs[kind] != cluster.FuncNone {
		if err := cl.Fault(initFuncs[kind]); err != nil {
			return err
		}
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	se.settleLocked(kind) // an operation C_Sign ended in C is over
	if se.ops[kind] != nil {
		return fmt.Errorf("token: %s: %w", opNames[kind], ck.CKR_OPERATION_ACTIVE)
	}
	// C_Sign in C (csign.go): the closers' count before the operation
	// exists.
	handOff := kind == opSign && via == nil && m.csign != nil
	var ends uint64
	var closing bool
	if handOff {
		ends = se.slot.ends.ends.Load()
		closing = se.slot.ends.closers.Load() != 0
	}
	var mm *mechanisms.Mechanism
	var rule *profile.Rule
	ok := true
	if via == nil {
		mm, rule, ok = se.slot.prof.Mechanisms.Lookup(mech.Type)
	} else if mm, rule, err = via(se.slot.prof, mech.Type); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("token: %v: %w", mech.Type, ck.CKR_MECHANISM_INVALID)
	}
	op := se.newOp(kind, mm)
	op.rule = rule
	// The classes count the operation's calls in the slot's metrics, and
	// route them in its cluster (clusterInit).
	op.cls, op.updCls = opClass(kind, mm)
	if kind == opDigest {
		if mm.Digest == nil {
			return fmt.Errorf("token: %v cannot digest: %w", mech.Type, ck.CKR_MECHANISM_INVALID)
		}
		s := se.slot
		s.mu.RLock()
		err := se.allowLocked(actUseKey)
		s.mu.RUnlock()
		if err != nil {
			return err
		}
		if op.digester, err = mm.Digest(mech.Param); err != nil {
			return err
		}
		op.cl = s.cl // C_Digest's faults; digests reach no HSM
		se.ops[kind] = op
		return nil
	}
	if !canDo(mm, kind) {
		return fmt.Errorf("token: %v cannot %s: %w", mech.Type, opNames[kind], ck.CKR_MECHANISM_INVALID)
	}
	key, auth, err := se.slot.useKey(se, keyH, mm, usage[kind])
	if err != nil {
		return err
	}
	if se.slot.cl != nil {
		if err := se.slot.clusterInit(op, kind, keyH); err != nil {
			return err
		}
	}
	if rule != nil {
		if err := rule.CheckParam(mech.Param); err != nil {
			return err
		}
		if kind == opEncrypt {
			if err := rule.TakeGCMIV(mech.Param, m.rand); err != nil {
				return err
			}
		}
	}
	// The field follows the operation, not what the value implements: a
	// MAC operation is both a Signer and a Verifier.
	switch kind {
	case opEncrypt:
		op.cipher, err = mm.Encrypt(key, mech.Param)
	case opDecrypt:
		op.cipher, err = mm.Decrypt(key, mech.Param)
	case opSign:
		op.signer, err = mm.Sign(key, mech.Param)
	case opVerify:
		op.verifier, err = mm.Verify(key, mech.Param)
	case opSignRecover, opVerifyRecover:
		op.key, op.param = key, mech.Param
	case opMessageEncrypt:
		op.aead, err = mm.MessageEncrypt(key, mech.Param)
	case opMessageDecrypt:
		op.aead, err = mm.MessageDecrypt(key, mech.Param)
	}
	if err != nil {
		return err
	}
	if auth {
		// CKA_ALWAYS_AUTHENTICATE: the operation waits for
		// C_Login(CKU_CONTEXT_SPECIFIC) (contextLogin).
		op.needAuth = true
		se.authKind = kind
	}
	se.ops[kind] = op
	if handOff {
		m.handOffLocked(se, op, ends, closing)
	}
	return nil
}

// canDo reports whether a row implements an operation kind.
func canDo(mm *mechanisms.Mechanism, kind opKind) bool {
	switch kind {
	case opEncrypt:
		return mm.Encrypt != nil
	case opDecrypt:
		return mm.Decrypt != nil
	case opSign:
		return mm.Sign != nil
	case opVerify:
		return mm.Verify != nil
	case opSignRecover:
		return mm.SignRecover != nil
	case opVerifyRecover:
		return mm.VerifyRecover != nil
	case opMessageEncrypt:
		return mm.MessageEncrypt != nil
	case opMessageDecrypt:
		return mm.MessageDecrypt != nil
	}
	return false
}

// useKey checks that the session may use a key for a purpose with a
// mechanism and returns its material, and whether the key has
// CKA_ALWAYS_AUTHENTICATE.
func (s *Slot) useKey(se *Session, keyH ck.ULong, mm *mechanisms.Mechanism, purpose ck.AttributeType) (any, bool, error) {
	if k, auth, ok := s.useKeyFast(se, keyH, mm, purpose); ok {
		return k, auth, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if keyH >= sessionObjectBase {
		// A session object's look-up never reads the store, so while a
		// session uses only session keys nothing else brings the slot's
		// generation up to date after the store changed (an audit record,
		// another process): useKeyFast, which requires it current, then
		// missed on every call and each C_SignInit took this exclusive
		// lock. Catch up here, as a token object's look-up does; a store
		// that cannot answer leaves things as they were.
		_ = s.refreshLocked()
	}
	o, err := s.keyObjectLocked(se, keyH, mm, purpose)
	if err != nil {
		return nil, false, err
	}
	if c, ok := s.keys[o.h]; (!ok || c.version != o.version) && len(o.sealed) == 0 {
		// Not parsed yet (a key another process made, or the cache was
		// dropped): parse it without the slot's lock, which a large RSA
		// key would hold for its precomputation and checks, then look
		// again, since anything may have changed meanwhile.
		parsed := o
		s.mu.Unlock()
		k, perr := parseKey(parsed)
		s.mu.Lock()
		if o, err = s.keyObjectLocked(se, keyH, mm, purpose); err != nil {
			return nil, false, err
		}
		if o.version == parsed.version {
			if perr != nil {
				return nil, false, perr
			}
			if c, ok := s.keys[o.h]; !ok || c.version != o.version { // else another session was first
				s.keys[o.h] = cachedKey{version: o.version, key: k}
			}
		}
	}
	k, err := s.keyLocked(o)
	if err == nil && purpose == ck.CKA_SIGN && o.useQuorum > 1 {
		err = s.keyGateLocked(o, quorum.KeyUsage, o.useQuorum)
	}
	if err != nil || mm.Prepare == nil {
		return k, o.alwaysAuth, err
	}
	k, err = s.preparedLocked(o, k, mm)
	return k, o.alwaysAuth, err
}

// keyObjectLocked finds a key object a session may use for a mechanism
// and purpose, with the precise error otherwise.
func (s *Slot) keyObjectLocked(se *Session, keyH ck.ULong, mm *mechanisms.Mechanism, purpose ck.AttributeType) (*Object, error) {
	if err := se.allowLocked(actUseKey); err != nil {
		return nil, err
	}
	o, err := s.visibleObjectLocked(keyH, ck.CKR_KEY_HANDLE_INVALID)
	if err != nil {
		return nil, err
	}
	if !isKeyClass(o.class) {
		return nil, fmt.Errorf("token: object %d is not a key: %w", keyH, ck.CKR_KEY_HANDLE_INVALID)
	}
	if !slices.Contains(mm.KeyTypes, o.keyType) {
		return nil, fmt.Errorf("token: %v key for %v: %w", o.keyType, mm.Type, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	if ok, _ := o.attrs.Bool(purpose); !ok {
		return nil, fmt.Errorf("token: key %d has %v false: %w", keyH, purpose, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	}
	if am := o.attrs.Bytes(ck.CKA_ALLOWED_MECHANISMS); len(am) > 0 && !allowsMechanism(am, mm.Type) {
		return nil, fmt.Errorf("token: key %d does not allow %v: %w", keyH, mm.Type, ck.CKR_MECHANISM_INVALID)
	}
	return o, nil
}

// useKeyFast is useKey for the steady state, under the read lock so that
// sessions using keys concurrently do not queue: the store has not changed,
// the object and its parsed (and prepared) key are cached, and every check
// passes. Anything else (a miss, an error to report) takes the slow path,
// which gives the precise error. The caller holds se.mu: the answer is
// remembered in the session, and given again without the slot's lock
// while nothing in the slot (its epoch) or the store has changed.
func (s *Slot) useKeyFast(se *Session, keyH ck.ULong, mm *mechanisms.Mechanism, purpose ck.AttributeType) (key any, auth, ok bool) {
	g, err := s.st.Generation()
	if err != nil {
		return nil, false, false
	}
	if c := &se.fastKey; c.ok && c.h == keyH && c.mech == mm.Type && c.purpose == purpose &&
		c.gen == g && c.epoch == s.mu.epoch.Load() {
		return c.key, c.auth, true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if g != s.gen || se.rules.permissions[se.stateLocked()][actUseKey] != 0 {
		return nil, false, false
	}
	key, auth, ok = s.lookupKeyLocked(keyH, mm, purpose)
	if ok {
		// The epoch cannot move while the read lock is held.
		c := &se.fastKey
		c.ok, c.h, c.mech, c.purpose, c.epoch, c.gen, c.key, c.auth = true, keyH, mm.Type, purpose, s.mu.epoch.Load(), g, key, auth
	}
	return key, auth, ok
}

// lookupKeyLocked is useKeyFast's checks and cache lookups (s.mu held).
func (s *Slot) lookupKeyLocked(keyH ck.ULong, mm *mechanisms.Mechanism, purpose ck.AttributeType) (key any, auth, ok bool) {
	var o *Object
	if keyH >= sessionObjectBase {
		o = s.sessObjs[keyH]
	} else {
		o = s.objs[keyH]
	}
	if o == nil || !s.visibleLocked(o) || !isKeyClass(o.class) || !slices.Contains(mm.KeyTypes, o.keyType) {
		return nil, false, false
	}
	if ok, _ := o.attrs.Bool(purpose); !ok || purpose == ck.CKA_SIGN && o.useQuorum > 1 {
		// A key with a use quorum takes the slow path, which asks for
		// an approved token each time (quorum.go).
		return nil, false, false
	}
	if am := o.attrs.Bytes(ck.CKA_ALLOWED_MECHANISMS); len(am) > 0 && !allowsMechanism(am, mm.Type) {
		return nil, false, false
	}
	c, ok := s.keys[o.h]
	if !ok || c.version != o.version {
		return nil, false, false
	}
	if mm.Prepare == nil {
		return c.key, o.alwaysAuth, true
	}
	p, ok := c.prepared[mm.Type]
	if !ok {
		return nil, false, false
	}
	return p, o.alwaysAuth, true
}

// preparedLocked returns the key with the mechanism's precomputation,
// made once per key object and mechanism and kept with the parsed key.
func (s *Slot) preparedLocked(o *Object, k any, mm *mechanisms.Mechanism) (any, error) {
	c := s.keys[o.h]
	if p, ok := c.prepared[mm.Type]; ok {
		return p, nil
	}
	st, err := mm.Prepare(k)
	if ran, why := mechanisms.TakeRSAProbe(); ran {
		// Once per process: the first RSA key prepared with libcrypto
		// ran the probe of libcrypto's own check of its results.
		if why != nil {
			s.m.log.Warn("gohsm: libcrypto's rsa results checked again in go", "err", why)
		} else {
			s.m.log.Info("gohsm: libcrypto checks its own rsa results (probe passed); no second check in go")
		}
	}
	if err != nil {
		return nil, err
	}
	if c.prepared == nil {
		c.prepared = map[ck.MechanismType]*mechanisms.Prepared{}
	}
	p := &mechanisms.Prepared{Key: k, State: st}
	c.prepared[mm.Type] = p
	s.keys[o.h] = c
	return p, nil
}

// allowsMechanism reads CKA_ALLOWED_MECHANISMS: an array of CK_ULONGs in
// the token's encoding (8 bytes, little-endian).
func allowsMechanism(list []byte, t ck.MechanismType) bool {
	for i := 0; i+8 <= len(list); i += 8 {
		if ck.MechanismType(binary.LittleEndian.Uint64(list[i:i+8])) == t {
			return true
		}
	}
	return false
}

// activeOp locks the session and returns its active operation of a kind;
// the caller must call done(err), which ends the operation on any error but
// a short buffer, and on success when final is set.
func (m *Module) activeOp(h ck.ULong, kind opKind) (*Session, *operation, error) {
	se, err := m.session(h)
	if err != nil {
		return nil, nil, err
	}
	se.mu.Lock()
	op := se.ops[kind]
	if op != nil && op.handed && se.settleLocked(kind) {
		op = nil // C_Sign ended it in C
	}
	if op == nil {
		se.mu.Unlock()
		return nil, nil, fmt.Errorf("token: %s: %w", opNames[kind], ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	if op.needAuth {
		// CKA_ALWAYS_AUTHENTICATE without C_Login(CKU_CONTEXT_SPECIFIC):
		// "CKR_USER_NOT_LOGGED_IN to be returned from calls using the
		// key" (v2.20 §10.9), and like any failed call it ends the
		// operation.
		se.endOp(kind)
		se.mu.Unlock()
		return nil, nil, fmt.Errorf("token: %s: the key needs a context-specific login: %w", opNames[kind], ck.CKR_USER_NOT_LOGGED_IN)
	}
	return se, op, nil
}

// done must be the deferred call itself (defer se.done(kind, &err, ...)) so
// that a panic inside the operation also ends it before the C boundary
// turns the panic into CKR_GENERAL_ERROR.
func (se *Session) done(kind opKind, errp *error, final bool, query bool) {
	if p := recover(); p != nil {
		se.endOp(kind)
		se.mu.Unlock()
		panic(p)
	}
	err := *errp
	if err != nil && !errors.Is(err, ck.CKR_BUFFER_TOO_SMALL) || err == nil && final && !query {
		se.endOp(kind)
	}
	se.mu.Unlock()
}

// singlePart rejects a single-part call after an Update (spec: the
// operation is a multi-part one now).
func singlePart(op *operation) error {
	if op.multi {
		return fmt.Errorf("token: single-part call during a multi-part operation: %w", ck.CKR_OPERATION_ACTIVE)
	}
	return nil
}

// multiPart rejects C_*Update/C_*Final for single-part mechanisms (raw RSA,
// PSS, raw ECDSA) with CKR_FUNCTION_NOT_SUPPORTED, the code clients read as
// "this mechanism has no multi-part form" (pkcs11-tool --test does); the
// operation ends like after any other error.
func multiPart(op *operation) error {
	if op.mech.SinglePart {
		return fmt.Errorf("token: %v is single-part only: %w", op.mech.Type, ck.CKR_FUNCTION_NOT_SUPPORTED)
	}
	if op.rule != nil && op.rule.NoUpdate != 0 {
		// CloudHSM's CKM_AES_GCM has no multi-part form (cloudhsm-facts
		// §2.5: C_EncryptUpdate/C_DecryptUpdate return CKR_MECHANISM_INVALID).
		return fmt.Errorf("token: %v is single-part only in this profile: %w", op.mech.Type, op.rule.NoUpdate)
	}
	op.multi = true
	return nil
}

// verifyMultiPart is multiPart for C_VerifyUpdate/C_VerifyFinal: rows
// that sign in parts but verify in one (CKM_ML_DSA, whose multi-part
// verification belongs to C_VerifySignatureInit) answer
// CKR_FUNCTION_NOT_SUPPORTED like single-part rows.
func verifyMultiPart(op *operation) error {
	if op.mech.VerifySinglePart {
		return fmt.Errorf("token: %v verifies in one part only: %w", op.mech.Type, ck.CKR_FUNCTION_NOT_SUPPORTED)
	}
	return multiPart(op)
}

// take counts n more input bytes of an operation against its profile's
// cap (CloudHSM's maximum data sizes): over it is CKR_DATA_LEN_RANGE, or
// CKR_ENCRYPTED_DATA_LEN_RANGE for decryption, and the operation ends like
// after any error. Callers count input only when they compute, never for
// a length query or the retry of a short buffer.
func (op *operation) take(n int, kind opKind) error {
	if op.rule == nil { // inlined: the standard profile pays this test only
		return nil
	}
	return op.takeLimited(n, kind)
}

func (op *operation) takeLimited(n int, kind opKind) error {
	limit := op.rule.InputLimit(kind == opDecrypt)
	if limit == 0 {
		return nil
	}
	op.inSum += n
	if op.inSum <= limit {
		return nil
	}
	rv := ck.CKR_DATA_LEN_RANGE
	if kind == opDecrypt {
		rv = ck.CKR_ENCRYPTED_DATA_LEN_RANGE
	}
	return fmt.Errorf("token: %v: %d bytes of input, at most %d in this profile: %w", op.mech.Type, op.inSum, limit, rv)
}

// EncryptInit answers C_EncryptInit.
func (m *Module) EncryptInit(h ck.ULong, mech Mechanism, key ck.ULong) error {
	return m.initOp(h, opEncrypt, mech, key)
}

// DecryptInit answers C_DecryptInit.
func (m *Module) DecryptInit(h ck.ULong, mech Mechanism, key ck.ULong) error {
	return m.initOp(h, opDecrypt, mech, key)
}

// SignInit answers C_SignInit.
func (m *Module) SignInit(h ck.ULong, mech Mechanism, key ck.ULong) error {
	return m.initOp(h, opSign, mech, key)
}

// VerifyInit answers C_VerifyInit.
func (m *Module) VerifyInit(h ck.ULong, mech Mechanism, key ck.ULong) error {
	return m.initOp(h, opVerify, mech, key)
}

// DigestInit answers C_DigestInit.
func (m *Module) DigestInit(h ck.ULong, mech Mechanism) error {
	return m.initOp(h, opDigest, mech, 0)
}

func (m *Module) cipherOnce(h ck.ULong, kind opKind, in []byte, out Out) (n int, err error) {
	se, op, err := m.activeOp(h, kind)
	if err != nil {
		return 0, err
	}
	defer se.done(kind, &err, true, out.Query)
	if t0, on := se.slot.mt.Begin(); on && !out.Query {
		defer se.slot.record(op.cls, t0, &err)
	}
	if err = singlePart(op); err != nil {
		return 0, err
	}
	return deliver(op, out, op.cipher.MaxOutput(len(in), true), func(dst []byte) ([]byte, error) {
		if op.cl != nil {
			if err := op.clusterCall(onceFuncs[kind], op.cls); err != nil {
				return nil, err
			}
		}
		if err := op.take(len(in), kind); err != nil {
			return nil, err
		}
		return op.cipher.Once(dst, in)
	})
}

func (m *Module) cipherUpdate(h ck.ULong, kind opKind, in []byte, out Out) (n int, err error) {
	se, op, err := m.activeOp(h, kind)
	if err != nil {
		return 0, err
	}
	defer se.done(kind, &err, false, out.Query)
	if err = multiPart(op); err != nil {
		return 0, err
	}
	return deliver(op, out, op.cipher.MaxOutput(len(in), false), func(dst []byte) ([]byte, error) {
		if op.cl != nil {
			if err := op.clusterCall(updateFuncs[kind], op.updCls); err != nil {
				return nil, err
			}
		}
		if err := op.take(len(in), kind); err != nil {
			return nil, err
		}
		return op.cipher.Update(dst, in)
	})
}

func (m *Module) cipherFinal(h ck.ULong, kind opKind, out Out) (n int, err error) {
	se, op, err := m.activeOp(h, kind)
	if err != nil {
		return 0, err
	}
	defer se.done(kind, &err, true, out.Query)
	if t0, on := se.slot.mt.Begin(); on && !out.Query {
		defer se.slot.record(op.cls, t0, &err)
	}
	if err = multiPart(op); err != nil {
		return 0, err
	}
	return deliver(op, out, op.cipher.MaxOutput(0, false), func(dst []byte) ([]byte, error) {
		if op.cl != nil {
			if err := op.clusterCall(finalFuncs[kind], op.cls); err != nil {
				return nil, err
			}
		}
		return op.cipher.Final(dst)
	})
}

// Encrypt answers C_Encrypt.
func (m *Module) Encrypt(h ck.ULong, in []byte, out Out) (int, error) {
	return m.cipherOnce(h, opEncrypt, in, out)
}

// EncryptUpdate answers C_EncryptUpdate.
func (m *Module) EncryptUpdate(h ck.ULong, in []byte, out Out) (int, error) {
	return m.cipherUpdate(h, opEncrypt, in, out)
}

// EncryptFinal answers C_EncryptFinal.
func (m *Module) EncryptFinal(h ck.ULong, out Out) (int, error) {
	return m.cipherFinal(h, opEncrypt, out)
}

// Decrypt answers C_Decrypt.
func (m *Module) Decrypt(h ck.ULong, in []byte, out Out) (int, error) {
	return m.cipherOnce(h, opDecrypt, in, out)
}

// DecryptUpdate answers C_DecryptUpdate.
func (m *Module) DecryptUpdate(h ck.ULong, in []byte, out Out) (int, error) {
	return m.cipherUpdate(h, opDecrypt, in, out)
}

// DecryptFinal answers C_DecryptFinal.
func (m *Module) DecryptFinal(h ck.ULong, out Out) (int, error) {
	return m.cipherFinal(h, opDecrypt, out)
}

// Sign answers C_Sign.
func (m *Module) Sign(h ck.ULong, data []byte, out Out) (n int, err error) {
	se, op, err := m.activeOp(h, opSign)
	if err != nil {
		return 0, err
	}
	defer se.done(opSign, &err, true, out.Query)
	if t0, on := se.slot.mt.Begin(); on && !out.Query {
		defer se.slot.record(op.cls, t0, &err)
	}
	if err = singlePart(op); err != nil {
		return 0, err
	}
	return deliver(op, out, op.signer.Size(), func(dst []byte) ([]byte, error) {
		if op.cl != nil {
			if err := op.clusterCall(cluster.FuncSign, op.cls); err != nil {
				return nil, err
			}
		}
		if err := op.take(len(data), opSign); err != nil {
			return nil, err
		}
		if err := op.signer.Update(data); err != nil {
			return nil, err
		}
		return op.signer.Sign(dst)
	})
}

// SignUpdate answers C_SignUpdate.
func (m *Module) SignUpdate(h ck.ULong, data []byte) (err error) {
	se, op, err := m.activeOp(h, opSign)
	if err != nil {
		return err
	}
	defer se.done(opSign, &err, false, false)
	if err = multiPart(op); err != nil {
		return err
	}
	if op.cl != nil {
		if err = op.clusterCall(cluster.FuncSignUpdate, op.updCls); err != nil {
			return err
		}
	}
	if err = op.take(len(data), opSign); err != nil {
		return err
	}
	return op.signer.Update(data)
}

// SignFinal answers C_SignFinal.
func (m *Module) SignFinal(h ck.ULong, out Out) (n int, err error) {
	se, op, err := m.activeOp(h, opSign)
	if err != nil {
		return 0, err
	}
	defer se.done(opSign, &err, true, out.Query)
	if t0, on := se.slot.mt.Begin(); on && !out.Query {
		defer se.slot.record(op.cls, t0, &err)
	}
	if err = multiPart(op); err != nil {
		return 0, err
	}
	compute := op.signer.Sign
	if op.cl != nil {
		compute = op.clustered(cluster.FuncSignFinal, op.cls, compute)
	}
	return deliver(op, out, op.signer.Size(), compute)
}

// Verify answers C_Verify.
func (m *Module) Verify(h ck.ULong, data, sig []byte) (err error) {
	se, op, err := m.activeOp(h, opVerify)
	if err != nil {
		return err
	}
	defer se.done(opVerify, &err, true, false)
	if t0, on := se.slot.mt.Begin(); on {
		defer se.slot.record(op.cls, t0, &err)
	}
	if err = singlePart(op); err != nil {
		return err
	}
	if op.cl != nil {
		if err = op.clusterCall(cluster.FuncVerify, op.cls); err != nil {
			return err
		}
	}
	if err = op.take(len(data), opVerify); err != nil {
		return err
	}
	if err = op.verifier.Update(data); err != nil {
		return err
	}
	return op.verifier.Verify(sig)
}

// VerifyUpdate answers C_VerifyUpdate.
func (m *Module) VerifyUpdate(h ck.ULong, data []byte) (err error) {
	se, op, err := m.activeOp(h, opVerify)
	if err != nil {
		return err
	}
	defer se.done(opVerify, &err, false, false)
	if err = verifyMultiPart(op); err != nil {
		return err
	}
	if op.cl != nil {
		if err = op.clusterCall(cluster.FuncVerifyUpdate, op.updCls); err != nil {
			return err
		}
	}
	if err = op.take(len(data), opVerify); err != nil {
		return err
	}
	return op.verifier.Update(data)
}

// VerifyFinal answers C_VerifyFinal.
func (m *Module) VerifyFinal(h ck.ULong, sig []byte) (err error) {
	se, op, err := m.activeOp(h, opVerify)
	if err != nil {
		return err
	}
	defer se.done(opVerify, &err, true, false)
	if t0, on := se.slot.mt.Begin(); on {
		defer se.slot.record(op.cls, t0, &err)
	}
	if err = verifyMultiPart(op); err != nil {
		return err
	}
	if op.cl != nil {
		if err = op.clusterCall(cluster.FuncVerifyFinal, op.cls); err != nil {
			return err
		}
	}
	return op.verifier.Verify(sig)
}

// Digest answers C_Digest.
func (m *Module) Digest(h ck.ULong, data []byte, out Out) (n int, err error) {
	se, op, err := m.activeOp(h, opDigest)
	if err != nil {
		return 0, err
	}
	defer se.done(opDigest, &err, true, out.Query)
	if err = singlePart(op); err != nil {
		return 0, err
	}
	return deliver(op, out, op.digester.Size(), func(dst []byte) ([]byte, error) {
		if op.cl != nil {
			if err := op.clusterCall(cluster.FuncDigest, cluster.ClassNone); err != nil {
				return nil, err
			}
		}
		if err := op.digester.Update(data); err != nil {
			return nil, err
		}
		return op.digester.Sum(dst), nil
	})
}

// DigestUpdate answers C_DigestUpdate.
func (m *Module) DigestUpdate(h ck.ULong, data []byte) (err error) {
	se, op, err := m.activeOp(h, opDigest)
	if err != nil {
		return err
	}
	defer se.done(opDigest, &err, false, false)
	if err = multiPart(op); err != nil {
		return err
	}
	return op.digester.Update(data)
}

// DigestFinal answers C_DigestFinal.
func (m *Module) DigestFinal(h ck.ULong, out Out) (n int, err error) {
	se, op, err := m.activeOp(h, opDigest)
	if err != nil {
		return 0, err
	}
	defer se.done(opDigest, &err, true, out.Query)
	if err = multiPart(op); err != nil {
		return 0, err
	}
	return deliver(op, out, op.digester.Size(), func(dst []byte) ([]byte, error) {
		return op.digester.Sum(dst), nil
	})
}

// keyGenMechanism looks up a generation mechanism and checks that the
// session may create keys.
func (m *Module) keyGenMechanism(h ck.ULong, t ck.MechanismType, pair bool, via offer) (*Session, *mechanisms.Mechanism, error) {
	se, err := m.session(h)
	if err != nil {
		return nil, nil, err
	}
	fn := cluster.FuncGenerateKey
	if pair {
		fn = cluster.FuncGenerateKeyPair
	}
	if err := se.slot.fault(fn); err != nil {
		return nil, nil, err
	}
	var mm *mechanisms.Mechanism
	ok := true
	if via == nil {
		mm, _, ok = se.slot.prof.Mechanisms.Lookup(t)
	} else if mm, _, err = via(se.slot.prof, t); err != nil {
		return nil, nil, err
	}
	if !ok || pair && mm.GenerateKeyPair == nil || !pair && mm.GenerateKey == nil || len(mm.KeyTypes) == 0 {
		return nil, nil, fmt.Errorf("token: %v cannot generate: %w", t, ck.CKR_MECHANISM_INVALID)
	}
	se.slot.mu.Lock()
	err = se.allowLocked(actCreateKey)
	se.slot.mu.Unlock()
	return se, mm, err
}

// GenerateKey answers C_GenerateKey.
func (m *Module) GenerateKey(h ck.ULong, mech Mechanism, tmpl attrs.Template) (_ ck.ULong, err error) {
	if s, t0 := m.begin(h); s != nil {
		defer s.record(cluster.ClassKeyGen, t0, &err)
	}
	se, mm, err := m.keyGenMechanism(h, mech.Type, false, nil)
	if err != nil {
		return 0, err
	}
	// The key type is the mechanism's, or for mechanisms that make several
	// (PBKDF2) the template's choice among them.
	kt := mm.KeyTypes[0]
	if want, ok := tmpl.ULong(ck.CKA_KEY_TYPE); ok && slices.Contains(mm.KeyTypes, ck.KeyType(want)) {
		kt = ck.KeyType(want)
	}
	full, err := attrs.BuildAttrs(se.slot.attrPolicy(), attrs.OpGenerate, ck.CKO_SECRET_KEY, kt, mech.Type, tmpl)
	if err != nil {
		return 0, err
	}
	if err := se.slot.checkKeyLimits(ck.CKO_SECRET_KEY, kt, &full); err != nil {
		return 0, err
	}
	vl, _ := full.ULong(ck.CKA_VALUE_LEN)
	if vl == 0 && kt == ck.CKK_DES3 {
		vl = 24 // DES3 keys have no CKA_VALUE_LEN: their length is fixed
	}
	origin, err := se.slot.admitAny(cluster.ClassKeyGen)
	if err != nil {
		return 0, err
	}
	key, err := mm.GenerateKey(m.rand, mechanisms.KeyGenParams{ValueLen: int(vl), Param: mech.Param})
	if err != nil {
		return 0, err
	}
	if v, ok := key.([]byte); ok {
		// A secret key's material is its value (TemplateFromKey's
		// CKA_VALUE; its CKA_VALUE_LEN is the value's length, which
		// completing the attributes sets or checks).
		err = attrs.AddValueTo(&full, v)
	} else {
		var mat attrs.Template
		if mat, err = attrs.TemplateFromKey(key); err == nil {
			err = attrs.AddMaterialTo(&full, mat)
		}
	}
	if err != nil {
		return 0, err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	var one [1]*Object
	objs, err := s.addGeneratedLocked(one[:], se, audit.CN_GENERATE_KEY, origin, full)
	if err != nil {
		return 0, err
	}
	return objs[0].h, nil
}

// GenerateKeyPair answers C_GenerateKeyPair.
func (m *Module) GenerateKeyPair(h ck.ULong, mech Mechanism, pubTmpl, privTmpl attrs.Template) (pubH, privH ck.ULong, err error) {
	return m.generateKeyPairVia(h, mech, pubTmpl, privTmpl, nil)
}

// generateKeyPairVia is GenerateKeyPair with the mechanism looked up by
// via (nil: the profile's PKCS#11 list).
func (m *Module) generateKeyPairVia(h ck.ULong, mech Mechanism, pubTmpl, privTmpl attrs.Template, via offer) (pubH, privH ck.ULong, err error) {
	if s, t0 := m.begin(h); s != nil {
		defer s.record(cluster.ClassKeyGen, t0, &err)
	}
	se, mm, err := m.keyGenMechanism(h, mech.Type, true, via)
	if err != nil {
		return 0, 0, err
	}
	kt := mm.KeyTypes[0]
	pol := se.slot.attrPolicy()
	pubFull, err := attrs.BuildAttrs(pol, attrs.OpGeneratePublic, ck.CKO_PUBLIC_KEY, kt, mech.Type, pubTmpl)
	if err != nil {
		return 0, 0, err
	}
	privFull, err := attrs.BuildAttrs(pol, attrs.OpGenerate, ck.CKO_PRIVATE_KEY, kt, mech.Type, privTmpl)
	if err != nil {
		return 0, 0, err
	}
	// Called directly, not through a func value, so that pubFull stays
	// on the stack.
	if via != nil {
		err = se.slot.cliCheckKeyLimits(ck.CKO_PUBLIC_KEY, kt, &pubFull) // cliops.go
	} else {
		err = se.slot.checkKeyLimits(ck.CKO_PUBLIC_KEY, kt, &pubFull)
	}
	if err != nil {
		return 0, 0, err
	}
	p := mechanisms.KeyGenParams{PublicExponent: pubFull.Bytes(ck.CKA_PUBLIC_EXPONENT), ECParams: pubFull.Bytes(ck.CKA_EC_PARAMS)}
	if bits, ok := pubFull.ULong(ck.CKA_MODULUS_BITS); ok {
		p.ModulusBits = int(bits)
	}
	if len(p.ECParams) == 0 {
		p.ECParams = privFull.Bytes(ck.CKA_EC_PARAMS)
	}
	if set, ok := pubFull.ULong(ck.CKA_PARAMETER_SET); ok {
		p.ParameterSet = set
	} else if len(pubFull.Bytes(ck.CKA_PARAMETER_SET)) != 0 {
		return 0, 0, fmt.Errorf("token: CKA_PARAMETER_SET not a CK_ULONG: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
	} else if set, ok := privFull.ULong(ck.CKA_PARAMETER_SET); ok {
		p.ParameterSet = set
	}
	origin, err := se.slot.admitAny(cluster.ClassKeyGen)
	if err != nil {
		return 0, 0, err
	}
	pub, priv, err := mm.GenerateKeyPair(m.rand, p)
	if err != nil {
		return 0, 0, err
	}
	pubMat, err := attrs.TemplateFromKey(pub)
	if err != nil {
		return 0, 0, err
	}
	privMat, err := attrs.TemplateFromKey(priv)
	if err != nil {
		return 0, 0, err
	}
	if err = attrs.AddMaterialTo(&pubFull, pubMat); err != nil {
		return 0, 0, err
	}
	if err = attrs.AddMaterialTo(&privFull, privMat); err != nil {
		return 0, 0, err
	}
	s := se.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	var two [2]*Object
	objs, err := s.addGeneratedLocked(two[:], se, audit.CN_GENERATE_KEY_PAIR, origin, pubFull, privFull)
	if err != nil {
		return 0, 0, err
	}
	return objs[0].h, objs[1].h, nil
}

// OpKind names an operation kind, for Abort.
type OpKind = opKind

// Operation kinds, for Abort.
const (
	OpEncrypt = opEncrypt
	OpDecrypt = opDecrypt
	OpDigest  = opDigest
	OpSign    = opSign
	OpVerify  = opVerify
)

// Abort ends a session's active operation of a kind: the C boundary calls it
// when a call fails before reaching the token (bad arguments), since any
// failure but a short buffer ends the operation (spec 5.2).
func (m *Module) Abort(h ck.ULong, kind OpKind) {
	se, err := m.session(h)
	if err != nil {
		return
	}
	se.mu.Lock()
	se.endOp(kind)
	se.mu.Unlock()
}

// More operation kinds, for Abort.
const (
	OpSignRecover   = opSignRecover
	OpVerifyRecover = opVerifyRecover
)

// SessionCancel answers C_SessionCancel (3.0): it ends the session's active
// operations that flags name (CKF_ENCRYPT, CKF_DECRYPT, CKF_DIGEST,
// CKF_SIGN, CKF_SIGN_RECOVER, CKF_VERIFY, CKF_VERIFY_RECOVER, CKF_FIND_OBJECTS,
// CKF_MESSAGE_ENCRYPT, CKF_MESSAGE_DECRYPT).
func (m *Module) SessionCancel(h ck.ULong, flags ck.ULong) error {
	se, err := m.session(h)
	if err != nil {
		return err
	}
	kinds := []struct {
		flag ck.ULong
		kind opKind
	}{
		{ck.CKF_ENCRYPT, opEncrypt}, {ck.CKF_DECRYPT, opDecrypt}, {ck.CKF_DIGEST, opDigest},
		{ck.CKF_SIGN, opSign}, {ck.CKF_SIGN_RECOVER, opSignRecover}, {ck.CKF_VERIFY, opVerify},
		{ck.CKF_VERIFY_RECOVER, opVerifyRecover}, {ck.CKF_FIND_OBJECTS, opFind},
		{ck.CKF_MESSAGE_ENCRYPT, opMessageEncrypt}, {ck.CKF_MESSAGE_DECRYPT, opMessageDecrypt},
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	for _, k := range kinds {
		if flags&k.flag != 0 {
			se.endOp(k.kind)
		}
	}
	return nil
}
