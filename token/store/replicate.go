package store

import "fmt"

// CreateReplica stores a key replicated from another token (CloudHSM's
// key replicate; token/replicate.go) in one transaction: o as
// CreateObjects stores it, its Keys holding the data key wrapped for the
// owner and for each sharee, and a share for each of sharees. A user
// missing meanwhile fails the whole (ErrNotFound); so does a key whose
// unique ID the token holds already (ErrExists).
func (s *sqliteStore) CreateReplica(o ObjectRecord, sharees []string, quotas ...Quota) (ObjectRecord, Commit, error) {
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
		for _, u := range sharees {
			if err := objectAndUserExist(tx, id, FoldName(u)); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO shares (object_id, user) VALUES (?, ?)`, id, FoldName(u)); err != nil {
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
