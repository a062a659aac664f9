//go:build !nopostgres

package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"gohsm/internal/ck"
	"gohsm/token/store"
)

// Objects, shares and the upgrade to per-user keys: token/store/sqlite.go's
// semantics in as few round trips as PostgreSQL allows. An object's rows
// (objects, attrs, sealed, object_keys) are written by one statement
// whatever the number of objects and attributes (arrays unnested in data-
// modifying CTEs) and read by one.

func checkAttrs(o store.ObjectRecord) error {
	for t := range o.Sealed {
		if _, ok := o.Attrs[t]; ok {
			return fmt.Errorf("store: object %q: attribute %#x both plain and sealed", o.UniqueID, uint64(t))
		}
	}
	return nil
}

// rows are the attrs, sealed and object_keys rows of objects, as the
// arrays one statement unnests. The objects are named by their index in
// the statement's objects array (obj) or by their ID.
type rows struct {
	attrObj, sealObj, keyObj     []int64
	attrType, sealType           []int64
	attrValue, sealValue, keyVal [][]byte
	keyUser                      []string
}

func (r *rows) add(obj int64, o store.ObjectRecord, keys bool) {
	for _, t := range sortedTypes(o.Attrs) {
		r.attrObj, r.attrType, r.attrValue = append(r.attrObj, obj), append(r.attrType, int64(t)), append(r.attrValue, blob(o.Attrs[t]))
	}
	for _, t := range sortedTypes(o.Sealed) {
		r.sealObj, r.sealType, r.sealValue = append(r.sealObj, obj), append(r.sealType, int64(t)), append(r.sealValue, blob(o.Sealed[t]))
	}
	if !keys {
		return
	}
	users := make([]string, 0, len(o.Keys))
	for u := range o.Keys {
		users = append(users, u)
	}
	slices.Sort(users)
	for _, u := range users {
		r.keyObj, r.keyUser, r.keyVal = append(r.keyObj, obj), append(r.keyUser, store.FoldName(u)), append(r.keyVal, blob(o.Keys[u]))
	}
}

func sortedTypes(m map[ck.AttributeType][]byte) []ck.AttributeType {
	types := make([]ck.AttributeType, 0, len(m))
	for t := range m {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// createSQL inserts objects ($1 unique IDs, $2 owners, $3 private flags,
// in order, so IDs grow with the index) and their rows ($4-$12, objects
// named by index, 1-based), returning each object's ID in order.
// Constraints are checked at the statement's end, so the rows' foreign
// keys see the objects of the same statement.
const createSQL = `WITH n AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::bool[]) WITH ORDINALITY AS x(uid, owner, private, i)
), o AS (
	INSERT INTO objects (unique_id, owner, private, version)
	SELECT uid, owner, private, 1 FROM n ORDER BY i
	RETURNING id, unique_id
), m AS (
	SELECT n.i, o.id FROM n JOIN o ON o.unique_id = n.uid
), a AS (
	INSERT INTO attrs (object_id, type, value)
	SELECT m.id, x.type, x.value FROM unnest($4::int8[], $5::int8[], $6::bytea[]) AS x(i, type, value) JOIN m ON m.i = x.i
), s AS (
	INSERT INTO sealed (object_id, type, value)
	SELECT m.id, x.type, x.value FROM unnest($7::int8[], $8::int8[], $9::bytea[]) AS x(i, type, value) JOIN m ON m.i = x.i
), k AS (
	INSERT INTO object_keys (object_id, username, value)
	SELECT m.id, x.username, x.value FROM unnest($10::int8[], $11::text[], $12::bytea[]) AS x(i, username, value) JOIN m ON m.i = x.i
)
SELECT id FROM m ORDER BY i`

// createObjects inserts objs (folded, checked) in the transaction and
// returns their IDs, after checking quotas in the same round trip (the
// count and the insert are pipelined; a quota passed fails the call, and
// the caller's transaction rolls the insert back). The errors callers
// tell apart are mapped: a unique ID already stored (ErrExists), an owner
// or key holder that is not a user (ErrNotFound).
func createObjects(ctx context.Context, q querier, objs []store.ObjectRecord, quotas []store.Quota) ([]int64, error) {
	uids := make([]string, len(objs))
	owners := make([]*string, len(objs))
	private := make([]bool, len(objs))
	var r rows
	for i, o := range objs {
		uids[i], private[i] = o.UniqueID, o.Private
		if o.Owner != "" {
			owners[i] = &objs[i].Owner
		}
		r.add(int64(i+1), o, true)
	}
	b := &pgx.Batch{}
	qsql, qargs, qcheck := quotaQuery(objs, quotas)
	if qsql != "" {
		b.Queue(qsql, qargs...)
	}
	b.Queue(createSQL, uids, owners, private,
		r.attrObj, r.attrType, r.attrValue, r.sealObj, r.sealType, r.sealValue, r.keyObj, r.keyUser, r.keyVal)
	br := q.SendBatch(ctx, b)
	defer br.Close()
	if qsql != "" {
		rs, err := br.Query()
		if err == nil {
			err = qcheck(rs)
		}
		if err != nil {
			return nil, err
		}
	}
	cr, err := br.Query()
	if err != nil {
		return nil, createErr(err, objs)
	}
	ids, err := pgx.CollectRows(cr, pgx.RowTo[int64])
	if err != nil {
		return nil, createErr(err, objs)
	}
	if err := br.Close(); err != nil {
		return nil, createErr(err, objs)
	}
	if len(ids) != len(objs) {
		return nil, fmt.Errorf("store: create objects: %d of %d stored", len(ids), len(objs))
	}
	noteCreated(ctx, ids...)
	return ids, nil
}

// createErr maps the constraint an insert of objs broke.
func createErr(err error, objs []store.ObjectRecord) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	which := pe.Detail
	if len(objs) == 1 {
		which = fmt.Sprintf("%q", objs[0].UniqueID)
	}
	switch {
	case pe.Code == "23505": // unique_violation
		return fmt.Errorf("store: object %s: %w", which, store.ErrExists)
	case pe.Code == "23503" && pe.ConstraintName == "objects_owner_fkey":
		if len(objs) == 1 {
			which = fmt.Sprintf("%q", objs[0].Owner)
		}
		return fmt.Errorf("store: object owner %s: %w", which, store.ErrNotFound)
	case pe.Code == "23503":
		return fmt.Errorf("store: object key for a user: %s: %w", pe.Detail, store.ErrNotFound)
	}
	return err
}

func (s *pgStore) CreateObject(o store.ObjectRecord) (store.ObjectRecord, error) {
	out, _, err := s.CreateObjects([]store.ObjectRecord{o})
	if err != nil {
		return store.ObjectRecord{}, err
	}
	return out[0], nil
}

// CreateObjects stores objs in one transaction: the quota count and the
// insert are pipelined (one round trip), after the generation bump
// whose lock keeps every other host's writer out until the commit, so
// hosts creating at once never pass a quota together.
func (s *pgStore) CreateObjects(objs []store.ObjectRecord, quotas ...store.Quota) ([]store.ObjectRecord, store.Commit, error) {
	out := make([]store.ObjectRecord, len(objs))
	for i, o := range objs {
		o.Owner = store.FoldName(o.Owner)
		if o.UniqueID == "" {
			return nil, store.Commit{}, errors.New("store: create object: empty unique id")
		}
		if err := checkAttrs(o); err != nil {
			return nil, store.Commit{}, err
		}
		out[i] = o
	}
	if len(out) == 0 {
		return out, store.Commit{}, nil
	}
	c, err := s.commit(func(ctx context.Context, tx pgx.Tx) error {
		ids, err := createObjects(ctx, tx, out, quotas)
		if err != nil {
			return err
		}
		for i := range out {
			out[i].ID = ids[i]
		}
		return nil
	})
	if err != nil {
		return nil, store.Commit{}, wrapErr("create object", err)
	}
	for i := range out {
		out[i].Version = 1
	}
	return out, c, nil
}

// quotaQuery is the statement that counts the stored objects of every
// class the quotas that objs would add to name (each class answered from
// the attrs (type, sha256(value)) index), and check, which reads its rows
// and fails when objs would pass one of quotas. sql is "" when no quota
// counts objs.
func quotaQuery(objs []store.ObjectRecord, quotas []store.Quota) (sql string, args []any, check func(pgx.Rows) error) {
	adding := map[ck.ObjectClass]int{}
	for _, o := range objs {
		if v, ok := o.Attrs[ck.CKA_CLASS]; ok && len(v) == 8 {
			adding[ck.ObjectClass(binary.LittleEndian.Uint64(v))]++
		}
	}
	var classes []ck.ObjectClass
	for _, qu := range quotas {
		if !slices.ContainsFunc(qu.Classes, func(c ck.ObjectClass) bool { return adding[c] > 0 }) {
			continue
		}
		for _, c := range qu.Classes {
			if !slices.Contains(classes, c) {
				classes = append(classes, c)
			}
		}
	}
	if len(classes) == 0 {
		return "", nil, nil
	}
	vals := make([][]byte, len(classes))
	for i, c := range classes {
		vals[i] = binary.LittleEndian.AppendUint64(nil, uint64(c))
	}
	check = func(rs pgx.Rows) error {
		have := map[ck.ObjectClass]int{}
		var v []byte
		var n int
		if _, err := pgx.ForEachRow(rs, []any{&v, &n}, func() error {
			have[ck.ObjectClass(binary.LittleEndian.Uint64(v))] = n
			return nil
		}); err != nil {
			return err
		}
		for _, qu := range quotas {
			held, more := 0, 0
			for _, c := range qu.Classes {
				held += have[c]
				more += adding[c]
			}
			if more > 0 && held+more > qu.Max {
				return fmt.Errorf("store: %d objects of %v held, %d more would pass the quota of %d: %w", held, qu.Classes, more, qu.Max, qu.Err)
			}
		}
		return nil
	}
	return `SELECT m.v, (SELECT count(*) FROM attrs a
			WHERE a.type = $1 AND sha256(a.value) = sha256(m.v) AND a.value = m.v)
		FROM unnest($2::bytea[]) AS m(v)`, []any{int64(ck.CKA_CLASS), vals}, check
}

// objectSQL reads an object's row, key quorum values, attributes, sealed
// attributes and keys in one statement (one snapshot); readObject adds
// more columns (tail) and the FROM clause.
const objectSQL = `SELECT o.unique_id, o.owner, o.private, o.version, q.use_value, q.manage_value,
	a.t, a.v, s.t, s.v, k.u, k.v`

const objectFrom = `
	FROM objects o LEFT JOIN key_quorum q ON q.object_id = o.id
	LEFT JOIN LATERAL (SELECT array_agg(type ORDER BY type) t, array_agg(value ORDER BY type) v
		FROM attrs WHERE object_id = o.id) a ON true
	LEFT JOIN LATERAL (SELECT array_agg(type ORDER BY type) t, array_agg(value ORDER BY type) v
		FROM sealed WHERE object_id = o.id) s ON true
	LEFT JOIN LATERAL (SELECT array_agg(username ORDER BY username) u, array_agg(value ORDER BY username) v
		FROM object_keys WHERE object_id = o.id) k ON true
	WHERE o.id = $1`

// readObject fills o (o.ID set) from objectSQL's row; extra are more
// columns of the same row to scan (tail selects them).
func readObject(ctx context.Context, q querier, o *store.ObjectRecord, tail string, extra ...any) error {
	var owner *string
	var use, manage *int32
	var at, st []int64
	var av, sv, kv [][]byte
	var ku []string
	dest := append([]any{&o.UniqueID, &owner, &o.Private, &o.Version, &use, &manage, &at, &av, &st, &sv, &ku, &kv}, extra...)
	err := q.QueryRow(ctx, objectSQL+tail+objectFrom, o.ID).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("store: object %d: %w", o.ID, store.ErrNotFound)
	}
	if err != nil {
		return err
	}
	if owner != nil {
		o.Owner = *owner
	}
	if use != nil && manage != nil {
		o.Quorum = &[2]int{int(*use), int(*manage)}
	}
	o.Attrs, o.Sealed = attrMap(at, av), attrMap(st, sv)
	if len(ku) > 0 {
		o.Keys = make(map[string][]byte, len(ku))
		for i, u := range ku {
			o.Keys[u] = blob(kv[i])
		}
	}
	return nil
}

func attrMap(types []int64, values [][]byte) map[ck.AttributeType][]byte {
	m := make(map[ck.AttributeType][]byte, len(types))
	for i, t := range types {
		m[ck.AttributeType(t)] = blob(values[i])
	}
	return m
}

func (s *pgStore) Object(id int64) (*store.ObjectRecord, error) {
	o := store.ObjectRecord{ID: id}
	err := s.stmt(func(ctx context.Context, q querier) error { return readObject(ctx, q, &o, "") })
	if err != nil {
		return nil, wrapErr("read object", err)
	}
	return &o, nil
}

func (s *pgStore) ObjectVersion(id int64) (int64, error) {
	var v int64
	err := s.stmt(func(ctx context.Context, q querier) error {
		return q.QueryRow(ctx, `SELECT version FROM objects WHERE id = $1`, id).Scan(&v)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("store: object %d: %w", id, store.ErrNotFound)
	}
	return v, wrapErr("read object version", err)
}

// updateSQL replaces an object's attributes and sealed attributes ($4-$7)
// and, when $8, its keys ($9, $10), if its version is still $3, in one
// statement: rows of types no longer there are deleted, the others
// upserted (a delete and an insert of one key in one statement would
// collide). It returns the stored version (NULL: no such object) and the
// new one (NULL: the version did not match, nothing changed).
const updateSQL = `WITH cur AS (
	SELECT version FROM objects WHERE id = $1
), up AS (
	UPDATE objects SET private = $2, version = version + 1 WHERE id = $1 AND version = $3 RETURNING version
), da AS (
	DELETE FROM attrs WHERE object_id = $1 AND EXISTS (SELECT 1 FROM up) AND type <> ALL($4::int8[])
), ia AS (
	INSERT INTO attrs (object_id, type, value) SELECT $1, x.type, x.value FROM unnest($4::int8[], $5::bytea[]) AS x(type, value)
	WHERE EXISTS (SELECT 1 FROM up)
	ON CONFLICT (object_id, type) DO UPDATE SET value = EXCLUDED.value
), ds AS (
	DELETE FROM sealed WHERE object_id = $1 AND EXISTS (SELECT 1 FROM up) AND type <> ALL($6::int8[])
), is_ AS (
	INSERT INTO sealed (object_id, type, value) SELECT $1, x.type, x.value FROM unnest($6::int8[], $7::bytea[]) AS x(type, value)
	WHERE EXISTS (SELECT 1 FROM up)
	ON CONFLICT (object_id, type) DO UPDATE SET value = EXCLUDED.value
), dk AS (
	DELETE FROM object_keys WHERE object_id = $1 AND $8 AND EXISTS (SELECT 1 FROM up) AND username <> ALL($9::text[])
), ik AS (
	INSERT INTO object_keys (object_id, username, value) SELECT $1, x.username, x.value FROM unnest($9::text[], $10::bytea[]) AS x(username, value)
	WHERE $8 AND EXISTS (SELECT 1 FROM up)
	ON CONFLICT (object_id, username) DO UPDATE SET value = EXCLUDED.value
)
SELECT (SELECT version FROM cur), (SELECT version FROM up)`

// UpdateObject keeps UniqueID and Owner: sealed values are bound to the
// UniqueID, and ownership never moves in the CloudHSM model.
func (s *pgStore) UpdateObject(o store.ObjectRecord) (int64, store.Commit, error) {
	if err := checkAttrs(o); err != nil {
		return 0, store.Commit{}, err
	}
	var r rows
	r.add(o.ID, o, o.Keys != nil)
	var next int64
	c, err := s.commit(func(ctx context.Context, tx pgx.Tx) error {
		var cur, nv *int64
		err := tx.QueryRow(ctx, updateSQL, o.ID, o.Private, o.Version, nonNil(r.attrType), nonNil(r.attrValue),
			nonNil(r.sealType), nonNil(r.sealValue), o.Keys != nil, nonNil(r.keyUser), nonNil(r.keyVal)).Scan(&cur, &nv)
		var pe *pgconn.PgError
		switch {
		case errors.As(err, &pe) && pe.Code == "23503":
			return fmt.Errorf("store: object key for a user: %s: %w", pe.Detail, store.ErrNotFound)
		case err != nil:
			return err
		case cur == nil:
			return fmt.Errorf("store: object %d: %w", o.ID, store.ErrNotFound)
		case nv == nil:
			return fmt.Errorf("store: update object %d: version %d, stored %d: %w", o.ID, o.Version, *cur, store.ErrConflict)
		}
		next = *nv
		return nil
	})
	if err != nil {
		return 0, store.Commit{}, wrapErr("update object", err)
	}
	return next, c, nil
}

// nonNil binds an empty slice as an empty array, not NULL (ALL(NULL) is
// NULL, which would delete nothing).
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *pgStore) DeleteObject(id int64) (store.Commit, error) {
	c, err := s.commit(func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM objects WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("store: object %d: %w", id, store.ErrNotFound)
		}
		return nil
	})
	return c, wrapErr("delete object", err)
}

// lowSelectivity are attributes that many objects share (classes, key
// types, flags): a poor place to start a search.
var lowSelectivity = map[ck.AttributeType]bool{
	ck.CKA_CLASS: true, ck.CKA_KEY_TYPE: true, ck.CKA_TOKEN: true, ck.CKA_PRIVATE: true,
	ck.CKA_CERTIFICATE_TYPE: true, ck.CKA_MODIFIABLE: true, ck.CKA_SENSITIVE: true,
	ck.CKA_EXTRACTABLE: true, ck.CKA_SIGN: true, ck.CKA_VERIFY: true, ck.CKA_ENCRYPT: true,
	ck.CKA_DECRYPT: true, ck.CKA_WRAP: true, ck.CKA_UNWRAP: true, ck.CKA_DERIVE: true,
	ck.CKA_LOCAL: true, ck.CKA_VALUE_LEN: true, ck.CKA_MODULUS_BITS: true, ck.CKA_EC_PARAMS: true,
}

// findSQL builds the query for q. One Match attribute, a selective one
// where there is one (a label or an ID rather than a class), drives the
// search through the attrs (type, sha256(value)) index; the others are
// checked per candidate through the attrs primary key, all of them in one
// term over arrays (so the statement's text does not grow with the
// template: 4096 attributes are two parameters); then the visibility
// filter.
func findSQL(q store.Query) (string, []any) {
	types := make([]ck.AttributeType, 0, len(q.Match))
	for t := range q.Match {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool {
		if lowSelectivity[types[i]] != lowSelectivity[types[j]] {
			return !lowSelectivity[types[i]]
		}
		return types[i] < types[j]
	})
	var b strings.Builder
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if len(types) > 0 {
		t, v := arg(int64(types[0])), arg(blob(q.Match[types[0]]))
		b.WriteString(`SELECT o.id FROM attrs d JOIN objects o ON o.id = d.object_id WHERE d.type = ` + t +
			` AND sha256(d.value) = sha256(` + v + `::bytea) AND d.value = ` + v)
		if rest := types[1:]; len(rest) > 0 {
			ts := make([]int64, len(rest))
			vs := make([][]byte, len(rest))
			for i, t := range rest {
				ts[i], vs[i] = int64(t), blob(q.Match[t])
			}
			b.WriteString(` AND (SELECT count(*) FROM attrs a JOIN unnest(` + arg(ts) + `::int8[], ` + arg(vs) +
				`::bytea[]) AS m(type, value) ON a.type = m.type AND a.value = m.value WHERE a.object_id = o.id) = ` + arg(len(rest)))
		}
		b.WriteString(` AND `)
	} else {
		b.WriteString(`SELECT o.id FROM objects o WHERE `)
	}
	b.WriteString(`(NOT o.private`)
	if viewer := store.FoldName(q.Viewer); viewer != "" {
		v := arg(viewer)
		b.WriteString(` OR o.owner = ` + v + ` OR EXISTS (SELECT 1 FROM shares s WHERE s.object_id = o.id AND s.username = ` + v + `)`)
	}
	if q.ViewerClass != nil {
		b.WriteString(` OR EXISTS (SELECT 1 FROM attrs c WHERE c.object_id = o.id AND c.type = ` + arg(int64(ck.CKA_CLASS)) +
			` AND c.value = ` + arg(blob(q.ViewerClass)) + `)`)
	}
	b.WriteString(`) ORDER BY o.id`)
	return b.String(), args
}

func (s *pgStore) Find(q store.Query) ([]int64, error) {
	query, args := findSQL(q)
	var ids []int64
	err := s.stmt(func(ctx context.Context, qr querier) error {
		rs, err := qr.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rs, pgx.RowTo[int64])
		return err
	})
	if err != nil {
		return nil, wrapErr("find", err)
	}
	if ids == nil {
		ids = []int64{}
	}
	return ids, nil
}

func (s *pgStore) CountOwned(owner string) (int, error) {
	var n int
	err := s.stmt(func(ctx context.Context, q querier) error {
		return q.QueryRow(ctx, `SELECT count(*) FROM objects WHERE owner = $1`, store.FoldName(owner)).Scan(&n)
	})
	return n, wrapErr("count owned", err)
}

// --- shares ---

// objectAndUser checks that object id and user (unless "") exist.
func objectAndUser(ctx context.Context, q querier, id int64, user string) error {
	var obj, usr bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM objects WHERE id = $1),
		$2 = '' OR EXISTS (SELECT 1 FROM users WHERE name = $2)`, id, user).Scan(&obj, &usr); err != nil {
		return err
	}
	if !obj {
		return fmt.Errorf("store: object %d: %w", id, store.ErrNotFound)
	}
	if !usr {
		return fmt.Errorf("store: user %q: %w", user, store.ErrNotFound)
	}
	return nil
}

// Share returns ErrExists when the object is already shared with user.
func (s *pgStore) Share(id int64, user string, wrappedKey []byte) error {
	user = store.FoldName(user)
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		if err := objectAndUser(ctx, tx, id, user); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO shares (object_id, username) VALUES ($1, $2) ON CONFLICT DO NOTHING`, id, user)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("store: object %d already shared with %q: %w", id, user, store.ErrExists)
		}
		if len(wrappedKey) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO object_keys (object_id, username, value) VALUES ($1, $2, $3)
			ON CONFLICT (object_id, username) DO UPDATE SET value = EXCLUDED.value`, id, user, wrappedKey)
		return err
	})
	return wrapErr("share", err)
}

func (s *pgStore) Unshare(id int64, user string) error {
	user = store.FoldName(user)
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		var shared bool
		// The owner's copy of the key stays: an owner is never a sharee.
		err := tx.QueryRow(ctx, `WITH d AS (DELETE FROM shares WHERE object_id = $1 AND username = $2 RETURNING 1),
			k AS (DELETE FROM object_keys WHERE object_id = $1 AND username = $2 AND EXISTS (SELECT 1 FROM d)
				AND username IS DISTINCT FROM (SELECT owner FROM objects WHERE id = $1))
			SELECT EXISTS (SELECT 1 FROM d)`, id, user).Scan(&shared)
		if err != nil {
			return err
		}
		if !shared {
			return fmt.Errorf("store: object %d not shared with %q: %w", id, user, store.ErrNotFound)
		}
		return nil
	})
	return wrapErr("unshare", err)
}

// shareesSQL is the users object $1 is shared with, by name.
const shareesSQL = `ARRAY(SELECT username FROM shares WHERE object_id = $1 ORDER BY username)`

func (s *pgStore) SharedWith(id int64) ([]string, error) {
	var users []string
	var exists bool
	err := s.stmt(func(ctx context.Context, q querier) error {
		return q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM objects WHERE id = $1), `+shareesSQL, id).Scan(&exists, &users)
	})
	if err != nil {
		return nil, wrapErr("list shares", err)
	}
	if !exists {
		return nil, fmt.Errorf("store: object %d: %w", id, store.ErrNotFound)
	}
	if users == nil {
		users = []string{}
	}
	return users, nil
}

// --- the upgrade to per-user keys ---

func (s *pgStore) UpgradeKeys(escrowPublic []byte, users []store.UserRecord, objs []store.ObjectRecord) error {
	if len(escrowPublic) == 0 {
		return errors.New("store: upgrade keys: no escrow key")
	}
	for _, o := range objs {
		if err := checkAttrs(o); err != nil {
			return err
		}
	}
	err := s.write(func(ctx context.Context, tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`UPDATE token SET escrow_key = $1 WHERE id = 1 AND escrow_key IS NULL`, escrowPublic)
		for _, u := range users {
			b.Queue(`UPDATE users SET public_key = $1, escrow = $2, legacy = $3 WHERE name = $4`,
				blob(u.PublicKey), blob(u.Escrow), blob(u.Legacy), store.FoldName(u.Name))
		}
		for _, o := range objs {
			b.Queue(`UPDATE objects SET version = version + 1 WHERE id = $1 AND version = $2`, o.ID, o.Version)
		}
		br := tx.SendBatch(ctx, b)
		tag, err := br.Exec()
		if err == nil && tag.RowsAffected() == 0 {
			err = fmt.Errorf("store: keys upgraded already: %w", store.ErrConflict)
		}
		for _, u := range users {
			if err != nil {
				break
			}
			if tag, err = br.Exec(); err == nil && tag.RowsAffected() == 0 {
				err = fmt.Errorf("store: user %q: %w", store.FoldName(u.Name), store.ErrConflict)
			}
		}
		for _, o := range objs {
			if err != nil {
				break
			}
			if tag, err = br.Exec(); err == nil && tag.RowsAffected() == 0 {
				err = fmt.Errorf("store: upgrade object %d: %w", o.ID, store.ErrConflict)
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil || len(objs) == 0 {
			return err
		}
		// The objects' sealed values and keys, replaced in one statement.
		var r rows
		ids := make([]int64, len(objs))
		for i, o := range objs {
			ids[i] = o.ID
			r.add(o.ID, store.ObjectRecord{Sealed: o.Sealed, Keys: o.Keys}, true)
		}
		b = &pgx.Batch{}
		b.Queue(`DELETE FROM sealed WHERE object_id = ANY($1)`, ids)
		b.Queue(`DELETE FROM object_keys WHERE object_id = ANY($1)`, ids)
		b.Queue(`INSERT INTO sealed (object_id, type, value) SELECT * FROM unnest($1::int8[], $2::int8[], $3::bytea[])`,
			nonNil(r.sealObj), nonNil(r.sealType), nonNil(r.sealValue))
		b.Queue(`INSERT INTO object_keys (object_id, username, value) SELECT * FROM unnest($1::int8[], $2::text[], $3::bytea[])`,
			nonNil(r.keyObj), nonNil(r.keyUser), nonNil(r.keyVal))
		err = tx.SendBatch(ctx, b).Close()
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23503" {
			return fmt.Errorf("store: object key for a user: %s: %w", pe.Detail, store.ErrNotFound)
		}
		return err
	})
	return wrapErr("upgrade keys", err)
}

// --- replication ---

// ReplicaOf reads object id, its key quorum values and its shares in one
// statement.
func (s *pgStore) ReplicaOf(id int64) (store.Replica, error) {
	r := store.Replica{Object: store.ObjectRecord{ID: id}}
	err := s.stmt(func(ctx context.Context, q querier) error {
		return readObject(ctx, q, &r.Object, `, `+shareesSQL, &r.Sharees)
	})
	if err != nil {
		return store.Replica{}, wrapErr("read replica", err)
	}
	if r.Sharees == nil {
		r.Sharees = []string{}
	}
	return r, nil
}

// CreateReplica stores a key replicated from another token in one
// transaction: the object with its keys, its shares and its key quorum
// values. A user missing meanwhile fails the whole (ErrNotFound), as does
// a unique ID the token holds already (ErrExists).
func (s *pgStore) CreateReplica(r store.Replica, quotas ...store.Quota) (store.ObjectRecord, store.Commit, error) {
	o := r.Object
	o.ID, o.Version = 0, 0
	o.Owner = store.FoldName(o.Owner)
	if o.UniqueID == "" {
		return store.ObjectRecord{}, store.Commit{}, fmt.Errorf("store: replicate: empty unique id")
	}
	if err := checkAttrs(o); err != nil {
		return store.ObjectRecord{}, store.Commit{}, err
	}
	sharees := make([]string, len(r.Sharees))
	for i, u := range r.Sharees {
		sharees[i] = store.FoldName(u)
	}
	c, err := s.commit(func(ctx context.Context, tx pgx.Tx) error {
		ids, err := createObjects(ctx, tx, []store.ObjectRecord{o}, quotas)
		if err != nil {
			return err
		}
		o.ID = ids[0]
		var missing *string
		err = tx.QueryRow(ctx, `SELECT u FROM unnest($1::text[]) AS u WHERE NOT EXISTS (SELECT 1 FROM users WHERE name = u) LIMIT 1`,
			sharees).Scan(&missing)
		switch {
		case err == nil:
			return fmt.Errorf("store: user %q: %w", *missing, store.ErrNotFound)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO shares (object_id, username) SELECT $1, u FROM unnest($2::text[]) AS u`, o.ID, sharees)
		if qv := r.Object.Quorum; qv != nil {
			b.Queue(`INSERT INTO key_quorum (object_id, use_value, manage_value) VALUES ($1, $2, $3)`, o.ID, qv[0], qv[1])
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return store.ObjectRecord{}, store.Commit{}, wrapErr("replicate", err)
	}
	o.Version = 1
	return o, c, nil
}
