package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"unsafe"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
	"gohsm/internal/testenv/pgtest"
)

// PKCS #11 3.2 values (include/pkcs11t.h); miekg/pkcs11 predates them.
const (
	ckmMLDSAKeyPairGen = 0x1c
	ckmMLDSA           = 0x1d
)

// TestCloudHSMCLIMLDSAInvisibleToPKCS11: on a cloudhsm-profile token
// (hsm2m, the default), CloudHSM CLI (gohsm cloudhsm-cli, another
// process) makes an ML-DSA pair and signs with it; an application on the
// library then sees the keys but no ML-DSA mechanism: C_GetMechanismList
// lacks CKM_ML_DSA_KEY_PAIR_GEN and CKM_ML_DSA, C_GetMechanismInfo,
// C_SignInit and C_VerifyInit with them are CKR_MECHANISM_INVALID
// (docs/cloudhsm.md, "Mechanisms": ML-DSA is CloudHSM CLI only).
func TestCloudHSMCLIMLDSAInvisibleToPKCS11(t *testing.T) {
	p := module(t)
	dir := t.TempDir()
	tk := &tok{t: t, p: p, dir: filepath.Join(dir, "tokens"), conf: filepath.Join(dir, "gohsm.conf")}
	tk.store = pgtest.SlotStore(t, "e2e")
	require.NoError(t, os.WriteFile(tk.conf, []byte(configText(tk.dir, tk.store+"\nprofile = cloudhsm")), 0o600))

	cli := testenv.CLI(t)
	const cu = "cu1:Crypto-pw1"
	run := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"--config", tk.conf}, args...)...)
		cmd.Env = append(os.Environ(), append(env, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "gohsm %v: %s", args, out)
		return string(out)
	}
	run(nil, "token", "init", "--label", tokenName, "--pin", soPIN)
	run(nil, "user", "create", "--username", "cu1", "--role", "crypto-user", "--password", "Crypto-pw1", "--pin", soPIN)
	asCU := []string{"CLOUDHSM_ROLE=crypto-user", "CLOUDHSM_PIN=" + cu}
	run(asCU, "cloudhsm-cli", "key", "generate-asymmetric-pair", "ml-dsa", "--mldsa-algorithm", "ML-DSA-44",
		"--public-label", "pq-pub", "--private-label", "pq", "--public-attributes", "verify=true", "--private-attributes", "sign=true")
	require.Contains(t, run(asCU, "cloudhsm-cli", "crypto", "sign", "ml-dsa", "--key-filter", "attr.label=pq", "--data", "AAAA"),
		`"signature"`)

	path := append([]byte(tk.conf), 0)
	require.NoError(t, p.Initialize(pkcs11.InitializeWithReserved(unsafe.Pointer(&path[0]))))
	runtime.KeepAlive(path)
	t.Cleanup(func() { p.Finalize() })
	slots, err := p.GetSlotList(true)
	require.NoError(t, err)
	tk.slot = slots[0]

	mechs, err := p.GetMechanismList(tk.slot)
	require.NoError(t, err)
	require.NotEmpty(t, mechs)
	for _, m := range mechs {
		require.False(t, slices.Contains([]uint{ckmMLDSAKeyPairGen, ckmMLDSA}, m.Mechanism), "listed 0x%x", m.Mechanism)
	}
	_, err = p.GetMechanismInfo(tk.slot, []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmMLDSA, nil)})
	require.True(t, isRV(err, pkcs11.CKR_MECHANISM_INVALID), "C_GetMechanismInfo: %v", err)

	s := tk.userSession(cu)
	priv := tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_LABEL, "pq"))
	pub := tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_LABEL, "pq-pub"))
	require.Len(t, priv, 1, "the CLI's private key is visible")
	require.Len(t, pub, 1, "the CLI's public key is visible")
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmMLDSA, nil)}
	err = p.SignInit(s, mech, priv[0])
	require.True(t, isRV(err, pkcs11.CKR_MECHANISM_INVALID), "C_SignInit: %v", err)
	err = p.VerifyInit(s, mech, pub[0])
	require.True(t, isRV(err, pkcs11.CKR_MECHANISM_INVALID), "C_VerifyInit: %v", err)
}
