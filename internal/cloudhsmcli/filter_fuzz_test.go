package cloudhsmcli

import (
	"strings"
	"testing"
)

// FuzzParseFilter: any filter text parses or is refused, never panics;
// every attribute value it accepts renders back (the codecs agree).
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"key-reference=0x00000000001c0686",
		"attr.label=my key\x00attr.class=private-key",
		"attr.id=0x0a0b\x00attr.curve=prime256v1\x00attr.public-exponent=65537",
		"attr.key-length-bytes=32\x00attr.sign=TRUE",
		"attr.modulus=0x\x00attr.check-value=abc",
		"attr.=x", "attr.label", "key-reference=", "=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(strings.Split(s, "\x00"))
		if err != nil {
			return
		}
		for typ, v := range flt.Tmpl {
			a, ok := attributeByType(typ)
			if !ok {
				t.Fatalf("filter %q made attribute %v outside the table", s, typ)
			}
			if _, err := a.Codec.Render(v); err != nil {
				t.Fatalf("filter %q: %s=%x does not render: %v", s, a.Name, v, err)
			}
		}
	})
}
