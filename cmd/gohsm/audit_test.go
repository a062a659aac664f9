package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/token/audit"
	"gohsm/token/store"
)

// tokenDB is the token file of the test configuration's slot 0.
func (c *cli) tokenDB() string {
	return filepath.Join(filepath.Dir(c.conf), "tokens", "slot-0", store.DBName)
}

// auditLines runs audit show --json with args and decodes its lines.
func (c *cli) auditLines(args ...string) []audit.Line {
	c.t.Helper()
	out := c.ok(append([]string{"audit", "show", "--json"}, args...)...)
	var lines []audit.Line
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l audit.Line
		require.NoError(c.t, json.Unmarshal(sc.Bytes(), &l), sc.Text())
		lines = append(lines, l)
	}
	return lines
}

func lineOps(ls []audit.Line) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Opcode)
	}
	return out
}

// TestAuditShow: the log in CloudHSM's text format and as JSON lines,
// with the stream, sequence, opcode and user filters; no login needed.
func TestAuditShow(t *testing.T) {
	c := newCLI(t)
	c.setup()
	c.ok("key", "generate", "aes", "--bits", "256", "--label", "k", "--pin", alicePIN)
	c.fails([]string{"CKR_PIN_INCORRECT"}, "key", "list", "--pin", "alice:wrong-pw")

	text := c.ok("audit", "show")
	assert.True(t, strings.HasPrefix(text, "Time: "), text)
	assert.Contains(t, text, "Sequence No : 0x0\n")
	assert.Contains(t, text, "Opcode : CN_INIT_TOKEN (0x1)\n")
	assert.Contains(t, text, "Opcode : CN_CREATE_USER (0x3)\n")
	assert.Contains(t, text, "Opcode : CN_GENERATE_KEY (0x17)\n")
	assert.Contains(t, text, "Response : 163:HSM Error: RET_USER_LOGIN_FAILURE\n")
	assert.Contains(t, text, "User Name : alice\nUser Type : CN_CRYPTO_USER (1)\n")

	all := c.auditLines()
	for i, l := range all {
		assert.Equal(t, uint64(i), l.Seq)
		assert.Equal(t, "hsm-0", l.Stream)
		assert.Len(t, l.MAC, 64)
	}
	logins := c.auditLines("--opcode", "CN_LOGIN", "--user", "alice")
	require.Len(t, logins, 2, "alice's two logins: %v", lineOps(logins))
	var ev audit.Event
	require.NoError(t, json.Unmarshal(logins[1].Event, &ev))
	assert.Equal(t, 163, ev.Code)
	assert.Equal(t, logins[1].Record, string(logins[1].Event), "the event is the record the MAC covers")
	since := c.auditLines("--since", fmt.Sprint(len(all)-2))
	assert.Len(t, since, 2)
	assert.Empty(t, c.auditLines("--user", "nobody"))
	newest := c.auditLines("--opcode", "CN_LOGIN", "--user", "alice", "--limit", "1")
	require.Len(t, newest, 1)
	assert.Equal(t, logins[1].Seq, newest[0].Seq, "--limit keeps the newest")
	r := c.run("audit", "show", "--opcode", "CN_NOPE")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, `gohsm: audit show: --opcode: audit: unknown opcode "CN_NOPE"`)
	r = c.run("audit", "show", "--limit", "-1")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "--limit: not a count")
}

// TestAuditVerifyCLI: verify passes on an untouched log and, after a
// sqlite edit of the token file, exits 1 naming the first bad record; an
// anchor from audit head shows a rewrite made with the token's key.
func TestAuditVerifyCLI(t *testing.T) {
	c := newCLI(t)
	c.setup()
	assert.Contains(t, c.ok("audit", "verify"), "stream hsm-0: 8 records verified, from 0 to 7")
	var heads struct{ Heads []headRow }
	c.data(&heads, "audit", "head")
	require.Len(t, heads.Heads, 1)
	anchor := heads.Heads[0].Anchor
	assert.Equal(t, uint64(7), heads.Heads[0].Seq)
	assert.Equal(t, "hsm-0 "+anchor+"\n", c.ok("audit", "head"))
	c.ok("audit", "verify", "--anchor", anchor)

	db, err := sql.Open("sqlite", "file:"+c.tokenDB()+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	var rec, mac []byte
	require.NoError(t, db.QueryRow(`SELECT record, mac FROM audit WHERE seq = 6`).Scan(&rec, &mac))
	edited := []byte(strings.Replace(string(rec), `"bob"`, `"eve"`, 1))
	require.NotEqual(t, rec, edited)
	_, err = db.Exec(`UPDATE audit SET record = ? WHERE seq = 6`, edited)
	require.NoError(t, err)
	c.fails([]string{"stream hsm-0: record 6 (0x6): MAC does not match"}, "audit", "verify")

	// The same edit by someone holding the key, the chain recomputed.
	var key []byte
	require.NoError(t, db.QueryRow(`SELECT value FROM meta WHERE key = 'audit_key'`).Scan(&key))
	var prev []byte
	require.NoError(t, db.QueryRow(`SELECT mac FROM audit WHERE seq = 5`).Scan(&prev))
	for seq := 6; seq <= 7; seq++ {
		var r []byte
		require.NoError(t, db.QueryRow(`SELECT record FROM audit WHERE seq = ?`, seq).Scan(&r))
		m := store.ChainMAC(key, "hsm-0", uint64(seq), prev, r)
		_, err = db.Exec(`UPDATE audit SET mac = ? WHERE seq = ?`, m, seq)
		require.NoError(t, err)
		prev = m
	}
	_, err = db.Exec(`UPDATE meta SET value = ? WHERE key = 'audit_head/hsm-0'`, append([]byte{0, 0, 0, 0, 0, 0, 0, 7}, prev...))
	require.NoError(t, err)
	c.ok("audit", "verify")
	c.fails([]string{"record 7 (0x7): does not match the anchor"}, "audit", "verify", "--anchor", anchor)
	r := c.run("audit", "verify", "--anchor", "6:zz")
	assert.Equal(t, 2, r.code)
}

// TestAuditVerifyUnknownStream: --stream naming a stream the token never
// wrote (a typo) fails, naming the streams that exist, rather than
// verifying nothing.
func TestAuditVerifyUnknownStream(t *testing.T) {
	c := newCLI(t)
	c.setup()
	c.fails([]string{`no audit stream "hsm-9"`, "the token's streams: hsm-0"}, "audit", "verify", "--stream", "hsm-9")
	r := c.run("--json", "audit", "verify", "--stream", "hsm-9")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"code": "not_found"`)
	assert.Contains(t, c.ok("audit", "verify", "--stream", "hsm-0"), "stream hsm-0: 8 records verified")
	// show, head and rotate take the same streams: a typo is the same
	// error, not an empty answer (and rotate writes no archive).
	c.fails([]string{`no audit stream "hsm-9"`}, "audit", "show", "--stream", "hsm-9")
	c.fails([]string{`no audit stream "hsm-9"`}, "audit", "head", "--stream", "hsm-9")
	out := filepath.Join(t.TempDir(), "a.jsonl")
	c.fails([]string{`no audit stream "hsm-9"`}, "audit", "rotate", "--out", out, "--stream", "hsm-9")
	assert.NoFileExists(t, out)
}

// TestAuditRotateCLI: rotate archives the older records and deletes them
// from the token; verify passes on the token alone (saying what it did
// not check) and with the archives on the whole chain; the archive file
// is never overwritten.
func TestAuditRotateCLI(t *testing.T) {
	c := newCLI(t)
	c.setup()
	dir := t.TempDir()
	a1, a2 := filepath.Join(dir, "a1.jsonl"), filepath.Join(dir, "a2.jsonl")
	assert.Equal(t, "stream hsm-0: 6 records up to 5 archived to "+a1+"\n", c.ok("audit", "rotate", "--out", a1, "--keep", "2"))
	assert.Len(t, c.auditLines(), 2)
	c.fails([]string{"file exists"}, "audit", "rotate", "--out", a1)
	c.ok("key", "generate", "aes", "--bits", "128", "--label", "k", "--pin", alicePIN)
	assert.Contains(t, c.ok("audit", "verify"), "earlier records rotated out")
	c.ok("audit", "rotate", "--out", a2)
	c.fails([]string{"record 0 (0x0): missing"}, "audit", "verify", "--archive", a2)
	var rep struct {
		Streams []audit.Report
	}
	c.data(&rep, "audit", "verify", "--archive", a1, "--archive", a2)
	require.Len(t, rep.Streams, 1)
	assert.Equal(t, 0, int(rep.Streams[0].First))
	assert.False(t, rep.Streams[0].Unchecked)
	assert.Equal(t, rep.Streams[0].Count, rep.Streams[0].Archived, "everything was rotated")
	assert.Equal(t, "nothing to rotate\n", c.ok("audit", "rotate", "--out", filepath.Join(dir, "a3.jsonl")))
}

// TestAuditTwoProcesses: two processes creating users at once (each
// creation a whole CLI run: a login, the creation, the end of the
// application, and every tenth a failed login) produce one gap-free
// sequence that verifies.
func TestAuditTwoProcesses(t *testing.T) {
	c := newCLI(t)
	c.ok("token", "init", "--label", "procs", "--pin", coPIN)
	const perProcess = 200
	exe, err := os.Executable()
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	start := time.Now()
	for i := range 2 {
		cmd := exec.Command(exe, "-test.run=^TestAuditHelperProcess$")
		cmd.Env = append(os.Environ(), "GOHSM_AUDIT_HELPER="+c.conf, fmt.Sprintf("GOHSM_AUDIT_PREFIX=p%d", i),
			fmt.Sprintf("GOHSM_AUDIT_COUNT=%d", perProcess))
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("%w: %s", err, out)
			}
		}()
	}
	wg.Wait()
	for i := range 2 {
		require.NoError(t, errs[i], "process %d", i)
	}
	t.Logf("2 processes x %d user creations in %v", perProcess, time.Since(start))
	assert.Contains(t, c.ok("audit", "verify"), "stream hsm-0:")
	lines := c.auditLines()
	created := map[string]int{}
	switches, last := 0, ""
	for i, l := range lines {
		require.Equal(t, uint64(i), l.Seq, "gap-free")
		if l.Opcode == "CN_CREATE_USER" {
			var ev audit.Event
			require.NoError(t, json.Unmarshal(l.Event, &ev))
			p := ev.User[:2]
			created[p]++
			if last != "" && p != last {
				switches++
			}
			last = p
		}
	}
	assert.Equal(t, map[string]int{"p0": perProcess, "p1": perProcess}, created)
	t.Logf("the two processes' creations alternate %d times in the log", switches)
	assert.Greater(t, switches, 1, "the processes ran at the same time")
	assert.Len(t, c.auditLines("--opcode", "CN_LOGIN"), 2*perProcess+2*perProcess/10)
}

// TestAuditHelperProcess is TestAuditTwoProcesses' writer when run as its
// child (GOHSM_AUDIT_HELPER names the configuration); run as a test, it
// returns at once.
func TestAuditHelperProcess(t *testing.T) {
	conf := os.Getenv("GOHSM_AUDIT_HELPER")
	if conf == "" {
		return
	}
	prefix := os.Getenv("GOHSM_AUDIT_PREFIX")
	var n int
	fmt.Sscan(os.Getenv("GOHSM_AUDIT_COUNT"), &n)
	c := &cli{t: t, conf: conf}
	for i := 0; i < n; i++ {
		if i%10 == 0 {
			c.fails([]string{"CKR_PIN_INCORRECT"}, "user", "create", "--username", "x", "--role", "cu", "--password", "x-pw-12345", "--pin", "admin:wrong-pw")
		}
		c.ok("user", "create", "--username", fmt.Sprintf("%su%d", prefix, i), "--role", "crypto-user", "--password", "user-pw-1", "--pin", coPIN)
	}
}
