package token

import (
	"fmt"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
	"gohsm/token/audit"
)

// Key encapsulation (PKCS #11 3.2, C_EncapsulateKey / C_DecapsulateKey):
// a KEM public key makes a ciphertext and a new secret key; the matching
// private key turns the ciphertext back into the same secret. The new key
// is made like a derived key (DeriveKey): the caller's template, completed
// by the key's CKA_ENCAPSULATE_TEMPLATE / CKA_DECAPSULATE_TEMPLATE, checked
// by the attribute tables for C_DeriveKey, CKA_LOCAL CK_FALSE, owned and
// sealed like any key the user makes. Its value is the KEM's shared secret
// (32 bytes for ML-KEM): CKA_VALUE_LEN, if given, must say so.
//
// CKA_ALWAYS_SENSITIVE / CKA_NEVER_EXTRACTABLE: a decapsulated key's follow
// the private key's (CK_FALSE when the private key's are), as a derived
// key's follow its base key's; an encapsulated key's follow its own
// CKA_SENSITIVE / CKA_EXTRACTABLE, as for a generated key, since a public
// key protects nothing.

// EncapsulateKey answers C_EncapsulateKey. A length query (out.Query) or a
// short buffer answers the ciphertext length and makes no key.
func (m *Module) EncapsulateKey(h ck.ULong, mech Mechanism, pubH ck.ULong, tmpl attrs.List, out Out) (n int, keyH ck.ULong, err error) {
	if s, t0 := m.begin(h); s != nil {
		defer s.record(s.mechClass(opEncrypt, mech.Type), t0, &err)
	}
	se, err := m.session(h)
	if err != nil {
		return 0, 0, err
	}
	mm, _, ok := se.slot.prof.Mechanisms.Lookup(mech.Type)
	if !ok || mm.Encapsulate == nil {
		return 0, 0, fmt.Errorf("token: %v cannot encapsulate: %w", mech.Type, ck.CKR_MECHANISM_INVALID)
	}
	s := se.slot
	s.mu.Lock()
	if err := se.allowLocked(actCreateKey); err != nil {
		s.mu.Unlock()
		return 0, 0, err
	}
	po, pkey, err := s.usableKeyLocked(pubH, mm, ck.CKA_ENCAPSULATE, ck.CKR_KEY_HANDLE_INVALID, ck.CKR_KEY_TYPE_INCONSISTENT)
	s.mu.Unlock()
	if err != nil {
		return 0, 0, err
	}
	if po.class != ck.CKO_PUBLIC_KEY {
		return 0, 0, fmt.Errorf("token: key %d is not a public key: %w", pubH, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	size := mm.CiphertextSize(pkey)
	if out.Query {
		return size, 0, nil
	}
	if len(out.Buf) < size {
		return size, 0, fmt.Errorf("token: ciphertext of %d bytes, buffer of %d: %w", size, len(out.Buf), ck.CKR_BUFFER_TOO_SMALL)
	}
	full, keyType, err := kemKeyTemplate(s, mech.Type, tmpl, po, ck.CKA_ENCAPSULATE_TEMPLATE)
	if err != nil {
		return 0, 0, err
	}
	origin, err := s.admitKey(pubH, useClass(opEncrypt, po.keyType))
	if err != nil {
		return 0, 0, err
	}
	secret, ct, err := mm.Encapsulate(pkey, mech.Param)
	if err != nil {
		return 0, 0, err
	}
	defer clear(secret)
	if err = kemWithSecret(s, &full, keyType, secret); err != nil {
		return 0, 0, err
	}
	s.mu.Lock()
	o, err := s.addObjectLocked(se, audit.CN_DERIVE_KEY, origin, full)
	s.mu.Unlock()
	if err != nil {
		return 0, 0, err
	}
	return copy(out.Buf, ct), o.h, nil
}

// DecapsulateKey answers C_DecapsulateKey.
func (m *Module) DecapsulateKey(h ck.ULong, mech Mechanism, privH ck.ULong, tmpl attrs.List, ciphertext []byte) (_ ck.ULong, err error) {
	if s, t0 := m.begin(h); s != nil {
		defer s.record(s.mechClass(opDecrypt, mech.Type), t0, &err)
	}
	se, err := m.session(h)
	if err != nil {
		return 0, err
	}
	mm, _, ok := se.slot.prof.Mechanisms.Lookup(mech.Type)
	if !ok || mm.Decapsulate == nil {
		return 0, fmt.Errorf("token: %v cannot decapsulate: %w", mech.Type, ck.CKR_MECHANISM_INVALID)
	}
	s := se.slot
	s.mu.Lock()
	if err := se.allowLocked(actCreateKey); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	ko, key, err := s.usableKeyLocked(privH, mm, ck.CKA_DECAPSULATE, ck.CKR_KEY_HANDLE_INVALID, ck.CKR_KEY_TYPE_INCONSISTENT)
	if err == nil && ko.class != ck.CKO_PRIVATE_KEY {
		err = fmt.Errorf("token: key %d is not a private key: %w", privH, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	if err == nil && !s.mayExportLocked(ko) {
		// As for C_DeriveKey: a user a key is shared with may use it, but
		// not turn it into key material of their own.
		err = fmt.Errorf("token: key %d belongs to %q: only its owner may decapsulate with it: %w", privH, ko.owner, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	}
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	full, keyType, err := kemKeyTemplate(s, mech.Type, tmpl, ko, ck.CKA_DECAPSULATE_TEMPLATE)
	if err != nil {
		return 0, err
	}
	origin, err := s.admitKey(privH, useClass(opDecrypt, ko.keyType))
	if err != nil {
		return 0, err
	}
	secret, err := mm.Decapsulate(key, mech.Param, ciphertext)
	if err != nil {
		return 0, err
	}
	defer clear(secret)
	if err = kemWithSecret(s, &full, keyType, secret); err != nil {
		return 0, err
	}
	attrs.SetDeriveBaseOf(&full, &ko.attrs) // full is this key's alone
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.addObjectLocked(se, audit.CN_DERIVE_KEY, origin, full)
	if err != nil {
		return 0, err
	}
	return o.h, nil
}

// kemKeyTemplate builds the new secret key's attributes from the caller's
// template, as the caller gave it (the C boundary makes no map of it), and
// the KEM key's template attribute (which), before its value is known.
func kemKeyTemplate(s *Slot, mech ck.MechanismType, tmpl attrs.List, key *Object, which ck.AttributeType) (attrs.Attrs, ck.KeyType, error) {
	if len(key.attrs.Bytes(which)) > 0 {
		// Rare: the key's template completes the caller's (withKeyTemplate,
		// C_DeriveKey's and C_UnwrapKey's rule too), through a map.
		t, err := withKeyTemplate(tmpl.Template(), key, which)
		if err != nil {
			return attrs.Attrs{}, 0, err
		}
		tmpl = attrs.ListOf(t)
	}
	if c, ok := tmpl.ULong(ck.CKA_CLASS); ok && ck.ObjectClass(c) != ck.CKO_SECRET_KEY {
		return attrs.Attrs{}, 0, fmt.Errorf("token: %v makes a secret key, not %v: %w", mech, ck.ObjectClass(c), ck.CKR_TEMPLATE_INCONSISTENT)
	}
	keyType := ck.KeyType(ck.CKK_GENERIC_SECRET)
	kt, ok := tmpl.ULong(ck.CKA_KEY_TYPE)
	if ok {
		keyType = ck.KeyType(kt)
	}
	if vl, ok := tmpl.ULong(ck.CKA_VALUE_LEN); ok && vl != mechanisms.MLKEMSharedKeySize {
		return attrs.Attrs{}, 0, fmt.Errorf("token: %v makes a %d-byte secret, CKA_VALUE_LEN says %d: %w", mech, mechanisms.MLKEMSharedKeySize, vl, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	var buf [16]attrs.Value
	if _, given := tmpl.Get(ck.CKA_KEY_TYPE); !given {
		// A copy that says the key type: BuildAttrsList copies the values
		// it keeps, and the caller's template stays as it was.
		tmpl = append(append(attrs.List(buf[:0]), tmpl...), attrs.Value{Type: ck.CKA_KEY_TYPE, V: attrs.ULong(ck.ULong(keyType))})
	}
	full, err := attrs.BuildAttrsList(s.attrPolicy(), attrs.OpDerive, ck.CKO_SECRET_KEY, keyType, mech, tmpl)
	if err != nil {
		return attrs.Attrs{}, 0, err
	}
	return full, keyType, nil
}

// kemWithSecret completes a new key's attributes with its value: full,
// which kemKeyTemplate made for this key alone, is completed in place.
func kemWithSecret(s *Slot, full *attrs.Attrs, keyType ck.KeyType, secret []byte) error {
	if err := attrs.AddValueTo(full, secret); err != nil {
		return err
	}
	return s.checkKeyLimits(ck.CKO_SECRET_KEY, keyType, full)
}
