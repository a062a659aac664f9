// Command p11bench measures PKCS#11 modules side by side: it loads each
// module with dlopen, takes its function list from C_GetFunctionList and
// calls it through small C functions, as OpenSSL, NSS and Java do. The
// timed loop runs in C (bench.c) on input and output buffers allocated once
// in C memory, one session per OS thread; Go only orchestrates.
//
//	p11bench -module gohsm=build/libgohsm.so -pin gohsm=user:pw -so-pin gohsm=admin:pw \
//	         -module softhsm=/usr/lib/softhsm/libsofthsm2.so -pin softhsm=1234 -so-pin softhsm=5678
//
// Ratios are first module / second module, and each -pair A/B. See
// docs/bench.md.
package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

type modSpec struct{ name, path string }

// pairSpec is a -pair: a ratio column a/b beside the first/second one.
// target, when set, is the minimum ratio on the operations that use a
// token key (signing, MAC, encryption: keys the modules cache); the others
// (key generation, find, sessions) are shown for information.
type pairSpec struct {
	a, b   string
	target float64
}

func (p pairSpec) name() string { return p.a + "/" + p.b }

type config struct {
	modules  []modSpec
	soPINs   []string // raw "name=value" or "value"
	pins     []string
	reserved []string // raw "name=value"
	// moduleOps restricts a module to the operations whose names hold
	// one of its substrings (-module-ops); a module absent runs all.
	moduleOps  map[string][]string
	pairs      []pairSpec
	label      string
	findLabel  string
	objects    int
	duration   time.Duration
	warmup     time.Duration
	sessions   []int
	ops        []string
	jsonPath   string
	goBaseline bool
	osslBase   bool
	rounds     int
	// scalingRounds is the rounds of the operations with a scaling
	// target (when more than rounds).
	scalingRounds int
	slices        int
	command       string
}

func (c *config) maxSessions() int { return slices.Max(c.sessions) }

type listFlag struct{ v *[]string }

func (l listFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l listFlag) Set(s string) error {
	*l.v = append(*l.v, s)
	return nil
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("p11bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mods, pairs, modOps []string
	cfg := &config{command: "p11bench " + strings.Join(args, " ")}
	fs.Var(listFlag{&mods}, "module", "module to load, NAME=PATH or PATH; repeatable or comma-separated (ratios are first/second)")
	fs.Var(listFlag{&cfg.soPINs}, "so-pin", "security officer PIN, NAME=PIN for one module or PIN for all; repeatable (used only to initialise a token)")
	fs.Var(listFlag{&cfg.pins}, "pin", "user PIN, NAME=PIN for one module or PIN for all; repeatable")
	fs.Var(listFlag{&pairs}, "pair", "A/B or A/B=TARGET: another ratio column, module A over module B (the first is always first/second); TARGET is the minimum ratio on the operations that use a token key; repeatable")
	fs.Var(listFlag{&modOps}, "module-ops", "NAME=SUBSTR[,SUBSTR...]: module NAME runs only the operations whose names hold one of the substrings (the others are shown as skipped); repeatable")
	fs.Var(listFlag{&cfg.reserved}, "reserved", "NAME=STRING: C_Initialize pReserved for one module (gohsm: configuration text or file); repeatable")
	fs.StringVar(&cfg.label, "label", "p11bench", "label of the token the benchmark uses (initialised on a free slot if missing)")
	fs.StringVar(&cfg.findLabel, "find-label", "p11bench-find", "label of the token holding the find objects (the -label token if equal)")
	fs.IntVar(&cfg.objects, "objects", 10000, "data objects on the find token")
	fs.DurationVar(&cfg.duration, "duration", time.Second, "measured time per operation, module, session count and round")
	fs.IntVar(&cfg.rounds, "rounds", 5, "measurements per operation, module and session count; the median (by ops/s) is reported, and a ratio is the median of the rounds' ratios")
	fs.IntVar(&cfg.scalingRounds, "scaling-rounds", 15, "rounds for the sign operations, which carry the 2-session scaling target (when more than -rounds): a round's 2-session/1-session ratio varies by 0.1-0.2 from round to round on a small VM, so the median of five decides a few hundredths by chance")
	fs.DurationVar(&cfg.warmup, "warmup", 200*time.Millisecond, "unmeasured run before each measurement")
	fs.IntVar(&cfg.slices, "slices", 16, "slices each measurement of a round is cut into; an operation's modules, session counts and OpenSSL threads take turns slice by slice, so that a ratio compares the same moments")
	sessions := fs.String("sessions", "1,2", "concurrent session counts, each session on its own OS thread")
	ops := fs.String("ops", "", "comma-separated substrings selecting operations (default all): "+opNames())
	fs.StringVar(&cfg.jsonPath, "json", "", "also write the results as JSON to this file (- for standard output, replacing the tables)")
	fs.BoolVar(&cfg.goBaseline, "go-baseline", true, "also time Go's own crypto (ECDSA P-256, AES-256-GCM 1 MiB, SHA-256 1 MiB, ML-DSA-65 sign and verify, ML-KEM-768 encapsulate and decapsulate) in this binary, in the rounds of ecdsa-p256, aes256-gcm-1m, sha256-1m, mldsa65-sign/-verify and ml-kem-768-*")
	fs.BoolVar(&cfg.osslBase, "openssl-baseline", true, "also time OpenSSL's own ECDSA P-256 and RSA-2048 signing from 1 and 2 C threads in this binary, in the rounds of ecdsa-p256 and rsa2048-sha256-pkcs1 (the scaling ceiling)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("p11bench: unexpected arguments %q", fs.Args())
	}
	for _, m := range mods {
		for _, one := range strings.Split(m, ",") {
			if one = strings.TrimSpace(one); one == "" {
				continue
			}
			name, path, ok := strings.Cut(one, "=")
			if !ok {
				path = one
				name = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(one), "lib"), ".so")
			}
			cfg.modules = append(cfg.modules, modSpec{name, path})
		}
	}
	if len(cfg.modules) == 0 {
		return nil, errors.New("p11bench: no -module given")
	}
	for _, p := range pairs {
		ps, err := parsePair(p, cfg.modules)
		if err != nil {
			return nil, err
		}
		if len(cfg.modules) >= 2 && ps.a == cfg.modules[0].name && ps.b == cfg.modules[1].name {
			return nil, fmt.Errorf("p11bench: -pair %q: the first column is already %s", p, ps.name())
		}
		cfg.pairs = append(cfg.pairs, ps)
	}
	for _, v := range modOps {
		name, list, ok := strings.Cut(v, "=")
		if !ok || list == "" || !slices.ContainsFunc(cfg.modules, func(m modSpec) bool { return m.name == name }) {
			return nil, fmt.Errorf("p11bench: -module-ops %q: want NAME=SUBSTR[,SUBSTR...] for a -module NAME", v)
		}
		if cfg.moduleOps == nil {
			cfg.moduleOps = map[string][]string{}
		}
		cfg.moduleOps[name] = append(cfg.moduleOps[name], strings.Split(list, ",")...)
	}
	for _, s := range strings.Split(*sessions, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > maxSessions {
			return nil, fmt.Errorf("p11bench: -sessions %q: want numbers 1..%d", *sessions, maxSessions)
		}
		cfg.sessions = append(cfg.sessions, n)
	}
	if *ops != "" {
		cfg.ops = strings.Split(*ops, ",")
		if len(cfg.selected()) == 0 {
			return nil, fmt.Errorf("p11bench: -ops %q selects nothing of: %s", *ops, opNames())
		}
	}
	if cfg.slices < 1 || cfg.duration/time.Duration(max(cfg.slices, 1)) < time.Millisecond {
		return nil, fmt.Errorf("p11bench: -slices %d: want at least 1, and slices of at least 1ms of -duration %s", cfg.slices, cfg.duration)
	}
	if cfg.rounds < 1 || cfg.scalingRounds < 0 {
		return nil, fmt.Errorf("p11bench: -rounds %d, -scaling-rounds %d: want at least 1 and at least 0", cfg.rounds, cfg.scalingRounds)
	}
	if cfg.objects < 1 || cfg.objects > 99999 {
		return nil, fmt.Errorf("p11bench: -objects %d: want 1..99999", cfg.objects)
	}
	return cfg, nil
}

// parsePair reads a -pair value: A/B or A/B=TARGET, A and B two of the
// modules, TARGET a ratio in (0, 100].
func parsePair(v string, mods []modSpec) (pairSpec, error) {
	ab, tgt, hasTarget := strings.Cut(v, "=")
	a, b, ok := strings.Cut(ab, "/")
	var p pairSpec
	if !ok || a == "" || b == "" || a == b {
		return p, fmt.Errorf("p11bench: -pair %q: want A/B or A/B=TARGET, two different module names", v)
	}
	for _, n := range []string{a, b} {
		if !slices.ContainsFunc(mods, func(m modSpec) bool { return m.name == n }) {
			return p, fmt.Errorf("p11bench: -pair %q: no -module named %q", v, n)
		}
	}
	p.a, p.b = a, b
	if hasTarget {
		t, err := strconv.ParseFloat(tgt, 64)
		if err != nil || !(t > 0 && t <= 100) {
			return p, fmt.Errorf("p11bench: -pair %q: target %q: want a ratio above 0, at most 100", v, tgt)
		}
		p.target = t
	}
	return p, nil
}

func opNames() string {
	var names []string
	for _, op := range opDefs {
		names = append(names, op.name)
	}
	return strings.Join(names, ", ")
}

// roundsFor is the number of rounds op is measured in.
func (c *config) roundsFor(op *opDef) int {
	if op.scales {
		return c.signRounds()
	}
	return c.rounds
}

// signRounds is the rounds of the operations with a scaling target.
func (c *config) signRounds() int { return max(c.rounds, c.scalingRounds) }

// runs reports whether module name runs op (-module-ops).
func (c *config) runs(name string, op *opDef) bool {
	subs, ok := c.moduleOps[name]
	return !ok || slices.ContainsFunc(subs, func(f string) bool { return f != "" && strings.Contains(op.name, f) })
}

func (c *config) selected() []*opDef {
	var out []*opDef
	for _, op := range opDefs {
		if len(c.ops) == 0 || slices.ContainsFunc(c.ops, func(f string) bool { return f != "" && strings.Contains(op.name, f) }) {
			out = append(out, op)
		}
	}
	return out
}

// pinFor resolves the PIN flags for module name: "name=PIN" wins over a
// bare "PIN".
func pinFor(raw []string, name, def string, names []string) string {
	pin := def
	for _, r := range raw {
		if n, v, ok := strings.Cut(r, "="); ok && slices.Contains(names, n) {
			if n == name {
				return v
			}
			continue
		}
		pin = r
	}
	return pin
}

func reservedFor(raw []string, name string) string {
	for _, r := range raw {
		if n, v, ok := strings.Cut(r, "="); ok && n == name {
			return v
		}
	}
	return ""
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("p11bench: ")
	if len(os.Args) > 1 && os.Args[1] == "proc" {
		if err := procMain(os.Args[2:], os.Stdout, os.Stderr); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				os.Exit(0)
			}
			fmt.Fprintln(os.Stderr, "p11bench proc:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 {
		if sub, ok := subcommands[os.Args[1]]; ok {
			if err := sub(os.Args[2:], os.Stdout, os.Stderr); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					os.Exit(0)
				}
				fmt.Fprintf(os.Stderr, "p11bench %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			return
		}
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	rep, err := bench(cfg)
	if rep != nil {
		if werr := rep.write(cfg, os.Stdout); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// bench loads and sets up every module, runs the selected operations and
// returns the report; errors in single operations are in the report and
// in the returned error, which does not stop the other operations.
func bench(cfg *config) (*report, error) {
	var names []string
	for _, ms := range cfg.modules {
		names = append(names, ms.name)
	}
	var mods []*module
	for _, ms := range cfg.modules {
		p, err := load(ms.path, reservedFor(cfg.reserved, ms.name))
		if err != nil {
			return nil, fmt.Errorf("p11bench: %s: %w", ms.name, err)
		}
		m := &module{
			name: ms.name, path: ms.path, p11: p,
			soPIN: pinFor(cfg.soPINs, ms.name, defaultSOPIN, names),
			pin:   pinFor(cfg.pins, ms.name, defaultPIN, names),
		}
		if err := m.setup(cfg); err != nil {
			return nil, fmt.Errorf("p11bench: %s setup: %w", ms.name, err)
		}
		mods = append(mods, m)
	}
	defer func() {
		for _, m := range mods {
			if err := m.finalize(); err != nil {
				log.Printf("%s: %v", m.name, err)
			}
		}
	}()
	rep := &report{Command: cfg.command, Duration: cfg.duration.String(), Rounds: cfg.rounds, ScalingRounds: cfg.signRounds(), Slices: cfg.slices, Sessions: cfg.sessions, Objects: cfg.objects}
	var errs []error
	var gob *goBase
	if cfg.goBaseline {
		var err error
		if gob, err = newGoBase(); err != nil {
			errs = append(errs, err)
		}
	}
	var ossl *osslBase
	if cfg.osslBase {
		var err error
		if ossl, err = newOSSLBase(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, op := range cfg.selected() {
		if op.findTok {
			for _, m := range mods {
				if !cfg.runs(m.name, op) {
					continue
				}
				if err := m.setupFind(cfg); err != nil {
					return nil, fmt.Errorf("p11bench: %s setup: %w", m.name, err)
				}
			}
		}
		// Rounds repeat the measurement; within a round, the cells (a
		// module at a session count, and OpenSSL's own threads where
		// they bound the operation) take turns in slices, in alternating
		// order, so that a ratio of two cells compares the same moments
		// of a machine whose speed changes from one second to the next,
		// and a burst of other work lands in all cells alike.
		var cells []*modCell
		for _, k := range cfg.sessions {
			if op.harness {
				cells = append(cells, &modCell{m: mods[0], k: k})
				continue
			}
			for _, m := range mods {
				cells = append(cells, &modCell{m: m, k: k})
			}
		}
		got := make([][]result, len(cells))
		slice := cfg.duration / time.Duration(cfg.slices)
		for round := range cfg.roundsFor(op) {
			var turns []func()
			begun := make([]bool, len(cells))
			for i, c := range cells {
				if round > 0 && got[i][0].Status != statusOK {
					continue // unsupported or failed: once is enough
				}
				begun[i] = true
				if c.begin(op, cfg) {
					turns = append(turns, func() { c.slice(op, slice) })
				}
			}
			var oc []*osslCell
			if ossl != nil {
				oc = ossl.cells(op.name, cfg.warmup)
				for _, o := range oc {
					turns = append(turns, func() { o.run(slice) })
				}
			}
			var gc []*goOp
			if gob != nil {
				gc = gob.cells(op.name, cfg.warmup)
				for _, g := range gc {
					turns = append(turns, func() { g.slice(slice) })
				}
			}
			for s := range cfg.slices {
				for j := range turns {
					turns[turnOrder(s, j, len(turns))]()
				}
			}
			for i, c := range cells {
				if begun[i] {
					got[i] = append(got[i], c.end(op))
				}
			}
			for _, o := range oc {
				if err := o.end(); err != nil {
					errs = append(errs, err)
					ossl = nil
				}
			}
			for _, g := range gc {
				if err := g.end(); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for i := range cells {
			r := median(got[i])
			if op.harness {
				r.Module = "p11bench"
			}
			errs = append(errs, r.err)
			rep.Results = append(rep.Results, r)
		}
	}
	for _, m := range mods {
		rep.Modules = append(rep.Modules, moduleReport{
			Name: m.name, Path: m.path, Info: m.info,
			KeySetupSeconds: m.mainSetupTime.Seconds(), FindSetup: m.findSetup, FindSetupSeconds: m.findSetupTime.Seconds(),
			SameFindToken: m.sameFindToken,
		})
	}
	if gob != nil {
		rep.GoBaseline = gob.rows()
	}
	if ossl != nil {
		rep.OpenSSLBaseline = ossl.rows()
	}
	rep.summarise(names, cfg.pairs)
	return rep, errors.Join(errs...)
}

// turnOrder is the cell that takes the j-th turn of slice s among n:
// forward in even slices, backward in odd ones, so that over two slices
// every cell has as many turns before as after each other cell, and a
// steady drift of the machine's speed favours none.
func turnOrder(s, j, n int) int {
	if s%2 == 1 {
		return n - 1 - j
	}
	return j
}

// modCell is one module at one session count, for one operation: its
// result this round while the round's slices run.
type modCell struct {
	m   *module
	k   int
	ws  []*worker
	res result
	acc measurement
}

// begin starts a round: the result is unsupported (a mechanism the module
// does not list), failed (in the warm-up), or to be measured (true).
func (c *modCell) begin(op *opDef, cfg *config) bool {
	c.res = result{Op: op.name, Module: c.m.name, Sessions: c.k}
	c.acc = measurement{}
	if !op.harness && !cfg.runs(c.m.name, op) {
		c.res.Status, c.res.Reason = statusSkipped, "not in -module-ops"
		return false
	}
	if !op.harness {
		if why := op.unsupported(c.m); why != "" {
			c.res.Status, c.res.Reason = statusUnsupported, why
			return false
		}
	}
	c.ws = c.m.workers[:c.k]
	if op.findTok {
		c.ws = c.m.findWorkers[:c.k]
	}
	if cfg.warmup > 0 {
		if w := run(c.ws, op, cfg.warmup); w.err != nil {
			c.fail(op, w.err)
			return false
		}
	}
	return true
}

func (c *modCell) fail(op *opDef, err error) {
	c.res.Status, c.res.Reason, c.res.err = statusError, err.Error(), fmt.Errorf("p11bench: %s %s: %w", c.m.name, op.name, err)
}

// slice measures one slice of the round (none after an error).
func (c *modCell) slice(op *opDef, d time.Duration) {
	if c.acc.err != nil || c.res.Status != "" {
		return
	}
	c.acc.add(run(c.ws, op, d))
}

// end is the round's result, logged.
func (c *modCell) end(op *opDef) result {
	r := c.res
	switch {
	case r.Status == statusSkipped:
		return r
	case r.Status == statusUnsupported:
		log.Printf("%-22s %-8s %d session(s): unsupported: %s", op.name, c.m.name, c.k, r.Reason)
		return r
	case r.Status == statusError:
	case c.acc.err != nil:
		c.fail(op, c.acc.err)
		r = c.res
	default:
		r.Ops, r.OpsPerSec = c.acc.ops(), c.acc.opsPerSec()
		r.P50us, r.P99us = float64(c.acc.percentile(0.50))/1e3, float64(c.acc.percentile(0.99))/1e3
		r.Status = statusOK
		log.Printf("%-22s %-8s %d session(s): %12.1f ops/s  p50 %9.2f us  p99 %9.2f us  (%s)", op.name, c.m.name, c.k, r.OpsPerSec, r.P50us, r.P99us, c.acc.tail())
		return r
	}
	log.Printf("%-22s %-8s %d session(s): error: %s", op.name, c.m.name, c.k, r.Reason)
	return r
}

// median returns the round with the median ops/s (the upper one of an even
// count), with the ops/s of every round; a failed round wins, so that an
// error is never hidden by the others.
func median(rs []result) result {
	for _, r := range rs {
		if r.Status != statusOK {
			return r
		}
	}
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b result) int { return cmp.Compare(a.OpsPerSec, b.OpsPerSec) })
	m := sorted[len(sorted)/2]
	for _, r := range rs {
		m.RoundsOpsPerSec = append(m.RoundsOpsPerSec, r.OpsPerSec)
	}
	return m
}
