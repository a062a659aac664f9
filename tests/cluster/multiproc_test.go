package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"

	"gohsm/token/audit"
)

// helperEnv marks a helper process (the test binary re-executed): its
// value is the label of the private key it signs with.
const helperEnv = "GOHSM_CLUSTER_HELPER"

// TestMain runs the tests, or, in a helper process (the test binary
// re-executed with $helperEnv set), the helper instead of any test. The
// helper loads the library itself, initialises it from $GOHSM_CONF, logs
// in as alice, finds the private key labelled $helperEnv (it does not use
// it yet), prints READY, then runs the commands it reads on stdin, one a
// line, printing one line for each:
//
//	create          try to generate a token AES key: OK or the CKR name
//	keys N          N session AES keys, a token one after every 10th: "ok K" (K worked)
//	try             sign once: OK or the CKR name
//	sign N          sign N times: "ok K" (K of the N worked)
//	load TOTAL WARM one signer for TOTAL, counted after WARM: loadResult as JSON
//	quit            C_Finalize and exit
func TestMain(m *testing.M) {
	if label := os.Getenv(helperEnv); label != "" {
		if err := helper(label); err != nil {
			fmt.Fprintf(os.Stderr, "helper: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helper(label string) error {
	lib := os.Getenv("GOHSM_LIB")
	p := pkcs11.New(lib)
	if p == nil {
		return fmt.Errorf("dlopen %s failed", lib)
	}
	if err := p.Initialize(); err != nil {
		return fmt.Errorf("C_Initialize: %w", err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil || len(slots) != 1 {
		return fmt.Errorf("C_GetSlotList: %v %v", slots, err)
	}
	s, err := p.OpenSession(slots[0], pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("C_OpenSession: %w", err)
	}
	if err := p.Login(s, pkcs11.CKU_USER, userPIN); err != nil {
		return fmt.Errorf("C_Login: %w", err)
	}
	tk := &tok{p: p}
	hs, err := tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	if err != nil {
		return err
	}
	if len(hs) != 1 {
		return fmt.Errorf("%d private keys labelled %q", len(hs), label)
	}
	k := hs[0]
	fmt.Println("READY")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "create":
			_, err := tk.tryAES(s, true, "from-helper")
			fmt.Println(rvName(err))
		case "try":
			fmt.Println(rvName(tk.sign(s, k)))
		case "keys":
			n, _ := strconv.Atoi(f[1])
			fmt.Println("ok", sessionKeys(tk, s, n))
		case "sign":
			n, _ := strconv.Atoi(f[1])
			ok := 0
			for i := 0; i < n; i++ {
				if tk.sign(s, k) == nil {
					ok++
				}
			}
			fmt.Println("ok", ok)
		case "load":
			total, err1 := time.ParseDuration(f[1])
			warm, err2 := time.ParseDuration(f[2])
			if err := errors.Join(err1, err2); err != nil {
				return err
			}
			b, err := json.Marshal(signLoad(p, []pkcs11.SessionHandle{s}, k, total, warm))
			if err != nil {
				return err
			}
			fmt.Println(string(b))
		case "quit":
			return p.Finalize()
		default:
			return fmt.Errorf("unknown command %q", f[0])
		}
	}
	return errors.New("stdin closed before quit")
}

// sessionKeys makes n session AES keys, a token one after every 10th
// (writes that take the queued records along): how many of all worked.
func sessionKeys(tk *tok, s pkcs11.SessionHandle, n int) int {
	ok := 0
	for i := 1; i <= n; i++ {
		if _, err := tk.tryAES(s, false, "session"); err == nil {
			ok++
		}
		if i%10 == 0 {
			if _, err := tk.tryAES(s, true, "token"); err == nil {
				ok++
			}
		}
	}
	return ok
}

// child is a running helper process.
type child struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *strings.Builder
}

// startChild starts a helper process on the token, signing with the
// private key labelled label, and waits for its READY.
func (tk *tok) startChild(label string) *child {
	tk.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tk.t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+label, "GOHSM_CONF="+tk.conf, "GOHSM_LIB="+libPath)
	c := &child{t: tk.t, cmd: cmd, lines: make(chan string, 16), stderr: &strings.Builder{}}
	var err error
	c.stdin, err = cmd.StdinPipe()
	require.NoError(tk.t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(tk.t, err)
	cmd.Stderr = c.stderr
	require.NoError(tk.t, cmd.Start())
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	tk.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	require.Equal(tk.t, "READY", c.next())
	return c
}

// next is the child's next line (a failure when it ends or takes over
// 30 s).
func (c *child) next() string {
	c.t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			c.cmd.Wait()
			c.t.Fatalf("helper ended: %s", c.stderr.String())
		}
		return l
	case <-time.After(30 * time.Second):
		c.t.Fatalf("helper silent for 30 s")
	}
	return ""
}

// do sends a command (without waiting for its answer).
func (c *child) do(cmd string) {
	c.t.Helper()
	_, err := io.WriteString(c.stdin, cmd+"\n")
	require.NoError(c.t, err)
}

// quit ends the child, which must exit 0.
func (c *child) quit() {
	c.t.Helper()
	c.do("quit")
	for range c.lines {
	}
	require.NoError(c.t, c.cmd.Wait(), "helper: %s", c.stderr.String())
}

// TestTwoProcessesSeeHSMState: a child process, initialised while both
// HSMs are up, sees HSM 1 go down (set by the operator's CLI while it
// runs): it can no longer make a token key (the key availability quorum
// counts reachable HSMs), its signs go on, all on HSM 0; and it sees HSM 1
// come back. A process started while HSM 1 is down cannot use the key
// at all: it checks the key at first use, and finds it on one HSM. The state lives in the token's shared file, not in a
// process.
func TestTwoProcessesSeeHSMState(t *testing.T) {
	tk := newCluster(t, "hsms = 2")
	s := tk.login()
	tk.genEC(s, true, "shared")
	c := tk.startChild("shared")
	c.do("try")
	require.Equal(t, "OK", c.next(), "the child signs, both HSMs up (it checks the key)")
	c.do("create")
	require.Equal(t, "OK", c.next(), "the child makes a token key, both HSMs up")

	tk.gohsm("cluster", "hsm", "down", "1")
	// A process that had not checked the key before cannot now: it is on
	// one reachable HSM.
	late := tk.startChild("shared")
	late.do("try")
	require.Equal(t, "CKR_FUNCTION_FAILED", late.next(), "a new process's first use of a key, one HSM up")
	late.quit()

	before := tk.status()
	c.do("create")
	require.Equal(t, "CKR_FUNCTION_FAILED", c.next(), "the child makes a token key, HSM 1 down")
	c.do("sign 20")
	require.Equal(t, "ok 20", c.next(), "the child signs, HSM 1 down")
	after := tk.status()
	require.Equal(t, classOf(before, 1, "ec-sign").Calls, classOf(after, 1, "ec-sign").Calls, "the child's signs on HSM 1 while it is down")
	require.GreaterOrEqual(t, classOf(after, 0, "ec-sign").Calls, classOf(before, 0, "ec-sign").Calls+20, "the child's signs on HSM 0")
	_, err := tk.tryAES(s, true, "from-parent")
	requireRV(t, err, pkcs11.CKR_FUNCTION_FAILED, "this process too sees HSM 1 down")

	tk.gohsm("cluster", "hsm", "up", "1")
	c.do("create")
	require.Equal(t, "OK", c.next(), "the child makes a token key once HSM 1 is up")
	c.do("sign 20")
	require.Equal(t, "ok 20", c.next())
	require.Greater(t, classOf(tk.status(), 1, "ec-sign").Calls, classOf(after, 1, "ec-sign").Calls, "the child's signs reach HSM 1 again")
	c.quit()
}

// TestTwoProcessesShareBudget: this process and a child sign with one
// signer each, retry off, as fast as they can, at the same time, on a
// cluster of 2 HSMs x 150 signs/s. Each alone would pass 300/s; together
// they share the budget (it lives in the token's shared file): the sum of
// their OK rates, each over its own counted window (about 1.2 s, after
// 0.3 s), is 300/s within 75%-125% (as TestThrottleAtConfiguredRate);
// per-process budgets would give 600/s.
func TestTwoProcessesShareBudget(t *testing.T) {
	tk := newCluster(t, "hsms = 2", "throttle.ec-sign = 150", "retry_mode = off")
	s := tk.login()
	k := tk.genEC(s, true, "shared")
	require.NoError(t, tk.sign(s, k))
	c := tk.startChild("shared")

	c.do("load 1500ms 300ms")
	mine := signLoad(tk.p, []pkcs11.SessionHandle{s}, k, 1500*time.Millisecond, 300*time.Millisecond)
	var theirs loadResult
	line := c.next()
	require.NoError(t, json.Unmarshal([]byte(line), &theirs), "helper said %q", line)
	c.quit()
	t.Logf("this process: %+v (%.1f/s); child: %+v (%.1f/s)", mine, mine.Rate(), theirs, theirs.Rate())
	require.Zero(t, mine.Other, mine.FirstOther)
	require.Zero(t, theirs.Other, theirs.FirstOther)
	require.Positive(t, mine.OK, "this process signed")
	require.Positive(t, theirs.OK, "the child signed")
	require.Positive(t, mine.Failed+theirs.Failed, "throttled")
	within(t, "OK signs per second, both processes (2 HSMs x 150)", mine.Rate()+theirs.Rate(), 300, 0.75, 1.25)
}

// TestTwoProcessesFireStepsOnce: a plan takes HSM 1 down at 300 ms and
// brings it up at 600 ms while this process and a child sign as fast as
// they can: every sign succeeds (routed around HSM 1, failing over), and
// each step fires once across both processes: HSM 1's epoch moves by
// one, and its stream gets exactly two GOHSM_HSM_STATE records, written
// by whichever process fired each step.
func TestTwoProcessesFireStepsOnce(t *testing.T) {
	tk := newCluster(t, "hsms = 2")
	s := tk.login()
	k := tk.genEC(s, true, "shared")
	require.NoError(t, tk.sign(s, k))
	c := tk.startChild("shared")
	plan := tk.writePlan("down-up.json", `{"seed": 3, "steps": [
  {"at": "300ms", "hsm": 1, "state": "down"},
  {"at": "600ms", "hsm": 1, "state": "up"}
]}`)
	statesBefore := count(tk.audit("hsm-1"), audit.GOHSM_HSM_STATE)
	epochBefore := hsmOf(t, tk.status(), 1).Epoch

	tk.gohsm("cluster", "plan", "load", plan)
	c.do("load 1s 0s")
	mine := signLoad(tk.p, []pkcs11.SessionHandle{s}, k, time.Second, 0)
	var theirs loadResult
	line := c.next()
	require.NoError(t, json.Unmarshal([]byte(line), &theirs), "helper said %q", line)
	c.quit()
	t.Logf("this process: %+v; child: %+v", mine, theirs)
	for _, r := range []loadResult{mine, theirs} {
		require.Zero(t, r.Failed+r.Other, "a sign failed while HSM 1 went down and up: %s", r.FirstOther)
		require.Positive(t, r.OK)
	}
	st := tk.status()
	require.Equal(t, "up", hsmOf(t, st, 1).State, "the plan brought HSM 1 back")
	require.Equal(t, epochBefore+1, hsmOf(t, st, 1).Epoch, "HSM 1 went down once")
	require.Equal(t, statesBefore+2, count(tk.audit("hsm-1"), audit.GOHSM_HSM_STATE), "each step recorded once, by one process")
	for _, p := range st.Plan.Steps {
		require.Equal(t, "done", p.State, "step %d: %s", p.Index, p.Step)
	}
}

// TestTwoProcessesKeyAvailability: a token key this process makes with
// replication_delay = 1s is new to a child process too (the ring of recent
// keys is in the shared file): the child's first uses fail with
// CKR_FUNCTION_FAILED until the delay has passed, then succeed; a key made
// long before works in the child at once.
func TestTwoProcessesKeyAvailability(t *testing.T) {
	const delay = time.Second
	tk := newCluster(t, "hsms = 2", "replication_delay = 1s")
	s := tk.login()
	old := tk.genEC(s, true, "old")
	time.Sleep(delay)
	require.NoError(t, tk.sign(s, old))

	start := time.Now()
	tk.genEC(s, true, "new")
	c := tk.startChild("new")
	var fails int
	var usable time.Duration
	for {
		c.do("try")
		got := c.next()
		if got == "OK" {
			usable = time.Since(start)
			break
		}
		require.Equal(t, "CKR_FUNCTION_FAILED", got, "the child's C_SignInit of a new key")
		fails++
		if time.Since(start) > delay+3*time.Second {
			t.Fatalf("the key is still unusable in the child %v after it was made", time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.quit()
	t.Logf("usable in the child after %v, %d failed tries", usable, fails)
	require.Positive(t, fails, "the child's first use of the new key fails")
	require.GreaterOrEqual(t, usable, delay-50*time.Millisecond, "usable in the child before the replication delay")

	c = tk.startChild("old")
	c.do("try")
	require.Equal(t, "OK", c.next(), "a key made before the delay, in a new process")
	c.quit()
}

// TestTwoProcessesShareFaultPlan: the configuration's fault_plan (fail
// the next 3 C_Sign) is loaded by the first process that opens the token
// and followed, not loaded again, by the next: this process's 2 signs
// fail, then 1 of the child's 2, then no more; 3 GOHSM_FAULT_INJECTED
// records in all, each written by the process that injected the fault.
func TestTwoProcessesShareFaultPlan(t *testing.T) {
	tk := newCluster(t, "hsms = 2")
	plan := tk.writePlan("count.json", `{"seed": 9, "steps": [{"at": "0s", "fail": "C_Sign", "count": 3, "rv": "CKR_DEVICE_ERROR"}]}`)
	tk.reconfigure("hsms = 2", "fault_plan = "+plan)
	s := tk.login()
	k := tk.genEC(s, true, "shared")
	for i := 0; i < 2; i++ {
		requireRV(t, tk.sign(s, k), pkcs11.CKR_DEVICE_ERROR, "this process's sign ", i)
	}
	c := tk.startChild("shared")
	c.do("try")
	require.Equal(t, "CKR_DEVICE_ERROR", c.next(), "the child's first sign: the plan's third fault")
	c.do("try")
	require.Equal(t, "OK", c.next(), "the child's second sign: the count is spent")
	c.quit()
	require.NoError(t, tk.sign(s, k), "the count is spent for this process too")
	require.Equal(t, 3, count(tk.audit(""), audit.GOHSM_FAULT_INJECTED), "one record per fault, across processes")
}

// TestTwoProcessesSessionKeysAudit: this process and a child make session
// keys (whose records each process queues and writes with its next write
// or its timer) and token keys at the same time; every stream's chain
// verifies, gap-free, with one record per key, none lost, none twice.
func TestTwoProcessesSessionKeysAudit(t *testing.T) {
	tk := newCluster(t, "hsms = 2")
	s := tk.login()
	tk.genEC(s, true, "shared")
	c := tk.startChild("shared")
	before := tk.audit("")
	c.do("keys 60")
	require.Equal(t, 66, sessionKeys(tk, s, 60), "this process's keys")
	require.Equal(t, "ok 66", c.next(), "the child's keys")
	c.quit()
	require.NoError(t, tk.p.Logout(s), "writes this process's queue")
	recs := tk.audit("")
	seqs := map[string]uint64{}
	for _, r := range recs {
		if want, ok := seqs[r.Stream]; ok {
			require.Equal(t, want, r.Seq, "stream %s: gap-free", r.Stream)
		}
		seqs[r.Stream] = r.Seq + 1
	}
	made := func(recs []audit.Record) (session, tokenKeys int) {
		for _, r := range recs {
			if r.Event.Opcode != audit.CN_GENERATE_KEY || r.Event.Code != audit.RespSuccess {
				continue
			}
			if r.Event.Key >= 0x40000000 {
				session++
			} else {
				tokenKeys++
			}
		}
		return session, tokenKeys
	}
	s0, t0 := made(before)
	s1, t1 := made(recs)
	require.Equal(t, 120, s1-s0, "session keys: one record each, in their HSM's stream")
	require.Equal(t, 12, t1-t0, "token keys: one CN_GENERATE_KEY each, in the origin's stream")
}
