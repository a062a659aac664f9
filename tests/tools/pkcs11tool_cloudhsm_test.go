package tools

import (
	"fmt"
	"gohsm/internal/testenv"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPkcs11ToolCloudHSM is what an AWS CloudHSM (Client SDK 5) user does
// with OpenSC's pkcs11-tool, run once on a slot with profile = cloudhsm and
// once on a standard slot: the same commands, and where CloudHSM answers
// differently the cloudhsm run must see CloudHSM's answer and the standard
// run the specification's.
//
// What pkcs11-tool 0.23 does that matters here (seen with pkcs11-spy):
//   - it opens a R/W session (CKF_RW_SESSION) only for what writes to the
//     token (--keypairgen, --keygen, --write-object, --delete-object,
//     --init-pin); --sign, --verify, --decrypt, -O and --read-object open a
//     R/O one, with or without --login. SDK 5 refuses R/O sessions
//     (CKR_FUNCTION_FAILED), so a CloudHSM user adds --session-rw.
//   - --keypairgen puts CKA_PRIVATE=false in the public-key template unless
//     --private is given (OpenSC#2747: CloudHSM refuses it; CKA_PRIVATE
//     "must be explicitly set only to the default value"; gohsm's cloudhsm
//     profile lets a public key be non-private, docs/cloudhsm.md), and for
//     EC keys CKA_DERIVE=true on both halves unless a --usage-* option is
//     given (refused: a public key may not derive).
//
// The users come from the gohsm CLI (token init, user create), as on a
// CloudHSM cluster they come from CloudHSM CLI: C_InitToken is refused in
// the cloudhsm profile.
func TestPkcs11ToolCloudHSM(t *testing.T) {
	for _, profile := range []string{"cloudhsm", "standard"} {
		t.Run(profile, func(t *testing.T) { pkcs11ToolCloudHSMScenario(t, profile) })
	}
}

// cloudhsmUser is the crypto user of these runs; "user" so that the bare
// password names it in the standard profile (its default user).
const (
	cloudhsmUserPassword = "userpassword1"
	cloudhsmUserPIN      = "user:" + cloudhsmUserPassword
)

// profileConfig is the one-slot configuration of a throwaway token with
// the given profile (cheap password hashing, as testenv.TokenConfig).
func profileConfig(tokenDir, label, profile string) string {
	return testenv.TokenConfig(tokenDir, label) + "profile = " + profile + "\n"
}

func pkcs11ToolCloudHSMScenario(t *testing.T, profile string) {
	cloud := profile == "cloudhsm"
	e := &env{t: t, lib: library(t), p11tool: tool(t, "pkcs11-tool"), openssl: tool(t, "openssl"), dir: t.TempDir()}
	cli := testenv.CLI(t)
	tokenDir := e.path("token")
	require.NoError(t, os.MkdirAll(tokenDir, 0o700))
	e.conf = e.write("gohsm.conf", []byte(profileConfig(tokenDir, "chsm", profile)))
	gohsm := func(args ...string) result { return e.run(cli, append([]string{"--config", e.conf}, args...)...) }

	// Cluster set-up, as CloudHSM CLI does it: the first officer, then a
	// crypto user created by the officer.
	e.check("gohsm token init + user create", true, func() error {
		if err := ok(gohsm("token", "init", "--label", "chsm", "--pin", soPIN)); err != nil {
			return err
		}
		return ok(gohsm("--pin", soPIN, "user", "create", "--username", "user", "--role", "crypto-user",
			"--password", cloudhsmUserPassword))
	})

	// The PIN is name:password; the session must be R/W to get that far.
	as := func(args ...string) result {
		return e.p11(append([]string{"--login", "--pin", cloudhsmUserPIN, "--session-rw"}, args...)...)
	}
	// refusedWith requires pkcs11-tool's report of function fn failing
	// with rv.
	refusedWith := func(r result, fn, rv string) error {
		want := fmt.Sprintf("%s failed: rv = %s", fn, rv)
		if r.err == nil || !strings.Contains(r.out(), want) {
			return fmt.Errorf("want %q\n%s", want, r)
		}
		return nil
	}

	e.check("-L: one slot, its token present and initialised", false, func() error {
		return ok(e.p11("-L"), "token label        : chsm", "token initialized")
	})

	e.check("login name:password, --session-rw, -O", true, func() error {
		return ok(as("-O"))
	})
	e.check("bare password PIN", false, func() error {
		r := e.p11("--login", "--pin", cloudhsmUserPassword, "--session-rw", "-O")
		if cloud {
			return refusedWith(r, "C_Login", "CKR_PIN_INCORRECT")
		}
		return ok(r) // standard: a bare password names the user "user"
	})
	e.check("R/O session (-O with --login, no --session-rw)", false, func() error {
		r := e.p11("--login", "--pin", cloudhsmUserPIN, "-O")
		if cloud {
			return refusedWith(r, "C_OpenSession", "CKR_FUNCTION_FAILED")
		}
		return ok(r)
	})
	e.check("R/O session (-O without --login)", false, func() error {
		r := e.p11("-O")
		if cloud {
			return refusedWith(r, "C_OpenSession", "CKR_FUNCTION_FAILED")
		}
		return ok(r)
	})

	// Key generation as an SDK 5 user writes it: --private (CKA_PRIVATE
	// true on the public key too), --usage-sign for EC (no CKA_DERIVE on a
	// public key). pkcs11-tool sets CKA_TOKEN and the usage flags itself,
	// so CloudHSM's defaults (session keys, usage flags false) do not apply.
	e.check("keypairgen EC:prime256v1 --usage-sign --private", true, func() error {
		return ok(as("--keypairgen", "--key-type", "EC:prime256v1", "--usage-sign", "--private",
			"--id", "01", "--label", "ec1"), "Key pair generated")
	})
	e.check("keypairgen rsa:2048 --private", true, func() error {
		return ok(as("--keypairgen", "--key-type", "rsa:2048", "--private", "--id", "02", "--label", "rsa1"),
			"Key pair generated")
	})
	e.check("keypairgen EC without --usage-sign (CKA_DERIVE=true on the public key)", false, func() error {
		r := as("--keypairgen", "--key-type", "EC:prime256v1", "--private", "--id", "05", "--label", "ec5")
		if cloud {
			// CKA_DERIVE "must be False for all public keys" (UG:modify-attr).
			return refusedWith(r, "C_GenerateKeyPair", "CKR_ATTRIBUTE_VALUE_INVALID")
		}
		return ok(r, "Key pair generated")
	})
	e.check("keypairgen rsa:1024", false, func() error {
		r := as("--keypairgen", "--key-type", "rsa:1024", "--private", "--id", "04", "--label", "rsa1024")
		if cloud {
			return refusedWith(r, "C_GenerateKeyPair", "CKR_ATTRIBUTE_VALUE_INVALID")
		}
		return ok(r, "Key pair generated")
	})

	e.check("list-objects -O --session-rw", false, func() error {
		r := as("-O")
		if err := ok(r); err != nil {
			return err
		}
		objs := parseObjects(r.stdout)
		for _, w := range []struct{ header, label, id string }{
			{"Private Key Object; EC", "ec1", "01"},
			{"Public Key Object; EC", "ec1", "01"},
			{"Private Key Object; RSA", "rsa1", "02"},
			{"Public Key Object; RSA 2048 bits", "rsa1", "02"},
		} {
			if !hasObject(objs, w.header, w.label, w.id) {
				return fmt.Errorf("no %q label %s id %s\n%s", w.header, w.label, w.id, r)
			}
		}
		return nil
	})

	data := e.write("data", []byte(strings.Repeat("sign me, CloudHSM. ", 100)))
	for _, s := range []struct{ name, id, mech string }{
		{"ECDSA-SHA256", "01", "ECDSA-SHA256"},
		{"SHA256-RSA-PKCS", "02", "SHA256-RSA-PKCS"},
	} {
		sig := e.path("sig." + s.name)
		e.check("sign + verify "+s.name+" --session-rw", false, func() error {
			if err := ok(as("--sign", "--id", s.id, "-m", s.mech, "-i", data, "-o", sig)); err != nil {
				return err
			}
			r := as("--verify", "--id", s.id, "-m", s.mech, "-i", data, "--signature-file", sig)
			if strings.Contains(r.out(), "Invalid signature") {
				return fmt.Errorf("signature rejected\n%s", r)
			}
			return ok(r, "Signature is valid")
		})
		e.check("sign "+s.name+" in a R/O session", false, func() error {
			r := e.p11("--login", "--pin", cloudhsmUserPIN, "--sign", "--id", s.id, "-m", s.mech,
				"-i", data, "-o", e.path("sig.ro"))
			if cloud {
				return refusedWith(r, "C_OpenSession", "CKR_FUNCTION_FAILED")
			}
			return ok(r)
		})
	}

	// RSA-OAEP decryption of what openssl encrypted with the exported
	// public key: OAEP hash and MGF1 hash must match in CloudHSM.
	pub := e.path("rsa1.pub.der")
	e.check("read-object pubkey 02", true, func() error {
		return ok(as("--read-object", "--type", "pubkey", "--id", "02", "-o", pub))
	})
	secret := e.write("secret", []byte("a key to wrap, say"))
	for _, c := range []struct {
		hash, mgf       string // pkcs11-tool names
		sslHash, sslMGF string // openssl names
		match           bool
	}{
		{"SHA256", "MGF1-SHA256", "sha256", "sha256", true},
		{"SHA-1", "MGF1-SHA1", "sha1", "sha1", true},
		{"SHA256", "MGF1-SHA1", "sha256", "sha1", false},
	} {
		name := fmt.Sprintf("decrypt RSA-PKCS-OAEP %s/%s", c.hash, c.mgf)
		e.check(name, false, func() error {
			ct := e.path("oaep." + c.hash + "." + c.mgf)
			if err := ok(e.ssl("pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", pub,
				"-in", secret, "-out", ct, "-pkeyopt", "rsa_padding_mode:oaep",
				"-pkeyopt", "rsa_oaep_md:"+c.sslHash, "-pkeyopt", "rsa_mgf1_md:"+c.sslMGF)); err != nil {
				return err
			}
			out := e.path("oaep.pt")
			r := as("--decrypt", "--id", "02", "-m", "RSA-PKCS-OAEP", "--hash-algorithm", c.hash,
				"--mgf", c.mgf, "-i", ct, "-o", out)
			if cloud && !c.match {
				return refusedWith(r, "C_DecryptInit", "CKR_MECHANISM_PARAM_INVALID")
			}
			if err := ok(r); err != nil {
				return err
			}
			got, err := os.ReadFile(out)
			if err != nil {
				return err
			}
			if want, _ := os.ReadFile(secret); string(got) != string(want) {
				return fmt.Errorf("decrypted %q", got)
			}
			return nil
		})
	}

	// Last: in the standard profile C_InitToken re-initialises the token.
	e.check("--init-token", false, func() error {
		r := e.p11("--init-token", "--label", "again", "--so-pin", soPIN)
		if cloud {
			if err := refusedWith(r, "C_InitToken", "CKR_FUNCTION_NOT_SUPPORTED"); err != nil {
				return err
			}
			return ok(e.p11("-L"), "token label        : chsm")
		}
		return ok(r, "Token successfully initialized")
	})
}
