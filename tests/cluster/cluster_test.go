// Package cluster proves the emulated CloudHSM cluster (token/cluster,
// docs/cluster.md) through the C ABI: the built libgohsm.so driven through
// github.com/miekg/pkcs11 in this process and in helper processes that
// re-execute the test binary (TestMain), with the gohsm CLI, a
// process of its own, as the operator. What each test proves:
//
//   - TestThrottleAtConfiguredRate: a throttled P-256 signer gets
//     CKR_FUNCTION_FAILED, and the calls that pass do so at the configured
//     rate (2 HSMs x throttle.ec-sign), measured over a counted window; the
//     module's log holds "HSM response 187 (0xBB)".
//   - TestThrottlePreset: `throttle = on` on an hsm1 slot passes AWS's
//     figure, 250 P-256 signs/s per HSM, and shows its budgets.
//   - TestThrottleRetryAbsorbs: the same overload that fails with
//     retry_mode = off is absorbed by retry_mode = standard (no failure,
//     the status's retried counter moves), without passing more than the
//     budget.
//   - TestKeyAvailabilityReplicationDelay: a new token key fails
//     C_SignInit with CKR_FUNCTION_FAILED until replication_delay has
//     passed, then works; the module logs the SDK's message.
//   - TestKeyAvailabilityOneHSM: with one HSM and the check on, creating a
//     token key (generate, create) fails with CKR_FUNCTION_FAILED and
//     stores nothing, using one fails too; session keys work;
//     key_availability_check = false removes the failure.
//   - TestHSMDownAndUp: `gohsm cluster hsm down 1` while this process signs:
//     signing fails over to HSM 0 (no error, signs begun before included),
//     calls land only on HSM 0 until `up`, then on both; a session key
//     made on HSM 1 is lost (CKR_KEY_HANDLE_INVALID) and stays lost; a
//     token key cannot be made while one of two HSMs is down; audit
//     streams: a login while HSM 1 is down is not in hsm-1, one after is,
//     a logout is in one stream; GOHSM_HSM_STATE records; a token key is
//     generate + extract on one stream, insert on the other, same handle.
//   - TestFaultPlanReplay: a plan (count step on C_Sign, probability step
//     on C_Encrypt, a seed) loaded from the configuration fails the same
//     calls with the same CKR when reloaded by `gohsm cluster plan load`
//     after `gohsm cluster reset`; another seed fails other C_Encrypt
//     calls; each injected fault has its GOHSM_FAULT_INJECTED record.
//   - TestFaultPlanStoreDown: while a plan has dropped the store,
//     C_FindObjectsInit, C_Login and a token key's generation get
//     CKR_DEVICE_ERROR, crypto with a session key or a cached token key
//     goes on; they work again once the step is over, not before;
//     GOHSM_STORE_FAULT is in every stream.
//   - TestTwoProcessesSeeHSMState: a child process, started before the
//     change, sees HSM 1 go down (it cannot make a token key, its calls go
//     to HSM 0) and up again; a process started while HSM 1 is down
//     cannot use a token key it never checked.
//   - TestTwoProcessesFireStepsOnce: a plan's HSM down and up steps fire
//     once across two signing processes (one epoch, two records), and
//     neither process sees a failure.
//   - TestTwoProcessesKeyAvailability: a token key made here is new to a
//     child too: its first uses fail until the replication delay passed.
//   - TestTwoProcessesShareFaultPlan: the configuration's plan is loaded
//     once; its count of faults is spent across both processes.
//   - TestTwoProcessesShareBudget: two processes, one signer each, share
//     one budget: the sum of their OK rates is the budget, not twice it.
//   - TestStandardSlot: a standard slot has no cluster unless its section
//     turns it on; then it throttles the same, with the check off.
//   - TestCertificateReadThrottled: a throttled certificate read through
//     C_GetAttributeValue answers CKR_DEVICE_ERROR at once: never retried;
//     a search that may match a certificate, CKR_FUNCTION_FAILED.
//   - TestLatency: latency.ec-sign = 20ms makes each C_Sign take 20 ms or
//     more (median of 10), other classes and the default configuration add
//     nothing measurable (median under 2 ms); a degraded HSM adds
//     degraded_latency; a plan's latency step adds its latency while it
//     lasts.
//   - TestBadClusterInput: bad cluster keys fail C_Initialize with
//     CKR_ARGUMENTS_BAD, a missing or malformed fault_plan fails it with
//     the reason in the log, a damaged cluster.state is rebuilt; the
//     token's key survives all of it.
//   - TestCDriverThrottle, TestCDriverKeyAvailability: the throttling rate
//     and the one-HSM refusals again, from a C program (testdata/
//     cluster_driver.c) that reaches the library through its function list.
//
// Loading a Go c-shared library into a Go test binary puts a second Go
// runtime in the process: it works, but is unsupported upstream, so these
// tests live in their own package (tests/e2e says the same), and the C
// driver repeats the central checks without it.
//
// The library and the CLI must be built (`make all`); $GOHSM_LIB and
// $GOHSM_CLI name other files. Without them the tests skip, or fail when
// CI=true. Each test has its own token directory and configuration (a
// cheap KDF), set up as a CloudHSM cluster is: the CLI initialises the
// token and creates the crypto user, the library is then initialised on
// the configuration through C_Initialize's pReserved.
package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
	"gohsm/token/audit"
	hsmcluster "gohsm/token/cluster"
)

// The token's users: the first crypto officer (token init's PIN) and the
// crypto user the tests log in as (cloudhsm profile: name:password,
// passwords of 8 to 32 characters).
const (
	soPIN     = "admin:officerpassword"
	userName  = "alice"
	userPass  = "alicepassword"
	userPIN   = userName + ":" + userPass
	tokenName = "cluster"
)

// availabilityMessage is the Client SDK's log line when a key does not
// meet the key availability quorum (UG-2023:manage-key-sync.md,
// UG:troubleshoot-key-availability-check), after "Key <handle>".
const availabilityMessage = "does not meet the availability requirements - The key must be available on at least 2 HSMs before being used."

// throttleLogLine is what the module logs for a throttled call (HSM
// response 187, UG:troubleshoot-hsm-throttling).
const throttleLogLine = "HSM response 187 (0xBB)"

var (
	loadOnce sync.Once
	loaded   *pkcs11.Ctx
	libPath  string
)

// module loads the library once for the process (Go marks c-shared
// libraries NODELETE: the context is never destroyed).
func module(t testing.TB) *pkcs11.Ctx {
	t.Helper()
	lib := testenv.Library(t)
	loadOnce.Do(func() {
		libPath = lib
		loaded = pkcs11.New(lib)
	})
	if loaded == nil {
		t.Fatalf("dlopen %s failed", libPath)
	}
	return loaded
}

// tok is one test's token: its files, and the library initialised on it
// in this process.
type tok struct {
	t      *testing.T
	p      *pkcs11.Ctx
	cli    string
	tokens string // token_dir
	conf   string // configuration file
	log    string // log_file
	slot   uint
	// profile is the slot's profile (cloudhsm unless a test says).
	profile string
	// slotLines are the [slot 0] lines of the configuration in force.
	slotLines []string
}

// configText is the configuration of a slot of profile with the cluster
// keys slotLines (docs/config.md), logging warnings to logFile.
func configText(tokenDir, logFile, profile string, slotLines ...string) string {
	return fmt.Sprintf(`# written by tests/cluster
token_dir = %s
log_level = warn
log_file = %s
kdf_time = 1
kdf_memory = 64
login_cache = off
kdf_threads = 1

[slot 0]
label = %s
profile = %s
%s
`, tokenDir, logFile, tokenName, profile, strings.Join(slotLines, "\n"))
}

// newCluster makes a token on a cloudhsm slot with the cluster keys
// slotLines, initialises it with the CLI (officer soPIN, crypto user
// alice) and initialises the library on it. The library is finalised when
// the test ends.
func newCluster(t *testing.T, slotLines ...string) *tok {
	t.Helper()
	return newProfileCluster(t, "cloudhsm", slotLines...)
}

// newProfileCluster is newCluster on a slot of profile.
func newProfileCluster(t *testing.T, profile string, slotLines ...string) *tok {
	t.Helper()
	p := module(t)
	dir := t.TempDir()
	tk := &tok{t: t, p: p, cli: testenv.CLI(t), tokens: filepath.Join(dir, "tokens"), profile: profile,
		conf: filepath.Join(dir, "gohsm.conf"), log: filepath.Join(dir, "gohsm.log")}
	tk.writeConfig(slotLines...)
	tk.gohsm("token", "init", "--label", tokenName, "--pin", soPIN)
	tk.gohsm("user", "create", "--username", userName, "--role", "crypto-user", "--password", userPass, "--pin", soPIN)
	tk.initialize()
	t.Cleanup(func() {
		if err := p.Finalize(); err != nil && !isRV(err, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED) {
			t.Errorf("C_Finalize: %v", err)
		}
	})
	return tk
}

func (tk *tok) writeConfig(slotLines ...string) {
	tk.t.Helper()
	tk.slotLines = slotLines
	require.NoError(tk.t, os.WriteFile(tk.conf, []byte(configText(tk.tokens, tk.log, tk.profile, slotLines...)), 0o600))
}

// initialize calls C_Initialize with the configuration file's path as
// pReserved and finds the slot.
func (tk *tok) initialize() {
	tk.t.Helper()
	path := append([]byte(tk.conf), 0)
	err := tk.p.Initialize(pkcs11.InitializeWithReserved(unsafe.Pointer(&path[0])))
	runtime.KeepAlive(path)
	require.NoError(tk.t, err, "C_Initialize")
	slots, err := tk.p.GetSlotList(true)
	require.NoError(tk.t, err)
	require.Len(tk.t, slots, 1)
	tk.slot = slots[0]
}

// reconfigure ends this process's use of the library (C_Finalize: every
// session and login with it), writes the configuration with slotLines and
// initialises the library again: a new SDK instance on the same token and
// the same shared cluster state.
func (tk *tok) reconfigure(slotLines ...string) {
	tk.t.Helper()
	require.NoError(tk.t, tk.p.Finalize(), "C_Finalize")
	tk.writeConfig(slotLines...)
	tk.initialize()
}

// session opens a R/W session (CloudHSM has no read-only ones).
func (tk *tok) session() pkcs11.SessionHandle {
	tk.t.Helper()
	s, err := tk.p.OpenSession(tk.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	require.NoError(tk.t, err, "C_OpenSession")
	return s
}

// login opens a session and logs the application in as alice (every
// session is logged in after it).
func (tk *tok) login() pkcs11.SessionHandle {
	tk.t.Helper()
	s := tk.session()
	require.NoError(tk.t, tk.p.Login(s, pkcs11.CKU_USER, userPIN), "C_Login")
	return s
}

func mech(m uint, param any) []*pkcs11.Mechanism {
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(m, param)}
}

// p256 is the DER of the P-256 curve's OID, CKA_EC_PARAMS.
var p256 = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// ecTemplates are the templates of a P-256 signing key pair.
func ecTemplates(token bool, label string) (pub, priv []*pkcs11.Attribute) {
	return []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, p256),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		}
}

// tryEC generates a P-256 key pair (a token or a session one).
func (tk *tok) tryEC(s pkcs11.SessionHandle, token bool, label string) (pkcs11.ObjectHandle, pkcs11.ObjectHandle, error) {
	pub, priv := ecTemplates(token, label)
	return tk.p.GenerateKeyPair(s, mech(pkcs11.CKM_EC_KEY_PAIR_GEN, nil), pub, priv)
}

// genEC generates a P-256 key pair and returns the private key.
func (tk *tok) genEC(s pkcs11.SessionHandle, token bool, label string) pkcs11.ObjectHandle {
	tk.t.Helper()
	_, priv, err := tk.tryEC(s, token, label)
	require.NoError(tk.t, err, "C_GenerateKeyPair P-256 %s (token %v)", label, token)
	return priv
}

func aesTemplate(token bool, label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
}

// tryAES generates an AES-256 key (a token or a session one).
func (tk *tok) tryAES(s pkcs11.SessionHandle, token bool, label string) (pkcs11.ObjectHandle, error) {
	return tk.p.GenerateKey(s, mech(pkcs11.CKM_AES_KEY_GEN, nil), aesTemplate(token, label))
}

func (tk *tok) genAES(s pkcs11.SessionHandle, token bool, label string) pkcs11.ObjectHandle {
	tk.t.Helper()
	k, err := tk.tryAES(s, token, label)
	require.NoError(tk.t, err, "C_GenerateKey AES %s (token %v)", label, token)
	return k
}

// digest is what the signers sign with CKM_ECDSA (a SHA-256 value: one
// call that reaches the HSM, class ec-sign).
var digest = bytes.Repeat([]byte{0x5a}, 32)

// sign is C_SignInit and C_Sign (CKM_ECDSA) with k: the first error.
func (tk *tok) sign(s pkcs11.SessionHandle, k pkcs11.ObjectHandle) error {
	if err := tk.p.SignInit(s, mech(pkcs11.CKM_ECDSA, nil), k); err != nil {
		return fmt.Errorf("C_SignInit: %w", err)
	}
	if _, err := tk.p.Sign(s, digest); err != nil {
		return fmt.Errorf("C_Sign: %w", err)
	}
	return nil
}

// encrypt is C_EncryptInit and C_Encrypt (CKM_AES_CBC_PAD) with k: the
// first error.
func (tk *tok) encrypt(s pkcs11.SessionHandle, k pkcs11.ObjectHandle) error {
	if err := tk.p.EncryptInit(s, mech(pkcs11.CKM_AES_CBC_PAD, make([]byte, 16)), k); err != nil {
		return fmt.Errorf("C_EncryptInit: %w", err)
	}
	if _, err := tk.p.Encrypt(s, []byte("sixteen byte msg")); err != nil {
		return fmt.Errorf("C_Encrypt: %w", err)
	}
	return nil
}

// find returns every object matching tmpl.
func (tk *tok) find(s pkcs11.SessionHandle, tmpl ...*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := tk.p.FindObjectsInit(s, tmpl); err != nil {
		return nil, fmt.Errorf("C_FindObjectsInit: %w", err)
	}
	var all []pkcs11.ObjectHandle
	for {
		hs, _, err := tk.p.FindObjects(s, 256)
		if err != nil {
			tk.p.FindObjectsFinal(s)
			return nil, fmt.Errorf("C_FindObjects: %w", err)
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	if err := tk.p.FindObjectsFinal(s); err != nil {
		return nil, fmt.Errorf("C_FindObjectsFinal: %w", err)
	}
	return all, nil
}

func (tk *tok) findLabel(s pkcs11.SessionHandle, label string) []pkcs11.ObjectHandle {
	tk.t.Helper()
	hs, err := tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	require.NoError(tk.t, err)
	return hs
}

// privateKey finds the private key labelled label.
func (tk *tok) privateKey(s pkcs11.SessionHandle, label string) pkcs11.ObjectHandle {
	tk.t.Helper()
	hs, err := tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	require.NoError(tk.t, err)
	require.Len(tk.t, hs, 1, "private keys labelled %q", label)
	return hs[0]
}

// isRV reports whether err is the Cryptoki error code rv.
func isRV(err error, rv uint) bool { return errors.Is(err, pkcs11.Error(rv)) }

// requireRV fails unless err is the Cryptoki error code rv.
func requireRV(t testing.TB, err error, rv uint, msgAndArgs ...any) {
	t.Helper()
	if !isRV(err, rv) {
		t.Fatalf("got %v, want %s %s", err, pkcs11.Error(rv), fmt.Sprint(msgAndArgs...))
	}
}

// rvName is err's CKR name, or "OK".
func rvName(err error) string {
	if err == nil {
		return "OK"
	}
	var e pkcs11.Error
	if errors.As(err, &e) {
		// "pkcs11: 0x30: CKR_DEVICE_ERROR"
		msg := e.Error()
		return msg[strings.LastIndex(msg, " ")+1:]
	}
	return err.Error()
}

// ---- the CLI -------------------------------------------------------------

// runGohsm runs the gohsm CLI on the token with args, bounded in time.
func (tk *tok) runGohsm(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tk.cli, append([]string{"--config", tk.conf}, args...)...)
	cmd.Env = append(os.Environ(), "GOHSM_CONF="+tk.conf)
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("gohsm %s: %w: %s%s", strings.Join(args, " "), err, errOut.String(), out.String())
	}
	return out.String(), nil
}

// gohsm runs the CLI and requires success; it returns standard output.
func (tk *tok) gohsm(args ...string) string {
	tk.t.Helper()
	out, err := tk.runGohsm(args...)
	require.NoError(tk.t, err)
	return out
}

// status is `gohsm cluster status --json`'s data.
func (tk *tok) status() hsmcluster.Status {
	tk.t.Helper()
	out := tk.gohsm("cluster", "status", "--json")
	var env struct {
		Data *hsmcluster.Status `json:"data"`
	}
	require.NoError(tk.t, json.Unmarshal([]byte(out), &env), "cluster status --json: %s", out)
	if env.Data != nil {
		return *env.Data
	}
	var st hsmcluster.Status
	require.NoError(tk.t, json.Unmarshal([]byte(out), &st), "cluster status --json: %s", out)
	return st
}

// classOf is HSM hsm's counters of class cl in st (zero when absent).
func classOf(st hsmcluster.Status, hsm int, cl string) hsmcluster.ClassStatus {
	for _, h := range st.HSMs {
		if h.Index != hsm {
			continue
		}
		for _, c := range h.Classes {
			if c.Class == cl {
				return c
			}
		}
	}
	return hsmcluster.ClassStatus{Class: cl}
}

// hsmOf is HSM hsm in st.
func hsmOf(t testing.TB, st hsmcluster.Status, hsm int) hsmcluster.HSMStatus {
	t.Helper()
	for _, h := range st.HSMs {
		if h.Index == hsm {
			return h
		}
	}
	t.Fatalf("cluster status has no HSM %d: %+v", hsm, st)
	return hsmcluster.HSMStatus{}
}

// sumClass adds a counter of class cl over every HSM.
func sumClass(st hsmcluster.Status, cl string, f func(hsmcluster.ClassStatus) uint64) uint64 {
	var n uint64
	for _, h := range st.HSMs {
		n += f(classOf(st, h.Index, cl))
	}
	return n
}

func calls(c hsmcluster.ClassStatus) uint64     { return c.Calls }
func throttled(c hsmcluster.ClassStatus) uint64 { return c.Throttled }
func retried(c hsmcluster.ClassStatus) uint64   { return c.Retried }

// audit reads one audit stream (all of them for ""), through the CLI (a
// second SQLite in this process, beside the library's, would break
// SQLite's locks), after checking that its chain verifies.
func (tk *tok) audit(stream string) []audit.Record {
	tk.t.Helper()
	args := []string{"audit", "verify"}
	if stream != "" {
		args = append(args, "--stream", stream)
	}
	tk.gohsm(args...)
	args = []string{"audit", "show", "--json"}
	if stream != "" {
		args = append(args, "--stream", stream)
	}
	out := tk.gohsm(args...)
	recs, err := audit.ReadLines(strings.NewReader(out))
	require.NoError(tk.t, err)
	return recs
}

// count is how many records of recs have opcode op.
func count(recs []audit.Record, op audit.Opcode) int {
	n := 0
	for _, r := range recs {
		if r.Event.Opcode == op {
			n++
		}
	}
	return n
}

// logText is the module's log file so far.
func (tk *tok) logText() string {
	tk.t.Helper()
	b, err := os.ReadFile(tk.log)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	require.NoError(tk.t, err)
	return string(b)
}

// writePlan writes a fault plan file in the test's directory.
func (tk *tok) writePlan(name, plan string) string {
	tk.t.Helper()
	path := filepath.Join(filepath.Dir(tk.conf), name)
	require.NoError(tk.t, os.WriteFile(path, []byte(plan), 0o600))
	return path
}

// ---- load ----------------------------------------------------------------

// loadResult is what signers saw over the counted window.
type loadResult struct {
	OK, Failed, Other int64         // CKR_OK, CKR_FUNCTION_FAILED, anything else
	FirstOther        string        // the first "anything else"
	Window            time.Duration // the counted window, measured
}

// Rate is the OK calls per second over the window.
func (r loadResult) Rate() float64 { return float64(r.OK) / r.Window.Seconds() }

// signLoad runs workers goroutines, each signing with k as fast as it can
// in a session of its own (C_SignInit + C_Sign: one call of class
// ec-sign), for total. Only the calls that end after warm (when the
// GCRA's burst allowance and the start-up are over) and before total are
// counted; the window's length is measured, not assumed.
func signLoad(p *pkcs11.Ctx, sessions []pkcs11.SessionHandle, k pkcs11.ObjectHandle, total, warm time.Duration) loadResult {
	var ok, failed, other atomic.Int64
	var counting, stop atomic.Bool
	var firstOther atomic.Value
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				err := p.SignInit(s, mech(pkcs11.CKM_ECDSA, nil), k)
				if err == nil {
					_, err = p.Sign(s, digest)
				}
				if !counting.Load() {
					continue
				}
				switch {
				case err == nil:
					ok.Add(1)
				case isRV(err, pkcs11.CKR_FUNCTION_FAILED):
					failed.Add(1)
				default:
					if other.Add(1) == 1 {
						firstOther.Store(err.Error())
					}
				}
			}
		}()
	}
	time.Sleep(warm)
	counting.Store(true)
	t0 := time.Now()
	time.Sleep(total - warm)
	counting.Store(false)
	window := time.Since(t0)
	stop.Store(true)
	wg.Wait()
	r := loadResult{OK: ok.Load(), Failed: failed.Load(), Other: other.Load(), Window: window}
	if s, _ := firstOther.Load().(string); s != "" {
		r.FirstOther = s
	}
	return r
}

// within fails unless got is within [lo, hi] x want.
func within(t testing.TB, what string, got, want, lo, hi float64) {
	t.Helper()
	if got < lo*want || got > hi*want {
		t.Fatalf("%s: %.1f, want %.0f%%-%.0f%% of %.1f (%.1f..%.1f)", what, got, lo*100, hi*100, want, lo*want, hi*want)
	}
	t.Logf("%s: %.1f (%.0f%% of %.1f)", what, got, 100*got/want, want)
}

// median of ds.
func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
