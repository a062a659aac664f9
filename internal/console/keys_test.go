package console_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/admin"
	"gohsm/internal/ck"
	"gohsm/token"
)

// keyJSON is the CLI's keyInfo, as `gohsm key list --json` prints it.
type keyJSON struct {
	Handle     uint64   `json:"handle"`
	Class      string   `json:"class"`
	KeyType    string   `json:"key_type"`
	Label      string   `json:"label"`
	ID         string   `json:"id"`
	Owner      string   `json:"owner"`
	SharedWith []string `json:"shared_with"`
	Token      bool     `json:"token"`
	Private    bool     `json:"private"`
}

type keysJSON struct {
	Keys []keyJSON `json:"keys"`
}

// gen generates a key and returns what the API answered (one key, or a pair).
func (c *client) gen(t *testing.T, spec map[string]any) []keyJSON {
	t.Helper()
	var out keysJSON
	c.do("POST", "/api/v1/keys", spec).ok(t, http.StatusCreated, &out)
	require.NotEmpty(t, out.Keys)
	return out.Keys
}

// list is the keys the client sees, filtered by query (url.Values form).
func (c *client) list(t *testing.T, query string) []keyJSON {
	t.Helper()
	p := "/api/v1/keys"
	if query != "" {
		p += "?" + query
	}
	var out keysJSON
	c.do("GET", p, nil).ok(t, http.StatusOK, &out)
	return out.Keys
}

func handles(ks []keyJSON) []uint64 {
	var hs []uint64
	for _, k := range ks {
		hs = append(hs, k.Handle)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i] < hs[j] })
	return hs
}

func private(ks []keyJSON) keyJSON {
	for _, k := range ks {
		if k.Class == "CKO_PRIVATE_KEY" || k.Class == "private-key" || k.Class == "private" || len(ks) == 1 {
			return k
		}
	}
	return ks[0]
}

func hpath(h uint64, rest ...string) string {
	return fmt.Sprintf("/api/v1/keys/%d%s", h, strings.Join(rest, ""))
}

// TestAPIKeysGenerateListGet: alice generates AES, EC and RSA keys; the list
// and its filters show them with owner alice; one key's detail names its
// attributes (bools as bools, enums as names, bytes as hex), never a
// secret's value.
func TestAPIKeysGenerateListGet(t *testing.T) {
	e := newEnv(t)
	a := e.alice()
	aes := a.gen(t, map[string]any{"type": "aes", "label": "k-aes", "bits": 256, "id": "0a0b"})
	require.Len(t, aes, 1)
	ec := a.gen(t, map[string]any{"type": "ec", "label": "k-ec", "curve": "P-256"})
	require.Len(t, ec, 2, "a pair gives two keys")
	rsaK := a.gen(t, map[string]any{"type": "rsa", "label": "k-rsa", "bits": 2048})
	require.Len(t, rsaK, 2)
	for _, k := range append(append(aes, ec...), rsaK...) {
		assert.Equal(t, "alice", k.Owner, "%+v", k)
		assert.True(t, k.Token, "%+v", k)
	}
	assert.Equal(t, "0a0b", strings.ToLower(aes[0].ID))

	all := a.list(t, "")
	assert.Len(t, all, 5)
	assert.Equal(t, handles(aes), handles(a.list(t, "label=k-aes")))
	assert.Equal(t, handles(ec), handles(a.list(t, "label=k-ec")))
	assert.Empty(t, a.list(t, "label=none-such"))
	assert.Len(t, a.list(t, "owner=alice"), 5)
	assert.Empty(t, a.list(t, "owner=bob"))
	for _, k := range all {
		q := url.Values{"class": {k.Class}, "key_type": {k.KeyType}}.Encode()
		got := a.list(t, q)
		require.NotEmpty(t, got, q)
		for _, g := range got {
			assert.Equal(t, k.Class, g.Class, q)
			assert.Equal(t, k.KeyType, g.KeyType, q)
		}
	}

	var d struct {
		Key   keyJSON        `json:"key"`
		Attrs map[string]any `json:"attributes"`
	}
	a.do("GET", hpath(aes[0].Handle), nil).ok(t, http.StatusOK, &d)
	assert.Equal(t, aes[0].Handle, d.Key.Handle)
	assert.Equal(t, "k-aes", d.Attrs["CKA_LABEL"])
	assert.Equal(t, true, d.Attrs["CKA_TOKEN"], "bools as bools")
	assert.Equal(t, true, d.Attrs["CKA_SENSITIVE"])
	assert.Equal(t, "CKO_SECRET_KEY", d.Attrs["CKA_CLASS"], "enums as names")
	assert.Equal(t, "CKK_AES", d.Attrs["CKA_KEY_TYPE"])
	assert.Equal(t, "0a0b", strings.ToLower(fmt.Sprint(d.Attrs["CKA_ID"])), "bytes as hex")
	assert.NotContains(t, d.Attrs, "CKA_VALUE", "a secret's value is never shown")

	pub := ec[0]
	if pub.Class == private(ec).Class {
		pub = ec[1]
	}
	a.do("GET", hpath(pub.Handle), nil).ok(t, http.StatusOK, &d)
	assert.Contains(t, d.Attrs, "CKA_EC_POINT", "a public key's point is readable")
	a.do("GET", hpath(private(ec).Handle), nil).ok(t, http.StatusOK, &d)
	assert.NotContains(t, d.Attrs, "CKA_VALUE")
	a.do("GET", hpath(private(rsaK).Handle), nil).ok(t, http.StatusOK, &d)
	assert.Contains(t, d.Attrs, "CKA_MODULUS")
	for _, secret := range []string{"CKA_PRIVATE_EXPONENT", "CKA_PRIME_1", "CKA_PRIME_2", "CKA_EXPONENT_1", "CKA_EXPONENT_2", "CKA_COEFFICIENT", "CKA_VALUE"} {
		assert.NotContains(t, d.Attrs, secret, "an RSA private key's secret parts are never shown")
	}

	// The officer sees keys too (what the token shows it).
	// An officer sees public objects only, and reads none of alice's
	// private or secret keys.
	co := e.officer()
	for _, k := range co.list(t, "") {
		assert.False(t, k.Private, "the officer sees %+v", k)
	}
	for _, k := range []keyJSON{aes[0], private(ec), private(rsaK)} {
		r := co.do("GET", hpath(k.Handle), nil)
		assert.Contains(t, []int{http.StatusNotFound, http.StatusForbidden}, r.Status, "%s", r.Body)
	}
}

// TestAPIKeysOwnership: bob never sees, reads, deletes or shares alice's
// unshared key; sharing it with bob shows it to him (still alice's), and
// unsharing hides it again.
func TestAPIKeysOwnership(t *testing.T) {
	e := newEnv(t)
	a, b := e.alice(), e.bob()
	ks := a.gen(t, map[string]any{"type": "ec", "label": "alice-ec", "curve": "P-256"})
	k := private(ks)
	secret := a.gen(t, map[string]any{"type": "aes", "label": "alice-aes", "bits": 128})[0]

	// Public keys are public objects (CKA_PRIVATE false): the token shows
	// them to every user, as C_FindObjects does. Private and secret keys
	// stay alice's.
	for _, x := range bobList(t, b) {
		if x.Owner == "alice" {
			assert.Equal(t, "public-key", x.Class, "bob sees alice's key %+v", x)
			assert.False(t, x.Private, "%+v", x)
		}
	}
	for _, h := range []uint64{k.Handle, secret.Handle} {
		r := b.do("GET", hpath(h), nil)
		assert.Contains(t, []int{http.StatusNotFound, http.StatusForbidden}, r.Status, "%s", r.Body)
		r = b.do("DELETE", hpath(h), nil)
		assert.Contains(t, []int{http.StatusNotFound, http.StatusForbidden}, r.Status, "%s", r.Body)
		r = b.do("PUT", hpath(h, "/shares/bob"), nil)
		assert.Contains(t, []int{http.StatusNotFound, http.StatusForbidden}, r.Status, "%s", r.Body)
		r = b.do("DELETE", hpath(h, "/shares/bob"), nil)
		assert.Contains(t, []int{http.StatusNotFound, http.StatusForbidden}, r.Status, "%s", r.Body)
	}
	// Bob's filters don't leak it either.
	for _, x := range b.list(t, "owner=alice") {
		assert.Equal(t, "public-key", x.Class)
	}
	assert.Empty(t, b.list(t, "label=alice-aes"))

	// Shared: bob sees and reads it, still cannot delete or reshare it.
	var one struct {
		Key keyJSON `json:"key"`
	}
	a.do("PUT", hpath(secret.Handle, "/shares/bob"), nil).ok(t, http.StatusOK, &one)
	assert.Equal(t, []string{"bob"}, one.Key.SharedWith)
	assert.Equal(t, []uint64{secret.Handle}, handles(b.list(t, "label=alice-aes")))
	b.do("GET", hpath(secret.Handle), nil).ok(t, http.StatusOK, nil)
	r := b.do("DELETE", hpath(secret.Handle), nil)
	assert.Contains(t, []int{http.StatusForbidden, http.StatusNotFound}, r.Status, "%s", r.Body)
	r = b.do("DELETE", hpath(secret.Handle, "/shares/bob"), nil)
	assert.Contains(t, []int{http.StatusForbidden, http.StatusNotFound}, r.Status, "%s", r.Body)
	assert.Len(t, a.list(t, "label=alice-aes"), 1, "still there")

	r = a.do("PUT", hpath(secret.Handle, "/shares/bob"), nil)
	assert.Equal(t, http.StatusConflict, r.Status, "shared twice: %s", r.Body)
	r = a.do("PUT", hpath(secret.Handle, "/shares/alice"), nil)
	assert.Equal(t, http.StatusBadRequest, r.Status, "shared with its owner: %s", r.Body)
	a.do("DELETE", hpath(secret.Handle, "/shares/bob"), nil).ok(t, http.StatusOK, &one)
	assert.Empty(t, one.Key.SharedWith)
	r = a.do("DELETE", hpath(secret.Handle, "/shares/bob"), nil)
	assert.Equal(t, http.StatusConflict, r.Status, "unshared twice: %s", r.Body)
	assert.Empty(t, b.list(t, "label=alice-aes"))

	// Sharing with nobody, or with an officer.
	r = a.do("PUT", hpath(secret.Handle, "/shares/nobody"), nil)
	assert.Contains(t, []int{http.StatusNotFound, http.StatusBadRequest}, r.Status, "%s", r.Body)
	r = a.do("PUT", hpath(secret.Handle, "/shares/admin"), nil)
	assert.Contains(t, []int{http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound}, r.Status, "%s", r.Body)

	// Alice deletes her key; it is gone for everyone.
	a.do("DELETE", hpath(secret.Handle), nil).ok(t, http.StatusNoContent, nil)
	a.do("GET", hpath(secret.Handle), nil).want(t, http.StatusNotFound, "")
	a.do("DELETE", hpath(secret.Handle), nil).want(t, http.StatusNotFound, "")
}

func bobList(t *testing.T, b *client) []keyJSON { return b.list(t, "") }

// TestAPIKeysRoles: an officer cannot generate, import, delete or share keys
// (the token refuses: 403 with its CKR); a crypto user can.
func TestAPIKeysRoles(t *testing.T) {
	e := newEnv(t)
	a := e.alice()
	k := a.gen(t, map[string]any{"type": "aes", "label": "a", "bits": 128})[0]
	co := e.officer()
	r := co.do("POST", "/api/v1/keys", map[string]any{"type": "aes", "label": "co", "bits": 128})
	assert.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	assert.NotEmpty(t, r.apiErr(t).Error.CKR, "the token's refusal names its CKR")
	r = co.do("POST", "/api/v1/keys/import", map[string]any{"label": "co", "aes_key_hex": strings.Repeat("11", 16)})
	assert.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	r = co.do("DELETE", hpath(k.Handle), nil)
	assert.Contains(t, []int{http.StatusForbidden, http.StatusNotFound}, r.Status, "%s", r.Body)
	r = co.do("PUT", hpath(k.Handle, "/shares/bob"), nil)
	assert.Contains(t, []int{http.StatusForbidden, http.StatusNotFound}, r.Status, "%s", r.Body)
	assert.Len(t, a.list(t, "label=a"), 1)
}

// TestAPIKeysBadInput: bad specs are 400 with the token's CKR where one
// applies; bad handles are 400 or 404, never a 500.
func TestAPIKeysBadInput(t *testing.T) {
	e := newEnv(t)
	a := e.alice()
	for _, spec := range []map[string]any{
		{"type": "aes", "label": "x", "bits": 100},
		{"type": "aes", "label": "x", "bits": -1},
		{"type": "aes", "label": "x", "bits": 1 << 40},
		{"type": "ec", "label": "x", "curve": "P-999"},
		{"type": "rsa", "label": "x", "bits": 512},
		{"type": "rsa", "label": "x", "bits": 1 << 20},
		{"type": "dsa", "label": "x"},
		{"type": "", "label": "x"},
		{"type": "aes", "label": "x", "bits": 128, "id": "zz"},
	} {
		r := a.raw("POST", "/api/v1/keys", spec, nil)
		assert.Equal(t, http.StatusBadRequest, r.Status, "%.200v: %s", spec, truncate(r.Body))
	}
	for _, body := range []string{
		`{`, `null`, `[]`, `"aes"`, `{"type": "aes", "label": "x", "bits": "128"}`,
		`{"type": "aes", "label": "x", "bits": 128, "colour": "red"}`,
		`{"type": "aes", "label": "x", "bits": 128.5}`,
		`{"type": "aes", "label": "x", "bits": 128}{"type": "aes"}`,
	} {
		a.raw("POST", "/api/v1/keys", body, nil).want(t, http.StatusBadRequest, "")
	}
	// A body past the 1 MiB limit is refused, not read forever.
	huge := `{"type": "aes", "label": "` + strings.Repeat("x", 2<<20) + `", "bits": 128}`
	r := a.raw("POST", "/api/v1/keys", huge, nil)
	assert.Contains(t, []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}, r.Status, "%s", truncate(r.Body))
	assert.Empty(t, a.list(t, ""), "nothing was made")

	for _, h := range []string{"-1", "abc", "18446744073709551616", "18446744073709551615", "0", "1.5", "0x10", "%20", "99999"} {
		for _, m := range []string{"GET", "DELETE"} {
			r := a.raw(m, "/api/v1/keys/"+h, nil, nil)
			assert.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, r.Status, "%s %s: %s", m, h, r.Body)
		}
		r := a.raw("PUT", "/api/v1/keys/"+h+"/shares/bob", nil, nil)
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, r.Status, "PUT %s: %s", h, r.Body)
	}
	a.raw("GET", "/api/v1/keys?class=CKO_NOPE", nil, nil)
	a.raw("GET", "/api/v1/keys?key_type=%ff%fe", nil, nil)
}

// TestAPIKeysImport: PEM private keys (PKCS#8, SEC1, PKCS#1) and SPKI public
// keys for EC and RSA, and raw AES keys, import as alice's; bad PEM, bad
// hex, wrong sizes and both-or-neither are 400.
func TestAPIKeysImport(t *testing.T) {
	e := newEnv(t)
	a := e.alice()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	p8, err := x509.MarshalPKCS8PrivateKey(ecKey)
	require.NoError(t, err)
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	require.NoError(t, err)
	spki, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	require.NoError(t, err)
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	for i, body := range []map[string]any{
		{"label": "imp-p8", "pem": pemOf("PRIVATE KEY", p8)},
		{"label": "imp-sec1", "pem": pemOf("EC PRIVATE KEY", sec1), "id": "01"},
		{"label": "imp-pkcs1", "pem": pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))},
		{"label": "imp-spki", "pem": pemOf("PUBLIC KEY", spki)},
		{"label": "imp-aes", "aes_key_hex": strings.Repeat("ab", 32)},
	} {
		var out keysJSON
		a.do("POST", "/api/v1/keys/import", body).ok(t, http.StatusCreated, &out)
		require.NotEmpty(t, out.Keys, "%d", i)
		for _, k := range out.Keys {
			assert.Equal(t, body["label"], k.Label)
			assert.Equal(t, "alice", k.Owner)
		}
	}
	var d struct {
		Attrs map[string]any `json:"attributes"`
	}
	aesK := a.list(t, "label=imp-aes")
	require.Len(t, aesK, 1)
	a.do("GET", hpath(aesK[0].Handle), nil).ok(t, http.StatusOK, &d)
	assert.NotContains(t, d.Attrs, "CKA_VALUE", "an imported secret is sensitive")
	assert.Equal(t, true, d.Attrs["CKA_SENSITIVE"])
	for _, k := range bobList(t, e.bob()) {
		assert.Equal(t, "public-key", k.Class, "bob sees alice's imported %+v", k)
	}

	for _, body := range []map[string]any{
		{"label": "bad", "pem": "not a pem"},
		{"label": "bad", "pem": pemOf("PRIVATE KEY", []byte("garbage"))},
		{"label": "bad", "pem": pemOf("CERTIFICATE", []byte("garbage"))},
		{"label": "bad", "aes_key_hex": "zz"},
		{"label": "bad", "aes_key_hex": strings.Repeat("ab", 15)},
		{"label": "bad", "aes_key_hex": ""},
		{"label": "bad"},
		{"label": "bad", "pem": pemOf("PRIVATE KEY", p8), "aes_key_hex": strings.Repeat("ab", 16)},
	} {
		r := a.raw("POST", "/api/v1/keys/import", body, nil)
		assert.Equal(t, http.StatusBadRequest, r.Status, "%v: %s", body["pem"], r.Body)
	}
	assert.Empty(t, a.list(t, "label=bad"))
}

// TestAPIKeysImportHostile: keys the token does not take and PEM that is
// not what it says are 400, never 500, and leave nothing behind.
func TestAPIKeysImportHostile(t *testing.T) {
	e := newEnv(t)
	a := e.alice()
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	require.NoError(t, err)
	p521der, err := x509.MarshalPKCS8PrivateKey(p521)
	require.NoError(t, err)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p8, err := x509.MarshalPKCS8PrivateKey(p256)
	require.NoError(t, err)
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	for name, body := range map[string]map[string]any{
		"P-521":            {"label": "bad", "pem": pemOf("PRIVATE KEY", p521der)},
		"RSA-1024":         {"label": "bad", "pem": pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small))},
		"encrypted":        {"label": "bad", "pem": pemOf("ENCRYPTED PRIVATE KEY", p8)},
		"type mislabelled": {"label": "bad", "pem": pemOf("RSA PRIVATE KEY", p8)},
		"truncated":        {"label": "bad", "pem": pemOf("PRIVATE KEY", p8[:len(p8)/2])},
		"two keys":         {"label": "bad", "pem": pemOf("PRIVATE KEY", p8) + pemOf("PRIVATE KEY", p8)},
		"huge":             {"label": "bad", "pem": pemOf("PRIVATE KEY", make([]byte, 700<<10))},
		"bad id":           {"label": "bad", "id": "xyz", "aes_key_hex": strings.Repeat("ab", 16)},
		"AES 8 bytes":      {"label": "bad", "aes_key_hex": strings.Repeat("ab", 8)},
		"AES odd hex":      {"label": "bad", "aes_key_hex": strings.Repeat("a", 33)},
		"pem number":       {"label": "bad", "pem": 5},
	} {
		r := a.raw("POST", "/api/v1/keys/import", body, nil)
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}, r.Status, "%s: %s", name, truncate(r.Body))
	}
	assert.Empty(t, a.list(t, "label=bad"), "nothing made")
	// (Bytes after a PKCS#8 key's DER are ignored, as crypto/x509 ignores
	// them: the key itself is whole.) Upper-case hex is hex.
	var out keysJSON
	a.do("POST", "/api/v1/keys/import", map[string]any{"label": "upper", "aes_key_hex": strings.Repeat("AB", 16)}).ok(t, http.StatusCreated, &out)
}

// TestAPIKeysSeeOtherProcesses: a key another opening of the token makes
// (the library in an application, the CLI) is in the console's list at
// once, and a key the console deletes is gone for that opening: the
// console shows the token, not a copy of it.
func TestAPIKeysSeeOtherProcesses(t *testing.T) {
	e := newEnv(t)
	a := e.alice()
	m, err := token.OpenTool(e.conf)
	require.NoError(t, err)
	defer m.Close()
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte("alice:"+alicePW)))
	made, err := admin.Generate(m, h, admin.GenSpec{Type: "aes", Label: "from-app", Bits: 128})
	require.NoError(t, err)
	got := a.list(t, "label=from-app")
	require.Len(t, got, 1, "the console sees the application's new key")
	assert.EqualValues(t, made[0].Handle, got[0].Handle, "one handle for the token's object everywhere")

	a.do("DELETE", hpath(got[0].Handle), nil).ok(t, http.StatusNoContent, nil)
	ks, err := admin.ListKeys(m, h, admin.Filter{Label: "from-app"})
	require.NoError(t, err)
	assert.Empty(t, ks, "the application no longer finds the key the console deleted")
}

// TestAPIKeysSetTrusted: PUT /keys/{handle}/trusted is `gohsm key
// set-trusted`: an officer sets CKA_TRUSTED (on a crypto user's key it
// cannot read, by handle, and on a public key it sees); the token refuses
// a crypto user, even the key's owner; bad bodies are 400.
func TestAPIKeysSetTrusted(t *testing.T) {
	e := newEnv(t)
	a := e.alice()
	aes := a.gen(t, map[string]any{"type": "aes", "label": "kek", "bits": 256})[0]
	ec := a.gen(t, map[string]any{"type": "ec", "label": "pair"})
	pub := ec[0]
	if pub.Class == private(ec).Class {
		pub = ec[1]
	}
	trusted := func(h uint64) any {
		var d struct {
			Attrs map[string]any `json:"attributes"`
		}
		a.do("GET", hpath(h), nil).ok(t, http.StatusOK, &d)
		return d.Attrs["CKA_TRUSTED"]
	}
	require.Equal(t, false, trusted(aes.Handle))

	a.do("PUT", hpath(aes.Handle, "/trusted"), map[string]any{"trusted": true}).want(t, http.StatusForbidden, "")
	assert.Equal(t, false, trusted(aes.Handle), "a crypto user's refusal changed nothing")

	co := e.officer()
	co.do("PUT", hpath(aes.Handle, "/trusted"), map[string]any{"trusted": true}).ok(t, http.StatusNoContent, nil)
	assert.Equal(t, true, trusted(aes.Handle))
	co.do("PUT", hpath(aes.Handle, "/trusted"), map[string]any{"trusted": false}).ok(t, http.StatusNoContent, nil)
	assert.Equal(t, false, trusted(aes.Handle))
	co.do("PUT", hpath(pub.Handle, "/trusted"), map[string]any{"trusted": true}).ok(t, http.StatusNoContent, nil)
	assert.Equal(t, true, trusted(pub.Handle))

	// A private key has no CKA_TRUSTED to set; no such handle is 404.
	r := co.do("PUT", hpath(private(ec).Handle, "/trusted"), map[string]any{"trusted": true})
	assert.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, r.Status, "%s", r.Body)
	co.do("PUT", hpath(999999, "/trusted"), map[string]any{"trusted": true}).want(t, http.StatusNotFound, "")
	for _, body := range []string{`{}`, `{"trusted": "yes"}`, `{"trusted": true, "x": 1}`, `{"TRUSTED": true}`, ``} {
		co.raw("PUT", hpath(aes.Handle, "/trusted"), body, nil).want(t, http.StatusBadRequest, "")
	}
	co.raw("PUT", "/api/v1/keys/x/trusted", map[string]any{"trusted": true}, nil).want(t, http.StatusBadRequest, "bad_request")
	co.raw("PUT", hpath(aes.Handle, "/trusted"), map[string]any{"trusted": true}, map[string]string{"X-CSRF-Token": ""}).want(t, http.StatusForbidden, "csrf")
	assert.Equal(t, false, trusted(aes.Handle))
}
