package cloudhsmcli

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/attrs"
)

// key list, generate-symmetric, generate-asymmetric-pair, delete, share,
// unshare, set-attribute (UG:cloudhsm_cli-key-list, -key-generate-symmetric-aes,
// -key-generate-symmetric-generic-secret, -key-generate-asymmetric-pair-rsa,
// -key-generate-asymmetric-pair-ec, -key-delete, -key-share, -key-unshare,
// -key-set-attribute). Attribute names and filters are attributes.go's and
// filter.go's; who may see, share or change a key is the token's.
func init() {
	register(
		Command{Path: []string{"key", "list"}, Help: "List the keys the current user owns, shares, and all public keys in the HSM cluster", Role: LoggedIn, Setup: keyList},
		Command{Path: []string{"key", "generate-symmetric", "aes"}, Help: "Generate an AES key", Role: CryptoUser, Setup: keyGenSymmetric(ck.CKK_AES, ck.CKM_AES_KEY_GEN)},
		Command{Path: []string{"key", "generate-symmetric", "generic-secret"}, Help: "Generate a generic secret key", Role: CryptoUser, Setup: keyGenSymmetric(ck.CKK_GENERIC_SECRET, ck.CKM_GENERIC_SECRET_KEY_GEN)},
		Command{Path: []string{"key", "generate-asymmetric-pair", "rsa"}, Help: "Generate an RSA key pair", Role: CryptoUser, Setup: keyGenRSA},
		Command{Path: []string{"key", "generate-asymmetric-pair", "ec"}, Help: "Generate an Elliptic-Curve Cryptography (ECC) key pair", Role: CryptoUser, Setup: keyGenEC},
		Command{Path: []string{"key", "generate-asymmetric-pair", "ml-dsa"}, Help: "Generate an ML-DSA key pair", Role: CryptoUser, Setup: keyGenMLDSA},
		Command{Path: []string{"key", "delete"}, Help: "Delete a key in the HSM cluster", Role: CryptoUser, Setup: keyDelete},
		Command{Path: []string{"key", "share"}, Help: "Share a key in the HSM cluster with another user", Role: CryptoUser, Setup: keyShare(true)},
		Command{Path: []string{"key", "unshare"}, Help: "Unshare a key in the HSM cluster with another user", Role: CryptoUser, Setup: keyShare(false)},
		Command{Path: []string{"key", "set-attribute"}, Help: "Set an attribute for a key in the HSM cluster", Role: LoggedIn, Setup: keySetAttribute},
	)
}

// keyEntry is one key as key list and the generate commands print it;
// key list without --verbose prints the reference and label only.
type keyEntry struct {
	Reference  string          `json:"key-reference"`
	Info       *keyInfo        `json:"key-info,omitempty"`
	Attributes AttributeObject `json:"attributes"`
}

// keyEntry reads a key's entry: describeKey's (keyobject.go) when
// verbose, else the reference and label.
func (c *Context) keyEntry(obj ck.ULong, verbose bool) (keyEntry, error) {
	if verbose {
		k, err := c.describeKey(obj)
		if err != nil {
			return keyEntry{}, err
		}
		return keyEntry{Reference: k.Reference, Info: &k.Info, Attributes: k.Attributes}, nil
	}
	all, err := c.KeyAttributes(obj)
	if err != nil {
		return keyEntry{}, err
	}
	label, _ := all.Get("label")
	return keyEntry{Reference: KeyReference(obj), Attributes: AttributeObject{{"label", label}}}, nil
}

// coverage is a key's cluster-coverage from its CKA_TOKEN: "full" for a
// token key (one HSM holds it all), "session" for a session key (the
// generate-symmetric example with --session).
func coverage(tok token.AttrResult) string {
	if tok.Err == nil && len(tok.Value) == 1 && tok.Value[0] == 0 {
		return "session"
	}
	return "full"
}

// keyList pages through the keys a filter selects: --max-items (default
// 10) per call, next_token to resume ("next_token": "10" after the first
// ten), as UG:cloudhsm_cli-key-list documents.
func keyList(fs *flag.FlagSet) func(*Context) (any, error) {
	filter := Multi(fs, "filter", "Key reference (e.g. key-reference=0xabc) or space separated list of key attributes in the form of attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select matching key(s) to list")
	maxItems := fs.String("max-items", "10", "The total number of items to return in the command's output. If the total number of items available is more than the value specified, a next-token is provided in the command's output. To resume pagination, provide the next-token value in the starting-token argument of a subsequent command")
	start := fs.String("starting-token", "", "A token to specify where to start paginating. This is the next-token from a previously truncated response")
	verbose := fs.Bool("verbose", false, "If included, prints all attributes and key information for each matched key. By default each matched key only displays its key-reference and label attribute. This flag when used by Admins has no effect")
	fs.BoolVar(verbose, "v", false, "Same as --verbose")
	return func(c *Context) (any, error) {
		limit, err := strconv.Atoi(*maxItems)
		if err != nil || limit < 1 {
			return nil, usageErr{fmt.Sprintf("invalid value '%s' for '--max-items <MAX_ITEMS>': expected a positive number", *maxItems)}
		}
		from := 0
		if *start != "" {
			if from, err = strconv.Atoi(*start); err != nil || from < 0 {
				return nil, usageErr{fmt.Sprintf("invalid value '%s' for '--starting-token <STARTING_TOKEN>': not a token from a previous key list", *start)}
			}
		}
		f, err := ParseFilter(*filter)
		if err != nil {
			return nil, err
		}
		keys, err := c.FindKeys(f)
		if err != nil {
			return nil, err
		}
		total := len(keys)
		from = min(from, total)
		page := keys[from:min(from+limit, total)]
		out := struct {
			Matched  []keyEntry `json:"matched_keys"`
			Total    int        `json:"total_key_count"`
			Returned int        `json:"returned_key_count"`
			Next     string     `json:"next_token,omitempty"`
		}{Matched: []keyEntry{}, Total: total, Returned: len(page)}
		for _, obj := range page {
			e, err := c.keyEntry(obj, *verbose && c.role != "admin")
			if err != nil {
				return nil, err
			}
			out.Matched = append(out.Matched, e)
		}
		if from+len(page) < total {
			out.Next = strconv.Itoa(from + len(page))
		}
		return out, nil
	}
}

// genFlags are the flags every generate command has.
type genFlags struct {
	session *bool
	share   *[]string
	quorum  keyQuorumFlags // --manage-key-quorum-value, --use-key-quorum-value (quorum.go)
}

func addGenFlags(fs *flag.FlagSet) genFlags {
	return genFlags{
		session: fs.Bool("session", false, "Creates a session key that exists only in the current session. The key cannot be recovered after the session ends"),
		share:   Multi(fs, "share-crypto-users", "Space separated list of Crypto User usernames to share the key with"),
		quorum:  addKeyQuorumFlags(fs),
	}
}

// base is the template every generated key starts from: token or session.
func (g genFlags) base() attrs.Template {
	return attrs.Template{ck.CKA_TOKEN: attrs.Bool(!*g.session)}
}

// merge adds --attributes to t; what the command's own flags set wins
// over nothing: giving both is a usage error.
func merge(t attrs.Template, kvs []string, flagOf map[ck.AttributeType]string) error {
	extra, err := ParseAttributes(kvs)
	if err != nil {
		return err
	}
	for typ, v := range extra {
		if _, dup := t[typ]; dup {
			a, _ := attributeByType(typ)
			return usageErr{fmt.Sprintf("attribute '%s' is set by %s; do not give it in the attributes too", a.Name, flagOf[typ])}
		}
		t[typ] = v
	}
	return nil
}

// shareGenerated shares a just-generated key with --share-crypto-users;
// when a share fails the key (and a pair's other half) is destroyed: a
// command either does all it was asked or nothing.
func (c *Context) shareGenerated(g genFlags, obj ck.ULong, also ...ck.ULong) error {
	for _, u := range *g.share {
		if err := c.m.Share(c.h, obj, strings.ToLower(u), true); err != nil {
			for _, o := range append([]ck.ULong{obj}, also...) {
				c.m.DestroyObject(c.h, o)
			}
			return fmt.Errorf("key not kept: sharing it with %s failed: %w", u, err)
		}
	}
	return nil
}

func keyGenSymmetric(kt ck.KeyType, mech ck.MechanismType) func(fs *flag.FlagSet) func(*Context) (any, error) {
	return func(fs *flag.FlagSet) func(*Context) (any, error) {
		label := fs.String("label", "", "Label for the key")
		length := fs.String("key-length-bytes", "", "Key length in bytes")
		kvs := Multi(fs, "attributes", "Space separated list of key attributes to set for the generated key in the form of KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE")
		g := addGenFlags(fs)
		return func(c *Context) (any, error) {
			if err := required(fs, "label", "key-length-bytes"); err != nil {
				return nil, err
			}
			n, err := strconv.ParseUint(*length, 10, 32)
			if err != nil {
				return nil, usageErr{fmt.Sprintf("invalid value '%s' for '--key-length-bytes <KEY_LENGTH_BYTES>': expected a number", *length)}
			}
			t := g.base()
			t[ck.CKA_CLASS] = attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY))
			t[ck.CKA_KEY_TYPE] = attrs.ULong(ck.ULong(kt))
			t[ck.CKA_LABEL] = []byte(*label)
			t[ck.CKA_VALUE_LEN] = attrs.ULong(ck.ULong(n))
			if err := merge(t, *kvs, map[ck.AttributeType]string{ck.CKA_TOKEN: "--session", ck.CKA_CLASS: "the command",
				ck.CKA_KEY_TYPE: "the command", ck.CKA_LABEL: "--label", ck.CKA_VALUE_LEN: "--key-length-bytes"}); err != nil {
				return nil, err
			}
			h, err := c.Session()
			if err != nil {
				return nil, err
			}
			obj, err := c.m.GenerateKey(h, token.Mechanism{Type: mech}, t)
			if err != nil {
				return nil, err
			}
			if err := c.shareGenerated(g, obj); err != nil {
				return nil, err
			}
			if err := c.setKeyQuorum(obj, g.quorum); err != nil {
				return nil, err
			}
			k, err := c.describeKey(obj)
			if err != nil {
				return nil, err
			}
			return map[string]any{"key": k}, nil
		}
	}
}

// pairFlags are the flags of both generate-asymmetric-pair commands.
type pairFlags struct {
	genFlags
	fs                  *flag.FlagSet
	pubLabel, privLabel *string
	pubAttrs, privAttrs *[]string
}

func addPairFlags(fs *flag.FlagSet) pairFlags {
	return pairFlags{
		genFlags:  addGenFlags(fs),
		fs:        fs,
		pubLabel:  fs.String("public-label", "", "Label for the public key"),
		privLabel: fs.String("private-label", "", "Label for the private key"),
		pubAttrs:  Multi(fs, "public-attributes", "Space separated list of key attributes to set for the generated public key in the form of KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE"),
		privAttrs: Multi(fs, "private-attributes", "Space separated list of key attributes to set for the generated private key in the form of KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE"),
	}
}

// generate makes the pair from the public template's algorithm
// parameters and prints {"public_key": ..., "private_key": ...}. The
// private key is the one shared: the cloudhsm profile shows public keys
// to every crypto user already.
func (p pairFlags) generate(c *Context, mech ck.MechanismType, kt ck.KeyType, pub attrs.Template, pubFlags map[ck.AttributeType]string) (any, error) {
	pub[ck.CKA_CLASS] = attrs.ULong(ck.ULong(ck.CKO_PUBLIC_KEY))
	pub[ck.CKA_KEY_TYPE] = attrs.ULong(ck.ULong(kt))
	pub[ck.CKA_LABEL] = []byte(*p.pubLabel)
	pub[ck.CKA_TOKEN] = attrs.Bool(!*p.session)
	priv := p.base()
	priv[ck.CKA_CLASS] = attrs.ULong(ck.ULong(ck.CKO_PRIVATE_KEY))
	priv[ck.CKA_KEY_TYPE] = attrs.ULong(ck.ULong(kt))
	priv[ck.CKA_LABEL] = []byte(*p.privLabel)
	pubFlags[ck.CKA_CLASS], pubFlags[ck.CKA_KEY_TYPE] = "the command", "the command"
	pubFlags[ck.CKA_LABEL], pubFlags[ck.CKA_TOKEN] = "--public-label", "--session"
	if err := merge(pub, *p.pubAttrs, pubFlags); err != nil {
		return nil, err
	}
	if err := merge(priv, *p.privAttrs, map[ck.AttributeType]string{ck.CKA_CLASS: "the command", ck.CKA_KEY_TYPE: "the command",
		ck.CKA_LABEL: "--private-label", ck.CKA_TOKEN: "--session"}); err != nil {
		return nil, err
	}
	h, err := c.Session()
	if err != nil {
		return nil, err
	}
	// The CLI's entry point: CloudHSM CLI generates ML-DSA pairs, which
	// the cloudhsm profile's PKCS#11 list does not offer (token/cliops.go).
	pubH, privH, err := c.m.CLIGenerateKeyPair(h, token.Mechanism{Type: mech}, pub, priv)
	if err != nil {
		return nil, err
	}
	if err := c.shareGenerated(p.genFlags, privH, pubH); err != nil {
		return nil, err
	}
	if err := c.setKeyQuorum(privH, p.quorum, pubH); err != nil {
		return nil, err
	}
	pk, err := c.describeKey(pubH)
	if err != nil {
		return nil, err
	}
	sk, err := c.describeKey(privH)
	if err != nil {
		return nil, err
	}
	return struct {
		Public  *keyObject `json:"public_key"`
		Private *keyObject `json:"private_key"`
	}{pk, sk}, nil
}

func keyGenRSA(fs *flag.FlagSet) func(*Context) (any, error) {
	p := addPairFlags(fs)
	bits := fs.String("modulus-size-bits", "", "Modulus size in bits used to generate the RSA key pair")
	exp := fs.String("public-exponent", "", "Public exponent used to generate the RSA key pair")
	return func(c *Context) (any, error) {
		if err := required(fs, "public-label", "private-label", "modulus-size-bits", "public-exponent"); err != nil {
			return nil, err
		}
		n, err := strconv.ParseUint(*bits, 10, 32)
		if err != nil {
			return nil, usageErr{fmt.Sprintf("invalid value '%s' for '--modulus-size-bits <MODULUS_SIZE_BITS>': expected a number", *bits)}
		}
		e, err := bigIntCodec.Parse(*exp)
		if err != nil {
			return nil, err
		}
		pub := attrs.Template{ck.CKA_MODULUS_BITS: attrs.ULong(ck.ULong(n)), ck.CKA_PUBLIC_EXPONENT: e}
		return p.generate(c, ck.CKM_RSA_PKCS_KEY_PAIR_GEN, ck.CKK_RSA, pub,
			map[ck.AttributeType]string{ck.CKA_MODULUS_BITS: "--modulus-size-bits", ck.CKA_PUBLIC_EXPONENT: "--public-exponent"})
	}
}

func keyGenEC(fs *flag.FlagSet) func(*Context) (any, error) {
	p := addPairFlags(fs)
	curve := fs.String("curve", "", "Elliptic curve used to generate the key pair [possible values: prime256v1, secp256r1, secp224r1, secp384r1, secp256k1, secp521r1]")
	return func(c *Context) (any, error) {
		if err := required(fs, "public-label", "private-label", "curve"); err != nil {
			return nil, err
		}
		params, err := curveCodec.Parse(*curve)
		if err != nil {
			return nil, err
		}
		return p.generate(c, ck.CKM_EC_KEY_PAIR_GEN, ck.CKK_EC, attrs.Template{ck.CKA_EC_PARAMS: params},
			map[ck.AttributeType]string{ck.CKA_EC_PARAMS: "--curve"})
	}
}

// keyGenMLDSA: key generate-asymmetric-pair ml-dsa --mldsa-algorithm
// ML-DSA-44|ML-DSA-65|ML-DSA-87 (UG:cloudhsm_cli-key-generate-asymmetric-pair-mldsa);
// the set is CKA_PARAMETER_SET of both halves, shown as mldsa-algorithm.
func keyGenMLDSA(fs *flag.FlagSet) func(*Context) (any, error) {
	p := addPairFlags(fs)
	alg := fs.String("mldsa-algorithm", "", "ML-DSA algorithm [possible values: ML-DSA-44, ML-DSA-65, ML-DSA-87]")
	return func(c *Context) (any, error) {
		if err := required(fs, "public-label", "private-label", "mldsa-algorithm"); err != nil {
			return nil, err
		}
		set, err := mldsaAlgorithmCodec.Parse(*alg)
		if err != nil {
			return nil, usageErr{fmt.Sprintf("invalid value '%s' for '--mldsa-algorithm <MLDSA_ALGORITHM>' [possible values: ML-DSA-44, ML-DSA-65, ML-DSA-87]", *alg)}
		}
		return p.generate(c, ck.CKM_ML_DSA_KEY_PAIR_GEN, ck.CKK_ML_DSA, attrs.Template{ck.CKA_PARAMETER_SET: set},
			map[ck.AttributeType]string{ck.CKA_PARAMETER_SET: "--mldsa-algorithm"})
	}
}

// message is the data of key delete, share, unshare and set-attribute:
// {"message": "Key deleted successfully"}.
type message struct {
	Message string `json:"message"`
}

func keyDelete(fs *flag.FlagSet) func(*Context) (any, error) {
	filter := Multi(fs, "filter", "Key reference (e.g. key-reference=0xabc) or space separated list of key attributes in the form of attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select a matching key for deletion")
	return func(c *Context) (any, error) {
		obj, err := c.FindKeyByTerms("filter", *filter)
		if err != nil {
			return nil, err
		}
		if err := c.m.DestroyObject(c.h, obj); err != nil {
			return nil, err
		}
		return message{"Key deleted successfully"}, nil
	}
}

func keyShare(share bool) func(fs *flag.FlagSet) func(*Context) (any, error) {
	verb, done := "share", "Key shared successfully"
	if !share {
		verb, done = "unshare", "Key unshared successfully"
	}
	return func(fs *flag.FlagSet) func(*Context) (any, error) {
		filter := Multi(fs, "filter", "Key reference (e.g. key-reference=0xabc) or space separated list of key attributes in the form of attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select a matching key to "+verb)
		uf := addUserFlags(fs, "A username with which the key will be "+verb+"d")
		approval := addApprovalFlag(fs) // the key's manage quorum (quorum.go)
		return func(c *Context) (any, error) {
			u, err := uf.parse()
			if err != nil {
				return nil, err
			}
			if u.Role != "crypto-user" {
				return nil, usageErr{fmt.Sprintf("keys are %sd with crypto users only, not with the %s role", verb, u.Role)}
			}
			obj, err := c.FindKeyByTerms("filter", *filter)
			if err != nil {
				return nil, err
			}
			if err := c.approval(*approval); err != nil {
				return nil, err
			}
			if err := c.m.Share(c.h, obj, u.Username, share); err != nil {
				return nil, err
			}
			return message{done}, nil
		}
	}
}

// keySetAttribute: "CUs can run this command, admins can set the trusted
// attribute" (UG:cloudhsm_cli-reference). An admin sets trusted only, a
// crypto user everything but trusted; the token decides which attributes
// may change on which key.
func keySetAttribute(fs *flag.FlagSet) func(*Context) (any, error) {
	filter := Multi(fs, "filter", "Key reference (e.g. key-reference=0xabc) or space separated list of key attributes in the form of attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select a matching key to modify")
	name := fs.String("name", "", "Name of the attribute to set")
	value := fs.String("value", "", "Value to set the attribute to")
	approval := addApprovalFlag(fs) // the key's manage quorum (quorum.go)
	return func(c *Context) (any, error) {
		if err := required(fs, "filter", "name", "value"); err != nil {
			return nil, err
		}
		a, ok := LookupAttribute(*name)
		if !ok {
			return nil, usageErr{fmt.Sprintf("invalid value '%s' for '--name <KEY_ATTRIBUTE>': not a key attribute", *name)}
		}
		if !a.Modifiable {
			return nil, usageErr{fmt.Sprintf("attribute '%s' cannot be modified", a.Name)}
		}
		v, err := a.Codec.Parse(*value)
		if err != nil {
			return nil, err
		}
		trusted := a.Type == ck.CKA_TRUSTED
		switch {
		case trusted && c.role != "admin":
			return nil, errors.New("only an admin may set the trusted attribute")
		case !trusted && c.role == "admin":
			return nil, fmt.Errorf("%w: an admin may set only the trusted attribute", ErrWrongRole)
		}
		f, err := ParseFilter(*filter)
		if err != nil {
			return nil, err
		}
		var obj ck.ULong
		if trusted && f.HasRef && len(f.Tmpl) == 0 {
			// An admin manages keys it cannot use or see (CKA_TRUSTED by
			// reference); the token checks the object exists.
			if _, err := c.Session(); err != nil {
				return nil, err
			}
			obj = f.Ref
		} else if obj, err = c.FindKey(f); err != nil {
			return nil, err
		}
		if err := c.approval(*approval); err != nil {
			return nil, err
		}
		if trusted {
			on, _ := (attrs.Template{a.Type: v}).Bool(a.Type)
			err = c.m.SetTrusted(c.h, obj, on)
		} else {
			_, err = c.m.SetKeyAttributes(c.h, obj, attrs.Template{a.Type: v})
		}
		if err != nil {
			return nil, err
		}
		return message{"Attribute set successfully"}, nil
	}
}
