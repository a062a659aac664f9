//go:build !nopostgres

package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// Moving a token to and from PostgreSQL (decision D6; token/store/
// snapshot.go): Export reads every record in one REPEATABLE READ
// transaction, Import writes them in one write transaction with COPY,
// keeping object and quorum token IDs (the identity columns are BY
// DEFAULT) and moving their sequences past every ID the token ever
// handed out.

var _ store.Mover = (*pgStore)(nil)

// Backup writes the token in the backup file format (a SQLite token
// behind its header), by way of Export and a temporary SQLite token, so
// that `gohsm backup` works on a PostgreSQL slot too.
func (s *pgStore) Backup(path string) (store.BackupInfo, error) {
	return store.ExportFile(s, path)
}

// Export reads every record of the token in one snapshot.
func (s *pgStore) Export() (*store.Snapshot, error) {
	var snap *store.Snapshot
	err := s.read(func(ctx context.Context, tx pgx.Tx) error {
		snap = &store.Snapshot{}
		return exportTx(ctx, tx, snap)
	})
	if err != nil {
		return nil, wrapErr("export", err)
	}
	snap.Normalize()
	if err := snap.Check(); err != nil {
		return nil, err
	}
	return snap, nil
}

// each runs fn on every row of q.
func each(ctx context.Context, tx pgx.Tx, q string, fn func(pgx.Rows) error) error {
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func exportTx(ctx context.Context, tx pgx.Tx, snap *store.Snapshot) error {
	err := each(ctx, tx, `SELECT label, serial, created, escrow_key FROM token WHERE id = 1`, func(r pgx.Rows) error {
		var t store.TokenRecord
		err := r.Scan(&t.Label, &t.SerialNumber, &t.Created, &t.EscrowPublic)
		snap.Token = &t
		return err
	})
	if err != nil {
		return err
	}
	err = each(ctx, tx, `SELECT `+userCols+` FROM users ORDER BY name`, func(r pgx.Rows) error {
		u, err := scanUser(r)
		snap.Users = append(snap.Users, u)
		return err
	})
	if err != nil {
		return err
	}
	err = each(ctx, tx, `SELECT o.id, o.unique_id, coalesce(o.owner, ''), o.private, o.version, q.use_value, q.manage_value
		FROM objects o LEFT JOIN key_quorum q ON q.object_id = o.id ORDER BY o.id`, func(r pgx.Rows) error {
		var o store.ObjectRecord
		var use, manage *int
		if err := r.Scan(&o.ID, &o.UniqueID, &o.Owner, &o.Private, &o.Version, &use, &manage); err != nil {
			return err
		}
		if use != nil && manage != nil {
			o.Quorum = &[2]int{*use, *manage}
		}
		o.Attrs, o.Sealed = map[ck.AttributeType][]byte{}, map[ck.AttributeType][]byte{}
		snap.Objects = append(snap.Objects, o)
		return nil
	})
	if err != nil {
		return err
	}
	byID := make(map[int64]*store.ObjectRecord, len(snap.Objects))
	for i := range snap.Objects {
		byID[snap.Objects[i].ID] = &snap.Objects[i]
	}
	for _, tbl := range []string{"attrs", "sealed"} {
		err = each(ctx, tx, `SELECT object_id, type, value FROM `+tbl, func(r pgx.Rows) error {
			var id, typ int64
			var v []byte
			if err := r.Scan(&id, &typ, &v); err != nil {
				return err
			}
			o := byID[id]
			if o == nil {
				return fmt.Errorf("store: export: %s of a missing object %d: %w", tbl, id, store.ErrDamaged)
			}
			if tbl == "attrs" {
				o.Attrs[ck.AttributeType(typ)] = v
			} else {
				o.Sealed[ck.AttributeType(typ)] = v
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	err = each(ctx, tx, `SELECT object_id, username, value FROM object_keys`, func(r pgx.Rows) error {
		var id int64
		var u string
		var v []byte
		if err := r.Scan(&id, &u, &v); err != nil {
			return err
		}
		o := byID[id]
		if o == nil {
			return fmt.Errorf("store: export: key of a missing object %d: %w", id, store.ErrDamaged)
		}
		if o.Keys == nil {
			o.Keys = map[string][]byte{}
		}
		o.Keys[u] = v
		return nil
	})
	if err != nil {
		return err
	}
	err = each(ctx, tx, `SELECT object_id, username FROM shares ORDER BY object_id, username`, func(r pgx.Rows) error {
		var sh store.Share
		err := r.Scan(&sh.ObjectID, &sh.User)
		snap.Shares = append(snap.Shares, sh)
		return err
	})
	if err != nil {
		return err
	}
	// A sequence's last value is NULL until it hands out its first.
	if err := tx.QueryRow(ctx, `SELECT
		coalesce(pg_sequence_last_value(pg_get_serial_sequence('objects', 'id')::regclass), 0),
		coalesce(pg_sequence_last_value(pg_get_serial_sequence('quorum_tokens', 'id')::regclass), 0)`).
		Scan(&snap.ObjectSeq, &snap.QuorumTokenSeq); err != nil {
		return err
	}
	err = each(ctx, tx, `SELECT stream, seq, record, mac FROM audit ORDER BY stream, seq`, func(r pgx.Rows) error {
		var a store.AuditRecord
		var n int64
		err := r.Scan(&a.Stream, &n, &a.Record, &a.MAC)
		a.Seq = uint64(n)
		snap.Audit = append(snap.Audit, a)
		return err
	})
	if err != nil {
		return err
	}
	err = each(ctx, tx, `SELECT key, value FROM meta WHERE starts_with(key, 'audit')`, func(r pgx.Rows) error {
		var k string
		var v []byte
		if err := r.Scan(&k, &v); err != nil {
			return err
		}
		return snap.SetMeta(k, v)
	})
	if err != nil {
		return err
	}
	err = each(ctx, tx, `SELECT username, public_key FROM quorum_keys`, func(r pgx.Rows) error {
		var u string
		var k []byte
		if err := r.Scan(&u, &k); err != nil {
			return err
		}
		if snap.QuorumKeys == nil {
			snap.QuorumKeys = map[string][]byte{}
		}
		snap.QuorumKeys[u] = k
		return nil
	})
	if err != nil {
		return err
	}
	err = each(ctx, tx, `SELECT service, value FROM quorum_values`, func(r pgx.Rows) error {
		var svc string
		var v int
		if err := r.Scan(&svc, &v); err != nil {
			return err
		}
		if snap.QuorumValues == nil {
			snap.QuorumValues = map[string]int{}
		}
		snap.QuorumValues[svc] = v
		return nil
	})
	if err != nil {
		return err
	}
	snap.QuorumTokens, err = readQuorumTokens(ctx, tx)
	return err
}

// tokenTables are the tables Import empties, children first.
var tokenTables = []string{
	"logins", "key_quorum", "quorum_tokens", "quorum_values", "quorum_keys", "audit",
	"object_keys", "shares", "sealed", "attrs", "objects", "users", "token",
}

// Import writes snap in one write transaction (store.Mover): into a
// token that holds nothing, or with replace in place of everything. The
// generation moves (the commit bumps it), so every host's caches reload;
// an Audited view's events follow the imported records.
func (s *pgStore) Import(snap *store.Snapshot, replace bool) error {
	if err := snap.Check(); err != nil {
		return err
	}
	snap, err := snap.WithAuditKey()
	if err != nil {
		return err
	}
	own, err := s.ownLogins()
	if err != nil {
		return wrapErr("import", err)
	}
	err = s.write(func(ctx context.Context, tx pgx.Tx) error {
		// A live login of another process or host would lose its row
		// (the caller checks before, but a login can start between its
		// check and this transaction; AddLogin, a write, waits for this
		// one's generation lock, so the check here has no such gap).
		if err := noLiveLoginsBut(ctx, tx, own); err != nil {
			return err
		}
		if !replace {
			var used bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM token) OR EXISTS (SELECT 1 FROM users)
				OR EXISTS (SELECT 1 FROM objects) OR EXISTS (SELECT 1 FROM audit)
				OR EXISTS (SELECT 1 FROM quorum_tokens) OR EXISTS (SELECT 1 FROM quorum_values)
				OR EXISTS (SELECT 1 FROM quorum_keys)
				OR EXISTS (SELECT 1 FROM meta WHERE starts_with(key, 'audit_head/') OR starts_with(key, 'audit_base/'))`).Scan(&used); err != nil {
				return err
			}
			if used {
				return fmt.Errorf("store: import: the token is not empty (import with replace to overwrite it): %w", store.ErrExists)
			}
		}
		b := &pgx.Batch{}
		for _, tbl := range tokenTables {
			b.Queue(`DELETE FROM ` + tbl)
		}
		b.Queue(`DELETE FROM meta WHERE key = 'audit_key' OR starts_with(key, 'audit_boot')
			OR starts_with(key, 'audit_head/') OR starts_with(key, 'audit_base/')`)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		return importTx(ctx, tx, snap)
	})
	return wrapErr("import", err)
}

// copyRows is one table's rows for COPY.
type copyRows struct {
	table string
	cols  []string
	rows  [][]any
}

func importTx(ctx context.Context, tx pgx.Tx, snap *store.Snapshot) error {
	var tables []copyRows
	if t := snap.Token; t != nil {
		var escrow any
		if len(t.EscrowPublic) > 0 {
			escrow = t.EscrowPublic
		}
		tables = append(tables, copyRows{"token", []string{"id", "label", "serial", "created", "escrow_key"},
			[][]any{{1, t.Label, t.SerialNumber, t.Created, escrow}}})
	}
	users := copyRows{table: "users", cols: []string{"name", "role", "kdf_time", "kdf_memory", "kdf_threads",
		"salt", "wrapped_key", "failed_logins", "locked", "key_version", "public_key", "escrow", "legacy"}}
	for _, u := range snap.Users {
		kv := u.KeyVersion
		if kv == 0 {
			kv = store.KeyV2
		}
		users.rows = append(users.rows, []any{store.FoldName(u.Name), int32(u.Role), int64(u.KDF.Time), int64(u.KDF.Memory), int64(u.KDF.Threads),
			nonNil(u.Salt), nonNil(u.WrappedKey), int64(u.FailedLogins), u.Locked, int32(kv),
			nonNil(u.PublicKey), nonNil(u.Escrow), nonNil(u.Legacy)})
	}
	objects := copyRows{table: "objects", cols: []string{"id", "unique_id", "owner", "private", "version"}}
	attrs := copyRows{table: "attrs", cols: []string{"object_id", "type", "value"}}
	sealed := copyRows{table: "sealed", cols: attrs.cols}
	keys := copyRows{table: "object_keys", cols: []string{"object_id", "username", "value"}}
	kq := copyRows{table: "key_quorum", cols: []string{"object_id", "use_value", "manage_value"}}
	var maxID int64
	for _, o := range snap.Objects {
		var owner any
		if o.Owner != "" {
			owner = store.FoldName(o.Owner)
		}
		objects.rows = append(objects.rows, []any{o.ID, o.UniqueID, owner, o.Private, o.Version})
		for t, v := range o.Attrs {
			attrs.rows = append(attrs.rows, []any{o.ID, int64(t), nonNil(v)})
		}
		for t, v := range o.Sealed {
			sealed.rows = append(sealed.rows, []any{o.ID, int64(t), nonNil(v)})
		}
		for u, v := range o.Keys {
			keys.rows = append(keys.rows, []any{o.ID, store.FoldName(u), nonNil(v)})
		}
		if o.Quorum != nil {
			kq.rows = append(kq.rows, []any{o.ID, int32(o.Quorum[0]), int32(o.Quorum[1])})
		}
		maxID = max(maxID, o.ID)
	}
	shares := copyRows{table: "shares", cols: []string{"object_id", "username"}}
	for _, sh := range snap.Shares {
		shares.rows = append(shares.rows, []any{sh.ObjectID, store.FoldName(sh.User)})
	}
	audit := copyRows{table: "audit", cols: []string{"stream", "seq", "record", "mac"}}
	for _, a := range snap.Audit {
		if a.Seq > 1<<63-1 {
			return fmt.Errorf("store: import: audit %s sequence %d: %w", a.Stream, a.Seq, store.ErrDamaged)
		}
		audit.rows = append(audit.rows, []any{a.Stream, int64(a.Seq), nonNil(a.Record), nonNil(a.MAC)})
	}
	meta := copyRows{table: "meta", cols: []string{"key", "value"}}
	for k, v := range snap.MetaRows() {
		meta.rows = append(meta.rows, []any{k, v})
	}
	qkeys := copyRows{table: "quorum_keys", cols: []string{"username", "public_key"}}
	for u, k := range snap.QuorumKeys {
		qkeys.rows = append(qkeys.rows, []any{store.FoldName(u), nonNil(k)})
	}
	qvals := copyRows{table: "quorum_values", cols: []string{"service", "value"}}
	for svc, v := range snap.QuorumValues {
		qvals.rows = append(qvals.rows, []any{svc, int32(v)})
	}
	qtoks := copyRows{table: "quorum_tokens", cols: []string{"id", "service", "username", "approval", "created", "expires", "approvals"}}
	var maxQ int64
	for _, q := range snap.QuorumTokens {
		ap, err := store.ApproversBytes(q.Approvers)
		if err != nil {
			return err
		}
		qtoks.rows = append(qtoks.rows, []any{q.ID, q.Service, q.User, nonNil(q.Approval), q.Created, q.Expires, ap})
		maxQ = max(maxQ, q.ID)
	}
	// Parents before children, for the foreign keys.
	tables = append(tables, users, objects, attrs, sealed, keys, kq, shares, audit, meta, qkeys, qvals, qtoks)
	for _, c := range tables {
		if len(c.rows) == 0 {
			continue
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			return fmt.Errorf("store: import: %s: %w", c.table, wrapErr("copy", err))
		}
	}
	// The sequences hand out IDs above every one the token (and this
	// database) ever handed out; setval is not undone by a rollback,
	// which at worst skips IDs.
	_, err := tx.Exec(ctx, `SELECT setval(seq, greatest($1::bigint, coalesce(pg_sequence_last_value(seq), 0), 1),
			greatest($1::bigint, coalesce(pg_sequence_last_value(seq), 0)) > 0)
		FROM (VALUES (pg_get_serial_sequence('objects', 'id')::regclass)) AS v(seq)`, max(maxID, snap.ObjectSeq))
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `SELECT setval(seq, greatest($1::bigint, coalesce(pg_sequence_last_value(seq), 0), 1),
			greatest($1::bigint, coalesce(pg_sequence_last_value(seq), 0)) > 0)
		FROM (VALUES (pg_get_serial_sequence('quorum_tokens', 'id')::regclass)) AS v(seq)`, max(maxQ, snap.QuorumTokenSeq))
	return err
}
