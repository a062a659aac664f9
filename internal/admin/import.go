package admin

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/attrs"
)

// ImportSpec is a key to import: `gohsm key import`'s flags, POST
// /api/v1/keys/import's body. Exactly one of PEM and AESKey.
type ImportSpec struct {
	Label string // CKA_LABEL, required
	ID    string // CKA_ID in hex (both halves of a pair get it)
	// PEM is one key in PEM: a private key (PKCS#8 "PRIVATE KEY", SEC 1
	// "EC PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY") or a public key (SPKI
	// "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY"), EC P-256 or P-384, or RSA
	// of 2048 to 4096 bits. An "EC PARAMETERS" block (openssl ecparam
	// -genkey writes one) is passed over.
	PEM []byte
	// AESKey is a raw AES key of 16, 24 or 32 bytes.
	AESKey []byte
}

// maxPEM bounds the PEM text: a 4096-bit RSA key in PKCS#8 takes about
// 3,300 bytes; parsing checks the key, which for a larger RSA key costs
// time that grows with the cube of its size, so a larger one is refused
// before it is parsed.
const maxPEM = 8 << 10

// DecodeHex decodes a hex field (an ID, a raw key); bad hex is an
// InputError naming the field.
func DecodeHex(field, s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, inputf(field, "%q: not hex", s)
	}
	return b, nil
}

// badKey is a key the import cannot take: CKR_ATTRIBUTE_VALUE_INVALID
// with what is wrong.
func badKey(format string, args ...any) error {
	return fmt.Errorf("import: %s: %w", fmt.Sprintf(format, args...), ck.CKR_ATTRIBUTE_VALUE_INVALID)
}

// badInput is an import whose input is malformed: CKR_ARGUMENTS_BAD.
func badInput(format string, args ...any) error {
	return fmt.Errorf("import: %s: %w", fmt.Sprintf(format, args...), ck.CKR_ARGUMENTS_BAD)
}

// importKey is a parsed key: its class, type and key material (a
// crypto/... key, or the raw AES bytes).
type importKey struct {
	class   ck.ObjectClass
	keyType ck.KeyType
	key     any
}

// parse checks the spec and reads its key.
func (s ImportSpec) parse() (importKey, error) {
	if s.Label == "" {
		return importKey{}, inputf("label", "is required")
	}
	if s.ID != "" {
		if _, err := DecodeHex("id", s.ID); err != nil {
			return importKey{}, err
		}
	}
	switch {
	case (len(s.PEM) > 0) == (len(s.AESKey) > 0):
		return importKey{}, badInput("give exactly one of a PEM key and a raw AES key")
	case len(s.AESKey) > 0:
		if n := len(s.AESKey); n != 16 && n != 24 && n != 32 {
			return importKey{}, badKey("a raw AES key is 16, 24 or 32 bytes, not %d", n)
		}
		return importKey{ck.CKO_SECRET_KEY, ck.CKK_AES, s.AESKey}, nil
	}
	return parsePEM(s.PEM)
}

// parsePEM reads the one key of a PEM text.
func parsePEM(text []byte) (importKey, error) {
	if len(text) > maxPEM {
		return importKey{}, badInput("the PEM text is %d bytes: at most %d (an RSA key of 4096 bits takes about 3,300)", len(text), maxPEM)
	}
	var blocks []*pem.Block
	for rest := text; ; {
		b, r := pem.Decode(rest)
		if b == nil {
			break
		}
		rest = r
		if b.Type != "EC PARAMETERS" {
			blocks = append(blocks, b)
		}
	}
	switch {
	case len(blocks) == 0:
		return importKey{}, badInput("no PEM key found: want -----BEGIN PRIVATE KEY----- or -----BEGIN PUBLIC KEY-----")
	case len(blocks) > 1:
		return importKey{}, badInput("the PEM text holds %d blocks (%s, %s, ...): import one key at a time", len(blocks), blocks[0].Type, blocks[1].Type)
	}
	b := blocks[0]
	if b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] != "" {
		return importKey{}, badInput("the PEM key is encrypted: decrypt it first (openssl pkey -in KEY -out PLAIN)")
	}
	var key any
	var err error
	public := false
	switch b.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(b.Bytes)
		public = true
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(b.Bytes)
		public = true
	default:
		return importKey{}, badInput("a PEM %q block: want PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY, PUBLIC KEY or RSA PUBLIC KEY", b.Type)
	}
	if err != nil {
		return importKey{}, badInput("the PEM %s cannot be read: %v", strings.ToLower(b.Type), err)
	}
	class := ck.CKO_PRIVATE_KEY
	if public {
		class = ck.CKO_PUBLIC_KEY
	}
	var bits int
	var curve elliptic.Curve
	var kt ck.KeyType
	switch k := key.(type) {
	case *rsa.PrivateKey:
		kt, bits = ck.CKK_RSA, k.N.BitLen()
	case *rsa.PublicKey:
		kt, bits = ck.CKK_RSA, k.N.BitLen()
	case *ecdsa.PrivateKey:
		kt, curve = ck.CKK_EC, k.Curve
	case *ecdsa.PublicKey:
		kt, curve = ck.CKK_EC, k.Curve
	default:
		return importKey{}, badKey("a %T key: want an EC (P-256, P-384) or RSA (2048 to 4096 bits) key", key)
	}
	if kt == ck.CKK_RSA && (bits < 2048 || bits > 4096) {
		return importKey{}, badKey("an RSA key of %d bits: want 2048 to 4096", bits)
	}
	if kt == ck.CKK_EC && curve != elliptic.P256() && curve != elliptic.P384() {
		return importKey{}, badKey("an EC key on %s: want P-256 or P-384", curve.Params().Name)
	}
	return importKey{class, kt, key}, nil
}

// Check validates the spec and parses its key without touching the token.
func (s ImportSpec) Check() error {
	_, err := s.parse()
	return err
}

// usage are the usage flags imported keys get, as generated keys do.
var usage = map[[2]ck.ULong][]ck.AttributeType{
	{ck.ULong(ck.CKO_SECRET_KEY), ck.ULong(ck.CKK_AES)}:  {ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_VERIFY, ck.CKA_WRAP, ck.CKA_UNWRAP},
	{ck.ULong(ck.CKO_PUBLIC_KEY), ck.ULong(ck.CKK_EC)}:   {ck.CKA_VERIFY},
	{ck.ULong(ck.CKO_PRIVATE_KEY), ck.ULong(ck.CKK_EC)}:  {ck.CKA_SIGN},
	{ck.ULong(ck.CKO_PUBLIC_KEY), ck.ULong(ck.CKK_RSA)}:  {ck.CKA_ENCRYPT, ck.CKA_VERIFY, ck.CKA_WRAP},
	{ck.ULong(ck.CKO_PRIVATE_KEY), ck.ULong(ck.CKK_RSA)}: {ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_UNWRAP},
}

// template is the C_CreateObject template of one key: a token object,
// private and sensitive unless public, the usage flags of its type, the
// label and ID, and the key material (less what C_CreateObject does not
// take: the token derives CKA_VALUE_LEN, CKA_MODULUS_BITS and a private
// key's CKA_EC_POINT).
func (s ImportSpec) template(class ck.ObjectClass, kt ck.KeyType, key any) (attrs.Template, error) {
	mat, err := attrs.TemplateFromKey(key)
	if err != nil {
		return nil, badKey("%v", err)
	}
	schema, ok := attrs.Lookup(class, kt)
	if !ok {
		return nil, badKey("no %v %v keys", class, kt)
	}
	t := attrs.Template{
		ck.CKA_CLASS:    attrs.ULong(ck.ULong(class)),
		ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(kt)),
		ck.CKA_TOKEN:    attrs.Bool(true),
		ck.CKA_LABEL:    []byte(s.Label),
	}
	for a, v := range mat {
		if r, ok := schema.Attr(a); ok && !r.Has(attrs.NotCreate) {
			t[a] = v
		}
	}
	if class != ck.CKO_PUBLIC_KEY {
		t[ck.CKA_PRIVATE] = attrs.Bool(true)
		t[ck.CKA_SENSITIVE] = attrs.Bool(true)
	}
	if s.ID != "" {
		t[ck.CKA_ID], _ = hex.DecodeString(s.ID)
	}
	setUsage(t, usage[[2]ck.ULong{ck.ULong(class), ck.ULong(kt)}]...)
	return t, nil
}

// Import creates the key s describes on session h, through the module as
// C_CreateObject would (the token's and the profile's rules apply: a
// crypto user's login, its ownership, the quotas). A private key comes
// with its public key, public half first, as Generate gives a pair; a
// public key or an AES key alone. Bad input is CKR_ARGUMENTS_BAD (no
// key, not PEM, an encrypted key) or CKR_ATTRIBUTE_VALUE_INVALID (a key
// of another type, curve or size); a missing label or bad ID an
// InputError.
func Import(m *token.Module, h ck.ULong, s ImportSpec) ([]Key, error) {
	ik, err := s.parse()
	if err != nil {
		return nil, err
	}
	type part struct {
		class ck.ObjectClass
		key   any
	}
	parts := []part{{ik.class, ik.key}}
	if ik.class == ck.CKO_PRIVATE_KEY {
		pub := ik.key.(interface{ Public() crypto.PublicKey }).Public()
		parts = []part{{ck.CKO_PUBLIC_KEY, pub}, {ck.CKO_PRIVATE_KEY, ik.key}}
	}
	var made []ck.ULong
	for _, p := range parts {
		t, err := s.template(p.class, ik.keyType, p.key)
		if err == nil {
			var obj ck.ULong
			if obj, err = m.CreateObject(h, t); err == nil {
				made = append(made, obj)
				continue
			}
		}
		for _, obj := range made {
			// The pair is made whole or not at all.
			m.DestroyObject(h, obj)
		}
		return nil, err
	}
	keys := make([]Key, len(made))
	for i, obj := range made {
		if keys[i], _, err = KeyInfo(m, h, obj); err != nil {
			return nil, err
		}
	}
	return keys, nil
}
