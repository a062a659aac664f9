package token

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// BenchmarkObjectAttrs reads objects' attributes at the token layer:
// C_GetAttributeValue of eight attributes of a session key and of a token
// key, and C_FindObjects by label among 2,000 session keys and among
// 2,000 token keys (the store's search; the session objects' matches
// read each object's attributes). The keys are made by C_GenerateKey in
// this process, as p11bench's are.
func BenchmarkObjectAttrs(b *testing.B) {
	m, _ := newToken(b)
	h := openRW(b, m)
	require.NoError(b, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	const n = 2000
	var sess, tok ck.ULong
	for i := range n {
		k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate(fmt.Sprintf("s%d", i), false))
		require.NoError(b, err)
		if i == n/2 {
			sess = k
		}
		k, err = m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate(fmt.Sprintf("t%d", i), true))
		require.NoError(b, err)
		if i == n/2 {
			tok = k
		}
	}
	types := []ck.AttributeType{ck.CKA_CLASS, ck.CKA_KEY_TYPE, ck.CKA_LABEL, ck.CKA_ENCRYPT,
		ck.CKA_VALUE_LEN, ck.CKA_CHECK_VALUE, ck.CKA_SENSITIVE, ck.CKA_ID}
	get := func(k ck.ULong) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rs, err := m.GetAttributeValue(h, k, types)
				if err != nil || len(rs) != len(types) {
					b.Fatal(err)
				}
			}
		}
	}
	find := func(label string, token bool) func(b *testing.B) {
		tmpl := attrs.Template{ck.CKA_LABEL: []byte(label), ck.CKA_TOKEN: attrs.Bool(token)}
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := m.FindObjectsInit(h, tmpl); err != nil {
					b.Fatal(err)
				}
				found, err := m.FindObjects(h, 10)
				if err != nil || len(found) != 1 {
					b.Fatal(err, found)
				}
				if err := m.FindObjectsFinal(h); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("get-session", get(sess))
	b.Run("get-token", get(tok))
	b.Run("find-session", find(fmt.Sprintf("s%d", n/2), false))
	b.Run("find-token", find(fmt.Sprintf("t%d", n/2), true))
}
