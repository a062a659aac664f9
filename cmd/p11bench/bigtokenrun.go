package main

// p11bench bigtoken: the "Big tokens" measurements (issue 19, target 2),
// run by scripts/bench.sh after the other sections.
//
//	p11bench bigtoken -lib build/libgohsm.so [-softhsm libsofthsm2.so] -dir DIR \
//	    -sizes 0,10000,100000,1000000 -runs 5
//
// For each size a gohsm token made by bigtoken-make (reused across runs),
// probed by fresh `p11bench bigtoken-probe` processes, run i of every size
// before run i+1; wall time and peak RSS from wait4, the phases from the
// probe's own output; medians. Then token key generation (AES-256 and EC
// P-256 pairs) on the empty token and on the biggest, slice by slice in
// one process, as a rate ratio. SoftHSMv2, when given, gets tokens of the
// -softhsm-sizes made through C_CreateObject within a time limit.

/*
#include "bench.h"
*/
import "C"

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gohsm/internal/ck"
)

const (
	bigInitLoginFindTarget = 100 * time.Millisecond
	bigRSSTarget           = 64 << 20
	bigKeygenTarget        = 0.8
)

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 10000000 {
			return nil, fmt.Errorf("size %q: want 0..10000000", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// bigRow is one (module, size): its runs.
type bigRow struct {
	module  string
	size    int
	cmd     string
	samples []procSample
	phases  []probePhases
	note    string
}

func bigtokenMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("p11bench bigtoken", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lib := fs.String("lib", "build/libgohsm.so", "gohsm module")
	softhsm := fs.String("softhsm", "", "libsofthsm2.so (empty: no SoftHSM rows)")
	dir := fs.String("dir", "", "directory for the tokens (kept and reused)")
	sizesF := fs.String("sizes", "0,10000,100000,1000000", "gohsm token sizes (objects)")
	shSizesF := fs.String("softhsm-sizes", "1000,10000", "SoftHSM token sizes")
	shLimit := fs.Duration("softhsm-limit", 120*time.Second, "time limit for one SoftHSM probe")
	fs.StringVar(&bigLauncher, "launcher", "", "run each probe through this build/maxrss, so its peak RSS is its own")
	shMakeLimit := fs.Duration("softhsm-make-limit", 15*time.Minute, "time limit for making one SoftHSM token (10,000 objects took 404 s on a loaded 2-core machine); a token not made is reported, and tried again on the next run")
	runs := fs.Int("runs", 5, "probe runs per size")
	kgDur := fs.Duration("keygen-duration", 4*time.Second, "measured key generation per kind and token, in 4 alternating slices")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sizes, err := parseSizes(*sizesF)
	if err != nil {
		return err
	}
	shSizes, err := parseSizes(*shSizesF)
	if err != nil {
		return err
	}
	if *dir == "" || len(sizes) == 0 || *runs < 1 {
		return errors.New("want -dir, -sizes and -runs >= 1")
	}
	if *dir, err = filepath.Abs(*dir); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	absLib, _ := filepath.Abs(*lib)
	var rows []*bigRow
	var builds []string
	for _, n := range sizes {
		d := filepath.Join(*dir, fmt.Sprintf("gohsm-%d", n))
		r, err := makeBigtoken(absLib, d, max(n, 1), stderr)
		if err != nil {
			return fmt.Errorf("making the token of %d objects: %w", n, err)
		}
		builds = append(builds, fmt.Sprintf("%d objects (%d keys): made in %.1f s", r.Objects, r.Keys, r.Seconds))
		cmd := fmt.Sprintf("%s bigtoken-probe -lib %s -conf %s -objects %d", shq(self), shq(absLib), shq(bigtokenConf(d)), max(n, 1))
		rows = append(rows, &bigRow{module: "gohsm", size: n, cmd: cmd})
	}
	if *softhsm != "" {
		for _, n := range shSizes {
			d := filepath.Join(*dir, fmt.Sprintf("softhsm-%d", n))
			note, err := makeSofthsmToken(self, *softhsm, d, n, *shMakeLimit, stderr)
			if err != nil {
				return err
			}
			row := &bigRow{module: "softhsm", size: n, note: note}
			if note == "" {
				row.cmd = fmt.Sprintf("env SOFTHSM2_CONF=%s %s bigtoken-probe -lib %s -label %s -pin %s -objects %d",
					shq(filepath.Join(d, "softhsm2.conf")), shq(self), shq(*softhsm), bigtokenLabel, defaultPIN, n)
			}
			rows = append(rows, row)
		}
	}
	// One untimed run of each first (run 0): the page cache, and a token
	// made by an older build gets what Open adds once.
	for run := range *runs + 1 {
		for _, r := range rows {
			if r.cmd == "" || r.note != "" {
				continue
			}
			var out bytes.Buffer
			limit := time.Duration(0)
			if r.module == "softhsm" {
				limit = *shLimit
			}
			s, err := runLimited(r.cmd, &out, stderr, limit)
			if err != nil {
				if r.module == "softhsm" {
					r.note = fmt.Sprintf("run %d: %v", run, err)
					continue
				}
				return fmt.Errorf("%s: %w (%s)", r.cmd, err, strings.TrimSpace(out.String()))
			}
			ph, err := parseProbe(out.String())
			if err != nil {
				return err
			}
			if run == 0 {
				continue
			}
			r.samples = append(r.samples, s)
			r.phases = append(r.phases, ph)
		}
	}
	var kg *keygenResult
	if len(sizes) >= 2 && slices.Min(sizes) == 0 && *kgDur > 0 {
		big := slices.Max(sizes)
		kg, err = keygenAtSizes(absLib, filepath.Join(*dir, "gohsm-0"), filepath.Join(*dir, fmt.Sprintf("gohsm-%d", big)), big, *kgDur, 0)
		if err != nil {
			return fmt.Errorf("key generation: %w", err)
		}
	}
	writeBigTables(stdout, rows, builds, kg, *runs)
	return nil
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// bigLauncher, when set (-launcher), runs each probe through build/maxrss:
// a child of p11bench inherits p11bench's own high-water mark in its
// ru_maxrss (Go starts children with CLONE_VM), and after building a
// 10^6-object token that mark is about 500 MiB, which every probe then
// read as its peak.
var bigLauncher string

// runLimited is runOnce with stdout kept apart and an optional time limit
// (the whole process group is killed when it passes).
func runLimited(command string, stdout, stderr io.Writer, limit time.Duration) (procSample, error) {
	ctx := context.Background()
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	args := []string{"/bin/sh", "-c", "exec " + command}
	if bigLauncher != "" {
		args = append([]string{bigLauncher}, args...)
	}
	c := exec.CommandContext(ctx, args[0], args[1:]...)
	c.Stdout, c.Stderr = stdout, stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	var r *os.File
	if bigLauncher != "" {
		var w *os.File
		var err error
		if r, w, err = os.Pipe(); err != nil {
			return procSample{}, err
		}
		defer r.Close()
		c.ExtraFiles = []*os.File{w} // descriptor 3: the launcher's line
	}
	start := time.Now()
	err := c.Start()
	if len(c.ExtraFiles) > 0 {
		c.ExtraFiles[0].Close()
	}
	if err == nil {
		err = c.Wait()
	}
	wall := time.Since(start)
	if ctx.Err() != nil {
		return procSample{}, fmt.Errorf("no answer within %v", limit)
	}
	if err != nil {
		return procSample{}, err
	}
	if r != nil {
		out, err := io.ReadAll(r)
		if err != nil {
			return procSample{}, err
		}
		return parseLaunched(string(out))
	}
	ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return procSample{}, errors.New("no rusage")
	}
	return procSample{wall: wall, rss: ru.Maxrss * 1024}, nil
}

// makeSofthsmToken makes a SoftHSM token of n objects (a tenth AES-256
// keys, the rest data objects, labels as gohsm's, plus the find object)
// through C_CreateObject and C_GenerateKey, in a child process bounded by
// limit; a token it could not finish is reported in the returned note.
func makeSofthsmToken(self, lib, dir string, n int, limit time.Duration, log io.Writer) (string, error) {
	done := filepath.Join(dir, "done")
	if b, err := os.ReadFile(done); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(n) {
		return "", nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		return "", err
	}
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", filepath.Join(dir, "tokens"))
	if err := os.WriteFile(filepath.Join(dir, "softhsm2.conf"), []byte(conf), 0o600); err != nil {
		return "", err
	}
	cmd := fmt.Sprintf("env SOFTHSM2_CONF=%s %s bigtoken-softhsm-fill -lib %s -objects %d",
		shq(filepath.Join(dir, "softhsm2.conf")), shq(self), shq(lib), n)
	start := time.Now()
	var out bytes.Buffer
	if _, err := runLimited(cmd, &out, log, limit); err != nil {
		return fmt.Sprintf("not made: %v after %.0f s (%s)", err, time.Since(start).Seconds(), strings.TrimSpace(lastLine(out.String()))), nil
	}
	fmt.Fprintf(log, "p11bench: SoftHSM token of %d objects made in %.1f s\n", n, time.Since(start).Seconds())
	return "", os.WriteFile(done, []byte(strconv.Itoa(n)), 0o600)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// bigtokenSofthsmFill is the child that fills a SoftHSM token; it prints
// its progress so a run cut short by the limit says how far it got.
func bigtokenSofthsmFill(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("p11bench bigtoken-softhsm-fill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lib := fs.String("lib", "", "libsofthsm2.so")
	n := fs.Int("objects", 0, "objects")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := load(*lib, "")
	if err != nil {
		return err
	}
	defer p.finalize()
	m := &module{name: "softhsm", p11: p, soPIN: defaultSOPIN, pin: defaultPIN}
	t, err := m.openToken(bigtokenLabel)
	if err != nil {
		return err
	}
	if _, err := m.createObject(t.admin, bigtokenDataAttrs(bigtokenFind)); err != nil {
		return err
	}
	total := *n
	keys := bigtokenKeys(total)
	start := time.Now()
	for i := range max(total-1, 0) {
		l := bigtokenObjLabel(i)
		if i >= total-1-keys {
			_, err = m.generateKey(t.admin, ck.CKM_AES_KEY_GEN, aesKeyAttrs(l))
		} else {
			_, err = m.createObject(t.admin, bigtokenDataAttrs(l))
		}
		if err != nil {
			return fmt.Errorf("object %d: %w", i, err)
		}
		if (i+1)%1000 == 0 {
			fmt.Fprintf(stdout, "%d objects in %.1f s\n", i+1, time.Since(start).Seconds())
		}
	}
	return nil
}

func init() { subcommands["bigtoken-softhsm-fill"] = bigtokenSofthsmFill }

// keygenResult is token key generation per second on the empty token and
// on the big one.
type keygenResult struct {
	big int
	// written[kind][token]: bytes this process wrote (wchar) per key or
	// pair made: the WAL frames of the commits and the checkpoints.
	written           [2][2]float64
	aes0, aesBig      float64
	ecPair0, ecBig    float64
	aesRatio, ecRatio float64
	// io[kind][token]: this process's counters per key or pair made
	// (/proc/self/io and getrusage), which do not move with the load.
	io [2][2]keygenIO
}

// keygenIO is what one key or pair cost the process: bytes read and
// written through read(2)/write(2) and friends, those calls, the bytes
// read from the disk (read_bytes: page cache misses of the kernel), and
// CPU.
type keygenIO struct {
	rchar, wchar, syscr, syscw, disk float64
	cpu                              time.Duration
}

// procIO reads /proc/self/io (zeros when unreadable) and the CPU time
// used so far.
func procIO() keygenIO {
	var io keygenIO
	if b, err := os.ReadFile("/proc/self/io"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			switch k {
			case "rchar":
				io.rchar = n
			case "wchar":
				io.wchar = n
			case "syscr":
				io.syscr = n
			case "syscw":
				io.syscw = n
			case "read_bytes":
				io.disk = n
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		io.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return io
}

func (a keygenIO) sub(b keygenIO) keygenIO {
	return keygenIO{a.rchar - b.rchar, a.wchar - b.wchar, a.syscr - b.syscr, a.syscw - b.syscw, a.disk - b.disk, a.cpu - b.cpu}
}

func (a keygenIO) add(b keygenIO) keygenIO {
	return keygenIO{a.rchar + b.rchar, a.wchar + b.wchar, a.syscr + b.syscr, a.syscw + b.syscw, a.disk + b.disk, a.cpu + b.cpu}
}

func (a keygenIO) per(n int) keygenIO {
	f := float64(max(n, 1))
	return keygenIO{a.rchar / f, a.wchar / f, a.syscr / f, a.syscw / f, a.disk / f, time.Duration(float64(a.cpu) / f)}
}

// keygenAtSizes loads the module once with both tokens as slots 0 (empty)
// and 1 (big), and generates token keys in alternating slices, each slice
// d/4 long, or, with count > 0, count/4 keys (pairs) long; the keys made
// are destroyed afterwards, so the tokens keep their counts.
func keygenAtSizes(lib, emptyDir, bigDir string, big int, d time.Duration, count int) (*keygenResult, error) {
	conf := fmt.Sprintf("log_level = warn\n%s[slot 0]\ndir = %s\n[slot 1]\ndir = %s\n", bigtokenConfExtra,
		filepath.Join(emptyDir, "gohsm", "slot-0"), filepath.Join(bigDir, "gohsm", "slot-0"))
	p, err := load(lib, conf)
	if err != nil {
		return nil, err
	}
	defer p.finalize()
	m := &module{name: "gohsm", p11: p}
	var sess [2]C.CK_SESSION_HANDLE
	for i := range sess {
		if sess[i], err = m.openSession(C.CK_SLOT_ID(i)); err != nil {
			return nil, err
		}
		if err := m.login(sess[i], C.CKU_USER, bigtokenUser+":"+bigtokenPIN); err != nil {
			return nil, err
		}
	}
	made := [2][]C.CK_OBJECT_HANDLE{}
	gens := []func(s C.CK_SESSION_HANDLE) ([]C.CK_OBJECT_HANDLE, error){
		func(s C.CK_SESSION_HANDLE) ([]C.CK_OBJECT_HANDLE, error) {
			h, err := m.generateKey(s, ck.CKM_AES_KEY_GEN, aesKeyAttrs("keygen"))
			return []C.CK_OBJECT_HANDLE{h}, err
		},
		func(s C.CK_SESSION_HANDLE) ([]C.CK_OBJECT_HANDLE, error) {
			a, b, err := m.generateKeyPair(s, ck.CKM_EC_KEY_PAIR_GEN, ecPublicAttrs("keygen"), privateKeyAttrs("keygen"))
			return []C.CK_OBJECT_HANDLE{a, b}, err
		},
	}
	const slices = 4
	perSlice := (count + slices - 1) / slices
	var r keygenResult
	r.big = big
	var rates [2][2]float64 // kind, token
	for k, gen := range gens {
		var n [2]int
		var spent [2]time.Duration
		var used [2]keygenIO
		for sl := range slices * 2 {
			tok := sl % 2
			if (sl/2)%2 == 1 {
				tok = 1 - tok // ABBA order
			}
			start := time.Now()
			io0 := procIO()
			for i := 0; ; i++ {
				if count > 0 && i >= perSlice || count <= 0 && time.Since(start) >= d/slices {
					break
				}
				hs, err := gen(sess[tok])
				if err != nil {
					return nil, err
				}
				made[tok] = append(made[tok], hs...)
				n[tok]++
			}
			spent[tok] += time.Since(start)
			used[tok] = used[tok].add(procIO().sub(io0))
		}
		for tok := range 2 {
			rates[k][tok] = float64(n[tok]) / spent[tok].Seconds()
			r.io[k][tok] = used[tok].per(n[tok])
			r.written[k][tok] = r.io[k][tok].wchar
		}
	}
	for tok := range 2 {
		for _, h := range made[tok] {
			if err := m.destroy(sess[tok], h); err != nil {
				return nil, err
			}
		}
		m.logout(sess[tok])
		m.closeSession(sess[tok])
	}
	r.aes0, r.aesBig, r.ecPair0, r.ecBig = rates[0][0], rates[0][1], rates[1][0], rates[1][1]
	r.aesRatio, r.ecRatio = rates[0][1]/rates[0][0], rates[1][1]/rates[1][0]
	return &r, nil
}

// bigtokenKeygenMain is the key generation part of `p11bench bigtoken` on
// its own, on tokens made before (bigtoken-make), with the process's
// counters per key: with -count, the same keys on every run.
func bigtokenKeygenMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("p11bench bigtoken-keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lib := fs.String("lib", "build/libgohsm.so", "gohsm module")
	empty := fs.String("empty", "", "directory of the empty token (bigtoken-make -objects 1)")
	bigDir := fs.String("big", "", "directory of the big token")
	d := fs.Duration("duration", 4*time.Second, "per kind and token, in 4 alternating slices")
	count := fs.Int("count", 0, "instead of -duration: keys (pairs) per kind and token, in 4 alternating slices")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *empty == "" || *bigDir == "" {
		return errors.New("want -empty and -big")
	}
	rec, ok := readBigtokenRecord(*bigDir)
	if !ok {
		return fmt.Errorf("%s: no bigtoken.json (make it with bigtoken-make)", *bigDir)
	}
	kg, err := keygenAtSizes(*lib, *empty, *bigDir, rec.Objects, *d, *count)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "| operation | token | per second | CPU per call | rchar | wchar | read calls | write calls | read from disk |")
	fmt.Fprintln(stdout, "|---|---|---:|---:|---:|---:|---:|---:|---:|")
	rates := [2][2]float64{{kg.aes0, kg.aesBig}, {kg.ecPair0, kg.ecBig}}
	for k, op := range []string{"C_GenerateKey AES-256", "C_GenerateKeyPair EC P-256"} {
		for tok, name := range []string{"empty", fmt.Sprint(rec.Objects)} {
			u := kg.io[k][tok]
			fmt.Fprintf(stdout, "| %s | %s | %.0f | %.3f ms | %.1f KiB | %.1f KiB | %.1f | %.1f | %.1f KiB |\n", op, name, rates[k][tok],
				float64(u.cpu.Microseconds())/1000, u.rchar/1024, u.wchar/1024, u.syscr, u.syscw, u.disk/1024)
		}
	}
	fmt.Fprintf(stdout, "big/empty: AES-256 %.2f, EC P-256 pairs %.2f\n", kg.aesRatio, kg.ecRatio)
	return nil
}

func init() { subcommands["bigtoken-keygen"] = bigtokenKeygenMain }

func writeBigTables(w io.Writer, rows []*bigRow, builds []string, kg *keygenResult, runs int) {
	fmt.Fprintf(w, "Fresh process per run (`p11bench bigtoken-probe`): C_Initialize, C_Login, find one object by label, then find and read the label of 10 objects; medians of %d runs, interleaved. gohsm tokens made by `p11bench bigtoken-make` (a tenth of the objects AES-256 keys of the user, the rest data objects): %s.\n\n",
		runs, strings.Join(builds, "; "))
	fmt.Fprintln(w, "| module | objects | C_Initialize | C_Login | find | init+login+find | touch 10 | process wall | peak RSS | RSS at end | target |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		if len(r.samples) == 0 {
			fmt.Fprintf(w, "| %s | %d | %s | | | | | | | | |\n", r.module, r.size, r.note)
			continue
		}
		var ini, lo, fi, ilf, to []time.Duration
		var rss []int64
		for _, p := range r.phases {
			rss = append(rss, p.rss)
			ini, lo, fi, to = append(ini, p.init), append(lo, p.login), append(fi, p.find), append(to, p.touch)
			ilf = append(ilf, p.init+p.login+p.find)
		}
		st := summarise(r.samples)
		tgt := ""
		if r.module == "gohsm" && r.size >= 1000000 {
			tgt = fmt.Sprintf("init+login+find <= 100 ms: %s; peak RSS <= 64 MiB: %s",
				passMiss(procMedian(ilf) <= bigInitLoginFindTarget), passMiss(st.medRSS <= bigRSSTarget))
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.module, r.size,
			msS(procMedian(ini)), msS(procMedian(lo)), msS(procMedian(fi)), msS(procMedian(ilf)), msS(procMedian(to)),
			msS(st.medWall), fmtMiB(st.medRSS), fmtMiB(procMedian(rss)), tgt)
	}
	if kg != nil {
		fmt.Fprintf(w, "\nToken key generation in one process, the empty token and the token of %d objects in alternating slices (keys destroyed after):\n\n", kg.big)
		fmt.Fprintln(w, "| operation | empty token /s | big token /s | big/empty | target | bytes written per call, empty / big |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---|---|")
		fmt.Fprintf(w, "| C_GenerateKey AES-256 | %.0f | %.0f | %.2f | >= %.2f: %s | %.0f / %.0f KiB |\n", kg.aes0, kg.aesBig, kg.aesRatio, bigKeygenTarget, passMiss(kg.aesRatio >= bigKeygenTarget), kg.written[0][0]/1024, kg.written[0][1]/1024)
		fmt.Fprintf(w, "| C_GenerateKeyPair EC P-256 | %.0f | %.0f | %.2f | >= %.2f: %s | %.0f / %.0f KiB |\n", kg.ecPair0, kg.ecBig, kg.ecRatio, bigKeygenTarget, passMiss(kg.ecRatio >= bigKeygenTarget), kg.written[1][0]/1024, kg.written[1][1]/1024)
	}
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func msS(d time.Duration) string { return fmt.Sprintf("%.1f ms", ms(d)) }
