package cloudhsmcli

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
	"gohsm/token"
	"gohsm/token/quorum"
	"gohsm/token/store"
)

// -update-quorum rewrites testdata/quorum-*.golden (named apart from
// other tests' -update flags of this package).
var updateQuorum = flag.Bool("update-quorum", false, "rewrite the quorum golden files")

// timeoutRE finds token list's seconds to expiry, which the transcript
// does not keep (a second may pass).
var timeoutRE = regexp.MustCompile(`("token-timeout-seconds": \{\s*"value": )\d+`)

var (
	qKeysOnce sync.Once
	qKeys     []*rsa.PrivateKey
)

// quorumCLI is a token with officers admin, admin2, admin3 and crypto user
// cu1, driven through Run with CLOUDHSM_ROLE/CLOUDHSM_PIN; each officer has
// an RSA-2048 approver key made here, as `openssl genrsa` would.
type quorumCLI struct {
	t    *testing.T
	dir  string
	conf string
	keys map[string]*rsa.PrivateKey
	log  bytes.Buffer // the transcript compared with the golden file
	cfg  *token.Config
}

var quorumPINs = map[string]string{"admin": "admin:officer-pw", "admin2": "admin2:officer-pw2", "admin3": "admin3:officer-pw3",
	"cu1": "cu1:cu1-password", "cu2": "cu2:cu2-password"}

func newQuorumCLI(t *testing.T, profile string) *quorumCLI {
	qKeysOnce.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			qKeys = append(qKeys, k)
		}
	})
	dir := t.TempDir()
	conf := filepath.Join(dir, "gohsm.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\n[slot 0]\nprofile = %s\n",
		filepath.Join(dir, "tokens"), profile)), 0o600))
	e := &quorumCLI{t: t, dir: dir, conf: conf, keys: map[string]*rsa.PrivateKey{"admin": qKeys[0], "admin2": qKeys[1], "admin3": qKeys[2]}}
	cfg, err := token.ParseConfig(fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_file = %s\n[slot 0]\nprofile = %s\n",
		filepath.Join(dir, "tokens"), os.DevNull, profile), conf)
	require.NoError(t, err)
	m, err := token.Open(cfg)
	require.NoError(t, err)
	defer m.Close()
	s, err := m.Slot(0)
	require.NoError(t, err)
	require.NoError(t, s.InitToken([]byte(quorumPINs["admin"]), "quorum"))
	h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(quorumPINs["admin"])))
	for _, u := range []string{"admin2", "admin3"} {
		require.NoError(t, m.CreateUser(h, u, store.RoleCO, []byte(strings.SplitN(quorumPINs[u], ":", 2)[1])))
	}
	require.NoError(t, m.CreateUser(h, "cu1", store.RoleCU, []byte("cu1-password")))
	require.NoError(t, m.CreateUser(h, "cu2", store.RoleCU, []byte("cu2-password")))
	e.cfg = cfg
	return e
}

// run runs one command as user ("" logged out) and returns its exit
// status and output; the transcript records both.
func (e *quorumCLI) run(user string, args ...string) (int, string) {
	e.t.Helper()
	role := ""
	switch {
	case strings.HasPrefix(user, "cu"):
		role = "crypto-user"
	case user != "":
		role = "admin"
	}
	e.t.Setenv("CLOUDHSM_ROLE", role)
	e.t.Setenv("CLOUDHSM_PIN", quorumPINs[user])
	var out, errOut bytes.Buffer
	code := Run(args, nil, &out, &errOut, Options{Config: e.conf})
	line := strings.ReplaceAll(strings.Join(args, " "), e.dir, "$DIR")
	fmt.Fprintf(&e.log, "$ [%s] cloudhsm-cli %s\n%s", user, line, timeoutRE.ReplaceAllString(strings.ReplaceAll(out.String(), e.dir, "$DIR"), "${1}N"))
	if errOut.Len() > 0 {
		fmt.Fprintf(&e.log, "(stderr) %s", errOut.String())
	}
	fmt.Fprintf(&e.log, "(exit %d)\n", code)
	return code, out.String()
}

// data decodes an envelope's data.
func (e *quorumCLI) data(out string, v any) {
	e.t.Helper()
	var env struct {
		Code int             `json:"error_code"`
		Data json.RawMessage `json:"data"`
	}
	require.NoError(e.t, json.Unmarshal([]byte(out), &env), out)
	require.NoError(e.t, json.Unmarshal(env.Data, v), out)
}

func (e *quorumCLI) path(name string) string { return filepath.Join(e.dir, name) }

// openSSLSign is what `openssl pkeyutl -sign -inkey KEY -pkeyopt
// digest:sha256 -in token.bin` does with the decoded token: PKCS#1 v1.5
// with SHA-256's DigestInfo around the 32 bytes given.
func openSSLSign(t *testing.T, k *rsa.PrivateKey, b64 string) string {
	t.Helper()
	tok, err := base64.StdEncoding.DecodeString(b64)
	require.NoError(t, err)
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, tok)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(sig)
}

// register is the first-time setup of UG quorum-auth-chsm-cli-first-time
// for one user: a registration token, signed, and the public key.
func (e *quorumCLI) register(user string) {
	t := e.t
	t.Helper()
	tf := e.path(user + ".reg")
	code, out := e.run(user, "quorum", "token-sign", "generate", "--service", "registration", "--token", tf)
	require.Zero(t, code, out)
	var reg map[string]any
	b, err := os.ReadFile(tf)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &reg))
	assert.Equal(t, "2.0", reg["version"])
	tok := reg["tokens"].([]any)[0].(map[string]any)
	assert.Equal(t, "", tok["signed"])
	tok["signed"] = openSSLSign(t, e.keys[user], tok["unsigned"].(string))
	b, _ = json.MarshalIndent(reg, "", "  ")
	require.NoError(t, os.WriteFile(tf, b, 0o600))
	der, err := x509.MarshalPKIXPublicKey(&e.keys[user].PublicKey)
	require.NoError(t, err)
	pub := e.path(user + ".pub")
	require.NoError(t, os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	code, out = e.run(user, "user", "change-quorum", "token-sign", "register", "--public-key", pub, "--signed-token", tf)
	require.Zero(t, code, out)
}

// approve adds approvers' signatures to a token file, as approvers do by
// hand (UG quorum-auth-chsm-cli-admin, "Get signatures").
func (e *quorumCLI) approve(file string, approvers ...string) {
	t := e.t
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var f map[string]any
	require.NoError(t, json.Unmarshal(b, &f))
	sigs := f["signatures"].([]any)
	for _, a := range approvers {
		sigs = append(sigs, map[string]any{"username": a, "signature": openSSLSign(t, e.keys[a], f["token"].(string))})
	}
	f["signatures"] = sigs
	b, _ = json.MarshalIndent(f, "", "  ")
	require.NoError(t, os.WriteFile(file, b, 0o600))
}

func (e *quorumCLI) golden(name string) {
	t := e.t
	t.Helper()
	p := filepath.Join("testdata", name)
	if *updateQuorum {
		require.NoError(t, os.WriteFile(p, e.log.Bytes(), 0o644))
		return
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "run with -update-quorum to create it")
	assert.Equal(t, string(want), e.log.String())
}

// TestQuorumFlowCLI: CloudHSM CLI's quorum flow for admins in both
// profiles: three admins register keys, quorum and user values go to 2 (the
// user value needs a quorum token approved by two admins), a token is used
// once, and the texts and JSON are CloudHSM's (golden transcript).
func TestQuorumFlowCLI(t *testing.T) {
	for _, prof := range []string{"standard", "cloudhsm"} {
		t.Run(prof, func(t *testing.T) {
			e := newQuorumCLI(t, prof)
			code, out := e.run("", "quorum", "token-sign", "list-quorum-values")
			require.Zero(t, code, out)
			var vs map[string]int
			e.data(out, &vs)
			if prof == "cloudhsm" {
				assert.Equal(t, map[string]int{"user": 1, "quorum": 1, "cluster": 1}, vs, "hsm2m has the cluster service")
			} else {
				assert.Equal(t, map[string]int{"user": 1, "quorum": 1}, vs)
			}
			for _, u := range []string{"admin", "admin2", "admin3"} {
				e.register(u)
			}
			code, out = e.run("admin", "quorum", "token-sign", "set-quorum-value", "--service", "user", "--value", "2")
			assert.Equal(t, 1, code, "user may not exceed quorum")
			code, out = e.run("admin", "quorum", "token-sign", "set-quorum-value", "--service", "quorum", "--value", "2")
			require.Zero(t, code, out)
			code, out = e.run("admin", "quorum", "token-sign", "set-quorum-value", "--service", "user", "--value", "2")
			assert.Equal(t, 1, code)
			assert.Contains(t, out, `"Quorum approval is required for this operation"`)

			tf := e.path("admin.token")
			code, out = e.run("admin", "quorum", "token-sign", "generate", "--service", "quorum", "--token", tf)
			require.Zero(t, code, out)
			code, out = e.run("admin", "quorum", "token-sign", "list")
			require.Zero(t, code, out)
			var list struct {
				Tokens []quorumTokenJSON `json:"tokens"`
			}
			e.data(out, &list)
			require.Len(t, list.Tokens, 1)
			tok := list.Tokens[0]
			assert.Equal(t, "admin", tok.Username)
			assert.Equal(t, "quorum", tok.Service)
			assert.Equal(t, 2, tok.Required.Value)
			assert.Zero(t, tok.Approvals.Value)
			assert.InDelta(t, 600, tok.Timeout.Value, 5)

			e.approve(tf, "admin2")
			code, out = e.run("admin", "quorum", "token-sign", "set-quorum-value", "--service", "user", "--value", "2", "--approval", tf)
			assert.Equal(t, 1, code, "one approval of two")
			e.approve(tf, "admin3")
			code, out = e.run("admin", "quorum", "token-sign", "set-quorum-value", "--service", "user", "--value", "2", "--approval", tf)
			require.Zero(t, code, out)
			code, out = e.run("admin", "quorum", "token-sign", "set-quorum-value", "--service", "user", "--value", "1", "--approval", tf)
			assert.Equal(t, 1, code, "a token is used once")
			code, out = e.run("", "quorum", "token-sign", "list-quorum-values")
			require.Zero(t, code, out)
			e.data(out, &vs)
			assert.Equal(t, 2, vs["user"])
			assert.Equal(t, 2, vs["quorum"])

			// Behaviour 27: user create without approval fails; with two
			// admins' signatures it succeeds, once.
			create := []string{"user", "create", "--username", "alice", "--role", "crypto-user", "--password", "alice-pw-1"}
			code, out = e.run("admin", create...)
			assert.Equal(t, 1, code)
			assert.Contains(t, out, `"Quorum approval is required for this operation"`)
			uf := e.path("user.token")
			code, out = e.run("admin", "quorum", "token-sign", "generate", "--service", "user", "--token", uf)
			require.Zero(t, code, out)
			e.approve(uf, "admin2", "admin3")
			code, out = e.run("admin", append(create, "--approval", uf)...)
			require.Zero(t, code, out)
			var created map[string]string
			e.data(out, &created)
			assert.Equal(t, map[string]string{"username": "alice", "role": "crypto-user"}, created)
			code, out = e.run("admin", "user", "delete", "--username", "alice", "--role", "crypto-user", "--approval", uf)
			assert.Equal(t, 1, code, "the token was used")
			code, out = e.run("", "user", "list")
			require.Zero(t, code, out)
			var ul struct {
				Users []listedUser `json:"users"`
			}
			e.data(out, &ul)
			for _, u := range ul.Users {
				if u.Role == "admin" {
					assert.Equal(t, []strategy{{"token-sign", "enabled"}}, u.Quorum, u.Username)
				} else {
					assert.Empty(t, u.Quorum, u.Username)
				}
			}

			code, out = e.run("admin", "quorum", "token-sign", "generate", "--service", "user", "--token", e.path("u.token"))
			require.Zero(t, code, out)
			code, out = e.run("admin", "quorum", "token-sign", "generate", "--service", "user", "--token", e.path("u2.token"))
			assert.Equal(t, 1, code, "one live user token per admin")
			code, out = e.run("admin", "quorum", "token-sign", "delete", "--scope", "all")
			require.Zero(t, code, out)
			code, out = e.run("cu1", "quorum", "token-sign", "delete", "--scope", "all")
			assert.Equal(t, 1, code, "admins only")
			code, out = e.run("admin", "quorum", "token-sign", "list")
			require.Zero(t, code, out)
			e.data(out, &list)
			assert.Empty(t, list.Tokens)
			code, out = e.run("admin", "quorum", "token-sign", "generate", "--service", "bogus", "--token", e.path("b.token"))
			assert.Equal(t, 1, code)
			e.golden("quorum-flow-" + prof + ".golden")
		})
	}
}

// TestKeyQuorumCLI: a key's use value gates crypto sign (--approval), its
// manage value key wrap (--payload-approval) and key unwrap (--approval);
// approvers are the key's owner and sharees, crypto users who registered
// keys; key unwrap's --use-key-quorum-value above the key's users is
// refused and leaves no key behind.
func TestKeyQuorumCLI(t *testing.T) {
	e := newQuorumCLI(t, "cloudhsm")
	e.keys["cu1"], e.keys["cu2"] = qKeys[0], qKeys[1]
	e.register("cu1")
	e.register("cu2")
	// Keys made with the generate commands: an EC signing key with use
	// value 2, an AES wrapping key, an AES payload key with manage value
	// 2, all shared with cu2 (values may not exceed owner + sharees).
	ref := func(out string, path ...string) ck.ULong {
		t.Helper()
		var v any
		e.data(out, &v)
		for _, p := range path {
			v = v.(map[string]any)[p]
		}
		var h uint64
		_, err := fmt.Sscanf(v.(string), "0x%x", &h)
		require.NoError(t, err)
		return ck.ULong(h)
	}
	code, out := e.run("cu1", "key", "generate-asymmetric-pair", "ec", "--public-label", "q-ec", "--private-label", "q-ec",
		"--curve", "secp256r1", "--share-crypto-users", "cu2", "--use-key-quorum-value", "3")
	assert.Equal(t, 1, code, "3 > owner + 1 sharee")
	code, out = e.run("cu1", "key", "list", "--filter", "attr.label=q-ec")
	require.Zero(t, code, out)
	assert.Contains(t, out, `"total_key_count": 0`, "the refused pair was removed, both halves")
	code, out = e.run("cu1", "key", "generate-asymmetric-pair", "ec", "--public-label", "q-ec", "--private-label", "q-ec",
		"--curve", "secp256r1", "--private-attributes", "sign=true", "--share-crypto-users", "cu2", "--use-key-quorum-value", "2")
	require.Zero(t, code, out)
	assert.Contains(t, out, `"use-key-quorum-value": 2`)
	priv := ref(out, "private_key", "key-reference")
	gen := func(label string, extra ...string) ck.ULong {
		t.Helper()
		code, out := e.run("cu1", append([]string{"key", "generate-symmetric", "aes", "--label", label, "--key-length-bytes", "32",
			"--attributes", "wrap=true", "unwrap=true", "extractable=true", "--share-crypto-users", "cu2"}, extra...)...)
		require.Zero(t, code, out)
		return ref(out, "key", "key-reference")
	}
	wrapper := gen("q-wrapper")
	payload := gen("q-payload", "--manage-key-quorum-value", "2")

	data := base64.StdEncoding.EncodeToString([]byte("quorum"))
	sign := []string{"crypto", "sign", "ecdsa", "--key-filter", "key-reference=" + KeyReference(priv), "--hash-function", "sha256", "--data", data}
	code, out = e.run("cu1", sign...)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `"Quorum Failed"`, "UG key-quorum-auth-chsm-cli-crypto-user")
	tf := e.path("sign.token")
	code, out = e.run("cu1", "quorum", "token-sign", "generate", "--service", "key-usage", "--token", tf)
	require.Zero(t, code, out)
	e.approve(tf, "cu1", "cu2")
	code, out = e.run("cu1", append(sign, "--approval", tf)...)
	require.Zero(t, code, out)
	code, out = e.run("cu1", append(sign, "--approval", tf)...)
	assert.Equal(t, 1, code, "used once")

	wrap := []string{"key", "wrap", "aes-no-pad", "--payload-filter", "key-reference=" + KeyReference(payload),
		"--wrapping-filter", "key-reference=" + KeyReference(wrapper)}
	code, out = e.run("cu1", wrap...)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `"Quorum Failed"`)
	tf = e.path("wrap.token")
	code, out = e.run("cu1", "quorum", "token-sign", "generate", "--service", "key-management", "--token", tf)
	require.Zero(t, code, out)
	e.approve(tf, "cu2", "cu1")
	code, out = e.run("cu1", append(wrap, "--payload-approval", tf)...)
	require.Zero(t, code, out)
	var w struct {
		Data string `json:"wrapped_key_data"`
	}
	e.data(out, &w)

	// The unwrapped key gets values; its users are cu1 alone, so 1 at most
	// unless shared: shared with cu2, 2 is allowed.
	code, out = e.run("cu1", "key", "unwrap", "aes-no-pad", "--filter", "key-reference="+KeyReference(wrapper),
		"--key-type-class", "aes", "--label", "unwrapped", "--data", w.Data, "--share-crypto-users", "cu2", "--use-key-quorum-value", "2")
	require.Zero(t, code, out)
	var k struct {
		Key struct {
			Info keyInfo `json:"key-info"`
		} `json:"key"`
	}
	e.data(out, &k)
	assert.Equal(t, keyQuorumValue{Manage: 0, Use: 2}, k.Key.Info.Quorum)
	// key share and set-attribute of the payload key need key-management
	// tokens too.
	code, out = e.run("admin", "user", "create", "--username", "cu3", "--role", "crypto-user", "--password", "cu3-password")
	require.Zero(t, code, out)
	share := []string{"key", "share", "--filter", "key-reference=" + KeyReference(payload), "--username", "cu3", "--role", "crypto-user"}
	code, out = e.run("cu1", share...)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `"Quorum Failed"`)
	setAttr := []string{"key", "set-attribute", "--filter", "key-reference=" + KeyReference(payload), "--name", "label", "--value", "renamed"}
	code, out = e.run("cu1", setAttr...)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `"Quorum Failed"`)
	tf = e.path("attr.token")
	code, out = e.run("cu1", "quorum", "token-sign", "generate", "--service", "key-management", "--token", tf)
	require.Zero(t, code, out)
	e.approve(tf, "cu2", "cu1")
	code, out = e.run("cu1", append(setAttr, "--approval", tf)...)
	require.Zero(t, code, out)
	tf = e.path("share.token")
	code, out = e.run("cu1", "quorum", "token-sign", "generate", "--service", "key-management", "--token", tf)
	require.Zero(t, code, out)
	e.approve(tf, "cu2", "cu1")
	code, out = e.run("cu1", append(share, "--approval", tf)...)
	require.Zero(t, code, out)

	code, out = e.run("cu1", "key", "unwrap", "aes-no-pad", "--filter", "key-reference="+KeyReference(wrapper),
		"--key-type-class", "aes", "--label", "too-many", "--data", w.Data, "--manage-key-quorum-value", "2")
	assert.Equal(t, 1, code, "one user, value 2")
	code, out = e.run("cu1", "key", "list", "--filter", "attr.label=too-many")
	require.Zero(t, code, out)
	assert.Contains(t, out, `"total_key_count": 0`, "the refused key was removed")
}

// TestQuorumFilesBadInput: a missing, special or oversized approval file
// is refused with a clear message, never read forever.
func TestQuorumFilesBadInput(t *testing.T) {
	e := newQuorumCLI(t, "standard")
	big := e.path("big.token")
	require.NoError(t, os.WriteFile(big, bytes.Repeat([]byte{' '}, quorum.MaxFile+1), 0o600))
	junk := e.path("junk.token")
	require.NoError(t, os.WriteFile(junk, []byte(`{"version":"2.0","approval_data":"!!","token":"","signatures":[]}`), 0o600))
	for _, c := range []struct{ file, want string }{
		{e.path("missing.token"), "failed to read approval file"},
		{"/dev/zero", "not a regular file"},
		{e.dir, "not a regular file"},
		{big, "larger than"},
		{junk, "Quorum token file is malformed"},
	} {
		code, out := e.run("admin", "quorum", "token-sign", "set-quorum-value", "--service", "quorum", "--value", "2", "--approval", c.file)
		assert.Equal(t, 1, code, c.file)
		assert.Contains(t, out, c.want, c.file)
	}
	code, out := e.run("admin", "user", "change-quorum", "token-sign", "register", "--public-key", "/dev/zero", "--signed-token", junk)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "not a regular file")
}

// TestQuorumOpenSSLRecipe: docs/quorum.md's recipe with the real openssl:
// a key from `openssl genrsa`, its public half from `openssl rsa -pubout`,
// the registration token and an approval signed with `openssl pkeyutl
// -sign -pkeyopt digest:sha256` over the decoded token, as the AWS pages
// show it. The token accepts both.
func TestQuorumOpenSSLRecipe(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		testenv.Missing(t, "openssl not installed")
	}
	e := newQuorumCLI(t, "standard")
	ossl := func(args ...string) {
		t.Helper()
		out, err := exec.Command(openssl, args...).CombinedOutput()
		require.NoError(t, err, "openssl %v: %s", args, out)
	}
	for _, u := range []string{"admin", "admin2"} {
		ossl("genrsa", "-out", e.path(u+".key"), "2048")
		ossl("rsa", "-in", e.path(u+".key"), "-outform", "PEM", "-pubout", "-out", e.path(u+".pub"))
	}
	// sign is the pages' three steps: base64 -d, pkeyutl -sign, base64.
	sign := func(user, b64 string) string {
		t.Helper()
		tok, err := base64.StdEncoding.DecodeString(b64)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(e.path("token.bin"), tok, 0o600))
		ossl("pkeyutl", "-sign", "-inkey", e.path(user+".key"), "-pkeyopt", "digest:sha256", "-keyform", "PEM",
			"-in", e.path("token.bin"), "-out", e.path("sig.bin"))
		sig, err := os.ReadFile(e.path("sig.bin"))
		require.NoError(t, err)
		return base64.StdEncoding.EncodeToString(sig)
	}
	edit := func(file string, f func(map[string]any)) {
		t.Helper()
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		var doc map[string]any
		require.NoError(t, json.Unmarshal(b, &doc))
		f(doc)
		b, _ = json.Marshal(doc)
		require.NoError(t, os.WriteFile(file, b, 0o600))
	}
	for _, u := range []string{"admin", "admin2"} {
		reg := e.path(u + ".reg")
		code, out := e.run(u, "quorum", "token-sign", "generate", "--service", "registration", "--token", reg)
		require.Zero(t, code, out)
		edit(reg, func(doc map[string]any) {
			tok := doc["tokens"].([]any)[0].(map[string]any)
			tok["signed"] = sign(u, tok["unsigned"].(string))
		})
		code, out = e.run(u, "user", "change-quorum", "token-sign", "register", "--public-key", e.path(u+".pub"), "--signed-token", reg)
		require.Zero(t, code, out)
	}
	code, out := e.run("admin", "quorum", "token-sign", "set-quorum-value", "--service", "quorum", "--value", "2")
	require.Zero(t, code, out)
	tf := e.path("q.token")
	code, out = e.run("admin", "quorum", "token-sign", "generate", "--service", "quorum", "--token", tf)
	require.Zero(t, code, out)
	edit(tf, func(doc map[string]any) {
		var sigs []any
		for _, u := range []string{"admin", "admin2"} {
			sigs = append(sigs, map[string]any{"username": u, "signature": sign(u, doc["token"].(string))})
		}
		doc["signatures"] = sigs
	})
	code, out = e.run("admin", "quorum", "token-sign", "set-quorum-value", "--service", "user", "--value", "2", "--approval", tf)
	require.Zero(t, code, out)
}
