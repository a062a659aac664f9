package tools

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPkcs11ToolForkAndEC runs two more of pkcs11-tool's built-in tests:
//
//   - --test-fork: after its own C_Initialize the tool forks, and the child
//     calls C_Initialize again; a Go runtime does not survive fork(), so this
//     is the module's forked-child path (pkcs11/fork.c). The tool exits 0 when
//     the child succeeded; on failure it prints "error: PKCS11 function
//     C_Initialize in child failed: rv = ..." and "Child process exited with
//     status N" (and exits 1), so both the status and the text are checked.
//   - --test-ec: generates a P-256 key pair, changes CKA_ID to 20 bytes,
//     signs with CKM_ECDSA_SHA1, changes the public key's CKA_LABEL, CKA_ID
//     and CKA_SUBJECT, and destroys both keys; "==> OK" is its verdict.
func TestPkcs11ToolForkAndEC(t *testing.T) {
	e := &env{t: t, lib: library(t), p11tool: tool(t, "pkcs11-tool"), dir: t.TempDir()}
	tokenDir := e.path("token")
	require.NoError(t, os.MkdirAll(tokenDir, 0o700))
	e.conf = e.write("gohsm.conf", []byte(tokenConfig(tokenDir)))

	e.check("init-token", true, func() error {
		return ok(e.p11("--init-token", "--label", "T", "--so-pin", soPIN), "Token successfully initialized")
	})
	e.check("init-pin", true, func() error {
		return ok(e.p11("--init-pin", "--login", "--login-type", "so", "--so-pin", soPIN, "--pin", userPIN),
			"User PIN successfully initialized")
	})

	forkOK := func(r result) error {
		if err := ok(r, "*** Calling C_Initialize in forked child process ***"); err != nil {
			return err
		}
		for _, bad := range []string{"error:", "Child process exited", "Aborting"} {
			if strings.Contains(r.out(), bad) {
				return fmt.Errorf("the forked child failed (%q in the output)\n%s", bad, r)
			}
		}
		return nil
	}
	e.check("pkcs11-tool --test-fork", false, func() error {
		return forkOK(e.p11("--test-fork"))
	})
	// The same with a logged-in R/W session open in the parent at fork time.
	e.check("pkcs11-tool --test-fork with a logged-in session", false, func() error {
		return forkOK(e.user("--session-rw", "--test-fork"))
	})

	e.check("list-mechanisms: ECDSA-SHA1 signs (needed by --test-ec)", false, func() error {
		r := e.p11("-M")
		if err := ok(r); err != nil {
			return err
		}
		desc, found := parseMechanisms(r.stdout)["ECDSA-SHA1"]
		if !found || !strings.Contains(desc, "sign") || !strings.Contains(desc, "verify") {
			return fmt.Errorf("ECDSA-SHA1 not listed with sign and verify (%q)\n%s", desc, r)
		}
		return nil
	})
	e.check("pkcs11-tool --test-ec", false, func() error {
		r := e.user("--session-rw", "--test-ec", "--id", "0a", "--key-type", "EC:prime256v1")
		return ok(r, "*** Generating EC key pair ***", "*** Doing a signature ***",
			"*** Deleting the private and the public key again ***", "==> OK")
	})
	// --test-ec destroys what it generated: the token is empty again.
	e.check("--test-ec left no objects", false, func() error {
		r := e.user("-O")
		if err := ok(r); err != nil {
			return err
		}
		if objs := parseObjects(r.stdout); len(objs) != 0 {
			return fmt.Errorf("%d objects left after --test-ec\n%s", len(objs), r)
		}
		return nil
	})
}
