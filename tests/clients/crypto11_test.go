package clients

// github.com/ThalesIgnite/crypto11 against libgohsm.so: gohsm as the
// crypto.Signer / crypto.Decrypter / cipher.AEAD backend of a Go program,
// every result checked with the standard library.
//
// crypto11 loads the module into this test process through miekg/pkcs11:
// two Go runtimes in one process work in practice but are unsupported
// upstream, so this is one proof among the subprocess clients, not the
// only one. The module reads GOHSM_CONF through the C library's getenv in
// C_Initialize; t.Setenv reaches it (os.Setenv calls setenv in a cgo
// program).

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ThalesIgnite/crypto11"
	"github.com/stretchr/testify/require"
)

const (
	crypto11Goroutines = 8
	crypto11Iterations = 25
)

func TestCrypto11(t *testing.T) {
	p11tool := needTool(t, "pkcs11-tool", "opensc")
	h := newHSM(t, "crypto11")
	for _, kv := range h.Env {
		k, v, _ := bytes.Cut([]byte(kv), []byte("="))
		t.Setenv(string(k), string(v))
	}
	// A known AES key (imported with pkcs11-tool) to compare crypto11's
	// GCM with the standard library's.
	aesKAT := make([]byte, 32)
	_, err := rand.Read(aesKAT)
	require.NoError(t, err)
	ok := check(t, "crypto11/setup-known-aes-key", func(t *testing.T) {
		p11toolImportAES(t, h, p11tool, aesKAT, "c4", "c11-aes-kat")
	})
	require.True(t, ok)

	config := func(pin string, ivLen int) *crypto11.Config {
		return &crypto11.Config{Path: h.Lib, TokenLabel: h.Label, Pin: pin, GCMIVLength: ivLen}
	}

	check(t, "crypto11/wrong-pin", func(t *testing.T) {
		ctx, err := crypto11.Configure(config("user:wrongpassword", 12))
		if err == nil {
			ctx.Close()
		}
		require.Error(t, err)
		// crypto11 wraps with pkg/errors 0.8, which has no Unwrap.
		require.ErrorContains(t, err, "CKR_PIN_INCORRECT")
	})

	var ctx *crypto11.Context
	ok = check(t, "crypto11/configure", func(t *testing.T) {
		var err error
		ctx, err = crypto11.Configure(config(userPIN, 12))
		require.NoError(t, err)
	})
	require.True(t, ok, "crypto11: Configure failed")
	closed := false
	defer func() {
		if !closed {
			require.NoError(t, ctx.Close())
		}
	}()

	var ecPub *ecdsa.PublicKey
	check(t, "crypto11/ecdsa-p256-signer", func(t *testing.T) {
		s, err := ctx.GenerateECDSAKeyPairWithLabel([]byte{0xc1}, []byte("c11-ec"), elliptic.P256())
		require.NoError(t, err)
		pub, isEC := s.Public().(*ecdsa.PublicKey)
		require.True(t, isEC, "%T", s.Public())
		require.Equal(t, elliptic.P256(), pub.Curve)
		ecPub = pub
		c11ParallelSign(t, func(digest []byte) error {
			sig, err := s.Sign(rand.Reader, digest, crypto.SHA256)
			if err != nil {
				return err
			}
			if !ecdsa.VerifyASN1(pub, digest, sig) {
				return errors.New("ecdsa.VerifyASN1 rejects the token's signature")
			}
			digest[0] ^= 1
			if ecdsa.VerifyASN1(pub, digest, sig) {
				return errors.New("ecdsa.VerifyASN1 accepts a tampered digest")
			}
			return nil
		})
	})

	var rsaKey crypto11.SignerDecrypter
	var rsaPub *rsa.PublicKey
	ok = check(t, "crypto11/rsa-2048-generate", func(t *testing.T) {
		var err error
		rsaKey, err = ctx.GenerateRSAKeyPairWithLabel([]byte{0xc2}, []byte("c11-rsa"), 2048)
		require.NoError(t, err)
		pub, isRSA := rsaKey.Public().(*rsa.PublicKey)
		require.True(t, isRSA, "%T", rsaKey.Public())
		require.Equal(t, 2048, pub.N.BitLen())
		rsaPub = pub
	})
	check(t, "crypto11/rsa-pkcs1v15-signer", func(t *testing.T) {
		require.True(t, ok, "needs crypto11/rsa-2048-generate")
		c11ParallelSign(t, func(digest []byte) error {
			sig, err := rsaKey.Sign(rand.Reader, digest, crypto.SHA256)
			if err != nil {
				return err
			}
			if err := rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, digest, sig); err != nil {
				return fmt.Errorf("rsa.VerifyPKCS1v15: %w", err)
			}
			digest[0] ^= 1
			if rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, digest, sig) == nil {
				return errors.New("rsa.VerifyPKCS1v15 accepts a tampered digest")
			}
			return nil
		})
	})
	check(t, "crypto11/rsa-pss-signer", func(t *testing.T) {
		require.True(t, ok, "needs crypto11/rsa-2048-generate")
		opts := &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}
		c11ParallelSign(t, func(digest []byte) error {
			sig, err := rsaKey.Sign(rand.Reader, digest, opts)
			if err != nil {
				return err
			}
			if err := rsa.VerifyPSS(rsaPub, crypto.SHA256, digest, sig, opts); err != nil {
				return fmt.Errorf("rsa.VerifyPSS: %w", err)
			}
			digest[0] ^= 1
			if rsa.VerifyPSS(rsaPub, crypto.SHA256, digest, sig, opts) == nil {
				return errors.New("rsa.VerifyPSS accepts a tampered digest")
			}
			return nil
		})
	})
	check(t, "crypto11/rsa-oaep-decrypter", func(t *testing.T) {
		require.True(t, ok, "needs crypto11/rsa-2048-generate")
		msg := []byte("a session key, say")
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, rsaPub, msg, nil)
		require.NoError(t, err)
		pt, err := rsaKey.Decrypt(rand.Reader, ct, &rsa.OAEPOptions{Hash: crypto.SHA256})
		require.NoError(t, err)
		require.Equal(t, msg, pt)
		ct[len(ct)/2] ^= 1
		_, err = rsaKey.Decrypt(rand.Reader, ct, &rsa.OAEPOptions{Hash: crypto.SHA256})
		require.Error(t, err, "a tampered OAEP ciphertext decrypts")
	})

	check(t, "crypto11/aes-256-gcm-aead", func(t *testing.T) {
		key, err := ctx.GenerateSecretKeyWithLabel([]byte{0xc3}, []byte("c11-aes"), 256, crypto11.CipherAES)
		require.NoError(t, err)
		aead, err := key.NewGCM()
		require.NoError(t, err)
		require.Equal(t, 12, aead.NonceSize())
		require.Equal(t, 16, aead.Overhead())
		c11Parallel(t, func(i int) error {
			nonce := make([]byte, aead.NonceSize())
			msg := make([]byte, i*37%1000)
			if _, err := rand.Read(nonce); err != nil {
				return err
			}
			if _, err := rand.Read(msg); err != nil {
				return err
			}
			aad := []byte(fmt.Sprintf("aad %d", i))
			ct := aead.Seal(nil, nonce, msg, aad)
			if len(ct) != len(msg)+16 {
				return fmt.Errorf("sealed %d bytes into %d", len(msg), len(ct))
			}
			pt, err := aead.Open(nil, nonce, ct, aad)
			if err != nil {
				return fmt.Errorf("open: %w", err)
			}
			if !bytes.Equal(pt, msg) {
				return errors.New("open differs from the plaintext")
			}
			bad := bytes.Clone(ct)
			bad[int(nonce[0])%len(bad)] ^= 0x20
			if _, err := aead.Open(nil, nonce, bad, aad); err == nil {
				return errors.New("a tampered ciphertext opens")
			}
			if _, err := aead.Open(nil, nonce, ct, []byte("other aad")); err == nil {
				return errors.New("a ciphertext opens with other AAD")
			}
			nonce[0] ^= 1
			if _, err := aead.Open(nil, nonce, ct, aad); err == nil {
				return errors.New("a ciphertext opens with another nonce")
			}
			return nil
		})
	})

	// The same known key through crypto11 and crypto/cipher: identical
	// ciphertexts, with the standard 12-byte nonce and with crypto11's
	// default 16-byte one (GCM's GHASH-derived counter block).
	for _, ivLen := range []int{12, 16} {
		check(t, fmt.Sprintf("crypto11/aes-gcm-known-key-iv%d", ivLen), func(t *testing.T) {
			c := ctx
			if ivLen != 12 {
				var err error
				c, err = crypto11.Configure(config(userPIN, ivLen))
				require.NoError(t, err)
				defer func() { require.NoError(t, c.Close()) }()
			}
			key, err := c.FindKey([]byte{0xc4}, nil)
			require.NoError(t, err)
			require.NotNil(t, key, "no key with CKA_ID c4")
			aead, err := key.NewGCM()
			require.NoError(t, err)
			block, err := aes.NewCipher(aesKAT)
			require.NoError(t, err)
			soft, err := cipher.NewGCMWithNonceSize(block, ivLen)
			require.NoError(t, err)
			for i := 0; i < 10; i++ {
				nonce := make([]byte, ivLen)
				msg := make([]byte, i*100)
				_, _ = rand.Read(nonce)
				_, _ = rand.Read(msg)
				aad := []byte{byte(i)}
				ct := aead.Seal(nil, nonce, msg, aad)
				require.Equal(t, soft.Seal(nil, nonce, msg, aad), ct, "token and crypto/cipher GCM differ")
				pt, err := aead.Open(nil, nonce, soft.Seal(nil, nonce, msg, aad), aad)
				require.NoError(t, err)
				require.True(t, bytes.Equal(msg, pt), "open differs from the plaintext")
			}
		})
	}

	// Close (C_Finalize, dlclose), configure again (C_Initialize in the
	// same process), find the key pair by CKA_ID and sign with it.
	check(t, "crypto11/reopen-find-keypair", func(t *testing.T) {
		require.NotNil(t, ecPub, "needs crypto11/ecdsa-p256-signer")
		closed = true
		require.NoError(t, ctx.Close())
		c, err := crypto11.Configure(config(userPIN, 12))
		require.NoError(t, err)
		defer func() { require.NoError(t, c.Close()) }()
		s, err := c.FindKeyPair([]byte{0xc1}, nil)
		require.NoError(t, err)
		require.NotNil(t, s, "no key pair with CKA_ID c1")
		require.True(t, ecPub.Equal(s.Public()), "found another public key")
		digest := sha256.Sum256([]byte("after reopening"))
		sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
		require.NoError(t, err)
		require.True(t, ecdsa.VerifyASN1(ecPub, digest[:], sig))
	})
}

// parallel runs f(i) for crypto11Iterations values of i in each of
// crypto11Goroutines goroutines and fails t with the first error.
func c11Parallel(t *testing.T, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, crypto11Goroutines)
	for g := 0; g < crypto11Goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < crypto11Iterations; i++ {
				if err := f(g*crypto11Iterations + i); err != nil {
					errs <- fmt.Errorf("goroutine %d, iteration %d: %w", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// c11ParallelSign calls sign with fresh SHA-256 digests from several
// goroutines (sign may modify the digest it is given).
func c11ParallelSign(t *testing.T, sign func(digest []byte) error) {
	t.Helper()
	c11Parallel(t, func(i int) error {
		d := sha256.Sum256([]byte(fmt.Sprintf("message %d", i)))
		return sign(d[:])
	})
}
