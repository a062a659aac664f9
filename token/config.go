package token

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gohsm/internal/ck"
	"gohsm/token/cluster"
	"gohsm/token/logincache"
	"gohsm/token/metrics"
	"gohsm/token/profile"
	"gohsm/token/store"
	"gohsm/token/store/postgres"
)

// Config is the module configuration. It is found, in order, in the
// C_Initialize pReserved string, $GOHSM_CONF, $XDG_CONFIG_HOME/gohsm/gohsm.conf
// (or ~/.config/gohsm/gohsm.conf), /etc/gohsm/gohsm.conf; with none, the
// embedded default applies (see DefaultConfig).
//
// The format is line based: "key = value", '#' comments, and one
// "[slot N]" section per slot, N being the slot ID that clients see. A
// value may be written in quotes ("..." or '...', taken without them); a
// stray quote and a relative path (token_dir, dir, log_file) are errors. A
// key set twice in a section takes its last value, so that a file can be
// extended by appending (a packaged file with local lines after it, tests
// that override one setting). Slot IDs come from the file, so they never change (unlike SoftHSM's, which change on
// C_InitToken).
//
//	token_dir = /var/lib/gohsm      # slot tokens live in token_dir/slot-N unless the slot says dir =
//	log_level = warn                # error | warn (default) | info | debug
//	log_file  = /var/log/gohsm.log  # default: standard error
//	lockout_threshold = 5           # consecutive wrong passwords before a user is locked
//	kdf_time = 3                    # argon2id passes (store.DefaultKDF)
//	kdf_memory = 65536              # argon2id memory, KiB
//	kdf_threads = 2
//	min_pin_len = 4
//	max_pin_len = 64
//	sync = normal                   # normal: durable against process crashes; full: also power loss
//	token_group = www-data          # share tokens with a group (dirs 0770, files 0660)
//	store = sqlite                  # default store of every slot: sqlite | postgres://...
//	store_timeout = 5s              # default for every slot (100ms to 5m)
//	metrics = auto                  # default for every slot: auto (while a console watches) | on | off
//	login_cache = keyring           # default for every slot: keyring (docs/store.md, "The login cache") | off
//	login_cache_ttl = 5m            # default for every slot: how long an entry lives (1s to 24h)
//
//	[slot 0]
//	label = gohsm
//	profile = standard              # standard (PKCS#11 as specified) | cloudhsm (AWS CloudHSM, Client SDK 5)
//	dir = /var/lib/gohsm/slot-0
//	hsm_type = hsm2m                # cloudhsm only: hsm1 | hsm2m (quotas)
//	fips = true                     # cloudhsm only: the cluster's mode
//	lockout_threshold = 5           # the slot's own values of these three; without them
//	min_pin_len = 8                 # the top-level ones when set, else the profile's
//	max_pin_len = 32                # defaults (cloudhsm: 5, 8, 32; standard: 5, 4, 64)
//	store = postgres://gohsm@db.example/gohsm?sslmode=verify-full  # docs/store-postgres.md
//	store_timeout = 5s              # a PostgreSQL store call gives up after this
//	metrics = on                    # the slot's own: auto | on | off (docs/metrics.md)
//	login_cache = off               # the slot's own: keyring | off
//	login_cache_ttl = 1m            # the slot's own
//
// A slot's emulated cluster (token/cluster, docs/cluster.md) takes these
// keys in its section; any of them but "cluster = off" turns it on (the
// cloudhsm profile has one by default: 2 HSMs, the key availability check
// on; standard has none):
//
//	cluster = on                    # on | off
//	hsms = 2                        # emulated HSMs, 1 to 32
//	key_availability_check = true   # a token key is usable once on 2 HSMs
//	replication_delay = 0s          # how long a new token key takes to reach the other HSMs
//	throttle = off                  # off | on (follows hsm_type) | hsm1 | hsm2m: ops/s per HSM
//	throttle.rsa-sign = 1000        # ops/s per HSM for a class, 0 = unlimited
//	retry_mode = standard           # standard (the SDK's retry of throttled calls) | off
//	latency = off                   # off | cloudhsm
//	latency.ec-sign = 1ms..3ms      # added per call: 2ms, 1ms..3ms, normal(2ms,500us); class all
//	degraded_latency = 50ms         # added by a degraded HSM
//	fault_plan = /etc/gohsm/plan.json
//	fault_seed = 1
type Config struct {
	Source           string // where the configuration came from, for logs
	TokenDir         string
	LogLevel         string
	LogFile          string
	LockoutThreshold int
	KDF              store.KDFParams
	MinPINLen        int
	MaxPINLen        int
	Sync             string
	// TokenGroup shares token directories with a group (by name or gid):
	// directories 0770, files 0660, so a service whose workers run as a
	// member of the group can use the tokens. Empty: owner only.
	TokenGroup string
	// Store and StoreTimeout are the top-level store and store_timeout,
	// the default of every slot (SlotConfig.Store).
	Store        string
	StoreTimeout time.Duration
	// Metrics is the top-level metrics, the default of every slot
	// (SlotConfig.Metrics).
	Metrics metrics.Mode
	// LoginCache and LoginCacheTTL are the top-level login_cache and
	// login_cache_ttl, the default of every slot (SlotConfig.LoginCache).
	LoginCache    string
	LoginCacheTTL time.Duration
	Slots         []SlotConfig

	// which of the keys a profile has defaults for were set at the top level
	setLockout, setMinPIN, setMaxPIN bool
}

// SlotConfig configures one slot.
type SlotConfig struct {
	ID      ck.ULong
	Label   string
	Profile string
	Dir     string
	// Settings are the profile's settings (hsm_type, fips).
	Settings profile.Settings
	// The slot's lockout threshold and password lengths; zero: the
	// module's (Config's) values.
	LockoutThreshold     int
	MinPINLen, MaxPINLen int
	// TestQuotas, for tests only (keys test_max_keys,
	// test_max_asymmetric_keys, test_max_certificates, not documented
	// for users): a value above 0 replaces a quota the profile has (it
	// adds none), so that a test reaches CloudHSM's limits without
	// making 16,666 keys.
	TestQuotas profile.Quotas
	// Cluster is the slot's emulated cluster (token/cluster, keys hsms,
	// throttle, latency, fault_plan, ...; docs/cluster.md).
	Cluster cluster.Config
	// Store is where the slot's token lives: StoreSQLite (token.db in
	// Dir) or a postgres:// URL (token/store/postgres; Dir then keeps
	// what is per host: cluster.state). It may hold a password: print
	// RedactURL(Store), never Store.
	Store string
	// StoreTimeout bounds every call of a PostgreSQL store (connecting
	// included): past it the call fails with CKR_DEVICE_ERROR.
	StoreTimeout time.Duration
	// Metrics says when the slot publishes its operation counters
	// (token/metrics, docs/metrics.md): auto (while a console watches),
	// on or off.
	Metrics metrics.Mode
	// LoginCache is where a login keeps what the password KDF unlocked
	// for the next process of the OS user (token/logincache): LoginCacheKeyring
	// or LoginCacheOff; LoginCacheTTL is how long an entry lives.
	LoginCache    string
	LoginCacheTTL time.Duration
}

// login_cache values.
const (
	LoginCacheKeyring = "keyring"
	LoginCacheOff     = "off"
)

// StoreSQLite is SlotConfig.Store for a token in the slot's directory.
const StoreSQLite = "sqlite"

// Store timeout bounds and default (store_timeout).
const (
	MinStoreTimeout     = 100 * time.Millisecond
	MaxStoreTimeout     = 5 * time.Minute
	DefaultStoreTimeout = 5 * time.Second
)

// Postgres reports whether the slot's token lives in PostgreSQL.
func (sc SlotConfig) Postgres() bool { return sc.Store != "" && sc.Store != StoreSQLite }

// DefaultConfig is the embedded default: one slot (ID 0) whose token lives
// under the user's data directory.
func DefaultConfig() *Config { return defaultConfig(os.Getenv) }

func defaultConfig(getenv func(string) string) *Config {
	c := &Config{
		Source:           "embedded default",
		TokenDir:         defaultTokenDir(getenv),
		LogLevel:         "warn",
		LockoutThreshold: 5,
		KDF:              store.DefaultKDF,
		MinPINLen:        4,
		MaxPINLen:        64,
		Sync:             "normal",
		Store:            StoreSQLite,
		StoreTimeout:     DefaultStoreTimeout,
		LoginCache:       LoginCacheKeyring,
		LoginCacheTTL:    logincache.DefaultTTL,
		Slots:            []SlotConfig{{ID: 0, Label: "gohsm", Profile: "standard"}},
	}
	if err := c.resolveSlot(&c.Slots[0], nil); err != nil {
		panic(err) // the standard profile has no settings to get wrong
	}
	return c
}

func defaultTokenDir(getenv func(string) string) string {
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "gohsm")
	}
	home := getenv("HOME")
	if home == "" {
		// nginx workers and other daemons run with an empty environment.
		if u, err := user.Current(); err == nil {
			home = u.HomeDir
		}
	}
	if home == "" {
		return "/var/lib/gohsm"
	}
	return filepath.Join(home, ".local", "share", "gohsm")
}

// errConfig marks configuration errors; C_Initialize answers them with
// CKR_ARGUMENTS_BAD when the configuration came through pReserved and
// CKR_GENERAL_ERROR otherwise.
var errConfig = errors.New("config")

// LoadConfig finds and parses the configuration. reserved is the
// C_Initialize pReserved string ("" when absent): either configuration text
// (it contains '=' or a newline) or a path to a configuration file.
func LoadConfig(reserved string) (*Config, error) { return LoadConfigEnv(reserved, os.Getenv) }

// LoadConfigEnv is LoadConfig reading the environment through getenv. A Go
// shared library's os.Getenv sees the environment as it was when the
// process started; the C boundary passes the C library's getenv so that a
// variable a host sets (setenv) before C_Initialize counts.
func LoadConfigEnv(reserved string, getenv func(string) string) (*Config, error) {
	if reserved != "" {
		if strings.ContainsAny(reserved, "=\n") {
			return parseConfig(reserved, "C_Initialize pReserved", getenv)
		}
		return loadConfigFile(reserved, getenv)
	}
	if p := getenv("GOHSM_CONF"); p != "" {
		return loadConfigFile(p, getenv)
	}
	var candidates []string
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		candidates = append(candidates, filepath.Join(x, "gohsm", "gohsm.conf"))
	} else if h := getenv("HOME"); h != "" {
		candidates = append(candidates, filepath.Join(h, ".config", "gohsm", "gohsm.conf"))
	}
	candidates = append(candidates, "/etc/gohsm/gohsm.conf")
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return loadConfigFile(p, getenv)
		}
	}
	c := defaultConfig(getenv)
	c.fillSlotDirs()
	return c, nil
}

// fillSlotDirs gives each slot without a dir of its own one under TokenDir.
func (c *Config) fillSlotDirs() {
	for i := range c.Slots {
		if c.Slots[i].Dir == "" {
			c.Slots[i].Dir = filepath.Join(c.TokenDir, fmt.Sprintf("slot-%d", c.Slots[i].ID))
		}
	}
}

func loadConfigFile(path string, getenv func(string) string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w: %v", errConfig, err)
	}
	return parseConfig(string(b), path, getenv)
}

// ParseConfig parses configuration text; source names it in error messages.
func ParseConfig(text, source string) (*Config, error) { return parseConfig(text, source, os.Getenv) }

func parseConfig(text, source string, getenv func(string) string) (*Config, error) {
	c := defaultConfig(getenv)
	c.Source = source
	c.Slots = nil
	var slot *SlotConfig
	slotSet := map[ck.ULong]map[string]bool{} // profile settings a slot section set
	// A slot's cluster keys wait until its section is read: their
	// defaults follow the profile, and throttle = on the hsm_type, which
	// may come later in the section.
	slotCluster := map[ck.ULong][]clusterKey{}
	sc := bufio.NewScanner(strings.NewReader(text))
	line := 0
	bad := func(format string, args ...any) error {
		return fmt.Errorf("config: %s:%d: %s: %w", source, line, fmt.Sprintf(format, args...), errConfig)
	}
	for sc.Scan() {
		line++
		s := sc.Text()
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.HasPrefix(s, "[") {
			if !strings.HasSuffix(s, "]") {
				return nil, bad("unterminated section %q", s)
			}
			f := strings.Fields(s[1 : len(s)-1])
			if len(f) != 2 || f[0] != "slot" {
				return nil, bad("unknown section %q (want [slot N])", s)
			}
			id, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				return nil, bad("slot id %q is not a number", f[1])
			}
			for _, o := range c.Slots {
				if o.ID == ck.ULong(id) {
					return nil, bad("slot %d defined twice", id)
				}
			}
			c.Slots = append(c.Slots, SlotConfig{ID: ck.ULong(id), Label: "gohsm", Profile: "standard"})
			slot = &c.Slots[len(c.Slots)-1]
			slotSet[slot.ID] = map[string]bool{}
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, bad("expected key = value, got %q", s)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		v, qerr := unquote(v)
		if qerr != nil {
			return nil, bad("%s: %v", k, qerr)
		}
		switch k {
		case "token_dir", "dir", "log_file":
			if v != "" && !filepath.IsAbs(v) {
				return nil, bad("%s %q: want an absolute path (a relative one would depend on the directory each program starts in)", k, v)
			}
		}
		var err error
		var n int
		num := func(min, max int) (int, error) {
			n, err := strconv.Atoi(v)
			if err != nil || n < min || n > max {
				return 0, bad("%s = %q: want a number from %d to %d", k, v, min, max)
			}
			return n, nil
		}
		if slot != nil {
			switch k {
			case "label":
				if len(v) > 32 {
					return nil, bad("label %q longer than 32 bytes", v)
				}
				slot.Label = v
			case "profile":
				if !profile.Known(v) {
					return nil, bad("unknown profile %q (known: %s)", v, strings.Join(profile.Names, ", "))
				}
				slot.Profile = v
			case "hsm_type":
				if v != profile.HSM1 && v != profile.HSM2M {
					return nil, bad("hsm_type %q: want hsm1 or hsm2m", v)
				}
				slot.Settings.HSMType = v
				slotSet[slot.ID]["hsm_type"] = true
			case "fips":
				switch v {
				case "true":
					slot.Settings.FIPS = true
				case "false":
					slot.Settings.FIPS = false
				default:
					return nil, bad("fips %q: want true or false", v)
				}
				slotSet[slot.ID]["fips"] = true
			case "lockout_threshold":
				if slot.LockoutThreshold, err = num(1, 1000); err != nil {
					return nil, err
				}
			case "min_pin_len":
				if slot.MinPINLen, err = num(1, 255); err != nil {
					return nil, err
				}
			case "max_pin_len":
				if slot.MaxPINLen, err = num(1, 255); err != nil {
					return nil, err
				}
			case "dir":
				slot.Dir = v
			case "store":
				if err := checkStore(v); err != nil {
					return nil, bad("%v", err)
				}
				slot.Store = v
			case "store_timeout":
				if slot.StoreTimeout, err = parseStoreTimeout(v); err != nil {
					return nil, bad("%v", err)
				}
			case "metrics":
				if slot.Metrics, err = metrics.ParseMode(v); err != nil {
					return nil, bad("metrics %q: want auto, on or off", v)
				}
				slotSet[slot.ID]["metrics"] = true
			case "login_cache":
				if slot.LoginCache, err = parseLoginCache(v); err != nil {
					return nil, bad("%v", err)
				}
			case "login_cache_ttl":
				if slot.LoginCacheTTL, err = parseLoginCacheTTL(v); err != nil {
					return nil, bad("%v", err)
				}
			case "test_max_keys":
				if slot.TestQuotas.Keys, err = num(1, 1<<30); err != nil {
					return nil, err
				}
			case "test_max_asymmetric_keys":
				if slot.TestQuotas.AsymmetricKeys, err = num(1, 1<<30); err != nil {
					return nil, err
				}
			case "test_max_certificates":
				if slot.TestQuotas.Certificates, err = num(1, 1<<30); err != nil {
					return nil, err
				}
			default:
				if isClusterKey(k) {
					slotCluster[slot.ID] = append(slotCluster[slot.ID], clusterKey{k, v, line})
					continue
				}
				return nil, bad("unknown slot key %q", k)
			}
			continue
		}
		switch k {
		case "token_dir":
			c.TokenDir = v
		case "log_level":
			switch v {
			case "error", "warn", "info", "debug":
				c.LogLevel = v
			default:
				return nil, bad("log_level %q: want error, warn, info or debug", v)
			}
		case "log_file":
			c.LogFile = v
		case "lockout_threshold":
			n, err = num(1, 1000)
			c.LockoutThreshold, c.setLockout = n, true
		case "kdf_time":
			n, err = num(1, store.MaxKDFTime)
			c.KDF.Time = uint32(n)
		case "kdf_memory":
			n, err = num(8, store.MaxKDFMemory)
			c.KDF.Memory = uint32(n)
		case "kdf_threads":
			n, err = num(1, store.MaxKDFThreads)
			c.KDF.Threads = uint8(n)
		case "min_pin_len":
			n, err = num(1, 255)
			c.MinPINLen, c.setMinPIN = n, true
		case "max_pin_len":
			n, err = num(1, 255)
			c.MaxPINLen, c.setMaxPIN = n, true
		case "token_group":
			if _, err := lookupGroup(v); err != nil {
				return nil, bad("token_group %q: %v", v, err)
			}
			c.TokenGroup = v
		case "sync":
			if v != "normal" && v != "full" {
				return nil, bad("sync %q: want normal or full", v)
			}
			c.Sync = v
		case "store":
			if err := checkStore(v); err != nil {
				return nil, bad("%v", err)
			}
			c.Store = v
		case "store_timeout":
			var d time.Duration
			if d, err = parseStoreTimeout(v); err != nil {
				return nil, bad("%v", err)
			}
			c.StoreTimeout = d
		case "metrics":
			if c.Metrics, err = metrics.ParseMode(v); err != nil {
				return nil, bad("metrics %q: want auto, on or off", v)
			}
		case "login_cache":
			if c.LoginCache, err = parseLoginCache(v); err != nil {
				return nil, bad("%v", err)
			}
		case "login_cache_ttl":
			if c.LoginCacheTTL, err = parseLoginCacheTTL(v); err != nil {
				return nil, bad("%v", err)
			}
		default:
			return nil, bad("unknown key %q", k)
		}
		if err != nil {
			return nil, err
		}
	}
	if c.MinPINLen > c.MaxPINLen {
		return nil, fmt.Errorf("config: %s: min_pin_len %d > max_pin_len %d: %w", source, c.MinPINLen, c.MaxPINLen, errConfig)
	}
	// Each bound alone was checked above; together they may still ask for
	// less than 8 KiB per lane or more than store.MaxKDFCost.
	if err := c.KDF.Validate(); err != nil {
		return nil, fmt.Errorf("config: %s: kdf_time, kdf_memory, kdf_threads: %v: %w", source, err, errConfig)
	}
	if c.TokenDir == "" {
		return nil, fmt.Errorf("config: %s: token_dir is empty: %w", source, errConfig)
	}
	if len(c.Slots) == 0 {
		c.Slots = []SlotConfig{{ID: 0, Label: "gohsm", Profile: "standard"}}
	}
	for i := range c.Slots {
		if err := c.resolveSlot(&c.Slots[i], slotSet[c.Slots[i].ID]); err != nil {
			return nil, fmt.Errorf("config: %s: [slot %d]: %v: %w", source, c.Slots[i].ID, err, errConfig)
		}
		sc := &c.Slots[i]
		if !slotSet[sc.ID]["metrics"] {
			sc.Metrics = c.Metrics
		}
		for _, kv := range slotCluster[sc.ID] {
			if err := sc.Cluster.Set(kv.key, kv.value, sc.Settings.HSMType); err != nil {
				return nil, fmt.Errorf("config: %s:%d: %v: %w", source, kv.line, err, errConfig)
			}
		}
	}
	c.fillSlotDirs()
	return c, nil
}

// checkStore checks a store value: sqlite or a postgres:// URL that pgx
// reads. The value may hold a password, so no error quotes it.
func checkStore(v string) error {
	if v == StoreSQLite {
		return nil
	}
	if !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
		return fmt.Errorf("store: want sqlite or a postgres:// URL")
	}
	if _, err := postgres.ParseURL(v); err != nil {
		// pgx writes the URL's password as xxxxx in its errors; say it
		// again in case a later pgx does not.
		return fmt.Errorf("store: %s", redactIn(err.Error(), v))
	}
	return nil
}

// parseStoreTimeout reads store_timeout: a Go duration from
// MinStoreTimeout to MaxStoreTimeout.
func parseStoreTimeout(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < MinStoreTimeout || d > MaxStoreTimeout {
		return 0, fmt.Errorf("store_timeout = %q: want a Go duration from %v to %v (5s, 500ms)", v, MinStoreTimeout, MaxStoreTimeout)
	}
	return d, nil
}

// parseLoginCache reads login_cache: keyring or off.
func parseLoginCache(v string) (string, error) {
	if v != LoginCacheKeyring && v != LoginCacheOff {
		return "", fmt.Errorf("login_cache = %q: want keyring or off", v)
	}
	return v, nil
}

// parseLoginCacheTTL reads login_cache_ttl: a Go duration from
// logincache.MinTTL to logincache.MaxTTL.
func parseLoginCacheTTL(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < logincache.MinTTL || d > logincache.MaxTTL {
		return 0, fmt.Errorf("login_cache_ttl = %q: want a Go duration from %v to %v (5m, 30s)", v, logincache.MinTTL, logincache.MaxTTL)
	}
	return d, nil
}

// urlSecretParams are the URL parameters that hold secrets: the password
// and the passphrase of the client key (sslkey), as pgx reads them.
var urlSecretParams = []string{"password", "sslpassword"}

// RedactURL is a store value fit to print: a postgres:// URL without its
// password (in the user part or a password= parameter) nor its client
// key's passphrase (sslpassword=); sqlite as is.
func RedactURL(v string) string {
	if !strings.Contains(v, "://") {
		return v
	}
	u, err := url.Parse(v)
	if err != nil {
		// Not a URL net/url reads (pgx reads some, e.g. several hosts
		// with ports): keep the scheme only rather than risk a password.
		scheme, _, _ := strings.Cut(v, "://")
		return scheme + "://(unparsable URL, not shown)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	if q := u.Query(); q.Has("password") || q.Has("sslpassword") {
		for _, k := range urlSecretParams {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redactIn removes from msg the password of the store URL v, if it has one.
// A password with a raw '@' is also removed from its first '@' on: pgx's
// redaction masks the user part only up to the first '@', and prints the
// rest of the password as if it began the host.
func redactIn(msg, v string) string {
	for _, pw := range urlPasswords(v) {
		if pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		if _, rest, ok := strings.Cut(pw, "@"); ok && rest != "" {
			msg = strings.ReplaceAll(msg, "@"+rest, "@xxxxx")
		}
	}
	return msg
}

func urlPasswords(v string) []string {
	var pws []string
	u, err := url.Parse(v)
	if err != nil {
		// Best effort on what net/url refuses: user:password@ by hand.
		if _, rest, ok := strings.Cut(v, "://"); ok {
			if at := strings.LastIndexByte(rest, '@'); at >= 0 {
				if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
					pws = append(pws, pw)
				}
			}
		}
		return pws
	}
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			pws = append(pws, pw)
			if _, esc, _ := strings.Cut(u.User.String(), ":"); esc != pw {
				pws = append(pws, esc) // as written in the URL
			}
		}
	}
	for _, k := range urlSecretParams {
		if pw := u.Query().Get(k); pw != "" {
			pws = append(pws, pw, url.QueryEscape(pw))
		}
	}
	return pws
}

// resolveSlot completes a slot's profile settings and its own lockout
// threshold and password lengths: the slot's section wins, then the top
// level, then the profile's defaults. set names the profile settings the
// section gave.
func (c *Config) resolveSlot(sc *SlotConfig, set map[string]bool) error {
	def := profile.DefaultSettings(sc.Profile)
	if !set["hsm_type"] {
		sc.Settings.HSMType = def.HSMType
	}
	if !set["fips"] {
		sc.Settings.FIPS = def.FIPS
	}
	if sc.Profile != "cloudhsm" && (set["hsm_type"] || set["fips"]) {
		return fmt.Errorf("hsm_type and fips are settings of the cloudhsm profile, not of %q", sc.Profile)
	}
	if _, err := profile.New(sc.Profile, sc.Settings); err != nil {
		return err
	}
	pd := profile.ConfigDefaults(sc.Profile)
	pick := func(slotV *int, setTop bool, top, profDef int) {
		switch {
		case *slotV != 0:
		case setTop:
			*slotV = top
		default:
			*slotV = profDef
		}
	}
	// The profile's cluster (cloudhsm: 2 HSMs, the key availability
	// check on); the section's cluster keys go over it (parseConfig).
	sc.Cluster = cluster.DefaultConfig(sc.Profile)
	if sc.Store == "" {
		sc.Store = c.Store
	}
	if sc.StoreTimeout == 0 {
		sc.StoreTimeout = c.StoreTimeout
	}
	if sc.LoginCache == "" {
		sc.LoginCache = c.LoginCache
	}
	if sc.LoginCacheTTL == 0 {
		sc.LoginCacheTTL = c.LoginCacheTTL
	}
	pick(&sc.LockoutThreshold, c.setLockout, c.LockoutThreshold, pd.LockoutThreshold)
	pick(&sc.MinPINLen, c.setMinPIN, c.MinPINLen, pd.MinPINLen)
	pick(&sc.MaxPINLen, c.setMaxPIN, c.MaxPINLen, pd.MaxPINLen)
	if sc.MinPINLen > sc.MaxPINLen {
		return fmt.Errorf("min_pin_len %d > max_pin_len %d", sc.MinPINLen, sc.MaxPINLen)
	}
	return nil
}

// clusterKey is a cluster key of a slot's section, applied once the
// section is read.
type clusterKey struct {
	key, value string
	line       int
}

// isClusterKey reports whether k is one of cluster.Keys (a key ending in
// '.' there is a prefix: throttle.<class>, latency.<class>).
func isClusterKey(k string) bool {
	for _, name := range cluster.Keys {
		if k == name || strings.HasSuffix(name, ".") && strings.HasPrefix(k, name) && len(k) > len(name) {
			return true
		}
	}
	return false
}

// unquote takes a value written in double or single quotes as what is
// between them (so a value may keep leading or trailing blanks); a quote
// anywhere else is an error rather than part of the value (a quoted
// token_dir once made a directory named '"').
func unquote(v string) (string, error) {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
		if strings.ContainsAny(v, "\"'") {
			return "", fmt.Errorf("a quote inside a quoted value")
		}
		return v, nil
	}
	if strings.ContainsAny(v, "\"'") {
		return "", fmt.Errorf("value %s: quotes go around a whole value (a '#' starts a comment even inside them)", v)
	}
	return v, nil
}

// lookupGroup resolves a group name or numeric id.
func lookupGroup(name string) (int, error) {
	if gid, err := strconv.Atoi(name); err == nil && gid >= 0 {
		return gid, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}
