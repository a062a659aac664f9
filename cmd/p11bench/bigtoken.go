package main

// Big tokens (issue 19, target 2; docs/bench.md "Big tokens").
//
//	p11bench bigtoken-make  -lib build/libgohsm.so -dir DIR -objects N
//	p11bench bigtoken-probe -lib L -conf TEXT -label TOKEN -pin PIN -touch PREFIX
//
// bigtoken-make builds a gohsm token of N objects (N/10 AES-256 keys of the
// crypto user, the rest CKO_DATA objects, labels obj-%07d, one more data
// object labelled bigtokenFind) in DIR/gohsm/slot-0. The token, its users
// and one object of each kind are made through the module; the other
// objects are copies of those two records (new unique ID, label and value;
// for a key a new data key wrapped for the owner and a new sealed value),
// written with store.CreateObjects in batches: the records the module
// writes, a million of them in minutes instead of hours. DIR/bigtoken.json
// records the generator version and the count, and a token whose record
// matches is reused.
//
// bigtoken-probe is one fresh process: C_Initialize, C_Login, a find by
// label, then C_GetAttributeValue on 10 objects found by label; it prints
// its phase timings. bigtoken.sh-free: the driver (bigtokenrun.go) runs it
// through runOnce for wall time and peak RSS.

/*
#include <stdlib.h>
#include "bench.h"

static CK_RV bt_GetAttributeValue(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
	CK_ATTRIBUTE_PTR t, CK_ULONG n) {
	return f->C_GetAttributeValue(s, o, t, n);
}

// bt_ecb_zero encrypts one zero block with AES-ECB under key o.
static CK_RV bt_ecb_zero(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_BYTE *out) {
	CK_MECHANISM m = {CKM_AES_ECB, NULL, 0};
	CK_BYTE zero[16] = {0};
	CK_ULONG n = 16;
	CK_RV rv = f->C_EncryptInit(s, &m, o);
	if (rv != CKR_OK) return rv;
	return f->C_Encrypt(s, zero, 16, out, &n);
}
*/
import "C"

import (
	"crypto/aes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"gohsm/internal/ck"
	"gohsm/token/store"
	"gohsm/token/store/postgres"
)

const (
	// bigtokenVersion changes whenever what bigtoken-make writes changes,
	// so that a token made by an older generator is made again.
	bigtokenVersion = 1
	bigtokenLabel   = "p11bench-big"
	bigtokenFind    = "bigtoken-find"
	bigtokenUser    = "user"
	bigtokenPIN     = "p11bench-user"
	bigtokenSO      = "admin:p11bench-so"
	bigtokenBatch   = 5000
)

// bigtokenRecord is DIR/bigtoken.json.
type bigtokenRecord struct {
	Version int     `json:"version"`
	Objects int     `json:"objects"`
	Keys    int     `json:"keys"`
	Seconds float64 `json:"build_seconds"`
}

// bigtokenConfExtra goes into every configuration the big-token modes
// write (the test's cheap KDF); empty: the defaults.
var bigtokenConfExtra = ""

// bigtokenStore, when set, is the postgres:// URL the big token's slot
// keeps its objects in (bigtoken-make -store); empty: SQLite in the
// directory.
var bigtokenStore = ""

// bigtokenConf is the module configuration of a big token in dir.
func bigtokenConf(dir string) string {
	c := fmt.Sprintf("token_dir = %s\nlog_level = warn\n%s[slot 0]\nlabel = %s\n", filepath.Join(dir, "gohsm"), bigtokenConfExtra, bigtokenLabel)
	if bigtokenStore != "" {
		c += "store = " + bigtokenStore + "\n"
	}
	return c
}

// openBigtokenStore opens slot 0's store as the module does.
func openBigtokenStore(dir string) (store.Store, error) {
	if bigtokenStore != "" {
		return postgres.Open(bigtokenStore, postgres.Options{})
	}
	return store.Open(filepath.Join(dir, "gohsm", "slot-0"), store.Options{})
}

// bigtokenKeys is how many of n objects are keys: a tenth.
func bigtokenKeys(n int) int { return n / 10 }

// bigtokenObjLabel is the label of object i.
func bigtokenObjLabel(i int) string { return fmt.Sprintf("obj-%07d", i) }

func readBigtokenRecord(dir string) (bigtokenRecord, bool) {
	var r bigtokenRecord
	b, err := os.ReadFile(filepath.Join(dir, "bigtoken.json"))
	if err != nil || json.Unmarshal(b, &r) != nil {
		return r, false
	}
	return r, true
}

func bigtokenMakeMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("p11bench bigtoken-make", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lib := fs.String("lib", "build/libgohsm.so", "gohsm module (with -store: default build/libgohsm-pg.so, the default one having no PostgreSQL store)")
	dir := fs.String("dir", "", "directory of the token (reused when its bigtoken.json matches)")
	n := fs.Int("objects", 1000000, "objects on the token, the find object included")
	fs.StringVar(&bigtokenStore, "store", "", "postgres:// URL of an empty database to keep the token in (default: SQLite in -dir); bigtoken-probe -conf then needs the same store line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *n < 1 || *n > 10000000 {
		return errors.New("want -dir and -objects 1..10000000")
	}
	pgModule(fs, lib)
	d, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	r, err := makeBigtoken(*lib, d, *n, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d objects (%d keys) in %.1f s\n", r.Objects, r.Keys, r.Seconds)
	return nil
}

// makeBigtoken builds the token in dir unless a matching one is there.
func makeBigtoken(lib, dir string, n int, log io.Writer) (bigtokenRecord, error) {
	if r, ok := readBigtokenRecord(dir); ok && r.Version == bigtokenVersion && r.Objects == n {
		fmt.Fprintf(log, "p11bench: big token %s: reused (%d objects)\n", dir, n)
		return r, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return bigtokenRecord{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return bigtokenRecord{}, err
	}
	start := time.Now()
	dataH, keyH, err := bigtokenTemplates(lib, dir)
	if err != nil {
		return bigtokenRecord{}, err
	}
	st, err := openBigtokenStore(dir)
	if err != nil {
		return bigtokenRecord{}, err
	}
	defer st.Close()
	keys := bigtokenKeys(n)
	if err := fillBigtoken(st, int64(dataH), int64(keyH), n-1, keys, log); err != nil {
		return bigtokenRecord{}, err
	}
	r := bigtokenRecord{Version: bigtokenVersion, Objects: n, Keys: keys, Seconds: time.Since(start).Seconds()}
	b, _ := json.Marshal(r)
	if err := os.WriteFile(filepath.Join(dir, "bigtoken.json"), b, 0o600); err != nil {
		return r, err
	}
	return r, nil
}

// bigtokenTemplates initialises the token through the module and makes
// the find object (a data object) and one AES-256 key, whose records the
// generator copies; the key is removed from the store by fillBigtoken.
func bigtokenTemplates(lib, dir string) (C.CK_OBJECT_HANDLE, C.CK_OBJECT_HANDLE, error) {
	p, err := load(lib, bigtokenConf(dir))
	if err != nil {
		return 0, 0, err
	}
	defer p.finalize()
	m := &module{name: "gohsm", p11: p, soPIN: bigtokenSO, pin: bigtokenUser + ":" + bigtokenPIN}
	t, err := m.openToken(bigtokenLabel)
	if err != nil {
		return 0, 0, err
	}
	defer m.closeSession(t.admin)
	dataH, err := m.createObject(t.admin, bigtokenDataAttrs(bigtokenFind))
	if err != nil {
		return 0, 0, err
	}
	keyH, err := m.generateKey(t.admin, ck.CKM_AES_KEY_GEN, aesKeyAttrs("template"))
	return dataH, keyH, err
}

func bigtokenDataAttrs(label string) []attr {
	return []attr{
		{ck.CKA_CLASS, ulong(C.CKO_DATA)},
		{ck.CKA_TOKEN, boolean(true)},
		{ck.CKA_PRIVATE, boolean(true)},
		{ck.CKA_LABEL, []byte(label)},
		{ck.CKA_APPLICATION, []byte(findApp)},
		{ck.CKA_VALUE, []byte("value " + label)},
	}
}

// fillBigtoken adds n objects, keys of them keys, copied from the records
// of the template data object and key (the key template is deleted after).
func fillBigtoken(st store.Store, dataID, keyID int64, n, keys int, log io.Writer) error {
	data, err := st.Object(dataID)
	if err != nil {
		return err
	}
	key, err := st.Object(keyID)
	if err != nil {
		return err
	}
	u, err := st.User(bigtokenUser)
	if err != nil {
		return err
	}
	sec, err := store.UnwrapUserSecret(store.DeriveKEK([]byte(bigtokenPIN), u.Salt, u.KDF), u.WrappedKey, u.Name)
	if err != nil {
		return fmt.Errorf("big token: the user's secret: %w", err)
	}
	kr, err := store.NewKeyring(sec)
	if err != nil {
		return err
	}
	if len(key.Sealed) != 1 || key.Sealed[ck.CKA_VALUE] == nil || key.Owner != u.Name {
		return fmt.Errorf("big token: the template key's record has sealed %d values, owner %q: this generator knows an AES key with CKA_VALUE sealed", len(key.Sealed), key.Owner)
	}
	batch := make([]store.ObjectRecord, 0, bigtokenBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, _, err := st.CreateObjects(batch)
		batch = batch[:0]
		return err
	}
	last := time.Now()
	for i := range n {
		var rec store.ObjectRecord
		if i >= n-keys {
			if rec, err = copyKeyRecord(key, kr, bigtokenObjLabel(i)); err != nil {
				return err
			}
		} else {
			rec = copyRecord(data, bigtokenObjLabel(i))
			rec.Attrs[ck.CKA_VALUE] = []byte("value " + bigtokenObjLabel(i))
		}
		batch = append(batch, rec)
		if len(batch) == bigtokenBatch {
			if err := flush(); err != nil {
				return fmt.Errorf("big token: object %d: %w", i, err)
			}
			if time.Since(last) > 10*time.Second {
				fmt.Fprintf(log, "p11bench: big token: %d of %d objects\n", i+1, n)
				last = time.Now()
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	_, err = st.DeleteObject(keyID)
	return err
}

// copyRecord is rec with a new unique ID and label, and no ID or sealed values.
func copyRecord(rec *store.ObjectRecord, label string) store.ObjectRecord {
	b := make([]byte, 16)
	rand.Read(b)
	uid := hex.EncodeToString(b)
	out := store.ObjectRecord{UniqueID: uid, Owner: rec.Owner, Private: rec.Private,
		Attrs: make(map[ck.AttributeType][]byte, len(rec.Attrs)), Sealed: map[ck.AttributeType][]byte{}}
	for t, v := range rec.Attrs {
		out.Attrs[t] = v
	}
	out.Attrs[ck.CKA_UNIQUE_ID] = []byte(uid)
	out.Attrs[ck.CKA_LABEL] = []byte(label)
	return out
}

// copyKeyRecord copies an AES key's record with a new random value sealed
// under a new data key wrapped for the owner, and the check value of that
// value (the first 3 bytes of AES-ECB of a zero block).
func copyKeyRecord(key *store.ObjectRecord, kr *store.Keyring, label string) (store.ObjectRecord, error) {
	out := copyRecord(key, label)
	value := make([]byte, 32)
	rand.Read(value)
	dk := store.NewDataKey()
	s, err := store.NewSealer(dk)
	if err != nil {
		return out, err
	}
	out.Sealed[ck.CKA_VALUE] = s.Seal(out.UniqueID, ck.CKA_VALUE, value)
	out.Keys = map[string][]byte{key.Owner: kr.WrapOwnDataKey(dk, out.UniqueID, key.Owner)}
	if _, ok := out.Attrs[ck.CKA_CHECK_VALUE]; ok {
		c, err := aes.NewCipher(value)
		if err != nil {
			return out, err
		}
		kcv := make([]byte, aes.BlockSize)
		c.Encrypt(kcv, kcv)
		out.Attrs[ck.CKA_CHECK_VALUE] = kcv[:3]
	}
	return out, nil
}

// probePhases are one probe's own timings.
type probePhases struct {
	init, login, find, touch time.Duration
	found                    int
	// rss is VmRSS after the touches, with the module still loaded
	// (bytes): what the process holds, against wait4's peak.
	rss int64
}

// vmRSS reads this process's VmRSS from /proc/self/status.
func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

func bigtokenProbeMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("p11bench bigtoken-probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lib := fs.String("lib", "build/libgohsm.so", "module (with -store: default build/libgohsm-pg.so)")
	conf := fs.String("conf", "", "C_Initialize pReserved (gohsm's configuration text)")
	label := fs.String("label", bigtokenLabel, "token label")
	pin := fs.String("pin", bigtokenUser+":"+bigtokenPIN, "user PIN")
	find := fs.String("find", bigtokenFind, "label to find")
	n := fs.Int("objects", 0, "objects on the token: the 10 touched are spread over obj-0000000 .. obj-(N-2)")
	confDir := fs.String("dir", "", "instead of -conf: the configuration bigtoken-make writes for this directory (with -store)")
	fs.StringVar(&bigtokenStore, "store", "", "with -dir: the postgres:// URL bigtoken-make was given")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pgModule(fs, lib)
	if *confDir != "" {
		*conf = bigtokenConf(*confDir)
	}
	ph, err := bigtokenProbe(*lib, *conf, *label, *pin, *find, *n)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "init_ms %.3f login_ms %.3f find_ms %.3f touch_ms %.3f touched %d rss_kib %d\n",
		ms(ph.init), ms(ph.login), ms(ph.find), ms(ph.touch), ph.found, ph.rss>>10)
	return nil
}

// pgModule makes build/libgohsm-pg.so the module of a token given -store
// when -lib was left at its default: build/libgohsm.so, built without the
// PostgreSQL store, refuses the configuration.
func pgModule(fs *flag.FlagSet, lib *string) {
	if bigtokenStore == "" {
		return
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "lib" })
	if !set {
		*lib = "build/libgohsm-pg.so"
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func bigtokenProbe(lib, conf, label, pin, find string, n int) (probePhases, error) {
	var ph probePhases
	t0 := time.Now()
	p, err := load(lib, conf)
	if err != nil {
		return ph, err
	}
	defer p.finalize()
	m := &module{name: "probe", p11: p}
	slot, ok, err := m.slotByLabel(label)
	if err != nil {
		return ph, err
	}
	if !ok {
		return ph, fmt.Errorf("no token labelled %q", label)
	}
	s, err := m.openSession(slot)
	if err != nil {
		return ph, err
	}
	t1 := time.Now()
	ph.init = t1.Sub(t0)
	if err := m.login(s, C.CKU_USER, pin); err != nil {
		return ph, err
	}
	t2 := time.Now()
	ph.login = t2.Sub(t1)
	hs, err := m.p11.find(s, []attr{{ck.CKA_LABEL, []byte(find)}}, 0)
	if err != nil {
		return ph, err
	}
	if len(hs) != 1 {
		return ph, fmt.Errorf("find %q: %d objects, want 1", find, len(hs))
	}
	t3 := time.Now()
	ph.find = t3.Sub(t2)
	// 10 objects spread over the token, keys among them when it has any.
	for i := range 10 {
		if n < 2 {
			break
		}
		l := bigtokenObjLabel(i * (n - 2) / 9)
		hs, err := m.p11.find(s, []attr{{ck.CKA_LABEL, []byte(l)}}, 0)
		if err != nil {
			return ph, err
		}
		if len(hs) != 1 {
			return ph, fmt.Errorf("find %q: %d objects, want 1", l, len(hs))
		}
		got, err := getAttr(p, s, hs[0], ck.CKA_LABEL, 64)
		if err != nil {
			return ph, err
		}
		if string(got) != l {
			return ph, fmt.Errorf("object %q reads label %q", l, got)
		}
		ph.found++
	}
	ph.touch = time.Since(t3)
	// The last object is a key when the token has any: its sealed value
	// must open, and match the check value the generator stored.
	if n >= 11 {
		if err := checkKey(m, s, bigtokenObjLabel(n-2)); err != nil {
			return ph, err
		}
	}
	ph.rss = vmRSS()
	return ph, errors.Join(m.logout(s), m.closeSession(s))
}

// getAttr reads one attribute of at most max bytes.
func getAttr(p *p11, s C.CK_SESSION_HANDLE, h C.CK_OBJECT_HANDLE, t ck.AttributeType, max int) ([]byte, error) {
	a := (*C.CK_ATTRIBUTE)(C.calloc(1, C.sizeof_CK_ATTRIBUTE))
	defer C.free(unsafe.Pointer(a))
	buf := C.calloc(C.size_t(max), 1)
	defer C.free(buf)
	a._type = C.CK_ATTRIBUTE_TYPE(t)
	a.pValue = C.CK_VOID_PTR(buf)
	a.ulValueLen = C.CK_ULONG(max)
	if err := check("C_GetAttributeValue", C.bt_GetAttributeValue(p.f, s, h, a, 1)); err != nil {
		return nil, err
	}
	return C.GoBytes(unsafe.Pointer(buf), C.int(a.ulValueLen)), nil
}

// parseProbe reads a probe's output line.
func parseProbe(out string) (probePhases, error) {
	var ph probePhases
	var i, l, f, t float64
	var kib int64
	line := strings.TrimSpace(out)
	if k := strings.LastIndex(line, "init_ms"); k >= 0 {
		line = line[k:]
	}
	if _, err := fmt.Sscanf(line, "init_ms %f login_ms %f find_ms %f touch_ms %f touched %d rss_kib %d", &i, &l, &f, &t, &ph.found, &kib); err != nil {
		return ph, fmt.Errorf("probe output %q: %w", out, err)
	}
	d := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	ph.init, ph.login, ph.find, ph.touch, ph.rss = d(i), d(l), d(f), d(t), kib<<10
	return ph, nil
}

// subcommands are the modes of p11bench besides the benchmark and proc.
var subcommands = map[string]func(args []string, stdout, stderr io.Writer) error{
	"bigtoken-make":  bigtokenMakeMain,
	"bigtoken-probe": bigtokenProbeMain,
	"bigtoken":       bigtokenMain,
}

// checkKey encrypts a zero block with the key labelled l and compares the
// start with its CKA_CHECK_VALUE.
func checkKey(m *module, s C.CK_SESSION_HANDLE, l string) error {
	hs, err := m.p11.find(s, []attr{{ck.CKA_LABEL, []byte(l)}}, 0)
	if err != nil || len(hs) != 1 {
		return fmt.Errorf("key %q: %d found (%v)", l, len(hs), err)
	}
	kcv, err := getAttr(m.p11, s, hs[0], ck.CKA_CHECK_VALUE, 16)
	if err != nil {
		return fmt.Errorf("key %q: %w", l, err)
	}
	out := (*C.CK_BYTE)(C.calloc(16, 1))
	defer C.free(unsafe.Pointer(out))
	if err := check("C_Encrypt", C.bt_ecb_zero(m.f, s, hs[0], out)); err != nil {
		return fmt.Errorf("key %q: %w", l, err)
	}
	if got := C.GoBytes(unsafe.Pointer(out), 3); len(kcv) != 3 || string(got) != string(kcv) {
		return fmt.Errorf("key %q: encrypts to %x..., check value %x", l, got, kcv)
	}
	return nil
}
