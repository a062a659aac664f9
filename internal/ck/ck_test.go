package ck

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/testenv"
)

// Values every PKCS #11 client hard-codes (base spec 3.0 section 3, current
// mechanisms spec 3.0); a wrong header would break them all.
func TestWellKnownValues(t *testing.T) {
	assert.EqualValues(t, 0x0, CKR_OK)
	assert.EqualValues(t, 0xa0, CKR_PIN_INCORRECT)
	assert.EqualValues(t, 0x150, CKR_BUFFER_TOO_SMALL)
	assert.EqualValues(t, 0x200, CKR_FUNCTION_REJECTED)
	assert.EqualValues(t, 0x1b8, CKR_PIN_TOO_WEAK)
	assert.EqualValues(t, 0x202, CKR_OPERATION_CANCEL_FAILED)
	assert.EqualValues(t, 0x4, CKA_UNIQUE_ID)
	assert.EqualValues(t, 0x11, CKA_VALUE)
	assert.EqualValues(t, 0x40000211, CKA_WRAP_TEMPLATE)
	assert.EqualValues(t, 0x40000600, CKA_ALLOWED_MECHANISMS)
	assert.EqualValues(t, 0x1087, CKM_AES_GCM)
	assert.EqualValues(t, 0x1057, CKM_EDDSA)
	assert.EqualValues(t, 0x1055, CKM_EC_EDWARDS_KEY_PAIR_GEN)
	assert.EqualValues(t, 0x1056, CKM_EC_MONTGOMERY_KEY_PAIR_GEN)
	assert.EqualValues(t, 0x210b, CKM_AES_KEY_WRAP_KWP)
	assert.EqualValues(t, 0x402a, CKM_HKDF_DERIVE)
	assert.EqualValues(t, 0x3ac, CKM_SP800_108_COUNTER_KDF)
	assert.EqualValues(t, 0x40, CKK_EC_EDWARDS)
	assert.EqualValues(t, 0x41, CKK_EC_MONTGOMERY)
	assert.EqualValues(t, 0x9, CKO_PROFILE)
	assert.EqualValues(t, 2, CKU_CONTEXT_SPECIFIC)
	assert.EqualValues(t, 4, CKS_RW_SO_FUNCTIONS)
	assert.EqualValues(t, 0, CKC_X_509)
	assert.EqualValues(t, ^uint(0), CK_UNAVAILABLE_INFORMATION)

	// PKCS #11 3.2 (base specification 3.2, section 3 and the ML-KEM / ML-DSA
	// mechanism sections).
	assert.EqualValues(t, 0x49, CKK_ML_KEM)
	assert.EqualValues(t, 0x4a, CKK_ML_DSA)
	assert.EqualValues(t, 0x4b, CKK_SLH_DSA)
	assert.EqualValues(t, 0x0f, CKM_ML_KEM_KEY_PAIR_GEN)
	assert.EqualValues(t, 0x17, CKM_ML_KEM)
	assert.EqualValues(t, 0x1c, CKM_ML_DSA_KEY_PAIR_GEN)
	assert.EqualValues(t, 0x1d, CKM_ML_DSA)
	assert.EqualValues(t, 0x1f, CKM_HASH_ML_DSA)
	assert.EqualValues(t, 0x23, CKM_HASH_ML_DSA_SHA224)
	assert.EqualValues(t, 0x24, CKM_HASH_ML_DSA_SHA256)
	assert.EqualValues(t, 0x25, CKM_HASH_ML_DSA_SHA384)
	assert.EqualValues(t, 0x26, CKM_HASH_ML_DSA_SHA512)
	assert.EqualValues(t, 0x27, CKM_HASH_ML_DSA_SHA3_224)
	assert.EqualValues(t, 0x28, CKM_HASH_ML_DSA_SHA3_256)
	assert.EqualValues(t, 0x29, CKM_HASH_ML_DSA_SHA3_384)
	assert.EqualValues(t, 0x2a, CKM_HASH_ML_DSA_SHA3_512)
	assert.EqualValues(t, 0x2b, CKM_HASH_ML_DSA_SHAKE128)
	assert.EqualValues(t, 0x2c, CKM_HASH_ML_DSA_SHAKE256)
	assert.EqualValues(t, 0x61d, CKA_PARAMETER_SET)
	assert.EqualValues(t, 0x62a, CKA_ENCAPSULATE_TEMPLATE)
	assert.EqualValues(t, 0x62b, CKA_DECAPSULATE_TEMPLATE)
	assert.EqualValues(t, 0x633, CKA_ENCAPSULATE)
	assert.EqualValues(t, 0x634, CKA_DECAPSULATE)
	assert.EqualValues(t, 0x637, CKA_SEED)
	assert.EqualValues(t, 0x10000000, CKF_ENCAPSULATE)
	assert.EqualValues(t, 0x20000000, CKF_DECAPSULATE)
	assert.EqualValues(t, 1, CKP_ML_KEM_512)
	assert.EqualValues(t, 2, CKP_ML_KEM_768)
	assert.EqualValues(t, 3, CKP_ML_KEM_1024)
	assert.EqualValues(t, 1, CKP_ML_DSA_44)
	assert.EqualValues(t, 2, CKP_ML_DSA_65)
	assert.EqualValues(t, 3, CKP_ML_DSA_87)
	assert.EqualValues(t, 0, CKH_HEDGE_PREFERRED)
	assert.EqualValues(t, 1, CKH_HEDGE_REQUIRED)
	assert.EqualValues(t, 2, CKH_DETERMINISTIC_REQUIRED)
	assert.EqualValues(t, 0x204, CKR_PENDING)
	assert.EqualValues(t, 0x209, CKR_PARAMETER_SET_NOT_SUPPORTED)
	assert.EqualValues(t, 0xa, CKO_VALIDATION)
	assert.EqualValues(t, 0xb, CKO_TRUST)
	// CKS_LAST_VALIDATION_OK shares CKS_RO_USER_FUNCTIONS's value; the state
	// keeps its name.
	assert.EqualValues(t, 1, CKS_LAST_VALIDATION_OK)
	assert.Equal(t, "CKS_RO_USER_FUNCTIONS", CKS_RO_USER_FUNCTIONS.String())
	assert.Equal(t, "CKM_ML_KEM", CKM_ML_KEM.String())
	assert.Equal(t, "CKK_ML_DSA", CKK_ML_DSA.String())

	// Deprecated aliases keep their values (v3.0 renamed, never renumbered).
	assert.EqualValues(t, CKK_EC, CKK_ECDSA)
	assert.EqualValues(t, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA_KEY_PAIR_GEN)
	assert.EqualValues(t, CKA_EC_PARAMS, CKA_ECDSA_PARAMS)

	// Vendor values (include/gohsm.h): in the vendor range, values as
	// AWS CloudHSM documents them.
	assert.EqualValues(t, 0xc7480001, CKA_GOHSM_OWNER)
	assert.EqualValues(t, 0xc7480002, CKA_GOHSM_SHARED_USERS)
	assert.EqualValues(t, 0x80001087, CKM_CLOUDHSM_AES_GCM)
	assert.EqualValues(t, 0x80002109, CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD)
	assert.EqualValues(t, 0x8000210a, CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD)
	assert.EqualValues(t, 0x8000216f, CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD)
	assert.EqualValues(t, 0x80000001, CKM_CLOUDHSM_SP800_108_COUNTER_KDF)
	// CloudHSM's SP 800-108 data parameter types and DKM methods.
	assert.Equal(t, []ULong{4, 5, 6, 7, 8, 1, 2}, []ULong{CK_CLOUDHSM_PRF_COUNTER_FORMAT, CK_CLOUDHSM_PRF_LABEL,
		CK_CLOUDHSM_PRF_CONTEXT, CK_CLOUDHSM_PRF_DKM_FORMAT, CK_CLOUDHSM_PRF_BYTE_ARRAY,
		CK_CLOUDHSM_DKM_SUM_OF_KEYS, CK_CLOUDHSM_DKM_SUM_OF_SEGMENTS})
}

func TestNames(t *testing.T) {
	assert.Equal(t, "CKR_PIN_INCORRECT", CKR_PIN_INCORRECT.Error())
	assert.Equal(t, "CKR_OK", CKR_OK.String())
	assert.Equal(t, "CKA_WRAP_TEMPLATE", CKA_WRAP_TEMPLATE.String())
	assert.Equal(t, "CKM_AES_GCM", CKM_AES_GCM.String())
	assert.Equal(t, "CKM_CLOUDHSM_AES_GCM", CKM_CLOUDHSM_AES_GCM.String())
	assert.Equal(t, "CKO_SECRET_KEY", CKO_SECRET_KEY.String())
	assert.Equal(t, "CKU_CONTEXT_SPECIFIC", CKU_CONTEXT_SPECIFIC.String())
	assert.Equal(t, "CKS_RW_USER_FUNCTIONS", CKS_RW_USER_FUNCTIONS.String())
	assert.Equal(t, "CKC_X_509", CKC_X_509.String())

	// Where the spec keeps a deprecated alias, String reports the current name.
	assert.Equal(t, "CKK_EC", CKK_ECDSA.String())
	assert.Equal(t, "CKM_EC_KEY_PAIR_GEN", CKM_ECDSA_KEY_PAIR_GEN.String())
	assert.Equal(t, "CKA_EC_PARAMS", CKA_ECDSA_PARAMS.String())
	assert.Equal(t, "CKK_CAST128", CKK_CAST5.String())

	// Unknown values print the family and the number.
	assert.Equal(t, "CKR(0x7ffffff0)", RV(0x7ffffff0).String())
	assert.Equal(t, "CKM(0x8000ffff)", MechanismType(0x8000ffff).String())

	m, ok := MechanismByName("CKM_EDDSA")
	require.True(t, ok)
	assert.Equal(t, CKM_EDDSA, m)
	_, ok = MechanismByName("CKM_NO_SUCH_THING")
	assert.False(t, ok)

	r, ok := RVByName("CKR_DEVICE_ERROR")
	require.True(t, ok)
	assert.Equal(t, CKR_DEVICE_ERROR, r)
	_, ok = RVByName("CKR_NO_SUCH_THING")
	assert.False(t, ok)
}

// Every entry of every value->name table names a constant of its own family
// and maps back to its value.
func TestNameTablesRoundTrip(t *testing.T) {
	check := func(family string, n int, each func(func(v uint, name, str string))) {
		t.Helper()
		assert.NotZero(t, n, family)
		each(func(v uint, name, str string) {
			assert.True(t, strings.HasPrefix(name, family+"_"), "%s in %s table", name, family)
			assert.Equal(t, name, str, "%s(0x%x)", family, v)
		})
	}
	check("CKR", len(rvNames()), func(f func(uint, string, string)) {
		for v, n := range rvNames() {
			f(uint(v), n, v.String())
		}
	})
	check("CKA", len(attributeTypeNames()), func(f func(uint, string, string)) {
		for v, n := range attributeTypeNames() {
			f(uint(v), n, v.String())
		}
	})
	check("CKM", len(mechanismTypeNames()), func(f func(uint, string, string)) {
		for v, n := range mechanismTypeNames() {
			f(uint(v), n, v.String())
			got, ok := MechanismByName(n)
			assert.True(t, ok, n)
			assert.Equal(t, v, got, n)
		}
	})
	check("CKO", len(objectClassNames()), func(f func(uint, string, string)) {
		for v, n := range objectClassNames() {
			f(uint(v), n, v.String())
		}
	})
	check("CKK", len(keyTypeNames()), func(f func(uint, string, string)) {
		for v, n := range keyTypeNames() {
			f(uint(v), n, v.String())
		}
	})
	check("CKU", len(userTypeNames()), func(f func(uint, string, string)) {
		for v, n := range userTypeNames() {
			f(uint(v), n, v.String())
		}
	})
	check("CKS", len(stateNames()), func(f func(uint, string, string)) {
		for v, n := range stateNames() {
			f(uint(v), n, v.String())
		}
	})
	check("CKC", len(certificateTypeNames()), func(f func(uint, string, string)) {
		for v, n := range certificateTypeNames() {
			f(uint(v), n, v.String())
		}
	})
}

// RV is an error: wrapped with context it is still found by errors.Is/As,
// which is how the C boundary recovers the return value.
func TestRVWrapping(t *testing.T) {
	err := fmt.Errorf("aes-gcm: tag %d bits: %w", 33, CKR_MECHANISM_PARAM_INVALID)
	assert.ErrorIs(t, err, CKR_MECHANISM_PARAM_INVALID)
	assert.NotErrorIs(t, err, CKR_ARGUMENTS_BAD)
	var rv RV
	require.ErrorAs(t, err, &rv)
	assert.Equal(t, CKR_MECHANISM_PARAM_INVALID, rv)
	assert.Equal(t, "aes-gcm: tag 33 bits: CKR_MECHANISM_PARAM_INVALID", err.Error())
}

// zconst.go must be exactly what the generator makes from include/ now: run
// the //go:generate command of ck.go with the output sent to a temp file.
func TestGeneratedFileUpToDate(t *testing.T) {
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the go tool is needed to regenerate zconst.go")

	src, err := os.ReadFile("ck.go")
	require.NoError(t, err)
	var args []string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate go "); ok {
			args = strings.Fields(rest)
		}
	}
	require.NotEmpty(t, args, "ck.go has no //go:generate go ... line")
	out := filepath.Join(t.TempDir(), "zconst.go")
	replaced := false
	for i := range args {
		if args[i] == "-o" && i+1 < len(args) {
			args[i+1] = out
			replaced = true
		}
	}
	require.True(t, replaced, "the go:generate line has no -o flag: %q", args)

	cmd := exec.Command(goTool, args...)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run(), "go %s", strings.Join(args, " "))

	want, err := os.ReadFile(out)
	require.NoError(t, err)
	have, err := os.ReadFile("zconst.go")
	require.NoError(t, err)
	if !bytes.Equal(want, have) {
		t.Fatal("zconst.go is stale: run `go generate ./internal/ck` after changing include/")
	}
}

// The C headers compile and have the LP64 ABI clients expect
// (tests/c/headers_check.c holds the _Static_asserts).
func TestHeadersCompile(t *testing.T) {
	name := os.Getenv("CC")
	if name == "" {
		name = "gcc"
	}
	cc, err := exec.LookPath(name)
	if err != nil {
		// CI has a compiler (tests/deps.sh): there a missing one fails.
		testenv.Missing(t, "C compiler %q not found: the header ABI check needs one: %v", name, err)
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	cmd := exec.Command(cc, "-Wall", "-Werror", "-std=c11",
		"-I"+filepath.Join(root, "include"),
		"-c", filepath.Join(root, "tests", "c", "headers_check.c"),
		"-o", os.DevNull)
	outb, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", outb)
}

func TestErrorIsComparable(t *testing.T) {
	// errors.Is compares RVs with ==; distinct codes must not match.
	assert.False(t, errors.Is(CKR_PIN_INCORRECT, CKR_PIN_INVALID))
	assert.True(t, errors.Is(CKR_PIN_INCORRECT, CKR_PIN_INCORRECT))
}
