/*
 * abi_cloudhsm_mech.c - the cloudhsm profile's mechanism policy, through
 * the function list, run once per profile.
 *
 * usage: abi_cloudhsm_mech /path/to/libgohsm.so standard|cloudhsm|cloudhsm-nonfips PIN
 *
 * The slot (slot index 0) is set up by cloudhsm_mech_test.go with the CLI:
 * a crypto user whose "name:password" PIN is argv[3]. Each scenario has
 * two answers written here, CloudHSM's (docs/cloudhsm.md, "Mechanisms"
 * and "AES-GCM"; cloudhsm-facts 2.5) and PKCS#11's; the same calls pass in
 * one profile and fail in the other with the documented code.
 *
 * Prints "LISTED 0x..." for every mechanism C_GetMechanismList returns;
 * the Go test compares them with testdata/mechanisms-cloudhsm.txt.
 */
#include "abi.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static struct abi_module m;
static CK_FUNCTION_LIST_3_2_PTR f;
static CK_SLOT_ID slot;
static CK_SESSION_HANDLE s;
static int cloudhsm, fips;

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

/* The answer in this run: CloudHSM's or the standard profile's. */
static CK_RV want(CK_RV in_cloudhsm, CK_RV in_standard)
{
	return cloudhsm ? in_cloudhsm : in_standard;
}

static void check_not(const char *name, CK_RV got, CK_RV not_this)
{
	if (got != not_this)
		abi_pass(name);
	else
		abi_fail(name, "got %s", abi_rv_name(got));
}

static CK_OBJECT_HANDLE gen_secret(CK_MECHANISM_TYPE mt, CK_ULONG len, CK_RV *rvp)
{
	CK_MECHANISM mech = { mt, NULL, 0 };
	CK_ATTRIBUTE t[] = {
		{ CKA_VALUE_LEN, &len, sizeof len }, { CKA_TOKEN, &no, sizeof no },
		{ CKA_ENCRYPT, &yes, sizeof yes },   { CKA_DECRYPT, &yes, sizeof yes },
		{ CKA_SIGN, &yes, sizeof yes },      { CKA_VERIFY, &yes, sizeof yes },
		{ CKA_WRAP, &yes, sizeof yes },      { CKA_UNWRAP, &yes, sizeof yes },
		{ CKA_EXTRACTABLE, &yes, sizeof yes }, { CKA_DERIVE, &yes, sizeof yes },
	};
	CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
	/* 3DES keys have no CKA_VALUE_LEN. */
	CK_ULONG n = LEN(t);
	CK_ATTRIBUTE *tp = t;

	if (mt == CKM_DES3_KEY_GEN) {
		tp = t + 1;
		n--;
	}
	*rvp = f->C_GenerateKey(s, &mech, tp, n, &k);
	return k;
}

static CK_OBJECT_HANDLE rsa_pub, rsa_priv;

static int gen_rsa(void)
{
	CK_MECHANISM mech = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ULONG bits = 2048;
	CK_BYTE e[] = { 1, 0, 1 };
	CK_ATTRIBUTE pub[] = {
		{ CKA_MODULUS_BITS, &bits, sizeof bits }, { CKA_PUBLIC_EXPONENT, e, sizeof e },
		{ CKA_TOKEN, &no, sizeof no },            { CKA_ENCRYPT, &yes, sizeof yes },
		{ CKA_VERIFY, &yes, sizeof yes },         { CKA_WRAP, &yes, sizeof yes },
	};
	CK_ATTRIBUTE priv[] = {
		{ CKA_TOKEN, &no, sizeof no }, { CKA_DECRYPT, &yes, sizeof yes },
		{ CKA_SIGN, &yes, sizeof yes }, { CKA_UNWRAP, &yes, sizeof yes },
	};

	return abi_check_rv("setup: RSA-2048 key pair",
			    f->C_GenerateKeyPair(s, &mech, pub, LEN(pub), priv, LEN(priv), &rsa_pub, &rsa_priv), CKR_OK);
}

/* 1. The mechanism list, and mechanisms outside it at every entry point. */
static void list(CK_OBJECT_HANDLE aes)
{
	CK_MECHANISM_TYPE types[512];
	CK_ULONG n = LEN(types), i;
	CK_MECHANISM_INFO info;
	static const CK_MECHANISM_TYPE not_sdk5[] = {
		CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_PAD, CKM_SHA3_256, CKM_SHA256_HMAC_GENERAL,
		CKM_AES_CCM, CKM_EDDSA, CKM_HKDF_DERIVE, CKM_SHA256_KEY_GEN, CKM_SP800_108_COUNTER_KDF,
	};
	char name[96];

	if (!abi_check_rv("C_GetMechanismList", f->C_GetMechanismList(slot, types, &n), CKR_OK))
		return;
	for (i = 0; i < n; i++)
		printf("LISTED 0x%lx\n", (unsigned long)types[i]);
	for (i = 0; i < LEN(not_sdk5); i++) {
		snprintf(name, sizeof name, "C_GetMechanismInfo 0x%lx (not SDK 5)", (unsigned long)not_sdk5[i]);
		abi_check_rv(name, f->C_GetMechanismInfo(slot, not_sdk5[i], &info), want(CKR_MECHANISM_INVALID, CKR_OK));
	}
	/* Each entry point refuses what the profile does not offer. */
	{
		CK_MECHANISM sha3 = { CKM_SHA3_256, NULL, 0 };
		CK_BYTE out[64];
		CK_ULONG ol = sizeof out;
		CK_RV rv = f->C_DigestInit(s, &sha3);

		abi_check_rv("C_DigestInit CKM_SHA3_256", rv, want(CKR_MECHANISM_INVALID, CKR_OK));
		if (rv == CKR_OK)
			f->C_Digest(s, (CK_BYTE_PTR) "x", 1, out, &ol);
	}
	{
		CK_ULONG ml = 16;
		CK_MECHANISM hmacg = { CKM_SHA256_HMAC_GENERAL, &ml, sizeof ml };
		CK_OBJECT_HANDLE hk;
		CK_RV grv, rv;
		CK_BYTE out[64];
		CK_ULONG ol = sizeof out;

		hk = gen_secret(CKM_GENERIC_SECRET_KEY_GEN, 32, &grv);
		rv = f->C_SignInit(s, &hmacg, hk);
		abi_check_rv("C_SignInit CKM_SHA256_HMAC_GENERAL", rv, want(CKR_MECHANISM_INVALID, CKR_OK));
		if (rv == CKR_OK)
			f->C_Sign(s, (CK_BYTE_PTR) "x", 1, out, &ol);
	}
	{
		CK_MECHANISM kg = { CKM_SHA256_KEY_GEN, NULL, 0 };
		CK_ULONG len = 32;
		CK_ATTRIBUTE t[] = { { CKA_VALUE_LEN, &len, sizeof len }, { CKA_TOKEN, &no, sizeof no } };
		CK_OBJECT_HANDLE k;

		abi_check_rv("C_GenerateKey CKM_SHA256_KEY_GEN", f->C_GenerateKey(s, &kg, t, LEN(t), &k),
			     want(CKR_MECHANISM_INVALID, CKR_OK));
	}
	{
		CK_MECHANISM kw = { CKM_AES_KEY_WRAP, NULL, 0 };
		CK_BYTE iv[16] = { 0 };
		CK_MECHANISM cbcpad = { CKM_AES_CBC_PAD, iv, sizeof iv };
		CK_ULONG wl = 0;

		abi_check_rv("C_WrapKey CKM_AES_KEY_WRAP", f->C_WrapKey(s, &kw, aes, aes, NULL, &wl),
			     want(CKR_MECHANISM_INVALID, CKR_OK));
		wl = 0;
		abi_check_rv("C_WrapKey CKM_AES_CBC_PAD (SDK 5: encrypt only)", f->C_WrapKey(s, &cbcpad, aes, aes, NULL, &wl),
			     want(CKR_MECHANISM_INVALID, CKR_OK));
	}
	{
		CK_MECHANISM kwp = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
		CK_BYTE wrapped[40] = { 0 };
		CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = CKK_AES;
		CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt },
				     { CKA_TOKEN, &no, sizeof no } };
		CK_OBJECT_HANDLE k;
		CK_RV rv = f->C_UnwrapKey(s, &kwp, aes, wrapped, sizeof wrapped, t, LEN(t), &k);

		if (cloudhsm)
			abi_check_rv("C_UnwrapKey CKM_AES_KEY_WRAP_PAD", rv, CKR_MECHANISM_INVALID);
		else /* known, and 40 zero bytes do not unwrap */
			check_not("C_UnwrapKey CKM_AES_KEY_WRAP_PAD", rv, CKR_MECHANISM_INVALID);
	}
	{
		CK_BYTE data[32] = { 0 };
		CK_KEY_DERIVATION_STRING_DATA p = { data, sizeof data };
		CK_MECHANISM ed = { CKM_AES_ECB_ENCRYPT_DATA, &p, sizeof p };
		CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = CKK_AES;
		CK_ULONG len = 32;
		CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt },
				     { CKA_VALUE_LEN, &len, sizeof len }, { CKA_TOKEN, &no, sizeof no } };
		CK_OBJECT_HANDLE k;

		abi_check_rv("C_DeriveKey CKM_AES_ECB_ENCRYPT_DATA", f->C_DeriveKey(s, &ed, aes, t, LEN(t), &k),
			     want(CKR_MECHANISM_INVALID, CKR_OK));
	}
	/* Outside the list, a parameter that does not decode changes nothing. */
	{
		CK_BYTE junk[3] = { 0 };
		CK_MECHANISM ccm = { CKM_AES_CCM, junk, sizeof junk };
		CK_MECHANISM hkdf = { CKM_HKDF_DERIVE, junk, sizeof junk };
		CK_ATTRIBUTE t[] = { { CKA_TOKEN, &no, sizeof no } };
		CK_OBJECT_HANDLE k;

		abi_check_rv("C_EncryptInit CKM_AES_CCM, 3-byte parameter", f->C_EncryptInit(s, &ccm, aes),
			     want(CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID));
		abi_check_rv("C_DeriveKey CKM_HKDF_DERIVE, 3-byte parameter", f->C_DeriveKey(s, &hkdf, aes, t, LEN(t), &k),
			     want(CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID));
	}
	/* CloudHSM has no sign-recover and no message-based functions. */
	if (abi_check_rv("C_GetMechanismInfo CKM_RSA_X_509", f->C_GetMechanismInfo(slot, CKM_RSA_X_509, &info), CKR_OK))
		abi_check("CKM_RSA_X_509 CKF_SIGN_RECOVER", !!(info.flags & CKF_SIGN_RECOVER) == !cloudhsm,
			  "flags 0x%lx", (unsigned long)info.flags);
	if (abi_check_rv("C_GetMechanismInfo CKM_AES_GCM", f->C_GetMechanismInfo(slot, CKM_AES_GCM, &info), CKR_OK))
		abi_check("CKM_AES_GCM CKF_MESSAGE_ENCRYPT", !!(info.flags & CKF_MESSAGE_ENCRYPT) == !cloudhsm,
			  "flags 0x%lx", (unsigned long)info.flags);
}

static int all_zero(const CK_BYTE *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/* One CKM_AES_GCM encryption with the caller's 12-byte IV buffer iv. */
static CK_RV gcm_encrypt(CK_OBJECT_HANDLE k, CK_BYTE *iv, CK_ULONG ivlen, const CK_BYTE *in, CK_ULONG inlen,
			 CK_BYTE *out, CK_ULONG *outlen, CK_BYTE *iv_after_init)
{
	CK_GCM_PARAMS p = { iv, ivlen, ivlen * 8, NULL, 0, 128 };
	CK_MECHANISM mech = { CKM_AES_GCM, &p, sizeof p };
	CK_ULONG need = 0;
	CK_RV rv = f->C_EncryptInit(s, &mech, k);

	if (rv != CKR_OK)
		return rv;
	if (iv_after_init)
		memcpy(iv_after_init, iv, ivlen);
	/* Length query first, as the AWS sample does: the IV stays. */
	rv = f->C_Encrypt(s, (CK_BYTE_PTR)in, inlen, NULL, &need);
	if (rv != CKR_OK)
		return rv;
	return f->C_Encrypt(s, (CK_BYTE_PTR)in, inlen, out, outlen);
}

static CK_RV gcm_decrypt(CK_OBJECT_HANDLE k, CK_BYTE *iv, const CK_BYTE *in, CK_ULONG inlen, CK_BYTE *out,
			 CK_ULONG *outlen)
{
	CK_GCM_PARAMS p = { iv, 12, 96, NULL, 0, 128 };
	CK_MECHANISM mech = { CKM_AES_GCM, &p, sizeof p };
	CK_RV rv = f->C_DecryptInit(s, &mech, k);

	if (rv != CKR_OK)
		return rv;
	return f->C_Decrypt(s, (CK_BYTE_PTR)in, inlen, out, outlen);
}

/* 2. CKM_AES_GCM: the HSM makes the IV (behaviour 16). */
static void gcm(CK_OBJECT_HANDLE k)
{
	static const CK_BYTE msg[] = "attack at dawn";
	CK_BYTE iv1[12] = { 0 }, iv2[12] = { 0 }, seen[12], given[12] = "twelve bytes";
	CK_BYTE ct1[64], ct2[64], pt[64];
	CK_ULONG l1 = sizeof ct1, l2 = sizeof ct2, pl = sizeof pt;
	CK_RV rv;

	rv = gcm_encrypt(k, given, 12, msg, sizeof msg, ct1, &l1, NULL);
	abi_check_rv("GCM: a caller's non-zero IV", rv, want(CKR_MECHANISM_PARAM_INVALID, CKR_OK));
	rv = gcm_encrypt(k, NULL, 0, msg, sizeof msg, ct1, &l1, NULL);
	abi_check_rv("GCM: ulIvLen 0", rv, CKR_MECHANISM_PARAM_INVALID);
	{
		CK_BYTE iv16[16] = { 0 };

		l1 = sizeof ct1;
		rv = gcm_encrypt(k, iv16, 16, msg, sizeof msg, ct1, &l1, NULL);
		abi_check_rv("GCM: a zero IV of 16 bytes", rv, want(CKR_MECHANISM_PARAM_INVALID, CKR_OK));
	}
	l1 = sizeof ct1;
	if (!abi_check_rv("GCM: encrypt with a zeroed 12-byte IV", gcm_encrypt(k, iv1, 12, msg, sizeof msg, ct1, &l1, seen), CKR_OK))
		return;
	abi_check("GCM: pIv after C_EncryptInit", all_zero(seen, 12) == !cloudhsm, "IV %s zero after C_EncryptInit",
		  all_zero(seen, 12) ? "still" : "no longer");
	abi_check("GCM: the IV stays through C_Encrypt", memcmp(seen, iv1, 12) == 0, "changed");
	abi_check("GCM: output is ciphertext || tag", l1 == sizeof msg + 16, "length %lu", (unsigned long)l1);
	if (!abi_check_rv("GCM: second encryption", gcm_encrypt(k, iv2, 12, msg, sizeof msg, ct2, &l2, NULL), CKR_OK))
		return;
	abi_check("GCM: two encryptions, two IVs", (memcmp(iv1, iv2, 12) != 0) == cloudhsm, "IVs %s",
		  memcmp(iv1, iv2, 12) ? "differ" : "equal");
	abi_check("GCM: two encryptions, two ciphertexts", (l1 != l2 || memcmp(ct1, ct2, l1) != 0) == cloudhsm,
		  "ciphertexts %s", memcmp(ct1, ct2, l1) ? "differ" : "equal");
	if (abi_check_rv("GCM: decrypt with the IV given back", gcm_decrypt(k, iv1, ct1, l1, pt, &pl), CKR_OK))
		abi_check("GCM: round trip", pl == sizeof msg && memcmp(pt, msg, pl) == 0, "plaintext differs");

	/* The 40-byte CK_GCM_PARAMS without ulIvBits (Java's first try). */
	{
		struct {
			CK_BYTE_PTR pIv;
			CK_ULONG ulIvLen;
			CK_BYTE_PTR pAAD;
			CK_ULONG ulAADLen;
			CK_ULONG ulTagBits;
		} old = { iv2, 12, NULL, 0, 128 };
		CK_MECHANISM mech = { CKM_AES_GCM, &old, sizeof old };

		memset(iv2, 0, sizeof iv2);
		if (abi_check_rv("GCM: 40-byte CK_GCM_PARAMS", f->C_EncryptInit(s, &mech, k), CKR_OK)) {
			l2 = sizeof ct2;
			f->C_Encrypt(s, (CK_BYTE_PTR)msg, sizeof msg, ct2, &l2);
			abi_check("GCM: 40-byte layout gets the IV", all_zero(iv2, 12) == !cloudhsm, "IV %s",
				  all_zero(iv2, 12) ? "zero" : "written");
		}
	}

	/* C_WrapKey with CKM_AES_GCM: the IV comes back the same way. */
	{
		CK_BYTE wiv[12] = { 0 }, wrapped[128];
		CK_ULONG wl = 0;
		CK_GCM_PARAMS p = { wiv, 12, 96, NULL, 0, 128 };
		CK_MECHANISM mech = { CKM_AES_GCM, &p, sizeof p };
		CK_OBJECT_HANDLE target, back;
		CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = CKK_AES;
		CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt },
				     { CKA_TOKEN, &no, sizeof no }, { CKA_ENCRYPT, &yes, sizeof yes } };

		target = gen_secret(CKM_AES_KEY_GEN, 16, &rv);
		if (!abi_check_rv("GCM wrap: C_WrapKey length", f->C_WrapKey(s, &mech, k, target, NULL, &wl), CKR_OK))
			return;
		abi_check("GCM wrap: IV written", all_zero(wiv, 12) == !cloudhsm, "IV %s",
			  all_zero(wiv, 12) ? "zero" : "written");
		wl = sizeof wrapped;
		if (!abi_check_rv("GCM wrap: C_WrapKey", f->C_WrapKey(s, &mech, k, target, wrapped, &wl), CKR_OK))
			return;
		abi_check_rv("GCM wrap: C_UnwrapKey with the IV", f->C_UnwrapKey(s, &mech, k, wrapped, wl, t, LEN(t), &back),
			     CKR_OK);
	}
}

/* Sign with a MAC over n bytes in parts of at most part bytes (0: C_Sign). */
static CK_RV mac(CK_MECHANISM_TYPE mt, CK_OBJECT_HANDLE k, const CK_BYTE *in, CK_ULONG n, CK_ULONG part)
{
	CK_MECHANISM mech = { mt, NULL, 0 };
	CK_BYTE out[512];
	CK_ULONG ol = sizeof out, off;
	CK_RV rv = f->C_SignInit(s, &mech, k);

	if (rv != CKR_OK)
		return rv;
	if (part == 0)
		return f->C_Sign(s, (CK_BYTE_PTR)in, n, out, &ol);
	for (off = 0; off < n; off += part) {
		rv = f->C_SignUpdate(s, (CK_BYTE_PTR)in + off, n - off < part ? n - off : part);
		if (rv != CKR_OK)
			return rv;
	}
	return f->C_SignFinal(s, out, &ol);
}

static CK_RV crypt(int enc, CK_MECHANISM *mech, CK_OBJECT_HANDLE k, const CK_BYTE *in, CK_ULONG n, CK_ULONG part,
		   CK_BYTE *out, CK_ULONG *outlen)
{
	CK_RV rv = enc ? f->C_EncryptInit(s, mech, k) : f->C_DecryptInit(s, mech, k);
	CK_ULONG off, done = 0, l;

	if (rv != CKR_OK)
		return rv;
	if (part == 0)
		return enc ? f->C_Encrypt(s, (CK_BYTE_PTR)in, n, out, outlen) : f->C_Decrypt(s, (CK_BYTE_PTR)in, n, out, outlen);
	for (off = 0; off < n; off += part) {
		l = *outlen - done;
		rv = enc ? f->C_EncryptUpdate(s, (CK_BYTE_PTR)in + off, n - off < part ? n - off : part, out + done, &l)
			 : f->C_DecryptUpdate(s, (CK_BYTE_PTR)in + off, n - off < part ? n - off : part, out + done, &l);
		if (rv != CKR_OK)
			return rv;
		done += l;
	}
	l = *outlen - done;
	rv = enc ? f->C_EncryptFinal(s, out + done, &l) : f->C_DecryptFinal(s, out + done, &l);
	*outlen = done + l;
	return rv;
}

/* 3. Per-mechanism maximum input sizes (behaviour 18). */
static void caps(CK_OBJECT_HANDLE aes, CK_OBJECT_HANDLE hk)
{
	static const struct {
		CK_MECHANISM_TYPE t;
		CK_ULONG max;
		const char *name;
	} hmacs[] = {
		{ CKM_SHA_1_HMAC, 16288, "CKM_SHA_1_HMAC" },   { CKM_SHA224_HMAC, 16256, "CKM_SHA224_HMAC" },
		{ CKM_SHA256_HMAC, 16288, "CKM_SHA256_HMAC" }, { CKM_SHA384_HMAC, 16224, "CKM_SHA384_HMAC" },
		{ CKM_SHA512_HMAC, 16224, "CKM_SHA512_HMAC" },
	};
	static CK_BYTE in[17000], out[17100], back[17100];
	CK_BYTE iv[16] = { 0 };
	CK_MECHANISM cbc = { CKM_AES_CBC, iv, sizeof iv };
	CK_ULONG ol, bl;
	char name[128];
	size_t i;

	for (i = 0; i < LEN(hmacs); i++) {
		snprintf(name, sizeof name, "%s: %lu bytes", hmacs[i].name, (unsigned long)hmacs[i].max);
		abi_check_rv(name, mac(hmacs[i].t, hk, in, hmacs[i].max, 0), CKR_OK);
		snprintf(name, sizeof name, "%s: %lu bytes", hmacs[i].name, (unsigned long)hmacs[i].max + 1);
		abi_check_rv(name, mac(hmacs[i].t, hk, in, hmacs[i].max + 1, 0), want(CKR_DATA_LEN_RANGE, CKR_OK));
		snprintf(name, sizeof name, "%s: %lu bytes in parts", hmacs[i].name, (unsigned long)hmacs[i].max);
		abi_check_rv(name, mac(hmacs[i].t, hk, in, hmacs[i].max, 5000), CKR_OK);
		snprintf(name, sizeof name, "%s: %lu bytes in parts", hmacs[i].name, (unsigned long)hmacs[i].max + 1);
		abi_check_rv(name, mac(hmacs[i].t, hk, in, hmacs[i].max + 1, 5000), want(CKR_DATA_LEN_RANGE, CKR_OK));
	}
	ol = sizeof out;
	abi_check_rv("CKM_AES_CBC: 16272 bytes", crypt(1, &cbc, aes, in, 16272, 0, out, &ol), CKR_OK);
	bl = sizeof back;
	abi_check_rv("CKM_AES_CBC: decrypt 16272 bytes", crypt(0, &cbc, aes, out, ol, 0, back, &bl), CKR_OK);
	ol = sizeof out;
	abi_check_rv("CKM_AES_CBC: 16288 bytes", crypt(1, &cbc, aes, in, 16288, 0, out, &ol), want(CKR_DATA_LEN_RANGE, CKR_OK));
	ol = sizeof out;
	abi_check_rv("CKM_AES_CBC: 16288 bytes in parts", crypt(1, &cbc, aes, in, 16288, 4096, out, &ol),
		     want(CKR_DATA_LEN_RANGE, CKR_OK));
	ol = sizeof out;
	abi_check_rv("CKM_AES_CBC: decrypt 16288 bytes in parts", crypt(0, &cbc, aes, in, 16288, 4096, out, &ol),
		     want(CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_OK));
	{
		CK_BYTE giv[12] = { 0 };
		CK_ULONG gl = sizeof out;

		abi_check_rv("CKM_AES_GCM: 16224 bytes", gcm_encrypt(aes, giv, 12, in, 16224, out, &gl, NULL), CKR_OK);
		bl = sizeof back;
		abi_check_rv("CKM_AES_GCM: decrypt 16224 bytes' ciphertext", gcm_decrypt(aes, giv, out, gl, back, &bl), CKR_OK);
		memset(giv, 0, sizeof giv);
		gl = sizeof out;
		abi_check_rv("CKM_AES_GCM: 16225 bytes", gcm_encrypt(aes, giv, 12, in, 16225, out, &gl, NULL),
			     want(CKR_DATA_LEN_RANGE, CKR_OK));
	}
	/* Hashed in the client: any multi-part length (4 MiB here). */
	{
		CK_BYTE *big = calloc(1, 1 << 20);
		CK_MECHANISM sha = { CKM_SHA256, NULL, 0 };
		CK_MECHANISM rsa = { CKM_SHA256_RSA_PKCS, NULL, 0 };
		CK_BYTE d[512];
		CK_ULONG dl = sizeof d;
		CK_RV rv;
		int j;

		rv = f->C_DigestInit(s, &sha);
		for (j = 0; j < 4 && rv == CKR_OK; j++)
			rv = f->C_DigestUpdate(s, big, 1 << 20);
		if (rv == CKR_OK)
			rv = f->C_DigestFinal(s, d, &dl);
		abi_check_rv("CKM_SHA256: 4 MiB in parts", rv, CKR_OK);
		dl = sizeof d;
		rv = f->C_SignInit(s, &rsa, rsa_priv);
		for (j = 0; j < 4 && rv == CKR_OK; j++)
			rv = f->C_SignUpdate(s, big, 1 << 20);
		if (rv == CKR_OK)
			rv = f->C_SignFinal(s, d, &dl);
		abi_check_rv("CKM_SHA256_RSA_PKCS: 4 MiB in parts", rv, CKR_OK);
		free(big);
	}
}

/* 4. Single-part only (behaviour 19). */
static void single_part(CK_OBJECT_HANDLE aes)
{
	CK_BYTE iv[12] = { 0 }, out[256];
	CK_ULONG ol = sizeof out;
	CK_GCM_PARAMS p = { iv, 12, 96, NULL, 0, 128 };
	CK_MECHANISM gcm = { CKM_AES_GCM, &p, sizeof p };
	CK_MECHANISM pkcs = { CKM_RSA_PKCS, NULL, 0 };
	CK_RSA_PKCS_OAEP_PARAMS op = { CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0 };
	CK_MECHANISM oaep = { CKM_RSA_PKCS_OAEP, &op, sizeof op };
	CK_RV rv;

	if (abi_check_rv("single-part: C_EncryptInit CKM_AES_GCM", f->C_EncryptInit(s, &gcm, aes), CKR_OK)) {
		rv = f->C_EncryptUpdate(s, (CK_BYTE_PTR) "part", 4, out, &ol);
		abi_check_rv("single-part: C_EncryptUpdate CKM_AES_GCM", rv, want(CKR_MECHANISM_INVALID, CKR_OK));
		if (rv == CKR_OK) {
			ol = sizeof out;
			f->C_EncryptFinal(s, out, &ol);
		}
	}
	memcpy(iv, "known-iv-12b", 12);
	if (abi_check_rv("single-part: C_DecryptInit CKM_AES_GCM", f->C_DecryptInit(s, &gcm, aes), CKR_OK)) {
		ol = sizeof out;
		rv = f->C_DecryptUpdate(s, out, 32, out + 64, &ol);
		abi_check_rv("single-part: C_DecryptUpdate CKM_AES_GCM", rv, want(CKR_MECHANISM_INVALID, CKR_OK));
		if (rv == CKR_OK) {
			ol = sizeof out;
			f->C_DecryptFinal(s, out, &ol); /* the tag fails: ends it */
		}
	}
	if (abi_check_rv("single-part: C_SignInit CKM_RSA_PKCS", f->C_SignInit(s, &pkcs, rsa_priv), CKR_OK))
		abi_check_rv("single-part: C_SignUpdate CKM_RSA_PKCS", f->C_SignUpdate(s, (CK_BYTE_PTR) "x", 1),
			     CKR_FUNCTION_NOT_SUPPORTED);
	if (abi_check_rv("single-part: C_EncryptInit CKM_RSA_PKCS_OAEP", f->C_EncryptInit(s, &oaep, rsa_pub), CKR_OK)) {
		ol = sizeof out;
		abi_check_rv("single-part: C_EncryptUpdate CKM_RSA_PKCS_OAEP",
			     f->C_EncryptUpdate(s, (CK_BYTE_PTR) "x", 1, out, &ol), CKR_FUNCTION_NOT_SUPPORTED);
	}
}

/* 5. OAEP hash/MGF pairs (behaviour 20). */
static void oaep(CK_OBJECT_HANDLE aes)
{
	static const struct {
		CK_MECHANISM_TYPE hash;
		CK_RSA_PKCS_MGF_TYPE mgf;
		int pair;
		const char *name;
	} c[] = {
		{ CKM_SHA_1, CKG_MGF1_SHA1, 1, "SHA-1/MGF1-SHA1" },
		{ CKM_SHA224, CKG_MGF1_SHA224, 1, "SHA-224/MGF1-SHA224" },
		{ CKM_SHA256, CKG_MGF1_SHA256, 1, "SHA-256/MGF1-SHA256" },
		{ CKM_SHA384, CKG_MGF1_SHA384, 1, "SHA-384/MGF1-SHA384" },
		{ CKM_SHA512, CKG_MGF1_SHA512, 1, "SHA-512/MGF1-SHA512" },
		{ CKM_SHA256, CKG_MGF1_SHA1, 0, "SHA-256/MGF1-SHA1" },
		{ CKM_SHA_1, CKG_MGF1_SHA256, 0, "SHA-1/MGF1-SHA256" },
	};
	static const CK_BYTE msg[] = "oaep";
	CK_BYTE ct[256], pt[256], wrapped[256];
	CK_ULONG cl, pl, wl;
	char name[96];
	size_t i;

	for (i = 0; i < LEN(c); i++) {
		CK_RSA_PKCS_OAEP_PARAMS p = { c[i].hash, c[i].mgf, CKZ_DATA_SPECIFIED, NULL, 0 };
		CK_MECHANISM mech = { CKM_RSA_PKCS_OAEP, &p, sizeof p };
		CK_RV exp = c[i].pair ? CKR_OK : want(CKR_MECHANISM_PARAM_INVALID, CKR_OK);
		CK_RV rv;

		snprintf(name, sizeof name, "OAEP %s: encrypt", c[i].name);
		rv = f->C_EncryptInit(s, &mech, rsa_pub);
		if (rv == CKR_OK) {
			cl = sizeof ct;
			rv = f->C_Encrypt(s, (CK_BYTE_PTR)msg, sizeof msg, ct, &cl);
		}
		if (!abi_check_rv(name, rv, exp) || rv != CKR_OK) {
			snprintf(name, sizeof name, "OAEP %s: C_WrapKey", c[i].name);
			wl = sizeof wrapped;
			abi_check_rv(name, f->C_WrapKey(s, &mech, rsa_pub, aes, wrapped, &wl), exp);
			continue;
		}
		snprintf(name, sizeof name, "OAEP %s: decrypt", c[i].name);
		rv = f->C_DecryptInit(s, &mech, rsa_priv);
		if (rv == CKR_OK) {
			pl = sizeof pt;
			rv = f->C_Decrypt(s, ct, cl, pt, &pl);
		}
		if (abi_check_rv(name, rv, CKR_OK))
			abi_check(name, pl == sizeof msg && memcmp(pt, msg, pl) == 0, "round trip differs");
	}
}

/* 6. FIPS mode (behaviour 25). */
static void fips_mode(CK_OBJECT_HANDLE aes)
{
	CK_RV refused = fips ? CKR_MECHANISM_INVALID : CKR_OK, rv;
	CK_MECHANISM pkcs = { CKM_RSA_PKCS, NULL, 0 };
	CK_BYTE out[256];
	CK_ULONG ol = sizeof out;
	CK_OBJECT_HANDLE des3;
	CK_MECHANISM_INFO info;

	des3 = gen_secret(CKM_DES3_KEY_GEN, 24, &rv);
	abi_check_rv("FIPS: C_GenerateKey CKM_DES3_KEY_GEN", rv, refused);
	if (rv == CKR_OK) {
		CK_BYTE iv[8] = { 0 };
		CK_MECHANISM cbc = { CKM_DES3_CBC, iv, sizeof iv };

		ol = sizeof out;
		abi_check_rv("FIPS: 3DES-CBC encrypt", crypt(1, &cbc, des3, (CK_BYTE_PTR) "eight by", 8, 0, out, &ol), CKR_OK);
	}
	abi_check_rv("FIPS: C_GetMechanismInfo CKM_DES3_CBC", f->C_GetMechanismInfo(slot, CKM_DES3_CBC, &info), refused);
	rv = f->C_EncryptInit(s, &pkcs, rsa_pub);
	abi_check_rv("FIPS: C_EncryptInit CKM_RSA_PKCS", rv, refused);
	if (rv == CKR_OK) {
		ol = sizeof out;
		f->C_Encrypt(s, (CK_BYTE_PTR) "x", 1, out, &ol);
	}
	rv = f->C_DecryptInit(s, &pkcs, rsa_priv);
	abi_check_rv("FIPS: C_DecryptInit CKM_RSA_PKCS", rv, refused);
	if (rv == CKR_OK) {
		CK_BYTE junk[256] = { 0 };

		ol = sizeof out;
		f->C_Decrypt(s, junk, sizeof junk, out, &ol); /* fails: ends it */
	}
	ol = sizeof out;
	abi_check_rv("FIPS: C_WrapKey CKM_RSA_PKCS", f->C_WrapKey(s, &pkcs, rsa_pub, aes, out, &ol), refused);
	ol = sizeof out;
	rv = f->C_SignInit(s, &pkcs, rsa_priv);
	if (rv == CKR_OK)
		rv = f->C_Sign(s, (CK_BYTE_PTR) "x", 1, out, &ol);
	abi_check_rv("FIPS: CKM_RSA_PKCS signature", rv, CKR_OK);
	if (abi_check_rv("FIPS: C_GetMechanismInfo CKM_RSA_PKCS", f->C_GetMechanismInfo(slot, CKM_RSA_PKCS, &info), CKR_OK))
		abi_check("FIPS: CKM_RSA_PKCS flags", !(info.flags & CKF_ENCRYPT) == (refused != CKR_OK) && (info.flags & CKF_SIGN),
			  "flags 0x%lx", (unsigned long)info.flags);
}

int main(int argc, char **argv)
{
	CK_OBJECT_HANDLE aes, hk;
	CK_RV rv;

	if (argc != 4) {
		fprintf(stderr, "usage: %s /path/to/libgohsm.so standard|cloudhsm|cloudhsm-nonfips name:password\n", argv[0]);
		return 2;
	}
	cloudhsm = strncmp(argv[2], "cloudhsm", 8) == 0;
	fips = strcmp(argv[2], "cloudhsm") == 0;
	abi_load(argv[1], &m);
	f = m.f3;
	if (!abi_check_rv("C_Initialize", abi_initialize(&m), CKR_OK) || !abi_first_slot(&m, &slot))
		return abi_exit();
	if (!abi_check_rv("setup: C_OpenSession",
			  f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK) ||
	    !abi_check_rv("setup: C_Login crypto user",
			  f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)argv[3], strlen(argv[3])), CKR_OK))
		return abi_exit();
	aes = gen_secret(CKM_AES_KEY_GEN, 32, &rv);
	if (!abi_check_rv("setup: AES-256 key", rv, CKR_OK))
		return abi_exit();
	hk = gen_secret(CKM_GENERIC_SECRET_KEY_GEN, 32, &rv);
	if (!abi_check_rv("setup: HMAC key", rv, CKR_OK) || !gen_rsa())
		return abi_exit();

	list(aes);
	gcm(aes);
	caps(aes, hk);
	single_part(aes);
	oaep(aes);
	fips_mode(aes);

	f->C_CloseSession(s);
	f->C_Finalize(NULL);
	return abi_exit();
}
