package mechanisms

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// RFC 6070 §2 (PBKDF2-HMAC-SHA1; the 16777216-iteration case left out for
// time) and RFC 7914 §11 (PBKDF2-HMAC-SHA256).
func TestPBKDF2Vectors(t *testing.T) {
	for _, v := range []struct {
		prf            ck.ULong
		password, salt string
		iter           int
		dk             string
	}{
		{ck.CKP_PKCS5_PBKD2_HMAC_SHA1, "password", "salt", 1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"},
		{ck.CKP_PKCS5_PBKD2_HMAC_SHA1, "password", "salt", 2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
		{ck.CKP_PKCS5_PBKD2_HMAC_SHA1, "password", "salt", 4096, "4b007901b765489abead49d926f721d065a429c1"},
		{ck.CKP_PKCS5_PBKD2_HMAC_SHA1, "passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"},
		{ck.CKP_PKCS5_PBKD2_HMAC_SHA1, "pass\x00word", "sa\x00lt", 4096, "56fa6aa75548099dcc37d7f03425e0c3"},
		{ck.CKP_PKCS5_PBKD2_HMAC_SHA256, "passwd", "salt", 1,
			"55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"},
		{ck.CKP_PKCS5_PBKD2_HMAC_SHA256, "Password", "NaCl", 80000,
			"4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"},
	} {
		want := unhex(v.dk)
		got, err := PBKDF2Generate(&PBKD2Params{
			SaltSource: ck.CKZ_SALT_SPECIFIED, Salt: []byte(v.salt), Iterations: v.iter,
			PRF: v.prf, Password: []byte(v.password),
		}, len(want))
		require.NoError(t, err, "%q %d", v.password, v.iter)
		assert.Equal(t, want, got, "%q %d", v.password, v.iter)
	}
}

func TestPBKDF2Params(t *testing.T) {
	good := PBKD2Params{SaltSource: ck.CKZ_SALT_SPECIFIED, Salt: []byte("salt"), Iterations: 2, PRF: ck.CKP_PKCS5_PBKD2_HMAC_SHA512, Password: []byte("pw")}
	v := func(f func(*PBKD2Params)) *PBKD2Params { q := good; f(&q); return &q }
	for prf := range pbkdf2PRFs {
		k, err := PBKDF2Generate(v(func(q *PBKD2Params) { q.PRF = prf }), 32)
		require.NoError(t, err, prf)
		assert.Len(t, k, 32)
	}
	k, err := PBKDF2Generate(v(func(q *PBKD2Params) { q.Password, q.Salt = nil, nil }), 16)
	require.NoError(t, err, "empty password and salt")
	assert.Len(t, k, 16)

	for name, c := range map[string]struct {
		p   *PBKD2Params
		n   int
		err ck.RV
	}{
		"nil":          {nil, 16, ck.CKR_MECHANISM_PARAM_INVALID},
		"salt source":  {v(func(q *PBKD2Params) { q.SaltSource = 2 }), 16, ck.CKR_MECHANISM_PARAM_INVALID},
		"gost":         {v(func(q *PBKD2Params) { q.PRF = ck.CKP_PKCS5_PBKD2_HMAC_GOSTR3411 }), 16, ck.CKR_MECHANISM_PARAM_INVALID},
		"prf data":     {v(func(q *PBKD2Params) { q.PRFData = []byte{1} }), 16, ck.CKR_MECHANISM_PARAM_INVALID},
		"0 iterations": {v(func(q *PBKD2Params) { q.Iterations = 0 }), 16, ck.CKR_MECHANISM_PARAM_INVALID},
		"no length":    {&good, 0, ck.CKR_TEMPLATE_INCOMPLETE},
		"too long":     {&good, secretMaxBytes + 1, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		"negative":     {&good, -1, ck.CKR_ATTRIBUTE_VALUE_INVALID},
	} {
		_, err := PBKDF2Generate(c.p, c.n)
		assert.ErrorIs(t, err, c.err, name)
	}
}
