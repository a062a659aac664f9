package token

import (
	"bytes"
	"strings"
	"testing"

	"gohsm/token/store"
)

// FuzzSplitPIN: splitPIN and checkUserName on any PIN. A name
// checkUserName accepts is 1 to 31 of [a-z0-9_] and is the PIN's text
// before its first ':' with ASCII letters lowered, nothing else; the
// password is the rest of the PIN, byte for byte. Seeds:
// testdata/fuzz/FuzzSplitPIN.
func FuzzSplitPIN(f *testing.F) {
	for _, s := range []string{"admin:officer-pw", "user:pw", "pw-only", ":", "a:", ":pw",
		"USER:Pw:with:colons", "\u212aey:pw", "\u0130:x", "a\x00b:c", strings.Repeat("n", 32) + ":p"} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, pin []byte, co bool) {
		role := store.RoleCU
		if co {
			role = store.RoleCO
		}
		orig := bytes.Clone(pin)
		name, password := splitPIN(pin, role)
		if !bytes.Equal(pin, orig) {
			t.Fatalf("splitPIN changed its input: %q -> %q", orig, pin)
		}
		i := bytes.IndexByte(pin, ':')
		if i < 0 {
			if !bytes.Equal(password, pin) {
				t.Fatalf("PIN without a name: password %q, want the whole PIN %q", password, pin)
			}
			if want := map[bool]string{true: DefaultCO, false: DefaultCU}[co]; name != want {
				t.Fatalf("PIN without a name: user %q, want %q", name, want)
			}
		} else if !bytes.Equal(password, pin[i+1:]) {
			t.Fatalf("PIN %q: password %q, want %q", pin, password, pin[i+1:])
		}
		if checkUserName(name) != nil {
			return
		}
		if len(name) < 1 || len(name) > 31 {
			t.Fatalf("accepted user name %q of %d bytes", name, len(name))
		}
		for _, c := range []byte(name) {
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				t.Fatalf("accepted user name %q with byte %q", name, c)
			}
		}
		if i >= 0 && !strings.EqualFold(name, string(pin[:i])) || i >= 0 && len(name) != i {
			t.Fatalf("PIN %q names %q but the user is %q", pin, pin[:i], name)
		}
	})
}
