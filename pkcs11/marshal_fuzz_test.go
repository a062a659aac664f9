package pkcs11

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"unsafe"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
)

// fuzzGen lays out C structures (layout.go) from fuzz bytes: each pointer
// field is NULL with whatever length the bytes say, a real buffer with its
// true length, or a one-byte buffer with a hostile length of 2^48 or more
// (no address space holds such a buffer: the decoder must refuse it before
// reading).
type fuzzGen struct {
	a   *cArena
	src []byte
}

func (g *fuzzGen) byte() byte {
	if len(g.src) == 0 {
		return 0
	}
	b := g.src[0]
	g.src = g.src[1:]
	return b
}

func (g *fuzzGen) bytes(n int) []byte {
	n = min(n, len(g.src))
	b := g.src[:n]
	g.src = g.src[n:]
	return b
}

func (g *fuzzGen) word() uint64 {
	var w [8]byte
	copy(w[:], g.bytes(8))
	return binary.LittleEndian.Uint64(w[:])
}

var bufLens = []int{0, 1, 8, int(counterFormatSize), 24, 32, 64}

// fill patches the pointer fields of the structure at p (size bytes of
// it are valid) with the layout l.
func (g *fuzzGen) fill(p unsafe.Pointer, size uintptr, l *cLayout, depth int) {
	for _, f := range l.fields {
		if f.ptr+8 > size || f.n != noLen && f.n+8 > size {
			continue
		}
		switch mode := g.byte() % 4; {
		case mode == 0:
			putWord(p, f.ptr, 0)
		case mode == 3 && f.n != noLen:
			putWord(p, f.ptr, uint64(uintptr(g.a.alloc(1, nil))))
			putWord(p, f.n, 1<<48|g.word())
		case f.sub != nil:
			n := 1
			if f.count {
				n = int(g.byte() % 5)
			}
			arr := g.a.alloc(n*int(f.sub.size), g.bytes(n*int(f.sub.size)))
			if depth < 3 {
				for i := range n {
					g.fill(unsafe.Add(arr, i*int(f.sub.size)), f.sub.size, f.sub, depth+1)
				}
			}
			putWord(p, f.ptr, uint64(uintptr(arr)))
			if f.n != noLen {
				putWord(p, f.n, uint64(n))
			}
		default:
			n := bufLens[int(g.byte())%len(bufLens)]
			if mode == 2 {
				n = int(g.byte())
			}
			putWord(p, f.ptr, uint64(uintptr(g.a.alloc(n, g.bytes(n)))))
			if f.bits {
				putWord(p, f.n, uint64(8*n-int(g.byte()%8*min(1, uint8(n)))))
				continue
			}
			putWord(p, f.n, uint64(n))
		}
	}
}

// boundaryRV: the decoders answer with these and nothing else.
func boundaryRV(t *testing.T, what string, err error, allowed ...ck.RV) {
	t.Helper()
	var rv ck.RV
	if !errors.As(err, &rv) || !slices.Contains(allowed, rv) {
		t.Fatalf("%s: %v, want one of %v", what, err, allowed)
	}
}

// FuzzMechanism: CK_MECHANISM with every mechanism's parameter structure
// laid out from fuzz bytes, through the boundary's decoder (marshal.go
// mechanism/decodeParam/gcmParams). No panic, no read past what a length
// says, only CKR_MECHANISM_INVALID / CKR_MECHANISM_PARAM_INVALID /
// CKR_ARGUMENTS_BAD, and the decoded parameter is a copy: overwriting the
// caller's memory after the call changes nothing. Seeds:
// testdata/fuzz/FuzzMechanism.
func FuzzMechanism(f *testing.F) {
	rows := mechanisms.All()
	for i := range rows {
		f.Add(uint16(i), uint8(0), []byte{}, []byte{1, 0, 1, 0, 1, 0})
		f.Add(uint16(i), uint8(0), []byte{}, []byte{3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3})
	}
	f.Add(uint16(0), uint8(1), make([]byte, 40), []byte{2, 12})
	f.Fuzz(func(t *testing.T, idx uint16, sizeMode uint8, raw, inner []byte) {
		row := rows[int(idx)%len(rows)]
		l := paramLayouts[row.Param]
		if l == nil {
			t.Fatalf("%v: no layout for parameter kind %d", row.Type, row.Param)
		}
		a := &cArena{}
		defer a.free()
		g := &fuzzGen{a: a, src: inner}
		size := l.size
		if sizeMode&1 != 0 {
			size = uintptr(len(raw) % 128)
		}
		var p unsafe.Pointer
		if sizeMode%8 != 7 {
			p = a.alloc(int(size), raw)
			g.fill(p, size, l, 0)
		}
		m, err := decodeMechanismAt(a, row.Type, p, uint64(size))
		if err != nil {
			boundaryRV(t, fmt.Sprintf("%v parameter of %d bytes", row.Type, size), err,
				ck.CKR_MECHANISM_INVALID, ck.CKR_MECHANISM_PARAM_INVALID, ck.CKR_ARGUMENTS_BAD)
			return
		}
		if m.Type != row.Type {
			t.Fatalf("decoded %v as %v", row.Type, m.Type)
		}
		before := deepString(m.Param)
		a.scribble()
		if after := deepString(m.Param); after != before {
			t.Fatalf("%v: the decoded parameter aliases the caller's memory:\n%s\nbecame\n%s", row.Type, before, after)
		}
	})
}

// deepString prints a parameter with its pointed-to structures.
func deepString(v any) string {
	switch p := v.(type) {
	case *mechanisms.RSAAESKeyWrapParams:
		return fmt.Sprintf("%+v %+v", *p, *p.OAEP)
	case *mechanisms.SP800108Params:
		return fmt.Sprintf("%+v", *p)
	case nil:
		return "nil"
	}
	return fmt.Sprintf("%+v", v)
}

// FuzzTemplate: CK_ATTRIBUTE arrays, nested templates (CKA_WRAP_TEMPLATE,
// ...) included, from fuzz bytes through the boundary's template decoder.
// No panic; CKR_ARGUMENTS_BAD or CKR_ATTRIBUTE_VALUE_INVALID only; the
// template is a copy; the KEM calls' List decoder (kemTemplate) gives the
// same error or the same attributes. Seeds: testdata/fuzz/FuzzTemplate.
func FuzzTemplate(f *testing.F) {
	f.Add(uint8(3), []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 32, 0x11, 2, 0, 0, 0, 0, 0, 0, 0, 2, 5, 'h', 'e', 'l', 'l', 'o'})
	f.Add(uint8(2), []byte{0x11, 2, 0, 0x40, 0, 0, 0, 0, 9, 2, 3, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1})
	f.Add(uint8(1), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	nested := []ck.AttributeType{ck.CKA_WRAP_TEMPLATE, ck.CKA_UNWRAP_TEMPLATE, ck.CKA_DERIVE_TEMPLATE}
	f.Fuzz(func(t *testing.T, count uint8, inner []byte) {
		a := &cArena{}
		defer a.free()
		g := &fuzzGen{a: a, src: inner}
		var build func(n int, depth int) unsafe.Pointer
		build = func(n, depth int) unsafe.Pointer {
			arr := a.alloc(n*int(attrLayout.size), nil)
			for i := range n {
				at := unsafe.Add(arr, i*int(attrLayout.size))
				typ := g.word()
				if typ&0xf == 9 {
					typ = uint64(nested[int(typ>>4)%len(nested)])
				}
				*(*uint64)(at) = typ
				if slices.Contains(nested, ck.AttributeType(typ)) && depth == 0 {
					// An array of CK_ATTRIBUTE: real, NULL, or with a
					// length that is no multiple of the structure or
					// counts 2^48 or more of them. (A nested template
					// inside one is refused before it is read.)
					k := int(g.byte() % 4)
					n := uint64(k) * uint64(attrLayout.size)
					var arr unsafe.Pointer
					switch g.byte() % 8 {
					case 0:
						n += 1 + uint64(g.byte())%(uint64(attrLayout.size)-1)
					case 1:
						n = 1<<48*uint64(attrLayout.size) | n
						arr = build(k, depth+1)
					case 2: // NULL
					default:
						arr = build(k, depth+1)
					}
					putWord(at, attrLayout.fields[0].ptr, uint64(uintptr(arr)))
					putWord(at, attrLayout.fields[0].n, n)
					continue
				}
				g.fill(at, attrLayout.size, attrLayout, depth)
			}
			return arr
		}
		n := int(count % 8)
		var p unsafe.Pointer
		if count < 0xf0 {
			p = build(n, 0)
		}
		tm, err := decodeTemplateAt(p, uint64(n))
		// The KEM calls' List: the same error, or the same attributes
		// once made a map, the caller's types in its order.
		var buf [kemTemplateSize]attrs.Value
		l, lerr := kemTemplateAt(buf[:0], p, uint64(n))
		if (err == nil) != (lerr == nil) || err != nil && err.Error() != lerr.Error() {
			t.Fatalf("template: %v, list: %v", err, lerr)
		}
		if err != nil {
			boundaryRV(t, "template", err, ck.CKR_ARGUMENTS_BAD, ck.CKR_ATTRIBUTE_VALUE_INVALID)
			return
		}
		if !reflect.DeepEqual(l.Template(), tm) {
			t.Fatalf("list %v, template %v", l, tm)
		}
		if len(l) != n {
			t.Fatalf("list of %d attributes from %d", len(l), n)
		}
		for i, v := range l {
			if want := ck.AttributeType(getWord(unsafe.Add(p, uintptr(i)*attrLayout.size), 0)); v.Type != want {
				t.Fatalf("attribute %d: %v, the caller's is %v", i, v.Type, want)
			}
		}
		before, lbefore := fmt.Sprintf("%v", tm), fmt.Sprintf("%v", l)
		a.scribble()
		if after := fmt.Sprintf("%v", tm); after != before {
			t.Fatalf("the decoded template aliases the caller's memory")
		}
		if after := fmt.Sprintf("%v", l); after != lbefore {
			t.Fatalf("the decoded list aliases the caller's memory")
		}
	})
}

// FuzzMessageParams: CK_GCM_MESSAGE_PARAMS and CK_CCM_MESSAGE_PARAMS (the
// C_MessageEncrypt/Decrypt parameter, keymgmt.go msgParams) laid out from
// fuzz bytes like FuzzMechanism's (the GCM tag's length is ulTagBits, in
// bits). No panic, only CKR_MECHANISM_PARAM_INVALID / CKR_ARGUMENTS_BAD,
// and the result is a copy. Seeds: testdata/fuzz/FuzzMessageParams.
func FuzzMessageParams(f *testing.F) {
	for i := range messageLayouts {
		f.Add(uint8(i), []byte{}, []byte{1, 2, 1, 2})
		f.Add(uint8(i), []byte{}, []byte{3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3})
		f.Add(uint8(i), []byte{}, []byte{0, 0})
	}
	f.Add(uint8(0x81), make([]byte, 40), []byte{2, 12})
	f.Fuzz(func(t *testing.T, which uint8, raw, inner []byte) {
		l := messageLayouts[int(which&1)]
		a := &cArena{}
		defer a.free()
		g := &fuzzGen{a: a, src: inner}
		size := l.size
		if which&0x80 != 0 {
			size = uintptr(len(raw) % 128)
			// msgParams tells GCM from CCM by the length: a length that is
			// the other layout's is decoded as that layout, so its pointers
			// must be laid out as that layout's (a caller's pointers are
			// valid; only the lengths and values are the fuzzer's).
			for _, o := range messageLayouts {
				if o.size == size {
					l = o
				}
			}
		}
		var p unsafe.Pointer
		if which&0x40 == 0 {
			p = a.alloc(int(size), raw)
			g.fill(p, size, l, 0)
		}
		mp, err := decodeMessageParamsAt(p, uint64(size))
		if err != nil {
			boundaryRV(t, fmt.Sprintf("message parameter of %d bytes", size), err,
				ck.CKR_MECHANISM_PARAM_INVALID, ck.CKR_ARGUMENTS_BAD)
			return
		}
		before := fmt.Sprintf("%+v", *mp)
		a.scribble()
		if after := fmt.Sprintf("%+v", *mp); after != before {
			t.Fatalf("the decoded message parameter aliases the caller's memory:\n%s\nbecame\n%s", before, after)
		}
	})
}
