package mechanisms

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
)

// Digests of "abc" and of the empty message: FIPS 180-4's example values
// (NIST CSRC "Cryptographic Standards and Guidelines: Examples with
// Intermediate Values", SHA-1 ... SHA-512/256) and FIPS 202's (SHA3-224 ...
// SHA3-512, same page).
var digestVectors = []struct {
	mech       ck.MechanismType
	abc, empty string
}{
	{ck.CKM_SHA_1, "a9993e364706816aba3e25717850c26c9cd0d89d", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
	{ck.CKM_SHA224, "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7", "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f"},
	{ck.CKM_SHA256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	{ck.CKM_SHA384, "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
		"38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b"},
	{ck.CKM_SHA512, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
		"cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"},
	{ck.CKM_SHA512_224, "4634270f707b6a54daae7530460842e20e37ed265ceee9a43e8924aa", "6ed0dd02806fa89e25de060c19d3ac86cabb87d6a0ddd05c333b84f4"},
	{ck.CKM_SHA512_256, "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23", "c672b8d1ef56ed28ab87c3622c5114069bdd3ad7b8f9737498d0c01ecef0967a"},
	{ck.CKM_SHA3_224, "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf", "6b4e03423667dbb73b6e15454f0eb1abd4597f9a1b078e3f5b5a6bc7"},
	{ck.CKM_SHA3_256, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532", "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"},
	{ck.CKM_SHA3_384, "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25",
		"0c63a75b845e4f7d01107d852e4c2485c51a50aaaa94fc61995e71bbee983a2ac3713831264adb47fb6bd1e058d5f004"},
	{ck.CKM_SHA3_512, "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
		"a69f73cca23a9ac5c8b567dc185a756e97c982164fe25859e0d1dcc1475c80a615b2123af1f5f94c11e3e9402c3ac558f500199d95b6d3e301758586281dcd26"},
}

func TestDigestVectors(t *testing.T) {
	require.Len(t, digestVectors, len(digestAlgs), "a vector per digest")
	for _, v := range digestVectors {
		m, ok := Lookup(v.mech)
		require.True(t, ok, v.mech)
		for msg, want := range map[string]string{"abc": v.abc, "": v.empty} {
			d, err := m.Digest(nil)
			require.NoError(t, err)
			require.NoError(t, d.Update([]byte(msg)))
			assert.Equal(t, unhex(want), d.Sum(nil), "%v(%q)", v.mech, msg)
			assert.Equal(t, len(want)/2, d.Size(), v.mech)
		}
	}
}

// C_DigestUpdate and C_DigestKey feed Update: it must not allocate.
func TestDigestUpdateAllocs(t *testing.T) {
	testenv.NoAllocCount(t)
	m, _ := Lookup(ck.CKM_SHA256)
	d, err := m.Digest(nil)
	require.NoError(t, err)
	p := make([]byte, 4096)
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = d.Update(p) }))
}

// PSS and OAEP hashes keep what rsa.go offered: SHA-1 and SHA-2 with their
// own MGF1, nothing else.
func TestHashParams(t *testing.T) {
	_, err := hashParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA256)
	require.NoError(t, err)
	_, err = hashParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA1)
	assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	_, err = hashParams(ck.CKM_SHA3_256, 0)
	assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	_, err = hashParams(ck.CKM_SHA3_256, ck.CKG_MGF1_SHA3_256)
	assert.ErrorIs(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	var mechs []ck.MechanismType
	for _, h := range hashes {
		mechs = append(mechs, h.mech)
	}
	assert.Equal(t, []ck.MechanismType{ck.CKM_SHA_1, ck.CKM_SHA224, ck.CKM_SHA256, ck.CKM_SHA384, ck.CKM_SHA512}, mechs)
}

// SHA-256 of 1 MiB through the row (what C_Digest and C_DigestUpdate cost
// in this layer).
func BenchmarkSHA256Digest1MiB(b *testing.B) {
	m, _ := Lookup(ck.CKM_SHA256)
	msg := make([]byte, 1<<20)
	sum := make([]byte, 0, 32)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		d, _ := m.Digest(nil)
		_ = d.Update(msg)
		sum = d.Sum(sum[:0])
	}
}

// HMAC-SHA-256 of 64 bytes: a new operation each time (C_SignInit +
// C_Sign), and a Reset one (what a token re-using the operation pays).
func BenchmarkHMACSHA256Sign64(b *testing.B) {
	m, _ := Lookup(ck.CKM_SHA256_HMAC)
	key := make([]byte, 32)
	msg := make([]byte, 64)
	mac := make([]byte, 0, 32)
	b.Run("init+sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s, err := m.Sign(key, nil)
			if err != nil {
				b.Fatal(err)
			}
			_ = s.Update(msg)
			mac, _ = s.Sign(mac[:0])
		}
	})
	b.Run("reset+sign", func(b *testing.B) {
		s, err := m.Sign(key, nil)
		if err != nil {
			b.Fatal(err)
		}
		r := s.(interface{ Reset() })
		b.ReportAllocs()
		for b.Loop() {
			r.Reset()
			_ = s.Update(msg)
			mac, _ = s.Sign(mac[:0])
		}
	})
}

// A digester handed back (Release) refuses use, and the next one of its
// hash starts empty whether or not it is the same memory.
func TestDigestRelease(t *testing.T) {
	m, _ := Lookup(ck.CKM_SHA256)
	d, err := m.Digest(nil)
	require.NoError(t, err)
	require.NoError(t, d.Update([]byte("left over")))
	r, ok := d.(Releaser)
	require.True(t, ok, "digesters go back to a pool")
	r.Release()
	r.Release() // a second Release does nothing
	assert.ErrorIs(t, d.Update([]byte("x")), ck.CKR_OPERATION_NOT_INITIALIZED)
	assert.Zero(t, d.Size())
	assert.Empty(t, d.Sum(nil))
	for range 2 {
		e, err := m.Digest(nil)
		require.NoError(t, err)
		require.NoError(t, e.Update([]byte("abc")))
		assert.Equal(t, unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), e.Sum(nil))
		e.(Releaser).Release()
	}
}

// A digester that digested a secret (C_DigestKey's UpdateSecret) is not
// pooled: a hash's Reset leaves the tail of its last input in the state's
// buffer, which would then wait for the next C_DigestInit of any session.
// Digesters that saw no secret still come back from the pool.
func TestDigestSecretNotPooled(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef-tail")
	for _, mt := range []ck.MechanismType{ck.CKM_SHA_1, ck.CKM_SHA256, ck.CKM_SHA512, ck.CKM_SHA3_256} {
		m, ok := Lookup(mt)
		require.True(t, ok)
		secret := map[Digester]bool{}
		for range 20 {
			d, err := m.Digest(nil)
			require.NoError(t, err)
			require.False(t, secret[d], "%v: a digester that digested a key was handed out again", mt)
			sd, ok := d.(SecretDigester)
			require.True(t, ok, "%v: digesters take secrets", mt)
			require.NoError(t, sd.UpdateSecret(key))
			d.Sum(nil)
			d.(Releaser).Release()
			assert.ErrorIs(t, sd.UpdateSecret(key), ck.CKR_OPERATION_NOT_INITIALIZED, "%v: released", mt)
			secret[d] = true
			// A digester without a secret goes back to the pool as before.
			e, err := m.Digest(nil)
			require.NoError(t, err)
			require.False(t, secret[e], "%v: a digester that digested a key was handed out again", mt)
			e.(Releaser).Release()
		}
	}
}
