package cloudhsmcli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"gohsm/internal/ck"
	"gohsm/token"
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
// as CloudHSM CLI's single-command mode takes them. The filter and the
// key's JSON are key list's (filter.go, keyobject.go), read on the
// source and on the destination respectively.

func init() {
	register(Command{
		Path: []string{"key", "replicate"},
		Help: "Replicate a key from a source to a destination cluster",
		Role: LoggedIn,
		Setup: func(fs *flag.FlagSet) func(*Context) (any, error) {
			filter := Multi(fs, "filter", "Key reference (e.g. key-reference=0xabc) or space separated list of key attributes in the form of attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select matching key on the source cluster")
			srcID := fs.String("source-cluster-id", "", "Source cluster ID")
			dstID := fs.String("destination-cluster-id", "", "Destination cluster ID")
			return func(c *Context) (any, error) {
				if len(*filter) == 0 || *srcID == "" || *dstID == "" {
					return nil, usageErr{"the following required arguments were not provided: --filter <FILTER>... --source-cluster-id <SOURCE_CLUSTER_ID> --destination-cluster-id <DESTINATION_CLUSTER_ID>"}
				}
				f, err := ParseFilter(*filter)
				if err != nil {
					return nil, err
				}
				return replicateKey(c, f, *srcID, *dstID)
			}
		},
	})
}

// replicated is the command's data: the key as on the destination.
type replicated struct {
	Key     *keyObject `json:"key"`
	Message string     `json:"message"`
}

func replicateKey(c *Context, f Filter, srcID, dstID string) (any, error) {
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
	sc, closeSrc, err := c.clusterContext(m, src, c.role, c.pin)
	if err != nil {
		return nil, err
	}
	defer closeSrc()
	dc, closeDst, err := c.clusterContext(m, dst, dstRole, []byte(dstPIN))
	if err != nil {
		return nil, fmt.Errorf("destination cluster: %w", err)
	}
	defer closeDst()
	key, err := sc.FindKey(f)
	if errors.Is(err, ErrNoKeyMatched) && f.HasRef && c.role == "admin" {
		// An admin sees no private key; the replication itself checks
		// that the referenced key exists.
		key, err = f.Ref, nil
	}
	if err != nil {
		return nil, err
	}
	r, err := m.ReplicateKey(sc.h, key, dc.h)
	if err != nil {
		return nil, err
	}
	k, err := dc.describeKey(r.Handle)
	if err != nil {
		// An admin on the destination sees no private key: the source's
		// view of the same key, with the destination's reference.
		if k, err = sc.describeKey(key); err != nil {
			k = &keyObject{Info: keyInfo{Owners: []keyUser{}, SharedUsers: []keyUser{}, Coverage: "full"}, Attributes: AttributeObject{}}
		}
	}
	k.Reference = KeyReference(r.Handle)
	k.Info.Quorum = keyQuorumValue{Manage: r.ManageQuorum, Use: r.UseQuorum}
	return replicated{Key: k, Message: "Successfully replicated key"}, nil
}

// clusterContext is a context on one slot of c's module with a session
// logged in as role with pin, and what ends it. On the slot c itself is
// logged in on (interactive mode after login), it is c: a login is
// slot-wide, so the slot cannot log in anyone else meanwhile.
func (c *Context) clusterContext(m *token.Module, slot ck.ULong, role string, pin []byte) (*Context, func(), error) {
	s, err := m.Slot(slot)
	if err != nil {
		return nil, nil, err
	}
	if role != "admin" && role != "crypto-user" {
		return nil, nil, fmt.Errorf("invalid value '%s' for role: expected admin or crypto-user", role)
	}
	name, _, _ := strings.Cut(string(pin), ":")
	name = strings.ToLower(name)
	if c.loggedIn && c.slot == s {
		if c.user != name || c.role != role {
			return nil, nil, fmt.Errorf("cluster %d is logged in as %s (%s) in this session: log out first", slot, c.user, c.role)
		}
		return c, func() {}, nil
	}
	sub := &Context{opts: c.opts, stdout: c.stdout, stderr: c.stderr, m: m, slot: s,
		user: name, role: role, pin: pin}
	if _, err := sub.Session(); err != nil { // opens and logs in
		if sub.h != 0 {
			m.CloseSession(sub.h)
		}
		return nil, nil, err
	}
	return sub, func() { m.CloseSession(sub.h) }, nil
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
