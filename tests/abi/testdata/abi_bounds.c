/*
 * abi_bounds.c - maximal lengths and counts at the C boundary (issue 13,
 * item 9): every length or count field of every parameter structure the
 * module decodes, the mechanism's ulParameterLen, template counts and
 * attribute lengths, size attributes (CKA_VALUE_LEN, CKA_MODULUS_BITS),
 * and the lengths of data buffers and PINs, each set to 2^64-1, 2^63,
 * 2^40 and 2^32-1 in turn while the pointers beside them point at small
 * real buffers. Each call must answer a clean CKR_* (never CKR_OK for the
 * impossible, never CKR_GENERAL_ERROR, which is a recovered panic), and
 * the process must live: Go's out-of-memory is fatal, and so is a read
 * far past a caller's buffer.
 *
 * Data-buffer lengths are tried only with 2^63 and 2^64-1: no address
 * space holds such a buffer, whereas a buffer of 2^40 bytes can exist and
 * the module must read what the caller says it passed.
 *
 * usage: abi_bounds /path/to/libgohsm.so   ($GOHSM_CONF set by abi_test.go;
 * $ABI_CASE, if set, runs only the checks whose name contains it)
 *
 * Token state: initialises the fresh token in slot index 0 and works as
 * the normal user (abi_setup_user_session in abi.h).
 */
#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include "abi.h"

static CK_FUNCTION_LIST_3_2_PTR f;
static CK_SESSION_HANDLE sess;
static const char *only;

static CK_OBJECT_HANDLE aes_key, secret_key, ec_priv, rsa_pub, rsa_priv, ed_priv;

static const CK_ULONG maxima[] = { ~0UL, 1UL << 63, 1UL << 40, 0xffffffffUL };
#define NMAX (sizeof maxima / sizeof maxima[0])

/* Small real buffers the pointers point at. */
static CK_BYTE buf[64];
static CK_BYTE out[4096];

static int selected(const char *name)
{
	return only == NULL || strstr(name, only) != NULL;
}

/* The answers that say "this length is wrong" for the kind of input. */
enum {
	W_PARAM = 1,    /* CKR_MECHANISM_PARAM_INVALID */
	W_ARGS = 2,     /* CKR_ARGUMENTS_BAD */
	W_DATALEN = 4,  /* CKR_DATA_LEN_RANGE */
	W_ATTR = 8,     /* CKR_ATTRIBUTE_VALUE_INVALID, CKR_TEMPLATE_INCONSISTENT */
	W_KEYSIZE = 16, /* CKR_KEY_SIZE_RANGE */
	W_PIN = 32,     /* CKR_PIN_LEN_RANGE */
	W_IGNORED = 64,      /* CKR_OK: a field the module does not read */
};

static int wanted(CK_RV rv, int w)
{
	return ((w & W_PARAM) && rv == CKR_MECHANISM_PARAM_INVALID) || ((w & W_ARGS) && rv == CKR_ARGUMENTS_BAD) ||
	       ((w & W_DATALEN) && rv == CKR_DATA_LEN_RANGE) ||
	       ((w & W_ATTR) && (rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_TEMPLATE_INCONSISTENT)) ||
	       ((w & W_KEYSIZE) && rv == CKR_KEY_SIZE_RANGE) || ((w & W_PIN) && rv == CKR_PIN_LEN_RANGE) ||
	       ((w & W_IGNORED) && rv == CKR_OK);
}

static void check(const char *name, CK_RV rv, int w)
{
	abi_check(name, wanted(rv, w), "got %s", abi_rv_name(rv));
}

/* Announced before each call, so that a death names its cause. */
static void announce(const char *name)
{
	printf("CASE %s\n", name);
	fflush(stdout);
}

/* ---- parameter structures -------------------------------------------- */

enum op { OP_ENCRYPT, OP_SIGN, OP_DERIVE, OP_MESSAGE, OP_WRAP, OP_GENKEY };

/* fill writes a valid structure, then sets field i (if i >= 0) to v. */
typedef void (*fill_fn)(void *p, int i, CK_ULONG v);

struct pcase {
	const char *name;
	CK_MECHANISM_TYPE mech;
	size_t size;
	enum op op;
	CK_OBJECT_HANDLE *key;
	const char *fields[8];
	fill_fn fill;
};

static void set(CK_ULONG *field, int me, int i, CK_ULONG v, CK_ULONG valid)
{
	*field = me == i ? v : valid;
}

static void fill_gcm(void *p, int i, CK_ULONG v)
{
	CK_GCM_PARAMS *c = p;
	c->pIv = buf, c->pAAD = buf;
	set(&c->ulIvLen, 0, i, v, 12);
	set(&c->ulIvBits, 1, i, v, 96);
	set(&c->ulAADLen, 2, i, v, 16);
	set(&c->ulTagBits, 3, i, v, 128);
}

static void fill_ccm(void *p, int i, CK_ULONG v)
{
	CK_CCM_PARAMS *c = p;
	c->pNonce = buf, c->pAAD = buf;
	set(&c->ulDataLen, 0, i, v, 32);
	set(&c->ulNonceLen, 1, i, v, 12);
	set(&c->ulAADLen, 2, i, v, 16);
	set(&c->ulMACLen, 3, i, v, 16);
}

static void fill_gcm_msg(void *p, int i, CK_ULONG v)
{
	CK_GCM_MESSAGE_PARAMS *c = p;
	c->pIv = buf, c->pTag = buf, c->ivGenerator = CKG_NO_GENERATE;
	set(&c->ulIvLen, 0, i, v, 12);
	set(&c->ulIvFixedBits, 1, i, v, 0);
	set(&c->ulTagBits, 2, i, v, 128);
}

static void fill_ccm_msg(void *p, int i, CK_ULONG v)
{
	CK_CCM_MESSAGE_PARAMS *c = p;
	c->pNonce = buf, c->pMAC = buf, c->nonceGenerator = CKG_NO_GENERATE;
	set(&c->ulDataLen, 0, i, v, 32);
	set(&c->ulNonceLen, 1, i, v, 12);
	set(&c->ulNonceFixedBits, 2, i, v, 0);
	set(&c->ulMACLen, 3, i, v, 16);
}

static void fill_ctr(void *p, int i, CK_ULONG v)
{
	CK_AES_CTR_PARAMS *c = p;
	set(&c->ulCounterBits, 0, i, v, 32);
}

static void fill_oaep(void *p, int i, CK_ULONG v)
{
	CK_RSA_PKCS_OAEP_PARAMS *c = p;
	c->hashAlg = CKM_SHA256, c->mgf = CKG_MGF1_SHA256, c->source = CKZ_DATA_SPECIFIED, c->pSourceData = buf;
	set(&c->ulSourceDataLen, 0, i, v, 8);
}

static void fill_pss(void *p, int i, CK_ULONG v)
{
	CK_RSA_PKCS_PSS_PARAMS *c = p;
	c->hashAlg = CKM_SHA256, c->mgf = CKG_MGF1_SHA256;
	set(&c->sLen, 0, i, v, 32);
}

static CK_BYTE p256_point[67] = { 0x04, 0x41, 0x04 }; /* DER OCTET STRING of an uncompressed point */

static void fill_ecdh(void *p, int i, CK_ULONG v)
{
	CK_ECDH1_DERIVE_PARAMS *c = p;
	/* Shared data only when its length is the field under test (CKD_NULL
	 * takes none). */
	c->kdf = CKD_NULL, c->pSharedData = i == 0 ? buf : NULL, c->pPublicData = p256_point;
	set(&c->ulSharedDataLen, 0, i, v, 0);
	set(&c->ulPublicDataLen, 1, i, v, sizeof p256_point);
}

static void fill_hkdf(void *p, int i, CK_ULONG v)
{
	CK_HKDF_PARAMS *c = p;
	c->bExtract = CK_TRUE, c->bExpand = CK_TRUE, c->prfHashMechanism = CKM_SHA256;
	c->ulSaltType = CKF_HKDF_SALT_DATA, c->pSalt = buf, c->pInfo = buf;
	set(&c->ulSaltLen, 0, i, v, 16);
	set(&c->ulInfoLen, 1, i, v, 16);
}

static CK_PRF_DATA_PARAM kbkdf_data[3];
static CK_SP800_108_COUNTER_FORMAT kbkdf_counter;
static CK_SP800_108_DKM_LENGTH_FORMAT kbkdf_dkm;

static void fill_kbkdf(void *p, int i, CK_ULONG v)
{
	CK_SP800_108_KDF_PARAMS *c = p;
	c->prfType = CKM_SHA256_HMAC, c->pDataParams = kbkdf_data, c->pAdditionalDerivedKeys = NULL;
	set(&c->ulNumberOfDataParams, 0, i, v, 3);
	set(&c->ulAdditionalDerivedKeys, 1, i, v, 0);
	kbkdf_counter.bLittleEndian = CK_FALSE;
	set(&kbkdf_counter.ulWidthInBits, 2, i, v, 32);
	kbkdf_dkm.dkmLengthMethod = CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS, kbkdf_dkm.bLittleEndian = CK_FALSE;
	set(&kbkdf_dkm.ulWidthInBits, 3, i, v, 32);
	kbkdf_data[0] = (CK_PRF_DATA_PARAM){ CK_SP800_108_ITERATION_VARIABLE, &kbkdf_counter, sizeof kbkdf_counter };
	kbkdf_data[1] = (CK_PRF_DATA_PARAM){ CK_SP800_108_BYTE_ARRAY, buf, 0 };
	set(&kbkdf_data[1].ulValueLen, 4, i, v, 16);
	kbkdf_data[2] = (CK_PRF_DATA_PARAM){ CK_SP800_108_DKM_LENGTH, &kbkdf_dkm, sizeof kbkdf_dkm };
	set(&kbkdf_data[0].ulValueLen, 5, i, v, sizeof kbkdf_counter);
}

static void fill_pbkd2(void *p, int i, CK_ULONG v)
{
	CK_PKCS5_PBKD2_PARAMS2 *c = p;
	c->saltSource = CKZ_SALT_SPECIFIED, c->pSaltSourceData = buf, c->prf = CKP_PKCS5_PBKD2_HMAC_SHA256;
	c->pPrfData = NULL, c->pPassword = buf;
	set(&c->ulSaltSourceDataLen, 0, i, v, 16);
	set(&c->iterations, 1, i, v, 2);
	set(&c->ulPrfDataLen, 2, i, v, 0);
	set(&c->ulPasswordLen, 3, i, v, 8);
	if (i == 2)
		c->pPrfData = buf;
}

static void fill_string(void *p, int i, CK_ULONG v)
{
	CK_KEY_DERIVATION_STRING_DATA *c = p;
	c->pData = buf;
	set(&c->ulLen, 0, i, v, 16);
}

static void fill_cbc_data(void *p, int i, CK_ULONG v)
{
	CK_AES_CBC_ENCRYPT_DATA_PARAMS *c = p;
	c->pData = buf;
	set(&c->length, 0, i, v, 32);
}

static CK_RSA_PKCS_OAEP_PARAMS kw_oaep;

static void fill_rsa_aes_kw(void *p, int i, CK_ULONG v)
{
	CK_RSA_AES_KEY_WRAP_PARAMS *c = p;
	c->pOAEPParams = &kw_oaep;
	set(&c->ulAESKeyBits, 0, i, v, 256);
	fill_oaep(&kw_oaep, i == 1 ? 0 : -1, v);
}

static void fill_eddsa(void *p, int i, CK_ULONG v)
{
	CK_EDDSA_PARAMS *c = p;
	c->phFlag = CK_FALSE, c->pContextData = buf;
	set(&c->ulContextDataLen, 0, i, v, 0);
	if (i != 0)
		c->pContextData = NULL;
}

static void fill_ulong(void *p, int i, CK_ULONG v)
{
	set((CK_ULONG *)p, 0, i, v, 16);
}

static const struct pcase pcases[] = {
	/* ulIvBits is not read (the IV's length is ulIvLen; clients disagree
	 * on ulIvBits), so any value of it is accepted: "(ignored)". */
	{ "CK_GCM_PARAMS", CKM_AES_GCM, sizeof(CK_GCM_PARAMS), OP_ENCRYPT, &aes_key,
	  { "ulIvLen", "ulIvBits (ignored)", "ulAADLen", "ulTagBits" }, fill_gcm },
	{ "CK_CCM_PARAMS", CKM_AES_CCM, sizeof(CK_CCM_PARAMS), OP_ENCRYPT, &aes_key,
	  { "ulDataLen", "ulNonceLen", "ulAADLen", "ulMACLen" }, fill_ccm },
	{ "CK_GCM_MESSAGE_PARAMS", CKM_AES_GCM, sizeof(CK_GCM_MESSAGE_PARAMS), OP_MESSAGE, &aes_key,
	  { "ulIvLen", "ulIvFixedBits", "ulTagBits" }, fill_gcm_msg },
	{ "CK_CCM_MESSAGE_PARAMS", CKM_AES_CCM, sizeof(CK_CCM_MESSAGE_PARAMS), OP_MESSAGE, &aes_key,
	  { "ulDataLen", "ulNonceLen", "ulNonceFixedBits", "ulMACLen" }, fill_ccm_msg },
	{ "CK_AES_CTR_PARAMS", CKM_AES_CTR, sizeof(CK_AES_CTR_PARAMS), OP_ENCRYPT, &aes_key, { "ulCounterBits" },
	  fill_ctr },
	{ "CK_RSA_PKCS_OAEP_PARAMS", CKM_RSA_PKCS_OAEP, sizeof(CK_RSA_PKCS_OAEP_PARAMS), OP_ENCRYPT, &rsa_pub,
	  { "ulSourceDataLen" }, fill_oaep },
	{ "CK_RSA_PKCS_PSS_PARAMS", CKM_SHA256_RSA_PKCS_PSS, sizeof(CK_RSA_PKCS_PSS_PARAMS), OP_SIGN, &rsa_priv,
	  { "sLen" }, fill_pss },
	{ "CK_ECDH1_DERIVE_PARAMS", CKM_ECDH1_DERIVE, sizeof(CK_ECDH1_DERIVE_PARAMS), OP_DERIVE, &ec_priv,
	  { "ulSharedDataLen", "ulPublicDataLen" }, fill_ecdh },
	{ "CK_HKDF_PARAMS", CKM_HKDF_DERIVE, sizeof(CK_HKDF_PARAMS), OP_DERIVE, &secret_key,
	  { "ulSaltLen", "ulInfoLen" }, fill_hkdf },
	{ "CK_SP800_108_KDF_PARAMS", CKM_SP800_108_COUNTER_KDF, sizeof(CK_SP800_108_KDF_PARAMS), OP_DERIVE,
	  &secret_key,
	  { "ulNumberOfDataParams", "ulAdditionalDerivedKeys", "counter ulWidthInBits", "DKM ulWidthInBits",
	    "byte array ulValueLen", "counter format ulValueLen" },
	  fill_kbkdf },
	{ "CK_PKCS5_PBKD2_PARAMS2", CKM_PKCS5_PBKD2, sizeof(CK_PKCS5_PBKD2_PARAMS2), OP_GENKEY, NULL,
	  { "ulSaltSourceDataLen", "iterations", "ulPrfDataLen", "ulPasswordLen" }, fill_pbkd2 },
	{ "CK_KEY_DERIVATION_STRING_DATA", CKM_CONCATENATE_BASE_AND_DATA, sizeof(CK_KEY_DERIVATION_STRING_DATA),
	  OP_DERIVE, &secret_key, { "ulLen" }, fill_string },
	{ "CK_KEY_DERIVATION_STRING_DATA (AES_ECB_ENCRYPT_DATA)", CKM_AES_ECB_ENCRYPT_DATA,
	  sizeof(CK_KEY_DERIVATION_STRING_DATA), OP_DERIVE, &aes_key, { "ulLen" }, fill_string },
	{ "CK_AES_CBC_ENCRYPT_DATA_PARAMS", CKM_AES_CBC_ENCRYPT_DATA, sizeof(CK_AES_CBC_ENCRYPT_DATA_PARAMS), OP_DERIVE,
	  &aes_key, { "length" }, fill_cbc_data },
	{ "CK_RSA_AES_KEY_WRAP_PARAMS", CKM_RSA_AES_KEY_WRAP, sizeof(CK_RSA_AES_KEY_WRAP_PARAMS), OP_WRAP, &rsa_pub,
	  { "ulAESKeyBits", "pOAEPParams->ulSourceDataLen" }, fill_rsa_aes_kw },
	{ "CK_EDDSA_PARAMS", CKM_EDDSA, sizeof(CK_EDDSA_PARAMS), OP_SIGN, &ed_priv, { "ulContextDataLen" },
	  fill_eddsa },
	{ "CK_EXTRACT_PARAMS", CKM_EXTRACT_KEY_FROM_KEY, sizeof(CK_ULONG), OP_DERIVE, &secret_key, { "value" },
	  fill_ulong },
	{ "CK_MAC_GENERAL_PARAMS", CKM_SHA256_HMAC_GENERAL, sizeof(CK_ULONG), OP_SIGN, &secret_key, { "value" },
	  fill_ulong },
};

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_OBJECT_CLASS secret_class = CKO_SECRET_KEY;
static CK_KEY_TYPE generic = CKK_GENERIC_SECRET;
static CK_ULONG len32 = 32;

static CK_RV derive(CK_MECHANISM *m, CK_OBJECT_HANDLE base)
{
	/* CKA_VALUE_LEN last: the AES *_ENCRYPT_DATA mechanisms take the
	 * length from the data and get the template without it. */
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &secret_class, sizeof secret_class }, { CKA_KEY_TYPE, &generic, sizeof generic },
		{ CKA_TOKEN, &no, sizeof no },                     { CKA_DERIVE, &yes, sizeof yes },
		{ CKA_VALUE_LEN, &len32, sizeof len32 },
	};
	CK_OBJECT_HANDLE k = 0;
	CK_ULONG n = sizeof t / sizeof t[0];
	CK_RV rv;

	if (m->mechanism == CKM_AES_ECB_ENCRYPT_DATA || m->mechanism == CKM_AES_CBC_ENCRYPT_DATA)
		n--;
	rv = f->C_DeriveKey(sess, m, base, t, n, &k);
	if (rv == CKR_OK)
		f->C_DestroyObject(sess, k);
	return rv;
}

/* Runs one operation with the parameter; an init that succeeds is followed
 * by the operation it started, whose answer counts. */
static CK_RV run_op(const struct pcase *c, void *param)
{
	CK_MECHANISM m = { c->mech, param, c->size };
	CK_ULONG n = sizeof out;
	CK_RV rv;

	switch (c->op) {
	case OP_ENCRYPT:
		rv = f->C_EncryptInit(sess, &m, *c->key);
		if (rv != CKR_OK)
			return rv;
		return f->C_Encrypt(sess, buf, 32, out, &n);
	case OP_SIGN:
		rv = f->C_SignInit(sess, &m, *c->key);
		if (rv != CKR_OK)
			return rv;
		return f->C_Sign(sess, buf, 32, out, &n);
	case OP_DERIVE:
		return derive(&m, *c->key);
	case OP_MESSAGE: {
		CK_MECHANISM init = { c->mech, NULL, 0 };
		rv = f->C_MessageEncryptInit(sess, &init, *c->key);
		if (rv != CKR_OK)
			return rv;
		rv = f->C_EncryptMessage(sess, param, c->size, buf, 16, buf, 32, out, &n);
		f->C_MessageEncryptFinal(sess);
		return rv;
	}
	case OP_WRAP:
		return f->C_WrapKey(sess, &m, *c->key, aes_key, out, &n);
	case OP_GENKEY: {
		CK_ATTRIBUTE t[] = {
			{ CKA_CLASS, &secret_class, sizeof secret_class }, { CKA_KEY_TYPE, &generic, sizeof generic },
			{ CKA_VALUE_LEN, &len32, sizeof len32 },           { CKA_TOKEN, &no, sizeof no },
		};
		CK_OBJECT_HANDLE k = 0;
		rv = f->C_GenerateKey(sess, &m, t, 4, &k);
		if (rv == CKR_OK)
			f->C_DestroyObject(sess, k);
		return rv;
	}
	}
	return CKR_GENERAL_ERROR;
}

static void check_param_structures(void)
{
	union {
		CK_ULONG align;
		CK_BYTE b[256];
	} param;
	char name[256];

	for (size_t ci = 0; ci < sizeof pcases / sizeof pcases[0]; ci++) {
		const struct pcase *c = &pcases[ci];
		for (int fi = 0; fi < 8 && c->fields[fi] != NULL; fi++) {
			for (size_t vi = 0; vi < NMAX; vi++) {
				CK_RV rv;

				snprintf(name, sizeof name, "%s.%s = 0x%lx", c->name, c->fields[fi], maxima[vi]);
				if (!selected(name))
					continue;
				announce(name);
				memset(&param, 0, sizeof param);
				c->fill(&param, fi, maxima[vi]);
				rv = run_op(c, &param);
				check(name, rv, W_PARAM | W_ARGS | W_DATALEN |
						     (strstr(c->fields[fi], "(ignored)") ? W_IGNORED : 0));
			}
		}
	}
}

/* ---- mechanisms, templates, sizes, data and PINs --------------------- */

static void check_mechanism_length(void)
{
	char name[128];

	for (size_t vi = 0; vi < NMAX; vi++) {
		CK_MECHANISM m = { CKM_AES_CBC, buf, maxima[vi] };

		snprintf(name, sizeof name, "CK_MECHANISM(AES_CBC).ulParameterLen = 0x%lx", maxima[vi]);
		if (!selected(name))
			continue;
		announce(name);
		check(name, f->C_EncryptInit(sess, &m, aes_key), W_PARAM | W_ARGS);
	}
}

static void check_templates(void)
{
	CK_OBJECT_CLASS data = CKO_DATA;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &data, sizeof data }, { CKA_TOKEN, &no, sizeof no },
			     { CKA_LABEL, buf, 8 } };
	CK_ATTRIBUTE get[] = { { CKA_LABEL, NULL, 0 } };
	CK_OBJECT_HANDLE o = 0;
	char name[160];
	CK_RV rv = f->C_CreateObject(sess, t, 3, &o);

	if (!abi_check_rv("setup: a data object", rv, CKR_OK))
		return;
	for (size_t vi = 0; vi < NMAX; vi++) {
		CK_ULONG v = maxima[vi];
		CK_OBJECT_HANDLE h = 0;

		snprintf(name, sizeof name, "C_CreateObject ulCount = 0x%lx", v);
		if (selected(name)) {
			announce(name);
			check(name, f->C_CreateObject(sess, t, v, &h), W_ARGS);
		}
		snprintf(name, sizeof name, "C_FindObjectsInit ulCount = 0x%lx", v);
		if (selected(name)) {
			announce(name);
			rv = f->C_FindObjectsInit(sess, t, v);
			if (rv == CKR_OK)
				f->C_FindObjectsFinal(sess);
			check(name, rv, W_ARGS);
		}
		snprintf(name, sizeof name, "C_GetAttributeValue ulCount = 0x%lx", v);
		if (selected(name)) {
			announce(name);
			check(name, f->C_GetAttributeValue(sess, o, get, v), W_ARGS);
		}
		snprintf(name, sizeof name, "C_SetAttributeValue ulCount = 0x%lx", v);
		if (selected(name)) {
			announce(name);
			check(name, f->C_SetAttributeValue(sess, o, t + 2, v), W_ARGS);
		}
		snprintf(name, sizeof name, "C_CreateObject CKA_LABEL ulValueLen = 0x%lx", v);
		if (selected(name)) {
			announce(name);
			t[2].ulValueLen = v;
			check(name, f->C_CreateObject(sess, t, 3, &h), W_ARGS | W_ATTR);
			t[2].ulValueLen = 8;
		}
		snprintf(name, sizeof name, "C_GenerateKey(GENERIC_SECRET) CKA_VALUE_LEN = 0x%lx", v);
		if (selected(name)) {
			CK_MECHANISM m = { CKM_GENERIC_SECRET_KEY_GEN, NULL, 0 };
			CK_ATTRIBUTE g[] = { { CKA_VALUE_LEN, &v, sizeof v }, { CKA_TOKEN, &no, sizeof no } };
			announce(name);
			check(name, f->C_GenerateKey(sess, &m, g, 2, &h), W_ATTR | W_KEYSIZE);
		}
		snprintf(name, sizeof name, "C_GenerateKey(AES) CKA_VALUE_LEN = 0x%lx", v);
		if (selected(name)) {
			CK_MECHANISM m = { CKM_AES_KEY_GEN, NULL, 0 };
			CK_ATTRIBUTE g[] = { { CKA_VALUE_LEN, &v, sizeof v }, { CKA_TOKEN, &no, sizeof no } };
			announce(name);
			check(name, f->C_GenerateKey(sess, &m, g, 2, &h), W_ATTR | W_KEYSIZE);
		}
		snprintf(name, sizeof name, "C_GenerateKeyPair(RSA) CKA_MODULUS_BITS = 0x%lx", v);
		if (selected(name)) {
			CK_MECHANISM m = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
			CK_ATTRIBUTE pub[] = { { CKA_MODULUS_BITS, &v, sizeof v }, { CKA_TOKEN, &no, sizeof no } };
			CK_ATTRIBUTE priv[] = { { CKA_TOKEN, &no, sizeof no } };
			CK_OBJECT_HANDLE h2 = 0;
			announce(name);
			check(name, f->C_GenerateKeyPair(sess, &m, pub, 2, priv, 1, &h, &h2), W_ATTR | W_KEYSIZE);
		}
		snprintf(name, sizeof name, "C_DeriveKey(HKDF) CKA_VALUE_LEN = 0x%lx", v);
		if (selected(name)) {
			CK_HKDF_PARAMS p;
			CK_MECHANISM m = { CKM_HKDF_DERIVE, &p, sizeof p };
			CK_ATTRIBUTE d[] = { { CKA_CLASS, &secret_class, sizeof secret_class },
					     { CKA_KEY_TYPE, &generic, sizeof generic },
					     { CKA_VALUE_LEN, &v, sizeof v },
					     { CKA_TOKEN, &no, sizeof no } };
			memset(&p, 0, sizeof p);
			fill_hkdf(&p, -1, 0);
			announce(name);
			check(name, f->C_DeriveKey(sess, &m, secret_key, d, 4, &h), W_ATTR | W_KEYSIZE);
		}
	}
	f->C_DestroyObject(sess, o);
}

/* Data buffers and PINs: only lengths no address space holds. */
static void check_data_lengths(void)
{
	static const CK_ULONG huge[] = { ~0UL, 1UL << 63 };
	char name[128];

	for (size_t vi = 0; vi < 2; vi++) {
		CK_ULONG v = huge[vi], n;
		CK_MECHANISM sha = { CKM_SHA256, NULL, 0 };

#define TRY(fn, w, call)                                                          \
	do {                                                                      \
		snprintf(name, sizeof name, "%s length 0x%lx", fn, v);            \
		if (selected(name)) {                                             \
			announce(name);                                           \
			check(name, call, w);                                     \
		}                                                                 \
	} while (0)

		n = sizeof out;
		if (f->C_DigestInit(sess, &sha) == CKR_OK)
			TRY("C_Digest data", W_ARGS | W_DATALEN, f->C_Digest(sess, buf, v, out, &n));
		f->C_DigestFinal(sess, out, &n);
		/* An output buffer said to be that large is large enough. */
		snprintf(name, sizeof name, "C_Digest *pulDigestLen 0x%lx", v);
		if (selected(name) && f->C_DigestInit(sess, &sha) == CKR_OK) {
			CK_RV rv;
			announce(name);
			n = v;
			rv = f->C_Digest(sess, buf, 16, out, &n);
			abi_check(name, rv == CKR_OK && n == 32, "rv %s len %lu", abi_rv_name(rv), (unsigned long)n);
		}
		TRY("C_GenerateRandom", W_ARGS | W_DATALEN, f->C_GenerateRandom(sess, out, v));
		TRY("C_SeedRandom", W_ARGS | W_DATALEN, f->C_SeedRandom(sess, buf, v));
		TRY("C_Login PIN", W_ARGS | W_PIN, f->C_Login(sess, CKU_USER, buf, v));
		TRY("C_SetPIN old PIN", W_ARGS | W_PIN, f->C_SetPIN(sess, buf, v, buf, 8));
		TRY("C_SetPIN new PIN", W_ARGS | W_PIN, f->C_SetPIN(sess, (CK_UTF8CHAR_PTR)ABI_USER_PIN, strlen(ABI_USER_PIN), buf, v));
		n = sizeof out;
		if (f->C_EncryptInit(sess, &(CK_MECHANISM){ CKM_AES_ECB, NULL, 0 }, aes_key) == CKR_OK) {
			TRY("C_Encrypt data", W_ARGS | W_DATALEN, f->C_Encrypt(sess, buf, v, out, &n));
			n = sizeof out;
			f->C_Encrypt(sess, buf, 16, out, &n);
		}
		n = sizeof out;
		{
			CK_MECHANISM init = { CKM_AES_GCM, NULL, 0 };
			CK_GCM_MESSAGE_PARAMS p;
			memset(&p, 0, sizeof p);
			fill_gcm_msg(&p, -1, 0);
			if (f->C_MessageEncryptInit(sess, &init, aes_key) == CKR_OK) {
				TRY("C_EncryptMessage AAD", W_ARGS | W_DATALEN,
				    f->C_EncryptMessage(sess, &p, sizeof p, buf, v, buf, 16, out, &n));
				f->C_MessageEncryptFinal(sess);
			}
		}
#undef TRY
	}
}

/* ---- error codes (issue 13, item 17) ---------------------------------- */

static void check_codes(void)
{
	CK_OBJECT_CLASS data = CKO_DATA;
	CK_BYTE label[] = "item 17";
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &data, sizeof data }, { CKA_TOKEN, &yes, sizeof yes },
			     { CKA_LABEL, label, sizeof label - 1 }, { CKA_PRIVATE, &no, sizeof no } };
	CK_OBJECT_HANDLE o = 0, found[4];
	CK_ULONG n = 0;
	CK_RV rv;
	char name[128];

	if (!abi_check_rv("setup: a token data object", f->C_CreateObject(sess, t, 4, &o), CKR_OK))
		return;
	for (size_t vi = 0; vi < NMAX; vi++) {
		/* ulMaxObjectCount says how many handles fit: more than exist is fine. */
		snprintf(name, sizeof name, "C_FindObjects ulMaxObjectCount 0x%lx -> CKR_OK, 1 object", maxima[vi]);
		if (!selected(name))
			continue;
		announce(name);
		if (f->C_FindObjectsInit(sess, t + 2, 1) != CKR_OK) {
			abi_fail(name, "C_FindObjectsInit failed");
			continue;
		}
		n = 99;
		rv = f->C_FindObjects(sess, found, maxima[vi], &n);
		abi_check(name, rv == CKR_OK && n == 1 && found[0] == o, "rv %s, %lu objects", abi_rv_name(rv),
			  (unsigned long)n);
		f->C_FindObjectsFinal(sess);
	}
	snprintf(name, sizeof name, "C_GetAttributeValue ulValueLen ~0 -> CKR_OK, the value");
	if (selected(name)) {
		CK_BYTE got[64];
		CK_ATTRIBUTE g[] = { { CKA_LABEL, got, ~0UL } };
		announce(name);
		rv = f->C_GetAttributeValue(sess, o, g, 1);
		abi_check(name, rv == CKR_OK && g[0].ulValueLen == sizeof label - 1 && memcmp(got, label, sizeof label - 1) == 0,
			  "rv %s, ulValueLen 0x%lx", abi_rv_name(rv), (unsigned long)g[0].ulValueLen);
	}
	/* Templates of hundreds of attributes: a vendor attribute the object
	 * lacks, or the object's own values and then vendor types. */
	{
		static CK_ATTRIBUTE wide[1200];
		static CK_BYTE v[1200];
		size_t counts[] = { 300, 501, 1200 };
		for (size_t ci = 0; ci < 3; ci++) {
			snprintf(name, sizeof name, "C_FindObjectsInit template of %zu attributes -> CKR_OK, no object",
				 counts[ci]);
			if (!selected(name))
				continue;
			announce(name);
			wide[0] = t[2];
			for (size_t i = 1; i < counts[ci]; i++)
				wide[i] = (CK_ATTRIBUTE){ CKA_VENDOR_DEFINED + i, &v[i], 1 };
			rv = f->C_FindObjectsInit(sess, wide, counts[ci]);
			n = 99;
			if (rv == CKR_OK)
				rv = f->C_FindObjects(sess, found, 4, &n);
			f->C_FindObjectsFinal(sess);
			abi_check(name, rv == CKR_OK && n == 0, "rv %s, %lu objects", abi_rv_name(rv), (unsigned long)n);
		}
	}
	f->C_DestroyObject(sess, o);

	/* A list buffer said to hold ~0 entries holds them all. */
	{
		CK_SLOT_ID slots[64];
		CK_MECHANISM_TYPE mechs[512];
		CK_ULONG want = 0;

		n = 64;
		if (f->C_GetSlotList(CK_FALSE, slots, &n) != CKR_OK || n == 0) {
			abi_fail("C_GetSlotList", "no slot");
			return;
		}
		snprintf(name, sizeof name, "C_GetSlotList *pulCount ~0 -> CKR_OK");
		if (selected(name) && f->C_GetSlotList(CK_FALSE, NULL, &want) == CKR_OK) {
			announce(name);
			n = ~0UL;
			rv = f->C_GetSlotList(CK_FALSE, slots, &n);
			abi_check(name, rv == CKR_OK && n == want, "rv %s, count %lu (want %lu)", abi_rv_name(rv),
				  (unsigned long)n, (unsigned long)want);
		}
		snprintf(name, sizeof name, "C_GetMechanismList *pulCount ~0 -> CKR_OK");
		if (selected(name) && f->C_GetMechanismList(slots[0], NULL, &want) == CKR_OK && want <= 512) {
			announce(name);
			n = ~0UL;
			rv = f->C_GetMechanismList(slots[0], mechs, &n);
			abi_check(name, rv == CKR_OK && n == want, "rv %s, count %lu (want %lu)", abi_rv_name(rv),
				  (unsigned long)n, (unsigned long)want);
		}
	}
}

/* ---- C_Initialize's pReserved (issue 13, item 15) ------------------- */

/*
 * pReserved is taken as an NSS-style configuration string; one that is
 * not a readable, NUL-terminated string is CKR_ARGUMENTS_BAD, with no
 * recovered panic and no Go stack on standard error.
 */
static void check_reserved(struct abi_module *m, const char *what, void *reserved)
{
	CK_C_INITIALIZE_ARGS a;
	char name[160], err[8192];
	char path[] = "/tmp/abi_bounds_stderr_XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	ssize_t n = 0;
	CK_RV rv;

	snprintf(name, sizeof name, "C_Initialize(pReserved = %s)", what);
	if (!selected(name) || fd < 0 || saved < 0) {
		if (fd >= 0)
			close(fd), unlink(path);
		return;
	}
	announce(name);
	memset(&a, 0, sizeof a);
	a.flags = CKF_OS_LOCKING_OK;
	a.pReserved = reserved;
	fflush(stderr);
	dup2(fd, 2);
	rv = m->f3->C_Initialize(&a);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	if (rv == CKR_OK)
		m->f3->C_Finalize(NULL);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, err, sizeof err - 1);
	err[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	abi_check(name, rv == CKR_ARGUMENTS_BAD && strstr(err, "panic") == NULL && strstr(err, "goroutine") == NULL,
		  "rv %s, stderr:\n%s", abi_rv_name(rv), err);
}

static void check_reserved_all(struct abi_module *m)
{
	long page = sysconf(_SC_PAGESIZE);
	char *two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	check_reserved(m, "(void *)1", (void *)1);
	check_reserved(m, "(void *)0x1000", (void *)0x1000);
	check_reserved(m, "a kernel address", (void *)0xffff800000000000UL);
	if (two == MAP_FAILED) {
		abi_fail("mmap", "two pages");
		return;
	}
	/* A string that runs into an unreadable page without a NUL. */
	memset(two, 'x', page);
	mprotect(two + page, page, PROT_NONE);
	check_reserved(m, "bytes up to an unreadable page, no NUL", two + page - 16);
	check_reserved(m, "an unreadable page", two + page);
	munmap(two, 2 * page);
}

/* ---- keys ------------------------------------------------------------ */

static int setup_keys(void)
{
	CK_MECHANISM aes_gen = { CKM_AES_KEY_GEN, NULL, 0 }, sec_gen = { CKM_GENERIC_SECRET_KEY_GEN, NULL, 0 };
	CK_MECHANISM rsa_gen = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 }, ed_gen = { CKM_EC_EDWARDS_KEY_PAIR_GEN, NULL, 0 };
	CK_MECHANISM ec_gen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ULONG bits = 2048;
	CK_BYTE e[] = { 1, 0, 1 }, ed_oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
	CK_OBJECT_HANDLE ec_pub, ed_pub;
	CK_ATTRIBUTE aes[] = { { CKA_VALUE_LEN, &len32, sizeof len32 }, { CKA_TOKEN, &no, sizeof no },
			       { CKA_ENCRYPT, &yes, sizeof yes },     { CKA_DECRYPT, &yes, sizeof yes },
			       { CKA_DERIVE, &yes, sizeof yes },      { CKA_EXTRACTABLE, &yes, sizeof yes } };
	CK_ATTRIBUTE sec[] = { { CKA_VALUE_LEN, &len32, sizeof len32 }, { CKA_TOKEN, &no, sizeof no },
			       { CKA_DERIVE, &yes, sizeof yes },      { CKA_SIGN, &yes, sizeof yes } };
	CK_ATTRIBUTE rpub[] = { { CKA_MODULUS_BITS, &bits, sizeof bits }, { CKA_PUBLIC_EXPONENT, e, sizeof e },
				{ CKA_TOKEN, &no, sizeof no },          { CKA_ENCRYPT, &yes, sizeof yes },
				{ CKA_WRAP, &yes, sizeof yes } };
	CK_ATTRIBUTE rpriv[] = { { CKA_TOKEN, &no, sizeof no }, { CKA_SIGN, &yes, sizeof yes } };
	CK_ATTRIBUTE ecpub[] = { { CKA_EC_PARAMS, abi_p256_oid, sizeof abi_p256_oid }, { CKA_TOKEN, &no, sizeof no } };
	CK_ATTRIBUTE ecpriv[] = { { CKA_TOKEN, &no, sizeof no }, { CKA_DERIVE, &yes, sizeof yes } };
	CK_ATTRIBUTE edpub[] = { { CKA_EC_PARAMS, ed_oid, sizeof ed_oid }, { CKA_TOKEN, &no, sizeof no } };
	CK_ATTRIBUTE edpriv[] = { { CKA_TOKEN, &no, sizeof no }, { CKA_SIGN, &yes, sizeof yes } };

	return abi_check_rv("setup: AES key", f->C_GenerateKey(sess, &aes_gen, aes, 6, &aes_key), CKR_OK) &&
	       abi_check_rv("setup: generic secret", f->C_GenerateKey(sess, &sec_gen, sec, 4, &secret_key), CKR_OK) &&
	       abi_check_rv("setup: RSA 2048 pair",
			    f->C_GenerateKeyPair(sess, &rsa_gen, rpub, 5, rpriv, 2, &rsa_pub, &rsa_priv), CKR_OK) &&
	       abi_check_rv("setup: EC P-256 pair",
			    f->C_GenerateKeyPair(sess, &ec_gen, ecpub, 2, ecpriv, 2, &ec_pub, &ec_priv), CKR_OK) &&
	       abi_check_rv("setup: Ed25519 pair",
			    f->C_GenerateKeyPair(sess, &ed_gen, edpub, 2, edpriv, 2, &ed_pub, &ed_priv), CKR_OK);
}

int main(int argc, char **argv)
{
	struct abi_module m;
	CK_SLOT_ID slot;
	CK_INFO info;

	if (argc < 2) {
		fprintf(stderr, "usage: %s libgohsm.so\n", argv[0]);
		return 2;
	}
	only = getenv("ABI_CASE");
	if (only != NULL && *only == '\0')
		only = NULL;
	memset(buf, 0x5a, sizeof buf);
	abi_load(argv[1], &m);
	f = m.f3;
	check_reserved_all(&m);
	if (!abi_check_rv("C_Initialize", abi_initialize(&m), CKR_OK))
		return abi_exit();
	if (!abi_first_slot(&m, &slot) || !abi_setup_user_session(&m, slot, &sess) || !setup_keys())
		return abi_exit();

	check_param_structures();
	check_mechanism_length();
	check_templates();
	check_data_lengths();
	check_codes();

	abi_check_rv("the process is alive: C_GetInfo", f->C_GetInfo(&info), CKR_OK);
	f->C_Finalize(NULL);
	return abi_exit();
}
