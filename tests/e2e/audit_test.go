package e2e

import (
	"bytes"
	"os/exec"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
	"gohsm/token/audit"
)

// auditEvents reads the token's audit log with the gohsm CLI, another
// process (a second SQLite in this process, beside the library's, would
// break SQLite's locks: closing it drops the library's), after checking
// that the chain verifies.
func (tk *tok) auditEvents() []audit.Event {
	tk.t.Helper()
	cli := testenv.Built(tk.t, "GOHSM_CLI", "gohsm", "cli")
	out, err := exec.Command(cli, "--config", tk.conf, "audit", "verify").CombinedOutput()
	require.NoError(tk.t, err, "audit verify: %s", out)
	out, err = exec.Command(cli, "--config", tk.conf, "audit", "show", "--json").Output()
	require.NoError(tk.t, err)
	recs, err := audit.ReadLines(bytes.NewReader(out))
	require.NoError(tk.t, err)
	var evs []audit.Event
	for _, r := range recs {
		evs = append(evs, r.Event)
	}
	return evs
}

// TestAuditThroughABI: through the C ABI, a failed C_Login and a
// C_GenerateKey are in the audit log, with the key's handle; C_Sign,
// C_Encrypt and C_Digest add nothing (behaviour 28).
func TestAuditThroughABI(t *testing.T) {
	tk := newToken(t)
	tk.initToken()
	s := tk.session()
	err := tk.p.Login(s, pkcs11.CKU_USER, "alice:wrong-password")
	require.True(t, isRV(err, pkcs11.CKR_PIN_INCORRECT), "%v", err)
	require.NoError(t, tk.p.Login(s, pkcs11.CKU_USER, userPIN))
	before := len(tk.auditEvents())
	k, err := tk.p.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true)})
	require.NoError(t, err)
	evs := tk.auditEvents()
	require.Len(t, evs, before+1)
	gen := evs[before]
	assert.Equal(t, audit.CN_GENERATE_KEY, gen.Opcode)
	assert.Equal(t, uint64(k), gen.Key)
	assert.Equal(t, uint64(s), gen.Session)
	var failed *audit.Event
	for i := range evs {
		if evs[i].Opcode == audit.CN_LOGIN && evs[i].Code == audit.RespLoginFailure {
			failed = &evs[i]
		}
	}
	require.NotNil(t, failed, "the failed C_Login is recorded")
	assert.Equal(t, "HSM Error: RET_USER_LOGIN_FAILURE", failed.Response)
	assert.Equal(t, "alice", failed.User)

	hk, err := tk.p.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32), pkcs11.NewAttribute(pkcs11.CKA_SIGN, true)})
	require.NoError(t, err)
	// A session key's record is queued by the module and written within
	// 20 ms (docs/store.md, "Audit"): wait for it, up to 5 s.
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs = tk.auditEvents()
		if n := len(evs); n > 0 && evs[n-1].Opcode == audit.CN_GENERATE_KEY && evs[n-1].Key == uint64(hk) {
			break
		}
		require.True(t, time.Now().Before(deadline), "the session key's record, 5 s on: %v", evs[len(evs)-1])
		time.Sleep(10 * time.Millisecond)
	}
	before = len(evs)
	for i := 0; i < 3; i++ {
		require.NoError(t, tk.p.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}, hk))
		_, err = tk.p.Sign(s, []byte("message"))
		require.NoError(t, err)
	}
	require.NoError(t, tk.p.EncryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_CBC_PAD, make([]byte, 16))}, k))
	_, err = tk.p.Encrypt(s, make([]byte, 16))
	require.NoError(t, err)
	require.NoError(t, tk.p.DigestInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256, nil)}))
	_, err = tk.p.Digest(s, []byte("x"))
	require.NoError(t, err)
	assert.Len(t, tk.auditEvents(), before, "crypto calls record nothing")
}
