package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCrossProcessVisibility: this process (A) creates a token key pair and
// stays initialised; process B finds the key and signs with it, then process
// B' destroys it, and A's next find no longer sees it.
func TestCrossProcessVisibility(t *testing.T) {
	tk := newToken(t)
	tk.initToken()
	s := tk.userSession(userPIN)
	pub, priv := tk.genEC(s, oidP256, "shared-across-processes", true)
	key := tk.ecPublic(s, pub, elliptic.P256())
	// A has used the key (it is in A's caches) before B touches it.
	tk.sign(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), priv, []byte("warm up"))

	msg := []byte("signed by process B")
	out := tk.run("sign", userPIN, "shared-across-processes", hex.EncodeToString(msg))
	require.Len(t, out, 1)
	f := strings.Fields(out[0])
	require.Len(t, f, 2)
	assert.Equal(t, strconv.FormatUint(uint64(priv), 10), f[0], "B sees the key under the handle A has")
	sig, err := hex.DecodeString(f[1])
	require.NoError(t, err)
	h := sha256.Sum256(msg)
	r, ss := ecdsaRS(t, sig, 32)
	assert.True(t, ecdsa.Verify(key, h[:], r, ss), "B's signature does not verify with A's public key")
	require.NoError(t, tk.verify(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), pub, msg, sig))

	out = tk.run("destroy", userPIN, "shared-across-processes")
	require.Equal(t, []string{"2"}, out, "B destroys the public and the private key")
	assert.Empty(t, tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_LABEL, "shared-across-processes")), "A still finds the key B destroyed")
	requireRV(t, tk.p.SignInit(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), priv), pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_OBJECT_HANDLE_INVALID)
	_, err = tk.p.GetAttributeValue(s, pub, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
	requireRV(t, err, pkcs11.CKR_OBJECT_HANDLE_INVALID)
}

// TestConcurrentCreators: two processes each create 500 token objects at
// the same moment; a third finds exactly the 1,000, each label once.
func TestConcurrentCreators(t *testing.T) {
	tk := newToken(t)
	tk.initToken()
	const n = 500
	a := tk.start("create", userPIN, "a", strconv.Itoa(n))
	b := tk.start("create", userPIN, "b", strconv.Itoa(n))
	a.expect(t, "READY", 30*time.Second)
	b.expect(t, "READY", 30*time.Second)
	start := time.Now()
	fmt.Fprintln(a.stdin, "go")
	fmt.Fprintln(b.stdin, "go")
	assert.Equal(t, []string{"DONE"}, a.wait(t))
	assert.Equal(t, []string{"DONE"}, b.wait(t))
	t.Logf("2 x %d concurrent C_CreateObject in %v", n, time.Since(start).Round(time.Millisecond))

	seen := map[string]int{}
	handles := map[string]bool{}
	lines := tk.run("list", userPIN)
	for _, l := range lines {
		h, label, ok := strings.Cut(l, " ")
		require.True(t, ok, "list line %q", l)
		seen[label]++
		assert.False(t, handles[h], "handle %s listed twice", h)
		handles[h] = true
	}
	assert.Len(t, lines, 2*n, "objects found")
	for _, p := range []string{"a", "b"} {
		for i := range n {
			label := fmt.Sprintf("%s-%d", p, i)
			assert.Equal(t, 1, seen[label], "label %s", label)
		}
	}
}

// TestCrashSafety: a writer process creates token objects in a loop (data
// objects and private AES keys, whose values are sealed at rest) and
// reports each one after C_CreateObject returned CKR_OK; it is killed with
// SIGKILL at a random moment, 50 times. After each kill a fresh process must
// find every object reported so far, under the reported handle and with
// its value; an object in flight at a kill may exist, whole.
func TestCrashSafety(t *testing.T) {
	tk := newToken(t)
	tk.initToken()
	// Up to 50 kill cycles, at least 20. Each cycle is a whole proof
	// (every reported object survives the kill); the time box only keeps a
	// loaded machine from stretching the test: alone the 50 cycles take
	// 25-35 s (56-63 s with the token in PostgreSQL), but beside the rest
	// of the suite (tests/fork's storm cases fork hundreds of children, at
	// load 44) a clean-clone CI run managed 48 in 180 s. Fewer than 20 in
	// that time is a crawl and fails. Each cycle has its own bound (READY
	// within 30 s).
	const kills, minKills = 50, 20
	deadline := time.Now().Add(120 * time.Second)
	committed := map[string]string{} // label -> handle
	var unreported, done int
	for i := range kills {
		if time.Now().After(deadline) {
			if i < minKills {
				t.Fatalf("only %d kill cycles within 120 s, fewer than %d", i, minKills)
			}
			t.Logf("time box: %d of %d kill cycles within 120 s", i, kills)
			break
		}
		done = i + 1
		w := tk.start("writer", userPIN, fmt.Sprintf("w%d", i))
		w.expect(t, "READY", 30*time.Second)
		time.Sleep(time.Duration(10+rand.IntN(191)) * time.Millisecond)
		require.NoError(t, w.cmd.Process.Signal(syscall.SIGKILL))
		var reported int
		for l := range w.lines {
			h, label, ok := strings.Cut(l, " ")
			require.True(t, ok, "writer line %q", l)
			committed[label] = h
			reported++
		}
		err := w.cmd.Wait()
		ws, _ := w.cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("writer %d ended by itself (%v) before the kill; stderr:\n%s", i, err, w.errText())
		}

		found := map[string]string{}
		for _, l := range tk.run("values", userPIN) {
			f := strings.Fields(l)
			require.Len(t, f, 3, "values line %q", l)
			h, label, value := f[0], f[1], f[2]
			if want := hex.EncodeToString(writerValue(label)); value != want {
				t.Fatalf("kill %d: %s (handle %s) has value %s after the crash, want %s", i, label, h, value, want)
			}
			found[label] = h
		}
		for label, h := range committed {
			got, ok := found[label]
			if !ok {
				t.Fatalf("kill %d: %s (handle %s) was reported created but is gone after the crash", i, label, h)
			}
			if got != h {
				t.Fatalf("kill %d: %s reported as handle %s, found as %s", i, label, h, got)
			}
		}
		// Only the object in flight at each kill may exist unreported.
		unreported = len(found) - len(committed)
		require.LessOrEqual(t, len(found)-len(committed), i+1, "more unreported objects than kills")
		if reported == 0 {
			t.Logf("kill %d: the writer reported nothing", i)
		}
	}
	t.Logf("%d kills, %d objects reported and found; %d more created but never reported (each in flight at a kill)", done, len(committed), unreported)
	require.NotEmpty(t, committed)
}
