package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "modernc.org/sqlite"

	"gohsm/internal/testenv/pgtest"
)

// TestUnreadableSlotThroughABI: two slots, one whose token.db is garbage.
// C_Initialize succeeds, both slots are listed with their token present,
// the bad one's C_GetTokenInfo, C_OpenSession and C_InitToken answer
// CKR_TOKEN_NOT_RECOGNIZED, and the good one works. Before, C_Initialize
// failed (CKR_GENERAL_ERROR) for every slot. On PostgreSQL the good slot
// is the PostgreSQL one and the bad one stays a SQLite file.
func TestUnreadableSlotThroughABI(t *testing.T) {
	p := module(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	bad := filepath.Join(tokens, "slot-1")
	require.NoError(t, os.MkdirAll(bad, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(bad, "token.db"), bytes.Repeat([]byte("garbage!"), 1024), 0o600))
	conf := filepath.Join(dir, "gohsm.conf")
	text := configText(tokens, pgtest.SlotStore(t, "unreadable")) + "\n[slot 1]\nlabel = bad\n"
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o600))
	path := append([]byte(conf), 0)
	err := p.Initialize(pkcs11.InitializeWithReserved(unsafe.Pointer(&path[0])))
	runtime.KeepAlive(path)
	require.NoError(t, err, "C_Initialize")
	t.Cleanup(func() { p.Finalize() })

	for _, present := range []bool{false, true} {
		slots, err := p.GetSlotList(present)
		require.NoError(t, err)
		assert.Equal(t, []uint{0, 1}, slots, "C_GetSlotList(%v)", present)
	}
	si, err := p.GetSlotInfo(1)
	require.NoError(t, err)
	assert.Equal(t, uint(pkcs11.CKF_TOKEN_PRESENT), si.Flags)
	_, err = p.GetTokenInfo(1)
	requireRV(t, err, pkcs11.CKR_TOKEN_NOT_RECOGNIZED)
	_, err = p.OpenSession(1, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	requireRV(t, err, pkcs11.CKR_TOKEN_NOT_RECOGNIZED)
	requireRV(t, p.InitToken(1, soPIN, "bad"), pkcs11.CKR_TOKEN_NOT_RECOGNIZED)

	require.NoError(t, p.InitToken(0, soPIN, tokenName))
	tk := &tok{t: t, p: p, dir: tokens, slot: 0}
	tk.initPIN(userPIN)
	s := tk.userSession(userPIN)
	tk.genEC(s, oidP256, "works", true)
	ti, err := p.GetTokenInfo(0)
	require.NoError(t, err)
	assert.Equal(t, tokenName, strings.TrimRight(ti.Label, " "))
}

// TestDamagedTokenThroughABI: the token record of an initialised token with
// a user and a key is deleted behind the library. C_GetTokenInfo and
// C_OpenSession answer CKR_TOKEN_NOT_RECOGNIZED, C_InitToken with another
// officer PIN is refused and leaves the users and objects, and the
// officer's own PIN re-initialises. Before, the slot read "not initialised"
// and C_InitToken with any PIN deleted every user and object.
//
// On PostgreSQL the row is deleted by another client of the database that
// writes as a gohsm host does (the generation bumped and notified in the
// same transaction); the library notices within the notification latency,
// so the first check waits for it up to a bound.
func TestDamagedTokenThroughABI(t *testing.T) {
	tk := newToken(t)
	tk.initToken()
	s := tk.userSession(userPIN)
	tk.genEC(s, oidP256, "keep", true)
	require.NoError(t, tk.p.CloseSession(s))

	db := openTokenDB(t, tk)
	db.exec(t, `DELETE FROM token`)
	count := func(table string) (n int) {
		return db.count(t, table)
	}

	_, err := tk.p.GetTokenInfo(tk.slot)
	if db.pg != nil {
		deadline := time.Now().Add(notifyBound)
		for err == nil && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			_, err = tk.p.GetTokenInfo(tk.slot)
		}
	}
	requireRV(t, err, pkcs11.CKR_TOKEN_NOT_RECOGNIZED)
	_, err = tk.p.OpenSession(tk.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	requireRV(t, err, pkcs11.CKR_TOKEN_NOT_RECOGNIZED)
	requireRV(t, tk.p.InitToken(tk.slot, "mallory:mallory-pw", "wiped"), pkcs11.CKR_PIN_INCORRECT)
	requireRV(t, tk.p.InitToken(tk.slot, "admin:not-the-pw", "wiped"), pkcs11.CKR_PIN_INCORRECT)
	assert.Equal(t, 2, count("users"))
	assert.Equal(t, 2, count("objects"))
	require.NoError(t, tk.p.InitToken(tk.slot, soPIN, "again"))
	ti, err := tk.p.GetTokenInfo(tk.slot)
	require.NoError(t, err)
	assert.Equal(t, "again", strings.TrimRight(ti.Label, " "))
}

// notifyBound bounds the wait for a change written by another host of a
// PostgreSQL token to reach this process's caches (the NOTIFY latency is
// milliseconds; the bound is for a loaded machine).
const notifyBound = 2 * time.Second

// tokenDB is direct access to slot 0's token store behind the library:
// the SQLite file, or the PostgreSQL database.
type tokenDB struct {
	sqlite *sql.DB
	pg     *pgx.Conn
}

func openTokenDB(t *testing.T, tk *tok) *tokenDB {
	t.Helper()
	if dsn, ok := strings.CutPrefix(tk.store, "store = "); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close(context.Background()) })
		return &tokenDB{pg: c}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(tk.dir, "slot-0", "token.db")+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return &tokenDB{sqlite: db}
}

// exec runs one write statement. On PostgreSQL it runs as a gohsm host's
// write does: the generation bumped and notified first, in one transaction.
func (db *tokenDB) exec(t *testing.T, stmt string) {
	t.Helper()
	if db.sqlite != nil {
		_, err := db.sqlite.Exec(stmt)
		require.NoError(t, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, pgx.BeginFunc(ctx, db.pg, func(tx pgx.Tx) error {
		var n int64
		if err := tx.QueryRow(ctx, `UPDATE generation SET n = n + 1 RETURNING n`).Scan(&n); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify('gohsm_generation', $1)`, strconv.FormatInt(n, 10)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, stmt)
		return err
	}))
}

func (db *tokenDB) count(t *testing.T, table string) (n int) {
	t.Helper()
	q := `SELECT count(*) FROM ` + table
	if db.sqlite != nil {
		require.NoError(t, db.sqlite.QueryRow(q).Scan(&n))
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, db.pg.QueryRow(ctx, q).Scan(&n))
	return n
}
