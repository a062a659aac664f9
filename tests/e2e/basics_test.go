package e2e

import (
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBasics(t *testing.T) {
	tk := newToken(t)
	p := tk.p

	info, err := p.GetInfo()
	require.NoError(t, err, "C_GetInfo")
	assert.Equal(t, "gohsm", strings.TrimRight(info.ManufacturerID, " "))
	// miekg/pkcs11 uses C_GetFunctionList, whose list reports 2.40
	// (C_GetInterface gives the 3.2 one by default).
	assert.Equal(t, pkcs11.Version{Major: 2, Minor: 40}, info.CryptokiVersion, "Cryptoki version through the 2.40 function list")
	assert.NotEmpty(t, strings.TrimSpace(info.LibraryDescription))

	si, err := p.GetSlotInfo(tk.slot)
	require.NoError(t, err, "C_GetSlotInfo")
	assert.NotZero(t, si.Flags&pkcs11.CKF_TOKEN_PRESENT, "CKF_TOKEN_PRESENT")
	_, err = p.GetSlotInfo(99)
	requireRV(t, err, pkcs11.CKR_SLOT_ID_INVALID)

	ti, err := p.GetTokenInfo(tk.slot)
	require.NoError(t, err, "C_GetTokenInfo")
	assert.Zero(t, ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED, "fresh token must not be initialised")
	_, err = p.OpenSession(tk.slot, pkcs11.CKF_SERIAL_SESSION)
	requireRV(t, err, pkcs11.CKR_TOKEN_NOT_RECOGNIZED)

	require.NoError(t, p.InitToken(tk.slot, soPIN, "basics token"), "C_InitToken")
	ti, err = p.GetTokenInfo(tk.slot)
	require.NoError(t, err)
	assert.NotZero(t, ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED, "CKF_TOKEN_INITIALIZED after C_InitToken")
	assert.NotZero(t, ti.Flags&pkcs11.CKF_LOGIN_REQUIRED, "CKF_LOGIN_REQUIRED")
	assert.NotZero(t, ti.Flags&pkcs11.CKF_RNG, "CKF_RNG")
	assert.Zero(t, ti.Flags&pkcs11.CKF_USER_PIN_INITIALIZED, "no crypto user yet")
	assert.Equal(t, "basics token", strings.TrimRight(ti.Label, " "))
	tk.initPIN(userPIN)
	ti, err = p.GetTokenInfo(tk.slot)
	require.NoError(t, err)
	assert.NotZero(t, ti.Flags&pkcs11.CKF_USER_PIN_INITIALIZED, "CKF_USER_PIN_INITIALIZED after C_InitPIN")

	mechs, err := p.GetMechanismList(tk.slot)
	require.NoError(t, err, "C_GetMechanismList")
	have := map[uint]bool{}
	for _, m := range mechs {
		have[m.Mechanism] = true
	}
	type row struct {
		name     string
		mech     uint
		flags    uint
		min, max uint // 0: not checked
	}
	const (
		sv  = pkcs11.CKF_SIGN | pkcs11.CKF_VERIFY
		ed  = pkcs11.CKF_ENCRYPT | pkcs11.CKF_DECRYPT
		ecF = pkcs11.CKF_EC_F_P | pkcs11.CKF_EC_NAMEDCURVE | pkcs11.CKF_EC_UNCOMPRESS
	)
	rows := []row{
		{"CKM_EC_KEY_PAIR_GEN", pkcs11.CKM_EC_KEY_PAIR_GEN, pkcs11.CKF_GENERATE_KEY_PAIR | ecF, 224, 521},
		{"CKM_ECDSA", pkcs11.CKM_ECDSA, sv | ecF, 224, 521},
		{"CKM_ECDSA_SHA256", pkcs11.CKM_ECDSA_SHA256, sv | ecF, 224, 521},
		{"CKM_RSA_PKCS_KEY_PAIR_GEN", pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, pkcs11.CKF_GENERATE_KEY_PAIR, 0, 4096},
		{"CKM_RSA_PKCS", pkcs11.CKM_RSA_PKCS, sv | ed, 0, 4096},
		{"CKM_SHA256_RSA_PKCS", pkcs11.CKM_SHA256_RSA_PKCS, sv, 0, 4096},
		{"CKM_SHA256_RSA_PKCS_PSS", pkcs11.CKM_SHA256_RSA_PKCS_PSS, sv, 0, 4096},
		{"CKM_AES_KEY_GEN", pkcs11.CKM_AES_KEY_GEN, pkcs11.CKF_GENERATE, 16, 32},
		{"CKM_AES_GCM", pkcs11.CKM_AES_GCM, ed, 16, 32},
		{"CKM_SHA256", pkcs11.CKM_SHA256, pkcs11.CKF_DIGEST, 0, 0},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			require.True(t, have[r.mech], "C_GetMechanismList lacks %s", r.name)
			mi, err := p.GetMechanismInfo(tk.slot, []*pkcs11.Mechanism{pkcs11.NewMechanism(r.mech, nil)})
			require.NoError(t, err, "C_GetMechanismInfo")
			assert.NotZero(t, mi.Flags&pkcs11.CKF_HW, "CKF_HW")
			assert.Equal(t, r.flags, mi.Flags&r.flags, "flags 0x%x lack some of 0x%x", mi.Flags, r.flags)
			if r.min != 0 {
				assert.Equal(t, r.min, mi.MinKeySize, "ulMinKeySize")
			}
			if r.max != 0 {
				assert.Equal(t, r.max, mi.MaxKeySize, "ulMaxKeySize")
			}
			if r.min == 0 && r.max == 4096 { // RSA: 2048 must be in range
				assert.LessOrEqual(t, mi.MinKeySize, uint(2048), "RSA ulMinKeySize")
				assert.Positive(t, mi.MinKeySize, "RSA ulMinKeySize")
			}
			// Operations the row does not name must not be claimed.
			if r.flags&sv == 0 {
				assert.Zero(t, mi.Flags&sv, "sign/verify claimed by %s", r.name)
			}
			if r.flags&ed == 0 {
				assert.Zero(t, mi.Flags&ed, "encrypt/decrypt claimed by %s", r.name)
			}
		})
	}
	_, err = p.GetMechanismInfo(tk.slot, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_VENDOR_DEFINED|0x7fff, nil)})
	requireRV(t, err, pkcs11.CKR_MECHANISM_INVALID)
}
