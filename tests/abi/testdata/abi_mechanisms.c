/*
 * abi_mechanisms.c - every mechanism the module lists, exercised through
 * the C ABI with real parameter structures.
 *
 * usage: abi_mechanisms /path/to/libgohsm.so   (with $GOHSM_CONF set by abi_test.go)
 *
 * The driver asks the module for its mechanism list (C_GetMechanismList)
 * and, for each listed mechanism, looks it up in its own table (rows[]
 * below). A listed mechanism without a row, or whose CK_MECHANISM_INFO
 * flags name an operation the row has no procedure for, is a FAIL ("no ABI
 * test for ..."): coverage cannot silently lag behind the module. Rows the
 * module does not list print "INFO CKM_X not listed (skipped)"; every
 * listed mechanism is printed as "LISTED CKM_X", and mechanisms_test.go
 * compares that list with the pinned one (testdata/mechanisms-standard.txt),
 * so a mechanism cannot silently disappear either.
 *
 * Procedures, chosen per operation flag (PKCS #11 v3.0 base specification
 * chapter 5 for the functions; "current mechanisms" for each mechanism):
 *   CKF_GENERATE / _KEY_PAIR   C_GenerateKey(Pair), CKA_LOCAL,
 *                              CKA_KEY_GEN_MECHANISM, CKA_VALUE_LEN,
 *                              CKA_CHECK_VALUE, CKA_EC_POINT
 *   CKF_ENCRYPT / DECRYPT      single-part and multi-part round trips with
 *                              length queries and exact-size buffers, equal
 *                              outputs for deterministic modes, AEAD tamper
 *   CKF_SIGN / VERIFY          single- and multi-part, tampered data,
 *                              single-part-only mechanisms refuse C_*Update
 *   CKF_DIGEST                 known answers for "abc", C_DigestKey
 *   CKF_DERIVE                 per mechanism, known answers
 *   CKF_WRAP / UNWRAP          secret (and private) keys round trip
 *   CKF_SIGN_RECOVER / ...     C_SignRecover / C_VerifyRecover round trip
 *   CKF_MESSAGE_ENCRYPT / ...  the 3.0 message-based AEAD functions
 *
 * Token state: initialises the fresh token in slot index 0 and works as the
 * normal user (abi_setup_user_session in abi.h). All objects are session
 * objects.
 */
#include <stdint.h>
#include <time.h>

#include "abi.h"
#include "gohsm.h"
#include "abi_mech_vectors.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static CK_FUNCTION_LIST_3_2_PTR f;
/*
 * keysess holds the cached key pairs for the whole run; each mechanism runs
 * in a fresh session sess (closed afterwards, destroying its session
 * objects), so an operation a failure leaves active cannot spill over.
 */
static CK_SESSION_HANDLE keysess, sess;
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

/* ---------------------------------------------------------------------
 * Check naming: every check line starts with the mechanism (and variant)
 * under test, e.g. "PASS CKM_AES_GCM [AES-256] C_Encrypt round trip".
 * --------------------------------------------------------------------- */

static char cur[160];

static const char *nm(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *nm(const char *fmt, ...)
{
	static char bufs[8][400];
	static int i;
	char *b = bufs[i++ & 7];
	va_list ap;
	int k = snprintf(b, 400, "%s ", cur);

	va_start(ap, fmt);
	vsnprintf(b + k, 400 - k, fmt, ap);
	va_end(ap);
	return b;
}

static void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void info(const char *fmt, ...)
{
	va_list ap;

	printf("INFO ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static int rvok(CK_RV rv, const char *name)
{
	return abi_check_rv(name, rv, CKR_OK);
}

static const char *hex(const CK_BYTE *p, CK_ULONG n)
{
	static char bufs[4][200];
	static int i;
	char *b = bufs[i++ & 3];
	CK_ULONG k;

	b[0] = 0;
	for (k = 0; k < n && k < 48; k++)
		sprintf(b + 2 * k, "%02x", p[k]);
	if (n > 48)
		strcat(b, "...");
	return b;
}

static int same(const char *name, const CK_BYTE *got, CK_ULONG ngot, const CK_BYTE *want, CK_ULONG nwant)
{
	return abi_check(name, ngot == nwant && memcmp(got, want, nwant) == 0, "got %lu bytes %s, want %lu bytes %s",
			 (unsigned long)ngot, hex(got, ngot), (unsigned long)nwant, hex(want, nwant));
}

static void fill(CK_BYTE *p, CK_ULONG n, unsigned seed)
{
	CK_ULONG i;

	for (i = 0; i < n; i++)
		p[i] = (CK_BYTE)(seed * 131 + i * 29 + (i >> 3));
}

/* ---------------------------------------------------------------------
 * Mechanism list and info
 * --------------------------------------------------------------------- */

static CK_MECHANISM_TYPE listed_mechs[1024];
static CK_ULONG nlisted;

static int listed(CK_MECHANISM_TYPE t)
{
	CK_ULONG i;

	for (i = 0; i < nlisted; i++)
		if (listed_mechs[i] == t)
			return 1;
	return 0;
}

static CK_SLOT_ID slot;

static CK_MECHANISM_INFO mech_info(CK_MECHANISM_TYPE t)
{
	CK_MECHANISM_INFO mi;

	memset(&mi, 0, sizeof mi);
	if (f->C_GetMechanismInfo(slot, t, &mi) != CKR_OK)
		memset(&mi, 0, sizeof mi);
	return mi;
}

/* ---------------------------------------------------------------------
 * Attributes and objects
 * --------------------------------------------------------------------- */

static CK_RV get_attr(CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t, void *buf, CK_ULONG *len)
{
	CK_ATTRIBUTE a = { t, buf, *len };
	CK_RV rv = f->C_GetAttributeValue(sess, o, &a, 1);

	*len = a.ulValueLen;
	return rv;
}

static int get_ulong(CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t, CK_ULONG *v)
{
	CK_ULONG n = sizeof *v;

	return get_attr(o, t, v, &n) == CKR_OK && n == sizeof *v;
}

static int get_bool(CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t, CK_BBOOL *v)
{
	CK_ULONG n = sizeof *v;

	return get_attr(o, t, v, &n) == CKR_OK && n == sizeof *v;
}

/* The value of an extractable, non-sensitive key (or data object). */
static int get_value(CK_OBJECT_HANDLE o, CK_BYTE *buf, CK_ULONG *n)
{
	return get_attr(o, CKA_VALUE, buf, n) == CKR_OK;
}

static void destroy(CK_OBJECT_HANDLE o)
{
	if (o != CK_INVALID_HANDLE)
		f->C_DestroyObject(sess, o);
}

/*
 * A session secret key with a known value (C_CreateObject), usable for
 * everything; sensitive and extractable as asked.
 */
static CK_OBJECT_HANDLE make_secret(CK_KEY_TYPE kt, const CK_BYTE *v, CK_ULONG n, CK_BBOOL sensitive,
				    CK_BBOOL extractable)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_KEY_TYPE, &kt, sizeof kt },
		{ CKA_VALUE, (void *)v, n },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_SENSITIVE, &sensitive, sizeof sensitive },
		{ CKA_EXTRACTABLE, &extractable, sizeof extractable },
		{ CKA_ENCRYPT, &yes, sizeof yes },
		{ CKA_DECRYPT, &yes, sizeof yes },
		{ CKA_SIGN, &yes, sizeof yes },
		{ CKA_VERIFY, &yes, sizeof yes },
		{ CKA_WRAP, &yes, sizeof yes },
		{ CKA_UNWRAP, &yes, sizeof yes },
		{ CKA_DERIVE, &yes, sizeof yes },
	};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv = f->C_CreateObject(sess, t, LEN(t), &h);

	if (rv != CKR_OK) {
		abi_fail(nm("C_CreateObject secret key (type 0x%lx, %lu bytes)", (unsigned long)kt, (unsigned long)n),
			 "%s", abi_rv_name(rv));
		return CK_INVALID_HANDLE;
	}
	return h;
}

/* ---------------------------------------------------------------------
 * Key pairs: RSA 2048, the EC curves, Ed25519, X25519. Generated once
 * (lazily) and cached; the key-pair generation procedures check them.
 * --------------------------------------------------------------------- */

struct curve {
	const char *name;
	const CK_BYTE *oid;
	CK_ULONG oidlen;
	CK_ULONG bits;
};

static const CK_BYTE oid_p224[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x21 };		/* 1.3.132.0.33 */
static const CK_BYTE oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 }; /* 1.2.840.10045.3.1.7 */
static const CK_BYTE oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };		/* 1.3.132.0.34 */
static const CK_BYTE oid_p521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 };		/* 1.3.132.0.35 */
static const CK_BYTE oid_k256[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a };		/* 1.3.132.0.10 */
static const CK_BYTE oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };			/* 1.3.101.112 */
static const CK_BYTE oid_x25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x6e };			/* 1.3.101.110 */

static const struct curve curves[] = {
	{ "P-224", oid_p224, sizeof oid_p224, 224 },
	{ "P-256", oid_p256, sizeof oid_p256, 256 },
	{ "P-384", oid_p384, sizeof oid_p384, 384 },
	{ "P-521", oid_p521, sizeof oid_p521, 521 },
	{ "secp256k1", oid_k256, sizeof oid_k256, 256 },
};
#define NCURVES LEN(curves)
static const struct curve ed25519 = { "Ed25519", oid_ed25519, sizeof oid_ed25519, 255 };
static const struct curve x25519 = { "X25519", oid_x25519, sizeof oid_x25519, 255 };

struct kp {
	int state; /* 0 not tried, 1 have, -1 failed / unsupported */
	CK_OBJECT_HANDLE pub, priv;
};

static struct kp rsa_kp, ec_kp[NCURVES], ed_kp, x_kp, mldsa_kp;

static const CK_BYTE mldsa_context[] = "gohsm ml-dsa";

static CK_ULONG der_len_hdr(const CK_BYTE *p, CK_ULONG n, CK_ULONG *len)
{
	if (n < 2 || p[0] != 0x04)
		return 0;
	if (p[1] < 0x80) {
		*len = p[1];
		return 2;
	}
	if (p[1] == 0x81 && n >= 3) {
		*len = p[2];
		return 3;
	}
	return 0;
}

/*
 * Generates a key pair with mechanism gen. kind: 'r' RSA 2048, 'e' EC
 * (Weierstrass) curve c, 'd' Edwards, 'x' Montgomery. The private key is
 * extractable when asked (for wrapping). Returns the C_GenerateKeyPair rv.
 */
static CK_RV gen_pair(CK_SESSION_HANDLE s, CK_MECHANISM_TYPE gen, int kind, const struct curve *c, CK_BBOOL extractable, struct kp *out)
{
	CK_MECHANISM mech = { gen, NULL, 0 };
	CK_ULONG bits = 2048;
	CK_BYTE e[] = { 0x01, 0x00, 0x01 };
	CK_BBOOL sign = kind != 'x', enc = kind == 'r', derive = kind == 'e' || kind == 'x';
	CK_ATTRIBUTE pub[8], priv[12];
	CK_ULONG np = 0, nv = 0, set = CKP_ML_DSA_65;
	CK_RV rv;

	pub[np++] = (CK_ATTRIBUTE){ CKA_TOKEN, &no, sizeof no };
	if (kind == 'm') {
		pub[np++] = (CK_ATTRIBUTE){ CKA_PARAMETER_SET, &set, sizeof set };
	} else if (kind == 'r') {
		pub[np++] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits, sizeof bits };
		pub[np++] = (CK_ATTRIBUTE){ CKA_PUBLIC_EXPONENT, e, sizeof e };
	} else {
		pub[np++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)c->oid, c->oidlen };
	}
	if (sign)
		pub[np++] = (CK_ATTRIBUTE){ CKA_VERIFY, &yes, sizeof yes };
	if (enc) {
		pub[np++] = (CK_ATTRIBUTE){ CKA_ENCRYPT, &yes, sizeof yes };
		pub[np++] = (CK_ATTRIBUTE){ CKA_WRAP, &yes, sizeof yes };
		pub[np++] = (CK_ATTRIBUTE){ CKA_VERIFY_RECOVER, &yes, sizeof yes };
	}
	priv[nv++] = (CK_ATTRIBUTE){ CKA_TOKEN, &no, sizeof no };
	priv[nv++] = (CK_ATTRIBUTE){ CKA_PRIVATE, &yes, sizeof yes };
	priv[nv++] = (CK_ATTRIBUTE){ CKA_SENSITIVE, &yes, sizeof yes };
	priv[nv++] = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &extractable, sizeof extractable };
	if (sign)
		priv[nv++] = (CK_ATTRIBUTE){ CKA_SIGN, &yes, sizeof yes };
	if (derive)
		priv[nv++] = (CK_ATTRIBUTE){ CKA_DERIVE, &yes, sizeof yes };
	if (enc) {
		priv[nv++] = (CK_ATTRIBUTE){ CKA_DECRYPT, &yes, sizeof yes };
		priv[nv++] = (CK_ATTRIBUTE){ CKA_UNWRAP, &yes, sizeof yes };
		priv[nv++] = (CK_ATTRIBUTE){ CKA_SIGN_RECOVER, &yes, sizeof yes };
	}
	rv = f->C_GenerateKeyPair(s, &mech, pub, np, priv, nv, &out->pub, &out->priv);
	out->state = rv == CKR_OK ? 1 : -1;
	return rv;
}

static const char *mech_name(CK_MECHANISM_TYPE t);

/* Checks the attributes every generated key pair must have. */
static void check_pair_attrs(CK_MECHANISM_TYPE gen, const struct kp *k, int kind, const struct curve *c)
{
	CK_BBOOL b;
	CK_ULONG v;
	CK_BYTE point[300];
	CK_ULONG n = sizeof point, plen = 0, hdr;

	abi_check(nm("public CKA_LOCAL true"), get_bool(k->pub, CKA_LOCAL, &b) && b, "not CK_TRUE");
	abi_check(nm("private CKA_LOCAL true"), get_bool(k->priv, CKA_LOCAL, &b) && b, "not CK_TRUE");
	abi_check(nm("public CKA_KEY_GEN_MECHANISM"), get_ulong(k->pub, CKA_KEY_GEN_MECHANISM, &v) && v == gen,
		  "got 0x%lx, want %s", (unsigned long)v, mech_name(gen));
	abi_check(nm("private CKA_KEY_GEN_MECHANISM"), get_ulong(k->priv, CKA_KEY_GEN_MECHANISM, &v) && v == gen,
		  "got 0x%lx, want %s", (unsigned long)v, mech_name(gen));
	if (kind == 'r') {
		abi_check(nm("CKA_MODULUS_BITS 2048"), get_ulong(k->pub, CKA_MODULUS_BITS, &v) && v == 2048, "got %lu",
			  (unsigned long)v);
		n = sizeof point;
		abi_check(nm("CKA_MODULUS 256 bytes"), get_attr(k->pub, CKA_MODULUS, point, &n) == CKR_OK && n == 256,
			  "got %lu bytes", (unsigned long)n);
		return;
	}
	if (kind == 'm') {
		/* ML-DSA-65: public CKA_VALUE 1952 bytes, CKA_PARAMETER_SET on both
		 * halves (the private one contributed by the mechanism), the
		 * private CKA_SEED and CKA_VALUE sensitive. */
		CK_ATTRIBUTE a = { CKA_VALUE, NULL, 0 };

		abi_check(nm("public CKA_PARAMETER_SET CKP_ML_DSA_65"),
			  get_ulong(k->pub, CKA_PARAMETER_SET, &v) && v == CKP_ML_DSA_65, "got %lu", (unsigned long)v);
		abi_check(nm("private CKA_PARAMETER_SET CKP_ML_DSA_65"),
			  get_ulong(k->priv, CKA_PARAMETER_SET, &v) && v == CKP_ML_DSA_65, "got %lu", (unsigned long)v);
		abi_check(nm("public CKA_VALUE 1952 bytes"),
			  f->C_GetAttributeValue(sess, k->pub, &a, 1) == CKR_OK && a.ulValueLen == 1952, "got %lu bytes",
			  (unsigned long)a.ulValueLen);
		a.type = CKA_SEED;
		a.ulValueLen = 0;
		abi_check_rv(nm("sensitive private CKA_SEED -> CKR_ATTRIBUTE_SENSITIVE"),
			     f->C_GetAttributeValue(sess, k->priv, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
		a.type = CKA_VALUE;
		abi_check_rv(nm("sensitive private CKA_VALUE -> CKR_ATTRIBUTE_SENSITIVE"),
			     f->C_GetAttributeValue(sess, k->priv, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
		return;
	}
	/* CKA_EC_POINT: DER OCTET STRING of 04||X||Y (Weierstrass) or the 32-byte u / A (RFC 7748/8032). */
	if (!abi_check(nm("public CKA_EC_POINT readable"), get_attr(k->pub, CKA_EC_POINT, point, &n) == CKR_OK,
		       "C_GetAttributeValue failed"))
		return;
	hdr = der_len_hdr(point, n, &plen);
	if (kind == 'e') {
		CK_ULONG fl = (c->bits + 7) / 8;

		abi_check(nm("CKA_EC_POINT is DER OCTET STRING of an uncompressed point"),
			  hdr && hdr + plen == n && plen == 2 * fl + 1 && point[hdr] == 0x04, "%lu bytes %s",
			  (unsigned long)n, hex(point, n));
	} else {
		abi_check(nm("CKA_EC_POINT is DER OCTET STRING of 32 bytes"), hdr == 2 && plen == 32 && n == 34,
			  "%lu bytes %s", (unsigned long)n, hex(point, n));
	}
}

static struct kp *need_rsa(void)
{
	if (rsa_kp.state == 0) {
		CK_RV rv = gen_pair(keysess, CKM_RSA_PKCS_KEY_PAIR_GEN, 'r', NULL, CK_FALSE, &rsa_kp);

		if (rv != CKR_OK)
			abi_fail(nm("needs an RSA-2048 key pair"), "C_GenerateKeyPair CKM_RSA_PKCS_KEY_PAIR_GEN: %s%s",
				 abi_rv_name(rv), listed(CKM_RSA_PKCS_KEY_PAIR_GEN) ? "" : " (mechanism not listed)");
	}
	return rsa_kp.state == 1 ? &rsa_kp : NULL;
}

/*
 * The cached key pair of curve i, generated on first use. A curve outside
 * CKM_EC_KEY_PAIR_GEN's advertised size range must be refused with
 * CKR_CURVE_NOT_SUPPORTED; inside it, it must work (secp256k1 included:
 * docs/mechanisms.md lists it).
 */
static struct kp *need_ec(size_t i)
{
	struct kp *k = &ec_kp[i];
	CK_MECHANISM_INFO mi;
	char saved[sizeof cur];
	CK_RV rv;

	if (k->state != 0)
		return k->state == 1 ? k : NULL;
	memcpy(saved, cur, sizeof cur);
	snprintf(cur, sizeof cur, "CKM_EC_KEY_PAIR_GEN [%s]", curves[i].name);
	if (!listed(CKM_EC_KEY_PAIR_GEN)) {
		abi_fail(nm("key pair"), "CKM_EC_KEY_PAIR_GEN not listed");
		k->state = -1;
		goto out;
	}
	mi = mech_info(CKM_EC_KEY_PAIR_GEN);
	rv = gen_pair(keysess, CKM_EC_KEY_PAIR_GEN, 'e', &curves[i], CK_FALSE, k);
	if (curves[i].bits < mi.ulMinKeySize || curves[i].bits > mi.ulMaxKeySize) {
		abi_check(nm("outside advertised %lu..%lu bits -> CKR_CURVE_NOT_SUPPORTED", (unsigned long)mi.ulMinKeySize,
			     (unsigned long)mi.ulMaxKeySize),
			  rv == CKR_CURVE_NOT_SUPPORTED, "got %s", abi_rv_name(rv));
		if (rv == CKR_OK) {
			destroy(k->pub);
			destroy(k->priv);
		}
		k->state = -1;
	} else if (rvok(rv, nm("C_GenerateKeyPair"))) {
		check_pair_attrs(CKM_EC_KEY_PAIR_GEN, k, 'e', &curves[i]);
	}
out:
	memcpy(cur, saved, sizeof cur);
	return k->state == 1 ? k : NULL;
}

static struct kp *need_mldsa(void)
{
	char saved[sizeof cur];
	CK_RV rv;

	if (mldsa_kp.state != 0)
		return mldsa_kp.state == 1 ? &mldsa_kp : NULL;
	memcpy(saved, cur, sizeof cur);
	snprintf(cur, sizeof cur, "%s [ML-DSA-65]", mech_name(CKM_ML_DSA_KEY_PAIR_GEN));
	rv = gen_pair(keysess, CKM_ML_DSA_KEY_PAIR_GEN, 'm', NULL, CK_FALSE, &mldsa_kp);
	if (rvok(rv, nm("C_GenerateKeyPair%s", listed(CKM_ML_DSA_KEY_PAIR_GEN) ? "" : " (mechanism not listed)")))
		check_pair_attrs(CKM_ML_DSA_KEY_PAIR_GEN, &mldsa_kp, 'm', NULL);
	memcpy(cur, saved, sizeof cur);
	return mldsa_kp.state == 1 ? &mldsa_kp : NULL;
}

static struct kp *need_curve25519(int kind)
{
	struct kp *k = kind == 'd' ? &ed_kp : &x_kp;
	CK_MECHANISM_TYPE gen = kind == 'd' ? CKM_EC_EDWARDS_KEY_PAIR_GEN : CKM_EC_MONTGOMERY_KEY_PAIR_GEN;
	const struct curve *c = kind == 'd' ? &ed25519 : &x25519;
	char saved[sizeof cur];
	CK_RV rv;

	if (k->state != 0)
		return k->state == 1 ? k : NULL;
	memcpy(saved, cur, sizeof cur);
	snprintf(cur, sizeof cur, "%s [%s]", mech_name(gen), c->name);
	rv = gen_pair(keysess, gen, kind, c, CK_FALSE, k);
	if (rvok(rv, nm("C_GenerateKeyPair%s", listed(gen) ? "" : " (mechanism not listed)")))
		check_pair_attrs(gen, k, kind, c);
	memcpy(cur, saved, sizeof cur);
	return k->state == 1 ? k : NULL;
}

/* ---------------------------------------------------------------------
 * The table
 * --------------------------------------------------------------------- */

enum keykind { K_NONE, K_AES, K_DES3, K_GENERIC, K_RSA, K_EC, K_ED, K_X, K_PBKD2, K_MLKEM, K_MLDSA };

enum paramkind {
	P_NONE,
	P_IV16,
	P_IV8,
	P_GCM,
	P_GCM_NULLIV, /* CKM_CLOUDHSM_AES_GCM: the module makes the IV and prepends it */
	P_CCM,
	P_CTR,
	P_PSS,
	P_OAEP,
	P_RSAAES,
	P_MACGEN,
	P_EDDSA,
	P_MLDSA, /* CK_SIGN_ADDITIONAL_CONTEXT: deterministic, with a context */
	P_HASHMLDSA, /* CK_HASH_SIGN_ADDITIONAL_CONTEXT: deterministic, with a context, hash m->hash */
};

/* flags */
#define M_SINGLE 0x01	/* single-part only: C_*Update -> CKR_FUNCTION_NOT_SUPPORTED */
#define M_AEAD 0x02	/* authenticated: tampering fails */
#define M_RANDOM 0x04	/* randomised output: multi-part not compared byte for byte */
#define M_BLOCK 0x08	/* input must be a multiple of the block size */
#define M_RAW 0x10	/* raw primitive input (CKM_RSA_X_509, CKM_ECDSA, CKM_RSA_PKCS_PSS) */
#define M_WRAPPRIV 0x20 /* wraps private keys (PKCS #8) too */
#define M_MAYBESINGLE 0x40 /* multi-part optional (CKM_EDDSA): either refused or equal to single-part */
#define M_VERIFYSINGLE 0x80 /* multi-part signing, single-part verification (CKM_ML_DSA) */

struct mt;
typedef void (*proc_fn)(const struct mt *);

struct mt {
	CK_MECHANISM_TYPE type;
	const char *name;
	int key;
	int param;
	CK_MECHANISM_TYPE hash; /* digest of hash-and-sign, HMAC, PSS/OAEP, KDF PRF; 0 if none */
	int flags;
	CK_FLAGS ops;		/* operations this table can test */
	CK_KEY_TYPE kt;		/* key type generated (key generation rows) */
	proc_fn derive;		/* CKF_DERIVE procedure */
	const CK_BYTE *ka;	/* known answer (digest of "abc", HMAC tc1, CMAC, key wrap) */
	CK_ULONG kalen;
};

#define KA(x) x, sizeof x
#define ENCDEC (CKF_ENCRYPT | CKF_DECRYPT)
#define SIGVER (CKF_SIGN | CKF_VERIFY)
#define WRAPS (CKF_WRAP | CKF_UNWRAP)
#define MSG (CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT)
#define RECOVER (CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER)
#define KEM (CKF_ENCAPSULATE | CKF_DECAPSULATE)

static void derive_ecdh(const struct mt *m);
static void derive_hkdf(const struct mt *m);
static void derive_sp800108(const struct mt *m);
static void derive_concat(const struct mt *m);
static void derive_extract(const struct mt *m);
static void derive_encrypt_data(const struct mt *m);
static void derive_digest(const struct mt *m);
static void proc_mlkem_pairs(const struct mt *m);

#define ROW(t) t, #t

static const struct mt rows[] = {
	/* key generation */
	{ ROW(CKM_AES_KEY_GEN), K_AES, P_NONE, 0, 0, CKF_GENERATE, CKK_AES, NULL, NULL, 0 },
	{ ROW(CKM_DES3_KEY_GEN), K_DES3, P_NONE, 0, 0, CKF_GENERATE, CKK_DES3, NULL, NULL, 0 },
	{ ROW(CKM_GENERIC_SECRET_KEY_GEN), K_GENERIC, P_NONE, 0, 0, CKF_GENERATE, CKK_GENERIC_SECRET, NULL, NULL, 0 },
	{ ROW(CKM_SHA_1_KEY_GEN), K_GENERIC, P_NONE, 0, 0, CKF_GENERATE, CKK_SHA_1_HMAC, NULL, NULL, 0 },
	{ ROW(CKM_SHA224_KEY_GEN), K_GENERIC, P_NONE, 0, 0, CKF_GENERATE, CKK_SHA224_HMAC, NULL, NULL, 0 },
	{ ROW(CKM_SHA256_KEY_GEN), K_GENERIC, P_NONE, 0, 0, CKF_GENERATE, CKK_SHA256_HMAC, NULL, NULL, 0 },
	{ ROW(CKM_SHA384_KEY_GEN), K_GENERIC, P_NONE, 0, 0, CKF_GENERATE, CKK_SHA384_HMAC, NULL, NULL, 0 },
	{ ROW(CKM_SHA512_KEY_GEN), K_GENERIC, P_NONE, 0, 0, CKF_GENERATE, CKK_SHA512_HMAC, NULL, NULL, 0 },
	{ ROW(CKM_SHA512_224_KEY_GEN), K_GENERIC, P_NONE, 0, 0, CKF_GENERATE, CKK_SHA512_224_HMAC, NULL, NULL, 0 },
	{ ROW(CKM_SHA512_256_KEY_GEN), K_GENERIC, P_NONE, 0, 0, CKF_GENERATE, CKK_SHA512_256_HMAC, NULL, NULL, 0 },
	{ ROW(CKM_SHA3_224_KEY_GEN), K_GENERIC, P_NONE, 0, 0, CKF_GENERATE, CKK_SHA3_224_HMAC, NULL, NULL, 0 },
	{ ROW(CKM_SHA3_256_KEY_GEN), K_GENERIC, P_NONE, 0, 0, CKF_GENERATE, CKK_SHA3_256_HMAC, NULL, NULL, 0 },
	{ ROW(CKM_SHA3_384_KEY_GEN), K_GENERIC, P_NONE, 0, 0, CKF_GENERATE, CKK_SHA3_384_HMAC, NULL, NULL, 0 },
	{ ROW(CKM_SHA3_512_KEY_GEN), K_GENERIC, P_NONE, 0, 0, CKF_GENERATE, CKK_SHA3_512_HMAC, NULL, NULL, 0 },
	{ ROW(CKM_HKDF_KEY_GEN), K_GENERIC, P_NONE, 0, 0, CKF_GENERATE, CKK_HKDF, NULL, NULL, 0 },
	{ ROW(CKM_PKCS5_PBKD2), K_PBKD2, P_NONE, 0, 0, CKF_GENERATE, CKK_GENERIC_SECRET, NULL, NULL, 0 },
	{ ROW(CKM_RSA_PKCS_KEY_PAIR_GEN), K_RSA, P_NONE, 0, 0, CKF_GENERATE_KEY_PAIR, CKK_RSA, NULL, NULL, 0 },
	{ ROW(CKM_RSA_X9_31_KEY_PAIR_GEN), K_RSA, P_NONE, 0, 0, CKF_GENERATE_KEY_PAIR, CKK_RSA, NULL, NULL, 0 },
	{ ROW(CKM_EC_KEY_PAIR_GEN), K_EC, P_NONE, 0, 0, CKF_GENERATE_KEY_PAIR, CKK_EC, NULL, NULL, 0 },
	{ ROW(CKM_EC_EDWARDS_KEY_PAIR_GEN), K_ED, P_NONE, 0, 0, CKF_GENERATE_KEY_PAIR, CKK_EC_EDWARDS, NULL, NULL, 0 },
	{ ROW(CKM_EC_MONTGOMERY_KEY_PAIR_GEN), K_X, P_NONE, 0, 0, CKF_GENERATE_KEY_PAIR, CKK_EC_MONTGOMERY, NULL, NULL, 0 },
	/* ML-KEM (PKCS #11 3.2) */
	{ ROW(CKM_ML_KEM_KEY_PAIR_GEN), K_MLKEM, P_NONE, 0, 0, CKF_GENERATE_KEY_PAIR, CKK_ML_KEM, NULL, NULL, 0 },
	{ ROW(CKM_ML_KEM), K_MLKEM, P_NONE, 0, 0, KEM, 0, NULL, NULL, 0 },

	/* AES */
	{ ROW(CKM_AES_ECB), K_AES, P_NONE, 0, M_BLOCK, ENCDEC | WRAPS, 0, NULL, NULL, 0 },
	{ ROW(CKM_AES_CBC), K_AES, P_IV16, 0, M_BLOCK, ENCDEC | WRAPS, 0, NULL, NULL, 0 },
	{ ROW(CKM_AES_CBC_PAD), K_AES, P_IV16, 0, M_WRAPPRIV, ENCDEC | WRAPS, 0, NULL, NULL, 0 },
	{ ROW(CKM_AES_CTR), K_AES, P_CTR, 0, 0, ENCDEC, 0, NULL, NULL, 0 },
	{ ROW(CKM_AES_OFB), K_AES, P_IV16, 0, 0, ENCDEC, 0, NULL, NULL, 0 },
	{ ROW(CKM_AES_CFB8), K_AES, P_IV16, 0, 0, ENCDEC, 0, NULL, NULL, 0 },
	{ ROW(CKM_AES_CFB128), K_AES, P_IV16, 0, 0, ENCDEC, 0, NULL, NULL, 0 },
	{ ROW(CKM_AES_GCM), K_AES, P_GCM, 0, M_AEAD | M_WRAPPRIV, ENCDEC | WRAPS | MSG, 0, NULL, NULL, 0 },
	{ ROW(CKM_AES_CCM), K_AES, P_CCM, 0, M_AEAD, ENCDEC | WRAPS | MSG, 0, NULL, NULL, 0 },
	{ ROW(CKM_CLOUDHSM_AES_GCM), K_AES, P_GCM_NULLIV, 0, M_AEAD | M_RANDOM | M_WRAPPRIV, ENCDEC | WRAPS, 0, NULL, NULL, 0 },
	{ ROW(CKM_AES_CMAC), K_AES, P_NONE, 0, 0, SIGVER, 0, NULL, KA(ka_aes_cmac) },
	{ ROW(CKM_AES_CMAC_GENERAL), K_AES, P_MACGEN, 0, 0, SIGVER, 0, NULL, KA(ka_aes_cmac) },
	{ ROW(CKM_AES_KEY_WRAP), K_AES, P_NONE, 0, M_SINGLE | M_AEAD, WRAPS | ENCDEC, 0, NULL, KA(ka_kw) },
	{ ROW(CKM_AES_KEY_WRAP_KWP), K_AES, P_NONE, 0, M_SINGLE | M_AEAD | M_WRAPPRIV, WRAPS | ENCDEC, 0, NULL, KA(ka_kwp) },
	{ ROW(CKM_AES_KEY_WRAP_PAD), K_AES, P_NONE, 0, M_SINGLE | M_AEAD | M_WRAPPRIV, WRAPS | ENCDEC, 0, NULL, NULL, 0 },
	{ ROW(CKM_AES_KEY_WRAP_PKCS7), K_AES, P_NONE, 0, M_SINGLE | M_AEAD | M_WRAPPRIV, WRAPS | ENCDEC, 0, NULL, NULL, 0 },
	{ ROW(CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD), K_AES, P_NONE, 0, M_SINGLE | M_AEAD, WRAPS | ENCDEC, 0, NULL, KA(ka_kw) },
	{ ROW(CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD), K_AES, P_NONE, 0, M_SINGLE | M_AEAD | M_WRAPPRIV, WRAPS | ENCDEC, 0, NULL, NULL, 0 },
	{ ROW(CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD), K_AES, P_NONE, 0, M_SINGLE | M_AEAD | M_WRAPPRIV, WRAPS | ENCDEC, 0, NULL, KA(ka_kwp) },
	{ ROW(CKM_AES_ECB_ENCRYPT_DATA), K_AES, P_NONE, 0, 0, CKF_DERIVE, 0, derive_encrypt_data, NULL, 0 },
	{ ROW(CKM_AES_CBC_ENCRYPT_DATA), K_AES, P_NONE, 0, 0, CKF_DERIVE, 0, derive_encrypt_data, NULL, 0 },

	/* DES3 */
	{ ROW(CKM_DES3_ECB), K_DES3, P_NONE, 0, M_BLOCK, ENCDEC | WRAPS, 0, NULL, NULL, 0 },
	{ ROW(CKM_DES3_CBC), K_DES3, P_IV8, 0, M_BLOCK, ENCDEC | WRAPS, 0, NULL, NULL, 0 },
	{ ROW(CKM_DES3_CBC_PAD), K_DES3, P_IV8, 0, M_WRAPPRIV, ENCDEC | WRAPS, 0, NULL, NULL, 0 },
	{ ROW(CKM_DES3_CMAC), K_DES3, P_NONE, 0, 0, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_DES3_CMAC_GENERAL), K_DES3, P_MACGEN, 0, 0, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_DES3_ECB_ENCRYPT_DATA), K_DES3, P_NONE, 0, 0, CKF_DERIVE, 0, derive_encrypt_data, NULL, 0 },
	{ ROW(CKM_DES3_CBC_ENCRYPT_DATA), K_DES3, P_NONE, 0, 0, CKF_DERIVE, 0, derive_encrypt_data, NULL, 0 },

	/* RSA */
	{ ROW(CKM_RSA_PKCS), K_RSA, P_NONE, 0, M_SINGLE | M_RAW | M_RANDOM, ENCDEC | SIGVER | WRAPS | RECOVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_RSA_X_509), K_RSA, P_NONE, 0, M_SINGLE | M_RAW, ENCDEC | SIGVER | RECOVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_RSA_PKCS_OAEP), K_RSA, P_OAEP, CKM_SHA256, M_SINGLE | M_RANDOM, ENCDEC | WRAPS, 0, NULL, NULL, 0 },
	{ ROW(CKM_RSA_PKCS_PSS), K_RSA, P_PSS, CKM_SHA256, M_SINGLE | M_RAW | M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_RSA_AES_KEY_WRAP), K_RSA, P_RSAAES, CKM_SHA256, M_RANDOM | M_AEAD | M_WRAPPRIV, WRAPS, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA1_RSA_PKCS), K_RSA, P_NONE, CKM_SHA_1, 0, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA224_RSA_PKCS), K_RSA, P_NONE, CKM_SHA224, 0, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA256_RSA_PKCS), K_RSA, P_NONE, CKM_SHA256, 0, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA384_RSA_PKCS), K_RSA, P_NONE, CKM_SHA384, 0, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA512_RSA_PKCS), K_RSA, P_NONE, CKM_SHA512, 0, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA3_224_RSA_PKCS), K_RSA, P_NONE, CKM_SHA3_224, 0, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA3_256_RSA_PKCS), K_RSA, P_NONE, CKM_SHA3_256, 0, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA3_384_RSA_PKCS), K_RSA, P_NONE, CKM_SHA3_384, 0, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA3_512_RSA_PKCS), K_RSA, P_NONE, CKM_SHA3_512, 0, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA1_RSA_PKCS_PSS), K_RSA, P_PSS, CKM_SHA_1, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA224_RSA_PKCS_PSS), K_RSA, P_PSS, CKM_SHA224, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA256_RSA_PKCS_PSS), K_RSA, P_PSS, CKM_SHA256, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA384_RSA_PKCS_PSS), K_RSA, P_PSS, CKM_SHA384, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA512_RSA_PKCS_PSS), K_RSA, P_PSS, CKM_SHA512, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA3_224_RSA_PKCS_PSS), K_RSA, P_PSS, CKM_SHA3_224, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA3_256_RSA_PKCS_PSS), K_RSA, P_PSS, CKM_SHA3_256, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA3_384_RSA_PKCS_PSS), K_RSA, P_PSS, CKM_SHA3_384, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_SHA3_512_RSA_PKCS_PSS), K_RSA, P_PSS, CKM_SHA3_512, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },

	/* EC */
	{ ROW(CKM_ECDSA), K_EC, P_NONE, 0, M_SINGLE | M_RAW | M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_ECDSA_SHA1), K_EC, P_NONE, CKM_SHA_1, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_ECDSA_SHA224), K_EC, P_NONE, CKM_SHA224, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_ECDSA_SHA256), K_EC, P_NONE, CKM_SHA256, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_ECDSA_SHA384), K_EC, P_NONE, CKM_SHA384, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_ECDSA_SHA512), K_EC, P_NONE, CKM_SHA512, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_ECDSA_SHA3_224), K_EC, P_NONE, CKM_SHA3_224, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_ECDSA_SHA3_256), K_EC, P_NONE, CKM_SHA3_256, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_ECDSA_SHA3_384), K_EC, P_NONE, CKM_SHA3_384, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_ECDSA_SHA3_512), K_EC, P_NONE, CKM_SHA3_512, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_ECDH1_DERIVE), K_EC, P_NONE, 0, 0, CKF_DERIVE, 0, derive_ecdh, NULL, 0 },
	{ ROW(CKM_ECDH1_COFACTOR_DERIVE), K_EC, P_NONE, 0, 0, CKF_DERIVE, 0, derive_ecdh, NULL, 0 },
	{ ROW(CKM_EDDSA), K_ED, P_EDDSA, 0, M_MAYBESINGLE, SIGVER, 0, NULL, NULL, 0 },
	/* ML-DSA (PKCS #11 3.2) */
	{ ROW(CKM_ML_DSA_KEY_PAIR_GEN), K_MLDSA, P_NONE, 0, 0, CKF_GENERATE_KEY_PAIR, CKK_ML_DSA, NULL, NULL, 0 },
	{ ROW(CKM_ML_DSA), K_MLDSA, P_MLDSA, 0, M_VERIFYSINGLE, SIGVER, 0, NULL, NULL, 0 },
	/* HashML-DSA: CKM_HASH_ML_DSA signs the caller's SHA-256 hash, single-part;
	 * the variants hash themselves, in parts too (one with a context and
	 * deterministic, the others hedged without a parameter). */
	{ ROW(CKM_HASH_ML_DSA), K_MLDSA, P_HASHMLDSA, CKM_SHA256, M_SINGLE, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_HASH_ML_DSA_SHA224), K_MLDSA, P_NONE, 0, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_HASH_ML_DSA_SHA256), K_MLDSA, P_NONE, 0, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_HASH_ML_DSA_SHA384), K_MLDSA, P_NONE, 0, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_HASH_ML_DSA_SHA512), K_MLDSA, P_NONE, 0, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_HASH_ML_DSA_SHA3_224), K_MLDSA, P_NONE, 0, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_HASH_ML_DSA_SHA3_256), K_MLDSA, P_MLDSA, 0, 0, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_HASH_ML_DSA_SHA3_384), K_MLDSA, P_NONE, 0, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_HASH_ML_DSA_SHA3_512), K_MLDSA, P_NONE, 0, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_HASH_ML_DSA_SHAKE128), K_MLDSA, P_NONE, 0, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },
	{ ROW(CKM_HASH_ML_DSA_SHAKE256), K_MLDSA, P_NONE, 0, M_RANDOM, SIGVER, 0, NULL, NULL, 0 },

	/* digests */
	{ ROW(CKM_MD5), K_NONE, P_NONE, 0, 0, CKF_DIGEST, 0, NULL, KA(ka_abc_md5) },
	{ ROW(CKM_SHA_1), K_NONE, P_NONE, 0, 0, CKF_DIGEST, 0, NULL, KA(ka_abc_sha_1) },
	{ ROW(CKM_SHA224), K_NONE, P_NONE, 0, 0, CKF_DIGEST, 0, NULL, KA(ka_abc_sha224) },
	{ ROW(CKM_SHA256), K_NONE, P_NONE, 0, 0, CKF_DIGEST, 0, NULL, KA(ka_abc_sha256) },
	{ ROW(CKM_SHA384), K_NONE, P_NONE, 0, 0, CKF_DIGEST, 0, NULL, KA(ka_abc_sha384) },
	{ ROW(CKM_SHA512), K_NONE, P_NONE, 0, 0, CKF_DIGEST, 0, NULL, KA(ka_abc_sha512) },
	{ ROW(CKM_SHA512_224), K_NONE, P_NONE, 0, 0, CKF_DIGEST, 0, NULL, KA(ka_abc_sha512_224) },
	{ ROW(CKM_SHA512_256), K_NONE, P_NONE, 0, 0, CKF_DIGEST, 0, NULL, KA(ka_abc_sha512_256) },
	{ ROW(CKM_SHA3_224), K_NONE, P_NONE, 0, 0, CKF_DIGEST, 0, NULL, KA(ka_abc_sha3_224) },
	{ ROW(CKM_SHA3_256), K_NONE, P_NONE, 0, 0, CKF_DIGEST, 0, NULL, KA(ka_abc_sha3_256) },
	{ ROW(CKM_SHA3_384), K_NONE, P_NONE, 0, 0, CKF_DIGEST, 0, NULL, KA(ka_abc_sha3_384) },
	{ ROW(CKM_SHA3_512), K_NONE, P_NONE, 0, 0, CKF_DIGEST, 0, NULL, KA(ka_abc_sha3_512) },

	/* HMAC */
	{ ROW(CKM_SHA_1_HMAC), K_GENERIC, P_NONE, CKM_SHA_1, 0, SIGVER, 0, NULL, KA(ka_hmac_sha_1) },
	{ ROW(CKM_SHA224_HMAC), K_GENERIC, P_NONE, CKM_SHA224, 0, SIGVER, 0, NULL, KA(ka_hmac_sha224) },
	{ ROW(CKM_SHA256_HMAC), K_GENERIC, P_NONE, CKM_SHA256, 0, SIGVER, 0, NULL, KA(ka_hmac_sha256) },
	{ ROW(CKM_SHA384_HMAC), K_GENERIC, P_NONE, CKM_SHA384, 0, SIGVER, 0, NULL, KA(ka_hmac_sha384) },
	{ ROW(CKM_SHA512_HMAC), K_GENERIC, P_NONE, CKM_SHA512, 0, SIGVER, 0, NULL, KA(ka_hmac_sha512) },
	{ ROW(CKM_SHA512_224_HMAC), K_GENERIC, P_NONE, CKM_SHA512_224, 0, SIGVER, 0, NULL, KA(ka_hmac_sha512_224) },
	{ ROW(CKM_SHA512_256_HMAC), K_GENERIC, P_NONE, CKM_SHA512_256, 0, SIGVER, 0, NULL, KA(ka_hmac_sha512_256) },
	{ ROW(CKM_SHA3_224_HMAC), K_GENERIC, P_NONE, CKM_SHA3_224, 0, SIGVER, 0, NULL, KA(ka_hmac_sha3_224) },
	{ ROW(CKM_SHA3_256_HMAC), K_GENERIC, P_NONE, CKM_SHA3_256, 0, SIGVER, 0, NULL, KA(ka_hmac_sha3_256) },
	{ ROW(CKM_SHA3_384_HMAC), K_GENERIC, P_NONE, CKM_SHA3_384, 0, SIGVER, 0, NULL, KA(ka_hmac_sha3_384) },
	{ ROW(CKM_SHA3_512_HMAC), K_GENERIC, P_NONE, CKM_SHA3_512, 0, SIGVER, 0, NULL, KA(ka_hmac_sha3_512) },
	{ ROW(CKM_SHA_1_HMAC_GENERAL), K_GENERIC, P_MACGEN, CKM_SHA_1, 0, SIGVER, 0, NULL, KA(ka_hmac_sha_1) },
	{ ROW(CKM_SHA224_HMAC_GENERAL), K_GENERIC, P_MACGEN, CKM_SHA224, 0, SIGVER, 0, NULL, KA(ka_hmac_sha224) },
	{ ROW(CKM_SHA256_HMAC_GENERAL), K_GENERIC, P_MACGEN, CKM_SHA256, 0, SIGVER, 0, NULL, KA(ka_hmac_sha256) },
	{ ROW(CKM_SHA384_HMAC_GENERAL), K_GENERIC, P_MACGEN, CKM_SHA384, 0, SIGVER, 0, NULL, KA(ka_hmac_sha384) },
	{ ROW(CKM_SHA512_HMAC_GENERAL), K_GENERIC, P_MACGEN, CKM_SHA512, 0, SIGVER, 0, NULL, KA(ka_hmac_sha512) },
	{ ROW(CKM_SHA512_224_HMAC_GENERAL), K_GENERIC, P_MACGEN, CKM_SHA512_224, 0, SIGVER, 0, NULL, KA(ka_hmac_sha512_224) },
	{ ROW(CKM_SHA512_256_HMAC_GENERAL), K_GENERIC, P_MACGEN, CKM_SHA512_256, 0, SIGVER, 0, NULL, KA(ka_hmac_sha512_256) },
	{ ROW(CKM_SHA3_224_HMAC_GENERAL), K_GENERIC, P_MACGEN, CKM_SHA3_224, 0, SIGVER, 0, NULL, KA(ka_hmac_sha3_224) },
	{ ROW(CKM_SHA3_256_HMAC_GENERAL), K_GENERIC, P_MACGEN, CKM_SHA3_256, 0, SIGVER, 0, NULL, KA(ka_hmac_sha3_256) },
	{ ROW(CKM_SHA3_384_HMAC_GENERAL), K_GENERIC, P_MACGEN, CKM_SHA3_384, 0, SIGVER, 0, NULL, KA(ka_hmac_sha3_384) },
	{ ROW(CKM_SHA3_512_HMAC_GENERAL), K_GENERIC, P_MACGEN, CKM_SHA3_512, 0, SIGVER, 0, NULL, KA(ka_hmac_sha3_512) },

	/* derivation */
	{ ROW(CKM_HKDF_DERIVE), K_GENERIC, P_NONE, CKM_SHA256, 0, CKF_DERIVE, 0, derive_hkdf, NULL, 0 },
	{ ROW(CKM_HKDF_DATA), K_GENERIC, P_NONE, CKM_SHA256, 0, CKF_DERIVE, 0, derive_hkdf, NULL, 0 },
	{ ROW(CKM_SP800_108_COUNTER_KDF), K_GENERIC, P_NONE, CKM_SHA256_HMAC, 0, CKF_DERIVE, 0, derive_sp800108, NULL, 0 },
	{ ROW(CKM_SP800_108_FEEDBACK_KDF), K_GENERIC, P_NONE, CKM_SHA256_HMAC, 0, CKF_DERIVE, 0, derive_sp800108, NULL, 0 },
	{ ROW(CKM_CLOUDHSM_SP800_108_COUNTER_KDF), K_GENERIC, P_NONE, CKM_SHA256_HMAC, 0, CKF_DERIVE, 0, derive_sp800108, NULL, 0 },
	{ ROW(CKM_CONCATENATE_BASE_AND_KEY), K_GENERIC, P_NONE, 0, 0, CKF_DERIVE, 0, derive_concat, NULL, 0 },
	{ ROW(CKM_CONCATENATE_BASE_AND_DATA), K_GENERIC, P_NONE, 0, 0, CKF_DERIVE, 0, derive_concat, NULL, 0 },
	{ ROW(CKM_CONCATENATE_DATA_AND_BASE), K_GENERIC, P_NONE, 0, 0, CKF_DERIVE, 0, derive_concat, NULL, 0 },
	{ ROW(CKM_XOR_BASE_AND_DATA), K_GENERIC, P_NONE, 0, 0, CKF_DERIVE, 0, derive_concat, NULL, 0 },
	{ ROW(CKM_EXTRACT_KEY_FROM_KEY), K_GENERIC, P_NONE, 0, 0, CKF_DERIVE, 0, derive_extract, NULL, 0 },
	{ ROW(CKM_SHA1_KEY_DERIVATION), K_GENERIC, P_NONE, CKM_SHA_1, 0, CKF_DERIVE, 0, derive_digest, KA(ka_abc_sha_1) },
	{ ROW(CKM_SHA224_KEY_DERIVATION), K_GENERIC, P_NONE, CKM_SHA224, 0, CKF_DERIVE, 0, derive_digest, KA(ka_abc_sha224) },
	{ ROW(CKM_SHA256_KEY_DERIVATION), K_GENERIC, P_NONE, CKM_SHA256, 0, CKF_DERIVE, 0, derive_digest, KA(ka_abc_sha256) },
	{ ROW(CKM_SHA384_KEY_DERIVATION), K_GENERIC, P_NONE, CKM_SHA384, 0, CKF_DERIVE, 0, derive_digest, KA(ka_abc_sha384) },
	{ ROW(CKM_SHA512_KEY_DERIVATION), K_GENERIC, P_NONE, CKM_SHA512, 0, CKF_DERIVE, 0, derive_digest, KA(ka_abc_sha512) },
};

static const char *mech_name(CK_MECHANISM_TYPE t)
{
	static char bufs[4][32];
	static int i;
	size_t k;

	for (k = 0; k < LEN(rows); k++)
		if (rows[k].type == t)
			return rows[k].name;
	snprintf(bufs[i & 3], 32, "CKM_0x%lx", (unsigned long)t);
	return bufs[i++ & 3];
}

static const struct mt *row_of(CK_MECHANISM_TYPE t)
{
	size_t k;

	for (k = 0; k < LEN(rows); k++)
		if (rows[k].type == t)
			return &rows[k];
	return NULL;
}

/* Digest facts: output length and MGF1 of each hash. */
static CK_ULONG hash_len(CK_MECHANISM_TYPE h)
{
	switch (h) {
	case CKM_SHA_1:
		return 20;
	case CKM_SHA224:
	case CKM_SHA3_224:
	case CKM_SHA512_224:
		return 28;
	case CKM_SHA256:
	case CKM_SHA3_256:
	case CKM_SHA512_256:
		return 32;
	case CKM_SHA384:
	case CKM_SHA3_384:
		return 48;
	case CKM_SHA512:
	case CKM_SHA3_512:
		return 64;
	}
	return 0;
}

static CK_RSA_PKCS_MGF_TYPE mgf_of(CK_MECHANISM_TYPE h)
{
	switch (h) {
	case CKM_SHA_1:
		return CKG_MGF1_SHA1;
	case CKM_SHA224:
		return CKG_MGF1_SHA224;
	case CKM_SHA256:
		return CKG_MGF1_SHA256;
	case CKM_SHA384:
		return CKG_MGF1_SHA384;
	case CKM_SHA512:
		return CKG_MGF1_SHA512;
	case CKM_SHA3_224:
		return CKG_MGF1_SHA3_224;
	case CKM_SHA3_256:
		return CKG_MGF1_SHA3_256;
	case CKM_SHA3_384:
		return CKG_MGF1_SHA3_384;
	case CKM_SHA3_512:
		return CKG_MGF1_SHA3_512;
	}
	return 0;
}

/* ---------------------------------------------------------------------
 * Mechanism parameters: the real C structures
 * --------------------------------------------------------------------- */

/* CK_GCM_PARAMS before 2.40 added ulIvBits (40 bytes on LP64): what Java's SunPKCS11 sends first. */
typedef struct {
	CK_BYTE_PTR pIv;
	CK_ULONG ulIvLen;
	CK_BYTE_PTR pAAD;
	CK_ULONG ulAADLen;
	CK_ULONG ulTagBits;
} gcm_params_v1;

struct params {
	CK_BYTE iv[16];
	CK_BYTE aad[24];
	CK_GCM_PARAMS gcm;
	gcm_params_v1 gcm1;
	CK_CCM_PARAMS ccm;
	CK_AES_CTR_PARAMS ctr;
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_RSA_PKCS_OAEP_PARAMS oaep;
	CK_RSA_AES_KEY_WRAP_PARAMS rsaaes;
	CK_MAC_GENERAL_PARAMS macgen;
	CK_EDDSA_PARAMS eddsa;
	CK_SIGN_ADDITIONAL_CONTEXT mldsa;
	CK_HASH_SIGN_ADDITIONAL_CONTEXT hashmldsa;
};

static const CK_BYTE oaep_label[] = "gohsm oaep label";
/* CK_MAC_GENERAL_PARAMS: 10 bytes, or 6 for 3DES (an 8-byte block) */
#define MACGEN_LEN(m) ((m)->key == K_DES3 ? 6UL : 10UL)

/* Fills p and mech for m; datalen is the whole message length (CCM needs it). */
static void build_param(const struct mt *m, struct params *p, CK_MECHANISM *mech, CK_ULONG datalen)
{
	memset(p, 0, sizeof *p);
	fill(p->iv, sizeof p->iv, 7);
	memcpy(p->aad, "gohsm additional data!!", 24);
	mech->mechanism = m->type;
	mech->pParameter = NULL;
	mech->ulParameterLen = 0;
	switch (m->param) {
	case P_NONE:
		break;
	case P_IV16:
		mech->pParameter = p->iv;
		mech->ulParameterLen = 16;
		break;
	case P_IV8:
		mech->pParameter = p->iv;
		mech->ulParameterLen = 8;
		break;
	case P_GCM:
		p->gcm.pIv = p->iv;
		p->gcm.ulIvLen = 12;
		p->gcm.ulIvBits = 96;
		p->gcm.pAAD = p->aad;
		p->gcm.ulAADLen = sizeof p->aad;
		p->gcm.ulTagBits = 128;
		mech->pParameter = &p->gcm;
		mech->ulParameterLen = sizeof p->gcm;
		break;
	case P_GCM_NULLIV:
		p->gcm.pAAD = p->aad;
		p->gcm.ulAADLen = sizeof p->aad;
		p->gcm.ulTagBits = 128;
		mech->pParameter = &p->gcm;
		mech->ulParameterLen = sizeof p->gcm;
		break;
	case P_CCM:
		p->ccm.ulDataLen = datalen;
		p->ccm.pNonce = p->iv;
		p->ccm.ulNonceLen = 12;
		p->ccm.pAAD = p->aad;
		p->ccm.ulAADLen = sizeof p->aad;
		p->ccm.ulMACLen = 16;
		mech->pParameter = &p->ccm;
		mech->ulParameterLen = sizeof p->ccm;
		break;
	case P_CTR:
		p->ctr.ulCounterBits = 32;
		memcpy(p->ctr.cb, p->iv, 12);
		p->ctr.cb[15] = 1;
		mech->pParameter = &p->ctr;
		mech->ulParameterLen = sizeof p->ctr;
		break;
	case P_PSS:
		p->pss.hashAlg = m->hash;
		p->pss.mgf = mgf_of(m->hash);
		p->pss.sLen = hash_len(m->hash);
		mech->pParameter = &p->pss;
		mech->ulParameterLen = sizeof p->pss;
		break;
	case P_OAEP:
	case P_RSAAES:
		p->oaep.hashAlg = m->hash;
		p->oaep.mgf = mgf_of(m->hash);
		p->oaep.source = CKZ_DATA_SPECIFIED;
		p->oaep.pSourceData = (void *)oaep_label;
		p->oaep.ulSourceDataLen = sizeof oaep_label - 1;
		mech->pParameter = &p->oaep;
		mech->ulParameterLen = sizeof p->oaep;
		if (m->param == P_RSAAES) {
			p->rsaaes.ulAESKeyBits = 256;
			p->rsaaes.pOAEPParams = &p->oaep;
			mech->pParameter = &p->rsaaes;
			mech->ulParameterLen = sizeof p->rsaaes;
		}
		break;
	case P_MACGEN:
		p->macgen = MACGEN_LEN(m);
		mech->pParameter = &p->macgen;
		mech->ulParameterLen = sizeof p->macgen;
		break;
	case P_EDDSA:
		/* pure Ed25519: no parameter (CK_EDDSA_PARAMS is optional) */
		break;
	case P_MLDSA:
		p->mldsa = (CK_SIGN_ADDITIONAL_CONTEXT){ CKH_DETERMINISTIC_REQUIRED, (CK_BYTE_PTR)mldsa_context, sizeof mldsa_context - 1 };
		mech->pParameter = &p->mldsa;
		mech->ulParameterLen = sizeof p->mldsa;
		break;
	case P_HASHMLDSA:
		p->hashmldsa = (CK_HASH_SIGN_ADDITIONAL_CONTEXT){ CKH_DETERMINISTIC_REQUIRED, (CK_BYTE_PTR)mldsa_context,
								  sizeof mldsa_context - 1, m->hash };
		mech->pParameter = &p->hashmldsa;
		mech->ulParameterLen = sizeof p->hashmldsa;
		break;
	}
}

/* ---------------------------------------------------------------------
 * Keys per kind
 * --------------------------------------------------------------------- */

static const CK_BYTE aes_key_value[32] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
					   0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
					   0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f };
/* 3DES key of three distinct DES keys (parity bits as given; DES ignores them). */
static const CK_BYTE des3_key_value[24] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x23, 0x45, 0x67, 0x89,
					    0xab, 0xcd, 0xef, 0x01, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23 };
static const CK_BYTE hmac_tc1_key[20] = { 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
					  0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b };
static const CK_BYTE cmac_key[16] = { 0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
				      0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c };
static const CK_BYTE cmac_msg[16] = { 0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96,
				      0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a };

/* ---------------------------------------------------------------------
 * Key generation (CKF_GENERATE, CKF_GENERATE_KEY_PAIR)
 * --------------------------------------------------------------------- */

static void proc_pbkd2(const struct mt *m)
{
	static const struct {
		CK_PKCS5_PBKD2_PSEUDO_RANDOM_FUNCTION_TYPE prf;
		const char *pw, *salt;
		CK_ULONG iter;
		const CK_BYTE *ka;
		CK_ULONG kalen;
	} v[] = {
		{ CKP_PKCS5_PBKD2_HMAC_SHA256, "passwd", "salt", 1, KA(ka_pbkdf2_sha256) },
		{ CKP_PKCS5_PBKD2_HMAC_SHA1, "password", "salt", 2, KA(ka_pbkdf2_sha1) },
	};
	size_t i;

	(void)m;
	for (i = 0; i < LEN(v); i++) {
		CK_PKCS5_PBKD2_PARAMS2 pp = { CKZ_SALT_SPECIFIED, (void *)v[i].salt, strlen(v[i].salt), v[i].iter, v[i].prf,
					      NULL, 0, (CK_UTF8CHAR_PTR)v[i].pw, strlen(v[i].pw) };
		CK_MECHANISM mech = { CKM_PKCS5_PBKD2, &pp, sizeof pp };
		CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
		CK_ULONG vl = v[i].kalen;
		CK_ATTRIBUTE t[] = {
			{ CKA_CLASS, &cls, sizeof cls },	  { CKA_KEY_TYPE, &kt, sizeof kt },
			{ CKA_VALUE_LEN, &vl, sizeof vl },	  { CKA_TOKEN, &no, sizeof no },
			{ CKA_SENSITIVE, &no, sizeof no },	  { CKA_EXTRACTABLE, &yes, sizeof yes },
		};
		CK_OBJECT_HANDLE h;
		CK_BYTE val[128];
		CK_ULONG n = sizeof val;
		const char *what = v[i].prf == CKP_PKCS5_PBKD2_HMAC_SHA256 ? "HMAC-SHA256 (RFC 7914 s11)" :
									      "HMAC-SHA1 (RFC 6070 #2)";

		if (!rvok(f->C_GenerateKey(sess, &mech, t, LEN(t), &h),
			  nm("C_GenerateKey CK_PKCS5_PBKD2_PARAMS2 %s", what)))
			continue;
		if (abi_check(nm("%s CKA_VALUE readable", what), get_value(h, val, &n), "C_GetAttributeValue failed"))
			same(nm("%s known answer", what), val, n, v[i].ka, v[i].kalen);
		destroy(h);
	}
	/* a parameter of the wrong size */
	{
		CK_PKCS5_PBKD2_PARAMS2 pp = { CKZ_SALT_SPECIFIED, (void *)"salt", 4, 1, CKP_PKCS5_PBKD2_HMAC_SHA256,
					      NULL, 0, (CK_UTF8CHAR_PTR) "passwd", 6 };
		CK_MECHANISM mech = { CKM_PKCS5_PBKD2, &pp, sizeof pp - 1 };
		CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
		CK_ULONG vl = 32;
		CK_ATTRIBUTE t[] = { { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_VALUE_LEN, &vl, sizeof vl }, { CKA_TOKEN, &no, sizeof no } };
		CK_OBJECT_HANDLE h;

		abi_check_rv(nm("C_GenerateKey parameter of sizeof-1 bytes"), f->C_GenerateKey(sess, &mech, t, LEN(t), &h),
			     CKR_MECHANISM_PARAM_INVALID);
	}
}

static void proc_generate(const struct mt *m)
{
	CK_MECHANISM_INFO mi = mech_info(m->type);
	CK_ULONG sizes[3], nsizes = 0, i;

	if (m->key == K_PBKD2) {
		proc_pbkd2(m);
		return;
	}
	if (m->kt == CKK_AES) {
		static const CK_ULONG aes[] = { 16, 24, 32 };

		for (i = 0; i < 3; i++)
			if (aes[i] >= mi.ulMinKeySize && aes[i] <= mi.ulMaxKeySize)
				sizes[nsizes++] = aes[i];
	} else if (m->kt == CKK_DES3) {
		sizes[nsizes++] = 0; /* fixed length: no CKA_VALUE_LEN */
	} else {
		sizes[nsizes++] = 32;
	}
	for (i = 0; i < nsizes; i++) {
		CK_MECHANISM mech = { m->type, NULL, 0 };
		CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = m->kt;
		CK_ULONG vl = sizes[i], v, want = sizes[i] ? sizes[i] : 24;
		CK_ATTRIBUTE t[] = {
			{ CKA_CLASS, &cls, sizeof cls },	  { CKA_KEY_TYPE, &kt, sizeof kt },
			{ CKA_TOKEN, &no, sizeof no },		  { CKA_SENSITIVE, &no, sizeof no },
			{ CKA_EXTRACTABLE, &yes, sizeof yes },	  { CKA_SIGN, &yes, sizeof yes },
			{ CKA_VALUE_LEN, &vl, sizeof vl },
		};
		CK_ULONG nt = sizes[i] ? LEN(t) : LEN(t) - 1;
		CK_OBJECT_HANDLE h1, h2;
		CK_BBOOL b;
		CK_BYTE v1[64], v2[64], cv[16];
		CK_ULONG n1 = sizeof v1, n2 = sizeof v2, ncv = sizeof cv;
		const char *tag;
		char tagbuf[32];

		snprintf(tagbuf, sizeof tagbuf, "[%lu bytes]", (unsigned long)want);
		tag = tagbuf;
		if (!rvok(f->C_GenerateKey(sess, &mech, t, nt, &h1), nm("%s C_GenerateKey", tag)))
			continue;
		abi_check(nm("%s CKA_LOCAL true", tag), get_bool(h1, CKA_LOCAL, &b) && b, "not CK_TRUE");
		abi_check(nm("%s CKA_KEY_GEN_MECHANISM", tag), get_ulong(h1, CKA_KEY_GEN_MECHANISM, &v) && v == m->type,
			  "got 0x%lx", (unsigned long)v);
		abi_check(nm("%s CKA_KEY_TYPE", tag), get_ulong(h1, CKA_KEY_TYPE, &v) && v == m->kt, "got 0x%lx",
			  (unsigned long)v);
		if (m->kt != CKK_DES3)
			abi_check(nm("%s CKA_VALUE_LEN", tag), get_ulong(h1, CKA_VALUE_LEN, &v) && v == want, "got %lu",
				  (unsigned long)v);
		if (m->kt == CKK_AES || m->kt == CKK_DES3 || m->kt == CKK_GENERIC_SECRET)
			abi_check(nm("%s CKA_CHECK_VALUE present (3 bytes)", tag),
				  get_attr(h1, CKA_CHECK_VALUE, cv, &ncv) == CKR_OK && ncv == 3, "rv/len %lu",
				  (unsigned long)ncv);
		if (abi_check(nm("%s CKA_VALUE of %lu bytes", tag, (unsigned long)want),
			      get_value(h1, v1, &n1) && n1 == want, "len %lu", (unsigned long)n1) &&
		    rvok(f->C_GenerateKey(sess, &mech, t, nt, &h2), nm("%s second C_GenerateKey", tag))) {
			abi_check(nm("%s two keys differ", tag), get_value(h2, v2, &n2) && (n1 != n2 || memcmp(v1, v2, n1)),
				  "identical values %s", hex(v1, n1));
			destroy(h2);
		}
		destroy(h1);
		if (sizes[i]) {
			/* CKA_VALUE_LEN is required (PKCS #11 v3.0: "MUST be specified when generated"). */
			abi_check_rv(nm("%s C_GenerateKey without CKA_VALUE_LEN", tag),
				     f->C_GenerateKey(sess, &mech, t, nt - 1, &h1), CKR_TEMPLATE_INCOMPLETE);
		}
	}
}

static void proc_generate_pair(const struct mt *m)
{
	struct kp k;
	size_t i;

	switch (m->key) {
	case K_RSA:
		memset(&k, 0, sizeof k);
		if (!rvok(gen_pair(sess, m->type, 'r', NULL, CK_FALSE, &k), nm("[RSA-2048] C_GenerateKeyPair")))
			return;
		check_pair_attrs(m->type, &k, 'r', NULL);
		return;
	case K_EC:
		for (i = 0; i < NCURVES; i++)
			need_ec(i);
		/* an unknown curve */
		{
			static const CK_BYTE bogus[] = { 0x06, 0x03, 0x2a, 0x03, 0x04 };
			struct curve c = { "bogus", bogus, sizeof bogus, 256 };

			memset(&k, 0, sizeof k);
			abi_check_rv(nm("[OID 1.2.3.4] C_GenerateKeyPair"), gen_pair(sess, m->type, 'e', &c, CK_FALSE, &k),
				     CKR_CURVE_NOT_SUPPORTED);
		}
		return;
	case K_ED:
		need_curve25519('d');
		return;
	case K_X:
		need_curve25519('x');
		return;
	case K_MLDSA: {
		CK_MECHANISM mech = { m->type, NULL, 0 };
		CK_ULONG bad = 4;
		CK_ATTRIBUTE pub[] = { { CKA_TOKEN, &no, sizeof no }, { CKA_PARAMETER_SET, &bad, sizeof bad } };
		CK_ATTRIBUTE priv[] = { { CKA_TOKEN, &no, sizeof no } };
		CK_OBJECT_HANDLE h1, h2;

		need_mldsa();
		abi_check_rv(nm("[parameter set 4] C_GenerateKeyPair -> CKR_ATTRIBUTE_VALUE_INVALID"),
			     f->C_GenerateKeyPair(sess, &mech, pub, 2, priv, 1, &h1, &h2), CKR_ATTRIBUTE_VALUE_INVALID);
		abi_check_rv(nm("[no CKA_PARAMETER_SET] C_GenerateKeyPair -> CKR_TEMPLATE_INCOMPLETE"),
			     f->C_GenerateKeyPair(sess, &mech, pub, 1, priv, 1, &h1, &h2), CKR_TEMPLATE_INCOMPLETE);
		return;
	}
	case K_MLKEM:
		proc_mlkem_pairs(m);
		return;
	}
	abi_fail(nm("key pair generation"), "no procedure for key kind %d", m->key);
}

/* ---------------------------------------------------------------------
 * Encryption (CKF_ENCRYPT / CKF_DECRYPT)
 * --------------------------------------------------------------------- */

#define BIG 8192

/* Multi-part: each C_*Update first asks for its output length (NULL buffer), then gets an exact-size buffer. */
static CK_RV multi_crypt(int enc, CK_MECHANISM *mech, CK_OBJECT_HANDLE key, const CK_BYTE *in, CK_ULONG inlen,
			 CK_BYTE *out, CK_ULONG *outlen, const char *what)
{
	static const CK_ULONG chunks[] = { 1, 15, 17, 3, 32, 1000 };
	CK_RV rv = enc ? f->C_EncryptInit(sess, mech, key) : f->C_DecryptInit(sess, mech, key);
	CK_ULONG off = 0, total = 0, c = 0, q, q2;

	if (rv != CKR_OK) {
		abi_fail(nm("%s multi-part init", what), "%s", abi_rv_name(rv));
		return rv;
	}
	while (off < inlen) {
		CK_ULONG n = chunks[c++ % LEN(chunks)];

		if (n > inlen - off)
			n = inlen - off;
		q = 0;
		rv = enc ? f->C_EncryptUpdate(sess, (CK_BYTE_PTR)in + off, n, NULL, &q) :
			   f->C_DecryptUpdate(sess, (CK_BYTE_PTR)in + off, n, NULL, &q);
		if (rv != CKR_OK) {
			abi_fail(nm("%s C_%sUpdate length query", what, enc ? "Encrypt" : "Decrypt"), "%s", abi_rv_name(rv));
			return rv;
		}
		q2 = q;
		rv = enc ? f->C_EncryptUpdate(sess, (CK_BYTE_PTR)in + off, n, out + total, &q2) :
			   f->C_DecryptUpdate(sess, (CK_BYTE_PTR)in + off, n, out + total, &q2);
		if (rv != CKR_OK || q2 > q) {
			abi_fail(nm("%s C_%sUpdate exact-size buffer", what, enc ? "Encrypt" : "Decrypt"),
				 "%s, %lu bytes after a query of %lu", abi_rv_name(rv), (unsigned long)q2, (unsigned long)q);
			return rv ? rv : CKR_GENERAL_ERROR;
		}
		total += q2;
		off += n;
	}
	q = 0;
	rv = enc ? f->C_EncryptFinal(sess, NULL, &q) : f->C_DecryptFinal(sess, NULL, &q);
	if (rv != CKR_OK) {
		abi_fail(nm("%s C_%sFinal length query", what, enc ? "Encrypt" : "Decrypt"), "%s", abi_rv_name(rv));
		return rv;
	}
	q2 = q;
	rv = enc ? f->C_EncryptFinal(sess, out + total, &q2) : f->C_DecryptFinal(sess, out + total, &q2);
	if (rv != CKR_OK || q2 > q) {
		abi_fail(nm("%s C_%sFinal exact-size buffer", what, enc ? "Encrypt" : "Decrypt"),
			 "%s, %lu bytes after a query of %lu", abi_rv_name(rv), (unsigned long)q2, (unsigned long)q);
		return rv ? rv : CKR_GENERAL_ERROR;
	}
	*outlen = total + q2;
	return CKR_OK;
}

/* Single-part: length query, a buffer one byte short (encryption), then the exact queried size. */
static CK_RV single_crypt(int enc, CK_MECHANISM *mech, CK_OBJECT_HANDLE key, const CK_BYTE *in, CK_ULONG inlen,
			  CK_BYTE *out, CK_ULONG *outlen, const char *what, int quiet)
{
	const char *fn = enc ? "C_Encrypt" : "C_Decrypt";
	CK_RV rv = enc ? f->C_EncryptInit(sess, mech, key) : f->C_DecryptInit(sess, mech, key);
	CK_ULONG q = 0, q2;

	if (rv != CKR_OK) {
		if (!quiet)
			abi_fail(nm("%s %sInit", what, fn), "%s", abi_rv_name(rv));
		return rv;
	}
	rv = enc ? f->C_Encrypt(sess, (CK_BYTE_PTR)in, inlen, NULL, &q) : f->C_Decrypt(sess, (CK_BYTE_PTR)in, inlen, NULL, &q);
	if (rv != CKR_OK) {
		if (!quiet)
			abi_fail(nm("%s %s length query", what, fn), "%s", abi_rv_name(rv));
		return rv;
	}
	if (enc && q > 1 && !quiet) {
		q2 = q - 1;
		rv = f->C_Encrypt(sess, (CK_BYTE_PTR)in, inlen, out, &q2);
		abi_check(nm("%s %s buffer one byte short -> CKR_BUFFER_TOO_SMALL", what, fn),
			  rv == CKR_BUFFER_TOO_SMALL && q2 == q, "%s, length %lu (query said %lu)", abi_rv_name(rv),
			  (unsigned long)q2, (unsigned long)q);
	}
	q2 = q;
	rv = enc ? f->C_Encrypt(sess, (CK_BYTE_PTR)in, inlen, out, &q2) : f->C_Decrypt(sess, (CK_BYTE_PTR)in, inlen, out, &q2);
	if (rv != CKR_OK || q2 > q) {
		if (!quiet)
			abi_fail(nm("%s %s exact-size buffer", what, fn), "%s, %lu bytes after a query of %lu",
				 abi_rv_name(rv), (unsigned long)q2, (unsigned long)q);
		return rv ? rv : CKR_GENERAL_ERROR;
	}
	*outlen = q2;
	return CKR_OK;
}

/* The encryption and decryption keys of a mechanism (RSA: public/private). */
static int cipher_keys(const struct mt *m, CK_ULONG size, CK_OBJECT_HANDLE *ek, CK_OBJECT_HANDLE *dk, const char **label)
{
	struct kp *k;

	switch (m->key) {
	case K_AES:
		*ek = *dk = make_secret(CKK_AES, aes_key_value, size, CK_TRUE, CK_FALSE);
		*label = size == 16 ? "[AES-128]" : size == 24 ? "[AES-192]" : "[AES-256]";
		return *ek != CK_INVALID_HANDLE;
	case K_DES3:
		*ek = *dk = make_secret(CKK_DES3, des3_key_value, 24, CK_TRUE, CK_FALSE);
		*label = "[DES3]";
		return *ek != CK_INVALID_HANDLE;
	case K_RSA:
		k = need_rsa();
		if (!k)
			return 0;
		*ek = k->pub;
		*dk = k->priv;
		*label = "[RSA-2048]";
		return 1;
	}
	abi_fail(nm("keys"), "no cipher keys for key kind %d", m->key);
	return 0;
}

static void proc_cipher(const struct mt *m)
{
	CK_MECHANISM_INFO mi = mech_info(m->type);
	CK_ULONG sizes[2], nsizes = 0, s;

	if (m->key == K_AES) {
		/* the smallest and largest AES key the mechanism takes */
		if (mi.ulMinKeySize <= 16 && mi.ulMaxKeySize >= 16)
			sizes[nsizes++] = 16;
		if (mi.ulMaxKeySize >= 32)
			sizes[nsizes++] = 32;
		if (!nsizes)
			sizes[nsizes++] = mi.ulMaxKeySize;
	} else {
		sizes[nsizes++] = 0;
	}
	for (s = 0; s < nsizes; s++) {
		CK_OBJECT_HANDLE ek, dk;
		const char *label;
		struct params p, p2;
		CK_MECHANISM mech, mech2;
		CK_BYTE pt[300], ct[BIG], ct2[BIG], out[BIG];
		CK_ULONG ptlen, ctlen = 0, ct2len = 0, outlen = 0;
		char saved[sizeof cur];
		CK_RV rv;

		if (!cipher_keys(m, sizes[s], &ek, &dk, &label))
			continue;
		memcpy(saved, cur, sizeof cur);
		snprintf(cur + strlen(cur), sizeof cur - strlen(cur), " %s", label);

		if (m->type == CKM_RSA_X_509)
			ptlen = 256; /* a full-size block below the modulus */
		else if (m->flags & M_BLOCK)
			ptlen = 64;
		else if (m->type == CKM_AES_KEY_WRAP || m->type == CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD)
			ptlen = 64; /* RFC 3394: multiple of 8 bytes */
		else
			ptlen = 61;
		fill(pt, ptlen, 3);
		if (m->type == CKM_RSA_X_509)
			pt[0] = 0;

		build_param(m, &p, &mech, ptlen);
		rv = single_crypt(1, &mech, ek, pt, ptlen, ct, &ctlen, "single-part", 0);
		if (rv == CKR_OK) {
			abi_pass(nm("C_Encrypt single-part (%lu -> %lu bytes)", (unsigned long)ptlen, (unsigned long)ctlen));
			build_param(m, &p2, &mech2, ctlen);
			if (m->param == P_CCM)
				p2.ccm.ulDataLen = ptlen; /* CCM: the length of the message, not of ciphertext||MAC */
			if (m->param == P_GCM_NULLIV) {
				/* decryption takes IV || ciphertext, the IV in the data */
			}
			rv = single_crypt(0, &mech2, dk, ct, ctlen, out, &outlen, "single-part", 0);
			if (rv == CKR_OK)
				same(nm("C_Decrypt single-part round trip"), out, outlen, pt, ptlen);
		}
		if (rv == CKR_OK && (m->flags & M_SINGLE)) {
			CK_BYTE tmp[BIG];
			CK_ULONG n = sizeof tmp;

			build_param(m, &p, &mech, ptlen);
			if (rvok(f->C_EncryptInit(sess, &mech, ek), nm("C_EncryptInit for C_EncryptUpdate")))
				abi_check_rv(nm("single-part only: C_EncryptUpdate -> CKR_FUNCTION_NOT_SUPPORTED"),
					     f->C_EncryptUpdate(sess, pt, ptlen, tmp, &n), CKR_FUNCTION_NOT_SUPPORTED);
			n = sizeof tmp;
			if (rvok(f->C_DecryptInit(sess, &mech, dk), nm("C_DecryptInit for C_DecryptUpdate")))
				abi_check_rv(nm("single-part only: C_DecryptUpdate -> CKR_FUNCTION_NOT_SUPPORTED"),
					     f->C_DecryptUpdate(sess, ct, ctlen, tmp, &n), CKR_FUNCTION_NOT_SUPPORTED);
			/* the operation ended with the error (v3.0 5.2: errors other than BUFFER_TOO_SMALL end it) */
			n = sizeof tmp;
			abi_check_rv(nm("C_Decrypt after the refused update -> CKR_OPERATION_NOT_INITIALIZED"),
				     f->C_Decrypt(sess, ct, ctlen, tmp, &n), CKR_OPERATION_NOT_INITIALIZED);
		} else if (rv == CKR_OK) {
			build_param(m, &p, &mech, ptlen);
			if (multi_crypt(1, &mech, ek, pt, ptlen, ct2, &ct2len, "encrypt") == CKR_OK) {
				if (m->flags & M_RANDOM)
					abi_pass(nm("multi-part C_EncryptUpdate/C_EncryptFinal (%lu bytes)", (unsigned long)ct2len));
				else
					same(nm("multi-part ciphertext equals single-part"), ct2, ct2len, ct, ctlen);
				build_param(m, &p2, &mech2, ptlen);
				if (multi_crypt(0, &mech2, dk, ct2, ct2len, out, &outlen, "decrypt") == CKR_OK)
					same(nm("multi-part C_DecryptUpdate/C_DecryptFinal round trip"), out, outlen, pt, ptlen);
			}
		}
		if (rv == CKR_OK && (m->flags & M_AEAD) && ctlen > 0) {
			CK_ULONG idx[2] = { 0, ctlen - 1 }, t;

			if (m->param == P_GCM_NULLIV)
				idx[0] = 12; /* past the prepended IV */
			for (t = 0; t < 2; t++) {
				CK_ULONG n = sizeof out;

				ct[idx[t]] ^= 0x01;
				build_param(m, &p2, &mech2, ptlen);
				if (rvok(f->C_DecryptInit(sess, &mech2, dk), nm("C_DecryptInit for tampered input")))
					abi_check_rv(nm("C_Decrypt of %s -> CKR_ENCRYPTED_DATA_INVALID",
							t == 0 ? "tampered ciphertext" : "tampered tag/last byte"),
						     f->C_Decrypt(sess, ct, ctlen, out, &n), CKR_ENCRYPTED_DATA_INVALID);
				ct[idx[t]] ^= 0x01;
			}
		}
		if (rv == CKR_OK && m->param == P_GCM) {
			/* the pre-2.40 40-byte CK_GCM_PARAMS layout gives the same ciphertext */
			CK_ULONG n;

			build_param(m, &p, &mech, ptlen);
			p.gcm1.pIv = p.gcm.pIv;
			p.gcm1.ulIvLen = p.gcm.ulIvLen;
			p.gcm1.pAAD = p.gcm.pAAD;
			p.gcm1.ulAADLen = p.gcm.ulAADLen;
			p.gcm1.ulTagBits = p.gcm.ulTagBits;
			mech.pParameter = &p.gcm1;
			mech.ulParameterLen = sizeof p.gcm1;
			if (single_crypt(1, &mech, ek, pt, ptlen, ct2, &n, "40-byte CK_GCM_PARAMS (pre-2.40 layout)", 0) ==
			    CKR_OK)
				same(nm("40-byte CK_GCM_PARAMS (pre-2.40 layout) ciphertext equals 2.40 layout"), ct2, n, ct,
				     ctlen);
		}
		if (m->param == P_GCM || m->param == P_CCM || m->param == P_OAEP || m->param == P_CTR) {
			build_param(m, &p, &mech, ptlen);
			mech.ulParameterLen -= 1;
			abi_check_rv(nm("C_EncryptInit parameter of sizeof-1 bytes -> CKR_MECHANISM_PARAM_INVALID"),
				     f->C_EncryptInit(sess, &mech, ek), CKR_MECHANISM_PARAM_INVALID);
		}
		if (m->param == P_OAEP) {
			/* a different label must not decrypt */
			CK_ULONG n = sizeof out;

			build_param(m, &p, &mech, ptlen);
			p.oaep.ulSourceDataLen -= 1;
			if (rvok(f->C_DecryptInit(sess, &mech, dk), nm("C_DecryptInit with another OAEP label")))
				abi_check(nm("C_Decrypt with another OAEP label fails"), f->C_Decrypt(sess, ct, ctlen, out, &n) != CKR_OK,
					  "decrypted");
		}
		if (m->key != K_RSA)
			destroy(ek);
		memcpy(cur, saved, sizeof cur);
	}
}

/* ---------------------------------------------------------------------
 * Signatures and MACs (CKF_SIGN / CKF_VERIFY)
 * --------------------------------------------------------------------- */

static CK_RV do_sign(CK_MECHANISM *mech, CK_OBJECT_HANDLE key, const CK_BYTE *data, CK_ULONG n, CK_BYTE *sig,
		     CK_ULONG *siglen, int multi, const char *what)
{
	CK_RV rv = f->C_SignInit(sess, mech, key);
	CK_ULONG q = 0, q2;

	if (rv != CKR_OK) {
		abi_fail(nm("%s C_SignInit", what), "%s", abi_rv_name(rv));
		return rv;
	}
	if (multi) {
		CK_ULONG off = 0, c = 1;

		while (off < n) {
			CK_ULONG k = c < n - off ? c : n - off;

			rv = f->C_SignUpdate(sess, (CK_BYTE_PTR)data + off, k);
			if (rv != CKR_OK) {
				abi_fail(nm("%s C_SignUpdate", what), "%s", abi_rv_name(rv));
				return rv;
			}
			off += k;
			c = c * 3 + 1;
		}
		rv = f->C_SignFinal(sess, NULL, &q);
	} else {
		rv = f->C_Sign(sess, (CK_BYTE_PTR)data, n, NULL, &q);
	}
	if (rv != CKR_OK) {
		abi_fail(nm("%s %s length query", what, multi ? "C_SignFinal" : "C_Sign"), "%s", abi_rv_name(rv));
		return rv;
	}
	q2 = q;
	rv = multi ? f->C_SignFinal(sess, sig, &q2) : f->C_Sign(sess, (CK_BYTE_PTR)data, n, sig, &q2);
	if (rv != CKR_OK || q2 > q) {
		abi_fail(nm("%s %s exact-size buffer", what, multi ? "C_SignFinal" : "C_Sign"),
			 "%s, %lu bytes after a query of %lu", abi_rv_name(rv), (unsigned long)q2, (unsigned long)q);
		return rv ? rv : CKR_GENERAL_ERROR;
	}
	*siglen = q2;
	return CKR_OK;
}

static CK_RV do_verify(CK_MECHANISM *mech, CK_OBJECT_HANDLE key, const CK_BYTE *data, CK_ULONG n, const CK_BYTE *sig,
		       CK_ULONG siglen, int multi)
{
	CK_RV rv = f->C_VerifyInit(sess, mech, key);

	if (rv != CKR_OK)
		return rv;
	if (!multi)
		return f->C_Verify(sess, (CK_BYTE_PTR)data, n, (CK_BYTE_PTR)sig, siglen);
	if (n > 5) {
		rv = f->C_VerifyUpdate(sess, (CK_BYTE_PTR)data, 5);
		if (rv != CKR_OK)
			return rv;
		data += 5;
		n -= 5;
	}
	rv = f->C_VerifyUpdate(sess, (CK_BYTE_PTR)data, n);
	if (rv != CKR_OK)
		return rv;
	return f->C_VerifyFinal(sess, (CK_BYTE_PTR)sig, siglen);
}

/* One key (pair) through sign/verify. */
static void sign_with(const struct mt *m, CK_OBJECT_HANDLE sk, CK_OBJECT_HANDLE vk, CK_ULONG want_len)
{
	struct params p;
	CK_MECHANISM mech;
	CK_BYTE data[300], sig[5000], sig2[5000];
	CK_ULONG n, siglen = 0, sig2len = 0, tamper;
	int single = (m->flags & M_SINGLE) != 0;
	CK_RV rv;

	if (m->type == CKM_RSA_X_509)
		n = 256;
	else if (m->type == CKM_RSA_PKCS)
		n = 35; /* the size of a SHA-1 DigestInfo */
	else if (m->type == CKM_ECDSA)
		n = 32;
	else if (m->type == CKM_RSA_PKCS_PSS || m->type == CKM_HASH_ML_DSA)
		n = hash_len(m->hash);
	else
		n = 100;
	fill(data, n, 11);
	if (m->type == CKM_RSA_X_509)
		data[0] = 0;

	build_param(m, &p, &mech, n);
	if (do_sign(&mech, sk, data, n, sig, &siglen, 0, "single-part") != CKR_OK)
		return;
	abi_check(nm("C_Sign single-part, %lu-byte signature", (unsigned long)siglen), !want_len || siglen == want_len,
		  "got %lu bytes, want %lu", (unsigned long)siglen, (unsigned long)want_len);
	abi_check_rv(nm("C_Verify"), do_verify(&mech, vk, data, n, sig, siglen, 0), CKR_OK);
	/* Tamper with the first byte: raw ECDSA uses only the hash's leftmost
	 * bits (P-224 ignores the last 4 bytes of a 32-byte input), and raw
	 * RSA's first byte is kept 0 (below the modulus), so use the second. */
	tamper = (m->type == CKM_RSA_X_509) ? 1 : 0;
	data[tamper] ^= 0x01;
	abi_check_rv(nm("C_Verify of tampered data -> CKR_SIGNATURE_INVALID"), do_verify(&mech, vk, data, n, sig, siglen, 0),
		     CKR_SIGNATURE_INVALID);
	data[tamper] ^= 0x01;
	sig[siglen / 2] ^= 0x10;
	abi_check_rv(nm("C_Verify of tampered signature -> CKR_SIGNATURE_INVALID"),
		     do_verify(&mech, vk, data, n, sig, siglen, 0), CKR_SIGNATURE_INVALID);
	sig[siglen / 2] ^= 0x10;

	if (m->flags & M_MAYBESINGLE) {
		/* CKM_EDDSA: a module may refuse multi-part (CKR_FUNCTION_NOT_SUPPORTED) or buffer it */
		if (!rvok(f->C_SignInit(sess, &mech, sk), nm("C_SignInit for C_SignUpdate")))
			return;
		rv = f->C_SignUpdate(sess, data, n);
		if (rv == CKR_FUNCTION_NOT_SUPPORTED) {
			abi_pass(nm("C_SignUpdate -> CKR_FUNCTION_NOT_SUPPORTED (single-part only)"));
			single = 1;
		} else {
			CK_ULONG q = sizeof sig2;

			abi_check(nm("C_SignUpdate + C_SignFinal equals C_Sign (deterministic)"),
				  rv == CKR_OK && f->C_SignFinal(sess, sig2, &q) == CKR_OK && q == siglen &&
					  memcmp(sig, sig2, q) == 0,
				  "update %s", abi_rv_name(rv));
			return;
		}
	}
	if (m->flags & M_VERIFYSINGLE) {
		/* CKM_ML_DSA: C_SignUpdate is allowed, C_VerifyUpdate is not
		 * (3.2: multi-part verification is C_VerifySignatureInit's). */
		if (do_sign(&mech, sk, data, n, sig2, &sig2len, 1, "multi-part") == CKR_OK)
			same(nm("multi-part signature equals single-part (deterministic)"), sig2, sig2len, sig, siglen);
		if (rvok(f->C_VerifyInit(sess, &mech, vk), nm("C_VerifyInit for C_VerifyUpdate")))
			abi_check_rv(nm("single-part verification: C_VerifyUpdate -> CKR_FUNCTION_NOT_SUPPORTED"),
				     f->C_VerifyUpdate(sess, data, n), CKR_FUNCTION_NOT_SUPPORTED);
		return;
	}
	if (single) {
		if (rvok(f->C_SignInit(sess, &mech, sk), nm("C_SignInit for C_SignUpdate")))
			abi_check_rv(nm("single-part only: C_SignUpdate -> CKR_FUNCTION_NOT_SUPPORTED"),
				     f->C_SignUpdate(sess, data, n), CKR_FUNCTION_NOT_SUPPORTED);
		if (rvok(f->C_VerifyInit(sess, &mech, vk), nm("C_VerifyInit for C_VerifyUpdate")))
			abi_check_rv(nm("single-part only: C_VerifyUpdate -> CKR_FUNCTION_NOT_SUPPORTED"),
				     f->C_VerifyUpdate(sess, data, n), CKR_FUNCTION_NOT_SUPPORTED);
		return;
	}
	if (do_sign(&mech, sk, data, n, sig2, &sig2len, 1, "multi-part") != CKR_OK)
		return;
	if (m->flags & M_RANDOM)
		abi_check_rv(nm("multi-part signature verifies single-part"), do_verify(&mech, vk, data, n, sig2, sig2len, 0),
			     CKR_OK);
	else
		same(nm("multi-part signature equals single-part (deterministic)"), sig2, sig2len, sig, siglen);
	abi_check_rv(nm("C_VerifyUpdate/C_VerifyFinal of the single-part signature"),
		     do_verify(&mech, vk, data, n, sig, siglen, 1), CKR_OK);
	data[0] ^= 0x80;
	abi_check_rv(nm("C_VerifyUpdate/C_VerifyFinal of tampered data -> CKR_SIGNATURE_INVALID"),
		     do_verify(&mech, vk, data, n, sig, siglen, 1), CKR_SIGNATURE_INVALID);
	data[0] ^= 0x80;
}

/* hashmldsa_checks: CKM_HASH_ML_DSA over SHA-256(M) (C_Digest) signs what
 * CKM_HASH_ML_DSA_SHA256 signs over M with the same context, both
 * deterministic; pure CKM_ML_DSA does not verify it; a wrong input length,
 * another hash or no parameter are refused. */
static void hashmldsa_checks(struct kp *k)
{
	static CK_BYTE msg[200], ph[32], sig[3309], sig2[3309];
	CK_HASH_SIGN_ADDITIONAL_CONTEXT hp = { CKH_DETERMINISTIC_REQUIRED, (CK_BYTE_PTR)mldsa_context,
					       sizeof mldsa_context - 1, CKM_SHA256 };
	CK_HASH_SIGN_ADDITIONAL_CONTEXT md5 = hp;
	CK_SIGN_ADDITIONAL_CONTEXT sp = { CKH_DETERMINISTIC_REQUIRED, (CK_BYTE_PTR)mldsa_context, sizeof mldsa_context - 1 };
	CK_MECHANISM hm = { CKM_HASH_ML_DSA, &hp, sizeof hp }, vm = { CKM_HASH_ML_DSA_SHA256, &sp, sizeof sp },
		     pm = { CKM_ML_DSA, &sp, sizeof sp }, dm = { CKM_SHA256, NULL, 0 },
		     bm = { CKM_HASH_ML_DSA, &md5, sizeof md5 }, nm0 = { CKM_HASH_ML_DSA, NULL, 0 };
	CK_ULONG n1 = sizeof sig, n2 = sizeof sig2, pl = sizeof ph;

	md5.hash = CKM_MD5;
	fill(msg, sizeof msg, 13);
	if (!rvok(f->C_DigestInit(sess, &dm), nm("C_DigestInit CKM_SHA256")) ||
	    !rvok(f->C_Digest(sess, msg, sizeof msg, ph, &pl), nm("C_Digest SHA-256 of the message")))
		return;
	if (do_sign(&hm, k->priv, ph, pl, sig, &n1, 0, "CKM_HASH_ML_DSA of SHA-256(M)") == CKR_OK &&
	    do_sign(&vm, k->priv, msg, sizeof msg, sig2, &n2, 1, "CKM_HASH_ML_DSA_SHA256 of M, multi-part") == CKR_OK) {
		same(nm("CKM_HASH_ML_DSA(SHA-256(M)) equals CKM_HASH_ML_DSA_SHA256(M)"), sig, n1, sig2, n2);
		abi_check_rv(nm("CKM_HASH_ML_DSA_SHA256 C_Verify of CKM_HASH_ML_DSA's signature"),
			     do_verify(&vm, k->pub, msg, sizeof msg, sig, n1, 0), CKR_OK);
		abi_check_rv(nm("CKM_ML_DSA C_Verify of a HashML-DSA signature -> CKR_SIGNATURE_INVALID"),
			     do_verify(&pm, k->pub, msg, sizeof msg, sig, n1, 0), CKR_SIGNATURE_INVALID);
	}
	if (rvok(f->C_SignInit(sess, &hm, k->priv), nm("C_SignInit for a 31-byte hash"))) {
		n1 = sizeof sig;
		abi_check_rv(nm("C_Sign of a 31-byte SHA-256 hash -> CKR_DATA_LEN_RANGE"),
			     f->C_Sign(sess, ph, 31, sig, &n1), CKR_DATA_LEN_RANGE);
	}
	abi_check_rv(nm("hash CKM_MD5 -> CKR_MECHANISM_PARAM_INVALID"), f->C_SignInit(sess, &bm, k->priv),
		     CKR_MECHANISM_PARAM_INVALID);
	abi_check_rv(nm("no parameter -> CKR_MECHANISM_PARAM_INVALID"), f->C_SignInit(sess, &nm0, k->priv),
		     CKR_MECHANISM_PARAM_INVALID);
}

static void proc_sign(const struct mt *m)
{
	CK_MECHANISM_INFO mi = mech_info(m->type);
	char saved[sizeof cur];
	struct kp *k;
	size_t i;

	memcpy(saved, cur, sizeof cur);
	switch (m->key) {
	case K_RSA:
		if ((k = need_rsa()) != NULL) {
			strcat(cur, " [RSA-2048]");
			sign_with(m, k->priv, k->pub, 256);
		}
		if (m->param == P_PSS && k) {
			struct params p;
			CK_MECHANISM mech;

			build_param(m, &p, &mech, 0);
			mech.ulParameterLen -= 1;
			abi_check_rv(nm("C_SignInit CK_RSA_PKCS_PSS_PARAMS of sizeof-1 bytes -> CKR_MECHANISM_PARAM_INVALID"),
				     f->C_SignInit(sess, &mech, k->priv), CKR_MECHANISM_PARAM_INVALID);
		}
		break;
	case K_EC:
		for (i = 0; i < NCURVES; i++) {
			if (curves[i].bits < mi.ulMinKeySize || curves[i].bits > mi.ulMaxKeySize)
				continue;
			memcpy(cur, saved, sizeof cur);
			if ((k = need_ec(i)) == NULL)
				continue;
			snprintf(cur + strlen(cur), sizeof cur - strlen(cur), " [%s]", curves[i].name);
			sign_with(m, k->priv, k->pub, 2 * ((curves[i].bits + 7) / 8));
		}
		break;
	case K_ED:
		if ((k = need_curve25519('d')) != NULL) {
			CK_EDDSA_PARAMS ep = { CK_TRUE, 0, NULL };
			CK_MECHANISM ph = { m->type, &ep, sizeof ep }, pure = { m->type, NULL, 0 };
			CK_BYTE data[64], sig[128], sig2[128];
			CK_ULONG n1 = sizeof sig, n2 = sizeof sig2;

			strcat(cur, " [Ed25519]");
			sign_with(m, k->priv, k->pub, 64);
			/* Ed25519ph (RFC 8032 5.1): CK_EDDSA_PARAMS with phFlag */
			fill(data, sizeof data, 5);
			if (do_sign(&ph, k->priv, data, sizeof data, sig, &n1, 0, "Ed25519ph") == CKR_OK &&
			    do_sign(&pure, k->priv, data, sizeof data, sig2, &n2, 0, "Ed25519") == CKR_OK) {
				abi_check_rv(nm("Ed25519ph C_Verify"), do_verify(&ph, k->pub, data, sizeof data, sig, n1, 0),
					     CKR_OK);
				abi_check(nm("Ed25519ph and Ed25519 signatures differ"), n1 != n2 || memcmp(sig, sig2, n1),
					  "identical");
				abi_check_rv(nm("Ed25519ph signature as pure Ed25519 -> CKR_SIGNATURE_INVALID"),
					     do_verify(&pure, k->pub, data, sizeof data, sig, n1, 0), CKR_SIGNATURE_INVALID);
			}
		}
		break;
	case K_MLDSA:
		if (m->type == CKM_HASH_ML_DSA) {
			if ((k = need_mldsa()) != NULL) {
				strcat(cur, " [ML-DSA-65]");
				sign_with(m, k->priv, k->pub, 3309);
				hashmldsa_checks(k);
			}
			break;
		}
		if (m->type != CKM_ML_DSA) {
			if ((k = need_mldsa()) != NULL) {
				strcat(cur, " [ML-DSA-65]");
				sign_with(m, k->priv, k->pub, 3309);
			}
			break;
		}
		if ((k = need_mldsa()) != NULL) {
			CK_SIGN_ADDITIONAL_CONTEXT hedged = { CKH_HEDGE_REQUIRED, (CK_BYTE_PTR)mldsa_context, sizeof mldsa_context - 1 };
			CK_SIGN_ADDITIONAL_CONTEXT other = { CKH_HEDGE_PREFERRED, (CK_BYTE_PTR)"other", 5 };
			CK_SIGN_ADDITIONAL_CONTEXT badhedge = { 7, NULL, 0 };
			CK_BYTE longctx[256];
			CK_SIGN_ADDITIONAL_CONTEXT toolong = { CKH_HEDGE_PREFERRED, longctx, sizeof longctx };
			CK_MECHANISM hm = { m->type, &hedged, sizeof hedged }, om = { m->type, &other, sizeof other },
				     none = { m->type, NULL, 0 }, bad = { m->type, &badhedge, sizeof badhedge },
				     lm = { m->type, &toolong, sizeof toolong }, small = { m->type, &hedged, sizeof hedged - 1 };
			static CK_BYTE data[100], sig[3309], sig2[3309];
			CK_ULONG n1 = sizeof sig, n2 = sizeof sig2, q = 0;

			memset(longctx, 'c', sizeof longctx);
			strcat(cur, " [ML-DSA-65]");
			sign_with(m, k->priv, k->pub, 3309);
			fill(data, sizeof data, 9);
			/* Hedged signing: two signatures differ, both verify (the
			 * hedge variant is ignored on verification). */
			if (do_sign(&hm, k->priv, data, sizeof data, sig, &n1, 0, "hedged") == CKR_OK &&
			    do_sign(&hm, k->priv, data, sizeof data, sig2, &n2, 0, "hedged again") == CKR_OK) {
				abi_check(nm("two hedged signatures differ"), n1 == n2 && memcmp(sig, sig2, n1), "identical");
				abi_check_rv(nm("hedged signature C_Verify"), do_verify(&hm, k->pub, data, sizeof data, sig, n1, 0),
					     CKR_OK);
				abi_check_rv(nm("another context -> CKR_SIGNATURE_INVALID"),
					     do_verify(&om, k->pub, data, sizeof data, sig, n1, 0), CKR_SIGNATURE_INVALID);
				abi_check_rv(nm("no parameter (empty context) -> CKR_SIGNATURE_INVALID"),
					     do_verify(&none, k->pub, data, sizeof data, sig, n1, 0), CKR_SIGNATURE_INVALID);
				abi_check_rv(nm("signature one byte short -> CKR_SIGNATURE_LEN_RANGE"),
					     do_verify(&hm, k->pub, data, sizeof data, sig, n1 - 1, 0), CKR_SIGNATURE_LEN_RANGE);
			}
			/* No parameter: hedged, empty context. */
			n1 = sizeof sig;
			if (do_sign(&none, k->priv, data, sizeof data, sig, &n1, 0, "no parameter") == CKR_OK)
				abi_check_rv(nm("no-parameter signature C_Verify"),
					     do_verify(&none, k->pub, data, sizeof data, sig, n1, 0), CKR_OK);
			/* Length query, then a short buffer. */
			if (rvok(f->C_SignInit(sess, &hm, k->priv), nm("C_SignInit for the length query"))) {
				abi_check(nm("C_Sign length query -> 3309"),
					  f->C_Sign(sess, data, sizeof data, NULL, &q) == CKR_OK && q == 3309, "got %lu",
					  (unsigned long)q);
				q = 100;
				abi_check_rv(nm("C_Sign into 100 bytes -> CKR_BUFFER_TOO_SMALL"),
					     f->C_Sign(sess, data, sizeof data, sig, &q), CKR_BUFFER_TOO_SMALL);
				q = sizeof sig;
				abi_check_rv(nm("C_Sign after CKR_BUFFER_TOO_SMALL"), f->C_Sign(sess, data, sizeof data, sig, &q),
					     CKR_OK);
			}
			abi_check_rv(nm("hedgeVariant 7 -> CKR_MECHANISM_PARAM_INVALID"), f->C_SignInit(sess, &bad, k->priv),
				     CKR_MECHANISM_PARAM_INVALID);
			abi_check_rv(nm("256-byte context -> CKR_MECHANISM_PARAM_INVALID"), f->C_SignInit(sess, &lm, k->priv),
				     CKR_MECHANISM_PARAM_INVALID);
			abi_check_rv(nm("parameter of sizeof-1 bytes -> CKR_MECHANISM_PARAM_INVALID"),
				     f->C_SignInit(sess, &small, k->priv), CKR_MECHANISM_PARAM_INVALID);
		}
		break;
	case K_GENERIC:
	case K_AES:
	case K_DES3: {
		CK_KEY_TYPE kt = m->key == K_AES ? CKK_AES : m->key == K_DES3 ? CKK_DES3 : CKK_GENERIC_SECRET;
		const CK_BYTE *kv = m->key == K_DES3 ? des3_key_value : aes_key_value;
		CK_ULONG klen = m->key == K_DES3 ? 24 : 32;
		CK_ULONG want = m->param == P_MACGEN ? MACGEN_LEN(m) :
				m->key == K_GENERIC ? hash_len(m->hash) :
				m->key == K_AES	    ? 16 :
							      8;
		CK_OBJECT_HANDLE h = make_secret(kt, kv, klen, CK_TRUE, CK_FALSE);

		if (h == CK_INVALID_HANDLE)
			break;
		strcat(cur, m->key == K_AES ? " [AES-256]" : m->key == K_DES3 ? " [DES3]" : " [generic 32 bytes]");
		sign_with(m, h, h, want);
		destroy(h);
		memcpy(cur, saved, sizeof cur);
		if (m->ka) {
			/* RFC 2202/4231 test case 1, RFC 4493 example 2 */
			const CK_BYTE *kk = m->key == K_AES ? cmac_key : hmac_tc1_key;
			CK_ULONG kl = m->key == K_AES ? sizeof cmac_key : sizeof hmac_tc1_key;
			const CK_BYTE *msg = m->key == K_AES ? cmac_msg : (const CK_BYTE *)"Hi There";
			CK_ULONG ml = m->key == K_AES ? sizeof cmac_msg : 8;
			struct params p;
			CK_MECHANISM mech;
			CK_BYTE sig[128];
			CK_ULONG sl = 0;

			h = make_secret(kt, kk, kl, CK_TRUE, CK_FALSE);
			if (h == CK_INVALID_HANDLE)
				break;
			build_param(m, &p, &mech, ml);
			if (do_sign(&mech, h, msg, ml, sig, &sl, 0, "known answer") == CKR_OK)
				same(nm("known answer (%s)", m->key == K_AES ? "RFC 4493 example 2" : "RFC 2202/4231 test case 1"),
				     sig, sl, m->ka, m->param == P_MACGEN ? MACGEN_LEN(m) : m->kalen);
			destroy(h);
		}
		break;
	}
	default:
		abi_fail(nm("sign"), "no procedure for key kind %d", m->key);
	}
	memcpy(cur, saved, sizeof cur);
}

/* ---------------------------------------------------------------------
 * Sign-recover / verify-recover (CKF_SIGN_RECOVER / CKF_VERIFY_RECOVER)
 * --------------------------------------------------------------------- */

static void proc_recover(const struct mt *m)
{
	struct kp *k = need_rsa();
	CK_MECHANISM mech = { m->type, NULL, 0 };
	CK_BYTE data[256], sig[512], out[512];
	CK_ULONG n = m->type == CKM_RSA_X_509 ? 256 : 40, q = 0, q2, rq = 0, rq2;
	CK_RV rv;

	if (!k)
		return;
	fill(data, n, 21);
	if (m->type == CKM_RSA_X_509)
		data[0] = 0;
	if (!rvok(f->C_SignRecoverInit(sess, &mech, k->priv), nm("C_SignRecoverInit")))
		return;
	rv = f->C_SignRecover(sess, data, n, NULL, &q);
	if (!abi_check(nm("C_SignRecover length query"), rv == CKR_OK && q >= 256, "%s len %lu", abi_rv_name(rv),
		       (unsigned long)q))
		return;
	q2 = q;
	rv = f->C_SignRecover(sess, data, n, sig, &q2);
	if (!abi_check(nm("C_SignRecover exact-size buffer"), rv == CKR_OK && q2 == 256, "%s len %lu", abi_rv_name(rv),
		       (unsigned long)q2))
		return;
	if (!rvok(f->C_VerifyRecoverInit(sess, &mech, k->pub), nm("C_VerifyRecoverInit")))
		return;
	rv = f->C_VerifyRecover(sess, sig, q2, NULL, &rq);
	if (!abi_check(nm("C_VerifyRecover length query"), rv == CKR_OK && rq >= n, "%s len %lu", abi_rv_name(rv),
		       (unsigned long)rq))
		return;
	rq2 = rq;
	rv = f->C_VerifyRecover(sess, sig, q2, out, &rq2);
	if (rvok(rv, nm("C_VerifyRecover exact-size buffer")))
		same(nm("C_VerifyRecover recovers the data"), out, rq2, data, n);
	if (m->type == CKM_RSA_PKCS) {
		sig[100] ^= 0x01;
		rq2 = sizeof out;
		if (rvok(f->C_VerifyRecoverInit(sess, &mech, k->pub), nm("C_VerifyRecoverInit")))
			abi_check_rv(nm("C_VerifyRecover of a tampered signature -> CKR_SIGNATURE_INVALID"),
				     f->C_VerifyRecover(sess, sig, q2, out, &rq2), CKR_SIGNATURE_INVALID);
	}
}

/* ---------------------------------------------------------------------
 * Digests (CKF_DIGEST)
 * --------------------------------------------------------------------- */

static void proc_digest(const struct mt *m)
{
	CK_MECHANISM mech = { m->type, NULL, 0 };
	CK_BYTE d[128], d2[128];
	CK_ULONG q = 0, n, n2;
	CK_OBJECT_HANDLE key;
	CK_RV rv;

	if (!rvok(f->C_DigestInit(sess, &mech), nm("C_DigestInit")))
		return;
	rv = f->C_Digest(sess, (CK_BYTE_PTR) "abc", 3, NULL, &q);
	if (!abi_check(nm("C_Digest length query"), rv == CKR_OK && q == m->kalen, "%s len %lu", abi_rv_name(rv),
		       (unsigned long)q))
		return;
	n = q;
	if (rvok(f->C_Digest(sess, (CK_BYTE_PTR) "abc", 3, d, &n), nm("C_Digest exact-size buffer")))
		same(nm("C_Digest(\"abc\") known answer"), d, n, m->ka, m->kalen);

	if (rvok(f->C_DigestInit(sess, &mech), nm("C_DigestInit multi-part")) &&
	    rvok(f->C_DigestUpdate(sess, (CK_BYTE_PTR) "a", 1), nm("C_DigestUpdate(\"a\")")) &&
	    rvok(f->C_DigestUpdate(sess, (CK_BYTE_PTR) "", 0), nm("C_DigestUpdate(empty)")) &&
	    rvok(f->C_DigestUpdate(sess, (CK_BYTE_PTR) "bc", 2), nm("C_DigestUpdate(\"bc\")"))) {
		q = 0;
		rv = f->C_DigestFinal(sess, NULL, &q);
		n2 = q;
		if (abi_check(nm("C_DigestFinal length query"), rv == CKR_OK && q == m->kalen, "%s len %lu", abi_rv_name(rv),
			      (unsigned long)q) &&
		    rvok(f->C_DigestFinal(sess, d2, &n2), nm("C_DigestFinal exact-size buffer")))
			same(nm("multi-part digest equals single-part"), d2, n2, m->ka, m->kalen);
	}

	/* C_DigestKey: a generic secret whose value is "bc" continues "a" */
	key = make_secret(CKK_GENERIC_SECRET, (const CK_BYTE *)"bc", 2, CK_TRUE, CK_TRUE);
	if (key != CK_INVALID_HANDLE) {
		if (rvok(f->C_DigestInit(sess, &mech), nm("C_DigestInit for C_DigestKey")) &&
		    rvok(f->C_DigestUpdate(sess, (CK_BYTE_PTR) "a", 1), nm("C_DigestUpdate(\"a\") before C_DigestKey")) &&
		    rvok(f->C_DigestKey(sess, key), nm("C_DigestKey(extractable key \"bc\")"))) {
			n2 = sizeof d2;
			if (rvok(f->C_DigestFinal(sess, d2, &n2), nm("C_DigestFinal after C_DigestKey")))
				same(nm("\"a\" + C_DigestKey(\"bc\") equals digest of \"abc\""), d2, n2, m->ka, m->kalen);
		}
		destroy(key);
	}
	key = make_secret(CKK_GENERIC_SECRET, (const CK_BYTE *)"bc", 2, CK_TRUE, CK_FALSE);
	if (key != CK_INVALID_HANDLE) {
		if (rvok(f->C_DigestInit(sess, &mech), nm("C_DigestInit for C_DigestKey (unextractable)")))
			abi_check_rv(nm("C_DigestKey(unextractable key) -> CKR_KEY_INDIGESTIBLE"), f->C_DigestKey(sess, key),
				     CKR_KEY_INDIGESTIBLE);
		destroy(key);
	}
}

/* ---------------------------------------------------------------------
 * Derivation (CKF_DERIVE)
 * --------------------------------------------------------------------- */

/* C_DeriveKey to an extractable, non-sensitive key (or data object) whose value is returned. */
static CK_RV derive_value(CK_MECHANISM *mech, CK_OBJECT_HANDLE base, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt, CK_ULONG vlen,
			  CK_BYTE *val, CK_ULONG *n)
{
	CK_ATTRIBUTE t[8];
	CK_ULONG nt = 0;
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv;

	t[nt++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof cls };
	t[nt++] = (CK_ATTRIBUTE){ CKA_TOKEN, &no, sizeof no };
	if (vlen)
		t[nt++] = (CK_ATTRIBUTE){ CKA_VALUE_LEN, &vlen, sizeof vlen };
	if (cls == CKO_SECRET_KEY) {
		t[nt++] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, &kt, sizeof kt };
		t[nt++] = (CK_ATTRIBUTE){ CKA_SENSITIVE, &no, sizeof no };
		t[nt++] = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &yes, sizeof yes };
		t[nt++] = (CK_ATTRIBUTE){ CKA_ENCRYPT, &yes, sizeof yes };
	}
	rv = f->C_DeriveKey(sess, mech, base, t, nt, &h);
	if (rv != CKR_OK)
		return rv;
	if (!get_value(h, val, n))
		rv = CKR_GENERAL_ERROR;
	destroy(h);
	return rv;
}

/*
 * got and ngot are read after rv has been computed (they are filled by the
 * derive_value call that computes rv, itself an argument of this call).
 */
static void check_derived(const char *what, CK_RV rv, const CK_BYTE *got, const CK_ULONG *ngot, const CK_BYTE *want,
			  CK_ULONG nwant)
{
	if (rvok(rv, nm("%s C_DeriveKey", what)))
		same(nm("%s known answer", what), got, *ngot, want, nwant);
}

static void derive_ecdh(const struct mt *m)
{
	CK_MECHANISM_INFO mi = mech_info(m->type);
	char saved[sizeof cur];
	size_t i;

	memcpy(saved, cur, sizeof cur);
	for (i = 0; i <= NCURVES; i++) {
		int mont = i == NCURVES;
		struct kp a, b;
		CK_BYTE pa[300], pb[300], va[80], vb[80], vc[80];
		CK_ULONG na = sizeof pa, nb = sizeof pb, la = sizeof va, lb = sizeof vb, lc = sizeof vc, plen, hdr, fl;
		CK_ECDH1_DERIVE_PARAMS ea, eb;
		CK_MECHANISM ma = { m->type, &ea, sizeof ea }, mb = { m->type, &eb, sizeof eb };
		CK_RV rv;

		memcpy(cur, saved, sizeof cur);
		if (mont) {
			if (m->type != CKM_ECDH1_DERIVE || !listed(CKM_EC_MONTGOMERY_KEY_PAIR_GEN))
				continue;
			strcat(cur, " [X25519]");
			fl = 32;
		} else {
			if (curves[i].bits < mi.ulMinKeySize || curves[i].bits > mi.ulMaxKeySize || !need_ec(i))
				continue;
			snprintf(cur + strlen(cur), sizeof cur - strlen(cur), " [%s]", curves[i].name);
			fl = (curves[i].bits + 7) / 8;
		}
		memset(&a, 0, sizeof a);
		memset(&b, 0, sizeof b);
		rv = gen_pair(sess, mont ? CKM_EC_MONTGOMERY_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, mont ? 'x' : 'e',
			      mont ? &x25519 : &curves[i], CK_FALSE, &a);
		if (!rvok(rv, nm("C_GenerateKeyPair (party A)")))
			continue;
		rv = gen_pair(sess, mont ? CKM_EC_MONTGOMERY_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, mont ? 'x' : 'e',
			      mont ? &x25519 : &curves[i], CK_FALSE, &b);
		if (!rvok(rv, nm("C_GenerateKeyPair (party B)")))
			goto done;
		if (get_attr(a.pub, CKA_EC_POINT, pa, &na) != CKR_OK || get_attr(b.pub, CKA_EC_POINT, pb, &nb) != CKR_OK) {
			abi_fail(nm("CKA_EC_POINT"), "not readable");
			goto done;
		}
		/* A takes B's point as CKA_EC_POINT gives it (DER OCTET STRING); B takes A's raw point */
		memset(&ea, 0, sizeof ea);
		ea.kdf = CKD_NULL;
		ea.pPublicData = pb;
		ea.ulPublicDataLen = nb;
		memset(&eb, 0, sizeof eb);
		eb.kdf = CKD_NULL;
		hdr = der_len_hdr(pa, na, &plen);
		eb.pPublicData = pa + hdr;
		eb.ulPublicDataLen = na - hdr;
		rv = derive_value(&ma, a.priv, CKO_SECRET_KEY, CKK_GENERIC_SECRET, fl, va, &la);
		if (rvok(rv, nm("C_DeriveKey A with B's CKA_EC_POINT (DER)"))) {
			rv = derive_value(&mb, b.priv, CKO_SECRET_KEY, CKK_GENERIC_SECRET, fl, vb, &lb);
			if (rvok(rv, nm("C_DeriveKey B with A's raw point")))
				same(nm("both parties derive the same %lu-byte secret", (unsigned long)fl), va, la, vb, lb);
			abi_check(nm("derived CKA_VALUE_LEN honoured"), la == fl, "got %lu", (unsigned long)la);
		}
		/* a shorter key: the leftmost bytes of the shared secret (CKD_NULL truncation) */
		rv = derive_value(&ma, a.priv, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 16, vc, &lc);
		if (rvok(rv, nm("C_DeriveKey CKA_VALUE_LEN 16")))
			abi_check(nm("CKA_VALUE_LEN 16 gives 16 bytes"), lc == 16, "got %lu", (unsigned long)lc);
		ma.ulParameterLen = sizeof ea - 1;
		lc = sizeof vc;
		abi_check_rv(nm("C_DeriveKey CK_ECDH1_DERIVE_PARAMS of sizeof-1 bytes -> CKR_MECHANISM_PARAM_INVALID"),
			     derive_value(&ma, a.priv, CKO_SECRET_KEY, CKK_GENERIC_SECRET, fl, vc, &lc),
			     CKR_MECHANISM_PARAM_INVALID);
	done:
		destroy(a.pub);
		destroy(a.priv);
		if (b.state == 1) {
			destroy(b.pub);
			destroy(b.priv);
		}
	}
	memcpy(cur, saved, sizeof cur);
}

/* RFC 5869 test case 1 */
static void derive_hkdf(const struct mt *m)
{
	static const CK_BYTE ikm[22] = { 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
					 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b };
	static const CK_BYTE salt[13] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	static const CK_BYTE hinfo[10] = { 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9 };
	CK_HKDF_PARAMS hp;
	CK_MECHANISM mech = { m->type, &hp, sizeof hp };
	CK_OBJECT_HANDLE base = make_secret(CKK_GENERIC_SECRET, ikm, sizeof ikm, CK_TRUE, CK_FALSE), prk, saltk;
	CK_BYTE v[128];
	CK_ULONG n = sizeof v;
	int data = m->type == CKM_HKDF_DATA;
	CK_OBJECT_CLASS cls = data ? CKO_DATA : CKO_SECRET_KEY;

	if (base == CK_INVALID_HANDLE)
		return;
	memset(&hp, 0, sizeof hp);
	hp.bExtract = CK_TRUE;
	hp.bExpand = CK_TRUE;
	hp.prfHashMechanism = CKM_SHA256;
	hp.ulSaltType = CKF_HKDF_SALT_DATA;
	hp.pSalt = (CK_BYTE_PTR)salt;
	hp.ulSaltLen = sizeof salt;
	hp.pInfo = (CK_BYTE_PTR)hinfo;
	hp.ulInfoLen = sizeof hinfo;
	check_derived("RFC 5869 #1 extract+expand (salt data)",
		      derive_value(&mech, base, cls, CKK_GENERIC_SECRET, 42, v, &n), v, &n, ka_hkdf_okm,
		      sizeof ka_hkdf_okm);
	if (data) {
		mech.ulParameterLen = sizeof hp - 1;
		n = sizeof v;
		abi_check_rv(nm("CK_HKDF_PARAMS of sizeof-1 bytes -> CKR_MECHANISM_PARAM_INVALID"),
			     derive_value(&mech, base, cls, CKK_GENERIC_SECRET, 42, v, &n), CKR_MECHANISM_PARAM_INVALID);
		destroy(base);
		return;
	}
	/* extract only: the PRK */
	hp.bExpand = CK_FALSE;
	n = sizeof v;
	check_derived("RFC 5869 #1 extract only", derive_value(&mech, base, cls, CKK_GENERIC_SECRET, 32, v, &n), v, &n,
		      ka_hkdf_prk, sizeof ka_hkdf_prk);
	/* expand only, from the PRK imported as a key */
	prk = make_secret(CKK_GENERIC_SECRET, ka_hkdf_prk, sizeof ka_hkdf_prk, CK_TRUE, CK_FALSE);
	if (prk != CK_INVALID_HANDLE) {
		hp.bExtract = CK_FALSE;
		hp.bExpand = CK_TRUE;
		hp.ulSaltType = CKF_HKDF_SALT_NULL;
		hp.pSalt = NULL;
		hp.ulSaltLen = 0;
		n = sizeof v;
		check_derived("RFC 5869 #1 expand only (PRK as the base key)",
			      derive_value(&mech, prk, cls, CKK_GENERIC_SECRET, 42, v, &n), v, &n, ka_hkdf_okm,
			      sizeof ka_hkdf_okm);
		destroy(prk);
	}
	/* the salt as a key (CKF_HKDF_SALT_KEY) */
	saltk = make_secret(CKK_GENERIC_SECRET, salt, sizeof salt, CK_TRUE, CK_FALSE);
	if (saltk != CK_INVALID_HANDLE) {
		hp.bExtract = CK_TRUE;
		hp.bExpand = CK_TRUE;
		hp.ulSaltType = CKF_HKDF_SALT_KEY;
		hp.hSaltKey = saltk;
		hp.pSalt = NULL;
		hp.ulSaltLen = 0;
		n = sizeof v;
		check_derived("RFC 5869 #1 extract+expand (CKF_HKDF_SALT_KEY)",
			      derive_value(&mech, base, cls, CKK_GENERIC_SECRET, 42, v, &n), v, &n, ka_hkdf_okm,
			      sizeof ka_hkdf_okm);
		destroy(saltk);
	}
	mech.ulParameterLen = sizeof hp - 1;
	n = sizeof v;
	abi_check_rv(nm("CK_HKDF_PARAMS of sizeof-1 bytes -> CKR_MECHANISM_PARAM_INVALID"),
		     derive_value(&mech, base, cls, CKK_GENERIC_SECRET, 42, v, &n), CKR_MECHANISM_PARAM_INVALID);
	destroy(base);
}

/* SP 800-108 with HMAC-SHA256: [i]32 || label || 0x00 || context || [L]32 (feedback: K(i-1) first). */
static void derive_sp800108(const struct mt *m)
{
	static const CK_BYTE label[] = "gohsm label", context[] = "gohsm context", zero = 0;
	static const CK_BYTE fiv[16] = { 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77,
					 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f };
	CK_BYTE basev[32], v[128];
	CK_SP800_108_COUNTER_FORMAT cf = { CK_FALSE, 32 };
	CK_SP800_108_DKM_LENGTH_FORMAT df = { CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS, CK_FALSE, 32 };
	CK_PRF_DATA_PARAM ctr[] = {
		{ CK_SP800_108_ITERATION_VARIABLE, &cf, sizeof cf },
		{ CK_SP800_108_BYTE_ARRAY, (void *)label, sizeof label - 1 },
		{ CK_SP800_108_BYTE_ARRAY, (void *)&zero, 1 },
		{ CK_SP800_108_BYTE_ARRAY, (void *)context, sizeof context - 1 },
		{ CK_SP800_108_DKM_LENGTH, &df, sizeof df },
	};
	CK_PRF_DATA_PARAM fb[] = {
		{ CK_SP800_108_ITERATION_VARIABLE, NULL, 0 },
		{ CK_SP800_108_COUNTER, &cf, sizeof cf },
		{ CK_SP800_108_BYTE_ARRAY, (void *)label, sizeof label - 1 },
		{ CK_SP800_108_BYTE_ARRAY, (void *)&zero, 1 },
		{ CK_SP800_108_BYTE_ARRAY, (void *)context, sizeof context - 1 },
		{ CK_SP800_108_DKM_LENGTH, &df, sizeof df },
	};
	/* CloudHSM's layout (gohsm.h): the same PRF input, [i]32 || label || 0x00 || context || [L]32,
	 * from a label and a context, the data parameters in the vendor header's order */
	CK_CLOUDHSM_SP800_108_COUNTER_FORMAT vcf = { 32 };
	CK_CLOUDHSM_SP800_108_DKM_LENGTH_FORMAT vdf = { SP800_108_DKM_LENGTH_SUM_OF_KEYS, 32 };
	CK_PRF_DATA_PARAM vendor[] = {
		{ SP800_108_COUNTER_FORMAT, &vcf, sizeof vcf },
		{ SP800_108_DKM_FORMAT, &vdf, sizeof vdf },
		{ SP800_108_PRF_LABEL, (void *)label, sizeof label - 1 },
		{ SP800_108_PRF_CONTEXT, (void *)context, sizeof context - 1 },
	};
	CK_CLOUDHSM_SP800_108_KDF_PARAMS vp = { m->hash, LEN(vendor), vendor };
	CK_SP800_108_KDF_PARAMS kp = { m->hash, LEN(ctr), ctr, 0, NULL };
	CK_SP800_108_FEEDBACK_KDF_PARAMS fp = { m->hash, LEN(fb), fb, sizeof fiv, (CK_BYTE_PTR)fiv, 0, NULL };
	int feedback = m->type == CKM_SP800_108_FEEDBACK_KDF;
	CK_MECHANISM mech = { m->type, feedback ? (void *)&fp : (void *)&kp, feedback ? sizeof fp : sizeof kp };

	if (m->type == CKM_CLOUDHSM_SP800_108_COUNTER_KDF) {
		mech.pParameter = &vp;
		mech.ulParameterLen = sizeof vp;
	}
	CK_OBJECT_HANDLE base;
	CK_ULONG i, n;

	for (i = 0; i < 32; i++)
		basev[i] = (CK_BYTE)(0x40 + i);
	base = make_secret(CKK_GENERIC_SECRET, basev, sizeof basev, CK_TRUE, CK_FALSE);
	if (base == CK_INVALID_HANDLE)
		return;
	if (feedback) {
		n = sizeof v;
		check_derived("feedback mode, HMAC-SHA256, 48 bytes",
			      derive_value(&mech, base, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 48, v, &n), v, &n,
			      ka_sp800108_fb_48, sizeof ka_sp800108_fb_48);
	} else {
		n = sizeof v;
		check_derived("counter mode, HMAC-SHA256, 16 bytes",
			      derive_value(&mech, base, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 16, v, &n), v, &n,
			      ka_sp800108_ctr_16, sizeof ka_sp800108_ctr_16);
		n = sizeof v;
		check_derived("counter mode, HMAC-SHA256, 48 bytes (two PRF blocks)",
			      derive_value(&mech, base, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 48, v, &n), v, &n,
			      ka_sp800108_ctr_48, sizeof ka_sp800108_ctr_48);
		n = sizeof v;
		check_derived("counter mode, HMAC-SHA256, 16 bytes again (deterministic)",
			      derive_value(&mech, base, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 16, v, &n), v, &n,
			      ka_sp800108_ctr_16, sizeof ka_sp800108_ctr_16);
		/* the same derivation as an AES-256 key: CKA_VALUE_LEN from the template */
		n = sizeof v;
		if (rvok(derive_value(&mech, base, CKO_SECRET_KEY, CKK_AES, 32, v, &n), nm("derive an AES-256 key")))
			abi_check(nm("AES-256 key of 32 bytes"), n == 32, "got %lu", (unsigned long)n);
	}
	mech.ulParameterLen -= 1;
	n = sizeof v;
	abi_check_rv(nm("KDF parameter of sizeof-1 bytes -> CKR_MECHANISM_PARAM_INVALID"),
		     derive_value(&mech, base, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 16, v, &n), CKR_MECHANISM_PARAM_INVALID);
	destroy(base);
}

/*
 * The derived value holds the base key's bytes, so the derived key inherits
 * the protection of the keys it comes from (PKCS #11 v3.0 "Miscellaneous
 * simple key derivation mechanisms"): derive_value's template, which asks
 * for a readable key, is refused for a sensitive, unextractable key.
 */
static void check_inherits(CK_MECHANISM *mech, CK_OBJECT_HANDLE base, CK_ULONG vlen)
{
	CK_BYTE v[64];
	CK_ULONG n = sizeof v;

	abi_check_rv(nm("readable key from a sensitive unextractable key -> CKR_TEMPLATE_INCONSISTENT"),
		     derive_value(mech, base, CKO_SECRET_KEY, CKK_GENERIC_SECRET, vlen, v, &n), CKR_TEMPLATE_INCONSISTENT);
}

static void derive_concat(const struct mt *m)
{
	static const CK_BYTE bv[16] = "base key value!!", ov[8] = "otherkey", dv[12] = "derive data.";
	CK_OBJECT_HANDLE base = make_secret(CKK_GENERIC_SECRET, bv, sizeof bv, CK_FALSE, CK_TRUE), other = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE sbase = make_secret(CKK_GENERIC_SECRET, bv, sizeof bv, CK_TRUE, CK_FALSE), sother = CK_INVALID_HANDLE;
	CK_KEY_DERIVATION_STRING_DATA sd = { (CK_BYTE_PTR)dv, sizeof dv };
	CK_MECHANISM mech = { m->type, &sd, sizeof sd };
	CK_BYTE want[64], v[64];
	CK_ULONG wn = 0, n = sizeof v, i;

	if (base == CK_INVALID_HANDLE)
		return;
	switch (m->type) {
	case CKM_CONCATENATE_BASE_AND_KEY:
		/* "If either of the two original keys has its CKA_SENSITIVE attribute set to CK_TRUE, so does the derived key" */
		sother = make_secret(CKK_GENERIC_SECRET, ov, sizeof ov, CK_TRUE, CK_FALSE);
		mech.pParameter = &sother;
		mech.ulParameterLen = sizeof sother;
		check_inherits(&mech, base, 0);
		other = make_secret(CKK_GENERIC_SECRET, ov, sizeof ov, CK_FALSE, CK_TRUE);
		mech.pParameter = &other;
		mech.ulParameterLen = sizeof other;
		memcpy(want, bv, sizeof bv);
		memcpy(want + sizeof bv, ov, sizeof ov);
		wn = sizeof bv + sizeof ov;
		break;
	case CKM_CONCATENATE_BASE_AND_DATA:
		memcpy(want, bv, sizeof bv);
		memcpy(want + sizeof bv, dv, sizeof dv);
		wn = sizeof bv + sizeof dv;
		break;
	case CKM_CONCATENATE_DATA_AND_BASE:
		memcpy(want, dv, sizeof dv);
		memcpy(want + sizeof dv, bv, sizeof bv);
		wn = sizeof bv + sizeof dv;
		break;
	case CKM_XOR_BASE_AND_DATA:
		/* the result is as long as the shorter of the two */
		for (i = 0; i < sizeof dv; i++)
			want[i] = bv[i] ^ dv[i];
		wn = sizeof dv;
		break;
	}
	check_inherits(&mech, sbase, 0);
	check_derived("no CKA_VALUE_LEN: whole result", derive_value(&mech, base, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 0, v, &n),
		      v, &n, want, wn);
	n = sizeof v;
	check_derived("CKA_VALUE_LEN 8: leading bytes",
		      derive_value(&mech, base, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 8, v, &n), v, &n, want, 8);
	mech.ulParameterLen -= 1;
	n = sizeof v;
	abi_check_rv(nm("parameter of sizeof-1 bytes -> CKR_MECHANISM_PARAM_INVALID"),
		     derive_value(&mech, base, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 8, v, &n), CKR_MECHANISM_PARAM_INVALID);
	destroy(other);
	destroy(sother);
	destroy(sbase);
	destroy(base);
}

/*
 * CKM_EXTRACT_KEY_FROM_KEY: bits of the base key numbered from the most
 * significant bit of its first byte, taken from ulBitIndex on and wrapping
 * around (PKCS #11 v3.0 "Key derivation by data extraction").
 */
static void derive_extract(const struct mt *m)
{
	static const CK_BYTE bv[4] = { 0x32, 0x9f, 0x84, 0xa9 };
	CK_EXTRACT_PARAMS bit = 21;
	CK_MECHANISM mech = { m->type, &bit, sizeof bit };
	CK_OBJECT_HANDLE base = make_secret(CKK_GENERIC_SECRET, bv, sizeof bv, CK_FALSE, CK_TRUE);
	CK_OBJECT_HANDLE sbase = make_secret(CKK_GENERIC_SECRET, bv, sizeof bv, CK_TRUE, CK_FALSE);
	CK_BYTE want[2] = { 0, 0 }, v[16];
	CK_ULONG n = sizeof v, j;

	if (base == CK_INVALID_HANDLE)
		return;
	check_inherits(&mech, sbase, 2);
	destroy(sbase);
	for (j = 0; j < 16; j++) {
		CK_ULONG src = (bit + j) % 32;
		int b = (bv[src / 8] >> (7 - src % 8)) & 1;

		want[j / 8] |= (CK_BYTE)(b << (7 - j % 8));
	}
	check_derived("2 bytes from bit 21 of 329f84a9 (wrapping)",
		      derive_value(&mech, base, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 2, v, &n), v, &n, want, 2);
	destroy(base);
}

static void derive_encrypt_data(const struct mt *m)
{
	static const CK_BYTE aes_data[32] = "gohsm aes encrypt-data 32 bytes!";
	static const CK_BYTE des3_data[32] = "gohsm des3 data!gohsm des3 data?";
	int des = m->key == K_DES3, cbc = m->type == CKM_AES_CBC_ENCRYPT_DATA || m->type == CKM_DES3_CBC_ENCRYPT_DATA;
	CK_OBJECT_HANDLE base = des ? make_secret(CKK_DES3, des3_key_value, 24, CK_TRUE, CK_FALSE) :
				      make_secret(CKK_AES, aes_key_value, 32, CK_TRUE, CK_FALSE);
	const CK_BYTE *data = des ? des3_data : aes_data;
	const CK_BYTE *ka = des ? (cbc ? ka_des3_cbc : ka_des3_ecb) : (cbc ? ka_aes_cbc : ka_aes_ecb);
	CK_KEY_DERIVATION_STRING_DATA sd = { (CK_BYTE_PTR)data, 32 };
	CK_AES_CBC_ENCRYPT_DATA_PARAMS ap;
	CK_DES_CBC_ENCRYPT_DATA_PARAMS dp;
	CK_MECHANISM mech = { m->type, &sd, sizeof sd };
	CK_MECHANISM_TYPE enc = des ? (cbc ? CKM_DES3_CBC : CKM_DES3_ECB) : (cbc ? CKM_AES_CBC : CKM_AES_ECB);
	CK_BYTE v[64], ct[64];
	CK_ULONG n = sizeof v, i;

	if (base == CK_INVALID_HANDLE)
		return;
	for (i = 0; i < 16; i++)
		ap.iv[i] = (CK_BYTE)(0xa0 + i);
	for (i = 0; i < 8; i++)
		dp.iv[i] = (CK_BYTE)(1 + i);
	ap.pData = dp.pData = (CK_BYTE_PTR)data;
	ap.length = dp.length = 32;
	if (cbc) {
		mech.pParameter = des ? (void *)&dp : (void *)&ap;
		mech.ulParameterLen = des ? sizeof dp : sizeof ap;
	}
	check_derived("32 bytes of data -> generic secret",
		      derive_value(&mech, base, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 0, v, &n), v, &n, ka, 32);
	/* the same as C_Encrypt of the data with the base key, where the module lists that mechanism */
	if (listed(enc)) {
		CK_MECHANISM em = { enc, cbc ? (des ? dp.iv : ap.iv) : NULL, cbc ? (des ? 8 : 16) : 0 };
		CK_ULONG cn = 0;

		if (single_crypt(1, &em, base, data, 32, ct, &cn, "base key", 0) == CKR_OK)
			same(nm("derived value equals C_Encrypt(%s) with the base key", mech_name(enc)), v, n, ct, cn);
	} else {
		info("%s: %s not listed, derived value checked against the pinned answer only", cur, mech_name(enc));
	}
	mech.ulParameterLen -= 1;
	n = sizeof v;
	abi_check_rv(nm("parameter of sizeof-1 bytes -> CKR_MECHANISM_PARAM_INVALID"),
		     derive_value(&mech, base, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 0, v, &n), CKR_MECHANISM_PARAM_INVALID);
	destroy(base);
}

/* CKM_SHAx_KEY_DERIVATION: the digest of the base key's value. */
static void derive_digest(const struct mt *m)
{
	CK_OBJECT_HANDLE base = make_secret(CKK_GENERIC_SECRET, (const CK_BYTE *)"abc", 3, CK_TRUE, CK_FALSE);
	CK_MECHANISM mech = { m->type, NULL, 0 };
	CK_BYTE v[128];
	CK_ULONG n = sizeof v;

	if (base == CK_INVALID_HANDLE)
		return;
	check_derived("digest of the base key \"abc\"",
		      derive_value(&mech, base, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 0, v, &n), v, &n, m->ka, m->kalen);
	n = sizeof v;
	check_derived("CKA_VALUE_LEN 16: leading bytes",
		      derive_value(&mech, base, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 16, v, &n), v, &n, m->ka, 16);
	destroy(base);
}

/* ---------------------------------------------------------------------
 * Wrap / unwrap (CKF_WRAP / CKF_UNWRAP)
 * --------------------------------------------------------------------- */

/* The RFC 3394 section 4.6 key data: the key every wrap procedure wraps. */
static const CK_BYTE wrap_target[32] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
					 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
					 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f };

static CK_RV wrap(CK_MECHANISM *mech, CK_OBJECT_HANDLE wk, CK_OBJECT_HANDLE key, CK_BYTE *out, CK_ULONG *n)
{
	CK_ULONG q = 0, q2;
	CK_RV rv = f->C_WrapKey(sess, mech, wk, key, NULL, &q);

	if (rv != CKR_OK) {
		abi_fail(nm("C_WrapKey length query"), "%s", abi_rv_name(rv));
		return rv;
	}
	q2 = q;
	rv = f->C_WrapKey(sess, mech, wk, key, out, &q2);
	if (rv != CKR_OK || q2 > q) {
		abi_fail(nm("C_WrapKey exact-size buffer"), "%s, %lu bytes after a query of %lu", abi_rv_name(rv),
			 (unsigned long)q2, (unsigned long)q);
		return rv ? rv : CKR_GENERAL_ERROR;
	}
	abi_pass(nm("C_WrapKey (length query, exact-size buffer: %lu bytes)", (unsigned long)q2));
	*n = q2;
	return CKR_OK;
}

/* AES-ECB of one block with key k (for comparing two keys); 0 if not possible. */
static int ecb_block(CK_OBJECT_HANDLE k, CK_BYTE out[16])
{
	CK_MECHANISM mech = { CKM_AES_ECB, NULL, 0 };
	CK_BYTE in[16];
	CK_ULONG n = 16;

	fill(in, 16, 1);
	return f->C_EncryptInit(sess, &mech, k) == CKR_OK && f->C_Encrypt(sess, in, 16, out, &n) == CKR_OK && n == 16;
}

static void proc_wrap(const struct mt *m)
{
	struct params p;
	CK_MECHANISM mech;
	CK_OBJECT_HANDLE wk, uk, target, unwrapped = CK_INVALID_HANDLE;
	struct kp *rk = NULL;
	CK_BYTE wrapped[4096], v[64], e1[16], e2[16];
	CK_ULONG wn = 0, n = sizeof v;
	CK_OBJECT_CLASS sc = CKO_SECRET_KEY, pc = CKO_PRIVATE_KEY;
	CK_KEY_TYPE aes = CKK_AES, ec = CKK_EC;
	CK_ULONG vl = 32;
	CK_ATTRIBUTE st[] = {
		{ CKA_CLASS, &sc, sizeof sc },		{ CKA_KEY_TYPE, &aes, sizeof aes },
		{ CKA_TOKEN, &no, sizeof no },		{ CKA_ENCRYPT, &yes, sizeof yes },
		{ CKA_SENSITIVE, &no, sizeof no },	{ CKA_EXTRACTABLE, &yes, sizeof yes },
		{ CKA_VALUE_LEN, &vl, sizeof vl },
	};
	CK_ATTRIBUTE pt[] = {
		{ CKA_CLASS, &pc, sizeof pc }, { CKA_KEY_TYPE, &ec, sizeof ec }, { CKA_TOKEN, &no, sizeof no },
		{ CKA_SIGN, &yes, sizeof yes }, { CKA_PRIVATE, &yes, sizeof yes },
	};
	char saved[sizeof cur];
	CK_RV rv;

	memcpy(saved, cur, sizeof cur);
	switch (m->key) {
	case K_AES:
		wk = uk = make_secret(CKK_AES, aes_key_value, 32, CK_TRUE, CK_FALSE); /* the RFC 3394 4.6 KEK */
		strcat(cur, " [AES-256 KEK]");
		break;
	case K_DES3:
		wk = uk = make_secret(CKK_DES3, des3_key_value, 24, CK_TRUE, CK_FALSE);
		strcat(cur, " [DES3 KEK]");
		break;
	case K_RSA:
		if ((rk = need_rsa()) == NULL)
			return;
		wk = rk->pub;
		uk = rk->priv;
		strcat(cur, " [RSA-2048]");
		break;
	default:
		abi_fail(nm("wrap"), "no procedure for key kind %d", m->key);
		return;
	}
	if (wk == CK_INVALID_HANDLE)
		goto out;
	target = make_secret(CKK_AES, wrap_target, sizeof wrap_target, CK_TRUE, CK_TRUE);
	if (target == CK_INVALID_HANDLE)
		goto out;

	/* an extractable AES-256 key */
	build_param(m, &p, &mech, 32);
	if (wrap(&mech, wk, target, wrapped, &wn) == CKR_OK) {
		if (m->ka)
			same(nm("wrapped AES-256 key known answer"), wrapped, wn, m->ka, m->kalen);
		build_param(m, &p, &mech, m->param == P_CCM ? wn - 16 : wn);
		rv = f->C_UnwrapKey(sess, &mech, uk, wrapped, wn, st, LEN(st), &unwrapped);
		if (rvok(rv, nm("C_UnwrapKey AES-256"))) {
			if (abi_check(nm("unwrapped key CKA_VALUE readable"), get_value(unwrapped, v, &n), "not readable"))
				same(nm("unwrapped key has the original value"), v, n, wrap_target, sizeof wrap_target);
			if (listed(CKM_AES_ECB)) {
				if (abi_check(nm("CKM_AES_ECB with both keys"), ecb_block(target, e1) && ecb_block(unwrapped, e2),
					      "C_Encrypt failed"))
					same(nm("original and unwrapped keys encrypt alike (CKM_AES_ECB)"), e2, 16, e1, 16);
			}
			destroy(unwrapped);
		}
		if (m->flags & M_AEAD) {
			CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

			wrapped[wn / 2] ^= 0x04;
			build_param(m, &p, &mech, m->param == P_CCM ? wn - 16 : wn);
			rv = f->C_UnwrapKey(sess, &mech, uk, wrapped, wn, st, LEN(st), &h);
			abi_check(nm("C_UnwrapKey of a tampered blob fails"), rv != CKR_OK, "unwrapped (handle %lu)",
				  (unsigned long)h);
			if (rv == CKR_OK)
				destroy(h);
		}
	}
	destroy(target);

	/* an EC private key (PKCS #8) */
	if (m->flags & M_WRAPPRIV) {
		struct kp ek;

		memset(&ek, 0, sizeof ek);
		rv = gen_pair(sess, CKM_EC_KEY_PAIR_GEN, 'e', &curves[1], CK_TRUE, &ek);
		if (rvok(rv, nm("C_GenerateKeyPair P-256 with an extractable private key"))) {
			build_param(m, &p, &mech, 200);
			if (wrap(&mech, wk, ek.priv, wrapped, &wn) == CKR_OK) {
				build_param(m, &p, &mech, wn);
				unwrapped = CK_INVALID_HANDLE;
				rv = f->C_UnwrapKey(sess, &mech, uk, wrapped, wn, pt, LEN(pt), &unwrapped);
				if (rvok(rv, nm("C_UnwrapKey EC private key"))) {
					CK_MECHANISM sm = { CKM_ECDSA_SHA256, NULL, 0 };
					CK_BYTE sig[128], msg[40];
					CK_ULONG sl = sizeof sig;

					fill(msg, sizeof msg, 9);
					rv = f->C_SignInit(sess, &sm, unwrapped);
					if (rv == CKR_OK)
						rv = f->C_Sign(sess, msg, sizeof msg, sig, &sl);
					if (rvok(rv, nm("C_Sign with the unwrapped EC key")))
						abi_check_rv(nm("original public key verifies the unwrapped key's signature"),
							     do_verify(&sm, ek.pub, msg, sizeof msg, sig, sl, 0), CKR_OK);
					destroy(unwrapped);
				}
			}
			destroy(ek.pub);
			destroy(ek.priv);
		}
	}
out:
	if (m->key != K_RSA)
		destroy(wk);
	memcpy(cur, saved, sizeof cur);
}

/* ---------------------------------------------------------------------
 * The 3.0 message-based AEAD functions (CKF_MESSAGE_ENCRYPT / _DECRYPT)
 * --------------------------------------------------------------------- */

/* One message's parameter, GCM or CCM, over caller-owned IV and tag buffers. */
struct msgp {
	CK_GCM_MESSAGE_PARAMS g;
	CK_CCM_MESSAGE_PARAMS c;
	int ccm;
};

static void msg_param(struct msgp *mp, int ccm, CK_BYTE *iv, CK_ULONG ivlen, CK_GENERATOR_FUNCTION gen, CK_BYTE *tag,
		      CK_ULONG datalen, void **pp, CK_ULONG *pl)
{
	memset(mp, 0, sizeof *mp);
	mp->ccm = ccm;
	if (ccm) {
		mp->c.ulDataLen = datalen;
		mp->c.pNonce = iv;
		mp->c.ulNonceLen = ivlen;
		mp->c.nonceGenerator = gen;
		mp->c.pMAC = tag;
		mp->c.ulMACLen = 16;
		*pp = &mp->c;
		*pl = sizeof mp->c;
	} else {
		mp->g.pIv = iv;
		mp->g.ulIvLen = ivlen;
		mp->g.ivGenerator = gen;
		mp->g.pTag = tag;
		mp->g.ulTagBits = 128;
		*pp = &mp->g;
		*pl = sizeof mp->g;
	}
}

static void proc_message(const struct mt *m)
{
	int ccm = m->type == CKM_AES_CCM;
	CK_OBJECT_HANDLE key = make_secret(CKK_AES, aes_key_value, 32, CK_TRUE, CK_FALSE);
	CK_MECHANISM mech = { m->type, NULL, 0 };
	CK_BYTE aad[24], pt[61], ct[128], ct2[128], ct3[128], out[128], one[256];
	CK_BYTE iv[12], iv1[12], iv2[12], tag[16], tag1[16], tag2[16], tag3[16], zero[12];
	CK_ULONG n, q, ctlen = 0, ct3len = 0, off;
	struct msgp mp;
	void *pp;
	CK_ULONG pl;
	struct params sp;
	CK_MECHANISM single;
	CK_RV rv;

	if (key == CK_INVALID_HANDLE)
		return;
	memcpy(aad, "gohsm additional data!!", 24);
	fill(pt, sizeof pt, 3);
	memset(zero, 0, sizeof zero);
	strcat(cur, " [AES-256]");

	if (!rvok(f->C_MessageEncryptInit(sess, &mech, key), nm("C_MessageEncryptInit")))
		goto out;
	/* CKG_NO_GENERATE: the caller's IV */
	fill(iv, sizeof iv, 7);
	memset(tag, 0, sizeof tag);
	msg_param(&mp, ccm, iv, sizeof iv, CKG_NO_GENERATE, tag, sizeof pt, &pp, &pl);
	q = 0;
	rv = f->C_EncryptMessage(sess, pp, pl, aad, sizeof aad, pt, sizeof pt, NULL, &q);
	abi_check(nm("C_EncryptMessage length query"), rv == CKR_OK && q >= sizeof pt, "%s len %lu", abi_rv_name(rv),
		  (unsigned long)q);
	ctlen = q;
	rv = f->C_EncryptMessage(sess, pp, pl, aad, sizeof aad, pt, sizeof pt, ct, &ctlen);
	if (rvok(rv, nm("C_EncryptMessage CKG_NO_GENERATE exact-size buffer"))) {
		abi_check(nm("ciphertext as long as the plaintext (tag apart)"), ctlen == sizeof pt, "got %lu",
			  (unsigned long)ctlen);
		abi_check(nm("tag filled in"), memcmp(tag, zero, 12) != 0, "tag %s", hex(tag, 16));
		/* the same as the one-shot C_Encrypt with the same IV and AAD: ciphertext || tag */
		build_param(m, &sp, &single, sizeof pt);
		if (single_crypt(1, &single, key, pt, sizeof pt, one, &n, "one-shot", 0) == CKR_OK) {
			CK_BYTE both[128];

			memcpy(both, ct, ctlen);
			memcpy(both + ctlen, tag, 16);
			same(nm("C_EncryptMessage ciphertext||tag equals C_Encrypt"), both, ctlen + 16, one, n);
		}
	}
	/* CKG_GENERATE_RANDOM: the module fills in the IV, a new one per message */
	memset(iv1, 0, sizeof iv1);
	msg_param(&mp, ccm, iv1, sizeof iv1, CKG_GENERATE_RANDOM, tag1, sizeof pt, &pp, &pl);
	n = sizeof ct2;
	rv = f->C_EncryptMessage(sess, pp, pl, aad, sizeof aad, pt, sizeof pt, ct2, &n);
	if (rvok(rv, nm("C_EncryptMessage CKG_GENERATE_RANDOM")))
		abi_check(nm("CKG_GENERATE_RANDOM filled in the IV"), memcmp(iv1, zero, sizeof iv1) != 0, "IV still zero");
	memset(iv2, 0, sizeof iv2);
	msg_param(&mp, ccm, iv2, sizeof iv2, CKG_GENERATE_RANDOM, tag2, sizeof pt, &pp, &pl);
	n = sizeof out;
	rv = f->C_EncryptMessage(sess, pp, pl, aad, sizeof aad, pt, sizeof pt, out, &n);
	if (rvok(rv, nm("C_EncryptMessage CKG_GENERATE_RANDOM again")))
		abi_check(nm("generated IVs of two messages differ"), memcmp(iv1, iv2, sizeof iv1) != 0, "both %s",
			  hex(iv1, sizeof iv1));
	/* multi-part message: Begin, Next, Next with CKF_END_OF_MESSAGE */
	msg_param(&mp, ccm, iv, sizeof iv, CKG_NO_GENERATE, tag3, sizeof pt, &pp, &pl);
	if (rvok(f->C_EncryptMessageBegin(sess, pp, pl, aad, sizeof aad), nm("C_EncryptMessageBegin"))) {
		n = sizeof ct3;
		rv = f->C_EncryptMessageNext(sess, pp, pl, pt, 20, ct3, &n, 0);
		off = rv == CKR_OK ? n : 0;
		if (rvok(rv, nm("C_EncryptMessageNext (first part)"))) {
			n = sizeof ct3 - off;
			rv = f->C_EncryptMessageNext(sess, pp, pl, pt + 20, sizeof pt - 20, ct3 + off, &n, CKF_END_OF_MESSAGE);
			if (rvok(rv, nm("C_EncryptMessageNext CKF_END_OF_MESSAGE"))) {
				ct3len = off + n;
				same(nm("multi-part message ciphertext equals C_EncryptMessage"), ct3, ct3len, ct, ctlen);
				same(nm("multi-part message tag equals C_EncryptMessage"), tag3, 16, tag, 16);
			}
		}
	}
	rvok(f->C_MessageEncryptFinal(sess), nm("C_MessageEncryptFinal"));

	if (!rvok(f->C_MessageDecryptInit(sess, &mech, key), nm("C_MessageDecryptInit")))
		goto out;
	msg_param(&mp, ccm, iv, sizeof iv, CKG_NO_GENERATE, tag, sizeof pt, &pp, &pl);
	n = sizeof out;
	rv = f->C_DecryptMessage(sess, pp, pl, aad, sizeof aad, ct, ctlen, out, &n);
	if (rvok(rv, nm("C_DecryptMessage")))
		same(nm("C_DecryptMessage round trip"), out, n, pt, sizeof pt);
	msg_param(&mp, ccm, iv1, sizeof iv1, CKG_NO_GENERATE, tag1, sizeof pt, &pp, &pl);
	n = sizeof out;
	rv = f->C_DecryptMessage(sess, pp, pl, aad, sizeof aad, ct2, sizeof pt, out, &n);
	if (rvok(rv, nm("C_DecryptMessage of the CKG_GENERATE_RANDOM message with its returned IV")))
		same(nm("generated-IV message round trip"), out, n, pt, sizeof pt);
	tag[3] ^= 0x01;
	msg_param(&mp, ccm, iv, sizeof iv, CKG_NO_GENERATE, tag, sizeof pt, &pp, &pl);
	n = sizeof out;
	rv = f->C_DecryptMessage(sess, pp, pl, aad, sizeof aad, ct, ctlen, out, &n);
	abi_check_rv2(nm("C_DecryptMessage with a tampered tag"), rv, CKR_ENCRYPTED_DATA_INVALID, CKR_AEAD_DECRYPT_FAILED);
	tag[3] ^= 0x01;
	msg_param(&mp, ccm, iv, sizeof iv, CKG_NO_GENERATE, tag, sizeof pt, &pp, &pl);
	if (rvok(f->C_DecryptMessageBegin(sess, pp, pl, aad, sizeof aad), nm("C_DecryptMessageBegin"))) {
		n = sizeof out;
		rv = f->C_DecryptMessageNext(sess, pp, pl, ct, 30, out, &n, 0);
		off = rv == CKR_OK ? n : 0;
		if (rvok(rv, nm("C_DecryptMessageNext (first part)"))) {
			n = sizeof out - off;
			rv = f->C_DecryptMessageNext(sess, pp, pl, ct + 30, ctlen - 30, out + off, &n, CKF_END_OF_MESSAGE);
			if (rvok(rv, nm("C_DecryptMessageNext CKF_END_OF_MESSAGE")))
				same(nm("multi-part message decryption round trip"), out, off + n, pt, sizeof pt);
		}
	}
	rvok(f->C_MessageDecryptFinal(sess), nm("C_MessageDecryptFinal"));
	/* a message parameter of the wrong size */
	if (rvok(f->C_MessageEncryptInit(sess, &mech, key), nm("C_MessageEncryptInit again"))) {
		msg_param(&mp, ccm, iv, sizeof iv, CKG_NO_GENERATE, tag, sizeof pt, &pp, &pl);
		n = sizeof ct;
		abi_check_rv(nm("C_EncryptMessage parameter of sizeof-1 bytes -> CKR_MECHANISM_PARAM_INVALID"),
			     f->C_EncryptMessage(sess, pp, pl - 1, aad, sizeof aad, pt, sizeof pt, ct, &n),
			     CKR_MECHANISM_PARAM_INVALID);
		f->C_MessageEncryptFinal(sess);
	}
out:
	destroy(key);
}

/* ---------------------------------------------------------------------
 * ML-KEM (PKCS #11 3.2): key pairs, C_EncapsulateKey / C_DecapsulateKey
 * --------------------------------------------------------------------- */

struct mlkem_set {
	const char *tag;
	CK_ULONG set, eklen, ctlen, dklen;
};

static const struct mlkem_set mlkem_sets[] = {
	{ "[ML-KEM-512]", CKP_ML_KEM_512, 800, 768, 1632 },
	{ "[ML-KEM-768]", CKP_ML_KEM_768, 1184, 1088, 2400 },
	{ "[ML-KEM-1024]", CKP_ML_KEM_1024, 1568, 1568, 3168 },
};

static CK_RV mlkem_pair(CK_ULONG set, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM mech = { CKM_ML_KEM_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pt[] = { { CKA_TOKEN, &no, sizeof no }, { CKA_PARAMETER_SET, &set, sizeof set } };
	CK_ATTRIBUTE kt[] = { { CKA_TOKEN, &no, sizeof no }, { CKA_SENSITIVE, &yes, sizeof yes } };

	return f->C_GenerateKeyPair(sess, &mech, pt, LEN(pt), kt, LEN(kt), pub, priv);
}

/*
 * A non-sensitive pair: the private CKA_VALUE is the expanded key (dk, whose
 * tail is ek || H(ek) || z); C_CreateObject takes seed + dk, refuses a dk
 * that is not the seed's and a dk alone (CKR_TEMPLATE_INCOMPLETE).
 */
static void mlkem_import(const struct mlkem_set *ms)
{
	CK_MECHANISM mech = { CKM_ML_KEM_KEY_PAIR_GEN, NULL, 0 };
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt = CKK_ML_KEM;
	CK_ULONG set = ms->set, nek = 2000, nseed = 64, ndk = 3200;
	CK_BYTE ek[2000], seed[64], dk[3200];
	CK_ATTRIBUTE pt[] = { { CKA_TOKEN, &no, sizeof no }, { CKA_PARAMETER_SET, &set, sizeof set } };
	CK_ATTRIBUTE privt[] = { { CKA_TOKEN, &no, sizeof no }, { CKA_SENSITIVE, &no, sizeof no }, { CKA_EXTRACTABLE, &yes, sizeof yes } };
	CK_OBJECT_HANDLE pub, priv, h = CK_INVALID_HANDLE;

	if (!rvok(f->C_GenerateKeyPair(sess, &mech, pt, LEN(pt), privt, LEN(privt), &pub, &priv), nm("%s non-sensitive pair", ms->tag)))
		return;
	if (rvok(get_attr(pub, CKA_VALUE, ek, &nek), nm("%s public CKA_VALUE", ms->tag)) &&
	    rvok(get_attr(priv, CKA_SEED, seed, &nseed), nm("%s CKA_SEED", ms->tag)) &&
	    rvok(get_attr(priv, CKA_VALUE, dk, &ndk), nm("%s private CKA_VALUE", ms->tag))) {
		CK_ATTRIBUTE ct[] = {
			{ CKA_CLASS, &cls, sizeof cls },	 { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_TOKEN, &no, sizeof no },
			{ CKA_PARAMETER_SET, &set, sizeof set }, { CKA_VALUE, dk, ndk },	   { CKA_SEED, seed, nseed },
		};

		abi_check(nm("%s private CKA_VALUE is the expanded key", ms->tag),
			  nseed == 64 && ndk == ms->dklen && memcmp(dk + ndk - 64 - nek, ek, nek) == 0 &&
				  memcmp(dk + ndk - 32, seed + 32, 32) == 0,
			  "seed %lu dk %lu", (unsigned long)nseed, (unsigned long)ndk);
		if (rvok(f->C_CreateObject(sess, ct, LEN(ct), &h), nm("%s C_CreateObject seed + expanded key", ms->tag)))
			destroy(h);
		dk[0] ^= 1;
		abi_check_rv(nm("%s C_CreateObject with another expanded key", ms->tag), f->C_CreateObject(sess, ct, LEN(ct), &h),
			     CKR_ATTRIBUTE_VALUE_INVALID);
		dk[0] ^= 1;
		abi_check_rv(nm("%s C_CreateObject expanded key alone", ms->tag), f->C_CreateObject(sess, ct, LEN(ct) - 1, &h),
			     CKR_TEMPLATE_INCOMPLETE);
	}
	destroy(pub);
	destroy(priv);
}

static void proc_mlkem_pairs(const struct mt *m)
{
	CK_MECHANISM_INFO mi = mech_info(m->type);
	CK_OBJECT_HANDLE pub, priv;
	size_t i;

	abi_check(nm("CK_MECHANISM_INFO sizes 512..1024"), mi.ulMinKeySize == 512 && mi.ulMaxKeySize == 1024,
		  "%lu..%lu", (unsigned long)mi.ulMinKeySize, (unsigned long)mi.ulMaxKeySize);
	for (i = 0; i < LEN(mlkem_sets); i++) {
		const struct mlkem_set *ms = &mlkem_sets[i];
		CK_BYTE buf[2000];
		CK_ULONG n = sizeof buf, v;
		CK_BBOOL b;

		if (!rvok(mlkem_pair(ms->set, &pub, &priv), nm("%s C_GenerateKeyPair", ms->tag)))
			continue;
		abi_check(nm("%s public CKA_VALUE is the encapsulation key", ms->tag),
			  get_attr(pub, CKA_VALUE, buf, &n) == CKR_OK && n == ms->eklen, "len %lu", (unsigned long)n);
		abi_check(nm("%s private CKA_PARAMETER_SET", ms->tag), get_ulong(priv, CKA_PARAMETER_SET, &v) && v == ms->set,
			  "got %lu", (unsigned long)v);
		abi_check(nm("%s CKA_LOCAL, CKA_KEY_GEN_MECHANISM", ms->tag),
			  get_bool(priv, CKA_LOCAL, &b) && b && get_ulong(priv, CKA_KEY_GEN_MECHANISM, &v) && v == m->type,
			  "not local or mechanism 0x%lx", (unsigned long)v);
		abi_check(nm("%s CKA_DECAPSULATE / CKA_ENCAPSULATE default true", ms->tag),
			  get_bool(priv, CKA_DECAPSULATE, &b) && b && get_bool(pub, CKA_ENCAPSULATE, &b) && b, "false");
		n = sizeof buf;
		abi_check_rv(nm("%s sensitive CKA_SEED", ms->tag), get_attr(priv, CKA_SEED, buf, &n), CKR_ATTRIBUTE_SENSITIVE);
		n = sizeof buf;
		abi_check_rv(nm("%s sensitive CKA_VALUE (expanded key)", ms->tag), get_attr(priv, CKA_VALUE, buf, &n),
			     CKR_ATTRIBUTE_SENSITIVE);
		destroy(pub);
		destroy(priv);
		mlkem_import(ms);
	}
}

/* A secret-key template for the new key: kt, readable, usable for HMAC or AES. */
#define KEM_TEMPLATE(name, kt)                                                                            \
	CK_OBJECT_CLASS name##_cls = CKO_SECRET_KEY;                                                      \
	CK_KEY_TYPE name##_kt = (kt);                                                                     \
	CK_ATTRIBUTE name[] = {                                                                           \
		{ CKA_CLASS, &name##_cls, sizeof name##_cls }, { CKA_KEY_TYPE, &name##_kt, sizeof name##_kt }, \
		{ CKA_TOKEN, &no, sizeof no },                 { CKA_SENSITIVE, &no, sizeof no },             \
		{ CKA_EXTRACTABLE, &yes, sizeof yes },         { CKA_SIGN, &yes, sizeof yes },                \
		{ CKA_VERIFY, &yes, sizeof yes },              { CKA_ENCRYPT, &yes, sizeof yes },             \
		{ CKA_DECRYPT, &yes, sizeof yes },                                                            \
	}

static void proc_kem(const struct mt *m)
{
	size_t i;

	for (i = 0; i < LEN(mlkem_sets); i++) {
		const struct mlkem_set *ms = &mlkem_sets[i];
		CK_MECHANISM mech = { m->type, NULL, 0 };
		CK_OBJECT_HANDLE pub, priv, h1 = CK_INVALID_HANDLE, h2 = CK_INVALID_HANDLE, h3, a1, a2;
		CK_BYTE ct[1600], v1[64], v2[64], v3[64], mac[32], block[16], enc[16], dec[16];
		CK_ULONG n, n1 = sizeof v1, n2 = sizeof v2, n3 = sizeof v3, nmac = sizeof mac, nb;
		CK_MECHANISM hmac = { CKM_SHA256_HMAC, NULL, 0 }, ecb = { CKM_AES_ECB, NULL, 0 };
		KEM_TEMPLATE(gen, CKK_GENERIC_SECRET);
		KEM_TEMPLATE(aes, CKK_AES);

		if (!rvok(mlkem_pair(ms->set, &pub, &priv), nm("%s C_GenerateKeyPair", ms->tag)))
			continue;
		/* Output length rules: a query and a short buffer make no key. */
		n = 0;
		abi_check(nm("%s C_EncapsulateKey length query", ms->tag),
			  f->C_EncapsulateKey(sess, &mech, pub, gen, LEN(gen), NULL, &n, &h1) == CKR_OK && n == ms->ctlen &&
				  h1 == CK_INVALID_HANDLE,
			  "len %lu handle %lu", (unsigned long)n, (unsigned long)h1);
		n = ms->ctlen - 1;
		abi_check(nm("%s C_EncapsulateKey short buffer", ms->tag),
			  f->C_EncapsulateKey(sess, &mech, pub, gen, LEN(gen), ct, &n, &h1) == CKR_BUFFER_TOO_SMALL &&
				  n == ms->ctlen && h1 == CK_INVALID_HANDLE,
			  "len %lu handle %lu", (unsigned long)n, (unsigned long)h1);
		n = sizeof ct;
		if (!rvok(f->C_EncapsulateKey(sess, &mech, pub, gen, LEN(gen), ct, &n, &h1), nm("%s C_EncapsulateKey", ms->tag)))
			goto out;
		abi_check(nm("%s ciphertext length", ms->tag), n == ms->ctlen, "len %lu", (unsigned long)n);
		if (!rvok(f->C_DecapsulateKey(sess, &mech, priv, gen, LEN(gen), ct, n, &h2), nm("%s C_DecapsulateKey", ms->tag)))
			goto out;
		if (get_value(h1, v1, &n1) && get_value(h2, v2, &n2))
			abi_check(nm("%s the two keys are equal (32 bytes)", ms->tag), n1 == 32 && same(nm("%s values", ms->tag), v1, n1, v2, n2),
				  "len %lu", (unsigned long)n1);
		/* The secret as an HMAC key: signed with one, verified with the other. */
		if (rvok(f->C_SignInit(sess, &hmac, h1), nm("%s C_SignInit HMAC with the encapsulated key", ms->tag)) &&
		    rvok(f->C_Sign(sess, (CK_BYTE_PTR) "abc", 3, mac, &nmac), nm("%s C_Sign", ms->tag)) &&
		    rvok(f->C_VerifyInit(sess, &hmac, h2), nm("%s C_VerifyInit with the decapsulated key", ms->tag)))
			rvok(f->C_Verify(sess, (CK_BYTE_PTR) "abc", 3, mac, nmac), nm("%s C_Verify", ms->tag));
		/* As an AES key. */
		n = sizeof ct;
		if (rvok(f->C_EncapsulateKey(sess, &mech, pub, aes, LEN(aes), ct, &n, &a1), nm("%s C_EncapsulateKey AES", ms->tag)) &&
		    rvok(f->C_DecapsulateKey(sess, &mech, priv, aes, LEN(aes), ct, n, &a2), nm("%s C_DecapsulateKey AES", ms->tag))) {
			fill(block, sizeof block, 7);
			nb = sizeof enc;
			if (rvok(f->C_EncryptInit(sess, &ecb, a1), nm("%s C_EncryptInit AES-ECB", ms->tag)) &&
			    rvok(f->C_Encrypt(sess, block, sizeof block, enc, &nb), nm("%s C_Encrypt", ms->tag)) &&
			    rvok(f->C_DecryptInit(sess, &ecb, a2), nm("%s C_DecryptInit", ms->tag))) {
				nb = sizeof dec;
				if (rvok(f->C_Decrypt(sess, enc, sizeof enc, dec, &nb), nm("%s C_Decrypt", ms->tag)))
					same(nm("%s AES round trip across the two keys", ms->tag), dec, nb, block, sizeof block);
			}
			destroy(a1);
			destroy(a2);
		}
		/* Implicit rejection: a tampered ciphertext gives another key, no error. */
		n = ms->ctlen;
		ct[5] ^= 0x40;
		if (rvok(f->C_DecapsulateKey(sess, &mech, priv, gen, LEN(gen), ct, n, &h3), nm("%s tampered ciphertext decapsulates", ms->tag))) {
			abi_check(nm("%s tampered ciphertext: a different key", ms->tag),
				  get_value(h3, v3, &n3) && (n3 != n1 || memcmp(v3, v1, n1) != 0), "same value");
			destroy(h3);
		}
		abi_check_rv(nm("%s ciphertext one byte short", ms->tag),
			     f->C_DecapsulateKey(sess, &mech, priv, gen, LEN(gen), ct, n - 1, &h3), CKR_ENCRYPTED_DATA_LEN_RANGE);
		abi_check_rv(nm("%s C_DecapsulateKey with the public key", ms->tag),
			     f->C_DecapsulateKey(sess, &mech, pub, gen, LEN(gen), ct, n, &h3), CKR_KEY_FUNCTION_NOT_PERMITTED);
		n = sizeof ct;
		abi_check_rv(nm("%s C_EncapsulateKey with the private key", ms->tag),
			     f->C_EncapsulateKey(sess, &mech, priv, gen, LEN(gen), ct, &n, &h3), CKR_KEY_FUNCTION_NOT_PERMITTED);
	out:
		if (h1 != CK_INVALID_HANDLE)
			destroy(h1);
		if (h2 != CK_INVALID_HANDLE)
			destroy(h2);
		destroy(pub);
		destroy(priv);
	}
}

/* ---------------------------------------------------------------------
 * Driver
 * --------------------------------------------------------------------- */

/* CK_MECHANISM_INFO flags that name operations (the rest describe them). */
static void run_procs(const struct mt *m, CK_FLAGS ops, CK_FLAGS untested, CK_FLAGS flags);

#define OPS                                                                                                   \
	(CKF_ENCRYPT | CKF_DECRYPT | CKF_DIGEST | CKF_SIGN | CKF_SIGN_RECOVER | CKF_VERIFY | CKF_VERIFY_RECOVER | \
	 CKF_GENERATE | CKF_GENERATE_KEY_PAIR | CKF_WRAP | CKF_UNWRAP | CKF_DERIVE | CKF_MESSAGE_ENCRYPT |       \
	 CKF_MESSAGE_DECRYPT | CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY | CKF_MULTI_MESSAGE | CKF_ENCAPSULATE |     \
	 CKF_DECAPSULATE)

static void run(const struct mt *m)
{
	CK_MECHANISM_INFO mi = mech_info(m->type);
	CK_FLAGS ops = mi.flags & OPS, untested = ops & ~m->ops;
	CK_RV rv;

	snprintf(cur, sizeof cur, "%s", m->name);
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &sess);
	if (rv != CKR_OK) {
		abi_fail(nm("C_OpenSession"), "%s", abi_rv_name(rv));
		return;
	}
	run_procs(m, ops, untested, mi.flags);
	rv = f->C_CloseSession(sess);
	if (rv != CKR_OK)
		abi_fail(nm("C_CloseSession"), "%s", abi_rv_name(rv));
	sess = keysess;
}

static void run_procs(const struct mt *m, CK_FLAGS ops, CK_FLAGS untested, CK_FLAGS flags)
{
	if (untested)
		abi_fail(nm("flags"), "no ABI test for %s operations 0x%lx (CK_MECHANISM_INFO flags 0x%lx)", m->name,
			 (unsigned long)untested, (unsigned long)flags);
	if (!ops)
		abi_fail(nm("flags"), "listed with no operation flag (0x%lx)", (unsigned long)flags);
	if (ops & CKF_GENERATE)
		proc_generate(m);
	if (ops & CKF_GENERATE_KEY_PAIR)
		proc_generate_pair(m);
	if (ops & (CKF_ENCRYPT | CKF_DECRYPT))
		proc_cipher(m);
	snprintf(cur, sizeof cur, "%s", m->name);
	if (ops & (CKF_SIGN | CKF_VERIFY))
		proc_sign(m);
	if (ops & (CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER))
		proc_recover(m);
	if (ops & CKF_DIGEST)
		proc_digest(m);
	if ((ops & CKF_DERIVE) && m->derive)
		m->derive(m);
	snprintf(cur, sizeof cur, "%s", m->name);
	if (ops & (CKF_WRAP | CKF_UNWRAP))
		proc_wrap(m);
	snprintf(cur, sizeof cur, "%s", m->name);
	if (ops & KEM)
		proc_kem(m);
	snprintf(cur, sizeof cur, "%s", m->name);
	if (ops & (CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT))
		proc_message(m);
	else if (m->ops & CKF_MESSAGE_ENCRYPT) {
		/* not advertised: the message functions must agree with the flags */
		CK_MECHANISM mech = { m->type, NULL, 0 };
		CK_OBJECT_HANDLE key = make_secret(CKK_AES, aes_key_value, 32, CK_TRUE, CK_FALSE);

		if (key != CK_INVALID_HANDLE) {
			CK_RV rv = f->C_MessageEncryptInit(sess, &mech, key);

			abi_check(nm("no CKF_MESSAGE_ENCRYPT flag: C_MessageEncryptInit refused"), rv != CKR_OK,
				  "C_MessageEncryptInit succeeded for a mechanism without CKF_MESSAGE_ENCRYPT");
			if (rv == CKR_OK)
				f->C_MessageEncryptFinal(sess);
			destroy(key);
		}
	}
	/* flags the table knows but the module does not advertise */
	if (m->ops & ~ops & ~(CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT))
		info("%s: operations 0x%lx not advertised (not tested)", m->name, (unsigned long)(m->ops & ~ops));
}

int main(int argc, char **argv)
{
	struct abi_module mod;
	CK_ULONG i, n = LEN(listed_mechs);
	time_t start = time(NULL);
	size_t k;

	if (argc != 2) {
		fprintf(stderr, "usage: %s /path/to/libgohsm.so\n", argv[0]);
		return 2;
	}
	abi_load(argv[1], &mod);
	f = mod.f3;
	if (!rvok(abi_initialize(&mod), "C_Initialize") || !abi_first_slot(&mod, &slot) ||
	    !abi_setup_user_session(&mod, slot, &keysess))
		return abi_exit();
	sess = keysess;
	if (!rvok(f->C_GetMechanismList(slot, listed_mechs, &n), "C_GetMechanismList"))
		return abi_exit();
	nlisted = n;
	abi_check("C_GetMechanismList lists mechanisms", n > 0, "empty list");
	for (i = 0; i < nlisted; i++)
		printf("LISTED %s\n", mech_name(listed_mechs[i]));

	for (i = 0; i < nlisted; i++) {
		const struct mt *m = row_of(listed_mechs[i]);

		if (m == NULL) {
			abi_fail(mech_name(listed_mechs[i]), "no ABI test for %s (add a row to abi_mechanisms.c)",
				 mech_name(listed_mechs[i]));
			continue;
		}
		run(m);
		if (time(NULL) - start > 150) {
			abi_fail("time budget", "stopped after %lu of %lu mechanisms (150 s)", (unsigned long)(i + 1),
				 (unsigned long)nlisted);
			break;
		}
	}
	for (k = 0; k < LEN(rows); k++)
		if (!listed(rows[k].type))
			info("%s not listed (skipped)", rows[k].name);

	printf("%lu mechanisms listed, %zu in the table\n", (unsigned long)nlisted, LEN(rows));
	f->C_CloseAllSessions(slot);
	f->C_Finalize(NULL);
	return abi_exit();
}
