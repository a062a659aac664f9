package cluster

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"unsafe"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"
)

// tryInitialize is C_Initialize on the configuration file (pReserved):
// its error, the library left finalised.
func (tk *tok) tryInitialize() error {
	path := append([]byte(tk.conf), 0)
	err := tk.p.Initialize(pkcs11.InitializeWithReserved(unsafe.Pointer(&path[0])))
	runtime.KeepAlive(path)
	if err == nil {
		tk.p.Finalize()
	}
	return err
}

// TestBadClusterInput: bad input never crashes, hangs or loses data.
// A bad cluster key in the configuration fails C_Initialize with
// CKR_ARGUMENTS_BAD (the configuration came through pReserved:
// docs/config.md); a fault_plan that is missing or malformed fails it too,
// the module's log saying why; a cluster.state file that is not one
// (garbage, truncated) is rebuilt with a log line. After each, the token
// opens with a good configuration and its key is still there and signs.
func TestBadClusterInput(t *testing.T) {
	tk := newCluster(t, "hsms = 2")
	s := tk.login()
	require.NoError(t, tk.sign(s, tk.genEC(s, true, "kept")))
	require.NoError(t, tk.p.Finalize())

	for _, bad := range [][]string{
		{"hsms = 0"}, {"hsms = 33"}, {"hsms = two"},
		{"throttle.ec-sign = -1"}, {"throttle.no-such-class = 5"}, {"throttle = fast"},
		{"replication_delay = 11m"}, {"retry_mode = sometimes"},
		{"latency.ec-sign = normal(2ms"}, {"latency = slow"},
		{"fault_plan = relative/plan.json"}, {"fault_seed = -3"}, {"cluster = maybe"},
	} {
		tk.writeConfig(bad...)
		requireRV(t, tk.tryInitialize(), pkcs11.CKR_ARGUMENTS_BAD, bad)
	}

	plans := map[string]string{
		"missing.json":    "",
		"notjson.json":    `{"seed": 1, "steps": [`,
		"unknown.json":    `{"seed": 1, "steps": [{"at": "0s", "frobnicate": true}]}`,
		"badtime.json":    `{"seed": 1, "steps": [{"at": "zz", "hsm": 1, "state": "down"}]}`,
		"nohsm.json":      `{"seed": 1, "steps": [{"at": "0s", "hsm": 7, "state": "down"}]}`,
		"badrv.json":      `{"seed": 1, "steps": [{"at": "0s", "fail": "C_Sign", "count": 1, "rv": "CKR_NOPE"}]}`,
		"badfunc.json":    `{"seed": 1, "steps": [{"at": "0s", "fail": "C_Frob", "count": 1, "rv": "CKR_DEVICE_ERROR"}]}`,
		"badprob.json":    `{"seed": 1, "steps": [{"at": "0s", "fail": "C_Sign", "probability": 2, "rv": "CKR_DEVICE_ERROR"}]}`,
		"twokinds.json":   `{"seed": 1, "steps": [{"at": "0s", "hsm": 1, "state": "down", "store": "down", "for": "1s"}]}`,
		"badstate.json":   `{"seed": 1, "steps": [{"at": "0s", "hsm": 1, "state": "sideways"}]}`,
		"badlatency.json": `{"seed": 1, "steps": [{"at": "0s", "for": "1s", "latency": "fast", "class": "ec-sign"}]}`,
	}
	for name, text := range plans {
		path := filepath.Join(filepath.Dir(tk.conf), name)
		if text != "" {
			path = tk.writePlan(name, text)
		}
		tk.writeConfig("hsms = 2", "fault_plan = "+path)
		err := tk.tryInitialize()
		require.Error(t, err, "C_Initialize with fault_plan %s", name)
		require.Contains(t, tk.logText(), name, "the module's log names the plan %s", name)
	}

	state := filepath.Join(tk.tokens, "slot-0", "cluster.state")
	fi, err := os.Stat(state)
	require.NoError(t, err, "the shared state file")
	for _, garbage := range [][]byte{[]byte("garbage"), make([]byte, fi.Size())} {
		require.NoError(t, os.WriteFile(state, garbage, 0o600))
		tk.writeConfig("hsms = 2")
		tk.initialize()
		s = tk.login()
		require.NoError(t, tk.sign(s, tk.privateKey(s, "kept")), "the key after a rebuilt state file")
		require.NoError(t, tk.p.Finalize())
	}
	require.Contains(t, tk.logText(), "rebuilding the shared state file")

	tk.writeConfig("hsms = 2")
	tk.initialize()
	s = tk.login()
	require.NoError(t, tk.sign(s, tk.privateKey(s, "kept")), "the key after every bad input")
}
