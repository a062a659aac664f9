package cloudhsmcli

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/attrs"
	"gohsm/token/store"
)

// The golden files' -update flag is shared by every test of the package;
// whichever file comes first defines it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/")
	}
}

func replicateUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func replicateGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if replicateUpdate() {
		require.NoError(t, os.WriteFile(p, got, 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "run with -update to write %s", p)
	assert.Equal(t, string(want), string(got))
}

// twoClusters writes a configuration with slots 0 ("src") and 1 ("dst"),
// officer admin and crypto user alice on both, bob on the source only; on
// the source alice owns "example-key" (AES) and "shared-key" (shared with
// bob), and bob owns "bobs-key". It returns the configuration file and the
// keys' handles by label. The keys are imported with a fixed value (their
// check values are in the golden file).
func twoClusters(t *testing.T) (string, map[string]ck.ULong) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "gohsm.conf")
	text := fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_level = error\n[slot 0]\nlabel = src\n[slot 1]\nlabel = dst\n", filepath.Join(dir, "tokens"))
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o600))
	cfg, err := token.ParseConfig(text, conf)
	require.NoError(t, err)
	m, err := token.Open(cfg)
	require.NoError(t, err)
	defer m.Close()
	keys := map[string]ck.ULong{}
	for slot, label := range []string{"src", "dst"} {
		s, err := m.Slot(ck.ULong(slot))
		require.NoError(t, err)
		require.NoError(t, s.InitToken([]byte("admin:officer-pw"), label))
		h, err := m.OpenSession(ck.ULong(slot), ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		require.NoError(t, err)
		require.NoError(t, m.Login(h, ck.CKU_SO, []byte("admin:officer-pw")))
		require.NoError(t, m.CreateUser(h, "alice", store.RoleCU, []byte("alice-pw")))
		if slot == 0 {
			require.NoError(t, m.CreateUser(h, "bob", store.RoleCU, []byte("bob-pw")))
		}
		require.NoError(t, m.CloseSession(h))
	}
	gen := func(pin, label string) ck.ULong {
		h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		require.NoError(t, err)
		defer m.CloseSession(h)
		require.NoError(t, m.Login(h, ck.CKU_USER, []byte(pin)))
		// A fixed value, so that the golden file's check-value is too.
		k, err := m.CreateObject(h, attrs.Template{
			ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES)),
			ck.CKA_VALUE: []byte("0123456789abcdef"), ck.CKA_LABEL: []byte(label), ck.CKA_TOKEN: attrs.Bool(true),
			ck.CKA_SIGN: attrs.Bool(true), ck.CKA_VERIFY: attrs.Bool(true)})
		require.NoError(t, err)
		if label == "shared-key" {
			require.NoError(t, m.Share(h, k, "bob", true))
		}
		require.NoError(t, m.Logout(h))
		return k
	}
	keys["example-key"] = gen("alice:alice-pw", "example-key")
	keys["shared-key"] = gen("alice:alice-pw", "shared-key")
	keys["bobs-key"] = gen("bob:bob-pw", "bobs-key")
	// A key quorum on example-key, in the table quorum's commands keep.
	s0, err := m.Slot(0)
	require.NoError(t, err)
	db, err := sql.Open("sqlite", filepath.Join(s0.Config().Dir, store.DBName))
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`INSERT INTO key_quorum (object_id, use_value, manage_value) VALUES (?, 2, 1)`, keys["example-key"])
	require.NoError(t, err)
	return conf, keys
}

func replicateRun(t *testing.T, conf string, env map[string]string, args ...string) (int, map[string]any, string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	code := Run(args, nil, &out, &errb, Options{Config: conf})
	var m map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &m), out.String())
	return code, m, out.String()
}

// TestKeyReplicate: key replicate copies alice's key to the other cluster
// with the documented JSON (golden file), its key quorum values included; a key shared with a user missing
// on the destination, and a key whose owner is missing there, fail with
// error_code 1 and copy nothing.
func TestKeyReplicate(t *testing.T) {
	conf, keys := twoClusters(t)
	cu := map[string]string{"CLOUDHSM_ROLE": "crypto-user", "CLOUDHSM_PIN": "alice:alice-pw",
		"DESTINATION_CLOUDHSM_ROLE": "crypto-user", "DESTINATION_CLOUDHSM_PIN": "alice:alice-pw"}
	code, _, out := replicateRun(t, conf, cu, "key", "replicate", "--filter", "attr.label=example-key",
		"--source-cluster-id", "src", "--destination-cluster-id", "1")
	require.Equal(t, 0, code, out)
	replicateGolden(t, "key-replicate.json", []byte(out))

	// Again, with a filter of two terms: the destination has it.
	code, m, out := replicateRun(t, conf, cu, "key", "replicate", "--filter", "attr.label=example-key", "attr.class=secret-key",
		"--source-cluster-id", "0", "--destination-cluster-id", "dst")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, m["data"], "holds this key already")

	code, m, out = replicateRun(t, conf, cu, "key", "replicate", "--filter", "attr.label=shared-key",
		"--source-cluster-id", "0", "--destination-cluster-id", "1")
	assert.Equal(t, 1, code, out)
	assert.Equal(t, float64(1), m["error_code"])
	assert.Contains(t, m["data"], `A user the key is shared with, "bob", must exist on the destination cluster`)

	admin := map[string]string{"CLOUDHSM_ROLE": "admin", "CLOUDHSM_PIN": "admin:officer-pw",
		"DESTINATION_CLOUDHSM_ROLE": "admin", "DESTINATION_CLOUDHSM_PIN": "admin:officer-pw"}
	code, m, out = replicateRun(t, conf, admin, "key", "replicate", "--filter", fmt.Sprintf("key-reference=0x%x", keys["bobs-key"]),
		"--source-cluster-id", "0", "--destination-cluster-id", "1")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, m["data"], `The owner of the key, "bob", must exist on the destination cluster`)

	// Only example-key reached the destination.
	code, _, out = replicateRun(t, conf, cu, "key", "replicate", "--filter", "attr.label=no-such-key",
		"--source-cluster-id", "0", "--destination-cluster-id", "1")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, ErrNoKeyMatched.Error())

	for _, ids := range [][2]string{{"nope", "1"}, {"0", "7"}, {"src", "0"}} {
		code, m, out = replicateRun(t, conf, cu, "key", "replicate", "--filter", "attr.label=example-key",
			"--source-cluster-id", ids[0], "--destination-cluster-id", ids[1])
		assert.Equal(t, 1, code, out)
		if ids[0] == "src" {
			assert.Contains(t, m["data"], "the source and destination clusters are the same")
		} else {
			assert.Contains(t, m["data"], "not found: a cluster ID is a slot ID or a token label")
		}
	}
	code, _, out = replicateRun(t, conf, cu, "key", "replicate", "--filter", "attr.label=example-key")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "the following required arguments were not provided")

	code, m, _ = replicateRun(t, conf, map[string]string{"DESTINATION_CLOUDHSM_PIN": ""}, "key", "replicate", "--filter", "attr.label=example-key",
		"--source-cluster-id", "0", "--destination-cluster-id", "1")
	assert.Equal(t, 1, code)
	assert.Contains(t, m["data"], "DESTINATION_CLOUDHSM_PIN")
}

// TestKeyReplicateInteractive: after an interactive login on the source
// cluster's slot, key replicate uses that login there (a login is
// slot-wide) and DESTINATION_CLOUDHSM_* on the destination.
func TestKeyReplicateInteractive(t *testing.T) {
	conf, _ := twoClusters(t)
	t.Setenv("CLOUDHSM_ROLE", "")
	t.Setenv("CLOUDHSM_PIN", "")
	t.Setenv("DESTINATION_CLOUDHSM_ROLE", "crypto-user")
	t.Setenv("DESTINATION_CLOUDHSM_PIN", "alice:alice-pw")
	in := strings.NewReader("login --username alice --role crypto-user --password alice-pw\n" +
		"key replicate --filter attr.label=example-key --source-cluster-id 0 --destination-cluster-id 1\n" +
		"key replicate --filter attr.label=example-key --source-cluster-id 1 --destination-cluster-id 0\n" +
		"quit\n")
	var out, errb bytes.Buffer
	code := Run([]string{"interactive"}, in, &out, &errb, Options{Config: conf})
	require.Equal(t, 0, code, errb.String())
	assert.Contains(t, out.String(), "Successfully replicated key")
	// Back the other way: the destination is the logged-in slot now, as the
	// same user, and the key is there already.
	assert.Contains(t, out.String(), "holds this key already")
}

// TestKeyReplicateMLDSAToHSM1: alice's ML-DSA pair, made with key
// generate-asymmetric-pair ml-dsa on an hsm2m cluster, does not replicate
// to an hsm1.medium cluster (ML-DSA is on hsm2m only): error_code 1 with
// the reason, and the destination holds no key of hers; the same pair
// replicates to an hsm2m cluster.
func TestKeyReplicateMLDSAToHSM1(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "gohsm.conf")
	text := fmt.Sprintf("token_dir = %s\nkdf_time = 1\nkdf_memory = 64\nkdf_threads = 1\nlogin_cache = off\nlog_level = error\n"+
		"[slot 0]\nlabel = src\nprofile = cloudhsm\n[slot 1]\nlabel = old\nprofile = cloudhsm\nhsm_type = hsm1\n"+
		"[slot 2]\nlabel = new\nprofile = cloudhsm\n", filepath.Join(dir, "tokens"))
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o600))
	cfg, err := token.ParseConfig(text, conf)
	require.NoError(t, err)
	m, err := token.Open(cfg)
	require.NoError(t, err)
	for slot, label := range []string{"src", "old", "new"} {
		s, err := m.Slot(ck.ULong(slot))
		require.NoError(t, err)
		require.NoError(t, s.InitToken([]byte("admin:officer-pw"), label))
		h, err := m.OpenSession(ck.ULong(slot), ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		require.NoError(t, err)
		require.NoError(t, m.Login(h, ck.CKU_SO, []byte("admin:officer-pw")))
		require.NoError(t, m.CreateUser(h, "alice", store.RoleCU, []byte("alice-pw")))
		require.NoError(t, m.CloseSession(h))
	}
	require.NoError(t, m.Close())

	cu := map[string]string{"CLOUDHSM_ROLE": "crypto-user", "CLOUDHSM_PIN": "alice:alice-pw",
		"DESTINATION_CLOUDHSM_ROLE": "crypto-user", "DESTINATION_CLOUDHSM_PIN": "alice:alice-pw"}
	for k, v := range cu {
		t.Setenv(k, v)
	}
	// runOn runs a command with slot as the selected one.
	runOn := func(slot uint, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Run(args, nil, &out, &errb, Options{Config: conf, Slot: &slot})
		return code, out.String() + errb.String()
	}
	code, out := runOn(0, "key", "generate-asymmetric-pair", "ml-dsa", "--mldsa-algorithm", "ML-DSA-44",
		"--public-label", "pq-pub", "--private-label", "pq")
	require.Equal(t, 0, code, out)

	for _, label := range []string{"pq", "pq-pub"} {
		code, m, out := replicateRun(t, conf, cu, "key", "replicate", "--filter", "attr.label="+label,
			"--source-cluster-id", "src", "--destination-cluster-id", "old")
		assert.Equal(t, 1, code, out)
		assert.Contains(t, m["data"], "ML-DSA keys are available on hsm2m.medium clusters only, this HSM is hsm1.medium", label)
	}
	code, out = runOn(1, "key", "list")
	require.Equal(t, 0, code, out)
	assert.NotContains(t, out, "key-reference", "the hsm1 cluster holds no key")
	code, out = runOn(0, "key", "list")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "key-reference", "key list shows keys (the check above can fail)")

	for _, label := range []string{"pq", "pq-pub"} {
		code, _, out := replicateRun(t, conf, cu, "key", "replicate", "--filter", "attr.label="+label,
			"--source-cluster-id", "src", "--destination-cluster-id", "new")
		assert.Equal(t, 0, code, out)
		assert.Contains(t, out, "Successfully replicated key", label)
	}
}
