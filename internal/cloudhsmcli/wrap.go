package cloudhsmcli

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token"
	"gohsm/token/attrs"
)

// key wrap <mechanism> and key unwrap <mechanism>: CloudHSM CLI's key
// export and import under a wrapping key, one subcommand per mechanism.
// Flags, output and rules: "Wrap a key with AES-GCM using CloudHSM CLI"
// (https://docs.aws.amazon.com/cloudhsm/latest/userguide/cloudhsm_cli-key-wrap-aes-gcm.html)
// and its siblings cloudhsm_cli-key-wrap-{aes-no-pad,aes-pkcs5-pad,
// aes-zero-pad,cloudhsm-aes-gcm,rsa-aes,rsa-oaep,rsa-pkcs}.html and
// cloudhsm_cli-key-unwrap-*.html. The payload key must be extractable,
// only its owner may wrap it, a wrap-with-trusted key needs a trusted
// wrapping key, FIPS mode refuses rsa-pkcs: all of it is the token's,
// reached through Module.WrapKey / UnwrapKey as the logged-in user.

// wrapKind is the parameter family of a wrap mechanism.
type wrapKind int

const (
	wrapAESGCM wrapKind = iota
	wrapCloudHSMGCM
	wrapAESKW
	wrapRSAOAEP
	wrapRSAAES
	wrapRSAPKCS
)

// wrapMechanism is one `key wrap`/`key unwrap` subcommand: its Cryptoki
// mechanisms, the first one the slot's profile offers being used (the
// cloudhsm profile offers CloudHSM's vendor AES key wrap mechanisms; a
// profile without them does RFC 3394 wrapping with CKM_AES_KEY_WRAP, the
// same bytes as CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD).
type wrapMechanism struct {
	name  string
	kind  wrapKind
	mechs []ck.MechanismType
	what  string
}

var wrapMechanisms = []wrapMechanism{
	{"aes-gcm", wrapAESGCM, []ck.MechanismType{ck.CKM_AES_GCM}, "AES-GCM"},
	{"aes-no-pad", wrapAESKW, []ck.MechanismType{ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, ck.CKM_AES_KEY_WRAP}, "AES key wrap without padding"},
	{"aes-pkcs5-pad", wrapAESKW, []ck.MechanismType{ck.CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD}, "AES key wrap with PKCS #5 padding"},
	{"aes-zero-pad", wrapAESKW, []ck.MechanismType{ck.CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD}, "AES key wrap with zero padding"},
	{"cloudhsm-aes-gcm", wrapCloudHSMGCM, []ck.MechanismType{ck.CKM_CLOUDHSM_AES_GCM}, "CLOUDHSM-AES-GCM"},
	{"rsa-aes", wrapRSAAES, []ck.MechanismType{ck.CKM_RSA_AES_KEY_WRAP}, "RSA-AES"},
	{"rsa-oaep", wrapRSAOAEP, []ck.MechanismType{ck.CKM_RSA_PKCS_OAEP}, "RSA-OAEP"},
	{"rsa-pkcs", wrapRSAPKCS, []ck.MechanismType{ck.CKM_RSA_PKCS}, "RSA-PKCS"},
}

func init() {
	for _, wm := range wrapMechanisms {
		register(
			Command{Path: []string{"key", "wrap", wm.name}, Role: CryptoUser,
				Help: fmt.Sprintf("Wrap a key using %s", wm.what), Setup: wm.setupWrap},
			Command{Path: []string{"key", "unwrap", wm.name}, Role: CryptoUser,
				Help: fmt.Sprintf("Unwrap a key using %s", wm.what), Setup: wm.setupUnwrap},
		)
	}
}

// mechanism picks the first of wm's mechanisms the slot's profile offers
// for wrapping (the cloudhsm profile in FIPS mode keeps CKM_RSA_PKCS for
// signatures only).
func (wm wrapMechanism) mechanism(c *Context) (ck.MechanismType, *token.Slot, error) {
	_, s, err := c.Module()
	if err != nil {
		return 0, nil, err
	}
	for _, t := range wm.mechs {
		if mm, _, ok := s.Profile().Mechanisms.Lookup(t); ok && (mm.Wrap != nil || mm.Unwrap != nil) {
			return t, s, nil
		}
	}
	return 0, nil, fmt.Errorf("cloudhsmcli: %s: this token's profile does not offer %v for wrapping: %w", wm.name, wm.mechs[0], ck.CKR_MECHANISM_INVALID)
}

// wrapParams are the mechanism flags of one subcommand.
type wrapParams struct {
	aad, iv       *string
	tagBits       *int
	hash, mgf     *string
	requiredFlags []string
}

func (wm wrapMechanism) addParams(fs *flag.FlagSet, unwrap bool) *wrapParams {
	p := &wrapParams{}
	switch wm.kind {
	case wrapAESGCM, wrapCloudHSMGCM:
		p.aad = fs.String("aad", "", "Aes GCM Additional Authenticated Data (AAD) value, in hex")
		p.tagBits = fs.Int("tag-length-bits", 0, "Aes GCM tag length in bits")
		p.requiredFlags = append(p.requiredFlags, "tag-length-bits")
		if wm.kind == wrapAESGCM && unwrap {
			p.iv = fs.String("iv", "", "Initial value used to wrap the key, in hex")
			p.requiredFlags = append(p.requiredFlags, "iv")
		}
	case wrapRSAOAEP, wrapRSAAES:
		p.hash = fs.String("hash-function", "", "Hash algorithm [possible values: sha1, sha224, sha256, sha384, sha512]")
		p.mgf = fs.String("mgf", "", "Mask Generation Function algorithm [possible values: mgf1-sha1, mgf1-sha224, mgf1-sha256, mgf1-sha384, mgf1-sha512]")
		p.requiredFlags = append(p.requiredFlags, "hash-function", "mgf")
	}
	return p
}

// hashes are the --hash-function values, with their digest and
// signature-with-hash mechanisms.
var hashes = []struct {
	name             string
	digest           ck.MechanismType
	ecdsa, pkcs, pss ck.MechanismType
}{
	{"sha1", ck.CKM_SHA_1, ck.CKM_ECDSA_SHA1, ck.CKM_SHA1_RSA_PKCS, ck.CKM_SHA1_RSA_PKCS_PSS},
	{"sha224", ck.CKM_SHA224, ck.CKM_ECDSA_SHA224, ck.CKM_SHA224_RSA_PKCS, ck.CKM_SHA224_RSA_PKCS_PSS},
	{"sha256", ck.CKM_SHA256, ck.CKM_ECDSA_SHA256, ck.CKM_SHA256_RSA_PKCS, ck.CKM_SHA256_RSA_PKCS_PSS},
	{"sha384", ck.CKM_SHA384, ck.CKM_ECDSA_SHA384, ck.CKM_SHA384_RSA_PKCS, ck.CKM_SHA384_RSA_PKCS_PSS},
	{"sha512", ck.CKM_SHA512, ck.CKM_ECDSA_SHA512, ck.CKM_SHA512_RSA_PKCS, ck.CKM_SHA512_RSA_PKCS_PSS},
}

// mgfs are the --mgf values.
var mgfs = map[string]ck.ULong{
	"mgf1-sha1": ck.CKG_MGF1_SHA1, "mgf1-sha224": ck.CKG_MGF1_SHA224, "mgf1-sha256": ck.CKG_MGF1_SHA256,
	"mgf1-sha384": ck.CKG_MGF1_SHA384, "mgf1-sha512": ck.CKG_MGF1_SHA512,
}

func hashByName(s string) (int, error) {
	for i, h := range hashes {
		if h.name == s {
			return i, nil
		}
	}
	return 0, usageErr{fmt.Sprintf("invalid value '%s' for '--hash-function <HASH_FUNCTION>' [possible values: sha1, sha224, sha256, sha384, sha512]", s)}
}

func mgfByName(s string) (ck.ULong, error) {
	if m, ok := mgfs[s]; ok {
		return m, nil
	}
	return 0, usageErr{fmt.Sprintf("invalid value '%s' for '--mgf <MGF>' [possible values: mgf1-sha1, mgf1-sha224, mgf1-sha256, mgf1-sha384, mgf1-sha512]", s)}
}

// needFlags refuses a command line without the flags names, as CloudHSM
// CLI (clap) does.
func needFlags(fs *flag.FlagSet, names ...string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var missing []string
	for _, n := range names {
		if !set[n] {
			missing = append(missing, fmt.Sprintf("--%s <%s>", n, strings.ToUpper(strings.ReplaceAll(n, "-", "_"))))
		}
	}
	if len(missing) > 0 {
		return usageErr{"the following required arguments were not provided: " + strings.Join(missing, " ")}
	}
	return nil
}

// parseHexFlag reads a hex flag value ("0x" optional).
func parseHexFlag(flagName, s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	if err != nil {
		return nil, usageErr{fmt.Sprintf("invalid value '%s' for '--%s': expected hex", s, flagName)}
	}
	return b, nil
}

// mechanism builds the token.Mechanism; for aes-gcm wrapping it also
// returns the GCM parameter whose IV the output reports.
func (p *wrapParams) mechanism(wm wrapMechanism, t ck.MechanismType, s *token.Slot, unwrap bool) (token.Mechanism, *mechanisms.GCMParams, error) {
	mech := token.Mechanism{Type: t}
	switch wm.kind {
	case wrapAESGCM, wrapCloudHSMGCM:
		aad, err := parseHexFlag("aad", *p.aad)
		if err != nil {
			return mech, nil, err
		}
		if wm.kind == wrapCloudHSMGCM {
			// The HSM makes the IV and prepends it: pIV NULL, ulIvLen 12.
			mech.Param = &mechanisms.CloudHSMGCMParams{IVLen: 12, AAD: aad, TagBits: *p.tagBits}
			return mech, nil, nil
		}
		g := &mechanisms.GCMParams{AAD: aad, TagBits: *p.tagBits}
		switch {
		case unwrap:
			if g.IV, err = parseHexFlag("iv", *p.iv); err != nil {
				return mech, nil, err
			}
		default:
			g.IV = make([]byte, 12)
			// A profile whose HSM makes the IV wants 12 zero bytes
			// (CloudHSM: "Expect IV to be all 0") and writes its IV
			// there; elsewhere the CLI makes it, as the HSM would.
			if _, rule, _ := s.Profile().Mechanisms.Lookup(t); rule == nil || !rule.HSMIV {
				if _, err := rand.Read(g.IV); err != nil {
					return mech, nil, err
				}
			}
		}
		g.IVBits = int32(8 * len(g.IV))
		mech.Param = g
		return mech, g, nil
	case wrapRSAOAEP, wrapRSAAES:
		hi, err := hashByName(*p.hash)
		if err != nil {
			return mech, nil, err
		}
		mgf, err := mgfByName(*p.mgf)
		if err != nil {
			return mech, nil, err
		}
		oaep := &mechanisms.OAEPParams{Hash: hashes[hi].digest, MGF: mgf, Source: ck.CKZ_DATA_SPECIFIED}
		if wm.kind == wrapRSAAES {
			// CloudHSM's RSA-AES makes a 256-bit ephemeral AES key.
			mech.Param = &mechanisms.RSAAESKeyWrapParams{AESKeyBits: 256, OAEP: oaep}
		} else {
			mech.Param = oaep
		}
	}
	return mech, nil, nil
}

// wrapOutput is key wrap's data: the two keys, the IV aes-gcm used, and
// the wrapped key in base64 (when not written to --path).
type wrapOutput struct {
	Payload  string `json:"payload_key_reference"`
	Wrapping string `json:"wrapping_key_reference"`
	IV       string `json:"iv,omitempty"`
	Data     string `json:"wrapped_key_data,omitempty"`
}

// maxWrapped bounds a wrapped key (an RSA-8192 private key in PKCS #8 is
// under 5 KB; RSA-AES adds the RSA block).
const maxWrapped = 64 << 10

func (wm wrapMechanism) setupWrap(fs *flag.FlagSet) func(c *Context) (any, error) {
	payload := Multi(fs, "payload-filter", "Key reference (e.g. key-reference=0xabc) or space separated list of key attributes in the form of attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select a payload key")
	wrapping := Multi(fs, "wrapping-filter", "Key reference (e.g. key-reference=0xabc) or space separated list of key attributes in the form of attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select a wrapping key")
	path := fs.String("path", "", "Path to the binary file where the wrapped key data will be saved")
	wrappingApproval := addApprovalFlagNamed(fs, "wrapping-approval") // the keys' manage quorum (quorum.go)
	payloadApproval := addApprovalFlagNamed(fs, "payload-approval")
	p := wm.addParams(fs, false)
	return func(c *Context) (any, error) {
		if err := needFlags(fs, append([]string{"payload-filter", "wrapping-filter"}, p.requiredFlags...)...); err != nil {
			return nil, err
		}
		t, s, err := wm.mechanism(c)
		if err != nil {
			return nil, err
		}
		mech, gcm, err := p.mechanism(wm, t, s, false)
		if err != nil {
			return nil, err
		}
		pk, err := c.FindKeyByTerms("payload-filter", *payload)
		if err != nil {
			return nil, err
		}
		wk, err := c.FindKeyByTerms("wrapping-filter", *wrapping)
		if err != nil {
			return nil, err
		}
		for _, a := range []string{*wrappingApproval, *payloadApproval} {
			if err := c.approval(a); err != nil {
				return nil, err
			}
		}
		buf := make([]byte, maxWrapped)
		n, err := c.m.WrapKey(c.h, mech, wk, pk, token.Out{Buf: buf})
		if err != nil {
			return nil, err
		}
		out := wrapOutput{Payload: KeyReference(pk), Wrapping: KeyReference(wk)}
		if gcm != nil {
			out.IV = "0x" + hex.EncodeToString(gcm.IV)
		}
		if *path != "" {
			if err := os.WriteFile(*path, buf[:n], 0o600); err != nil {
				return nil, fmt.Errorf("cloudhsmcli: writing the wrapped key: %w", err)
			}
		} else {
			out.Data = base64.StdEncoding.EncodeToString(buf[:n])
		}
		return out, nil
	}
}

// keyTypeClasses are --key-type-class values of key unwrap: the class and
// key type of the key being unwrapped.
var keyTypeClasses = map[string]struct {
	class ck.ObjectClass
	kt    ck.KeyType
}{
	"aes":            {ck.CKO_SECRET_KEY, ck.CKK_AES},
	"des3":           {ck.CKO_SECRET_KEY, ck.CKK_DES3},
	"generic-secret": {ck.CKO_SECRET_KEY, ck.CKK_GENERIC_SECRET},
	"ec-private":     {ck.CKO_PRIVATE_KEY, ck.CKK_EC},
	"rsa-private":    {ck.CKO_PRIVATE_KEY, ck.CKK_RSA},
}

// readData is the --data (base64) / --data-path (binary file) pair that
// unwrap and crypto commands take: exactly one of them.
func readData(fs *flag.FlagSet, data, path *string, dataFlag, pathFlag string) ([]byte, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case set[dataFlag] && set[pathFlag]:
		return nil, usageErr{fmt.Sprintf("the argument '--%s <%s>' cannot be used with '--%s <%s>'",
			pathFlag, strings.ToUpper(strings.ReplaceAll(pathFlag, "-", "_")), dataFlag, strings.ToUpper(strings.ReplaceAll(dataFlag, "-", "_")))}
	case set[pathFlag]:
		b, err := os.ReadFile(*path)
		if err != nil {
			return nil, fmt.Errorf("cloudhsmcli: reading --%s: %w", pathFlag, err)
		}
		return b, nil
	case set[dataFlag]:
		b, err := base64.StdEncoding.DecodeString(*data)
		if err != nil {
			return nil, usageErr{fmt.Sprintf("invalid value for '--%s': expected base64", dataFlag)}
		}
		return b, nil
	}
	return nil, usageErr{fmt.Sprintf("the following required arguments were not provided: <--%s <%s>|--%s <%s>>",
		pathFlag, strings.ToUpper(strings.ReplaceAll(pathFlag, "-", "_")), dataFlag, strings.ToUpper(strings.ReplaceAll(dataFlag, "-", "_")))}
}

func (wm wrapMechanism) setupUnwrap(fs *flag.FlagSet) func(c *Context) (any, error) {
	filter := Multi(fs, "filter", "Key reference (e.g. key-reference=0xabc) or space separated list of key attributes in the form of attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select a key to unwrap with")
	dataPath := fs.String("data-path", "", "Path to the binary file containing the wrapped key data")
	data := fs.String("data", "", "Base64 encoded wrapped key data")
	attributes := Multi(fs, "attributes", "Space separated list of key attributes in the form of KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE for the unwrapped key")
	ktc := fs.String("key-type-class", "", "Key type and class of wrapped key [possible values: aes, des3, ec-private, generic-secret, rsa-private]")
	label := fs.String("label", "", "Label for the unwrapped key")
	session := fs.Bool("session", false, "Creates a session key that exists only in the current session. The key cannot be recovered after the session ends")
	shareWith := Multi(fs, "share-crypto-users", "Space separated list of Crypto User usernames to share the unwrapped key with")
	approval := addApprovalFlag(fs) // the unwrapping key's manage quorum (quorum.go)
	kq := addKeyQuorumFlags(fs)
	p := wm.addParams(fs, true)
	return func(c *Context) (any, error) {
		if err := needFlags(fs, append([]string{"filter", "key-type-class", "label"}, p.requiredFlags...)...); err != nil {
			return nil, err
		}
		kc, ok := keyTypeClasses[*ktc]
		if !ok {
			return nil, usageErr{fmt.Sprintf("invalid value '%s' for '--key-type-class <KEY_TYPE_CLASS>' [possible values: aes, des3, ec-private, generic-secret, rsa-private]", *ktc)}
		}
		wrapped, err := readData(fs, data, dataPath, "data", "data-path")
		if err != nil {
			return nil, err
		}
		tmpl, err := ParseAttributes(*attributes)
		if err != nil {
			return nil, err
		}
		if err := setFixed(tmpl, ck.CKA_CLASS, attrs.ULong(ck.ULong(kc.class)), "class"); err != nil {
			return nil, err
		}
		if err := setFixed(tmpl, ck.CKA_KEY_TYPE, attrs.ULong(ck.ULong(kc.kt)), "key-type"); err != nil {
			return nil, err
		}
		tmpl[ck.CKA_LABEL] = []byte(*label)
		tmpl[ck.CKA_TOKEN] = attrs.Bool(!*session)
		t, s, err := wm.mechanism(c)
		if err != nil {
			return nil, err
		}
		mech, _, err := p.mechanism(wm, t, s, true)
		if err != nil {
			return nil, err
		}
		uk, err := c.FindKeyByTerms("filter", *filter)
		if err != nil {
			return nil, err
		}
		if err := c.approval(*approval); err != nil {
			return nil, err
		}
		obj, err := c.m.UnwrapKey(c.h, mech, uk, wrapped, tmpl)
		if err != nil {
			return nil, err
		}
		if err := c.shareNew(obj, *shareWith); err != nil {
			return nil, err
		}
		if err := c.setKeyQuorum(obj, kq); err != nil {
			return nil, err
		}
		k, err := c.describeKey(obj)
		if err != nil {
			return nil, err
		}
		return map[string]any{"key": k}, nil
	}
}

// shareNew shares a key the command just made with users; if one share
// fails the key is destroyed again, so that a refused command leaves
// nothing behind.
func (c *Context) shareNew(obj ck.ULong, users []string) error {
	for _, u := range users {
		if err := c.m.Share(c.h, obj, u, true); err != nil {
			if derr := c.m.DestroyObject(c.h, obj); derr != nil {
				return fmt.Errorf("cloudhsmcli: sharing with %s: %w (and the new key %s could not be removed: %v)", u, err, KeyReference(obj), derr)
			}
			return fmt.Errorf("cloudhsmcli: sharing with %s: %w", u, err)
		}
	}
	return nil
}

// setFixed sets an attribute a flag decides, refusing an --attributes
// value that contradicts it.
func setFixed(tmpl attrs.Template, t ck.AttributeType, v []byte, name string) error {
	if old, ok := tmpl[t]; ok && string(old) != string(v) {
		return usageErr{fmt.Sprintf("attribute '%s' contradicts --key-type-class", name)}
	}
	tmpl[t] = v
	return nil
}
