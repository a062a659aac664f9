package token

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
	"gohsm/token/audit"
	"gohsm/token/cluster"
	"gohsm/token/quorum"
)

// Key management beyond generation: C_WrapKey, C_UnwrapKey, C_DeriveKey
// (spec 5.18), and C_DigestKey. The attribute rules are the spec's:
// CKA_WRAP / CKA_UNWRAP / CKA_DERIVE on the key used, CKA_EXTRACTABLE on the
// key wrapped, CKA_WRAP_WITH_TRUSTED needing a CKA_TRUSTED wrapping key,
// CKA_WRAP_TEMPLATE / CKA_UNWRAP_TEMPLATE / CKA_DERIVE_TEMPLATE, and
// CKA_ALLOWED_MECHANISMS. Wrapping is the owner's alone (CloudHSM: a user
// a key is shared with may not export it).

// keyMaterial is the byte encoding a wrap mechanism encrypts: a secret key's
// value, or a private key as PKCS#8 DER.
func keyMaterial(o *Object, key any) ([]byte, error) {
	switch o.class {
	case ck.CKO_SECRET_KEY:
		return o.attrs.Bytes(ck.CKA_VALUE), nil
	case ck.CKO_PRIVATE_KEY:
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("token: %v key cannot be encoded for wrapping: %v: %w", o.keyType, err, ck.CKR_KEY_NOT_WRAPPABLE)
		}
		return der, nil
	}
	return nil, fmt.Errorf("token: only secret and private keys can be wrapped: %w", ck.CKR_KEY_NOT_WRAPPABLE)
}

// matchesTemplate reports whether every attribute of a wrap/derive template
// (EncodeTemplate form) has the same value in attributes a.
func matchesTemplate(encoded []byte, a attrs.Reader) (bool, error) {
	if len(encoded) == 0 {
		return true, nil
	}
	t, err := attrs.DecodeTemplate(encoded)
	if err != nil {
		return false, err
	}
	for k, v := range t {
		if got, _ := a.Get(k); !bytes.Equal(got, v) {
			return false, nil
		}
	}
	return true, nil
}

// withKeyTemplate applies a key's CKA_UNWRAP_TEMPLATE or CKA_DERIVE_TEMPLATE
// to the template of the key being made with it: its attributes are added,
// and a value in tmpl that contradicts it is CKR_TEMPLATE_INCONSISTENT.
func withKeyTemplate(tmpl attrs.Template, key *Object, which ck.AttributeType) (attrs.Template, error) {
	enc := key.attrs.Bytes(which)
	if len(enc) == 0 {
		return tmpl, nil
	}
	forced, err := attrs.DecodeTemplate(enc)
	if err != nil {
		return nil, fmt.Errorf("token: key %d's %v: %v: %w", key.h, which, err, ck.CKR_GENERAL_ERROR)
	}
	out := tmpl.Clone()
	if out == nil {
		out = attrs.Template{}
	}
	for k, v := range forced {
		if have, ok := out[k]; ok && !bytes.Equal(have, v) {
			return nil, fmt.Errorf("token: %v contradicts key %d's %v: %w", k, key.h, which, ck.CKR_TEMPLATE_INCONSISTENT)
		}
		out[k] = v
	}
	return out, nil
}

// usableKeyLocked checks a key for use with a mechanism and purpose, with the
// caller's choice of error for a bad handle and a wrong key type. It serves
// the one-call functions (C_WrapKey, C_UnwrapKey, C_DeriveKey), which leave
// no point at which to log in for a CKA_ALWAYS_AUTHENTICATE key ("the user
// has to supply the PIN for each use"): such a key is
// CKR_USER_NOT_LOGGED_IN here.
func (s *Slot) usableKeyLocked(h ck.ULong, mm *mechanisms.Mechanism, purpose ck.AttributeType, badHandle, badType ck.RV) (*Object, any, error) {
	o, err := s.visibleObjectLocked(h, badHandle)
	if err != nil {
		return nil, nil, err
	}
	if !isKeyClass(o.class) {
		return nil, nil, fmt.Errorf("token: object %d is not a key: %w", h, badHandle)
	}
	if !slices.Contains(mm.KeyTypes, o.keyType) {
		return nil, nil, fmt.Errorf("token: %v key for %v: %w", o.keyType, mm.Type, badType)
	}
	if ok, _ := o.attrs.Bool(purpose); !ok {
		return nil, nil, fmt.Errorf("token: key %d has %v false: %w", h, purpose, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	}
	if am := o.attrs.Bytes(ck.CKA_ALLOWED_MECHANISMS); len(am) > 0 && !allowsMechanism(am, mm.Type) {
		return nil, nil, fmt.Errorf("token: key %d does not allow %v: %w", h, mm.Type, ck.CKR_MECHANISM_INVALID)
	}
	if o.alwaysAuth {
		return nil, nil, fmt.Errorf("token: key %d has CKA_ALWAYS_AUTHENTICATE: no context-specific login possible for %v: %w", h, mm.Type, ck.CKR_USER_NOT_LOGGED_IN)
	}
	k, err := s.keyLocked(o)
	if err != nil {
		return nil, nil, err
	}
	return o, k, nil
}

// resolveParamLocked replaces key handles inside a derive mechanism's
// parameter with the keys' material, after the same visibility checks as
// any key use, and returns the keys so that the derived key's protection
// can follow theirs. Their values go into the derived key, so, like the
// base key, only their owner may use them so (mayExportLocked).
func (s *Slot) resolveParamLocked(param any) (any, []*Object, error) {
	resolve := func(h mechanisms.KeyHandle) (*Object, any, error) {
		o, err := s.visibleObjectLocked(ck.ULong(h), ck.CKR_MECHANISM_PARAM_INVALID)
		if err != nil {
			return nil, nil, err
		}
		if o.class != ck.CKO_SECRET_KEY {
			return nil, nil, fmt.Errorf("token: parameter key %d is not a secret key: %w", h, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		if !s.mayExportLocked(o) {
			return nil, nil, fmt.Errorf("token: parameter key %d belongs to %q: only its owner may derive from it: %w", h, o.owner, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
		}
		k, err := s.keyLocked(o)
		return o, k, err
	}
	switch p := param.(type) {
	case mechanisms.KeyHandle:
		o, k, err := resolve(p)
		if err != nil {
			return nil, nil, err
		}
		return &mechanisms.KeyMaterial{Key: k}, []*Object{o}, nil
	case *mechanisms.HKDFParams:
		if p.SaltType == ck.CKF_HKDF_SALT_KEY {
			o, _, err := resolve(p.SaltKey)
			if err != nil {
				return nil, nil, err
			}
			q := *p
			q.Salt = o.attrs.Bytes(ck.CKA_VALUE)
			return &q, []*Object{o}, nil
		}
	}
	return param, nil, nil
}

// wrapCache keeps the last wrap output of a session for the output-buffer
// retry rule: RSA-based wraps are randomised, so the retry after a short
// buffer must get the bytes whose length was reported.
type wrapCache struct {
	mech      ck.MechanismType
	wrapping  ck.ULong
	wrapped   ck.ULong
	pending   []byte
	hasResult bool
}

// WrapKey answers C_WrapKey.
func (m *Module) WrapKey(h ck.ULong, mech Mechanism, wrappingH, keyH ck.ULong, out Out) (_ int, err error) {
	if s, t0 := m.begin(h); s != nil && !out.Query {
		defer s.record(s.mechClass(opEncrypt, mech.Type), t0, &err)
	}
	se, err := m.session(h)
	if err != nil {
		return 0, err
	}
	if err := se.slot.fault(cluster.FuncWrapKey); err != nil {
		return 0, err
	}
	mm, rule, ok := se.slot.prof.Mechanisms.Lookup(mech.Type)
	if !ok || mm.Wrap == nil {
		return 0, fmt.Errorf("token: %v cannot wrap: %w", mech.Type, ck.CKR_MECHANISM_INVALID)
	}
	if err := rule.CheckParam(mech.Param); err != nil {
		return 0, err
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	s := se.slot
	s.mu.Lock()
	if err := se.allowLocked(actUseKey); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	if err := se.allowLocked(actCreateKey); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	wo, wkey, err := s.usableKeyLocked(wrappingH, mm, ck.CKA_WRAP, ck.CKR_WRAPPING_KEY_HANDLE_INVALID, ck.CKR_WRAPPING_KEY_TYPE_INCONSISTENT)
	if err != nil {
		s.mu.Unlock()
		return 0, err
	}
	ko, err := s.visibleObjectLocked(keyH, ck.CKR_KEY_HANDLE_INVALID)
	if err != nil {
		s.mu.Unlock()
		return 0, err
	}
	key, err := s.keyLocked(ko)
	export := s.mayExportLocked(ko)
	if x, _ := ko.attrs.Bool(ck.CKA_EXTRACTABLE); err == nil && export && x {
		// Both keys' manage values (CloudHSM CLI: --wrapping-approval,
		// --payload-approval), once the wrap is otherwise allowed.
		if err = s.keyGateLocked(wo, quorum.KeyManagement, wo.manageQuorum); err == nil {
			err = s.keyGateLocked(ko, quorum.KeyManagement, ko.manageQuorum)
		}
	}
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if !export {
		s.auditAlone(se, wrapEvent(keyH, wrappingH, audit.RespKeyDenied))
		return 0, fmt.Errorf("token: key %d belongs to %q: only its owner may wrap it: %w", keyH, ko.owner, ck.CKR_KEY_UNEXTRACTABLE)
	}
	if x, _ := ko.attrs.Bool(ck.CKA_EXTRACTABLE); !x {
		return 0, fmt.Errorf("token: key %d is not extractable: %w", keyH, ck.CKR_KEY_UNEXTRACTABLE)
	}
	if wt, _ := ko.attrs.Bool(ck.CKA_WRAP_WITH_TRUSTED); wt {
		if tr, _ := wo.attrs.Bool(ck.CKA_TRUSTED); !tr {
			return 0, fmt.Errorf("token: key %d may only be wrapped by a trusted key: %w", keyH, ck.CKR_KEY_NOT_WRAPPABLE)
		}
	}
	if ok, err := matchesTemplate(wo.attrs.Bytes(ck.CKA_WRAP_TEMPLATE), &ko.attrs); err != nil || !ok {
		return 0, fmt.Errorf("token: key %d does not match the wrapping key's CKA_WRAP_TEMPLATE: %w", keyH, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	c := &se.wrap
	if c.hasResult && c.mech == mech.Type && c.wrapping == wrappingH && c.wrapped == keyH {
		op := &operation{pending: c.pending, hasPending: true}
		n, err := deliver(op, out, 0, nil)
		if err == nil && !out.Query {
			*c = wrapCache{}
		}
		return n, err
	}
	*c = wrapCache{}
	if err := s.lost(ko); err != nil {
		return 0, err
	}
	// The wrap runs on an HSM that holds the wrapping key.
	hsm, err := s.admitKey(wrappingH, useClass(opEncrypt, wo.keyType))
	if err != nil {
		return 0, err
	}
	material, err := keyMaterial(ko, key)
	if err != nil {
		return 0, err
	}
	// CloudHSM's CKM_AES_GCM makes the IV here too; a retry after a
	// short buffer got the cached bytes above, with the IV already given.
	if err := rule.TakeGCMIV(mech.Param, m.rand); err != nil {
		if ko.class == ck.CKO_PRIVATE_KEY {
			clear(material)
		}
		return 0, err
	}
	wrapped, err := mm.Wrap(wkey, mech.Param, material)
	if ko.class == ck.CKO_PRIVATE_KEY {
		clear(material)
	}
	if err != nil {
		return 0, err
	}
	// Recorded once per wrap: a retry with a larger buffer gets the
	// cached bytes above and records nothing more.
	s.mu.Lock()
	s.auditOnAloneLocked(hsm, se, wrapEvent(keyH, wrappingH, audit.RespSuccess))
	s.mu.Unlock()
	op := &operation{pending: wrapped, hasPending: true}
	n, err := deliver(op, out, 0, nil)
	if out.Query || errors.Is(err, ck.CKR_BUFFER_TOO_SMALL) {
		*c = wrapCache{mech: mech.Type, wrapping: wrappingH, wrapped: keyH, pending: wrapped, hasResult: true}
	}
	return n, err
}

// wrapEvent records a wrap of key by wrapping (CN_WRAP_KEY).
func wrapEvent(key, wrapping ck.ULong, code int) audit.Event {
	e := keyEvent(audit.CN_WRAP_KEY, uint64(key), 0, code)
	e.Detail = fmt.Sprintf("wrapped by key %d", wrapping)
	return e
}

// UnwrapKey answers C_UnwrapKey.
func (m *Module) UnwrapKey(h ck.ULong, mech Mechanism, unwrappingH ck.ULong, wrapped []byte, tmpl attrs.Template) (_ ck.ULong, err error) {
	if s, t0 := m.begin(h); s != nil {
		defer s.record(s.mechClass(opDecrypt, mech.Type), t0, &err)
	}
	se, err := m.session(h)
	if err != nil {
		return 0, err
	}
	if err := se.slot.fault(cluster.FuncUnwrapKey); err != nil {
		return 0, err
	}
	mm, rule, ok := se.slot.prof.Mechanisms.Lookup(mech.Type)
	if !ok || mm.Unwrap == nil {
		return 0, fmt.Errorf("token: %v cannot unwrap: %w", mech.Type, ck.CKR_MECHANISM_INVALID)
	}
	if err := rule.CheckParam(mech.Param); err != nil {
		return 0, err
	}
	s := se.slot
	s.mu.Lock()
	if err := se.allowLocked(actCreateKey); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	uo, ukey, err := s.usableKeyLocked(unwrappingH, mm, ck.CKA_UNWRAP, ck.CKR_UNWRAPPING_KEY_HANDLE_INVALID, ck.CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT)
	if err == nil {
		err = s.keyGateLocked(uo, quorum.KeyManagement, uo.manageQuorum)
	}
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if tmpl, err = withKeyTemplate(tmpl, uo, ck.CKA_UNWRAP_TEMPLATE); err != nil {
		return 0, err
	}
	class, keyType, err := attrs.ClassAndKeyType(tmpl)
	if err != nil {
		return 0, err
	}
	if class != ck.CKO_SECRET_KEY && class != ck.CKO_PRIVATE_KEY {
		return 0, fmt.Errorf("token: unwrap to %v: %w", class, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	// Built over the schema's prototype (docs/design.md, "Objects across
	// processes"), as a generated key's.
	made, err := attrs.BuildAttrs(s.attrPolicy(), attrs.OpUnwrap, class, keyType, mech.Type, tmpl)
	if err != nil {
		return 0, err
	}
	// The new key is made on an HSM that holds the unwrapping key.
	origin, err := s.admitKey(unwrappingH, useClass(opDecrypt, uo.keyType))
	if err != nil {
		return 0, err
	}
	material, err := mm.Unwrap(ukey, mech.Param, wrapped)
	if err != nil {
		return 0, err
	}
	var mat attrs.Template
	if class == ck.CKO_SECRET_KEY {
		if n, ok := made.ULong(ck.CKA_VALUE_LEN); ok && n > 0 && int(n) < len(material) {
			// Mechanisms that pad (CBC-PAD of a key, raw RSA) give the
			// length through CKA_VALUE_LEN (spec 5.18.3).
			material = material[:n]
		}
		mat = attrs.Template{ck.CKA_VALUE: material}
	} else {
		if len(material) > maxPKCS8 {
			clear(material)
			return 0, fmt.Errorf("token: unwrapped private key of %d bytes (at most %d): %w", len(material), maxPKCS8, ck.CKR_WRAPPED_KEY_LEN_RANGE)
		}
		key, err := x509.ParsePKCS8PrivateKey(material)
		clear(material)
		if err != nil {
			return 0, fmt.Errorf("token: unwrapped data is not a PKCS#8 private key: %v: %w", err, ck.CKR_WRAPPED_KEY_INVALID)
		}
		if mat, err = attrs.TemplateFromKey(key); err != nil {
			return 0, err
		}
	}
	if err = attrs.AddMaterialTo(&made, mat); err != nil {
		if errors.Is(err, ck.CKR_ATTRIBUTE_VALUE_INVALID) || errors.Is(err, ck.CKR_TEMPLATE_INCONSISTENT) {
			return 0, fmt.Errorf("token: unwrapped key does not fit the template: %v: %w", err, ck.CKR_TEMPLATE_INCONSISTENT)
		}
		return 0, err
	}
	if _, err := attrs.KeyFromTemplate(class, keyType, &made); err != nil {
		return 0, fmt.Errorf("token: unwrapped key: %v: %w", err, ck.CKR_WRAPPED_KEY_INVALID)
	}
	if err := s.checkKeyLimits(class, keyType, &made); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.addObjectLocked(se, audit.CN_UNWRAP_KEY, origin, made)
	if err != nil {
		return 0, err
	}
	return o.h, nil
}

// maxPKCS8 bounds an unwrapped private key's PKCS#8 encoding, checked
// before it is parsed (parsing checks the key, which for an RSA key costs
// time that grows with the cube of its size): a 16384-bit RSA key, the
// largest the token keeps (mechanisms.RSAMaxKeyBits), takes about 9,300
// bytes; every EC key far less.
const maxPKCS8 = 10 << 10

// DeriveKey answers C_DeriveKey.
func (m *Module) DeriveKey(h ck.ULong, mech Mechanism, baseH ck.ULong, tmpl attrs.Template) (_ ck.ULong, err error) {
	if s, t0 := m.begin(h); s != nil {
		defer s.record(s.mechClass(opDecrypt, mech.Type), t0, &err)
	}
	se, err := m.session(h)
	if err != nil {
		return 0, err
	}
	if err := se.slot.fault(cluster.FuncDeriveKey); err != nil {
		return 0, err
	}
	mm, _, ok := se.slot.prof.Mechanisms.Lookup(mech.Type)
	if !ok || mm.Derive == nil {
		return 0, fmt.Errorf("token: %v cannot derive: %w", mech.Type, ck.CKR_MECHANISM_INVALID)
	}
	s := se.slot
	s.mu.Lock()
	if err := se.allowLocked(actCreateKey); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	bo, bkey, err := s.usableKeyLocked(baseH, mm, ck.CKA_DERIVE, ck.CKR_KEY_HANDLE_INVALID, ck.CKR_KEY_TYPE_INCONSISTENT)
	if err == nil && !s.mayExportLocked(bo) {
		// CloudHSM: a user a key is shared with may not derive from it.
		err = fmt.Errorf("token: key %d belongs to %q: only its owner may derive from it: %w", baseH, bo.owner, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	}
	var param any
	var paramKeys []*Object
	if err == nil {
		param, paramKeys, err = s.resolveParamLocked(mech.Param)
	}
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if tmpl == nil {
		tmpl = attrs.Template{} // no attributes: everything by default
	}
	if tmpl, err = withKeyTemplate(tmpl, bo, ck.CKA_DERIVE_TEMPLATE); err != nil {
		return 0, err
	}
	// The keys whose values the derived key comes from: their
	// CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE bound the derived
	// key's, and for a mechanism whose value holds their bytes, their
	// CKA_SENSITIVE and CKA_EXTRACTABLE too (mechanisms.Mechanism.DeriveHidesBase).
	sources := []attrs.Reader{&bo.attrs}
	for _, o := range paramKeys {
		sources = append(sources, &o.attrs)
	}
	if !mm.DeriveHidesBase {
		if tmpl, err = attrs.InheritProtection(tmpl, sources...); err != nil {
			return 0, err
		}
	}
	class := ck.CKO_SECRET_KEY
	if mech.Type == ck.CKM_HKDF_DATA {
		class = ck.CKO_DATA // spec 2.43.5: HKDF_DATA derives a data object
	}
	if c, ok := tmpl.ULong(ck.CKA_CLASS); ok && ck.ObjectClass(c) != class {
		return 0, fmt.Errorf("token: %v derives %v, not %v: %w", mech.Type, class, ck.ObjectClass(c), ck.CKR_TEMPLATE_INCONSISTENT)
	}
	keyType := ck.KeyType(ck.CKK_GENERIC_SECRET)
	if kt, ok := tmpl.ULong(ck.CKA_KEY_TYPE); ok {
		keyType = ck.KeyType(kt)
	}
	target := mechanisms.DeriveTarget{KeyType: keyType}
	if vl, ok := tmpl.ULong(ck.CKA_VALUE_LEN); ok {
		target.ValueLen = int(vl)
	}
	// The new key is made on an HSM that holds the base key.
	origin, err := s.admitKey(baseH, useClass(opDecrypt, bo.keyType))
	if err != nil {
		return 0, err
	}
	value, err := mm.Derive(bkey, param, target)
	if err != nil {
		return 0, err
	}
	// The new object's attributes are built over its schema's prototype
	// (docs/design.md, "Objects across processes"), as a KEM key's.
	var made attrs.Attrs
	if class == ck.CKO_DATA {
		t := tmpl.Clone()
		// CKA_VALUE_LEN gave the output length; data objects have no such
		// attribute.
		delete(t, ck.CKA_VALUE_LEN)
		if _, ok := t[ck.CKA_PRIVATE]; !ok {
			// A data object's CKA_PRIVATE defaults to CK_FALSE (§4.4
			// leaves it to the token), which for key material derived
			// from a private key would make it readable by anyone: it
			// follows the base key unless the template says.
			priv, _ := bo.attrs.Bool(ck.CKA_PRIVATE)
			t[ck.CKA_PRIVATE] = attrs.Bool(priv)
		}
		t[ck.CKA_CLASS] = attrs.ULong(ck.ULong(ck.CKO_DATA))
		t[ck.CKA_VALUE] = value
		if made, err = attrs.BuildAttrs(nil, attrs.OpCreate, ck.CKO_DATA, 0, mech.Type, t); err != nil {
			return 0, err
		}
	} else {
		t := tmpl.Clone()
		t[ck.CKA_KEY_TYPE] = attrs.ULong(ck.ULong(keyType))
		if made, err = attrs.BuildAttrs(s.attrPolicy(), attrs.OpDerive, class, keyType, mech.Type, t); err != nil {
			return 0, err
		}
		if err = attrs.AddValueTo(&made, value); err != nil {
			return 0, err
		}
		attrs.SetDeriveBaseOf(&made, sources...)
		if err := s.checkKeyLimits(class, keyType, &made); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.addObjectLocked(se, audit.CN_DERIVE_KEY, origin, made)
	if err != nil {
		return 0, err
	}
	return o.h, nil
}

// DigestKey answers C_DigestKey: a secret key's value continues the digest.
func (m *Module) DigestKey(h, keyH ck.ULong) (err error) {
	se, op, err := m.activeOp(h, opDigest)
	if err != nil {
		return err
	}
	defer se.done(opDigest, &err, false, false)
	if err = multiPart(op); err != nil {
		return err
	}
	s := se.slot
	s.mu.Lock()
	o, err := s.visibleObjectLocked(keyH, ck.CKR_KEY_HANDLE_INVALID)
	if err == nil && o.class != ck.CKO_SECRET_KEY {
		err = fmt.Errorf("token: only secret keys can be digested: %w", ck.CKR_KEY_INDIGESTIBLE)
	}
	if err == nil && len(o.sealed) > 0 {
		err = fmt.Errorf("token: key %d sealed without login: %w", keyH, ck.CKR_USER_NOT_LOGGED_IN)
	}
	if err == nil && !s.mayExportLocked(o) {
		err = fmt.Errorf("token: key %d belongs to %q: only its owner may digest it: %w", keyH, o.owner, ck.CKR_KEY_INDIGESTIBLE)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if x, _ := o.attrs.Bool(ck.CKA_EXTRACTABLE); !x {
		// Digesting a key reveals a function of its value; like SoftHSM and
		// the spec's CKR_KEY_INDIGESTIBLE, refuse keys that may not leave.
		return fmt.Errorf("token: key %d is not extractable: %w", keyH, ck.CKR_KEY_INDIGESTIBLE)
	}
	if sd, ok := op.digester.(mechanisms.SecretDigester); ok {
		// Not pooled afterwards: the state's buffer may keep the key's tail.
		return sd.UpdateSecret(o.attrs.Bytes(ck.CKA_VALUE))
	}
	return op.digester.Update(o.attrs.Bytes(ck.CKA_VALUE))
}
