package cloudhsmcli

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/attrs"
)

// key import pem and key generate-file: public keys in and out of the HSM
// as PEM files.
//
// "Import a PEM format key using CloudHSM CLI"
// (https://docs.aws.amazon.com/cloudhsm/latest/userguide/cloudhsm_cli-key-import-pem.html):
// --key-type-class takes ec-public or rsa-public only (private keys come in
// wrapped, with key unwrap).
//
// "Export an asymmetric key with CloudHSM CLI"
// (https://docs.aws.amazon.com/cloudhsm/latest/userguide/cloudhsm_cli-key-generate-file.html):
// --encoding pem writes the public key of an asymmetric key (a public key,
// or the public half of a private key); reference-pem writes, for a
// private key, a "fake PEM" that names the key in the HSM instead of
// holding it (for OpenSSL's engine). The layout of CloudHSM's fake PEM is
// not documented; gohsm's is described at referencePEM.

func init() {
	register(
		Command{Path: []string{"key", "import", "pem"}, Role: CryptoUser,
			Help: "Import key from a PEM file", Setup: setupImportPEM},
		Command{Path: []string{"key", "generate-file"}, Role: CryptoUser,
			Help: "Generate a key file from a key in the HSM", Setup: setupGenerateFile},
	)
}

func setupImportPEM(fs *flag.FlagSet) func(*Context) (any, error) {
	path := fs.String("path", "", "Path where the key is located in PEM format")
	label := fs.String("label", "", "Label for the imported key")
	ktc := fs.String("key-type-class", "", "Key type and class of the imported key [possible values: ec-public, rsa-public]")
	attributes := Multi(fs, "attributes", "Space separated list of key attributes in the form of KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE for the imported key")
	return func(c *Context) (any, error) {
		if err := needFlags(fs, "path", "label", "key-type-class"); err != nil {
			return nil, err
		}
		if *ktc != "ec-public" && *ktc != "rsa-public" {
			return nil, usageErr{fmt.Sprintf("invalid value '%s' for '--key-type-class <KEY_TYPE_CLASS>' [possible values: ec-public, rsa-public]", *ktc)}
		}
		text, err := os.ReadFile(*path)
		if err != nil {
			return nil, fmt.Errorf("cloudhsmcli: reading --path: %w", err)
		}
		pub, err := parsePublicPEM(text)
		if err != nil {
			return nil, err
		}
		tmpl, err := ParseAttributes(*attributes)
		if err != nil {
			return nil, err
		}
		key, err := publicTemplate(pub, *ktc)
		if err != nil {
			return nil, err
		}
		for t, v := range key {
			if old, ok := tmpl[t]; ok && string(old) != string(v) {
				a, _ := attributeByType(t)
				return nil, usageErr{fmt.Sprintf("attribute '%s' contradicts the key in the PEM file", a.Name)}
			}
			tmpl[t] = v
		}
		tmpl[ck.CKA_LABEL] = []byte(*label)
		if _, ok := tmpl[ck.CKA_TOKEN]; !ok {
			tmpl[ck.CKA_TOKEN] = attrs.Bool(true)
		}
		if _, err := c.Session(); err != nil {
			return nil, err
		}
		obj, err := c.m.CreateObject(c.h, tmpl)
		if err != nil {
			return nil, err
		}
		k, err := c.describeKey(obj)
		if err != nil {
			return nil, err
		}
		return struct {
			Key     *keyObject `json:"key"`
			Message string     `json:"message"`
		}{k, "Successfully imported key"}, nil
	}
}

// parsePublicPEM reads a public key: an X.509 SubjectPublicKeyInfo
// ("PUBLIC KEY") or a PKCS #1 "RSA PUBLIC KEY".
func parsePublicPEM(text []byte) (any, error) {
	b, _ := pem.Decode(text)
	if b == nil {
		return nil, usageErr{"the file is not in PEM format"}
	}
	switch b.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, usageErr{fmt.Sprintf("the PEM file's public key cannot be read: %v", err)}
		}
		return k, nil
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(b.Bytes)
		if err != nil {
			return nil, usageErr{fmt.Sprintf("the PEM file's public key cannot be read: %v", err)}
		}
		return k, nil
	}
	return nil, usageErr{fmt.Sprintf("the PEM file holds a %q block: key import pem takes a public key", b.Type)}
}

// publicTemplate is a public key's Cryptoki template for --key-type-class.
func publicTemplate(pub any, ktc string) (attrs.Template, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if ktc != "rsa-public" {
			break
		}
		return attrs.Template{
			ck.CKA_CLASS:           attrs.ULong(ck.ULong(ck.CKO_PUBLIC_KEY)),
			ck.CKA_KEY_TYPE:        attrs.ULong(ck.ULong(ck.CKK_RSA)),
			ck.CKA_MODULUS:         k.N.Bytes(),
			ck.CKA_PUBLIC_EXPONENT: big.NewInt(int64(k.E)).Bytes(),
		}, nil
	case *ecdsa.PublicKey:
		if ktc != "ec-public" {
			break
		}
		params, err := mechanisms.ECParams(k.Curve)
		if err != nil {
			return nil, usageErr{fmt.Sprintf("the PEM file's curve %s is not supported", k.Curve.Params().Name)}
		}
		raw, err := k.Bytes()
		if err != nil {
			return nil, usageErr{fmt.Sprintf("the PEM file's public key cannot be read: %v", err)}
		}
		point, err := asn1.Marshal(raw)
		if err != nil {
			return nil, err
		}
		return attrs.Template{
			ck.CKA_CLASS:     attrs.ULong(ck.ULong(ck.CKO_PUBLIC_KEY)),
			ck.CKA_KEY_TYPE:  attrs.ULong(ck.ULong(ck.CKK_EC)),
			ck.CKA_EC_PARAMS: params,
			ck.CKA_EC_POINT:  point,
		}, nil
	}
	return nil, usageErr{fmt.Sprintf("the PEM file's key is not a %s key", ktc)}
}

func setupGenerateFile(fs *flag.FlagSet) func(*Context) (any, error) {
	encoding := fs.String("encoding", "", "Encoding format for the key file [possible values: reference-pem, pem]")
	path := fs.String("path", "", "Filepath where the key file will be written")
	filter := Multi(fs, "filter", "Key reference (e.g. key-reference=0xabc) or space separated list of key attributes in the form of attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select a key for file generation")
	return func(c *Context) (any, error) {
		if err := needFlags(fs, "encoding", "path", "filter"); err != nil {
			return nil, err
		}
		if *encoding != "pem" && *encoding != "reference-pem" {
			return nil, usageErr{fmt.Sprintf("invalid value '%s' for '--encoding <ENCODING>' [possible values: reference-pem, pem]", *encoding)}
		}
		obj, err := c.FindKeyByTerms("filter", *filter)
		if err != nil {
			return nil, err
		}
		t, err := c.readAttrs(obj, ck.CKA_CLASS, ck.CKA_KEY_TYPE, ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT, ck.CKA_EC_PARAMS, ck.CKA_EC_POINT)
		if err != nil {
			return nil, err
		}
		class, _ := t.ULong(ck.CKA_CLASS)
		if ck.ObjectClass(class) == ck.CKO_SECRET_KEY {
			return nil, usageErr{"key generate-file takes an asymmetric key: the selected key is a secret key"}
		}
		if kt, _ := t.ULong(ck.CKA_KEY_TYPE); ck.KeyType(kt) == ck.CKK_ML_DSA {
			// An ML-DSA private key holds its seed and expanded key
			// (both sensitive), not the public key's encoding.
			if ck.ObjectClass(class) != ck.CKO_PUBLIC_KEY {
				return nil, usageErr{"key generate-file takes the public key of an ML-DSA pair: select it with its filter"}
			}
			v, err := c.readAttrs(obj, ck.CKA_VALUE, ck.CKA_PARAMETER_SET)
			if err != nil {
				return nil, err
			}
			t[ck.CKA_VALUE], t[ck.CKA_PARAMETER_SET] = v[ck.CKA_VALUE], v[ck.CKA_PARAMETER_SET]
		}
		pub, err := publicKeyOf(t)
		if err != nil {
			return nil, err
		}
		var block *pem.Block
		if *encoding == "pem" {
			der, err := x509.MarshalPKIXPublicKey(pub)
			if err != nil {
				return nil, fmt.Errorf("cloudhsmcli: encoding the public key: %w", err)
			}
			block = &pem.Block{Type: "PUBLIC KEY", Bytes: der}
		} else {
			if ck.ObjectClass(class) != ck.CKO_PRIVATE_KEY {
				return nil, usageErr{"reference-pem encoding takes a private key: the selected key is a public key"}
			}
			if block, err = referencePEM(pub, obj); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(*path, pem.EncodeToMemory(block), 0o644); err != nil {
			return nil, fmt.Errorf("cloudhsmcli: writing the key file: %w", err)
		}
		return map[string]string{"message": "Successfully generated key file"}, nil
	}
}

// readAttrs reads attributes of a key; the ones it lacks are absent.
func (c *Context) readAttrs(obj ck.ULong, types ...ck.AttributeType) (attrs.Template, error) {
	res, err := c.m.GetAttributeValue(c.h, obj, types)
	if err != nil {
		return nil, err
	}
	t := attrs.Template{}
	for i, r := range res {
		if r.Err == nil {
			t[types[i]] = r.Value
		}
	}
	return t, nil
}

// publicKeyOf rebuilds the public key of an RSA or EC key (public or
// private: a private key carries its modulus and exponent, or its point).
func publicKeyOf(t attrs.Template) (any, error) {
	kt, _ := t.ULong(ck.CKA_KEY_TYPE)
	switch ck.KeyType(kt) {
	case ck.CKK_RSA:
		n, e := t[ck.CKA_MODULUS], t[ck.CKA_PUBLIC_EXPONENT]
		if len(n) == 0 || len(e) == 0 || len(e) > 8 {
			return nil, errors.New("cloudhsmcli: the RSA key's modulus or public exponent cannot be read")
		}
		var eb [8]byte
		copy(eb[8-len(e):], e)
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(binary.BigEndian.Uint64(eb[:]))}, nil
	case ck.CKK_EC:
		curve, err := mechanisms.CurveFromParams(t[ck.CKA_EC_PARAMS])
		if err != nil {
			return nil, err
		}
		return mechanisms.ParseECPoint(curve, t[ck.CKA_EC_POINT])
	case ck.CKK_EC_EDWARDS:
		p := ecPointRaw(t[ck.CKA_EC_POINT])
		if len(p) != ed25519.PublicKeySize {
			return nil, errors.New("cloudhsmcli: the Ed25519 key's point cannot be read")
		}
		return ed25519.PublicKey(p), nil
	case ck.CKK_ML_DSA:
		// crypto/x509 marshals *mldsa.PublicKey as SPKI (id-ml-dsa-*,
		// RFC 9881).
		set, _ := t.ULong(ck.CKA_PARAMETER_SET)
		return mechanisms.MLDSAPublicKey(set, t[ck.CKA_VALUE])
	}
	return nil, usageErr{fmt.Sprintf("key generate-file takes an RSA or EC key, not %v", ck.KeyType(kt))}
}

// referencePEM is gohsm's "fake PEM" for a private key in the HSM: the
// usual private key structure with the real public parts, and the key
// reference (the object handle) where the secret parts would be. It lets
// a tool that wants a PEM file name the HSM's key; it is not the key.
//
//	RSA: "RSA PRIVATE KEY" (PKCS #1) with n and e; d, p, q, dP, dQ and
//	     qInv all equal to the key reference.
//	EC:  "EC PRIVATE KEY" (SEC 1) with the curve and public point; the
//	     private key octets are the key reference, big-endian, padded to
//	     the curve's size.
func referencePEM(pub any, ref ck.ULong) (*pem.Block, error) {
	r := new(big.Int).SetUint64(uint64(ref))
	switch k := pub.(type) {
	case *rsa.PublicKey:
		der, err := asn1.Marshal(struct {
			Version               int
			N                     *big.Int
			E                     int
			D, P, Q, Dp, Dq, Qinv *big.Int
		}{0, k.N, k.E, r, r, r, r, r, r})
		if err != nil {
			return nil, err
		}
		return &pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}, nil
	case *ecdsa.PublicKey:
		oid, err := curveOID(k.Curve)
		if err != nil {
			return nil, err
		}
		point, err := k.Bytes()
		if err != nil {
			return nil, err
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		priv := make([]byte, size)
		r.FillBytes(priv[size-8:])
		der, err := asn1.Marshal(struct {
			Version    int
			PrivateKey []byte
			Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
			PublicKey  asn1.BitString        `asn1:"optional,explicit,tag:1"`
		}{1, priv, oid, asn1.BitString{Bytes: point, BitLength: 8 * len(point)}})
		if err != nil {
			return nil, err
		}
		return &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}, nil
	}
	return nil, usageErr{"reference-pem encoding takes an RSA or EC private key"}
}

// curveOID is the named-curve OID of a curve.
func curveOID(c elliptic.Curve) (asn1.ObjectIdentifier, error) {
	der, err := mechanisms.ECParams(c)
	if err != nil {
		return nil, err
	}
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(der, &oid); err != nil {
		return nil, err
	}
	return oid, nil
}
