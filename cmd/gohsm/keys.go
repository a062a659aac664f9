package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"gohsm/internal/admin"
	"gohsm/internal/ck"
)

func printKeys(w io.Writer, keys []admin.Key) {
	var t [][]string
	for _, k := range keys {
		kind := k.Class
		if !k.Token {
			kind += " (session)"
		}
		typ := k.KeyType
		if k.ParameterSet != "" {
			typ += " (" + k.ParameterSet + ")"
		}
		t = append(t, []string{fmt.Sprint(k.Handle), kind, typ, orDash(k.Label), orDash(k.ID),
			orDash(k.Owner), orDash(strings.Join(k.SharedWith, ","))})
	}
	table(w, "HANDLE\tCLASS\tTYPE\tLABEL\tID\tOWNER\tSHARED-WITH", t)
}

func keyList(fs *flag.FlagSet) func(*env) error {
	label := fs.String("label", "", "only keys with this `label`")
	class := fs.String("class", "", "only keys of this `class`: secret, private or public")
	keyType := fs.String("key-type", "", "only keys of this `type`: aes, ec, rsa, generic_secret, ...")
	owner := fs.String("owner", "", "only keys this crypto `user` owns")
	return func(e *env) error {
		f := admin.Filter{Label: *label, Class: *class, KeyType: *keyType, Owner: *owner}
		if err := f.Check(); err != nil {
			return usageOf(err)
		}
		h, err := e.session()
		if err != nil {
			return err
		}
		keys, err := admin.ListKeys(e.m, h, f)
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

// keyGenerate is key generate aes, ec and rsa (admin.Generate): the
// type's own flag (--bits or --curve) and the common ones.
func keyGenerate(typ string) func(fs *flag.FlagSet) func(*env) error {
	return func(fs *flag.FlagSet) func(*env) error {
		var bits *int
		var curve *string
		var set *int
		switch typ {
		case "aes":
			bits = fs.Int("bits", 256, "key size: 128, 192 or 256")
		case "rsa":
			bits = fs.Int("bits", 2048, "modulus size: 2048, 3072 or 4096")
		case "ec":
			curve = fs.String("curve", "P-256", "curve: P-256 or P-384")
		case "ml-dsa":
			set = fs.Int("parameter-set", 65, "ML-DSA parameter set: 44, 65 or 87")
		case "ml-kem":
			set = fs.Int("parameter-set", 768, "ML-KEM parameter set: 512, 768 or 1024")
		}
		g := addGenFlags(fs)
		return func(e *env) error {
			spec := admin.GenSpec{Type: typ, Label: *g.label, ID: *g.id, Session: *g.session}
			if bits != nil {
				spec.Bits = *bits
			}
			if curve != nil {
				spec.Curve = *curve
			}
			if set != nil {
				spec.ParameterSet = *set
			}
			if err := spec.Check(); err != nil {
				return usageOf(err)
			}
			h, err := e.session()
			if err != nil {
				return err
			}
			keys, err := admin.Generate(e.m, h, spec)
			if err != nil {
				return err
			}
			var data map[string]any
			if len(keys) == 1 {
				data = map[string]any{"key": keys[0]}
			} else {
				data = map[string]any{"public_key": keys[0], "private_key": keys[1]}
			}
			return e.emit(data, func(w io.Writer) { printKeys(w, keys) })
		}
	}
}

// keyImport is key import (admin.Import): the key in a PEM file, or a raw
// AES key in hex, created as C_CreateObject would.
func keyImport(fs *flag.FlagSet) func(*env) error {
	label := fs.String("label", "", "key `label` (CKA_LABEL)")
	id := fs.String("id", "", "key ID in `hex` (CKA_ID; a pair's halves share it)")
	pemFile := fs.String("pem", "", "a PEM `file`: PKCS#8, SEC 1 or PKCS#1 private key, or SPKI public key")
	aesHex := fs.String("aes-key-hex", "", "a raw AES key of 16, 24 or 32 bytes in `hex`")
	return func(e *env) error {
		if (*pemFile == "") == (*aesHex == "") {
			return usagef("give exactly one of --pem and --aes-key-hex")
		}
		spec := admin.ImportSpec{Label: *label, ID: *id}
		if *aesHex != "" {
			key, err := admin.DecodeHex("aes_key_hex", *aesHex)
			if err != nil {
				return usageOf(err)
			}
			spec.AESKey = key
		} else {
			text, err := readSmall(*pemFile, 64<<10)
			if err != nil {
				return usagef("--pem: %v", err)
			}
			spec.PEM = text
		}
		if err := spec.Check(); err != nil {
			return usageOf(err)
		}
		h, err := e.session()
		if err != nil {
			return err
		}
		keys, err := admin.Import(e.m, h, spec)
		if err != nil {
			return err
		}
		return e.emit(map[string]any{"keys": keys}, func(w io.Writer) { printKeys(w, keys) })
	}
}

// readSmall reads a file of at most max bytes (a key, not a disk image).
func readSmall(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, max)
	}
	return b, nil
}

// usageOf words an admin.InputError as the usage error of its flag;
// other errors pass.
func usageOf(err error) error {
	var ie *admin.InputError
	if errors.As(err, &ie) {
		return usagef("%s", ie.FlagText())
	}
	return err
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
		if _, ok := admin.ParseClass(*ks.class); !ok {
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
	return admin.FindKey(e.m, h, *ks.label, *ks.class, privateOnly)
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
		if err := admin.Delete(e.m, h, obj); err != nil {
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
			k, err := admin.Share(e.m, h, obj, *user, share)
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
		if err := admin.SetTrusted(e.m, h, ck.ULong(*handle), *trusted); err != nil {
			return err
		}
		return e.emit(map[string]any{"handle": *handle, "trusted": *trusted}, func(w io.Writer) {
			fmt.Fprintf(w, "key %d: trusted = %v\n", *handle, *trusted)
		})
	}
}
