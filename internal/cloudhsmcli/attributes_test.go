package cloudhsmcli

import (
	"encoding/json"
	"flag"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// TestAttributeRows: every row of the attribute table parses CloudHSM
// CLI's text into the Cryptoki encoding and renders it back as key list
// prints it; a row without a case here fails the test.
func TestAttributeRows(t *testing.T) {
	p256 := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	cases := []struct {
		name, in string
		enc      []byte
		out      any // rendered value (JSON)
	}{
		{"key-type", "aes", attrs.ULong(ck.ULong(ck.CKK_AES)), "aes"},
		{"label", "my key=1", []byte("my key=1"), "my key=1"},
		{"id", "0x0a0b", []byte{0x0a, 0x0b}, "0x0a0b"},
		{"check-value", "0xae8ff0", []byte{0xae, 0x8f, 0xf0}, "0xae8ff0"},
		{"class", "private-key", attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY)), "private-key"},
		{"encrypt", "true", []byte{1}, true},
		{"decrypt", "False", []byte{0}, false},
		{"token", "TRUE", []byte{1}, true},
		{"always-sensitive", "true", []byte{1}, true},
		{"derive", "false", []byte{0}, false},
		{"destroyable", "true", []byte{1}, true},
		{"extractable", "false", []byte{0}, false},
		{"local", "true", []byte{1}, true},
		{"modifiable", "true", []byte{1}, true},
		{"never-extractable", "false", []byte{0}, false},
		{"private", "true", []byte{1}, true},
		{"sensitive", "true", []byte{1}, true},
		{"sign", "true", []byte{1}, true},
		{"trusted", "false", []byte{0}, false},
		{"unwrap", "true", []byte{1}, true},
		{"verify", "false", []byte{0}, false},
		{"wrap", "true", []byte{1}, true},
		{"wrap-with-trusted", "false", []byte{0}, false},
		{"key-length-bytes", "32", attrs.ULong(32), float64(32)},
		{"public-exponent", "65537", []byte{0x01, 0x00, 0x01}, "0x010001"},
		{"modulus", "0xc0ffee", []byte{0xc0, 0xff, 0xee}, "0xc0ffee"},
		{"modulus-size-bits", "2048", attrs.ULong(2048), float64(2048)},
		{"ec-point", "0x0441", []byte{0x04, 0x41}, "0x0441"},
		{"curve", "prime256v1", p256, "secp256r1"},
		{"mldsa-algorithm", "ml-dsa-87", attrs.ULong(ck.CKP_ML_DSA_87), "ML-DSA-87"},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		a, ok := LookupAttribute(c.name)
		require.True(t, ok, c.name)
		seen[c.name] = true
		enc, err := a.Codec.Parse(c.in)
		require.NoError(t, err, c.name)
		require.Equal(t, c.enc, enc, c.name)
		v, err := a.Codec.Render(enc)
		require.NoError(t, err, c.name)
		// Compare as JSON sees it (numbers are float64 after a round trip).
		b, err := json.Marshal(v)
		require.NoError(t, err)
		var got any
		require.NoError(t, json.Unmarshal(b, &got))
		require.Equal(t, c.out, got, c.name)
	}
	for _, a := range Attributes {
		require.True(t, seen[a.Name], "attribute %s has no test case", a.Name)
	}
}

// TestAttributeRefusals: bad values and names are usage errors with a
// clear text, never a crash; read-only attributes cannot be set.
func TestAttributeRefusals(t *testing.T) {
	for _, c := range []struct{ kv, want string }{
		{"encrypt=yes", "invalid value 'yes': expected true or false"},
		{"class=cert", "invalid value 'cert': expected one of secret-key, public-key, private-key"},
		{"key-type=dsa", "invalid value 'dsa'"},
		{"curve=p256", "invalid value 'p256'"},
		{"key-length-bytes=-1", "invalid number '-1'"},
		{"public-exponent=0", "invalid number '0'"},
		{"id=0xzz", "invalid hex value '0xzz'"},
		{"colour=red", "invalid key attribute 'colour'"},
		{"label", "expected KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE"},
		{"local=true", "attribute 'local' cannot be set"},
		{"check-value=0x010203", "attribute 'check-value' cannot be set"},
	} {
		_, err := ParseAttributes([]string{c.kv})
		require.ErrorContains(t, err, c.want, c.kv)
		require.IsType(t, usageErr{}, err, c.kv)
	}
	tmpl, err := ParseAttributes([]string{"label=a=b", "id=text", "sign=true", "curve=\"secp384r1\""})
	require.NoError(t, err)
	require.Equal(t, []byte("a=b"), tmpl[ck.CKA_LABEL])
	require.Equal(t, []byte("text"), tmpl[ck.CKA_ID])
	require.Equal(t, []byte{1}, tmpl[ck.CKA_SIGN])
	require.Len(t, tmpl, 4)
}

// TestRenderAttributesShape: the attributes object keeps CloudHSM CLI's
// order, prints every boolean, label and id even when the key lacks them,
// and key-length-bytes for asymmetric keys.
func TestRenderAttributesShape(t *testing.T) {
	o, err := RenderAttributes(attrs.Template{
		ck.CKA_CLASS:           attrs.ULong(ck.ULong(ck.CKO_PUBLIC_KEY)),
		ck.CKA_KEY_TYPE:        attrs.ULong(ck.ULong(ck.CKK_RSA)),
		ck.CKA_VERIFY:          []byte{1},
		ck.CKA_MODULUS:         make([]byte, 256),
		ck.CKA_MODULUS_BITS:    attrs.ULong(2048),
		ck.CKA_PUBLIC_EXPONENT: []byte{1, 0, 1},
	})
	require.NoError(t, err)
	var names []string
	for _, m := range o {
		names = append(names, m.Name)
	}
	require.Equal(t, []string{"key-type", "label", "id", "class", "encrypt", "decrypt", "token",
		"always-sensitive", "derive", "destroyable", "extractable", "local", "modifiable",
		"never-extractable", "private", "sensitive", "sign", "trusted", "unwrap", "verify", "wrap",
		"wrap-with-trusted", "key-length-bytes", "public-exponent", "modulus", "modulus-size-bits"}, names)
	v, _ := o.Get("key-length-bytes")
	require.Equal(t, 512, v)
	v, _ = o.Get("verify")
	require.Equal(t, true, v)
	v, _ = o.Get("sign")
	require.Equal(t, false, v)
	b, err := json.Marshal(o)
	require.NoError(t, err)
	require.Contains(t, string(b), `{"key-type":"rsa","label":"","id":"","class":"public-key",`)

	// EC: the point length, whether or not CKA_EC_POINT is DER-wrapped.
	raw := append([]byte{4}, make([]byte, 56)...)
	for _, p := range [][]byte{raw, append([]byte{0x04, 57}, raw...)} {
		o, err = RenderAttributes(attrs.Template{ck.CKA_EC_POINT: p})
		require.NoError(t, err)
		v, _ = o.Get("key-length-bytes")
		require.Equal(t, 57, v)
	}
}

// TestMultiValueFlags: `--filter a b --label x` takes a and b as filter
// values, as CloudHSM CLI's space-separated lists do.
func TestMultiValueFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	filter := Multi(fs, "filter", "")
	label := fs.String("label", "", "")
	args := expandMulti(fs, []string{"--filter", "attr.label=a", "attr.class=secret-key", "--label", "l", "--filter=key-reference=0x1", "attr.id=0x01"})
	require.NoError(t, fs.Parse(args))
	require.Equal(t, []string{"attr.label=a", "attr.class=secret-key", "key-reference=0x1", "attr.id=0x01"}, *filter)
	require.Equal(t, "l", *label)
	require.Zero(t, fs.NArg())

	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	filter = Multi(fs, "filter", "")
	require.False(t, MultiGiven(fs, "filter"))
	require.NoError(t, fs.Parse(expandMulti(fs, []string{"--filter"})))
	require.Empty(t, *filter)
	require.True(t, MultiGiven(fs, "filter"))
}

// TestRenderPublicKeyExtractable: a public key, which has no
// CKA_EXTRACTABLE in PKCS#11, shows "extractable": true as CloudHSM's
// key import pem example does (it showed false); a secret or private key
// without the attribute still shows false.
func TestRenderPublicKeyExtractable(t *testing.T) {
	get := func(class ck.ObjectClass) any {
		o, err := RenderAttributes(attrs.Template{ck.CKA_CLASS: attrs.ULong(ck.ULong(class))})
		require.NoError(t, err)
		for _, v := range o {
			if v.Name == "extractable" {
				return v.Value
			}
		}
		t.Fatalf("no extractable for %v", class)
		return nil
	}
	require.Equal(t, true, get(ck.CKO_PUBLIC_KEY))
	require.Equal(t, false, get(ck.CKO_SECRET_KEY))
	require.Equal(t, false, get(ck.CKO_PRIVATE_KEY))
}
