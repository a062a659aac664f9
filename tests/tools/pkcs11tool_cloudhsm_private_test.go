package tools

import (
	"fmt"
	"gohsm/internal/testenv"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPkcs11ToolCloudHSMPublicKeyPrivate: pkcs11-tool --keypairgen without
// --private puts CKA_PRIVATE=false in the public-key template. CloudHSM's
// attribute table gives CKA_PRIVATE the default true for public keys too,
// with note 1 ("must be explicitly set only to the default value"), and
// pkcs11-tool's key generation fails against CloudHSM until --private is
// added (OpenSC#2747). The standard profile generates the pair.
func TestPkcs11ToolCloudHSMPublicKeyPrivate(t *testing.T) {
	for _, profile := range []string{"cloudhsm", "standard"} {
		t.Run(profile, func(t *testing.T) {
			e := &env{t: t, lib: library(t), p11tool: tool(t, "pkcs11-tool"), dir: t.TempDir()}
			cli := testenv.CLI(t)
			tokenDir := e.path("token")
			require.NoError(t, os.MkdirAll(tokenDir, 0o700))
			e.conf = e.write("gohsm.conf", []byte(profileConfig(tokenDir, "chsm", profile)))
			e.check("gohsm token init + user create", true, func() error {
				if err := ok(e.run(cli, "--config", e.conf, "token", "init", "--label", "chsm", "--pin", soPIN)); err != nil {
					return err
				}
				return ok(e.run(cli, "--config", e.conf, "--pin", soPIN, "user", "create", "--username", "user",
					"--role", "crypto-user", "--password", cloudhsmUserPassword))
			})
			e.check("keypairgen without --private (CKA_PRIVATE=false on the public key)", false, func() error {
				r := e.p11("--login", "--pin", cloudhsmUserPIN, "--keypairgen", "--key-type", "EC:prime256v1",
					"--usage-sign", "--id", "03", "--label", "ec3")
				if profile == "cloudhsm" {
					if r.err == nil || !strings.Contains(r.out(), "C_GenerateKeyPair failed") {
						return fmt.Errorf("CKA_PRIVATE=false accepted on a public key\n%s", r)
					}
					return nil
				}
				return ok(r, "Key pair generated")
			})
			// Behaviour 9: with --private the public key is private in both
			// profiles; in cloudhsm every crypto user still lists it, in
			// standard only its owner does.
			e.check("keypairgen --private", true, func() error {
				return ok(e.p11("--login", "--pin", cloudhsmUserPIN, "--session-rw", "--keypairgen", "--key-type",
					"EC:prime256v1", "--usage-sign", "--private", "--id", "04", "--label", "ec4"), "Key pair generated")
			})
			e.check("another crypto user lists the private public key in cloudhsm only", false, func() error {
				if err := ok(e.run(cli, "--config", e.conf, "--pin", soPIN, "user", "create", "--username", "bob",
					"--role", "crypto-user", "--password", "bobpassword1")); err != nil {
					return err
				}
				r := e.p11("--login", "--pin", "bob:bobpassword1", "--session-rw", "-O")
				if err := ok(r); err != nil {
					return err
				}
				pub := hasObject(parseObjects(r.stdout), "Public Key Object; EC", "ec4", "04")
				priv := hasObject(parseObjects(r.stdout), "Private Key Object; EC", "ec4", "04")
				if priv || pub != (profile == "cloudhsm") {
					return fmt.Errorf("bob sees the public key: %v, the private key: %v\n%s", pub, priv, r)
				}
				return nil
			})
		})
	}
}
