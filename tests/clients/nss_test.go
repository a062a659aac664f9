package clients

// NSS (Firefox's, Thunderbird's and many servers' crypto library) against
// libgohsm.so with its own tools: modutil registers the module in an NSS
// database, certutil lists the token's certificates and keys, generates EC
// and RSA key pairs on the token with self-signed certificates (signed by
// the token keys) and validates them; openssl checks those signatures.
//
// NSS calls C_Initialize with flags CKF_OS_LOCKING_OK |
// CKF_LIBRARY_CANT_CREATE_OS_THREADS and mutex callbacks.

import (
	"encoding/json"
	"encoding/pem"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// nssTimeout bounds one NSS tool run (each takes well under a second).
const nssTimeout = time.Minute

func TestNSS(t *testing.T) {
	certutil := needTool(t, "certutil", "libnss3-tools")
	modutil := needTool(t, "modutil", "libnss3-tools")
	openssl := needTool(t, "openssl", "openssl")
	h := newHSM(t, "nss")
	tok := h.Label

	dbDir := h.Path("nssdb")
	require.NoError(t, os.Mkdir(dbDir, 0o700))
	db := "sql:" + dbDir
	pwFile := h.Path("pin.txt")
	require.NoError(t, os.WriteFile(pwFile, []byte(userPIN+"\n"), 0o600))
	badPwFile := h.Path("bad-pin.txt")
	require.NoError(t, os.WriteFile(badPwFile, []byte("user:wrongpassword\n"), 0o600))
	noise := h.Path("noise")
	require.NoError(t, os.WriteFile(noise, []byte(time.Now().String()+"gohsm nss test noise"), 0o600))

	certutilRun := func(t *testing.T, args ...string) string {
		t.Helper()
		return mustRun(t, nssTimeout, h.Env, certutil, append([]string{"-d", db}, args...)...)
	}

	ok := check(t, "nss/certutil-N", func(t *testing.T) {
		certutilRun(t, "-N", "--empty-password")
	})
	ok = ok && check(t, "nss/modutil-add", func(t *testing.T) {
		out := mustRun(t, nssTimeout, h.Env, modutil, "-dbdir", db, "-add", "gohsm", "-libfile", h.Lib, "-force")
		require.Contains(t, out, `Module "gohsm" added to database.`, out)
	})
	require.True(t, ok, "nss: database setup failed")

	check(t, "nss/modutil-list", func(t *testing.T) {
		out := mustRun(t, nssTimeout, h.Env, modutil, "-dbdir", db, "-list")
		require.Regexp(t, `(?m)^\s*2\. gohsm$`, out)
		require.Contains(t, out, "library name: "+h.Lib, out)
		require.Regexp(t, `(?m)^\s*token: `+regexp.QuoteMeta(tok)+`$`, out)
		require.Regexp(t, `(?m)^\s*uri: pkcs11:token=`+regexp.QuoteMeta(tok)+`;manufacturer=gohsm;`, out)
	})
	check(t, "nss/certutil-L-empty", func(t *testing.T) {
		out := certutilRun(t, "-L", "-h", tok, "-f", pwFile)
		require.NotContains(t, out, tok+":", out)
	})

	// Key pairs and self-signed certificates generated on the token.
	for _, k := range []struct {
		name, nick string
		args       []string
	}{
		{"ec", "nss-ec", []string{"-k", "ec", "-q", "nistp256"}},
		{"rsa", "nss-rsa", []string{"-k", "rsa", "-g", "2048"}},
	} {
		check(t, "nss/certutil-S-"+k.name, func(t *testing.T) {
			args := append([]string{"-S", "-h", tok, "-n", k.nick, "-s", "CN=" + k.nick, "-x",
				"-t", "CT,,", "-v", "12", "-z", noise, "-f", pwFile}, k.args...)
			certutilRun(t, args...)
		})
	}
	check(t, "nss/certutil-L", func(t *testing.T) {
		out := certutilRun(t, "-L", "-h", tok, "-f", pwFile)
		for _, nick := range []string{"nss-ec", "nss-rsa"} {
			require.Regexp(t, `(?m)^`+regexp.QuoteMeta(tok+":"+nick)+`\s+\S+`, out)
		}
	})
	check(t, "nss/certutil-K", func(t *testing.T) {
		out := certutilRun(t, "-K", "-h", tok, "-f", pwFile)
		require.Contains(t, out, `Checking token "`+tok+`"`, out)
		require.Regexp(t, `(?m)^<\s*\d+>\s+ec\s+[0-9a-f]+\s+`+regexp.QuoteMeta(tok+":nss-ec")+`$`, out)
		require.Regexp(t, `(?m)^<\s*\d+>\s+rsa\s+[0-9a-f]+\s+`+regexp.QuoteMeta(tok+":nss-rsa")+`$`, out)
	})
	check(t, "nss/keys-on-token", func(t *testing.T) {
		// The private keys are token objects of the crypto user, seen by
		// the gohsm CLI (not copies in NSS's own database).
		out := h.gohsm(t, "--pin", userPIN, "--json", "key", "list")
		var list struct {
			Data struct {
				Keys []struct {
					Class   string `json:"class"`
					KeyType string `json:"key_type"`
					Owner   string `json:"owner"`
					Token   bool   `json:"token"`
					Private bool   `json:"private"`
				} `json:"matched_keys"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &list), out)
		types := map[string]int{}
		for _, k := range list.Data.Keys {
			if k.Class == "private-key" {
				require.True(t, k.Token && k.Private, "%+v", k)
				require.Equal(t, "user", k.Owner, "%+v", k)
				types[k.KeyType]++
			}
		}
		require.Equal(t, map[string]int{"ec": 1, "rsa": 1}, types, out)
	})
	check(t, "nss/certutil-K-wrong-pin", func(t *testing.T) {
		out, err := run(t, nssTimeout, h.Env, certutil, "-d", db, "-K", "-h", tok, "-f", badPwFile)
		require.Error(t, err, "certutil accepted a wrong PIN")
		require.Contains(t, out, "SEC_ERROR_BAD_PASSWORD", out)
	})

	// NSS logs in before it looks for certificates on a token that needs a
	// login unless the slot is flagged publicCerts ("FRIENDLY"), and
	// certutil -V does not pass -f to that login: flag it, as one would for
	// any HSM whose certificates are public objects.
	ok = check(t, "nss/modutil-publiccerts", func(t *testing.T) {
		out := mustRun(t, nssTimeout, h.Env, modutil, "-dbdir", db, "-default", "gohsm", "-mechanisms", "FRIENDLY", "-force")
		require.Contains(t, out, "Successfully changed defaults", out)
	})
	for _, nick := range []string{"nss-ec", "nss-rsa"} {
		check(t, "nss/certutil-V-"+nick, func(t *testing.T) {
			require.True(t, ok, "needs nss/modutil-publiccerts")
			out := certutilRun(t, "-V", "-u", "C", "-n", tok+":"+nick, "-f", pwFile)
			require.Contains(t, out, "certificate is valid", out)
		})
		check(t, "nss/openssl-verify-"+nick, func(t *testing.T) {
			// The self-signature was made by the token key: openssl checks
			// it (-check_ss_sig), and a flipped signature bit fails.
			out := certutilRun(t, "-L", "-n", tok+":"+nick, "-a")
			blk, _ := pem.Decode([]byte(out))
			require.NotNil(t, blk, out)
			good := h.Path(nick + ".pem")
			require.NoError(t, os.WriteFile(good, pem.EncodeToMemory(blk), 0o600))
			vout := mustRun(t, nssTimeout, nil, openssl, "verify", "-check_ss_sig", "-CAfile", good, good)
			require.Contains(t, vout, good+": OK", vout)
			blk.Bytes[len(blk.Bytes)-1] ^= 0x01
			bad := h.Path(nick + "-tampered.pem")
			require.NoError(t, os.WriteFile(bad, pem.EncodeToMemory(blk), 0o600))
			_, err := run(t, nssTimeout, nil, openssl, "verify", "-check_ss_sig", "-CAfile", bad, bad)
			require.Error(t, err, "openssl accepts a tampered self-signature")
		})
	}
}
