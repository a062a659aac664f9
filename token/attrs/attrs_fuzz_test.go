package attrs

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"maps"
	"testing"

	"gohsm/internal/ck"
)

// rvOK: every error the package returns carries a ck.RV (house rule).
func rvOK(t *testing.T, what string, err error) {
	t.Helper()
	var rv ck.RV
	if err != nil && !errors.As(err, &rv) {
		t.Fatalf("%s: error without a CK_RV: %v", what, err)
	}
}

// fuzzSeeds are encoded templates of every key family, the public and
// private halves made from real keys, and a data object.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	var out [][]byte
	add := func(class ck.ObjectClass, kt ck.KeyType, key any) {
		t, err := TemplateFromKey(key)
		if err != nil {
			f.Fatal(err)
		}
		t[ck.CKA_CLASS] = ULong(ck.ULong(class))
		t[ck.CKA_KEY_TYPE] = ULong(ck.ULong(kt))
		out = append(out, EncodeTemplate(t))
	}
	add(ck.CKO_SECRET_KEY, ck.CKK_AES, bytes.Repeat([]byte{7}, 32))
	add(ck.CKO_SECRET_KEY, ck.CKK_GENERIC_SECRET, bytes.Repeat([]byte{8}, 20))
	add(ck.CKO_SECRET_KEY, ck.CKK_DES3, bytes.Repeat([]byte{9}, 24))
	rk, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		f.Fatal(err)
	}
	add(ck.CKO_PRIVATE_KEY, ck.CKK_RSA, rk)
	add(ck.CKO_PUBLIC_KEY, ck.CKK_RSA, &rk.PublicKey)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	add(ck.CKO_PRIVATE_KEY, ck.CKK_EC, ek)
	add(ck.CKO_PUBLIC_KEY, ck.CKK_EC, &ek.PublicKey)
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	add(ck.CKO_PRIVATE_KEY, ck.CKK_EC_EDWARDS, edk)
	add(ck.CKO_PUBLIC_KEY, ck.CKK_EC_EDWARDS, edk.Public())
	xk, _ := ecdh.X25519().GenerateKey(rand.Reader)
	add(ck.CKO_PRIVATE_KEY, ck.CKK_EC_MONTGOMERY, xk)
	add(ck.CKO_PUBLIC_KEY, ck.CKK_EC_MONTGOMERY, xk.PublicKey())
	out = append(out, EncodeTemplate(Template{ck.CKA_CLASS: ULong(ck.ULong(ck.CKO_DATA)), ck.CKA_VALUE: []byte("x"),
		ck.CKA_LABEL: []byte("l"), ck.CKA_TOKEN: Bool(true)}))
	out = append(out, nil, []byte{1, 2, 3}, make([]byte, 16))
	return out
}

// FuzzDecodeTemplate: the nested-template encoding (CKA_WRAP_TEMPLATE...)
// decodes or fails with CKR_ATTRIBUTE_VALUE_INVALID; what decodes encodes
// back to a template that decodes to the same, and owns its bytes.
// Seeds: testdata/fuzz/FuzzDecodeTemplate.
func FuzzDecodeTemplate(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tm, err := DecodeTemplate(b)
		if err != nil {
			if !errors.Is(err, ck.CKR_ATTRIBUTE_VALUE_INVALID) {
				t.Fatalf("error %v, want CKR_ATTRIBUTE_VALUE_INVALID", err)
			}
			return
		}
		enc := EncodeTemplate(tm)
		if len(enc) != len(b) {
			t.Fatalf("re-encoded %d bytes from %d", len(enc), len(b))
		}
		for i := range b {
			b[i] ^= 0xff
		}
		again, err := DecodeTemplate(enc)
		if err != nil || len(again) != len(tm) {
			t.Fatalf("re-decoding: %v, %d attributes want %d", err, len(again), len(tm))
		}
		for a, v := range tm {
			if !bytes.Equal(again[a], v) {
				t.Fatalf("%s: %x after a round trip, want %x (or the decoded value aliases its input)", a, again[a], v)
			}
		}
	})
}

// FuzzTemplateRules: any template through the validator for every
// operation, then set, copy, read and key conversion on what it builds. No
// panic; every error carries a CK_RV. Seeds: testdata/fuzz/FuzzTemplateRules.
func FuzzTemplateRules(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(uint8(OpCreate), uint64(ck.CKM_AES_KEY_GEN), s, s)
	}
	f.Fuzz(func(t *testing.T, op uint8, mech uint64, tb, changes []byte) {
		tm, err := DecodeTemplate(tb)
		if err != nil {
			return
		}
		ch, err := DecodeTemplate(changes)
		if err != nil {
			ch = Template{}
		}
		class, kt, err := ClassAndKeyType(tm)
		rvOK(t, "ClassAndKeyType", err)
		if err != nil {
			return
		}
		o := Op(op%8 + 0) // 0 and 7 (OpSet) are not creating operations
		buildListAsMap(t, o, class, kt, ck.MechanismType(mech), tm, ch)
		obj, err := Build(o, class, kt, ck.MechanismType(mech), tm)
		rvOK(t, "Build", err)
		if err != nil {
			return
		}
		if c, k, err := ClassAndKeyType(obj); err != nil || c != class || k != kt && class != ck.CKO_DATA && class != ck.CKO_CERTIFICATE {
			t.Fatalf("built %s %s, reads back as %s %s: %v", class, kt, c, k, err)
		}
		// The compact form reads back as the map.
		x, err := BuildAttrs(nil, o, class, kt, ck.MechanismType(mech), tm)
		if err != nil || !maps.EqualFunc(obj, x.Template(), bytes.Equal) || x.Len() != len(obj) {
			t.Fatalf("BuildAttrs differs from Build: %v", err)
		}
		for _, a := range obj.Types() {
			rvOK(t, "Readable", Readable(obj, a))
			_ = IsSecret(class, kt, a)
		}
		if err := CheckSet(obj, ch); err == nil {
			obj2 := ApplySet(obj, ch)
			if c, _, err := ClassAndKeyType(obj2); err != nil || c != class {
				t.Fatalf("an accepted C_SetAttributeValue changed the class: %v", err)
			}
		} else {
			rvOK(t, "CheckSet", err)
		}
		_, err = CheckCopy(obj, ch)
		rvOK(t, "CheckCopy", err)
		if kt != NoKeyType {
			_, err := KeyFromTemplate(class, kt, obj)
			rvOK(t, "KeyFromTemplate", err)
		}
		fuzzUnderPolicy(t, o, class, kt, ck.MechanismType(mech), tm, ch)
	})
}

// buildListAsMap: BuildAttrsList of a List with earlier values of some
// types (ch's, then tm's) builds what BuildAttrs of the map the List
// makes (tm over ch) builds, or fails with the same error.
func buildListAsMap(t *testing.T, o Op, class ck.ObjectClass, kt ck.KeyType, mech ck.MechanismType, tm, ch Template) {
	l := append(ListOf(ch), ListOf(tm)...)
	m := l.Template()
	want, werr := BuildAttrs(nil, o, class, kt, mech, m)
	got, gerr := BuildAttrsList(nil, o, class, kt, mech, l)
	if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
		t.Fatalf("BuildAttrs: %v, BuildAttrsList: %v", werr, gerr)
	}
	if werr == nil && !maps.EqualFunc(want.Template(), got.Template(), bytes.Equal) {
		t.Fatalf("BuildAttrsList differs from BuildAttrs")
	}
}

// fuzzUnderPolicy runs the template through the cloudhsm profile's
// policy: every error carries a CK_RV; the policy only refuses more and
// changes defaults, so what it builds the tables build too; what it
// builds has its fixed values and none of its unsupported attributes
// given by the template.
func fuzzUnderPolicy(t *testing.T, o Op, class ck.ObjectClass, kt ck.KeyType, mech ck.MechanismType, tm, ch Template) {
	p := cloudhsmPolicy(t)
	obj, err := BuildWith(p, o, class, kt, mech, tm)
	rvOK(t, "BuildWith", err)
	if err != nil {
		return
	}
	if _, err := Build(o, class, kt, mech, tm); err != nil {
		t.Fatalf("the policy built what the tables refuse: %v", err)
	}
	for a, want := range p.Fixed[class] {
		if v, ok := obj.Bool(a); ok && v != want {
			t.Fatalf("built %s with %s %v, fixed at %v", class, a, v, want)
		}
	}
	if isKeyClass(class) {
		for _, a := range p.Unsupported {
			if _, given := tm[a]; given {
				t.Fatalf("built with unsupported %s given", a)
			}
		}
	}
	for _, a := range obj.Types() {
		rvOK(t, "ReadableWith", ReadableWith(p, obj, a))
	}
	rvOK(t, "CheckSetWith", CheckSetWith(p, obj, ch))
}

// FuzzKeyFromTemplate: key material as the store holds it (or a client
// imports it) converts to a key or fails with a CK_RV; a key converts back
// to a template that converts again. Seeds: testdata/fuzz/FuzzKeyFromTemplate.
func FuzzKeyFromTemplate(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tm, err := DecodeTemplate(b)
		if err != nil {
			return
		}
		class, _ := tm.ULong(ck.CKA_CLASS)
		kt, _ := tm.ULong(ck.CKA_KEY_TYPE)
		k, err := KeyFromTemplate(ck.ObjectClass(class), ck.KeyType(kt), tm)
		rvOK(t, "KeyFromTemplate", err)
		if err != nil {
			return
		}
		back, err := TemplateFromKey(k)
		if err != nil {
			t.Fatalf("TemplateFromKey(%T) of a converted key: %v", k, err)
		}
		if _, err := KeyFromTemplate(ck.ObjectClass(class), ck.KeyType(kt), back); err != nil {
			t.Fatalf("a key's own template does not convert again: %v", err)
		}
		_ = CheckValue(ck.KeyType(kt), tm[ck.CKA_VALUE])
	})
}
