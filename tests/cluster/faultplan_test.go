package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"

	"gohsm/token/audit"
)

// replayPlan fails the next 3 C_Sign calls and, while it lasts, each
// C_Encrypt with probability 0.3, both with CKR_DEVICE_ERROR; its last
// step is for later (pending while the test runs).
const replayPlan = `{"seed": %d, "steps": [
  {"at": "0s", "fail": "C_Sign", "count": 3, "rv": "CKR_DEVICE_ERROR"},
  {"at": "0s", "for": "10m", "fail": "C_Encrypt", "probability": 0.3, "rv": "CKR_DEVICE_ERROR"},
  {"at": "10m", "hsm": 1, "state": "down"}
]}`

// replaySequence is the fixed call sequence of TestFaultPlanReplay: 8
// signs then 40 encryptions, each C_*Init + the single-part call. It
// returns what each call answered ("S3:CKR_DEVICE_ERROR") and how many
// failed.
func (tk *tok) replaySequence(s pkcs11.SessionHandle, signKey, aesKey pkcs11.ObjectHandle) (sign, enc []string, failed int) {
	tk.t.Helper()
	for i := 0; i < 8; i++ {
		require.NoError(tk.t, tk.p.SignInit(s, mech(pkcs11.CKM_ECDSA, nil), signKey), "C_SignInit %d", i)
		_, err := tk.p.Sign(s, digest)
		sign = append(sign, fmt.Sprintf("S%d:%s", i, rvName(err)))
		if err != nil {
			failed++
		}
	}
	for i := 0; i < 40; i++ {
		require.NoError(tk.t, tk.p.EncryptInit(s, mech(pkcs11.CKM_AES_CBC_PAD, make([]byte, 16)), aesKey), "C_EncryptInit %d", i)
		_, err := tk.p.Encrypt(s, []byte("sixteen byte msg"))
		enc = append(enc, fmt.Sprintf("E%d:%s", i, rvName(err)))
		if err != nil {
			failed++
		}
	}
	return sign, enc, failed
}

// faultsInjected counts the GOHSM_FAULT_INJECTED records of each stream,
// and the faults the status counts on each HSM (signs and encryptions).
func (tk *tok) faultsInjected() (records, counted [2]int) {
	for i := range records {
		records[i] = count(tk.audit(fmt.Sprintf("hsm-%d", i)), audit.GOHSM_FAULT_INJECTED)
	}
	st := tk.status()
	for i := range counted {
		counted[i] = int(classOf(st, i, "ec-sign").Failed + classOf(st, i, "symmetric").Failed)
	}
	return records, counted
}

// TestFaultPlanReplay: a fault plan is deterministic (the same plan, seed
// and call sequence fail the same calls with the same CKR) and explains
// itself (a GOHSM_FAULT_INJECTED audit record per injected fault). The
// first run's plan comes from the configuration (fault_plan); the replay
// follows `gohsm cluster reset` and `gohsm cluster plan load` of the same
// file; a third run loads the plan with another seed: the count step
// fails the same signs, the probability step other encryptions.
func TestFaultPlanReplay(t *testing.T) {
	tk := newCluster(t, "hsms = 2")
	plan7 := tk.writePlan("plan-7.json", fmt.Sprintf(replayPlan, 7))
	// C_Initialize loads the configuration's plan.
	tk.reconfigure("hsms = 2", "fault_plan = "+plan7)
	s := tk.login()
	signKey := tk.genEC(s, true, "faulty-signer")
	aesKey := tk.genAES(s, false, "faulty-aes")

	run := func(name string) (sign, enc []string) {
		t.Helper()
		recs0, counted0 := tk.faultsInjected()
		sign, enc, failed := tk.replaySequence(s, signKey, aesKey)
		t.Logf("%s: %s\n%s", name, strings.Join(sign, " "), strings.Join(enc, " "))
		recs1, counted1 := tk.faultsInjected()
		// Each fault has one record, in the stream of the HSM the call
		// was routed to (decision 6), which counts it in the status.
		var recs, counted [2]int
		for i := range recs {
			recs[i], counted[i] = recs1[i]-recs0[i], counted1[i]-counted0[i]
		}
		t.Logf("%s: GOHSM_FAULT_INJECTED records by stream %v, faults counted by HSM %v", name, recs, counted)
		require.Equal(t, failed, recs[0]+recs[1], "%s: one GOHSM_FAULT_INJECTED record per injected fault", name)
		require.Equal(t, counted, recs, "%s: each fault's record is in the stream of the HSM that counts it", name)
		require.Positive(t, recs[0], "%s: faults on HSM 0 (round robin)", name)
		require.Positive(t, recs[1], "%s: faults on HSM 1 (round robin)", name)
		return sign, enc
	}
	sign1, enc1 := run("seed 7, from the configuration")
	for i, r := range sign1 {
		want := "OK"
		if i < 3 {
			want = "CKR_DEVICE_ERROR"
		}
		require.Equal(t, fmt.Sprintf("S%d:%s", i, want), r, "the count step fails exactly the next 3 C_Sign")
	}
	failedEnc := 0
	for _, r := range enc1 {
		if !strings.HasSuffix(r, ":OK") {
			require.True(t, strings.HasSuffix(r, ":CKR_DEVICE_ERROR"), "an encryption failed otherwise: %s", r)
			failedEnc++
		}
	}
	// 40 draws at 0.3 (12 expected); the draws are a function of the
	// seed, so this range only catches a probability ignored.
	require.True(t, failedEnc >= 3 && failedEnc <= 24, "%d of 40 encryptions failed at probability 0.3", failedEnc)

	// The replays load the plan with the CLI, under a configuration
	// without fault_plan (a process opening the token with it loads the
	// file again when the state holds another plan). A new SDK instance:
	// a new session key; the calls a plan counts are the same.
	tk.reconfigure("hsms = 2")
	s = tk.login()
	signKey = tk.privateKey(s, "faulty-signer")
	aesKey = tk.genAES(s, false, "faulty-aes")
	tk.gohsm("cluster", "reset")
	require.Nil(t, tk.status().Plan, "cluster reset clears the plan")
	tk.gohsm("cluster", "plan", "load", plan7)
	sign2, enc2 := run("seed 7, replayed")
	require.Equal(t, sign1, sign2, "the count step replays")
	require.Equal(t, enc1, enc2, "the probability step replays with the same seed")

	plan8 := tk.writePlan("plan-8.json", fmt.Sprintf(replayPlan, 8))
	tk.gohsm("cluster", "reset")
	tk.gohsm("cluster", "plan", "load", plan8)
	sign3, enc3 := run("seed 8")
	require.Equal(t, sign1, sign3, "the count step does not depend on the seed")
	require.NotEqual(t, enc1, enc3, "another seed fails other encryptions")

	st := tk.status()
	require.NotNil(t, st.Plan, "the loaded plan is in the status")
	require.Equal(t, uint64(8), st.Plan.Seed)
	require.Len(t, st.Plan.Steps, 3)
	require.Equal(t, "active", st.Plan.Steps[1].State, "the probability step lasts 10 minutes: %+v", st.Plan.Steps[1])
	require.Equal(t, "pending", st.Plan.Steps[2].State, "a step due in 10 minutes: %+v", st.Plan.Steps[2])
	require.Positive(t, count(tk.audit(""), audit.GOHSM_FAULT_PLAN), "plan loads are audited")

	tk.gohsm("cluster", "plan", "clear")
	require.Nil(t, tk.status().Plan, "plan clear")
	sign4, enc4, failed := tk.replaySequence(s, signKey, aesKey)
	require.Zero(t, failed, "no fault once the plan is cleared: %v %v", sign4, enc4)
}

// TestFaultPlanStoreDown: a plan step that drops the store for 2 s makes
// every call that reads or writes the token store answer CKR_DEVICE_ERROR
// (C_FindObjectsInit, C_Login, a token key's generation), while crypto
// with a session key or a token key this process has cached goes on;
// the same calls work once the step is over and not before (measured from
// before the plan was loaded, so never later than the step's own start;
// 50 ms of tolerance covers the clocks). The drop and the return are
// recorded (GOHSM_STORE_FAULT) in every stream.
func TestFaultPlanStoreDown(t *testing.T) {
	const down = 2 * time.Second
	tk := newCluster(t, "hsms = 2")
	plan := tk.writePlan("store.json", `{"seed": 1, "steps": [{"at": "0s", "for": "2s", "store": "down"}]}`)
	s := tk.login()
	aesKey := tk.genAES(s, false, "session-aes")
	require.NoError(t, tk.encrypt(s, aesKey))
	signKey := tk.genEC(s, true, "cached")
	require.NoError(t, tk.sign(s, signKey))

	// Logged in: finding objects needs the store, session crypto does not.
	start := time.Now()
	tk.gohsm("cluster", "plan", "load", plan)
	_, err := tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_LABEL, "session-aes"))
	require.Less(t, time.Since(start), down, "too slow to observe the store down: the test proves nothing")
	requireRV(t, err, pkcs11.CKR_DEVICE_ERROR, "C_FindObjectsInit while the store is down")
	require.NoError(t, tk.encrypt(s, aesKey), "session-key crypto while the store is down")
	require.NoError(t, tk.sign(s, signKey), "a token key this process has cached, while the store is down")
	_, err = tk.tryAES(s, true, "not-while-down")
	requireRV(t, err, pkcs11.CKR_DEVICE_ERROR, "a new token key while the store is down")
	back := pollUntil(t, start, down, func() error {
		_, err := tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_LABEL, "session-aes"))
		if err != nil && !isRV(err, pkcs11.CKR_DEVICE_ERROR) {
			t.Fatalf("C_FindObjectsInit: %v, want CKR_DEVICE_ERROR or CKR_OK", err)
		}
		return err
	})
	t.Logf("C_FindObjectsInit works again after %v", back)
	require.Empty(t, tk.findLabel(s, "not-while-down"), "the token key refused while the store was down was stored")

	// Logged out: logging in needs the store.
	require.NoError(t, tk.p.Logout(s))
	start = time.Now()
	tk.gohsm("cluster", "plan", "load", plan)
	err = tk.p.Login(s, pkcs11.CKU_USER, userPIN)
	require.Less(t, time.Since(start), down, "too slow to observe the store down: the test proves nothing")
	requireRV(t, err, pkcs11.CKR_DEVICE_ERROR, "C_Login while the store is down")
	back = pollUntil(t, start, down, func() error {
		err := tk.p.Login(s, pkcs11.CKU_USER, userPIN)
		if err != nil && !isRV(err, pkcs11.CKR_DEVICE_ERROR) {
			t.Fatalf("C_Login: %v, want CKR_DEVICE_ERROR or CKR_OK", err)
		}
		return err
	})
	t.Logf("C_Login works again after %v", back)

	for _, stream := range []string{"hsm-0", "hsm-1"} {
		require.GreaterOrEqual(t, count(tk.audit(stream), audit.GOHSM_STORE_FAULT), 2,
			"%s records the store dropped and restored, twice", stream)
	}
}

// pollUntil calls f every 50 ms until it succeeds, and requires that it
// succeeded no earlier than min after start (less 50 ms) and within 3 s
// more. It returns when it succeeded, from start.
func pollUntil(t *testing.T, start time.Time, min time.Duration, f func() error) time.Duration {
	t.Helper()
	for {
		err := f()
		if err == nil {
			back := time.Since(start)
			require.GreaterOrEqual(t, back, min-50*time.Millisecond, "worked again before the step was over")
			return back
		}
		if time.Since(start) > min+3*time.Second {
			t.Fatalf("still failing %v after the step started: %v", time.Since(start), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
