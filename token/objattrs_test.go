package token

import (
	"crypto/mlkem"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// sessObject is session object k of slot 3 (the test token's).
func sessObject(t *testing.T, m *Module, k ck.ULong) *Object {
	t.Helper()
	s, err := m.Slot(3)
	require.NoError(t, err)
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.sessObjs[k]
	require.NotNil(t, o, "session object %d", k)
	return o
}

// TestObjectsSharePrototype: session keys made by C_EncapsulateKey,
// C_DecapsulateKey and C_GenerateKey from the same schema share its
// prototype of defaults; a C_SetAttributeValue or C_CopyObject on one
// (of attributes the prototype holds) shows in no other, nor in a key
// made afterwards.
func TestObjectsSharePrototype(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	pub, priv, err := mlkemPair(t, m, h, ck.CKP_ML_KEM_768, nil, nil)
	require.NoError(t, err)
	read := func(k ck.ULong, a ck.AttributeType) []byte {
		t.Helper()
		rs, err := m.GetAttributeValue(h, k, []ck.AttributeType{a})
		require.NoError(t, err)
		require.NoError(t, rs[0].Err)
		return rs[0].Value
	}
	// Attributes a key made by C_GenerateKey has before any other key of
	// its schema was made, and must still have after.
	plain := []ck.AttributeType{ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_LABEL, ck.CKA_ID,
		ck.CKA_LOCAL, ck.CKA_KEY_GEN_MECHANISM, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE, ck.CKA_SENSITIVE}
	k0, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("", false))
	require.NoError(t, err)
	first := map[ck.AttributeType][]byte{}
	for _, a := range plain {
		first[a] = read(k0, a)
	}
	// The KEM keys ask for the opposite of the default CKA_ENCRYPT.
	tmpl := attrs.Template{ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
		ck.CKA_ENCRYPT: attrs.Bool(first[ck.CKA_ENCRYPT][0] == 0)}
	ct := make([]byte, mlkem.CiphertextSize768)
	_, k1, err := m.EncapsulateKey(h, Mechanism{Type: ck.CKM_ML_KEM}, pub, attrs.ListOf(tmpl), Out{Buf: ct})
	require.NoError(t, err)
	k2, err := m.DecapsulateKey(h, Mechanism{Type: ck.CKM_ML_KEM}, priv, attrs.ListOf(tmpl), ct)
	require.NoError(t, err)
	k3, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("", false))
	require.NoError(t, err)
	o1, o2, o3 := sessObject(t, m, k1), sessObject(t, m, k2), sessObject(t, m, k3)
	require.True(t, o1.attrs.SharesBase(&o2.attrs), "two KEM keys share the prototype")
	require.True(t, o1.attrs.SharesBase(&o3.attrs), "so does a generated key of the schema")
	require.Less(t, o1.attrs.OwnLen(), 12, "a KEM key keeps few values of its own")
	// CKA_DECRYPT, CKA_LABEL and CKA_ID are the prototype's in all three.
	dec := read(k2, ck.CKA_DECRYPT)
	flipped := attrs.Bool(dec[0] == 0)
	require.NoError(t, m.SetAttributeValue(h, k1, attrs.Template{ck.CKA_DECRYPT: flipped, ck.CKA_LABEL: []byte("one")}))
	cp, err := m.CopyObject(h, k2, attrs.Template{ck.CKA_ID: []byte("copy")})
	require.NoError(t, err)
	_, k4, err := m.EncapsulateKey(h, Mechanism{Type: ck.CKM_ML_KEM}, pub, attrs.ListOf(tmpl), Out{Buf: ct})
	require.NoError(t, err)

	require.Equal(t, flipped, read(k1, ck.CKA_DECRYPT))
	require.Equal(t, []byte("one"), read(k1, ck.CKA_LABEL))
	require.Equal(t, []byte("copy"), read(cp, ck.CKA_ID))
	for _, k := range []ck.ULong{k2, k3, k4} {
		require.Equal(t, dec, read(k, ck.CKA_DECRYPT), "key %d", k)
		require.Empty(t, read(k, ck.CKA_LABEL), "key %d", k)
		require.Empty(t, read(k, ck.CKA_ID), "key %d", k)
	}
	require.Empty(t, read(k1, ck.CKA_ID))
	k5, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("", false))
	require.NoError(t, err)
	for _, a := range plain {
		require.Equal(t, first[a], read(k5, a), "%v", a)
		require.Equal(t, first[a], read(k0, a), "%v", a)
	}
	// The originals' objects did not change under the handle either.
	require.Same(t, o2, sessObject(t, m, k2))
	require.Same(t, o3, sessObject(t, m, k3))
}

// TestObjectsSharePrototypeRace: sessions making, changing, copying and
// reading session keys of one schema at once (run with -race: a write to
// what they share would be a race).
func TestObjectsSharePrototypeRace(t *testing.T) {
	m, _ := newToken(t)
	login := openRW(t, m)
	require.NoError(t, m.Login(login, ck.CKU_USER, []byte(userPIN)))
	var wg sync.WaitGroup
	for g := range 3 {
		h := openRW(t, m)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("", false))
				if err != nil {
					t.Error(err)
					return
				}
				label := []byte(fmt.Sprintf("%d-%d", g, i))
				if err := m.SetAttributeValue(h, k, attrs.Template{ck.CKA_LABEL: label, ck.CKA_ID: label}); err != nil {
					t.Error(err)
					return
				}
				c, err := m.CopyObject(h, k, attrs.Template{ck.CKA_ID: []byte("c")})
				if err != nil {
					t.Error(err)
					return
				}
				rs, err := m.GetAttributeValue(h, k, []ck.AttributeType{ck.CKA_LABEL, ck.CKA_ID})
				if err != nil || string(rs[0].Value) != string(label) || string(rs[1].Value) != string(label) {
					t.Errorf("key %d: %v %v", k, rs, err)
				}
				for _, x := range []ck.ULong{k, c} {
					if err := m.DestroyObject(h, x); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	k, err := m.GenerateKey(login, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("", false))
	require.NoError(t, err)
	rs, err := m.GetAttributeValue(login, k, []ck.AttributeType{ck.CKA_LABEL, ck.CKA_ID})
	require.NoError(t, err)
	require.Empty(t, rs[0].Value)
	require.Empty(t, rs[1].Value)
}
