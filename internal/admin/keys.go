package admin

import (
	"crypto/elliptic"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token"
	"gohsm/token/attrs"
)

// Key is a key as key list, generate and share show it.
type Key struct {
	Handle     ck.ULong `json:"handle"`
	Class      string   `json:"class"`
	KeyType    string   `json:"key_type"`
	Label      string   `json:"label"`
	ID         string   `json:"id"` // hex
	Owner      string   `json:"owner"`
	SharedWith []string `json:"shared_with"`
	Token      bool     `json:"token"`
	Private    bool     `json:"private"`
	// ParameterSet names an ML-DSA key's CKA_PARAMETER_SET ("ML-DSA-65");
	// absent for other key types, so their JSON is as before.
	ParameterSet string `json:"parameter_set,omitempty"`
}

var classNames = map[ck.ObjectClass]string{
	ck.CKO_SECRET_KEY:  "secret-key",
	ck.CKO_PRIVATE_KEY: "private-key",
	ck.CKO_PUBLIC_KEY:  "public-key",
}

// classWords maps the words a filter or --class takes to classes.
var classWords = map[string]ck.ObjectClass{
	"secret": ck.CKO_SECRET_KEY, "secret-key": ck.CKO_SECRET_KEY,
	"private": ck.CKO_PRIVATE_KEY, "private-key": ck.CKO_PRIVATE_KEY,
	"public": ck.CKO_PUBLIC_KEY, "public-key": ck.CKO_PUBLIC_KEY,
}

// ParseClass parses a key class word (secret, private, public, or
// secret-key, private-key, public-key; any case).
func ParseClass(s string) (ck.ObjectClass, bool) {
	c, ok := classWords[strings.ToLower(s)]
	return c, ok
}

// keyTypes are the key types a filter names (KeyTypeName's words).
var keyTypes = []ck.KeyType{ck.CKK_AES, ck.CKK_EC, ck.CKK_RSA, ck.CKK_GENERIC_SECRET, ck.CKK_DES3,
	ck.CKK_EC_EDWARDS, ck.CKK_EC_MONTGOMERY, ck.CKK_ML_DSA, ck.CKK_ML_KEM}

// KeyTypeName names a key type as Key.KeyType does: aes, ec, rsa, else the
// CKK name in lower case without its prefix (generic_secret).
func KeyTypeName(k ck.KeyType) string {
	switch k {
	case ck.CKK_AES:
		return "aes"
	case ck.CKK_EC:
		return "ec"
	case ck.CKK_RSA:
		return "rsa"
	case ck.CKK_ML_KEM:
		return "ml-kem"
	case ck.CKK_ML_DSA:
		return "ml-dsa"
	}
	return strings.ToLower(strings.TrimPrefix(k.String(), "CKK_"))
}

var keyInfoAttrs = []ck.AttributeType{ck.CKA_CLASS, ck.CKA_KEY_TYPE, ck.CKA_LABEL, ck.CKA_ID,
	ck.CKA_TOKEN, ck.CKA_PRIVATE, ck.CKA_GOHSM_OWNER, ck.CKA_GOHSM_SHARED_USERS}

// KeyInfo reads a visible object's attributes; ok is false for objects
// that are not keys.
func KeyInfo(m *token.Module, h, obj ck.ULong) (k Key, ok bool, err error) {
	res, err := m.GetAttributeValue(h, obj, keyInfoAttrs)
	if err != nil {
		return k, false, err
	}
	t := attrs.Template{}
	for i, r := range res {
		if r.Err == nil {
			t[keyInfoAttrs[i]] = r.Value
		}
	}
	class, _ := t.ULong(ck.CKA_CLASS)
	name, isKey := classNames[ck.ObjectClass(class)]
	if !isKey {
		return k, false, nil
	}
	kt, _ := t.ULong(ck.CKA_KEY_TYPE)
	k = Key{Handle: obj, Class: name, KeyType: KeyTypeName(ck.KeyType(kt)), Label: string(t[ck.CKA_LABEL]),
		ID: hex.EncodeToString(t[ck.CKA_ID]), Owner: string(t[ck.CKA_GOHSM_OWNER]), SharedWith: []string{}}
	k.Token, _ = t.Bool(ck.CKA_TOKEN)
	k.Private, _ = t.Bool(ck.CKA_PRIVATE)
	if sh := string(t[ck.CKA_GOHSM_SHARED_USERS]); sh != "" {
		k.SharedWith = strings.Split(sh, ",")
	}
	if ck.KeyType(kt) == ck.CKK_ML_DSA {
		res, err := m.GetAttributeValue(h, obj, []ck.AttributeType{ck.CKA_PARAMETER_SET})
		if err != nil {
			return k, false, err
		}
		if set, ok := (attrs.Template{ck.CKA_PARAMETER_SET: res[0].Value}).ULong(ck.CKA_PARAMETER_SET); ok && res[0].Err == nil {
			if p, err := mechanisms.MLDSAParameters(set); err == nil {
				k.ParameterSet = p.String()
			}
		}
	}
	return k, true, nil
}

// Filter selects keys; empty fields match every key.
type Filter struct {
	Label   string // CKA_LABEL, exactly
	Class   string // secret, private, public (or secret-key, ...)
	KeyType string // aes, ec, rsa, generic_secret, ... (Key.KeyType's words)
	Owner   string // the owning crypto user's name
}

// template is the filter's part that the token matches (label, class),
// after checking every field.
func (f Filter) template() (attrs.Template, error) {
	t := attrs.Template{}
	if f.Label != "" {
		t[ck.CKA_LABEL] = []byte(f.Label)
	}
	if f.Class != "" {
		c, ok := ParseClass(f.Class)
		if !ok {
			return nil, inputf("class", "%q: want secret, private or public", f.Class)
		}
		t[ck.CKA_CLASS] = attrs.ULong(ck.ULong(c))
	}
	if f.KeyType != "" {
		kt := strings.ToLower(f.KeyType)
		if !slices.ContainsFunc(keyTypes, func(k ck.KeyType) bool { return KeyTypeName(k) == kt }) {
			names := make([]string, len(keyTypes))
			for i, k := range keyTypes {
				names[i] = KeyTypeName(k)
			}
			return nil, inputf("key_type", "%q: want one of %s", f.KeyType, strings.Join(names, ", "))
		}
	}
	return t, nil
}

func (f Filter) match(k Key) bool {
	return (f.KeyType == "" || k.KeyType == strings.ToLower(f.KeyType)) &&
		(f.Owner == "" || k.Owner == strings.ToLower(f.Owner))
}

// ListKeys lists the keys session h sees that match f, in handle order.
func ListKeys(m *token.Module, h ck.ULong, f Filter) ([]Key, error) {
	tmpl, err := f.template()
	if err != nil {
		return nil, err
	}
	keys, err := findKeys(m, h, tmpl)
	if err != nil {
		return nil, err
	}
	out := keys[:0]
	for _, k := range keys {
		if f.match(k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// findKeys lists the visible keys matching a template, in handle order.
func findKeys(m *token.Module, h ck.ULong, tmpl attrs.Template) ([]Key, error) {
	handles, err := m.FindAll(h, tmpl)
	if err != nil {
		return nil, err
	}
	keys := []Key{}
	for _, obj := range handles {
		k, ok, err := KeyInfo(m, h, obj)
		if err != nil {
			return nil, err
		}
		if ok {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// FindKey is the one key labelled label (of class, when not empty) that
// session h sees. With privateOnly (share), only private objects count:
// public ones are visible to every user anyway. No key is
// CKR_OBJECT_HANDLE_INVALID, several an ambiguous_key error naming their
// handles.
func FindKey(m *token.Module, h ck.ULong, label, class string, privateOnly bool) (ck.ULong, error) {
	keys, err := ListKeys(m, h, Filter{Label: label, Class: class})
	if err != nil {
		return 0, err
	}
	var hs []string
	var found ck.ULong
	for _, k := range keys {
		if privateOnly && !k.Private {
			continue
		}
		hs = append(hs, fmt.Sprint(k.Handle))
		found = k.Handle
	}
	switch len(hs) {
	case 0:
		return 0, fmt.Errorf("no key labelled %q: %w", label, ck.CKR_OBJECT_HANDLE_INVALID)
	case 1:
		return found, nil
	}
	return 0, Errorf(CodeAmbiguousKey, "label %q names %d keys (handles %s): use --handle or --class", label, len(hs), strings.Join(hs, ", "))
}

// --- generate ---

// GenSpec is a key to generate: the CLI's key generate flags.
type GenSpec struct {
	Type  string `json:"type"`  // aes, ec, rsa, ml-dsa or ml-kem
	Label string `json:"label"` // CKA_LABEL, required
	ID    string `json:"id"`    // CKA_ID in hex (a pair's halves share it)
	Bits  int    `json:"bits"`  // aes: 128, 192, 256 (0: 256); rsa: 2048, 3072, 4096 (0: 2048)
	Curve string `json:"curve"` // ec: P-256 or P-384 ("": P-256)
	// ParameterSet: ml-dsa: 44, 65 or 87 (0: 65); ml-kem: 512, 768 or 1024 (0: 768).
	ParameterSet int  `json:"parameter_set,omitempty"`
	Session      bool `json:"session"` // a session key, gone when the session's module closes
}

// template is the common part of a generated key's template.
func (g GenSpec) template() (attrs.Template, error) {
	if g.Label == "" {
		return nil, inputf("label", "is required")
	}
	t := attrs.Template{
		ck.CKA_TOKEN: attrs.Bool(!g.Session),
		ck.CKA_LABEL: []byte(g.Label),
	}
	if g.ID != "" {
		id, err := DecodeHex("id", g.ID)
		if err != nil {
			return nil, err
		}
		t[ck.CKA_ID] = id
	}
	return t, nil
}

var curves = map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384()}

// Check validates the spec without touching the token (the CLI checks
// its flags before asking for a PIN).
func (g GenSpec) Check() error {
	_, _, err := g.templates()
	return err
}

// templates are the spec's templates: the secret key's (priv) for aes,
// else the pair's public and private halves'.
func (g GenSpec) templates() (pub, priv attrs.Template, err error) {
	switch strings.ToLower(g.Type) {
	case "aes":
		bits, err := size(g.Bits, 256, 128, 192, 256)
		if err != nil {
			return nil, nil, err
		}
		if priv, err = g.template(); err != nil {
			return nil, nil, err
		}
		priv[ck.CKA_VALUE_LEN] = attrs.ULong(ck.ULong(bits / 8))
		setUsage(priv, ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_VERIFY, ck.CKA_WRAP, ck.CKA_UNWRAP)
		return nil, priv, nil
	case "ec":
		curve := g.Curve
		if curve == "" {
			curve = "P-256"
		}
		c, ok := curves[strings.ToUpper(curve)]
		if !ok {
			return nil, nil, inputf("curve", "%q: want P-256 or P-384", g.Curve)
		}
		params, err := mechanisms.ECParams(c)
		if err != nil {
			return nil, nil, err
		}
		if pub, err = g.template(); err != nil {
			return nil, nil, err
		}
		pub[ck.CKA_EC_PARAMS] = params
		setUsage(pub, ck.CKA_VERIFY)
		priv, _ = g.template()
		setUsage(priv, ck.CKA_SIGN)
		return pub, priv, nil
	case "rsa":
		bits, err := size(g.Bits, 2048, 2048, 3072, 4096)
		if err != nil {
			return nil, nil, err
		}
		if pub, err = g.template(); err != nil {
			return nil, nil, err
		}
		pub[ck.CKA_MODULUS_BITS] = attrs.ULong(ck.ULong(bits))
		pub[ck.CKA_PUBLIC_EXPONENT] = []byte{1, 0, 1}
		setUsage(pub, ck.CKA_ENCRYPT, ck.CKA_VERIFY, ck.CKA_WRAP)
		priv, _ = g.template()
		setUsage(priv, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_UNWRAP)
		return pub, priv, nil
	case "ml-kem":
		var set ck.ULong
		switch g.ParameterSet {
		case 512:
			set = ck.CKP_ML_KEM_512
		case 0, 768:
			set = ck.CKP_ML_KEM_768
		case 1024:
			set = ck.CKP_ML_KEM_1024
		default:
			return nil, nil, inputf("parameter_set", "%d: want 512, 768 or 1024", g.ParameterSet)
		}
		if pub, err = g.template(); err != nil {
			return nil, nil, err
		}
		pub[ck.CKA_PARAMETER_SET] = attrs.ULong(set)
		setUsage(pub, ck.CKA_ENCAPSULATE)
		priv, _ = g.template()
		setUsage(priv, ck.CKA_DECAPSULATE)
		return pub, priv, nil
	case "ml-dsa":
		set, ok := mldsaSets[g.ParameterSet]
		if !ok {
			return nil, nil, inputf("parameter-set", "%d: want 44, 65 or 87", g.ParameterSet)
		}
		if pub, err = g.template(); err != nil {
			return nil, nil, err
		}
		pub[ck.CKA_PARAMETER_SET] = attrs.ULong(set)
		setUsage(pub, ck.CKA_VERIFY)
		priv, _ = g.template()
		setUsage(priv, ck.CKA_SIGN)
		return pub, priv, nil
	}
	return nil, nil, inputf("type", "%q: want aes, ec, rsa, ml-dsa or ml-kem", g.Type)
}

// size is a spec's bits: one of the three sizes, def when 0 (the CLI's
// flags' defaults: 256 for AES, 2048 for RSA).
func size(bits, def int, sizes ...int) (int, error) {
	if bits == 0 {
		return def, nil
	}
	if !slices.Contains(sizes, bits) {
		return 0, inputf("bits", "%d: want %d, %d or %d", bits, sizes[0], sizes[1], sizes[2])
	}
	return bits, nil
}

// setUsage sets usage flags CK_TRUE: the CLI's keys can do what their
// type does in every profile (the cloudhsm profile defaults every usage
// flag to CK_FALSE, as CloudHSM does; standard's defaults are these).
func setUsage(t attrs.Template, usage ...ck.AttributeType) {
	for _, a := range usage {
		t[a] = attrs.Bool(true)
	}
}

var genMechs = map[string]ck.MechanismType{"ec": ck.CKM_EC_KEY_PAIR_GEN, "rsa": ck.CKM_RSA_PKCS_KEY_PAIR_GEN,
	"ml-dsa": ck.CKM_ML_DSA_KEY_PAIR_GEN, "ml-kem": ck.CKM_ML_KEM_KEY_PAIR_GEN}

// mldsaSets are --parameter-set's values (0: the default, ML-DSA-65).
var mldsaSets = map[int]ck.ULong{0: ck.CKP_ML_DSA_65, 44: ck.CKP_ML_DSA_44, 65: ck.CKP_ML_DSA_65, 87: ck.CKP_ML_DSA_87}

// Generate generates the key g describes on session h: one secret key for
// aes, else a pair, public half first.
func Generate(m *token.Module, h ck.ULong, g GenSpec) ([]Key, error) {
	pub, priv, err := g.templates()
	if err != nil {
		return nil, err
	}
	var objs []ck.ULong
	if pub == nil {
		obj, err := m.GenerateKey(h, token.Mechanism{Type: ck.CKM_AES_KEY_GEN}, priv)
		if err != nil {
			return nil, err
		}
		objs = []ck.ULong{obj}
	} else {
		pubH, privH, err := m.GenerateKeyPair(h, token.Mechanism{Type: genMechs[strings.ToLower(g.Type)]}, pub, priv)
		if err != nil {
			return nil, err
		}
		objs = []ck.ULong{pubH, privH}
	}
	keys := make([]Key, len(objs))
	for i, obj := range objs {
		if keys[i], _, err = KeyInfo(m, h, obj); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// --- delete, share, set-trusted ---

// Delete destroys key obj (the token allows its owner only).
func Delete(m *token.Module, h, obj ck.ULong) error {
	return m.DestroyObject(h, obj)
}

// Share shares key obj with user (share) or stops sharing it, and returns
// the key as it is then.
func Share(m *token.Module, h, obj ck.ULong, user string, share bool) (Key, error) {
	if user == "" {
		return Key{}, inputf("username", "is required")
	}
	if err := m.Share(h, obj, user, share); err != nil {
		return Key{}, err
	}
	k, _, err := KeyInfo(m, h, obj)
	return k, err
}

// SetTrusted sets key obj's CKA_TRUSTED, a crypto officer's act. Officers
// do not see crypto users' private keys, so the key is named by its handle
// (as CloudHSM names keys by reference).
func SetTrusted(m *token.Module, h, obj ck.ULong, trusted bool) error {
	return m.SetTrusted(h, obj, trusted)
}

// Check validates the filter's fields without touching the token.
func (f Filter) Check() error {
	_, err := f.template()
	return err
}
