package abi_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gohsm/internal/testenv"
)

// TestCloudHSMVendorMechanisms: AWS CloudHSM's vendor mechanisms through
// the built library, once per profile (they are the same in both: an SDK 5
// application finds them wherever it runs). testdata/abi_cloudhsm_vendor.c
// calls them as an SDK 5 application does and checks the error codes;
// its outputs are then recomputed here:
//
//   - CKM_CLOUDHSM_AES_GCM: IV || ciphertext || tag, where ciphertext ||
//     tag is crypto/cipher's GCM with the IV the token chose (behaviour 17);
//   - the AES key wraps: OpenSSL's id-aes256-wrap (RFC 3394; PKCS5_PAD is
//     it over the PKCS #5-padded key) and id-aes256-wrap-pad (RFC 5649)
//     give the same bytes (behaviour 21);
//   - CKM_CLOUDHSM_SP800_108_COUNTER_KDF: the derived AES keys (seen
//     through AES-ECB of a zero block) are SP 800-108 counter mode computed
//     here with crypto/hmac and an RFC 4493 CMAC, over the inputs AWS's
//     hmac_kdf.c and aes_cmac_kdf.c samples document (behaviour 24).
//
// The users come from the gohsm CLI (token init, user create), as a
// cloudhsm token is set up.
func TestCloudHSMVendorMechanisms(t *testing.T) {
	t.Parallel()
	for _, profile := range []string{"standard", "cloudhsm"} {
		t.Run(profile, func(t *testing.T) {
			t.Parallel()
			out := runVendorDriver(t, profile)
			checkVendorValues(t, profile, out)
		})
	}
}

const (
	vendorOfficer = "admin:adminpass1"
	vendorUser    = "cu"
	vendorUserPW  = "cupassword1"
)

// runVendorDriver sets up a token with a crypto user through the CLI under
// the given profile and runs the driver as that user; it returns the
// driver's "VAL name hex" values.
func runVendorDriver(t *testing.T, profile string) map[string][]byte {
	t.Helper()
	lib, cli := library(t), testenv.CLI(t)
	dir := t.TempDir()
	bin := buildDriver(t, "abi_cloudhsm_vendor", dir)
	tokenDir := filepath.Join(dir, "token")
	if err := os.MkdirAll(tokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "gohsm.conf")
	cfg := tokenConfig(tokenDir) + "profile = " + profile + "\n"
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOHSM_CONF="+conf, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	for _, args := range [][]string{
		{"--config", conf, "--pin", vendorOfficer, "token", "init", "--label", "vendor", "--yes"},
		{"--config", conf, "--pin", vendorOfficer, "user", "create", "--username", vendorUser, "--role", "crypto-user",
			"--password", vendorUserPW},
	} {
		cmd := exec.Command(cli, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gohsm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	out := execDriver(t, "abi_cloudhsm_vendor", bin, dir, env, time.Minute, lib, vendorUser+":"+vendorUserPW)
	vals := map[string][]byte{}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "INFO "):
			// INFO 0x<mech> flags 0x<flags> min <n> max <n>
			vals[strings.Fields(line)[1]] = []byte(strings.Join(strings.Fields(line)[2:], " "))
		case strings.HasPrefix(line, "VAL "):
			f := strings.Fields(line)
			if len(f) != 3 {
				t.Fatalf("bad line %q", line)
			}
			v, err := hex.DecodeString(f[2])
			if err != nil {
				t.Fatalf("bad line %q: %v", line, err)
			}
			vals[f[1]] = v
		}
	}
	return vals
}

// The driver's key values (abi_cloudhsm_vendor.c): the RFC 3394 4.6 KEK,
// which is also the GCM key and the KDF base key, its key data, and the
// 20-byte generic secret d0..e3.
var (
	vendorKEK    = seq(0x00, 32)
	vendorTarget = append(append([]byte{}, mustHex("00112233445566778899aabbccddeeff")...), seq(0x00, 16)...)
	vendorOdd    = seq(0xd0, 20)
)

func seq(from byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = from + byte(i)
	}
	return b
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func checkVendorValues(t *testing.T, profile string, vals map[string][]byte) {
	t.Helper()
	get := func(name string) []byte {
		t.Helper()
		v, ok := vals[name]
		if !ok {
			t.Fatalf("the driver printed no value %q", name)
		}
		return v
	}

	// C_GetMechanismInfo: GCM encrypts, decrypts, wraps and unwraps; the
	// key wraps only wrap and unwrap (as CloudHSM lists them); the KDF
	// derives. CKF_HW on all; AES keys of 16..32 bytes; the KDF's base key
	// sizes in bits, like the v3.0 SP 800-108 row: in cloudhsm at most
	// 6400, the profile's largest base key (generic secrets of up to 800
	// bytes, docs/cloudhsm.md "Key limits and quotas").
	kdfMax := map[string]int{"standard": 8192, "cloudhsm": 6400}[profile]
	for mech, want := range map[string]string{
		"0x80001087": "flags 0x60301 min 16 max 32",
		"0x80002109": "flags 0x60001 min 16 max 32",
		"0x8000210a": "flags 0x60001 min 16 max 32",
		"0x8000216f": "flags 0x60001 min 16 max 32",
		"0x80000001": fmt.Sprintf("flags 0x80001 min 8 max %d", kdfMax),
	} {
		if got := string(get(mech)); got != want {
			t.Errorf("C_GetMechanismInfo %s: %s, want %s", mech, got, want)
		}
	}

	// CKM_CLOUDHSM_AES_GCM: IV || crypto/cipher's ciphertext || tag.
	block, err := aes.NewCipher(vendorKEK)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	pt, aad := []byte("CloudHSM vendor GCM: IV || ciphertext || tag"), []byte("additional data")
	for _, name := range []string{"gcm-1", "gcm-2"} {
		out := get(name)
		if len(out) != 12+len(pt)+16 {
			t.Fatalf("%s: %d bytes", name, len(out))
		}
		if want := aead.Seal(nil, out[:12], pt, aad); !bytes.Equal(want, out[12:]) {
			t.Errorf("%s: not crypto/cipher's GCM with the IV it carries:\n got %x\nwant %x", name, out[12:], want)
		}
	}
	if w := get("gcm-wrap"); len(w) != 60 {
		t.Errorf("gcm-wrap: %d bytes", len(w))
	} else if key, err := aead.Open(nil, w[:12], w[12:], aad); err != nil || !bytes.Equal(key, vendorTarget) {
		t.Errorf("gcm-wrap: crypto/cipher opens it to %x (%v), want the target key", key, err)
	}

	// The AES key wraps against OpenSSL.
	pad := func(k []byte) []byte {
		n := 8 - len(k)%8
		return append(append([]byte{}, k...), bytes.Repeat([]byte{byte(n)}, n)...)
	}
	for _, c := range []struct {
		name, cipher, iv string
		in               []byte
	}{
		{"kw-NO_PAD-32", "id-aes256-wrap", "A6A6A6A6A6A6A6A6", vendorTarget},
		{"kw-PKCS5_PAD-32", "id-aes256-wrap", "A6A6A6A6A6A6A6A6", pad(vendorTarget)},
		{"kw-PKCS5_PAD-20", "id-aes256-wrap", "A6A6A6A6A6A6A6A6", pad(vendorOdd)},
		{"kw-ZERO_PAD-32", "id-aes256-wrap-pad", "A65959A6", vendorTarget},
		{"kw-ZERO_PAD-20", "id-aes256-wrap-pad", "A65959A6", vendorOdd},
	} {
		want, ok := opensslWrap(t, c.cipher, c.iv, c.in)
		if !ok {
			break
		}
		if got := get(c.name); !bytes.Equal(want, got) {
			t.Errorf("%s: openssl enc -%s gives\n%x, the token\n%x", c.name, c.cipher, want, got)
		}
	}

	// The KDF against SP 800-108 counter mode computed here.
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	label, context := mustHex("01abe1"), mustHex("0c097e07")
	for _, c := range []struct {
		name  string
		prf   func(msg []byte) []byte
		input func(i uint32) []byte
	}{
		{"kdf-label-sha512", hmacPRF(sha512.New, vendorKEK), func(i uint32) []byte {
			return cat(u32(i), label, []byte{0}, context, u32(256))
		}},
		{"kdf-ordered-cmac", cmacPRF(vendorKEK), func(i uint32) []byte {
			return cat(label, u32(i), context, u32(256))
		}},
		{"kdf-ordered-sha256-ctr16", hmacPRF(sha256.New, vendorKEK), func(i uint32) []byte {
			return cat(label, u32(i)[2:], context, u32(256))
		}},
	} {
		var k []byte
		for i := uint32(1); len(k) < 32; i++ {
			k = append(k, c.prf(c.input(i))...)
		}
		b, err := aes.NewCipher(k[:32])
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 16)
		b.Encrypt(want, want)
		if got := get(c.name); !bytes.Equal(want, got) {
			t.Errorf("%s: the derived key is not SP 800-108's: AES-ECB(0) %x, want %x", c.name, got, want)
		}
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func hmacPRF(h func() hash.Hash, key []byte) func([]byte) []byte {
	return func(msg []byte) []byte {
		m := hmac.New(h, key)
		m.Write(msg)
		return m.Sum(nil)
	}
}

// cmacPRF is AES-CMAC (RFC 4493, NIST SP 800-38B), written here so that the
// check does not use the code it checks.
func cmacPRF(key []byte) func([]byte) []byte {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	dbl := func(x []byte) []byte {
		out := make([]byte, 16)
		carry := byte(0)
		for i := 15; i >= 0; i-- {
			out[i] = x[i]<<1 | carry
			carry = x[i] >> 7
		}
		if carry != 0 {
			out[15] ^= 0x87
		}
		return out
	}
	l := make([]byte, 16)
	b.Encrypt(l, l)
	k1 := dbl(l)
	k2 := dbl(k1)
	return func(msg []byte) []byte {
		n := (len(msg) + 15) / 16
		last := make([]byte, 16)
		if n > 0 && len(msg)%16 == 0 {
			copy(last, msg[16*(n-1):])
			for i := range last {
				last[i] ^= k1[i]
			}
		} else {
			if n == 0 {
				n = 1
			}
			rest := msg[16*(n-1):]
			copy(last, rest)
			last[len(rest)] = 0x80
			for i := range last {
				last[i] ^= k2[i]
			}
		}
		x := make([]byte, 16)
		for i := 0; i < n-1; i++ {
			for j := range x {
				x[j] ^= msg[16*i+j]
			}
			b.Encrypt(x, x)
		}
		for j := range x {
			x[j] ^= last[j]
		}
		b.Encrypt(x, x)
		return x
	}
}

// opensslWrap runs openssl enc with a wrap cipher under the driver's KEK;
// without openssl the test fails under CI and is skipped otherwise.
func opensslWrap(t *testing.T, cipherName, iv string, in []byte) ([]byte, bool) {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		missing(t, "openssl not found: %v", err)
		return nil, false
	}
	cmd := exec.Command(openssl, "enc", "-"+cipherName, "-K", hex.EncodeToString(vendorKEK), "-iv", iv)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl enc -%s: %v", cipherName, err)
	}
	return out, true
}
