package pkcs11

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// attrArray lays out a CK_ATTRIBUTE array in C memory: each value in a
// block of its own (nil: pValue NULL with length 0).
func attrArray(a *cArena, types []ck.AttributeType, values [][]byte) unsafe.Pointer {
	p := a.alloc(len(types)*int(attrLayout.size), nil)
	for i, t := range types {
		at := unsafe.Add(p, uintptr(i)*attrLayout.size)
		putWord(at, 0, uint64(t))
		if values[i] != nil {
			putWord(at, attrLayout.fields[0].ptr, uint64(uintptr(a.alloc(len(values[i]), values[i]))))
		}
		putWord(at, attrLayout.fields[0].n, uint64(len(values[i])))
	}
	return p
}

func ulongBytes(v ck.ULong) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(v)) }

// kemKeyTemplateC is p11bench's template of the key C_EncapsulateKey and
// C_DecapsulateKey make (cmd/p11bench setup.go, kemSecretAttrs).
func kemKeyTemplateC(a *cArena) unsafe.Pointer {
	return attrArray(a,
		[]ck.AttributeType{ck.CKA_CLASS, ck.CKA_KEY_TYPE, ck.CKA_TOKEN, ck.CKA_SENSITIVE, ck.CKA_ENCRYPT, ck.CKA_DECRYPT},
		[][]byte{ulongBytes(ck.ULong(ck.CKO_SECRET_KEY)), ulongBytes(ck.ULong(ck.CKK_AES)), {0}, {1}, {1}, {1}})
}

// TestTemplateOneBuffer: a template's values are copied into one buffer,
// each capped at its length (an append cannot reach the next value), not
// aliasing the caller's memory; an empty value is present and not nil; a
// type given twice keeps the later value. Decoding p11bench's ML-KEM key
// template takes 3 allocations (the map, its group, the values) where one
// per value made 8.
func TestTemplateOneBuffer(t *testing.T) {
	a := &cArena{}
	defer a.free()
	p := attrArray(a,
		[]ck.AttributeType{ck.CKA_LABEL, ck.CKA_ID, ck.CKA_ENCRYPT, ck.CKA_LABEL, ck.CKA_SUBJECT},
		[][]byte{[]byte("first"), nil, {1}, []byte("second"), {}})
	tm, err := decodeTemplateAt(p, 5)
	require.NoError(t, err)
	a.scribble()
	require.Equal(t, attrs.Template{
		ck.CKA_LABEL: []byte("second"), ck.CKA_ID: {}, ck.CKA_ENCRYPT: {1}, ck.CKA_SUBJECT: {},
	}, tm)
	for typ, v := range tm {
		require.NotNil(t, v, "%v", typ)
		require.Equal(t, len(v), cap(v), "%v is not capped", typ)
	}
	// Appending to one value leaves the others as they were.
	_ = append(tm[ck.CKA_ENCRYPT], 'x')
	require.Equal(t, []byte("second"), tm[ck.CKA_LABEL])

	kp := kemKeyTemplateC(a)
	kt, err := decodeTemplateAt(kp, 6)
	require.NoError(t, err)
	require.Len(t, kt, 6)
	require.Equal(t, []byte{1}, kt[ck.CKA_SENSITIVE])
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := decodeTemplateAt(kp, 6); err != nil {
			t.Fatal(err)
		}
	})
	require.LessOrEqual(t, allocs, 3.0, "allocations per decoded 6-attribute template")
}

// TestTemplateBadValueFirst: with the values checked before any is
// copied, the first bad value in the template's order is still the one
// reported, and a NULL value with a length is CKR_ARGUMENTS_BAD.
func TestTemplateBadValueFirst(t *testing.T) {
	a := &cArena{}
	defer a.free()
	p := attrArray(a, []ck.AttributeType{ck.CKA_LABEL, ck.CKA_ID}, [][]byte{[]byte("ok"), nil})
	at := unsafe.Add(p, attrLayout.size)
	putWord(at, attrLayout.fields[0].n, 4) // CKA_ID: NULL, 4 bytes
	_, err := decodeTemplateAt(p, 2)
	require.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD)
	require.Contains(t, err.Error(), "NULL buffer of 4 bytes")
	putWord(at, attrLayout.fields[0].n, maxCopyIn+1)
	_, err = decodeTemplateAt(p, 2)
	require.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD)
	require.Contains(t, err.Error(), "at most")
}

// BenchmarkTemplate: the boundary's decoding of p11bench's ML-KEM key
// template (docs/bench.md, "ML-KEM-768: the caller's path, second pass").
func BenchmarkTemplate(b *testing.B) {
	a := &cArena{}
	defer a.free()
	kp := kemKeyTemplateC(a)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeTemplateAt(kp, 6); err != nil {
			b.Fatal(err)
		}
	}
}

// TestKEMTemplateList: C_EncapsulateKey's and C_DecapsulateKey's template
// is decoded into a List on the caller's stack, in the caller's order,
// each value a copy: one allocation per call (the values) for p11bench's
// 6-attribute template, where the pooled map it replaces took one and a
// map of its own three; a template longer than the stack's room works
// alike.
func TestKEMTemplateList(t *testing.T) {
	a := &cArena{}
	defer a.free()
	kp := kemKeyTemplateC(a)
	var buf [kemTemplateSize]attrs.Value
	l, err := kemTemplateAt(buf[:0], kp, 6)
	require.NoError(t, err)
	want, err := decodeTemplateAt(kp, 6)
	require.NoError(t, err)
	require.Equal(t, want, l.Template())
	require.Equal(t, []ck.AttributeType{ck.CKA_CLASS, ck.CKA_KEY_TYPE, ck.CKA_TOKEN, ck.CKA_SENSITIVE, ck.CKA_ENCRYPT, ck.CKA_DECRYPT},
		[]ck.AttributeType{l[0].Type, l[1].Type, l[2].Type, l[3].Type, l[4].Type, l[5].Type})

	// A type given twice: both kept, in order; the later is the one read.
	two := attrArray(a, []ck.AttributeType{ck.CKA_LABEL, ck.CKA_ID, ck.CKA_LABEL}, [][]byte{[]byte("l"), nil, []byte("m")})
	l, err = kemTemplateAt(buf[:0], two, 3)
	require.NoError(t, err)
	require.Equal(t, attrs.List{{Type: ck.CKA_LABEL, V: []byte("l")}, {Type: ck.CKA_ID, V: []byte{}}, {Type: ck.CKA_LABEL, V: []byte("m")}}, l)
	v, _ := l.Get(ck.CKA_LABEL)
	require.Equal(t, []byte("m"), v)
	a.scribble()
	require.Equal(t, []byte("m"), l[2].V, "the list aliases the caller's memory")

	types := make([]ck.AttributeType, kemTemplateSize+1)
	values := make([][]byte, len(types))
	for i := range types {
		types[i], values[i] = ck.CKA_VENDOR_DEFINED+ck.AttributeType(i), []byte{byte(i)}
	}
	big := attrArray(a, types, values)
	l, err = kemTemplateAt(buf[:0], big, uint64(len(types)))
	require.NoError(t, err)
	require.Len(t, l, len(types))

	// Bounds, as for every template: a NULL array with a count, more
	// attributes than maxTemplate, a NULL value with a length.
	_, err = kemTemplateAt(buf[:0], nil, 2)
	require.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD)
	_, err = kemTemplateAt(buf[:0], kp, maxTemplate+1)
	require.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD)
	nul := attrArray(a, []ck.AttributeType{ck.CKA_LABEL, ck.CKA_ID}, [][]byte{[]byte("ok"), nil})
	putWord(unsafe.Add(nul, attrLayout.size), attrLayout.fields[0].n, 4) // CKA_ID: NULL, 4 bytes
	_, err = kemTemplateAt(buf[:0], nul, 2)
	require.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD)
	require.Contains(t, err.Error(), "NULL buffer of 4 bytes")
	_, merr := decodeTemplateAt(nul, 2)
	require.Equal(t, merr.Error(), err.Error())

	kp = kemKeyTemplateC(a)
	allocs := testing.AllocsPerRun(100, func() {
		var buf [kemTemplateSize]attrs.Value
		if _, err := kemTemplateAt(buf[:0], kp, 6); err != nil {
			t.Fatal(err)
		}
	})
	require.LessOrEqual(t, allocs, 1.0, "allocations per KEM template")
}

// BenchmarkKEMTemplate: the same template as C_EncapsulateKey and
// C_DecapsulateKey decode it, into a List on the stack.
func BenchmarkKEMTemplate(b *testing.B) {
	a := &cArena{}
	defer a.free()
	kp := kemKeyTemplateC(a)
	b.ReportAllocs()
	for b.Loop() {
		var buf [kemTemplateSize]attrs.Value
		if _, err := kemTemplateAt(buf[:0], kp, 6); err != nil {
			b.Fatal(err)
		}
	}
}
