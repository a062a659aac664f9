package cluster

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"

	"gohsm/token/audit"
)

// signer signs with k in a session of its own until stopped, counting
// what it sees.
type signer struct {
	stop     atomic.Bool
	ok, errs atomic.Int64
	first    atomic.Value
	wg       sync.WaitGroup
}

func (tk *tok) startSigner(k pkcs11.ObjectHandle) *signer {
	sg := &signer{}
	s := tk.session()
	sg.wg.Add(1)
	go func() {
		defer sg.wg.Done()
		for !sg.stop.Load() {
			if err := tk.sign(s, k); err != nil {
				if sg.errs.Add(1) == 1 {
					sg.first.Store(err.Error())
				}
			} else {
				sg.ok.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return sg
}

// end stops the signer and requires that it signed without an error.
func (sg *signer) end(t *testing.T, what string) {
	t.Helper()
	sg.stop.Store(true)
	sg.wg.Wait()
	first, _ := sg.first.Load().(string)
	require.Zero(t, sg.errs.Load(), "%s: the signer failed (first: %s)", what, first)
	require.Positive(t, sg.ok.Load(), "%s: the signer signed", what)
}

// logins counts the CN_LOGIN records of each of the two streams.
func (tk *tok) logins() [2]int {
	return [2]int{count(tk.audit("hsm-0"), audit.CN_LOGIN), count(tk.audit("hsm-1"), audit.CN_LOGIN)}
}

// TestHSMDownAndUp: a 2-HSM cluster, HSM 1 taken down and brought back by
// the operator (`gohsm cluster hsm down|up 1`, another process) while
// this process signs with a token key:
//   - signing goes on without an error (the SDK fails over), signs begun
//     before HSM 1 went down included; calls land only on HSM 0 while 1
//     is down, on both after it is up;
//   - a session key made on HSM 1 is lost with it (CKR_KEY_HANDLE_INVALID)
//     and stays lost once the HSM is back (it rebooted); those on HSM 0
//     keep working;
//   - no token key can be made while one of two HSMs is down (the key
//     availability quorum);
//   - the audit streams (CloudHSM's multi-HSM events, behaviour 29): a
//     login while HSM 1 is down (a second time) is in hsm-0 only, one
//     after it is up in both, a logout in one stream only; hsm-1 has its
//     GOHSM_HSM_STATE records; a token key generated on HSM X is
//     CN_GENERATE_KEY + CN_EXTRACT_MASKED_OBJECT_USER in X's stream and
//     CN_INSERT_MASKED_OBJECT_USER in the other, same handle.
func TestHSMDownAndUp(t *testing.T) {
	tk := newCluster(t, "hsms = 2")
	s := tk.login()
	k := tk.genEC(s, true, "signer")
	for i := 0; i < 10; i++ {
		require.NoError(t, tk.sign(s, k))
	}
	st := tk.status()
	// miekg/pkcs11 asks C_Sign for the signature's length first: length
	// queries never reach an HSM (decision 3), so 10 signs are 10 calls.
	require.Equal(t, uint64(10), sumClass(st, "ec-sign", calls), "10 C_Sign after their length queries")
	for i := 0; i < 2; i++ {
		require.Equal(t, "up", hsmOf(t, st, i).State)
		require.Positive(t, classOf(st, i, "ec-sign").Calls, "round robin: HSM %d signed", i)
	}

	// Session keys, and the HSM each was made on (its keygen counter).
	type sessionKey struct {
		h   pkcs11.ObjectHandle
		hsm int
	}
	var keys []sessionKey
	on := [2]int{}
	for i := 0; i < 8 && (on[0] == 0 || on[1] == 0 || len(keys) < 4); i++ {
		before := tk.status()
		h := tk.genAES(s, false, "session")
		after := tk.status()
		hsm := -1
		for j := 0; j < 2; j++ {
			if classOf(after, j, "keygen").Calls > classOf(before, j, "keygen").Calls {
				require.Equal(t, -1, hsm, "one session key generated on two HSMs")
				hsm = j
			}
		}
		require.NotEqual(t, -1, hsm, "the session key's generation is counted on an HSM")
		keys = append(keys, sessionKey{h, hsm})
		on[hsm]++
	}
	require.Positive(t, on[0], "session keys on HSM 0")
	require.Positive(t, on[1], "session keys on HSM 1")
	for _, sk := range keys {
		require.NoError(t, tk.encrypt(s, sk.h), "session key on HSM %d, both up", sk.hsm)
	}

	// Operations begun before HSM 1 goes down: round robin routed about
	// half of them to it at C_SignInit; their C_Sign fails over.
	var pending []pkcs11.SessionHandle
	for i := 0; i < 4; i++ {
		ps := tk.session()
		require.NoError(t, tk.p.SignInit(ps, mech(pkcs11.CKM_ECDSA, nil), k))
		pending = append(pending, ps)
	}

	// HSM 1 goes down while a signer signs.
	sg := tk.startSigner(k)
	time.Sleep(100 * time.Millisecond)
	tk.gohsm("cluster", "hsm", "down", "1")
	a := tk.status()
	for i, ps := range pending {
		_, err := tk.p.Sign(ps, digest)
		require.NoError(t, err, "C_Sign %d, begun before HSM 1 went down", i)
	}
	time.Sleep(300 * time.Millisecond)
	b := tk.status()
	sg.end(t, "HSM 1 going down")
	require.Equal(t, "down", hsmOf(t, b, 1).State)
	require.Equal(t, uint32(1), hsmOf(t, b, 1).Epoch, "HSM 1 went down once")
	require.Equal(t, classOf(a, 1, "ec-sign").Calls, classOf(b, 1, "ec-sign").Calls, "calls on HSM 1 while it is down")
	require.Greater(t, classOf(b, 0, "ec-sign").Calls, classOf(a, 0, "ec-sign").Calls, "calls go to HSM 0")

	_, err := tk.tryAES(s, true, "not-while-down")
	requireRV(t, err, pkcs11.CKR_FUNCTION_FAILED, "a token key with one of two HSMs down")
	require.Empty(t, tk.findLabel(s, "not-while-down"))
	for _, sk := range keys {
		if sk.hsm == 1 {
			requireRV(t, tk.encrypt(s, sk.h), pkcs11.CKR_KEY_HANDLE_INVALID, "a session key on the downed HSM")
		} else {
			require.NoError(t, tk.encrypt(s, sk.h), "a session key on HSM 0 while 1 is down")
		}
	}

	// HSM 1 comes back while a signer signs.
	sg = tk.startSigner(k)
	time.Sleep(100 * time.Millisecond)
	tk.gohsm("cluster", "hsm", "up", "1")
	time.Sleep(300 * time.Millisecond)
	c := tk.status()
	sg.end(t, "HSM 1 coming up")
	require.Equal(t, "up", hsmOf(t, c, 1).State)
	require.Greater(t, classOf(c, 1, "ec-sign").Calls, classOf(b, 1, "ec-sign").Calls, "calls on HSM 1 once it is up")
	require.Greater(t, classOf(c, 0, "ec-sign").Calls, classOf(b, 0, "ec-sign").Calls, "calls on HSM 0")
	for _, sk := range keys {
		if sk.hsm == 1 {
			requireRV(t, tk.encrypt(s, sk.h), pkcs11.CKR_KEY_HANDLE_INVALID, "a session key of HSM 1, after it rebooted")
		} else {
			require.NoError(t, tk.encrypt(s, sk.h))
		}
	}

	// Logins: in every reachable stream. (C_Logout destroys the private
	// session keys above: this comes after them, with HSM 1 down again.)
	loginsBefore := tk.logins()
	tk.gohsm("cluster", "hsm", "down", "1")
	require.NoError(t, tk.p.Logout(s))
	require.NoError(t, tk.p.Login(s, pkcs11.CKU_USER, userPIN), "C_Login while HSM 1 is down")
	loginsDown := tk.logins()
	require.Equal(t, loginsBefore[0]+1, loginsDown[0], "hsm-0 records the login while HSM 1 is down")
	require.Equal(t, loginsBefore[1], loginsDown[1], "hsm-1 records nothing while it is down")
	tk.gohsm("cluster", "hsm", "up", "1")
	logouts := func() int {
		return count(tk.audit("hsm-0"), audit.CN_LOGOUT) + count(tk.audit("hsm-1"), audit.CN_LOGOUT)
	}
	before := logouts()
	require.NoError(t, tk.p.Logout(s))
	require.Equal(t, before+1, logouts(), "a logout with both up is in one stream: the executing HSM's")
	require.NoError(t, tk.p.Login(s, pkcs11.CKU_USER, userPIN), "C_Login with both up")
	loginsUp := tk.logins()
	require.Equal(t, loginsDown[0]+1, loginsUp[0], "hsm-0 records the login")
	require.Equal(t, loginsDown[1]+1, loginsUp[1], "hsm-1 records the login once it is up")
	require.Equal(t, uint32(2), hsmOf(t, tk.status(), 1).Epoch, "HSM 1 went down twice")

	states := 0
	for _, r := range tk.audit("hsm-1") {
		if r.Event.Opcode == audit.GOHSM_HSM_STATE {
			states++
		}
	}
	require.GreaterOrEqual(t, states, 4, "hsm-1 records going down and coming up, twice (GOHSM_HSM_STATE)")

	// A token key: generate + extract on its HSM, insert on the other.
	nk := tk.genAES(s, true, "replicated")
	streams := [2][]audit.Record{tk.audit("hsm-0"), tk.audit("hsm-1")}
	origin := -1
	for i := 0; i < 2; i++ {
		if hasKeyEvent(streams[i], audit.CN_GENERATE_KEY, uint64(nk)) {
			require.Equal(t, -1, origin, "CN_GENERATE_KEY of key %d in both streams", nk)
			origin = i
		}
	}
	require.NotEqual(t, -1, origin, "CN_GENERATE_KEY of key %d in a stream", nk)
	other := 1 - origin
	gen := keyEventIndex(streams[origin], audit.CN_GENERATE_KEY, uint64(nk))
	ext := keyEventIndex(streams[origin], audit.CN_EXTRACT_MASKED_OBJECT_USER, uint64(nk))
	require.Greater(t, ext, gen, "hsm-%d: CN_EXTRACT_MASKED_OBJECT_USER follows CN_GENERATE_KEY", origin)
	require.True(t, hasKeyEvent(streams[other], audit.CN_INSERT_MASKED_OBJECT_USER, uint64(nk)),
		"hsm-%d: CN_INSERT_MASKED_OBJECT_USER of key %d", other, nk)
	require.False(t, hasKeyEvent(streams[other], audit.CN_GENERATE_KEY, uint64(nk)))
	require.False(t, hasKeyEvent(streams[origin], audit.CN_INSERT_MASKED_OBJECT_USER, uint64(nk)))
}

// keyEventIndex is the index of the record of opcode op on key h, or -1.
func keyEventIndex(recs []audit.Record, op audit.Opcode, h uint64) int {
	for i, r := range recs {
		if r.Event.Opcode == op && r.Event.Key == h {
			return i
		}
	}
	return -1
}

func hasKeyEvent(recs []audit.Record, op audit.Opcode, h uint64) bool {
	return keyEventIndex(recs, op, h) >= 0
}
