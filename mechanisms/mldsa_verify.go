package mechanisms

import (
	"bytes"
	"crypto/mldsa"
	"crypto/sha3"
	"sync"
)

// ML-DSA verification from an external μ, written from FIPS 204
// (Algorithm 8, ML-DSA.Verify_internal, and the helpers it names). The
// toolchain's crypto/mldsa signs an external μ (crypto.MLDSAMu) but only
// verifies messages, and HashML-DSA needs μ over 1 || len(ctx) || ctx ||
// OID || PH(M). Verification handles public data only, so nothing here
// is constant time.

const (
	mlq    = 8380417 // q = 2^23 - 2^13 + 1
	mln    = 256
	mld    = 13      // dropped bits of t
	mlInvN = 8347681 // 256^-1 mod q
)

// mldsaVerifyParams are FIPS 204 Table 1's values for one parameter set.
type mldsaVerifyParams struct {
	k, l   int
	tau    int   // ±1 coefficients of c
	lambda int   // collision strength: c̃ is lambda/4 bytes
	gamma1 int32 // coefficient range of y
	gamma2 int32 // low-order rounding range
	beta   int32 // tau * eta
	omega  int   // maximum number of 1s in the hint
}

var (
	mldsa44Verify = mldsaVerifyParams{k: 4, l: 4, tau: 39, lambda: 128, gamma1: 1 << 17, gamma2: (mlq - 1) / 88, beta: 78, omega: 80}
	mldsa65Verify = mldsaVerifyParams{k: 6, l: 5, tau: 49, lambda: 192, gamma1: 1 << 19, gamma2: (mlq - 1) / 32, beta: 196, omega: 55}
	mldsa87Verify = mldsaVerifyParams{k: 8, l: 7, tau: 60, lambda: 256, gamma1: 1 << 19, gamma2: (mlq - 1) / 32, beta: 120, omega: 75}
)

func mldsaVerifyParamsOf(p mldsa.Parameters) mldsaVerifyParams {
	switch p {
	case mldsa.MLDSA44():
		return mldsa44Verify
	case mldsa.MLDSA65():
		return mldsa65Verify
	}
	return mldsa87Verify
}

// zBits is the bit length of a packed z coefficient: bitlen(2γ1 - 1).
func (p mldsaVerifyParams) zBits() int {
	if p.gamma1 == 1<<17 {
		return 18
	}
	return 20
}

// w1Bits is the bit length of a w1 coefficient: bitlen((q-1)/(2γ2) - 1).
func (p mldsaVerifyParams) w1Bits() int {
	if p.gamma2 == (mlq-1)/88 {
		return 6
	}
	return 4
}

func (p mldsaVerifyParams) pkSize() int  { return 32 + 320*p.k }
func (p mldsaVerifyParams) sigSize() int { return p.lambda/4 + p.l*32*p.zBits() + p.omega + p.k }

type mlPoly [mln]int32 // coefficients in [0, q) unless said otherwise

// mlZetas returns the table zetas[i] = ζ^BitRev8(i) mod q with ζ = 1753
// (FIPS 204 Appendix B), computed on first use, not at package init:
// 256 powers by repeated multiplication (~33,000 products) were half of
// the package's initialisation, paid by every process that loads the
// library, pkcs11-tool -L included (docs/bench.md, "Start-up, second
// pass"). TestZetasLazy checks that init leaves it unbuilt.
func mlZetas() *[mln]int32 {
	mlZetasOnce.Do(func() {
		var z [mln]int32
		for i := range z {
			r := 0
			for b := 0; b < 8; b++ {
				r |= (i >> b & 1) << (7 - b)
			}
			x := int64(1)
			for range r {
				x = x * 1753 % mlq
			}
			z[i] = int32(x)
		}
		mlZetasTab = &z
	})
	return mlZetasTab
}

var (
	mlZetasOnce sync.Once
	mlZetasTab  *[mln]int32 // set once by mlZetas
)

func mlMul(a, b int32) int32 { return int32(int64(a) * int64(b) % mlq) }
func mlAdd(a, b int32) int32 { return (a + b) % mlq }
func mlSub(a, b int32) int32 { return (a - b + mlq) % mlq }

// ntt is Algorithm 41.
func (w *mlPoly) ntt() {
	zetas := mlZetas()
	m := 0
	for length := 128; length >= 1; length /= 2 {
		for start := 0; start < mln; start += 2 * length {
			m++
			z := zetas[m]
			for j := start; j < start+length; j++ {
				t := mlMul(z, w[j+length])
				w[j+length] = mlSub(w[j], t)
				w[j] = mlAdd(w[j], t)
			}
		}
	}
}

// invNTT is Algorithm 42.
func (w *mlPoly) invNTT() {
	zetas := mlZetas()
	m := mln
	for length := 1; length < mln; length *= 2 {
		for start := 0; start < mln; start += 2 * length {
			m--
			z := mlq - zetas[m]
			for j := start; j < start+length; j++ {
				t := w[j]
				w[j] = mlAdd(t, w[j+length])
				w[j+length] = mlMul(z, mlSub(t, w[j+length]))
			}
		}
	}
	for j := range w {
		w[j] = mlMul(w[j], mlInvN)
	}
}

// bitReader reads little-endian bit fields (BitsToInteger over
// BytesToBits, FIPS 204 Algorithms 9-14).
type bitReader struct {
	b   []byte
	pos int // in bits
}

func (r *bitReader) read(n int) uint32 {
	var v uint32
	for i := 0; i < n; i++ {
		bit := r.b[(r.pos+i)/8] >> ((r.pos + i) % 8) & 1
		v |= uint32(bit) << i
	}
	r.pos += n
	return v
}

type bitWriter struct {
	b   []byte
	pos int
}

func (w *bitWriter) write(v uint32, n int) {
	for i := 0; i < n; i++ {
		if w.pos%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte(v>>i&1) << (w.pos % 8)
		w.pos++
	}
}

// expandA is Algorithm 32 with RejNTTPoly (Algorithm 30) and
// CoeffFromThreeBytes (Algorithm 14): Â[r][s] from SHAKE128(ρ || s || r).
func expandA(p mldsaVerifyParams, rho []byte) [][]mlPoly {
	a := make([][]mlPoly, p.k)
	var seed [34]byte
	copy(seed[:], rho)
	for r := range a {
		a[r] = make([]mlPoly, p.l)
		for s := range a[r] {
			seed[32], seed[33] = byte(s), byte(r)
			h := sha3.NewSHAKE128()
			h.Write(seed[:])
			var buf [168]byte
			j := 0
			for j < mln {
				h.Read(buf[:])
				for i := 0; i+3 <= len(buf) && j < mln; i += 3 {
					z := int32(buf[i]) | int32(buf[i+1])<<8 | int32(buf[i+2]&0x7f)<<16
					if z < mlq {
						a[r][s][j] = z
						j++
					}
				}
			}
		}
	}
	return a
}

// sampleInBall is Algorithm 29: c with τ coefficients ±1 from SHAKE256(c̃).
func sampleInBall(tau int, ctilde []byte) mlPoly {
	var c mlPoly
	h := sha3.NewSHAKE256()
	h.Write(ctilde)
	var s [8]byte
	h.Read(s[:])
	signs := uint64(0)
	for i := range s {
		signs |= uint64(s[i]) << (8 * i)
	}
	var one [1]byte
	for i := mln - tau; i < mln; i++ {
		for {
			h.Read(one[:])
			if int(one[0]) <= i {
				break
			}
		}
		j := int(one[0])
		c[i] = c[j]
		if signs>>(i+tau-mln)&1 == 1 {
			c[j] = mlq - 1
		} else {
			c[j] = 1
		}
	}
	return c
}

// hintBitUnpack is Algorithm 21; ok is false for a malformed hint (⊥):
// positions not strictly increasing within a polynomial, a count out of
// order or over ω, or nonzero padding.
func hintBitUnpack(p mldsaVerifyParams, y []byte) (h [][mln]bool, ok bool) {
	h = make([][mln]bool, p.k)
	index := 0
	for i := 0; i < p.k; i++ {
		end := int(y[p.omega+i])
		if end < index || end > p.omega {
			return nil, false
		}
		first := index
		for index < end {
			if index > first && y[index-1] >= y[index] {
				return nil, false
			}
			h[i][y[index]] = true
			index++
		}
	}
	for i := index; i < p.omega; i++ {
		if y[i] != 0 {
			return nil, false
		}
	}
	return h, true
}

// useHint is Algorithm 40 with Decompose (Algorithm 36); r in [0, q).
func useHint(gamma2 int32, hint bool, r int32) int32 {
	m := (mlq - 1) / (2 * gamma2)
	r0 := r % (2 * gamma2)
	if r0 > gamma2 {
		r0 -= 2 * gamma2
	}
	var r1 int32
	if r-r0 == mlq-1 {
		r1, r0 = 0, r0-1
	} else {
		r1 = (r - r0) / (2 * gamma2)
	}
	if !hint {
		return r1
	}
	if r0 > 0 {
		return (r1 + 1) % m
	}
	return (r1 - 1 + m) % m
}

// mldsaTr is tr = H(pk, 64).
func mldsaTr(pk []byte) []byte {
	h := sha3.NewSHAKE256()
	h.Write(pk)
	tr := make([]byte, 64)
	h.Read(tr)
	return tr
}

// mldsaMu is μ = H(tr || M', 64) with M' = prefix || msg.
func mldsaMu(pk []byte, prefix ...[]byte) []byte {
	h := sha3.NewSHAKE256()
	h.Write(mldsaTr(pk))
	for _, b := range prefix {
		h.Write(b)
	}
	mu := make([]byte, 64)
	h.Read(mu)
	return mu
}

// verifyMu is ML-DSA.Verify_internal (FIPS 204 Algorithm 8) from step 6 on,
// given μ: it reports whether sig is a valid signature of μ under the
// encoded public key pk of parameter set params. Wrong lengths are false.
func verifyMu(params mldsa.Parameters, pk, mu, sig []byte) bool {
	p := mldsaVerifyParamsOf(params)
	if len(pk) != p.pkSize() || len(sig) != p.sigSize() || len(mu) != 64 {
		return false
	}
	// pkDecode (Algorithm 23): ρ and t1 (10-bit coefficients).
	rho := pk[:32]
	t1 := make([]mlPoly, p.k)
	br := &bitReader{b: pk[32:]}
	for i := range t1 {
		for j := range t1[i] {
			t1[i][j] = int32(br.read(10))
		}
	}
	// sigDecode (Algorithm 27): c̃, z (BitUnpack with a = γ1-1, b = γ1), h.
	ctilde := sig[:p.lambda/4]
	zLen := p.l * 32 * p.zBits()
	z := make([]mlPoly, p.l)
	br = &bitReader{b: sig[p.lambda/4 : p.lambda/4+zLen]}
	for i := range z {
		for j := range z[i] {
			v := p.gamma1 - int32(br.read(p.zBits()))
			// ||z||∞ < γ1 - β (step 13), checked here on the centred value.
			if v >= p.gamma1-p.beta || -v >= p.gamma1-p.beta {
				return false
			}
			if v < 0 {
				v += mlq
			}
			z[i][j] = v
		}
	}
	h, ok := hintBitUnpack(p, sig[p.lambda/4+zLen:])
	if !ok {
		return false
	}
	a := expandA(p, rho)
	c := sampleInBall(p.tau, ctilde)
	c.ntt()
	for i := range z {
		z[i].ntt()
	}
	// w'_Approx = NTT^-1(Â ∘ NTT(z) - NTT(c) ∘ NTT(t1 · 2^d)), then UseHint
	// and w1Encode (Algorithm 28).
	bw := &bitWriter{b: make([]byte, 0, p.k*32*p.w1Bits())}
	for r := 0; r < p.k; r++ {
		var t mlPoly
		for j := range t {
			t[j] = mlMul(t1[r][j], 1<<mld)
		}
		t.ntt()
		var w mlPoly
		for j := range w {
			acc := int64(0)
			for s := 0; s < p.l; s++ {
				acc += int64(a[r][s][j]) * int64(z[s][j]) % mlq
			}
			acc -= int64(c[j]) * int64(t[j]) % mlq
			w[j] = int32(((acc % mlq) + mlq) % mlq)
		}
		w.invNTT()
		for j := range w {
			bw.write(uint32(useHint(p.gamma2, h[r][j], w[j])), p.w1Bits())
		}
	}
	// c̃' = H(μ || w1Encode(w1'), λ/4).
	hh := sha3.NewSHAKE256()
	hh.Write(mu)
	hh.Write(bw.b)
	want := make([]byte, p.lambda/4)
	hh.Read(want)
	return bytes.Equal(want, ctilde)
}
