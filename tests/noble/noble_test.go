// Package noble checks the module's ML-DSA and HashML-DSA, through the C
// ABI of the built library, against an independent implementation:
// @noble/post-quantum (JavaScript, pinned in package.json and
// package-lock.json, installed by tests/deps.sh with npm ci). The module
// and noble answer the same questions and must agree; for the few NIST
// ACVP HashML-DSA vectors kept in mechanisms/testdata both must also give
// NIST's verdict, and for Bouncy Castle's deterministic HashML-DSA
// vectors there both must sign exactly the published signature
// (docs/design.md, "ML-DSA").
package noble

import (
	"bufio"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/internal/testenv"
)

// preHash is one pre-hash function of HashML-DSA as each side names it.
type preHash struct {
	noble   string           // @noble/hashes export
	digest  ck.MechanismType // CK_HASH_SIGN_ADDITIONAL_CONTEXT.hash for CKM_HASH_ML_DSA; 0: none
	variant ck.MechanismType // CKM_HASH_ML_DSA_<hash>; 0: none
	new     func() hash.Hash // the caller's hash for CKM_HASH_ML_DSA
	other   string           // a different pre-hash of the same output length (the "wrong hash" mutation)
}

// preHashes are FIPS 204's pre-hash functions (section 5.4.1) that the
// module lists: SHA-2 and SHA-3 through CKM_HASH_ML_DSA's parameter and
// (all but SHA-512/224 and /256) their CKM_HASH_ML_DSA_<hash> variants,
// SHAKE128/256 through their variants only.
var preHashes = []preHash{
	{"sha224", ck.CKM_SHA224, ck.CKM_HASH_ML_DSA_SHA224, sha256.New224, "sha3_224"},
	{"sha256", ck.CKM_SHA256, ck.CKM_HASH_ML_DSA_SHA256, sha256.New, "sha3_256"},
	{"sha384", ck.CKM_SHA384, ck.CKM_HASH_ML_DSA_SHA384, sha512.New384, "sha3_384"},
	{"sha512", ck.CKM_SHA512, ck.CKM_HASH_ML_DSA_SHA512, sha512.New, "sha3_512"},
	{"sha512_224", ck.CKM_SHA512_224, 0, sha512.New512_224, "sha224"},
	{"sha512_256", ck.CKM_SHA512_256, 0, sha512.New512_256, "sha256"},
	{"sha3_224", ck.CKM_SHA3_224, ck.CKM_HASH_ML_DSA_SHA3_224, func() hash.Hash { return sha3.New224() }, "sha224"},
	{"sha3_256", ck.CKM_SHA3_256, ck.CKM_HASH_ML_DSA_SHA3_256, func() hash.Hash { return sha3.New256() }, "sha256"},
	{"sha3_384", ck.CKM_SHA3_384, ck.CKM_HASH_ML_DSA_SHA3_384, func() hash.Hash { return sha3.New384() }, "sha384"},
	{"sha3_512", ck.CKM_SHA3_512, ck.CKM_HASH_ML_DSA_SHA3_512, func() hash.Hash { return sha3.New512() }, "sha512"},
	{"shake128_32", 0, ck.CKM_HASH_ML_DSA_SHAKE128, nil, "sha256"},
	{"shake256_64", 0, ck.CKM_HASH_ML_DSA_SHAKE256, nil, "sha512"},
}

func preHashNamed(name string) *preHash {
	for i := range preHashes {
		if preHashes[i].noble == name {
			return &preHashes[i]
		}
	}
	panic("no pre-hash " + name)
}

// mode is how the module is asked: pure CKM_ML_DSA, a CKM_HASH_ML_DSA_<hash>
// variant (the module hashes), or CKM_HASH_ML_DSA (the caller hashes).
type mode int

const (
	pure mode = iota
	variant
	callerHash
)

func (m mode) String() string { return [...]string{"CKM_ML_DSA", "variant", "CKM_HASH_ML_DSA"}[m] }

// op is one signature's setting: what both sides sign or verify.
type op struct {
	mode mode
	ph   *preHash // nil for pure
	ctx  []byte
	msg  []byte
}

func (o op) String() string {
	h := "-"
	if o.ph != nil {
		h = o.ph.noble
	}
	return fmt.Sprintf("%v/%s ctx %d msg %d", o.mode, h, len(o.ctx), len(o.msg))
}

// p11 asks the module (the C driver) in op's terms: the mechanism, its
// hash parameter, and the data (PH(M) for CKM_HASH_ML_DSA).
func (o op) p11() (mech, hashMech ck.MechanismType, data []byte) {
	switch o.mode {
	case variant:
		return o.ph.variant, 0, o.msg
	case callerHash:
		h := o.ph.new()
		h.Write(o.msg)
		return ck.CKM_HASH_ML_DSA, o.ph.digest, h.Sum(nil)
	}
	return ck.CKM_ML_DSA, 0, o.msg
}

// noble asks noble in op's terms: it always hashes the message itself.
func (o op) noble() (mode, hashName string) {
	if o.mode == pure {
		return "pure", "-"
	}
	return "prehash", o.ph.noble
}

func hx(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return hex.EncodeToString(b)
}

// peerTimeout bounds a peer's life (the whole run takes 12-16 s on a
// loaded 2-core machine).
const peerTimeout = 4 * time.Minute

// peer is a line-oriented process: one request, one answer.
type peer struct {
	name string
	in   io.WriteCloser
	out  *bufio.Reader
	cmd  *exec.Cmd
}

func start(t *testing.T, name string, cmd *exec.Cmd) *peer {
	t.Helper()
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start(), name)
	p := &peer{name: name, in: in, out: bufio.NewReaderSize(out, 1<<16), cmd: cmd}
	// The hang guard: a peer that stops answering is killed, and the
	// test's next read fails instead of waiting for go test's timeout.
	guard := time.AfterFunc(peerTimeout, func() { cmd.Process.Kill() })
	t.Cleanup(func() {
		guard.Stop()
		p.in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("%s stderr:\n%s", name, stderr.String())
		}
	})
	return p
}

func (p *peer) ask(t *testing.T, format string, args ...any) string {
	t.Helper()
	_, err := fmt.Fprintf(p.in, format+"\n", args...)
	require.NoError(t, err, "%s: write", p.name)
	line, err := p.out.ReadString('\n')
	require.NoError(t, err, "%s: no answer to %q", p.name, fmt.Sprintf(format, args...))
	return strings.TrimSuffix(line, "\n")
}

// pinnedNoble is the @noble/post-quantum version package.json pins; the
// installed one must be it.
func pinnedNoble(t *testing.T, node string) string {
	t.Helper()
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile("package.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &pkg))
	want := pkg.Dependencies["@noble/post-quantum"]
	require.Regexp(t, `^\d+\.\d+\.\d+$`, want, "package.json pins an exact version")
	var got struct {
		Version string
		Engines struct{ Node string }
	}
	b, err = os.ReadFile(filepath.Join("node_modules", "@noble", "post-quantum", "package.json"))
	if err != nil {
		testenv.Missing(t, "@noble/post-quantum not installed in tests/noble (run tests/deps.sh, or npm ci there): %v", err)
	}
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, want, got.Version, "installed @noble/post-quantum is not the pinned one (npm ci in tests/noble)")
	// Its engines field (">= 20.19.0"): an older node is a missing prerequisite.
	var min [3]int
	_, err = fmt.Sscanf(strings.ReplaceAll(got.Engines.Node, " ", ""), ">=%d.%d.%d", &min[0], &min[1], &min[2])
	require.NoError(t, err, "engines.node %q", got.Engines.Node)
	out, err := exec.Command(node, "-p", "process.versions.node").Output()
	require.NoError(t, err)
	var have [3]int
	_, err = fmt.Sscanf(strings.TrimSpace(string(out)), "%d.%d.%d", &have[0], &have[1], &have[2])
	require.NoError(t, err, "node version %q", out)
	if slices.Compare(have[:], min[:]) < 0 {
		testenv.Missing(t, "node %s is older than @noble/post-quantum %s needs (%s)", strings.TrimSpace(string(out)), want, got.Engines.Node)
	}
	return want
}

// peers starts the module's C driver (p11_mldsa.c on the built library,
// with a fresh token) and noble's script, and returns them with the pinned
// @noble/post-quantum version.
func peers(t *testing.T) (mod, nb *peer, version string) {
	t.Helper()
	lib := testenv.Library(t)
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Missing(t, "node not found (tests/deps.sh installs nodejs): %v", err)
	}
	version = pinnedNoble(t, node)

	dir := t.TempDir()
	bin := testenv.CompileC(t, filepath.Join("testdata", "p11_mldsa.c"), filepath.Join(dir, "p11_mldsa"), filepath.Join("tests", "abi", "testdata"))
	tokenDir := filepath.Join(dir, "token")
	require.NoError(t, os.MkdirAll(tokenDir, 0o700))
	conf := filepath.Join(dir, "gohsm.conf")
	require.NoError(t, os.WriteFile(conf, []byte(testenv.TokenConfig(tokenDir, "abi")), 0o600))
	c := exec.Command(bin, lib)
	c.Dir, c.Env = dir, append(os.Environ(), "GOHSM_CONF="+conf, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	mod = start(t, "p11_mldsa", c)
	for {
		line, err := mod.out.ReadString('\n')
		require.NoError(t, err, "p11_mldsa did not get ready: %s", line)
		require.NotContains(t, line, "FAIL ", "p11_mldsa setup")
		if line == "ready\n" {
			break
		}
	}
	nb = start(t, "noble", exec.Command(node, filepath.Join("testdata", "noble_mldsa.mjs")))
	return mod, nb, version
}

// TestHashMLDSAAgainstNoble: for ML-DSA-44/65/87, every pre-hash the module
// lists (each CKM_HASH_ML_DSA_<hash> variant and every hash CKM_HASH_ML_DSA
// takes) and pure CKM_ML_DSA, contexts of 0, 1 and 255 bytes:
//   - keys cross by seed: noble derives (pk, sk) from a 32-byte ξ, the
//     module creates the private key from CKA_SEED = ξ with CKA_VALUE = sk
//     (it refuses an expanded key that does not match the seed) and the
//     public key from pk;
//   - the module's deterministic signature (CKH_DETERMINISTIC_REQUIRED)
//     equals noble's (extraEntropy: false) byte for byte;
//   - each side's hedged signature verifies on the other (the variants'
//     hedged signing is multi-part);
//   - each mutation of either hedged signature's setting is rejected by
//     both: one bit of the signature, one bit of the message, the context,
//     the pre-hash (another of the same output length), and pure versus
//     pre-hash;
//   - for CKM_HASH_ML_DSA the module also rejects the caller's digest
//     presented under another hash mechanism of the same length, where only
//     the OID in M' differs (noble takes no digest, so this one is the
//     module's alone).
func TestHashMLDSAAgainstNoble(t *testing.T) {
	mod, nb, version := peers(t)

	rng := rand.New(rand.NewChaCha8([32]byte([]byte("gohsm tests/noble hashml-dsa 001"))))
	bytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	type key struct {
		id   int
		set  int
		seed string
	}
	var keys []key
	for i, set := range []struct {
		n   int
		ckp ck.ULong
	}{{44, ck.CKP_ML_DSA_44}, {65, ck.CKP_ML_DSA_65}, {87, ck.CKP_ML_DSA_87}} {
		seed := hx(bytes(32))
		f := strings.Fields(nb.ask(t, "keygen %d %s", set.n, seed))
		require.Len(t, f, 3, "noble keygen: %v", f)
		require.Equal(t, "ok", mod.ask(t, "key %d %d %s %s %s", i, uint64(set.ckp), seed, f[1], f[2]),
			"ML-DSA-%d: the module takes noble's public key and expanded private key for the seed", set.n)
		keys = append(keys, key{i, set.n, seed})
	}

	// The pre-hashes above are the module's: the CKM_HASH_ML_DSA_<hash>
	// variants it lists, and the listed mechanisms CKM_HASH_ML_DSA takes as
	// its hash (probed with C_SignInit), are the table's.
	f := strings.Fields(mod.ask(t, "mechs"))
	require.Equal(t, "mechs", f[0], "C_GetMechanismList: %v", f)
	var listedVariants, tableVariants, takenHashes, tableHashes []string
	for _, x := range f[1:] {
		v, err := strconv.ParseUint(x, 16, 64)
		require.NoError(t, err)
		mt := ck.MechanismType(v)
		if strings.HasPrefix(mt.String(), "CKM_HASH_ML_DSA_") {
			listedVariants = append(listedVariants, mt.String())
		}
		if a := mod.ask(t, "prehash 0 %x", v); a == "ok" {
			takenHashes = append(takenHashes, mt.String())
		} else {
			require.Contains(t, []string{"rv CKR_MECHANISM_PARAM_INVALID"}, a, "CKM_HASH_ML_DSA with hash %v", mt)
		}
	}
	for _, ph := range preHashes {
		if ph.variant != 0 {
			tableVariants = append(tableVariants, ph.variant.String())
		}
		if ph.digest != 0 {
			tableHashes = append(tableHashes, ph.digest.String())
		}
	}
	require.ElementsMatch(t, tableVariants, listedVariants, "the CKM_HASH_ML_DSA_<hash> variants C_GetMechanismList lists")
	require.ElementsMatch(t, tableHashes, takenHashes, "the listed mechanisms CKM_HASH_ML_DSA takes as its hash")

	// The settings: every pre-hash in each mode that reaches it, and pure.
	var settings []op
	for i := range preHashes {
		ph := &preHashes[i]
		if ph.variant != 0 {
			settings = append(settings, op{mode: variant, ph: ph})
		}
		if ph.digest != 0 {
			settings = append(settings, op{mode: callerHash, ph: ph})
		}
	}
	settings = append(settings, op{mode: pure})

	sign := func(k key, o op, det bool, parts int) (p11, nob []byte) {
		t.Helper()
		mech, hm, data := o.p11()
		d := map[bool]int{false: 0, true: 1}[det]
		a := mod.ask(t, "sign %d %x %x %d %d %s %s", k.id, uint64(mech), uint64(hm), d, parts, hx(o.ctx), hx(data))
		require.True(t, strings.HasPrefix(a, "sig "), "ML-DSA-%d %v: module sign: %s", k.set, o, a)
		m, h := o.noble()
		b := nb.ask(t, "sign %d %s %s %d %s %s %s", k.set, m, h, d, k.seed, hx(o.ctx), hx(o.msg))
		require.True(t, strings.HasPrefix(b, "sig "), "ML-DSA-%d %v: noble sign: %s", k.set, o, b)
		p11, err := hex.DecodeString(a[4:])
		require.NoError(t, err)
		nob, err = hex.DecodeString(b[4:])
		require.NoError(t, err)
		return p11, nob
	}
	// verify asks both sides about sig in setting o: true, true or false, false
	// is agreement.
	verify := func(k key, o op, sig []byte) (p11, nob bool) {
		t.Helper()
		mech, hm, data := o.p11()
		a := mod.ask(t, "verify %d %x %x %s %s %s", k.id, uint64(mech), uint64(hm), hx(o.ctx), hx(data), hx(sig))
		require.Contains(t, []string{"ok", "rv CKR_SIGNATURE_INVALID"}, a, "ML-DSA-%d %v: module verify", k.set, o)
		m, h := o.noble()
		b := nb.ask(t, "verify %d %s %s %s %s %s %s", k.set, m, h, k.seed, hx(o.ctx), hx(o.msg), hx(sig))
		require.Contains(t, []string{"ok", "bad"}, b, "ML-DSA-%d %v: noble verify", k.set, o)
		return a == "ok", b == "ok"
	}
	flip := func(b []byte) []byte {
		out := append([]byte(nil), b...)
		i := rng.IntN(len(out) * 8)
		out[i/8] ^= 1 << (i % 8)
		return out
	}

	cases, rejected, renamed := 0, 0, 0
	for _, k := range keys {
		for _, s := range settings {
			for _, ctxLen := range []int{0, 1, 255} {
				o := s
				o.ctx = bytes(ctxLen)
				o.msg = bytes(rng.IntN(200))
				cases++
				name := fmt.Sprintf("ML-DSA-%d %v", k.set, o)

				p11Det, nobDet := sign(k, o, true, 1)
				require.Equal(t, hx(nobDet), hx(p11Det), "%s: deterministic signatures differ", name)

				parts := 1
				if o.mode == variant {
					parts = 2
				}
				p11Hedged, nobHedged := sign(k, o, false, parts)
				require.NotEqual(t, hx(p11Det), hx(p11Hedged), "%s: the module's hedged signature is the deterministic one", name)
				for who, sig := range map[string][]byte{"module": p11Hedged, "noble": nobHedged} {
					a, b := verify(k, o, sig)
					require.True(t, a && b, "%s: %s's hedged signature: module verifies %v, noble %v", name, who, a, b)
				}

				// The mutations, each applied to both sides' hedged signatures.
				type mutation struct {
					what string
					o    op
					sig  func([]byte) []byte
				}
				same := func(b []byte) []byte { return b }
				ms := []mutation{{"signature bit", o, flip}}
				if len(o.msg) > 0 {
					m := o
					m.msg = flip(o.msg)
					ms = append(ms, mutation{"message bit", m, same})
				} else {
					m := o
					m.msg = []byte{0}
					ms = append(ms, mutation{"message byte added", m, same})
				}
				m := o
				if len(o.ctx) > 0 {
					m.ctx = flip(o.ctx)
				} else {
					m.ctx = []byte{0}
				}
				ms = append(ms, mutation{"context", m, same})
				if o.mode == pure {
					m = o
					m.mode, m.ph = variant, preHashNamed("sha256")
					ms = append(ms, mutation{"pure signature as HashML-DSA-SHA256", m, same})
				} else {
					m = o
					m.ph = preHashNamed(o.ph.other)
					ms = append(ms, mutation{"pre-hash " + m.ph.noble, m, same})
					m = o
					m.mode, m.ph = pure, nil
					ms = append(ms, mutation{"HashML-DSA signature as pure ML-DSA", m, same})
				}
				if o.mode == callerHash {
					_, _, digest := o.p11()
					other := preHashNamed(o.ph.other)
					for who, sig := range map[string][]byte{"module": p11Hedged, "noble": nobHedged} {
						a := mod.ask(t, "verify %d %x %x %s %s %s", k.id, uint64(ck.CKM_HASH_ML_DSA), uint64(other.digest), hx(o.ctx), hx(digest), hx(sig))
						require.Equal(t, "rv CKR_SIGNATURE_INVALID", a, "%s: %s's signature, the %s digest named %v", name, who, o.ph.noble, other.digest)
						renamed++
					}
				}
				for _, mu := range ms {
					for who, sig := range map[string][]byte{"module": p11Hedged, "noble": nobHedged} {
						a, b := verify(k, mu.o, mu.sig(sig))
						require.False(t, a || b, "%s: %s's signature with %s changed: module accepts %v, noble %v", name, who, mu.what, a, b)
						rejected++
					}
				}
			}
		}
	}
	nb.in.Close()
	last, _ := nb.out.ReadString('\n')
	// The pairs noble's prehash() refuses as weaker than the set's λ, signed
	// through its getMessagePrehash and internal ML-DSA instead.
	t.Logf("@noble/post-quantum %s: %d settings (ML-DSA-44/65/87 x %d modes and pre-hashes x contexts 0, 1, 255): "+
		"deterministic signatures equal, hedged cross-verified, %d mutated verifications rejected by both, "+
		"%d digests under another hash's name rejected by the module; noble's %s",
		version, cases, len(settings), rejected, renamed, strings.TrimSpace(last))
}
