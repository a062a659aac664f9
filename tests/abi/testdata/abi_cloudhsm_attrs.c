/*
 * abi_cloudhsm_attrs.c - the attribute and key-limit behaviours of the
 * cloudhsm profile (docs/cloudhsm.md, "Attributes" and "Key limits and
 * quotas"), through the C ABI, run once per profile:
 *
 *   abi_cloudhsm_attrs /path/to/libgohsm.so standard|cloudhsm [fill]
 *
 * With "fill" it only creates token AES keys until a creation fails and
 * prints "MADE n rv": cloudhsm_attrs_test.go runs two such processes at
 * once to check that together they stop at the key quota.
 *
 * Each check says what both profiles answer; where they differ the same
 * scenario passes in one and fails in the other with the documented
 * error. The token is set up by cloudhsm_attrs_test.go through the gohsm
 * CLI (CloudHSM has no C_InitToken/C_InitPIN for applications): crypto
 * user "user" with password "user-pw-1", an RSA key pair labelled
 * "trusted-kek" whose public key an officer marked CKA_TRUSTED, and the
 * slot's test quotas (ignored by standard, which has none): 6 token keys,
 * 4 asymmetric, 2 certificates.
 */
#include "abi.h"
#include "gohsm.h"

#define USER_PIN "user:user-pw-1"
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static struct abi_module m;
static CK_FUNCTION_LIST_3_2_PTR f;
static CK_SESSION_HANDLE s;
static int cloudhsm;
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_OBJECT_CLASS secret_class = CKO_SECRET_KEY, public_class = CKO_PUBLIC_KEY, cert_class = CKO_CERTIFICATE;
static CK_KEY_TYPE aes_type = CKK_AES;
static CK_CERTIFICATE_TYPE x509 = CKC_X_509;
static CK_BYTE e65537[] = { 1, 0, 1 };
static char name[256];

#define CKR_ATTRIBUTE_READ_ONLY_ 0x10UL

/* want: the answer in standard, then in cloudhsm. */
static void check(const char *what, CK_RV got, CK_RV std, CK_RV chsm)
{
	snprintf(name, sizeof name, "%s: %s", cloudhsm ? "cloudhsm" : "standard", what);
	abi_check_rv(name, got, cloudhsm ? chsm : std);
}

static void check_bool(const char *what, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE a, CK_BBOOL std, CK_BBOOL chsm)
{
	CK_BBOOL v = 0xff;
	CK_ATTRIBUTE t = { a, &v, sizeof v };
	CK_RV rv = f->C_GetAttributeValue(s, o, &t, 1);
	CK_BBOOL want = cloudhsm ? chsm : std;

	snprintf(name, sizeof name, "%s: %s", cloudhsm ? "cloudhsm" : "standard", what);
	abi_check(name, rv == CKR_OK && v == want, "rv %s value %d, want %d", abi_rv_name(rv), v, want);
}

static CK_RV gen_aes(CK_ULONG len, CK_ATTRIBUTE *extra, CK_ULONG n, CK_OBJECT_HANDLE *k)
{
	CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ATTRIBUTE t[16] = { { CKA_VALUE_LEN, &len, sizeof len } };
	CK_ULONG i;

	for (i = 0; i < n; i++)
		t[1 + i] = extra[i];
	return f->C_GenerateKey(s, &mech, t, 1 + n, k);
}

static CK_RV gen_secret(CK_ULONG len, CK_OBJECT_HANDLE *k)
{
	CK_MECHANISM mech = { CKM_GENERIC_SECRET_KEY_GEN, NULL, 0 };
	CK_ATTRIBUTE t[] = { { CKA_VALUE_LEN, &len, sizeof len } };

	return f->C_GenerateKey(s, &mech, t, 1, k);
}

static CK_RV create_aes(CK_ATTRIBUTE *extra, CK_ULONG n, CK_OBJECT_HANDLE *k)
{
	static CK_BYTE value[16];
	CK_ATTRIBUTE t[16] = {
		{ CKA_CLASS, &secret_class, sizeof secret_class },
		{ CKA_KEY_TYPE, &aes_type, sizeof aes_type },
		{ CKA_VALUE, value, sizeof value },
	};
	CK_ULONG i;

	for (i = 0; i < n; i++)
		t[3 + i] = extra[i];
	return f->C_CreateObject(s, t, 3 + n, k);
}

/* An RSA pair; pub/priv extra attributes; bits 0: no CKA_MODULUS_BITS;
 * with_exp 0: no CKA_PUBLIC_EXPONENT. */
static CK_RV gen_rsa(CK_ULONG bits, int with_exp, CK_ATTRIBUTE *pubx, CK_ULONG npub, CK_ATTRIBUTE *privx, CK_ULONG npriv,
		     CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM mech = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pt[16], vt[16];
	CK_ULONG np = 0, nv = 0, i;

	if (bits)
		pt[np++] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits, sizeof bits };
	if (with_exp)
		pt[np++] = (CK_ATTRIBUTE){ CKA_PUBLIC_EXPONENT, e65537, sizeof e65537 };
	for (i = 0; i < npub; i++)
		pt[np++] = pubx[i];
	for (i = 0; i < npriv; i++)
		vt[nv++] = privx[i];
	return f->C_GenerateKeyPair(s, &mech, pt, np, vt, nv, pub, priv);
}

static CK_OBJECT_HANDLE find_one(CK_OBJECT_CLASS cls, const char *label)
{
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_LABEL, (void *)label, strlen(label) } };
	CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
	CK_ULONG n = 0;

	if (f->C_FindObjectsInit(s, t, 2) != CKR_OK)
		return CK_INVALID_HANDLE;
	f->C_FindObjects(s, &o, 1, &n);
	f->C_FindObjectsFinal(s);
	return n == 1 ? o : CK_INVALID_HANDLE;
}

/* Behaviours 11, 12, 13: defaults, read-only and unsupported attributes,
 * mandatory attributes, CKA_PRIVATE / CKA_MODIFIABLE, private components. */
static void attributes(void)
{
	CK_OBJECT_HANDLE k, pub, priv;
	CK_BYTE iv[16] = { 0 }, buf[64];
	CK_ULONG n = sizeof buf;
	CK_MECHANISM cbc = { CKM_AES_CBC, iv, sizeof iv };
	CK_BYTE date[8] = { '2', '0', '2', '6', '0', '1', '0', '1' };
	CK_BYTE kcv[3] = { 0x66, 0xe9, 0x4b }; /* AES-128 of zeros encrypting a zero block */
	CK_BYTE big[512];
	CK_ATTRIBUTE a;
	CK_RV rv;

	if (!abi_check_rv("setup: generate AES-128 with the defaults", gen_aes(16, NULL, 0, &k), CKR_OK))
		return;
	check_bool("generated AES CKA_ENCRYPT default (usage false in cloudhsm)", k, CKA_ENCRYPT, CK_TRUE, CK_FALSE);
	check_bool("generated AES CKA_SIGN default", k, CKA_SIGN, CK_TRUE, CK_FALSE);
	check_bool("generated AES CKA_WRAP default", k, CKA_WRAP, CK_TRUE, CK_FALSE);
	check_bool("generated AES CKA_DERIVE default", k, CKA_DERIVE, CK_FALSE, CK_FALSE);
	check_bool("CKA_TOKEN default false", k, CKA_TOKEN, CK_FALSE, CK_FALSE);
	check_bool("CKA_SENSITIVE default true", k, CKA_SENSITIVE, CK_TRUE, CK_TRUE);
	check_bool("CKA_EXTRACTABLE default true", k, CKA_EXTRACTABLE, CK_TRUE, CK_TRUE);
	check_bool("CKA_DESTROYABLE default true", k, CKA_DESTROYABLE, CK_TRUE, CK_TRUE);
	check_bool("CKA_LOCAL of a generated key", k, CKA_LOCAL, CK_TRUE, CK_TRUE);
	rv = f->C_EncryptInit(s, &cbc, k);
	if (rv == CKR_OK)
		rv = f->C_Encrypt(s, iv, sizeof iv, buf, &n);
	check("encrypt with a default-attribute key", rv, CKR_OK, CKR_KEY_FUNCTION_NOT_PERMITTED);

	if (abi_check_rv("setup: create AES-128", create_aes(NULL, 0, &k), CKR_OK))
		check_bool("CKA_LOCAL of a created key", k, CKA_LOCAL, CK_FALSE, CK_FALSE);

	/* Read-only attributes in a template. */
	a = (CK_ATTRIBUTE){ CKA_LOCAL, &yes, sizeof yes };
	check("CKA_LOCAL in a template", gen_aes(16, &a, 1, &k), CKR_ATTRIBUTE_READ_ONLY_, CKR_ATTRIBUTE_READ_ONLY_);
	a = (CK_ATTRIBUTE){ CKA_ALWAYS_SENSITIVE, &yes, sizeof yes };
	check("CKA_ALWAYS_SENSITIVE in a template", gen_aes(16, &a, 1, &k), CKR_ATTRIBUTE_READ_ONLY_, CKR_ATTRIBUTE_READ_ONLY_);
	a = (CK_ATTRIBUTE){ CKA_NEVER_EXTRACTABLE, &no, sizeof no };
	check("CKA_NEVER_EXTRACTABLE in a template", gen_aes(16, &a, 1, &k), CKR_ATTRIBUTE_READ_ONLY_, CKR_ATTRIBUTE_READ_ONLY_);
	a = (CK_ATTRIBUTE){ CKA_CHECK_VALUE, kcv, sizeof kcv };
	check("CKA_CHECK_VALUE (the right one) in a create template", create_aes(&a, 1, &k), CKR_OK, CKR_ATTRIBUTE_READ_ONLY_);

	/* Unsupported attributes. */
	a = (CK_ATTRIBUTE){ CKA_START_DATE, date, sizeof date };
	check("CKA_START_DATE in a template", gen_aes(16, &a, 1, &k), CKR_OK, CKR_TEMPLATE_INCONSISTENT);
	a = (CK_ATTRIBUTE){ CKA_ALWAYS_AUTHENTICATE, &no, sizeof no };
	check("CKA_ALWAYS_AUTHENTICATE in a private template",
	      gen_rsa(2048, 1, NULL, 0, &a, 1, &pub, &priv), CKR_OK, CKR_TEMPLATE_INCONSISTENT);
	if (abi_check_rv("setup: generate AES-128", gen_aes(16, NULL, 0, &k), CKR_OK)) {
		a = (CK_ATTRIBUTE){ CKA_START_DATE, date, sizeof date };
		check("read CKA_START_DATE", f->C_GetAttributeValue(s, k, &a, 1), CKR_OK, CKR_ATTRIBUTE_TYPE_INVALID);
		a = (CK_ATTRIBUTE){ CKA_KEY_GEN_MECHANISM, big, sizeof big };
		check("read CKA_KEY_GEN_MECHANISM", f->C_GetAttributeValue(s, k, &a, 1), CKR_OK, CKR_ATTRIBUTE_TYPE_INVALID);
	}

	/* Mandatory attributes (CKR_TEMPLATE_INCOMPLETE: PKCS#11 has no
	 * CKR_ATTRIBUTE_INCOMPLETE). */
	{
		CK_MECHANISM kg = { CKM_AES_KEY_GEN, NULL, 0 };
		CK_ATTRIBUTE t[] = { { CKA_TOKEN, &no, sizeof no } };

		check("AES without CKA_VALUE_LEN", f->C_GenerateKey(s, &kg, t, 1, &k), CKR_TEMPLATE_INCOMPLETE,
		      CKR_TEMPLATE_INCOMPLETE);
	}
	check("RSA without CKA_MODULUS_BITS", gen_rsa(0, 1, NULL, 0, NULL, 0, &pub, &priv), CKR_TEMPLATE_INCOMPLETE,
	      CKR_TEMPLATE_INCOMPLETE);
	check("RSA without CKA_PUBLIC_EXPONENT", gen_rsa(2048, 0, NULL, 0, NULL, 0, &pub, &priv), CKR_OK, CKR_TEMPLATE_INCOMPLETE);
	{
		CK_MECHANISM ec = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };

		check("EC without CKA_EC_PARAMS", f->C_GenerateKeyPair(s, &ec, NULL, 0, NULL, 0, &pub, &priv),
		      CKR_TEMPLATE_INCOMPLETE, CKR_TEMPLATE_INCOMPLETE);
	}

	/* CKA_PRIVATE and CKA_MODIFIABLE only at their default (true). */
	a = (CK_ATTRIBUTE){ CKA_PRIVATE, &no, sizeof no };
	check("AES with CKA_PRIVATE false", gen_aes(16, &a, 1, &k), CKR_OK, CKR_ATTRIBUTE_VALUE_INVALID);
	a = (CK_ATTRIBUTE){ CKA_MODIFIABLE, &no, sizeof no };
	check("AES with CKA_MODIFIABLE false", gen_aes(16, &a, 1, &k), CKR_OK, CKR_ATTRIBUTE_VALUE_INVALID);
	{
		CK_ATTRIBUTE two[] = { { CKA_PRIVATE, &yes, sizeof yes }, { CKA_MODIFIABLE, &yes, sizeof yes } };

		check("AES with CKA_PRIVATE and CKA_MODIFIABLE true", gen_aes(16, two, 2, &k), CKR_OK, CKR_OK);
	}

	/* Private components: never returned in cloudhsm, even of a
	 * non-sensitive extractable key; standard returns those. */
	{
		CK_ATTRIBUTE privx[] = { { CKA_SENSITIVE, &no, sizeof no }, { CKA_EXTRACTABLE, &yes, sizeof yes } };

		if (abi_check_rv("setup: RSA-2048 pair, private key not sensitive",
				 gen_rsa(2048, 1, NULL, 0, privx, 2, &pub, &priv), CKR_OK)) {
			a = (CK_ATTRIBUTE){ CKA_PRIVATE_EXPONENT, big, sizeof big };
			check("read CKA_PRIVATE_EXPONENT of a non-sensitive key", f->C_GetAttributeValue(s, priv, &a, 1), CKR_OK,
			      CKR_ATTRIBUTE_SENSITIVE);
			a = (CK_ATTRIBUTE){ CKA_PRIME_1, big, sizeof big };
			check("read CKA_PRIME_1 of a non-sensitive key", f->C_GetAttributeValue(s, priv, &a, 1), CKR_OK,
			      CKR_ATTRIBUTE_SENSITIVE);
		}
		if (abi_check_rv("setup: RSA-2048 pair", gen_rsa(2048, 1, NULL, 0, NULL, 0, &pub, &priv), CKR_OK)) {
			a = (CK_ATTRIBUTE){ CKA_PRIVATE_EXPONENT, big, sizeof big };
			check("read CKA_PRIVATE_EXPONENT of a sensitive key", f->C_GetAttributeValue(s, priv, &a, 1),
			      CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_SENSITIVE);
		}
	}
}

/* Behaviour 23 through C_SetAttributeValue: the spec's rules in standard;
 * in cloudhsm the function is refused for keys as a whole
 * (CKR_FUNCTION_NOT_SUPPORTED, the identity rows), and the rules hold on
 * the token's SetKeyAttributes (token:TestCloudHSMChangeRules). */
static void changes(void)
{
	CK_OBJECT_HANDLE k;
	CK_BYTE id[] = { 'b' };
	CK_ATTRIBUTE idt[] = { { CKA_ID, "a", 1 }, { CKA_WRAP_WITH_TRUSTED, &yes, sizeof yes } };
	CK_ATTRIBUTE a;

	if (!abi_check_rv("setup: AES with CKA_ID and CKA_WRAP_WITH_TRUSTED", gen_aes(16, idt, 2, &k), CKR_OK))
		return;
	a = (CK_ATTRIBUTE){ CKA_ID, id, sizeof id };
	check("C_SetAttributeValue CKA_ID", f->C_SetAttributeValue(s, k, &a, 1), CKR_OK, CKR_FUNCTION_NOT_SUPPORTED);
	a = (CK_ATTRIBUTE){ CKA_WRAP_WITH_TRUSTED, &no, sizeof no };
	check("C_SetAttributeValue CKA_WRAP_WITH_TRUSTED back to false", f->C_SetAttributeValue(s, k, &a, 1),
	      CKR_ATTRIBUTE_READ_ONLY_, CKR_FUNCTION_NOT_SUPPORTED);
	a = (CK_ATTRIBUTE){ CKA_TRUSTED, &yes, sizeof yes };
	check("C_SetAttributeValue CKA_TRUSTED by a crypto user", f->C_SetAttributeValue(s, k, &a, 1),
	      CKR_ATTRIBUTE_READ_ONLY_, CKR_FUNCTION_NOT_SUPPORTED);
}

/* Behaviour 14: key sizes at generation and creation, and
 * C_GetMechanismInfo. */
static void sizes(void)
{
	CK_OBJECT_HANDLE k, pub, priv;
	CK_MECHANISM_INFO info;
	CK_SLOT_ID slot;
	CK_RV rv;

	check("RSA-1024 generation", gen_rsa(1024, 1, NULL, 0, NULL, 0, &pub, &priv), CKR_OK, CKR_ATTRIBUTE_VALUE_INVALID);
	check("RSA-2056 generation (not a 256-bit step)", gen_rsa(2056, 1, NULL, 0, NULL, 0, &pub, &priv), CKR_OK,
	      CKR_ATTRIBUTE_VALUE_INVALID);
	check("RSA-2304 generation", gen_rsa(2304, 1, NULL, 0, NULL, 0, &pub, &priv), CKR_OK, CKR_OK);
	check("generic secret of 800 bytes", gen_secret(800, &k), CKR_OK, CKR_OK);
	check("generic secret of 801 bytes", gen_secret(801, &k), CKR_OK, CKR_ATTRIBUTE_VALUE_INVALID);
	check("AES of 20 bytes", gen_aes(20, NULL, 0, &k), CKR_ATTRIBUTE_VALUE_INVALID, CKR_ATTRIBUTE_VALUE_INVALID);
	check("AES of 24 bytes", gen_aes(24, NULL, 0, &k), CKR_OK, CKR_OK);
	{
		/* An Ed25519 public key (RFC 8032 test 1's): not an SDK 5 key type. */
		static CK_BYTE ed_oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
		static CK_BYTE ed_point[] = { 0x04, 0x20, 0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
					      0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25,
					      0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a };
		CK_KEY_TYPE ed = CKK_EC_EDWARDS;
		CK_ATTRIBUTE t[] = { { CKA_CLASS, &public_class, sizeof public_class },
				     { CKA_KEY_TYPE, &ed, sizeof ed },
				     { CKA_EC_PARAMS, ed_oid, sizeof ed_oid },
				     { CKA_EC_POINT, ed_point, sizeof ed_point } };

		check("create an Ed25519 public key", f->C_CreateObject(s, t, LEN(t), &k), CKR_OK, CKR_ATTRIBUTE_VALUE_INVALID);
	}
	if (!abi_first_slot(&m, &slot))
		return;
	rv = f->C_GetMechanismInfo(slot, CKM_RSA_PKCS_KEY_PAIR_GEN, &info);
	snprintf(name, sizeof name, "%s: C_GetMechanismInfo CKM_RSA_PKCS_KEY_PAIR_GEN sizes", cloudhsm ? "cloudhsm" : "standard");
	abi_check(name, rv == CKR_OK && info.ulMinKeySize == (cloudhsm ? 2048 : 1024) && info.ulMaxKeySize == 4096,
		  "rv %s %lu..%lu", abi_rv_name(rv), info.ulMinKeySize, info.ulMaxKeySize);
	rv = f->C_GetMechanismInfo(slot, CKM_GENERIC_SECRET_KEY_GEN, &info);
	snprintf(name, sizeof name, "%s: C_GetMechanismInfo CKM_GENERIC_SECRET_KEY_GEN sizes (bits)",
		 cloudhsm ? "cloudhsm" : "standard");
	abi_check(name, rv == CKR_OK && info.ulMinKeySize == 8 && info.ulMaxKeySize == (cloudhsm ? 6400 : 8192),
		  "rv %s %lu..%lu", abi_rv_name(rv), info.ulMinKeySize, info.ulMaxKeySize);
}

/* readfile reads a file the Go test wrote into the working directory. */
static size_t readfile(const char *path, CK_BYTE *buf, size_t max)
{
	FILE *fp = fopen(path, "rb");
	size_t n;

	if (fp == NULL)
		return 0;
	n = fread(buf, 1, max, fp);
	fclose(fp);
	return n;
}

/* Behaviour 14 at unwrapping: generic secrets of 800 and 801 bytes,
 * wrapped by the Go test (RFC 5649 under 32 bytes of 0x11) and unwrapped
 * with CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD, which both profiles list. */
static void unwrapping(void)
{
	static CK_BYTE kek_value[32], blob[1024];
	CK_KEY_TYPE generic = CKK_GENERIC_SECRET;
	CK_ATTRIBUTE kekx[] = { { CKA_VALUE, kek_value, sizeof kek_value }, { CKA_UNWRAP, &yes, sizeof yes } };
	CK_ATTRIBUTE kekt[] = { { CKA_CLASS, &secret_class, sizeof secret_class },
				{ CKA_KEY_TYPE, &aes_type, sizeof aes_type },
				kekx[0],
				kekx[1] };
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &secret_class, sizeof secret_class }, { CKA_KEY_TYPE, &generic, sizeof generic } };
	CK_MECHANISM kwp = { CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD, NULL, 0 };
	CK_OBJECT_HANDLE kek, k;
	size_t n;

	memset(kek_value, 0x11, sizeof kek_value);
	if (!abi_check_rv("setup: the unwrapping AES key", f->C_CreateObject(s, kekt, LEN(kekt), &kek), CKR_OK))
		return;
	n = readfile("wrapped800.bin", blob, sizeof blob);
	abi_check("setup: wrapped800.bin", n == 808, "%zu bytes", n);
	check("unwrap a generic secret of 800 bytes", f->C_UnwrapKey(s, &kwp, kek, blob, n, t, LEN(t), &k), CKR_OK, CKR_OK);
	n = readfile("wrapped801.bin", blob, sizeof blob);
	abi_check("setup: wrapped801.bin", n == 816, "%zu bytes", n);
	check("unwrap a generic secret of 801 bytes", f->C_UnwrapKey(s, &kwp, kek, blob, n, t, LEN(t), &k), CKR_OK,
	      CKR_ATTRIBUTE_VALUE_INVALID);
}

/* Behaviour 22: the wrap rules, the same in both profiles (RSA-OAEP
 * SHA-256, an SDK 5 wrap mechanism). */
static void wrapping(void)
{
	CK_RSA_PKCS_OAEP_PARAMS oaep = { CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0 };
	CK_MECHANISM mech = { CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep };
	CK_OBJECT_HANDLE kek_pub, kek_priv, plain_pub, plain_priv, tpl_pub, tpl_priv, trusted, k, u;
	CK_BYTE wrapped[512];
	CK_ULONG n;
	CK_ATTRIBUTE wrap_attrs[] = { { CKA_WRAP, &yes, sizeof yes } };
	CK_ATTRIBUTE unwrap_attrs[] = { { CKA_UNWRAP, &yes, sizeof yes } };
	CK_ATTRIBUTE nowrap[] = { { CKA_WRAP, &no, sizeof no } };
	/* A wrap template: only keys with CKA_SIGN false. An unwrap
	 * template: unwrapped keys get CKA_ENCRYPT true. */
	CK_ATTRIBUTE wt_inner[] = { { CKA_SIGN, &no, sizeof no } };
	CK_ATTRIBUTE ut_inner[] = { { CKA_ENCRYPT, &yes, sizeof yes } };
	CK_ATTRIBUTE tpl_pubx[] = { { CKA_WRAP, &yes, sizeof yes }, { CKA_WRAP_TEMPLATE, wt_inner, sizeof wt_inner } };
	CK_ATTRIBUTE tpl_privx[] = { { CKA_UNWRAP, &yes, sizeof yes }, { CKA_UNWRAP_TEMPLATE, ut_inner, sizeof ut_inner } };
	CK_ATTRIBUTE a;

	if (!abi_check_rv("setup: wrapping RSA pair", gen_rsa(2048, 1, wrap_attrs, 1, unwrap_attrs, 1, &kek_pub, &kek_priv),
			  CKR_OK) ||
	    !abi_check_rv("setup: RSA pair without CKA_WRAP", gen_rsa(2048, 1, nowrap, 1, NULL, 0, &plain_pub, &plain_priv),
			  CKR_OK) ||
	    !abi_check_rv("setup: RSA pair with wrap and unwrap templates",
			  gen_rsa(2048, 1, tpl_pubx, LEN(tpl_pubx), tpl_privx, LEN(tpl_privx), &tpl_pub, &tpl_priv), CKR_OK))
		return;
	trusted = find_one(CKO_PUBLIC_KEY, "trusted-kek");
	abi_check("setup: the officer's trusted-kek", trusted != CK_INVALID_HANDLE, "not found");

	/* The target must be extractable. */
	a = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &no, sizeof no };
	if (abi_check_rv("setup: unextractable AES", gen_aes(16, &a, 1, &k), CKR_OK)) {
		n = sizeof wrapped;
		check("wrap an unextractable key", f->C_WrapKey(s, &mech, kek_pub, k, wrapped, &n), CKR_KEY_UNEXTRACTABLE,
		      CKR_KEY_UNEXTRACTABLE);
	}
	/* The wrapping key must have CKA_WRAP. */
	if (abi_check_rv("setup: AES", gen_aes(16, NULL, 0, &k), CKR_OK)) {
		n = sizeof wrapped;
		check("wrap with a key without CKA_WRAP", f->C_WrapKey(s, &mech, plain_pub, k, wrapped, &n),
		      CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_KEY_FUNCTION_NOT_PERMITTED);
		n = sizeof wrapped;
		check("wrap with a key with CKA_WRAP", f->C_WrapKey(s, &mech, kek_pub, k, wrapped, &n), CKR_OK, CKR_OK);
	}
	/* CKA_WRAP_WITH_TRUSTED: only a trusted wrapping key. */
	a = (CK_ATTRIBUTE){ CKA_WRAP_WITH_TRUSTED, &yes, sizeof yes };
	if (abi_check_rv("setup: AES with CKA_WRAP_WITH_TRUSTED", gen_aes(16, &a, 1, &k), CKR_OK)) {
		n = sizeof wrapped;
		check("wrap a wrap-with-trusted key with an untrusted key", f->C_WrapKey(s, &mech, kek_pub, k, wrapped, &n),
		      CKR_KEY_NOT_WRAPPABLE, CKR_KEY_NOT_WRAPPABLE);
		n = sizeof wrapped;
		check("wrap a wrap-with-trusted key with the trusted key", f->C_WrapKey(s, &mech, trusted, k, wrapped, &n),
		      CKR_OK, CKR_OK);
	}
	/* CKA_WRAP_TEMPLATE: a key that does not match is not wrapped. */
	a = (CK_ATTRIBUTE){ CKA_SIGN, &yes, sizeof yes };
	if (abi_check_rv("setup: AES with CKA_SIGN", gen_aes(16, &a, 1, &k), CKR_OK)) {
		n = sizeof wrapped;
		check("wrap a key the CKA_WRAP_TEMPLATE does not match", f->C_WrapKey(s, &mech, tpl_pub, k, wrapped, &n),
		      CKR_KEY_NOT_WRAPPABLE, CKR_KEY_NOT_WRAPPABLE);
	}
	a = (CK_ATTRIBUTE){ CKA_SIGN, &no, sizeof no };
	if (abi_check_rv("setup: AES without CKA_SIGN", gen_aes(16, &a, 1, &k), CKR_OK)) {
		CK_RV rv;

		n = sizeof wrapped;
		rv = f->C_WrapKey(s, &mech, tpl_pub, k, wrapped, &n);
		check("wrap a key the CKA_WRAP_TEMPLATE matches", rv, CKR_OK, CKR_OK);
		if (rv == CKR_OK) {
			CK_ATTRIBUTE ut[] = { { CKA_CLASS, &secret_class, sizeof secret_class },
					      { CKA_KEY_TYPE, &aes_type, sizeof aes_type } };
			CK_ATTRIBUTE conflict[] = { { CKA_CLASS, &secret_class, sizeof secret_class },
						    { CKA_KEY_TYPE, &aes_type, sizeof aes_type },
						    { CKA_ENCRYPT, &no, sizeof no } };

			check("unwrap: the CKA_UNWRAP_TEMPLATE joins the template",
			      f->C_UnwrapKey(s, &mech, tpl_priv, wrapped, n, ut, LEN(ut), &u), CKR_OK, CKR_OK);
			check_bool("unwrapped key has the unwrap template's CKA_ENCRYPT", u, CKA_ENCRYPT, CK_TRUE, CK_TRUE);
			check_bool("unwrapped key is not local", u, CKA_LOCAL, CK_FALSE, CK_FALSE);
			check("unwrap: a template that conflicts with CKA_UNWRAP_TEMPLATE",
			      f->C_UnwrapKey(s, &mech, tpl_priv, wrapped, n, conflict, LEN(conflict), &u),
			      CKR_TEMPLATE_INCONSISTENT, CKR_TEMPLATE_INCONSISTENT);
		}
	}
}

/* Behaviours 26 and 34 with the configuration's test quotas (6 token
 * keys, 4 asymmetric, 2 certificates; the CLI made the trusted pair: 2 of
 * each kind already). Standard has no quotas. */
static void quotas(void)
{
	CK_MECHANISM ec = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pubt[] = { { CKA_EC_PARAMS, abi_p256_oid, sizeof abi_p256_oid }, { CKA_TOKEN, &yes, sizeof yes } };
	CK_ATTRIBUTE privt[] = { { CKA_TOKEN, &yes, sizeof yes } };
	CK_ATTRIBUTE tok = { CKA_TOKEN, &yes, sizeof yes };
	CK_OBJECT_HANDLE pub, priv, k;
	int i;

	check("token EC pair (asymmetric 4 of 4)", f->C_GenerateKeyPair(s, &ec, pubt, 2, privt, 1, &pub, &priv), CKR_OK, CKR_OK);
	check("token EC pair past the asymmetric quota", f->C_GenerateKeyPair(s, &ec, pubt, 2, privt, 1, &pub, &priv), CKR_OK,
	      CKR_FUNCTION_FAILED);
	/* Standard made 2 more keys than cloudhsm; the key count below is
	 * cloudhsm's. */
	check("token AES key (5 of 6)", create_aes(&tok, 1, &k), CKR_OK, CKR_OK);
	check("token AES key (6 of 6)", gen_aes(16, &tok, 1, &k), CKR_OK, CKR_OK);
	check("token AES key past the key quota (create)", create_aes(&tok, 1, &k), CKR_OK, CKR_FUNCTION_FAILED);
	check("token AES key past the key quota (generate)", gen_aes(16, &tok, 1, &k), CKR_OK, CKR_FUNCTION_FAILED);
	check("a session key is not counted", gen_aes(16, NULL, 0, &k), CKR_OK, CKR_OK);
	for (i = 0; i < 3; i++) {
		char subject[16], value[16];
		CK_ATTRIBUTE ct[] = { { CKA_CLASS, &cert_class, sizeof cert_class },
				      { CKA_CERTIFICATE_TYPE, &x509, sizeof x509 },
				      { CKA_TOKEN, &yes, sizeof yes },
				      { CKA_SUBJECT, subject, 0 },
				      { CKA_VALUE, value, 0 } };

		ct[3].ulValueLen = snprintf(subject, sizeof subject, "cn=%d", i);
		ct[4].ulValueLen = snprintf(value, sizeof value, "cert %d", i);
		char what[32];

		snprintf(what, sizeof what, "token certificate %d (quota 2)", i + 1);
		check(what, f->C_CreateObject(s, ct, LEN(ct), &k), CKR_OK, i < 2 ? CKR_OK : CKR_FUNCTION_FAILED);
	}
}

/* fill creates token AES keys until one fails. */
static void fill(void)
{
	CK_ATTRIBUTE tok = { CKA_TOKEN, &yes, sizeof yes };
	CK_OBJECT_HANDLE k;
	unsigned long n = 0;
	CK_RV rv;

	while ((rv = create_aes(&tok, 1, &k)) == CKR_OK && n < 100000)
		n++;
	printf("MADE %lu %s\n", n, abi_rv_name(rv));
	abi_check_rv("fill: the creation that ended it", rv, CKR_FUNCTION_FAILED);
}

int main(int argc, char **argv)
{
	CK_SLOT_ID slot;

	if (argc < 3 || argc > 4 || (strcmp(argv[2], "standard") && strcmp(argv[2], "cloudhsm")) ||
	    (argc == 4 && strcmp(argv[3], "fill"))) {
		fprintf(stderr, "usage: %s /path/to/libgohsm.so standard|cloudhsm [fill]\n", argv[0]);
		return 2;
	}
	cloudhsm = strcmp(argv[2], "cloudhsm") == 0;
	abi_load(argv[1], &m);
	f = m.f3;
	if (!abi_check_rv("C_Initialize", abi_initialize(&m), CKR_OK) || !abi_first_slot(&m, &slot) ||
	    !abi_check_rv("C_OpenSession RW", f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK) ||
	    !abi_check_rv("C_Login user:password", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)), CKR_OK))
		return abi_exit();
	if (argc == 4) {
		fill();
		f->C_Finalize(NULL);
		return abi_exit();
	}
	quotas(); /* first: every later key is a session key */
	attributes();
	changes();
	sizes();
	unwrapping();
	wrapping();
	f->C_Finalize(NULL);
	return abi_exit();
}
