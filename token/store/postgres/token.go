//go:build !nopostgres

package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"gohsm/token/store"
)

// The token record and its users: token/store/sqlite.go's semantics, each
// call one transaction (or one statement).

// Token reads the token record. Without one, a store whose users and
// objects tables are empty is not initialised; one that holds users or
// objects has lost its record and is damaged. One statement, so one
// snapshot: a token another host initialises meanwhile is never taken for
// a damaged one.
func (s *pgStore) Token() (*store.TokenRecord, error) {
	var label, serial *string
	var created *int64
	var escrow []byte
	var used bool
	err := s.stmt(func(ctx context.Context, q querier) error {
		return q.QueryRow(ctx, `SELECT t.label, t.serial, t.created, t.escrow_key,
			EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM objects)
			FROM (SELECT 1) one LEFT JOIN token t ON t.id = 1`).Scan(&label, &serial, &created, &escrow, &used)
	})
	switch {
	case err != nil:
		return nil, wrapErr("read token", err)
	case label == nil && used:
		return nil, fmt.Errorf("store: token record missing, users or objects present: %w", store.ErrDamaged)
	case label == nil:
		return nil, store.ErrNotInitialized
	case len(*label) > 32 || len(*serial) > 32 || len(escrow) > 1024:
		return nil, fmt.Errorf("store: token record: label %d bytes, serial %d bytes, escrow key %d bytes: %w",
			len(*label), len(*serial), len(escrow), store.ErrDamaged)
	}
	return &store.TokenRecord{Label: *label, SerialNumber: *serial, Created: *created, EscrowPublic: escrow}, nil
}

// CreateToken initialises an empty store, checking in the same
// transaction that no token record, user or object is there (ErrExists).
func (s *pgStore) CreateToken(t store.TokenRecord, co store.UserRecord) error {
	if co.Role != store.RoleCO {
		return fmt.Errorf("store: create token: first user %q must be a crypto officer", co.Name)
	}
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		var used bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM token) OR EXISTS (SELECT 1 FROM users)
			OR EXISTS (SELECT 1 FROM objects)`).Scan(&used); err != nil {
			return err
		}
		if used {
			return fmt.Errorf("store: create token: not empty: %w", store.ErrExists)
		}
		return insertToken(ctx, tx, t, co)
	})
	return wrapErr("create token", err)
}

// InitToken removes every user and object (their shares, keys, logins and
// quorum keys go with them) and writes the token record and its first
// officer, in one transaction. Object IDs keep growing: handles are never
// recycled.
func (s *pgStore) InitToken(t store.TokenRecord, co store.UserRecord) error {
	if co.Role != store.RoleCO {
		return fmt.Errorf("store: init token: first user %q must be a crypto officer", co.Name)
	}
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM objects`)
		b.Queue(`DELETE FROM users`)
		b.Queue(`DELETE FROM token`)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		return insertToken(ctx, tx, t, co)
	})
	return wrapErr("init token", err)
}

// insertToken writes the token record, with its escrow key, and its first
// officer into an empty or emptied token.
func insertToken(ctx context.Context, tx pgx.Tx, t store.TokenRecord, co store.UserRecord) error {
	if _, err := tx.Exec(ctx, `INSERT INTO token (id, label, serial, created, escrow_key) VALUES (1, $1, $2, $3, $4)`,
		t.Label, t.SerialNumber, t.Created, nullBlob(t.EscrowPublic)); err != nil {
		return err
	}
	return insertUser(ctx, tx, co)
}

func (s *pgStore) SetTokenLabel(label string) error {
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE token SET label = $1 WHERE id = 1`, label)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotInitialized
		}
		return nil
	})
	return wrapErr("set token label", err)
}

// nullBlob binds an empty key as NULL (the token's escrow_key before the
// upgrade to per-user keys).
func nullBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// blob binds nil as an empty value: the columns are NOT NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// --- users ---

const userCols = `name, role, kdf_time, kdf_memory, kdf_threads, salt, wrapped_key, failed_logins, locked,
	key_version, public_key, escrow, legacy`

func scanUser(r pgx.Row) (store.UserRecord, error) {
	var u store.UserRecord
	var role, kv int
	var kt, km, kth int64
	err := r.Scan(&u.Name, &role, &kt, &km, &kth,
		&u.Salt, &u.WrappedKey, &u.FailedLogins, &u.Locked,
		&kv, &u.PublicKey, &u.Escrow, &u.Legacy)
	if err != nil {
		return u, err
	}
	if kt < 0 || kt > 1<<32-1 || km < 0 || km > 1<<32-1 || kth < 0 || kth > 255 {
		return u, fmt.Errorf("store: user %q: KDF parameters %d/%d/%d out of range: %w", u.Name, kt, km, kth, store.ErrDamaged)
	}
	u.Role, u.KeyVersion = store.Role(role), kv
	// Empty values read as nil, as from SQLite.
	for _, b := range []*[]byte{&u.Salt, &u.WrappedKey, &u.PublicKey, &u.Escrow, &u.Legacy} {
		if len(*b) == 0 {
			*b = nil
		}
	}
	u.KDF = store.KDFParams{Time: uint32(kt), Memory: uint32(km), Threads: uint8(kth)}
	return u, nil
}

func keyVersion(u store.UserRecord) int {
	if u.KeyVersion == 0 {
		return store.KeyV2
	}
	return u.KeyVersion
}

func insertUser(ctx context.Context, tx pgx.Tx, u store.UserRecord) error {
	u.Name = store.FoldName(u.Name)
	if u.Name == "" {
		return errors.New("store: empty user name")
	}
	if u.Role != store.RoleCO && u.Role != store.RoleCU {
		return fmt.Errorf("store: user %q: invalid role %d", u.Name, u.Role)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO users (`+userCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (name) DO NOTHING`,
		u.Name, int(u.Role), int64(u.KDF.Time), int64(u.KDF.Memory), int64(u.KDF.Threads),
		blob(u.Salt), blob(u.WrappedKey), u.FailedLogins, u.Locked,
		keyVersion(u), blob(u.PublicKey), blob(u.Escrow), blob(u.Legacy))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: user %q: %w", u.Name, store.ErrExists)
	}
	return nil
}

func (s *pgStore) User(name string) (*store.UserRecord, error) {
	name = store.FoldName(name)
	var u store.UserRecord
	err := s.stmt(func(ctx context.Context, q querier) error {
		var err error
		u, err = scanUser(q.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE name = $1`, name))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("store: user %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, wrapErr("read user", err)
	}
	return &u, nil
}

func (s *pgStore) Users() ([]store.UserRecord, error) {
	var out []store.UserRecord
	err := s.stmt(func(ctx context.Context, q querier) error {
		rows, err := q.Query(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.UserRecord, error) { return scanUser(r) })
		return err
	})
	if err != nil {
		return nil, wrapErr("list users", err)
	}
	return out, nil
}

func (s *pgStore) CreateUser(u store.UserRecord) error {
	return wrapErr("create user", s.write(func(ctx context.Context, tx pgx.Tx) error { return insertUser(ctx, tx, u) }))
}

// CreateUserLimit counts the users in the write transaction, which holds
// the generation row's lock: two hosts creating users at once never pass
// max together.
func (s *pgStore) CreateUserLimit(u store.UserRecord, max int) error {
	return wrapErr("create user", s.write(func(ctx context.Context, tx pgx.Tx) error {
		if max > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
				return err
			}
			if n >= max {
				return fmt.Errorf("store: create user %q: %d users, at most %d: %w", u.Name, n, max, store.ErrQuota)
			}
		}
		return insertUser(ctx, tx, u)
	}))
}

func (s *pgStore) UpdateUser(u store.UserRecord) error {
	name := store.FoldName(u.Name)
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET kdf_time = $1, kdf_memory = $2, kdf_threads = $3,
			salt = $4, wrapped_key = $5, failed_logins = $6, locked = $7,
			key_version = $8, public_key = $9, escrow = $10, legacy = $11 WHERE name = $12`,
			int64(u.KDF.Time), int64(u.KDF.Memory), int64(u.KDF.Threads), blob(u.Salt), blob(u.WrappedKey),
			u.FailedLogins, u.Locked, keyVersion(u), blob(u.PublicKey), blob(u.Escrow), blob(u.Legacy), name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("store: user %q: %w", name, store.ErrNotFound)
		}
		return nil
	})
	return wrapErr("update user", err)
}

// DeleteUser refuses a user who owns objects (ErrInUse) or is logged in
// on any host (ErrLoggedIn: a login whose Store still holds its advisory
// lock), both checked in the deleting transaction.
func (s *pgStore) DeleteUser(name string) error {
	name = store.FoldName(name)
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		var exists bool
		var owned int
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE name = $1),
			(SELECT count(*) FROM objects WHERE owner = $1)`, name).Scan(&exists, &owned); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("store: user %q: %w", name, store.ErrNotFound)
		}
		if owned > 0 {
			return fmt.Errorf("store: delete user %q: owns %d objects: %w", name, owned, store.ErrInUse)
		}
		live, err := liveLogins(ctx, tx, name, true)
		if err != nil {
			return err
		}
		if len(live) > 0 {
			return fmt.Errorf("store: delete user %q: logged in in process %d: %w", name, live[0].PID, store.ErrLoggedIn)
		}
		// Its shares, keys and dead logins go with it (ON DELETE CASCADE).
		_, err = tx.Exec(ctx, `DELETE FROM users WHERE name = $1`, name)
		return err
	})
	return wrapErr("delete user", err)
}

// --- login counting ---

// loginWait bounds how long BeginLogin waits for attempts in flight to end
// when they fill the threshold; a variable so tests can shorten it.
var loginWait = 30 * time.Second

var errFull = errors.New("store: login attempts in flight fill the threshold")

// BeginLogin reserves one login attempt as SQLite's does
// (token/store/sqlite.go): in one write transaction it refuses a locked
// user and counts the attempt as a failure before the password is
// checked. The count is in the database, updated under the generation
// row's lock: 3 wrong passwords on one host and 2 on another lock at 5.
func (s *pgStore) BeginLogin(name string, threshold int) error {
	name = store.FoldName(name)
	deadline := time.Now().Add(loginWait)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		var state error
		err := s.write(func(ctx context.Context, tx pgx.Tx) error {
			var n int
			var locked bool
			var found bool
			err := tx.QueryRow(ctx, `WITH up AS (UPDATE users SET failed_logins = failed_logins + 1
					WHERE name = $1 AND NOT locked AND ($2 <= 0 OR failed_logins < $2) RETURNING failed_logins)
				SELECT EXISTS (SELECT 1 FROM up), u.locked, u.failed_logins FROM users u WHERE u.name = $1`,
				name, threshold).Scan(&found, &locked, &n)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("store: user %q: %w", name, store.ErrNotFound)
			case err != nil:
				return err
			case found:
				return nil
			case locked:
				state = store.ErrLocked
			case n > threshold || time.Now().After(deadline):
				// The attempts that fill the threshold never ended (their
				// processes died), or the count was made against a higher
				// threshold: each counts as the failure it was recorded as.
				if _, err := tx.Exec(ctx, `UPDATE users SET locked = true WHERE name = $1`, name); err != nil {
					return err
				}
				state = store.ErrLocked
			default:
				state = errFull
			}
			return nil
		})
		if err != nil {
			return wrapErr("begin login", err)
		}
		switch state {
		case nil:
			return nil
		case store.ErrLocked:
			return fmt.Errorf("store: user %q: %w", name, store.ErrLocked)
		}
		time.Sleep(pause)
	}
}

// LoginFailed ends an attempt BeginLogin reserved with a wrong password:
// the failure is counted already; the user is locked once the count has
// reached threshold.
func (s *pgStore) LoginFailed(name string, threshold int) (int, bool, error) {
	name = store.FoldName(name)
	var failures int
	var locked bool
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE users
			SET locked = CASE WHEN $1 > 0 AND failed_logins >= $1 THEN true ELSE locked END
			WHERE name = $2 RETURNING failed_logins, locked`, threshold, name).Scan(&failures, &locked)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("store: user %q: %w", name, store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return 0, false, wrapErr("record failed login", err)
	}
	return failures, locked, nil
}

// LoginSucceeded resets the failure count, or answers ErrLocked when the
// user was locked meanwhile.
func (s *pgStore) LoginSucceeded(name string) error {
	name = store.FoldName(name)
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		var reset bool
		var locked bool
		err := tx.QueryRow(ctx, `WITH up AS (UPDATE users SET failed_logins = 0 WHERE name = $1 AND NOT locked RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM up), u.locked FROM users u WHERE u.name = $1`, name).Scan(&reset, &locked)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("store: user %q: %w", name, store.ErrNotFound)
		case err != nil:
			return err
		case reset:
			return nil
		}
		return fmt.Errorf("store: user %q: %w", name, store.ErrLocked)
	})
	return wrapErr("record login", err)
}
