package cloudhsmcli

import (
	"crypto"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token"
)

// crypto sign <mechanism> and crypto verify <mechanism>: signatures with
// a key of the HSM. Flags and output: "Generate a signature with the ECDSA
// mechanism" and its siblings in CloudHSM CLI's reference
// (https://docs.aws.amazon.com/cloudhsm/latest/userguide/cloudhsm_cli-crypto-sign-ecdsa.html,
// cloudhsm_cli-crypto-sign-rsa-pkcs.html, cloudhsm_cli-crypto-sign-rsa-pkcs-pss.html,
// cloudhsm_cli-crypto-sign-ed25519.html and cloudhsm_cli-crypto-verify-*.html):
// the data comes as base64 (--data) or a file (--data-path), raw or
// already hashed (--data-type digest); the signature prints in base64.
// ECDSA signatures are PKCS #11's r||s. ML-DSA (cloudhsm_cli-crypto-sign-mldsa)
// is pure ML-DSA with the empty context; its operations go through the
// token's CLI entry points (token/cliops.go), the only way to ML-DSA in
// the cloudhsm profile. Which mechanisms a slot offers
// (ed25519 only where its profile has CKM_EDDSA), key usage flags and
// sharing are the token's.

type signKind int

const (
	signECDSA signKind = iota
	signRSAPKCS
	signRSAPSS
	signEd25519
	signMLDSA
)

var signMechanisms = []struct {
	name string
	kind signKind
	what string
}{
	{"ecdsa", signECDSA, "the ECDSA mechanism"},
	{"rsa-pkcs", signRSAPKCS, "the RSA-PKCS mechanism"},
	{"rsa-pkcs-pss", signRSAPSS, "the RSA-PKCS-PSS mechanism"},
	{"ed25519", signEd25519, "the Ed25519 mechanism"},
	{"ml-dsa", signMLDSA, "the ML-DSA mechanism"},
}

func init() {
	for _, sm := range signMechanisms {
		sm := sm
		register(
			Command{Path: []string{"crypto", "sign", sm.name}, Role: CryptoUser,
				Help:  "Sign with " + sm.what,
				Setup: func(fs *flag.FlagSet) func(*Context) (any, error) { return setupSign(fs, sm.kind, false) }},
			Command{Path: []string{"crypto", "verify", sm.name}, Role: CryptoUser,
				Help:  "Verify with " + sm.what,
				Setup: func(fs *flag.FlagSet) func(*Context) (any, error) { return setupSign(fs, sm.kind, true) }},
		)
	}
}

// digestInfoPrefixes are the DER DigestInfo headers PKCS #1 v1.5 puts
// before a digest (RFC 8017 §9.2 note 1), for --data-type digest.
var digestInfoPrefixes = map[ck.MechanismType][]byte{
	ck.CKM_SHA_1:  {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	ck.CKM_SHA224: {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	ck.CKM_SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	ck.CKM_SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	ck.CKM_SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

var digestHashes = map[ck.MechanismType]crypto.Hash{
	ck.CKM_SHA_1: crypto.SHA1, ck.CKM_SHA224: crypto.SHA224, ck.CKM_SHA256: crypto.SHA256,
	ck.CKM_SHA384: crypto.SHA384, ck.CKM_SHA512: crypto.SHA512,
}

// ErrSignatureInvalid is crypto verify's refusal of a signature that does
// not verify (CKR_SIGNATURE_INVALID or CKR_SIGNATURE_LEN_RANGE).
var ErrSignatureInvalid = rvError{"Signature verification failed", ck.CKR_SIGNATURE_INVALID}

// rvError is a CloudHSM CLI text that still answers errors.Is for its
// Cryptoki return value.
type rvError struct {
	msg string
	rv  ck.RV
}

func (e rvError) Error() string { return e.msg }
func (e rvError) Unwrap() error { return e.rv }

// maxSignature bounds a signature (ML-DSA-87: 4627 bytes).
const maxSignature = 8192

func setupSign(fs *flag.FlagSet, kind signKind, verify bool) func(*Context) (any, error) {
	keyFilter := Multi(fs, "key-filter", "Key reference (e.g. key-reference=0xabc) or space separated list of key attributes in the form of attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select a matching key")
	var hash, mgf, dataType *string
	var salt *int
	req := []string{"key-filter"}
	switch kind {
	case signMLDSA:
		// "You can generate a signature using two data types: raw data or
		// computed external mu data." (UG:cloudhsm_cli-crypto-sign-mldsa)
		dataType = fs.String("data-type", "raw", "The type of data passed in, either raw or external-mu [possible values: raw, external-mu]")
	case signEd25519:
	default:
		hash = fs.String("hash-function", "", "Hash algorithm [possible values: sha1, sha224, sha256, sha384, sha512]")
		dataType = fs.String("data-type", "raw", "The type of data passed in, either raw or digest [possible values: raw, digest]")
		req = append(req, "hash-function")
	}
	if kind == signRSAPSS {
		mgf = fs.String("mgf", "", "The mask generation function [possible values: mgf1-sha1, mgf1-sha224, mgf1-sha256, mgf1-sha384, mgf1-sha512]")
		salt = fs.Int("salt-length", 0, "The salt length")
		req = append(req, "mgf", "salt-length")
	}
	verb := "signed"
	if verify {
		verb = "verified"
	}
	dataPath := fs.String("data-path", "", "The path to the file containing the data to be "+verb)
	dataHelp := "Base64 encoded data to be verified"
	if !verify {
		dataHelp = "Base64 Encoded data to be signed"
	}
	data := fs.String("data", "", dataHelp)
	var sigPath, sig *string
	approval := new(string)
	if verify {
		sigPath = fs.String("signature-path", "", "The path to where the signature is located")
		sig = fs.String("signature", "", "Base64 encoded signature to be verified")
	} else {
		approval = addApprovalFlag(fs) // the key's use quorum (quorum.go)
	}
	return func(c *Context) (any, error) {
		if err := needFlags(fs, req...); err != nil {
			return nil, err
		}
		msg, err := readData(fs, data, dataPath, "data", "data-path")
		if err != nil {
			return nil, err
		}
		var signature []byte
		if verify {
			if signature, err = readData(fs, sig, sigPath, "signature", "signature-path"); err != nil {
				return nil, err
			}
		}
		mech, msg, err := signMechanism(kind, hash, mgf, dataType, salt, msg)
		if err != nil {
			return nil, err
		}
		key, err := c.FindKeyByTerms("key-filter", *keyFilter)
		if err != nil {
			return nil, err
		}
		if verify {
			if err := c.m.CLIVerifyInit(c.h, mech, key); err != nil {
				return nil, err
			}
			err := c.m.Verify(c.h, msg, signature)
			if errors.Is(err, ck.CKR_SIGNATURE_INVALID) || errors.Is(err, ck.CKR_SIGNATURE_LEN_RANGE) {
				return nil, ErrSignatureInvalid
			}
			if err != nil {
				return nil, err
			}
			return map[string]string{"message": "Signature verified successfully"}, nil
		}
		if err := c.approval(*approval); err != nil {
			return nil, err
		}
		if err := c.m.CLISignInit(c.h, mech, key); err != nil {
			return nil, err
		}
		buf := make([]byte, maxSignature)
		n, err := c.m.Sign(c.h, msg, token.Out{Buf: buf})
		if err != nil {
			return nil, err
		}
		return struct {
			Ref string `json:"key-reference"`
			Sig string `json:"signature"`
		}{KeyReference(key), base64.StdEncoding.EncodeToString(buf[:n])}, nil
	}
}

// signMechanism picks the Cryptoki mechanism for a sign/verify command
// line, and the bytes it signs: raw data with a hash-and-sign mechanism,
// or (--data-type digest) the digest with the plain mechanism (for
// rsa-pkcs, behind its DigestInfo header).
func signMechanism(kind signKind, hash, mgf, dataType *string, salt *int, msg []byte) (token.Mechanism, []byte, error) {
	switch kind {
	case signEd25519:
		return token.Mechanism{Type: ck.CKM_EDDSA}, msg, nil
	case signMLDSA:
		// Pure ML-DSA (FIPS 204 ML-DSA.Sign), hedged, with the empty
		// context: the CLI has no context flag (the external-mu steps
		// give "the length of any context, and the context", zero by
		// default). external-mu signs (or verifies) a 64-byte mu the
		// caller computed, SHAKE256(tr || M', 64): a row only the CLI
		// reaches (mechanisms.MLDSAExternalMu).
		switch *dataType {
		case "raw":
			return token.Mechanism{Type: ck.CKM_ML_DSA}, msg, nil
		case "external-mu":
			if len(msg) != 64 {
				return token.Mechanism{}, nil, usageErr{fmt.Sprintf("external mu data must be 64 bytes (SHAKE256(tr || M', 64), FIPS 204), got %d", len(msg))}
			}
			return token.Mechanism{Type: mechanisms.MLDSAExternalMu}, msg, nil
		}
		return token.Mechanism{}, nil, usageErr{fmt.Sprintf("invalid value '%s' for '--data-type <DATA_TYPE>' [possible values: raw, external-mu]", *dataType)}
	}
	hi, err := hashByName(*hash)
	if err != nil {
		return token.Mechanism{}, nil, err
	}
	h := hashes[hi]
	digest := false
	switch *dataType {
	case "raw":
	case "digest":
		digest = true
		if want := digestHashes[h.digest].Size(); len(msg) != want {
			return token.Mechanism{}, nil, usageErr{fmt.Sprintf("a %s digest is %d bytes, the data is %d", h.name, want, len(msg))}
		}
	default:
		return token.Mechanism{}, nil, usageErr{fmt.Sprintf("invalid value '%s' for '--data-type <DATA_TYPE>' [possible values: raw, digest]", *dataType)}
	}
	switch kind {
	case signECDSA:
		if digest {
			return token.Mechanism{Type: ck.CKM_ECDSA}, msg, nil
		}
		return token.Mechanism{Type: h.ecdsa}, msg, nil
	case signRSAPKCS:
		if digest {
			return token.Mechanism{Type: ck.CKM_RSA_PKCS}, append(append([]byte{}, digestInfoPrefixes[h.digest]...), msg...), nil
		}
		return token.Mechanism{Type: h.pkcs}, msg, nil
	}
	m, err := mgfByName(*mgf)
	if err != nil {
		return token.Mechanism{}, nil, err
	}
	// "The mask generation function hash function must match the signing
	// mechanism hash function." (cloudhsm_cli-crypto-sign-rsa-pkcs-pss)
	if *mgf != "mgf1-"+h.name {
		return token.Mechanism{}, nil, usageErr{fmt.Sprintf("the mask generation function %s does not match the hash function %s", *mgf, h.name)}
	}
	if *salt < 0 {
		return token.Mechanism{}, nil, usageErr{fmt.Sprintf("invalid value '%d' for '--salt-length <SALT_LENGTH>'", *salt)}
	}
	p := &mechanisms.PSSParams{Hash: h.digest, MGF: m, SaltLen: *salt}
	if digest {
		return token.Mechanism{Type: ck.CKM_RSA_PKCS_PSS, Param: p}, msg, nil
	}
	return token.Mechanism{Type: h.pss, Param: p}, msg, nil
}
