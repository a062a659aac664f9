//go:build !nopostgres

package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"gohsm/token/store"
)

// Quorum authentication's records on PostgreSQL (token/store/quorum.go
// says what each is). Counts and checks that must hold across hosts (one
// live token per user and service, the token quota, a token consumed
// once) run inside the write transaction, whose generation bump makes
// writers take turns, never from a cache.

func (s *pgStore) QuorumKeys() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.stmt(func(ctx context.Context, q querier) error {
		rows, err := q.Query(ctx, `SELECT username, public_key FROM quorum_keys ORDER BY username`)
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
		return nil, wrapErr("quorum keys", err)
	}
	return out, nil
}

// SetQuorumKey registers (or replaces) a user's key in one statement that
// also checks the user exists.
func (s *pgStore) SetQuorumKey(user string, der []byte) error {
	user = store.FoldName(user)
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO quorum_keys (username, public_key)
			SELECT name, $2 FROM users WHERE name = $1
			ON CONFLICT (username) DO UPDATE SET public_key = EXCLUDED.public_key`, user, nonNil(der))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("store: user %q: %w", user, store.ErrNotFound)
		}
		return nil
	})
	return wrapErr("register quorum key", err)
}

func (s *pgStore) QuorumValues() (map[string]int, error) {
	out := map[string]int{}
	err := s.stmt(func(ctx context.Context, q querier) error {
		rows, err := q.Query(ctx, `SELECT service, value FROM quorum_values`)
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
		return nil, wrapErr("quorum values", err)
	}
	return out, nil
}

func (s *pgStore) SetQuorumValue(service string, value int) error {
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO quorum_values (service, value) VALUES ($1, $2)
			ON CONFLICT (service) DO UPDATE SET value = EXCLUDED.value`, service, value)
		return err
	})
	return wrapErr("set quorum value", err)
}

// AddQuorumToken purges expired tokens, checks uniqueness and the quota
// and inserts, in one transaction and two round trips.
func (s *pgStore) AddQuorumToken(t store.QuorumToken, now int64, unique bool, max int) (int64, error) {
	var id int64
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		var same, all int
		err := tx.QueryRow(ctx, `WITH gone AS (DELETE FROM quorum_tokens WHERE expires <= $1 RETURNING id)
			SELECT count(*) FILTER (WHERE username = $2 AND service = $3), count(*)
			FROM quorum_tokens WHERE id NOT IN (SELECT id FROM gone)`, now, t.User, t.Service).Scan(&same, &all)
		if err != nil {
			return err
		}
		if unique && same > 0 {
			return fmt.Errorf("store: %q has a %s token: %w", t.User, t.Service, store.ErrExists)
		}
		if all >= max {
			return fmt.Errorf("store: %d quorum tokens: %w", all, store.ErrQuota)
		}
		return tx.QueryRow(ctx, `INSERT INTO quorum_tokens (service, username, approval, created, expires)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			t.Service, t.User, nonNil(t.Approval), t.Created, t.Expires).Scan(&id)
	})
	return id, wrapErr("add quorum token", err)
}

func (s *pgStore) QuorumTokens() ([]store.QuorumToken, error) {
	out := []store.QuorumToken{}
	err := s.stmt(func(ctx context.Context, q querier) error {
		var err error
		out, err = readQuorumTokens(ctx, q)
		return err
	})
	if err != nil {
		return nil, wrapErr("quorum tokens", err)
	}
	return out, nil
}

func readQuorumTokens(ctx context.Context, q querier) ([]store.QuorumToken, error) {
	out := []store.QuorumToken{}
	rows, err := q.Query(ctx, `SELECT id, service, username, approval, created, expires, approvals FROM quorum_tokens ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var t store.QuorumToken
		var ap []byte
		if err := rows.Scan(&t.ID, &t.Service, &t.User, &t.Approval, &t.Created, &t.Expires, &ap); err != nil {
			return nil, err
		}
		if t.Approvers, err = store.ParseApprovers(t.ID, ap); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *pgStore) ApproveQuorumToken(id int64, approvers []string) error {
	b, err := json.Marshal(approvers) // as SQLite stores them
	if err != nil {
		return err
	}
	err = s.write(func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE quorum_tokens SET approvals = $1 WHERE id = $2`, b, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("store: quorum token %d: %w", id, store.ErrNotFound)
		}
		return nil
	})
	return wrapErr("approve quorum token", err)
}

// ConsumeQuorumToken deletes a token once: of two hosts consuming it at
// once, the second finds no row (ErrNotFound).
func (s *pgStore) ConsumeQuorumToken(id int64) error {
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM quorum_tokens WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("store: quorum token %d: %w", id, store.ErrNotFound)
		}
		return nil
	})
	return wrapErr("consume quorum token", err)
}

func (s *pgStore) DeleteQuorumTokens(user string) (int, error) {
	var n int64
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM quorum_tokens WHERE $1 = '' OR username = $1`, store.FoldName(user))
		n = tag.RowsAffected()
		return err
	})
	return int(n), wrapErr("delete quorum tokens", err)
}

func (s *pgStore) SetKeyQuorum(objectID int64, use, manage int) error {
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM objects WHERE id = $1)`, objectID).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("store: object %d: %w", objectID, store.ErrNotFound)
		}
		if use <= 1 && manage <= 1 {
			_, err := tx.Exec(ctx, `DELETE FROM key_quorum WHERE object_id = $1`, objectID)
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO key_quorum (object_id, use_value, manage_value) VALUES ($1, $2, $3)
			ON CONFLICT (object_id) DO UPDATE SET use_value = EXCLUDED.use_value, manage_value = EXCLUDED.manage_value`,
			objectID, use, manage)
		return err
	})
	return wrapErr("set key quorum", err)
}

func (s *pgStore) SharedKeyQuorums(user string) ([]store.KeyQuorumUsers, error) {
	out := []store.KeyQuorumUsers{}
	err := s.stmt(func(ctx context.Context, q querier) error {
		rows, err := q.Query(ctx, `SELECT k.object_id, k.use_value, k.manage_value,
	1 + (SELECT count(*) FROM shares a WHERE a.object_id = k.object_id)
FROM key_quorum k JOIN shares s ON s.object_id = k.object_id WHERE s.username = $1 ORDER BY k.object_id`, store.FoldName(user))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k store.KeyQuorumUsers
			if err := rows.Scan(&k.ObjectID, &k.Use, &k.Manage, &k.Users); err != nil {
				return err
			}
			out = append(out, k)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapErr("shared key quorums", err)
	}
	return out, nil
}
