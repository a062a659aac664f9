package token

import (
	"errors"
	"fmt"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
	"gohsm/token/audit"
	"gohsm/token/cluster"
	"gohsm/token/store"
)

// Key replication between two tokens of one module: CloudHSM CLI's key
// replicate, which copies a key from a cluster to a clone of it
// (https://docs.aws.amazon.com/cloudhsm/latest/userguide/cloudhsm_cli-key-replicate.html;
// docs/backup.md). The rules, as that page gives them:
//
//   - admins and crypto users may run it; a crypto user must own the key;
//   - the caller is logged in on both tokens;
//   - the key's owner, and every user the key is shared with, must exist
//     on the destination, else nothing is copied.
//
// The copy keeps the key's attributes (CKA_UNIQUE_ID included: it is the
// same key), owner, shares and key quorum values; its handle on the destination is the
// destination's own. Its secret values are copied sealed as they are (the
// seal binds them to the unique ID, not to the token); only the object's
// data key is wrapped anew, for the destination's owner and sharees.

// ErrReplicaUser is why a replication fails when a user of the key is
// missing on the destination. AWS does not publish the error text; the
// words follow its requirement ("The owner of the key must exist on the
// destination cluster").
var ErrReplicaUser = errors.New("must exist on the destination cluster")

// replica is what the source side hands to the destination side.
type replica struct {
	store.Replica
	dk []byte // the object's data key; nil when nothing is sealed
	// extracted is the source's audit record, appended once the copy is
	// stored (CN_EXTRACT_MASKED_OBJECT_USER, as a CloudHSM HSM logs a key
	// it sends to another).
	extracted store.AuditEvent
}

// Replicated is a key key replicate stored: its handle on the destination
// and its key quorum values (0: none).
type Replicated struct {
	Handle                  ck.ULong
	UseQuorum, ManageQuorum int
}

// ReplicateKey copies token key key, as session src sees it, with its
// shares and key quorum values, to the token of session dst's slot.
func (m *Module) ReplicateKey(src, key, dst ck.ULong) (Replicated, error) {
	ss, err := m.session(src)
	if err != nil {
		return Replicated{}, err
	}
	ds, err := m.session(dst)
	if err != nil {
		return Replicated{}, err
	}
	if ss.slot == ds.slot || ss.slot.cfg.Dir == ds.slot.cfg.Dir {
		return Replicated{}, fmt.Errorf("token: replicate: source and destination are the same token: %w", ck.CKR_ARGUMENTS_BAD)
	}
	// One slot locked at a time: two replications in opposite directions
	// must not deadlock.
	r, err := ss.slot.replicaSource(key)
	if err != nil {
		return Replicated{}, err
	}
	defer clear(r.dk)
	h, err := ds.slot.insertReplica(r)
	if err != nil {
		return Replicated{}, err
	}
	out := Replicated{Handle: h}
	if q := r.Object.Quorum; q != nil {
		out.UseQuorum, out.ManageQuorum = q[0], q[1]
	}
	if err := ss.slot.st.Audit(r.extracted); err != nil {
		return out, storeErr(err)
	}
	return out, nil
}

// replicaSource reads key and opens its data key with the slot's login:
// the owner's own, or for an officer the owner's secret through the
// escrow.
func (s *Slot) replicaSource(key ck.ULong) (*replica, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.login
	if l == nil {
		return nil, fmt.Errorf("token: replicate: not logged in on the source: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	if key >= sessionObjectBase {
		return nil, fmt.Errorf("token: replicate: key %d is a session object; only token keys replicate: %w", key, ck.CKR_KEY_HANDLE_INVALID)
	}
	if err := s.anyHSM(); err != nil {
		return nil, err // the key is extracted from an HSM of the source
	}
	sr, err := s.st.ReplicaOf(int64(key))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("token: replicate: key %d: %w", key, ck.CKR_KEY_HANDLE_INVALID)
	} else if err != nil {
		return nil, storeErr(err)
	}
	rec := &sr.Object
	class, _ := attrs.Template(rec.Attrs).ULong(ck.CKA_CLASS)
	switch ck.ObjectClass(class) {
	case ck.CKO_SECRET_KEY, ck.CKO_PRIVATE_KEY, ck.CKO_PUBLIC_KEY:
	default:
		return nil, fmt.Errorf("token: replicate: object %d is not a key: %w", key, ck.CKR_KEY_HANDLE_INVALID)
	}
	if l.role == store.RoleCU && rec.Owner != l.user {
		// "Crypto Users must own the key to use this command."
		return nil, fmt.Errorf("token: replicate: key %d belongs to %q; crypto users must own the key: %w", key, rec.Owner, ck.CKR_ACTION_PROHIBITED)
	}
	r := &replica{Replica: sr, extracted: store.AuditEvent{Stream: streamOf(s.execHSM()),
		Record: encodeEvent(s, s.replicaEventLocked(audit.CN_EXTRACT_MASKED_OBJECT_USER, uint64(key), *rec))}}
	if len(rec.Sealed) == 0 {
		return r, nil
	}
	kr, done, err := s.ownerKeyringLocked(rec.Owner, "source")
	if err != nil {
		return nil, err
	}
	defer done()
	w, ok := rec.Keys[rec.Owner]
	if !ok {
		return nil, fmt.Errorf("token: replicate: key %d has no data key for its owner (a format-1 token not yet upgraded: log in as %q once): %w", key, rec.Owner, ck.CKR_DEVICE_ERROR)
	}
	if r.dk, err = kr.OpenDataKey(w, rec.UniqueID, rec.Owner, true); err != nil {
		return nil, fmt.Errorf("token: replicate: key %d: %v: %w", key, err, ck.CKR_DEVICE_ERROR)
	}
	return r, nil
}

// ownerKeyringLocked is the keyring of crypto user owner as the slot's
// login reaches it: the login's own, or an officer's through the escrow.
// done forgets what was opened for it.
func (s *Slot) ownerKeyringLocked(owner, side string) (*store.Keyring, func(), error) {
	l := s.login
	switch {
	case l.role == store.RoleCU && l.user == owner:
		return l.keys, func() {}, nil
	case l.role == store.RoleCO:
		u, err := s.st.User(owner)
		if err != nil {
			return nil, nil, storeErr(err)
		}
		sec, err := l.keys.OpenEscrow(u.Escrow, owner)
		if err != nil {
			return nil, nil, fmt.Errorf("token: replicate: the %s's escrow of %q: %v: %w", side, owner, err, ck.CKR_DEVICE_ERROR)
		}
		kr, err := store.NewKeyring(sec)
		clear(sec)
		if err != nil {
			return nil, nil, fmt.Errorf("token: replicate: %v: %w", err, ck.CKR_DEVICE_ERROR)
		}
		return kr, func() {}, nil
	}
	return nil, nil, fmt.Errorf("token: replicate: log in on the %s as the key's owner %q or as an admin: %w", side, owner, ck.CKR_USER_NOT_LOGGED_IN)
}

// insertReplica stores r on this slot's token: the owner and every sharee
// must be crypto users here, the login the owner or an officer.
func (s *Slot) insertReplica(r *replica) (ck.ULong, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.login
	if l == nil {
		return 0, fmt.Errorf("token: replicate: not logged in on the destination: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	rec := r.Object
	// The destination's HSMs must support the key's type: an ML-DSA key
	// does not go to an hsm1.medium cluster (profile.CLICheckKey; key
	// replicate is a CloudHSM CLI command, so the CLI's key types count).
	t := attrs.FromTemplate(attrs.Template(rec.Attrs)) // read here, never written
	if kt, ok := t.ULong(ck.CKA_KEY_TYPE); ok {
		if err := s.prof.CLICheckKey(ck.KeyType(kt), keySize(ck.KeyType(kt), &t)); err != nil {
			return 0, fmt.Errorf("token: replicate: the destination cannot hold the key: %w", err)
		}
	}
	users := append([]string{rec.Owner}, r.Sharees...)
	if rec.Owner == "" {
		users = users[1:]
	}
	found := map[string]*store.UserRecord{}
	for i, name := range users {
		u, err := s.st.User(name)
		if errors.Is(err, store.ErrNotFound) || err == nil && u.Role != store.RoleCU {
			what := "The owner of the key"
			if i > 0 || rec.Owner == "" {
				what = "A user the key is shared with"
			}
			return 0, fmt.Errorf("token: replicate: %s, %q, %w: %w", what, name, ErrReplicaUser, ck.CKR_ARGUMENTS_BAD)
		} else if err != nil {
			return 0, storeErr(err)
		}
		found[name] = u
	}
	out := store.ObjectRecord{UniqueID: rec.UniqueID, Owner: rec.Owner, Private: rec.Private,
		Attrs: rec.Attrs, Sealed: rec.Sealed, Keys: map[string][]byte{}, Quorum: rec.Quorum}
	if r.dk != nil {
		kr, done, err := s.ownerKeyringLocked(rec.Owner, "destination")
		if err != nil {
			return 0, err
		}
		defer done()
		out.Keys[rec.Owner] = kr.WrapOwnDataKey(r.dk, rec.UniqueID, rec.Owner)
		for _, sh := range r.Sharees {
			w, err := store.SealDataKey(found[sh].PublicKey, r.dk, rec.UniqueID, sh)
			if err != nil {
				return 0, fmt.Errorf("token: replicate: wrap for %q: %v: %w", sh, err, ck.CKR_DEVICE_ERROR)
			}
			out.Keys[sh] = w
		}
	}
	if err := s.refreshLocked(); err != nil { // current before the write, as addObjectsLocked
		return 0, err
	}
	// The replica's handle is known once stored: the record is made in
	// the transaction from the ID the store gives it.
	e := s.replicaEventLocked(audit.CN_INSERT_MASKED_OBJECT_USER, 0, rec)
	fill := func(created []int64) ([]byte, error) {
		d := e
		if len(created) == 1 {
			d.Key = uint64(created[0])
		}
		return encodeEvent(s, d), nil
	}
	// Inserted into every reachable HSM of the destination's cluster
	// (the token's one stream without a cluster).
	evs := []store.AuditEvent{{Fill: fill}}
	if err := s.anyHSM(); err != nil {
		return 0, err // and inserted into the destination's
	}
	if s.cl != nil {
		evs = evs[:0]
		for _, h := range s.cl.Reachable() {
			evs = append(evs, store.AuditEvent{Stream: cluster.StreamName(h), Fill: fill})
		}
		if err := s.cl.CanCreateKey(); err != nil {
			return 0, err
		}
	}
	got, c, err := s.st.Audited(evs...).CreateReplica(store.Replica{Object: out, Sharees: r.Sharees}, s.quotas...)
	switch {
	case errors.Is(err, store.ErrExists):
		return 0, fmt.Errorf("token: replicate: the destination holds this key already (unique ID %s): %w", rec.UniqueID, ck.CKR_ARGUMENTS_BAD)
	case err != nil:
		return 0, storeErr(err) // a quota's error keeps its CKR
	}
	s.wroteLocked(c)
	if s.cl != nil {
		// Made on the first HSM, as the cluster's other new keys it
		// reaches the others after replication_delay.
		s.cl.KeyCreated(got.ID, s.execHSM())
	}
	return ck.ULong(got.ID), nil
}

// replicaEventLocked records a replicated key leaving the source or
// arriving on the destination (key handle key on this slot), as
// CloudHSM's HSMs log keys they exchange (CN_EXTRACT_MASKED_OBJECT_USER,
// CN_INSERT_MASKED_OBJECT_USER; UG-2023:interpreting-audit-logs.md),
// completed as every event of the slot (audit.go; s.mu held).
func (s *Slot) replicaEventLocked(op audit.Opcode, key uint64, rec store.ObjectRecord) audit.Event {
	e := keyEvent(op, key, 0, audit.RespSuccess)
	e.Detail = fmt.Sprintf("key replicate: unique id %s, owner %q", rec.UniqueID, rec.Owner)
	s.completeEvent(nil, &e)
	return e
}
