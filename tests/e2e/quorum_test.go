package e2e

import (
	"os"
	"os/exec"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
)

// TestKeyQuorumThroughABI: what a PKCS#11 application sees of a key whose
// use quorum value is 2 (docs/quorum.md): C_SignInit answers
// CKR_FUNCTION_REJECTED, since a Cryptoki caller has no way to hand in an
// approved token, while a key without values signs. The keys are made by
// CloudHSM CLI (gohsm cloudhsm-cli, another process) with
// --use-key-quorum-value, as an operator would.
func TestKeyQuorumThroughABI(t *testing.T) {
	tk := newToken(t)
	tk.initToken()
	tk.initPIN("bob:bobpassword")
	cli := testenv.Built(t, "GOHSM_CLI", "gohsm", "cli")
	gen := func(label string, extra ...string) {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"--config", tk.conf, "cloudhsm-cli", "key", "generate-asymmetric-pair", "ec",
			"--public-label", label + "-pub", "--private-label", label, "--curve", "secp256r1",
			"--private-attributes", "sign=true", "--share-crypto-users", "bob"}, extra...)...)
		cmd.Env = append(os.Environ(), "CLOUDHSM_ROLE=crypto-user", "CLOUDHSM_PIN="+userPIN)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	gen("q-free")
	gen("q-gated", "--use-key-quorum-value", "2")

	s := tk.userSession(userPIN)
	key := func(label string) pkcs11.ObjectHandle {
		hs := tk.find(s, pkcs11.NewAttribute(pkcs11.CKA_LABEL, label), pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY))
		require.Len(t, hs, 1, label)
		return hs[0]
	}
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}
	require.NoError(t, tk.p.SignInit(s, mech, key("q-free")))
	_, err := tk.p.Sign(s, make([]byte, 32))
	require.NoError(t, err)
	for range 2 { // the second time from a warm cache
		err = tk.p.SignInit(s, mech, key("q-gated"))
		require.True(t, isRV(err, pkcs11.CKR_FUNCTION_REJECTED), "C_SignInit: %v", err)
	}
}
