package main

import (
	"crypto/elliptic"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token"
	"gohsm/token/attrs"
)

// keyInfo is a key as key list, generate and share show it.
type keyInfo struct {
	Handle     ck.ULong `json:"handle"`
	Class      string   `json:"class"`
	KeyType    string   `json:"key_type"`
	Label      string   `json:"label"`
	ID         string   `json:"id"` // hex
	Owner      string   `json:"owner"`
	SharedWith []string `json:"shared_with"`
	Token      bool     `json:"token"`
	Private    bool     `json:"private"`
}

var classNames = map[ck.ObjectClass]string{
	ck.CKO_SECRET_KEY:  "secret-key",
	ck.CKO_PRIVATE_KEY: "private-key",
	ck.CKO_PUBLIC_KEY:  "public-key",
}

// classFlag maps --class values to classes.
var classFlag = map[string]ck.ObjectClass{
	"secret": ck.CKO_SECRET_KEY, "secret-key": ck.CKO_SECRET_KEY,
	"private": ck.CKO_PRIVATE_KEY, "private-key": ck.CKO_PRIVATE_KEY,
	"public": ck.CKO_PUBLIC_KEY, "public-key": ck.CKO_PUBLIC_KEY,
}

func keyTypeName(k ck.KeyType) string {
	switch k {
	case ck.CKK_AES:
		return "aes"
	case ck.CKK_EC:
		return "ec"
	case ck.CKK_RSA:
		return "rsa"
	}
	return strings.ToLower(strings.TrimPrefix(k.String(), "CKK_"))
}

var keyInfoAttrs = []ck.AttributeType{ck.CKA_CLASS, ck.CKA_KEY_TYPE, ck.CKA_LABEL, ck.CKA_ID,
	ck.CKA_TOKEN, ck.CKA_PRIVATE, ck.CKA_GOHSM_OWNER, ck.CKA_GOHSM_SHARED_USERS}

// keyInfo reads a visible object's attributes; ok is false for objects that
// are not keys.
func (e *env) keyInfo(h, obj ck.ULong) (k keyInfo, ok bool, err error) {
	res, err := e.m.GetAttributeValue(h, obj, keyInfoAttrs)
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
	k = keyInfo{Handle: obj, Class: name, KeyType: keyTypeName(ck.KeyType(kt)), Label: string(t[ck.CKA_LABEL]),
		ID: hex.EncodeToString(t[ck.CKA_ID]), Owner: string(t[ck.CKA_GOHSM_OWNER]), SharedWith: []string{}}
	k.Token, _ = t.Bool(ck.CKA_TOKEN)
	k.Private, _ = t.Bool(ck.CKA_PRIVATE)
	if sh := string(t[ck.CKA_GOHSM_SHARED_USERS]); sh != "" {
		k.SharedWith = strings.Split(sh, ",")
	}
	return k, true, nil
}

// findKeys lists the visible keys matching a template, in handle order.
func (e *env) findKeys(h ck.ULong, tmpl attrs.Template) ([]keyInfo, error) {
	if err := e.m.FindObjectsInit(h, tmpl); err != nil {
		return nil, err
	}
	var handles []ck.ULong
	for {
		hs, err := e.m.FindObjects(h, 256)
		if err != nil {
			e.m.FindObjectsFinal(h)
			return nil, err
		}
		if len(hs) == 0 {
			break
		}
		handles = append(handles, hs...)
	}
	if err := e.m.FindObjectsFinal(h); err != nil {
		return nil, err
	}
	slices.Sort(handles)
	keys := []keyInfo{}
	for _, obj := range handles {
		k, ok, err := e.keyInfo(h, obj)
		if err != nil {
			return nil, err
		}
		if ok {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func printKeys(w io.Writer, keys []keyInfo) {
	var t [][]string
	for _, k := range keys {
		kind := k.Class
		if !k.Token {
			kind += " (session)"
		}
		t = append(t, []string{fmt.Sprint(k.Handle), kind, k.KeyType, orDash(k.Label), orDash(k.ID),
			orDash(k.Owner), orDash(strings.Join(k.SharedWith, ","))})
	}
	table(w, "HANDLE\tCLASS\tTYPE\tLABEL\tID\tOWNER\tSHARED-WITH", t)
}

func keyList(fs *flag.FlagSet) func(*env) error {
	label := fs.String("label", "", "only keys with this `label`")
	return func(e *env) error {
		h, err := e.session()
		if err != nil {
			return err
		}
		tmpl := attrs.Template{}
		if *label != "" {
			tmpl[ck.CKA_LABEL] = []byte(*label)
		}
		keys, err := e.findKeys(h, tmpl)
		if err != nil {
			return err
		}
		return e.emit(map[string]any{"matched_keys": keys, "total_key_count": len(keys)}, func(w io.Writer) {
			printKeys(w, keys)
		})
	}
}

// --- generate ---

// genFlags are the flags every key generation takes.
type genFlags struct {
	label   *string
	id      *string
	session *bool
}

func addGenFlags(fs *flag.FlagSet) genFlags {
	return genFlags{
		label:   fs.String("label", "", "key `label` (CKA_LABEL)"),
		id:      fs.String("id", "", "key ID in `hex` (CKA_ID; a pair's halves share it)"),
		session: fs.Bool("session", false, "a session key, gone when gohsm exits (default: a token key)"),
	}
}

// template is the common part of a generated key's template.
func (g genFlags) template() (attrs.Template, error) {
	if *g.label == "" {
		return nil, usagef("--label is required")
	}
	t := attrs.Template{
		ck.CKA_TOKEN: attrs.Bool(!*g.session),
		ck.CKA_LABEL: []byte(*g.label),
	}
	if *g.id != "" {
		id, err := hex.DecodeString(*g.id)
		if err != nil {
			return nil, usagef("--id %q: not hex", *g.id)
		}
		t[ck.CKA_ID] = id
	}
	return t, nil
}

func keyGenerateAES(fs *flag.FlagSet) func(*env) error {
	bits := fs.Int("bits", 256, "key size: 128, 192 or 256")
	g := addGenFlags(fs)
	return func(e *env) error {
		if *bits != 128 && *bits != 192 && *bits != 256 {
			return usagef("--bits %d: want 128, 192 or 256", *bits)
		}
		tmpl, err := g.template()
		if err != nil {
			return err
		}
		tmpl[ck.CKA_VALUE_LEN] = attrs.ULong(ck.ULong(*bits / 8))
		setUsage(tmpl, ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_VERIFY, ck.CKA_WRAP, ck.CKA_UNWRAP)
		h, err := e.session()
		if err != nil {
			return err
		}
		obj, err := e.m.GenerateKey(h, token.Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmpl)
		if err != nil {
			return err
		}
		k, _, err := e.keyInfo(h, obj)
		if err != nil {
			return err
		}
		return e.emit(map[string]any{"key": k}, func(w io.Writer) { printKeys(w, []keyInfo{k}) })
	}
}

var curves = map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384()}

func keyGenerateEC(fs *flag.FlagSet) func(*env) error {
	curve := fs.String("curve", "P-256", "curve: P-256 or P-384")
	g := addGenFlags(fs)
	return func(e *env) error {
		c, ok := curves[strings.ToUpper(*curve)]
		if !ok {
			return usagef("--curve %q: want P-256 or P-384", *curve)
		}
		params, err := mechanisms.ECParams(c)
		if err != nil {
			return err
		}
		pub, err := g.template()
		if err != nil {
			return err
		}
		pub[ck.CKA_EC_PARAMS] = params
		setUsage(pub, ck.CKA_VERIFY)
		return e.generatePair(ck.CKM_EC_KEY_PAIR_GEN, pub, g, ck.CKA_SIGN)
	}
}

func keyGenerateRSA(fs *flag.FlagSet) func(*env) error {
	bits := fs.Int("bits", 2048, "modulus size: 2048, 3072 or 4096")
	g := addGenFlags(fs)
	return func(e *env) error {
		if *bits != 2048 && *bits != 3072 && *bits != 4096 {
			return usagef("--bits %d: want 2048, 3072 or 4096", *bits)
		}
		pub, err := g.template()
		if err != nil {
			return err
		}
		pub[ck.CKA_MODULUS_BITS] = attrs.ULong(ck.ULong(*bits))
		pub[ck.CKA_PUBLIC_EXPONENT] = []byte{1, 0, 1}
		setUsage(pub, ck.CKA_ENCRYPT, ck.CKA_VERIFY, ck.CKA_WRAP)
		return e.generatePair(ck.CKM_RSA_PKCS_KEY_PAIR_GEN, pub, g, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_UNWRAP)
	}
}

// setUsage sets usage flags CK_TRUE: the CLI's keys can do what their
// type does in every profile (the cloudhsm profile defaults every usage
// flag to CK_FALSE, as CloudHSM does; standard's defaults are these).
func setUsage(t attrs.Template, usage ...ck.AttributeType) {
	for _, a := range usage {
		t[a] = attrs.Bool(true)
	}
}

// generatePair generates a key pair; both halves get the common template
// (label, ID, token), pub adds the algorithm's parameters and the private
// half the usage flags privUsage.
func (e *env) generatePair(mech ck.MechanismType, pub attrs.Template, g genFlags, privUsage ...ck.AttributeType) error {
	priv, err := g.template()
	if err != nil {
		return err
	}
	setUsage(priv, privUsage...)
	h, err := e.session()
	if err != nil {
		return err
	}
	pubH, privH, err := e.m.GenerateKeyPair(h, token.Mechanism{Type: mech}, pub, priv)
	if err != nil {
		return err
	}
	pk, _, err := e.keyInfo(h, pubH)
	if err != nil {
		return err
	}
	sk, _, err := e.keyInfo(h, privH)
	if err != nil {
		return err
	}
	return e.emit(map[string]any{"public_key": pk, "private_key": sk}, func(w io.Writer) {
		printKeys(w, []keyInfo{pk, sk})
	})
}

// --- delete, share ---

// keySelector is --handle or --label (with an optional --class).
type keySelector struct {
	handle *uint64
	label  *string
	class  *string
}

func addKeySelector(fs *flag.FlagSet) keySelector {
	return keySelector{
		handle: fs.Uint64("handle", 0, "key `handle` (from key list)"),
		label:  fs.String("label", "", "key `label`; it must name exactly one key"),
		class:  fs.String("class", "", "with --label: secret, private or public"),
	}
}

// check validates the selector before anything touches the token.
func (ks keySelector) check() error {
	if (*ks.handle != 0) == (*ks.label != "") {
		return usagef("give exactly one of --handle and --label")
	}
	if *ks.class != "" {
		if *ks.label == "" {
			return usagef("--class goes with --label")
		}
		if _, ok := classFlag[strings.ToLower(*ks.class)]; !ok {
			return usagef("--class %q: want secret, private or public", *ks.class)
		}
	}
	return nil
}

// resolve turns the selector into one handle. With privateOnly (share),
// only private objects count: public ones are visible to every user anyway.
func (ks keySelector) resolve(e *env, h ck.ULong, privateOnly bool) (ck.ULong, error) {
	if *ks.handle != 0 {
		return ck.ULong(*ks.handle), nil
	}
	tmpl := attrs.Template{ck.CKA_LABEL: []byte(*ks.label)}
	if *ks.class != "" {
		tmpl[ck.CKA_CLASS] = attrs.ULong(ck.ULong(classFlag[strings.ToLower(*ks.class)]))
	}
	keys, err := e.findKeys(h, tmpl)
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
		return 0, fmt.Errorf("no key labelled %q: %w", *ks.label, ck.CKR_OBJECT_HANDLE_INVALID)
	case 1:
		return found, nil
	}
	return 0, cliErrorf(codeAmbiguousKey, "label %q names %d keys (handles %s): use --handle or --class", *ks.label, len(hs), strings.Join(hs, ", "))
}

func keyDelete(fs *flag.FlagSet) func(*env) error {
	ks := addKeySelector(fs)
	return func(e *env) error {
		if err := ks.check(); err != nil {
			return err
		}
		h, err := e.session()
		if err != nil {
			return err
		}
		obj, err := ks.resolve(e, h, false)
		if err != nil {
			return err
		}
		if err := e.m.DestroyObject(h, obj); err != nil {
			return err
		}
		return e.emit(map[string]any{"handle": obj}, func(w io.Writer) {
			fmt.Fprintf(w, "deleted key %d\n", obj)
		})
	}
}

func keyShare(share bool) func(fs *flag.FlagSet) func(*env) error {
	return func(fs *flag.FlagSet) func(*env) error {
		ks := addKeySelector(fs)
		user := fs.String("username", "", "the crypto `user`")
		return func(e *env) error {
			if err := ks.check(); err != nil {
				return err
			}
			if *user == "" {
				return usagef("--username is required")
			}
			h, err := e.session()
			if err != nil {
				return err
			}
			obj, err := ks.resolve(e, h, true)
			if err != nil {
				return err
			}
			if err := e.m.Share(h, obj, *user, share); err != nil {
				return err
			}
			k, _, err := e.keyInfo(h, obj)
			if err != nil {
				return err
			}
			verb := "shared"
			if !share {
				verb = "unshared"
			}
			return e.emit(map[string]any{"key": k}, func(w io.Writer) {
				fmt.Fprintf(w, "%s key %d with %q; shared with: %s\n", verb, obj, strings.ToLower(*user), orDash(strings.Join(k.SharedWith, ",")))
			})
		}
	}
}

// keySetTrusted sets CKA_TRUSTED, a crypto officer's act. Officers do not
// see crypto users' private keys, so the key is named by its handle (as
// CloudHSM names keys by reference).
func keySetTrusted(fs *flag.FlagSet) func(*env) error {
	handle := fs.Uint64("handle", 0, "the key's `handle`")
	trusted := fs.Bool("trusted", true, "the value to set")
	return func(e *env) error {
		if *handle == 0 {
			return usagef("--handle is required")
		}
		h, err := e.session()
		if err != nil {
			return err
		}
		if err := e.m.SetTrusted(h, ck.ULong(*handle), *trusted); err != nil {
			return err
		}
		return e.emit(map[string]any{"handle": *handle, "trusted": *trusted}, func(w io.Writer) {
			fmt.Fprintf(w, "key %d: trusted = %v\n", *handle, *trusted)
		})
	}
}
