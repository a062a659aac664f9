package cloudhsmcli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
)

// ---------------------------------------------------------------------------
// Multi-value flags
// ---------------------------------------------------------------------------

// multiValue is a flag that takes several space-separated values, as
// CloudHSM CLI's `--filter [<FILTER>...]` and `--attributes
// [<KEY_ATTRIBUTES>...]`: `--filter attr.label=a attr.class=secret-key`.
// Go's flag package stops at the first non-flag argument, so exec first
// rewrites the command line with expandMulti.
type multiValue struct {
	vals  []string
	given bool
}

func (m *multiValue) String() string {
	if m == nil {
		return ""
	}
	return strings.Join(m.vals, " ")
}

// Set appends a value; the empty value (a bare `--filter`) only records
// that the flag was given.
func (m *multiValue) Set(s string) error {
	m.given = true
	if s != "" {
		m.vals = append(m.vals, s)
	}
	return nil
}

// Multi defines a multi-value flag and returns the slice its values land in.
func Multi(fs *flag.FlagSet, name, usage string) *[]string {
	m := &multiValue{}
	fs.Var(m, name, usage)
	return &m.vals
}

// MultiGiven reports whether a multi-value flag was on the command line
// (even with no values).
func MultiGiven(fs *flag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	m, ok := f.Value.(*multiValue)
	return ok && m.given
}

// expandMulti rewrites `--name v1 v2 ...` for the multi-value flags of fs
// into `--name=v1 --name=v2 ...`: the values are the arguments up to the
// next one that starts with "-". `--name=v1 v2` takes v2 as well.
func expandMulti(fs *flag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, ok := flagName(a)
		f := fs.Lookup(name)
		if !ok || f == nil {
			out = append(out, a)
			continue
		}
		if _, multi := f.Value.(*multiValue); !multi {
			out = append(out, a)
			continue
		}
		n := 0
		if _, v, hasEq := strings.Cut(a, "="); hasEq {
			out = append(out, "--"+name+"="+v)
			n++
		}
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++
			out = append(out, "--"+name+"="+args[i])
			n++
		}
		if n == 0 {
			out = append(out, "--"+name+"=")
		}
	}
	return out
}

// flagName is the name of a flag argument ("-x", "--x", "--x=v").
func flagName(a string) (string, bool) {
	if len(a) < 2 || a[0] != '-' {
		return "", false
	}
	a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
	name, _, _ := strings.Cut(a, "=")
	return name, name != ""
}

// ---------------------------------------------------------------------------
// Key filters
// ---------------------------------------------------------------------------

// Filter is a parsed `--filter`: a key reference and/or attribute values,
// all of which a key must match. See "Filter keys using CloudHSM CLI"
// (https://docs.aws.amazon.com/cloudhsm/latest/userguide/manage-keys-cloudhsm-cli-filtering.html):
// each term is key-reference=0x... or attr.KEY_ATTRIBUTE_NAME=VALUE.
type Filter struct {
	Ref    ck.ULong // the object handle, when HasRef
	HasRef bool
	Tmpl   attrs.Template
}

// KeyReference is how CloudHSM CLI prints a key reference: the object
// handle as 0x%016x ("0x00000000001c0686").
func KeyReference(h ck.ULong) string { return fmt.Sprintf("0x%016x", uint64(h)) }

// ParseFilter parses the terms of --filter (and its --key-filter,
// --payload-filter, --wrapping-filter relatives).
func ParseFilter(terms []string) (Filter, error) {
	f := Filter{Tmpl: attrs.Template{}}
	for _, term := range terms {
		k, v, ok := strings.Cut(term, "=")
		switch {
		case ok && k == "key-reference":
			ref, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(unquote(v), "0x"), "0X"), 16, 64)
			if err != nil {
				return Filter{}, usageErr{fmt.Sprintf("invalid key reference '%s': expected a hex value such as 0x00000000001c0686", v)}
			}
			if f.HasRef && f.Ref != ck.ULong(ref) {
				return Filter{}, usageErr{"only one key-reference may be given"}
			}
			f.Ref, f.HasRef = ck.ULong(ref), true
		case ok && strings.HasPrefix(k, "attr."):
			a, val, err := splitKV(strings.TrimPrefix(term, "attr."))
			if err != nil {
				return Filter{}, err
			}
			b, err := a.Codec.Parse(val)
			if err != nil {
				return Filter{}, err
			}
			if old, dup := f.Tmpl[a.Type]; dup && !bytes.Equal(old, b) {
				// Two different values for one attribute match nothing;
				// CloudHSM CLI's filters AND their terms.
				return Filter{}, usageErr{fmt.Sprintf("attribute '%s' given twice with different values", a.Name)}
			}
			f.Tmpl[a.Type] = b
		default:
			return Filter{}, usageErr{fmt.Sprintf("invalid filter '%s': expected key-reference=0x... or attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE", term)}
		}
	}
	return f, nil
}

// Empty reports whether the filter selects every key.
func (f Filter) Empty() bool { return !f.HasRef && len(f.Tmpl) == 0 }

// The errors of selecting one key. CloudHSM CLI's key commands that work
// on one key refuse a filter matching none or several: "Key selection
// criteria matched 48 keys. Refine selection criteria to select a single
// key." ("Filtration Errors", manage-keys-cloudhsm-cli-filtering.html).
// The page shows no text for no match; ours says what happened.
var (
	ErrNoKeyMatched = errors.New("No keys matched the key selection criteria. Verify the key reference or attributes and try again")
)

// errManyKeysMatched is the refusal of a filter that matches n > 1 keys.
func errManyKeysMatched(n int) error {
	return fmt.Errorf("Key selection criteria matched %d keys. Refine selection criteria to select a single key.", n)
}

// keyClasses are the object classes that are keys: filters see only them.
var keyClasses = []ck.ObjectClass{ck.CKO_SECRET_KEY, ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY}

// FindKeys returns the keys the logged-in user sees that match f, in
// reference order. Visibility (owned, shared, public) is the token's:
// C_FindObjects and C_GetAttributeValue as this session.
func (c *Context) FindKeys(f Filter) ([]ck.ULong, error) {
	m, h, err := c.moduleSession()
	if err != nil {
		return nil, err
	}
	var handles []ck.ULong
	if f.HasRef {
		handles = []ck.ULong{f.Ref}
	} else {
		find := f.Tmpl
		if _, ok := find[ck.CKA_EXTRACTABLE]; ok {
			// Public keys have no CKA_EXTRACTABLE and show true
			// (RenderAttributes): keyMatches compares it.
			find = find.Clone()
			delete(find, ck.CKA_EXTRACTABLE)
		}
		var err error
		if handles, err = m.FindAll(h, find); err != nil {
			return nil, err
		}
	}
	keys := []ck.ULong{}
	for _, obj := range handles {
		ok, err := c.keyMatches(obj, f.Tmpl)
		if err != nil {
			return nil, err
		}
		if ok {
			keys = append(keys, obj)
		}
	}
	return keys, nil
}

// keyMatches reports whether obj is a key this session sees whose
// attributes equal tmpl's. A handle that does not exist, or that this
// user may not see, matches nothing (the token answers
// CKR_OBJECT_HANDLE_INVALID for both).
func (c *Context) keyMatches(obj ck.ULong, tmpl attrs.Template) (bool, error) {
	types := []ck.AttributeType{ck.CKA_CLASS}
	for t := range tmpl {
		if t != ck.CKA_CLASS {
			types = append(types, t)
		}
	}
	res, err := c.m.GetAttributeValue(c.h, obj, types)
	if errors.Is(err, ck.CKR_OBJECT_HANDLE_INVALID) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if res[0].Err != nil {
		return false, nil
	}
	class := attrs.Template{ck.CKA_CLASS: res[0].Value}
	cl, _ := class.ULong(ck.CKA_CLASS)
	if !slices.Contains(keyClasses, ck.ObjectClass(cl)) {
		return false, nil
	}
	for i, t := range types {
		want, ok := tmpl[t]
		if ok && t == ck.CKA_EXTRACTABLE && res[i].Err != nil && ck.ObjectClass(cl) == ck.CKO_PUBLIC_KEY {
			res[i].Value, res[i].Err = attrs.Bool(true), nil // as RenderAttributes shows it
		}
		if ok && (res[i].Err != nil || !bytes.Equal(res[i].Value, want)) {
			return false, nil
		}
	}
	return true, nil
}

// FindKey returns the one key f matches, or CloudHSM CLI's refusal when
// it matches none or several.
func (c *Context) FindKey(f Filter) (ck.ULong, error) {
	keys, err := c.FindKeys(f)
	if err != nil {
		return 0, err
	}
	switch len(keys) {
	case 0:
		return 0, ErrNoKeyMatched
	case 1:
		return keys[0], nil
	}
	return 0, errManyKeysMatched(len(keys))
}

// FindKeyByTerms parses a filter's terms and finds its one key; flag names
// the flag for the message when it is missing.
func (c *Context) FindKeyByTerms(flag string, terms []string) (ck.ULong, error) {
	if len(terms) == 0 {
		return 0, usageErr{fmt.Sprintf("the following required arguments were not provided: --%s <FILTER>...", flag)}
	}
	f, err := ParseFilter(terms)
	if err != nil {
		return 0, err
	}
	return c.FindKey(f)
}

// KeyAttributes reads a key's attributes and renders them as key list's
// "attributes" object.
func (c *Context) KeyAttributes(obj ck.ULong) (AttributeObject, error) {
	m, h, err := c.moduleSession()
	if err != nil {
		return nil, err
	}
	types := readTypes()
	res, err := m.GetAttributeValue(h, obj, types)
	if err != nil && !errors.Is(err, ck.CKR_ATTRIBUTE_TYPE_INVALID) && !errors.Is(err, ck.CKR_ATTRIBUTE_SENSITIVE) {
		return nil, err
	}
	t := attrs.Template{}
	for i, r := range res {
		if r.Err == nil {
			t[types[i]] = r.Value
		}
	}
	return RenderAttributes(t)
}
