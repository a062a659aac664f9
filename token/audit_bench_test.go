package token

import (
	"testing"

	"gohsm/internal/ck"
)

// What the audit log costs outside crypto calls (docs/audit.md has the
// numbers): opening and closing the module (C_Initialize, C_Finalize:
// no write), a login and logout (their records ride in the login's own
// transactions, plus the opening's reboot counter once), a session key
// generated and destroyed (two records, each its own transaction: the
// store holds no session key).

func BenchmarkModuleOpenClose(b *testing.B) {
	_, dir := newToken(b)
	cfg := testConfig(b, dir)
	for b.Loop() {
		m, err := Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		h, err := m.OpenSession(3, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.CloseSession(h); err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

func BenchmarkLoginLogout(b *testing.B) {
	m, _ := newToken(b)
	h := openRW(b, m)
	for b.Loop() {
		if err := m.Login(h, ck.CKU_USER, []byte(userPIN)); err != nil {
			b.Fatal(err)
		}
		if err := m.Logout(h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSessionKeyAES(b *testing.B) {
	m, _ := newToken(b)
	h := openRW(b, m)
	if err := m.Login(h, ck.CKU_USER, []byte(userPIN)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		k, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("s", false))
		if err != nil {
			b.Fatal(err)
		}
		if err := m.DestroyObject(h, k); err != nil {
			b.Fatal(err)
		}
	}
}
