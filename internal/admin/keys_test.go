package admin

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

func TestLoginRule(t *testing.T) {
	k := newTok(t, "")
	m, h := k.module()
	for _, c := range []struct {
		pin  string
		want Need
		ut   ck.UserType
		err  ck.RV
	}{
		{coPIN, NeedAny, ck.CKU_SO, 0},
		{alicePIN, NeedAny, ck.CKU_USER, 0},
		{"ALICE:x", NeedAny, ck.CKU_USER, 0}, // names fold
		{"nobody:x", NeedAny, ck.CKU_SO, 0},  // the token refuses it at login
		{"pw", NeedCU, ck.CKU_USER, 0},       // a bare password: the role's default user
		{"pw", NeedCO, ck.CKU_SO, 0},
		{alicePIN, NeedCO, 0, ck.CKR_USER_NOT_LOGGED_IN},
		{coPIN, NeedCU, 0, ck.CKR_USER_NOT_LOGGED_IN},
	} {
		ut, err := UserType(m, h, []byte(c.pin), c.want)
		if c.err != 0 {
			require.ErrorIs(t, err, c.err, c.pin)
			continue
		}
		require.NoError(t, err, c.pin)
		assert.Equal(t, c.ut, ut, c.pin)
	}
	// A wrong password is the token's CKR_PIN_INCORRECT.
	_, err := Login(m, h, []byte("alice:wrong"), NeedAny)
	require.ErrorIs(t, err, ck.CKR_PIN_INCORRECT)
	ut, err := Login(m, h, []byte(alicePIN), NeedAny)
	require.NoError(t, err)
	assert.Equal(t, ck.CKU_USER, ut)
}

func TestGenerateListFilter(t *testing.T) {
	k := newTok(t, "")
	m, h := k.login(alicePIN)
	aes, err := Generate(m, h, GenSpec{Type: "aes", Label: "a1", ID: "0102", Bits: 128})
	require.NoError(t, err)
	require.Len(t, aes, 1)
	assert.Equal(t, Key{Handle: aes[0].Handle, Class: "secret-key", KeyType: "aes", Label: "a1", ID: "0102",
		Owner: "alice", SharedWith: []string{}, Token: true, Private: true}, aes[0])
	ec, err := Generate(m, h, GenSpec{Type: "EC", Label: "e1", Curve: "p-384"})
	require.NoError(t, err)
	require.Len(t, ec, 2)
	assert.Equal(t, "public-key", ec[0].Class)
	assert.Equal(t, "private-key", ec[1].Class)
	assert.Equal(t, "ec", ec[1].KeyType)
	rsa, err := Generate(m, h, GenSpec{Type: "rsa", Label: "r1", Session: true})
	require.NoError(t, err)
	require.Len(t, rsa, 2)
	assert.False(t, rsa[1].Token)

	all, err := ListKeys(m, h, Filter{})
	require.NoError(t, err)
	require.Len(t, all, 5)
	for i := 1; i < len(all); i++ {
		assert.Less(t, all[i-1].Handle, all[i].Handle, "handle order")
	}
	count := func(f Filter) int {
		keys, err := ListKeys(m, h, f)
		require.NoError(t, err)
		return len(keys)
	}
	assert.Equal(t, 1, count(Filter{Label: "a1"}))
	assert.Equal(t, 2, count(Filter{Class: "private"}))
	assert.Equal(t, 2, count(Filter{Class: "Public-Key"}))
	assert.Equal(t, 2, count(Filter{KeyType: "rsa"}))
	assert.Equal(t, 1, count(Filter{KeyType: "ec", Class: "private"}))
	assert.Equal(t, 5, count(Filter{Owner: "Alice"})) // her public keys too
	assert.Equal(t, 0, count(Filter{Owner: "bob"}))

	for _, f := range []Filter{{Class: "cert"}, {KeyType: "dsa"}} {
		_, err := ListKeys(m, h, f)
		var ie *InputError
		require.ErrorAs(t, err, &ie)
		require.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD)
		ckr, code := ErrorCode(err)
		assert.Equal(t, "CKR_ARGUMENTS_BAD", ckr)
		assert.Equal(t, CodeBadRequest, code)
	}

	// bob sees none of alice's private or secret keys, only public ones.
	bm, bh := k.login(bobPIN)
	bobs, err := ListKeys(bm, bh, Filter{})
	require.NoError(t, err)
	for _, key := range bobs {
		assert.Equal(t, "public-key", key.Class)
	}
	assert.Len(t, bobs, 1, "the EC public key (the RSA pair is alice's session's)")
}

func TestGenSpecErrors(t *testing.T) {
	for _, c := range []struct {
		spec  GenSpec
		field string
		msg   string
	}{
		{GenSpec{Type: "aes", Label: "x", Bits: 100}, "bits", "100: want 128, 192 or 256"},
		{GenSpec{Type: "rsa", Label: "x", Bits: 1024}, "bits", "1024: want 2048, 3072 or 4096"},
		{GenSpec{Type: "ec", Label: "x", Curve: "P-521"}, "curve", `"P-521": want P-256 or P-384`},
		{GenSpec{Type: "ec"}, "label", "is required"},
		{GenSpec{Type: "aes", Label: "x", ID: "zz"}, "id", `"zz": not hex`},
		{GenSpec{Type: "dsa", Label: "x"}, "type", `"dsa": want aes, ec, rsa, ml-dsa or ml-kem`},
		{GenSpec{Type: "ml-kem", Label: "x", ParameterSet: 256}, "parameter_set", "256: want 512, 768 or 1024"},
	} {
		err := c.spec.Check()
		var ie *InputError
		require.True(t, errors.As(err, &ie), "%+v", c.spec)
		assert.Equal(t, c.field, ie.Field)
		assert.Equal(t, c.msg, ie.Msg)
	}
}

func TestFindDeleteShare(t *testing.T) {
	k := newTok(t, "")
	m, h := k.login(alicePIN)
	a, err := Generate(m, h, GenSpec{Type: "aes", Label: "dup"})
	require.NoError(t, err)
	_, err = Generate(m, h, GenSpec{Type: "aes", Label: "dup"})
	require.NoError(t, err)
	ec, err := Generate(m, h, GenSpec{Type: "ec", Label: "pair"})
	require.NoError(t, err)

	_, err = FindKey(m, h, "dup", "", false)
	_, code := ErrorCode(err)
	assert.Equal(t, CodeAmbiguousKey, code)
	assert.Contains(t, err.Error(), `label "dup" names 2 keys`)
	_, err = FindKey(m, h, "none", "", false)
	require.ErrorIs(t, err, ck.CKR_OBJECT_HANDLE_INVALID)
	_, err = FindKey(m, h, "pair", "", false)
	_, code = ErrorCode(err)
	assert.Equal(t, CodeAmbiguousKey, code, "both halves")
	got, err := FindKey(m, h, "pair", "", true)
	require.NoError(t, err)
	assert.Equal(t, ec[1].Handle, got, "share: only the private half counts")

	key, err := Share(m, h, a[0].Handle, "Bob", true)
	require.NoError(t, err)
	assert.Equal(t, []string{"bob"}, key.SharedWith)
	_, err = Share(m, h, a[0].Handle, "bob", true)
	_, code = ErrorCode(err)
	assert.Equal(t, "already_shared", code)
	_, err = Share(m, h, a[0].Handle, "", true)
	var ie *InputError
	require.ErrorAs(t, err, &ie)

	bm, bh := k.login(bobPIN)
	seen, err := ListKeys(bm, bh, Filter{Label: "dup"})
	require.NoError(t, err)
	require.Len(t, seen, 1)
	assert.Equal(t, a[0].Handle, seen[0].Handle)
	require.ErrorIs(t, Delete(bm, bh, a[0].Handle), ck.CKR_ACTION_PROHIBITED, "only the owner deletes")

	key, err = Share(m, h, a[0].Handle, "bob", false)
	require.NoError(t, err)
	assert.Empty(t, key.SharedWith)
	seen, err = ListKeys(bm, bh, Filter{Label: "dup"})
	require.NoError(t, err)
	assert.Empty(t, seen)

	require.NoError(t, Delete(m, h, a[0].Handle))
	require.ErrorIs(t, Delete(m, h, a[0].Handle), ck.CKR_OBJECT_HANDLE_INVALID)

	// set-trusted: an officer's act, by handle.
	om, oh := k.login(coPIN)
	require.NoError(t, SetTrusted(om, oh, ec[0].Handle, true))
	_, attrs, err := Attributes(m, h, ec[0].Handle)
	require.NoError(t, err)
	assert.Equal(t, true, attrs["CKA_TRUSTED"])
	require.Error(t, SetTrusted(m, h, ec[0].Handle, true), "a crypto user may not")
}

func TestAttributes(t *testing.T) {
	k := newTok(t, "")
	m, h := k.login(alicePIN)
	a, err := Generate(m, h, GenSpec{Type: "aes", Label: "a", ID: "beef", Bits: 192})
	require.NoError(t, err)
	key, at, err := Attributes(m, h, a[0].Handle)
	require.NoError(t, err)
	assert.Equal(t, a[0], key)
	assert.Equal(t, "a", at["CKA_LABEL"])
	assert.Equal(t, "beef", at["CKA_ID"])
	assert.Equal(t, "CKO_SECRET_KEY", at["CKA_CLASS"])
	assert.Equal(t, "CKK_AES", at["CKA_KEY_TYPE"])
	assert.Equal(t, "CKM_AES_KEY_GEN", at["CKA_KEY_GEN_MECHANISM"])
	assert.Equal(t, uint64(24), at["CKA_VALUE_LEN"])
	assert.Equal(t, true, at["CKA_SENSITIVE"])
	assert.Equal(t, true, at["CKA_ENCRYPT"])
	assert.Equal(t, "alice", at["CKA_GOHSM_OWNER"])
	assert.NotContains(t, at, "CKA_VALUE", "sensitive")
	assert.Len(t, at["CKA_CHECK_VALUE"], 6, "3 bytes as hex")
	def, err := Generate(m, h, GenSpec{Type: "aes", Label: "default"})
	require.NoError(t, err)
	_, at2, err := Attributes(m, h, def[0].Handle)
	require.NoError(t, err)
	assert.Equal(t, uint64(32), at2["CKA_VALUE_LEN"], "bits 0: the CLI's default, 256")

	ec, err := Generate(m, h, GenSpec{Type: "ec", Label: "e"})
	require.NoError(t, err)
	_, at, err = Attributes(m, h, ec[0].Handle)
	require.NoError(t, err)
	assert.Equal(t, "06082a8648ce3d030107", at["CKA_EC_PARAMS"], "P-256's OID, hex")
	assert.Equal(t, false, at["CKA_PRIVATE"])
	assert.NotContains(t, at, "CKA_VALUE")
	_, at, err = Attributes(m, h, ec[1].Handle)
	require.NoError(t, err)
	assert.NotContains(t, at, "CKA_VALUE", "a private key's secret is not revealed")

	_, _, err = Attributes(m, h, 999999)
	require.ErrorIs(t, err, ck.CKR_OBJECT_HANDLE_INVALID)
	bm, bh := k.login(bobPIN)
	_, _, err = Attributes(bm, bh, a[0].Handle)
	require.ErrorIs(t, err, ck.CKR_OBJECT_HANDLE_INVALID, "bob does not see alice's key")
}

func TestErrorCode(t *testing.T) {
	for _, c := range []struct {
		err       error
		ckr, code string
	}{
		{ck.CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT", "CKR_PIN_INCORRECT"},
		{errors.New("x"), "", "error"},
		{Errorf(CodeAmbiguousKey, "two"), "", CodeAmbiguousKey},
		{&Error{Code: "no_such_hsm", Err: ck.CKR_ARGUMENTS_BAD}, "CKR_ARGUMENTS_BAD", "no_such_hsm"},
		{inputf("bits", "1"), "CKR_ARGUMENTS_BAD", CodeBadRequest},
	} {
		ckr, code := ErrorCode(c.err)
		assert.Equal(t, c.ckr, ckr, "%v", c.err)
		assert.Equal(t, c.code, code, "%v", c.err)
	}
}

// TestOfficerSeesPublicKeys: an officer lists what the token shows it
// (public keys, no private or secret one) and reads their attributes.
func TestOfficerSeesPublicKeys(t *testing.T) {
	for _, profile := range []string{"", "[slot 0]\nprofile = cloudhsm\n"} {
		k := newTok(t, profile)
		m, h := k.login(alicePIN)
		_, err := Generate(m, h, GenSpec{Type: "aes", Label: "a"})
		require.NoError(t, err)
		ec, err := Generate(m, h, GenSpec{Type: "ec", Label: "e"})
		require.NoError(t, err)
		om, oh := k.login(coPIN)
		keys, err := ListKeys(om, oh, Filter{})
		require.NoError(t, err, profile)
		require.Len(t, keys, 1, profile)
		assert.Equal(t, ec[0].Handle, keys[0].Handle)
		_, at, err := Attributes(om, oh, ec[0].Handle)
		require.NoError(t, err)
		assert.Equal(t, "CKO_PUBLIC_KEY", at["CKA_CLASS"])
		_, _, err = Attributes(om, oh, ec[1].Handle)
		require.ErrorIs(t, err, ck.CKR_OBJECT_HANDLE_INVALID, profile)
	}
}

// TestGenerateMLKEMSets: ml-kem generates each parameter set (0 is 768).
func TestGenerateMLKEMSets(t *testing.T) {
	k := newTok(t, "")
	m, h := k.login(alicePIN)
	for _, c := range []struct {
		ps   int
		want ck.ULong
	}{{512, ck.CKP_ML_KEM_512}, {0, ck.CKP_ML_KEM_768}, {1024, ck.CKP_ML_KEM_1024}} {
		keys, err := Generate(m, h, GenSpec{Type: "ml-kem", Label: "kem", ParameterSet: c.ps, Session: true})
		require.NoError(t, err, c.ps)
		require.Len(t, keys, 2)
		assert.Equal(t, "private-key", keys[1].Class)
		res, err := m.GetAttributeValue(h, keys[1].Handle, []ck.AttributeType{ck.CKA_PARAMETER_SET})
		require.NoError(t, err)
		require.NoError(t, res[0].Err)
		assert.Equal(t, attrs.ULong(c.want), res[0].Value, c.ps)
	}
}
