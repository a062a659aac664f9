// Package operator runs an operator's whole session with CloudHSM CLI
// and gohsm over fresh tokens (testdata/session.sh) and checks every
// command's JSON against the shape AWS CloudHSM's pages document, the
// restored token against the original, and the audit log of both.
package operator

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gohsm/internal/testenv"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from this run")

// session is one run's outputs: each step's standard output and exit
// status, in the script's order.
type session struct {
	profile string
	dir     string // the operator's working directory
	steps   []string
	out     map[string][]byte
	rc      map[string]string
}

// cloudHSMCLI is the built cloudhsm-cli: $GOHSM_CHCLI, else beside the
// gohsm CLI ($GOHSM_CLI's directory, or build/).
func cloudHSMCLI(t *testing.T) string {
	if p := os.Getenv("GOHSM_CHCLI"); p != "" {
		return testenv.Built(t, "GOHSM_CHCLI", "cloudhsm-cli", "all")
	}
	p := filepath.Join(filepath.Dir(testenv.CLI(t)), "cloudhsm-cli")
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, "%s not found (run `make all` or set GOHSM_CHCLI): %v", p, err)
	}
	return p
}

func tool(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.Missing(t, "%s not found (tests/deps.sh installs it): %v", name, err)
	}
	return p
}

// runSession runs testdata/session.sh on two fresh token directories of
// the profile and reads what each step printed.
func runSession(t *testing.T, profile string) *session {
	t.Helper()
	gohsm, chcli := testenv.CLI(t), cloudHSMCLI(t)
	bash := tool(t, "bash")
	tool(t, "openssl")
	tool(t, "jq")
	script, err := filepath.Abs(filepath.Join("testdata", "session.sh"))
	require.NoError(t, err)

	root := t.TempDir()
	bin, work, out := filepath.Join(root, "bin"), filepath.Join(root, "work"), filepath.Join(root, "out")
	for _, d := range []string{bin, work, out} {
		require.NoError(t, os.Mkdir(d, 0o700))
	}
	require.NoError(t, os.Symlink(gohsm, filepath.Join(bin, "gohsm")))
	require.NoError(t, os.Symlink(chcli, filepath.Join(bin, "cloudhsm-cli")))
	conf := func(name string) string {
		p := filepath.Join(root, name+".conf")
		text := testenv.TokenConfig(filepath.Join(root, name), "session") + "profile = " + profile + "\n"
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	original, restored := conf("original"), conf("restored")

	cmd := exec.Command(bash, "-eu", script)
	cmd.Dir = work
	// Only what the script is given: no login, configuration or PIN of
	// the caller's leaks in.
	cmd.Env = []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + root,
		"LC_ALL=C",
		"GOHSM_CONF=" + original,
		"RESTORED_CONF=" + restored,
		"OUT=" + out,
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.Stdin = nil // CI has no stdin: nothing may prompt
	if err := cmd.Run(); err != nil {
		t.Fatalf("session.sh (%s): %v\n%s", profile, err, stderr.String())
	}

	s := &session{profile: profile, dir: work, out: map[string][]byte{}, rc: map[string]string{}}
	steps, err := os.ReadFile(filepath.Join(out, "steps"))
	require.NoError(t, err)
	s.steps = strings.Fields(string(steps))
	for _, name := range s.steps {
		b, err := os.ReadFile(filepath.Join(out, name+".json"))
		require.NoError(t, err)
		rc, err := os.ReadFile(filepath.Join(out, name+".rc"))
		require.NoError(t, err)
		s.out[name], s.rc[name] = b, strings.TrimSpace(string(rc))
	}
	return s
}

// data decodes a step's envelope (error_code as expected) and its data
// into v, strictly.
func (s *session) data(t *testing.T, step string, wantCode int, v any) {
	t.Helper()
	b, ok := s.out[step]
	require.True(t, ok, "step %s did not run", step)
	var env envelope
	require.NoError(t, strict(b, &env), "step %s: the envelope {error_code, data}:\n%s", step, b)
	require.NotNil(t, env.ErrorCode, "step %s: no error_code:\n%s", step, b)
	require.Equal(t, wantCode, *env.ErrorCode, "step %s: error_code:\n%s", step, b)
	if wantCode != 0 {
		require.Equal(t, "1", s.rc[step], "step %s: a refusal exits 1", step)
	} else {
		require.Equal(t, "0", s.rc[step], "step %s: exit status", step)
	}
	require.NoError(t, strict(env.Data, v), "step %s: data's shape:\n%s", step, b)
}

// text is a step whose data is a string (cluster activate,
// set-quorum-value, refusals).
func (s *session) text(t *testing.T, step string, wantCode int) string {
	t.Helper()
	var v string
	s.data(t, step, wantCode, &v)
	return v
}

func TestOperatorSession(t *testing.T) {
	for _, profile := range []string{"cloudhsm", "standard"} {
		t.Run(profile, func(t *testing.T) {
			t.Parallel()
			// Twice, each on fresh token directories: the same outputs
			// (volatile values aside) show that the session is repeatable.
			var golden map[string]string
			for run := 1; run <= 2; run++ {
				s := runSession(t, profile)
				checkSession(t, s)
				norm := s.normalised(t)
				if golden == nil {
					golden = norm
					compareGolden(t, profile, norm)
					continue
				}
				for _, step := range s.steps {
					require.Equal(t, golden[step], norm[step], "run %d, step %s differs from run 1", run, step)
				}
			}
		})
	}
}

// checkSession checks each step's JSON against its documented shape and
// the values the session set up.
func checkSession(t *testing.T, s *session) {
	t.Helper()
	var users userList
	s.data(t, "user-list-unactivated", 0, &users)
	require.Len(t, users.Users, 1)
	require.Equal(t, "admin", users.Users[0].Username)
	require.Equal(t, "unactivated-admin", users.Users[0].Role)

	// cloudhsm_cli-cluster-activate
	require.Equal(t, "Cluster activation successful", s.text(t, "cluster-activate", 0))

	for _, c := range []struct{ step, user, role string }{
		{"user-create-admin2", "admin2", "admin"},
		{"user-create-admin3", "admin3", "admin"},
		{"user-create-alice", "alice", "crypto-user"},
		{"user-create-bob", "bob", "crypto-user"},
		{"user-create-carol", "carol", "crypto-user"},
		{"register-admin", "admin", "admin"},
		{"register-admin2", "admin2", "admin"},
		{"register-admin3", "admin3", "admin"},
	} {
		var u userResult
		s.data(t, c.step, 0, &u)
		require.Equal(t, userResult{c.user, c.role}, u, c.step)
	}

	for _, step := range []string{"registration-token-admin", "registration-token-admin2", "registration-token-admin3", "quorum-token", "user-token"} {
		var p tokenPath
		s.data(t, step, 0, &p)
		_, err := os.Stat(filepath.Join(s.dir, p.Path))
		require.NoError(t, err, "%s: the token file it names", step)
	}

	// After registration each admin's quorum list says token-sign
	// (cloudhsm_cli-user-chqm-token-reg); crypto users have none.
	s.data(t, "user-list-registered", 0, &users)
	require.Len(t, users.Users, 5)
	for _, u := range users.Users {
		if u.Role == "admin" {
			require.Equal(t, []strategy{{"token-sign", "enabled"}}, u.Quorum, u.Username)
		} else {
			require.Empty(t, u.Quorum, u.Username)
		}
		require.Equal(t, "false", u.Locked, u.Username)
		require.Empty(t, u.MFA, u.Username)
		require.Equal(t, "full", u.ClusterCoverage, u.Username)
	}

	var qv quorumValues
	s.data(t, "quorum-values-initial", 0, &qv)
	require.Equal(t, [2]int{1, 1}, [2]int{qv.User, qv.Quorum})
	require.Equal(t, "Set Quorum Value successful", s.text(t, "set-quorum-value-quorum", 0))
	require.Equal(t, "Set Quorum Value successful", s.text(t, "set-quorum-value-user", 0))
	s.data(t, "quorum-values", 0, &qv)
	require.Equal(t, [2]int{2, 2}, [2]int{qv.User, qv.Quorum})

	// The text of quorum-auth-chsm-cli-admin's refused user create.
	const needQuorum = "Quorum approval is required for this operation"
	require.Equal(t, needQuorum, s.text(t, "set-quorum-value-user-unapproved", 1))
	require.Equal(t, needQuorum, s.text(t, "user-create-carol-unapproved", 1))

	var tl tokenList
	s.data(t, "quorum-token-list", 0, &tl)
	require.Len(t, tl.Tokens, 1, "the user token (the quorum token was used up)")
	tok := tl.Tokens[0]
	require.Equal(t, "admin", tok.Username)
	require.Equal(t, "user", tok.Service)
	require.EqualValues(t, 2, tok.ApprovalsRequired)
	require.Greater(t, int(tok.TokenTimeout), 0)
	require.LessOrEqual(t, int(tok.TokenTimeout), 600, "tokens expire in 10 minutes")
	require.Equal(t, "full", tok.ClusterCoverage)

	s.data(t, "user-list", 0, &users)
	var names []string
	for _, u := range users.Users {
		names = append(names, u.Username+":"+u.Role)
	}
	require.Equal(t, []string{"admin:admin", "admin2:admin", "admin3:admin", "alice:crypto-user", "bob:crypto-user", "carol:crypto-user"}, names)

	checkInteractive(t, s)

	// Keys.
	var aes generatedKey
	s.data(t, "key-generate-aes", 0, &aes)
	checkKey(t, "key-generate-aes", aes.Key, "payments-aes", "secret-key", "aes", "alice")
	require.EqualValues(t, 32, aes.Key.Attributes["key-length-bytes"])
	var pair generatedPair
	s.data(t, "key-generate-ec", 0, &pair)
	checkKey(t, "key-generate-ec public", pair.PublicKey, "signing-ec-pub", "public-key", "ec", "alice")
	checkKey(t, "key-generate-ec private", pair.PrivateKey, "signing-ec", "private-key", "ec", "alice")
	require.Equal(t, "secp256r1", pair.PrivateKey.Attributes["curve"])
	require.Equal(t, true, pair.PrivateKey.Attributes["sign"])
	require.Equal(t, true, pair.PublicKey.Attributes["verify"])

	var m message
	s.data(t, "key-share", 0, &m)
	require.Equal(t, "Key shared successfully", m.Message)

	alice := s.keys(t, "key-list-alice")
	require.Contains(t, alice, "payments-aes")
	require.Contains(t, alice, "signing-ec")
	require.Contains(t, alice, "signing-ec-pub")
	require.Equal(t, []coverage{{"bob", "full"}}, alice["signing-ec"].KeyInfo.SharedUsers)
	require.Equal(t, pair.PrivateKey.KeyReference, alice["signing-ec"].KeyReference)
	bob := s.keys(t, "key-list-bob")
	require.Contains(t, bob, "signing-ec", "bob sees the key alice shared with him")
	require.NotContains(t, bob, "payments-aes", "bob does not see alice's unshared secret key")
	require.Equal(t, []coverage{{"alice", "full"}}, bob["signing-ec"].KeyInfo.KeyOwners)
	require.Contains(t, bob, "carol-aes", "bob sees the key carol shared with him at generation")
	require.Equal(t, []coverage{{"carol", "full"}}, bob["carol-aes"].KeyInfo.KeyOwners)
	require.NotContains(t, alice, "carol-aes")

	s.data(t, "key-generate-file", 0, &m)
	require.Equal(t, "Successfully generated key file", m.Message)

	for _, step := range []string{"crypto-sign-bob", "restored-crypto-sign-bob"} {
		var sig signature
		s.data(t, step, 0, &sig)
		require.Equal(t, pair.PrivateKey.KeyReference, sig.KeyReference, step)
		raw, err := base64.StdEncoding.DecodeString(sig.Signature)
		require.NoError(t, err, step)
		require.NotEmpty(t, raw, step)
	}
	for _, step := range []string{"crypto-verify-alice", "restored-crypto-verify-bob"} {
		s.data(t, step, 0, &m)
		require.Equal(t, "Signature verified successfully", m.Message, step)
	}

	// Backup and restore: the same token (serial, label, bytes).
	var backup, restore backupResult
	s.data(t, "token-backup", 0, &backup)
	s.data(t, "token-restore", 0, &restore)
	require.Equal(t, backup, restore, "restore reports the backup it restored")
	require.Equal(t, "session", backup.Label)

	// The restored token lists the same users, quorum values and keys,
	// byte for byte (key references, owners, shares, EC points).
	for _, c := range [][2]string{
		{"user-list", "restored-user-list"},
		{"quorum-values", "restored-quorum-values"},
		{"key-list-alice", "restored-key-list-alice"},
		{"key-list-bob", "restored-key-list-bob"},
	} {
		require.Equal(t, string(s.out[c[0]]), string(s.out[c[1]]), "%s on the restored token", c[0])
	}

	// The audit log verifies on both tokens, from record 0: a stream per
	// emulated HSM (the cloudhsm profile's cluster has 2, docs/cluster.md).
	streams := 1
	if s.profile == "cloudhsm" {
		streams = 2
	}
	for _, step := range []string{"audit-verify-original", "audit-verify-restored"} {
		var v auditVerify
		s.data(t, step, 0, &v)
		require.True(t, v.Verified, step)
		require.Len(t, v.Streams, streams, step)
		for _, st := range v.Streams {
			require.Zero(t, st.First, step)
			require.Equal(t, int(st.Last)+1, st.Records, step)
		}
	}
	checkAudit(t, s)
}

// prompt is interactive mode's prompt, before each command's output
// (cloudhsm_cli-interactive).
const prompt = "aws-cloudhsm > "

// envelopes splits interactive mode's output into each command's.
func envelopes(t *testing.T, b []byte) [][]byte {
	t.Helper()
	parts := bytes.Split(b, []byte(prompt))
	require.Empty(t, bytes.TrimSpace(parts[0]), "output before the first prompt")
	var out [][]byte
	for _, p := range parts[1:] {
		if p = bytes.TrimSpace(p); len(p) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// checkInteractive checks carol's interactive session: login, a key
// shared with bob at generation, her key list, logout.
func checkInteractive(t *testing.T, s *session) {
	t.Helper()
	const step = "interactive-carol"
	require.Equal(t, "0", s.rc[step])
	out := envelopes(t, s.out[step])
	require.Len(t, out, 4, "one output per command:\n%s", s.out[step])
	decode := func(i int, v any) {
		var env envelope
		require.NoError(t, strict(out[i], &env), "%s, command %d", step, i+1)
		require.NotNil(t, env.ErrorCode)
		require.Zero(t, *env.ErrorCode, "%s, command %d:\n%s", step, i+1, out[i])
		require.NoError(t, strict(env.Data, v), "%s, command %d: data's shape:\n%s", step, i+1, out[i])
	}
	var u userResult
	decode(0, &u)
	require.Equal(t, userResult{"carol", "crypto-user"}, u)
	var k generatedKey
	decode(1, &k)
	require.Equal(t, "carol-aes", k.Key.Attributes["label"])
	require.Equal(t, []coverage{{"carol", "full"}}, k.Key.KeyInfo.KeyOwners)
	require.Equal(t, []coverage{{"bob", "full"}}, k.Key.KeyInfo.SharedUsers)
	var l keyList
	decode(2, &l)
	var labels []string
	for _, mk := range l.MatchedKeys {
		require.Nil(t, mk.KeyInfo, "key list without --verbose: reference and label only")
		labels = append(labels, mk.Attributes["label"].(string))
	}
	require.Contains(t, labels, "carol-aes")
	require.Equal(t, len(l.MatchedKeys), l.ReturnedKeyCount)
	var bye string
	decode(3, &bye)
	require.Equal(t, "Logout successful", bye) // cloudhsm_cli-logout
}

// checkKey checks a key's reference, owner and main attributes.
func checkKey(t *testing.T, what string, k keyJSON, label, class, keyType, owner string) {
	t.Helper()
	require.Regexp(t, `^0x[0-9a-f]{16}$`, k.KeyReference, what)
	require.NotNil(t, k.KeyInfo, what)
	require.Equal(t, []coverage{{owner, "full"}}, k.KeyInfo.KeyOwners, what)
	require.Empty(t, k.KeyInfo.SharedUsers, what)
	require.Equal(t, "full", k.KeyInfo.ClusterCoverage, what)
	require.Equal(t, label, k.Attributes["label"], what)
	require.Equal(t, class, k.Attributes["class"], what)
	require.Equal(t, keyType, k.Attributes["key-type"], what)
	require.Equal(t, true, k.Attributes["token"], what)
}

// keys is a key list's keys by label (the page's matched_keys, counts
// consistent).
func (s *session) keys(t *testing.T, step string) map[string]keyJSON {
	t.Helper()
	var l keyList
	s.data(t, step, 0, &l)
	require.Equal(t, len(l.MatchedKeys), l.ReturnedKeyCount, step)
	require.Equal(t, len(l.MatchedKeys), l.TotalKeyCount, step)
	require.Nil(t, l.NextToken, step)
	out := map[string]keyJSON{}
	for _, k := range l.MatchedKeys {
		require.NotNil(t, k.KeyInfo, "%s: --verbose gives key-info", step)
		out[k.Attributes["label"].(string)] = k
	}
	return out
}

// auditLog reads a step's audit show --json: one record a line, by
// stream, each stream numbered gap-free from 0.
func (s *session) auditLog(t *testing.T, step string) map[string][]auditLine {
	t.Helper()
	require.Equal(t, "0", s.rc[step])
	out := map[string][]auditLine{}
	sc := bufio.NewScanner(bytes.NewReader(s.out[step]))
	sc.Buffer(nil, 1<<20)
	for i := 0; sc.Scan(); i++ {
		var l auditLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "%s: line %d", step, i)
		require.EqualValues(t, len(out[l.Stream]), l.Seq, "%s: stream %s: sequence numbers from 0 without a gap", step, l.Stream)
		require.NotEmpty(t, l.MAC, step)
		out[l.Stream] = append(out[l.Stream], l)
	}
	require.NoError(t, sc.Err())
	return out
}

// merged is a token's audit log across its streams as one history: a
// record that several streams hold (a login is recorded on every HSM) once,
// in the order of the records' times.
func merged(streams map[string][]auditLine) []auditLine {
	names := slices.Sorted(maps.Keys(streams))
	var out []auditLine
	seen := map[string]bool{}
	for _, n := range names {
		for _, l := range streams[n] {
			if !seen[l.Record] {
				seen[l.Record] = true
				out = append(out, l)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Event.TimeUS < out[j].Event.TimeUS })
	return out
}

// checkAudit reads the audit logs: the original's holds the session's
// management events in the order they happened; the restored token's is
// the original's, record for record and MAC for MAC, up to the backup,
// then the restore.
func checkAudit(t *testing.T, s *session) {
	t.Helper()
	originals, restoreds := s.auditLog(t, "audit-show-original"), s.auditLog(t, "audit-show-restored")
	// Backups and restores are recorded on the first HSM (the one that
	// runs commands that use no key).
	original, restored := originals["hsm-0"], restoreds["hsm-0"]
	var events []string
	backup := -1
	for _, l := range merged(originals) {
		if l.Event.Response == 0 {
			events = append(events, l.Opcode+" "+l.Event.UserName)
		} else {
			// A refusal, by whom (its opcode is the quorum area's
			// business: the gate or the operation).
			events = append(events, "refused "+l.Event.Actor)
		}
	}
	for _, l := range original {
		if l.Opcode == "CN_BACKUP_BEGIN" {
			backup = int(l.Seq)
		}
	}
	require.GreaterOrEqual(t, backup, 0, "the original log records the backup")
	require.Greater(t, len(restored), backup+2)
	for i := 0; i <= backup; i++ {
		require.Equal(t, original[i].Record, restored[i].Record, "restored record %d", i)
		require.Equal(t, original[i].MAC, restored[i].MAC, "restored record %d's MAC", i)
	}
	require.Equal(t, "CN_RESTORE_BEGIN", restored[backup+1].Opcode, "the restored log goes on with the restore")
	// Each in this order (other records, logins and process ends among
	// them, may come between).
	want := []string{
		"CN_CREATE_CO admin", // cluster activate
		"CN_LOGIN admin",
		"CN_CREATE_CO admin2",
		"CN_CREATE_CO admin3",
		"CN_CREATE_USER alice",
		"CN_CREATE_USER bob",
		"CN_GET_TOKEN admin",
		"CN_REGISTER_QUORUM_PUBKEY admin",
		"CN_LOGIN admin2",
		"CN_REGISTER_QUORUM_PUBKEY admin2",
		"CN_LOGIN admin3",
		"CN_REGISTER_QUORUM_PUBKEY admin3",
		"CN_SET_M_VALUE admin",
		"refused admin", // set-quorum-value user without approval
		"CN_GET_TOKEN admin",
		"CN_APPROVE_TOKEN admin",
		"CN_SET_M_VALUE admin",
		"refused admin", // user create carol without approval
		"CN_GET_TOKEN admin",
		"CN_APPROVE_TOKEN admin",
		"CN_CREATE_USER carol",
		"CN_LOGIN carol",
		"CN_GENERATE_KEY ",
		"CN_LOGOUT carol",
		"CN_LOGIN alice",
		"CN_GENERATE_KEY ",
		"CN_GENERATE_KEY_PAIR ",
		"CN_SHARE_OBJECT bob",
		"CN_LOGIN bob",
		"CN_BACKUP_BEGIN admin",
		"CN_BACKUP_END admin",
	}
	i := 0
	for _, e := range events {
		if i < len(want) && e == want[i] {
			i++
		}
	}
	require.Equal(t, len(want), i, "audit show lacks %q (in order) among:\n%s", want[min(i, len(want)-1)], strings.Join(events, "\n"))
}

// volatileValue matches the fields whose values differ between runs by
// design (key material and its check values, signatures, times, serial
// numbers, digests and sizes of files holding them) with their value: a
// string, a number or a {"value": N} object. audit verify's last and
// records count every record, which grows with each kind of record any
// area adds: checkSession checks them, the golden files do not.
var volatileValue = regexp.MustCompile(`("(?:check-value|ec-point|signature|serial|serial-number|sha256|created|size|token-timeout-seconds|last|records)": )("[^"]*"|-?[0-9]+|\{[^{}]*\})`)

// normalised is each step's output with volatile values replaced, and the
// audit log as one line per record (sequence, opcode, user, response).
func (s *session) normalised(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, step := range s.steps {
		if strings.HasPrefix(step, "audit-show-") {
			var lines []string
			sc := bufio.NewScanner(bytes.NewReader(s.out[step]))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var l auditLine
				require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
				detail := volatileDetail.ReplaceAllString(l.Event.Detail, "$1<volatile>")
				detail = strings.ReplaceAll(detail, s.dir, "$DIR")
				lines = append(lines, fmt.Sprintf("%s %d %s user=%s actor=%s key=%d response=%d %s",
					l.Stream, l.Seq, l.Opcode, l.Event.UserName, l.Event.Actor, l.Event.KeyHandle, l.Event.Response, detail))
			}
			out[step] = strings.Join(lines, "\n") + "\n"
			continue
		}
		// As printed (CloudHSM's field order), volatile values replaced.
		text := volatileValue.ReplaceAllString(string(s.out[step]), `$1"<volatile>"`)
		out[step] = strings.ReplaceAll(text, s.dir, "$DIR")
	}
	return out
}

// volatileDetail matches the volatile parts of audit records' details: a
// backup's digest, the restored token's serial and time of the backup.
var volatileDetail = regexp.MustCompile(`(sha256 |serial |taken )[^ ,]+`)

// compareGolden compares a run's normalised outputs with
// testdata/golden/PROFILE (go test ./tests/operator -update rewrites them).
func compareGolden(t *testing.T, profile string, norm map[string]string) {
	t.Helper()
	dir := filepath.Join("testdata", "golden", profile)
	names := make([]string, 0, len(norm))
	for step := range norm {
		// The whole audit log is compared between the two runs only:
		// checkAudit holds what it must contain, and a new kind of record
		// elsewhere in the log is not this test's business.
		if !strings.HasPrefix(step, "audit-show-") {
			names = append(names, step)
		}
	}
	slices.Sort(names)
	if *update {
		require.NoError(t, os.RemoveAll(dir))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for _, step := range names {
			require.NoError(t, os.WriteFile(filepath.Join(dir, step+".json"), []byte(norm[step]), 0o644))
		}
		return
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	var have []string
	for _, f := range files {
		have = append(have, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	slices.Sort(have)
	require.Equal(t, names, have, "the steps and %s's golden files (go test ./tests/operator -update)", dir)
	for _, step := range names {
		want, err := os.ReadFile(filepath.Join(dir, step+".json"))
		require.NoError(t, err)
		require.Equal(t, string(want), norm[step], "step %s differs from %s/%s.json (go test ./tests/operator -run TestOperatorSession -update)", step, dir, step)
	}
}
