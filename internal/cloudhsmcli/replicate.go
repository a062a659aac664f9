package cloudhsmcli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/attrs"
)

// key replicate: copy a key from one cluster to a clone of it
// (https://docs.aws.amazon.com/cloudhsm/latest/userguide/cloudhsm_cli-key-replicate.html).
// In gohsm a "cluster" is a slot of the configuration: --source-cluster-id
// and --destination-cluster-id name slots, by slot ID or by a token label
// that names exactly one slot. (Not by serial number: a token restored
// from a backup keeps the original's serial, so clones share it; docs/backup.md.)
//
// The login on the source is the command's (CLOUDHSM_ROLE/CLOUDHSM_PIN);
// on the destination DESTINATION_CLOUDHSM_ROLE/DESTINATION_CLOUDHSM_PIN,
// as CloudHSM CLI's single-command mode takes them.

func init() {
	register(Command{
		Path: []string{"key", "replicate"},
		Help: "Replicate a key from a source to a destination cluster",
		Role: LoggedIn,
		Setup: func(fs *flag.FlagSet) func(*Context) (any, error) {
			var filters []string
			fs.Func("filter", "Key reference (e.g. key-reference=0xabc) or key attributes in the form attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select matching key on the source cluster (repeat the flag for several)",
				func(v string) error { filters = append(filters, strings.Fields(v)...); return nil })
			srcID := fs.String("source-cluster-id", "", "Source cluster ID")
			dstID := fs.String("destination-cluster-id", "", "Destination cluster ID")
			return func(c *Context) (any, error) {
				if len(filters) == 0 || *srcID == "" || *dstID == "" {
					return nil, usageErr{"the following required arguments were not provided: --filter <FILTER>... --source-cluster-id <SOURCE_CLUSTER_ID> --destination-cluster-id <DESTINATION_CLUSTER_ID>"}
				}
				return replicateKey(c, filters, *srcID, *dstID)
			}
		},
	})
}

func replicateKey(c *Context, filters []string, srcID, dstID string) (any, error) {
	m, _, err := c.Module()
	if err != nil {
		return nil, err
	}
	src, err := clusterSlot(m, srcID)
	if err != nil {
		return nil, err
	}
	dst, err := clusterSlot(m, dstID)
	if err != nil {
		return nil, err
	}
	if src == dst {
		return nil, errors.New("the source and destination clusters are the same")
	}
	dstRole, dstPIN := os.Getenv("DESTINATION_CLOUDHSM_ROLE"), os.Getenv("DESTINATION_CLOUDHSM_PIN")
	if dstRole == "" || dstPIN == "" {
		return nil, errors.New("log in to the destination cluster: set DESTINATION_CLOUDHSM_ROLE and DESTINATION_CLOUDHSM_PIN")
	}
	sh, err := loggedInSession(m, src, c.role, c.pin)
	if err != nil {
		return nil, err
	}
	defer m.CloseSession(sh)
	dh, err := loggedInSession(m, dst, dstRole, []byte(dstPIN))
	if err != nil {
		return nil, fmt.Errorf("destination cluster: %w", err)
	}
	defer m.CloseSession(dh)
	key, err := findOneKey(m, sh, filters)
	if err != nil {
		return nil, err
	}
	r, err := m.ReplicateKey(sh, key, dh)
	if err != nil {
		return nil, err
	}
	h := r.Handle
	o, err := m.Object(dh, h)
	if err != nil {
		// An admin sees no private key: answer from the source's copy, the
		// same key, with the destination's handle; or with the handle
		// alone.
		o, _ = m.Object(sh, key)
	}
	return ordered{{"key", replicaJSON(r, o)}, {"message", "Successfully replicated key"}}, nil
}

// clusterSlot resolves a cluster ID: a slot ID, or the label of exactly
// one slot's token.
func clusterSlot(m *token.Module, id string) (ck.ULong, error) {
	ids := m.SlotIDs()
	if n, err := strconv.ParseUint(id, 10, 64); err == nil {
		for _, s := range ids {
			if s == ck.ULong(n) {
				return s, nil
			}
		}
	}
	var found []ck.ULong
	for _, sid := range ids {
		s, err := m.Slot(sid)
		if err != nil {
			continue
		}
		ti, err := s.TokenInfo()
		if err == nil && ti.Initialized && strings.TrimRight(ti.Label, " ") == id {
			found = append(found, sid)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return 0, fmt.Errorf("cluster %s not found: a cluster ID is a slot ID or a token label of the configuration", id)
	}
	return 0, fmt.Errorf("cluster %s is ambiguous: slots %v hold tokens with that label; use the slot ID", id, found)
}

func loggedInSession(m *token.Module, slot ck.ULong, role string, pin []byte) (ck.ULong, error) {
	ut := ck.CKU_USER
	switch role {
	case "admin":
		ut = ck.CKU_SO
	case "crypto-user":
	default:
		return 0, fmt.Errorf("invalid value '%s' for role: expected admin or crypto-user", role)
	}
	h, err := m.OpenSession(slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		return 0, err
	}
	if err := m.Login(h, ut, pin); err != nil {
		m.CloseSession(h)
		return 0, err
	}
	return h, nil
}

// replicateAttrs are the CloudHSM CLI attribute names this command's
// filter takes, with their attributes (a subset of the CLI's attribute
// table; internal/cloudhsmcli/attributes.go, when it lands, replaces it).
var replicateAttrs = map[string]ck.AttributeType{
	"label": ck.CKA_LABEL, "id": ck.CKA_ID, "class": ck.CKA_CLASS, "key-type": ck.CKA_KEY_TYPE,
}

var replicaClassNames = map[string]ck.ObjectClass{"secret-key": ck.CKO_SECRET_KEY, "private-key": ck.CKO_PRIVATE_KEY, "public-key": ck.CKO_PUBLIC_KEY}
var replicaKeyTypeNames = map[string]ck.KeyType{"aes": ck.CKK_AES, "rsa": ck.CKK_RSA, "ec": ck.CKK_EC, "generic-secret": ck.CKK_GENERIC_SECRET}

// findOneKey finds the one key the filters select on the session's token.
func findOneKey(m *token.Module, h ck.ULong, filters []string) (ck.ULong, error) {
	tmpl := attrs.Template{}
	var ref *ck.ULong
	for _, f := range filters {
		name, v, ok := strings.Cut(f, "=")
		if !ok {
			return 0, usageErr{fmt.Sprintf("invalid filter '%s': expected key-reference=0x... or attr.NAME=VALUE", f)}
		}
		if name == "key-reference" {
			n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(v), "0x"), 16, 64)
			if err != nil {
				return 0, usageErr{fmt.Sprintf("invalid key reference '%s'", v)}
			}
			r := ck.ULong(n)
			ref = &r
			continue
		}
		a, ok := replicateAttrs[strings.TrimPrefix(name, "attr.")]
		if !ok || !strings.HasPrefix(name, "attr.") {
			return 0, usageErr{fmt.Sprintf("invalid filter '%s': unsupported attribute", f)}
		}
		switch a {
		case ck.CKA_CLASS:
			cl, ok := replicaClassNames[v]
			if !ok {
				return 0, usageErr{fmt.Sprintf("invalid value '%s' for attr.class", v)}
			}
			tmpl[a] = attrs.ULong(ck.ULong(cl))
		case ck.CKA_KEY_TYPE:
			kt, ok := replicaKeyTypeNames[v]
			if !ok {
				return 0, usageErr{fmt.Sprintf("invalid value '%s' for attr.key-type", v)}
			}
			tmpl[a] = attrs.ULong(ck.ULong(kt))
		case ck.CKA_ID:
			b, err := hex.DecodeString(strings.TrimPrefix(v, "0x"))
			if err != nil {
				return 0, usageErr{fmt.Sprintf("invalid value '%s' for attr.id: expected hex", v)}
			}
			tmpl[a] = b
		default:
			tmpl[a] = []byte(v)
		}
	}
	if ref != nil {
		o, err := m.Object(h, *ref)
		if err != nil && len(tmpl) == 0 {
			// An admin sees no private key; the replication itself
			// checks the key exists.
			return *ref, nil
		}
		if err != nil {
			return 0, errors.New("Key not found")
		}
		for t, v := range tmpl {
			if got := o.Attrs()[t]; string(got) != string(v) {
				return 0, errors.New("Key not found")
			}
		}
		return *ref, nil
	}
	if err := m.FindObjectsInit(h, tmpl); err != nil {
		return 0, err
	}
	found, err := m.FindObjects(h, 3)
	m.FindObjectsFinal(h)
	if err != nil {
		return 0, err
	}
	var keys []ck.ULong
	for _, f := range found {
		if o, err := m.Object(h, f); err == nil {
			if c, ok := o.Attrs().ULong(ck.CKA_CLASS); ok && (ck.ObjectClass(c) == ck.CKO_SECRET_KEY || ck.ObjectClass(c) == ck.CKO_PRIVATE_KEY || ck.ObjectClass(c) == ck.CKO_PUBLIC_KEY) {
				keys = append(keys, f)
			}
		}
	}
	switch len(keys) {
	case 0:
		return 0, errors.New("Key not found")
	case 1:
		return keys[0], nil
	}
	return 0, errors.New("Filter matched multiple keys; refine the filter to select one key")
}

// replicaJSON is the replicated key as the command's documented output
// shows it, fields in the page's order.
func replicaJSON(r token.Replicated, o *token.Object) any {
	ref := fmt.Sprintf("0x%016x", uint64(r.Handle))
	if o == nil {
		return ordered{{"key-reference", ref}}
	}
	a := o.Attrs()
	shared := []ordered{}
	for _, u := range o.SharedWith() {
		shared = append(shared, ordered{{"username", u}, {"key-coverage", "full"}})
	}
	owners := []ordered{}
	if o.Owner() != "" {
		owners = append(owners, ordered{{"username", o.Owner()}, {"key-coverage", "full"}})
	}
	var at ordered
	if kt, ok := a.ULong(ck.CKA_KEY_TYPE); ok {
		for n, v := range replicaKeyTypeNames {
			if v == ck.KeyType(kt) {
				at = append(at, kv{"key-type", n})
			}
		}
	}
	at = append(at, kv{"label", string(a[ck.CKA_LABEL])}, kv{"id", "0x" + hex.EncodeToString(a[ck.CKA_ID])})
	if c, ok := a.ULong(ck.CKA_CLASS); ok {
		for n, v := range replicaClassNames {
			if v == ck.ObjectClass(c) {
				at = append(at, kv{"class", n})
			}
		}
	}
	for _, b := range []struct {
		name string
		t    ck.AttributeType
	}{
		{"encrypt", ck.CKA_ENCRYPT}, {"decrypt", ck.CKA_DECRYPT}, {"token", ck.CKA_TOKEN},
		{"always-sensitive", ck.CKA_ALWAYS_SENSITIVE}, {"derive", ck.CKA_DERIVE}, {"destroyable", ck.CKA_DESTROYABLE},
		{"extractable", ck.CKA_EXTRACTABLE}, {"local", ck.CKA_LOCAL}, {"modifiable", ck.CKA_MODIFIABLE},
		{"never-extractable", ck.CKA_NEVER_EXTRACTABLE}, {"private", ck.CKA_PRIVATE}, {"sensitive", ck.CKA_SENSITIVE},
		{"sign", ck.CKA_SIGN}, {"trusted", ck.CKA_TRUSTED}, {"unwrap", ck.CKA_UNWRAP}, {"verify", ck.CKA_VERIFY},
		{"wrap", ck.CKA_WRAP}, {"wrap-with-trusted", ck.CKA_WRAP_WITH_TRUSTED},
	} {
		if v, ok := a[b.t]; ok && len(v) == 1 {
			at = append(at, kv{b.name, v[0] != 0})
		}
	}
	if n, ok := a.ULong(ck.CKA_VALUE_LEN); ok {
		at = append(at, kv{"key-length-bytes", n})
	}
	return ordered{
		{"key-reference", ref},
		{"key-info", ordered{
			{"key-owners", owners},
			{"shared-users", shared},
			{"key-quorum-values", ordered{{"manage-key-quorum-value", r.ManageQuorum}, {"use-key-quorum-value", r.UseQuorum}}},
			{"cluster-coverage", "full"},
		}},
		{"attributes", at},
	}
}

// ordered is a JSON object whose fields keep their order.
type ordered []kv

type kv struct {
	k string
	v any
}

func (o ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.k)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.v)
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
