package pkcs11

import (
	"errors"
	"testing"
	"unsafe"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
)

// The decoders of CloudHSM's vendor mechanism parameters
// (cloudhsm_params.go) on C memory laid out by hand in the LP64 layouts
// tests/c/headers_check.c pins: CK_GCM_PARAMS {pIv, ulIvLen, ulIvBits,
// pAAD, ulAADLen, ulTagBits} (48 bytes; 40 without ulIvBits) and
// CloudHSM's CK_SP800_108_KDF_PARAMS {prftype, ulNumberOfDataParams,
// pDataParams} (24) over CK_PRF_DATA_PARAM {type, pValue, ulValueLen} (24),
// counter format {ulWidthInBits} (8), DKM format {method, width} (16).

func words(a *cArena, w ...uint64) unsafe.Pointer {
	p := a.alloc(8*len(w), nil)
	for i, v := range w {
		putWord(p, uintptr(8*i), v)
	}
	return p
}

func addr(p unsafe.Pointer) uint64 { return uint64(uintptr(p)) }

func wantParamInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ck.CKR_MECHANISM_PARAM_INVALID) {
		t.Errorf("%s: %v, want CKR_MECHANISM_PARAM_INVALID", what, err)
	}
}

func TestCloudHSMGCMParamsDecode(t *testing.T) {
	a := &cArena{}
	defer a.free()
	aad := a.alloc(3, []byte("aad"))
	iv := a.alloc(12, nil)
	for _, c := range []struct {
		name    string
		p       unsafe.Pointer
		size    uint64
		ivGiven bool
		ivLen   int
	}{
		{"48 bytes, pIV NULL, ulIvLen 0", words(a, 0, 0, 0, addr(aad), 3, 128), 48, false, 0},
		{"48 bytes, pIV NULL, ulIvLen 12", words(a, 0, 12, 96, addr(aad), 3, 128), 48, false, 12},
		{"48 bytes, pIV given", words(a, addr(iv), 12, 96, addr(aad), 3, 128), 48, true, 12},
		{"40 bytes, pIV NULL", words(a, 0, 0, addr(aad), 3, 128), 40, false, 0},
		{"40 bytes, pIV given", words(a, addr(iv), 12, addr(aad), 3, 128), 40, true, 12},
	} {
		m, err := decodeMechanismAt(a, ck.CKM_CLOUDHSM_AES_GCM, c.p, c.size)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		p, ok := m.Param.(*mechanisms.CloudHSMGCMParams)
		if !ok {
			t.Errorf("%s: decoded %T", c.name, m.Param)
			continue
		}
		if p.IVGiven != c.ivGiven || p.IVLen != c.ivLen || string(p.AAD) != "aad" || p.TagBits != 128 {
			t.Errorf("%s: decoded %+v", c.name, p)
		}
	}
	_, err := decodeMechanismAt(a, ck.CKM_CLOUDHSM_AES_GCM, words(a, 0, 0, 0, addr(aad), 3, 128), 47)
	wantParamInvalid(t, "47 bytes", err)
	_, err = decodeMechanismAt(a, ck.CKM_CLOUDHSM_AES_GCM, nil, 0)
	wantParamInvalid(t, "no parameter", err)
	_, err = decodeMechanismAt(a, ck.CKM_CLOUDHSM_AES_GCM, words(a, 0, 0, 0, 0, 3, 128), 48)
	wantParamInvalid(t, "NULL AAD with a length", err)
}

func TestCloudHSMKDFParamsDecode(t *testing.T) {
	a := &cArena{}
	defer a.free()
	ctr := words(a, uint64(32))
	dkm := words(a, uint64(1), 16)
	label := a.alloc(5, []byte("label"))
	data := words(a,
		uint64(ck.CK_CLOUDHSM_PRF_COUNTER_FORMAT), addr(ctr), 8,
		uint64(ck.CK_CLOUDHSM_PRF_DKM_FORMAT), addr(dkm), 16,
		uint64(ck.CK_CLOUDHSM_PRF_LABEL), addr(label), 5,
		uint64(ck.CK_CLOUDHSM_PRF_CONTEXT), 0, 0,
		uint64(ck.CK_CLOUDHSM_PRF_BYTE_ARRAY), addr(label), 2,
	)
	m, err := decodeMechanismAt(a, ck.CKM_CLOUDHSM_SP800_108_COUNTER_KDF, words(a, uint64(ck.CKM_SHA384_HMAC), 5, addr(data)), 24)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := m.Param.(*mechanisms.CloudHSMKDFParams)
	if !ok || p.PRF != ck.CKM_SHA384_HMAC || len(p.Data) != 5 {
		t.Fatalf("decoded %T %+v", m.Param, m.Param)
	}
	want := []mechanisms.PRFData{
		{Type: ck.CK_CLOUDHSM_PRF_COUNTER_FORMAT, WidthBits: 32},
		{Type: ck.CK_CLOUDHSM_PRF_DKM_FORMAT, WidthBits: 16, DKMMethod: 1},
		{Type: ck.CK_CLOUDHSM_PRF_LABEL, Bytes: []byte("label")},
		{Type: ck.CK_CLOUDHSM_PRF_CONTEXT},
		{Type: ck.CK_CLOUDHSM_PRF_BYTE_ARRAY, Bytes: []byte("la")},
	}
	for i, w := range want {
		g := p.Data[i]
		if g.Type != w.Type || g.WidthBits != w.WidthBits || g.DKMMethod != w.DKMMethod || string(g.Bytes) != string(w.Bytes) {
			t.Errorf("data %d: %+v, want %+v", i, g, w)
		}
	}
	a.scribble() // a copy: the caller's memory may change after the call
	if string(p.Data[2].Bytes) != "label" {
		t.Errorf("the label points into the caller's memory")
	}

	bad := func(name string, param unsafe.Pointer, size uint64) {
		t.Helper()
		_, err := decodeMechanismAt(a, ck.CKM_CLOUDHSM_SP800_108_COUNTER_KDF, param, size)
		wantParamInvalid(t, name, err)
	}
	one := func(typ ck.ULong, value, n uint64) unsafe.Pointer {
		return words(a, uint64(ck.CKM_SHA256_HMAC), 1, addr(words(a, uint64(typ), value, n)))
	}
	bad("the v3.0 structure (40 bytes)", words(a, uint64(ck.CKM_SHA256_HMAC), 0, 0, 0, 0), 40)
	bad("23 bytes", words(a, uint64(ck.CKM_SHA256_HMAC), 0, 0), 23)
	bad("counter format of the v3.0 size (16 bytes)", one(ck.CK_CLOUDHSM_PRF_COUNTER_FORMAT, addr(words(a, uint64(0), 32)), 16), 24)
	bad("NULL counter format", one(ck.CK_CLOUDHSM_PRF_COUNTER_FORMAT, 0, 8), 24)
	bad("DKM format of the v3.0 size (24 bytes)", one(ck.CK_CLOUDHSM_PRF_DKM_FORMAT, addr(words(a, uint64(1), 0, 32)), 24), 24)
	bad("v3.0 iteration variable type", one(ck.CK_SP800_108_ITERATION_VARIABLE, addr(ctr), 8), 24)
	bad("NULL label with a length", one(ck.CK_CLOUDHSM_PRF_LABEL, 0, 5), 24)
	bad("NULL data parameter list", words(a, uint64(ck.CKM_SHA256_HMAC), 2, 0), 24)
	bad("65 data parameters", words(a, uint64(ck.CKM_SHA256_HMAC), 65, addr(data)), 24)
}
