package token

import (
	"crypto/aes"
	"crypto/rand"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
)

func oddNumber(t *testing.T, bits int) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
	require.NoError(t, err)
	n.SetBit(n, bits-1, 1)
	return n.SetBit(n, 0, 1)
}

// TestOversizeRSAKeysRefused: RSA keys beyond 16384 bits are refused
// before any work on them, public keys too.
func TestOversizeRSAKeysRefused(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	e := []byte{1, 0, 1}
	pub := func(n *big.Int) attrs.Template {
		return attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PUBLIC_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_RSA)),
			ck.CKA_TOKEN: attrs.Bool(false), ck.CKA_MODULUS: n.Bytes(), ck.CKA_PUBLIC_EXPONENT: e}
	}
	_, err := m.CreateObject(h, pub(oddNumber(t, 65536)))
	require.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, "65536-bit public key")
	_, err = m.CreateObject(h, pub(oddNumber(t, 16385)))
	require.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, "16385-bit public key")
	_, err = m.CreateObject(h, pub(oddNumber(t, 16384)))
	require.NoError(t, err, "16384-bit public key")

	// A 32768-bit private key of made-up numbers: p*q is the modulus, the
	// rest is junk that only the expensive checks would find out.
	p, q := oddNumber(t, 16384), oddNumber(t, 16384)
	start := time.Now()
	_, err = m.CreateObject(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_RSA)),
		ck.CKA_TOKEN: attrs.Bool(false), ck.CKA_MODULUS: new(big.Int).Mul(p, q).Bytes(), ck.CKA_PUBLIC_EXPONENT: e,
		ck.CKA_PRIVATE_EXPONENT: oddNumber(t, 32760).Bytes(), ck.CKA_PRIME_1: p.Bytes(), ck.CKA_PRIME_2: q.Bytes()})
	took := time.Since(start)
	require.ErrorIs(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, "32768-bit private key")
	// Refused by the cap, before any work on the key (not timed: the
	// machine may be loaded).
	require.ErrorContains(t, err, "at most 16384", "32768-bit private key")
	t.Logf("32768-bit private key refused in %v", took)
}

// TestCreateObjectValidatesWithoutSlotLock: while C_CreateObject validates
// a key (parked here in testOnlyCreateValidated), another session's
// C_FindObjects still runs: validation holds no slot lock.
func TestCreateObjectValidatesWithoutSlotLock(t *testing.T) {
	m, _ := newToken(t)
	creator, finder := openRW(t, m), openRW(t, m)
	require.NoError(t, m.Login(creator, ck.CKU_USER, []byte(userPIN)))

	parked, release := make(chan struct{}), make(chan struct{})
	testOnlyCreateValidated = func() {
		close(parked)
		<-release
	}
	t.Cleanup(func() { testOnlyCreateValidated = func() {} })
	created := make(chan error, 1)
	go func() {
		_, err := m.CreateObject(creator, aesKeyTemplate())
		created <- err
	}()
	<-parked

	found := make(chan error, 1)
	go func() {
		err := m.FindObjectsInit(finder, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY))})
		if err == nil {
			_, err = m.FindObjects(finder, 10)
		}
		if err == nil {
			err = m.FindObjectsFinal(finder)
		}
		found <- err
	}()
	select {
	case err := <-found:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("C_FindObjects waited for C_CreateObject's validation (slot lock held)")
	}
	close(release)
	require.NoError(t, <-created)
}

func aesKeyTemplate() attrs.Template {
	return attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
		ck.CKA_TOKEN: attrs.Bool(false), ck.CKA_VALUE: make([]byte, 32)}
}

// TestCreatedKeyIsParsedOnce: the key C_CreateObject parsed (without the
// slot's lock) is the one its first use finds, so that use does not parse
// it again under the lock.
func TestCreatedKeyIsParsedOnce(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	for _, tok := range []bool{false, true} {
		tmpl := aesKeyTemplate()
		tmpl[ck.CKA_TOKEN] = attrs.Bool(tok)
		k, err := m.CreateObject(h, tmpl)
		require.NoError(t, err)
		s, err := m.Slot(3)
		require.NoError(t, err)
		s.mu.RLock()
		c, ok := s.keys[k]
		s.mu.RUnlock()
		require.True(t, ok, "token %v: parsed key cached at create", tok)
		require.Equal(t, make([]byte, 32), c.key, "token %v", tok)
		require.NoError(t, m.EncryptInit(h, Mechanism{Type: ck.CKM_AES_GCM, Param: gcmParamsValue()}, k), "token %v", tok)
		m.Abort(h, OpEncrypt)
	}
}

// TestKeyParsedWithoutSlotLock: the first use of a key this process has
// not parsed (another process made it) parses it without the slot's lock:
// while C_EncryptInit is parked in testOnlyKeyParse, another session's
// C_FindObjects runs.
func TestKeyParsedWithoutSlotLock(t *testing.T) {
	m, dir := newToken(t)
	user, finder := openRW(t, m), openRW(t, m)
	require.NoError(t, m.Login(user, ck.CKU_USER, []byte(userPIN)))

	other, err := Open(testConfig(t, dir)) // another process, as far as the store goes
	require.NoError(t, err)
	defer other.Close()
	oh := openRW(t, other)
	require.NoError(t, other.Login(oh, ck.CKU_USER, []byte(userPIN)))
	key, err := other.GenerateKey(oh, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("made elsewhere", true))
	require.NoError(t, err)

	parked, release := make(chan struct{}), make(chan struct{})
	var once bool
	testOnlyKeyParse = func() {
		if !once {
			once = true
			close(parked)
			<-release
		}
	}
	t.Cleanup(func() { testOnlyKeyParse = func() {} })
	inited := make(chan error, 1)
	go func() {
		inited <- m.EncryptInit(user, Mechanism{Type: ck.CKM_AES_GCM, Param: gcmParamsValue()}, key)
	}()
	select {
	case <-parked:
	case err := <-inited:
		t.Fatalf("C_EncryptInit did not parse the key: %v", err)
	}
	found := make(chan error, 1)
	go func() {
		err := m.FindObjectsInit(finder, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA))})
		if err == nil {
			_, err = m.FindObjects(finder, 10)
		}
		if err == nil {
			err = m.FindObjectsFinal(finder)
		}
		found <- err
	}()
	select {
	case err := <-found:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		close(release)
		<-inited
		t.Fatal("C_FindObjects waited while C_EncryptInit parsed a key (slot lock held)")
	}
	close(release)
	require.NoError(t, <-inited)
}

// TestMessagePartsBounded: a multi-part message holds at most
// maxMessageBuffered bytes of parts; beyond, CKR_DEVICE_MEMORY ends the
// message (its parts are dropped) and the context stays usable.
func TestMessagePartsBounded(t *testing.T) {
	old := maxMessageBuffered
	maxMessageBuffered = 1000
	t.Cleanup(func() { maxMessageBuffered = old })
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	key, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("msg", false))
	require.NoError(t, err)
	require.NoError(t, m.MessageEncryptInit(h, Mechanism{Type: ck.CKM_AES_GCM}, key))
	p := &mechanisms.MessageParams{IV: make([]byte, 12), Tag: make([]byte, 16), TagBits: 128}
	require.NoError(t, m.MessageBegin(h, true, p, nil))
	part := make([]byte, 600)
	_, err = m.MessageNext(h, true, p, part, Out{}, false)
	require.NoError(t, err)
	_, err = m.MessageNext(h, true, p, part, Out{}, false)
	require.ErrorIs(t, err, ck.CKR_DEVICE_MEMORY)
	_, err = m.MessageNext(h, true, p, part, Out{}, false)
	require.ErrorIs(t, err, ck.CKR_OPERATION_NOT_INITIALIZED, "the message ended")
	out := make([]byte, 600)
	_, err = m.Message(h, true, p, nil, part, Out{Buf: out})
	require.NoError(t, err, "the message context goes on")
	require.NoError(t, m.MessageFinal(h, true))
}

// TestUnwrapOversizePKCS8: an unwrapped private key larger than any key
// the token keeps is refused by its length, before it is parsed.
func TestUnwrapOversizePKCS8(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	kek := make([]byte, 32)
	tmpl := aesKeyTemplate()
	tmpl[ck.CKA_VALUE], tmpl[ck.CKA_UNWRAP] = kek, attrs.Bool(true)
	k, err := m.CreateObject(h, tmpl)
	require.NoError(t, err)
	b, err := aes.NewCipher(kek)
	require.NoError(t, err)
	wrapped := make([]byte, 12<<10) // ECB of zeros: any bytes will do
	for i := 0; i < len(wrapped); i += 16 {
		b.Encrypt(wrapped[i:i+16], wrapped[i:i+16])
	}
	_, err = m.UnwrapKey(h, Mechanism{Type: ck.CKM_AES_ECB}, k, wrapped, attrs.Template{
		ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_RSA)),
		ck.CKA_TOKEN: attrs.Bool(false)})
	require.ErrorIs(t, err, ck.CKR_WRAPPED_KEY_LEN_RANGE)
}

// blockingReader parks the first read until released.
type blockingReader struct {
	once            sync.Once
	parked, release chan struct{}
}

func (b *blockingReader) Read(p []byte) (int, error) {
	b.once.Do(func() {
		close(b.parked)
		<-b.release
	})
	return rand.Read(p)
}

// TestGenerateKeyWithoutSlotLock: key generation holds no slot lock: while
// C_GenerateKey waits for its randomness, another session's C_FindObjects
// runs. (A guard: generation already ran outside the lock.)
func TestGenerateKeyWithoutSlotLock(t *testing.T) {
	m, _ := newToken(t)
	gen, finder := openRW(t, m), openRW(t, m)
	require.NoError(t, m.Login(gen, ck.CKU_USER, []byte(userPIN)))
	r := &blockingReader{parked: make(chan struct{}), release: make(chan struct{})}
	m.rand = r
	made := make(chan error, 1)
	go func() {
		_, err := m.GenerateKey(gen, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("slow", true))
		made <- err
	}()
	<-r.parked
	found := make(chan error, 1)
	go func() {
		err := m.FindObjectsInit(finder, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_DATA))})
		if err == nil {
			_, err = m.FindObjects(finder, 10)
		}
		if err == nil {
			err = m.FindObjectsFinal(finder)
		}
		found <- err
	}()
	select {
	case err := <-found:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		close(r.release)
		<-made
		t.Fatal("C_FindObjects waited for C_GenerateKey's generation (slot lock held)")
	}
	close(r.release)
	require.NoError(t, <-made)
}
