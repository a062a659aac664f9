package token

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

var updateSessKeyAttrs = flag.Bool("update-sesskey-attrs", false, "rewrite testdata/sesskey_attrs.golden")

// TestSessionKeyAttributes reads back, through GetAttributeValue, every
// attribute of the session keys C_EncapsulateKey, C_DecapsulateKey,
// C_GenerateKey and C_CreateObject make, from several templates and in
// both profiles, and compares them with testdata/sesskey_attrs.golden,
// written by the code before the session-key path was made lean (values
// that differ from key to key, CKA_VALUE, CKA_CHECK_VALUE and
// CKA_UNIQUE_ID, are shown by length). A per-attribute error is shown by
// its CKR_*.
func TestSessionKeyAttributes(t *testing.T) {
	var out strings.Builder
	for _, prof := range []string{"standard", "cloudhsm"} {
		m, h := attrsTestToken(t, prof)
		keys := sessionKeysToRead(t, m, h)
		for _, k := range keys {
			fmt.Fprintf(&out, "%s %s:\n", prof, k.name)
			id, err := m.GetAttributeValue(h, k.h, []ck.AttributeType{ck.CKA_CLASS, ck.CKA_KEY_TYPE})
			require.NoError(t, err)
			class, _ := attrs.Template{0: id[0].Value}.ULong(0)
			keyType, _ := attrs.Template{0: id[1].Value}.ULong(0)
			s, ok := attrs.Lookup(ck.ObjectClass(class), ck.KeyType(keyType))
			require.True(t, ok)
			var types []ck.AttributeType
			for _, a := range s.Attrs() {
				types = append(types, a.Type)
			}
			// Two the key's schema lacks, and a vendor one.
			types = append(types, ck.CKA_MODULUS, ck.CKA_EC_POINT, ck.CKA_VENDOR_DEFINED|0x4242)
			slices.Sort(types)
			res, err := m.GetAttributeValue(h, k.h, types)
			require.NoError(t, err)
			for i, a := range types {
				r := res[i]
				switch {
				case r.Err != nil:
					var rv ck.RV
					require.True(t, errors.As(r.Err, &rv), "%v: %v", a, r.Err)
					fmt.Fprintf(&out, "  %v: %v\n", a, rv)
				case a == ck.CKA_VALUE || a == ck.CKA_CHECK_VALUE || a == ck.CKA_UNIQUE_ID:
					fmt.Fprintf(&out, "  %v: %d bytes\n", a, len(r.Value))
				default:
					fmt.Fprintf(&out, "  %v: %x\n", a, r.Value)
				}
			}
		}
	}
	golden := filepath.Join("testdata", "sesskey_attrs.golden")
	if *updateSessKeyAttrs {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, []byte(out.String()), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), out.String())
}

type namedKey struct {
	name string
	h    ck.ULong
}

// sessionKeysToRead makes the session keys TestSessionKeyAttributes reads.
func sessionKeysToRead(t *testing.T, m *Module, h ck.ULong) []namedKey {
	t.Helper()
	var keys []namedKey
	aes := func(extra attrs.Template) attrs.Template {
		tm := attrs.Template{ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES))}
		for a, v := range extra {
			tm[a] = v
		}
		return tm
	}
	kemTemplates := []struct {
		name string
		t    attrs.Template
	}{
		{"aes", aes(nil)},
		{"aes-encrypt", aes(attrs.Template{ck.CKA_ENCRYPT: attrs.Bool(true)})},
		{"p11bench", aes(attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_TOKEN: attrs.Bool(false),
			ck.CKA_SENSITIVE: attrs.Bool(true), ck.CKA_ENCRYPT: attrs.Bool(true), ck.CKA_DECRYPT: attrs.Bool(true)})},
		{"extractable", aes(attrs.Template{ck.CKA_SENSITIVE: attrs.Bool(false), ck.CKA_EXTRACTABLE: attrs.Bool(true),
			ck.CKA_LABEL: []byte("kem"), ck.CKA_ID: []byte{1, 2}, ck.CKA_VALUE_LEN: attrs.ULong(32)})},
		{"generic", attrs.Template{ck.CKA_SIGN: attrs.Bool(true), ck.CKA_VERIFY: attrs.Bool(true)}},
	}
	pub, priv, err := m.GenerateKeyPair(h, Mechanism{Type: ck.CKM_ML_KEM_KEY_PAIR_GEN},
		attrs.Template{ck.CKA_PARAMETER_SET: attrs.ULong(ck.CKP_ML_KEM_768)}, attrs.Template{ck.CKA_SENSITIVE: attrs.Bool(true)})
	if errors.Is(err, ck.CKR_MECHANISM_INVALID) {
		kemTemplates = nil // the profile has no ML-KEM (cloudhsm)
	} else {
		require.NoError(t, err)
	}
	for _, kt := range kemTemplates {
		ct := make([]byte, 1088)
		_, k, err := m.EncapsulateKey(h, Mechanism{Type: ck.CKM_ML_KEM}, pub, attrs.ListOf(kt.t), Out{Buf: ct})
		require.NoError(t, err, kt.name)
		keys = append(keys, namedKey{"encaps " + kt.name, k})
		k, err = m.DecapsulateKey(h, Mechanism{Type: ck.CKM_ML_KEM}, priv, attrs.ListOf(kt.t), ct)
		require.NoError(t, err, kt.name)
		keys = append(keys, namedKey{"decaps " + kt.name, k})
	}
	g, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, attrs.Template{ck.CKA_VALUE_LEN: attrs.ULong(32), ck.CKA_ENCRYPT: attrs.Bool(true)})
	require.NoError(t, err)
	keys = append(keys, namedKey{"generate aes", g})
	c, err := m.CreateObject(h, attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
		ck.CKA_VALUE: make([]byte, 32), ck.CKA_SENSITIVE: attrs.Bool(false), ck.CKA_EXTRACTABLE: attrs.Bool(true)})
	require.NoError(t, err)
	keys = append(keys, namedKey{"create aes", c})
	return keys
}
