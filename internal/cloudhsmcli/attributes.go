package cloudhsmcli

import (
	"bytes"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// CloudHSM CLI's key attributes: the lowercase hyphenated names of
// `--attributes K=V`, of `--filter attr.K=V` and of the "attributes" object
// in key list output, each with its Cryptoki attribute and a codec that
// parses the command-line text and renders the JSON value.
//
// Names, values and order: "Supported attributes for CloudHSM CLI"
// (https://docs.aws.amazon.com/cloudhsm/latest/userguide/cloudhsm_cli-key-attributes-table.html)
// and the key list examples of "Filter keys using CloudHSM CLI"
// (https://docs.aws.amazon.com/cloudhsm/latest/userguide/manage-keys-cloudhsm-cli-filtering.html):
// check-value and ids print as "0x..." hex, booleans as JSON booleans,
// key-length-bytes and modulus-size-bits as numbers, public-exponent and
// modulus as "0x..." big-endian hex, curve by its name.

// Attribute is one row of the table.
type Attribute struct {
	Name string
	Type ck.AttributeType
	// Codec turns the text of K=V into the Cryptoki encoding and the
	// Cryptoki encoding into the JSON value key list prints.
	Codec Codec
	// Settable: may be given at key creation (--attributes); the rest are
	// read-only and only filter or print.
	Settable bool
	// Modifiable with key set-attribute.
	Modifiable bool
}

// Codec is how one attribute's value is written on the command line and in
// JSON.
type Codec struct {
	// Parse turns the command-line text into the Cryptoki encoding.
	Parse func(s string) ([]byte, error)
	// Render turns the Cryptoki encoding into the JSON value.
	Render func(b []byte) (any, error)
	// Bool: a CK_BBOOL, printed as false when a key lacks it.
	Bool bool
}

// Attributes is the table, in the order CloudHSM CLI prints them.
var Attributes = []Attribute{
	{"key-type", ck.CKA_KEY_TYPE, keyTypeCodec, true, false},
	{"label", ck.CKA_LABEL, textCodec, true, true},
	{"id", ck.CKA_ID, idCodec, true, true},
	{"check-value", ck.CKA_CHECK_VALUE, hexCodec, false, false},
	{"class", ck.CKA_CLASS, classCodec, true, false},
	{"encrypt", ck.CKA_ENCRYPT, boolCodec, true, true},
	{"decrypt", ck.CKA_DECRYPT, boolCodec, true, true},
	{"token", ck.CKA_TOKEN, boolCodec, true, true},
	{"always-sensitive", ck.CKA_ALWAYS_SENSITIVE, boolCodec, false, false},
	{"derive", ck.CKA_DERIVE, boolCodec, true, true},
	{"destroyable", ck.CKA_DESTROYABLE, boolCodec, true, true},
	{"extractable", ck.CKA_EXTRACTABLE, boolCodec, true, false},
	{"local", ck.CKA_LOCAL, boolCodec, false, false},
	{"modifiable", ck.CKA_MODIFIABLE, boolCodec, true, false},
	{"never-extractable", ck.CKA_NEVER_EXTRACTABLE, boolCodec, false, false},
	{"private", ck.CKA_PRIVATE, boolCodec, true, false},
	{"sensitive", ck.CKA_SENSITIVE, boolCodec, true, true},
	{"sign", ck.CKA_SIGN, boolCodec, true, true},
	{"trusted", ck.CKA_TRUSTED, boolCodec, true, true},
	{"unwrap", ck.CKA_UNWRAP, boolCodec, true, true},
	{"verify", ck.CKA_VERIFY, boolCodec, true, true},
	{"wrap", ck.CKA_WRAP, boolCodec, true, true},
	{"wrap-with-trusted", ck.CKA_WRAP_WITH_TRUSTED, boolCodec, true, true},
	{"key-length-bytes", ck.CKA_VALUE_LEN, ulongCodec, true, false},
	{"public-exponent", ck.CKA_PUBLIC_EXPONENT, bigIntCodec, true, false},
	{"modulus", ck.CKA_MODULUS, bigIntCodec, false, false},
	{"modulus-size-bits", ck.CKA_MODULUS_BITS, ulongCodec, true, false},
	{"ec-point", ck.CKA_EC_POINT, hexCodec, false, false},
	{"curve", ck.CKA_EC_PARAMS, curveCodec, true, false},
	{"mldsa-algorithm", ck.CKA_PARAMETER_SET, mldsaAlgorithmCodec, false, false},
}

// LookupAttribute finds a row by its CloudHSM CLI name.
func LookupAttribute(name string) (*Attribute, bool) {
	for i := range Attributes {
		if Attributes[i].Name == name {
			return &Attributes[i], true
		}
	}
	return nil, false
}

// attributeByType finds a row by its Cryptoki attribute.
func attributeByType(t ck.AttributeType) (*Attribute, bool) {
	for i := range Attributes {
		if Attributes[i].Type == t {
			return &Attributes[i], true
		}
	}
	return nil, false
}

// ParseAttributes turns `--attributes K=V ...` into a template. Read-only
// attributes are refused, as are unknown names and bad values.
func ParseAttributes(kvs []string) (attrs.Template, error) {
	t := attrs.Template{}
	for _, kv := range kvs {
		a, v, err := splitKV(kv)
		if err != nil {
			return nil, err
		}
		if !a.Settable {
			return nil, usageErr{fmt.Sprintf("attribute '%s' cannot be set", a.Name)}
		}
		b, err := a.Codec.Parse(v)
		if err != nil {
			return nil, err
		}
		t[a.Type] = b
	}
	return t, nil
}

// splitKV parses one NAME=VALUE term.
func splitKV(kv string) (*Attribute, string, error) {
	name, v, ok := strings.Cut(kv, "=")
	if !ok {
		return nil, "", usageErr{fmt.Sprintf("invalid attribute '%s': expected KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE", kv)}
	}
	a, ok := LookupAttribute(strings.ToLower(strings.TrimSpace(name)))
	if !ok {
		return nil, "", usageErr{fmt.Sprintf("invalid key attribute '%s'", name)}
	}
	return a, unquote(v), nil
}

// unquote drops one pair of surrounding quotes (interactive mode passes
// attr.label="my label" through as typed).
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		return v[1 : len(v)-1]
	}
	return v
}

// AttributeObject is the "attributes" object of key list: the attributes
// in the table's order, which encoding/json's maps would sort.
type AttributeObject []AttributeValue

// AttributeValue is one member of an AttributeObject.
type AttributeValue struct {
	Name  string
	Value any
}

// MarshalJSON writes the members in order.
func (o AttributeObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.Name)
		if err != nil {
			return nil, err
		}
		v, err := marshalNoEscape(m.Value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// Get returns a member's value.
func (o AttributeObject) Get(name string) (any, bool) {
	for _, m := range o {
		if m.Name == name {
			return m.Value, true
		}
	}
	return nil, false
}

// readTypes is what RenderAttributes needs read from a key: every row's
// attribute.
func readTypes() []ck.AttributeType {
	ts := make([]ck.AttributeType, len(Attributes))
	for i, a := range Attributes {
		ts[i] = a.Type
	}
	return ts
}

// RenderAttributes builds the "attributes" object from what
// C_GetAttributeValue returned (absent types: not readable or not on this
// kind of key). As CloudHSM CLI prints them: every boolean (false when the
// key does not have it), label and id ("" when empty), key-length-bytes
// for every key (the value length of a secret key, the modulus length of
// an RSA key, the point length of an EC key), the rest only when present.
func RenderAttributes(t attrs.Template) (AttributeObject, error) {
	var o AttributeObject
	for _, a := range Attributes {
		b, ok := t[a.Type]
		switch {
		case a.Type == ck.CKA_VALUE_LEN && !ok:
			n := keyLengthBytes(t)
			if n < 0 {
				continue
			}
			o = append(o, AttributeValue{a.Name, n})
			continue
		case !ok && a.Type == ck.CKA_EXTRACTABLE && publicKey(t):
			// PKCS#11 public keys have no CKA_EXTRACTABLE: their material
			// is never secret. CloudHSM's attribute table gives
			// extractable "Default: True" for every key
			// (UG:cloudhsm_cli-key-attributes) and its key import pem
			// example shows a public key with "extractable": true
			// (UG:cloudhsm_cli-key-import-pem); false would say the key
			// cannot be exported, and `key generate-file` exports it.
			o = append(o, AttributeValue{a.Name, true})
			continue
		case !ok && a.Codec.Bool:
			o = append(o, AttributeValue{a.Name, false})
			continue
		case !ok && (a.Type == ck.CKA_LABEL || a.Type == ck.CKA_ID):
			o = append(o, AttributeValue{a.Name, ""})
			continue
		case !ok:
			continue
		case a.Type == ck.CKA_PARAMETER_SET && !isKeyType(t, ck.CKK_ML_DSA):
			continue // an ML-KEM key's set (standard profile) is no mldsa-algorithm
		}
		v, err := a.Codec.Render(b)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", a.Name, err)
		}
		o = append(o, AttributeValue{a.Name, v})
	}
	return o, nil
}

// publicKey reports whether t is a public key's (CKA_CLASS).
func publicKey(t attrs.Template) bool {
	c, ok := t[ck.CKA_CLASS]
	return ok && bytes.Equal(c, attrs.ULong(ck.ULong(ck.CKO_PUBLIC_KEY)))
}

// keyLengthBytes is key-length-bytes for keys without CKA_VALUE_LEN: for
// RSA twice the modulus length (512 for RSA-2048, as the key import pem
// example shows for a public key; CloudHSM prints its internal size for
// private keys, about 1217 for RSA-2048, which gohsm cannot reproduce and
// prints the same 512), for EC the uncompressed point length (57 for
// secp224r1, as the key generate-asymmetric-pair ec example shows); -1
// when it cannot be told.
func keyLengthBytes(t attrs.Template) int {
	if m, ok := t[ck.CKA_MODULUS]; ok {
		return 2 * len(m)
	}
	if p, ok := t[ck.CKA_EC_POINT]; ok {
		return len(ecPointRaw(p))
	}
	return -1
}

// ecPointRaw strips the DER OCTET STRING around CKA_EC_POINT, if any.
func ecPointRaw(p []byte) []byte {
	var raw []byte
	if rest, err := asn1.Unmarshal(p, &raw); err == nil && len(rest) == 0 {
		return raw
	}
	return p
}

// ---------------------------------------------------------------------------
// Codecs
// ---------------------------------------------------------------------------

var boolCodec = Codec{
	Bool: true,
	Parse: func(s string) ([]byte, error) {
		switch strings.ToLower(s) {
		case "true":
			return attrs.Bool(true), nil
		case "false":
			return attrs.Bool(false), nil
		}
		return nil, usageErr{fmt.Sprintf("invalid value '%s': expected true or false", s)}
	},
	Render: func(b []byte) (any, error) {
		if len(b) != 1 || b[0] > 1 {
			return nil, fmt.Errorf("not a CK_BBOOL: %x", b)
		}
		return b[0] == 1, nil
	},
}

var textCodec = Codec{
	Parse:  func(s string) ([]byte, error) { return []byte(s), nil },
	Render: func(b []byte) (any, error) { return string(b), nil },
}

// parseHex reads "0x..." (or bare) hex.
func parseHex(s string) ([]byte, error) {
	h := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(h)%2 == 1 {
		h = "0" + h
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, usageErr{fmt.Sprintf("invalid hex value '%s'", s)}
	}
	return b, nil
}

func renderHex(b []byte) (any, error) { return "0x" + hex.EncodeToString(b), nil }

var hexCodec = Codec{Parse: parseHex, Render: renderHex}

// idCodec: an id is bytes; CloudHSM CLI prints it as hex ("" when empty)
// and takes it as "0x..." hex, or as text otherwise.
var idCodec = Codec{
	Parse: func(s string) ([]byte, error) {
		if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
			return parseHex(s)
		}
		return []byte(s), nil
	},
	Render: func(b []byte) (any, error) {
		if len(b) == 0 {
			return "", nil
		}
		return renderHex(b)
	},
}

var ulongCodec = Codec{
	Parse: func(s string) ([]byte, error) {
		n, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			return nil, usageErr{fmt.Sprintf("invalid number '%s'", s)}
		}
		return attrs.ULong(ck.ULong(n)), nil
	},
	Render: func(b []byte) (any, error) {
		if len(b) != 8 {
			return nil, fmt.Errorf("not a CK_ULONG: %x", b)
		}
		return binary.LittleEndian.Uint64(b), nil
	},
}

// bigIntCodec: big-endian integers (public-exponent, modulus), printed as
// "0x..." hex with whole bytes ("0x010001"); parsed from "0x..." hex or
// decimal ("65537").
var bigIntCodec = Codec{
	Parse: func(s string) ([]byte, error) {
		if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
			return parseHex(s)
		}
		n, ok := new(big.Int).SetString(s, 10)
		if !ok || n.Sign() <= 0 {
			return nil, usageErr{fmt.Sprintf("invalid number '%s'", s)}
		}
		return n.Bytes(), nil
	},
	Render: renderHex,
}

// names is a two-way table of a ULong-valued attribute's CloudHSM names.
type names[T ~uint] []struct {
	name string
	v    T
}

func (n names[T]) codec() Codec {
	return Codec{
		Parse: func(s string) ([]byte, error) {
			for _, e := range n {
				if e.name == strings.ToLower(s) {
					return attrs.ULong(ck.ULong(e.v)), nil
				}
			}
			var all []string
			for _, e := range n {
				all = append(all, e.name)
			}
			return nil, usageErr{fmt.Sprintf("invalid value '%s': expected one of %s", s, strings.Join(all, ", "))}
		},
		Render: func(b []byte) (any, error) {
			if len(b) != 8 {
				return nil, fmt.Errorf("not a CK_ULONG: %x", b)
			}
			v := T(binary.LittleEndian.Uint64(b))
			for _, e := range n {
				if e.v == v {
					return e.name, nil
				}
			}
			return fmt.Sprintf("0x%x", uint64(v)), nil
		},
	}
}

// classNames: "Possible values: secret-key, public-key, and private-key."
var classNames = names[ck.ObjectClass]{
	{"secret-key", ck.CKO_SECRET_KEY},
	{"public-key", ck.CKO_PUBLIC_KEY},
	{"private-key", ck.CKO_PRIVATE_KEY},
}

// keyTypeNames: the key types CloudHSM CLI names (aes, rsa, ec,
// generic-secret on the attributes page; des3 for the 3DES keys the
// cloudhsm profile still keeps in non-FIPS mode; ed25519 keys, which
// CloudHSM CLI generates as "ec" pairs on curve ed25519, are CKK_EC_EDWARDS
// here and named after the PKCS#11 type).
var keyTypeNames = names[ck.KeyType]{
	{"aes", ck.CKK_AES},
	{"rsa", ck.CKK_RSA},
	{"ec", ck.CKK_EC},
	{"generic-secret", ck.CKK_GENERIC_SECRET},
	{"des3", ck.CKK_DES3},
	{"ec-edwards", ck.CKK_EC_EDWARDS},
	{"ml-dsa", ck.CKK_ML_DSA}, // the generate-asymmetric-pair subcommand's name
}

// mldsaAlgorithmCodec: an ML-DSA key's CKA_PARAMETER_SET by the names
// --mldsa-algorithm takes (UG:cloudhsm_cli-key-generate-asymmetric-pair-mldsa:
// "[possible values: ML-DSA-44, ML-DSA-65, ML-DSA-87]"); the docs show no
// attribute for it, so it is printed under the flag's name.
var mldsaAlgorithmCodec = Codec{
	Parse: func(s string) ([]byte, error) {
		for _, e := range mldsaAlgorithms {
			if strings.EqualFold(e.name, s) {
				return attrs.ULong(e.v), nil
			}
		}
		return nil, usageErr{fmt.Sprintf("invalid value '%s': expected one of ML-DSA-44, ML-DSA-65, ML-DSA-87", s)}
	},
	Render: func(b []byte) (any, error) {
		if len(b) != 8 {
			return nil, fmt.Errorf("not a CK_ULONG: %x", b)
		}
		v := ck.ULong(binary.LittleEndian.Uint64(b))
		for _, e := range mldsaAlgorithms {
			if e.v == v {
				return e.name, nil
			}
		}
		return fmt.Sprintf("0x%x", uint64(v)), nil
	},
}

var mldsaAlgorithms = []struct {
	name string
	v    ck.ULong
}{{"ML-DSA-44", ck.CKP_ML_DSA_44}, {"ML-DSA-65", ck.CKP_ML_DSA_65}, {"ML-DSA-87", ck.CKP_ML_DSA_87}}

var (
	classCodec   = classNames.codec()
	keyTypeCodec = keyTypeNames.codec()
)

// curves are the names --curve and attr.curve take, with their OIDs
// (RFC 5480, SEC 2, RFC 8410). prime256v1 and secp256r1 are one curve:
// the first name is the one printed.
var curves = []struct {
	names []string
	oid   asn1.ObjectIdentifier
}{
	{[]string{"secp224r1"}, asn1.ObjectIdentifier{1, 3, 132, 0, 33}},
	{[]string{"secp256r1", "prime256v1"}, asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}},
	{[]string{"secp384r1"}, asn1.ObjectIdentifier{1, 3, 132, 0, 34}},
	{[]string{"secp521r1"}, asn1.ObjectIdentifier{1, 3, 132, 0, 35}},
	{[]string{"secp256k1"}, asn1.ObjectIdentifier{1, 3, 132, 0, 10}},
	{[]string{"ed25519"}, asn1.ObjectIdentifier{1, 3, 101, 112}},
}

// CurveParams is CKA_EC_PARAMS for a CloudHSM curve name.
func CurveParams(name string) ([]byte, bool) {
	for _, c := range curves {
		for _, n := range c.names {
			if n == strings.ToLower(name) {
				der, err := asn1.Marshal(c.oid)
				return der, err == nil
			}
		}
	}
	return nil, false
}

var curveCodec = Codec{
	Parse: func(s string) ([]byte, error) {
		if der, ok := CurveParams(s); ok {
			return der, nil
		}
		var all []string
		for _, c := range curves {
			all = append(all, c.names...)
		}
		return nil, usageErr{fmt.Sprintf("invalid value '%s': expected one of %s", s, strings.Join(all, ", "))}
	},
	Render: func(b []byte) (any, error) {
		var oid asn1.ObjectIdentifier
		if rest, err := asn1.Unmarshal(b, &oid); err == nil && len(rest) == 0 {
			for _, c := range curves {
				if c.oid.Equal(oid) {
					return c.names[0], nil
				}
			}
			return oid.String(), nil
		}
		var name string // PKCS#11 3.0 lets Edwards curves be named by a PrintableString
		if rest, err := asn1.Unmarshal(b, &name); err == nil && len(rest) == 0 {
			if name == "edwards25519" {
				return "ed25519", nil
			}
			return name, nil
		}
		return renderHex(b)
	},
}

// isKeyType reports whether a key's attributes say it is of type kt.
func isKeyType(t attrs.Template, kt ck.KeyType) bool {
	v, ok := t.ULong(ck.CKA_KEY_TYPE)
	return ok && ck.KeyType(v) == kt
}
