package main

/*
#include <stdlib.h>
#include "bench.h"
*/
import "C"

import (
	"fmt"
	"log"
	"unsafe"

	"gohsm/internal/ck"
)

// Buffer sizes every worker allocates once.
const (
	maxIn    = 1 << 20
	maxOut   = 1<<20 + 64
	madeCap  = 4096 // handles one key-generation batch may make before they are destroyed
	kib      = 1 << 10
	mib      = 1 << 20
	noTarget = 0
)

// opDef is one benchmarked operation: what the C loop runs (cop), what it
// needs, and the target ratio (first module / second module) it is judged
// against.
type opDef struct {
	name    string
	what    string // the calls one operation makes
	cop     C.int
	mech    ck.MechanismType
	needs   []ck.MechanismType // mechanisms the module must list
	key     func(*module) key  // nil: no key
	in, out int
	pss     bool
	verify  bool // OP_VERIFY: sign once with the key, verify with its public half
	gcm     bool
	findTok bool
	harness bool // no module involved: measures p11bench itself
	// target is the minimum ratio first/second module; 0 means none.
	target float64
	// scales: the 2-session/1-session target (1.8x) applies.
	scales bool
	// prepare sets up the worker for key generation templates.
	genTemplates func() (t1, t2 []attr)
}

func ecKey(m *module) key    { return m.ec }
func rsaKey(m *module) key   { return m.rsa }
func aesKey(m *module) key   { return m.aes }
func hmacKey(m *module) key  { return m.hmac }
func mldsaKey(m *module) key { return m.mldsa }
func kemPub(m *module) key   { return m.mlkemPub }
func kemPriv(m *module) key  { return m.mlkemPriv }

// opDefs in the order they run; find-label is last (see setupFind).
var opDefs = []*opDef{
	{name: "noop", what: "a no-op C function through a function pointer, timed like every op (harness cost)",
		cop: C.OP_NOOP, harness: true},
	{name: "get-info", what: "C_GetInfo (module entry cost)", cop: C.OP_GET_INFO},
	{name: "ecdsa-p256", what: "C_SignInit+C_Sign CKM_ECDSA, 32-byte hash", cop: C.OP_SIGN,
		mech: ck.CKM_ECDSA, needs: []ck.MechanismType{ck.CKM_ECDSA}, key: ecKey, in: 32, out: 64, target: 2.5, scales: true},
	{name: "ecdsa-sha256-p256", what: "C_SignInit+C_Sign CKM_ECDSA_SHA256, 64 bytes", cop: C.OP_SIGN,
		mech: ck.CKM_ECDSA_SHA256, needs: []ck.MechanismType{ck.CKM_ECDSA_SHA256}, key: ecKey, in: 64, out: 64, target: 2.5, scales: true},
	{name: "rsa2048-sha256-pkcs1", what: "C_SignInit+C_Sign CKM_SHA256_RSA_PKCS, 64 bytes", cop: C.OP_SIGN,
		mech: ck.CKM_SHA256_RSA_PKCS, needs: []ck.MechanismType{ck.CKM_SHA256_RSA_PKCS}, key: rsaKey, in: 64, out: 256, target: 1.2, scales: true},
	{name: "rsa2048-sha256-pss", what: "C_SignInit+C_Sign CKM_SHA256_RSA_PKCS_PSS (MGF1-SHA256, salt 32), 64 bytes", cop: C.OP_SIGN,
		mech: ck.CKM_SHA256_RSA_PKCS_PSS, needs: []ck.MechanismType{ck.CKM_SHA256_RSA_PKCS_PSS}, key: rsaKey, in: 64, out: 256, pss: true, target: 1.2, scales: true},
	{name: "mldsa65-sign", what: "C_SignInit+C_Sign CKM_ML_DSA (no parameter: hedged, empty context), ML-DSA-65, 64 bytes", cop: C.OP_SIGN,
		mech: ck.CKM_ML_DSA, needs: []ck.MechanismType{ck.CKM_ML_DSA}, key: mldsaKey, in: 64, out: 3309},
	{name: "mldsa65-verify", what: "C_VerifyInit+C_Verify CKM_ML_DSA, ML-DSA-65, 64 bytes", cop: C.OP_VERIFY,
		mech: ck.CKM_ML_DSA, needs: []ck.MechanismType{ck.CKM_ML_DSA}, key: mldsaKey, in: 64, out: 3309, verify: true},
	{name: "hmac-sha256-64", what: "C_SignInit+C_Sign CKM_SHA256_HMAC, 64 bytes", cop: C.OP_SIGN,
		mech: ck.CKM_SHA256_HMAC, needs: []ck.MechanismType{ck.CKM_SHA256_HMAC}, key: hmacKey, in: 64, out: 32, target: 20, scales: true},
	{name: "aes256-gcm-64", what: "C_EncryptInit+C_Encrypt CKM_AES_GCM, fresh 12-byte IV, 64 bytes", cop: C.OP_ENCRYPT_GCM,
		mech: ck.CKM_AES_GCM, needs: []ck.MechanismType{ck.CKM_AES_GCM}, key: aesKey, in: 64, out: 64 + 16, gcm: true, target: 20},
	{name: "aes256-gcm-4k", what: "C_EncryptInit+C_Encrypt CKM_AES_GCM, fresh 12-byte IV, 4 KiB", cop: C.OP_ENCRYPT_GCM,
		mech: ck.CKM_AES_GCM, needs: []ck.MechanismType{ck.CKM_AES_GCM}, key: aesKey, in: 4 * kib, out: 4*kib + 16, gcm: true},
	{name: "aes256-gcm-1m", what: "C_EncryptInit+C_Encrypt CKM_AES_GCM, fresh 12-byte IV, 1 MiB", cop: C.OP_ENCRYPT_GCM,
		mech: ck.CKM_AES_GCM, needs: []ck.MechanismType{ck.CKM_AES_GCM}, key: aesKey, in: mib, out: mib + 16, gcm: true, target: 2.5},
	{name: "sha256-1m", what: "C_DigestInit+C_Digest CKM_SHA256, 1 MiB", cop: C.OP_DIGEST,
		mech: ck.CKM_SHA256, needs: []ck.MechanismType{ck.CKM_SHA256}, in: mib, out: 32, target: 1.1},
	{name: "keygen-ec-p256-token", what: "C_GenerateKeyPair CKM_EC_KEY_PAIR_GEN P-256, token objects (destroyed between batches, untimed)",
		cop: C.OP_GEN_KEY_PAIR, mech: ck.CKM_EC_KEY_PAIR_GEN, needs: []ck.MechanismType{ck.CKM_EC_KEY_PAIR_GEN}, target: 10,
		genTemplates: func() ([]attr, []attr) { return ecPublicAttrs(labelGen), privateKeyAttrs(labelGen) }},
	{name: "keygen-aes256-token", what: "C_GenerateKey CKM_AES_KEY_GEN 32 bytes, token object (destroyed between batches, untimed)",
		cop: C.OP_GEN_KEY, mech: ck.CKM_AES_KEY_GEN, needs: []ck.MechanismType{ck.CKM_AES_KEY_GEN}, target: 10,
		genTemplates: func() ([]attr, []attr) { return aesKeyAttrs(labelGen), nil }},
	// ML-KEM-768 (PKCS #11 3.2): each operation makes a session AES key,
	// destroyed between batches (untimed). Decapsulation takes random
	// bytes as the ciphertext: the implicit-rejection path costs what a
	// genuine ciphertext does (FIPS 203 re-encrypts either way).
	{name: "ml-kem-768-encaps", what: "C_EncapsulateKey CKM_ML_KEM, ML-KEM-768, new session AES key (destroyed between batches, untimed)",
		cop: C.OP_ENCAPSULATE, mech: ck.CKM_ML_KEM, needs: []ck.MechanismType{ck.CKM_ML_KEM, ck.CKM_ML_KEM_KEY_PAIR_GEN},
		key: kemPub, out: 1088, genTemplates: func() ([]attr, []attr) { return kemSecretAttrs(), nil }},
	{name: "ml-kem-768-decaps", what: "C_DecapsulateKey CKM_ML_KEM, ML-KEM-768, 1088-byte ciphertext, new session AES key (destroyed between batches, untimed)",
		cop: C.OP_DECAPSULATE, mech: ck.CKM_ML_KEM, needs: []ck.MechanismType{ck.CKM_ML_KEM, ck.CKM_ML_KEM_KEY_PAIR_GEN},
		key: kemPriv, in: 1088, genTemplates: func() ([]attr, []attr) { return kemSecretAttrs(), nil }},
	{name: "open-close-session", what: "C_OpenSession+C_CloseSession (read-only)", cop: C.OP_OPEN_CLOSE, target: 1},
	{name: "random-32", what: "C_GenerateRandom 32 bytes", cop: C.OP_RANDOM, out: 32, target: 1},
	{name: "find-label", what: "C_FindObjectsInit(CKA_CLASS, CKA_LABEL)+C_FindObjects+C_FindObjectsFinal, one match among the find token's data objects",
		cop: C.OP_FIND, findTok: true, target: 1000},
}

// unsupported says why m cannot run op, or "" when it can.
func (op *opDef) unsupported(m *module) string {
	for _, mech := range op.needs {
		if !m.mechs[mech] {
			return fmt.Sprintf("%s not in C_GetMechanismList", mech)
		}
	}
	if op.key != nil {
		return op.key(m).unsupported
	}
	return ""
}

// prepare points the worker's C context at op; the returned function
// releases what prepare allocated.
func (op *opDef) prepare(w *worker) func() {
	c := w.ctx
	c.mech.mechanism = C.CK_MECHANISM_TYPE(op.mech)
	c.mech.pParameter = nil
	c.mech.ulParameterLen = 0
	c.inLen = C.CK_ULONG(op.in)
	c.outLen = C.CK_ULONG(op.out)
	c.nmade = 0
	c.madeCap = madeCap
	if op.key != nil {
		c.key = op.key(w.m).h
	}
	if op.gcm {
		C.bench_set_gcm(c)
	}
	if op.pss {
		C.bench_set_pss(c, C.CKM_SHA256, C.CKG_MGF1_SHA256, 32)
	}
	if op.verify {
		k := op.key(w.m)
		// A failure here makes every timed C_Verify fail, which the run
		// reports as the row's error.
		if rv := C.bench_prepare_verify(c, k.h, k.pub); rv != C.CKR_OK {
			log.Printf("p11bench: %s: signing for %s: %v", w.m.name, op.name, ck.RV(rv))
		}
	}
	if op.cop == C.OP_FIND {
		p := C.CString(findPrefix)
		C.bench_set_find(c, p, C.CK_ULONG(w.m.findObjects), C.CKO_DATA)
		C.free(unsafe.Pointer(p))
	}
	if op.genTemplates == nil {
		return func() {}
	}
	a, b := op.genTemplates()
	t1, t2 := newTemplate(a), newTemplate(b)
	c.t1, c.n1, c.t2, c.n2 = t1.p, t1.n, t2.p, t2.n
	return func() {
		c.t1, c.n1, c.t2, c.n2 = nil, 0, nil, 0
		t1.free()
		t2.free()
	}
}
