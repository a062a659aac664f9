package cloudhsmcli

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/attrs"
)

// cuContext is a Context logged in as a crypto user (pin "name:password").
func (e *cryptoEnv) cuContext(pin string) *Context {
	name, _, _ := strings.Cut(pin, ":")
	c := &Context{opts: Options{Config: e.conf}, user: name, role: "crypto-user", pin: []byte(pin)}
	e.t.Cleanup(c.Close)
	return c
}

// genAES makes a token AES key with a label, as alice or bob.
func genAES(t *testing.T, m *token.Module, h ck.ULong, label string, extra attrs.Template) ck.ULong {
	t.Helper()
	tmpl := attrs.Template{ck.CKA_TOKEN: []byte{1}, ck.CKA_LABEL: []byte(label), ck.CKA_VALUE_LEN: attrs.ULong(32),
		ck.CKA_ENCRYPT: []byte{1}, ck.CKA_DECRYPT: []byte{1}, ck.CKA_WRAP: []byte{1}, ck.CKA_UNWRAP: []byte{1}, ck.CKA_SIGN: []byte{0}}
	for k, v := range extra {
		tmpl[k] = v
	}
	k, err := m.GenerateKey(h, token.Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmpl)
	require.NoError(t, err)
	return k
}

func TestParseFilter(t *testing.T) {
	f, err := ParseFilter([]string{"key-reference=0x00000000001c0686", "attr.label=\"my key\"", "attr.class=secret-key"})
	require.NoError(t, err)
	require.True(t, f.HasRef)
	require.Equal(t, ck.ULong(0x1c0686), f.Ref)
	require.Equal(t, []byte("my key"), f.Tmpl[ck.CKA_LABEL])
	require.Equal(t, "0x00000000001c0686", KeyReference(f.Ref))
	require.True(t, Filter{Tmpl: attrs.Template{}}.Empty())
	for _, c := range []struct {
		terms []string
		want  string
	}{
		{[]string{"label=x"}, "invalid filter 'label=x'"},
		{[]string{"key-reference=zz"}, "invalid key reference 'zz'"},
		{[]string{"key-reference=0x1", "key-reference=0x2"}, "only one key-reference"},
		{[]string{"attr.colour=red"}, "invalid key attribute 'colour'"},
		{[]string{"attr.sign=maybe"}, "expected true or false"},
		{[]string{"attr.label=a", "attr.label=b"}, "attribute 'label' given twice"},
	} {
		_, err := ParseFilter(c.terms)
		require.ErrorContains(t, err, c.want, c.terms)
	}
}

// TestFindKey: filters resolve through the token as the logged-in user
// sees keys: alice's secret keys are hers (and whoever she shares them
// with); none and several matches are CloudHSM's refusals; a key
// reference to another user's key matches nothing.
func TestFindKey(t *testing.T) {
	for _, profile := range []string{"standard", "cloudhsm"} {
		t.Run(profile, func(t *testing.T) {
			e := newCryptoEnv(t, profile)
			var k1, k2, kb ck.ULong
			e.as(cryptoAlicePIN, func(m *token.Module, h ck.ULong) {
				k1 = genAES(t, m, h, "one", nil)
				k2 = genAES(t, m, h, "two", attrs.Template{ck.CKA_ID: []byte{7}})
			})
			e.as(cryptoBobPIN, func(m *token.Module, h ck.ULong) {
				kb = genAES(t, m, h, "one", nil)
			})
			alice := e.cuContext(cryptoAlicePIN)
			find := func(c *Context, terms ...string) (ck.ULong, error) {
				return c.FindKeyByTerms("filter", terms)
			}
			got, err := find(alice, "attr.label=one")
			require.NoError(t, err)
			require.Equal(t, k1, got)
			got, err = find(alice, "attr.id=0x07", "attr.class=secret-key")
			require.NoError(t, err)
			require.Equal(t, k2, got)
			got, err = find(alice, "key-reference="+KeyReference(k2), "attr.label=two")
			require.NoError(t, err)
			require.Equal(t, k2, got)

			_, err = find(alice, "key-reference="+KeyReference(k2), "attr.label=one")
			require.ErrorIs(t, err, ErrNoKeyMatched)
			_, err = find(alice, "attr.label=three")
			require.ErrorIs(t, err, ErrNoKeyMatched)
			_, err = find(alice, "key-reference="+KeyReference(kb))
			require.ErrorIs(t, err, ErrNoKeyMatched, "bob's key is not alice's to select")
			_, err = find(alice, "attr.key-type=aes")
			require.EqualError(t, err, "Key selection criteria matched 2 keys. Refine selection criteria to select a single key.")
			_, err = find(alice)
			require.ErrorContains(t, err, "--filter <FILTER>")

			all, err := alice.FindKeys(Filter{Tmpl: attrs.Template{}})
			require.NoError(t, err)
			require.Equal(t, []ck.ULong{k1, k2}, all)

			o, err := alice.KeyAttributes(k2)
			require.NoError(t, err)
			for name, want := range map[string]any{"key-type": "aes", "label": "two", "id": "0x07",
				"class": "secret-key", "encrypt": true, "sign": false, "key-length-bytes": uint64(32)} {
				v, ok := o.Get(name)
				require.True(t, ok, name)
				require.Equal(t, want, v, name)
			}
			cv, ok := o.Get("check-value")
			if ok {
				require.Regexp(t, "^0x[0-9a-f]{6}$", cv)
			}
		})
	}
}
