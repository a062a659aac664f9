package store

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// QuorumToken is an outstanding quorum token (table quorum_tokens): the
// approval data approvers sign, the service it is for, the user who asked
// for it, when it was made and when it expires (Unix seconds), and the
// approvers whose signatures the token has verified so far.
type QuorumToken struct {
	ID        int64
	Service   string
	User      string
	Approval  []byte
	Created   int64
	Expires   int64
	Approvers []string
}

// Quorum is the store's side of quorum authentication (docs/quorum.md):
// registered public keys, service values, tokens, key-level values. The
// rules (who may, which values) are package token/quorum's and token's.
type Quorum interface {
	// QuorumKeys lists registered quorum public keys (PKIX DER) by user;
	// SetQuorumKey registers (or replaces) one (ErrNotFound: no such user).
	QuorumKeys() (map[string][]byte, error)
	SetQuorumKey(user string, der []byte) error

	// QuorumValues lists the services' values that were set (a missing
	// service is 1); SetQuorumValue sets one.
	QuorumValues() (map[string]int, error)
	SetQuorumValue(service string, value int) error

	// AddQuorumToken stores a new token and returns its ID. Expired tokens
	// (Expires <= now) are purged first. With unique, a live token of the
	// same user and service fails with ErrExists; with max tokens live,
	// ErrQuota.
	AddQuorumToken(t QuorumToken, now int64, unique bool, max int) (int64, error)
	// QuorumTokens lists the tokens, oldest first.
	QuorumTokens() ([]QuorumToken, error)
	// ApproveQuorumToken records a token's verified approvers.
	ApproveQuorumToken(id int64, approvers []string) error
	// ConsumeQuorumToken deletes a token that a gated operation used
	// (ErrNotFound: already used or deleted, by this process or another).
	ConsumeQuorumToken(id int64) error
	// DeleteQuorumTokens deletes the tokens of user ("" for everyone's),
	// returning how many.
	DeleteQuorumTokens(user string) (int, error)

	// KeyQuorum is a key's use and manage quorum values (0, 0 when none
	// were set); SetKeyQuorum sets them.
	KeyQuorum(objectID int64) (use, manage int, err error)
	SetKeyQuorum(objectID int64, use, manage int) error
	// SharedKeyQuorums lists the keys with quorum values shared with user:
	// their values and how many users (owner and sharees) they have.
	SharedKeyQuorums(user string) ([]KeyQuorumUsers, error)
}

// KeyQuorumUsers is a key's quorum values and its number of users.
type KeyQuorumUsers struct {
	ObjectID    int64
	Use, Manage int
	Users       int
}

func (s *sqliteStore) QuorumKeys() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.read(func(tx *txn) error {
		rows, err := tx.Query(`SELECT user, public_key FROM quorum_keys ORDER BY user`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u string
			var k []byte
			if err := rows.Scan(&u, &k); err != nil {
				return err
			}
			out[u] = k
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapDB("quorum keys", err)
	}
	return out, nil
}

func (s *sqliteStore) SetQuorumKey(user string, der []byte) error {
	user = FoldName(user)
	err := s.write(func(tx *txn) error {
		if err := userExists(tx, user); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT OR REPLACE INTO quorum_keys (user, public_key) VALUES (?, ?)`, user, blob(der))
		return err
	})
	return wrapDB("register quorum key", err)
}

func (s *sqliteStore) QuorumValues() (map[string]int, error) {
	out := map[string]int{}
	err := s.read(func(tx *txn) error {
		rows, err := tx.Query(`SELECT service, value FROM quorum_values`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var svc string
			var v int
			if err := rows.Scan(&svc, &v); err != nil {
				return err
			}
			out[svc] = v
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapDB("quorum values", err)
	}
	return out, nil
}

func (s *sqliteStore) SetQuorumValue(service string, value int) error {
	err := s.write(func(tx *txn) error {
		_, err := tx.Exec(`INSERT OR REPLACE INTO quorum_values (service, value) VALUES (?, ?)`, service, value)
		return err
	})
	return wrapDB("set quorum value", err)
}

func (s *sqliteStore) AddQuorumToken(t QuorumToken, now int64, unique bool, max int) (int64, error) {
	var id int64
	err := s.write(func(tx *txn) error {
		if _, err := tx.Exec(`DELETE FROM quorum_tokens WHERE expires <= ?`, now); err != nil {
			return err
		}
		if unique {
			var n int
			if err := tx.QueryRow(`SELECT count(*) FROM quorum_tokens WHERE user = ? AND service = ?`, t.User, t.Service).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("store: %q has a %s token: %w", t.User, t.Service, ErrExists)
			}
		}
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM quorum_tokens`).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return fmt.Errorf("store: %d quorum tokens: %w", n, ErrQuota)
		}
		r, err := tx.Exec(`INSERT INTO quorum_tokens (service, user, approval, created, expires) VALUES (?, ?, ?, ?, ?)`,
			t.Service, t.User, blob(t.Approval), t.Created, t.Expires)
		if err != nil {
			return err
		}
		id, err = r.LastInsertId()
		return err
	})
	return id, wrapDB("add quorum token", err)
}

func (s *sqliteStore) QuorumTokens() ([]QuorumToken, error) {
	out := []QuorumToken{}
	err := s.read(func(tx *txn) error {
		rows, err := tx.Query(`SELECT id, service, user, approval, created, expires, approvals FROM quorum_tokens ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t QuorumToken
			var ap []byte
			if err := rows.Scan(&t.ID, &t.Service, &t.User, &t.Approval, &t.Created, &t.Expires, &ap); err != nil {
				return err
			}
			if len(ap) > 0 {
				if err := json.Unmarshal(ap, &t.Approvers); err != nil {
					return fmt.Errorf("store: quorum token %d: approvals: %v: %w", t.ID, err, ErrDamaged)
				}
			}
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapDB("quorum tokens", err)
	}
	return out, nil
}

func (s *sqliteStore) ApproveQuorumToken(id int64, approvers []string) error {
	b, err := json.Marshal(approvers)
	if err != nil {
		return err
	}
	err = s.write(func(tx *txn) error {
		r, err := tx.Exec(`UPDATE quorum_tokens SET approvals = ? WHERE id = ?`, b, id)
		if err != nil {
			return err
		}
		return mustAffect(r, fmt.Errorf("store: quorum token %d: %w", id, ErrNotFound))
	})
	return wrapDB("approve quorum token", err)
}

func (s *sqliteStore) ConsumeQuorumToken(id int64) error {
	err := s.write(func(tx *txn) error {
		r, err := tx.Exec(`DELETE FROM quorum_tokens WHERE id = ?`, id)
		if err != nil {
			return err
		}
		return mustAffect(r, fmt.Errorf("store: quorum token %d: %w", id, ErrNotFound))
	})
	return wrapDB("consume quorum token", err)
}

func (s *sqliteStore) DeleteQuorumTokens(user string) (int, error) {
	var n int64
	err := s.write(func(tx *txn) error {
		var r sql.Result
		var err error
		if user == "" {
			r, err = tx.Exec(`DELETE FROM quorum_tokens`)
		} else {
			r, err = tx.Exec(`DELETE FROM quorum_tokens WHERE user = ?`, FoldName(user))
		}
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	return int(n), wrapDB("delete quorum tokens", err)
}

func (s *sqliteStore) KeyQuorum(objectID int64) (use, manage int, err error) {
	var q *[2]int
	err = s.read(func(tx *txn) error {
		var err error
		q, err = readKeyQuorum(tx, objectID)
		return err
	})
	if err != nil || q == nil {
		return 0, 0, wrapDB("key quorum", err)
	}
	return q[0], q[1], nil
}

// readKeyQuorum reads object id's key_quorum row (use, manage); nil when
// it has none.
func readKeyQuorum(tx *txn, id int64) (*[2]int, error) {
	var q [2]int
	err := tx.QueryRow(`SELECT use_value, manage_value FROM key_quorum WHERE object_id = ?`, id).Scan(&q[0], &q[1])
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &q, nil
}

func (s *sqliteStore) SetKeyQuorum(objectID int64, use, manage int) error {
	err := s.write(func(tx *txn) error {
		if err := objectAndUserExist(tx, objectID, ""); err != nil {
			return err
		}
		if use <= 1 && manage <= 1 {
			_, err := tx.Exec(`DELETE FROM key_quorum WHERE object_id = ?`, objectID)
			return err
		}
		_, err := tx.Exec(`INSERT OR REPLACE INTO key_quorum (object_id, use_value, manage_value) VALUES (?, ?, ?)`,
			objectID, use, manage)
		return err
	})
	return wrapDB("set key quorum", err)
}

func (s *sqliteStore) SharedKeyQuorums(user string) ([]KeyQuorumUsers, error) {
	out := []KeyQuorumUsers{}
	err := s.read(func(tx *txn) error {
		rows, err := tx.Query(`SELECT k.object_id, k.use_value, k.manage_value,
	1 + (SELECT count(*) FROM shares a WHERE a.object_id = k.object_id)
FROM key_quorum k JOIN shares s ON s.object_id = k.object_id WHERE s.user = ? ORDER BY k.object_id`, FoldName(user))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k KeyQuorumUsers
			if err := rows.Scan(&k.ObjectID, &k.Use, &k.Manage, &k.Users); err != nil {
				return err
			}
			out = append(out, k)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapDB("shared key quorums", err)
	}
	return out, nil
}
