package clients

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/ThalesIgnite/crypto11"
	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"
)

// TestCloudHSMCrypto11 is crypto11 (v1.2.5, the Go crypto.Signer /
// cipher.AEAD library that documents CloudHSM support) configured as a
// CloudHSM user configures it: Pin "user:password" and UseGCMIVFromHSM.
//
// crypto11 opens every session with CKF_RW_SESSION and logs in once per
// application, which SDK 5 accepts. Its UseGCMIVFromHSM has two forms:
// alone, crypto11 passes pIV = NULL with ulIvLen = 0, which SDK 5 refuses
// ("Expected 'ulIvBits' or 'ulIvLen' to be non-zero"); with
// GCMIVFromHSMControl.SupplyIvForHSMGCMEncrypt it passes the caller's
// nonce, which must then be all zero, and the HSM writes its IV there.
// crypto11 v1.2.5 does not copy that IV back into the caller's nonce
// (eclipse-keypont/crypto11#132), so on CloudHSM Seal works and Open with
// the nonce fails: the check below pins that, and then reads the IV back
// through miekg/pkcs11's GCMParams.IV() (the binding crypto11 is built on,
// which keeps pIV's buffer until Free for exactly this) and round-trips.
func TestCloudHSMCrypto11(t *testing.T) {
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) { crypto11CloudHSMScenario(t, profile) })
	}
}

func crypto11CloudHSMScenario(t *testing.T, profile string) {
	cloud := profile == "cloudhsm"
	h := newProfileHSM(t, "c11"+profile, profile)
	h.setenv(t)
	config := func(pin string) *crypto11.Config {
		return &crypto11.Config{Path: h.Lib, TokenLabel: h.Label, Pin: pin, GCMIVLength: 12,
			UseGCMIVFromHSM: true,
			GCMIVFromHSMControl: crypto11.GCMIVFromHSMConfig{
				SupplyIvForHSMGCMEncrypt: true, SupplyIvForHSMGCMDecrypt: true}}
	}

	check(t, "crypto11/bare-password-pin", func(t *testing.T) {
		ctx, err := crypto11.Configure(config(userPassword))
		if err == nil {
			require.NoError(t, ctx.Close())
		}
		if cloud {
			require.Error(t, err)
			require.ErrorContains(t, err, "CKR_PIN_INCORRECT")
		} else {
			require.NoError(t, err, "standard: a bare password names the user \"user\"")
		}
	})

	var ctx *crypto11.Context
	ok := check(t, "crypto11/configure-name-password", func(t *testing.T) {
		var err error
		ctx, err = crypto11.Configure(config(userPIN))
		require.NoError(t, err)
	})
	require.True(t, ok, "crypto11: Configure failed")
	closed := false
	defer func() {
		if !closed {
			require.NoError(t, ctx.Close())
		}
	}()

	check(t, "crypto11/ecdsa-p256-sign", func(t *testing.T) {
		s, err := ctx.GenerateECDSAKeyPairWithLabel([]byte{0xe1}, []byte("c11-ec"), elliptic.P256())
		require.NoError(t, err)
		pub := s.Public().(*ecdsa.PublicKey)
		d := sha256.Sum256([]byte("signed through crypto11"))
		sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
		require.NoError(t, err)
		require.True(t, ecdsa.VerifyASN1(pub, d[:], sig))
	})
	check(t, "crypto11/rsa-2048-oaep-sha256", func(t *testing.T) {
		k, err := ctx.GenerateRSAKeyPairWithLabel([]byte{0xe2}, []byte("c11-rsa"), 2048)
		require.NoError(t, err)
		msg := []byte("a data key")
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, k.Public().(*rsa.PublicKey), msg, nil)
		require.NoError(t, err)
		// crypto11 pairs MGF1 with the OAEP hash: the pairing CloudHSM requires.
		pt, err := k.Decrypt(rand.Reader, ct, &rsa.OAEPOptions{Hash: crypto.SHA256})
		require.NoError(t, err)
		require.Equal(t, msg, pt)
	})

	var aead interface {
		Seal(dst, nonce, plaintext, aad []byte) []byte
		Open(dst, nonce, ciphertext, aad []byte) ([]byte, error)
	}
	ok = check(t, "crypto11/aes-256-key", func(t *testing.T) {
		key, err := ctx.GenerateSecretKeyWithLabel([]byte{0xe3}, []byte("c11-aes"), 256, crypto11.CipherAES)
		require.NoError(t, err)
		a, err := key.NewGCM()
		require.NoError(t, err)
		aead = a
	})
	require.True(t, ok)
	msg := []byte("the same plaintext twice")
	check(t, "crypto11/gcm-iv-from-hsm-zero-nonce", func(t *testing.T) {
		n1, n2 := make([]byte, 12), make([]byte, 12)
		var c1, c2 []byte
		require.NotPanics(t, func() { c1 = aead.Seal(nil, n1, msg, nil) })
		require.NotPanics(t, func() { c2 = aead.Seal(nil, n2, msg, nil) })
		require.Len(t, c1, len(msg)+16, "ciphertext||tag")
		// crypto11#132: the nonce is not overwritten with the HSM's IV.
		require.Equal(t, make([]byte, 12), n1)
		_, openErr := aead.Open(nil, n1, c1, nil)
		if cloud {
			require.NotEqual(t, c1, c2, "the HSM must use a fresh IV for each encryption")
			require.Error(t, openErr, "opened with the zero nonce although the HSM chose the IV")
		} else {
			// The standard profile encrypts with the caller's (zero) IV: the
			// silent nonce reuse CloudHSM would have prevented.
			require.Equal(t, c1, c2)
			require.NoError(t, openErr)
		}
	})
	check(t, "crypto11/gcm-caller-nonce", func(t *testing.T) {
		nonce := make([]byte, 12)
		_, _ = rand.Read(nonce)
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%v", r) // crypto11's Seal panics on a token error
				}
			}()
			ct := aead.Seal(nil, nonce, msg, nil)
			_, err = aead.Open(nil, nonce, ct, nil)
		}()
		if cloud {
			require.Error(t, err, "a non-zero caller IV was accepted")
			require.ErrorContains(t, err, "CKR_MECHANISM_PARAM_INVALID")
		} else {
			require.NoError(t, err)
		}
	})

	check(t, "crypto11/gcm-iv-from-hsm-null-iv", func(t *testing.T) {
		// UseGCMIVFromHSM without SupplyIvForHSMGCMEncrypt: pIV NULL, ulIvLen 0.
		cfg := config(userPIN)
		cfg.GCMIVFromHSMControl = crypto11.GCMIVFromHSMConfig{}
		c, err := crypto11.Configure(cfg)
		require.NoError(t, err)
		defer func() { require.NoError(t, c.Close()) }()
		key, err := c.FindKey(nil, []byte("c11-aes"))
		require.NoError(t, err)
		require.NotNil(t, key)
		a, err := key.NewGCM()
		require.NoError(t, err)
		var sealErr any
		func() {
			defer func() { sealErr = recover() }()
			a.Seal(nil, make([]byte, 12), msg, nil)
		}()
		// Both profiles refuse a GCM IV of length 0 (SP 800-38D needs one).
		require.NotNil(t, sealErr, "GCM with ulIvLen = 0 was accepted")
		require.Contains(t, fmt.Sprint(sealErr), "CKR_MECHANISM_PARAM_INVALID")
	})

	closed = true
	require.NoError(t, ctx.Close())
	check(t, "miekg-pkcs11/gcm-iv-written-back", func(t *testing.T) { gcmIVWriteBack(t, h, cloud) })
}

// gcmIVWriteBack encrypts twice with CKM_AES_GCM and a zeroed 12-byte pIV
// through miekg/pkcs11 (what crypto11 does, keeping the parameters until
// after C_Encrypt), reads pIV back, and decrypts with it.
func gcmIVWriteBack(t *testing.T, h *hsm, cloud bool) {
	p := pkcs11.New(h.Lib)
	require.NotNil(t, p)
	require.NoError(t, p.Initialize())
	defer func() {
		require.NoError(t, p.Finalize())
		p.Destroy()
	}()
	slots, err := p.GetSlotList(true)
	require.NoError(t, err)
	require.NotEmpty(t, slots)
	if cloud {
		_, err := p.OpenSession(slots[0], pkcs11.CKF_SERIAL_SESSION)
		require.ErrorContains(t, err, "CKR_FUNCTION_FAILED", "a R/O session was opened")
	}
	s, err := p.OpenSession(slots[0], pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, p.Login(s, pkcs11.CKU_USER, userPIN))
	require.NoError(t, p.FindObjectsInit(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "c11-aes")}))
	keys, _, err := p.FindObjects(s, 2)
	require.NoError(t, err)
	require.NoError(t, p.FindObjectsFinal(s))
	require.Len(t, keys, 1, "the AES key crypto11 generated")

	msg := []byte("the same plaintext twice")
	encrypt := func() (iv, ct []byte) {
		params := pkcs11.NewGCMParams(make([]byte, 12), []byte("aad"), 128)
		defer params.Free()
		require.NoError(t, p.EncryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, keys[0]))
		ct, err := p.Encrypt(s, msg)
		require.NoError(t, err)
		return params.IV(), ct
	}
	iv1, ct1 := encrypt()
	iv2, ct2 := encrypt()
	require.Len(t, iv1, 12)
	if cloud {
		require.NotEqual(t, make([]byte, 12), iv1, "pIV was not written")
		require.NotEqual(t, iv1, iv2, "two encryptions, one IV")
		require.NotEqual(t, ct1, ct2)
	} else {
		require.Equal(t, make([]byte, 12), iv1, "standard: the caller's IV is used as given")
		require.Equal(t, ct1, ct2)
	}
	for _, c := range []struct{ iv, ct []byte }{{iv1, ct1}, {iv2, ct2}} {
		params := pkcs11.NewGCMParams(c.iv, []byte("aad"), 128)
		require.NoError(t, p.DecryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, keys[0]))
		pt, err := p.Decrypt(s, c.ct)
		params.Free()
		require.NoError(t, err)
		require.Equal(t, msg, pt)
	}
	if !cloud {
		return
	}
	// CKM_CLOUDHSM_AES_GCM, the vendor mechanism crypto11#132's answer
	// recommends instead: pIV NULL, the HSM's IV in front of the
	// ciphertext, and decryption takes IV||ciphertext||tag.
	const ckmCloudHSMAESGCM = pkcs11.CKM_VENDOR_DEFINED | pkcs11.CKM_AES_GCM
	vendor := func() []*pkcs11.Mechanism {
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmCloudHSMAESGCM, pkcs11.NewGCMParams(nil, []byte("aad"), 128))}
	}
	var out [2][]byte
	for i := range out {
		require.NoError(t, p.EncryptInit(s, vendor(), keys[0]))
		out[i], err = p.Encrypt(s, msg)
		require.NoError(t, err)
		require.Len(t, out[i], 12+len(msg)+16, "IV||ciphertext||tag")
	}
	require.NotEqual(t, out[0][:12], out[1][:12], "two encryptions, one IV")
	for _, ct := range out {
		require.NoError(t, p.DecryptInit(s, vendor(), keys[0]))
		pt, err := p.Decrypt(s, ct)
		require.NoError(t, err)
		require.Equal(t, msg, pt)
	}
}
