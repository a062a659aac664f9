package mechanisms

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"hash"
	"io"
	"math/big"
	"sync"
	"sync/atomic"

	"filippo.io/bigmod"

	"gohsm/internal/ck"
	"gohsm/internal/ossl"
)

// Private-key operations in libcrypto (package internal/ossl): RSA's
// private exponentiation and ECDSA P-256 signing, about twice as fast as
// Go's there. The RSA rows and the ECDSA rows make the libcrypto key in
// their Prepare, once per key object, and use it when their key comes
// prepared; the padding (EMSA-PKCS1-v1_5, EMSA-PSS), the hashing and every
// check stay here. Without libcrypto (no cgo, no libcrypto.so.3,
// GOHSM_CRYPTO=go) Prepare makes nothing and Go's crypto does the work.

// prepareRSA is the Prepare of the RSA rows with a private-key operation:
// a libcrypto key for a two-prime private key, nothing otherwise.
func prepareRSA(key any) (any, error) {
	priv, ok := key.(*rsa.PrivateKey)
	if !ok || len(priv.Primes) != 2 || ossl.Available() != nil {
		return nil, nil
	}
	pc := priv.Precomputed
	if pc.Dp == nil || pc.Dq == nil || pc.Qinv == nil {
		return nil, nil
	}
	vals := [][]byte{priv.N.Bytes(), big.NewInt(int64(priv.E)).Bytes(), priv.D.Bytes(),
		priv.Primes[0].Bytes(), priv.Primes[1].Bytes(), pc.Dp.Bytes(), pc.Dq.Bytes(), pc.Qinv.Bytes()}
	acc, err := ossl.NewRSAKey(vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6], vals[7])
	for _, v := range vals[2:] {
		clear(v)
	}
	if err != nil {
		return nil, nil // Go's crypto does the work
	}
	// The modulus in bigmod's form, for checking every result.
	// RSAPrivateKey never makes an even modulus, which bigmod refuses;
	// without one the check falls back to math/big.
	k := &rsaAccelKey{acc: acc, nBig: priv.N, e: priv.E, checkInGo: libcryptoRSACheck() != nil}
	if n, err := bigmod.NewModulus(vals[0]); err == nil && priv.E > 0 {
		k.n = n
	}
	return k, nil
}

// rsaAccelKey is prepareRSA's state: the libcrypto key, and the public
// modulus in bigmod's form (Montgomery constants made once) for the Go
// check of a result, which then costs about 17-25 us and no allocation
// against math/big's 53 us and 4.7 KB (e = 65537, 2048 bits). The Go check
// runs only when checkInGo is set: when the probe (libcryptoRSACheck) did
// not prove that this libcrypto checks its own results.
type rsaAccelKey struct {
	acc       *ossl.RSAKey
	nBig      *big.Int        // the modulus n was made from
	e         int             // and the public exponent
	n         *bigmod.Modulus // nil: check with math/big
	checkInGo bool            // check every result with the public exponent in Go
	scratch   sync.Pool       // *rsaCheckScratch
}

// ownKey reports whether the state was made from pub's key: a state used
// with another key's public half (possible only by mistake) never skips
// the Go check.
func (k *rsaAccelKey) ownKey(pub *rsa.PublicKey) bool {
	return k.e == pub.E && (k.nBig == pub.N || k.nBig.Cmp(pub.N) == 0)
}

type rsaCheckScratch struct{ x, y, z *bigmod.Nat }

// verifies reports whether sig^e mod n = block for pub, the key the
// caller holds: with the prepared modulus when it is pub's (it always is,
// unless the state was made from another key), else with math/big.
func (k *rsaAccelKey) verifies(pub *rsa.PublicKey, sig, block []byte) bool {
	if k.n == nil || k.e != pub.E || k.nBig.Cmp(pub.N) != 0 {
		return bytes.Equal(rsaPublicOp(pub, new(big.Int).SetBytes(sig)), block)
	}
	s, _ := k.scratch.Get().(*rsaCheckScratch)
	if s == nil {
		s = &rsaCheckScratch{x: bigmod.NewNat(), y: bigmod.NewNat(), z: bigmod.NewNat()}
	}
	defer k.scratch.Put(s)
	// SetBytes refuses a value not below n (or longer than n): no
	// signature of this key, and no block it could sign.
	if _, err := s.x.SetBytes(sig, k.n); err != nil {
		return false
	}
	if _, err := s.z.SetBytes(block, k.n); err != nil {
		return false
	}
	s.y.ExpShortVarTime(s.x, uint(pub.E), k.n)
	return s.y.Equal(s.z) == 1
}

// preparedState is the state a row's Prepare made for key when key comes
// prepared and the state is a T; the zero T otherwise.
func preparedState[T any](key any) T {
	var zero T
	if p, ok := key.(*Prepared); ok {
		if st, ok := p.State.(T); ok {
			return st
		}
	}
	return zero
}

// rsaAccel is the libcrypto key prepareRSA made for key, or nil.
func rsaAccel(key any) *rsaAccelKey { return preparedState[*rsaAccelKey](key) }

// digestInfoPrefixes are the DER of DigestInfo (RFC 8017 §9.2) up to the
// digest, per hash: SEQUENCE { AlgorithmIdentifier { OID, NULL }, OCTET
// STRING }. The SHA-3 OIDs are NIST's (2.16.840.1.101.3.4.2.7..10). Built
// by the first RSA PKCS #1 v1.5 operation, not at package initialisation:
// encoding them runs encoding/asn1's reflection (about 250 allocations),
// which a process that never signs with RSA does not need (docs/bench.md,
// "One-shot processes, third pass").
var digestInfoPrefixes = sync.OnceValue(func() map[crypto.Hash][]byte {
	digestInfoBuilt.Store(true)
	nist := func(n int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, n} }
	oids := map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA1:       {1, 3, 14, 3, 2, 26},
		crypto.SHA256:     nist(1),
		crypto.SHA384:     nist(2),
		crypto.SHA512:     nist(3),
		crypto.SHA224:     nist(4),
		crypto.SHA512_224: nist(5),
		crypto.SHA512_256: nist(6),
		crypto.SHA3_224:   nist(7),
		crypto.SHA3_256:   nist(8),
		crypto.SHA3_384:   nist(9),
		crypto.SHA3_512:   nist(10),
	}
	out := map[crypto.Hash][]byte{}
	for h, oid := range oids {
		der, err := asn1.Marshal(struct {
			Alg    pkix.AlgorithmIdentifier
			Digest []byte
		}{pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue}, make([]byte, h.Size())})
		if err != nil {
			panic(err)
		}
		out[h] = der[:len(der)-h.Size()]
	}
	return out
})

// digestInfoBuilt records that digestInfoPrefixes ran (TestDERTablesLazy).
var digestInfoBuilt atomic.Bool

// emsaPKCS1 is EMSA-PKCS1-v1_5-ENCODE (RFC 8017 §9.2) into a k-byte block:
// 00 01 FF..FF 00 DigestInfo(h, digest), or 00 01 FF..FF 00 msg for h == 0
// (CKM_RSA_PKCS, whose caller supplies the DigestInfo). ok is false for a
// hash without a known DigestInfo.
func emsaPKCS1(k int, h crypto.Hash, msg []byte) (em []byte, ok bool, err error) {
	var prefix []byte
	if h != 0 {
		if prefix, ok = digestInfoPrefixes()[h]; !ok {
			return nil, false, nil
		}
		if len(msg) != h.Size() {
			return nil, true, fmt.Errorf("mechanisms: rsa pkcs: digest of %d bytes for %v: %w", len(msg), h, ck.CKR_DATA_LEN_RANGE)
		}
	}
	tLen := len(prefix) + len(msg)
	if k < tLen+pkcs1Overhead {
		return nil, true, fmt.Errorf("mechanisms: rsa pkcs: %d-byte DigestInfo in a %d-byte key: %w", tLen, k, ck.CKR_KEY_SIZE_RANGE)
	}
	em = make([]byte, k)
	em[1] = 1
	for i := 2; i < k-tLen-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-tLen:], prefix)
	copy(em[k-len(msg):], msg)
	return em, true, nil
}

// emsaPSS is EMSA-PSS-ENCODE (RFC 8017 §9.1.1) of a digest for a modulus
// of modBits bits, MGF1 with the same hash, returned as a k-byte block
// (left-padded with a zero byte when emLen < k). The caller (pssOptions)
// has checked emLen >= hLen + sLen + 2.
func emsaPSS(rand io.Reader, k, modBits int, h crypto.Hash, digest []byte, sLen int) ([]byte, error) {
	hLen := h.Size()
	if len(digest) != hLen {
		return nil, fmt.Errorf("mechanisms: rsa pss: digest of %d bytes for %v: %w", len(digest), h, ck.CKR_DATA_LEN_RANGE)
	}
	emBits := modBits - 1
	emLen := (emBits + 7) / 8
	if emLen < hLen+sLen+2 || emLen > k {
		return nil, fmt.Errorf("mechanisms: rsa pss: salt of %d bytes in a %d-bit key: %w", sLen, modBits, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	block := make([]byte, k)
	em := block[k-emLen:]
	db, hh := em[:emLen-hLen-1], em[emLen-hLen-1:emLen-1]
	salt := db[len(db)-sLen:]
	if _, err := io.ReadFull(rand, salt); err != nil {
		return nil, cryptoErr("rsa pss salt", err)
	}
	hf := h.New()
	var zeros [8]byte
	hf.Write(zeros[:])
	hf.Write(digest)
	hf.Write(salt)
	hf.Sum(hh[:0])
	db[len(db)-sLen-1] = 1 // DB = PS || 0x01 || salt, PS all zero
	mgf1XOR(db, hf, hh)
	db[0] &= 0xff >> (8*emLen - emBits)
	em[emLen-1] = 0xbc
	return block, nil
}

// mgf1XOR XORs MGF1(seed, len(out)) (RFC 8017 B.2.1) into out.
func mgf1XOR(out []byte, hf hash.Hash, seed []byte) {
	var counter [4]byte
	var sum []byte
	for done := 0; done < len(out); {
		hf.Reset()
		hf.Write(seed)
		hf.Write(counter[:])
		sum = hf.Sum(sum[:0])
		for i := 0; i < len(sum) && done < len(out); i++ {
			out[done] ^= sum[i]
			done++
		}
		for i := 3; i >= 0; i-- {
			if counter[i]++; counter[i] != 0 {
				break
			}
		}
	}
}

// accelMismatches counts libcrypto private operations whose result failed
// the check with the public key (and were recomputed in Go).
var accelMismatches atomic.Uint64

// rsaAccelSign computes the private operation on a k-byte block with the
// libcrypto key into dst. A wrong result must never leave (a faulty CRT
// half reveals a factor of n, the Bellcore attack). libcrypto's
// RSA_PKCS1_OpenSSL checks its CRT result with the public exponent and
// recomputes it without CRT when it differs; when the probe proved that of
// the libcrypto in this process (libcryptoRSACheck), the result leaves as
// it is. Otherwise it is checked here with the public exponent
// (rsaAccelKey.verifies, about 17-25 us, 7% of a 2048-bit signature), and
// one that fails is recomputed with Go's constant-time operation and
// counted.
func rsaAccelSign(dst []byte, priv *rsa.PrivateKey, acc *rsaAccelKey, block []byte) ([]byte, error) {
	whole, out := grow(dst, len(block))
	if err := acc.acc.Private(out, block); err == nil {
		if (!acc.checkInGo && acc.ownKey(&priv.PublicKey)) || acc.verifies(&priv.PublicKey, out, block) {
			return whole, nil
		}
	}
	accelMismatches.Add(1)
	res, err := rsaRawPrivate(priv, nil, new(big.Int).SetBytes(block))
	if err != nil {
		return dst, err
	}
	copy(out, res)
	clear(res)
	return whole, nil
}

// The probe of libcrypto's own check of its RSA results. OpenSSL's
// RSA_PKCS1_OpenSSL (rsa_ossl_mod_exp) raises its CRT result to e mod n
// and, when that is not the input, recomputes the result as input^d mod
// n. The probe makes that happen: a throwaway 512-bit key whose dP is
// wrong (one bit flipped), the private operation the module uses
// (ossl.RSAKey.Private), and the result compared with the right one. Only
// if they are equal did libcrypto notice the faulty CRT half and
// recompute; then every RSA key prepared in this process skips the Go
// check. Once per process, at the first RSA key prepared with libcrypto: a
// forked child's fresh copy of the module (docs/fork.md) has globals of its
// own and probes again, in the same libcrypto.

// rsaProbePrimeBits is the size of the probe key's primes: 256, a 512-bit
// modulus, the same code in libcrypto as any size (rsa_ossl_mod_exp) and
// a few milliseconds of prime search (2 x 512 bits took 11-37 ms on a
// loaded machine, once per process and per forked child).
const rsaProbePrimeBits = 256

// rsaProbeRuns counts the probes run in this process.
var rsaProbeRuns atomic.Uint64

// testOnlyRSAProbeResult, when set, sees (and may change) the probe's
// result before it is compared: a test makes it wrong, as a libcrypto
// without the check would return it.
var testOnlyRSAProbeResult func(out []byte)

// libcryptoRSACheck runs the probe once: nil when libcrypto's check is
// proven, why not otherwise.
var libcryptoRSACheck = sync.OnceValue(probeLibcryptoRSACheck)

// rsaProbeNotice holds the probe's outcome until TakeRSAProbe hands it out.
var rsaProbeNotice atomic.Pointer[rsaProbeOutcome]

type rsaProbeOutcome struct{ err error }

func probeLibcryptoRSACheck() error {
	rsaProbeRuns.Add(1)
	err := runRSAProbe()
	if err != nil {
		err = fmt.Errorf("mechanisms: rsa results are checked in go: %w", err)
	}
	rsaProbeNotice.Store(&rsaProbeOutcome{err: err})
	return err
}

// TakeRSAProbe returns, to its first caller after the probe has run, the
// probe's outcome (for the token to log once): ran is false before the
// probe and for every later caller; err is nil when libcrypto's own check
// of its RSA results was proven and the Go check is off.
func TakeRSAProbe() (ran bool, err error) {
	if rsaProbeNotice.Load() == nil {
		return false, nil
	}
	o := rsaProbeNotice.Swap(nil)
	if o == nil {
		return false, nil
	}
	return true, o.err
}

func runRSAProbe() error {
	if err := ossl.Available(); err != nil {
		return err
	}
	e := big.NewInt(65537)
	one := big.NewInt(1)
	var p, q, d *big.Int
	for d == nil {
		var err error
		if p, err = rand.Prime(rand.Reader, rsaProbePrimeBits); err != nil {
			return fmt.Errorf("probe key: %w", err)
		}
		if q, err = rand.Prime(rand.Reader, rsaProbePrimeBits); err != nil {
			return fmt.Errorf("probe key: %w", err)
		}
		if p.Cmp(q) == 0 {
			continue
		}
		p1, q1 := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
		d = new(big.Int).ModInverse(e, new(big.Int).Mul(p1, q1)) // nil unless gcd(e, (p-1)(q-1)) = 1
	}
	n := new(big.Int).Mul(p, q)
	dP := new(big.Int).Mod(d, new(big.Int).Sub(p, one))
	dQ := new(big.Int).Mod(d, new(big.Int).Sub(q, one))
	qInv := new(big.Int).ModInverse(q, p)
	// The fault: dP with its lowest bit flipped. With the input 2 (times
	// libcrypto's blinding factor r^e) the half mod p is then off by a
	// factor of the input or its inverse, not 1 but with probability 1/p.
	bad := new(big.Int).Xor(dP, one)
	key, err := ossl.NewRSAKey(n.Bytes(), e.Bytes(), d.Bytes(), p.Bytes(), q.Bytes(), bad.Bytes(), dQ.Bytes(), qInv.Bytes())
	if err != nil {
		return fmt.Errorf("probe key: %w", err)
	}
	k := len(n.Bytes())
	in := big.NewInt(2)
	want := new(big.Int).Exp(in, d, n).FillBytes(make([]byte, k))
	out := make([]byte, k)
	if err := key.Private(out, in.FillBytes(make([]byte, k))); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	if testOnlyRSAProbeResult != nil {
		testOnlyRSAProbeResult(out)
	}
	if !bytes.Equal(out, want) {
		return fmt.Errorf("libcrypto %s returned a wrong result for a key with a faulty CRT exponent: it does not check its results", ossl.Version())
	}
	return nil
}

// prepareECDSA is the ECDSA rows' Prepare: a libcrypto key for a P-256
// private key, nothing otherwise (Go's P-384 and P-521 are faster than
// libcrypto's generic code, and it has no secp256k1).
func prepareECDSA(key any) (any, error) {
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() || ossl.Available() != nil {
		return nil, nil
	}
	// PrivateKey.Bytes returns the key's own cached scalar, not a copy:
	// the copy is what gets cleared.
	b, err := priv.Bytes()
	if err != nil {
		return nil, nil
	}
	d := bytes.Clone(b)
	acc, err := ossl.NewP256Key(d)
	clear(d)
	if err != nil {
		return nil, nil
	}
	return acc, nil
}

// ecdsaAccel is the libcrypto key prepareECDSA made for key, or nil.
func ecdsaAccel(key any) *ossl.P256Key { return preparedState[*ossl.P256Key](key) }
