package token

import (
	"errors"
	"fmt"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// Per-user keys (docs/store.md, "Secret material at rest"). A crypto
// user's password opens the user's secret (an HPKE private key), which
// opens the data keys of the objects the user owns or is shared; a crypto
// officer's password opens the escrow's secret, which opens every crypto
// user's secret (so that an officer can reset a password and the user
// keeps the keys).

// objKey is an object's data key, opened, and the Sealer made of it.
type objKey struct {
	version int64
	dk      []byte
	sealer  *store.Sealer
}

func newObjKey(dk []byte, version int64) (*objKey, error) {
	sl, err := store.NewSealer(dk)
	if err != nil {
		return nil, err
	}
	return &objKey{version: version, dk: dk, sealer: sl}, nil
}

// unlockLocked is the unwrap step of authenticate: it opens the user's
// secret with the password KEK. A user of a format-1 token holds the token
// key instead; the first such login upgrades the token to per-user keys,
// and each user's own first login collects the new secret. Only a wrong
// password is store.ErrWrongPassword.
func (s *Slot) unlockLocked(kek []byte, u *store.UserRecord) ([]byte, error) {
	if u.KeyVersion != store.KeyV1 {
		return store.UnwrapUserSecret(kek, u.WrappedKey, u.Name)
	}
	tk, err := store.UnwrapTokenKey(kek, u.WrappedKey, u.Name)
	if err != nil {
		return nil, err
	}
	defer clear(tk)
	sec, err := s.upgradeUserLocked(kek, tk, u.Name)
	if err != nil {
		return nil, fmt.Errorf("token: upgrade keys of %q: %v: %w", u.Name, err, ck.CKR_DEVICE_ERROR)
	}
	return sec, nil
}

// upgradeUserLocked moves one format-1 user to its own secret: the token
// is upgraded first if nobody has done it yet; then the secret the upgrade
// sealed for the user under the token key is wrapped under the user's
// password KEK, and the user's copy of the token key is dropped.
func (s *Slot) upgradeUserLocked(kek, tk []byte, name string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		t, err := s.st.Token()
		if err != nil {
			return nil, err
		}
		if len(t.EscrowPublic) > 0 {
			break
		}
		err = s.upgradeTokenLocked(tk)
		if err == nil || errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue // upgraded, by us or by another process; or retry
		}
		return nil, err
	}
	u, err := s.st.User(name)
	if err != nil {
		return nil, err
	}
	if u.KeyVersion != store.KeyV1 {
		// Another process logged this user in meanwhile.
		return store.UnwrapUserSecret(kek, u.WrappedKey, name)
	}
	sec, err := store.OpenLegacy(tk, u.Legacy, name)
	if err != nil {
		return nil, err
	}
	w, err := store.WrapUserSecret(kek, sec, name)
	if err != nil {
		clear(sec)
		return nil, err
	}
	u.WrappedKey, u.KeyVersion, u.Legacy = w, store.KeyV2, nil
	if err := s.st.UpdateUser(*u); err != nil {
		clear(sec)
		return nil, err
	}
	s.m.log.Info("gohsm: user moved to per-user keys", "slot", s.cfg.ID, "user", name)
	return sec, nil
}

// upgradeTokenLocked makes the format-2 keys of a format-1 token, given its
// token key: the escrow, every user's secret (sealed under the token key
// until the user logs in, and a crypto user's also to the escrow), and a
// data key per object with sealed values, wrapped for the owner and the
// sharees. One store transaction; store.ErrConflict when another process
// upgraded or an object changed meanwhile.
func (s *Slot) upgradeTokenLocked(tk []byte) error {
	escrowSec, escrowPub, err := store.NewUserSecret()
	if err != nil {
		return err
	}
	defer clear(escrowSec)
	users, err := s.st.Users()
	if err != nil {
		return err
	}
	rings := map[string]*store.Keyring{}
	pubs := map[string][]byte{}
	var recs []store.UserRecord
	for _, u := range users {
		if u.KeyVersion != store.KeyV1 {
			continue
		}
		sec := escrowSec
		if u.Role == store.RoleCU {
			if sec, u.PublicKey, err = store.NewUserSecret(); err != nil {
				return err
			}
			if u.Escrow, err = store.SealEscrow(escrowPub, sec, u.Name); err != nil {
				return err
			}
			if rings[u.Name], err = store.NewKeyring(sec); err != nil {
				return err
			}
			pubs[u.Name] = u.PublicKey
		}
		u.Legacy, err = store.SealLegacy(tk, sec, u.Name)
		if u.Role == store.RoleCU {
			clear(sec) // the escrow's is cleared on return
		}
		if err != nil {
			return err
		}
		recs = append(recs, u)
	}
	// Every object: the public ones and each crypto user's view.
	seen := map[int64]bool{}
	var ids []int64
	for _, viewer := range append([]string{""}, keysOf(rings)...) {
		found, err := s.st.Find(store.Query{Viewer: viewer})
		if err != nil {
			return err
		}
		for _, id := range found {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	var objs []store.ObjectRecord
	for _, id := range ids {
		rec, err := s.st.Object(id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if len(rec.Sealed) == 0 {
			continue
		}
		owner := rings[rec.Owner]
		if owner == nil {
			// Only a crypto user's login seals; such an object has no one
			// to hold its key and stays sealed under the old token key.
			s.m.log.Warn("gohsm: sealed object without a crypto user owner left as is", "slot", s.cfg.ID, "object", id)
			continue
		}
		dk := store.NewDataKey()
		k, err := newObjKey(dk, 0)
		if err != nil {
			return err
		}
		if len(rec.Keys) > 0 {
			// Upgraded by another process since we read the token.
			return fmt.Errorf("token: object %d has keys: %w", id, store.ErrConflict)
		}
		bad := false
		for t, v := range rec.Sealed {
			p, err := store.OpenAttr(tk, rec.UniqueID, t, v)
			if err != nil {
				bad = true
				break
			}
			rec.Sealed[t] = k.sealer.Seal(rec.UniqueID, t, p)
			clear(p)
		}
		if bad {
			// Damaged: left as stored rather than failing every login.
			s.m.log.Warn("gohsm: object does not open with the token key; left as is", "slot", s.cfg.ID, "object", id)
			continue
		}
		rec.Keys = map[string][]byte{rec.Owner: owner.WrapOwnDataKey(dk, rec.UniqueID, rec.Owner)}
		sharees, err := s.st.SharedWith(id)
		if err != nil {
			return err
		}
		for _, sh := range sharees {
			if pubs[sh] == nil {
				continue
			}
			if rec.Keys[sh], err = store.SealDataKey(pubs[sh], dk, rec.UniqueID, sh); err != nil {
				return err
			}
		}
		clear(dk)
		objs = append(objs, *rec)
	}
	if err := s.st.UpgradeKeys(escrowPub, recs, objs); err != nil {
		return err
	}
	s.m.log.Info("gohsm: token upgraded to per-user keys", "slot", s.cfg.ID, "users", len(recs), "objects", len(objs))
	return nil
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// userSecretForLocked returns the secret a user's new password will wrap,
// with the user's public key and escrow copy: the logged-in user's own;
// for an officer, the escrow's (which the logged-in officer holds); for a
// crypto user set by an officer, the one the escrow opens, or a new one
// for a new user. The caller clears the secret.
func (s *Slot) userSecretForLocked(name string, role store.Role, old *store.UserRecord) (sec, pub, escrow []byte, err error) {
	l := s.login
	switch {
	case l == nil:
		return nil, nil, nil, fmt.Errorf("token: set password: %w", ck.CKR_USER_NOT_LOGGED_IN)
	case role == store.RoleCO:
		if l.role != store.RoleCO {
			return nil, nil, nil, fmt.Errorf("token: only an officer sets an officer's password: %w", ck.CKR_USER_NOT_LOGGED_IN)
		}
		return clone(l.secret), nil, nil, nil
	case l.user == name && l.role == role:
		return clone(l.secret), old.PublicKey, old.Escrow, nil
	case l.role != store.RoleCO:
		return nil, nil, nil, fmt.Errorf("token: a crypto user may set only its own password: %w", ck.CKR_USER_NOT_LOGGED_IN)
	case old != nil:
		sec, err := l.keys.OpenEscrow(old.Escrow, name)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("token: reset %q: %v: %w", name, err, ck.CKR_DEVICE_ERROR)
		}
		return sec, old.PublicKey, old.Escrow, nil
	}
	t, err := s.st.Token()
	if err != nil {
		return nil, nil, nil, storeErr(err)
	}
	if len(t.EscrowPublic) == 0 {
		return nil, nil, nil, fmt.Errorf("token: create %q: the token has no escrow key: %w", name, ck.CKR_DEVICE_ERROR)
	}
	sec, pub, err = store.NewUserSecret()
	if err != nil {
		return nil, nil, nil, err
	}
	if escrow, err = store.SealEscrow(t.EscrowPublic, sec, name); err != nil {
		clear(sec)
		return nil, nil, nil, fmt.Errorf("token: create %q: %v: %w", name, err, ck.CKR_DEVICE_ERROR)
	}
	return sec, pub, escrow, nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// objKeyLocked opens the data key of a stored object for the logged-in
// user, or returns nil when the login holds no copy (logged out, an
// officer, a user the object is not shared with). Opened keys are kept
// per object version for the login.
func (s *Slot) objKeyLocked(rec *store.ObjectRecord) (*objKey, error) {
	l := s.login
	if l == nil || l.keys == nil {
		return nil, nil
	}
	w, ok := rec.Keys[l.user]
	if !ok {
		return nil, nil
	}
	if k, ok := l.dataKeys[rec.ID]; ok && k.version == rec.Version {
		return k, nil
	}
	dk, err := l.keys.OpenDataKey(w, rec.UniqueID, l.user, rec.Owner == l.user)
	if err != nil {
		return nil, fmt.Errorf("token: object %d: %v: %w", rec.ID, err, ck.CKR_DEVICE_ERROR)
	}
	k, err := newObjKey(dk, rec.Version)
	if err != nil {
		return nil, err
	}
	l.dataKeys[rec.ID] = k
	return k, nil
}
