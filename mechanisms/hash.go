package mechanisms

import (
	"crypto"
	_ "crypto/sha1" // registers crypto.SHA1 (CKM_SHA_1, and PSS parameters naming it)
	_ "crypto/sha256"
	_ "crypto/sha3"
	_ "crypto/sha512"
	"fmt"
	"hash"
	"slices"
	"sync"

	"gohsm/internal/ck"
)

// digestAlg ties one of the spec's hash functions to everything named after
// it: the digest mechanism, its MGF1 variant (PKCS#11 v3.0,
// CK_RSA_PKCS_MGF_TYPE), the HMAC mechanisms and key type, the key
// generation mechanism for that key type, and the Go hash.
type digestAlg struct {
	mech ck.MechanismType
	hash crypto.Hash
	// mgf is the CKG_MGF1_* constant for PSS and OAEP; 0 where rsa.go does
	// not offer the hash there (hashParams refuses it).
	mgf         ck.ULong
	hmac        ck.MechanismType // CKM_<h>_HMAC
	hmacGeneral ck.MechanismType // CKM_<h>_HMAC_GENERAL
	keyType     ck.KeyType       // CKK_<h>_HMAC
	keyGen      ck.MechanismType // CKM_<h>_KEY_GEN, which makes CKK_<h>_HMAC keys
	// kbkdf: the HMAC is one of the PRFs PKCS#11 v3.0 lists for the
	// SP 800-108 KDFs ("SP800-108 Pseudo Random Functions"); SHA-512/t is not.
	kbkdf bool
}

// digestAlgs are the hash functions gohsm offers: SHA-1, SHA-2 (PKCS#11
// v3.0 "SHA-1", "SHA-224", ..., "SHA-512/224", "SHA-512/256") and SHA-3
// ("SHA3-224", ...). CKM_SHA512_T (a parameter t) is not offered.
var digestAlgs = []digestAlg{
	{ck.CKM_SHA_1, crypto.SHA1, ck.CKG_MGF1_SHA1, ck.CKM_SHA_1_HMAC, ck.CKM_SHA_1_HMAC_GENERAL, ck.CKK_SHA_1_HMAC, ck.CKM_SHA_1_KEY_GEN, true},
	{ck.CKM_SHA224, crypto.SHA224, ck.CKG_MGF1_SHA224, ck.CKM_SHA224_HMAC, ck.CKM_SHA224_HMAC_GENERAL, ck.CKK_SHA224_HMAC, ck.CKM_SHA224_KEY_GEN, true},
	{ck.CKM_SHA256, crypto.SHA256, ck.CKG_MGF1_SHA256, ck.CKM_SHA256_HMAC, ck.CKM_SHA256_HMAC_GENERAL, ck.CKK_SHA256_HMAC, ck.CKM_SHA256_KEY_GEN, true},
	{ck.CKM_SHA384, crypto.SHA384, ck.CKG_MGF1_SHA384, ck.CKM_SHA384_HMAC, ck.CKM_SHA384_HMAC_GENERAL, ck.CKK_SHA384_HMAC, ck.CKM_SHA384_KEY_GEN, true},
	{ck.CKM_SHA512, crypto.SHA512, ck.CKG_MGF1_SHA512, ck.CKM_SHA512_HMAC, ck.CKM_SHA512_HMAC_GENERAL, ck.CKK_SHA512_HMAC, ck.CKM_SHA512_KEY_GEN, true},
	{ck.CKM_SHA512_224, crypto.SHA512_224, 0, ck.CKM_SHA512_224_HMAC, ck.CKM_SHA512_224_HMAC_GENERAL, ck.CKK_SHA512_224_HMAC, ck.CKM_SHA512_224_KEY_GEN, false},
	{ck.CKM_SHA512_256, crypto.SHA512_256, 0, ck.CKM_SHA512_256_HMAC, ck.CKM_SHA512_256_HMAC_GENERAL, ck.CKK_SHA512_256_HMAC, ck.CKM_SHA512_256_KEY_GEN, false},
	{ck.CKM_SHA3_224, crypto.SHA3_224, 0, ck.CKM_SHA3_224_HMAC, ck.CKM_SHA3_224_HMAC_GENERAL, ck.CKK_SHA3_224_HMAC, ck.CKM_SHA3_224_KEY_GEN, true},
	{ck.CKM_SHA3_256, crypto.SHA3_256, 0, ck.CKM_SHA3_256_HMAC, ck.CKM_SHA3_256_HMAC_GENERAL, ck.CKK_SHA3_256_HMAC, ck.CKM_SHA3_256_KEY_GEN, true},
	{ck.CKM_SHA3_384, crypto.SHA3_384, 0, ck.CKM_SHA3_384_HMAC, ck.CKM_SHA3_384_HMAC_GENERAL, ck.CKK_SHA3_384_HMAC, ck.CKM_SHA3_384_KEY_GEN, true},
	{ck.CKM_SHA3_512, crypto.SHA3_512, 0, ck.CKM_SHA3_512_HMAC, ck.CKM_SHA3_512_HMAC_GENERAL, ck.CKK_SHA3_512_HMAC, ck.CKM_SHA3_512_KEY_GEN, true},
}

// hashes are the digests PSS and OAEP take with their own MGF1 (SHA-1 and
// SHA-2; rsa.go adds SHA-3 itself).
var hashes = slices.DeleteFunc(slices.Clone(digestAlgs), func(a digestAlg) bool { return a.mgf == 0 })

// digestByMech finds the hash a digest mechanism names (HKDF's
// prfHashMechanism, PSS and OAEP hashes).
func digestByMech(mech ck.MechanismType) (*digestAlg, bool) {
	i := slices.IndexFunc(digestAlgs, func(a digestAlg) bool { return a.mech == mech })
	if i < 0 {
		return nil, false
	}
	return &digestAlgs[i], true
}

// hashParams resolves a (hash mechanism, MGF) pair from a mechanism
// parameter. Go's PSS and OAEP use MGF1 with the message hash, so the two
// must name the same function.
func hashParams(mech ck.MechanismType, mgf ck.ULong) (crypto.Hash, error) {
	for _, h := range hashes {
		if h.mech != mech {
			continue
		}
		if h.mgf != mgf {
			return 0, fmt.Errorf("mechanisms: mgf 0x%x with hash %v: %w", mgf, mech, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		return h.hash, nil
	}
	return 0, fmt.Errorf("mechanisms: hash %v: %w", mech, ck.CKR_MECHANISM_PARAM_INVALID)
}

// input collects what C_*Update passes to a sign or verify operation: a
// running hash for hash-and-sign mechanisms, or the bytes themselves for the
// single-part ones, which operate on a caller-computed hash.
type input struct {
	h   hash.Hash // nil: raw input buffered in buf
	buf []byte
}

func newInput(h crypto.Hash) input {
	if h == 0 {
		return input{}
	}
	return input{h: h.New()}
}

func (in *input) Update(p []byte) error {
	if in.h != nil {
		in.h.Write(p) // hash.Hash.Write never fails
		return nil
	}
	var err error
	in.buf, err = buffer(in.buf, p, "raw input")
	return err
}

// message returns the hash of everything given to Update, or the raw input.
func (in *input) message() []byte {
	if in.h != nil {
		return in.h.Sum(in.buf[:0])
	}
	return in.buf
}

// digester is a Digester over a standard library hash. Update is the hash's
// own Write: no copy, no buffering, so C_DigestUpdate and C_DigestKey (for
// which the token feeds a secret key's value to Update) run at the speed of
// crypto/sha256 and friends (SHA-NI / AVX2 where the CPU has them).
//
// Digesters go back to their hash's pool when the token drops the
// operation (Release), reset, for the next C_DigestInit of that hash: a
// new hash state and the interface value holding it were two
// allocations per digest (docs/bench.md, "SHA-256 1 MiB (2026-12-07)").
type digester struct {
	h    hash.Hash
	pool *sync.Pool
	// released: the digester went back to the pool and refuses further
	// use until the pool hands it out again.
	released bool
	// secret: UpdateSecret fed it a key's value; Release drops it
	// instead of pooling it (SecretDigester).
	secret bool
}

// errDigestReleased: a released digester was used (a caller bug).
var errDigestReleased = fmt.Errorf("mechanisms: digest: operation already ended: %w", ck.CKR_OPERATION_NOT_INITIALIZED)

func (d *digester) Update(p []byte) error {
	if d.released {
		return errDigestReleased
	}
	d.h.Write(p) // hash.Hash.Write never fails
	return nil
}

// UpdateSecret is Update for a key's value (C_DigestKey): the digester
// will not be pooled again.
func (d *digester) UpdateSecret(p []byte) error {
	if d.released {
		return errDigestReleased
	}
	d.secret = true
	return d.Update(p)
}

// Sum appends the digest to dst; a released digester appends nothing
// (its Size is 0).
func (d *digester) Sum(dst []byte) []byte {
	if d.released {
		return dst
	}
	return d.h.Sum(dst)
}

func (d *digester) Size() int {
	if d.released {
		return 0
	}
	return d.h.Size()
}

// Release resets the hash (the token calls it once the operation is over,
// finished, failed or cancelled) and hands the digester to the next
// C_DigestInit of its hash, unless it digested a secret (UpdateSecret).
func (d *digester) Release() {
	if d.released {
		return
	}
	d.h.Reset()
	d.released = true
	if !d.secret {
		d.pool.Put(d)
	}
}

func newDigest(h crypto.Hash) func(param any) (Digester, error) {
	pool := new(sync.Pool)
	return func(any) (Digester, error) {
		if d, ok := pool.Get().(*digester); ok {
			d.released = false
			return d, nil
		}
		return &digester{h: h.New(), pool: pool}, nil
	}
}

// digestRows are this family's rows: the digests (PKCS#11 v3.0 "SHA-1",
// "SHA-224", ..., "SHA3-512"), the HMACs and generic secret key generation
// (hmacRows, hmac.go). The KDFs are kdfRows (kdf.go), which table.go lists
// separately.
func digestRows() []Mechanism {
	return slices.Concat(hashRows(), hmacRows())
}

func hashRows() []Mechanism {
	rows := make([]Mechanism, 0, len(digestAlgs))
	for _, a := range digestAlgs {
		rows = append(rows, Mechanism{Type: a.mech, Digest: newDigest(a.hash)})
	}
	return rows
}
