// Package token is gohsm's token layer: slots, tokens, sessions, users and
// roles, objects and their attribute rules, and the operations that tie
// objects to the mechanism table. It knows nothing of C; the pkcs11 package
// marshals Cryptoki calls into it.
package token

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync/atomic"

	"gohsm/internal/ck"
	"gohsm/token/audit"
	"gohsm/token/cluster"
	"gohsm/token/store"
	"gohsm/token/store/postgres"
)

// Version of gohsm reported in CK_INFO / CK_TOKEN_INFO.
const (
	VersionMajor = 0
	VersionMinor = 1
)

// Module is one process's view of gohsm: the slots of the configuration and
// the sessions opened on them.
type Module struct {
	cfg     *Config
	log     *slog.Logger
	logFile *os.File
	rand    io.Reader

	slots    []*Slot
	slotByID map[ck.ULong]*Slot

	// storeOpts is how every slot's store is opened: at Open, and again
	// when a reset or delete reopens a token (reopenAfter).
	storeOpts store.Options

	// sessions maps handles to open sessions; a sync.Map because every call
	// looks a session up and concurrent lookups must not contend.
	sessions   sessionTable // handle -> session, for every call's lookup
	nextHandle atomic.Uint64

	// csign is the C side of C_Sign (csign.go), nil when there is none.
	csign CSign
}

// Open opens the module for a configuration: every slot's token store is
// opened (and created empty, uninitialised, when missing). A slot whose
// store cannot be opened stays listed, its token not recognised.
func Open(cfg *Config) (*Module, error) {
	// ParseConfig checks this too; a Config made in code (the CLI, tests)
	// must not reach argon2 with parameters that crash or never return.
	if err := cfg.KDF.Validate(); err != nil {
		return nil, fmt.Errorf("token: config %s: %v: %w", cfg.Source, err, errConfig)
	}
	m := &Module{
		cfg:      cfg,
		rand:     rand.Reader,
		slotByID: map[ck.ULong]*Slot{},
	}
	if err := m.openLog(); err != nil {
		return nil, err
	}
	opts := store.Options{Sync: cfg.Sync, Log: m.log}
	if cfg.TokenGroup != "" {
		gid, err := lookupGroup(cfg.TokenGroup)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("token: token_group %q: %w", cfg.TokenGroup, err)
		}
		opts.Group = &gid
	}
	m.storeOpts = opts
	for _, sc := range cfg.Slots {
		prof, err := newProfile(sc)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("token: slot %d: %v: %w", sc.ID, err, errConfig)
		}
		st, err := openStore(sc, opts)
		if err != nil {
			// One unreadable token no longer fails C_Initialize for every
			// slot: this one reports its token as not recognised.
			m.log.Error("gohsm: slot's token cannot be opened", "slot", sc.ID, "dir", sc.Dir, "store", RedactURL(sc.Store), "err", err)
			st = newBrokenStore(sc.ID, err)
		}
		s := newSlot(m, sc, st, prof)
		m.slots = append(m.slots, s)
		m.slotByID[sc.ID] = s
		if _, broken := st.(brokenStore); broken {
			continue // its token is not recognised; no cluster either
		}
		if err := m.openCluster(s); err != nil {
			m.log.Error("gohsm: slot's cluster state cannot be opened", "slot", sc.ID, "dir", sc.Dir, "err", err)
			m.Close()
			return nil, fmt.Errorf("token: slot %d: %v: %w", sc.ID, err, ck.CKR_GENERAL_ERROR) // err says "cluster: ..."
		}
		m.openMetrics(s)
	}
	sort.Slice(m.slots, func(i, j int) bool { return m.slots[i].cfg.ID < m.slots[j].cfg.ID })
	m.log.Info("gohsm: module opened", "config", cfg.Source, "slots", len(m.slots))
	return m, nil
}

// openStore opens a slot's token store: SQLite's token.db in the slot's
// directory, or the PostgreSQL database of its store URL. A database that
// does not answer is no error here (postgres.Open checks the schema at the
// first call that reaches it); a bad URL or a schema of another version
// is, and its message says what to do.
func openStore(sc SlotConfig, opts store.Options) (store.Store, error) {
	if !sc.Postgres() {
		return store.Open(sc.Dir, opts)
	}
	// The slot's directory keeps what is per host (cluster.state).
	if err := os.MkdirAll(sc.Dir, 0o700); err != nil {
		return nil, err
	}
	if opts.Group != nil {
		_ = os.Chown(sc.Dir, -1, *opts.Group)
		_ = os.Chmod(sc.Dir, 0o770)
	}
	timeout := sc.StoreTimeout
	if timeout == 0 {
		timeout = DefaultStoreTimeout
	}
	st, err := postgres.Open(sc.Store, postgres.Options{Timeout: timeout, Log: opts.Log})
	if err != nil {
		return nil, fmt.Errorf("%s%s", redactIn(err.Error(), sc.Store), storeAdvice(err))
	}
	return st, nil
}

// storeAdvice is what to do about a store that cannot be used, after the
// error saying why (the VersionError says it for an older or newer schema).
func storeAdvice(err error) string {
	var ve *postgres.VersionError
	switch {
	case errors.As(err, &ve):
		return ""
	case errors.Is(err, postgres.ErrNotStore):
		return " (the database's schema holds other tables: give gohsm a database or schema of its own)"
	case errors.Is(err, store.ErrUnavailable):
		return " (check the store URL, the server and the credentials: PGPASSWORD, ~/.pgpass)"
	}
	return ""
}

func (m *Module) openLog() error {
	level := map[string]slog.Level{"error": slog.LevelError, "warn": slog.LevelWarn, "info": slog.LevelInfo, "debug": slog.LevelDebug}[m.cfg.LogLevel]
	var w io.Writer = os.Stderr
	if m.cfg.LogFile != "" {
		f, err := os.OpenFile(m.cfg.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("token: log file: %w", err)
		}
		m.logFile = f
		w = f
	}
	m.log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	return nil
}

// Logger is the module's logger.
func (m *Module) Logger() *slog.Logger { return m.log }

// Config is the configuration the module was opened with.
func (m *Module) Config() *Config { return m.cfg }

// Close closes every session and store.
func (m *Module) Close() error {
	m.sessions.clear(ck.ULong(m.nextHandle.Load()))
	var errs []error
	for _, s := range m.slots {
		s.mu.Lock()
		s.forgetSecretsLocked() // while the sessions are there to tell busy ones
		s.logoutLocked(nil, audit.CN_APP_FINALIZE)
		s.dropAllSessionsLocked()
		s.login = nil
		s.mu.Unlock()
		s.stopAuditFlush()
		s.flushAudit()
		errs = append(errs, s.st.Close(), s.closeCluster())
	}
	if m.logFile != nil {
		errs = append(errs, m.logFile.Close())
	}
	return errors.Join(errs...)
}

// SlotIDs lists the slots in ID order. Every configured slot has a token
// present (initialised or not).
func (m *Module) SlotIDs() []ck.ULong {
	ids := make([]ck.ULong, len(m.slots))
	for i, s := range m.slots {
		ids[i] = s.cfg.ID
	}
	return ids
}

// Slot returns a slot by ID (CKR_SLOT_ID_INVALID).
func (m *Module) Slot(id ck.ULong) (*Slot, error) {
	s, ok := m.slotByID[id]
	if !ok {
		return nil, fmt.Errorf("token: slot %d: %w", id, ck.CKR_SLOT_ID_INVALID)
	}
	return s, nil
}

// session looks up an open session (CKR_SESSION_HANDLE_INVALID).
func (m *Module) session(h ck.ULong) (*Session, error) {
	se, ok := m.sessions.load(h)
	if !ok {
		return nil, fmt.Errorf("token: session %d: %w", h, ck.CKR_SESSION_HANDLE_INVALID)
	}
	return se, nil
}

// GenerateRandom fills p from the system's CSPRNG (C_GenerateRandom). The
// session must exist.
func (m *Module) GenerateRandom(h ck.ULong, p []byte) (err error) {
	if s, t0 := m.begin(h); s != nil {
		defer s.record(cluster.ClassRandom, t0, &err)
	}
	se, err := m.session(h)
	if err != nil {
		return err
	}
	if s := se.slot; s.cl != nil {
		if err := s.cl.Fault(cluster.FuncGenerateRandom); err != nil {
			return err
		}
		if _, err := s.admitAny(cluster.ClassRandom); err != nil {
			return err
		}
	}
	_, err = io.ReadFull(m.rand, p)
	return err
}

// SeedRandom answers C_SeedRandom: the generator is the operating system's
// and cannot be seeded.
func (m *Module) SeedRandom(h ck.ULong) error {
	if _, err := m.session(h); err != nil {
		return err
	}
	return fmt.Errorf("token: seed random: %w", ck.CKR_RANDOM_SEED_NOT_SUPPORTED)
}

// CheckSession reports CKR_SESSION_HANDLE_INVALID for a handle that is not
// an open session (for calls that decode arguments before reaching the
// token, so that a bad handle is reported before a bad argument).
func (m *Module) CheckSession(h ck.ULong) error {
	_, err := m.session(h)
	return err
}
