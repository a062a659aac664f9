package token

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// TestFindDoesNotMatchSecrets: a find template naming a secret attribute
// (a secret key's CKA_VALUE) must not confirm a guessed value. Token
// objects never matched (their sealed values are not searched); session
// objects compared the value in memory, so a caller could test guesses of
// a sensitive key's value one C_FindObjectsInit at a time.
func TestFindDoesNotMatchSecrets(t *testing.T) {
	m, _ := newToken(t)
	h := openRW(t, m)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	value := []byte("0123456789abcdef")
	for _, token := range []bool{false, true} {
		k, err := m.CreateObject(h, attrs.Template{
			ck.CKA_CLASS:     attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)),
			ck.CKA_KEY_TYPE:  attrs.ULong(ck.ULong(ck.CKK_AES)),
			ck.CKA_TOKEN:     attrs.Bool(token),
			ck.CKA_SENSITIVE: attrs.Bool(true),
			ck.CKA_LABEL:     []byte("guess-me"),
			ck.CKA_VALUE:     value,
		})
		require.NoError(t, err)
		find := func(tmpl attrs.Template) []ck.ULong {
			require.NoError(t, m.FindObjectsInit(h, tmpl))
			got, err := m.FindObjects(h, 100)
			require.NoError(t, err)
			require.NoError(t, m.FindObjectsFinal(h))
			return got
		}
		// The label alone finds it: the search itself works.
		require.Contains(t, find(attrs.Template{ck.CKA_LABEL: []byte("guess-me"), ck.CKA_TOKEN: attrs.Bool(token)}), k)
		// The right value and a wrong one answer alike.
		right := find(attrs.Template{ck.CKA_LABEL: []byte("guess-me"), ck.CKA_TOKEN: attrs.Bool(token), ck.CKA_VALUE: value})
		wrong := find(attrs.Template{ck.CKA_LABEL: []byte("guess-me"), ck.CKA_TOKEN: attrs.Bool(token), ck.CKA_VALUE: []byte("fedcba9876543210")})
		require.Empty(t, right, "token=%v: a find by the secret value confirms it", token)
		require.Empty(t, wrong, "token=%v", token)
	}
}
