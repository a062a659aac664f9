package attrs

import (
	"bytes"
	"testing"

	"gohsm/internal/ck"
)

// BenchmarkBuildKEMKey: the attributes of a C_EncapsulateKey AES key
// built as a map (BuildWith, AddMaterial, SetDeriveBase: the prototype
// cloned) and as an Attrs (BuildAttrs, AddMaterialTo, SetDeriveBaseOf:
// the prototype shared), then read as C_GetAttributeValue and a use
// check would.
func BenchmarkBuildKEMKey(b *testing.B) {
	tmpl := Template{ck.CKA_KEY_TYPE: ULong(ck.ULong(ck.CKK_AES)), ck.CKA_ENCRYPT: Bool(true)}
	value := bytes.Repeat([]byte{3}, 32)
	base := Template{ck.CKA_ALWAYS_SENSITIVE: Bool(true), ck.CKA_NEVER_EXTRACTABLE: Bool(true)}
	reads := []ck.AttributeType{ck.CKA_CLASS, ck.CKA_ENCRYPT, ck.CKA_LABEL, ck.CKA_VALUE_LEN, ck.CKA_ALLOWED_MECHANISMS}
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t, err := BuildWith(nil, OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_ML_KEM, tmpl)
			if err != nil {
				b.Fatal(err)
			}
			if t, err = AddMaterial(t, Template{ck.CKA_VALUE: value}); err != nil {
				b.Fatal(err)
			}
			t = SetDeriveBase(t, base)
			for _, a := range reads {
				_, _ = t.Get(a)
			}
		}
	})
	b.Run("attrs", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			x, err := BuildAttrs(nil, OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_ML_KEM, tmpl)
			if err != nil {
				b.Fatal(err)
			}
			if err := AddMaterialTo(&x, Template{ck.CKA_VALUE: value}); err != nil {
				b.Fatal(err)
			}
			SetDeriveBaseOf(&x, base)
			for _, a := range reads {
				_, _ = x.Get(a)
			}
		}
	})
}

// BenchmarkReadKEMKey: what C_GetAttributeValue does per attribute
// (Readable: the object's class and key type, CKA_SENSITIVE and
// CKA_EXTRACTABLE for key material; then the value), for eight
// attributes of a C_EncapsulateKey AES key held as a map and as an Attrs.
func BenchmarkReadKEMKey(b *testing.B) {
	tmpl := Template{ck.CKA_KEY_TYPE: ULong(ck.ULong(ck.CKK_AES)), ck.CKA_ENCRYPT: Bool(true)}
	value := bytes.Repeat([]byte{3}, 32)
	t, err := BuildWith(nil, OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_ML_KEM, tmpl)
	if err != nil {
		b.Fatal(err)
	}
	if t, err = AddMaterial(t, Template{ck.CKA_VALUE: value}); err != nil {
		b.Fatal(err)
	}
	t[ck.CKA_UNIQUE_ID] = []byte("0123456789abcdef0123456789abcdef")
	x, err := BuildAttrs(nil, OpDerive, ck.CKO_SECRET_KEY, ck.CKK_AES, ck.CKM_ML_KEM, tmpl)
	if err != nil {
		b.Fatal(err)
	}
	if err := AddMaterialTo(&x, Template{ck.CKA_VALUE: value}); err != nil {
		b.Fatal(err)
	}
	x.Put(ck.CKA_UNIQUE_ID, []byte("0123456789abcdef0123456789abcdef"))
	types := []ck.AttributeType{ck.CKA_CLASS, ck.CKA_KEY_TYPE, ck.CKA_LABEL, ck.CKA_ENCRYPT,
		ck.CKA_VALUE_LEN, ck.CKA_CHECK_VALUE, ck.CKA_VALUE, ck.CKA_UNIQUE_ID}
	read := func(r Reader) func(b *testing.B) {
		return func(b *testing.B) {
			n := 0
			for b.Loop() {
				for _, a := range types {
					if Readable(r, a) == nil {
						v, _ := r.Get(a)
						n += len(v)
					}
				}
			}
			if n == 0 {
				b.Fatal("nothing read")
			}
		}
	}
	b.Run("map", read(t))
	b.Run("attrs", read(&x))
}
