package store

import "fmt"

// Replica is a key as key replicate copies it from one token to another
// (token/replicate.go): the object, with its key quorum values
// (Object.Quorum), and the users it is shared with.
type Replica struct {
	Object  ObjectRecord
	Sharees []string
}

// ReplicaOf reads object id, its key quorum values and its shares in one
// snapshot.
func (s *sqliteStore) ReplicaOf(id int64) (Replica, error) {
	r := Replica{Object: ObjectRecord{ID: id}, Sharees: []string{}}
	err := s.read(func(tx *txn) error {
		if err := readObject(tx, &r.Object); err != nil {
			return err
		}
		var err error
		r.Sharees, err = readSharees(tx, id)
		return err
	})
	if err != nil {
		return Replica{}, wrapDB("read replica", err)
	}
	return r, nil
}

// CreateReplica stores a key replicated from another token in one
// transaction: r.Object as CreateObjects stores it, its Keys holding the
// data key wrapped for the owner and for each sharee; a share for each of
// r.Sharees; and r.Object.Quorum's key_quorum row. A user missing meanwhile fails
// the whole (ErrNotFound); so does a key whose unique ID the token holds
// already (ErrExists).
func (s *sqliteStore) CreateReplica(r Replica, quotas ...Quota) (ObjectRecord, Commit, error) {
	o := r.Object
	o.ID, o.Version = 0, 0
	o.Owner = FoldName(o.Owner)
	if o.UniqueID == "" {
		return ObjectRecord{}, Commit{}, fmt.Errorf("store: replicate: empty unique id")
	}
	if err := checkAttrs(o); err != nil {
		return ObjectRecord{}, Commit{}, err
	}
	c, err := s.commit(func(tx *txn) error {
		if err := checkQuotasTx(tx, []ObjectRecord{o}, quotas); err != nil {
			return err
		}
		id, err := createObjectTx(tx, o)
		if err != nil {
			return err
		}
		o.ID = id
		for _, u := range r.Sharees {
			if err := objectAndUserExist(tx, id, FoldName(u)); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO shares (object_id, user) VALUES (?, ?)`, id, FoldName(u)); err != nil {
				return err
			}
		}
		if q := r.Object.Quorum; q != nil {
			if _, err := tx.Exec(`INSERT INTO key_quorum (object_id, use_value, manage_value) VALUES (?, ?, ?)`,
				id, q[0], q[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return ObjectRecord{}, Commit{}, wrapDB("replicate", err)
	}
	o.Version = 1
	return o, c, nil
}
