/*
 * abi_cloudhsm_vendor.c - AWS CloudHSM's vendor mechanisms through the C ABI
 * (docs/cloudhsm.md, "Mechanisms" and "AES-GCM"; behaviours 17, 21, 24 of the
 * team's CloudHSM reference), as an SDK 5 application calls them: the
 * values and structures of include/gohsm.h (CloudHSM's
 * cloudhsm_pkcs11_vendor_defs.h), a crypto user's "name:password" PIN, R/W
 * sessions, session keys with explicit usage flags.
 *
 * usage: abi_cloudhsm_vendor /path/to/libgohsm.so NAME:PASSWORD
 *
 * The token is set up by the Go test (cloudhsm_vendor_test.go) through the
 * gohsm CLI. Besides PASS/FAIL lines the driver prints "VAL name hex"
 * lines: outputs the Go test recomputes with crypto/cipher, its own
 * HMAC/CMAC and OpenSSL (GCM with the IV the token chose, key wraps, the
 * KDF's derived keys, seen through an AES-ECB encryption of a zero block
 * so that no key value has to be readable).
 */
#include <stdio.h>
#include <string.h>

#include "abi.h"
#include "gohsm.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static CK_FUNCTION_LIST_3_2_PTR f;
static CK_SESSION_HANDLE sess;
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

/* RFC 3394 4.6: the 256-bit KEK and the 256-bit key data (also the key of
 * the GCM and KDF checks). */
static const CK_BYTE kek_value[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const CK_BYTE target_value[32] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
};
static const CK_BYTE rfc3394_46[40] = {
	0x28, 0xc9, 0xf4, 0x04, 0xc4, 0xb8, 0x10, 0xf4, 0xcb, 0xcc, 0xb3, 0x5c, 0xfb, 0x87,
	0xf8, 0x26, 0x3f, 0x57, 0x86, 0xe2, 0xd8, 0x0e, 0xd3, 0x26, 0xcb, 0xc7, 0xf0, 0xe7,
	0x1a, 0x99, 0xf4, 0x3b, 0xfb, 0x98, 0x8b, 0x9b, 0x7a, 0x02, 0xdd, 0x21,
};
static const CK_BYTE iv_a6[8] = { 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6 };
static const CK_BYTE iv_a7[8] = { 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa7 };
static const CK_BYTE iv_kwp[4] = { 0xa6, 0x59, 0x59, 0xa6 };

static void val(const char *name, const CK_BYTE *p, CK_ULONG n)
{
	CK_ULONG i;

	printf("VAL %s ", name);
	for (i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\n");
	fflush(stdout);
}

static int ok(const char *name, CK_RV rv)
{
	return abi_check_rv(name, rv, CKR_OK);
}

/* A session secret key with a known value. */
static CK_OBJECT_HANDLE secret(CK_KEY_TYPE kt, const CK_BYTE *v, CK_ULONG n, const char *what)
{
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &c, sizeof c },
		{ CKA_KEY_TYPE, &kt, sizeof kt },
		{ CKA_VALUE, (void *)v, n },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_WRAP, &yes, sizeof yes },
		{ CKA_UNWRAP, &yes, sizeof yes },
		{ CKA_DERIVE, &yes, sizeof yes },
		{ CKA_EXTRACTABLE, &yes, sizeof yes },
		{ CKA_ENCRYPT, &yes, sizeof yes }, /* the last two: not for generic secrets */
		{ CKA_DECRYPT, &yes, sizeof yes },
	};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	char name[128];

	snprintf(name, sizeof name, "setup: C_CreateObject %s", what);
	ok(name, f->C_CreateObject(sess, t, LEN(t) - (kt == CKK_GENERIC_SECRET ? 2 : 0), &h));
	return h;
}

/* AES-ECB of a zero block under key: how the derived and unwrapped keys are
 * compared without reading their values. */
static int ecb_zero(CK_OBJECT_HANDLE key, CK_BYTE out[16])
{
	CK_MECHANISM m = { CKM_AES_ECB, NULL, 0 };
	CK_BYTE zero[16] = { 0 };
	CK_ULONG n = 16;
	CK_RV rv = f->C_EncryptInit(sess, &m, key);

	if (rv == CKR_OK)
		rv = f->C_Encrypt(sess, zero, 16, out, &n);
	return abi_check("AES-ECB of a zero block", rv == CKR_OK && n == 16, "rv %s, %lu bytes", abi_rv_name(rv),
			 (unsigned long)n);
}

static CK_OBJECT_HANDLE unwrap_aes(CK_MECHANISM *m, CK_OBJECT_HANDLE kek, CK_BYTE *blob, CK_ULONG n, CK_RV *rv)
{
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &c, sizeof c }, { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_TOKEN, &no, sizeof no },
		{ CKA_ENCRYPT, &yes, sizeof yes },
	};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

	*rv = f->C_UnwrapKey(sess, m, kek, blob, n, t, LEN(t), &h);
	return h;
}

/* ---- the three AES key wraps (behaviour 21) ------------------------ */

static void key_wraps(CK_OBJECT_HANDLE kek, CK_OBJECT_HANDLE target, CK_OBJECT_HANDLE odd)
{
	static const struct {
		CK_MECHANISM_TYPE type;
		const char *name;
		int explicit_ok; /* A6A6A6A6A6A6A6A6 given explicitly is allowed */
		int odd_ok;	 /* wraps a 20-byte key (not block-aligned) */
		CK_ULONG len32;	 /* wrapped length of a 32-byte key */
	} kw[] = {
		{ CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, "NO_PAD", 1, 0, 40 },
		{ CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD, "PKCS5_PAD", 1, 1, 48 },
		{ CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD, "ZERO_PAD", 0, 1, 40 },
	};
	CK_BYTE ref[16], got[16];
	size_t i;

	if (!ecb_zero(target, ref))
		return;
	for (i = 0; i < LEN(kw); i++) {
		CK_MECHANISM m = { kw[i].type, NULL, 0 };
		CK_BYTE blob[256], blob2[256];
		CK_ULONG n = 0, n2;
		char name[160];
		CK_OBJECT_HANDLE h;
		CK_RV rv;

		snprintf(name, sizeof name, "%s: wrap/unwrap only: C_EncryptInit -> CKR_MECHANISM_INVALID", kw[i].name);
		abi_check_rv(name, f->C_EncryptInit(sess, &m, kek), CKR_MECHANISM_INVALID);
		snprintf(name, sizeof name, "%s: C_WrapKey length query (NULL IV) -> %lu", kw[i].name, kw[i].len32);
		rv = f->C_WrapKey(sess, &m, kek, target, NULL, &n);
		if (!abi_check(name, rv == CKR_OK && n == kw[i].len32, "rv %s, %lu bytes", abi_rv_name(rv), (unsigned long)n))
			continue;
		snprintf(name, sizeof name, "%s: C_WrapKey of an AES-256 key (NULL IV)", kw[i].name);
		if (!ok(name, f->C_WrapKey(sess, &m, kek, target, blob, &n)))
			continue;
		snprintf(name, sizeof name, "kw-%s-32", kw[i].name);
		val(name, blob, n);
		if (kw[i].type == CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD) {
			abi_check("NO_PAD: RFC 3394 4.6 known answer", n == sizeof rfc3394_46 && !memcmp(blob, rfc3394_46, n),
				  "differs");
		}

		snprintf(name, sizeof name, "%s: C_UnwrapKey", kw[i].name);
		h = unwrap_aes(&m, kek, blob, n, &rv);
		if (ok(name, rv) && ecb_zero(h, got)) {
			snprintf(name, sizeof name, "%s: the unwrapped key encrypts like the original", kw[i].name);
			abi_check(name, !memcmp(ref, got, 16), "differs");
			f->C_DestroyObject(sess, h);
		}

		blob[n / 2] ^= 0x10;
		snprintf(name, sizeof name, "%s: C_UnwrapKey of a tampered wrapping -> CKR_WRAPPED_KEY_INVALID", kw[i].name);
		h = unwrap_aes(&m, kek, blob, n, &rv);
		abi_check_rv(name, rv, CKR_WRAPPED_KEY_INVALID);
		blob[n / 2] ^= 0x10;

		/* explicit IVs: the default for NO_PAD and PKCS5_PAD, none for ZERO_PAD */
		m.pParameter = (void *)iv_a6;
		m.ulParameterLen = sizeof iv_a6;
		n2 = sizeof blob2;
		rv = f->C_WrapKey(sess, &m, kek, target, blob2, &n2);
		if (kw[i].explicit_ok) {
			snprintf(name, sizeof name, "%s: explicit IV A6A6A6A6A6A6A6A6 gives the same wrapping", kw[i].name);
			abi_check(name, rv == CKR_OK && n2 == n && !memcmp(blob, blob2, n), "rv %s", abi_rv_name(rv));
		} else {
			snprintf(name, sizeof name, "%s: explicit IV A6A6A6A6A6A6A6A6 -> CKR_MECHANISM_PARAM_INVALID", kw[i].name);
			abi_check_rv(name, rv, CKR_MECHANISM_PARAM_INVALID);
			m.pParameter = (void *)iv_kwp;
			m.ulParameterLen = sizeof iv_kwp;
			n2 = sizeof blob2;
			snprintf(name, sizeof name, "%s: explicit IV A65959A6 -> CKR_MECHANISM_PARAM_INVALID", kw[i].name);
			abi_check_rv(name, f->C_WrapKey(sess, &m, kek, target, blob2, &n2), CKR_MECHANISM_PARAM_INVALID);
		}
		m.pParameter = (void *)iv_a7;
		m.ulParameterLen = sizeof iv_a7;
		n2 = sizeof blob2;
		snprintf(name, sizeof name, "%s: C_WrapKey with IV A6A6A6A6A6A6A6A7 -> CKR_MECHANISM_PARAM_INVALID", kw[i].name);
		abi_check_rv(name, f->C_WrapKey(sess, &m, kek, target, blob2, &n2), CKR_MECHANISM_PARAM_INVALID);
		snprintf(name, sizeof name, "%s: C_UnwrapKey with IV A6A6A6A6A6A6A6A7 -> CKR_MECHANISM_PARAM_INVALID", kw[i].name);
		h = unwrap_aes(&m, kek, blob, n, &rv);
		abi_check_rv(name, rv, CKR_MECHANISM_PARAM_INVALID);
		m.pParameter = NULL;
		m.ulParameterLen = 0;

		/* a 20-byte generic secret: not block-aligned */
		n2 = sizeof blob2;
		rv = f->C_WrapKey(sess, &m, kek, odd, blob2, &n2);
		if (kw[i].odd_ok) {
			snprintf(name, sizeof name, "%s: C_WrapKey of a 20-byte generic secret", kw[i].name);
			if (ok(name, rv)) {
				snprintf(name, sizeof name, "kw-%s-20", kw[i].name);
				val(name, blob2, n2);
			}
		} else {
			snprintf(name, sizeof name, "%s: C_WrapKey of a 20-byte key (not block-aligned) -> CKR_KEY_SIZE_RANGE",
				 kw[i].name);
			abi_check_rv(name, rv, CKR_KEY_SIZE_RANGE);
		}
	}
}

/* ---- CKM_CLOUDHSM_AES_GCM (behaviour 17) --------------------------- */

static void gcm(CK_OBJECT_HANDLE key, CK_OBJECT_HANDLE target)
{
	static const CK_BYTE pt[] = "CloudHSM vendor GCM: IV || ciphertext || tag";
	static const CK_BYTE aad[] = "additional data";
	CK_GCM_PARAMS p = { NULL, 0, 0, (CK_BYTE_PTR)aad, sizeof aad - 1, 128 };
	CK_MECHANISM m = { CKM_CLOUDHSM_AES_GCM, &p, sizeof p };
	CK_ULONG ptlen = sizeof pt - 1, want = 12 + ptlen + 16, n, n2;
	CK_BYTE ct[256], ct2[256], out[256], zero_iv[12] = { 0 }, ref[16], got[16];
	CK_OBJECT_HANDLE h;
	CK_RV rv;

	/* length query exact; one byte short keeps the operation; the retry
	 * returns the bytes (and IV) that were computed */
	if (!ok("GCM: C_EncryptInit with pIV NULL", f->C_EncryptInit(sess, &m, key)))
		return;
	n = 0;
	rv = f->C_Encrypt(sess, (CK_BYTE_PTR)pt, ptlen, NULL, &n);
	abi_check("GCM: C_Encrypt length query is IV + data + tag", rv == CKR_OK && n == want, "rv %s, %lu (want %lu)",
		  abi_rv_name(rv), (unsigned long)n, (unsigned long)want);
	n = want - 1;
	abi_check_rv("GCM: C_Encrypt one byte short -> CKR_BUFFER_TOO_SMALL", f->C_Encrypt(sess, (CK_BYTE_PTR)pt, ptlen, ct, &n),
		     CKR_BUFFER_TOO_SMALL);
	n = sizeof ct;
	if (!ok("GCM: C_Encrypt after CKR_BUFFER_TOO_SMALL", f->C_Encrypt(sess, (CK_BYTE_PTR)pt, ptlen, ct, &n)))
		return;
	abi_check("GCM: output is 12 + data + 16 bytes", n == want, "%lu bytes", (unsigned long)n);
	val("gcm-1", ct, n);

	n2 = sizeof ct2;
	rv = f->C_EncryptInit(sess, &m, key);
	if (rv == CKR_OK)
		rv = f->C_Encrypt(sess, (CK_BYTE_PTR)pt, ptlen, ct2, &n2);
	if (ok("GCM: a second C_Encrypt", rv)) {
		abi_check("GCM: two encryptions have different IVs", memcmp(ct, ct2, 12) != 0, "same IV");
		val("gcm-2", ct2, n2);
	}

	/* pIV NULL with ulIvLen 12 (the length of the IV the token makes) */
	p.ulIvLen = 12;
	p.ulIvBits = 96;
	n2 = sizeof ct2;
	rv = f->C_EncryptInit(sess, &m, key);
	if (rv == CKR_OK)
		rv = f->C_Encrypt(sess, (CK_BYTE_PTR)pt, ptlen, ct2, &n2);
	ok("GCM: pIV NULL with ulIvLen 12 accepted", rv);

	/* a caller's IV, even the zeroed buffer CKM_AES_GCM wants, is refused */
	p.pIv = zero_iv;
	abi_check_rv("GCM: C_EncryptInit with a (zeroed) pIV -> CKR_MECHANISM_PARAM_INVALID", f->C_EncryptInit(sess, &m, key),
		     CKR_MECHANISM_PARAM_INVALID);
	abi_check_rv("GCM: C_DecryptInit with a pIV -> CKR_MECHANISM_PARAM_INVALID", f->C_DecryptInit(sess, &m, key),
		     CKR_MECHANISM_PARAM_INVALID);
	p.pIv = NULL;
	p.ulIvLen = 16;
	abi_check_rv("GCM: ulIvLen 16 -> CKR_MECHANISM_PARAM_INVALID", f->C_EncryptInit(sess, &m, key),
		     CKR_MECHANISM_PARAM_INVALID);
	p.ulIvLen = 0;
	p.ulIvBits = 0;

	/* decryption takes IV || ciphertext || tag */
	rv = f->C_DecryptInit(sess, &m, key);
	if (ok("GCM: C_DecryptInit", rv)) {
		n2 = 0;
		rv = f->C_Decrypt(sess, ct, n, NULL, &n2);
		abi_check("GCM: C_Decrypt length query is the data length", rv == CKR_OK && n2 == ptlen, "rv %s, %lu",
			  abi_rv_name(rv), (unsigned long)n2);
		n2 = sizeof out;
		rv = f->C_Decrypt(sess, ct, n, out, &n2);
		if (ok("GCM: C_Decrypt of IV || ciphertext || tag", rv))
			abi_check("GCM: decryption round trip", n2 == ptlen && !memcmp(out, pt, ptlen), "differs");
	}
	ct[5] ^= 1; /* the IV is authenticated too */
	n2 = sizeof out;
	rv = f->C_DecryptInit(sess, &m, key);
	if (rv == CKR_OK)
		rv = f->C_Decrypt(sess, ct, n, out, &n2);
	abi_check_rv("GCM: C_Decrypt with a changed IV -> CKR_ENCRYPTED_DATA_INVALID", rv, CKR_ENCRYPTED_DATA_INVALID);
	ct[5] ^= 1;
	n2 = sizeof out;
	rv = f->C_DecryptInit(sess, &m, key);
	if (rv == CKR_OK)
		rv = f->C_Decrypt(sess, ct, 12 + 15, out, &n2);
	abi_check_rv("GCM: C_Decrypt shorter than IV + tag -> CKR_ENCRYPTED_DATA_LEN_RANGE", rv, CKR_ENCRYPTED_DATA_LEN_RANGE);

	/* C_WrapKey / C_UnwrapKey */
	if (!ecb_zero(target, ref))
		return;
	n = 0;
	rv = f->C_WrapKey(sess, &m, key, target, NULL, &n);
	abi_check("GCM: C_WrapKey length query is 12 + 32 + 16", rv == CKR_OK && n == 60, "rv %s, %lu", abi_rv_name(rv),
		  (unsigned long)n);
	n = sizeof ct;
	if (!ok("GCM: C_WrapKey of an AES-256 key", f->C_WrapKey(sess, &m, key, target, ct, &n)))
		return;
	val("gcm-wrap", ct, n);
	h = unwrap_aes(&m, key, ct, n, &rv);
	if (ok("GCM: C_UnwrapKey of IV || ciphertext || tag", rv) && ecb_zero(h, got)) {
		abi_check("GCM: the unwrapped key encrypts like the original", !memcmp(ref, got, 16), "differs");
		f->C_DestroyObject(sess, h);
	}
	ct[n - 1] ^= 1;
	h = unwrap_aes(&m, key, ct, n, &rv);
	abi_check_rv("GCM: C_UnwrapKey of a tampered wrapping -> CKR_WRAPPED_KEY_INVALID", rv, CKR_WRAPPED_KEY_INVALID);
}

/* ---- CKM_CLOUDHSM_SP800_108_COUNTER_KDF (behaviour 24) ------------- */

static CK_RV derive(CK_OBJECT_HANDLE base, void *param, CK_ULONG plen, CK_OBJECT_HANDLE *out)
{
	CK_MECHANISM m = { CKM_CLOUDHSM_SP800_108_COUNTER_KDF, param, plen };
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG vl = 32;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &c, sizeof c },	   { CKA_KEY_TYPE, &kt, sizeof kt },   { CKA_VALUE_LEN, &vl, sizeof vl },
		{ CKA_TOKEN, &no, sizeof no },	   { CKA_ENCRYPT, &yes, sizeof yes },
	};

	*out = CK_INVALID_HANDLE;
	return f->C_DeriveKey(sess, &m, base, t, LEN(t), out);
}

static void kdf(CK_OBJECT_HANDLE base)
{
	/* AWS's hmac_kdf.c: counter, DKM, label, context; HMAC-SHA512 */
	CK_BYTE label[] = { 0x01, 0xab, 0xe1 }, context[] = { 0x0c, 0x09, 0x7e, 0x07 };
	CK_CLOUDHSM_SP800_108_COUNTER_FORMAT cf = { 32 };
	CK_CLOUDHSM_SP800_108_DKM_LENGTH_FORMAT df = { SP800_108_DKM_LENGTH_SUM_OF_KEYS, 32 };
	CK_PRF_DATA_PARAM labelled[] = {
		{ SP800_108_COUNTER_FORMAT, &cf, sizeof cf },
		{ SP800_108_DKM_FORMAT, &df, sizeof df },
		{ SP800_108_PRF_LABEL, label, sizeof label },
		{ SP800_108_PRF_CONTEXT, context, sizeof context },
	};
	/* AWS's aes_cmac_kdf.c: prefix, counter, suffix, DKM; AES-CMAC */
	CK_PRF_DATA_PARAM ordered[] = {
		{ SP800_108_BYTE_ARRAY, label, sizeof label },
		{ SP800_108_COUNTER_FORMAT, &cf, sizeof cf },
		{ SP800_108_BYTE_ARRAY, context, sizeof context },
		{ SP800_108_DKM_FORMAT, &df, sizeof df },
	};
	CK_CLOUDHSM_SP800_108_KDF_PARAMS p = { CKM_SHA512_HMAC, LEN(labelled), labelled };
	CK_SP800_108_COUNTER_FORMAT std_cf = { CK_FALSE, 32 };
	CK_PRF_DATA_PARAM std_data[] = { { CK_SP800_108_ITERATION_VARIABLE, &std_cf, sizeof std_cf } };
	CK_SP800_108_KDF_PARAMS std = { CKM_SHA256_HMAC, LEN(std_data), std_data, 0, NULL };
	CK_OBJECT_HANDLE h;
	CK_BYTE e[16];
	CK_RV rv;

	if (ok("KDF: C_DeriveKey, label/context layout, HMAC-SHA512", derive(base, &p, sizeof p, &h)) && ecb_zero(h, e)) {
		val("kdf-label-sha512", e, 16);
		f->C_DestroyObject(sess, h);
	}
	p.prftype = CKM_AES_CMAC;
	p.pDataParams = ordered;
	p.ulNumberOfDataParams = LEN(ordered);
	if (ok("KDF: C_DeriveKey, byte-array layout, AES-CMAC", derive(base, &p, sizeof p, &h)) && ecb_zero(h, e)) {
		val("kdf-ordered-cmac", e, 16);
		f->C_DestroyObject(sess, h);
	}
	cf.ulWidthInBits = 16;
	p.prftype = CKM_SHA256_HMAC;
	if (ok("KDF: C_DeriveKey, byte-array layout, 16-bit counter, HMAC-SHA256", derive(base, &p, sizeof p, &h)) &&
	    ecb_zero(h, e)) {
		val("kdf-ordered-sha256-ctr16", e, 16);
		f->C_DestroyObject(sess, h);
	}

	/* what CloudHSM does not take */
	cf.ulWidthInBits = 8;
	rv = derive(base, &p, sizeof p, &h);
	abi_check_rv("KDF: 8-bit counter -> CKR_MECHANISM_PARAM_INVALID", rv, CKR_MECHANISM_PARAM_INVALID);
	cf.ulWidthInBits = 32;
	df.dkmLengthMethod = SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS;
	rv = derive(base, &p, sizeof p, &h);
	abi_check_rv("KDF: DKM method SUM_OF_SEGMENTS -> CKR_MECHANISM_PARAM_INVALID", rv, CKR_MECHANISM_PARAM_INVALID);
	df.dkmLengthMethod = SP800_108_DKM_LENGTH_SUM_OF_KEYS;
	p.prftype = CKM_SHA3_256_HMAC;
	rv = derive(base, &p, sizeof p, &h);
	abi_check_rv("KDF: PRF CKM_SHA3_256_HMAC -> CKR_MECHANISM_PARAM_INVALID", rv, CKR_MECHANISM_PARAM_INVALID);
	p.prftype = CKM_SHA256_HMAC;
	labelled[2].type = SP800_108_BYTE_ARRAY;
	p.pDataParams = labelled;
	rv = derive(base, &p, sizeof p, &h);
	abi_check_rv("KDF: byte array mixed with a context -> CKR_MECHANISM_PARAM_INVALID", rv, CKR_MECHANISM_PARAM_INVALID);
	rv = derive(base, &std, sizeof std, &h);
	abi_check_rv("KDF: the v3.0 CK_SP800_108_KDF_PARAMS (40 bytes) -> CKR_MECHANISM_PARAM_INVALID", rv,
		     CKR_MECHANISM_PARAM_INVALID);
	rv = derive(base, &p, sizeof p - 1, &h);
	abi_check_rv("KDF: parameter of sizeof-1 bytes -> CKR_MECHANISM_PARAM_INVALID", rv, CKR_MECHANISM_PARAM_INVALID);
}

int main(int argc, char **argv)
{
	struct abi_module mod;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE kek, target, odd, base;
	CK_MECHANISM_INFO mi;
	CK_BYTE odd_value[20];
	size_t i;
	static const CK_MECHANISM_TYPE vendor[] = {
		CKM_CLOUDHSM_AES_GCM, CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD,
		CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD, CKM_CLOUDHSM_SP800_108_COUNTER_KDF,
	};

	if (argc != 3) {
		fprintf(stderr, "usage: %s /path/to/libgohsm.so NAME:PASSWORD\n", argv[0]);
		return 2;
	}
	abi_load(argv[1], &mod);
	f = mod.f3;
	if (!ok("C_Initialize", abi_initialize(&mod)) || !abi_first_slot(&mod, &slot))
		return abi_exit();
	if (!ok("C_OpenSession R/W", f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &sess)) ||
	    !ok("C_Login crypto user", f->C_Login(sess, CKU_USER, (CK_UTF8CHAR_PTR)argv[2], strlen(argv[2]))))
		return abi_exit();

	for (i = 0; i < LEN(vendor); i++) {
		char name[128];

		snprintf(name, sizeof name, "C_GetMechanismInfo 0x%lx", (unsigned long)vendor[i]);
		if (ok(name, f->C_GetMechanismInfo(slot, vendor[i], &mi)))
			printf("INFO 0x%lx flags 0x%lx min %lu max %lu\n", (unsigned long)vendor[i], (unsigned long)mi.flags,
			       (unsigned long)mi.ulMinKeySize, (unsigned long)mi.ulMaxKeySize);
	}

	for (i = 0; i < sizeof odd_value; i++)
		odd_value[i] = (CK_BYTE)(0xd0 + i);
	kek = secret(CKK_AES, kek_value, sizeof kek_value, "AES-256 key (RFC 3394 4.6 KEK)");
	target = secret(CKK_AES, target_value, sizeof target_value, "AES-256 target (RFC 3394 4.6 key data)");
	odd = secret(CKK_GENERIC_SECRET, odd_value, sizeof odd_value, "20-byte generic secret");
	base = secret(CKK_AES, kek_value, sizeof kek_value, "AES-256 KDF base key");
	if (kek == CK_INVALID_HANDLE || target == CK_INVALID_HANDLE || odd == CK_INVALID_HANDLE || base == CK_INVALID_HANDLE)
		return abi_exit();

	key_wraps(kek, target, odd);
	gcm(kek, target);
	kdf(base);

	f->C_CloseAllSessions(slot);
	f->C_Finalize(NULL);
	return abi_exit();
}
