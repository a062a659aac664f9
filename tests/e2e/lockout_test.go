package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func init() { roles["login-at-signal"] = helperLoginAtSignal }

// helperLoginAtSignal opens a session, prints "ready", waits for a line on
// stdin, logs in as $GOHSM_E2E_PIN's crypto user and prints the CK_RV (0
// for success) as a number.
func helperLoginAtSignal([]string) error {
	lib := os.Getenv("GOHSM_LIB")
	p := pkcs11.New(lib)
	if p == nil {
		return fmt.Errorf("dlopen %s failed", lib)
	}
	if err := p.Initialize(); err != nil {
		return fmt.Errorf("C_Initialize: %w", err)
	}
	s, err := p.OpenSession(0, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("C_OpenSession: %w", err)
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	var rv uint
	var e pkcs11.Error
	if err := p.Login(s, pkcs11.CKU_USER, os.Getenv(pinEnv)); errors.As(err, &e) {
		rv = uint(e)
	} else if err != nil {
		return err
	}
	fmt.Println(rv)
	return nil
}

// TestParallelWrongLoginsThroughABI: twelve processes, each with the
// library loaded and a session open, call C_Login with a wrong password at
// the same moment against lockout_threshold 5. Exactly 5 get
// CKR_PIN_INCORRECT and 7 CKR_PIN_LOCKED, and the right password is then
// refused. Before, every process read the user unlocked and had its guess
// checked (12 CKR_PIN_INCORRECT).
func TestParallelWrongLoginsThroughABI(t *testing.T) {
	// argon2id costly enough (tens of ms) that every process reads the
	// user before the first failure lands, as the default cost does.
	tk := newToken(t, "kdf_time = 2", "kdf_memory = 16384")
	tk.initToken()
	const procs = 12
	var hs []*helper
	for range procs {
		hs = append(hs, tk.start("login-at-signal", "alice:wrong-password"))
	}
	for _, h := range hs {
		h.expect(t, "ready", 60*time.Second)
	}
	for _, h := range hs {
		fmt.Fprintln(h.stdin, "go")
	}
	got := map[string]int{}
	for _, h := range hs {
		out := h.wait(t)
		require.Len(t, out, 1)
		got[out[0]]++
	}
	t.Logf("answers: %v", got)
	assert.Equal(t, map[string]int{
		fmt.Sprint(pkcs11.CKR_PIN_INCORRECT): 5,
		fmt.Sprint(pkcs11.CKR_PIN_LOCKED):    procs - 5,
	}, got)
	s := tk.session()
	requireRV(t, tk.p.Login(s, pkcs11.CKU_USER, userPIN), pkcs11.CKR_PIN_LOCKED)
}

// TestUserLoginBeforeInitPINThroughABI: on a token with only its officer,
// C_Login(CKU_USER) answers CKR_USER_PIN_NOT_INITIALIZED, and
// C_GetTokenInfo lacks CKF_USER_PIN_INITIALIZED; after C_InitPIN the user
// logs in. Before, the login answered CKR_PIN_INCORRECT.
func TestUserLoginBeforeInitPINThroughABI(t *testing.T) {
	tk := newToken(t)
	require.NoError(t, tk.p.InitToken(tk.slot, soPIN, tokenName))
	s := tk.session()
	requireRV(t, tk.p.Login(s, pkcs11.CKU_USER, userPIN), pkcs11.CKR_USER_PIN_NOT_INITIALIZED)
	requireRV(t, tk.p.Login(s, pkcs11.CKU_USER, "some-pin"), pkcs11.CKR_USER_PIN_NOT_INITIALIZED)
	assert.Zero(t, tk.tokenFlags()&pkcs11.CKF_USER_PIN_INITIALIZED)
	tk.initPIN(userPIN)
	require.NoError(t, tk.p.Login(s, pkcs11.CKU_USER, userPIN))
}
