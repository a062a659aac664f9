package mechanisms

import (
	"crypto"
	_ "crypto/sha1" // registers crypto.SHA1 for PSS parameters naming CKM_SHA_1
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"
	"hash"

	"gohsm/internal/ck"
)

// hashes ties the spec's digest mechanisms to their MGF1 variants
// (PKCS#11 v3.0, CK_RSA_PKCS_MGF_TYPE) and to the Go hash.
var hashes = []struct {
	mech ck.MechanismType
	mgf  ck.ULong
	hash crypto.Hash
}{
	{ck.CKM_SHA_1, ck.CKG_MGF1_SHA1, crypto.SHA1},
	{ck.CKM_SHA224, ck.CKG_MGF1_SHA224, crypto.SHA224},
	{ck.CKM_SHA256, ck.CKG_MGF1_SHA256, crypto.SHA256},
	{ck.CKM_SHA384, ck.CKG_MGF1_SHA384, crypto.SHA384},
	{ck.CKM_SHA512, ck.CKG_MGF1_SHA512, crypto.SHA512},
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
	in.buf = append(in.buf, p...)
	return nil
}

// message returns the hash of everything given to Update, or the raw input.
func (in *input) message() []byte {
	if in.h != nil {
		return in.h.Sum(in.buf[:0])
	}
	return in.buf
}

// digester is a Digester over a standard library hash.
type digester struct{ hash.Hash }

func (d digester) Update(p []byte) error {
	d.Write(p)
	return nil
}

func newDigest(h crypto.Hash) func(param any) (Digester, error) {
	return func(any) (Digester, error) { return digester{h.New()}, nil }
}

// digestRows are the digests.
var digestRows = []Mechanism{
	{Type: ck.CKM_SHA256, Digest: newDigest(crypto.SHA256)},
}
