// Command p11bench measures PKCS#11 modules side by side: it loads each
// module with dlopen, takes its function list from C_GetFunctionList and
// calls it through small C functions, as OpenSSL, NSS and Java do. The
// timed loop runs in C (bench.c) on input and output buffers allocated once
// in C memory, one session per OS thread; Go only orchestrates.
//
//	p11bench -module gohsm=build/libgohsm.so -pin gohsm=user:pw -so-pin gohsm=admin:pw \
//	         -module softhsm=/usr/lib/softhsm/libsofthsm2.so -pin softhsm=1234 -so-pin softhsm=5678
//
// Ratios are first module / second module. See docs/bench.md.
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

type config struct {
	modules    []modSpec
	soPINs     []string // raw "name=value" or "value"
	pins       []string
	reserved   []string // raw "name=value"
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
	command    string
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
	var mods []string
	cfg := &config{command: "p11bench " + strings.Join(args, " ")}
	fs.Var(listFlag{&mods}, "module", "module to load, NAME=PATH or PATH; repeatable or comma-separated (ratios are first/second)")
	fs.Var(listFlag{&cfg.soPINs}, "so-pin", "security officer PIN, NAME=PIN for one module or PIN for all; repeatable (used only to initialise a token)")
	fs.Var(listFlag{&cfg.pins}, "pin", "user PIN, NAME=PIN for one module or PIN for all; repeatable")
	fs.Var(listFlag{&cfg.reserved}, "reserved", "NAME=STRING: C_Initialize pReserved for one module (gohsm: configuration text or file); repeatable")
	fs.StringVar(&cfg.label, "label", "p11bench", "label of the token the benchmark uses (initialised on a free slot if missing)")
	fs.StringVar(&cfg.findLabel, "find-label", "p11bench-find", "label of the token holding the find objects (the -label token if equal)")
	fs.IntVar(&cfg.objects, "objects", 10000, "data objects on the find token")
	fs.DurationVar(&cfg.duration, "duration", time.Second, "measured time per operation, module, session count and round")
	fs.IntVar(&cfg.rounds, "rounds", 3, "measurements per operation, module and session count, interleaved; the median (by ops/s) is reported")
	fs.DurationVar(&cfg.warmup, "warmup", 200*time.Millisecond, "unmeasured run before each measurement")
	sessions := fs.String("sessions", "1,2", "concurrent session counts, each session on its own OS thread")
	ops := fs.String("ops", "", "comma-separated substrings selecting operations (default all): "+opNames())
	fs.StringVar(&cfg.jsonPath, "json", "", "also write the results as JSON to this file (- for standard output, replacing the tables)")
	fs.BoolVar(&cfg.goBaseline, "go-baseline", true, "also time Go's own crypto (ECDSA P-256, AES-256-GCM 1 MiB) in this binary")
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
	if cfg.objects < 1 || cfg.objects > 99999 {
		return nil, fmt.Errorf("p11bench: -objects %d: want 1..99999", cfg.objects)
	}
	return cfg, nil
}

func opNames() string {
	var names []string
	for _, op := range opDefs {
		names = append(names, op.name)
	}
	return strings.Join(names, ", ")
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
	if cfg.rounds < 1 {
		return nil, fmt.Errorf("p11bench: -rounds %d: at least 1", cfg.rounds)
	}
	rep := &report{Command: cfg.command, Duration: cfg.duration.String(), Rounds: cfg.rounds, Sessions: cfg.sessions, Objects: cfg.objects}
	var errs []error
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
				if err := m.setupFind(cfg); err != nil {
					return nil, fmt.Errorf("p11bench: %s setup: %w", m.name, err)
				}
			}
		}
		// Rounds interleave session counts and modules, so that a burst of
		// other work on the machine lands in one round of one measurement,
		// not in all of them; the median round is reported.
		type cell struct {
			m *module
			k int
		}
		var cells []cell
		for _, k := range cfg.sessions {
			if op.harness {
				cells = append(cells, cell{mods[0], k})
				continue
			}
			for _, m := range mods {
				cells = append(cells, cell{m, k})
			}
		}
		got := make([][]result, len(cells))
		for round := 0; round < cfg.rounds; round++ {
			for i, c := range cells {
				if round > 0 && got[i][0].Status != statusOK {
					continue // unsupported or failed: once is enough
				}
				got[i] = append(got[i], measure(c.m, op, c.k, cfg))
			}
			// OpenSSL's own rate, seconds after the modules' in the
			// same round (the machine's ceiling at that moment).
			if ossl != nil {
				if err := ossl.round(op.name, cfg.warmup, cfg.duration); err != nil {
					errs = append(errs, err)
					ossl = nil
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
	if cfg.goBaseline {
		rep.GoBaseline = goBaseline(cfg.duration)
	}
	if ossl != nil {
		rep.OpenSSLBaseline = ossl.rows()
	}
	rep.summarise(names)
	return rep, errors.Join(errs...)
}

func measure(m *module, op *opDef, k int, cfg *config) result {
	r := result{Op: op.name, Module: m.name, Sessions: k}
	if !op.harness {
		if why := op.unsupported(m); why != "" {
			r.Status, r.Reason = statusUnsupported, why
			log.Printf("%-22s %-8s %d session(s): unsupported: %s", op.name, m.name, k, why)
			return r
		}
	}
	ws := m.workers[:k]
	if op.findTok {
		ws = m.findWorkers[:k]
	}
	if cfg.warmup > 0 {
		if w := run(ws, op, cfg.warmup); w.err != nil {
			r.Status, r.Reason, r.err = statusError, w.err.Error(), fmt.Errorf("p11bench: %s %s: %w", m.name, op.name, w.err)
			log.Printf("%-22s %-8s %d session(s): error: %v", op.name, m.name, k, w.err)
			return r
		}
	}
	res := run(ws, op, cfg.duration)
	r.Ops, r.OpsPerSec = res.ops, res.opsPerSec
	r.P50us, r.P99us = float64(res.p50)/1e3, float64(res.p99)/1e3
	if res.err != nil {
		r.Status, r.Reason, r.err = statusError, res.err.Error(), fmt.Errorf("p11bench: %s %s: %w", m.name, op.name, res.err)
		log.Printf("%-22s %-8s %d session(s): error: %v", op.name, m.name, k, res.err)
		return r
	}
	r.Status = statusOK
	log.Printf("%-22s %-8s %d session(s): %12.1f ops/s  p50 %9.2f us  p99 %9.2f us", op.name, m.name, k, r.OpsPerSec, r.P50us, r.P99us)
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
